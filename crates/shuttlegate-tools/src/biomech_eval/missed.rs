//! Where the played swings the racket rule missed went (`eval --verbose`, "missed …" lines):
//! by the true stroke, the device's placement, and what the primary node showed around the
//! true contact — whether its |ω⊥| ever crossed the detector's trigger (`swing_start_dps`)
//! within [`LOOK_MS`] of it, and if it did, whether a detection fell near (found, but too far
//! from the contact to match) or none did (the burst was rejected, or taken as another's
//! backswing, recovery or settling). Misses under the trigger cannot be won back by any
//! rejection rule; misses over it can. A near detection is told before or after the contact
//! (the swing read at the wrong instant: its backswing, or its follow-through), and each
//! miss carries the primary node's gyro range: a gyro far under a stroke's rate sits at its
//! rail, or wraps, through most of the swing (det20: on the tuning seeds, nearly all the near
//! detections were on ±250 and ±1000 °/s gyros).
//!
//! The primary node's samples are decoded from the session's wire text and run through a
//! fresh [`NodeConditioner`] with the device's profile, as `placement.rs` does: the same
//! conditioning the device's analyser applies, in time order. Only a breakdown: no figure is
//! scored from it.

use std::collections::BTreeMap;

use shuttlegate_biomech::{Segment, Session, SwingTruth};
use shuttlegate_core::analysis::{
    AnalysisSettings, DeviceProfile, NodeConditioner, NodeSample, Swing,
};
use shuttlegate_core::batch::BodyPosition;

use super::burst_figures::{half_peak_run, jolt_g, load_change_g, perp};
use super::placement::node_samples;

/// How far around a missed swing's true contact the primary node is read, ms: a forward swing
/// peaks within ~100 ms of contact, and the detector's trigger comes 50–150 ms before it.
const LOOK_MS: f64 = 200.0;

/// How far around the true contact a contact transient is looked for, ms (a sample or two
/// at 50–100 Hz).
const JOLT_LOOK_MS: f64 = 25.0;

/// A detection this close to a missed contact is "near" (found, but not matched to it), ms.
const NEAR_MS: f64 = 1000.0;

/// Counts one session's missed swings (`missed`: the truths no racket detection matched)
/// into `tally`, keyed by class, placement, the primary node's peak |ω⊥| band around the
/// contact, and what happened there.
pub fn tally_missed(
    session: &Session,
    profile: &DeviceProfile,
    missed: &[&SwingTruth],
    found: &[&Swing],
    settings: &AnalysisSettings,
    tally: &mut BTreeMap<String, usize>,
) {
    if missed.is_empty() {
        return;
    }
    let Some((id, position)) = primary_node(session) else {
        return;
    };
    let mut samples = node_samples(session, id, position);
    let mut conditioner = NodeConditioner::new(profile, position, position == BodyPosition::Wrist);
    for s in &mut samples {
        conditioner.condition(s);
    }
    for t in missed {
        let around = samples
            .iter()
            .filter(|s| (s.t_ms - t.t_contact_ms).abs() <= LOOK_MS);
        let peak = around
            .map(|s| f64::from(s.gyro[1]).hypot(f64::from(s.gyro[2])))
            .fold(0.0, f64::max);
        let nearest = found
            .iter()
            .map(|s| s.t_impact - t.t_contact_ms)
            .filter(|dt| dt.abs() <= NEAR_MS)
            .min_by(|a, b| a.abs().total_cmp(&b.abs()));
        let why = match nearest {
            _ if peak < settings.swing_start_dps => "under the trigger",
            Some(dt) if dt < 0.0 => "over the trigger, a detection within 1 s before",
            Some(_) => "over the trigger, a detection within 1 s after",
            None => "over the trigger, no detection within 1 s",
        };
        let key = format!(
            "missed {:<6} {:<11} gyro ±{:<4} node peak {:<9} {why}",
            t.stroke.name(),
            session.device.placement.name(),
            gyro_range_dps(session),
            band(peak)
        );
        *tally.entry(key).or_default() += 1;
        let shape = format!(
            "missed shape {why:<48} {:<6} jolt {:<5} fwhm {:<6} load change {}",
            if t.impact { "struck" } else { "air" },
            jolt_band(&samples, t.t_contact_ms),
            fwhm_band(&samples, t.t_contact_ms),
            load_change_band(&samples, t.t_contact_ms),
        );
        *tally.entry(shape).or_default() += 1;
    }
}

/// The largest second difference of the acceleration vector, g, at the samples from just
/// before to just after a contact: whether a contact transient was there to be read at this
/// rate (a 1–2.5 ms impulse falls between two samples at 100 Hz more often than not).
fn jolt_band(samples: &[NodeSample], contact_ms: f64) -> &'static str {
    let jolt = (2..samples.len())
        .filter(|&i| (samples[i].t_ms - contact_ms).abs() <= JOLT_LOOK_MS)
        .map(|i| jolt_g(samples, i))
        .fold(0.0, f64::max);
    match jolt {
        j if j < 1.0 => "<1g",
        j if j < 3.0 => "1-3g",
        _ => ">=3g",
    }
}

/// How long the primary node's |ω⊥| stays above half the peak it reaches within
/// [`LOOK_MS`] of the contact, ms, banded at the wide-pulse rule's 200 ms.
fn fwhm_band(samples: &[NodeSample], contact_ms: f64) -> &'static str {
    let Some((peak_i, peak)) = peak_near(samples, contact_ms) else {
        return "-";
    };
    let (lo, hi) = half_peak_run(samples, peak_i, peak);
    if samples[hi].t_ms - samples[lo].t_ms > 200.0 {
        ">200ms"
    } else {
        "<=200ms"
    }
}

/// The largest change of the acceleration vector over 20 ms while |ω⊥| is at least half its
/// peak near the contact, g, banded at the handling rule's 0.8 g (measure/handling.rs).
fn load_change_band(samples: &[NodeSample], contact_ms: f64) -> &'static str {
    let Some((_, peak)) = peak_near(samples, contact_ms) else {
        return "-";
    };
    let best = (0..samples.len())
        .filter(|&i| {
            let s = &samples[i];
            (s.t_ms - contact_ms).abs() <= LOOK_MS && perp(s) >= 0.5 * peak
        })
        .filter_map(|i| load_change_g(samples, i))
        .fold(0.0, f64::max);
    if best >= 0.8 { ">=0.8g" } else { "<0.8g" }
}

/// The primary node's fastest sample within [`LOOK_MS`] of the contact, and its |ω⊥|.
fn peak_near(samples: &[NodeSample], contact_ms: f64) -> Option<(usize, f64)> {
    (0..samples.len())
        .filter(|&i| (samples[i].t_ms - contact_ms).abs() <= LOOK_MS)
        .map(|i| (i, perp(&samples[i])))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The node the detector runs on: the racket's, else the wrist's (or forearm's) standing in.
fn primary_node(session: &Session) -> Option<(u32, BodyPosition)> {
    let nodes = &session.device.nodes;
    let find = |seg: Segment| nodes.iter().find(|n| n.segment == seg);
    find(Segment::Racket)
        .map(|n| (n.segment.sensor_id(), BodyPosition::Racket))
        .or_else(|| {
            find(Segment::Wrist)
                .or_else(|| find(Segment::Forearm))
                .map(|n| (n.segment.sensor_id(), BodyPosition::Wrist))
        })
}

/// The device's gyro full scale, °/s (its nodes share one).
fn gyro_range_dps(session: &Session) -> u32 {
    session
        .device
        .nodes
        .first()
        .map_or(0, |n| n.sensor.gyro_full_scale_dps.round() as u32)
}

/// The band of a peak |ω⊥|, °/s, for the breakdown's key.
fn band(peak_dps: f64) -> &'static str {
    match peak_dps {
        p if p < 150.0 => "<150",
        p if p < 220.0 => "150-220",
        p if p < 400.0 => "220-400",
        p if p < 600.0 => "400-600",
        p if p < 1000.0 => "600-1000",
        _ => ">=1000",
    }
}
