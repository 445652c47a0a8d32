//! What the analysis pipeline shows on `/metrics`: how long after the batch that completes a
//! swing the swing is out (journaled and on the live broadcast), stage by stage, how many
//! batches the live analysis skipped because its queue was full, and what the device
//! analysers took in and set aside (samples late or invalid, bursts that were no stroke).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shuttlegate_core::analysis::{DeviceStats, Stroke};

/// Longest swing latency the histograms tell apart; anything slower is recorded as this.
pub(super) const LATENCY_CEILING: Duration = Duration::from_secs(60);
/// Significant digits of the end-to-end latency histogram: 0.1 % resolution in ~140 KiB.
const LATENCY_DIGITS: u8 = 3;
/// Significant digits of the per-stage histograms: 1 % resolution in ~20 KiB each; they
/// explain the end-to-end figure, they are not the figure.
const STAGE_DIGITS: u8 = 2;

/// When the input that produced some results passed each point before the journal (for the
/// swing latency; results resumed after a restart have no receipt time, so none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputTimes {
    /// Ingest received the batch (or the `upload_complete` whose flush produced the results).
    pub received: std::time::Instant,
    /// The batch was durable and handed to the analysis queue.
    pub queued: std::time::Instant,
    /// The analysis task took it from its queue.
    pub started: std::time::Instant,
    /// The analysis of that input was done (all its outputs known).
    pub analysed: std::time::Instant,
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
    pub(super) skipped_batches: AtomicU64,
    /// Inputs (batches, session finishes) handed to the task and not yet fully published.
    pub(super) pending: AtomicUsize,
    /// Swings published, per stroke (in `Stroke::ALL` order), resumed ones included.
    strokes: [AtomicU64; Stroke::ALL.len()],
    /// The device analysers' counters, summed over every session since the daemon started.
    analysed: Mutex<DeviceStats>,
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
    /// Swings published per stroke, in `Stroke::ALL` order.
    pub strokes: [u64; Stroke::ALL.len()],
    /// What the device analysers took in and set aside, every session since the start (the
    /// resume's replay of unfinished sessions included).
    pub analysed: DeviceStats,
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
            strokes: Default::default(),
            analysed: Mutex::default(),
        }
    }
}

impl AnalysisMetrics {
    /// An input handed to the analysis has all its results out (journaled and live).
    pub fn input_done(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }

    /// One swing of `stroke` published (journaled and live).
    pub fn count_stroke(&self, stroke: Stroke) {
        let slot = Stroke::ALL.iter().position(|s| *s == stroke).unwrap_or(0);
        self.strokes[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Counters the court's analysis gathered since it was last asked
    /// (`CourtAnalysis::take_stats`).
    pub fn add_analysed(&self, counted: DeviceStats) {
        if counted == DeviceStats::default() {
            return;
        }
        // Poisoned only by a panic mid-add elsewhere; the sums are then kept as they are.
        if let Ok(mut total) = self.analysed.lock() {
            *total += counted;
        }
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
            strokes: std::array::from_fn(|i| self.strokes[i].load(Ordering::Relaxed)),
            analysed: self.analysed.lock().map(|t| *t).unwrap_or_default(),
        }
    }

    fn with_latency<T>(&self, f: impl FnOnce(&mut [Histogram<u64>; 5]) -> T) -> Option<T> {
        // A poisoned lock means a panic mid-record elsewhere; the figures are then unreliable
        // and are no longer shown rather than shown wrong.
        self.swing_latency.lock().ok().map(|mut h| f(&mut h))
    }
}
