//! The measurements on hand-made signals: attitude steps, clipped peaks given back (or refused),
//! the turn clipping hides, the contact sample, and a property over arbitrary rate sequences.

use super::*;
use crate::analysis::condition::calibrate::rest_reading_g;

#[test]
fn advance_to_turns_by_the_mean_rate_over_the_gap() {
    // 1000 °/s about z rising to 3000 °/s over 10 ms: a mean of 2000 °/s, 20° of turn.
    let q = advance_to(vm::IDENTITY, [0.0, 0.0, 1000.0], 3000.0, 10.0);
    let turned = vm::rotate(q, [1.0, 0.0, 0.0]);
    let angle = turned[1].atan2(turned[0]).to_degrees();
    assert!((angle - 20.0).abs() < 1e-6, "{angle}");
}

#[test]
fn advance_to_keeps_the_attitude_without_a_gap_or_rate() {
    let q0 = vm::from_rotation_vector([0.1, 0.2, 0.3]);
    assert_eq!(advance_to(q0, [0.0, 0.0, 1000.0], 1000.0, 0.0), q0);
    assert_eq!(advance_to(q0, [0.0; 3], 1000.0, 5.0), q0);
    assert_eq!(advance_to(q0, [0.0, 0.0, 1000.0], f64::NAN, 5.0), q0);
}
use crate::batch::BodyPosition;

fn sample(t_ms: f64, acc: Vec3, gyro: Vec3) -> NodeSample {
    let f = |v: Vec3| [v[0] as f32, v[1] as f32, v[2] as f32];
    NodeSample {
        position: BodyPosition::Racket,
        t_ms,
        acc: f(acc),
        gyro: f(gyro),
        angle: None,
    }
}

/// A swing's window over `samples` from `trigger_t` to `end_t` (ms), with no quiet spell
/// before it, no speed reference, carried gravity or forehand turn.
fn window<'a>(
    samples: &'a [NodeSample],
    (trigger_t, end_t): (f64, f64),
    rest_g: Option<f64>,
    wraps_left: &'a WrapsLeft,
) -> SwingWindow<'a> {
    SwingWindow {
        samples,
        trigger_t,
        end_t,
        quiet_before: false,
        rest_g,
        wraps_left,
        speed_reference_kmh: None,
        previous_swing_ms: None,
        carried_up: None,
        forehand_turn: None,
    }
}

/// A Gaussian rate pulse about the body y axis: `(t, rate)`.
fn gaussian(peak: f64, t0: f64, sigma: f64) -> impl Fn(f64) -> f64 {
    move |t: f64| peak * (-0.5 * ((t - t0) / sigma).powi(2)).exp()
}

/// The turn the trapezoid over the clipped samples misses against the true pulse, over
/// `[a, b]` (what gravity reveals).
fn missed_turn(rate: &dyn Fn(f64) -> f64, clip: f64, dt: f64, a: f64, b: f64) -> f64 {
    let fine: f64 = (0..100_000)
        .map(|k| a + (k as f64 + 0.5) * (b - a) / 100_000.0)
        .map(|t| rate(t) * (b - a) / 100_000.0)
        .sum();
    let n = ((b - a) / dt).round() as usize;
    let coarse: f64 = (0..n)
        .map(|k| {
            let (t1, t2) = (a + k as f64 * dt, a + (k + 1) as f64 * dt);
            0.5 * (rate(t1).min(clip) + rate(t2).min(clip)) * dt
        })
        .sum();
    (fine - coarse) / 1000.0
}

#[test]
fn a_clipped_gaussian_cap_gives_back_its_peak() {
    // 5000 °/s, rise 35 ms, fall 20 ms, crest at 103 ms, sampled at 100 Hz, clipped at
    // 2000 °/s: the cap through the bordering samples with the right hidden turn has the
    // known peak and crest.
    let truth = Pulse {
        peak: 5000.0,
        t0: 103.0,
        rise_ms: 35.0,
        fall_ms: 20.0,
    };
    let clip = 2000.0;
    let s: Vec<NodeSample> = (0..30)
        .map(|k| {
            let t = k as f64 * 10.0;
            sample(t, [0.0, 0.0, 1.0], [0.0, truth.at(t).min(clip), 0.0])
        })
        .collect();
    let perp: Vec<f64> = s.iter().map(|x| f64::from(x.gyro[1])).collect();
    let clipped: Vec<bool> = perp.iter().map(|&v| v >= CLIP_FRACTION * clip).collect();
    let plateau = Plateau::around(&clipped, 10).expect("clipped around the crest");
    let (a, b) = (s[plateau.first - 1].t_ms, s[plateau.last + 1].t_ms);
    let hidden = missed_turn(&|t| truth.at(t), clip, 10.0, a, b);
    let cap = cap_through_plateau(&s, &perp, plateau, hidden, None).expect("a cap");
    assert!((cap.peak / truth.peak - 1.0).abs() < 0.02, "{cap:?}");
    assert!((cap.t0 - truth.t0).abs() < 2.0, "{cap:?}");
}

#[test]
fn a_cap_that_cannot_hide_the_turn_is_refused() {
    let rate = gaussian(3000.0, 100.0, 30.0);
    let s: Vec<NodeSample> = (0..30)
        .map(|k| k as f64 * 10.0)
        .map(|t| sample(t, [0.0, 0.0, 1.0], [0.0, rate(t).min(2000.0), 0.0]))
        .collect();
    let perp: Vec<f64> = s.iter().map(|x| f64::from(x.gyro[1])).collect();
    let clipped: Vec<bool> = perp.iter().map(|&v| v >= 1960.0).collect();
    let plateau = Plateau::around(&clipped, 10).expect("clipped");
    // 5000° hidden: no cap through these samples turns that far.
    assert_eq!(cap_through_plateau(&s, &perp, plateau, 5000.0, None), None);
    assert_eq!(cap_through_plateau(&s, &perp, plateau, -3.0, None), None);
}

#[test]
fn gravity_reveals_the_turn_hidden_by_clipping() {
    // The racket turns about its y axis, which stays horizontal, by a 3500 °/s Gaussian
    // (σ 25 ms, 219° in all) between two still spells; the gyro clips at 2000 °/s.
    let rate = gaussian(3500.0, 500.0, 25.0);
    let clip = 2000.0;
    let turned = |t: f64| -> f64 {
        (0..2000)
            .map(|k| k as f64 * t / 2000.0)
            .map(|u| rate(u + 0.5 * t / 2000.0) * t / 2000.0 / 1000.0)
            .sum()
    };
    let s: Vec<NodeSample> = (0..120)
        .map(|k| {
            let t = k as f64 * 10.0;
            // Gravity (world +z) seen in the body frame after turning θ about y.
            let th = turned(t).to_radians();
            let acc = [-th.sin(), 0.0, th.cos()];
            sample(t, acc, [0.0, rate(t).min(clip), 0.0])
        })
        .collect();
    let gyro: Vec<Vec3> = s.iter().map(|x| vm::widen(x.gyro)).collect();
    let acc: Vec<Vec3> = s.iter().map(|x| vm::widen(x.acc)).collect();
    let clipped: Vec<bool> = gyro.iter().map(|g| g[1] >= CLIP_FRACTION * clip).collect();
    let plateau = Plateau::around(&clipped, 50).expect("clipped");
    let still = |i: usize| gyro[i][1] < 100.0;
    let none_left = WrapsLeft::default();
    let w = window(&s, (430.0, 570.0), None, &none_left);
    let hidden = hidden_turn(&s, &gyro, &acc, &clipped, plateau, &still, &w).expect("seen");
    let expected = missed_turn(&rate, clip, 10.0, 0.0, 1190.0);
    assert!((hidden - expected).abs() < 0.5, "{hidden} vs {expected}");
}

#[test]
fn a_turn_about_the_vertical_hides_from_gravity() {
    // Same pulse about the body y axis, but y points up: gravity never moves.
    let rate = gaussian(3500.0, 500.0, 25.0);
    let s: Vec<NodeSample> = (0..120)
        .map(|k| k as f64 * 10.0)
        .map(|t| sample(t, [0.0, 1.0, 0.0], [0.0, rate(t).min(2000.0), 0.0]))
        .collect();
    let gyro: Vec<Vec3> = s.iter().map(|x| vm::widen(x.gyro)).collect();
    let acc: Vec<Vec3> = s.iter().map(|x| vm::widen(x.acc)).collect();
    let clipped: Vec<bool> = gyro.iter().map(|g| g[1] >= 1960.0).collect();
    let plateau = Plateau::around(&clipped, 50).expect("clipped");
    let none_left = WrapsLeft::default();
    let w = window(&s, (430.0, 570.0), None, &none_left);
    let still = |i: usize| gyro[i][1] < 100.0;
    assert_eq!(
        hidden_turn(&s, &gyro, &acc, &clipped, plateau, &still, &w),
        None
    );
}
/// 1 g at rest plus a contact transient `(u/3 ms)·e^(1−u/3 ms)` of 6 g along x from
/// `contact`, sampled at `times`.
fn struck(times: &[f64], contact: f64) -> (Vec<NodeSample>, Vec<Vec3>) {
    let s: Vec<NodeSample> = times
        .iter()
        .map(|&t| {
            let u = t - contact;
            let h = if u > 0.0 {
                u / 3.0 * (1.0 - u / 3.0).exp()
            } else {
                0.0
            };
            sample(t, [6.0 * h, 0.0, 1.0], [0.0; 3])
        })
        .collect();
    let acc = s.iter().map(|x| vm::widen(x.acc)).collect();
    (s, acc)
}

/// The contact search on a racket turning steadily at 1000 °/s (every sample fast enough for
/// contact), with a ±16 g accelerometer.
fn impact_while_turning(
    acc: &[Vec3],
    s: &[NodeSample],
    peak_t: f64,
    trigger_t: f64,
    settings: &AnalysisSettings,
) -> Option<usize> {
    let perp = vec![1000.0; s.len()];
    let clipped = vec![false; s.len()];
    let burst = Burst {
        samples: s,
        acc,
        perp: &perp,
        clipped: &clipped,
        peak_i: s
            .iter()
            .position(|x| x.t_ms == peak_t)
            .expect("the peak is a sample"),
        rest_g: 1.0,
        wraps_left: &WrapsLeft::default(),
    };
    find_impact(&burst, 16.0, trigger_t, settings)
}

#[test]
fn contact_is_the_sample_that_caught_the_transients_foot() {
    let times: Vec<f64> = (0..30).map(|k| k as f64 * 10.0).collect();
    let settings = AnalysisSettings::default();
    // Contact 0.1 ms before the 110 ms sample: it reads 0.53 g of transient, under the 1 g
    // threshold; the 120 ms sample reads 6 g. Contact is in (100, 110].
    let (s, acc) = struck(&times, 109.9);
    assert_eq!(
        impact_while_turning(&acc, &s, 110.0, 60.0, &settings),
        Some(11)
    );
    // Contact 4 ms before: the 110 ms sample itself crosses the threshold.
    let (s, acc) = struck(&times, 106.0);
    assert_eq!(
        impact_while_turning(&acc, &s, 110.0, 60.0, &settings),
        Some(11)
    );
    // 0.02 ms before: the foot (0.11 g) is noise; the detection stands.
    let (s, acc) = struck(&times, 109.98);
    assert_eq!(
        impact_while_turning(&acc, &s, 110.0, 60.0, &settings),
        Some(12)
    );
}

#[test]
fn no_contact_foot_across_lost_data() {
    // Samples 50–100 ms lost: the foot at 110 ms follows a gap, so its second difference
    // (and the 120 ms one's) spans the gap; the detection at 130 ms stands.
    let times: Vec<f64> = (0..30)
        .map(|k| k as f64 * 10.0)
        .filter(|t| !(50.0..=100.0).contains(t))
        .collect();
    let settings = AnalysisSettings::default();
    let (s, acc) = struck(&times, 109.9);
    let i = impact_while_turning(&acc, &s, 110.0, 0.0, &settings).expect("an impact");
    assert_eq!(s[i].t_ms, 130.0);
}

proptest::proptest! {
    #[test]
    fn the_cap_never_panics_and_never_sits_under_the_clip(
        rates in proptest::collection::vec(0.0f64..6000.0, 8..40),
        gaps in proptest::collection::vec(1.0f64..30.0, 40),
        hidden in -50.0f64..2000.0,
        impact in proptest::option::of(0usize..40),
    ) {
        let clip = 2000.0;
        let mut t = 0.0;
        let s: Vec<NodeSample> = rates
            .iter()
            .zip(&gaps)
            .map(|(&r, &g)| {
                t += g;
                sample(t, [0.0, 0.0, 1.0], [0.0, r.min(clip), 0.0])
            })
            .collect();
        let perp: Vec<f64> = s.iter().map(|x| f64::from(x.gyro[1])).collect();
        let clipped: Vec<bool> = perp.iter().map(|&v| v >= CLIP_FRACTION * clip).collect();
        let impact = impact.filter(|&i| i < s.len());
        for peak_i in 0..s.len() {
            let Some(plateau) = Plateau::around(&clipped, peak_i) else { continue };
            if let Some(p) = cap_through_plateau(&s, &perp, plateau, hidden, impact) {
                proptest::prop_assert!(p.peak.is_finite() && p.peak >= CLIP_FRACTION * clip);
                proptest::prop_assert!(p.rise_ms > 0.0 && p.fall_ms > 0.0);
            }
        }
    }
}

/// A 200 Hz burst: a Gaussian |ω⊥| pulse of `peak` °/s and `sigma` ms, and the node's
/// acceleration departing from its rest reading `rest_g` by `hand_g` at the pulse's crest (a
/// Gaussian of the same width: the arm's push), from 400 ms before the crest to 400 ms after.
fn burst(
    peak: f64,
    sigma: f64,
    hand_g: f64,
    rest_g: f64,
) -> (Vec<NodeSample>, Vec<Vec3>, Vec<f64>) {
    let rate = gaussian(peak, 0.0, sigma);
    let push = gaussian(hand_g, 0.0, sigma);
    let s: Vec<NodeSample> = (0..161)
        .map(|k| {
            let t = -400.0 + k as f64 * 5.0;
            sample(t, [0.0, 0.0, rest_g + push(t)], [0.0, rate(t), 0.0])
        })
        .collect();
    let acc = s.iter().map(|x| vm::widen(x.acc)).collect();
    let perp = s.iter().map(|x| f64::from(x.gyro[1])).collect();
    (s, acc, perp)
}

fn is_a_stroke(peak: f64, sigma: f64, hand_g: f64) -> bool {
    is_a_stroke_resting_at(peak, sigma, hand_g, 1.0)
}

fn is_a_stroke_resting_at(peak: f64, sigma: f64, hand_g: f64, rest_g: f64) -> bool {
    passes_the_stroke_test(peak, sigma, hand_g, rest_g, false)
}

/// The burst through the stroke test, the node reading `rest_g` at rest (as measure() finds
/// it from the window's calm samples), `contact` when the racket met the shuttle in it.
fn passes_the_stroke_test(peak: f64, sigma: f64, hand_g: f64, rest_g: f64, contact: bool) -> bool {
    passes_the_stroke_test_on(BodyPosition::Racket, peak, sigma, hand_g, rest_g, contact)
}

/// [`passes_the_stroke_test`] on a node at `position` (the racket, or a wrist standing in).
fn passes_the_stroke_test_on(
    position: BodyPosition,
    peak: f64,
    sigma: f64,
    hand_g: f64,
    rest_g: f64,
    contact: bool,
) -> bool {
    let (mut s, acc, perp) = burst(peak, sigma, hand_g, rest_g);
    for x in &mut s {
        x.position = position;
    }
    let clipped = vec![false; s.len()];
    let calm = |i: usize| perp[i] < 0.5 * AnalysisSettings::default().swing_start_dps;
    let burst = Burst {
        samples: &s,
        acc: &acc,
        perp: &perp,
        clipped: &clipped,
        // The crest is sample 80 (t = 0).
        peak_i: 80,
        // As the conditioning stage reads it (calibrate::rest_reading_g), 1 g when unsure.
        rest_g: rest_reading_g(
            (0..acc.len())
                .filter(|&i| calm(i))
                .map(|i| vm::norm(acc[i])),
        )
        .unwrap_or(1.0),
        wraps_left: &WrapsLeft::default(),
    };
    // The swing spans where the rate is over a tenth of the peak.
    let in_swing = |i: usize| perp[i] > 0.1 * peak;
    strokes_pulse(&burst, &in_swing, contact, &|| false).is_ok()
}

#[test]
fn a_short_pulse_is_a_stroke_whatever_its_speed_or_hand() {
    // σ 30 ms: 71 ms at half height, a badminton forward swing; a net push's 300 °/s.
    assert!(is_a_stroke(300.0, 30.0, 0.0));
}

#[test]
fn a_wide_fast_pulse_that_drives_the_hand_is_a_stroke() {
    // σ 130 ms: 306 ms at half height, a padel drive or a groundstroke at the wrist.
    assert!(is_a_stroke(900.0, 130.0, 3.0));
}

#[test]
fn a_wide_pulse_that_is_slow_or_leaves_the_hand_still_is_not_a_stroke() {
    // Repositioning: wide and slow, even with the hand moving.
    assert!(!is_a_stroke(500.0, 130.0, 3.0));
    // Turning the racket in the fingers: wide and fast, the hand still.
    assert!(!is_a_stroke(900.0, 130.0, 0.3));
}

#[test]
fn a_wide_driven_pulse_at_the_wrist_is_a_stroke_at_a_lower_rate_than_on_the_racket() {
    // σ 130 ms: 306 ms at half height; 500 °/s with the hand driven 3 g — a tennis backhand
    // read at the wrist, whose forearm carries the head about the elbow (≈ 0.8 m reach): a
    // stroke's head speed. On a racket node (0.55 m) the same rate is repositioning.
    let wrist = |peak| passes_the_stroke_test_on(BodyPosition::Wrist, peak, 130.0, 3.0, 1.0, false);
    assert!(wrist(500.0));
    assert!(!passes_the_stroke_test(500.0, 130.0, 3.0, 1.0, false));
    // Slower still, the wrist's turn is no stroke either; nor fast with the hand still.
    assert!(!wrist(400.0));
    assert!(!passes_the_stroke_test_on(
        BodyPosition::Wrist,
        500.0,
        130.0,
        0.3,
        1.0,
        false
    ));
}

#[test]
fn a_wide_slow_pulse_that_met_the_shuttle_is_a_stroke() {
    // A net push or a low serve: as wide and as slow as repositioning, but repositioning
    // meets nothing.
    assert!(passes_the_stroke_test(400.0, 130.0, 0.3, 1.0, true));
    assert!(!passes_the_stroke_test(400.0, 130.0, 0.3, 1.0, false));
}

#[test]
fn the_hand_is_driven_only_past_the_nodes_own_rest_reading() {
    // An uncalibrated part reading 1.3 g at rest, the racket turned fast and wide in the
    // fingers with the hand nearly still (0.75 g): from 1 g that read as 1.05 g of drive.
    assert!(!is_a_stroke_resting_at(900.0, 130.0, 0.75, 1.3));
    // The same part driven by the arm (2 g past its rest reading) is a stroke.
    assert!(is_a_stroke_resting_at(900.0, 130.0, 2.0, 1.3));
}

/// A wrist node standing in for the racket (the forearm's own turn, a 1500 °/s Gaussian of σ
/// 25 ms about y at 200 Hz) met the shuttle 22 ms after the forearm's peak, the proximal
/// segment already slowing (68 % of its peak): the turn part of the head's speed is read at
/// the forearm's peak, not at contact. The window starts in the swing (no quasi-static
/// spell: no hand part), so the speed is the turn part alone: 1500 °/s × 0.8 m = 75.4 km/h
/// (at contact it would be 51 km/h).
#[test]
fn a_wrist_node_reads_the_turn_at_the_forearms_peak_not_at_a_later_contact() {
    let rate = gaussian(1500.0, 200.0, 25.0);
    let contact = 222.0;
    let s: Vec<NodeSample> = (0..=40)
        .map(|k| 160.0 + k as f64 * 5.0)
        .map(|t| {
            let u = t - contact;
            let ring = if u > 0.0 {
                6.0 * u / 3.0 * (1.0 - u / 3.0).exp()
            } else {
                0.0
            };
            NodeSample {
                position: BodyPosition::Wrist,
                ..sample(t, [ring, 0.0, 1.0], [0.0, rate(t), 0.0])
            }
        })
        .collect();
    let wraps_left = WrapsLeft::default();
    let w = window(&s, (160.0, 260.0), Some(1.0), &wraps_left);
    let profile = DeviceProfile {
        mount_radius_m: 0.8,
        ..DeviceProfile::new("wrist")
    };
    let m = measure(&w, &profile, &AnalysisSettings::default()).expect("a stroke");
    assert!(m.impact, "the contact was found");
    let speed = m.racket_speed_kmh.expect("a speed");
    let at_peak = 1500f64.to_radians() * 0.8 * 3.6;
    assert!(
        (speed / at_peak - 1.0).abs() < 0.03,
        "{speed} km/h against {at_peak}"
    );
}

/// What a wrapping (int16, count running on) gyro of ±`full_scale` reports for `v`.
fn folded(v: f64, full_scale: f64) -> f64 {
    (v + full_scale).rem_euclid(2.0 * full_scale) - full_scale
}

/// A ±250 °/s racket node turning at a two-sided cos² pulse of 1500 °/s (rising over 60 ms,
/// falling over 45 ms) at 200 Hz and meeting the shuttle 2 ms after the crest, its gyro
/// wrapping through three ranges and left so by the conditioning stage: the readings past
/// the rail are a fold of the rate (at the crest, 0 °/s). Read as past the rail, the flanks
/// rebuild the crest.
#[test]
fn a_crest_read_through_wraps_left_in_place_is_rebuilt_from_its_flanks() {
    let (peak, crest, contact, fs) = (1500.0, 200.0, 202.0, 250.0);
    let rate = |t: f64| {
        let half = if t < crest { 60.0 } else { 45.0 };
        let x = ((t - crest) / half).clamp(-1.0, 1.0);
        peak * (0.5 * std::f64::consts::PI * x).cos().powi(2)
    };
    let times: Vec<f64> = (0..=60).map(|k| 100.0 + k as f64 * 5.0).collect();
    let s: Vec<NodeSample> = times
        .iter()
        .map(|&t| {
            let u = t - contact;
            let ring = if u > 0.0 {
                6.0 * u / 3.0 * (1.0 - u / 3.0).exp()
            } else {
                0.0
            };
            sample(t, [ring, 0.0, 1.0], [0.0, folded(rate(t), fs), 0.0])
        })
        .collect();
    let past: Vec<f64> = times.iter().copied().filter(|&t| rate(t) > fs).collect();
    let wraps_left = WrapsLeft {
        gyro_spans: vec![(past[0], past[past.len() - 1])],
        ..WrapsLeft::default()
    };
    let w = window(&s, (120.0, 280.0), Some(1.0), &wraps_left);
    let profile = DeviceProfile {
        gyro_full_scale_dps: fs,
        ..DeviceProfile::new("racket")
    };
    let m = measure(&w, &profile, &AnalysisSettings::default()).expect("a stroke");
    assert!(m.impact, "the contact was found");
    assert!(
        (m.peak_dps / peak - 1.0).abs() < 0.1,
        "peak {} °/s against {peak}",
        m.peak_dps
    );
}
