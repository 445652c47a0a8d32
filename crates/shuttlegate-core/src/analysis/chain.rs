//! The kinetic chain of one swing: peak angular speed of waist, shoulder and wrist, the delays
//! between those peaks, each joint's range of motion from the node's own attitude angles, and
//! the seeds' energy ratio.
//!
//! Unlike the seed backend (first peak of the whole session, 0.08/0.05 s when none), each
//! value comes from the swing's own window, with a sub-sample peak time, and is `None` with a
//! reason when it cannot be measured.
//!
//! A body node whose gyro clipped at its rail hides its crest: there the peak and its time
//! come from the clean flanks either side of the plateau (the racket's cap from both flanks,
//! `measure/flanks.rs`), not from the rail's reading and the plateau's middle. The cap is a
//! Gaussian each side, the shape this module reads every unclipped crest as
//! (`refine_bell_peak`); the shape is what such an estimate rests on (docs/analysis.md,
//! section 4: a minimum-jerk bell read as a Gaussian reads high, and more so the further the
//! crest passed the rail).

// Index loops over parallel arrays read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

use crate::batch::BodyPosition;

use super::condition::at_rail;
use super::condition::wrap::is_wrap;
use super::measure::{Bell, cap_over_rail};
use super::signal::{Pulse, refine_bell_peak, refine_peak, savgol_coefficients, smooth};
use super::{AnalysisSettings, Chain, DeviceProfile, NodeSample};

/// The window searched around contact, ms: the waist peaks up to ~300 ms before contact in a
/// slow swing, and every segment's peak precedes contact, so 600 before and 150 after holds
/// the whole forward swing and no neighbouring swing (a player's swings are ≥ 0.8 s apart).
pub const BEFORE_IMPACT_MS: f64 = 600.0;
pub const AFTER_IMPACT_MS: f64 = 150.0;
/// Smoothing span for the peak's time and the forward rotation's extent, ms: the seed's
/// window of 15 samples at 200 Hz is 70 ms, which flattens and can shift the wrist's
/// 15–30 ms-wide pulse; 35 ms still averages 7 samples of noise at 200 Hz. (The peak's height
/// comes from the raw samples.)
const SMOOTH_SPAN_MS: f64 = 35.0;
/// A segment rotating slower than this has no swing peak to speak of, °/s.
const MIN_PEAK_DPS: f64 = 30.0;
/// How far a two-sided cap through a narrow crest's flanks may pass from the fastest sample
/// and still be taken as that crest's shape (`sparse_crest`). On the tuning seeds' 50 Hz
/// forearm nodes the caps that read the crest within ±5 % passed within 9 % of it; those
/// that did not, 22–29 % over it.
const SPARSE_CAP_AGREEMENT: f64 = 0.10;
/// The forward rotation's extent, for the range of motion: where |ω| stays above this fraction
/// of the peak (a bell keeps 98.6 % of its area above 5 %).
const ROM_EXTENT_FRACTION: f64 = 0.05;

/// One segment's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentPeak {
    pub peak_dps: f64,
    pub t_peak: f64,
    pub rom_deg: Option<f64>,
}

/// Measures one segment from its samples in the window, read by a gyro of ±`full_scale_dps`.
/// `Err` carries the reason.
pub fn measure_segment(
    position: BodyPosition,
    samples: &[NodeSample],
    full_scale_dps: f64,
) -> Result<SegmentPeak, String> {
    if samples.len() < 5 {
        return Err(format!(
            "no {} samples around the impact",
            position.as_str()
        ));
    }
    let span = samples[samples.len() - 1].t_ms - samples[0].t_ms;
    let dt = span / (samples.len() - 1) as f64;
    // The smoothed magnitude times the peak and bounds the forward rotation (the waist's
    // broad crest is only a few °/s above its neighbours, less than the noise without
    // smoothing); the height is read from the raw samples, which the smoother would flatten
    // where the wrist's pulse is only a few samples wide (σ 6–15 ms, at 100 Hz).
    let window = ((SMOOTH_SPAN_MS / dt.max(1e-3)).round() as usize) | 1;
    let coefficients = savgol_coefficients(window.clamp(5, 31), 3).unwrap_or_default();
    let smoothed = magnitude(samples, &coefficients);
    let i = argmax(&smoothed);
    let (offset, smoothed_peak) = refine_peak(&smoothed, i);
    let raw = magnitude(samples, &[]);
    let top = argmax(&raw);
    let (_, bell_peak) = refine_bell_peak(&raw, top);
    let peak = sparse_crest(samples, &raw, top).unwrap_or(bell_peak);
    if peak.is_nan() || peak < MIN_PEAK_DPS || smoothed_peak.is_nan() {
        return Err(format!(
            "no {} rotation peak (below {MIN_PEAK_DPS} °/s)",
            position.as_str()
        ));
    }
    let t_peak = interpolate_time(samples, i, offset);
    let rom_deg = rom(position, samples, &smoothed, i, smoothed_peak);
    // On the rail the raw maximum is the rail's reading and the smoothed one the plateau's
    // middle; the cap from the flanks has the crest's height and time.
    let over_rail = crest_over_rail(samples, full_scale_dps);
    Ok(SegmentPeak {
        peak_dps: over_rail.map_or(peak, |cap| cap.peak.max(peak)),
        t_peak: over_rail.map_or(t_peak, |cap| cap.t0),
        rom_deg,
    })
}

/// The crest of a pulse narrower than the sample spacing, from the two samples either side
/// of the fastest one (`None`: the three top samples resolve the crest, or no cap agrees
/// with the fastest sample).
///
/// Three samples fix a symmetric bell, but a segment's turn speeds up over longer than it
/// brakes, and where the bell's width is under one sample interval (a forearm's 6–15 ms pulse
/// at 50 Hz) the symmetric bell through them misplaces the crest and reads it low. The two
/// samples either side then fix a two-sided Gaussian, each side its own width, cresting
/// where the sides meet: the construction of the cap over a clipped plateau
/// (`measure/flanks.rs`), the fastest sample standing as a one-sample plateau. That sample,
/// which the cap does not pass through by construction, is its check: a cap that does not
/// reproduce it within `SPARSE_CAP_AGREEMENT` does not describe this crest.
fn sparse_crest(samples: &[NodeSample], raw: &[f64], top: usize) -> Option<f64> {
    let neighbours = raw.get(top.checked_sub(1)?..=top + 1)?;
    if neighbours.iter().any(|&v| v <= 0.0) {
        return None;
    }
    // ln y = ln P − (t − t0)² / 2σ²: the second difference of the logs over a sample step
    // dt is −dt²/σ², so under −1 the bell is narrower than the spacing.
    let curvature = neighbours[0].ln() - 2.0 * neighbours[1].ln() + neighbours[2].ln();
    if curvature > -1.0 {
        return None;
    }
    let mut fastest = vec![false; raw.len()];
    fastest[top] = true;
    let cap = cap_over_rail(samples, raw, &fastest, top, Bell::Gaussian)?;
    let agreement = cap.at(samples[top].t_ms) / raw[top] - 1.0;
    (agreement.abs() <= SPARSE_CAP_AGREEMENT).then_some(cap.peak)
}

/// The crest hidden by the gyro's rail, when the segment's fastest sample sat there: the cap
/// through the clean flanks either side of the plateau (`None`: not clipped, or no cap fits,
/// and the rail's reading stands). A sample counts as clipped when any axis sat at the rail,
/// as the conditioning stage counts it; an unwrapped reading past the rail is real.
fn crest_over_rail(samples: &[NodeSample], full_scale_dps: f64) -> Option<Pulse> {
    let wrapped = wrapped_axes(samples, full_scale_dps);
    let clipped: Vec<bool> = samples
        .iter()
        .zip(&wrapped)
        .map(|(s, w)| {
            w.iter().any(|&w| w)
                || s.gyro
                    .iter()
                    .any(|&g| at_rail(f64::from(g), full_scale_dps))
        })
        .collect();
    // A wrapped axis's reading is not its rate; its rate is past the rail, so ‖ω‖ is at
    // least what the rail and the other axes give.
    let bounded: Vec<f64> = samples
        .iter()
        .zip(&wrapped)
        .map(|(s, w)| {
            (0..3)
                .map(|k| {
                    if w[k] {
                        full_scale_dps
                    } else {
                        f64::from(s.gyro[k])
                    }
                })
                .map(|g| g * g)
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    cap_over_rail(
        samples,
        &bounded,
        &clipped,
        argmax(&bounded),
        Bell::Gaussian,
    )
}

/// Per sample and axis, whether the reading is a sign wrap left in place (the conditioning
/// stage undoes a wrap only where no real turn could jump as far: not on a ±250 °/s gyro
/// below 1 kHz). Each wrap-shaped jump (`condition/wrap.rs`) counts one range passed, its
/// sign by the jump's direction; an axis reads wrapped while its count is not zero. A count
/// the window leaves open marks nothing: with no return seen, the jump may not be a wrap.
fn wrapped_axes(samples: &[NodeSample], full_scale_dps: f64) -> Vec<[bool; 3]> {
    let mut out = vec![[false; 3]; samples.len()];
    for k in 0..3 {
        let mut count = 0i32;
        let mut marks = vec![false; samples.len()];
        for i in 1..samples.len() {
            let (prev, now) = (
                f64::from(samples[i - 1].gyro[k]),
                f64::from(samples[i].gyro[k]),
            );
            if is_wrap(prev, now, full_scale_dps) {
                count += if prev > 0.0 { 1 } else { -1 };
            }
            marks[i] = count != 0;
        }
        if count == 0 {
            for (o, m) in out.iter_mut().zip(marks) {
                o[k] = m;
            }
        }
    }
    out
}

/// ‖ω‖ per sample, each gyro axis smoothed with `coefficients` (none: raw).
fn magnitude(samples: &[NodeSample], coefficients: &[f64]) -> Vec<f64> {
    let axis = |k: usize| -> Vec<f64> {
        let raw: Vec<f64> = samples.iter().map(|s| f64::from(s.gyro[k])).collect();
        smooth(&raw, coefficients)
    };
    let (gx, gy, gz) = (axis(0), axis(1), axis(2));
    (0..samples.len())
        .map(|i| (gx[i] * gx[i] + gy[i] * gy[i] + gz[i] * gz[i]).sqrt())
        .collect()
}

fn argmax(xs: &[f64]) -> usize {
    (0..xs.len())
        .max_by(|&a, &b| xs[a].total_cmp(&xs[b]))
        .unwrap_or(0)
}

fn interpolate_time(samples: &[NodeSample], i: usize, offset: f64) -> f64 {
    let t = samples[i].t_ms;
    if offset >= 0.0 {
        samples.get(i + 1).map_or(t, |n| t + offset * (n.t_ms - t))
    } else if i > 0 {
        t + offset * (t - samples[i - 1].t_ms)
    } else {
        t
    }
}

/// Range of the joint's angle (waist yaw, shoulder pitch, wrist roll, as the seeds take them)
/// over the forward rotation around the peak, unwrapped across ±180°.
fn rom(
    position: BodyPosition,
    samples: &[NodeSample],
    mag: &[f64],
    peak_i: usize,
    peak: f64,
) -> Option<f64> {
    let channel = match position {
        BodyPosition::Waist => 2,
        BodyPosition::Shoulder => 1,
        _ => 0,
    };
    let floor = ROM_EXTENT_FRACTION * peak;
    let mut lo = peak_i;
    while lo > 0 && mag[lo - 1] > floor {
        lo -= 1;
    }
    let mut hi = peak_i;
    while hi + 1 < mag.len() && mag[hi + 1] > floor {
        hi += 1;
    }
    let lo = lo.saturating_sub(1);
    let hi = (hi + 1).min(samples.len() - 1);
    let mut prev: Option<f64> = None;
    let mut unwrapped = 0.0;
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in &samples[lo..=hi] {
        let a = f64::from(s.angle?[channel]);
        unwrapped = match prev {
            None => a,
            Some(p) => unwrapped + wrap180(a - p),
        };
        prev = Some(a);
        min = min.min(unwrapped);
        max = max.max(unwrapped);
    }
    Some(max - min)
}

fn wrap180(d: f64) -> f64 {
    (d + 180.0).rem_euclid(360.0) - 180.0
}

/// The chain of one swing from the three segments' windows (`None` where the device has no
/// such node). Returns the chain and the reasons for its nulls (keyed by JSON path).
pub fn measure_chain(
    segments: [(BodyPosition, Option<&[NodeSample]>); 3],
    racket_speed_kmh: Option<f64>,
    profile: &DeviceProfile,
    settings: &AnalysisSettings,
) -> (Chain, Vec<(String, String)>) {
    let mut chain = Chain::default();
    let mut reasons = Vec::new();
    let mut peaks: [Option<SegmentPeak>; 3] = [None; 3];
    for (k, (position, samples)) in segments.iter().enumerate() {
        let name = position.as_str();
        let result = match samples {
            None => Err(format!("device has no {name} node")),
            Some(s) => measure_segment(*position, s, profile.gyro_full_scale_dps),
        };
        match result {
            Ok(p) => {
                peaks[k] = Some(p);
                if p.rom_deg.is_none() {
                    reasons.push((
                        format!("chain.rom_deg.{name}"),
                        format!("the {name} node sends no attitude angles"),
                    ));
                }
            }
            Err(why) => {
                reasons.push((format!("chain.peak_dps.{name}"), why.clone()));
                reasons.push((format!("chain.rom_deg.{name}"), why));
            }
        }
    }
    let [waist, shoulder, wrist] = peaks;
    chain.peak_dps.waist = waist.map(|p| p.peak_dps);
    chain.peak_dps.shoulder = shoulder.map(|p| p.peak_dps);
    chain.peak_dps.wrist = wrist.map(|p| p.peak_dps);
    chain.rom_deg.waist = waist.and_then(|p| p.rom_deg);
    chain.rom_deg.shoulder = shoulder.and_then(|p| p.rom_deg);
    chain.rom_deg.wrist = wrist.and_then(|p| p.rom_deg);
    let delay = |a: Option<SegmentPeak>, b: Option<SegmentPeak>| Some(b?.t_peak - a?.t_peak);
    chain.delay_ms.waist_to_shoulder = delay(waist, shoulder);
    chain.delay_ms.shoulder_to_wrist = delay(shoulder, wrist);
    for (key, value, pair) in [
        (
            "waist_to_shoulder",
            chain.delay_ms.waist_to_shoulder,
            "waist or shoulder",
        ),
        (
            "shoulder_to_wrist",
            chain.delay_ms.shoulder_to_wrist,
            "shoulder or wrist",
        ),
    ] {
        if value.is_none() {
            reasons.push((format!("chain.delay_ms.{key}"), format!("no {pair} peak")));
        }
    }
    chain.energy_ratio = match (waist, racket_speed_kmh) {
        (Some(w), Some(v)) => Some(energy_ratio(w.peak_dps, v, settings)),
        (None, _) => {
            reasons.push(("chain.energy_ratio".into(), "no waist peak".into()));
            None
        }
        (_, None) => {
            reasons.push(("chain.energy_ratio".into(), "no racket speed".into()));
            None
        }
    };
    (chain, reasons)
}

/// The seeds' energy ratio: racket kinetic energy over the waist's rotational energy, capped
/// at 1 as the seed backend caps it (`min(E_wrist/E_waist, 1)`).
pub fn energy_ratio(
    waist_peak_dps: f64,
    racket_speed_kmh: f64,
    settings: &AnalysisSettings,
) -> f64 {
    let v = racket_speed_kmh / 3.6;
    let w = waist_peak_dps.to_radians();
    let e_racket = 0.5 * settings.racket_mass_kg * v * v;
    let e_waist = 0.5 * settings.waist_inertia_kg_m2 * w * w;
    if e_waist > 0.0 {
        (e_racket / e_waist).min(1.0)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bell(t0: f64, peak: f64, sigma: f64, rate_hz: f64) -> Vec<NodeSample> {
        let dt = 1000.0 / rate_hz;
        let mut angle = 0.0;
        (0..(400.0 / dt) as usize)
            .map(|i| {
                let t = i as f64 * dt;
                let w = peak * (-0.5 * ((t - t0) / sigma).powi(2)).exp();
                angle += w * dt / 1000.0;
                NodeSample {
                    position: BodyPosition::Waist,
                    t_ms: t,
                    acc: [0.0, 0.0, 1.0],
                    gyro: [0.0, 0.0, w as f32],
                    angle: Some([0.0, 0.0, angle as f32]),
                }
            })
            .collect()
    }

    #[test]
    fn a_bell_of_known_peak_time_and_area_is_measured_within_a_sample() {
        // 300 °/s peak, σ 60 ms: area 300·0.06·√(2π) = 45.1°.
        let s = bell(201.7, 300.0, 60.0, 200.0);
        let p = measure_segment(BodyPosition::Waist, &s, 2000.0).expect("peak");
        assert!((p.t_peak - 201.7).abs() < 2.0, "{p:?}");
        assert!((p.peak_dps / 300.0 - 1.0).abs() < 0.01, "{p:?}");
        assert!((p.rom_deg.expect("rom") - 45.1).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn a_still_segment_has_no_peak_and_says_why() {
        let s = bell(200.0, 5.0, 60.0, 200.0);
        let err = measure_segment(BodyPosition::Waist, &s, 2000.0).expect_err("no peak");
        assert!(err.contains("no waist rotation peak"), "{err}");
    }

    /// A two-sided Gaussian bell's share of its crest at `u` widths from it.
    fn gaussian(u: f64) -> f64 {
        (-0.5 * u * u).exp()
    }

    /// A segment turning about one axis as a two-sided bell of `shape` (widths `rise` ms
    /// before its crest, `fall` ms after), read by a gyro of ±`full_scale` that holds its rail
    /// past it.
    fn clipped_turn(
        t0: f64,
        peak: f64,
        (rise, fall): (f64, f64),
        shape: fn(f64) -> f64,
        (rate_hz, full_scale): (f64, f64),
    ) -> Vec<NodeSample> {
        let dt = 1000.0 / rate_hz;
        (0..(600.0 / dt) as usize)
            .map(|i| {
                let t = i as f64 * dt;
                let width = if t < t0 { rise } else { fall };
                let w = peak * shape((t - t0) / width);
                NodeSample {
                    position: BodyPosition::Shoulder,
                    t_ms: t,
                    acc: [0.0, 0.0, 1.0],
                    gyro: [0.0, w.min(full_scale) as f32, 0.0],
                    angle: None,
                }
            })
            .collect()
    }

    /// A shoulder turning at 600 °/s read by a ±250 °/s gyro at 100 Hz: the rail reads 250
    /// and the plateau's middle; the flanks give the crest and its time back.
    #[test]
    fn a_crest_past_the_rail_is_read_from_the_flanks() {
        let s = clipped_turn(301.3, 600.0, (40.0, 30.0), gaussian, (100.0, 250.0));
        let p = measure_segment(BodyPosition::Shoulder, &s, 250.0).expect("peak");
        assert!((p.peak_dps / 600.0 - 1.0).abs() < 0.05, "{p:?}");
        assert!((p.t_peak - 301.3).abs() < 3.0, "{p:?}");
    }

    /// A ±250 °/s gyro that wraps past full scale (left in place: at 100 Hz a real turn can
    /// jump as far) reads the crest on the opposite sign; the crest comes from the flanks
    /// either side of the wrapped run.
    #[test]
    fn a_crest_wrapped_past_the_rail_is_read_from_the_flanks() {
        let mut s = clipped_turn(301.3, 600.0, (40.0, 30.0), gaussian, (100.0, f64::INFINITY));
        for x in &mut s {
            let g = f64::from(x.gyro[1]);
            if g > 250.0 {
                x.gyro[1] = (g - 500.0) as f32;
            }
        }
        let p = measure_segment(BodyPosition::Shoulder, &s, 250.0).expect("peak");
        assert!((p.peak_dps / 600.0 - 1.0).abs() < 0.05, "{p:?}");
        assert!((p.t_peak - 301.3).abs() < 3.0, "{p:?}");
    }

    /// A forearm's turn narrower than the sample spacing (σ 16 ms rising, 10 ms falling, read
    /// at 50 Hz): the symmetric bell through the three top samples reads its 1200 °/s crest
    /// 8 % low; the two samples either side, each side its own width, give it back.
    #[test]
    fn a_crest_narrower_than_the_sample_spacing_is_read_from_both_sides() {
        let s = clipped_turn(308.0, 1200.0, (16.0, 10.0), gaussian, (50.0, f64::INFINITY));
        let p = measure_segment(BodyPosition::Wrist, &s, 2000.0).expect("peak");
        assert!((p.peak_dps / 1200.0 - 1.0).abs() < 0.01, "{p:?}");
    }

    /// Readings past the rail are an unwrapped gyro's, real: read as they are, not as a
    /// plateau to rebuild (a Gaussian cap over this compact bell would read it 10–20 % high).
    #[test]
    fn a_reading_past_the_rail_is_not_rebuilt() {
        let compact = |u: f64| {
            (0.5 * std::f64::consts::PI * u.clamp(-1.0, 1.0))
                .cos()
                .powi(2)
        };
        let s = clipped_turn(
            301.3,
            600.0,
            (140.0, 110.0),
            compact,
            (200.0, f64::INFINITY),
        );
        let p = measure_segment(BodyPosition::Shoulder, &s, 250.0).expect("peak");
        assert!((p.peak_dps / 600.0 - 1.0).abs() < 0.01, "{p:?}");
        assert!((p.t_peak - 301.3).abs() < 2.0, "{p:?}");
    }
}
