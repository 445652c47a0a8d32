//! The swing-model seam: what the court simulator asks of a model of a player's swing, so that
//! the model can be replaced without touching the court.
//!
//! Why: the analyser is developed against the simulator, so its accuracy measured on the same
//! [`KinematicModel`](crate::model::KinematicModel) partly measures how well the two agree with
//! each other. The analysis is to be scored on a swing model that shares nothing with this one
//! (issue 11); the court (rally structure, walking, tremor, sensor noise, the wire forms, loss
//! and reordering) stays the same, and only the racket's and the body's motion change.
//!
//! How: the court asks the model to [`plan`](SwingModel::plan) every swing, in contact order per
//! device, with a [`SwingRequest`] (who, which stroke, when, with or without the shuttle, and
//! where the racket was) and the device's planning RNG; the model answers with a
//! [`PlannedSwing`] that carries its ground truth and that the court samples at every sample
//! time inside [`segment`](PlannedSwing::segment) (outside it, the court turns the racket
//! smoothly from one plan's end attitude to the next one's start). To plug one in:
//!
//! ```
//! # use std::sync::Arc;
//! # use shuttlegate_sim::{CourtConfig, CourtSim, KinematicModel};
//! // Any `impl SwingModel` in place of `KinematicModel`.
//! let sim = CourtSim::standard(7, 2, CourtConfig::default())
//!     .with_swing_model(Arc::new(KinematicModel));
//! ```
//!
//! A model should draw only from the RNG it is given, so that the simulation stays
//! deterministic from the seed whatever the polling.

use std::fmt::Debug;

use rand::rngs::SmallRng;

use shuttlegate_core::analysis::Stroke;
use shuttlegate_core::analysis::vecmath::{Quat, Vec3};

use super::player::{Mount, PlayerStyle};
use super::truth::SwingTruth;

/// One swing the court needs: everything it knows when it schedules it.
#[derive(Debug, Clone, Copy)]
pub struct SwingRequest<'a> {
    /// Index of the device (and player) in the court; copied into the truth.
    pub device_index: usize,
    /// The device's code; copied into the truth.
    pub device: &'a str,
    /// How the player plays (speeds, timing, ranges of motion).
    pub style: &'a PlayerStyle,
    /// The stroke the rally calls for (`Serve` for a serve; never `Unknown` from the court).
    pub stroke: Stroke,
    /// Contact (or, for an air swing, where contact would be), unix ms.
    pub t_impact: f64,
    /// The racket meets the shuttle (false: a practice swing between rallies).
    pub impact: bool,
    /// The player moves to the shuttle before the swing (steps felt by every node).
    pub footwork: bool,
    /// The device carries body nodes (waist, shoulder or wrist); copied into the truth.
    pub has_chain: bool,
    /// The racket node's mount and full scales.
    pub mount: Mount,
    /// The racket's attitude (body→world) at the end of the previous plan, or at rest.
    pub q_prev: Quat,
}

/// A model of how players swing: plans one swing at a time.
pub trait SwingModel: Send + Sync + Debug {
    /// Plans the swing `request` describes, drawing from `rng` only.
    fn plan(&self, request: &SwingRequest<'_>, rng: &mut SmallRng) -> Box<dyn PlannedSwing>;
}

/// One planned swing, as the court renders it. Times are unix ms.
///
/// `Sync` as well as `Send` so that [`CourtSim`](crate::CourtSim) stays both, as it was before
/// its plans were boxed.
pub trait PlannedSwing: Send + Sync + Debug {
    /// What really happened; the court records it when the swing is planned.
    fn truth(&self) -> &SwingTruth;

    /// The span `(from, to)` around contact within which the racket follows this plan.
    fn segment(&self) -> (f64, f64);

    /// Racket attitude (body→world) at the segment's start.
    fn start_attitude(&self) -> Quat;

    /// Racket attitude (body→world) at `t` within the segment.
    fn attitude(&self, t: f64) -> Quat;

    /// Racket body-frame rate (°/s) at `t` within the segment.
    fn racket_rate(&self, t: f64) -> Vec3;

    /// World-frame linear acceleration of the racket node at `t` within the segment, m/s²
    /// (footwork included).
    fn hand_acceleration(&self, t: f64) -> Vec3;

    /// Body-frame contact transient of the racket node at `t` within the segment, g.
    fn contact_transient(&self, t: f64) -> Vec3;

    /// Segment `k`'s (0 waist yaw, 1 shoulder pitch, 2 wrist roll) rotation angle (°) and rate
    /// (°/s) at `t`; the court sums them over the plans near `t`.
    fn body_motion(&self, k: usize, t: f64) -> (f64, f64);

    /// Share of segment `k`'s rate that shows on the next axis (x→y→z→x) during this swing.
    fn body_cross_share(&self, k: usize) -> f64;

    /// Footwork vertical acceleration (g) felt by every node at `t`, before the swing.
    fn footwork_g(&self, t: f64) -> f64;
}
