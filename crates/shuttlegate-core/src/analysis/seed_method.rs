//! The seed backend's published analysis (`wxapp/analysis.py` in
//! happypob/django-badminton-analysis), re-implemented to run side by side with ours in
//! `shuttlegate-tools eval`. It is deliberately faithful, including what we consider its faults:
//!
//! - once per session over all samples, not per swing;
//! - Savitzky–Golay (window 15, order 3) on acc and gyro; `find_peaks` on ‖gyro‖ with height /
//!   prominence 10/5 (waist), 8/3 (shoulder), 12/5 (wrist) and distance `int(fs·0.1)` with
//!   `fs = 200` whatever the real rate; looser retries (height only) when none;
//! - delay = first waist peak → first later shoulder peak (and shoulder → wrist), with the
//!   fallbacks 0.08 s and 0.05 s when nothing is found — reported in `fallbacks`;
//! - peaks = session maximum of the filtered ‖gyro‖; ROM = range of waist angle z, shoulder y,
//!   wrist x over the whole session;
//! - energy ratio = min(max ½·1.2·ω_z² / …, 1) with the wrist's energy from the cumulative
//!   integral of its raw acceleration ×9.81 (gravity included), 0.65 when undefined.
//!
//! One deliberate kindness: samples are sorted by time and mapped with the right sensor ids
//! (the seed server maps id 4 to the wrist).

// Index loops over parallel arrays read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

use crate::batch::BodyPosition;

use super::NodeSample;
use super::signal::{find_peaks, savgol_coefficients, smooth};

/// The seed's `fs` constant.
const FS: f64 = 200.0;

/// What the seed backend would have reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeedResult {
    /// s.
    pub delay_waist_to_shoulder: f64,
    pub delay_shoulder_to_wrist: f64,
    /// Which delays are the hard-coded fallbacks rather than measurements.
    pub fallbacks: [bool; 2],
    /// °/s.
    pub peak: [f64; 3],
    /// °.
    pub rom: [f64; 3],
    pub energy_ratio: f64,
    pub energy_fallback: bool,
}

struct Series {
    t: Vec<f64>,
    gyro: [Vec<f64>; 3],
    acc: [Vec<f64>; 3],
    angle: Option<[Vec<f64>; 3]>,
}

fn series(samples: &[NodeSample], position: BodyPosition) -> Option<Series> {
    let mut s: Vec<&NodeSample> = samples.iter().filter(|x| x.position == position).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let col = |f: &dyn Fn(&NodeSample) -> f64| -> Vec<f64> { s.iter().map(|x| f(x)).collect() };
    let window = if s.len() >= 15 {
        15
    } else if s.len() % 2 == 1 {
        s.len().max(3)
    } else {
        (s.len() - 1).max(3)
    };
    let coeffs = savgol_coefficients(window, 3.min(window - 1)).unwrap_or_default();
    let filt = |v: Vec<f64>| {
        if s.len() >= window {
            smooth(&v, &coeffs)
        } else {
            v
        }
    };
    let angle = s
        .iter()
        .all(|x| x.angle.is_some())
        .then(|| [0, 1, 2].map(|k| col(&|x| x.angle.map_or(0.0, |a| f64::from(a[k])))));
    Some(Series {
        t: col(&|x| x.t_ms),
        gyro: [0, 1, 2].map(|k| filt(col(&|x| f64::from(x.gyro[k])))),
        acc: [0, 1, 2].map(|k| filt(col(&|x| f64::from(x.acc[k])))),
        angle,
    })
}

fn magnitude(v: &[Vec<f64>; 3]) -> Vec<f64> {
    (0..v[0].len())
        .map(|i| (v[0][i] * v[0][i] + v[1][i] * v[1][i] + v[2][i] * v[2][i]).sqrt())
        .collect()
}

fn peaks(mag: &[f64], height: f64, prominence: f64, retry_height: f64) -> Vec<usize> {
    let p = find_peaks(mag, height, prominence, (FS * 0.1) as usize);
    if p.is_empty() {
        find_peaks(mag, retry_height, 0.0, 1)
    } else {
        p
    }
}

/// First `a` peak with a later `b` peak: the delay between them, s.
fn first_delay(ta: &[f64], pa: &[usize], tb: &[f64], pb: &[usize]) -> Option<f64> {
    for &i in pa {
        if let Some(&j) = pb.iter().find(|&&j| tb[j] > ta[i]) {
            return Some((tb[j] - ta[i]) / 1000.0);
        }
    }
    None
}

/// Runs the seed analysis over one device's session samples.
pub fn analyse(samples: &[NodeSample]) -> SeedResult {
    let waist = series(samples, BodyPosition::Waist);
    let shoulder = series(samples, BodyPosition::Shoulder);
    let wrist = series(samples, BodyPosition::Wrist);
    let mut r = SeedResult::default();
    let mags = [&waist, &shoulder, &wrist].map(|s| s.as_ref().map(|s| magnitude(&s.gyro)));
    let pk = [
        mags[0].as_ref().map(|m| peaks(m, 10.0, 5.0, 5.0)),
        mags[1].as_ref().map(|m| peaks(m, 8.0, 3.0, 3.0)),
        mags[2].as_ref().map(|m| peaks(m, 12.0, 5.0, 5.0)),
    ];
    let d0 = match (&waist, &shoulder, &pk[0], &pk[1]) {
        (Some(a), Some(b), Some(pa), Some(pb)) => first_delay(&a.t, pa, &b.t, pb),
        _ => None,
    };
    let d1 = match (&shoulder, &wrist, &pk[1], &pk[2]) {
        (Some(a), Some(b), Some(pa), Some(pb)) => first_delay(&a.t, pa, &b.t, pb),
        _ => None,
    };
    r.delay_waist_to_shoulder = d0.filter(|d| *d > 0.0).unwrap_or(0.08);
    r.delay_shoulder_to_wrist = d1.filter(|d| *d > 0.0).unwrap_or(0.05);
    r.fallbacks = [d0.is_none(), d1.is_none()];
    for k in 0..3 {
        r.peak[k] = mags[k]
            .as_ref()
            .map_or(0.0, |m| m.iter().copied().fold(0.0, f64::max));
    }
    let range = |s: &Option<Series>, c: usize| {
        s.as_ref().and_then(|s| s.angle.as_ref()).map_or(0.0, |a| {
            let (lo, hi) = a[c]
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            hi - lo
        })
    };
    r.rom = [range(&waist, 2), range(&shoulder, 1), range(&wrist, 0)];
    let e_waist = waist.as_ref().map(|w| {
        w.gyro[2]
            .iter()
            .map(|g| 0.5 * 1.2 * g.to_radians().powi(2))
            .fold(0.0, f64::max)
    });
    let e_wrist = wrist.as_ref().map(|w| {
        let dt = 1.0 / FS;
        let mut v = [0.0f64; 3];
        let mut max: f64 = 0.0;
        for i in 1..w.t.len() {
            for k in 0..3 {
                v[k] += 0.5 * (w.acc[k][i] + w.acc[k][i - 1]) * 9.81 * dt;
            }
            max = max.max(0.5 * 0.1 * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]));
        }
        max
    });
    match (e_waist, e_wrist) {
        (Some(ew), Some(er)) if ew > 0.0 => r.energy_ratio = (er / ew).min(1.0),
        _ => {
            r.energy_ratio = 0.65;
            r.energy_fallback = true;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bells(position: BodyPosition, centre_ms: f64, peak: f64) -> Vec<NodeSample> {
        (0..400)
            .map(|i| {
                let t = i as f64 * 5.0;
                let w = peak * (-0.5 * ((t - centre_ms) / 40.0).powi(2)).exp();
                NodeSample {
                    position,
                    t_ms: t,
                    acc: [0.0, 0.0, 1.0],
                    gyro: [0.0, 0.0, w as f32],
                    angle: Some([0.0, 0.0, 0.0]),
                }
            })
            .collect()
    }

    #[test]
    fn one_clean_swing_gives_the_seed_its_delays() {
        let mut s = bells(BodyPosition::Waist, 1000.0, 300.0);
        s.extend(bells(BodyPosition::Shoulder, 1080.0, 500.0));
        s.extend(bells(BodyPosition::Wrist, 1130.0, 900.0));
        let r = analyse(&s);
        assert_eq!(r.fallbacks, [false, false]);
        assert!((r.delay_waist_to_shoulder - 0.08).abs() < 0.006, "{r:?}");
        assert!((r.delay_shoulder_to_wrist - 0.05).abs() < 0.006, "{r:?}");
    }

    #[test]
    fn no_body_nodes_yields_the_seeds_made_up_defaults_flagged() {
        let r = analyse(&[]);
        assert_eq!(r.fallbacks, [true, true]);
        assert_eq!(
            (r.delay_waist_to_shoulder, r.delay_shoulder_to_wrist),
            (0.08, 0.05)
        );
        assert!(r.energy_fallback && r.energy_ratio == 0.65);
    }
}
