//! The racket-head speed on hand-made swings: the racket's turn plus the hand's own speed,
//! with and without a quasi-static spell before the swing to anchor gravity.

use super::*;
use crate::analysis::condition::Carried;

/// The rate peak and the hand's speed peak, ms.
const PEAK_T_MS: f64 = 600.0;
const REACH_M: f64 = 0.55;

/// Sampled every `dt_ms`: a racket node at the pivot turning about its face normal (z, held vertical) through a
/// Gaussian |ω⊥| of `peak_dps` (σ 30 ms) at [`PEAK_T_MS`], while the hand speeds up along
/// the head's direction at the peak by a Gaussian velocity pulse of `hand_ms` (σ 60 ms);
/// `bounce_g` of vertical footwork (2 Hz) throughout keeps every sample off 1 g, so the
/// window has no quasi-static spell. Returns the samples and the true head speed, km/h.
fn swing_on_the_move(
    dt_ms: f64,
    peak_dps: f64,
    hand_ms: f64,
    bounce_g: f64,
) -> (Vec<NodeSample>, f64) {
    let rate = |t: f64| peak_dps * (-0.5 * ((t - PEAK_T_MS) / 30.0).powi(2)).exp();
    let sigma_s = 0.060;
    let n = (1200.0 / dt_ms) as usize;
    let mut theta = 0.0f64;
    // The head's direction at the peak in the world: the turn θ_peak about z of body y.
    let theta_peak: f64 = (0..(PEAK_T_MS / dt_ms) as usize)
        .map(|k| 0.5 * (rate(k as f64 * dt_ms) + rate((k + 1) as f64 * dt_ms)) * dt_ms / 1000.0)
        .sum::<f64>()
        .to_radians();
    let path = [-theta_peak.sin(), theta_peak.cos()];
    let samples = (0..n)
        .map(|k| {
            let t = k as f64 * dt_ms;
            if k > 0 {
                theta += (0.5 * (rate(t) + rate(t - dt_ms)) * dt_ms / 1000.0).to_radians();
            }
            let u = (t - PEAK_T_MS) / 1000.0;
            // d/dt of hand_ms · exp(−u²/2σ²), m/s², along the path (world, horizontal).
            let a = -hand_ms * u / (sigma_s * sigma_s) * (-0.5 * (u / sigma_s).powi(2)).exp();
            let (wx, wy) = (a * path[0], a * path[1]);
            // World → body: rotate by −θ about z.
            let (c, s) = (theta.cos(), theta.sin());
            let body = [(c * wx + s * wy) / 9.806_65, (-s * wx + c * wy) / 9.806_65];
            // Steps push up and land, never passing through 1 g for long: no sample within
            // half `bounce_g` of it.
            let phase = (2.0 * std::f64::consts::PI * 2.0 * t / 1000.0).sin();
            let up = 1.0 + bounce_g * (0.5 + 0.5 * phase.abs()) * phase.signum();
            NodeSample {
                position: crate::batch::BodyPosition::Racket,
                t_ms: t,
                acc: [body[0] as f32, body[1] as f32, up as f32],
                gyro: [0.0, 0.0, rate(t) as f32],
                angle: None,
            }
        })
        .collect();
    let head_kmh = (peak_dps.to_radians() * REACH_M + hand_ms) * 3.6;
    (samples, head_kmh)
}

/// Gravity carried up to the last sample before the trigger, level (the node's z up).
fn carried_before_trigger(s: &[NodeSample]) -> Carried {
    let before_trigger = s.iter().rposition(|x| x.t_ms < PEAK_T_MS - 60.0).unwrap();
    Carried {
        t_ms: s[before_trigger].t_ms,
        up: [0.0, 0.0, 1.0],
        carried_ms: 0.0,
    }
}

fn speed_of(s: &[NodeSample], carried_up: Option<Carried>) -> f64 {
    let profile = DeviceProfile {
        mount_radius_m: REACH_M,
        ..DeviceProfile::new("d")
    };
    let w = SwingWindow {
        samples: s,
        trigger_t: PEAK_T_MS - 60.0,
        end_t: PEAK_T_MS + 80.0,
        quiet_before: false,
        rest_g: Some(1.0),
        wraps_left: &WrapsLeft::default(),
        speed_reference_kmh: None,
        carried_up,
    };
    let m = measure(&w, &profile, &AnalysisSettings::default()).expect("a stroke");
    m.racket_speed_kmh.expect("a speed")
}

/// A rally stroke played off footwork: no quasi-static spell before it, only gravity carried
/// by the conditioning stage's filter. The hand's 6 m/s (a fifth of the head's speed) is in
/// the measured speed, within 5 %; without any gravity anchor the hand is left out.
#[test]
fn the_hands_speed_counts_on_a_stroke_played_off_footwork() {
    let (s, truth_kmh) = swing_on_the_move(10.0, 2500.0, 6.0, 0.3);
    let with_carried = speed_of(&s, Some(carried_before_trigger(&s)));
    assert!(
        (with_carried / truth_kmh - 1.0).abs() < 0.05,
        "{with_carried:.1} km/h against {truth_kmh:.1}"
    );
    let turn_only_kmh = 2500f64.to_radians() * REACH_M * 3.6;
    let unanchored = speed_of(&s, None);
    assert!(
        (unanchored / turn_only_kmh - 1.0).abs() < 0.05,
        "{unanchored:.1} km/h against the turn's {turn_only_kmh:.1}"
    );
}

/// At 20 Hz (every 50 ms, past [`CARRIED_HAND_MAX_INTERVAL_MS`]) the push is two or three
/// samples and the carried gravity has been turned through the swing by a gyro sampled far
/// too slowly: the hand is left out rather than integrated from it, and the speed is the
/// turn's alone (within the peak's reading between samples).
#[test]
fn a_swing_sampled_too_slowly_does_not_integrate_the_hand_from_carried_gravity() {
    let (s, _) = swing_on_the_move(50.0, 2500.0, 6.0, 0.3);
    let turn_only_kmh = 2500f64.to_radians() * REACH_M * 3.6;
    let read = speed_of(&s, Some(carried_before_trigger(&s)));
    assert!(
        (read / turn_only_kmh - 1.0).abs() < 0.1,
        "{read:.1} km/h against the turn's {turn_only_kmh:.1}"
    );
}
