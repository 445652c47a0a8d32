//! Where the node sits on the turning segment, from its own centripetal acceleration.
//!
//! The racket-head speed is the hand's speed plus |ω⊥| × the pivot-to-sweet-spot reach
//! (`mount_radius_m`). The hand's speed comes from integrating the node's gravity-free
//! acceleration, but the node is not at the pivot: taped on the handle or throat it sits
//! 5–25 cm up the shaft, so the integral is the *node's* velocity, which carries ω⊥ × r_node
//! of the racket's own turn. Added to ω⊥ × reach, that turn would count twice (on the
//! independent simulator it put racket-only speeds 20 % high). hand.rs takes the turn's
//! acceleration at this offset out of every sample before integrating.
//!
//! The offset is measured, not configured: a point at distance r along the shaft (x) from
//! the pivot feels, along x, the centripetal acceleration −r·ω⊥² (rigid-body kinematics:
//! ω × (ω × r x̂) has x component −r·(ω_y² + ω_z²); the tangential α × r x̂ has none). During
//! the forward swing ω⊥² reaches 500–1500 rad²/s², so a 10 cm offset reads 5–15 g along the
//! shaft, far above gravity's ≤ 1 g and the hand's own push, which runs across the shaft.
//! A least-squares slope of a_x against ω⊥² over the swing's fast, unclipped samples is r.
//!
//! Gravity is taken out of a_x first (speed27, [`shaft_beyond_gravity_ms2`]): the
//! accelerometer reads the specific force, so a shaft pointing down reads −1 g along x at
//! rest, the sign of the centripetal term, and one pointing up +1 g. On a slow stroke that
//! is no small part: a serve or net shot turns at 8–15 rad/s at contact, where r·ω⊥² is
//! 1–3 g for a 15 cm offset, so 1 g of gravity reads as 4–15 cm of lever — longer on the
//! underarm strokes (shaft down), shorter on the overhead ones (shaft up), and every
//! centimetre too long takes ω⊥ × Δr off the hand's speed.

use crate::analysis::STANDARD_GRAVITY as G;
use crate::analysis::vecmath::{self as vm, Quat, Vec3};

/// The slope is taken over samples turning at least this share of the swing's peak first.
/// The hand's own push runs along the head's path at contact, across the shaft there, but
/// before contact the shaft has not yet turned square to it: the push reads along the
/// shaft by the sine of the angle still to turn, and on the rising flank (the hand speeding
/// up) with the sign of the centripetal term, so it reads as a longer lever. At 40 % of the
/// peak the racket is still 60–90° short of contact and the push's share along the shaft
/// (tens of m/s² for a hand reaching 5–10 m/s in ~100 ms) is as large as the centripetal
/// r·ω⊥² on those samples (the least-squares weight, ω⊥⁴, keeps the net bias near a
/// centimetre: the unit test below); above 80 % the angle still to turn is 30–45° and the
/// centripetal term, at ≥ 64 % of its peak, dominates. An overestimated r takes ω⊥ × Δr of the turn out of the hand's
/// speed. On the independent simulator's tuning seeds 0–59 at 100 Hz (in process), 0.4 →
/// 0.8: speed MAE 28.4 → 28.0 %, bias −7.6 → −7.1 %, the hand part's median 4.1 → 4.3 km/h
/// (7.3 → 7.8 on aligned racket nodes where contact was found; measured with a carried
/// gravity anchor for the hand that speed18 later took out, which 2 of 1429 swings used) —
/// a small part of what the hand's speed lacks, not the cause (docs/analysis.md).
const MIN_RATE_SHARE: f64 = 0.8;
/// Fewer than [`MIN_SAMPLES`] that fast (a short pulse at a low rate): the slope over samples
/// above this share instead — biased long, but r = 0 would count the node's whole share
/// of the turn twice.
const FALLBACK_RATE_SHARE: f64 = 0.4;
/// Fewer fast samples than this give no slope worth trusting.
const MIN_SAMPLES: usize = 3;

/// The shaft axis's (x) reading beyond gravity per sample, m/s²: `acc` in units of the
/// node's rest reading `rest_g` (an uncalibrated part reads ~1.3 at rest), `attitude` body
/// → anchor, `up` gravity's direction in the anchor frame. Without an anchor gravity stays
/// in (the fit before speed27).
pub fn shaft_beyond_gravity_ms2(
    acc: &[Vec3],
    attitude: &[Quat],
    up: Option<Vec3>,
    rest_g: f64,
) -> Vec<f64> {
    let rest_g = if rest_g > 0.0 { rest_g } else { 1.0 };
    acc.iter()
        .zip(attitude)
        .map(|(a, q)| {
            let gravity_x = up.map_or(0.0, |up| vm::rotate(vm::conj(*q), up)[0] * rest_g);
            (a[0] - gravity_x) * G / rest_g
        })
        .collect()
}

/// The node's distance from the pivot along the shaft (m, ≥ 0, at most `reach_m`), from the
/// samples `picked` out of the swing: `shaft_ms2` the shaft axis's reading beyond gravity
/// ([`shaft_beyond_gravity_ms2`]), `perp_dps` the |ω⊥| of each sample, `clean` false for
/// samples with any clipped or wrapped axis. `None` with too few fast clean samples.
pub fn node_offset_m(
    shaft_ms2: &[f64],
    perp_dps: &[f64],
    clean: &dyn Fn(usize) -> bool,
    picked: impl Iterator<Item = usize>,
    peak_dps: f64,
    reach_m: f64,
) -> Option<f64> {
    let picked: Vec<usize> = picked.filter(|&i| clean(i)).collect();
    [MIN_RATE_SHARE, FALLBACK_RATE_SHARE]
        .into_iter()
        .find_map(|share| slope_above(shaft_ms2, perp_dps, &picked, share * peak_dps, reach_m))
}

/// The least-squares r over the `picked` samples turning at `min_dps` or faster; `None` with
/// fewer than [`MIN_SAMPLES`].
fn slope_above(
    shaft_ms2: &[f64],
    perp_dps: &[f64],
    picked: &[usize],
    min_dps: f64,
    reach_m: f64,
) -> Option<f64> {
    let (mut sxy, mut sxx, mut n) = (0.0, 0.0, 0usize);
    for &i in picked {
        if perp_dps[i] < min_dps {
            continue;
        }
        let w2 = perp_dps[i].to_radians().powi(2);
        sxy += -shaft_ms2[i] * w2;
        sxx += w2 * w2;
        n += 1;
    }
    if n < MIN_SAMPLES || sxx <= 0.0 {
        return None;
    }
    let r = sxy / sxx;
    r.is_finite().then(|| r.clamp(0.0, reach_m))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shaft axis in m/s² with nothing taken out (no gravity anchor, a calibrated part).
    fn shaft(acc: &[Vec3]) -> Vec<f64> {
        let still = vec![vm::from_rotation_vector([0.0; 3]); acc.len()];
        shaft_beyond_gravity_ms2(acc, &still, None, 1.0)
    }

    /// A node 12 cm up the shaft of a racket turning at a Gaussian rate, with 1 g of gravity
    /// along the shaft and a hand push across it: the slope finds the 12 cm.
    #[test]
    fn the_offset_is_the_slope_of_the_shaft_acceleration_against_the_squared_rate() {
        let peak = 2500.0;
        let perp: Vec<f64> = (0..40)
            .map(|i| peak * (-((i as f64 - 20.0) / 6.0).powi(2) / 2.0).exp())
            .collect();
        let acc: Vec<Vec3> = perp
            .iter()
            .map(|w| [-0.12 * w.to_radians().powi(2) / G + 0.7, 3.0, 0.4])
            .collect();
        let r = node_offset_m(&shaft(&acc), &perp, &|_| true, 0..40, peak, 0.6).unwrap();
        assert!((r - 0.12).abs() < 0.01, "{r}");
    }

    /// The racket turning in a plane at 100 Hz through a Gaussian |ω⊥| of 2500 °/s (σ 30 ms)
    /// while the hand speeds up to 7 m/s (σ 60 ms) along the head's path at the peak, the
    /// node 15 cm up the shaft. Before the peak the shaft is not yet square to the path, so
    /// the push reads along it: over samples from 40 % of the peak the slope reads the node
    /// 11 mm further out (0.5 m/s off the hand at 2500 °/s); from 80 % under 8 mm, about
    /// half (the push still reads along the shaft there: the rule lessens the bias, it does
    /// not remove it).
    #[test]
    fn the_hands_push_along_the_unturned_shaft_is_not_read_as_lever() {
        let (r, dt, peak_dps) = (0.15, 0.010, 2500.0);
        let rate = |t: f64| peak_dps * (-0.5 * (t / 0.030f64).powi(2)).exp();
        let times: Vec<f64> = (-12..=0).map(|k| k as f64 * dt).collect();
        // The angle still to turn before the peak, rad (the trapezoid of the rate).
        let to_turn = |t: f64| -> f64 {
            let steps = 400;
            let h = -t / steps as f64;
            (0..steps)
                .map(|k| rate(t + (k as f64 + 0.5) * h) * h)
                .sum::<f64>()
                .to_radians()
        };
        let hand_acc = |t: f64| -7.0 * t / 0.060f64.powi(2) * (-0.5 * (t / 0.060f64).powi(2)).exp();
        let perp: Vec<f64> = times.iter().map(|&t| rate(t)).collect();
        let acc: Vec<Vec3> = times
            .iter()
            .map(|&t| {
                let w = rate(t).to_radians();
                // The path is square to the shaft at the peak; `to_turn` earlier, the push
                // reads −sin(to_turn) of itself along the shaft.
                let push_x = -hand_acc(t) * to_turn(t).sin();
                [
                    (-r * w * w + push_x) / G,
                    hand_acc(t) * to_turn(t).cos() / G,
                    1.0,
                ]
            })
            .collect();
        let n = times.len();
        let found = node_offset_m(&shaft(&acc), &perp, &|_| true, 0..n, peak_dps, 0.6).unwrap();
        assert!((found - r).abs() < 0.008, "{found}");
        let from_40 = slope_above(
            &shaft(&acc),
            &perp,
            &(0..n).collect::<Vec<_>>(),
            0.4 * peak_dps,
            0.6,
        )
        .unwrap();
        assert!(from_40 - r > 1.7 * (found - r), "{from_40} against {found}");
    }

    #[test]
    fn clipped_samples_and_a_slow_turn_give_no_offset() {
        let perp = vec![2000.0; 10];
        let acc = vec![[-16.0, 0.0, 0.0]; 10];
        assert_eq!(
            node_offset_m(&shaft(&acc), &perp, &|_| false, 0..10, 2000.0, 0.6),
            None
        );
        let slow = vec![100.0; 10];
        assert_eq!(
            node_offset_m(&shaft(&acc), &slow, &|_| true, 0..10, 2000.0, 0.6),
            None
        );
    }

    #[test]
    fn the_offset_never_exceeds_the_reach() {
        let perp = vec![2000.0; 10];
        let acc = vec![[-200.0, 0.0, 0.0]; 10];
        assert_eq!(
            node_offset_m(&shaft(&acc), &perp, &|_| true, 0..10, 2000.0, 0.55),
            Some(0.55)
        );
    }

    /// A slow underarm stroke (a serve: 700 °/s at its peak) with the shaft pointing down,
    /// the node 12 cm up it, on an uncalibrated part reading 1.3 at rest. The shaft axis
    /// reads −r·ω⊥² and −1 g of gravity (scaled by 1.3): taken as it reads, the fit puts the
    /// node several centimetres further out (gravity has the centripetal term's sign, and
    /// the scale lengthens it by 30 %); with gravity and the rest reading's scale taken out,
    /// it finds the 12 cm.
    #[test]
    fn gravity_along_a_downward_shaft_is_not_read_as_lever() {
        let (r, peak, rest_g) = (0.12, 700.0, 1.3);
        let perp: Vec<f64> = (0..40)
            .map(|i| peak * (-((i as f64 - 20.0) / 6.0).powi(2) / 2.0).exp())
            .collect();
        let acc: Vec<Vec3> = perp
            .iter()
            .map(|w| [(-r * w.to_radians().powi(2) / G - 1.0) * rest_g, 0.2, 0.0])
            .collect();
        let still = vec![vm::from_rotation_vector([0.0; 3]); acc.len()];
        // Up is the body's −x: the shaft points down.
        let beyond = shaft_beyond_gravity_ms2(&acc, &still, Some([-1.0, 0.0, 0.0]), rest_g);
        let found = node_offset_m(&beyond, &perp, &|_| true, 0..40, peak, 0.6).unwrap();
        assert!((found - r).abs() < 0.005, "{found}");
        let as_read = node_offset_m(&shaft(&acc), &perp, &|_| true, 0..40, peak, 0.6).unwrap();
        assert!(as_read - r > 0.05, "{as_read}");
    }
}
