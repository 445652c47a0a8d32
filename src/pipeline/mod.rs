//! The analysis pipeline: durable batches in, swings, rallies and session summaries out —
//! journaled, then shown live.
//!
//! ```text
//! ingest ──feed.rs (bounded, never blocks an ack; arrival order per device)──> the task (here)
//!   queue.rs   one input per device in turn: a flooding device delays only its own swings
//!   shuttlegate_core::analysis::CourtAnalysis   per-device analysers, rallies, summaries (pure)
//!   publish.rs journaled in order (never waiting for an fsync here), then live once durable;
//!              a journaled summary tells the court driver the session is analysed
//! resume.rs    after a restart, warms the analysers from the journal before live input
//! metrics.rs   swing latency per stage and skipped batches, for /metrics
//! ```
//!
//! The analysis never waits for an fsync and ingest never waits for the analysis: what the live
//! analysis skips when it is that far behind stays in the journal for `replay`. `crate::live` is
//! the fan-out to clients; this module only publishes to it.

mod feed;
mod metrics;
pub mod publish;
mod queue;
pub mod resume;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::court::CourtHandle;
use crate::journal::Journal;
use crate::live::Live;

pub use feed::{AnalysisFeed, AnalysisInput, FeedSlot};
pub use metrics::{AnalysisMetrics, AnalysisSnapshot, InputTimes, SwingLatency, SwingStage};
pub use publish::Results;
pub use queue::FairQueue;
pub use resume::ResumePoint;

/// Analysed inputs whose results wait for the publisher (`publish.rs`).
const RESULTS_QUEUE: usize = 256;

/// What the analysis task runs with (see [`run`]).
pub struct AnalysisTask {
    /// The ingest side is [`AnalysisFeed`].
    pub inputs: mpsc::Receiver<AnalysisInput>,
    pub shutdown: CancellationToken,
    /// Told when a session's summary is journaled (it is then completed).
    pub court: CourtHandle,
    pub journal: Journal,
    pub live: Live,
    pub settings: Settings,
    /// The sessions a restart interrupted.
    pub resume_point: ResumePoint,
    /// Configuration reloads: the devices' profiles and node maps follow them.
    pub reloads: watch::Receiver<Arc<Settings>>,
    pub metrics: Arc<AnalysisMetrics>,
}

/// Why the analysis task stopped before shutdown asked it to.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The publisher task died: results could no longer be journaled or shown. The daemon stops
    /// (systemd restarts it, and the resume picks the open sessions up from the journal).
    #[error("the analysis publisher died: {0}")]
    PublisherDied(String),
}

/// The analysis task: first resumes the sessions a restart interrupted (`resume.rs`), then runs
/// until its queue closes or shutdown has drained it, and waits for its publisher to put out
/// everything analysed.
pub async fn run(task: AnalysisTask) -> Result<(), PipelineError> {
    let AnalysisTask {
        inputs: mut rx,
        shutdown,
        court: court_handle,
        journal,
        live,
        settings,
        resume_point,
        mut reloads,
        metrics,
    } = task;
    let (results, results_rx) = mpsc::channel(RESULTS_QUEUE);
    let publisher = tokio::spawn(publish::run(
        results_rx,
        journal.clone(),
        live,
        court_handle.clone(),
        metrics.clone(),
    ));
    let resumed = resume::resume(&settings, &journal, resume_point).await;
    let mut court = resumed.analysis;
    for (device, session_id) in resumed.summarised {
        if let Err(e) = court_handle.session_analysed(&device, &session_id).await {
            log::error!("session `{session_id}` of `{device}` analysed before the restart: {e}");
        }
    }
    // Results from before the restart have no receipt time: they are not latency samples.
    let resumed = Results {
        outputs: resumed.missing,
        times: None,
    };
    if results.send(resumed).await.is_err() {
        return Err(publisher_died(publisher).await);
    }
    let mut queue = FairQueue::default();
    loop {
        if queue.is_empty() {
            let input = tokio::select! {
                input = rx.recv() => input,
                Ok(()) = reloads.changed() => {
                    court.set_devices(reloads.borrow_and_update().court_devices());
                    continue;
                }
                // Connections have drained by the time this fires in earnest; finish what is
                // queued.
                _ = shutdown.cancelled() => rx.try_recv().ok(),
            };
            let Some(input) = input else { break };
            queue.push(input);
        }
        // Everything that has arrived competes for the next turn (bounded by the feed).
        while let Ok(input) = rx.try_recv() {
            queue.push(input);
        }
        if reloads.has_changed().unwrap_or(false) {
            court.set_devices(reloads.borrow_and_update().court_devices());
        }
        let Some(input) = queue.pop() else { continue };
        let started = Instant::now();
        let (outputs, received, queued) = match input {
            AnalysisInput::Batch {
                batch,
                received_ms,
                received_at,
                queued_at,
                ..
            } => (
                court.handle_batch(&batch, received_ms),
                received_at,
                queued_at,
            ),
            AnalysisInput::Finish {
                device,
                session_id,
                requested_at,
            } => (
                court.finish(&device, &session_id),
                requested_at,
                requested_at,
            ),
        };
        if outputs.is_empty() {
            // Most batches: nothing to journal or show, so no need to queue behind results.
            metrics.input_done();
            continue;
        }
        let times = InputTimes {
            received,
            queued,
            started,
            analysed: Instant::now(),
        };
        // Waits only when the publisher is that far behind (bounded).
        let results_of_input = Results {
            outputs,
            times: Some(times),
        };
        if results.send(results_of_input).await.is_err() {
            return Err(publisher_died(publisher).await);
        }
    }
    // Everything analysed is journaled and shown before the task ends (shutdown waits for it).
    drop(results);
    match publisher.await {
        Ok(()) => Ok(()),
        Err(e) => Err(PipelineError::PublisherDied(e.to_string())),
    }
}

/// Why the publisher is gone (it only ends early by panicking).
async fn publisher_died(publisher: tokio::task::JoinHandle<()>) -> PipelineError {
    let why = match publisher.await {
        Ok(()) => "it ended while the analysis was still running".to_owned(),
        Err(e) => e.to_string(),
    };
    log::error!("the analysis publisher died: {why}");
    PipelineError::PublisherDied(why)
}
