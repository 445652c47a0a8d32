//! The analysis task: stored batches in, swings and session summaries out.
//!
//! Ingest hands each batch here *after* it is durable and answered, through a bounded queue that
//! never blocks ingest: analysis must never delay an ack. The task serves that queue fairly,
//! one input per device in turn ([`FairQueue`]): a device flooding the gateway makes its own
//! results late, not everyone's. The task feeds per-device streaming analysers (`analysis`) and
//! hands every swing and summary to the publisher task (`crate::publish`), which journals them
//! and then shows them live, so the analysis never waits for an fsync. Before its first input
//! it resumes the sessions a restart interrupted (`crate::resume`).
//!
//! It also measures itself for `/metrics` ([`AnalysisMetrics`]): how long after the batch that
//! completes a swing the swing is out (journaled and on the live broadcast), and how many
//! batches the live analysis skipped because its queue was full.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::ingest::Ingest;
use crate::journal::Journal;
use crate::live::Live;
use crate::publish::{InputTimes, Results};
use crate::resume::ResumePoint;
use shuttlegate_core::analysis::{
    AnalysisEvent, AnalysisSettings, DeviceAnalyser, DeviceProfile, RallyEvent, RallyTracker,
    SessionSummary, Swing, samples_of,
};
use shuttlegate_core::batch::{BodyPosition, SensorBatch};
use shuttlegate_core::protocol::FrameClock;

/// Analysed inputs whose results wait for the publisher (`crate::publish`).
const RESULTS_QUEUE: usize = 256;

/// Sessions analysed at once per device; a device that opens more has its oldest summarised
/// and dropped (its raw data stays in the journal for `replay`).
const SESSIONS_PER_DEVICE: usize = 4;

/// Longest swing latency the histograms tell apart; anything slower is recorded as this.
const LATENCY_CEILING: Duration = Duration::from_secs(60);
/// Significant digits of the end-to-end latency histogram: 0.1 % resolution in ~140 KiB.
const LATENCY_DIGITS: u8 = 3;
/// Significant digits of the per-stage histograms: 1 % resolution in ~20 KiB each; they
/// explain the end-to-end figure, they are not the figure.
const STAGE_DIGITS: u8 = 2;

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

/// The parts of a swing's latency, and the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwingStage {
    /// Received → published: the figure the target is about.
    Total,
    /// Received → queued: the completing batch's own journal commit (group window + fsync).
    Durable,
    /// Queued → started: waiting for the analysis task (its backlog, and CPU).
    Wait,
    /// Started → analysed: the analysis of the completing input itself.
    Analysis,
    /// Analysed → published: the swing's journal commit (and those of outputs before it from
    /// the same input).
    Journal,
}

impl SwingStage {
    pub const ALL: [SwingStage; 5] = [
        SwingStage::Total,
        SwingStage::Durable,
        SwingStage::Wait,
        SwingStage::Analysis,
        SwingStage::Journal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SwingStage::Total => "total",
            SwingStage::Durable => "durable",
            SwingStage::Wait => "wait",
            SwingStage::Analysis => "analysis",
            SwingStage::Journal => "journal",
        }
    }

    /// This stage of a swing whose input passed `t` and which was published at `published`.
    fn of(self, t: &InputTimes, published: Instant) -> Duration {
        let (from, to) = match self {
            SwingStage::Total => (t.received, published),
            SwingStage::Durable => (t.received, t.queued),
            SwingStage::Wait => (t.queued, t.started),
            SwingStage::Analysis => (t.started, t.analysed),
            SwingStage::Journal => (t.analysed, published),
        };
        to.saturating_duration_since(from)
    }
}

/// What the analysis task shows on `/metrics`: shared by ingest's side of the queue (skips), the
/// task (latencies) and the HTTP handler (reads). Fixed size: five histograms, a few counters.
#[derive(Debug)]
pub struct AnalysisMetrics {
    /// Per published swing, µs, one histogram per [`SwingStage`] (in `SwingStage::ALL` order).
    swing_latency: Mutex<[Histogram<u64>; 5]>,
    /// Batches not offered to the live analysis because its queue was full.
    skipped_batches: AtomicU64,
    /// Inputs (batches, session finishes) handed to the task and not yet fully published.
    pending: AtomicUsize,
}

/// Swing latency figures since the daemon started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SwingLatency {
    /// Swings published (each one recorded once).
    pub swings: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// One reading of [`AnalysisMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AnalysisSnapshot {
    /// End to end ([`SwingStage::Total`]).
    pub swing_latency: SwingLatency,
    /// Per stage, in `SwingStage::ALL` order (the first is the total again).
    pub stages: [SwingLatency; 5],
    pub skipped_batches: u64,
    /// Inputs handed to the task whose results are not all out yet; 0 means caught up.
    pub pending: usize,
}

impl Default for AnalysisMetrics {
    fn default() -> Self {
        let ceiling = LATENCY_CEILING.as_micros() as u64;
        // Constant, valid bounds (1 ≤ low, 2·low ≤ high, digits ≤ 5): construction cannot fail.
        let histogram = |digits| {
            Histogram::new_with_bounds(1, ceiling, digits).expect("valid histogram bounds")
        };
        let histograms = SwingStage::ALL.map(|stage| match stage {
            SwingStage::Total => histogram(LATENCY_DIGITS),
            _ => histogram(STAGE_DIGITS),
        });
        AnalysisMetrics {
            swing_latency: Mutex::new(histograms),
            skipped_batches: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
        }
    }
}

impl AnalysisMetrics {
    /// An input handed to the analysis has all its results out (journaled and live).
    pub fn input_done(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }

    /// One swing published at `published`, from an input that passed the points in `input`.
    pub fn record_swing(&self, input: &InputTimes, published: Instant) {
        self.with_latency(|histograms| {
            for (stage, h) in SwingStage::ALL.iter().zip(histograms) {
                let took = stage.of(input, published);
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                // Clamped into range, so no value is refused and the count stays exact.
                h.saturating_record(micros.max(1));
            }
        });
    }

    pub fn snapshot(&self) -> AnalysisSnapshot {
        let micros = Duration::from_micros;
        let stages = self
            .with_latency(|histograms| {
                histograms.each_ref().map(|h| SwingLatency {
                    swings: h.len(),
                    p50: micros(h.value_at_quantile(0.5)),
                    p99: micros(h.value_at_quantile(0.99)),
                    max: micros(h.max()),
                })
            })
            .unwrap_or_default();
        AnalysisSnapshot {
            swing_latency: stages[0],
            stages,
            skipped_batches: self.skipped_batches.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
        }
    }

    fn with_latency<T>(&self, f: impl FnOnce(&mut [Histogram<u64>; 5]) -> T) -> Option<T> {
        // A poisoned lock means a panic mid-record elsewhere; the figures are then unreliable
        // and are no longer shown rather than shown wrong.
        self.swing_latency.lock().ok().map(|mut h| f(&mut h))
    }
}

/// The ingest side of the analysis queue.
#[derive(Debug, Clone)]
pub struct AnalysisFeed {
    tx: mpsc::Sender<AnalysisInput>,
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
    pub fn finish(&self, device: &str, session_id: &str) {
        let input = AnalysisInput::Finish {
            device: device.to_owned(),
            session_id: session_id.to_owned(),
            requested_at: Instant::now(),
        };
        let (tx, metrics) = (self.tx.clone(), self.metrics.clone());
        metrics.pending.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if tx.send(input).await.is_err() {
                // Closed at shutdown: nothing will analyse it.
                metrics.pending.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }
}

/// What the court's analysis produced.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisOutput {
    Swing(Box<Swing>),
    Summary(Box<SessionSummary>),
    Rally(RallyEvent),
}

/// One configured device as the analysis sees it.
#[derive(Debug, Clone)]
struct DeviceEntry {
    profile: DeviceProfile,
    sensors: BTreeMap<u32, BodyPosition>,
}

/// The court's analysis, sans IO: routes each stored batch to its device's analyser for its
/// session, joins every racket's impacts into rallies, and summarises sessions.
#[derive(Debug)]
pub struct CourtAnalysis {
    settings: AnalysisSettings,
    devices: HashMap<String, DeviceEntry>,
    frames: FrameClock,
    /// Open analysers per device, oldest first.
    sessions: HashMap<String, VecDeque<DeviceAnalyser>>,
    rallies: RallyTracker,
}

impl CourtAnalysis {
    pub fn new(settings: &Settings) -> CourtAnalysis {
        let analysis = settings.analysis.clone();
        let devices = settings
            .devices
            .iter()
            .map(|d| {
                let profile = DeviceProfile {
                    device: d.code.clone(),
                    user: d.user.clone(),
                    mount_radius_m: d.mount_radius_m,
                    acc_full_scale_g: d.acc_full_scale_g,
                    gyro_full_scale_dps: d.gyro_full_scale_dps,
                    positions: d.sensors.values().copied().collect(),
                };
                for warning in profile.warnings() {
                    log::warn!("device `{}`: {warning}", d.code);
                }
                let entry = DeviceEntry {
                    profile,
                    sensors: d.sensors.clone(),
                };
                (d.code.clone(), entry)
            })
            .collect();
        CourtAnalysis {
            rallies: RallyTracker::new(analysis.rally_max_gap_ms, analysis.reorder_window_ms * 2.0),
            settings: analysis,
            devices,
            frames: FrameClock::new(settings.gateway.timezone),
            sessions: HashMap::new(),
        }
    }

    fn analyser(
        &mut self,
        device: &str,
        session_id: &str,
    ) -> Option<(&mut DeviceAnalyser, Option<SessionSummary>)> {
        let entry = self.devices.get(device)?;
        let open = self.sessions.entry(device.to_owned()).or_default();
        let mut evicted = None;
        if !open.iter().any(|a| a.session_id() == session_id) {
            if open.len() >= SESSIONS_PER_DEVICE {
                evicted = open.pop_front().map(|mut old| old.finish());
            }
            open.push_back(DeviceAnalyser::new(
                entry.profile.clone(),
                self.settings.clone(),
                session_id,
            ));
        }
        let analyser = open.iter_mut().find(|a| a.session_id() == session_id)?;
        Some((analyser, evicted))
    }

    /// A stored batch, received at `received_ms` (the anchor for V3.3 time-of-day stamps).
    pub fn handle_batch(&mut self, batch: &SensorBatch, received_ms: i64) -> Vec<AnalysisOutput> {
        let Some(entry) = self.devices.get(&batch.device) else {
            return Vec::new();
        };
        let sensors = entry.sensors.clone();
        let frames = self.frames;
        let samples = samples_of(
            batch,
            |id| sensors.get(&id).copied(),
            |raw| frames.to_unix_ms(raw, received_ms).map(|t| t as f64),
        );
        let mut out = Vec::new();
        let Some((analyser, evicted)) = self.analyser(&batch.device, &batch.session_id) else {
            return out;
        };
        analyser.handle_samples(&samples);
        let mut swings = Vec::new();
        while let Some(AnalysisEvent::Swing(swing)) = analyser.poll_event() {
            swings.push(swing);
        }
        if let Some(summary) = evicted {
            log::warn!(
                "device `{}`: more than {SESSIONS_PER_DEVICE} sessions open at once; summarised `{}` early",
                summary.device,
                summary.session_id
            );
            out.push(AnalysisOutput::Summary(Box::new(summary)));
        }
        for swing in swings {
            if swing.impact {
                self.rallies.handle_impact(&swing.device, swing.t_impact);
            }
            out.push(AnalysisOutput::Swing(Box::new(swing)));
        }
        if let Some(last) = samples.iter().map(|s| s.t_ms).reduce(f64::max) {
            self.rallies.handle_time(last);
        }
        while let Some(event) = self.rallies.poll_event() {
            out.push(AnalysisOutput::Rally(event));
        }
        out
    }

    /// The session's upload is complete: its last swings and its summary.
    pub fn finish(&mut self, device: &str, session_id: &str) -> Vec<AnalysisOutput> {
        let mut out = Vec::new();
        let Some((analyser, evicted)) = self.analyser(device, session_id) else {
            return out;
        };
        let mut summary = analyser.finish();
        let mut swings = Vec::new();
        while let Some(AnalysisEvent::Swing(swing)) = analyser.poll_event() {
            swings.push(swing);
        }
        if let Some(open) = self.sessions.get_mut(device) {
            open.retain(|a| a.session_id() != session_id);
        }
        out.extend(evicted.map(|s| AnalysisOutput::Summary(Box::new(s))));
        for swing in swings {
            if swing.impact {
                self.rallies.handle_impact(&swing.device, swing.t_impact);
            }
            out.push(AnalysisOutput::Swing(Box::new(swing)));
        }
        summary.analysis_result.rallies = Some(self.rallies.stats().clone());
        out.push(AnalysisOutput::Summary(Box::new(summary)));
        out
    }
}

/// What the analysis task runs with (see [`run`]).
pub struct AnalysisTask {
    /// The ingest side is [`AnalysisFeed`].
    pub inputs: mpsc::Receiver<AnalysisInput>,
    pub shutdown: CancellationToken,
    pub ingest: Arc<Ingest>,
    pub journal: Journal,
    pub live: Live,
    pub settings: Settings,
    /// The sessions a restart interrupted.
    pub resume_point: ResumePoint,
    pub metrics: Arc<AnalysisMetrics>,
}

/// The analysis task: first resumes the sessions a restart interrupted (`crate::resume`), then
/// runs until its queue closes or shutdown has drained it.
pub async fn run(task: AnalysisTask) {
    let AnalysisTask {
        inputs: mut rx,
        shutdown,
        ingest,
        journal,
        live,
        settings,
        resume_point,
        metrics,
    } = task;
    let (results, results_rx) = mpsc::channel(RESULTS_QUEUE);
    let publisher = tokio::spawn(crate::publish::run(
        results_rx,
        journal.clone(),
        live,
        ingest.clone(),
        metrics.clone(),
    ));
    let resumed = crate::resume::resume(&settings, &journal, resume_point).await;
    let mut court = resumed.analysis;
    for (device, session_id) in resumed.summarised {
        ingest.session_analysed(&device, &session_id);
    }
    // Results from before the restart have no receipt time: they are not latency samples.
    let _ = results
        .send(Results {
            outputs: resumed.missing,
            times: None,
        })
        .await;
    let mut queue = FairQueue::default();
    loop {
        if queue.is_empty() {
            let input = tokio::select! {
                input = rx.recv() => input,
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
        let _ = results
            .send(Results {
                outputs,
                times: Some(times),
            })
            .await;
    }
    // Everything analysed is journaled and shown before the task ends (shutdown waits for it).
    drop(results);
    let _ = publisher.await;
}

/// The analysis task's backlog, served one input per device in turn. Each device's inputs keep
/// their order (batches, then the session's finish); only devices with a backlog are delayed
/// relative to the rest. Bounded by the feed, which counts everything held here as pending.
#[derive(Debug, Default)]
pub struct FairQueue {
    inputs: HashMap<String, VecDeque<AnalysisInput>>,
    /// Devices with inputs waiting, the next to serve first.
    turns: VecDeque<String>,
}

impl FairQueue {
    pub fn push(&mut self, input: AnalysisInput) {
        let device = match &input {
            AnalysisInput::Batch { batch, .. } => batch.device.as_str(),
            AnalysisInput::Finish { device, .. } => device.as_str(),
        };
        let waiting = self.inputs.entry(device.to_owned()).or_default();
        if waiting.is_empty() {
            self.turns.push_back(device.to_owned());
        }
        waiting.push_back(input);
    }

    /// The oldest input of the device whose turn it is.
    pub fn pop(&mut self) -> Option<AnalysisInput> {
        let device = self.turns.pop_front()?;
        let waiting = self.inputs.get_mut(&device)?;
        let input = waiting.pop_front();
        if waiting.is_empty() {
            self.inputs.remove(&device);
        } else {
            self.turns.push_back(device);
        }
        input
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    pub fn len(&self) -> usize {
        self.inputs.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shuttlegate_core::batch::{BatchForm, CompactBatch};

    fn batch() -> Arc<SensorBatch> {
        batch_of("d")
    }

    fn batch_of(device: &str) -> Arc<SensorBatch> {
        Arc::new(SensorBatch {
            device: device.into(),
            session_id: "s".into(),
            seq: None,
            form: BatchForm::Compact(CompactBatch {
                sensor_id: 4,
                t0: 0,
                rate_hz: 200.0,
                channels: 6,
                samples: vec![0.0; 6],
            }),
        })
    }

    #[tokio::test]
    async fn a_full_queue_skips_batches_and_counts_them() {
        let (feed, mut rx) = AnalysisFeed::new(2);
        for id in 0..5 {
            feed.batch(id, batch(), 0, Instant::now());
        }
        let now = feed.metrics().snapshot();
        assert_eq!(now.skipped_batches, 3);
        assert_eq!(now.pending, 2);
        // The two that fit are the first two, in order.
        for expected in 0..2 {
            match rx.recv().await {
                Some(AnalysisInput::Batch { id, .. }) => assert_eq!(id, expected),
                other => panic!("expected batch {expected}, got {other:?}"),
            }
        }
    }

    /// A swing whose stages took `durable`, `analysis` and `journal`: its input's times and
    /// when it was published.
    fn timeline(durable: Duration, analysis: Duration, journal: Duration) -> (InputTimes, Instant) {
        let received = Instant::now();
        let queued = received + durable;
        let started = queued + analysis / 2;
        let analysed = queued + analysis;
        let input = InputTimes {
            received,
            queued,
            started,
            analysed,
        };
        (input, analysed + journal)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test]
    async fn batches_taken_off_the_channel_still_count_against_the_bound_until_analysed() {
        let (feed, mut rx) = AnalysisFeed::new(2);
        feed.batch(0, batch(), 0, Instant::now());
        feed.batch(1, batch(), 0, Instant::now());
        // The task has drained the channel into its fair queue but analysed nothing yet.
        let mut queue = FairQueue::default();
        while let Ok(input) = rx.try_recv() {
            queue.push(input);
        }
        feed.batch(2, batch(), 0, Instant::now());
        assert_eq!(queue.len(), 2);
        assert_eq!(feed.metrics().snapshot().skipped_batches, 1);
        assert!(rx.try_recv().is_err(), "the third batch was not queued");
    }

    fn input(device: &str, id: u64) -> AnalysisInput {
        let now = Instant::now();
        AnalysisInput::Batch {
            id,
            batch: batch_of(device),
            received_ms: 0,
            received_at: now,
            queued_at: now,
        }
    }

    /// (device, batch id) or (device, u64::MAX) for a finish.
    fn served(queue: &mut FairQueue) -> Vec<(String, u64)> {
        std::iter::from_fn(|| queue.pop()).map(id_of).collect()
    }

    #[test]
    fn a_flooding_device_waits_its_turn_behind_one_input_of_each_other_device() {
        let mut queue = FairQueue::default();
        for id in 0..3 {
            queue.push(input("flood", id));
        }
        queue.push(input("player-1", 10));
        queue.push(input("player-2", 20));
        queue.push(AnalysisInput::Finish {
            device: "flood".into(),
            session_id: "s".into(),
            requested_at: Instant::now(),
        });
        let order: Vec<(&str, u64)> = served(&mut queue)
            .iter()
            .map(|(d, id)| (if d == "flood" { "flood" } else { "player" }, *id))
            .collect();
        assert_eq!(
            order,
            [
                ("flood", 0),
                ("player", 10),
                ("player", 20),
                ("flood", 1),
                ("flood", 2),
                ("flood", u64::MAX),
            ]
        );
        assert!(queue.is_empty());
    }

    fn id_of(input: AnalysisInput) -> (String, u64) {
        match input {
            AnalysisInput::Batch { id, batch, .. } => (batch.device.clone(), id),
            AnalysisInput::Finish { device, .. } => (device, u64::MAX),
        }
    }

    proptest::proptest! {
        #[test]
        fn every_input_is_served_once_and_each_device_in_its_own_order(
            ops in proptest::collection::vec(proptest::option::of(0usize..4), 0..200)
        ) {
            let mut queue = FairQueue::default();
            let mut pushed = Vec::new();
            let mut served = Vec::new();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Some(device) => {
                        let device = format!("d{device}");
                        queue.push(input(&device, i as u64));
                        pushed.push((device, i as u64));
                    }
                    None => served.extend(queue.pop().map(id_of)),
                }
                proptest::prop_assert_eq!(queue.len() + served.len(), pushed.len());
                proptest::prop_assert_eq!(queue.is_empty(), served.len() == pushed.len());
            }
            served.extend(std::iter::from_fn(|| queue.pop()).map(id_of));
            // Each device's inputs come out in the order they went in, and all of them.
            for device in ["d0", "d1", "d2", "d3"] {
                let of = |v: &[(String, u64)]| -> Vec<u64> {
                    v.iter().filter(|(d, _)| d == device).map(|(_, id)| *id).collect()
                };
                proptest::prop_assert_eq!(of(&served), of(&pushed));
            }
        }
    }

    #[test]
    fn swing_latency_quantiles_come_from_every_recorded_swing() {
        let metrics = AnalysisMetrics::default();
        for n in 1..=100 {
            let (input, published) = timeline(ms(n), Duration::ZERO, Duration::ZERO);
            metrics.record_swing(&input, published);
        }
        let latency = metrics.snapshot().swing_latency;
        assert_eq!(latency.swings, 100);
        // 0.1 % resolution: each quantile within 0.1 % of the exact order statistic.
        let near = |d: Duration, ms: f64| (d.as_secs_f64() * 1e3 - ms).abs() <= ms * 1e-3;
        assert!(near(latency.p50, 50.0), "{latency:?}");
        assert!(near(latency.p99, 99.0), "{latency:?}");
        assert!(near(latency.max, 100.0), "{latency:?}");
    }

    #[test]
    fn each_stage_is_timed_between_its_own_two_points() {
        let metrics = AnalysisMetrics::default();
        let (input, published) = timeline(ms(3), ms(40), ms(500));
        metrics.record_swing(&input, published);
        let now = metrics.snapshot();
        let max_ms = |stage: SwingStage| {
            let i = SwingStage::ALL.iter().position(|s| *s == stage).unwrap();
            now.stages[i].max.as_secs_f64() * 1e3
        };
        // 1 % resolution on the stages, 0.1 % on the total.
        let near = |got: f64, want: f64, rel: f64| (got - want).abs() <= want * rel;
        assert!(near(max_ms(SwingStage::Durable), 3.0, 0.01), "{now:?}");
        assert!(near(max_ms(SwingStage::Wait), 20.0, 0.01), "{now:?}");
        assert!(near(max_ms(SwingStage::Analysis), 20.0, 0.01), "{now:?}");
        assert!(near(max_ms(SwingStage::Journal), 500.0, 0.01), "{now:?}");
        assert!(near(max_ms(SwingStage::Total), 543.0, 0.001), "{now:?}");
        assert_eq!(now.stages[0], now.swing_latency);
    }

    #[test]
    fn latencies_beyond_the_ceiling_and_below_a_microsecond_are_still_counted() {
        let metrics = AnalysisMetrics::default();
        let (input, published) = timeline(Duration::from_secs(3600), ms(0), ms(0));
        metrics.record_swing(&input, published);
        let (input, published) = timeline(Duration::ZERO, ms(0), ms(0));
        metrics.record_swing(&input, published);
        let latency = metrics.snapshot().swing_latency;
        assert_eq!(latency.swings, 2);
        let max = latency.max.as_secs_f64();
        assert!((max - LATENCY_CEILING.as_secs_f64()).abs() < 0.1, "{max}");
    }
}
