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

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::court::{CourtChange, CourtHandle};
use crate::device_watch::Watch;
use crate::journal::Journal;
use crate::live::Live;
use shuttlegate_core::analysis::CourtAnalysis;
use shuttlegate_core::court::CourtEvent;

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
    /// Configuration reloads: the devices' profiles and node maps follow them (and the players
    /// bound to them, through the court's `user_bound` changes).
    pub reloads: watch::Receiver<Arc<Settings>>,
    pub metrics: Arc<AnalysisMetrics>,
    /// Counts each journaled swing per device (the console's `swings_today`).
    pub watch: Watch,
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
        watch,
    } = task;
    let (results, results_rx) = mpsc::channel(RESULTS_QUEUE);
    let publisher = tokio::spawn(publish::run(
        results_rx,
        journal.clone(),
        live,
        court_handle.clone(),
        metrics.clone(),
        watch,
    ));
    let resumed = resume::resume(&settings, &journal, resume_point).await;
    let mut court = resumed.analysis;
    // Subscribed before the first read, so no binding made in between is missed.
    let mut changes = court_handle.subscribe();
    let mut profiles = Profiles {
        court: &court_handle,
        settings: Arc::new(settings.clone()),
    };
    profiles.apply(&mut court).await;
    let mut watching_court = true;
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
                    profiles.settings = reloads.borrow_and_update().clone();
                    profiles.apply(&mut court).await;
                    continue;
                }
                change = changes.recv(), if watching_court => {
                    watching_court = !matches!(change, Err(broadcast::error::RecvError::Closed));
                    if binds(&change) {
                        profiles.apply(&mut court).await;
                    }
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
            profiles.settings = reloads.borrow_and_update().clone();
            profiles.apply(&mut court).await;
        }
        if drain_binds(&mut changes) {
            profiles.apply(&mut court).await;
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
        metrics.add_analysed(court.take_stats());
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

/// What the devices' analysis profiles are made from: the settings in force and the court's
/// bindings of players to devices. A profile is taken when a session's analysis starts, so a
/// change applies from each device's next session on.
struct Profiles<'a> {
    court: &'a CourtHandle,
    settings: Arc<Settings>,
}

impl Profiles<'_> {
    async fn apply(&self, analysis: &mut CourtAnalysis) {
        let settings = self.settings.clone();
        match self
            .court
            .read(move |court| settings.court_devices_bound(court))
            .await
        {
            Ok(devices) => analysis.set_devices(devices),
            Err(e) => log::warn!("analysis profiles: the court could not be read: {e}"),
        }
    }
}

/// Whether a court change may have bound a player to a device (a lagged stream may have lost
/// one).
fn binds(change: &Result<CourtChange, broadcast::error::RecvError>) -> bool {
    match change {
        Ok(CourtChange::Event(event)) => matches!(**event, CourtEvent::UserBound { .. }),
        Ok(CourtChange::Telemetry { .. }) => false,
        Err(broadcast::error::RecvError::Lagged(_)) => true,
        Err(broadcast::error::RecvError::Closed) => false,
    }
}

/// Takes every court change waiting; whether one of them may have bound a player.
fn drain_binds(changes: &mut broadcast::Receiver<CourtChange>) -> bool {
    let mut any = false;
    loop {
        match changes.try_recv() {
            Ok(change) => any |= binds(&Ok(change)),
            Err(broadcast::error::TryRecvError::Lagged(_)) => any = true,
            Err(_) => return any,
        }
    }
}
