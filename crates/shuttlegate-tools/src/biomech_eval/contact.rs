//! Why a matched swing's stroke is wrong: each figure the classifier reads at contact
//! (shaft elevation, head-path pitch, rate share, racket speed, stillness before) against the
//! simulator's truth, per true class, and the **ceiling** of the classifier's rules — the
//! share they get right when fed the true figures instead of measured ones. A low ceiling
//! says the rules are the limit; a ceiling far above the measured figure says the
//! measurement is (`eval --verbose`, "contact …" and "ceiling …" lines).
//!
//! With `SHUTTLEGATE_CONTACT_DUMP=FILE` set, every matched swing's truth and measured
//! figures (contact and course) are appended to FILE as one CSV row (columns in
//! [`add_matched`](ContactBreakdown::add_matched)): the per-swing table the classifier's
//! cut-offs are explored on (tuning seeds only).
//!
//! The figures come from the swing's `contact` reading, which only the in-process path has
//! (a swing read back from the daemon's journal carries none): through the daemon the error
//! lines are empty and only the ceiling is printed.

use std::collections::BTreeMap;

use shuttlegate_biomech::{Session, SwingTruth};
use shuttlegate_core::analysis::{
    AnalysisSettings, Contact, Evidence, SpeedReference, Stroke, Swing, classify, opens_rally,
};

use crate::eval::ErrorStats;

/// The measured contact figures' errors for one group of matched swings.
#[derive(Debug, Clone, Default)]
pub struct ContactErrors {
    /// Measured − true shaft elevation, °.
    pub elevation_deg: ErrorStats,
    /// Measured − true head-path pitch, °.
    pub pitch_deg: ErrorStats,
    /// Measured over true racket speed − 1, %.
    pub speed_pct: ErrorStats,
    /// Rate at contact over the swing's peak, as measured.
    pub rate_share: ErrorStats,
    /// Swings whose `quiet_before` (no footwork seen) agreed with the truth's footwork, of
    /// those assessed.
    pub quiet_agrees: usize,
    pub quiet_n: usize,
    /// The swing's course as measured (no truth to hold it against: the separation between
    /// classes is what counts): the pulse's half-maximum width, ms, and the swing plane's
    /// axis elevation over the approach, °.
    pub width_ms: ErrorStats,
    pub axis_elevation_deg: ErrorStats,
}

/// The classifier's rules on the true contact figures, for one true class.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ceiling {
    pub n: usize,
    /// Right with the absolute speed cut-offs only (no device reference).
    pub absolute_ok: usize,
    /// Right with the device's speed reference, fed the true speeds in order.
    pub referenced_ok: usize,
}

/// Every group's errors and every class's ceiling.
#[derive(Debug, Clone, Default)]
pub struct ContactBreakdown {
    /// By "{class} {mount}" (mount: the racket node's, `aligned` when in the convention) and
    /// "{class} all".
    pub errors: BTreeMap<String, ContactErrors>,
    pub ceiling: BTreeMap<&'static str, Ceiling>,
}

impl ContactBreakdown {
    /// A matched swing `found` of truth `t`, on a device whose racket node is mounted `mount`;
    /// `extra`, a further group it counts in (by class).
    pub fn add_matched(
        &mut self,
        session: &Session,
        t: &SwingTruth,
        found: &Swing,
        mount: &str,
        extra: Option<&str>,
    ) {
        let Some(e) = found.contact.0 else { return };
        if let Some(path) = std::env::var_os("SHUTTLEGATE_CONTACT_DUMP") {
            append_row(&path, &dump_row(session, t, found, &e, mount));
        }
        let extra = extra.map(|x| format!("{} {x}", t.stroke.name()));
        for key in [
            format!("{} all", t.stroke.name()),
            format!("{} {mount}", t.stroke.name()),
        ]
        .into_iter()
        .chain(extra)
        {
            let g = self.errors.entry(key).or_default();
            g.elevation_deg.add(e.elevation_deg - t.elevation_deg);
            g.pitch_deg.add(e.pitch_deg - t.pitch_deg);
            g.speed_pct
                .add((e.speed_kmh / t.racket_speed_kmh - 1.0) * 100.0);
            g.rate_share.add(e.rate_ratio);
            g.quiet_n += 1;
            g.quiet_agrees += usize::from(e.quiet_before != t.footwork);
            g.width_ms.add(e.course.width_ms);
            g.axis_elevation_deg.add(e.course.axis_elevation_deg);
        }
    }

    /// The rules on every played swing's true figures (rate share 1: the truth has none;
    /// stillness from the truth's footwork, a rally's opening from the true contact times),
    /// in the session's order so the reference sees the swings before each.
    pub fn add_ceiling(&mut self, session: &Session, settings: &AnalysisSettings) {
        let mut reference = SpeedReference::default();
        let mut previous_swing_ms = None;
        for t in &session.swings {
            let opens_rally = opens_rally(previous_swing_ms, t.t_contact_ms, settings);
            previous_swing_ms = Some(t.t_contact_ms);
            let truth = Contact {
                elevation_deg: t.elevation_deg,
                pitch_deg: t.pitch_deg,
                rate_share: 1.0,
                speed_kmh: t.racket_speed_kmh,
                reference_kmh: None,
                quiet_before: !t.footwork,
                opens_rally,
            };
            let referenced = Contact {
                reference_kmh: reference.settled(),
                ..truth
            };
            let right = |s: Stroke| s.as_str() == t.stroke.name();
            let c = self.ceiling.entry(t.stroke.name()).or_default();
            c.n += 1;
            c.absolute_ok += usize::from(right(classify(&truth, settings)));
            c.referenced_ok += usize::from(right(classify(&referenced, settings)));
            reference.add(t.racket_speed_kmh);
        }
    }

    /// One line per group and per class (`eval --verbose`).
    pub fn lines(&self) -> Vec<String> {
        let q = |e: &ErrorStats| {
            format!(
                "{:+7.1} [{:+7.1} {:+7.1}]",
                e.quantile(0.5),
                e.quantile(0.1),
                e.quantile(0.9)
            )
        };
        let errors = self.errors.iter().map(|(name, g)| {
            format!(
                "contact {name:<22} n {:>4}  median [p10 p90]: elevation error {}°  pitch error {}°  speed error {} %  rate share {:.2} [{:.2} {:.2}]  quiet_before agrees {}/{}  pulse width {} ms  plane axis {}°",
                g.elevation_deg.n(),
                q(&g.elevation_deg),
                q(&g.pitch_deg),
                q(&g.speed_pct),
                g.rate_share.quantile(0.5),
                g.rate_share.quantile(0.1),
                g.rate_share.quantile(0.9),
                g.quiet_agrees,
                g.quiet_n,
                q(&g.width_ms),
                q(&g.axis_elevation_deg)
            )
        });
        let (mut n, mut abs, mut rel) = (0, 0, 0);
        let ceilings: Vec<String> = self
            .ceiling
            .iter()
            .map(|(class, c)| {
                n += c.n;
                abs += c.absolute_ok;
                rel += c.referenced_ok;
                ceiling_line(class, c.n, c.absolute_ok, c.referenced_ok)
            })
            .collect();
        errors
            .chain(ceilings)
            .chain((n > 0).then(|| ceiling_line("all", n, abs, rel)))
            .collect()
    }
}

/// One matched swing's dump row. Columns: true class, mount, pulse shape, true elevation,
/// pitch, speed, footwork, jump, backswing; the analyser's stroke, elevation, pitch, rate
/// share, speed, reference, quiet_before, sample interval, pulse width, contact lag, approach
/// pitch, elevation rise, plane axis elevation, confidence; then found − true contact (ms),
/// the swing's flags (`;`-joined), the true height class and the height read.
fn dump_row(session: &Session, t: &SwingTruth, found: &Swing, e: &Evidence, mount: &str) -> String {
    let flags: Vec<&str> = found.flags.iter().map(|f| f.as_str()).collect();
    let sensor = &session.device.nodes[0].sensor;
    format!(
        "{},{},{:?},{},{},{},{},{},{},{:?},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:?},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        t.stroke.name(),
        mount.replace(',', ";"),
        t.shape,
        t.elevation_deg,
        t.pitch_deg,
        t.racket_speed_kmh,
        t.footwork,
        t.jump,
        t.backswing,
        found.stroke,
        e.elevation_deg,
        e.pitch_deg,
        e.rate_ratio,
        e.speed_kmh,
        e.reference_kmh.unwrap_or(f64::NAN),
        e.quiet_before,
        e.sample_interval_ms,
        e.course.width_ms,
        e.course.contact_lag_ms,
        e.course.approach_pitch_deg,
        e.course.elevation_rise_deg,
        e.course.axis_elevation_deg,
        found.confidence.unwrap_or(f64::NAN),
        found.t_impact - t.t_contact_ms,
        flags.join(";"),
        t.stroke.height_class().map_or("-", |h| h.name()),
        found.height.map_or("-", |h| h.as_str()),
        sensor.gyro_full_scale_dps,
        sensor.overflow,
        super::rate_at_contact(session, t),
        t.racket_peak_dps,
        found.impact,
        found.t_impact,
        t.hand_speed_kmh,
        e.rate_dps,
        e.course.node_offset_m,
        e.course.hand_speed_ms,
        session.device.placement.name(),
        sensor.acc_full_scale_g,
        super::court_device(session, None).profile.mount_radius_m,
        t.t_contact_ms,
    )
}

/// Appends a row to the dump file (a diagnostic: a failed write is not the evaluation's).
fn append_row(path: &std::ffi::OsStr, row: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(row.as_bytes());
    }
}

fn ceiling_line(class: &str, n: usize, absolute_ok: usize, referenced_ok: usize) -> String {
    let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
    format!(
        "ceiling {class:<6} (the rules on the true figures) n {n:>4}  absolute cut-offs {:5.1} %  with the device reference {:5.1} %",
        pct(absolute_ok),
        pct(referenced_ok)
    )
}
