//! What the racket did in the bursts the detector kept (`eval --verbose`, "burst …" lines):
//! the shape of each false racket detection, by what the simulated player was doing (a rest
//! activity, or where it fell around the played swings), beside the same shape of the played
//! swings the handling rule has to let through (found on a racket node with no contact, no
//! wider than a forward swing and no faster than a net push: measure/handling.rs's
//! population). A rule that separates a scoop from a stroke must separate these two sets of
//! lines; the lines show which figure of the burst does.
//!
//! Each figure is read on the racket node's samples, decoded from the session's wire text and
//! run through a fresh [`NodeConditioner`] as `missed.rs` does, over the detection's span
//! (`t_start`…`t_end`): the peak |ω⊥|, its width at half peak, the angle swept, the rise and
//! fall times at half peak, the largest 20 ms change of the acceleration vector while the
//! racket turns at half its peak (the handling rule's figure), and the largest departure of
//! the load from 1 g then, the largest second difference of the acceleration within 150 ms
//! after the turn fell under half its peak ("after jolt"), and what a rigid turn about one
//! fixed centre leaves of the load at half its peak ("hand": the handling rule's hand-still
//! figure, `centre_acceleration_rms_g`; NaN where it has none). Printed as the 10th, 50th and
//! 90th percentiles per group. Only a breakdown: no figure is scored from it.
//!
//! With `SHUTTLEGATE_BURST_FATES` set (`missed.rs`), the racket bursts the handling or
//! wide-pulse rule turned away are added too (`burst rejected …` lines), by the played swing
//! whose contact they span, else the rest activity or place they fell in: what a rule that
//! keeps more bursts would take back, played and not.

use std::collections::BTreeMap;

use shuttlegate_biomech::Session;
use shuttlegate_core::analysis::{
    DeviceProfile, MAX_SWING_FWHM_MS, NodeSample, Swing, WIDE_STROKE_MIN_DPS,
    centre_acceleration_rms_g,
};
use shuttlegate_core::batch::BodyPosition;

use super::burst_figures::{half_peak_run, jolt_g, load_change_g, perp};
use super::placement::conditioned_primary_samples;

/// One burst's figures.
#[derive(Debug, Clone, Copy)]
struct Shape {
    peak_dps: f64,
    fwhm_ms: f64,
    swept_deg: f64,
    rise_ms: f64,
    fall_ms: f64,
    load_change_g: f64,
    load_departure_g: f64,
    /// The largest second difference of the acceleration vector within [`AFTER_MS`] after
    /// the turn fell under half its peak, g: a knock once the racket has stopped (a tap on
    /// the floor) rather than while it turns.
    after_jolt_g: f64,
    /// What a rigid turn about one fixed centre leaves of the load at half the peak, g RMS
    /// (measure/handling.rs's hand-still figure; NaN where it has none).
    hand_g: f64,
    contact: bool,
}

/// How long after the turn fell under half its peak a knock is looked for, ms.
const AFTER_MS: f64 = 150.0;

/// The shapes of one group of bursts.
#[derive(Debug, Clone, Default)]
pub struct ShapeGroup {
    shapes: Vec<Shape>,
}

/// The bursts' shapes by group.
#[derive(Debug, Clone, Default)]
pub struct BurstShapes {
    groups: BTreeMap<String, ShapeGroup>,
}

impl BurstShapes {
    /// Adds one session's racket detections, each under its `label` (`None`: not counted):
    /// a played swing's (`played: true`) counts only in the handling rule's population.
    pub fn add_session(
        &mut self,
        session: &Session,
        profile: &DeviceProfile,
        found: &[&Swing],
        label: &[Option<(String, bool)>],
    ) {
        let Some(id) = racket_sensor(session) else {
            return;
        };
        if label.iter().all(Option::is_none) {
            return;
        }
        let samples = conditioned_primary_samples(session, id, BodyPosition::Racket, profile);
        for (s, name) in found.iter().zip(label) {
            let Some((name, played)) = name else { continue };
            let Some(shape) = shape_of(&samples, s) else {
                continue;
            };
            if *played && !in_handling_population(&shape) {
                continue;
            }
            self.groups
                .entry(name.clone())
                .or_default()
                .shapes
                .push(shape);
        }
    }

    /// Adds bursts the detector turned away on the racket node: each span (trigger to end)
    /// under its label, whatever its shape (`rejected …` lines: what the rules threw away,
    /// played or not).
    pub fn add_rejected(
        &mut self,
        session: &Session,
        profile: &DeviceProfile,
        spans: &[((f64, f64), String)],
    ) {
        let Some(id) = racket_sensor(session) else {
            return;
        };
        if spans.is_empty() {
            return;
        }
        let samples = conditioned_primary_samples(session, id, BodyPosition::Racket, profile);
        for (span, name) in spans {
            if let Some(shape) = shape_over(&samples, *span, false) {
                self.groups
                    .entry(name.clone())
                    .or_default()
                    .shapes
                    .push(shape);
            }
        }
    }

    /// One line per group and figure.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, g) in &self.groups {
            let n = g.shapes.len();
            let contact = g.shapes.iter().filter(|s| s.contact).count();
            let fig = |f: fn(&Shape) -> f64| {
                let mut v: Vec<f64> = g.shapes.iter().map(f).collect();
                v.sort_by(f64::total_cmp);
                let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
                format!("{:.2}/{:.2}/{:.2}", q(0.1), q(0.5), q(0.9))
            };
            out.push(format!(
                "burst {name:<52} n {n:>4} contact {contact:>3}  peak {}  fwhm {}  swept {}  rise {}  fall {}  load change {}  load departure {}  after jolt {}  hand {}",
                fig(|s| s.peak_dps),
                fig(|s| s.fwhm_ms),
                fig(|s| s.swept_deg),
                fig(|s| s.rise_ms),
                fig(|s| s.fall_ms),
                fig(|s| s.load_change_g),
                fig(|s| s.load_departure_g),
                fig(|s| s.after_jolt_g),
                fig(|s| s.hand_g),
            ));
        }
        out
    }
}

/// The session's racket node's sensor id, if its device has one.
fn racket_sensor(session: &Session) -> Option<u32> {
    session
        .device
        .nodes
        .iter()
        .find(|n| n.segment == shuttlegate_biomech::Segment::Racket)
        .map(|n| n.segment.sensor_id())
}

/// Whether a burst belongs to the handling rule's population (module doc): met nothing, no
/// faster than the wide-stroke bound and no wider than a forward swing at half its peak
/// (the core's own bounds).
fn in_handling_population(s: &Shape) -> bool {
    !s.contact && s.peak_dps < WIDE_STROKE_MIN_DPS && s.fwhm_ms <= MAX_SWING_FWHM_MS
}

/// The figures of the detection `s` on the racket node's conditioned `samples`.
fn shape_of(samples: &[NodeSample], s: &Swing) -> Option<Shape> {
    shape_over(samples, (s.t_start, s.t_end), s.impact)
}

/// The figures of a burst from `t_start` to `t_end` on a node's conditioned `samples`;
/// `contact`: whether the analyser found the shuttle in it.
fn shape_over(
    samples: &[NodeSample],
    (t_start, t_end): (f64, f64),
    contact: bool,
) -> Option<Shape> {
    let idx: Vec<usize> = (0..samples.len())
        .filter(|&i| samples[i].t_ms >= t_start && samples[i].t_ms <= t_end)
        .collect();
    let &peak_i = idx
        .iter()
        .max_by(|&&a, &&b| perp(&samples[a]).total_cmp(&perp(&samples[b])))?;
    let peak = perp(&samples[peak_i]);
    let (lo, hi) = half_peak_run(samples, peak_i, peak);
    let swept_deg = idx
        .windows(2)
        .map(|w| {
            let dt = (samples[w[1]].t_ms - samples[w[0]].t_ms) / 1000.0;
            0.5 * (perp(&samples[w[0]]) + perp(&samples[w[1]])) * dt
        })
        .sum();
    let load_change = (lo..=hi)
        .filter_map(|i| load_change_g(samples, i))
        .fold(0.0, f64::max);
    let load_departure = (lo..=hi)
        .map(|i| {
            let a = samples[i].acc.map(f64::from);
            ((a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt() - 1.0).abs()
        })
        .fold(0.0, f64::max);
    let end_t = samples[hi].t_ms;
    let after_jolt_g = (hi.max(2)..samples.len())
        .take_while(|&i| samples[i].t_ms <= end_t + AFTER_MS)
        .map(|i| jolt_g(samples, i))
        .fold(0.0, f64::max);
    let fit: Vec<usize> = (lo.max(1)..=hi.min(samples.len().saturating_sub(2))).collect();
    let hand_g = centre_acceleration_rms_g(samples, &fit, 0.25 * peak).unwrap_or(f64::NAN);
    Some(Shape {
        hand_g,
        after_jolt_g,
        peak_dps: peak,
        fwhm_ms: samples[hi].t_ms - samples[lo].t_ms,
        swept_deg,
        rise_ms: samples[peak_i].t_ms - samples[lo].t_ms,
        fall_ms: samples[hi].t_ms - samples[peak_i].t_ms,
        load_change_g: load_change,
        load_departure_g: load_departure,
        contact,
    })
}

/// One detection's figures as text (`SHUTTLEGATE_SWING_TRACE` on the real sets): the same
/// figures as the `burst …` lines, on the conditioned `samples` of its node.
pub fn describe(samples: &[NodeSample], s: &Swing) -> Option<String> {
    describe_span(samples, (s.t_start, s.t_end), s.impact)
}

/// [`describe`] for a burst from `t_start` to `t_end` (one the detector turned away, for
/// the `missed trace` lines).
pub fn describe_span(samples: &[NodeSample], span: (f64, f64), contact: bool) -> Option<String> {
    let x = shape_over(samples, span, contact)?;
    Some(format!(
        "peak {:.0} fwhm {:.0} swept {:.0} rise {:.0} fall {:.0} load change {:.2} load departure {:.2} after jolt {:.2} hand {:.2} contact {}",
        x.peak_dps,
        x.fwhm_ms,
        x.swept_deg,
        x.rise_ms,
        x.fall_ms,
        x.load_change_g,
        x.load_departure_g,
        x.after_jolt_g,
        x.hand_g,
        x.contact
    ))
}
