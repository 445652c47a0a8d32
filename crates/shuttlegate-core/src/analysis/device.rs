//! The per-device streaming analyser: samples in (any order), swings out as soon as they are
//! certain, a summary at the end.
//!
//! Each node's samples go through a [`NodeStream`] (reorder buffer + frontier). The racket
//! node (or the wrist node on a device without one) drives a two-threshold swing detector over
//! its released samples. A detected swing waits in a short queue until every chain node the
//! device carries has released samples past the swing's window (or has fallen a reorder
//! window behind, i.e. lost them), then is measured in one go. Memory per device is bounded:
//! node buffers keep a fixed history behind the frontier plus a hard cap, and the pending and
//! event queues are capped.

use std::collections::{BTreeMap, VecDeque};

use crate::batch::BodyPosition;

use super::body_burst::{self, BodyBurstDetector, Candidate, RacketSpan, covered, is_a_sequence};
use super::chain::{self, measure_chain};
use super::condition::{NodeConditioner, SpanQuality};
use super::confidence::{Confidences, assess};
use super::measure::{Measured, NoStroke, SpeedReference, SwingWindow, boundaries, measure};
use super::quality::{ANALYSIS_VERSION, Flag, Flags};
use super::stream::NodeStream;
use super::summary::SummaryAccumulator;
use super::{
    AnalysisSettings, Chain, ContactReading, DeviceProfile, NodeSample, SessionSummary, Stroke,
    Swing,
};

/// Primary-node history kept before a swing's trigger for the gravity anchor, ms.
const PRE_TRIGGER_MS: f64 = 600.0;
/// History kept behind each node's frontier: the pre-trigger span plus the chain window.
const HISTORY_MS: f64 = PRE_TRIGGER_MS + chain::BEFORE_IMPACT_MS + 300.0;
/// Primary-node data kept after a swing's end: the racket is still again there, and gravity
/// anchors the attitude from that side too (the better anchor when clipping hid more
/// rotation before contact than after).
const POST_SWING_MS: f64 = 300.0;
/// A swing longer than this is cut (a player does not swing for over a second; something is
/// shaking the racket).
const MAX_SWING_MS: f64 = 1200.0;
/// A gap in the primary node's data longer than this ends a swing in progress.
const MAX_GAP_MS: f64 = 200.0;
/// Swings waiting for chain data; beyond this the oldest is measured with what there is.
const MAX_PENDING: usize = 16;
/// Events not yet polled; beyond this the oldest are dropped (and counted).
const MAX_EVENTS: usize = 1024;
/// Racket bursts kept to tell whether a body burst is a racket swing's.
const MAX_RACKET_SPANS: usize = 32;
/// Motion marks (footwork, rotation) kept for the serve test.
const MAX_MOTION_MARKS: usize = 512;
/// Footwork: |‖a‖ − 1 g| above this between swings (a step lands with 0.3–1 g).
const FOOTWORK_G: f64 = 0.15;
/// The serve test looks at `[trigger − gap − serve_quiet_ms, trigger − gap]`: the gap skips
/// the backswing right before the trigger.
const SERVE_TEST_GAP_MS: f64 = 450.0;

/// After a swing, rotation against the swing's direction starting within this time is its
/// recovery (players bring the racket back within ~0.3 s; their next stroke is ≥ 0.8 s away).
const RECOVERY_MS: f64 = 350.0;

/// A recovery turns the racket back slower than the swing: under this share of its peak.
const RECOVERY_PEAK_SHARE: f64 = 0.6;

/// A backswing is the mirror of a recovery: the racket turned back, against the stroke, just
/// before it, slower than it (under [`RECOVERY_PEAK_SHARE`] of its peak). The forward swing
/// follows the backswing's reversal without a pause — the stretch-shortening cycle's benefit
/// fades within a few hundred ms of the stretch (Wilson, Elliott & Wood 1991, Med Sci Sports
/// Exerc 23(3)) — so a burst that the opposite, faster one triggers within this time after
/// its end is that stroke's backswing, ms. (The end is marked where the rate first fell under
/// `swing_end_dps`; the forward swing's trigger comes as it rises past `swing_start_dps`.)
const BACKSWING_GAP_MS: f64 = 250.0;

/// After a swing the player brings the racket back to the ready position and the arm settles:
/// a slow turn, either way, that can come well after the recovery's [`RECOVERY_MS`] (a
/// WitMotion armband's smashes are followed by one 360–1900 ms after their end). A burst that
/// starts within this time after a swing's end, meets no shuttle, and turns under
/// [`SETTLE_PEAK_SHARE`] of that swing's peak is that swing's settling, not a second stroke, ms.
/// Physics: the same player's next stroke waits for the shuttle to cross the net and come
/// back (a badminton shot flies 0.5–1.5 s; a smash returned by a block, the fastest exchange a
/// smasher meets, still takes ≥ 0.8 s contact to contact), and a stroke meets the shuttle.
const SETTLE_MS: f64 = 1000.0;

/// A settling turns the racket under this share of the swing it follows. A stroke made right
/// after another is played at a stroke's speed; the return to ready is a positioning movement
/// (the ChoongGao armband's: 8–34 % of the swing before it).
const SETTLE_PEAK_SHARE: f64 = 0.35;

/// A settling can come later still: an arm that is lowered, shaken loose or walked back to
/// its place after a full stroke turns the node slowly seconds after it (the ChoongGao
/// armband's smashes and clears are followed by one 1.5–2.9 s after their end, at 8–10 % of
/// the stroke's peak, meeting nothing; its drops by one at 18–20 %, which this rule leaves).
/// Within this time after a swing's end a burst that meets no shuttle and turns under
/// [`LATE_SETTLE_PEAK_SHARE`] of that swing's peak is still its settling, ms. The same
/// player's next stroke can come this soon (a rally's shots alternate about once a second),
/// but it meets its shuttle or is played well above an eighth of a full stroke's rate.
const LATE_SETTLE_MS: f64 = 3000.0;

/// A late settling turns the racket under this share of the swing it follows. Chosen with the
/// ChoongGao set in view (so that set is not independent of it): at 0.25 the independent
/// simulator's tuning seeds (0–99 × 120 s, 100 Hz) lost 5 nets and a serve played within 3 s
/// after a faster swing without a contact read; at 0.12 they lose none.
const LATE_SETTLE_PEAK_SHARE: f64 = 0.12;

/// What the analyser emits.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisEvent {
    Swing(Swing),
}

/// What the detector decided about one burst of the primary node. Diagnostics: the
/// detection breakdowns read why a labelled stroke was not found (`eval`'s swing trace).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BurstFate {
    /// Measured and emitted as a swing.
    Swing,
    /// Turned away by a stroke rule (the wide-pulse rule, or handling on a racket node).
    NoStroke(NoStroke),
    /// A turn between the detector's two thresholds that met no shuttle.
    SoftUnmet,
    /// The previous swing's recovery.
    Recovery,
    /// The next stroke's backswing.
    Backswing,
    /// The previous swing's settling within [`SETTLE_MS`].
    Settling,
    /// The previous swing's late settling within [`LATE_SETTLE_MS`].
    LateSettling,
    /// Too few samples in its window to measure.
    TooFewSamples,
}

impl BurstFate {
    /// The rule's name, one word, for the diagnostics' lines.
    pub fn name(self) -> &'static str {
        match self {
            BurstFate::Swing => "swing",
            BurstFate::NoStroke(NoStroke::WidePulse { .. }) => "wide_pulse",
            BurstFate::NoStroke(NoStroke::Handling) => "handling",
            BurstFate::SoftUnmet => "soft_unmet",
            BurstFate::Recovery => "recovery",
            BurstFate::Backswing => "backswing",
            BurstFate::Settling => "settling",
            BurstFate::LateSettling => "late_settling",
            BurstFate::TooFewSamples => "too_few_samples",
        }
    }
}

/// One burst of the primary node and what became of it (see [`BurstFate`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstDecision {
    pub trigger_t: f64,
    pub end_t: f64,
    /// Its fastest |ω⊥| as the detector read it (not through clipping), °/s.
    pub peak_dps: f64,
    pub fate: BurstFate,
}

/// Counters for the admin view and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub samples: u64,
    pub late: u64,
    pub duplicates: u64,
    pub invalid: u64,
    pub overflowed: u64,
    pub events_dropped: u64,
    pub swings: u64,
    /// Bursts of rotation that crossed the trigger but had no stroke's shape.
    pub rejected_bursts: u64,
    /// Bursts dropped as a swing's recovery.
    pub recoveries: u64,
    /// Bursts dropped as the next swing's backswing.
    pub backswings: u64,
    /// Bursts dropped as the previous swing's settling (the racket brought back to ready).
    pub settlings: u64,
    /// Body-node bursts that no racket swing covered and whose segments did not peak in a
    /// proximal-to-distal sequence (no chain-only swing).
    pub rejected_body_bursts: u64,
}

impl DeviceStats {
    /// Each counter of `self` and `other` combined by `f`. Destructured field by field, so a
    /// new counter cannot be left out of the sums below without a compile error.
    fn combine(self, other: DeviceStats, f: impl Fn(u64, u64) -> u64) -> DeviceStats {
        let DeviceStats {
            samples,
            late,
            duplicates,
            invalid,
            overflowed,
            events_dropped,
            swings,
            rejected_bursts,
            recoveries,
            backswings,
            settlings,
            rejected_body_bursts,
        } = self;
        DeviceStats {
            samples: f(samples, other.samples),
            late: f(late, other.late),
            duplicates: f(duplicates, other.duplicates),
            invalid: f(invalid, other.invalid),
            overflowed: f(overflowed, other.overflowed),
            events_dropped: f(events_dropped, other.events_dropped),
            swings: f(swings, other.swings),
            rejected_bursts: f(rejected_bursts, other.rejected_bursts),
            recoveries: f(recoveries, other.recoveries),
            backswings: f(backswings, other.backswings),
            settlings: f(settlings, other.settlings),
            rejected_body_bursts: f(rejected_body_bursts, other.rejected_body_bursts),
        }
    }
}

impl std::ops::AddAssign for DeviceStats {
    fn add_assign(&mut self, other: DeviceStats) {
        *self = self.combine(other, u64::saturating_add);
    }
}

/// What an analyser counted between two readings (counters only grow, so never negative).
impl std::ops::Sub for DeviceStats {
    type Output = DeviceStats;

    fn sub(self, earlier: DeviceStats) -> DeviceStats {
        self.combine(earlier, u64::saturating_sub)
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle,
    Active {
        trigger_t: f64,
        below_since: Option<f64>,
        quiet_before: bool,
        /// Direction of ω⊥ (y, z) at the swing's fastest sample so far, and that speed.
        peak_dir: [f64; 2],
        peak: f64,
        /// Started against the previous swing just after it: its peak, to tell a recovery
        /// (much slower) from a real stroke when the swing is measured.
        recovery_of: Option<f64>,
    },
    /// Just after a swing: rotation the other way is the racket coming back, not a stroke.
    Recovery {
        until_t: f64,
        swing_dir: [f64; 2],
        swing_peak: f64,
    },
}

/// A burst of the primary node's rotation, ended, waiting for its decision.
#[derive(Debug, Clone, Copy)]
struct Pending {
    trigger_t: f64,
    end_t: f64,
    quiet_before: bool,
    recovery_of: Option<f64>,
    /// Direction of ω⊥ (y, z) at the burst's fastest sample, and that speed, °/s.
    dir: [f64; 2],
    peak: f64,
    /// A turn that never reached the trigger ([`SoftBurst`]): a stroke only if it met the
    /// shuttle.
    soft: bool,
}

/// A turn of the racket node between the detector's two thresholds: above `swing_end_dps`
/// but not (yet) above `swing_start_dps`. Most are nothing — the racket carried, a backswing's
/// foot, a waggle — but a net shot or a low serve can be played this slowly: the racket
/// pushes the shuttle over the net at a few m/s, and a node near the handle turns at
/// 150–220 °/s (on the independent simulator's tuning seeds at 100 Hz, 54 of 67 swings missed
/// under the trigger met the shuttle with a visible transient). Such a turn is a stroke only
/// if the contact search finds the shuttle's transient in it (measure/contact.rs): a stroke's
/// own evidence that repositioning never has. Racket nodes only, as the other contact rule: a
/// wrist standing in feels the ring damped among the arm's own jolts.
#[derive(Debug, Clone, Copy)]
struct SoftBurst {
    start_t: f64,
    below_since: Option<f64>,
    quiet_before: bool,
    dir: [f64; 2],
    peak: f64,
}

/// The swing last measured on the primary node: what a later burst is read against to tell
/// its settling from a new stroke.
#[derive(Debug, Clone, Copy)]
struct LastSwing {
    end_t: f64,
    /// Its contact instant: a swing within a rally's reach of it is no serve
    /// (measure/classify.rs, `opens_rally`).
    t_impact: f64,
    /// Its peak |ω⊥| through clipping, °/s.
    peak_dps: f64,
}

/// One device's analyser for one session.
#[derive(Debug)]
pub struct DeviceAnalyser {
    profile: DeviceProfile,
    settings: AnalysisSettings,
    session_id: String,
    nodes: [NodeStream; 4],
    /// Each node's conditioning (conditioned as released, in time order).
    conditioners: [NodeConditioner; 4],
    primary: Option<BodyPosition>,
    phase: Phase,
    last_primary_t: Option<f64>,
    motion: VecDeque<f64>,
    pending: VecDeque<Pending>,
    /// A turn between the two thresholds in progress while the detector is idle.
    soft: Option<SoftBurst>,
    last_swing: Option<LastSwing>,
    /// The body node whose bursts may be chain-only swings (the most distal body node that is
    /// not the primary), its detector, its bursts waiting for a decision, and the recent
    /// racket bursts that may cover them.
    body: Option<BodyPosition>,
    body_detector: BodyBurstDetector,
    body_candidates: VecDeque<Candidate>,
    racket_spans: VecDeque<RacketSpan>,
    events: VecDeque<AnalysisEvent>,
    summary: SummaryAccumulator,
    stats: DeviceStats,
    /// The racket speed of this device's player's full swings, from the swings measured so
    /// far: the classifier reads a swing's speed against it (measure/classify.rs).
    speeds: SpeedReference,
    first_t: Option<f64>,
    last_t: Option<f64>,
    /// Every burst's decision, kept only when asked for ([`DeviceAnalyser::keep_burst_log`]).
    burst_log: Option<Vec<BurstDecision>>,
}

/// Burst decisions a log keeps at most: hours of play (a stroke's bursts every second or
/// so), so that a log asked for and never read stays bounded.
pub const BURST_LOG_CAP: usize = 1 << 16;

fn slot(p: BodyPosition) -> usize {
    match p {
        BodyPosition::Waist => 0,
        BodyPosition::Shoulder => 1,
        BodyPosition::Wrist => 2,
        BodyPosition::Racket => 3,
    }
}

impl DeviceAnalyser {
    pub fn new(
        profile: DeviceProfile,
        settings: AnalysisSettings,
        session_id: impl Into<String>,
    ) -> Self {
        let primary = if profile.carries(BodyPosition::Racket) {
            Some(BodyPosition::Racket)
        } else if profile.carries(BodyPosition::Wrist) {
            Some(BodyPosition::Wrist)
        } else {
            None
        };
        // A wrist node standing in for a missing racket node gives estimated speeds.
        let wrist_primary = primary == Some(BodyPosition::Wrist);
        let conditioners = BodyPosition::ALL
            .map(|p| NodeConditioner::new(&profile, p, wrist_primary && p == BodyPosition::Wrist));
        let body = [
            BodyPosition::Wrist,
            BodyPosition::Shoulder,
            BodyPosition::Waist,
        ]
        .into_iter()
        .find(|&p| profile.carries(p) && Some(p) != primary);
        DeviceAnalyser {
            body,
            body_detector: BodyBurstDetector::default(),
            body_candidates: VecDeque::new(),
            racket_spans: VecDeque::new(),
            profile,
            settings,
            session_id: session_id.into(),
            nodes: Default::default(),
            conditioners,
            primary,
            phase: Phase::Idle,
            last_primary_t: None,
            motion: VecDeque::new(),
            pending: VecDeque::new(),
            soft: None,
            last_swing: None,
            events: VecDeque::new(),
            summary: SummaryAccumulator::default(),
            stats: DeviceStats::default(),
            speeds: SpeedReference::default(),
            first_t: None,
            last_t: None,
            burst_log: None,
        }
    }

    /// Keeps every burst's decision from now on, up to [`BURST_LOG_CAP`] (diagnostics for the
    /// evaluation; the daemon never asks).
    pub fn keep_burst_log(&mut self) {
        self.burst_log.get_or_insert_with(Vec::new);
    }

    /// The bursts decided since [`keep_burst_log`](Self::keep_burst_log), oldest first.
    pub fn burst_log(&self) -> &[BurstDecision] {
        self.burst_log.as_deref().unwrap_or(&[])
    }

    fn log_burst(&mut self, p: &Pending, fate: BurstFate) {
        if let Some(log) = self.burst_log.as_mut().filter(|l| l.len() < BURST_LOG_CAP) {
            log.push(BurstDecision {
                trigger_t: p.trigger_t,
                end_t: p.end_t,
                peak_dps: p.peak,
                fate,
            });
        }
    }

    /// The session this analyser is for.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Feeds samples (any order, any node of this device).
    pub fn handle_samples(&mut self, samples: &[NodeSample]) {
        for s in samples {
            self.stats.samples += 1;
            if self.profile.carries(s.position) {
                self.nodes[slot(s.position)].insert(*s);
            } else {
                self.stats.invalid += 1;
            }
        }
        self.release(self.settings.reorder_window_ms);
        self.finalise_ready(false);
        self.trim();
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<AnalysisEvent> {
        self.events.pop_front()
    }

    /// Flushes everything (end of session) and returns the summary. Events produced by the
    /// flush are still available from [`poll_event`](Self::poll_event).
    pub fn finish(&mut self) -> SessionSummary {
        for k in 0..4 {
            let mut released = Vec::new();
            let conditioner = &mut self.conditioners[k];
            self.nodes[k].flush(|s| {
                conditioner.condition(s);
                released.push(*s);
            });
            self.take_released(k, &released);
        }
        if let Some(c) = self.body_detector.flush() {
            self.push_candidate(c);
        }
        if let Phase::Active {
            trigger_t,
            quiet_before,
            peak_dir,
            peak,
            recovery_of,
            ..
        } = self.phase
            && let Some(t) = self.last_primary_t
        {
            let p = Pending {
                trigger_t,
                end_t: t,
                quiet_before,
                recovery_of,
                dir: peak_dir,
                peak,
                soft: false,
            };
            self.end_swing(p);
        }
        self.finalise_ready(true);
        let span = match (self.first_t, self.last_t) {
            (Some(a), Some(b)) => (b - a) / 1000.0,
            _ => 0.0,
        };
        let stats = self.stats();
        let dropped = stats.late + stats.duplicates + stats.invalid + stats.overflowed;
        SessionSummary {
            device: self.profile.device.clone(),
            user: self.profile.user.clone(),
            session_id: self.session_id.clone(),
            analysis_version: ANALYSIS_VERSION.to_string(),
            confidence: self.summary.confidence(),
            flags: self.summary.flag_counts(),
            analysis_result: self.summary.result(&self.settings, span, dropped),
        }
    }

    pub fn stats(&self) -> DeviceStats {
        let mut s = self.stats;
        for n in &self.nodes {
            s.late += n.late;
            s.duplicates += n.duplicates;
            s.invalid += n.invalid;
            s.overflowed += n.overflowed;
        }
        s
    }

    /// Samples currently buffered over all nodes (bounded; for tests and metrics).
    pub fn buffered_samples(&self) -> usize {
        self.nodes.iter().map(NodeStream::len).sum::<usize>() + self.motion.len()
    }

    fn release(&mut self, window: f64) {
        for k in 0..4 {
            let mut released = Vec::new();
            let conditioner = &mut self.conditioners[k];
            self.nodes[k].release(window, |s| {
                conditioner.condition(s);
                released.push(*s);
            });
            self.take_released(k, &released);
        }
    }

    /// Samples node `k` released, in time order: through the racket detector if it is the
    /// primary node, through the body-burst detector if it is the body node.
    fn take_released(&mut self, k: usize, released: &[NodeSample]) {
        if Some(k) == self.primary.map(slot) {
            for s in released {
                self.step(s);
            }
        }
        if Some(k) == self.body.map(slot) {
            for s in released {
                if let Some(c) = self.body_detector.step(s, &self.settings) {
                    self.push_candidate(c);
                }
            }
        }
        self.note_times(released);
    }

    /// Queues a body burst for its decision; beyond the cap the oldest is decided with what
    /// there is.
    fn push_candidate(&mut self, c: Candidate) {
        self.body_candidates.push_back(c);
        while self.body_candidates.len() > MAX_PENDING {
            if let Some(oldest) = self.body_candidates.pop_front() {
                self.decide_body_burst(oldest);
            }
        }
    }

    fn note_times(&mut self, released: &[NodeSample]) {
        if let (Some(a), Some(b)) = (released.first(), released.last()) {
            self.first_t = Some(self.first_t.map_or(a.t_ms, |f| f.min(a.t_ms)));
            self.last_t = Some(self.last_t.map_or(b.t_ms, |l| l.max(b.t_ms)));
        }
    }

    /// One released primary sample through the swing detector.
    fn step(&mut self, s: &NodeSample) {
        let perp = f64::from(s.gyro[1]).hypot(f64::from(s.gyro[2]));
        let gap = self.last_primary_t.map_or(0.0, |t| s.t_ms - t);
        let prev_t = self.last_primary_t;
        self.last_primary_t = Some(s.t_ms);
        // Every phase marks motion: a swing, its recovery and footwork all say "in a rally".
        self.mark_motion(s);
        if !matches!(self.phase, Phase::Idle) {
            // Within a swing or its recovery, a slow turn is that swing's.
            self.soft = None;
        }
        match self.phase {
            Phase::Idle => {
                self.idle_step(s, perp, None);
                if matches!(self.phase, Phase::Idle) {
                    self.soft_step(s, perp, prev_t.filter(|_| gap > MAX_GAP_MS));
                } else {
                    // It reached the trigger: the detector's own burst from here.
                    self.soft = None;
                }
            }
            Phase::Recovery {
                until_t,
                swing_dir,
                swing_peak,
            } => {
                if s.t_ms > until_t {
                    self.phase = Phase::Idle;
                    self.idle_step(s, perp, None);
                } else {
                    let dot =
                        swing_dir[0] * f64::from(s.gyro[1]) + swing_dir[1] * f64::from(s.gyro[2]);
                    self.idle_step(s, perp, (dot < 0.0).then_some(swing_peak));
                }
            }
            Phase::Active {
                trigger_t,
                below_since,
                quiet_before,
                peak_dir,
                peak,
                recovery_of,
            } => {
                let pending = |end_t, dir, peak| Pending {
                    trigger_t,
                    end_t,
                    quiet_before,
                    recovery_of,
                    dir,
                    peak,
                    soft: false,
                };
                if gap > MAX_GAP_MS {
                    let end_t = prev_t.unwrap_or(s.t_ms);
                    self.end_swing(pending(end_t, peak_dir, peak));
                    return;
                }
                let (peak_dir, peak) = if perp > peak {
                    (
                        [f64::from(s.gyro[1]) / perp, f64::from(s.gyro[2]) / perp],
                        perp,
                    )
                } else {
                    (peak_dir, peak)
                };
                let below_since = if perp < self.settings.swing_end_dps {
                    Some(below_since.unwrap_or(s.t_ms))
                } else {
                    None
                };
                let held =
                    below_since.is_some_and(|b| s.t_ms - b >= self.settings.swing_end_hold_ms);
                if held || s.t_ms - trigger_t > MAX_SWING_MS {
                    let end_t = below_since.unwrap_or(s.t_ms);
                    self.end_swing(pending(end_t, peak_dir, peak));
                } else {
                    self.phase = Phase::Active {
                        trigger_t,
                        below_since,
                        quiet_before,
                        peak_dir,
                        peak,
                        recovery_of,
                    };
                }
            }
        }
    }

    /// One idle sample through the tracker of turns between the two thresholds
    /// ([`SoftBurst`]), on a racket node. A turn that ends (held under `swing_end_dps` for
    /// `swing_end_hold_ms`, or cut as a swing is) without reaching the trigger waits for its
    /// decision as any burst does.
    /// `gap_from`: the previous sample's time when a gap in the data came before this one
    /// (a gap ends a turn, as it ends a swing).
    fn soft_step(&mut self, s: &NodeSample, perp: f64, gap_from: Option<f64>) {
        if self.primary != Some(BodyPosition::Racket) {
            return;
        }
        if let (Some(b), Some(end_t)) = (self.soft, gap_from) {
            self.end_soft(b, end_t);
        }
        let Some(mut b) = self.soft else {
            if perp > self.settings.swing_end_dps {
                self.soft = Some(SoftBurst {
                    start_t: s.t_ms,
                    below_since: None,
                    quiet_before: self.quiet_before(s.t_ms),
                    dir: [f64::from(s.gyro[1]) / perp, f64::from(s.gyro[2]) / perp],
                    peak: perp,
                });
            }
            return;
        };
        if perp > b.peak {
            b.dir = [f64::from(s.gyro[1]) / perp, f64::from(s.gyro[2]) / perp];
            b.peak = perp;
        }
        b.below_since = if perp < self.settings.swing_end_dps {
            Some(b.below_since.unwrap_or(s.t_ms))
        } else {
            None
        };
        let held = b
            .below_since
            .is_some_and(|t| s.t_ms - t >= self.settings.swing_end_hold_ms);
        if held || s.t_ms - b.start_t > MAX_SWING_MS {
            self.end_soft(b, b.below_since.unwrap_or(s.t_ms));
        } else {
            self.soft = Some(b);
        }
    }

    /// A turn between the thresholds ended at `end_t`: it waits for its decision.
    fn end_soft(&mut self, b: SoftBurst, end_t: f64) {
        self.soft = None;
        self.push_pending(Pending {
            trigger_t: b.start_t,
            end_t,
            quiet_before: b.quiet_before,
            recovery_of: None,
            dir: b.dir,
            peak: b.peak,
            soft: true,
        });
    }

    fn idle_step(&mut self, s: &NodeSample, perp: f64, recovery_of: Option<f64>) {
        if perp > self.settings.swing_start_dps {
            let quiet_before = self.quiet_before(s.t_ms);
            let dir = [f64::from(s.gyro[1]) / perp, f64::from(s.gyro[2]) / perp];
            self.phase = Phase::Active {
                trigger_t: s.t_ms,
                below_since: None,
                quiet_before,
                peak_dir: dir,
                peak: perp,
                recovery_of,
            };
        }
    }

    fn end_swing(&mut self, p: Pending) {
        self.phase = Phase::Recovery {
            until_t: p.end_t + RECOVERY_MS,
            swing_dir: p.dir,
            swing_peak: p.peak,
        };
        self.push_pending(p);
    }

    fn mark_motion(&mut self, s: &NodeSample) {
        let a = f64::from(s.acc[0])
            .hypot(f64::from(s.acc[1]))
            .hypot(f64::from(s.acc[2]));
        if (a - 1.0).abs() > FOOTWORK_G && self.motion.back().is_none_or(|&t| s.t_ms - t >= 10.0) {
            self.motion.push_back(s.t_ms);
        }
        let horizon = s.t_ms - (SERVE_TEST_GAP_MS + self.settings.serve_quiet_ms + 1000.0);
        while self.motion.front().is_some_and(|&t| t < horizon)
            || self.motion.len() > MAX_MOTION_MARKS
        {
            self.motion.pop_front();
        }
    }

    /// No footwork in the serve-test span before `trigger_t`, and data covering it.
    fn quiet_before(&self, trigger_t: f64) -> bool {
        let to = trigger_t - SERVE_TEST_GAP_MS;
        let from = to - self.settings.serve_quiet_ms;
        let covered = self
            .primary
            .map(|p| &self.nodes[slot(p)])
            .and_then(|n| n.window(from - 50.0, from + 50.0).next().map(|_| ()))
            .is_some();
        covered && !self.motion.iter().any(|&t| t >= from && t <= to)
    }

    fn push_pending(&mut self, p: Pending) {
        self.pending.push_back(p);
        while self.pending.len() > MAX_PENDING {
            self.finalise_front();
        }
    }

    /// Measures pending swings whose chain data is complete (or cannot come any more).
    fn finalise_ready(&mut self, all: bool) {
        while let Some(p) = self.pending.front().copied() {
            if !all && !self.chain_ready(&p) {
                break;
            }
            self.finalise_front();
        }
        while let Some(c) = self.body_candidates.front().copied() {
            if !all && !self.body_decidable(&c) {
                break;
            }
            self.body_candidates.pop_front();
            self.decide_body_burst(c);
        }
    }

    /// A body burst can be decided once no racket swing that could cover it is still to come
    /// (the primary node's data is past its reach and every racket burst up to there is
    /// measured, or the primary node sends nothing) and the chain nodes' data around its peak
    /// is in.
    fn body_decidable(&self, c: &Candidate) -> bool {
        let reach = c.peak_t + body_burst::COVER_LEAD_MS;
        let body_t = self
            .body
            .and_then(|b| self.nodes[slot(b)].frontier())
            .unwrap_or(f64::NEG_INFINITY);
        let racket_active = match self.phase {
            Phase::Active { trigger_t, .. } => trigger_t <= reach,
            Phase::Idle | Phase::Recovery { .. } => false,
        };
        let soft_active = self.soft.is_some_and(|b| b.start_t <= reach);
        let racket_settled = self.last_primary_t.is_some_and(|t| t > reach)
            && !racket_active
            && !soft_active
            && self.pending.iter().all(|p| p.trigger_t > reach);
        let racket_silent = self.last_primary_t.is_none_or(|t| t < c.start_t)
            && body_t >= reach + self.settings.reorder_window_ms;
        (racket_settled || racket_silent) && self.chain_covers(c.peak_t + chain::AFTER_IMPACT_MS)
    }

    /// Every chain node has released data up to `need` (or fell a reorder window behind the
    /// newest node).
    fn chain_covers(&self, need: f64) -> bool {
        let newest = self
            .nodes
            .iter()
            .filter_map(NodeStream::frontier)
            .fold(f64::NEG_INFINITY, f64::max);
        self.body_nodes_reach(need, newest)
    }

    /// Every body node the chain reads (not the primary) has released data up to `need`, or
    /// `lead_t` (the clock that stands in for a node gone quiet) is a reorder window past it.
    fn body_nodes_reach(&self, need: f64, lead_t: f64) -> bool {
        [
            BodyPosition::Waist,
            BodyPosition::Shoulder,
            BodyPosition::Wrist,
        ]
        .into_iter()
        .filter(|&pos| self.profile.carries(pos) && Some(pos) != self.primary)
        .all(|pos| {
            let f = self.nodes[slot(pos)]
                .frontier()
                .unwrap_or(f64::NEG_INFINITY);
            f >= need || lead_t >= need + self.settings.reorder_window_ms
        })
    }

    /// A body burst no racket swing accounts for becomes a chain-only swing when its segments
    /// peak in a proximal-to-distal sequence.
    fn decide_body_burst(&mut self, c: Candidate) {
        if covered(&c, self.racket_spans.iter().copied()) {
            return;
        }
        let mut reasons = BTreeMap::new();
        match self.chain_of(c.peak_t, None, &mut reasons) {
            Some(chain) if is_a_sequence(&chain) => self.emit_chain_only(c, chain, reasons),
            _ => self.stats.rejected_body_bursts += 1,
        }
    }

    /// A swing the body made without a racket swing: its kinetic chain, the racket's fields
    /// null with the reason, flagged `chain_only`.
    fn emit_chain_only(
        &mut self,
        c: Candidate,
        chain: Chain,
        mut reasons: BTreeMap<String, String>,
    ) {
        let why = match self.primary {
            Some(p) if self.last_primary_t.is_some() => format!(
                "chain only: the body swung but the {} node's rule found no swing",
                p.as_str()
            ),
            Some(p) => format!("chain only: no data from the {} node", p.as_str()),
            None => "chain only: the device has no racket or wrist node".to_string(),
        };
        for field in [
            "stroke",
            "side",
            "height",
            "racket_speed_kmh",
            "shuttle_speed_kmh",
            "confidence",
        ] {
            reasons.insert(field.to_string(), why.clone());
        }
        self.stats.swings += 1;
        let swing = Swing {
            id: None,
            device: self.profile.device.clone(),
            user: self.profile.user.clone(),
            session_id: self.session_id.clone(),
            swing_no: self.stats.swings,
            t_start: c.start_t,
            t_impact: c.peak_t,
            t_end: c.end_t,
            impact: false,
            stroke: Stroke::Unknown,
            side: None,
            height: None,
            racket_speed_kmh: None,
            shuttle_speed_kmh: None,
            saturated: false,
            confidence: None,
            confidences: None,
            flags: if self.chain_clipped(&chain, c.peak_t) {
                [Flag::ChainOnly, Flag::ChainClipped].into()
            } else {
                [Flag::ChainOnly].into()
            },
            analysis_version: ANALYSIS_VERSION.to_string(),
            chain: Some(chain),
            null_reasons: reasons,
            contact: ContactReading::default(),
        };
        self.push_event(swing);
    }

    fn push_event(&mut self, swing: Swing) {
        self.summary.add(&swing);
        self.events.push_back(AnalysisEvent::Swing(swing));
        while self.events.len() > MAX_EVENTS {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
    }

    /// Remembers a racket burst's span (`swing`: the racket rule measured a swing there, or
    /// the burst was a swing's recovery), for covering body bursts.
    fn note_racket_span(&mut self, p: &Pending, swing: bool) {
        self.racket_spans.push_back(RacketSpan {
            start_t: p.trigger_t,
            end_t: p.end_t,
            swing,
        });
        while self.racket_spans.len() > MAX_RACKET_SPANS {
            self.racket_spans.pop_front();
        }
    }

    /// Whether the front pending burst (`p`) can be decided from what has been released: the
    /// primary node's data covers its window, the burst that follows it is known in full if
    /// it may show `p` was its backswing, and the chain nodes' data covers the chain window.
    /// Each condition is a fact about samples, so the decision does not depend on how they
    /// were batched.
    fn chain_ready(&self, p: &Pending) -> bool {
        let need = p.end_t + chain::AFTER_IMPACT_MS;
        let primary_t = self.last_primary_t.unwrap_or(f64::NEG_INFINITY);
        if primary_t < p.end_t + POST_SWING_MS || self.next_burst_unsettled(p) {
            return false;
        }
        self.body_nodes_reach(need, primary_t)
    }

    /// A burst triggered within [`BACKSWING_GAP_MS`] after `p` (the front pending burst) is
    /// still in progress, or its window is not in yet: its peak so far is not its peak, and
    /// whether it is a stroke is not known, so whether `p` was its backswing is not known yet.
    /// The wait is bounded in the primary node's data: a burst ends within [`MAX_SWING_MS`] of
    /// its trigger, or at a gap of [`MAX_GAP_MS`]. (A primary node that
    /// falls silent mid-burst holds `p` until its data resumes or the session ends, as the
    /// 300 ms post-swing window already did; the pending queue's cap bounds the memory.)
    fn next_burst_unsettled(&self, p: &Pending) -> bool {
        if let Some(next) = self.pending.get(1) {
            // Its window must be in to tell whether it is a stroke.
            let primary_t = self.last_primary_t.unwrap_or(f64::NEG_INFINITY);
            return follows_within_gap(p, next.trigger_t) && primary_t < next.end_t + POST_SWING_MS;
        }
        match self.phase {
            Phase::Active { trigger_t, .. } => follows_within_gap(p, trigger_t),
            Phase::Idle | Phase::Recovery { .. } => false,
        }
    }

    fn finalise_front(&mut self) {
        let Some(p) = self.pending.pop_front() else {
            return;
        };
        let Some(primary) = self.primary else { return };
        if self.leads_a_stroke(&p) {
            self.stats.backswings += u64::from(!p.soft);
            self.log_burst(&p, BurstFate::Backswing);
            // The stroke it leads carries the body's motion here.
            self.note_racket_span(&p, true);
            return;
        }
        let Some((quality, measured)) = self.measure_burst(primary, &p) else {
            self.log_burst(&p, BurstFate::TooFewSamples);
            return;
        };
        let m = match measured {
            Ok(m) => m,
            Err(why) => {
                self.stats.rejected_bursts += u64::from(!p.soft);
                self.log_burst(&p, BurstFate::NoStroke(why));
                self.note_racket_span(&p, false);
                return;
            }
        };
        if p.soft && !m.impact {
            // A slow turn that met nothing: the racket carried, not a stroke.
            self.log_burst(&p, BurstFate::SoftUnmet);
            self.note_racket_span(&p, false);
            return;
        }
        // A recovery belongs to the swing before it, and so does the body's motion in it.
        self.note_racket_span(&p, true);
        if p.recovery_of
            .is_some_and(|prev| m.peak_dps < RECOVERY_PEAK_SHARE * prev)
        {
            self.stats.recoveries += 1;
            self.log_burst(&p, BurstFate::Recovery);
            return;
        }
        if let Some(settling) = settling_of(self.last_swing, &p, &m) {
            self.stats.settlings += 1;
            self.log_burst(&p, settling);
            return;
        }
        self.log_burst(&p, BurstFate::Swing);
        self.last_swing = Some(LastSwing {
            end_t: p.end_t,
            t_impact: m.t_impact,
            peak_dps: m.peak_dps,
        });
        // After its own measurement: a swing is read against the swings before it.
        self.speeds.add(m.racket_speed_kmh.unwrap_or(f64::NAN));
        let mut reasons: BTreeMap<String, String> = m
            .reasons
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let shuttle_speed_kmh = if m.impact {
            m.racket_speed_kmh
                .map(|v| v * self.settings.shuttle_speed_ratio)
        } else {
            reasons.insert(
                "shuttle_speed_kmh".into(),
                "air swing: no shuttle contact".into(),
            );
            None
        };
        let chain = self.chain_of(m.t_impact, m.racket_speed_kmh, &mut reasons);
        let mut flags = swing_flags(&quality, m.saturated);
        if chain
            .as_ref()
            .is_some_and(|c| self.chain_clipped(c, m.t_impact))
        {
            flags.insert(Flag::ChainClipped);
        }
        let judged = judge(&m, &flags, &quality, &self.settings);
        if let Some(why) = judged.withheld {
            flags.insert(Flag::LowConfidence);
            reasons.insert("stroke".into(), why);
        }
        self.stats.swings += 1;
        let swing = Swing {
            id: None,
            device: self.profile.device.clone(),
            user: self.profile.user.clone(),
            session_id: self.session_id.clone(),
            swing_no: self.stats.swings,
            t_start: p.trigger_t,
            t_impact: m.t_impact,
            t_end: p.end_t,
            impact: m.impact,
            stroke: judged.stroke,
            side: Some(m.side),
            height: Some(m.height),
            racket_speed_kmh: m.racket_speed_kmh.map(round1),
            shuttle_speed_kmh: shuttle_speed_kmh.map(round1),
            // For compatibility: `clipped` or `wrapped`.
            saturated: flags.contains(&Flag::Clipped) || flags.contains(&Flag::Wrapped),
            confidence: judged.confidences.map(|c| c.stroke),
            confidences: judged.confidences,
            flags,
            analysis_version: ANALYSIS_VERSION.to_string(),
            chain,
            null_reasons: reasons,
            contact: ContactReading(m.evidence),
        };
        self.push_event(swing);
    }

    /// Whether `p` is the backswing of the burst after it, and that burst has a stroke's shape:
    /// a backswing belongs to a stroke. (Without the second condition a table-tennis forehand
    /// flip followed by a faster turn back that is no stroke — a wide, hand-still return — was
    /// dropped as that turn's backswing.)
    fn leads_a_stroke(&self, p: &Pending) -> bool {
        let (Some(next), Some(primary)) = (self.pending.front(), self.primary) else {
            return false;
        };
        is_a_backswing(p, next)
            && self
                .measure_burst(primary, next)
                .is_some_and(|(_, m)| m.is_ok())
    }

    /// A burst's window on the primary node, conditioned, its quality, and its measurement
    /// (`None` inside when it has no stroke's shape, or met no shuttle and did not drive the
    /// racket: measure/); `None` when the window holds too few samples.
    fn measure_burst(
        &self,
        primary: BodyPosition,
        p: &Pending,
    ) -> Option<(SpanQuality, Result<Measured, NoStroke>)> {
        let (from, to) = (p.trigger_t - PRE_TRIGGER_MS, p.end_t + POST_SWING_MS);
        let mut samples: Vec<NodeSample> = self.nodes[slot(primary)]
            .window(from, to)
            .copied()
            .collect();
        if samples.len() < 4 {
            return None;
        }
        let conditioner = &self.conditioners[slot(primary)];
        conditioner.reframe_early(&mut samples);
        let quality = conditioner.quality(&samples, (from, to), (p.trigger_t, p.end_t));
        let window = SwingWindow {
            samples: &samples,
            trigger_t: p.trigger_t,
            end_t: p.end_t,
            quiet_before: p.quiet_before,
            rest_g: quality.rest_g,
            wraps_left: &quality.wraps_left,
            speed_reference_kmh: self.speeds.settled(),
            previous_swing_ms: self.last_swing.map(|l| l.t_impact),
            carried_up: conditioner.carried_gravity(from, p.trigger_t),
            forehand_turn: quality.forehand_turn,
        };
        let measured = measure(
            &window,
            &quality.measured_profile(&self.profile),
            &self.settings,
        );
        Some((quality, measured))
    }

    /// Whether a body segment whose peak the chain reports had its gyro at the rail, or
    /// wrapped past it and left in place, in the chain's window around `t_impact`: its peak is
    /// then estimated from the flanks (chain.rs) or, where no estimate fits, the rail's
    /// reading, a lower bound.
    fn chain_clipped(&self, chain: &Chain, t_impact: f64) -> bool {
        let from = t_impact - chain::BEFORE_IMPACT_MS;
        let to = t_impact + chain::AFTER_IMPACT_MS;
        let peaks = [
            (BodyPosition::Waist, chain.peak_dps.waist),
            (BodyPosition::Shoulder, chain.peak_dps.shoulder),
            (BodyPosition::Wrist, chain.peak_dps.wrist),
        ];
        peaks.into_iter().any(|(p, peak)| {
            let conditioner = &self.conditioners[slot(p)];
            peak.is_some()
                && Some(p) != self.primary
                && (conditioner.gyro_clipped_between(from, to)
                    || conditioner.gyro_wrap_left_between(from, to))
        })
    }

    fn chain_of(
        &self,
        t_impact: f64,
        racket_speed_kmh: Option<f64>,
        reasons: &mut BTreeMap<String, String>,
    ) -> Option<Chain> {
        let body = [
            BodyPosition::Waist,
            BodyPosition::Shoulder,
            BodyPosition::Wrist,
        ];
        if !body
            .iter()
            .any(|&p| self.profile.carries(p) && Some(p) != self.primary)
        {
            reasons.insert(
                "chain".into(),
                "device has no waist, shoulder or wrist node".into(),
            );
            return None;
        }
        let windows: Vec<Option<Vec<NodeSample>>> = body
            .iter()
            .map(|&p| {
                self.profile.carries(p).then(|| {
                    self.nodes[slot(p)]
                        .window(
                            t_impact - chain::BEFORE_IMPACT_MS,
                            t_impact + chain::AFTER_IMPACT_MS,
                        )
                        .copied()
                        .collect()
                })
            })
            .collect();
        let segments = [0, 1, 2].map(|k| (body[k], windows[k].as_deref()));
        let (c, why) = measure_chain(segments, racket_speed_kmh, &self.profile, &self.settings);
        reasons.extend(why);
        Some(c)
    }

    /// Drops history no pending swing or future swing can need.
    fn trim(&mut self) {
        let oldest_pending = self.pending.front().map(|p| p.trigger_t - PRE_TRIGGER_MS);
        let oldest_candidate = self.body_candidates.front().map(|c| c.peak_t);
        let active = match self.phase {
            Phase::Active { trigger_t, .. } => Some(trigger_t - PRE_TRIGGER_MS),
            Phase::Idle | Phase::Recovery { .. } => None,
        };
        let soft = self.soft.map(|b| b.start_t - PRE_TRIGGER_MS);
        for n in &mut self.nodes {
            let Some(f) = n.frontier() else { continue };
            let mut keep = f - HISTORY_MS;
            for t in [oldest_pending, active, oldest_candidate, soft]
                .into_iter()
                .flatten()
            {
                keep = keep.min(t - chain::BEFORE_IMPACT_MS);
            }
            n.trim(keep);
        }
    }
}

/// Whether a burst triggered at `trigger_t` follows `p` closely enough to have `p` as its
/// backswing.
fn follows_within_gap(p: &Pending, trigger_t: f64) -> bool {
    trigger_t > p.end_t && trigger_t - p.end_t <= BACKSWING_GAP_MS
}

/// Whether `p` is the backswing of `next`, the burst after it: `next` started within
/// [`BACKSWING_GAP_MS`] after `p` ended, turning the other way, and `p` was slower than
/// [`RECOVERY_PEAK_SHARE`] of it.
fn is_a_backswing(p: &Pending, next: &Pending) -> bool {
    let against = next.dir[0] * p.dir[0] + next.dir[1] * p.dir[1] < 0.0;
    follows_within_gap(p, next.trigger_t) && against && p.peak < RECOVERY_PEAK_SHARE * next.peak
}

/// Whether the burst `p`, measured as `m`, is the settling of the swing before it (`last`),
/// and which: it met no shuttle, and it starts within [`SETTLE_MS`] after that swing's end
/// turning the racket under [`SETTLE_PEAK_SHARE`] of that swing's peak (a settling), or
/// within [`LATE_SETTLE_MS`] under [`LATE_SETTLE_PEAK_SHARE`] of it (a late one).
fn settling_of(last: Option<LastSwing>, p: &Pending, m: &Measured) -> Option<BurstFate> {
    let l = last.filter(|_| !m.impact)?;
    let after_ms = p.trigger_t - l.end_t;
    let share = m.peak_dps / l.peak_dps;
    if after_ms <= SETTLE_MS && share < SETTLE_PEAK_SHARE {
        Some(BurstFate::Settling)
    } else if after_ms <= LATE_SETTLE_MS && share < LATE_SETTLE_PEAK_SHARE {
        Some(BurstFate::LateSettling)
    } else {
        None
    }
}

/// A swing's stroke after its confidence is weighed.
struct Judged {
    stroke: Stroke,
    /// Each classification's confidence; `None` when the swing could not be assessed.
    confidences: Option<Confidences>,
    /// Why the stroke was withheld (reported `unknown`), with the guess.
    withheld: Option<String>,
}

/// The confidences, and the stroke `unknown` when its confidence is under
/// `min_stroke_confidence`. When the node's axes were inferred rather than configured, no
/// classification can be surer than the inference: a wrong axis map turns every measurement
/// they are read from (`quality.placement_confidence`); a side read about an inferred forehand
/// turn is no surer than that turn's sense (`quality.side_sense_confidence`).
fn judge(
    m: &Measured,
    flags: &Flags,
    quality: &SpanQuality,
    settings: &AnalysisSettings,
) -> Judged {
    let Some(evidence) = m.evidence else {
        return Judged {
            stroke: m.stroke,
            confidences: None,
            withheld: None,
        };
    };
    let c = assess(m.stroke, m.height, &evidence, &boundaries(settings), flags)
        .through(quality.placement_confidence, quality.side_sense_confidence);
    let withheld = (c.stroke < settings.min_stroke_confidence).then(|| {
        format!(
            "low confidence: {} at {:.2}, under min_stroke_confidence {:.2}",
            m.stroke.as_str(),
            c.stroke,
            settings.min_stroke_confidence
        )
    });
    Judged {
        stroke: if withheld.is_some() {
            Stroke::Unknown
        } else {
            m.stroke
        },
        confidences: Some(c),
        withheld,
    }
}

/// The conditioning's flags, and `clipped` when measure/ found the gyro or accelerometer at full
/// scale in the swing.
fn swing_flags(quality: &SpanQuality, measured_clipped: bool) -> Flags {
    let mut flags = quality.flags.clone();
    if measured_clipped {
        flags.insert(Flag::Clipped);
    }
    flags
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::confidence::Evidence;
    use crate::analysis::{Height, Overflow, Side};

    /// An overhead swing whose head path pitch is `pitch_deg`, classified a smash.
    fn smash(pitch_deg: f64) -> Measured {
        Measured {
            t_impact: 0.0,
            impact: true,
            stroke: Stroke::Smash,
            side: Side::Forehand,
            height: Height::Overhead,
            racket_speed_kmh: Some(200.0),
            saturated: false,
            peak_dps: 3000.0,
            evidence: Some(Evidence {
                elevation_deg: 60.0,
                pitch_deg,
                rate_ratio: 0.97,
                speed_kmh: 200.0,
                side_lean_deg: 50.0,
                rate_dps: 3000.0,
                sample_interval_ms: 5.0,
                reference_kmh: None,
                quiet_before: false,
                opens_rally: true,
                anchor_carried_s: 0.0,
                course: Default::default(),
            }),
            reasons: Vec::new(),
        }
    }

    #[test]
    fn a_stroke_on_its_boundary_is_withheld_and_one_far_from_it_is_kept() {
        let settings = AnalysisSettings {
            min_stroke_confidence: 0.6,
            ..AnalysisSettings::default()
        };
        // On the smash/clear boundary: a coin toss, under 0.6.
        let as_made = SpanQuality::default();
        let unsure = judge(&smash(-4.0), &Flags::new(), &as_made, &settings);
        assert_eq!(unsure.stroke, Stroke::Unknown);
        assert!(
            unsure
                .confidences
                .is_some_and(|c| (c.stroke - 0.5).abs() < 0.01)
        );
        assert!(unsure.withheld.is_some_and(|w| w.contains("smash")));
        // Far below it: kept, nearly certain.
        let sure = judge(&smash(-40.0), &Flags::new(), &as_made, &settings);
        assert_eq!(sure.stroke, Stroke::Smash);
        assert!(sure.confidences.is_some_and(|c| c.stroke > 0.99) && sure.withheld.is_none());
        // The same stroke read through axes inferred at 0.5 is only as sure as they are.
        let turned = SpanQuality {
            placement_confidence: Some(0.5),
            ..SpanQuality::default()
        };
        let inferred = judge(&smash(-40.0), &Flags::new(), &turned, &settings);
        assert_eq!(inferred.stroke, Stroke::Unknown);
        assert!(
            inferred
                .confidences
                .is_some_and(|c| (c.stroke - 0.5).abs() < 0.01)
        );
    }

    /// Side and height carry their own confidence: an inferred placement bounds all three, the
    /// sense of an inferred forehand turn only the side.
    #[test]
    fn an_inferred_forehand_turn_makes_only_the_side_less_sure() {
        let settings = AnalysisSettings::default();
        let as_made = judge(
            &smash(-40.0),
            &Flags::new(),
            &SpanQuality::default(),
            &settings,
        )
        .confidences
        .expect("assessed");
        assert!(as_made.side > 0.99 && as_made.height > 0.99, "{as_made:?}");
        let voted = SpanQuality {
            side_sense_confidence: Some(0.7),
            ..SpanQuality::default()
        };
        let c = judge(&smash(-40.0), &Flags::new(), &voted, &settings)
            .confidences
            .expect("assessed");
        assert!((c.side - 0.7).abs() < 0.01, "{c:?}");
        assert_eq!((c.stroke, c.height), (as_made.stroke, as_made.height));
        let turned = SpanQuality {
            placement_confidence: Some(0.8),
            ..voted
        };
        let c = judge(&smash(-40.0), &Flags::new(), &turned, &settings)
            .confidences
            .expect("assessed");
        assert!(
            (c.side - 0.56).abs() < 0.01 && (c.height - 0.8).abs() < 0.01,
            "{c:?}"
        );
    }

    /// A racket node at 200 Hz for 3 s, at rest but for Gaussian turns about its z axis:
    /// (centre ms, signed peak °/s, σ ms). The node sits 30 cm from the turn's centre (swung
    /// from the elbow), so it feels the turn's centripetal and tangential load; the elbow is
    /// carried by the upper arm's turn about the shoulder, in its own plane, which peaks
    /// 50 ms before the racket's (a stroke's segments peak in turn: Putnam 1993), pushing the
    /// node along its z by 1 g per 1000 °/s of the racket's peak. Without that push a turn
    /// about a fixed centre is made with the hand held still: handling (measure/handling.rs).
    fn racket_turns(turns: &[(f64, f64, f64)]) -> Vec<NodeSample> {
        const R_M: f64 = 0.3;
        const CHAIN_LEAD_MS: f64 = 50.0;
        let rate = |t: f64| -> f64 {
            turns
                .iter()
                .map(|&(c, peak, sigma)| peak * (-0.5 * ((t - c) / sigma).powi(2)).exp())
                .sum()
        };
        let elbow_push_g = |t: f64| -> f64 {
            turns
                .iter()
                .map(|&(c, peak, sigma)| {
                    peak.abs() / 1000.0 * (-0.5 * ((t - c + CHAIN_LEAD_MS) / sigma).powi(2)).exp()
                })
                .sum()
        };
        (0..600)
            .map(|k| {
                let t = k as f64 * 5.0;
                let omega = rate(t).to_radians();
                let alpha = (rate(t + 0.5) - rate(t - 0.5)).to_radians() * 1000.0;
                NodeSample {
                    position: BodyPosition::Racket,
                    t_ms: t,
                    acc: [
                        (-omega * omega * R_M / 9.81) as f32,
                        (alpha * R_M / 9.81) as f32,
                        (1.0 + elbow_push_g(t)) as f32,
                    ],
                    gyro: [0.0, 0.0, rate(t) as f32],
                    angle: None,
                }
            })
            .collect()
    }

    fn swings_of(samples: &[NodeSample]) -> Vec<Swing> {
        swings_on(&[BodyPosition::Racket], samples)
    }

    /// The swings of a device carrying `positions`, fed `samples` in one batch.
    fn swings_on(positions: &[BodyPosition], samples: &[NodeSample]) -> Vec<Swing> {
        let profile = DeviceProfile {
            positions: positions.to_vec(),
            ..DeviceProfile::new("d")
        };
        let mut a = DeviceAnalyser::new(profile, AnalysisSettings::default(), "s");
        a.handle_samples(samples);
        a.finish();
        std::iter::from_fn(|| a.poll_event())
            .map(|AnalysisEvent::Swing(s)| s)
            .collect()
    }

    #[test]
    fn a_slower_turn_the_other_way_just_before_a_stroke_is_its_backswing() {
        // Back at 500 °/s, ending ~180 ms before the forward swing at 1500 °/s is triggered.
        let swings = swings_of(&racket_turns(&[
            (1000.0, -500.0, 40.0),
            (1300.0, 1500.0, 30.0),
        ]));
        assert_eq!(swings.len(), 1, "{swings:#?}");
        assert!((swings[0].t_impact - 1300.0).abs() < 10.0, "{swings:#?}");
        // As fast as the stroke: two strokes, not a backswing.
        let swings = swings_of(&racket_turns(&[
            (1000.0, -1200.0, 40.0),
            (1300.0, 1500.0, 30.0),
        ]));
        assert_eq!(swings.len(), 2, "{swings:#?}");
        // The same way as the stroke: not a backswing either.
        let swings = swings_of(&racket_turns(&[
            (1000.0, 500.0, 40.0),
            (1300.0, 1500.0, 30.0),
        ]));
        assert_eq!(swings.len(), 2, "{swings:#?}");
    }

    #[test]
    fn a_slow_turn_within_a_second_after_a_stroke_is_its_settling_either_way() {
        // A stroke at 1950 °/s (under the gyro's rail), then the arm brought back to ready
        // at 620 °/s (32 % of it), starting ~650 ms after the stroke's end: past the
        // recovery's 350 ms, and fast enough to pass the handling test on its own. One
        // swing, whichever way the return turns.
        for settle_dps in [-620.0, 620.0] {
            let swings = swings_of(&racket_turns(&[
                (1000.0, 1950.0, 30.0),
                (1800.0, settle_dps, 40.0),
            ]));
            assert_eq!(swings.len(), 1, "{settle_dps}: {swings:#?}");
            assert!((swings[0].t_impact - 1000.0).abs() < 10.0, "{swings:#?}");
        }
    }

    #[test]
    fn a_faint_turn_seconds_after_a_stroke_that_meets_nothing_is_its_late_settling() {
        // A smash at 3500 °/s on a ±4000 °/s racket node, then the arm turning the node at
        // 380 °/s (11 % of it) 2 s later: past the settling's second, meeting nothing. One
        // swing.
        let wide_gyro = |samples: &[NodeSample]| {
            let profile = DeviceProfile {
                positions: vec![BodyPosition::Racket],
                gyro_full_scale_dps: 4000.0,
                ..DeviceProfile::new("d")
            };
            let mut a = DeviceAnalyser::new(profile, AnalysisSettings::default(), "s");
            a.handle_samples(samples);
            a.finish();
            std::iter::from_fn(|| a.poll_event()).count()
        };
        let faint = racket_turns(&[(1000.0, 3500.0, 30.0), (3000.0, 380.0, 40.0)]);
        assert_eq!(wide_gyro(&faint), 1);
        // Alone, the same turn is a swing: the rule, not the handling test, removes it; and
        // at a stroke's share (32 %, next test) it is a second stroke.
        assert_eq!(wide_gyro(&racket_turns(&[(3000.0, 380.0, 40.0)])), 1);
        let stroke_share = racket_turns(&[(1000.0, 3500.0, 30.0), (3000.0, 1120.0, 40.0)]);
        assert_eq!(wide_gyro(&stroke_share), 2);
    }

    #[test]
    fn a_stroke_right_after_a_stroke_is_a_second_stroke() {
        // The same timing, but the second burst at a stroke's speed (72 % of the first), or a
        // slow one a second and a half later: both are strokes.
        let swings = swings_of(&racket_turns(&[
            (1000.0, 1950.0, 30.0),
            (1800.0, -1400.0, 40.0),
        ]));
        assert_eq!(swings.len(), 2, "{swings:#?}");
        let swings = swings_of(&racket_turns(&[
            (1000.0, 1950.0, 30.0),
            (2500.0, 620.0, 40.0),
        ]));
        assert_eq!(swings.len(), 2, "{swings:#?}");
    }

    #[test]
    fn a_stroke_without_evidence_has_no_confidence_and_is_not_withheld() {
        let m = Measured {
            evidence: None,
            stroke: Stroke::Unknown,
            ..smash(-40.0)
        };
        let judged = judge(
            &m,
            &Flags::new(),
            &SpanQuality::default(),
            &AnalysisSettings::default(),
        );
        assert_eq!(judged.stroke, Stroke::Unknown);
        assert!(judged.confidences.is_none() && judged.withheld.is_none());
    }

    /// A racket stroke at 1950 °/s with the waist turning before it, peaking at
    /// `waist_peak_dps` 80 ms before contact, the waist node's gyro held at its ±2000 °/s rail.
    fn with_a_waist(waist_peak_dps: f64) -> Vec<Swing> {
        with_a_waist_read(waist_peak_dps, |rate| rate.min(2000.0), Overflow::Auto)
    }

    /// [`with_a_waist`], the waist's rate as its gyro `reads` it, on a device whose nodes
    /// report past full scale as `overflow` says.
    fn with_a_waist_read(
        waist_peak_dps: f64,
        reads: fn(f64) -> f64,
        overflow: Overflow,
    ) -> Vec<Swing> {
        let racket = racket_turns(&[(1000.0, 1950.0, 30.0)]);
        let waist = racket.iter().map(|r| {
            let rate = waist_peak_dps * (-0.5 * ((r.t_ms - 920.0) / 60.0).powi(2)).exp();
            NodeSample {
                position: BodyPosition::Waist,
                gyro: [0.0, 0.0, reads(rate) as f32],
                acc: [0.0, 0.0, 1.0],
                ..*r
            }
        });
        let samples: Vec<NodeSample> = racket
            .iter()
            .copied()
            .zip(waist)
            .flat_map(|(r, w)| [w, r])
            .collect();
        let profile = DeviceProfile {
            positions: vec![BodyPosition::Waist, BodyPosition::Racket],
            overflow,
            ..DeviceProfile::new("d")
        };
        let mut a = DeviceAnalyser::new(profile, AnalysisSettings::default(), "s");
        a.handle_samples(&samples);
        a.finish();
        std::iter::from_fn(|| a.poll_event())
            .map(|AnalysisEvent::Swing(s)| s)
            .collect()
    }

    /// A waist turning at 3000 °/s on a ±2000 °/s gyro that wraps, on a device said to clip
    /// (a wrap-shaped jump left as read): the chain reads the crest from the flanks and the
    /// swing says its peak is an estimate.
    #[test]
    fn a_chain_peak_through_a_body_nodes_wrap_left_in_place_is_flagged() {
        let wraps = |rate: f64| if rate > 2000.0 { rate - 4000.0 } else { rate };
        let swings = with_a_waist_read(3000.0, wraps, Overflow::Clip);
        assert_eq!(swings.len(), 1, "{swings:#?}");
        let waist = swings[0].chain.as_ref().and_then(|c| c.peak_dps.waist);
        assert!(
            waist.is_some_and(|p| (p / 3000.0 - 1.0).abs() < 0.05),
            "estimated past the wrap: {waist:?}"
        );
        assert!(
            swings[0].flags.contains(&Flag::ChainClipped),
            "{:?}",
            swings[0].flags
        );
    }

    #[test]
    fn a_chain_peak_read_on_a_body_nodes_rail_is_flagged() {
        let within = with_a_waist(600.0);
        assert_eq!(within.len(), 1, "{within:#?}");
        assert!(
            !within[0].flags.contains(&Flag::ChainClipped),
            "{:?}",
            within[0].flags
        );
        let railed = with_a_waist(3000.0);
        assert_eq!(railed.len(), 1, "{railed:#?}");
        // The crest past the rail is estimated from the clean flanks (chain.rs), not read
        // on the rail; the flag says the peak is an estimate.
        let waist = railed[0].chain.as_ref().and_then(|c| c.peak_dps.waist);
        assert!(
            waist.is_some_and(|p| (p / 3000.0 - 1.0).abs() < 0.05),
            "estimated past the rail: {waist:?}"
        );
        assert!(
            railed[0].flags.contains(&Flag::ChainClipped),
            "{:?}",
            railed[0].flags
        );
    }
}
