//! `shuttlegate-tools eval --simulator sim`: scores the analyser against the project's own court
//! simulator (`shuttlegate-sim`), and the seed backend's method on the same sessions, side by
//! side. **Self-consistent**: that simulator renders swings with the analyser's own pulse model
//! and labels them with the classifier's rules (issue 14), so its figures say the analyser
//! agrees with itself; the independent figures are `--simulator biomech` (biomech_eval.rs).
//!
//! Seeds used while developing the analyser were 1–20; the default evaluation seeds start at
//! 1000 and draw new players (styles, devices, strengths) from each seed, so no evaluated
//! session or player was looked at while setting constants.

// Index loops over parallel arrays read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use shuttlegate_core::analysis::{
    AnalysisEvent, AnalysisSettings, DeviceAnalyser, Flag, NodeSample, RallyTracker, Stroke, Swing,
    samples_of, seed_method,
};
use shuttlegate_core::batch::BodyPosition;

use shuttlegate_sim::court::{CourtConfig, CourtSim, Impairments};
use shuttlegate_sim::truth::SwingTruth;

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub seeds: Vec<u64>,
    pub players: usize,
    pub duration_s: f64,
    pub impairments: Impairments,
    /// Every device at this rate instead of the standard mix (V3.3 firmware runs at 100 Hz).
    pub rate_hz: Option<f64>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            seeds: (1000..1020).collect(),
            players: 2,
            duration_s: 180.0,
            impairments: Impairments {
                drop_batch: 0.0,
                reorder_batch: 0.0,
            },
            rate_hz: None,
        }
    }
}

/// Running error statistics.
#[derive(Debug, Clone, Default)]
pub struct ErrorStats {
    values: Vec<f64>,
}

impl ErrorStats {
    pub fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.values.push(v);
        }
    }
    pub fn n(&self) -> usize {
        self.values.len()
    }
    pub fn mean_abs(&self) -> f64 {
        self.values.iter().map(|v| v.abs()).sum::<f64>() / self.values.len().max(1) as f64
    }
    pub fn mean(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len().max(1) as f64
    }
    /// The `q` quantile (0–1) of the signed values, the nearest rank below; 0 with none.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    }
    /// 95th percentile of |error|.
    pub fn p95_abs(&self) -> f64 {
        let mut v: Vec<f64> = self.values.iter().map(|v| v.abs()).collect();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 * 0.95) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Everything `eval` measures.
#[derive(Debug, Clone, Default)]
pub struct EvalReport {
    pub sessions: usize,
    pub truth_swings: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub impact_correct: usize,
    pub side_correct: usize,
    pub height_correct: usize,
    pub stroke_correct: usize,
    /// truth stroke → predicted stroke → count.
    pub confusion: BTreeMap<Stroke, BTreeMap<Stroke, usize>>,
    pub racket_speed_pct: ErrorStats,
    pub racket_speed_pct_saturated: ErrorStats,
    pub racket_speed_pct_unsaturated: ErrorStats,
    pub shuttle_speed_pct: ErrorStats,
    pub delay_ms: ErrorStats,
    pub peak_pct: ErrorStats,
    pub rom_deg: ErrorStats,
    pub rally_count_error: ErrorStats,
    pub true_rallies: usize,
    /// Session level, ours vs the seed method, against the truth's session aggregates.
    pub ours_session_delay_ms: ErrorStats,
    pub seed_session_delay_ms: ErrorStats,
    pub seed_delay_fallbacks: usize,
    pub ours_session_peak_pct: ErrorStats,
    pub seed_session_peak_pct: ErrorStats,
    pub ours_session_rom_deg: ErrorStats,
    pub seed_session_rom_deg: ErrorStats,
    pub chain_devices: usize,
    pub samples: u64,
    /// The first unmatched swings, both ways, for inspection (`--verbose`).
    pub mismatches: Vec<String>,
}

/// Runs the evaluation.
pub fn run(options: &EvalOptions, settings: &AnalysisSettings) -> EvalReport {
    let mut report = EvalReport::default();
    for &seed in &options.seeds {
        evaluate_session(seed, options, settings, &mut report);
    }
    report
}

fn evaluate_session(
    seed: u64,
    options: &EvalOptions,
    settings: &AnalysisSettings,
    report: &mut EvalReport,
) {
    let config = CourtConfig {
        session_id: format!("eval-{seed}"),
        impairments: options.impairments,
        ..CourtConfig::default()
    };
    let start = config.start_ms;
    let end = start + options.duration_s * 1000.0;
    let mut sim = CourtSim::standard(seed, options.players, config);
    if let Some(rate) = options.rate_hz {
        sim = sim.with_rate(rate);
    }
    let n = sim.players().len();
    let mut analysers: Vec<DeviceAnalyser> = sim
        .players()
        .iter()
        .map(|p| DeviceAnalyser::new(p.device.profile(), settings.clone(), format!("eval-{seed}")))
        .collect();
    let clocks: Vec<_> = (0..n).map(|i| sim.seed_clock(i)).collect();
    let mut body_samples: Vec<Vec<NodeSample>> = vec![Vec::new(); n];
    let mut swings: Vec<Vec<Swing>> = vec![Vec::new(); n];
    let mut rallies = RallyTracker::new(
        settings.rally_max_gap_ms,
        settings.reorder_window_ms + 1000.0,
    );
    let mut now = start;
    let mut feed = |batches: Vec<(usize, shuttlegate_core::batch::SensorBatch)>,
                    analysers: &mut Vec<DeviceAnalyser>,
                    report: &mut EvalReport| {
        for (i, b) in batches {
            let clock = clocks[i];
            let samples = samples_of(&b, BodyPosition::default_for_sensor_id, |ts| match clock {
                Some(c) => c.to_unix(ts, start),
                None => Some(ts as f64),
            });
            report.samples += samples.len() as u64;
            body_samples[i].extend(
                samples
                    .iter()
                    .filter(|s| s.position != BodyPosition::Racket),
            );
            analysers[i].handle_samples(&samples);
        }
    };
    while now < end {
        now += 100.0;
        let batches = sim.next_batches(now);
        feed(batches, &mut analysers, report);
        drain(&mut analysers, &mut swings, &mut rallies, now);
    }
    feed(sim.flush(), &mut analysers, report);
    let summaries: Vec<_> = analysers.iter_mut().map(|a| a.finish()).collect();
    drain(&mut analysers, &mut swings, &mut rallies, now);
    let rally_stats = rallies.finish();

    // Truth inside the rendered span (a swing near the end may be cut).
    let truth: Vec<&SwingTruth> = sim
        .truth()
        .iter()
        .filter(|t| t.t_impact + 1000.0 < end)
        .collect();
    let true_rallies = sim
        .rallies()
        .iter()
        .filter(|r| r.t_end + 1000.0 < end)
        .count();
    report.sessions += 1;
    report.true_rallies += true_rallies;
    let detected_rallies = rally_stats.rallies as f64;
    report
        .rally_count_error
        .add(detected_rallies - true_rallies as f64);

    for i in 0..n {
        let dev_truth: Vec<&SwingTruth> = truth
            .iter()
            .copied()
            .filter(|t| t.device_index == i)
            .collect();
        // Chain-only swings (the racket rule did not fire) are not racket detections.
        let dev_swings: Vec<&Swing> = swings[i]
            .iter()
            .filter(|s| s.t_impact + 1000.0 < end && !s.flags.contains(&Flag::ChainOnly))
            .collect();
        score_device(&dev_truth, &dev_swings, report);
        if dev_truth.iter().any(|t| t.has_chain) && !body_samples[i].is_empty() {
            compare_session(&dev_truth, &summaries[i], &body_samples[i], report);
        }
    }
}

fn drain(
    analysers: &mut [DeviceAnalyser],
    swings: &mut [Vec<Swing>],
    rallies: &mut RallyTracker,
    now: f64,
) {
    for (i, a) in analysers.iter_mut().enumerate() {
        while let Some(AnalysisEvent::Swing(s)) = a.poll_event() {
            if s.impact {
                rallies.handle_impact(&s.device, s.t_impact);
            }
            swings[i].push(s);
        }
    }
    rallies.handle_time(now);
}

/// Greedy matching by contact time (within 150 ms), then per-swing errors.
fn score_device(truth: &[&SwingTruth], found: &[&Swing], r: &mut EvalReport) {
    const MATCH_MS: f64 = 150.0;
    let mut used = vec![false; found.len()];
    r.truth_swings += truth.len();
    for t in truth {
        let best = found
            .iter()
            .enumerate()
            .filter(|(k, s)| !used[*k] && (s.t_impact - t.t_impact).abs() <= MATCH_MS)
            .min_by(|a, b| {
                (a.1.t_impact - t.t_impact)
                    .abs()
                    .total_cmp(&(b.1.t_impact - t.t_impact).abs())
            });
        let Some((k, s)) = best else {
            r.false_negatives += 1;
            note(r, format!("missed {t:?}"));
            continue;
        };
        if s.stroke != t.stroke || s.side != Some(t.side) {
            note(
                r,
                format!(
                    "misclassified as {:?}/{:?}/{:?}: {t:?}",
                    s.stroke, s.side, s.height
                ),
            );
        }
        used[k] = true;
        r.true_positives += 1;
        r.impact_correct += usize::from(s.impact == t.impact);
        r.side_correct += usize::from(s.side == Some(t.side));
        r.height_correct += usize::from(s.height == Some(t.height));
        r.stroke_correct += usize::from(s.stroke == t.stroke);
        *r.confusion
            .entry(t.stroke)
            .or_default()
            .entry(s.stroke)
            .or_default() += 1;
        if let Some(v) = s.racket_speed_kmh {
            let e = (v / t.racket_speed_kmh - 1.0) * 100.0;

            r.racket_speed_pct.add(e);
            if t.saturated {
                r.racket_speed_pct_saturated.add(e);
            } else {
                r.racket_speed_pct_unsaturated.add(e);
            }
        }
        if let (Some(v), Some(tv)) = (s.shuttle_speed_kmh, t.shuttle_speed_kmh) {
            r.shuttle_speed_pct.add((v / tv - 1.0) * 100.0);
        }
        if let Some(c) = s.chain.as_ref().filter(|_| t.has_chain) {
            for (est, tru) in [
                (c.delay_ms.waist_to_shoulder, t.delay_ms[0]),
                (c.delay_ms.shoulder_to_wrist, t.delay_ms[1]),
            ] {
                if let Some(e) = est {
                    r.delay_ms.add(e - tru);
                }
            }
            for (est, tru) in [
                (c.peak_dps.waist, t.peak_dps[0]),
                (c.peak_dps.shoulder, t.peak_dps[1]),
                (c.peak_dps.wrist, t.peak_dps[2]),
            ] {
                if let Some(e) = est {
                    r.peak_pct.add((e / tru - 1.0) * 100.0);
                }
            }
            for (est, tru) in [
                (c.rom_deg.waist, t.rom_deg[0]),
                (c.rom_deg.shoulder, t.rom_deg[1]),
                (c.rom_deg.wrist, t.rom_deg[2]),
            ] {
                if let Some(e) = est {
                    r.rom_deg.add(e - tru);
                }
            }
        }
    }
    r.false_positives += used.iter().filter(|u| !**u).count();
    for (k, s) in found.iter().enumerate() {
        if !used[k] {
            let near = truth
                .iter()
                .map(|t| t.t_impact - s.t_impact)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()));
            note(
                r,
                format!(
                    "spurious (nearest truth {near:?} ms away) {}",
                    serde_json::to_string(s).unwrap_or_default()
                ),
            );
        }
    }
}

/// Keeps the first few mismatches (bounded).
fn note(r: &mut EvalReport, line: String) {
    if r.mismatches.len() < 200 {
        r.mismatches.push(line);
    }
}

/// Session-level seed fields, ours and the seed method's, against the truth's aggregates:
/// mean delays and ROM over the session's swings, maximum peaks.
fn compare_session(
    truth: &[&SwingTruth],
    ours: &shuttlegate_core::analysis::SessionSummary,
    body: &[NodeSample],
    r: &mut EvalReport,
) {
    let chain: Vec<&&SwingTruth> = truth.iter().filter(|t| t.has_chain).collect();
    if chain.is_empty() {
        return;
    }
    r.chain_devices += 1;
    let mean = |f: &dyn Fn(&SwingTruth) -> f64| {
        chain.iter().map(|t| f(t)).sum::<f64>() / chain.len() as f64
    };
    let max = |f: &dyn Fn(&SwingTruth) -> f64| chain.iter().map(|t| f(t)).fold(0.0, f64::max);
    let true_delay = [mean(&|t| t.delay_ms[0]), mean(&|t| t.delay_ms[1])];
    let true_peak = [
        max(&|t| t.peak_dps[0]),
        max(&|t| t.peak_dps[1]),
        max(&|t| t.peak_dps[2]),
    ];
    let true_rom = [
        mean(&|t| t.rom_deg[0]),
        mean(&|t| t.rom_deg[1]),
        mean(&|t| t.rom_deg[2]),
    ];
    let seed = seed_method::analyse(body);

    r.seed_delay_fallbacks += seed.fallbacks.iter().filter(|f| **f).count();
    let a = &ours.analysis_result;
    for (k, (o, s)) in [
        (
            a.phase_delay.waist_to_shoulder,
            seed.delay_waist_to_shoulder,
        ),
        (
            a.phase_delay.shoulder_to_wrist,
            seed.delay_shoulder_to_wrist,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(o) = o {
            r.ours_session_delay_ms.add(o * 1000.0 - true_delay[k]);
        }
        r.seed_session_delay_ms.add(s * 1000.0 - true_delay[k]);
    }
    let p = &a.peak_angular_velocity;
    for (k, o) in [p.waist_peak, p.shoulder_peak, p.wrist_peak]
        .into_iter()
        .enumerate()
    {
        if let Some(o) = o {
            r.ours_session_peak_pct
                .add((o / true_peak[k] - 1.0) * 100.0);
        }
        r.seed_session_peak_pct
            .add((seed.peak[k] / true_peak[k] - 1.0) * 100.0);
    }
    let rom = &a.rom_data;
    for (k, o) in [rom.waist, rom.shoulder, rom.wrist].into_iter().enumerate() {
        if let Some(o) = o {
            r.ours_session_rom_deg.add(o - true_rom[k]);
        }
        r.seed_session_rom_deg.add(seed.rom[k] - true_rom[k]);
    }
}

impl EvalReport {
    pub fn precision(&self) -> f64 {
        self.true_positives as f64 / (self.true_positives + self.false_positives).max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        self.true_positives as f64 / (self.true_positives + self.false_negatives).max(1) as f64
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }
    fn share(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.true_positives.max(1) as f64
    }

    /// A plain-text report.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "sessions {}  samples {}  true swings {}  true rallies {}",
            self.sessions, self.samples, self.truth_swings, self.true_rallies
        );
        let _ = writeln!(
            o,
            "detection   P {:.4}  R {:.4}  F1 {:.4}  (TP {} FP {} FN {})",
            self.precision(),
            self.recall(),
            self.f1(),
            self.true_positives,
            self.false_positives,
            self.false_negatives
        );
        let _ = writeln!(o, "impact/air  {:.2} %", self.share(self.impact_correct));
        let _ = writeln!(o, "stroke      {:.2} %", self.share(self.stroke_correct));
        let _ = writeln!(o, "FH/BH       {:.2} %", self.share(self.side_correct));
        let _ = writeln!(o, "height      {:.2} %", self.share(self.height_correct));
        let row = |name: &str, e: &ErrorStats| {
            format!(
                "{name:<28} MAE {:>7.2}  bias {:>+7.2}  p95 {:>7.2}  n {}\n",
                e.mean_abs(),
                e.mean(),
                e.p95_abs(),
                e.n()
            )
        };
        o.push_str(&row("racket speed %", &self.racket_speed_pct));
        o.push_str(&row(
            "  saturated swings %",
            &self.racket_speed_pct_saturated,
        ));
        o.push_str(&row(
            "  unsaturated swings %",
            &self.racket_speed_pct_unsaturated,
        ));
        o.push_str(&row("shuttle speed %", &self.shuttle_speed_pct));
        o.push_str(&row("chain delay ms (per swing)", &self.delay_ms));
        o.push_str(&row("chain peak % (per swing)", &self.peak_pct));
        o.push_str(&row("ROM ° (per swing)", &self.rom_deg));
        o.push_str(&row("rally count (per session)", &self.rally_count_error));
        let _ = writeln!(o, "\nstroke confusion (rows truth, columns predicted):");
        let _ = write!(o, "{:>8}", "");
        for s in Stroke::ALL {
            let _ = write!(o, "{:>8}", s.as_str());
        }
        o.push('\n');
        for t in Stroke::ALL {
            let Some(row) = self.confusion.get(&t) else {
                continue;
            };
            let _ = write!(o, "{:>8}", t.as_str());
            for s in Stroke::ALL {
                let _ = write!(o, "{:>8}", row.get(&s).copied().unwrap_or(0));
            }
            o.push('\n');
        }
        let _ = writeln!(
            o,
            "\nsession-level seed fields, {} devices with body nodes (error vs truth):",
            self.chain_devices
        );
        let _ = writeln!(
            o,
            "{:<22}{:>26}{:>26}",
            "", "shuttlegate MAE (bias)", "seed method MAE (bias)"
        );
        for (name, a, b) in [
            (
                "phase delay ms",
                &self.ours_session_delay_ms,
                &self.seed_session_delay_ms,
            ),
            (
                "peak ang. velocity %",
                &self.ours_session_peak_pct,
                &self.seed_session_peak_pct,
            ),
            (
                "ROM °",
                &self.ours_session_rom_deg,
                &self.seed_session_rom_deg,
            ),
        ] {
            let _ = writeln!(
                o,
                "{name:<22}{:>17.2} ({:>+7.2}){:>17.2} ({:>+7.2})",
                a.mean_abs(),
                a.mean(),
                b.mean_abs(),
                b.mean()
            );
        }
        let _ = writeln!(
            o,
            "seed method delays that were its 0.08/0.05 s fallbacks: {}",
            self.seed_delay_fallbacks
        );
        o
    }
}
