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

use crate::analysis::vecmath::Vec3;

/// Samples turning slower than this share of the swing's peak carry too little centripetal
/// acceleration to stand above gravity (1 g) and the hand's own acceleration.
const MIN_RATE_SHARE: f64 = 0.4;
/// Fewer fast samples than this give no slope worth trusting.
const MIN_SAMPLES: usize = 3;
const G: f64 = 9.806_65;

/// The node's distance from the pivot along the shaft (m, ≥ 0, at most `reach_m`), from the
/// samples `picked` out of the swing: `acc` in g, `perp_dps` the |ω⊥| of each sample, `clean`
/// false for samples with any clipped or wrapped axis. `None` with too few fast clean samples.
pub fn node_offset_m(
    acc: &[Vec3],
    perp_dps: &[f64],
    clean: &dyn Fn(usize) -> bool,
    picked: impl Iterator<Item = usize>,
    peak_dps: f64,
    reach_m: f64,
) -> Option<f64> {
    let (mut sxy, mut sxx, mut n) = (0.0, 0.0, 0usize);
    for i in picked {
        if !clean(i) || perp_dps[i] < MIN_RATE_SHARE * peak_dps {
            continue;
        }
        let w2 = perp_dps[i].to_radians().powi(2);
        sxy += -acc[i][0] * G * w2;
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
        let r = node_offset_m(&acc, &perp, &|_| true, 0..40, peak, 0.6).unwrap();
        assert!((r - 0.12).abs() < 0.01, "{r}");
    }

    #[test]
    fn clipped_samples_and_a_slow_turn_give_no_offset() {
        let perp = vec![2000.0; 10];
        let acc = vec![[-16.0, 0.0, 0.0]; 10];
        assert_eq!(
            node_offset_m(&acc, &perp, &|_| false, 0..10, 2000.0, 0.6),
            None
        );
        let slow = vec![100.0; 10];
        assert_eq!(
            node_offset_m(&acc, &slow, &|_| true, 0..10, 2000.0, 0.6),
            None
        );
    }

    #[test]
    fn the_offset_never_exceeds_the_reach() {
        let perp = vec![2000.0; 10];
        let acc = vec![[-200.0, 0.0, 0.0]; 10];
        assert_eq!(
            node_offset_m(&acc, &perp, &|_| true, 0..10, 2000.0, 0.55),
            Some(0.55)
        );
    }
}
