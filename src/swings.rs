//! The analysis task: stored batches in, swings and session summaries out.
//!
//! Ingest hands each batch here *after* it is durable and answered, through a bounded queue that
//! never blocks ingest: analysis must never delay an ack. The task feeds per-device streaming
//! analysers (`analysis`), journals every swing and summary, and publishes them live.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::batch::SensorBatch;

/// Work for the analysis task.
#[derive(Debug)]
pub enum AnalysisInput {
    /// A batch now in the journal under `id`, received at `received_ms`.
    Batch {
        id: u64,
        batch: Arc<SensorBatch>,
        received_ms: i64,
    },
    /// The session's upload is complete: flush, summarise, complete it.
    Finish { device: String, session_id: String },
}

/// The ingest side of the analysis queue.
#[derive(Debug, Clone)]
pub struct AnalysisFeed {
    tx: mpsc::Sender<AnalysisInput>,
}

impl AnalysisFeed {
    pub fn new(capacity: usize) -> (AnalysisFeed, mpsc::Receiver<AnalysisInput>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (AnalysisFeed { tx }, rx)
    }

    /// Offers a stored batch; if the analysis is that far behind, it is skipped for the live
    /// view (it stays in the journal, and `replay` re-analyses it) and a warning is logged.
    pub fn batch(&self, id: u64, batch: Arc<SensorBatch>, received_ms: i64) {
        let input = AnalysisInput::Batch {
            id,
            batch,
            received_ms,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(input) {
            log::warn!("analysis is behind: journal record {id} skipped for live analysis");
        }
    }

    /// Asks for a session's summary. Waits for room: a summary must not be skipped.
    pub fn finish(&self, device: &str, session_id: &str) {
        let input = AnalysisInput::Finish {
            device: device.to_owned(),
            session_id: session_id.to_owned(),
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _closed_at_shutdown = tx.send(input).await;
        });
    }
}

/// The analysis task. Until the analysers are wired in, it completes sessions whose upload is
/// complete so the session state machine runs end to end.
pub async fn run(
    mut rx: mpsc::Receiver<AnalysisInput>,
    shutdown: tokio_util::sync::CancellationToken,
    ingest: Arc<crate::ingest::Ingest>,
    _journal: crate::journal::Journal,
    _live: crate::live::Live,
    _settings: crate::config::Settings,
) {
    loop {
        let input = tokio::select! {
            input = rx.recv() => input,
            // Connections have drained by the time this fires in earnest; finish what is queued.
            _ = shutdown.cancelled() => rx.try_recv().ok(),
        };
        let Some(input) = input else { return };
        match input {
            AnalysisInput::Batch { .. } => {}
            AnalysisInput::Finish { device, session_id } => {
                ingest.session_analysed(&device, &session_id);
            }
        }
    }
}
