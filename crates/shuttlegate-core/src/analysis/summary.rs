//! The session summary: the seeds' `analysis_complete_notification`, whose `analysis_result`
//! carries the seed report's fields (computed from the per-swing chain, not from one session-
//! wide peak search) beside shuttlegate's stroke, speed and activity statistics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::quality::{FlagCounts, unversioned};
use super::{AnalysisSettings, RallyStats, Swing};

/// `{"type":"analysis_complete_notification", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "analysis_complete_notification")]
pub struct SessionSummary {
    pub device: String,
    pub user: Option<String>,
    pub session_id: String,
    /// The analysis method's version ([`super::ANALYSIS_VERSION`]).
    #[serde(default = "unversioned")]
    pub analysis_version: String,
    /// Mean confidence of the session's assessed swings; `null` when none was assessed.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// How many of the session's swings carried each flag.
    #[serde(default)]
    pub flags: FlagCounts,
    pub analysis_result: AnalysisResult,
}

/// The seed fields (same names and units: delays in s) and ours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisResult {
    /// Mean waist→shoulder and shoulder→wrist delay over the session's swings, s.
    pub phase_delay: PhaseDelay,
    /// Mean per-swing energy ratio.
    pub energy_ratio: Option<f64>,
    /// Mean per-swing range of motion, °.
    pub rom_data: RomData,
    /// Highest per-swing peak angular speed, °/s (the seed takes the session maximum).
    pub peak_angular_velocity: PeakAngularVelocity,
    pub scores: ChainScores,
    pub assessment: String,
    pub recommendations: Vec<String>,
    /// Why a seed field above is null.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub null_reasons: BTreeMap<String, String>,
    pub swings: u64,
    pub hits: u64,
    pub air_swings: u64,
    pub strokes: BTreeMap<String, u64>,
    pub sides: BTreeMap<String, u64>,
    pub heights: BTreeMap<String, u64>,
    pub racket_speed_kmh: SpeedStats,
    pub shuttle_speed_kmh: SpeedStats,
    pub saturated_swings: u64,
    /// Sum of swing durations, s.
    pub active_time_s: f64,
    /// Sample time from the first to the last sample, s.
    pub session_span_s: f64,
    /// Court rallies, filled in by the caller that tracks the court.
    pub rallies: Option<RallyStats>,
    /// Samples the analyser could not use (late, duplicate, invalid, overflow).
    pub dropped_samples: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseDelay {
    pub waist_to_shoulder: Option<f64>,
    pub shoulder_to_wrist: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RomData {
    pub waist: Option<f64>,
    pub shoulder: Option<f64>,
    pub wrist: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PeakAngularVelocity {
    pub waist_peak: Option<f64>,
    pub shoulder_peak: Option<f64>,
    pub wrist_peak: Option<f64>,
}

/// The seed report's scores, 0–100.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainScores {
    pub delay_score: Option<f64>,
    pub energy_score: Option<f64>,
    pub rom_score: Option<f64>,
    pub overall_score: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeedStats {
    pub top: Option<f64>,
    pub mean: Option<f64>,
}

/// Running sums while the session goes on (bounded: no per-swing storage).
#[derive(Debug, Clone, Default)]
pub struct SummaryAccumulator {
    delays: [Mean; 2],
    energy: Mean,
    rom: [Mean; 3],
    peaks: [Option<f64>; 3],
    racket: Mean,
    racket_top: Option<f64>,
    shuttle: Mean,
    shuttle_top: Option<f64>,
    swings: u64,
    hits: u64,
    saturated: u64,
    strokes: BTreeMap<String, u64>,
    sides: BTreeMap<String, u64>,
    heights: BTreeMap<String, u64>,
    active_ms: f64,
    confidence: Mean,
    flags: FlagCounts,
}

#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    sum: f64,
    n: u64,
}

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.n += 1;
        }
    }
    fn value(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl SummaryAccumulator {
    pub fn add(&mut self, s: &Swing) {
        self.swings += 1;
        self.hits += u64::from(s.impact);
        self.saturated += u64::from(s.saturated);
        self.confidence.add(s.confidence);
        for flag in &s.flags {
            *self.flags.entry(*flag).or_default() += 1;
        }
        *self.strokes.entry(s.stroke.as_str().into()).or_default() += 1;
        // A chain-only swing has no side or height to count (the flag counts say how many).
        if let Some(side) = s.side {
            *self.sides.entry(side.as_str().into()).or_default() += 1;
        }
        if let Some(height) = s.height {
            *self.heights.entry(height.as_str().into()).or_default() += 1;
        }
        self.active_ms += (s.t_end - s.t_start).max(0.0);
        self.racket.add(s.racket_speed_kmh);
        self.racket_top = max_opt(self.racket_top, s.racket_speed_kmh);
        self.shuttle.add(s.shuttle_speed_kmh);
        self.shuttle_top = max_opt(self.shuttle_top, s.shuttle_speed_kmh);
        if let Some(c) = &s.chain {
            self.delays[0].add(c.delay_ms.waist_to_shoulder);
            self.delays[1].add(c.delay_ms.shoulder_to_wrist);
            self.energy.add(c.energy_ratio);
            self.rom[0].add(c.rom_deg.waist);
            self.rom[1].add(c.rom_deg.shoulder);
            self.rom[2].add(c.rom_deg.wrist);
            self.peaks[0] = max_opt(self.peaks[0], c.peak_dps.waist);
            self.peaks[1] = max_opt(self.peaks[1], c.peak_dps.shoulder);
            self.peaks[2] = max_opt(self.peaks[2], c.peak_dps.wrist);
        }
    }

    /// Mean confidence of the swings that carry one.
    pub fn confidence(&self) -> Option<f64> {
        self.confidence.value()
    }

    pub fn flag_counts(&self) -> FlagCounts {
        self.flags.clone()
    }

    pub fn result(&self, settings: &AnalysisSettings, span_s: f64, dropped: u64) -> AnalysisResult {
        let mut r = AnalysisResult {
            phase_delay: PhaseDelay {
                waist_to_shoulder: self.delays[0].value().map(|ms| ms / 1000.0),
                shoulder_to_wrist: self.delays[1].value().map(|ms| ms / 1000.0),
            },
            energy_ratio: self.energy.value(),
            rom_data: RomData {
                waist: self.rom[0].value(),
                shoulder: self.rom[1].value(),
                wrist: self.rom[2].value(),
            },
            peak_angular_velocity: PeakAngularVelocity {
                waist_peak: self.peaks[0],
                shoulder_peak: self.peaks[1],
                wrist_peak: self.peaks[2],
            },
            swings: self.swings,
            hits: self.hits,
            air_swings: self.swings - self.hits,
            strokes: self.strokes.clone(),
            sides: self.sides.clone(),
            heights: self.heights.clone(),
            racket_speed_kmh: SpeedStats {
                top: self.racket_top,
                mean: self.racket.value(),
            },
            shuttle_speed_kmh: SpeedStats {
                top: self.shuttle_top,
                mean: self.shuttle.value(),
            },
            saturated_swings: self.saturated,
            active_time_s: self.active_ms / 1000.0,
            session_span_s: span_s,
            dropped_samples: dropped,
            ..AnalysisResult::default()
        };
        score(&mut r, settings);
        r
    }
}

/// The seed report's scores: delay score `max(0, 100 − |d − ideal|/ideal·100)` averaged over
/// the two delays; energy `100` at or above the ideal ratio, else `ratio/ideal·100`; ROM the
/// same closeness score as delays against the ideal ROMs; overall the mean of those present.
pub fn score(r: &mut AnalysisResult, settings: &AnalysisSettings) {
    let closeness = |v: f64, ideal: f64| (100.0 - (v - ideal).abs() / ideal * 100.0).max(0.0);
    let mean = |xs: &[Option<f64>]| {
        let v: Vec<f64> = xs.iter().flatten().copied().collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let [i0, i1] = settings.ideal_delay_ms;
    let d = r.phase_delay;
    r.scores.delay_score = mean(&[
        d.waist_to_shoulder.map(|s| closeness(s * 1000.0, i0)),
        d.shoulder_to_wrist.map(|s| closeness(s * 1000.0, i1)),
    ]);
    r.scores.energy_score = r.energy_ratio.map(|e| {
        if e >= settings.ideal_energy_ratio {
            100.0
        } else {
            e / settings.ideal_energy_ratio * 100.0
        }
    });
    let ideal = settings.ideal_rom_deg;
    r.scores.rom_score = mean(&[
        r.rom_data.waist.map(|v| closeness(v, ideal.waist)),
        r.rom_data.shoulder.map(|v| closeness(v, ideal.shoulder)),
        r.rom_data.wrist.map(|v| closeness(v, ideal.wrist)),
    ]);
    r.scores.overall_score = mean(&[
        r.scores.delay_score,
        r.scores.energy_score,
        r.scores.rom_score,
    ]);
    for (key, missing) in [
        ("phase_delay", r.scores.delay_score.is_none()),
        ("energy_ratio", r.energy_ratio.is_none()),
        ("rom_data", r.scores.rom_score.is_none()),
    ] {
        if missing {
            r.null_reasons.insert(
                key.into(),
                "no swing with waist, shoulder and wrist measurements in this session".into(),
            );
        }
    }
    r.assessment = assessment(&r.scores);
    r.recommendations = recommendations(r, settings);
}

fn assessment(s: &ChainScores) -> String {
    match s.overall_score {
        None => "no kinetic-chain data (the device has no body nodes, or no swing)".into(),
        Some(x) if x >= 85.0 => "excellent kinetic chain".into(),
        Some(x) if x >= 70.0 => "good kinetic chain".into(),
        Some(x) if x >= 50.0 => "fair kinetic chain; see recommendations".into(),
        Some(_) => "the kinetic chain needs work; see recommendations".into(),
    }
}

fn recommendations(r: &AnalysisResult, settings: &AnalysisSettings) -> Vec<String> {
    let mut out = Vec::new();
    let [i0, i1] = settings.ideal_delay_ms;
    if let Some(d) = r.phase_delay.waist_to_shoulder.map(|s| s * 1000.0) {
        if d < 0.6 * i0 {
            out.push(format!(
                "hips and shoulders turn together ({d:.0} ms apart; ideal {i0:.0} ms): lead with the hips"
            ));
        } else if d > 1.4 * i0 {
            out.push(format!(
                "the shoulder follows the hips late ({d:.0} ms; ideal {i0:.0} ms): link the trunk rotation"
            ));
        }
    }
    if let Some(d) = r.phase_delay.shoulder_to_wrist.map(|s| s * 1000.0) {
        if d < 0.6 * i1 {
            out.push(format!(
                "arm and wrist fire together ({d:.0} ms; ideal {i1:.0} ms): let the forearm lead the wrist snap"
            ));
        } else if d > 1.4 * i1 {
            out.push(format!(
                "the wrist snaps late after the shoulder ({d:.0} ms; ideal {i1:.0} ms)"
            ));
        }
    }
    let ideal = settings.ideal_rom_deg;
    for (name, v, i) in [
        ("waist", r.rom_data.waist, ideal.waist),
        ("shoulder", r.rom_data.shoulder, ideal.shoulder),
        ("wrist", r.rom_data.wrist, ideal.wrist),
    ] {
        if let Some(v) = v
            && v < 0.7 * i
        {
            out.push(format!(
                "use more {name} rotation ({v:.0}° of an ideal {i:.0}°)"
            ));
        }
    }
    if let Some(e) = r.energy_ratio
        && e < settings.ideal_energy_ratio
    {
        out.push(format!(
            "little of the trunk's energy reaches the racket (ratio {e:.2}): relax the arm and accelerate late"
        ));
    }
    out
}
