//! The kinematic model: how a player's swing moves the racket and the body nodes, and what
//! each IMU node therefore reports (docs/analysis.md, "Simulator", has the derivation and the
//! published figures behind the ranges).
//!
//! Racket node (x along the shaft to the head, z the forehand face's normal): during a swing
//! the racket turns about a body-fixed axis `a = unit(ρ, −s, 0)` (s = +1 forehand, −1
//! backhand; ρ the pronation share) at rate `A(t)`: a two-sided Gaussian forward pulse (rise σ,
//! shorter fall σ) followed by a slower opposite return that brings the racket back, so
//! `q(t) = q₀ ⊗ exp(a·θ(t))` with `θ = ∫A`. The head moves along `a × x̂ ∝ s·ẑ`. Contact is
//! placed on the pulse (at its crest, or on the falling flank for a checked drop) and the
//! attitude at contact is built from the stroke's shaft elevation and head-path pitch, so the
//! truth (stroke, side, height, speed) is by construction what the racket did. The hand adds
//! a translational speed pulse along the head's path. Contact adds a damped transient to the
//! accelerometer (and a jolt to the gyro) scaled by the shuttle's momentum. Between swings the
//! racket turns smoothly (smoothstep slerp) to the next swing's start attitude.
//!
//! Body nodes: each segment (waist yaw, shoulder pitch, wrist roll) turns by a bell-shaped
//! rate pulse whose peak and area (the ROM) are the player's, peaking at the player's delays
//! before contact, then returns at half speed. Their fused angles are the integrated rotation.

// Index loops over parallel arrays read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

use rand::Rng;
use rand::rngs::SmallRng;

use shuttlegate_core::analysis::signal::Pulse;
use shuttlegate_core::analysis::vecmath::{self as vm, Quat, Vec3};
use shuttlegate_core::analysis::{Height, Side, Stroke};

use super::player::{Mount, PlayerStyle, uniform};
use super::swing::{PlannedSwing, SwingModel, SwingRequest};
use super::truth::SwingTruth;

pub const G: f64 = 9.806_65;
/// Racket speed over shuttle speed: the analyser's default ratio (docs/analysis.md).
pub const SHUTTLE_RATIO: f64 = 1.5;
/// Return (recovery) pulse of the racket: starts this long after the forward peak, this wide.
const RETURN_DELAY_MS: f64 = 150.0;
const RETURN_SIGMA_MS: f64 = 100.0;
/// The hand's speed pulse width (σ, ms): the arm's translation builds over ~200 ms.
const HAND_SIGMA_MS: f64 = 80.0;
/// Swing segment around contact in which the racket follows the swing model, ms.
pub const SEGMENT_BEFORE_MS: f64 = 300.0;
pub const SEGMENT_AFTER_MS: f64 = 650.0;

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The stroke's shape at contact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrokeShape {
    pub stroke: Stroke,
    pub side: Side,
    pub height: Height,
    pub racket_kmh: f64,
    /// Shaft elevation above the horizontal, °.
    pub elev_deg: f64,
    /// Head path pitch (+ up), °.
    pub pitch_deg: f64,
    /// Rate at contact over the peak rate (1 at the crest; below for a checked drop).
    pub contact_ratio: f64,
}

/// Draws a stroke's shape for a player (ranges in docs/analysis.md).
pub fn stroke_shape(stroke: Stroke, style: &PlayerStyle, rng: &mut SmallRng) -> StrokeShape {
    let max = style.max_racket_kmh;
    let fh = |rng: &mut SmallRng, p: f64| {
        if rng.random::<f64>() < p {
            Side::Forehand
        } else {
            Side::Backhand
        }
    };
    let (side, kmh, elev, pitch, ratio) = match stroke {
        Stroke::Smash => (
            fh(rng, 0.95),
            max * uniform(rng, 0.85, 1.0),
            uniform(rng, 35.0, 60.0),
            uniform(rng, -30.0, -10.0),
            1.0,
        ),
        Stroke::Clear => (
            fh(rng, 0.85),
            max * uniform(rng, 0.65, 0.85),
            uniform(rng, 40.0, 70.0),
            uniform(rng, 5.0, 25.0),
            1.0,
        ),
        Stroke::Drop => (
            fh(rng, 0.85),
            max * uniform(rng, 0.3, 0.5),
            uniform(rng, 40.0, 70.0),
            uniform(rng, -20.0, -6.0),
            uniform(rng, 0.45, 0.7),
        ),
        Stroke::Drive => (
            fh(rng, 0.5),
            max * uniform(rng, 0.45, 0.7),
            uniform(rng, -10.0, 18.0),
            uniform(rng, -8.0, 8.0),
            1.0,
        ),
        Stroke::Net => (
            fh(rng, 0.5),
            uniform(rng, 12.0, 30.0),
            uniform(rng, -15.0, 15.0),
            uniform(rng, 5.0, 30.0),
            1.0,
        ),
        Stroke::Lift => (
            fh(rng, 0.5),
            max * uniform(rng, 0.45, 0.7),
            uniform(rng, -60.0, -28.0),
            uniform(rng, 20.0, 45.0),
            1.0,
        ),
        Stroke::Serve | Stroke::Unknown => {
            if rng.random::<f64>() < 0.6 {
                // Low backhand serve, pushed.
                (
                    Side::Backhand,
                    uniform(rng, 15.0, 32.0),
                    uniform(rng, -55.0, -28.0),
                    uniform(rng, 5.0, 20.0),
                    1.0,
                )
            } else {
                // High forehand serve.
                (
                    Side::Forehand,
                    max * uniform(rng, 0.5, 0.7),
                    uniform(rng, -65.0, -30.0),
                    uniform(rng, 25.0, 45.0),
                    1.0,
                )
            }
        }
    };
    // Perpendicular to the shaft, the head's path can climb at most as steeply as the shaft
    // is level: |sin pitch| ≤ cos elev.
    let limit = (0.95 * elev.to_radians().cos()).asin().to_degrees();
    let pitch = pitch.clamp(-limit, limit);
    let height = if elev > 25.0 {
        Height::Overhead
    } else if elev < -20.0 {
        Height::Underarm
    } else {
        Height::Sidearm
    };
    StrokeShape {
        stroke: if stroke == Stroke::Unknown {
            Stroke::Serve
        } else {
            stroke
        },
        side,
        height,
        racket_kmh: kmh,
        elev_deg: elev,
        pitch_deg: pitch,
        contact_ratio: ratio,
    }
}

/// The kinematic model as a [`SwingModel`]: the court's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct KinematicModel;

impl SwingModel for KinematicModel {
    fn plan(&self, request: &SwingRequest<'_>, rng: &mut SmallRng) -> Box<dyn PlannedSwing> {
        // The shape first, then the plan, from the same RNG: the order the court has always
        // drawn in (tests/determinism.rs holds it).
        let shape = stroke_shape(request.stroke, request.style, rng);
        Box::new(SwingPlan::new(
            request.device_index,
            request.device,
            request.style,
            shape,
            request.t_impact,
            request.impact,
            request.footwork,
            request.has_chain,
            request.mount,
            request.q_prev,
            rng,
        ))
    }
}

/// Everything needed to render one swing, plus its truth.
#[derive(Debug, Clone)]
pub struct SwingPlan {
    pub truth: SwingTruth,
    /// Racket attitude (body→world) at the segment's start.
    pub q0: Quat,
    /// Rotation axis in the racket frame.
    pub axis: Vec3,
    /// Forward rate pulse about `axis`, °/s.
    pub pulse: Pulse,
    /// Return pulse (°/s peak, centre, σ), opposite sign.
    pub ret: (f64, f64, f64),
    /// Hand speed at contact (m/s) along the world direction `hand_dir`.
    pub hand_speed: f64,
    pub hand_dir: Vec3,
    /// Contact transient amplitude, g (0 for an air swing).
    pub impact_g: f64,
    /// Body segments: (peak rate °/s, centre ms, σ ms, cross-axis share).
    pub body: [(f64, f64, f64, f64); 3],
    /// Steps of footwork before the swing: (time, vertical amplitude g).
    pub steps: Vec<(f64, f64)>,
}

impl SwingPlan {
    /// Plans a swing with contact at `t_impact`. `q_prev` is the racket's attitude before it
    /// (the heading is chosen so the racket need turn least to get ready).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        device_index: usize,
        device: &str,
        style: &PlayerStyle,
        shape: StrokeShape,
        t_impact: f64,
        impact: bool,
        footwork: bool,
        has_chain: bool,
        mount: Mount,
        q_prev: Quat,
        rng: &mut SmallRng,
    ) -> SwingPlan {
        let j = |rng: &mut SmallRng| 1.0 + style.jitter * normal(rng);
        let s = if shape.side == Side::Forehand {
            1.0
        } else {
            -1.0
        };
        let rho = uniform(rng, -0.25, 0.25);
        let axis = vm::unit([rho, -s, 0.0]).unwrap_or([0.0, -1.0, 0.0]);
        let perp_share = 1.0 / (1.0 + rho * rho).sqrt();
        let v = shape.racket_kmh / 3.6;
        let hand_speed = style.hand_fraction * v;
        let omega_perp_contact = ((v - hand_speed) / mount.radius_m).to_degrees();
        let rise = style.rise_ms * j(rng);
        let fall = style.fall_ms * j(rng);
        // Contact on the crest (±4 ms) or, for a checked swing, on the falling flank.
        let offset = if shape.contact_ratio < 1.0 {
            fall * (2.0 * (1.0 / shape.contact_ratio).ln()).sqrt()
        } else {
            uniform(rng, -4.0, 4.0)
        };
        let t_peak = t_impact - offset;
        // The rate about the axis is linear in the pulse's peak (the return scales with the
        // forward rotation), so one evaluation at unit peak gives the scale for the target.
        let unit = Pulse {
            peak: 1.0,
            t0: t_peak,
            rise_ms: rise,
            fall_ms: fall,
        };
        let ret_for = |p: &Pulse| {
            let forward_deg = p.peak * (std::f64::consts::PI / 2.0).sqrt() * (rise + fall) / 1000.0;
            let ret_peak =
                forward_deg * 1000.0 / (RETURN_SIGMA_MS * (std::f64::consts::TAU).sqrt());
            (
                ret_peak,
                t_peak + RETURN_DELAY_MS + 2.0 * fall,
                RETURN_SIGMA_MS,
            )
        };
        let unit_rate = {
            let (rp, rc, rs) = ret_for(&unit);
            unit.at(t_impact) - rp * (-0.5 * ((t_impact - rc) / rs).powi(2)).exp()
        };
        let pulse = Pulse {
            peak: omega_perp_contact / perp_share / unit_rate,
            ..unit
        };
        let ret = ret_for(&pulse);

        // Attitude at contact: shaft at `elev`, head path at `pitch`, heading chosen below.
        let r_imp0 = contact_attitude(shape, s, rng);
        let theta_contact = theta_fwd(&pulse, t_impact) - theta_ret(ret, t_impact);
        let back = vm::from_rotation_vector(vm::scale(axis, -theta_contact.to_radians()));
        let best = (0..24)
            .map(|k| {
                let yaw =
                    vm::from_rotation_vector([0.0, 0.0, k as f64 * std::f64::consts::TAU / 24.0]);
                let q_imp = vm::mul(yaw, r_imp0);
                let q0 = vm::mul(q_imp, back);
                let angle = vm::norm(vm::to_rotation_vector(vm::mul(vm::conj(q_prev), q0)));
                (angle, q_imp, q0)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let (_, q_imp, q0) = best.unwrap_or((0.0, r_imp0, vm::mul(r_imp0, back)));
        let hand_dir = vm::rotate(q_imp, [0.0, 0.0, s]);

        let effort = (shape.racket_kmh / style.max_racket_kmh).clamp(0.1, 1.0);
        let t_wrist = t_impact - style.wrist_lead_ms * j(rng);
        let t_shoulder = t_wrist - style.delay_sw_ms * j(rng);
        let t_waist = t_shoulder - style.delay_ws_ms * j(rng);
        let times = [t_waist, t_shoulder, t_wrist];
        let mut body = [(0.0, 0.0, 1.0, 0.0); 3];
        let mut peak_dps = [0.0; 3];
        let mut rom_deg = [0.0; 3];
        for k in 0..3 {
            let peak = style.peak_dps[k] * (0.55 + 0.45 * effort) * j(rng);
            let rom = style.rom_deg[k] * (0.6 + 0.4 * effort) * j(rng);
            let sigma = rom / (peak * (std::f64::consts::TAU).sqrt()) * 1000.0;
            let cross = uniform(rng, 0.05, 0.2);
            body[k] = (peak, times[k], sigma, cross);
            peak_dps[k] = peak * (1.0 + cross * cross).sqrt();
            rom_deg[k] = rom;
        }
        let shuttle = impact.then_some(shape.racket_kmh * SHUTTLE_RATIO);
        // Contact transient: the shuttle's momentum change rings the frame; a net touch gives
        // a few g, a smash more than the accelerometer's range.
        let impact_g = shuttle.map_or(0.0, |v| 1.5 + 0.05 * v);
        let steps = if footwork {
            let n = 3;
            (0..n)
                .map(|k| {
                    (
                        t_impact - 1250.0 + k as f64 * 280.0 + uniform(rng, -30.0, 30.0),
                        uniform(rng, 0.3, 0.8),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let gyro_max = pulse.peak * axis.iter().fold(0.0f64, |m, a| m.max(a.abs()));
        let saturated = gyro_max > mount.gyro_fs_dps || impact_g > mount.acc_fs_g;
        let truth = SwingTruth {
            device_index,
            device: device.to_string(),
            t_start: t_peak - rise * (2.0 * 100f64.ln()).sqrt(),
            t_impact,
            t_end: t_peak + fall * (2.0 * 100f64.ln()).sqrt(),
            impact,
            stroke: shape.stroke,
            side: shape.side,
            height: shape.height,
            racket_speed_kmh: shape.racket_kmh,
            shuttle_speed_kmh: shuttle,
            saturated,
            peak_dps,
            t_peak: times,
            delay_ms: [times[1] - times[0], times[2] - times[1]],
            rom_deg,
            has_chain,
        };
        SwingPlan {
            truth,
            q0,
            axis,
            pulse,
            ret,
            hand_speed,
            hand_dir,
            impact_g,
            body,
            steps,
        }
    }

    /// Rotation angle about `axis` at `t`, °.
    fn theta(&self, t: f64) -> f64 {
        theta_fwd(&self.pulse, t) - theta_ret(self.ret, t)
    }

    /// Rate about `axis` at `t`, °/s.
    fn rate(&self, t: f64) -> f64 {
        let (p, c, s) = self.ret;
        self.pulse.at(t) - p * (-0.5 * ((t - c) / s).powi(2)).exp()
    }
}

impl PlannedSwing for SwingPlan {
    fn truth(&self) -> &SwingTruth {
        &self.truth
    }

    fn segment(&self) -> (f64, f64) {
        (
            self.truth.t_impact - SEGMENT_BEFORE_MS,
            self.truth.t_impact + SEGMENT_AFTER_MS,
        )
    }

    fn start_attitude(&self) -> Quat {
        self.q0
    }

    /// Racket attitude at `t` within the segment.
    fn attitude(&self, t: f64) -> Quat {
        vm::mul(
            self.q0,
            vm::from_rotation_vector(vm::scale(self.axis, self.theta(t).to_radians())),
        )
    }

    /// Racket body rate (°/s) at `t` within the segment, with the contact jolt.
    fn racket_rate(&self, t: f64) -> Vec3 {
        let mut w = vm::scale(self.axis, self.rate(t));
        let u = t - self.truth.t_impact;
        if self.impact_g > 0.0 && u > 0.0 {
            let jolt = 0.08 * self.pulse.at(self.truth.t_impact) * alpha(u / 2.0, 3.0);
            w = vm::sub(w, vm::scale(self.axis, jolt));
        }
        w
    }

    /// World-frame linear acceleration of the racket node (hand), m/s².
    fn hand_acceleration(&self, t: f64) -> Vec3 {
        let u = (t - self.truth.t_impact) / 1000.0;
        let s = HAND_SIGMA_MS / 1000.0;
        let a = -self.hand_speed * u / (s * s) * (-0.5 * (u / s).powi(2)).exp();
        let mut out = vm::scale(self.hand_dir, a);
        for &(ts, amp) in &self.steps {
            out[2] += step_acceleration(t - ts, amp) * G;
        }
        out
    }

    /// Body-frame contact transient of the racket node, g.
    fn contact_transient(&self, t: f64) -> Vec3 {
        let u = t - self.truth.t_impact;
        if self.impact_g <= 0.0 || u <= 0.0 || u > 60.0 {
            return [0.0; 3];
        }
        let head = vm::cross(self.axis, [1.0, 0.0, 0.0]);
        let ring = 0.3 * (-u / 8.0).exp() * (std::f64::consts::TAU * 0.170 * u).sin();
        vm::scale(head, -self.impact_g * (alpha(u, 3.0) + ring))
    }

    /// Segment `k`'s (waist, shoulder, wrist) rotation angle and rate at `t`.
    fn body_motion(&self, k: usize, t: f64) -> (f64, f64) {
        let (peak, c, sigma, _) = self.body[k];
        let fwd_total = peak * sigma * (std::f64::consts::TAU).sqrt() / 1000.0;
        let rc = c + 9.0 * sigma;
        let rs = 2.0 * sigma;
        let rp = fwd_total * 1000.0 / (rs * (std::f64::consts::TAU).sqrt());
        let angle = fwd_total * cdf((t - c) / sigma) - fwd_total * cdf((t - rc) / rs);
        let rate = peak * (-0.5 * ((t - c) / sigma).powi(2)).exp()
            - rp * (-0.5 * ((t - rc) / rs).powi(2)).exp();
        (angle, rate)
    }

    /// Footwork vertical acceleration (g) felt by the body nodes.
    fn footwork_g(&self, t: f64) -> f64 {
        self.steps
            .iter()
            .map(|&(ts, amp)| step_acceleration(t - ts, amp))
            .sum()
    }

    fn body_cross_share(&self, k: usize) -> f64 {
        self.body[k].3
    }
}

/// One step's vertical acceleration (a full sine period over 150 ms: push off, land), g.
pub fn step_acceleration(u_ms: f64, amp: f64) -> f64 {
    if (0.0..150.0).contains(&u_ms) {
        amp * (std::f64::consts::TAU * u_ms / 150.0).sin()
    } else {
        0.0
    }
}

/// The alpha function `(u/τ)·e^{1−u/τ}` (peak 1 at u = τ): a sensor's low-passed response to
/// an impulse.
fn alpha(u: f64, tau: f64) -> f64 {
    if u <= 0.0 {
        0.0
    } else {
        (u / tau) * (1.0 - u / tau).exp()
    }
}

fn theta_fwd(p: &Pulse, t: f64) -> f64 {
    let k = (std::f64::consts::PI / 2.0).sqrt();
    let deg = if t < p.t0 {
        p.peak * p.rise_ms * k * (1.0 + erf((t - p.t0) / (p.rise_ms * std::f64::consts::SQRT_2)))
    } else {
        p.peak * p.rise_ms * k
            + p.peak * p.fall_ms * k * erf((t - p.t0) / (p.fall_ms * std::f64::consts::SQRT_2))
    };
    deg / 1000.0
}

fn theta_ret((peak, c, s): (f64, f64, f64), t: f64) -> f64 {
    peak * s * (std::f64::consts::TAU).sqrt() * cdf((t - c) / s) / 1000.0
}

/// Standard normal CDF.
fn cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// erf, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
pub fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y
}

/// Racket attitude (body→world, world z up) with the shaft at `elev`, the head moving at
/// `pitch` along `s·ẑ` (heading 0; the caller turns it).
fn contact_attitude(shape: StrokeShape, s: f64, rng: &mut SmallRng) -> Quat {
    let (e, p) = (shape.elev_deg.to_radians(), shape.pitch_deg.to_radians());
    let x = [e.cos(), 0.0, e.sin()];
    let up = [0.0, 0.0, 1.0];
    let up_perp = vm::sub(up, vm::scale(x, vm::dot(up, x)));
    let up_perp = vm::unit(up_perp).unwrap_or([0.0, 1.0, 0.0]);
    let across = vm::unit(vm::cross(x, up)).unwrap_or([0.0, 1.0, 0.0]);
    let k = (p.sin() / e.cos().max(1e-6)).clamp(-1.0, 1.0);
    let sideways = if rng.random::<bool>() { 1.0 } else { -1.0 };
    // The head's path `d` is perpendicular to the shaft, climbing at `pitch`.
    let d = vm::add(
        vm::scale(up_perp, k),
        vm::scale(across, sideways * (1.0 - k * k).sqrt()),
    );
    let z = vm::scale(d, s);
    let y = vm::cross(z, x);
    vm::from_axes(x, y, z)
}

/// Euler angles wrapped to ±180°.
pub fn wrap180(d: f64) -> f64 {
    (d + 180.0).rem_euclid(360.0) - 180.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn erf_matches_known_values() {
        assert!((erf(0.5) - 0.520_499_877_8).abs() < 2e-7);
        assert!((erf(-1.0) + 0.842_700_792_9).abs() < 2e-7);
    }

    #[test]
    fn a_planned_swing_hits_its_contact_attitude_and_speed() {
        let mut rng = SmallRng::seed_from_u64(7);
        let style = PlayerStyle::random(&mut rng, 0.7);
        for stroke in [Stroke::Smash, Stroke::Lift, Stroke::Drop, Stroke::Drive] {
            let shape = stroke_shape(stroke, &style, &mut rng);
            let mount = Mount {
                radius_m: 0.55,
                gyro_fs_dps: 2000.0,
                acc_fs_g: 16.0,
            };
            let plan = SwingPlan::new(
                0,
                "d",
                &style,
                shape,
                10_000.0,
                true,
                true,
                false,
                mount,
                vm::IDENTITY,
                &mut rng,
            );
            let q = plan.attitude(10_000.0);
            let shaft = vm::rotate(q, [1.0, 0.0, 0.0]);
            assert!(
                (shaft[2].asin().to_degrees() - shape.elev_deg).abs() < 0.5,
                "{stroke:?}"
            );
            let w = plan.racket_rate(10_000.0 - 1e-6);
            let perp = w[1].hypot(w[2]).to_radians() * 0.55 + plan.hand_speed;
            assert!(
                (perp * 3.6 / shape.racket_kmh - 1.0).abs() < 1e-3,
                "{stroke:?}"
            );
            let head = vm::rotate(q, vm::unit(vm::cross(w, [1.0, 0.0, 0.0])).unwrap());
            assert!(
                (head[2].asin().to_degrees() - shape.pitch_deg).abs() < 0.5,
                "{stroke:?}"
            );
            // The return pulse brings the racket back where it started.
            let end = plan.attitude(plan.segment().1);
            assert!(vm::norm(vm::to_rotation_vector(vm::mul(vm::conj(plan.q0), end))) < 1e-3);
        }
    }
}
