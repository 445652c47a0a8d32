//! Real recordings for `shuttlegate eval --recording STROKE=FILE`: CSV exports of a 9-axis
//! IMU (WitMotion-style columns `Date,Time,Accel_X (g),…,Gyro_Z (°/s),…`), one stroke type per
//! file, as published in deadpoolcnn/ml_badminton (MIT licence, `dataset/*_x30.csv`: 30
//! repetitions of one stroke per file, 10 Hz). The files are read from a local copy; nothing
//! is committed here.
//!
//! The labels are per file (the stroke, and a nominal repetition count in the file name), not
//! per swing, so what can be scored is the number of swings found against the nominal count,
//! and the share classified as the file's stroke.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDateTime;

use crate::analysis::{
    AnalysisEvent, AnalysisSettings, DeviceAnalyser, DeviceProfile, NodeSample, Stroke,
};
use crate::batch::BodyPosition;

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
}

/// Samples of one CSV export (header line first).
pub fn read_csv(path: &str) -> Result<Vec<NodeSample>, RecordingError> {
    let text = std::fs::read(path).map_err(|source| RecordingError::Io {
        path: path.into(),
        source,
    })?;
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

/// One file's result.
#[derive(Debug, Clone)]
pub struct RecordingResult {
    pub path: String,
    pub label: Stroke,
    pub nominal: Option<usize>,
    pub samples: usize,
    pub rate_hz: f64,
    pub swings: usize,
    pub impacts: usize,
    pub strokes: BTreeMap<Stroke, usize>,
    pub forehand: usize,
}

/// The repetition count in a file name such as `smash_x30.csv` or `clear_10_kyle.csv`.
fn nominal_count(path: &str) -> Option<usize> {
    let name = std::path::Path::new(path).file_stem()?.to_str()?;
    name.split('_')
        .map(|p| p.trim_start_matches('x'))
        .find_map(|p| p.parse().ok())
}

/// Runs the analyser over one labelled recording, as a racket-node device with the default
/// profile (the recording's mounting is not documented).
pub fn evaluate(
    path: &str,
    label: Stroke,
    settings: &AnalysisSettings,
) -> Result<RecordingResult, RecordingError> {
    let samples = read_csv(path)?;
    let profile = DeviceProfile {
        positions: vec![BodyPosition::Racket],
        ..DeviceProfile::new("recording")
    };
    let mut analyser = DeviceAnalyser::new(profile, settings.clone(), "recording");
    for chunk in samples.chunks(30) {
        analyser.handle_samples(chunk);
    }
    analyser.finish();
    let span = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) if samples.len() > 1 => (b.t_ms - a.t_ms) / (samples.len() - 1) as f64,
        _ => 0.0,
    };
    let mut r = RecordingResult {
        path: path.into(),
        label,
        nominal: nominal_count(path),
        samples: samples.len(),
        rate_hz: if span > 0.0 { 1000.0 / span } else { 0.0 },
        swings: 0,
        impacts: 0,
        strokes: BTreeMap::new(),
        forehand: 0,
    };
    while let Some(AnalysisEvent::Swing(s)) = analyser.poll_event() {
        r.swings += 1;
        r.impacts += usize::from(s.impact);
        r.forehand += usize::from(s.side == crate::analysis::Side::Forehand);
        *r.strokes.entry(s.stroke).or_default() += 1;
    }
    Ok(r)
}

/// A plain-text table of recording results.
pub fn render(results: &[RecordingResult]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<28}{:>7}{:>8}{:>9}{:>8}{:>8}{:>10}  strokes found",
        "file", "label", "rate Hz", "nominal", "swings", "impacts", "as label"
    );
    for r in results {
        let name = std::path::Path::new(&r.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&r.path);
        let as_label = r.strokes.get(&r.label).copied().unwrap_or(0);
        let strokes: Vec<String> = r
            .strokes
            .iter()
            .map(|(s, n)| format!("{}:{n}", s.as_str()))
            .collect();
        let _ = writeln!(
            o,
            "{:<28}{:>7}{:>8.1}{:>9}{:>8}{:>8}{:>10}  {}",
            name,
            r.label.as_str(),
            r.rate_hz,
            r.nominal.map_or("-".into(), |n| n.to_string()),
            r.swings,
            r.impacts,
            as_label,
            strokes.join(" ")
        );
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
