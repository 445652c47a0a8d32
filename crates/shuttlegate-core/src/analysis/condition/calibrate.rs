//! Accelerometer offset and scale, and gyroscope bias, from the node's spells of rest.
//!
//! At rest a node's accelerometer reads gravity alone, 1 g, and its gyroscope reads its bias.
//! An uncalibrated WitMotion-type node reads 1.2–1.3 g at rest; the analyser reads "at rest"
//! as ‖a‖ ≈ 1 g (the attitude's gravity anchors, the stillness of the serve test), so an
//! uncalibrated node loses its anchors and its strokes come out `unknown`.
//!
//! A rest is a spell of `REST_MS` whose acceleration magnitude and angular rate barely change
//! (the test does not assume 1 g: that is what is being calibrated). One rest gives the gyro's
//! bias and the accelerometer's scale (1 g over the mean magnitude). Rests in four or more
//! distinct orientations give the offset too: the readings lie on a sphere of radius
//! 1 g / scale around the offset, fitted by linear least squares. Every later rest refreshes
//! the calibration (a gyro's bias drifts with temperature).
//!
//! Each correction acts only on evidence, so a node that needs none reads exactly as it
//! would without this stage: the accelerometer's once a rest reads off 1 g by more than a
//! calibrated sensor's error ([`ACC_OFF_G`]); the gyro's once rests on either side of a motion
//! agree on a rate beyond its noise ([`BIAS_MIN_DPS`], [`BIAS_AGREE_DPS`]) — a hand holding a
//! racket still turns it slowly, each time another way, while a bias stays put.
//!
//! What the node reads at rest around a swing ([`rest_reading_g`]) is the gravity the later
//! stages test against (measure/'s quasi-static anchors, the hand's speed): 1 g on a
//! calibrated node, near 1.3 g on an uncalibrated part read before its first rest, whose
//! direction is still gravity's.

use std::collections::VecDeque;

use super::super::signal::solve_small;
use super::super::vecmath::{self as vm, Vec3};

/// Length of a rest, ms: longer than a swing's pauses (the racket is never still for 300 ms
/// during a stroke), short enough to find one between rallies.
const REST_MS: f64 = 300.0;
/// Standard deviation of ‖a‖ over a rest below this, in units of its mean (2 %: MEMS noise
/// of 0.01–0.03 g at 1 g, under the 0.15 g of a footstep).
const REST_ACC_SPREAD: f64 = 0.02;
/// Mean angular rate at rest below this, °/s: a hand holding a racket still turns it by under
/// a few °/s; MEMS biases are under ±5 °/s (WitMotion: ±0.5 °/s).
const REST_GYRO_DPS: f64 = 8.0;
/// Spread of the angular rate around its mean at rest below this, °/s.
const REST_GYRO_SPREAD_DPS: f64 = 4.0;
/// A sample turning faster than this, °/s, rules out every window holding it: one such sample
/// among the 300 of a 300 ms window at 1 kHz already spreads the rate past
/// `REST_GYRO_SPREAD_DPS` (90²/300 > 4²), and fewer samples (lower rates) spread it more.
const MOVING_DPS: f64 = 90.0;
/// Samples kept for the rest test (a rest at 1 kHz).
const MAX_REST_SAMPLES: usize = 400;
/// Rest poses kept for the sphere fit, and how far apart two must point (25°) to count as
/// distinct orientations.
const MAX_POSES: usize = 12;
const DISTINCT_POSE_COS: f64 = 0.906;
/// A fit is believed when its offset is under 0.5 g and its scale within 0.6–1.6 (worse is a
/// broken sensor or a bad fit, and the single-pose scale is the safer guess).
const MAX_OFFSET_G: f64 = 0.5;
const SCALE_RANGE: (f64, f64) = (0.6, 1.6);
/// A rest reading further than this from 1 g needs the accelerometer calibrated, g: factory-
/// calibrated MEMS parts are within ±3 % (plus the rest test's 2 % spread); an uncalibrated
/// WitMotion-type node reads 1.2–1.3 g.
pub const ACC_OFF_G: f64 = 0.05;
/// Samples turning slower than this across the shaft, °/s, count towards the rest reading
/// around a swing: half the detector's default swing start (220 °/s), the slow handling
/// between strokes, where the hand's own acceleration is small beside gravity.
pub const QUIET_DPS: f64 = 110.0;
/// A rest reading is believed between these, g: a calibrated part reads 1 g, uncalibrated
/// MPU-6050-class parts up to ~1.3 g (SEED-SYSTEM.md); further off is a broken part or quiet
/// samples that were not quiet.
pub(super) const REST_READING_G: (f64, f64) = (0.8, 1.45);
/// Quiet samples needed for a rest reading.
const MIN_QUIET_SAMPLES: usize = 3;
/// A rest rate above this, °/s, is a bias worth removing (a calibrated MEMS gyro's zero-rate
/// offset is within about ±1 °/s).
pub const BIAS_MIN_DPS: f64 = 1.0;
/// Two rests' mean rates within this of each other, °/s, are one bias.
pub const BIAS_AGREE_DPS: f64 = 0.5;

/// The calibration applied to a node's raw readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Subtracted from the raw acceleration, g.
    pub acc_offset: Vec3,
    /// Multiplies the acceleration after the offset.
    pub acc_scale: f64,
    /// Subtracted from the raw angular rate, °/s.
    pub gyro_bias: Vec3,
}

impl Calibration {
    /// A calibrated sample's acceleration and angular rate.
    pub fn apply(&self, acc: &mut [f32; 3], gyro: &mut [f32; 3]) {
        for k in 0..3 {
            acc[k] = ((f64::from(acc[k]) - self.acc_offset[k]) * self.acc_scale) as f32;
            gyro[k] = (f64::from(gyro[k]) - self.gyro_bias[k]) as f32;
        }
    }
}

/// Finds rests in a node's (time-ordered) raw samples and keeps the calibration they give.
#[derive(Debug, Clone, Default)]
pub struct RestCalibrator {
    /// The samples of the rest test: time, acceleration, rate, and ‖a‖ (kept so that a
    /// sample leaving the window costs no second root).
    recent: VecDeque<(f64, Vec3, Vec3, f64)>,
    /// Running sums over `recent` (so the rest test costs the same at 1 kHz as at 50 Hz).
    sums: Sums,
    poses: VecDeque<Vec3>,
    calibration: Option<Calibration>,
    /// Time of the first rest.
    since: Option<f64>,
    /// A rest read off 1 g: the accelerometer is corrected from then on.
    acc_needed: bool,
    /// The latest rest's mean rate, and the last one before the node last moved (a bias is
    /// believed when rests either side of a motion agree).
    last_rest_rate: Option<Vec3>,
    rate_before_motion: Option<Vec3>,
    moved_since_rest: bool,
    /// The gyro bias believed, °/s.
    gyro_bias: Option<Vec3>,
}

impl RestCalibrator {
    /// Notes one raw sample; returns the calibration as of this sample.
    pub fn note(&mut self, t: f64, acc: Vec3, gyro: Vec3) -> Option<Calibration> {
        if vm::dot(gyro, gyro) > MOVING_DPS * MOVING_DPS {
            // No window holding this sample is a rest: start again after it (and spend
            // nothing while the node moves).
            if !self.recent.is_empty() {
                self.recent.clear();
                self.sums = Sums::default();
            }
            self.moved_since_rest = true;
            return self.calibration;
        }
        let acc_norm = vm::norm(acc);
        self.recent.push_back((t, acc, gyro, acc_norm));
        self.sums.add(acc, acc_norm, gyro, 1.0);
        while self.recent.len() > MAX_REST_SAMPLES
            || self.recent.front().is_some_and(|f| t - f.0 > REST_MS)
        {
            if let Some((_, a, g, a_norm)) = self.recent.pop_front() {
                self.sums.add(a, a_norm, g, -1.0);
            }
        }
        let spans = self
            .recent
            .front()
            .is_some_and(|f| t - f.0 >= 0.9 * REST_MS);
        if spans && let Some((acc_mean, gyro_mean)) = self.rest() {
            self.learn(t, acc_mean, gyro_mean);
            // One rest is one pose: start the next from scratch.
            self.recent.clear();
            self.sums = Sums::default();
        }
        self.calibration
    }

    /// When the first rest was seen.
    pub fn calibrated_since(&self) -> Option<f64> {
        self.since
    }

    /// The means of acceleration and rate over the recent samples when they are a rest.
    fn rest(&self) -> Option<(Vec3, Vec3)> {
        let n = self.recent.len() as f64;
        if n < 5.0 {
            return None;
        }
        let (sums, inv_n) = (&self.sums, 1.0 / n);
        // Tested on every quiet sample once the window spans a rest, so squares are compared
        // (no roots), and the gyro's tests, which fail most windows (slow handling), first.
        // E‖g − ḡ‖² = E‖g‖² − ‖ḡ‖², and E(‖a‖ − M)² = E‖a‖² − 2M E‖a‖ + M².
        let gyro = vm::scale(sums.gyro, inv_n);
        let gyro_mean_sq = vm::dot(gyro, gyro);
        let gyro_var = sums.gyro_sq * inv_n - gyro_mean_sq;
        if gyro_mean_sq >= REST_GYRO_DPS * REST_GYRO_DPS
            || gyro_var >= REST_GYRO_SPREAD_DPS * REST_GYRO_SPREAD_DPS
        {
            return None;
        }
        let acc = vm::scale(sums.acc, inv_n);
        let magnitude = vm::norm(acc);
        let acc_var =
            sums.acc_sq * inv_n - 2.0 * magnitude * sums.acc_norm * inv_n + magnitude * magnitude;
        let acc_spread_max = REST_ACC_SPREAD * magnitude;
        let still = magnitude > 0.3 && acc_var < acc_spread_max * acc_spread_max;
        still.then_some((acc, gyro))
    }

    fn learn(&mut self, t: f64, acc_mean: Vec3, gyro_mean: Vec3) {
        self.since.get_or_insert(t);
        let distinct = self.poses.iter().all(|p| {
            vm::unit(*p)
                .zip(vm::unit(acc_mean))
                .is_none_or(|(a, b)| vm::dot(a, b) < DISTINCT_POSE_COS)
        });
        if distinct {
            self.poses.push_back(acc_mean);
            while self.poses.len() > MAX_POSES {
                self.poses.pop_front();
            }
        } else if let Some(last) = self.poses.back_mut() {
            *last = acc_mean;
        }
        self.acc_needed |= (vm::norm(acc_mean) - 1.0).abs() > ACC_OFF_G;
        if std::mem::take(&mut self.moved_since_rest) {
            self.rate_before_motion = self.last_rest_rate;
        }
        self.last_rest_rate = Some(gyro_mean);
        if let Some(before) = self.rate_before_motion
            && vm::norm(vm::sub(before, gyro_mean)) < BIAS_AGREE_DPS
        {
            let bias = vm::scale(vm::add(before, gyro_mean), 0.5);
            self.gyro_bias = (vm::norm(bias) > BIAS_MIN_DPS).then_some(bias);
        }
        let (acc_offset, acc_scale) = if self.acc_needed {
            sphere_fit(self.poses.make_contiguous()).unwrap_or(([0.0; 3], 1.0 / vm::norm(acc_mean)))
        } else {
            ([0.0; 3], 1.0)
        };
        self.calibration = (self.acc_needed || self.gyro_bias.is_some()).then(|| Calibration {
            acc_offset,
            acc_scale,
            gyro_bias: self.gyro_bias.unwrap_or_default(),
        });
    }
}

/// Sums of the samples in the rest window: acceleration, ‖a‖, ‖a‖², rate, ‖ω‖².
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    acc: Vec3,
    acc_norm: f64,
    acc_sq: f64,
    gyro: Vec3,
    gyro_sq: f64,
}

impl Sums {
    /// Adds (`sign` 1) or removes (−1) one sample (`acc_norm`: its ‖a‖).
    fn add(&mut self, acc: Vec3, acc_norm: f64, gyro: Vec3, sign: f64) {
        self.acc = vm::add(self.acc, vm::scale(acc, sign));
        self.acc_norm += sign * acc_norm;
        self.acc_sq += sign * vm::dot(acc, acc);
        self.gyro = vm::add(self.gyro, vm::scale(gyro, sign));
        self.gyro_sq += sign * vm::dot(gyro, gyro);
    }
}

/// What a node reads at rest around a swing, g: the median ‖a‖ of its quiet samples (`quiet`:
/// their ‖a‖), when there are enough and it lies in a real part's range; `None` otherwise.
pub fn rest_reading_g(quiet: impl Iterator<Item = f64>) -> Option<f64> {
    let mut norms: Vec<f64> = quiet.collect();
    if norms.len() < MIN_QUIET_SAMPLES {
        return None;
    }
    let mid = norms.len() / 2;
    let (_, median, _) = norms.select_nth_unstable_by(mid, f64::total_cmp);
    let median = *median;
    (REST_READING_G.0..=REST_READING_G.1)
        .contains(&median)
        .then_some(median)
}

/// Offset and scale from rest readings in four or more orientations: `|a − o|² = r²` is linear
/// in (o, r² − |o|²): `2 a·o + k = |a|²`. `None` when the poses do not pin it down or the
/// result is implausible.
fn sphere_fit(poses: &[Vec3]) -> Option<(Vec3, f64)> {
    if poses.len() < 4 {
        return None;
    }
    let mut ata = vec![vec![0.0; 4]; 4];
    let mut atb = vec![0.0; 4];
    for p in poses {
        let row = [2.0 * p[0], 2.0 * p[1], 2.0 * p[2], 1.0];
        let rhs = vm::dot(*p, *p);
        for r in 0..4 {
            for c in 0..4 {
                ata[r][c] += row[r] * row[c];
            }
            atb[r] += row[r] * rhs;
        }
    }
    let x = solve_small(ata, atb)?;
    let offset = [x[0], x[1], x[2]];
    let radius_sq = x[3] + vm::dot(offset, offset);
    if radius_sq.is_nan() || radius_sq <= 0.0 || vm::norm(offset) > MAX_OFFSET_G {
        return None;
    }
    let scale = 1.0 / radius_sq.sqrt();
    (scale > SCALE_RANGE.0 && scale < SCALE_RANGE.1).then_some((offset, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `ms` of rest at 100 Hz reading `acc` and `gyro`.
    fn rest(c: &mut RestCalibrator, t0: f64, ms: f64, acc: Vec3, gyro: Vec3) -> f64 {
        let mut t = t0;
        while t < t0 + ms {
            c.note(t, acc, gyro);
            t += 10.0;
        }
        t
    }

    /// Something moving between rests.
    fn swing(c: &mut RestCalibrator, t: f64) -> f64 {
        c.note(t, [3.0, 0.0, 0.0], [200.0, 0.0, 0.0]);
        t + 10.0
    }

    #[test]
    fn rests_give_scale_and_bias() {
        let mut c = RestCalibrator::default();
        assert!(c.calibrated_since().is_none());
        // Two rests agreeing on the rate: it is the bias.
        let t = rest(&mut c, 0.0, 500.0, [0.0, 0.3, 1.27], [1.5, -0.5, 0.2]);
        let t = swing(&mut c, t);
        rest(&mut c, t, 500.0, [0.0, 0.3, 1.27], [1.6, -0.5, 0.2]);
        let cal = c.calibration.unwrap();
        let mut acc = [0.0f32, 0.3, 1.27];
        let mut gyro = [1.5f32, -0.5, 0.2];
        cal.apply(&mut acc, &mut gyro);
        let g = vm::norm(vm::widen(acc));
        assert!((g - 1.0).abs() < 1e-3, "{g}");
        assert!(vm::norm(vm::widen(gyro)) < 0.1);
        assert!(c.calibrated_since().is_some());
    }

    #[test]
    fn a_node_that_reads_true_at_rest_is_left_as_it_reads() {
        let mut c = RestCalibrator::default();
        let mut t = 0.0;
        // 1.02 g (within a calibrated part's error), a hand's slow drift each rest another way.
        for rate in [[3.0, 0.0, 0.0], [0.0, -2.5, 1.0], [-1.5, 1.5, 0.0]] {
            t = rest(&mut c, t, 500.0, [0.0, 0.3, 0.974], rate);
            t = swing(&mut c, t);
        }
        assert!(c.calibrated_since().is_some());
        assert_eq!(c.calibration, None);
    }

    #[test]
    fn rests_in_four_orientations_give_the_offset() {
        let offset = [0.05, -0.08, 0.1];
        let scale = 1.25;
        let mut c = RestCalibrator::default();
        let mut t = 0.0;
        for dir in [
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, -0.6, -0.8],
            [-0.6, 0.0, 0.8],
        ] {
            let raw = vm::add(vm::scale(dir, scale), offset);
            t = rest(&mut c, t, 400.0, raw, [0.0; 3]);
            t = swing(&mut c, t);
        }
        let cal = c.calibration.unwrap();
        assert!(vm::norm(vm::sub(cal.acc_offset, offset)) < 1e-6, "{cal:?}");
        assert!((cal.acc_scale - 1.0 / scale).abs() < 1e-6);
    }

    #[test]
    fn motion_is_not_a_rest() {
        let mut c = RestCalibrator::default();
        let mut t = 0.0;
        for i in 0..100 {
            let turn = 30.0 * (i as f64 / 5.0).sin();
            c.note(t, [0.0, 0.0, 1.0], [turn, 0.0, 0.0]);
            t += 10.0;
        }
        assert!(c.calibration.is_none());
    }

    #[test]
    fn the_rest_reading_is_the_quiet_samples_median_within_a_parts_range() {
        assert_eq!(
            rest_reading_g([1.3, 1.28, 1.31, 2.5].into_iter()),
            Some(1.31)
        );
        assert_eq!(rest_reading_g([1.0, 1.0].into_iter()), None, "too few");
        assert_eq!(
            rest_reading_g([3.0, 3.1, 2.9].into_iter()),
            None,
            "no part's gravity"
        );
    }
}
