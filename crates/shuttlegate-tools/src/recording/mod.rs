//! Real recordings for `shuttlegate-tools eval --recording LABEL=FILE`: public racket and wrist
//! IMU recordings that no one here made, run through the analyser as they are. Two readers: the
//! WitMotion CSV export ([`read_csv`], `Date,Time,Accel_X (g),…,Gyro_Z (°/s)`, as in
//! deadpoolcnn/ml_badminton) and any delimited table described by a [`TableFormat`]
//! ([`table`]). Which public data sets were found, their licences and their results are in
//! docs/analysis.md ("Real recordings").
//!
//! Most public files are labelled per file (what the file holds, and a nominal repetition
//! count from the file name or from its fixed-length captures), not per swing: what can be
//! scored then is the number of swings found against the nominal count, and the share of
//! swings whose stroke, side and height agree with the label. A table with a per-row label
//! column is scored per labelled run instead ([`RunScore`]): runs with a swing, swings in
//! them and their side/height, and swings outside every run.
//!
//! The per-source figures issue 14 asks for (strokes found per class, counted twice, false
//! swings per minute, side and height agreement, speed order) come from [`sources`] (the data
//! sets and what each file holds), [`score`] (detections against that truth) and
//! [`crate::report`] (one table per source); [`daemon`] streams a source through the real daemon,
//! [`evaluate_source`] through an analyser in this process.

pub mod daemon;
pub mod label;
mod missed;
pub mod score;
pub mod sources;
pub mod table;
pub mod windows;

pub use label::Label;
pub use table::{
    AccUnit, AxisMap, GyroUnit, LabelRun, Table, TableError, TableFormat, TimeSource, TimeUnit,
};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::NaiveDateTime;

use shuttlegate_core::analysis::{
    AnalysisEvent, AnalysisSettings, DeviceAnalyser, DeviceProfile, Height, NodeSample, Side,
    Stroke,
};
use shuttlegate_core::batch::BodyPosition;

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} line {line}: {reason} (expected Date,Time,ax,ay,az,gx,gy,gz,… as exported by WitMotion tools)"
    )]
    Format {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: {source} (check the table format flags against the file's header)")]
    Table { path: String, source: TableError },
    #[error("{path}: {source}")]
    Windows {
        path: String,
        source: windows::WindowsError,
    },
}

/// Largest file read, bytes: the whole file is held in memory while it is parsed, and no
/// public recording found comes near it (the largest, 3.6 MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A whole file, refused when larger than [`MAX_FILE_BYTES`].
fn read_bounded(path: &str) -> Result<Vec<u8>, RecordingError> {
    let io = |source| RecordingError::Io {
        path: path.into(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(io(std::io::Error::other(format!(
            "{len} bytes, more than the {MAX_FILE_BYTES} read at once; split the file"
        ))));
    }
    std::fs::read(path).map_err(io)
}

/// Samples of one CSV export (header line first).
pub fn read_csv(path: &str) -> Result<Vec<NodeSample>, RecordingError> {
    let text = read_bounded(path)?;
    let text = String::from_utf8_lossy(&text);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| RecordingError::Format {
            path: path.into(),
            line: n + 1,
            reason: reason.into(),
        };
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 8 {
            return Err(bad("fewer than 8 columns"));
        }
        let when = NaiveDateTime::parse_from_str(
            &format!("{} {}", cols[0], cols[1]),
            "%Y-%m-%d %H:%M:%S%.f",
        )
        .map_err(|_| bad("date/time not `YYYY-MM-DD,HH:MM:SS.mmm`"))?;
        let num = |k: usize| {
            cols[k]
                .trim()
                .parse::<f32>()
                .map_err(|_| bad("a sensor column is not a number"))
        };
        out.push(NodeSample {
            position: BodyPosition::Racket,
            t_ms: when.and_utc().timestamp_millis() as f64,
            acc: [num(2)?, num(3)?, num(4)?],
            gyro: [num(5)?, num(6)?, num(7)?],
            angle: None,
        });
    }
    Ok(out)
}

/// How a recording's file is laid out.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// WitMotion CSV export ([`read_csv`]).
    WitMotion,
    /// Any delimited table.
    Table(Box<TableFormat>),
    /// Fixed-length stroke windows in one JSON document ([`windows`]), this many samples per
    /// second.
    StrokeWindows { rate_hz: f64 },
}

/// One recording to evaluate: the file, what it is known to hold, and how it was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSpec {
    pub path: String,
    pub label: Label,
    pub format: Format,
    /// Where the sensor was worn: `Racket` or `Wrist` (read with the racket's conventions).
    pub position: BodyPosition,
    /// The recording device's full scales, for the saturation flag and the speed fit.
    pub acc_full_scale_g: f64,
    pub gyro_full_scale_dps: f64,
    /// Values of the table's label column that mark a stroke, and what each means
    /// (`1` → forehand). Rows with other values hold no stroke.
    pub run_labels: Vec<(String, Label)>,
}

/// How far outside a labelled run a swing's contact may fall and still count for it, ms.
/// Labels are drawn by hand around a stroke (from video or by watching the trace), so a
/// contact can sit a few samples past the window's edge; 250 ms is a quarter of the shortest
/// time between two strokes of one player. Where two runs lie closer than that (one tennis
/// file has runs 60 ms apart), the swing counts for the earlier run.
pub const RUN_MATCH_SLACK_MS: f64 = 250.0;

/// Detection and classification against one label value's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunScore {
    pub value: String,
    pub label: Label,
    /// Runs of rows with this value.
    pub runs: usize,
    /// Runs with at least one swing.
    pub detected: usize,
    /// Swings inside these runs.
    pub swings: usize,
    /// Of those swings, how many agree with the label's side / height (`None`: the label
    /// states none).
    pub side_agree: Option<usize>,
    pub height_agree: Option<usize>,
}

/// One swing's facts, kept for scoring against label runs.
#[derive(Debug, Clone, Copy)]
struct Found {
    t_impact: f64,
    side: Side,
    height: Height,
}

/// One file's result.
#[derive(Debug, Clone)]
pub struct RecordingResult {
    pub path: String,
    pub label: Label,
    /// Strokes the file is known to hold: none when labelled idle; for a table, one per
    /// fixed-length capture; for a WitMotion export, the count in its file name
    /// (`smash_x30.csv`, the convention of deadpoolcnn/ml_badminton).
    pub nominal: Option<usize>,
    pub samples: usize,
    /// Rows skipped for an empty channel cell.
    pub skipped_rows: usize,
    /// Median sample rate, Hz (0 with fewer than two samples).
    pub rate_hz: f64,
    pub swings: usize,
    pub impacts: usize,
    pub strokes: BTreeMap<Stroke, usize>,
    pub forehand: usize,
    pub heights: BTreeMap<Height, usize>,
    /// Per mapped value of the label column (empty without one).
    pub run_scores: Vec<RunScore>,
    /// Swings whose contact is in no mapped run: false detections, when the labels are
    /// complete.
    pub swings_outside_runs: Option<usize>,
}

impl RecordingResult {
    /// Swings whose stroke, side or height (whichever the label states) agree with it;
    /// `None` for a fact the label does not state.
    pub fn agreeing(&self) -> [Option<usize>; 3] {
        let l = self.label;
        [
            l.stroke.map(|s| self.strokes.get(&s).copied().unwrap_or(0)),
            l.side.map(|s| match s {
                Side::Forehand => self.forehand,
                Side::Backhand => self.swings - self.forehand,
            }),
            l.height.map(|h| self.heights.get(&h).copied().unwrap_or(0)),
        ]
    }
}

/// The repetition count in a file name such as `smash_x30.csv` or `clear_10_kyle.csv`.
fn nominal_count(path: &str) -> Option<usize> {
    let name = std::path::Path::new(path).file_stem()?.to_str()?;
    name.split('_')
        .map(|p| p.trim_start_matches('x'))
        .find_map(|p| p.parse().ok())
}

/// Reads a recording's samples, and its count of fixed-length captures if it has them.
pub fn read_recording(spec: &RecordingSpec) -> Result<Table, RecordingError> {
    match &spec.format {
        Format::WitMotion => {
            let mut samples = read_csv(&spec.path)?;
            for s in &mut samples {
                s.position = spec.position;
            }
            Ok(Table {
                samples,
                skipped_rows: 0,
                captures: None,
                label_runs: Vec::new(),
            })
        }
        Format::StrokeWindows { rate_hz } => {
            let w = windows::read(Path::new(&spec.path), *rate_hz, spec.position).map_err(
                |source| RecordingError::Windows {
                    path: spec.path.clone(),
                    source,
                },
            )?;
            Ok(Table {
                samples: w.samples,
                skipped_rows: 0,
                captures: Some(w.strokes.len()),
                label_runs: w
                    .strokes
                    .into_iter()
                    .map(|(value, span)| LabelRun {
                        value,
                        t_start: span.t_start,
                        t_end: span.t_end,
                    })
                    .collect(),
            })
        }
        Format::Table(format) => {
            let bytes = read_bounded(&spec.path)?;
            table::parse_table(&String::from_utf8_lossy(&bytes), format, spec.position).map_err(
                |source| RecordingError::Table {
                    path: spec.path.clone(),
                    source,
                },
            )
        }
    }
}

/// Median spacing of consecutive samples as a rate, Hz: robust to the gaps between captures
/// and to millisecond stamp jitter.
fn median_rate_hz(samples: &[NodeSample]) -> f64 {
    let mut steps: Vec<f64> = samples
        .windows(2)
        .map(|w| w[1].t_ms - w[0].t_ms)
        .filter(|d| *d > 0.0)
        .collect();
    if steps.is_empty() {
        return 0.0;
    }
    steps.sort_by(f64::total_cmp);
    1000.0 / steps[steps.len() / 2]
}

/// Runs the analyser over one labelled recording, as a one-node device (racket or wrist)
/// with the default mount radius and the recording's full scales.
pub fn evaluate(
    spec: &RecordingSpec,
    settings: &AnalysisSettings,
) -> Result<RecordingResult, RecordingError> {
    let table = read_recording(spec)?;
    let samples = table.samples;
    let profile = DeviceProfile {
        positions: vec![spec.position],
        acc_full_scale_g: spec.acc_full_scale_g,
        gyro_full_scale_dps: spec.gyro_full_scale_dps,
        ..DeviceProfile::new("recording")
    };
    let mut analyser = DeviceAnalyser::new(profile, settings.clone(), "recording");
    let mut r = RecordingResult {
        path: spec.path.clone(),
        label: spec.label,
        nominal: if spec.label.idle {
            Some(0)
        } else if spec.format == Format::WitMotion {
            nominal_count(&spec.path)
        } else {
            table.captures
        },
        samples: samples.len(),
        skipped_rows: table.skipped_rows,
        rate_hz: median_rate_hz(&samples),
        swings: 0,
        impacts: 0,
        strokes: BTreeMap::new(),
        forehand: 0,
        heights: BTreeMap::new(),
        run_scores: Vec::new(),
        swings_outside_runs: None,
    };
    let mut found = Vec::new();
    // Batches of 30 samples, as a node sends them; events are drained after each so the
    // analyser's event queue never grows with the file.
    for chunk in samples.chunks(30) {
        analyser.handle_samples(chunk);
        drain_swings(&mut analyser, &mut r, &mut found);
    }
    analyser.finish();
    drain_swings(&mut analyser, &mut r, &mut found);
    if !spec.run_labels.is_empty() {
        let (scores, outside) = score_runs(&table.label_runs, &spec.run_labels, &found);
        r.run_scores = scores;
        r.swings_outside_runs = Some(outside);
    }
    Ok(r)
}

/// Scores swings against the label runs: a swing belongs to the first mapped run whose span,
/// widened by [`RUN_MATCH_SLACK_MS`], holds its contact.
fn score_runs(
    runs: &[LabelRun],
    mapping: &[(String, Label)],
    found: &[Found],
) -> (Vec<RunScore>, usize) {
    let mut scores: Vec<RunScore> = mapping
        .iter()
        .map(|(value, label)| RunScore {
            value: value.clone(),
            label: *label,
            runs: runs.iter().filter(|r| r.value == *value).count(),
            detected: 0,
            swings: 0,
            side_agree: label.side.map(|_| 0),
            height_agree: label.height.map(|_| 0),
        })
        .collect();
    // The score each run counts towards; `None` for values the mapping leaves out.
    let run_score: Vec<Option<usize>> = runs
        .iter()
        .map(|run| scores.iter().position(|s| s.value == run.value))
        .collect();
    let mut hit = vec![false; runs.len()];
    let mut outside = 0;
    for f in found {
        let owner = runs
            .iter()
            .zip(&run_score)
            .enumerate()
            .find_map(|(index, (run, score))| {
                let holds = f.t_impact >= run.t_start - RUN_MATCH_SLACK_MS
                    && f.t_impact <= run.t_end + RUN_MATCH_SLACK_MS;
                Some((index, (*score)?)).filter(|_| holds)
            });
        let Some((index, score)) = owner else {
            outside += 1;
            continue;
        };
        let score = &mut scores[score];
        if !std::mem::replace(&mut hit[index], true) {
            score.detected += 1;
        }
        score.swings += 1;
        if let (Some(n), Some(side)) = (score.side_agree.as_mut(), score.label.side) {
            *n += usize::from(f.side == side);
        }
        if let (Some(n), Some(height)) = (score.height_agree.as_mut(), score.label.height) {
            *n += usize::from(f.height == height);
        }
    }
    (scores, outside)
}

/// Runs every file of `source` through an analyser in this process (one per file, as the
/// daemon runs one per device and session) and scores the swings.
pub fn evaluate_source(
    source: &sources::Source,
    settings: &AnalysisSettings,
) -> Result<crate::report::SourceReport, RecordingError> {
    let outcomes = source_outcomes(source, settings)?;
    let mut report = score::score(
        source.name,
        &source.title,
        "an analyser in this process (eval --in-process)",
        &outcomes,
        &source.speed_order,
    );
    report.notes.extend(source.notes.iter().cloned());
    Ok(report)
}

/// Every file of `source` through an analyser in this process, one per file: each file's
/// truth and swings, unscored.
pub fn source_outcomes(
    source: &sources::Source,
    settings: &AnalysisSettings,
) -> Result<Vec<score::FileOutcome>, RecordingError> {
    let mut outcomes = Vec::new();
    // Diagnostics only: the swings (and, for the swing trace, the detector's burst log) are
    // kept whole when a trace is asked for.
    let swing_trace_on = std::env::var_os("SHUTTLEGATE_SWING_TRACE").is_some();
    let height_trace_on = std::env::var_os("SHUTTLEGATE_HEIGHT_TRACE").is_some();
    let trace = swing_trace_on || height_trace_on;
    for file in &source.files {
        let read = source.read(file)?;
        let profile = DeviceProfile {
            positions: vec![source.position],
            acc_full_scale_g: source.acc_full_scale_g,
            gyro_full_scale_dps: source.gyro_full_scale_dps,
            infer_axes: !source.axes_configured(),
            ..DeviceProfile::new("recording")
        };
        let mut analyser = DeviceAnalyser::new(profile.clone(), settings.clone(), "recording");
        if swing_trace_on {
            analyser.keep_burst_log();
        }
        let mut swings = Vec::new();
        let mut raw = Vec::new();
        let mut drain = |analyser: &mut DeviceAnalyser| {
            while let Some(AnalysisEvent::Swing(s)) = analyser.poll_event() {
                if trace {
                    raw.push(s.clone());
                }
                // A chain-only swing (no side or height: the racket rule did not fire) is
                // not a racket detection; the daemon path drops it the same way. These
                // one-node recordings cannot produce one.
                let (Some(side), Some(height)) = (s.side, s.height) else {
                    continue;
                };
                swings.push(score::Detected {
                    t_impact: s.t_impact,
                    side,
                    height,
                    racket_speed_kmh: s.racket_speed_kmh,
                    side_confidence: s.confidences.map(|c| c.side),
                    height_confidence: s.confidences.map(|c| c.height),
                });
            }
        };
        let samples = daemon::as_the_wire_carries(&read.samples, source);
        for chunk in samples.chunks(daemon::BATCH_SAMPLES) {
            analyser.handle_samples(chunk);
            drain(&mut analyser);
        }
        analyser.finish();
        drain(&mut analyser);
        let name = file.path.display().to_string();
        // The traces count time from the file's first sample.
        let t0 = read
            .samples
            .iter()
            .map(|s| s.t_ms)
            .fold(f64::INFINITY, f64::min);
        if swing_trace_on {
            swing_trace(&profile, source.position, &read.samples, &name, &raw);
        }
        if height_trace_on {
            height_trace(t0, &name, &raw);
        }
        if std::env::var_os("SHUTTLEGATE_ARM_TRACE").is_some() {
            arm_trace(&profile, source.position, &read.samples, &name, &swings);
        }
        let file_outcomes = read.outcomes(&name, swings);
        if swing_trace_on {
            missed::print_missed(&name, t0, &samples, analyser.burst_log(), &file_outcomes);
        }
        outcomes.extend(file_outcomes);
    }
    Ok(outcomes)
}

/// Diagnostics (`SHUTTLEGATE_SWING_TRACE`): each racket detection of a file, its time from
/// the file's first sample and from the previous detection, and its burst's figures
/// (`biomech_eval::burst_shape`), to see what a false or doubled swing was.
fn swing_trace(
    profile: &DeviceProfile,
    position: BodyPosition,
    samples: &[NodeSample],
    file: &str,
    swings: &[shuttlegate_core::analysis::Swing],
) {
    let mut conditioner = shuttlegate_core::analysis::NodeConditioner::new(profile, position, true);
    let mut conditioned: Vec<NodeSample> = samples.to_vec();
    conditioned.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    for s in &mut conditioned {
        conditioner.condition(s);
    }
    let t0 = conditioned.first().map_or(0.0, |s| s.t_ms);
    let mut previous: Option<f64> = None;
    for s in swings.iter().filter(|s| s.side.is_some()) {
        let shape = crate::biomech_eval::burst_shape::describe(&conditioned, s).unwrap_or_default();
        println!(
            "swing {file} t {:.0} after {} width {:.0} {shape}",
            s.t_impact - t0,
            previous.map_or("-".into(), |p| format!("{:.0}", s.t_impact - p)),
            s.t_end - s.t_start,
        );
        previous = Some(s.t_impact);
    }
}

/// Diagnostics (`SHUTTLEGATE_HEIGHT_TRACE`): each racket detection's contact time from the
/// file's first sample (at `t0`) and the height figures it was read on (shaft elevation and head-path
/// pitch at contact), so a script can set them beside an attitude the sensor itself reports
/// (`scripts/bwt61_attitude.py`: the WitMotion BWT61's fused angles, which the analyser never
/// reads).
fn height_trace(t0: f64, file: &str, swings: &[shuttlegate_core::analysis::Swing]) {
    for s in swings.iter().filter(|s| s.side.is_some()) {
        let (elevation, pitch) = s
            .contact
            .0
            .map_or((f64::NAN, f64::NAN), |e| (e.elevation_deg, e.pitch_deg));
        println!(
            "height {file} t {:.1} elevation {elevation:.1} pitch {pitch:.1} height {} flags {}",
            s.t_impact - t0,
            s.height.map_or("-", |h| h.as_str()),
            serde_json::to_string(&s.flags).unwrap_or_default(),
        );
    }
}

/// Diagnostics (`SHUTTLEGATE_ARM_TRACE`): what a wrist node's forehand-turn inference
/// concluded over a file, with the file's sides.
fn arm_trace(
    profile: &DeviceProfile,
    position: BodyPosition,
    samples: &[NodeSample],
    file: &str,
    swings: &[score::Detected],
) {
    let mut conditioner = shuttlegate_core::analysis::NodeConditioner::new(profile, position, true);
    for s in samples {
        let mut s = *s;
        conditioner.condition(&mut s);
    }
    let forehands = swings.iter().filter(|s| s.side == Side::Forehand).count();
    let turn = conditioner.forehand_turn();
    eprintln!(
        "arm {file}: {} swings {forehands} forehand | {}",
        swings.len(),
        match turn {
            None => "no turn".to_owned(),
            Some(t) => format!(
                "{} axis ({:+.2},{:+.2},{:+.2}) forearm ({:+.2},{:+.2},{:+.2}) clear {:.2} drives {} votes {:+} sure {:.2} roll {:+} of {}",
                if t.as_made { "as made" } else { "inferred" },
                t.axis[0],
                t.axis[1],
                t.axis[2],
                t.forearm[0],
                t.forearm[1],
                t.forearm[2],
                t.clear,
                t.drives,
                t.votes,
                t.sure,
                t.roll_votes,
                t.roll_drives
            ),
        }
    );
}

fn drain_swings(analyser: &mut DeviceAnalyser, r: &mut RecordingResult, found: &mut Vec<Found>) {
    while let Some(event) = analyser.poll_event() {
        let AnalysisEvent::Swing(s) = event;
        // Chain-only swings are not racket detections (see `source_outcomes`).
        let (Some(side), Some(height)) = (s.side, s.height) else {
            continue;
        };
        found.push(Found {
            t_impact: s.t_impact,
            side,
            height,
        });
        r.swings += 1;
        r.impacts += usize::from(s.impact);
        r.forehand += usize::from(side == Side::Forehand);
        *r.strokes.entry(s.stroke).or_default() += 1;
        *r.heights.entry(height).or_default() += 1;
    }
}

/// A plain-text table of recording results.
pub fn render(results: &[RecordingResult]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<34}{:>16}{:>8}{:>9}{:>8}{:>8}{:>9}{:>9}{:>9}  strokes found; heights found",
        "file", "label", "rate Hz", "nominal", "swings", "impacts", "stroke=", "side=", "height="
    );
    for r in results {
        let name = std::path::Path::new(&r.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&r.path);
        let agree = r
            .agreeing()
            .map(|a| a.map_or("-".into(), |n| n.to_string()));
        let strokes: Vec<String> = r
            .strokes
            .iter()
            .map(|(s, n)| format!("{}:{n}", s.as_str()))
            .collect();
        let heights: Vec<String> = r
            .heights
            .iter()
            .map(|(h, n)| format!("{}:{n}", h.as_str()))
            .collect();
        let _ = writeln!(
            o,
            "{:<34}{:>16}{:>8.1}{:>9}{:>8}{:>8}{:>9}{:>9}{:>9}  {}; {} (forehand {})",
            name,
            r.label.render(),
            r.rate_hz,
            r.nominal.map_or("-".into(), |n| n.to_string()),
            r.swings,
            r.impacts,
            agree[0],
            agree[1],
            agree[2],
            strokes.join(" "),
            heights.join(" "),
            r.forehand
        );
        for score in &r.run_scores {
            let agree = |a: Option<usize>| a.map_or("-".into(), |n| n.to_string());
            let _ = writeln!(
                o,
                "    runs of {}={}: {} runs, {} with a swing, {} swings in them, side= {}, height= {}",
                score.value,
                score.label.render(),
                score.runs,
                score.detected,
                score.swings,
                agree(score.side_agree),
                agree(score.height_agree),
            );
        }
        if let Some(n) = r.swings_outside_runs {
            let _ = writeln!(o, "    swings in no labelled stroke run: {n}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_counts_come_from_the_file_name() {
        assert_eq!(nominal_count("/x/smash_x30.csv"), Some(30));
        assert_eq!(nominal_count("clear_10_kyle.csv"), Some(10));
        assert_eq!(nominal_count("lift.csv"), None);
    }

    #[test]
    fn a_witmotion_export_is_read_and_a_bad_line_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("smash_x1.csv");
        std::fs::write(
            &path,
            "Date,Time,Accel_X (g),Accel_Y (g),Accel_Z (g),Gyro_X,Gyro_Y,Gyro_Z\n\
             2025-10-20,13:12:44.825,0.27791,-0.73391,-0.66131,4.02429,-9.16846,-5.76977\n\
             2025-10-20,13:12:44.925,0.3,-0.7,-0.7,4.1,-1.4,-9.1\n",
        )
        .expect("write");
        let s = read_csv(path.to_str().expect("utf-8")).expect("reads");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].t_ms - s[0].t_ms, 100.0);
        std::fs::write(&path, "header\n2025-10-20,13:12:44.825,x,1,1,1,1,1\n").expect("write");
        let err = read_csv(path.to_str().expect("utf-8")).expect_err("bad number");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
