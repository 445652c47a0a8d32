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
//! With `SHUTTLEGATE_BURST_FATES` set, each miss is also counted by what the detector
//! decided over its contact (`missed fate …`: the rule that turned the fastest burst there
//! away, from the detector's own burst log, or "no burst"), and printed with every burst
//! near it (`missed trace …` on stdout), so a miss at 100 Hz can be paired with the same
//! session at 200 Hz (the simulator draws the same sessions at a fixed rate).
//!
//! The primary node's samples are decoded from the session's wire text and run through a
//! fresh [`NodeConditioner`] with the device's profile, as `placement.rs` does: the same
//! conditioning the device's analyser applies, in time order. Only a breakdown: no figure is
//! scored from it.

use std::collections::BTreeMap;

use shuttlegate_biomech::{Segment, Session, SwingTruth};
use shuttlegate_core::analysis::{
    AnalysisEvent, AnalysisSettings, BurstDecision, BurstFate, DeviceAnalyser, DeviceProfile,
    NoStroke, NodeSample, Swing,
};
use shuttlegate_core::batch::BodyPosition;

use super::burst_figures::{half_peak_run, jolt_g, load_change_g, perp};
use super::placement::{conditioned_primary_samples, decoded_batches};

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
    (missed, found): (&[&SwingTruth], &[&Swing]),
    log: Option<&[BurstDecision]>,
    settings: &AnalysisSettings,
    tally: &mut BTreeMap<String, usize>,
) {
    if missed.is_empty() {
        return;
    }
    let Some((id, position)) = primary_node(session) else {
        return;
    };
    let samples = conditioned_primary_samples(session, id, position, profile);
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
        if let Some(log) = log {
            tally_fate(session, t, (peak, why), log, &samples, tally);
        }
    }
}

/// Whether the detector's burst fates were asked for (`SHUTTLEGATE_BURST_FATES` set): the
/// `missed fate …` and `burst rejected …` lines of `eval --verbose`, and a `missed trace`
/// line per missed swing on stdout. They take a second pass of the analyser over each
/// session, so they are not part of every run.
pub fn burst_fates_asked() -> bool {
    std::env::var_os("SHUTTLEGATE_BURST_FATES").is_some()
}

/// Counts a missed swing `t` by what the detector decided over its contact (the fastest
/// burst within [`LOOK_MS`], or none) and prints its `missed trace` line. `peak`, `why`: the
/// node's peak |ω⊥| near the contact and the miss's kind, as the `missed …` lines.
fn tally_fate(
    session: &Session,
    t: &SwingTruth,
    (peak, why): (f64, &str),
    log: &[BurstDecision],
    samples: &[NodeSample],
    tally: &mut BTreeMap<String, usize>,
) {
    let fates = fates_near(log, t.t_contact_ms);
    let fate = format!(
        "missed fate {:<6} {:<11} {:<6} {}",
        t.stroke.name(),
        session.device.placement.name(),
        if t.impact { "struck" } else { "air" },
        fates.first().map_or("no burst", |(_, f)| f.as_str()),
    );
    *tally.entry(fate).or_default() += 1;
    print_trace(session, t, (peak, why), &fates, samples);
}

/// One missed swing's `missed trace` line: the session, the contact's time from its start,
/// the class, the true and read peaks, every burst near the contact with its fate, span
/// (from the contact) and peak, and the fastest one's figures (`burst_shape`).
fn print_trace(
    session: &Session,
    t: &SwingTruth,
    (peak, why): (f64, &str),
    fates: &[(BurstDecision, String)],
    samples: &[NodeSample],
) {
    let figures = fates
        .first()
        .and_then(|(b, _)| {
            super::burst_shape::describe_span(samples, (b.trigger_t, b.end_t), false)
        })
        .unwrap_or_default();
    println!(
        "missed trace {} t {:.0} {} {} {} gyro ±{} true peak {:.0} node peak {:.0} {why}: {} | {figures}",
        session.device.session_id,
        t.t_contact_ms - session.start_ms,
        t.stroke.name(),
        if t.impact { "struck" } else { "air" },
        session.device.placement.name(),
        gyro_range_dps(session),
        t.racket_peak_dps,
        peak,
        fates
            .iter()
            .map(|(b, f)| format!(
                "{f} [{:+.0}..{:+.0} ms, {:.0}°/s]",
                b.trigger_t - t.t_contact_ms,
                b.end_t - t.t_contact_ms,
                b.peak_dps
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The detector's decision on every burst of the session's primary node: the session's
/// messages through one [`DeviceAnalyser`] with the court's profile for the device, in the
/// order the gateway receives them, with its burst log kept (the court's analyser keeps
/// none).
pub fn burst_log(session: &Session, settings: &AnalysisSettings) -> Vec<BurstDecision> {
    let device = super::court_device(session, None);
    let mut analyser = DeviceAnalyser::new(
        device.profile.clone(),
        settings.clone(),
        &session.device.session_id,
    );
    analyser.keep_burst_log();
    for samples in decoded_batches(session, |id| device.sensors.get(&id).copied()) {
        analyser.handle_samples(&samples);
        while let Some(AnalysisEvent::Swing(_)) = analyser.poll_event() {}
    }
    analyser.finish();
    analyser.burst_log().to_vec()
}

/// The bursts the detector decided within [`LOOK_MS`] of a contact at `contact_ms`, fastest
/// first, each with its fate as a word (the wide-pulse rule's with the hand's drive banded
/// at its 1 g).
fn fates_near(log: &[BurstDecision], contact_ms: f64) -> Vec<(BurstDecision, String)> {
    let mut near: Vec<(BurstDecision, String)> = log
        .iter()
        .filter(|b| b.trigger_t <= contact_ms + LOOK_MS && b.end_t >= contact_ms - LOOK_MS)
        .map(|b| (*b, fate_word(b.fate)))
        .collect();
    near.sort_by(|a, b| b.0.peak_dps.total_cmp(&a.0.peak_dps));
    near
}

/// A burst's fate as one word for the breakdown's key.
pub fn fate_word(fate: BurstFate) -> String {
    match fate {
        BurstFate::Swing => "swing (unmatched)".into(),
        BurstFate::NoStroke(NoStroke::WidePulse { hand_g, .. }) => format!(
            "wide_pulse (hand {})",
            if hand_g < 1.0 { "<1g" } else { ">=1g" }
        ),
        _ => fate.name().into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(trigger_t: f64, end_t: f64, peak_dps: f64, fate: BurstFate) -> BurstDecision {
        BurstDecision {
            trigger_t,
            end_t,
            peak_dps,
            fate,
        }
    }

    #[test]
    fn the_bursts_near_a_contact_come_fastest_first_and_far_ones_are_left_out() {
        let log = [
            burst(
                900.0,
                1000.0,
                300.0,
                BurstFate::NoStroke(NoStroke::Handling),
            ),
            burst(1050.0, 1150.0, 450.0, BurstFate::SoftUnmet),
            // Ends 250 ms before the contact: past LOOK_MS.
            burst(600.0, 750.0, 900.0, BurstFate::Swing),
        ];
        let near = fates_near(&log, 1000.0);
        let words: Vec<&str> = near.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(words, ["soft_unmet", "handling"]);
    }

    #[test]
    fn a_wide_pulse_is_named_with_its_hand_drive_banded_at_1_g() {
        let wide = |hand_g| {
            fate_word(BurstFate::NoStroke(NoStroke::WidePulse {
                width_ms: 250.0,
                hand_g,
            }))
        };
        assert_eq!(wide(0.6), "wide_pulse (hand <1g)");
        assert_eq!(wide(1.4), "wide_pulse (hand >=1g)");
    }
}
