//! Stroke windows in one JSON document, the layout of PhusNguyen/Realtime-IMU-Badminton-Stroke-
//! Recognition's `dataset/badminton_stroke_dataset.json`: `{"samples": [{"stroke_type":
//! "Smash_real", "IMU_data_sequences": {"AccX": […], …, "GyZ": […]}}, …]}`, one stroke per
//! fixed-length window (accelerometer in m/s², gyroscope in °/s). Each window becomes a capture
//! timed from the rate, [`CAPTURE_GAP_MS`] after the previous one, as fixed-length trigger
//! captures are ([`super::table`]). Pure apart from reading the file.

use std::path::Path;

use serde::Deserialize;
use shuttlegate_core::analysis::NodeSample;
use shuttlegate_core::batch::BodyPosition;

use super::score::Span;
use super::table::CAPTURE_GAP_MS;

/// Largest document read: the published one is 402 MB (Git LFS).
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 30;

/// Standard gravity, m/s² per g.
const STANDARD_GRAVITY: f32 = 9.806_65;

#[derive(Deserialize)]
struct Document {
    samples: Vec<Window>,
}

#[derive(Deserialize)]
struct Window {
    stroke_type: String,
    #[serde(rename = "IMU_data_sequences")]
    imu: Sequences,
}

#[derive(Deserialize)]
struct Sequences {
    #[serde(rename = "AccX")]
    ax: Vec<f32>,
    #[serde(rename = "AccY")]
    ay: Vec<f32>,
    #[serde(rename = "AccZ")]
    az: Vec<f32>,
    #[serde(rename = "GyX")]
    gx: Vec<f32>,
    #[serde(rename = "GyY")]
    gy: Vec<f32>,
    #[serde(rename = "GyZ")]
    gz: Vec<f32>,
}

/// The windows' samples, and each window's stroke type with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    pub samples: Vec<NodeSample>,
    pub strokes: Vec<(String, Span)>,
}

/// Why a window document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WindowsError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a stroke-window document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("window {index} ({stroke}): its six sequences differ in length")]
    Ragged { index: usize, stroke: String },
}

/// Reads a window document from `path` (at most [`MAX_DOCUMENT_BYTES`]).
pub fn read(path: &Path, rate_hz: f64, position: BodyPosition) -> Result<Windows, WindowsError> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_DOCUMENT_BYTES {
        return Err(WindowsError::Io(std::io::Error::other(format!(
            "{len} bytes, more than the {MAX_DOCUMENT_BYTES} read at once"
        ))));
    }
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let document: Document = serde_json::from_reader(file)?;
    windows(document, rate_hz, position)
}

/// Parses a window document held in memory.
pub fn parse(text: &str, rate_hz: f64, position: BodyPosition) -> Result<Windows, WindowsError> {
    windows(serde_json::from_str(text)?, rate_hz, position)
}

fn windows(
    document: Document,
    rate_hz: f64,
    position: BodyPosition,
) -> Result<Windows, WindowsError> {
    let period = 1000.0 / rate_hz;
    let mut out = Windows {
        samples: Vec::new(),
        strokes: Vec::new(),
    };
    let mut t = 0.0;
    for (index, w) in document.samples.into_iter().enumerate() {
        let s = &w.imu;
        let n = s.ax.len();
        if [&s.ay, &s.az, &s.gx, &s.gy, &s.gz]
            .iter()
            .any(|v| v.len() != n)
        {
            return Err(WindowsError::Ragged {
                index,
                stroke: w.stroke_type,
            });
        }
        if n == 0 {
            continue;
        }
        let t_start = t;
        for i in 0..n {
            out.samples.push(NodeSample {
                position,
                t_ms: t,
                acc: [s.ax[i], s.ay[i], s.az[i]].map(|v| v / STANDARD_GRAVITY),
                gyro: [s.gx[i], s.gy[i], s.gz[i]],
                angle: None,
            });
            t += period;
        }
        out.strokes.push((
            w.stroke_type,
            Span {
                t_start,
                t_end: t - period,
            },
        ));
        t += CAPTURE_GAP_MS;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_become_captures_in_g_and_degrees_per_second() {
        let text = r#"{"dataset_info":{},"samples":[
            {"sample_id":0,"stroke_type":"Smash_real","label":7,"IMU_data_sequences":
              {"AccX":[9.80665,0],"AccY":[0,0],"AccZ":[0,19.6133],"GyX":[1,2],"GyY":[3,4],"GyZ":[5,6]},
             "extracted_features":{"max_Ax":0.0}},
            {"sample_id":1,"stroke_type":"Clear_fake","label":0,"IMU_data_sequences":
              {"AccX":[0],"AccY":[0],"AccZ":[0],"GyX":[0],"GyY":[0],"GyZ":[0]}}]}"#;
        let w = parse(text, 100.0, BodyPosition::Racket).expect("parses");
        assert_eq!(w.samples.len(), 3);
        assert_eq!(w.samples[0].acc, [1.0, 0.0, 0.0]);
        assert!((w.samples[1].acc[2] - 2.0).abs() < 1e-6);
        assert_eq!(w.samples[1].gyro, [2.0, 4.0, 6.0]);
        assert_eq!(w.samples[1].t_ms, 10.0);
        assert_eq!(w.samples[2].t_ms, 20.0 + CAPTURE_GAP_MS);
        assert_eq!(w.strokes[0].0, "Smash_real");
        assert_eq!(w.strokes[1].1.t_start, 20.0 + CAPTURE_GAP_MS);
    }

    #[test]
    fn a_ragged_window_is_named() {
        let text = r#"{"samples":[{"stroke_type":"Drive_real","IMU_data_sequences":
              {"AccX":[0,1],"AccY":[0],"AccZ":[0],"GyX":[0],"GyY":[0],"GyZ":[0]}}]}"#;
        let err = parse(text, 100.0, BodyPosition::Racket).expect_err("ragged");
        assert!(err.to_string().contains("Drive_real"), "{err}");
    }
}
