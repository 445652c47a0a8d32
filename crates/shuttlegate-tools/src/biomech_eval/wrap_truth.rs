//! How the conditioning stage's unwrapping compares with the simulator's true wraps
//! (`eval --verbose`, "wrap …" lines). The simulator knows by how many ranges each reading of
//! a wrapping node's int16 count wrapped (`Session::wrap_truth`); the analyser must not. Each
//! node's samples are decoded from the session's wire text and run through a fresh
//! [`NodeConditioner`] as `missed.rs` does; [`NodeConditioner::last_unwrap`] says how many
//! ranges the unwrapper added to each channel, and whether the stage applied them.
//!
//! Per node kind (sensor, range, rate, racket or body node, wraps undone or only flagged),
//! each channel's samples are counted as: read right past the rail; **missed** (a range off:
//! the wrap's entry was not taken, with the entry jump's size in full scales); **ended
//! early** (the wrap was taken, then let go while the value was still past the rail);
//! **count** (two ranges or more needed, fewer added); **spurious** (a range added where
//! nothing wrapped). Played swings on the racket node are counted when a wrong sample falls
//! within ±[`SWING_HALF_MS`] of their contact. A few wrong runs are printed as examples
//! ("wrap example …"). Only a breakdown: no figure is scored from it.

use std::collections::BTreeMap;

use shuttlegate_biomech::{Segment, Session};
use shuttlegate_core::analysis::{DeviceProfile, NodeConditioner, NodeSample, UnwrapSeen};

use super::placement::{has_racket_node, node_samples};
use super::position;

/// A wrong sample this near a played swing's contact counts against the swing, ms.
const SWING_HALF_MS: f64 = 300.0;
/// Examples printed per sensor kind.
const EXAMPLES: usize = 12;

/// One node kind's counts.
#[derive(Debug, Clone, Default)]
struct WrapTally {
    /// Channel-samples truly past the rail.
    wrapped: usize,
    right: usize,
    missed: usize,
    ended_early: usize,
    count: usize,
    spurious: usize,
    /// The raw jump at a missed entry, in full scales.
    missed_entry_jumps: Vec<f64>,
    /// Played swings (racket node) with a true wrap within the window, and with a wrong sample.
    swings_wrapped: usize,
    swings_wrong: usize,
}

/// The unwrapping against the truth, by node kind.
#[derive(Debug, Clone, Default)]
pub struct WrapBreakdown {
    groups: BTreeMap<String, WrapTally>,
    examples: BTreeMap<&'static str, Vec<String>>,
}

/// What went wrong in one channel-sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Clean,
    Right,
    Missed,
    EndedEarly,
    Count,
    Spurious,
}

impl Verdict {
    fn wrong(self) -> bool {
        !matches!(self, Verdict::Clean | Verdict::Right)
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Right => "right",
            Verdict::Missed => "missed",
            Verdict::EndedEarly => "ended early",
            Verdict::Count => "count",
            Verdict::Spurious => "spurious",
        }
    }
}

/// The verdict on a channel whose true wraps are `truth` and unwrapper's `found`, the previous
/// sample's `prev_found`.
fn verdict(truth: i32, found: i32, prev_found: i32) -> Verdict {
    match (truth, found) {
        (0, 0) => Verdict::Clean,
        (t, f) if t == f => Verdict::Right,
        (_, 0) if prev_found != 0 => Verdict::EndedEarly,
        (_, 0) => Verdict::Missed,
        (0, _) => Verdict::Spurious,
        _ => Verdict::Count,
    }
}

/// A node's true wraps by time, sparse.
struct Truth<'a>(&'a [(f64, [i8; 6])]);

impl Truth<'_> {
    /// The true wraps of the sample at `t_ms` (nearest listed reading within `tol_ms`).
    fn at(&self, t_ms: f64, tol_ms: f64) -> [i8; 6] {
        let i = self.0.partition_point(|(t, _)| *t < t_ms);
        [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|k| self.0.get(k))
            .find(|(t, _)| (t - t_ms).abs() <= tol_ms)
            .map_or([0; 6], |(_, w)| *w)
    }
}

impl WrapBreakdown {
    /// Adds one session's wrapping nodes.
    pub fn add_session(&mut self, session: &Session, profile: &DeviceProfile) {
        for node in &session.device.nodes {
            let id = node.segment.sensor_id();
            let Some((_, truth)) = session.wrap_truth.iter().find(|(n, _)| *n == id) else {
                continue;
            };
            if node.sensor.overflow != shuttlegate_biomech::Overflow::Wrap {
                continue;
            }
            self.add_node(session, profile, node.segment, &Truth(truth));
        }
    }

    fn add_node(
        &mut self,
        session: &Session,
        profile: &DeviceProfile,
        segment: Segment,
        truth: &Truth,
    ) {
        let pos = position(segment);
        let samples = node_samples(session, segment.sensor_id(), pos);
        let mut conditioner = NodeConditioner::new(
            profile,
            pos,
            segment != Segment::Racket && !has_racket_node(session),
        );
        let fs = [profile.acc_full_scale_g, profile.gyro_full_scale_dps];
        let racket = segment == Segment::Racket;
        let mut prev_found = [0i32; 6];
        let mut prev_raw: Option<NodeSample> = None;
        let mut swing_wrong = vec![false; session.swings.len()];
        let mut swing_wrapped = vec![false; session.swings.len()];
        let mut runs: [Option<Run>; 6] = Default::default();
        for i in 0..samples.len() {
            let raw = samples[i];
            let mut s = raw;
            conditioner.condition(&mut s);
            let seen = conditioner.last_unwrap();
            let spacing = i
                .checked_sub(1)
                .map_or(10.0, |j| raw.t_ms - samples[j].t_ms);
            let true_wraps = truth.at(raw.t_ms, (0.45 * spacing).max(0.6));
            for ch in 0..6 {
                let (sensor, undone) = channel(&seen, ch);
                let full = fs[ch / 3];
                let raw_v = channel_value(raw.acc, raw.gyro, ch);
                let found = ((channel_value(seen.acc, seen.gyro, ch) - raw_v) / (2.0 * full))
                    .round() as i32;
                let t = i32::from(true_wraps[ch]);
                let v = verdict(t, found, prev_found[ch]);
                let key = format!(
                    "wrap {sensor} ±{full} {rate} {place} {undone}",
                    rate = rate_label(spacing),
                    place = if racket { "racket" } else { "body" },
                    undone = if undone { "undone" } else { "left" },
                );
                let g = self.groups.entry(key).or_default();
                g.wrapped += usize::from(t != 0);
                match v {
                    Verdict::Right => g.right += 1,
                    Verdict::Missed => {
                        g.missed += 1;
                        if let Some(p) = prev_raw.filter(|_| prev_found[ch] == 0) {
                            let pv = channel_value(p.acc, p.gyro, ch);
                            if !runs[ch].as_ref().is_some_and(|r| r.verdict == v) {
                                g.missed_entry_jumps.push((raw_v - pv).abs() / full);
                            }
                        }
                    }
                    Verdict::EndedEarly => g.ended_early += 1,
                    Verdict::Count => g.count += 1,
                    Verdict::Spurious => g.spurious += 1,
                    Verdict::Clean => {}
                }
                if racket {
                    for (j, sw) in session.swings.iter().enumerate() {
                        if (sw.t_contact_ms - raw.t_ms).abs() <= SWING_HALF_MS {
                            swing_wrapped[j] |= t != 0;
                            swing_wrong[j] |= v.wrong();
                        }
                    }
                }
                self.note_run(
                    &mut runs[ch],
                    v,
                    ch,
                    raw.t_ms,
                    raw_v,
                    t,
                    found,
                    session,
                    segment,
                    full,
                    spacing,
                );
                prev_found[ch] = found;
            }
            prev_raw = Some(raw);
        }
        if racket {
            let key = format!(
                "wrap swings racket ±{}g ±{}dps",
                profile.acc_full_scale_g, profile.gyro_full_scale_dps
            );
            let g = self.groups.entry(key).or_default();
            g.swings_wrapped += swing_wrapped.iter().filter(|&&w| w).count();
            g.swings_wrong += swing_wrong.iter().filter(|&&w| w).count();
        }
    }

    /// Follows a channel's run of wrong samples and keeps it as an example when it ends.
    #[allow(clippy::too_many_arguments)]
    fn note_run(
        &mut self,
        run: &mut Option<Run>,
        v: Verdict,
        ch: usize,
        t_ms: f64,
        raw: f64,
        truth: i32,
        found: i32,
        session: &Session,
        segment: Segment,
        full: f64,
        spacing: f64,
    ) {
        if v.wrong() {
            match run {
                Some(r) if r.verdict == v => {
                    r.n += 1;
                    r.raws.push(raw);
                }
                _ => {
                    self.close_run(run.take(), session, segment, full, spacing);
                    *run = Some(Run {
                        verdict: v,
                        ch,
                        from_ms: t_ms,
                        n: 1,
                        truth,
                        found,
                        raws: vec![raw],
                    });
                }
            }
        } else {
            self.close_run(run.take(), session, segment, full, spacing);
        }
    }

    fn close_run(
        &mut self,
        run: Option<Run>,
        session: &Session,
        segment: Segment,
        full: f64,
        spacing: f64,
    ) {
        let Some(r) = run else { return };
        let sensor = if r.ch < 3 { "acc" } else { "gyro" };
        let list = self.examples.entry(sensor).or_default();
        if list.len() >= EXAMPLES {
            return;
        }
        let near = session
            .swings
            .iter()
            .map(|s| r.from_ms - s.t_contact_ms)
            .min_by(|a, b| a.abs().total_cmp(&b.abs()));
        let raws: Vec<String> = r.raws.iter().take(6).map(|v| format!("{v:.0}")).collect();
        list.push(format!(
            "wrap example {sid} {segment:?} {sensor}{axis} ±{full} {rate} {what} {n} samples, {near} from the nearest contact, true wraps {t} found {f}, raw {raws}",
            sid = session.device.session_id,
            axis = ["x", "y", "z"][r.ch % 3],
            rate = rate_label(spacing),
            what = r.verdict.name(),
            n = r.n,
            near = near.map_or("-".into(), |d| format!("{d:+.0} ms")),
            t = r.truth,
            f = r.found,
            raws = raws.join(" "),
        ));
    }

    /// One line per node kind, then the examples.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .groups
            .iter()
            .map(|(key, g)| {
                if key.starts_with("wrap swings") {
                    return format!(
                        "{key:<44} played swings with a true wrap within ±{SWING_HALF_MS} ms {:>5}, with a wrong sample {:>5}",
                        g.swings_wrapped, g.swings_wrong
                    );
                }
                let mut jumps = g.missed_entry_jumps.clone();
                jumps.sort_by(f64::total_cmp);
                let q = |p: f64| {
                    jumps
                        .get(((jumps.len().max(1) - 1) as f64 * p).round() as usize)
                        .map_or("-".into(), |v| format!("{v:.2}"))
                };
                format!(
                    "{key:<44} past the rail {:>7}  right {:>7}  missed {:>6}  ended early {:>6}  count {:>5}  spurious {:>5}  missed entries {:>4} jump (FS) {}/{}/{}",
                    g.wrapped,
                    g.right,
                    g.missed,
                    g.ended_early,
                    g.count,
                    g.spurious,
                    jumps.len(),
                    q(0.1),
                    q(0.5),
                    q(0.9),
                )
            })
            .collect();
        out.extend(self.examples.values().flatten().cloned());
        out
    }
}

/// A run of wrong samples on one channel.
#[derive(Debug, Clone)]
struct Run {
    verdict: Verdict,
    ch: usize,
    from_ms: f64,
    n: usize,
    truth: i32,
    found: i32,
    raws: Vec<f64>,
}

/// Channel `ch` (acc x, y, z, gyro x, y, z): its sensor, and whether its wraps are undone.
fn channel(seen: &UnwrapSeen, ch: usize) -> (&'static str, bool) {
    if ch < 3 {
        ("acc", seen.acc_undone)
    } else {
        ("gyro", seen.gyro_undone)
    }
}

/// Channel `ch` (acc x, y, z, gyro x, y, z) of a sample's two sensors.
fn channel_value(acc: [f32; 3], gyro: [f32; 3], ch: usize) -> f64 {
    f64::from(if ch < 3 { acc[ch] } else { gyro[ch - 3] })
}

/// The node's rate from its sample spacing, to the nearest usual rate.
fn rate_label(spacing_ms: f64) -> String {
    let hz = 1000.0 / spacing_ms.max(0.1);
    let usual = [50.0, 100.0, 200.0, 500.0, 1000.0];
    let near = usual
        .into_iter()
        .min_by(|a, b| (a - hz).abs().total_cmp(&(b - hz).abs()))
        .unwrap_or(hz);
    format!("{near:.0}Hz")
}
