//! The shuttle's contact: the instant the racket met it, from the transient it rings
//! through the frame. Apart from the swing's measurement (mod.rs) because finding it is its
//! own signal problem: the accelerometer's second difference has to tell the impulse of
//! contact from the swing's own smooth motion.

use super::{Burst, Plateau};
use crate::analysis::AnalysisSettings;
use crate::analysis::vecmath::Vec3;

/// Contact comes while the racket is turning at least this share of the swing's peak
/// |ω⊥| (after the peak; before it, [`CONTACT_MIN_RATE_SHARE_RISING`]). The shuttle is struck
/// in the forward swing, near its fastest: full strokes meet it above `CHECKED_RATIO`
/// (classify.rs, 0.78) of their peak, and half the peak leaves room for a drop or a block
/// checked before contact, whose head still moves through the shuttle [assumption: not
/// measured here]. Before that, the second difference also jumps where the
/// backswing turns into the forward swing and where the hand starts its push — those come
/// while the racket turns slowly (on the independent simulator's tuning seeds, one swing in
/// ten had its contact found 25–110 ms early, at 0–45 % of the peak rate).
const CONTACT_MIN_RATE_SHARE: f64 = 0.5;
/// Before the swing's peak the racket is still speeding up, and there contact needs this
/// share of the peak: the distal segment of a striking chain reaches its peak angular speed
/// at about contact (Putnam 1993, J. Biomech. 26 S1: 125–135), so a racket met by the shuttle
/// at 60 % of its peak would have to speed up by two thirds after contact; a checked stroke
/// (a drop, a block) slows *before* contact, on the pulse's falling side, where
/// [`CONTACT_MIN_RATE_SHARE`] holds. Chosen on the independent simulator's tuning seeds 0–29 at
/// 200 Hz from 0.5 (the old single share), 0.7, 0.8 and 0.9: speed MAE 33.0 / 32.5 / 32.2 /
/// 31.9 %, stroke 38.9 / 39.2 / 39.6 / 39.8 %, side 77.3 / 77.4 / 77.4 / 77.1 % (at mixed rates
/// 0.5 / 0.8 / 0.9: speed MAE 41.1 / 39.8 / 38.8 %, stroke 30.0 / 30.5 / 31.5 %, side 70.0 %
/// each); 0.8 for the side at 200 Hz, with the real sets also looked at between 0.8 and 0.9
/// (table-tennis side 66.1 / 66.8 %, one ChoongGao height lost at 0.9), so their figures are
/// not independent of it.
const CONTACT_MIN_RATE_SHARE_RISING: f64 = 0.8;
/// Of the jolts that pass the threshold and the rate condition, contact is the largest: the
/// shuttle's impact is a 1–2.5 ms transient whose second difference reaches 5–40 g on the
/// racket, followed by the frame's ring, while the arm's push, the backswing's turn into the
/// forward swing and the grip tightening before contact jolt the node by 1–2 g. The first of
/// them was taken until clip17: on the independent simulator's tuning seeds 0–39 at 100 Hz
/// (aligned racket nodes, true impacts found), 52 of 246 contacts came 20–75 ms early, on a
/// jolt just over the threshold (1–2 g) while the true contact's read 2–40 g; their speed
/// MAE was 58 %. The transient starts at its first sample above half its height (the second
/// difference spans three samples, so the largest can be the one after contact; the ring
/// decays from there). Half, not a tuned share: 0.2 / 0.3 / 0.5 gave 215 / 218 / 222 of 246
/// on time.
const TRANSIENT_HALF_HEIGHT: f64 = 0.5;
/// An accelerometer axis within this fraction of full scale is at the rail: a clipped
/// reading has no second difference worth reading (the rail's corner is a kink, ~2 g per
/// sample when the centripetal acceleration climbs into a 16 g rail at 200 Hz).
const ACC_RAIL_FRACTION: f64 = 0.98;

/// The contact transient's foot, caught by the first sample after contact when contact fell
/// just before it, must exceed this share of the impact threshold (0.3 g: four times the
/// second difference of 0.03 g accelerometer noise)…
const ONSET_SHARE: f64 = 0.3;
/// …and jump to this multiple of the previous sample's second difference (before contact the
/// second difference comes from smooth motion — the arm's push, gravity turning in the node's
/// frame — and changes little from one sample to the next).
const ONSET_JUMP: f64 = 3.0;
/// The samples around the transient's foot must be one interval apart, up to this (20 ms at
/// 50 Hz, with slack); a longer interval is a gap in the data.
const ONSET_LOOKBACK_MS: f64 = 25.0;
/// How far back the foot can be: the second difference spans three samples, so the first
/// two samples after contact can both read under the threshold.
const ONSET_MAX_STEPS: usize = 2;

/// The start of the largest break of the acceleration from its own linear trend above the
/// threshold, near the swing's peak and while the racket turns fast: the shuttle's contact
/// transient. Axes at the rail, or read wrapped (the conditioning stage's verdict, which left
/// the wrap in place), are left out of the second difference.
pub(super) fn find_impact(
    burst: &Burst,
    acc_full_scale_g: f64,
    trigger_t: f64,
    settings: &AnalysisSettings,
) -> Option<usize> {
    let (acc, s) = (burst.acc, burst.samples);
    let peak_t = s[burst.peak_i].t_ms;
    if acc.len() < 3 {
        return None;
    }
    let rail = ACC_RAIL_FRACTION * acc_full_scale_g;
    let wrapped = |k: usize, i: usize| burst.wraps_left.acc_wrapped_at(k, s[i].t_ms);
    let residual = |i: usize| second_difference_off_the_rail(acc, i, rail, &wrapped);
    let mut swing_residuals: Vec<f64> = (2..acc.len())
        .filter(|&i| s[i].t_ms >= trigger_t && s[i].t_ms <= peak_t)
        .map(residual)
        .collect();
    swing_residuals.sort_by(f64::total_cmp);
    let median = swing_residuals
        .get(swing_residuals.len() / 2)
        .copied()
        .unwrap_or(0.0);
    let min_rate = |i: usize| {
        let share = if s[i].t_ms < peak_t {
            CONTACT_MIN_RATE_SHARE_RISING
        } else {
            CONTACT_MIN_RATE_SHARE
        };
        share * burst.perp[burst.peak_i]
    };
    let fast = |i: usize| {
        burst.wraps_left.gyro()
            || burst.clipped[i]
            || burst.clipped[i - 1]
            || burst.perp[i].max(burst.perp[i - 1]) >= min_rate(i)
    };
    // The smooth part of a fast swing has its own second difference; an impact must stand
    // well above the swing's typical one (5× its median) as well as the absolute floor.
    let threshold = settings.impact_threshold_g.max(5.0 * median);
    let earliest = earliest_after_contact(burst);
    let in_window = |i: usize| {
        i >= earliest.max(2)
            && s[i].t_ms >= (peak_t - 120.0).max(trigger_t - 50.0)
            && s[i].t_ms <= peak_t + 80.0
    };
    let candidate = |i: usize| in_window(i) && residual(i) > threshold && fast(i);
    // The shuttle rings the racket; a node on the wrist or forearm feels it through the grip
    // and the hand's soft tissue, damped below the arm's own jolts, so there the largest
    // jolt is not the contact and the first one over the threshold is kept.
    let first = if burst.on_racket() {
        transient_start(acc.len(), &candidate, &residual)?
    } else {
        (0..acc.len()).find(|&i| candidate(i))?
    };
    // The transient rises from nothing at contact, so the first sample after contact may
    // catch only its foot, and the second difference of the next one subtracts twice that
    // foot: the detection can come up to two samples late. Step back over samples that
    // stand above the noise to the earliest that jumps above the smooth second difference of
    // the sample before it.
    let floor = ONSET_SHARE * settings.impact_threshold_g;
    // Second differences across a gap in the data say nothing about contact.
    let contiguous =
        |k: usize| (k - 2..first).all(|j| s[j + 1].t_ms - s[j].t_ms <= ONSET_LOOKBACK_MS);
    let mut onset = first;
    for k in (first.saturating_sub(ONSET_MAX_STEPS)..first).rev() {
        if k < 3.max(earliest) || !contiguous(k) || residual(k) <= floor {
            break;
        }
        if residual(k) > ONSET_JUMP * residual(k - 1) {
            onset = k;
        }
    }
    Some(onset)
}

/// The first sample of the swing's largest transient: of the `candidate` samples, the one
/// with the largest `residual`, stepped back over the candidates just before it that stand
/// above [`TRANSIENT_HALF_HEIGHT`] of it. `None` without a candidate.
fn transient_start(
    n: usize,
    candidate: &dyn Fn(usize) -> bool,
    residual: &dyn Fn(usize) -> f64,
) -> Option<usize> {
    let largest = (0..n)
        .filter(|&i| candidate(i))
        .map(|i| (i, residual(i)))
        // The earliest of equal heights (`max_by` would keep the last).
        .reduce(|best, x| if x.1 > best.1 { x } else { best })?;
    let (mut first, height) = largest;
    while first > 0 && candidate(first - 1) && residual(first - 1) > TRANSIENT_HALF_HEIGHT * height
    {
        first -= 1;
    }
    Some(first)
}

/// The earliest sample that can follow contact: with the gyro at its rail through the swing's
/// peak, the clipped plateau's first sample (0 otherwise). Before the plateau the racket
/// turns slower than the clip level and is still speeding up, while contact comes at the top
/// of the racket's turn: the distal segment of a striking chain reaches its peak angular
/// speed at about contact (Putnam 1993, J. Biomech. 26 S1: 125–135), and a node on the arm
/// peaks before the racket does. A jolt on the rising flank is the arm's own push (on the
/// independent simulator's tuning seeds 0–19 at 200 Hz, 14 of 34 clipped swings on aligned
/// racket nodes had their contact found 5–90 ms before the plateau, their speed 53 % low; on
/// the ChoongGao armband every smash had). A gyro wrapped and left so says nothing of the
/// plateau.
fn earliest_after_contact(b: &Burst) -> usize {
    if b.wraps_left.gyro() || !b.clipped[b.peak_i] {
        return 0;
    }
    Plateau::run(b.clipped, b.peak_i).first
}

/// ‖a_i − 2a_{i−1} + a_{i−2}‖ over the axes that stay off the rail in all three samples and
/// read none of them wrapped (`wrapped(axis, sample)`).
fn second_difference_off_the_rail(
    acc: &[Vec3],
    i: usize,
    rail: f64,
    wrapped: &dyn Fn(usize, usize) -> bool,
) -> f64 {
    let mut sum = 0.0;
    for k in 0..3 {
        let (a, b, c) = (acc[i][k], acc[i - 1][k], acc[i - 2][k]);
        let at_rail = [a, b, c].iter().any(|v| v.abs() >= rail);
        let wrapped = (i - 2..=i).any(|j| wrapped(k, j));
        if !at_rail && !wrapped {
            sum += (a - 2.0 * b + c).powi(2);
        }
    }
    sum.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::NodeSample;
    use crate::analysis::condition::WrapsLeft;
    use crate::batch::BodyPosition;

    const FULL_SCALE_G: f64 = 16.0;

    fn samples(n: usize) -> Vec<NodeSample> {
        (0..n)
            .map(|k| NodeSample {
                position: BodyPosition::Racket,
                t_ms: k as f64 * 5.0,
                acc: [0.0; 3],
                gyro: [0.0; 3],
                angle: None,
            })
            .collect()
    }

    /// A rate pulse peaking at 2000 °/s at 100 ms (σ 25 ms), never clipped.
    fn turning_pulse(s: &[NodeSample]) -> Vec<f64> {
        s.iter()
            .map(|x| 2000.0 * (-0.5 * ((x.t_ms - 100.0) / 25.0).powi(2)).exp())
            .collect()
    }

    /// The contact search over a burst peaking at sample 20 (100 ms), triggered at 60 ms.
    fn search_with(
        acc: &[Vec3],
        s: &[NodeSample],
        perp: &[f64],
        wraps_left: &WrapsLeft,
    ) -> Option<usize> {
        let clipped = vec![false; s.len()];
        let burst = Burst {
            samples: s,
            acc,
            perp,
            clipped: &clipped,
            peak_i: 20,
            rest_g: 1.0,
            wraps_left,
        };
        find_impact(&burst, FULL_SCALE_G, 60.0, &AnalysisSettings::default())
    }

    fn search(acc: &[Vec3], s: &[NodeSample], perp: &[f64]) -> Option<usize> {
        search_with(acc, s, perp, &WrapsLeft::default())
    }

    /// A jolt at 45 ms, while the racket turns at 11 % of its peak (the backswing turning
    /// into the forward swing), is not the contact; the transient at 110 ms is.
    #[test]
    fn a_jolt_while_the_racket_turns_slowly_is_not_contact() {
        let s = samples(40);
        let perp = turning_pulse(&s);
        let mut acc = vec![[0.0, 0.0, 1.0]; s.len()];
        acc[9][1] += 6.0;
        acc[22][1] -= 8.0;
        assert!(perp[9] < 0.15 * 2000.0 && perp[22] > 0.9 * 2000.0);
        assert_eq!(search(&acc, &s, &perp), Some(22));
    }

    /// When the gyro wrapped, its |ω⊥| says nothing of the racket's speed: a jolt while the
    /// racket seems to turn slowly stands, as it did before the rate condition.
    #[test]
    fn a_wrapped_gyro_leaves_the_rate_condition_out() {
        let s = samples(40);
        let perp = turning_pulse(&s);
        let mut acc = vec![[0.0, 0.0, 1.0]; s.len()];
        acc[9][1] += 10.0;
        acc[22][1] -= 8.0;
        let wrapped_gyro = WrapsLeft {
            gyro_spans: vec![(s[0].t_ms, s[s.len() - 1].t_ms)],
            ..WrapsLeft::default()
        };
        assert_eq!(search_with(&acc, &s, &perp, &wrapped_gyro), Some(9));
    }

    /// The shaft axis climbing into a ±16 g rail (the centripetal acceleration of a fast
    /// turn) bends at the rail; that bend is not the contact.
    #[test]
    fn the_rails_corner_is_not_contact() {
        let s = samples(40);
        let perp = turning_pulse(&s);
        let acc: Vec<Vec3> = s
            .iter()
            .map(|x| {
                let centripetal = 30.0 * (-0.5 * ((x.t_ms - 100.0) / 25.0).powi(2)).exp();
                [(-centripetal).max(-FULL_SCALE_G), 0.0, 1.0]
            })
            .collect();
        assert!(acc.iter().any(|a| a[0] <= -FULL_SCALE_G));
        assert_eq!(search(&acc, &s, &perp), None);
    }

    /// A contact transient larger than the full scale in one sample is not a wrap (a wrap
    /// jumps by nearly twice the range): it is found.
    #[test]
    fn a_transient_jumping_more_than_the_range_is_contact() {
        let s = samples(40);
        let perp = turning_pulse(&s);
        let mut acc = vec![[0.0, 0.0, 1.0]; s.len()];
        acc[21][1] = 10.0;
        acc[22][1] = -8.0;
        assert_eq!(search(&acc, &s, &perp), Some(21));
    }

    /// A jump the conditioning stage read as a wrap and left in place (here −8 g read as
    /// +8 g from 105 to 115 ms) is not the contact; the same jump it did not call a wrap is.
    #[test]
    fn an_axis_the_conditioning_stage_read_wrapped_is_left_out() {
        let s = samples(40);
        let perp = turning_pulse(&s);
        let mut acc = vec![[0.0, 0.0, 1.0]; s.len()];
        for a in &mut acc[21..=23] {
            a[1] = 8.0;
        }
        let wrapped_y = WrapsLeft {
            acc_axes: [vec![], vec![(105.0, 115.0)], vec![]],
            ..WrapsLeft::default()
        };
        assert_eq!(search_with(&acc, &s, &perp, &wrapped_y), None);
        assert_eq!(search(&acc, &s, &perp), Some(21));
    }

    /// On a gyro held at its rail through the peak (samples 18–22), a jolt on the rising
    /// flank before the plateau (sample 14, at 54 % of the clip level, fast enough for the
    /// rate condition) is the arm's push, not the contact; the transient in the plateau is.
    #[test]
    fn contact_does_not_come_before_a_clipped_plateau() {
        let s = samples(40);
        let perp: Vec<f64> = turning_pulse(&s).iter().map(|v| v.min(1800.0)).collect();
        let clipped: Vec<bool> = perp.iter().map(|&v| v >= 1800.0).collect();
        assert_eq!(clipped.iter().position(|&c| c), Some(18));
        let mut acc = vec![[0.0, 0.0, 1.0]; s.len()];
        acc[14][1] += 6.0;
        acc[21][1] -= 8.0;
        assert!(perp[14] > 0.5 * 1800.0);
        let wraps_left = WrapsLeft::default();
        let burst = Burst {
            samples: &s,
            acc: &acc,
            perp: &perp,
            clipped: &clipped,
            peak_i: 20,
            rest_g: 1.0,
            wraps_left: &wraps_left,
        };
        let found = find_impact(&burst, FULL_SCALE_G, 60.0, &AnalysisSettings::default());
        assert_eq!(found, Some(21));
    }

    /// A jolt on the rising flank (sample 13; its second difference spans samples 13–15, at
    /// 38–61 % of the peak rate) is the arm's push: the racket would speed up by two thirds
    /// after meeting the shuttle. After the peak, 61 % (sample 25) is a checked stroke's
    /// contact.
    #[test]
    fn contact_on_the_rising_flank_needs_most_of_the_peak_rate() {
        let s = samples(40);
        let perp = turning_pulse(&s);
        assert!(perp[15] > 0.5 * 2000.0 && perp[15] < 0.8 * 2000.0);
        let mut acc = vec![[0.0, 0.0, 1.0]; s.len()];
        acc[13][1] += 6.0;
        acc[22][1] -= 8.0;
        assert_eq!(search(&acc, &s, &perp), Some(22));
        let mut after_the_peak = vec![[0.0, 0.0, 1.0]; s.len()];
        after_the_peak[25][1] += 6.0;
        assert!(perp[25] > 0.5 * 2000.0 && perp[25] < 0.8 * 2000.0);
        assert_eq!(search(&after_the_peak, &s, &perp), Some(25));
    }

    /// A grip jolt of 1.5 g 30 ms before contact passes the threshold and the rate condition;
    /// the shuttle's transient, ten times larger, is the contact.
    #[test]
    fn the_largest_transient_is_the_contact_not_the_first_over_the_threshold() {
        let s = samples(40);
        let perp = turning_pulse(&s);
        let mut acc = vec![[0.0, 0.0, 1.0]; s.len()];
        acc[18][1] += 1.5;
        acc[24][1] -= 15.0;
        assert!(perp[18] > 0.8 * 2000.0);
        assert_eq!(search(&acc, &s, &perp), Some(24));
    }
}
