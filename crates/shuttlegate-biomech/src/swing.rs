//! One stroke: what the player means (class, side, effort, where the racket meets the
//! shuttle) and how the racket's angular speed runs through it.
//!
//! The plan is drawn first, from the scenario; the signals are rendered from the plan. The
//! racket's pulse comes from one of four families ([`Shape`]), with or without a backswing
//! lobe and a follow-through, and its height is solved so that the head's speed at contact is
//! the planned one: the planned speed is the truth, the rendering serves it.

use glam::DVec3;
use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Normal};

use crate::literature as lit;
use crate::motion::TICK_MS;
use crate::truth::{Level, Shape, Side, StrokeClass};

/// A player: level, strength, body sizes, habits.
#[derive(Debug, Clone)]
pub struct Player {
    pub level: Level,
    /// Racket-head speed at full effort, m/s.
    pub top_speed_ms: f64,
    /// Wrist to sweet spot, m.
    pub reach_m: f64,
    /// Segment peak rates at full effort, °/s: waist, shoulder, wrist.
    pub segment_peak_dps: [f64; 3],
    /// Typical delays, ms: waist → shoulder, shoulder → wrist.
    pub delay_ms: [f64; 2],
    pub backswing_habit: f64,
}

impl Player {
    pub fn draw(rng: &mut SmallRng, level: Level) -> Player {
        let l = level.index();
        let (mean, sd) = lit::TOP_HEAD_SPEED_MS[l];
        let top = Normal::new(mean, sd)
            .expect("literature sd is positive")
            .sample(rng)
            .clamp(12.0, 48.0);
        let peaks = [0, 1, 2].map(|s| uniform(rng, lit::SEGMENT_PEAK_DPS[s][l]));
        Player {
            level,
            top_speed_ms: top,
            reach_m: uniform(rng, lit::WRIST_TO_SWEET_SPOT_M),
            segment_peak_dps: peaks,
            delay_ms: [
                uniform(rng, lit::WAIST_TO_SHOULDER_MS[l]),
                uniform(rng, lit::SHOULDER_TO_WRIST_MS[l]),
            ],
            backswing_habit: rng.random_range(0.3..0.9),
        }
    }
}

/// Everything drawn for one stroke before rendering.
#[derive(Debug, Clone)]
pub struct StrokePlan {
    pub class: StrokeClass,
    pub side: Side,
    pub impact: bool,
    /// Racket-head speed at contact, m/s.
    pub head_speed_ms: f64,
    /// The hand's share of it.
    pub hand_share: f64,
    pub elevation_deg: f64,
    pub pitch_deg: f64,
    pub heading_rad: f64,
    /// Contact minus the main lobe's peak, ms.
    pub contact_from_peak_ms: f64,
    pub shape: Shape,
    pub rise_ms: f64,
    pub fall_ms: f64,
    pub backswing: bool,
    pub follow_through: bool,
    pub footwork: bool,
    pub jump: bool,
    /// Racket spin about its shaft relative to the perpendicular rate.
    pub shaft_spin: f64,
    /// Chain: segment peaks (°/s) and their times relative to contact (ms).
    pub segment_peak_dps: [f64; 3],
    pub segment_t_ms: [f64; 3],
    pub segment_sigma_ms: [f64; 3],
    /// Forearm pronation share and how far the racket is cocked ahead of the forearm, rad.
    pub pronation: f64,
    pub cock_rad: f64,
}

/// The mix of the strokes played within a rally: every class of [`StrokeClass::ALL`] but the
/// serve, which comes last there, in its order. [assumption]
const RALLY_CLASS_WEIGHTS: [f64; 6] = [0.14, 0.16, 0.14, 0.16, 0.14, 0.14];

/// Draws a stroke played within a rally: a return or any later shot (a serve only opens a
/// rally; the session decides when).
pub fn rally_stroke(rng: &mut SmallRng) -> StrokeClass {
    let (serve, within_rally) = StrokeClass::ALL
        .split_last()
        .expect("there are stroke classes");
    debug_assert_eq!(*serve, StrokeClass::Serve);
    pick(rng, within_rally, &RALLY_CLASS_WEIGHTS)
}

/// Draws how the player plays the stroke `class`.
pub fn plan(
    rng: &mut SmallRng,
    player: &Player,
    class: StrokeClass,
    allow_jump: bool,
) -> StrokePlan {
    let forehand_share = match class {
        StrokeClass::Smash | StrokeClass::Clear | StrokeClass::Drop => 0.85,
        StrokeClass::Drive => 0.55,
        StrokeClass::Net | StrokeClass::Lift => 0.5,
        StrokeClass::Serve => 0.4,
    };
    let side = if rng.random_bool(forehand_share) {
        Side::Forehand
    } else {
        Side::Backhand
    };
    let overhead = matches!(
        class,
        StrokeClass::Smash | StrokeClass::Clear | StrokeClass::Drop
    );
    let mut effort = match (class, side) {
        // The low serve is a push; the forehand serve is the high one.
        (StrokeClass::Serve, Side::Backhand) => uniform(rng, lit::LOW_SERVE_EFFORT),
        _ => uniform(rng, lit::EFFORT[class.index()]),
    };
    if side == Side::Backhand {
        effort *= if overhead {
            uniform(rng, lit::BACKHAND_OVERHEAD_FACTOR)
        } else {
            rng.random_range(0.75..1.0)
        };
    }
    let jitter = Normal::new(1.0, lit::SPEED_JITTER_SD)
        .expect("sd is positive")
        .sample(rng);
    let head_speed_ms = (player.top_speed_ms * effort * jitter).max(2.5);
    // Serves: a backhand serve is the low one, a forehand serve the high one.
    let angle_row = match (class, side) {
        (StrokeClass::Serve, Side::Forehand) => 6,
        (StrokeClass::Serve, Side::Backhand) => 7,
        _ => class.index(),
    };
    let push = matches!(class, StrokeClass::Net)
        || (class == StrokeClass::Serve && side == Side::Backhand);
    let fwhm = uniform(
        rng,
        if push {
            lit::PUSH_FWHM_MS
        } else {
            lit::FORWARD_FWHM_MS
        },
    ) * match player.level {
        Level::Novice => rng.random_range(1.0..1.4),
        _ => 1.0,
    };
    // Split the width into rise and fall; either may be the longer.
    let rise_share = rng.random_range(0.35..0.75);
    let rise_ms = fwhm * rise_share / 1.1774;
    let fall_ms = fwhm * (1.0 - rise_share) / 1.1774;
    let contact_from_peak_ms = match class {
        // A drop is checked: contact while the racket is already slowing (or just before its
        // peak, for a player who holds back all through).
        StrokeClass::Drop => rng.random_range(-0.4..1.2) * fall_ms,
        StrokeClass::Net => rng.random_range(-0.6..0.6) * fall_ms,
        _ => rng.random_range(-0.5..0.35) * fall_ms,
    };
    let shape = pick(
        rng,
        &[
            Shape::SkewedGaussian,
            Shape::Gamma,
            Shape::TwoLobe,
            Shape::FlatTop,
        ],
        &[0.25, 0.3, 0.25, if push { 0.4 } else { 0.2 }],
    );
    let footwork = match class {
        StrokeClass::Serve => rng.random_bool(0.2),
        _ => rng.random_bool(0.65),
    };
    let jump = allow_jump
        && class == StrokeClass::Smash
        && side == Side::Forehand
        && player.level != Level::Novice
        && rng.random_bool(0.3);
    let backswing = rng.random_bool(if push { 0.3 } else { player.backswing_habit });
    // The chain: peaks scale with effort; timing from the player's habit, ±20 % per swing.
    let scale = 0.45 + 0.55 * effort.min(1.1);
    let segment_peak_dps = player
        .segment_peak_dps
        .map(|p| p * scale * rng.random_range(0.9..1.1));
    let t_wrist = -uniform(rng, lit::WRIST_BEFORE_CONTACT_MS);
    let d2 = player.delay_ms[1] * rng.random_range(0.8..1.2);
    let d1 = player.delay_ms[0] * rng.random_range(0.8..1.2);
    let segment_sigma_ms = [0, 1, 2].map(|s| uniform(rng, lit::SEGMENT_SIGMA_MS[s]));
    StrokePlan {
        class,
        side,
        impact: rng.random_bool(0.9),
        head_speed_ms,
        hand_share: uniform(rng, lit::HAND_SHARE),
        elevation_deg: uniform(rng, lit::ELEVATION_DEG[angle_row]),
        pitch_deg: uniform(rng, lit::PATH_PITCH_DEG[angle_row]),
        heading_rad: rng.random_range(-std::f64::consts::PI..std::f64::consts::PI),
        contact_from_peak_ms,
        shape,
        rise_ms,
        fall_ms,
        backswing,
        follow_through: rng.random_bool(0.7),
        footwork,
        jump,
        shaft_spin: uniform(rng, lit::RACKET_SHAFT_SPIN_SHARE) * sign(rng),
        segment_peak_dps,
        segment_t_ms: [t_wrist - d2 - d1, t_wrist - d2, t_wrist],
        segment_sigma_ms,
        pronation: uniform(rng, lit::PRONATION_SHARE) * sign(rng),
        cock_rad: rng.random_range(15f64..50.0).to_radians(),
    }
}

/// The racket's normalised forward profile (peak lobe at 1 at t = 0, ms), with its backswing
/// and follow-through lobes, before the taper.
#[derive(Debug, Clone)]
pub struct RacketProfile {
    shape: Shape,
    rise: f64,
    fall: f64,
    gamma_k: f64,
    plateau: f64,
    lead_lobe: (f64, f64),
    backswing: Option<(f64, f64, f64)>,
    follow: Option<(f64, f64, f64)>,
}

impl RacketProfile {
    pub fn draw(rng: &mut SmallRng, plan: &StrokePlan) -> RacketProfile {
        RacketProfile {
            shape: plan.shape,
            rise: plan.rise_ms.max(4.0),
            fall: plan.fall_ms.max(4.0),
            gamma_k: rng.random_range(2.0..6.0),
            plateau: rng.random_range(15.0..60.0),
            lead_lobe: (rng.random_range(0.4..0.75), rng.random_range(40.0..90.0)),
            backswing: plan.backswing.then(|| {
                (
                    -rng.random_range(0.2..0.6),
                    -rng.random_range(150.0..300.0),
                    rng.random_range(40.0..90.0),
                )
            }),
            follow: plan.follow_through.then(|| {
                (
                    -rng.random_range(0.1..0.4),
                    rng.random_range(150.0..280.0),
                    rng.random_range(50.0..100.0),
                )
            }),
        }
    }

    /// Value at `t` ms from the main peak.
    pub fn value(&self, t: f64) -> f64 {
        let main = match self.shape {
            Shape::SkewedGaussian => two_sided(t, self.rise, self.fall),
            Shape::Gamma => {
                // Onset `rise·2` before the peak; u = 1 at the peak.
                let w = 2.0 * self.rise;
                let u = (t + w) / w;
                if u <= 0.0 {
                    0.0
                } else {
                    let k = self.gamma_k;
                    (u.powf(k) * (k * (1.0 - u)).exp()).min(1.0)
                }
            }
            Shape::TwoLobe => {
                let (amp, lead) = self.lead_lobe;
                two_sided(t, self.rise, self.fall)
                    + amp * two_sided(t + lead, self.rise * 1.3, self.fall * 1.5)
            }
            Shape::FlatTop => {
                let half = self.plateau / 2.0;
                let (r, f) = (self.rise * 2.0, self.fall * 2.0);
                if t < -half - r || t > half + f {
                    0.0
                } else if t < -half {
                    0.5 - 0.5 * (std::f64::consts::PI * (t + half + r) / r).cos()
                } else if t <= half {
                    1.0
                } else {
                    0.5 + 0.5 * (std::f64::consts::PI * (t - half) / f).cos()
                }
            }
        };
        let lobe = |l: Option<(f64, f64, f64)>| {
            l.map_or(0.0, |(a, c, w)| {
                a * (-(t - c).powi(2) / (2.0 * w * w)).exp()
            })
        };
        main + lobe(self.backswing) + lobe(self.follow)
    }
}

fn two_sided(t: f64, rise: f64, fall: f64) -> f64 {
    let s = if t < 0.0 { rise } else { fall };
    (-(t * t) / (2.0 * s * s)).exp()
}

/// A body segment's angular-speed pulse: rise and fall of different widths, sometimes with a
/// lobe before the main one (the segment first driven by the one below it, then by its own
/// muscles). [assumption] No measured segment profile was found; asymmetric and two-humped
/// profiles are drawn because a symmetric bell is what a smoother-plus-parabola peak finder
/// is exact for, and real segments are not obliged to be symmetric.
#[derive(Debug, Clone, Copy)]
pub struct SegmentPulse {
    pub centre_ms: f64,
    pub rise_ms: f64,
    pub fall_ms: f64,
    pub peak_dps: f64,
    /// (amplitude share, lead before the centre in ms).
    pub lead_lobe: Option<(f64, f64)>,
}

impl SegmentPulse {
    pub fn draw(rng: &mut SmallRng, centre_ms: f64, sigma_ms: f64, peak_dps: f64) -> Self {
        let rise_ms = sigma_ms * rng.random_range(0.7..1.4);
        SegmentPulse {
            centre_ms,
            rise_ms,
            fall_ms: sigma_ms * rng.random_range(0.6..1.3),
            peak_dps,
            lead_lobe: rng.random_bool(0.3).then(|| {
                (
                    rng.random_range(0.25..0.55),
                    rise_ms * rng.random_range(1.5..2.5),
                )
            }),
        }
    }

    /// Rates, rad/s, at each tick of a window starting `t0_ms` (relative to contact).
    pub fn rates(&self, n: usize, t0_ms: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let t = t0_ms + i as f64 * TICK_MS - self.centre_ms;
                let lobe = self.lead_lobe.map_or(0.0, |(a, lead)| {
                    a * two_sided(t + lead, self.rise_ms, self.rise_ms)
                });
                self.peak_dps.to_radians() * (two_sided(t, self.rise_ms, self.fall_ms) + lobe)
            })
            .collect()
    }
}

/// Cosine taper of the first and last `ms` of a window, so a piece starts and ends at rest.
pub fn taper(rates: &mut [f64], ms: f64) {
    let k = ((ms / TICK_MS) as usize).min(rates.len() / 2).max(1);
    let n = rates.len();
    for i in 0..k {
        let w = 0.5 - 0.5 * (std::f64::consts::PI * i as f64 / k as f64).cos();
        rates[i] *= w;
        rates[n - 1 - i] *= w;
    }
}

/// The peak of |rates| and its time (ms from the window's start), refined by a parabola
/// through the three samples around it.
pub fn peak_of(rates: &[f64]) -> (f64, f64) {
    let (i, _) = rates
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .unwrap_or((0, &0.0));
    let y = |k: usize| rates[k].abs();
    if i == 0 || i + 1 >= rates.len() {
        return (y(i), i as f64 * TICK_MS);
    }
    let (a, b, c) = (y(i - 1), y(i), y(i + 1));
    let den = a - 2.0 * b + c;
    let off = if den.abs() > 1e-12 {
        (0.5 * (a - c) / den).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    (b - 0.25 * (a - c) * off, (i as f64 + off) * TICK_MS)
}

pub fn uniform(rng: &mut SmallRng, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

fn sign(rng: &mut SmallRng) -> f64 {
    if rng.random_bool(0.5) { 1.0 } else { -1.0 }
}

pub fn pick<T: Copy>(rng: &mut SmallRng, items: &[T], weights: &[f64]) -> T {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random_range(0.0..total);
    for (item, w) in items.iter().zip(weights) {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1]
}

/// A random unit vector.
pub fn random_unit(rng: &mut SmallRng) -> DVec3 {
    loop {
        let v = DVec3::new(
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
        );
        let l = v.length();
        if (0.1..=1.0).contains(&l) {
            return v / l;
        }
    }
}
