//! Conditioning: each node's samples made fit for detection, in time order, before anything
//! reads them — the real sensors' traps undone or marked.
//!
//! Per sample, in this order (each step in its own module):
//! 1. **sign wrap** found per axis, gyro and accelerometer, and undone on its evidence
//!    ([`wrap`]) where the sensor's range makes a wrap unambiguous at the node's rate (or the
//!    device says its nodes wrap, `overflow = "wrap"`); otherwise only flagged;
//! 2. **clipping** marked: an axis held at full scale for two samples or more (the peak is
//!    rebuilt later, in measure/, from the unclipped flanks);
//! 3. **calibration** from rest: accelerometer offset and scale, gyro bias ([`calibrate`]);
//! 4. **axes** onto the analyser's convention, configured, or else inferred for a racket node
//!    (a full rotation, provisional from the second drive) unless the device opts out with
//!    `infer_axes = false` ([`axes`]; it raises side and stroke on the independent
//!    simulator, and with them the false swings in rest of the turned nodes read right);
//!    on a wrist or forearm node standing in for the racket only the axis its forehands turn
//!    about is inferred, and only the side reads through it (its samples are not turned:
//!    turning them changed what detection sees and cost recall);
//! 5. for a **wrist node standing in for a racket** on a device configured with a grip angle
//!    (`wrist_grip_deg`), the forearm's axes turned into a virtual racket's: the forearm's
//!    roll, which dominates the wrist's rotation at contact, then reads as rotation across the
//!    virtual shaft, as a racket node would see it. Without the key the wrist is read as it is
//!    (the turn finds more tennis forehands but also more false swings in table-tennis rest:
//!    docs/analysis.md, "Conditioning").
//! 6. on the node that drives detection, **gravity carried** through the motion by a
//!    complementary filter ([`attitude`]): measure/ anchors a swing's attitude on it when the
//!    swing's window has no still spell. It reads the conditioned sample and changes nothing.
//!
//! Every step acts only on evidence (a wrap's jump, a rest off 1 g or a bias that holds, a
//! swing plane that is clearly not the convention's) or on configuration, so a node whose data
//! is clean and whose config says nothing reads exactly as it would without this stage.
//!
//! The sample rate is followed alongside ([`rate`]). What each step found is kept as time spans,
//! so a swing can be flagged (`wrapped`, `clipped`, `uncalibrated`, `rate_changed`,
//! `placement_inferred`, `wrist_estimate`) by the span of its data. Memory is bounded: a fixed
//! number of spans per trap, the oldest dropped first.

pub mod attitude;
pub mod axes;
pub mod calibrate;
pub mod rate;
pub mod wrap;

use std::collections::VecDeque;

use super::quality::{Flag, Flags};
use super::vecmath::{self as vm, Vec3};
use super::{DeviceProfile, NodeSample, Overflow};
use crate::batch::BodyPosition;

pub use attitude::Carried;
use attitude::GravityTracker;
use axes::AxisInference;
pub use axes::{AxisMap, ForehandTurn, InferenceReport, NodeRotation};
use calibrate::RestCalibrator;
use rate::RateTracker;
use wrap::Unwrap3;
pub use wrap::{UnwrapSeen, WrapsLeft};

/// An axis within this share of full scale counts as at the rail (sensors report a few LSB
/// under it); the same share measure/ uses for the gyro's clipped samples.
const RAIL_SHARE: f64 = 0.98;
/// A value past the rail by more than this share is not clipped but unwrapped (wrapped
/// sensors' values go on past full scale).
const RAIL_TOP_SHARE: f64 = 1.005;
/// Whether a reading sits at the rail of a sensor of ±`full_scale`: within [`RAIL_SHARE`] of
/// it and not past it by more than [`RAIL_TOP_SHARE`] (an unwrapped reading, real).
pub(crate) fn at_rail(value: f64, full_scale: f64) -> bool {
    let v = value.abs();
    v >= RAIL_SHARE * full_scale && v <= RAIL_TOP_SHARE * full_scale
}

/// Spans kept per trap.
const MAX_SPANS: usize = 64;
/// A racket's angular acceleration stays under ~2·10⁵ °/s² (a smash's forward swing takes the
/// racket from rest to 3000–5000 °/s in 20–40 ms; contact and the ring are faster but smaller).
/// A wrap is unambiguous when its jump (over `wrap::WRAP_JUMP_FS` × full scale) is more than a
/// real turn can change in one sample: at 100 Hz a gyro's range must exceed ±1333 °/s.
const MAX_ANGULAR_ACCEL_DPS2: f64 = 2.0e5;
/// The same for the accelerometer, g/s: a hand builds its 10–20 g of a smash over 30–50 ms
/// (≈ 500 g/s); twice that leaves room for the racket's own centripetal share. At 100 Hz the
/// range must exceed ±6.7 g. (Contact transients are faster, but they clip a narrow-range
/// accelerometer anyway.)
const MAX_JERK_G_PER_S: f64 = 1000.0;
/// Samples further apart than this end a span, ms.
const SPAN_JOIN_MS: f64 = 50.0;
/// A run of marked samples continues across a gap of up to this many sample spacings (the
/// spacing jitters by a fraction of itself).
const RUN_JOIN_SPACINGS: f64 = 1.5;

/// Time spans `[from, to]` where something happened, bounded.
#[derive(Debug, Clone, Default)]
struct Spans(VecDeque<(f64, f64)>);

impl Spans {
    fn mark(&mut self, t: f64) {
        self.mark_joining(t, SPAN_JOIN_MS);
    }

    /// Marks one sample of a run of consecutive samples (`spacing_ms` apart, when known): a
    /// span then holds exactly the run, not the samples between two runs.
    fn mark_run(&mut self, t: f64, spacing_ms: Option<f64>) {
        self.mark_joining(
            t,
            spacing_ms.map_or(SPAN_JOIN_MS, |dt| RUN_JOIN_SPACINGS * dt),
        );
    }

    fn mark_joining(&mut self, t: f64, join_ms: f64) {
        match self.0.back_mut() {
            Some(last) if t - last.1 <= join_ms => last.1 = t,
            _ => {
                self.0.push_back((t, t));
                while self.0.len() > MAX_SPANS {
                    self.0.pop_front();
                }
            }
        }
    }

    fn overlaps(&self, from: f64, to: f64) -> bool {
        self.0.iter().any(|&(a, b)| a <= to && b >= from)
    }

    /// The spans that overlap `[from, to]`.
    fn within(&self, from: f64, to: f64) -> Vec<(f64, f64)> {
        self.0
            .iter()
            .copied()
            .filter(|&(a, b)| a <= to && b >= from)
            .collect()
    }
}

/// How a node's axes are known.
#[derive(Debug, Clone)]
enum Frame {
    Configured(AxisMap),
    /// Boxed: the inference's evidence is far larger than a configured map.
    Inferred(Box<AxisInference>),
    /// No configured axes and the inference opted out of (`infer_axes = false`), or a body node (the
    /// inference reads a racket's physics): the convention is assumed.
    Assumed,
}

/// One node's conditioning state for one session.
#[derive(Debug, Clone)]
pub struct NodeConditioner {
    acc_full_scale: f64,
    gyro_full_scale: f64,
    acc_unwrap: Unwrap3,
    gyro_unwrap: Unwrap3,
    /// Consecutive samples at the rail, per channel (acc x, y, z, gyro x, y, z).
    at_rail: [u8; 6],
    calibrator: RestCalibrator,
    rate: RateTracker,
    frame: Frame,
    /// This wrist node stands in for a missing racket node: its speeds are estimates.
    wrist_primary: bool,
    /// The virtual racket's grip (sin, cos of the angle), when configured.
    virtual_racket: Option<(f64, f64)>,
    /// What the device says its nodes do past full scale.
    overflow: Overflow,
    /// Where a wrap was seen (undone or not), and, per sensor, where an undone wrap's values
    /// ran on past the rail (real readings there, not clipping).
    wrapped: Spans,
    gyro_ran_on: Spans,
    acc_ran_on: Spans,
    clipped: Spans,
    /// The same for the gyro's axes alone.
    gyro_clipped: Spans,
    /// Where wraps were found and left in place (not undone): the gyro's, run by run (a span
    /// ends with its run: the samples measure/ rebuilds over), and each accelerometer axis's
    /// (the contact search reads each axis apart).
    gyro_wrap_left: Spans,
    acc_wrap_left: [Spans; 3],
    /// Gravity carried through the motion ([`attitude`]), on the node that drives detection
    /// (the racket, or a wrist standing in for it); `None` on body nodes.
    gravity: Option<GravityTracker>,
    /// The axes map the tracker's history is expressed in (an inference may decide later).
    gravity_frame: NodeRotation,
    /// On a wrist or forearm node standing in for the racket, read as made (no `axes`, no
    /// grip): the evidence for the axis its forehands turn about, which only the side reads
    /// through (`AxisInference::forehand_turn`).
    arm_turn: Option<Box<AxisInference>>,
    /// The last sample's unwrapping, as [`NodeConditioner::last_unwrap`] reports it.
    last_unwrap: UnwrapSeen,
}

/// What conditioning says about a span of one node's data (a swing's window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanQuality {
    pub flags: Flags,
    /// The gyro wrapped in the span, was unwrapped, and its count ran on past the rail: its
    /// values past full scale are real, not clipped. (A sensor that pins on the rail before
    /// it wraps reads on the rail once unwrapped: clipped, and measured as such.)
    pub gyro_wrapped: bool,
    /// The same for the accelerometer.
    pub acc_wrapped: bool,
    /// Wraps found in the span and left in place: the readings there are a full range off.
    pub wraps_left: WrapsLeft,
    /// Confidence in the node's inferred axes, when inferred.
    pub placement_confidence: Option<f64>,
    /// What the node reads at rest around the swing on the conditioned output, g
    /// ([`calibrate::rest_reading_g`] over the window's quiet samples): 1 g once calibrated,
    /// near 1.3 g on an uncalibrated part before its first rest; `None` when the window has
    /// too few quiet samples (read as 1 g).
    pub rest_g: Option<f64>,
    /// On a wrist or forearm node standing in for the racket whose forehand's turn was
    /// inferred away from its own −y: that axis, in the node's (conditioned) axes, for the
    /// side to be read about (`measure/side.rs`); `None` reads the convention's −y.
    pub forehand_turn: Option<Vec3>,
    /// How sure that axis's sense is ([`ForehandTurn::confidence`]), or, on a node read as
    /// made before anything decided its mount, how sure the centripetal reading is that its
    /// +x is the shaft (`AxisInference::as_made_side_bound`): the side's confidence is no
    /// higher; `None` with neither.
    pub side_sense_confidence: Option<f64>,
}

impl SpanQuality {
    /// The profile to measure the span with: a sensor that wrapped was unwrapped, so its
    /// values past full scale are real readings, not clipping.
    pub fn measured_profile(&self, profile: &DeviceProfile) -> DeviceProfile {
        let mut p = profile.clone();
        if self.gyro_wrapped {
            p.gyro_full_scale_dps = f64::INFINITY;
        }
        if self.acc_wrapped {
            p.acc_full_scale_g = f64::INFINITY;
        }
        p
    }
}

impl NodeConditioner {
    /// The conditioner of `position` on `profile`'s device; `wrist_primary` when this wrist
    /// node stands in for a missing racket node.
    pub fn new(profile: &DeviceProfile, position: BodyPosition, wrist_primary: bool) -> Self {
        let frame = match profile.axes.get(&position) {
            Some(map) => Frame::Configured(*map),
            None if position == BodyPosition::Racket && profile.infer_axes => {
                Frame::Inferred(Box::default())
            }
            None => Frame::Assumed,
        };
        NodeConditioner {
            acc_full_scale: profile.acc_full_scale_g,
            gyro_full_scale: profile.gyro_full_scale_dps,
            acc_unwrap: Unwrap3::default(),
            gyro_unwrap: Unwrap3::default(),
            at_rail: [0; 6],
            calibrator: RestCalibrator::default(),
            rate: RateTracker::default(),
            frame,
            wrist_primary,
            virtual_racket: profile
                .wrist_grip_deg
                .filter(|_| wrist_primary)
                .map(|deg| deg.to_radians().sin_cos()),
            overflow: profile.overflow,
            wrapped: Spans::default(),
            gyro_ran_on: Spans::default(),
            acc_ran_on: Spans::default(),
            clipped: Spans::default(),
            gyro_clipped: Spans::default(),
            gyro_wrap_left: Spans::default(),
            acc_wrap_left: Default::default(),
            gravity: (position == BodyPosition::Racket || wrist_primary)
                .then(GravityTracker::default),
            gravity_frame: NodeRotation::IDENTITY,
            arm_turn: (wrist_primary
                && position != BodyPosition::Racket
                && profile.infer_axes
                && profile.wrist_grip_deg.is_none()
                && !profile.axes.contains_key(&position))
            .then(|| {
                Box::new(AxisInference::evidence_only_with_range(
                    profile.gyro_full_scale_dps,
                ))
            }),
            last_unwrap: UnwrapSeen::default(),
        }
    }

    /// What the unwrapping step made of the last sample conditioned (its values before
    /// calibration and axes): the evaluation compares it with a simulator's true wraps.
    pub fn last_unwrap(&self) -> UnwrapSeen {
        self.last_unwrap
    }

    /// Conditions one released sample in place (samples come in time order).
    pub fn condition(&mut self, s: &mut NodeSample) {
        self.rate.note(s.t_ms);
        let (mut acc, mut gyro) = (s.acc, s.gyro);
        let acc_past =
            self.acc_unwrap
                .unwrap(s.t_ms, &mut acc, self.acc_full_scale, MAX_JERK_G_PER_S);
        let gyro_past = self.gyro_unwrap.unwrap(
            s.t_ms,
            &mut gyro,
            self.gyro_full_scale,
            MAX_ANGULAR_ACCEL_DPS2,
        );
        if acc_past.wrapped || gyro_past.wrapped {
            self.wrapped.mark(s.t_ms);
        }
        let spacing_ms = self.rate.spacing_ms();
        let acc_undone = self.undoes_wraps(self.acc_full_scale, MAX_JERK_G_PER_S, spacing_ms);
        if acc_undone {
            s.acc = acc;
            if acc_past.runs_on {
                self.acc_ran_on.mark(s.t_ms);
            }
        } else {
            for (spans, _) in self
                .acc_wrap_left
                .iter_mut()
                .zip(acc_past.axes)
                .filter(|x| x.1)
            {
                spans.mark_run(s.t_ms, spacing_ms);
            }
        }
        let gyro_undone =
            self.undoes_wraps(self.gyro_full_scale, MAX_ANGULAR_ACCEL_DPS2, spacing_ms);
        self.last_unwrap = UnwrapSeen {
            acc,
            gyro,
            acc_undone,
            gyro_undone,
        };
        if gyro_undone {
            s.gyro = gyro;
            if gyro_past.runs_on {
                self.gyro_ran_on.mark(s.t_ms);
            }
        } else if gyro_past.wrapped {
            self.gyro_wrap_left.mark_run(s.t_ms, spacing_ms);
        }
        let (clipped, gyro_clipped) = self.note_rails(s);
        if clipped {
            self.clipped.mark(s.t_ms);
        }
        if gyro_clipped {
            self.gyro_clipped.mark(s.t_ms);
        }
        // A gyro axis at the rail on this sample (clipped), or a wrap left in place: the turn
        // is not what the gyro says.
        let gyro_at_rail = self.at_rail[3..].iter().any(|&n| n > 0);
        let gyro_railed = (gyro_past.wrapped && !gyro_undone) || gyro_at_rail;
        let calibration = self
            .calibrator
            .note(s.t_ms, vm::widen(s.acc), vm::widen(s.gyro));
        if let Some(c) = calibration {
            c.apply(&mut s.acc, &mut s.gyro);
        }
        if let Some(arm) = &mut self.arm_turn {
            arm.note(s.t_ms, vm::widen(s.acc), vm::widen(s.gyro));
        }
        let map = match &mut self.frame {
            Frame::Configured(map) => NodeRotation::from(*map),
            Frame::Assumed => NodeRotation::IDENTITY,
            Frame::Inferred(inference) => {
                inference.note(s.t_ms, vm::widen(s.acc), vm::widen(s.gyro));
                inference.current().0
            }
        };
        s.acc = map.apply(s.acc);
        s.gyro = map.apply(s.gyro);
        if let Some(grip) = self.virtual_racket {
            s.acc = forearm_to_racket(s.acc, grip);
            s.gyro = forearm_to_racket(s.gyro, grip);
        }
        self.carry_gravity(s, map, gyro_railed);
    }

    /// Feeds the gravity tracker the conditioned sample; when an axis inference has just
    /// decided, its history is first brought into the inferred axes (as `reframe_early` does
    /// for the samples).
    fn carry_gravity(&mut self, s: &NodeSample, map: NodeRotation, railed: bool) {
        let Some(tracker) = &mut self.gravity else {
            return;
        };
        if map != self.gravity_frame {
            // The history is in the frame it was carried in, which an earlier (provisional)
            // inference may have chosen: back out of that one, into this one.
            let then = self.gravity_frame;
            tracker.reframe(|v| vm::widen(map.apply(then.unapply(v.map(|x| x as f32)))));
            self.gravity_frame = map;
        }
        tracker.note(s.t_ms, vm::widen(s.acc), vm::widen(s.gyro), railed);
    }

    /// Gravity in the node's (conditioned) axes, carried by the gyro, at the newest sample
    /// in `[from, to]` where it is believed.
    pub fn carried_gravity(&self, from: f64, to: f64) -> Option<Carried> {
        self.gravity.as_ref()?.carried_at(from, to)
    }

    /// The axis inference's state, on a node whose axes are inferred (diagnostics).
    pub fn inference_report(&self) -> Option<axes::InferenceReport> {
        match &self.frame {
            Frame::Inferred(inference) => Some(inference.report()),
            _ => None,
        }
    }

    /// The axis a wrist or forearm node's forehands turn about, when the node stands in for
    /// the racket, is read as made and its swings have said (diagnostics, and the side).
    pub fn forehand_turn(&self) -> Option<ForehandTurn> {
        self.arm_turn.as_ref()?.forehand_turn()
    }

    /// Samples of a window conditioned through an earlier inferred frame (or before the
    /// first), brought into the frame inferred now.
    pub fn reframe_early(&self, samples: &mut [NodeSample]) {
        let Frame::Inferred(inference) = &self.frame else {
            return;
        };
        for s in samples.iter_mut() {
            s.acc = inference.reframe(s.t_ms, s.acc);
            s.gyro = inference.reframe(s.t_ms, s.gyro);
        }
    }

    /// Whether a gyro axis sat at its rail between `from` and `to` (ms): a body node's chain
    /// peak there is the rail's reading.
    pub fn gyro_clipped_between(&self, from: f64, to: f64) -> bool {
        self.gyro_clipped.overlaps(from, to)
    }

    /// Whether a gyro wrap was left in place between `from` and `to` (ms): a body node's
    /// readings there are not its rate, and its chain peak is an estimate at best.
    pub fn gyro_wrap_left_between(&self, from: f64, to: f64) -> bool {
        self.gyro_wrap_left.overlaps(from, to)
    }

    /// Flags for a swing whose data spans `[from, to]` (its measured window, `window`: the
    /// conditioned samples) and whose stroke lies in `[swing_from, swing_to]`.
    pub fn quality(
        &self,
        window: &[NodeSample],
        (from, to): (f64, f64),
        (swing_from, swing_to): (f64, f64),
    ) -> SpanQuality {
        let rest_g = calibrate::rest_reading_g(
            window
                .iter()
                .filter(|s| f64::from(s.gyro[1]).hypot(f64::from(s.gyro[2])) < calibrate::QUIET_DPS)
                .map(|s| vm::norm(vm::widen(s.acc))),
        );
        let wraps_left = WrapsLeft {
            gyro_spans: self.gyro_wrap_left.within(from, to),
            acc_axes: [0, 1, 2].map(|k| self.acc_wrap_left[k].within(from, to)),
        };
        let mut q = SpanQuality {
            rest_g,
            gyro_wrapped: self.gyro_ran_on.overlaps(from, to),
            acc_wrapped: self.acc_ran_on.overlaps(from, to),
            wraps_left,
            ..SpanQuality::default()
        };
        let mut flags = Flags::new();
        if self.wrapped.overlaps(from, to) {
            flags.insert(Flag::Wrapped);
        }
        if self.clipped.overlaps(swing_from, swing_to) {
            flags.insert(Flag::Clipped);
        }
        if self.read_uncalibrated(swing_from, rest_g) {
            flags.insert(Flag::Uncalibrated);
        }
        if self.rate.changed_between(from, to) {
            flags.insert(Flag::RateChanged);
        }
        // Flagged, with the inference's confidence, only where the inference turned the
        // node's axes: a node read as it reads (configured, or nothing said it was turned)
        // is not.
        if let Frame::Inferred(inference) = &self.frame
            && let (rotation, Some(confidence)) = inference.current()
            && rotation != NodeRotation::IDENTITY
        {
            flags.insert(Flag::PlacementInferred);
            q.placement_confidence = Some(confidence);
        }
        if self.wrist_primary {
            flags.insert(Flag::WristEstimate);
        }
        // The side of a wrist or forearm node read about an inferred axis: flagged, as a
        // turned racket node is; its confidence bounds the side's alone (the stroke and the
        // height are read along the node as made).
        let turn = self.forehand_turn();
        if let Some(turn) = turn.filter(|t| !t.as_made) {
            flags.insert(Flag::PlacementInferred);
            q.forehand_turn = Some(turn.axis);
            q.side_sense_confidence = Some(turn.confidence());
        } else if let Some(kept) = turn.and_then(|t| t.as_made_against_the_vote()) {
            q.side_sense_confidence = Some(kept);
        } else if let Some(bound) = self.undecided_side_bound(turn.is_some()) {
            q.side_sense_confidence = Some(bound);
        } else if let Frame::Inferred(inference) = &self.frame
            && let Some(bound) = inference.frame_side_bound()
        {
            q.side_sense_confidence = Some(bound);
        }
        q.flags = flags;
        q
    }

    /// A side read through a node as made while nothing has decided its mount (a racket
    /// node before its inference frames or keeps it, a stand-in before it finds its forehand
    /// turn) is no surer than the centripetal reading's word that its +x is the shaft
    /// (`AxisInference::as_made_side_bound`); `None` where the mount is configured, decided,
    /// or the reading is too weak to say. `turn_found`: the stand-in's forehand turn, as
    /// [`Self::forehand_turn`] just found it or not.
    fn undecided_side_bound(&self, turn_found: bool) -> Option<f64> {
        let undecided = match (&self.frame, &self.arm_turn) {
            (Frame::Inferred(inference), _) => inference.undecided().then_some(inference),
            (_, Some(arm)) => (!turn_found).then_some(arm),
            _ => None,
        };
        undecided?.as_made_side_bound()
    }

    /// Whether a wrap found on a sensor of ±`full_scale` is undone, at the node's sample
    /// spacing: always when the device says its nodes wrap, never when it says they clip, and
    /// otherwise when a wrap's jump is more than the sensor's quantity can really change
    /// (at `max_rate` per second) between two samples — on a narrow range a real change
    /// between the rails looks like a wrap, and undoing it would invent a reading.
    fn undoes_wraps(&self, full_scale: f64, max_rate: f64, spacing_ms: Option<f64>) -> bool {
        match self.overflow {
            Overflow::Wrap => true,
            Overflow::Clip => false,
            Overflow::Auto => spacing_ms
                .is_some_and(|dt| wrap::WRAP_JUMP_FS * full_scale > max_rate * dt / 1000.0),
        }
    }

    /// Whether a swing starting at `swing_from` was read without a calibration: no rest came
    /// before it, and the node's rest reading around it (`rest_g`) does not show a part that
    /// reads true (within [`calibrate::ACC_OFF_G`] of 1 g: such a part needs no correction).
    fn read_uncalibrated(&self, swing_from: f64, rest_g: Option<f64>) -> bool {
        let rested = self
            .calibrator
            .calibrated_since()
            .is_some_and(|t| t <= swing_from);
        let reads_true = rest_g.is_some_and(|g| (g - 1.0).abs() <= calibrate::ACC_OFF_G);
        !rested && !reads_true
    }

    /// Counts consecutive samples at the rail per channel; true when any channel has been
    /// there for two samples (a single sample near full scale is a peak, not clipping).
    /// Counts each axis's run at its rail; whether any axis (first) and any gyro axis
    /// (second) has sat there two samples running.
    fn note_rails(&mut self, s: &NodeSample) -> (bool, bool) {
        let mut clipped = false;
        let mut gyro_clipped = false;
        for k in 0..6 {
            let (v, fs) = if k < 3 {
                (s.acc[k], self.acc_full_scale)
            } else {
                (s.gyro[k - 3], self.gyro_full_scale)
            };
            let at = at_rail(f64::from(v), fs);
            self.at_rail[k] = if at {
                self.at_rail[k].saturating_add(1)
            } else {
                0
            };
            clipped |= self.at_rail[k] >= 2;
            gyro_clipped |= k >= 3 && self.at_rail[k] >= 2;
        }
        (clipped, gyro_clipped)
    }
}

/// A vector in the wrist node's axes (x along the forearm towards the hand, z out of the palm,
/// y = z × x) in the virtual racket's: the shaft leaves the hand on the thumb's side (−y) at
/// the grip angle (`grip`: its sine and cosine), and the palm's normal is the forehand face's.
/// A turn about z by −grip.
fn forearm_to_racket(v: [f32; 3], (s, c): (f64, f64)) -> [f32; 3] {
    let v: Vec3 = vm::widen(v);
    // Racket axes in forearm axes: x_r = (c, −s, 0), y_r = z × x_r = (s, c, 0), z_r = z.
    let x = c * v[0] - s * v[1];
    let y = s * v[0] + c * v[1];
    [x as f32, y as f32, v[2] as f32]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The angle between the forearm and the racket's shaft in a handshake grip, °: the shaft
    /// leaves the fist on the thumb's side, between in line with the forearm (0°) and square to it
    /// (90°); at contact the wrist is near neutral, where it sits at about 70–80°. The value
    /// documented for `wrist_grip_deg`.
    const WRIST_GRIP_DEG: f64 = 75.0;

    #[test]
    fn forearm_roll_reads_across_the_virtual_shaft() {
        let grip = WRIST_GRIP_DEG.to_radians().sin_cos();
        let r = forearm_to_racket([1000.0, 0.0, 0.0], grip);
        let across = f64::from(r[1]).hypot(f64::from(r[2]));
        assert!((across - 1000.0 * WRIST_GRIP_DEG.to_radians().sin()).abs() < 0.5);
        let n = vm::norm(vm::widen(forearm_to_racket([3.0, 4.0, 12.0], grip)));
        assert!((n - 13.0).abs() < 1e-4, "a rotation keeps lengths");
    }

    /// A device that says its nodes clip keeps a wrap as read; the conditioning stage's
    /// verdict names it, per sensor and accelerometer axis, for the swing's window — and a
    /// wrap it undid leaves none.
    #[test]
    fn a_wrap_left_in_place_is_named_for_the_window() {
        let run = |overflow: Overflow| {
            let mut profile = DeviceProfile::new("d");
            profile.overflow = overflow;
            let mut c = NodeConditioner::new(&profile, BodyPosition::Racket, false);
            // 100 Hz: gyro z and accelerometer y rise past full scale at 200–220 ms and read
            // on the opposite rail there.
            let (gfs, afs) = (profile.gyro_full_scale_dps, profile.acc_full_scale_g);
            for k in 0..40 {
                let t = f64::from(k) * 10.0;
                let past = (200.0..=220.0).contains(&t);
                let (g, a) = match k {
                    18 | 24 => (0.8 * gfs, 0.8 * afs),
                    19 | 23 => (0.95 * gfs, 0.95 * afs),
                    _ if past => (-0.9 * gfs, -0.9 * afs),
                    _ => (0.0, 0.0),
                };
                let mut s = NodeSample {
                    position: BodyPosition::Racket,
                    t_ms: t,
                    acc: [0.0, a as f32, 1.0],
                    gyro: [0.0, 0.0, g as f32],
                    angle: None,
                };
                c.condition(&mut s);
            }
            c.quality(&[], (0.0, 400.0), (150.0, 250.0)).wraps_left
        };
        let kept = run(Overflow::Clip);
        assert!(kept.gyro());
        assert_eq!(kept.acc_axes, [vec![], vec![(200.0, 220.0)], vec![]]);
        assert!(kept.acc_wrapped_at(1, 210.0) && !kept.acc_wrapped_at(1, 230.0));
        assert_eq!(run(Overflow::Wrap), WrapsLeft::default());
    }
}
