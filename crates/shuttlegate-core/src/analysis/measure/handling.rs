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

use super::{MAX_SWING_FWHM_MS, NodeSample, WIDE_STROKE_MIN_DPS, half_width_ms};

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
/// drives the hand steadily rather than sharply. Too few samples to tell counts as driven:
/// the test only ever removes bursts it has evidence against.
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
    load_says_driven(samples, perp, (trigger_t, end_t), peak_i, acc_full_scale_g)
        .is_none_or(|driven| driven)
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
