//! Racket handling that turns the racket as fast as a stroke but is none: the detector's test
//! of whether a burst *drove* the racket.
//!
//! Between rallies a player dips the racket's head to the floor to scoop up the shuttle,
//! turns it in the fingers, or lays it down; each can turn it at a net push's rate, a quarter
//! of a second wide, and on the independent simulator's tuning seeds nearly every false swing
//! in rest was such a dip (`eval --verbose`'s `rest swings` lines). What tells it from a
//! stroke is not the turn but what drives it. A stroke is thrown: the arm's segments whip the
//! racket (summation of speed, proximal to distal: Putnam 1993, J. Biomech. 26 S1), the hand
//! is pushed along the head's path, and the racket's own turn loads the node with a
//! centripetal ω²r that grows with the square of the rate, so the node's acceleration changes
//! by a good fraction of a g within a few hundredths of a second while the racket turns
//! fast. Handling is a deliberate point-to-point movement of the hand and fingers, made
//! smooth (minimum jerk: Flash & Hogan 1985, J. Neurosci. 5(7)), with the hand nearly still;
//! the node's acceleration then changes slowly.
//!
//! The measure is the largest change of the acceleration vector over [`JERK_SPAN_MS`] while the
//! racket turns at at least half its peak: a fixed span rather than one sample interval, so
//! the figure means the same at 50 and at 1000 Hz. A rotation of the node changes only the
//! vector's axes, not the size of a change, so the test needs no axis map. It is applied only
//! to bursts in which no shuttle contact was found (a contact while the racket turns is a
//! stroke's own evidence), on a racket node (measure/mod.rs), as narrow as a forward swing (a
//! wide one passed measure/'s own drive test) and no faster than a net push (600 °/s,
//! measure/'s bound: handling is not faster than a push, and the padel recordings' long,
//! smooth drives at 580–890 °/s, whose load changes by 0.66–0.79 g in 20 ms, are strokes).
//!
//! A load that changes sharply is not yet a driven one: a head dipped quickly about the
//! still hand changes the node's load by the turn's own α × r and ω²r (a 60° dip in 200 ms at
//! a node 0.3 m out: past 0.8 g in 20 ms), and on the simulator's tuning seeds at 100 Hz every
//! false swing in rest was such a dip that passed the 0.8 g. So the rule also asks what the
//! turn leaves: the load beyond gravity fitted as a rigid turn about one fixed centre,
//! whatever the mount (the centre and the node's lever are the fit's unknowns). What it cannot explain is the
//! centre's own acceleration — the hand pushed by the arm; a turn that leaves under
//! [`HAND_STILL_MAX_G`] was made with the hand held still, and is handling (det26).

use super::radius::{fit_lever, rigid_turn_columns};
use super::{MAX_SWING_FWHM_MS, NodeSample, WIDE_STROKE_MIN_DPS, half_width_ms};
use crate::analysis::STANDARD_GRAVITY as G;
use crate::analysis::vecmath::{self as vm, Vec3};

/// The span over which the acceleration's change is read, ms: a stroke's pulse rises to its
/// peak in 20–150 ms, so 20 ms resolves its load changing, and it is one sample interval at
/// the slowest supported rate (50 Hz).
pub const JERK_SPAN_MS: f64 = 20.0;

/// A burst drove the racket when its acceleration changed by at least this much within
/// [`JERK_SPAN_MS`] while it turned at at least half its peak rate, g. Chosen on the
/// independent simulator's tuning seeds 0–39 (100 Hz, 200 Hz and mixed rates) from 0.3, 0.5,
/// 0.8 and 1.0 g: at 0.8 g the same share of the rest dips fell out at every rate (43–44 of
/// 48 on aligned racket nodes at 100 and 200 Hz) for 1–5 slow pushes lost per rate; the
/// table-tennis recordings were held out (docs/analysis.md, detection). For scale: at a
/// push's 400 °/s a node 10 cm up the shaft feels ω²r ≈ 0.5 g, rising from nothing over the
/// pulse's 100 ms rise, and the hand's push adds its own.
pub const DRIVEN_MIN_CHANGE_G: f64 = 0.8;

/// The hand was held still through a turn when the node's load beyond gravity is a rigid
/// turn's about one fixed centre to within this RMS, g: what the turn leaves is the centre's
/// own acceleration, the hand's (or the wrist's) push. For scale: a hand moved 4–14 mm by a
/// minimum-jerk movement (Flash & Hogan 1985) over 100–200 ms has an RMS acceleration of
/// 0.15 g, so under it the hand stayed within about a centimetre. Chosen on the independent
/// simulator's tuning seeds 0–99 at 100 Hz from 0.15 and 0.25 g: both removed the same 13 of
/// 26 rest scoops; 0.25 g also lost 5 played pushes (2 nets, 3 serves), 0.15 g none
/// (docs/analysis.md, detection, det26).
pub const HAND_STILL_MAX_G: f64 = 0.15;

/// Gravity is carried into the turn from the calmest sample this long before it, ms.
const CALM_LOOKBACK_MS: f64 = 300.0;

/// That sample is calm when its turn is under this share of the burst's peak |ω⊥|.
const CALM_SHARE: f64 = 0.25;

/// An accelerometer axis within this fraction of its full scale is at the rail (sensors
/// report a few LSB under it; measure/ reads clipping at the same share).
const ACC_RAIL_FRACTION: f64 = 0.98;

/// The samples may be this much closer than [`JERK_SPAN_MS`] (stamp jitter of a node sending
/// millisecond stamps); further apart than twice the span is lost data, not a change.
const SPAN_SLACK: f64 = 0.95;

/// The largest change of the acceleration, g, over [`JERK_SPAN_MS`] at the samples of
/// `samples` in `[from_t, to_t]` where |ω⊥| (`perp`, °/s, one per sample) is at least
/// `min_perp`; `None` when no such sample has one [`JERK_SPAN_MS`] before it.
pub fn turn_acc_change_g(
    samples: &[NodeSample],
    perp: &[f64],
    (from_t, to_t): (f64, f64),
    min_perp: f64,
) -> Option<f64> {
    let mut best: Option<f64> = None;
    for (i, s) in samples.iter().enumerate() {
        if s.t_ms < from_t || s.t_ms > to_t || perp[i] < min_perp {
            continue;
        }
        let Some(earlier) = samples[..i]
            .iter()
            .rev()
            .find(|e| s.t_ms - e.t_ms >= SPAN_SLACK * JERK_SPAN_MS)
        else {
            continue;
        };
        if s.t_ms - earlier.t_ms > 2.0 * JERK_SPAN_MS {
            continue;
        }
        let change = (0..3)
            .map(|k| (f64::from(s.acc[k]) - f64::from(earlier.acc[k])).powi(2))
            .sum::<f64>()
            .sqrt();
        best = Some(best.map_or(change, |b: f64| b.max(change)));
    }
    best
}

/// Whether the burst from `trigger_t` to `end_t` on `samples`, whose |ω⊥| is `perp` (°/s,
/// one per sample), drove the racket (see the module doc): its
/// acceleration changed by at least [`DRIVEN_MIN_CHANGE_G`] within [`JERK_SPAN_MS`] while it
/// turned at at least half its peak |ω⊥|. A turn faster than the top of a net push
/// ([`WIDE_STROKE_MIN_DPS`]) is no handling. A burst wider than a forward swing
/// ([`MAX_SWING_FWHM_MS`] at half its peak) is a stroke only if the wide-stroke test already
/// found the hand driven (measure/), so it is not asked again: a long stroke (a padel drive)
/// drives the hand steadily rather than sharply. A turn that changed the load enough but
/// about a fixed centre with the hand held still is no drive either ([`hand_held_still`],
/// det26). Too few samples to tell counts as driven: the test only ever removes bursts it
/// has evidence against.
pub fn drove_the_racket(
    samples: &[NodeSample],
    perp: &[f64],
    (trigger_t, end_t): (f64, f64),
    acc_full_scale_g: f64,
) -> bool {
    let Some(peak_i) = fastest_in(samples, perp, (trigger_t, end_t)) else {
        return true;
    };
    // Handling moves the racket at a push's speed at most: a turn past the top of a net push
    // (measure/'s wide-stroke bound) is a stroke's whatever the node's load does.
    if perp[peak_i] >= WIDE_STROKE_MIN_DPS {
        return true;
    }
    // A gyro at its rail reads the same there, so the plateau counts as above half already.
    let unclipped = vec![false; samples.len()];
    if half_width_ms(samples, perp, &unclipped, peak_i) > MAX_SWING_FWHM_MS {
        return true;
    }
    let driven = load_says_driven(samples, perp, (trigger_t, end_t), peak_i, acc_full_scale_g)
        .is_none_or(|driven| driven);
    driven && !hand_held_still(samples, perp, (trigger_t, end_t), peak_i, acc_full_scale_g)
}

/// Whether the burst turned the racket about a fixed centre with the hand held still: over
/// its samples at half its peak or more, the node's load beyond gravity is a rigid turn's,
/// (\[α\]× + \[ω\]×²) r for one r, to within [`HAND_STILL_MAX_G`] RMS. A stroke's hand is
/// pushed along the head's path by the arm (the centre of the racket's turn, the wrist,
/// accelerates with the forearm: Putnam 1993), so what the turn leaves is the push; dipping
/// the head or turning the racket in the fingers leaves nothing. False when it cannot tell
/// (an accelerometer axis at its rail, samples more than [`JERK_SPAN_MS`] apart, no calm
/// sample before the turn to carry gravity from): this test only removes bursts.
fn hand_held_still(
    samples: &[NodeSample],
    perp: &[f64],
    (trigger_t, end_t): (f64, f64),
    peak_i: usize,
    acc_full_scale_g: f64,
) -> bool {
    let min_perp = 0.5 * perp[peak_i];
    let rail = ACC_RAIL_FRACTION * acc_full_scale_g;
    let fit: Vec<usize> = (1..samples.len().saturating_sub(1))
        .filter(|&i| {
            let t = samples[i].t_ms;
            t >= trigger_t && t <= end_t && perp[i] >= min_perp
        })
        .collect();
    if fit
        .iter()
        .any(|&i| samples[i].acc.iter().any(|&a| f64::from(a).abs() >= rail))
    {
        return false;
    }
    centre_acceleration_rms_g(samples, &fit, CALM_SHARE * perp[peak_i])
        .is_some_and(|rms| rms < HAND_STILL_MAX_G)
}

/// The RMS of what a rigid turn about one fixed centre leaves of the node's load beyond
/// gravity, g, over the samples `fit` (interior indices, in order): gravity is carried from
/// the calmest sample within [`CALM_LOOKBACK_MS`] before them (turning under `calm_dps`)
/// along the gyro; r is the least-squares solution of a − g = (\[α\]× + \[ω\]×²) r, α from
/// the gyro's central difference. `None` with fewer than three samples, the window's first
/// or last sample among them, samples further apart than [`JERK_SPAN_MS`], or no calm
/// sample.
pub fn centre_acceleration_rms_g(
    samples: &[NodeSample],
    fit: &[usize],
    calm_dps: f64,
) -> Option<f64> {
    let (&first, &last) = (fit.first()?, fit.last()?);
    // α is a central difference: the first and last samples have no neighbour on one side.
    if fit.len() < 3 || first == 0 || last + 1 >= samples.len() {
        return None;
    }
    let rad = |i: usize| vm::scale(vm::widen(samples[i].gyro), std::f64::consts::PI / 180.0);
    let calm_i = (0..first)
        .rev()
        .take_while(|&i| samples[i].t_ms >= samples[first].t_ms - CALM_LOOKBACK_MS)
        .min_by(|&a, &b| vm::norm(rad(a)).total_cmp(&vm::norm(rad(b))))?;
    // α needs the turn's change resolved, and carrying gravity across a gap guesses.
    let resolved =
        (calm_i + 1..=last + 1).all(|i| samples[i].t_ms - samples[i - 1].t_ms <= JERK_SPAN_MS);
    if !resolved || vm::norm(vm::widen(samples[calm_i].gyro)) > calm_dps {
        return None;
    }
    // Gravity in the node's axes, carried from the calm sample: a fixed vector seen from a
    // node turning at ω turns by −ω dt.
    let mut gravity = vm::widen(samples[calm_i].acc);
    let mut rows: Vec<([Vec3; 3], Vec3)> = Vec::with_capacity(fit.len());
    let mut next = fit.iter().peekable();
    for i in calm_i..=last {
        if next.peek() == Some(&&i) {
            next.next();
            let dt = (samples[i + 1].t_ms - samples[i - 1].t_ms) / 1000.0;
            let alpha = vm::scale(vm::sub(rad(i + 1), rad(i - 1)), 1.0 / dt);
            let w = rad(i);
            rows.push((
                rigid_turn_columns(w, alpha),
                vm::scale(vm::sub(vm::widen(samples[i].acc), gravity), G),
            ));
        }
        let dt = (samples[i + 1].t_ms - samples[i].t_ms) / 1000.0;
        let w = vm::scale(vm::add(rad(i), rad(i + 1)), 0.5 * dt);
        gravity = vm::rotate(vm::from_rotation_vector(vm::scale(w, -1.0)), gravity);
    }
    let r = fit_lever(&rows)?;
    let sum_sq: f64 = rows
        .iter()
        .map(|(c, y)| {
            let turn = vm::add(
                vm::add(vm::scale(c[0], r[0]), vm::scale(c[1], r[1])),
                vm::scale(c[2], r[2]),
            );
            vm::norm(vm::sub(*y, turn)).powi(2)
        })
        .sum();
    Some((sum_sq / rows.len() as f64).sqrt() / G)
}

/// Whether a wide burst (wider than a forward swing at half its peak, slower than the
/// wide-stroke rule's bound or with the hand's departure from rest under its 1 g) was
/// nevertheless thrown: its node's load changed as a stroke's does (see the module doc),
/// by at least [`DRIVEN_MIN_CHANGE_G`] within [`JERK_SPAN_MS`] while it turned at at least
/// half its peak, or with an accelerometer axis at its rail then. A net push or a low serve
/// is as wide as repositioning and as slow (80–300 ms at half its peak, 230–690 °/s) but it
/// is still pushed by the arm, the hand accelerated along the head's path and the turn
/// loading the node with ω²r; repositioning and walking with the racket move it smoothly or
/// not at all. Unlike [`drove_the_racket`], too few samples to tell is no evidence: this
/// test only ever keeps bursts it has evidence for.
pub fn wide_burst_thrown(
    samples: &[NodeSample],
    perp: &[f64],
    (trigger_t, end_t): (f64, f64),
    acc_full_scale_g: f64,
) -> bool {
    let Some(peak_i) = fastest_in(samples, perp, (trigger_t, end_t)) else {
        return false;
    };
    load_says_driven(samples, perp, (trigger_t, end_t), peak_i, acc_full_scale_g)
        .is_some_and(|driven| driven)
}

/// The index of the burst's fastest sample (greatest |ω⊥|) from `trigger_t` to `end_t`;
/// `None` when no sample falls there.
fn fastest_in(
    samples: &[NodeSample],
    perp: &[f64],
    (trigger_t, end_t): (f64, f64),
) -> Option<usize> {
    (0..samples.len())
        .filter(|&i| samples[i].t_ms >= trigger_t && samples[i].t_ms <= end_t)
        .max_by(|&a, &b| perp[a].total_cmp(&perp[b]))
}

/// What the node's load says of the burst from `trigger_t` to `end_t` whose fastest sample
/// is `peak_i`: driven when an accelerometer axis sat at its rail, or the acceleration
/// changed by at least [`DRIVEN_MIN_CHANGE_G`] within [`JERK_SPAN_MS`], while the racket
/// turned at at least half its peak; `None` when no such sample has one [`JERK_SPAN_MS`]
/// before it.
fn load_says_driven(
    samples: &[NodeSample],
    perp: &[f64],
    (trigger_t, end_t): (f64, f64),
    peak_i: usize,
    acc_full_scale_g: f64,
) -> Option<bool> {
    let min_perp = 0.5 * perp[peak_i];
    let turning = |i: usize| {
        let t = samples[i].t_ms;
        t >= trigger_t && t <= end_t && perp[i] >= min_perp
    };
    // An accelerometer axis at its rail while the racket turns fast carries a load past full
    // scale, and a pinned axis shows no change: that is no hand-still handling.
    let rail = ACC_RAIL_FRACTION * acc_full_scale_g;
    if (0..samples.len())
        .any(|i| turning(i) && samples[i].acc.iter().any(|&a| f64::from(a).abs() >= rail))
    {
        return Some(true);
    }
    turn_acc_change_g(samples, perp, (trigger_t, end_t), min_perp)
        .map(|change| change >= DRIVEN_MIN_CHANGE_G)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BodyPosition;

    /// A node at `rate_hz` turning about its z axis with rate `rate(t)` (°/s) and reading
    /// `acc(t)` (g), for 1 s.
    fn node(
        rate_hz: f64,
        rate: impl Fn(f64) -> f64,
        acc: impl Fn(f64) -> [f64; 3],
    ) -> Vec<NodeSample> {
        let n = rate_hz as usize;
        (0..n)
            .map(|k| {
                let t = k as f64 * 1000.0 / rate_hz;
                NodeSample {
                    position: BodyPosition::Racket,
                    t_ms: t,
                    acc: acc(t).map(|v| v as f32),
                    gyro: [0.0, 0.0, rate(t) as f32],
                    angle: None,
                }
            })
            .collect()
    }

    /// `drove_the_racket` on `samples`, with their |ω⊥| as measure/ computes it.
    fn drove(samples: &[NodeSample], span: (f64, f64), acc_full_scale_g: f64) -> bool {
        let perp: Vec<f64> = samples
            .iter()
            .map(|s| f64::from(s.gyro[1]).hypot(f64::from(s.gyro[2])))
            .collect();
        drove_the_racket(samples, &perp, span, acc_full_scale_g)
    }

    /// A minimum-jerk turn of `deg` over `ms` starting at 300 ms: its rate, °/s.
    fn min_jerk_rate(deg: f64, ms: f64) -> impl Fn(f64) -> f64 {
        move |t| {
            let s = (t - 300.0) / ms;
            if (0.0..=1.0).contains(&s) {
                deg * 1000.0 / ms * 30.0 * s * s * (1.0 - s) * (1.0 - s)
            } else {
                0.0
            }
        }
    }

    #[test]
    fn a_smooth_dip_with_the_hand_still_did_not_drive_the_racket_at_any_rate() {
        // 60° in 200 ms (peak 560 °/s): gravity turns in the node's frame, nothing else.
        for rate_hz in [50.0, 100.0, 200.0, 1000.0] {
            let rate = min_jerk_rate(60.0, 200.0);
            let samples = node(rate_hz, &rate, |t| {
                let angle = ((t - 300.0) / 200.0).clamp(0.0, 1.0) * 60f64.to_radians();
                [angle.sin(), 0.0, angle.cos()]
            });
            assert!(!drove(&samples, (300.0, 520.0), 16.0), "{rate_hz} Hz");
        }
    }

    #[test]
    fn a_push_whose_hand_is_driven_drove_the_racket_at_any_rate() {
        // The same turn, with the hand pushed forward and checked: 2 g along y, one sine
        // period over the turn (the hand taken to 1.25 m/s in 0.1 s and stopped).
        for rate_hz in [50.0, 100.0, 200.0, 1000.0] {
            let rate = min_jerk_rate(60.0, 200.0);
            let samples = node(rate_hz, &rate, |t| {
                let s = ((t - 300.0) / 200.0).clamp(0.0, 1.0);
                let push = 2.0 * (std::f64::consts::TAU * s).sin();
                [0.0, push, 1.0]
            });
            assert!(drove(&samples, (300.0, 520.0), 16.0), "{rate_hz} Hz");
        }
    }

    /// A node `lever_m` out along x from the centre of a minimum-jerk pitch (about y) of
    /// `deg` over `ms` from 300 ms, flat at rest (z up), with `hand(t)` (g, node axes at
    /// rest) added to its load: the rigid turn's α × r and ω × (ω × r), and gravity turning in
    /// the node's axes.
    fn pitch(
        rate_hz: f64,
        lever_m: f64,
        (deg, ms): (f64, f64),
        hand: impl Fn(f64) -> [f64; 3],
    ) -> Vec<NodeSample> {
        let theta = deg.to_radians();
        let s_of = |t: f64| ((t - 300.0) / ms).clamp(0.0, 1.0);
        let in_turn = |t: f64| (300.0..=300.0 + ms).contains(&t);
        let t_s = ms / 1000.0;
        let angle = |t: f64| {
            let s = s_of(t);
            theta * s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)
        };
        let rate = |t: f64| {
            let s = s_of(t);
            if in_turn(t) {
                theta / t_s * 30.0 * s * s * (1.0 - s) * (1.0 - s)
            } else {
                0.0
            }
        };
        let accel = |t: f64| {
            let s = s_of(t);
            if in_turn(t) {
                theta / (t_s * t_s) * 60.0 * s * (1.0 - s) * (1.0 - 2.0 * s)
            } else {
                0.0
            }
        };
        let n = rate_hz as usize;
        (0..n)
            .map(|k| {
                let t = k as f64 * 1000.0 / rate_hz;
                let (w, a, th) = (rate(t), accel(t), angle(t));
                let h = hand(t);
                let acc = [
                    -w * w * lever_m / G - th.sin() + h[0],
                    h[1],
                    -a * lever_m / G + th.cos() + h[2],
                ];
                NodeSample {
                    position: BodyPosition::Racket,
                    t_ms: t,
                    acc: acc.map(|v| v as f32),
                    gyro: [0.0, w.to_degrees() as f32, 0.0],
                    angle: None,
                }
            })
            .collect()
    }

    #[test]
    fn a_dip_about_the_still_hand_did_not_drive_the_racket_however_its_load_changed() {
        // 60° in 200 ms (peak 560 °/s) with the node 0.3 m out: the turn's own loads change
        // by over 2 g in 20 ms, which the load-change test alone reads as driven.
        for rate_hz in [100.0, 200.0, 1000.0] {
            let samples = pitch(rate_hz, 0.3, (60.0, 200.0), |_| [0.0; 3]);
            let perp: Vec<f64> = samples.iter().map(|s| f64::from(s.gyro[1])).collect();
            let change = turn_acc_change_g(&samples, &perp, (300.0, 520.0), 280.0);
            assert!(
                change.is_some_and(|c| c > DRIVEN_MIN_CHANGE_G),
                "{rate_hz} Hz: {change:?}"
            );
            assert!(!drove(&samples, (300.0, 520.0), 16.0), "{rate_hz} Hz");
        }
    }

    #[test]
    fn the_same_dip_with_the_hand_pushed_drove_the_racket() {
        // The hand taken forward (x) and checked as the head turns: 1 g, one sine period.
        for rate_hz in [100.0, 200.0, 1000.0] {
            let samples = pitch(rate_hz, 0.3, (60.0, 200.0), |t| {
                let s = ((t - 300.0) / 200.0).clamp(0.0, 1.0);
                [(std::f64::consts::TAU * s).sin(), 0.0, 0.0]
            });
            assert!(drove(&samples, (300.0, 520.0), 16.0), "{rate_hz} Hz");
        }
    }

    #[test]
    fn a_dip_read_under_50_hz_says_nothing_of_the_hand() {
        // Samples 25 ms apart (40 Hz) resolve no α: no figure, so the test removes nothing.
        let samples = pitch(40.0, 0.3, (60.0, 200.0), |_| [0.0; 3]);
        let perp: Vec<f64> = samples.iter().map(|s| f64::from(s.gyro[1])).collect();
        let fit: Vec<usize> = (1..samples.len() - 1)
            .filter(|&i| perp[i] >= 280.0)
            .collect();
        assert_eq!(centre_acceleration_rms_g(&samples, &fit, 140.0), None);
    }

    #[test]
    fn a_fit_reaching_the_windows_ends_gives_no_figure() {
        let rate = min_jerk_rate(60.0, 200.0);
        let samples = node(100.0, &rate, |_| [0.0; 3]);
        // Through the last sample, which has no neighbour after it.
        let to_the_end: Vec<usize> = (1..samples.len()).collect();
        assert_eq!(
            centre_acceleration_rms_g(&samples, &to_the_end, 140.0),
            None
        );
    }

    #[test]
    fn a_dip_whose_accelerometer_sits_at_its_rail_counts_as_driven() {
        // The smooth dip, read by a ±1 g part whose z axis pins at the rail (the load past
        // full scale, and a pinned axis shows no change).
        let rate = min_jerk_rate(60.0, 200.0);
        let samples = node(100.0, &rate, |_| [0.0, 0.0, 1.0]);
        assert!(drove(&samples, (300.0, 520.0), 1.0));
        assert!(!drove(&samples, (300.0, 520.0), 16.0));
    }

    #[test]
    fn a_burst_too_short_to_read_counts_as_driven() {
        let samples = node(
            50.0,
            |t| if t == 300.0 { 500.0 } else { 0.0 },
            |_| [0.0, 0.0, 1.0],
        );
        assert!(drove(&samples[15..16], (300.0, 300.0), 16.0));
    }
}
