//! The ingest side of the analysis pipeline: durable batches and session finishes in, through a
//! bounded queue that never blocks ingest (analysis must never delay an ack), in arrival order
//! per device.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use shuttlegate_core::batch::SensorBatch;
use tokio::sync::{mpsc, oneshot};

use super::metrics::AnalysisMetrics;

/// Work for the analysis task.
#[derive(Debug)]
pub enum AnalysisInput {
    /// A batch now in the journal under `id`, received at `received_ms` (wall clock, anchors
    /// V3.3 time-of-day stamps) and `received_at` (monotonic, for latency), handed to the
    /// analysis (durable) at `queued_at`.
    Batch {
        id: u64,
        batch: Arc<SensorBatch>,
        received_ms: i64,
        received_at: Instant,
        queued_at: Instant,
    },
    /// The session's upload is complete: flush, summarise, complete it. `requested_at` is when
    /// ingest asked, the start of the latency of the swings this flush completes.
    Finish {
        device: String,
        session_id: String,
        requested_at: Instant,
    },
}

/// The ingest side of the analysis queue.
#[derive(Debug, Clone)]
pub struct AnalysisFeed {
    tx: mpsc::Sender<AnalysisInput>,
    /// Per device, the signal that its latest reserved batch has been handed over (or given
    /// up): the next one waits for it. One entry per device that has sent data; devices are the
    /// configured ones.
    order: Arc<Mutex<HashMap<String, oneshot::Receiver<()>>>>,
    /// Batches held for the analysis at most (in the channel and the task's [`FairQueue`]).
    capacity: usize,
    metrics: Arc<AnalysisMetrics>,
}

impl AnalysisFeed {
    pub fn new(capacity: usize) -> (AnalysisFeed, mpsc::Receiver<AnalysisInput>) {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let metrics = Arc::new(AnalysisMetrics::default());
        let feed = AnalysisFeed {
            tx,
            order: Arc::default(),
            capacity,
            metrics,
        };
        (feed, rx)
    }

    /// The figures the analysis task and this feed keep (for `/metrics` and [`run`]).
    pub fn metrics(&self) -> Arc<AnalysisMetrics> {
        self.metrics.clone()
    }

    /// Offers a stored batch; if the analysis is that far behind, it is skipped for the live
    /// view (it stays in the journal, and `replay` re-analyses it), counted, and logged.
    pub fn batch(&self, id: u64, batch: Arc<SensorBatch>, received_ms: i64, received_at: Instant) {
        let input = AnalysisInput::Batch {
            id,
            batch,
            received_ms,
            received_at,
            queued_at: Instant::now(),
        };
        // Counted before the send so the task, which decrements when done, never sees it < 0;
        // and the count, not the channel, is the bound, since the task drains the channel into
        // its fair queue.
        let before = self.metrics.pending.fetch_add(1, Ordering::Relaxed);
        let refused = if before >= self.capacity {
            true
        } else {
            match self.tx.try_send(input) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        };
        self.metrics.pending.fetch_sub(1, Ordering::Relaxed);
        if refused {
            self.metrics.skipped_batches.fetch_add(1, Ordering::Relaxed);
            log::warn!("analysis is behind: journal record {id} skipped for live analysis");
        }
    }

    /// Asks for a session's summary. Waits for room: a summary must not be skipped.
    pub async fn finish(&self, device: &str, session_id: &str) {
        let input = AnalysisInput::Finish {
            device: device.to_owned(),
            session_id: session_id.to_owned(),
            requested_at: Instant::now(),
        };
        self.metrics.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(input).await.is_err() {
            // Closed at shutdown: nothing will analyse it.
            self.metrics.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Reserves `device`'s next place in the analysis' order. Take it when the batch arrives;
    /// hand the batch over with [`FeedSlot::batch`] once it is durable (or drop the slot if it
    /// never is): batches whose fsync waits end together still reach the analysis in the order
    /// they arrived.
    pub fn slot(&self, device: &str) -> FeedSlot {
        let (done, next) = oneshot::channel();
        let previous = self
            .order
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.to_owned(), next);
        FeedSlot {
            feed: self.clone(),
            previous,
            done,
        }
    }
}

/// A device's place in the analysis' order (see [`AnalysisFeed::slot`]).
#[derive(Debug)]
pub struct FeedSlot {
    feed: AnalysisFeed,
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped or sent: the next slot of the device may go.
    done: oneshot::Sender<()>,
}

impl FeedSlot {
    /// Offers the stored batch once every earlier batch of the device has been offered.
    pub async fn batch(
        self,
        id: u64,
        batch: Arc<SensorBatch>,
        received_ms: i64,
        received_at: Instant,
    ) {
        if let Some(previous) = self.previous {
            // A dropped sender (its batch was not stored) releases this one too.
            let _ = previous.await;
        }
        self.feed.batch(id, batch, received_ms, received_at);
        // The next slot may have been dropped meanwhile (its connection closed): nobody waits.
        let _ = self.done.send(());
    }
}
