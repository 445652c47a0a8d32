//! Swing analysis: attitude, swing detection, stroke classification, speeds, kinetic chain,
//! rallies and session summaries. Pure: no IO, no tokio, no wall clock (time comes from samples).
//!
//! The pipeline (docs/analysis.md has the models and their limits):
//!
//! ```text
//! SensorBatch ──samples_of──> NodeSample* ──DeviceAnalyser::handle_samples
//!   per node: reorder buffer (bounded window) ─> contiguous frontier
//!   racket (or wrist) node: swing detector (|ω⊥| hysteresis) ─> pending swing
//!   once the chain nodes cover it: impact transient, desaturation, attitude from gravity +
//!   gyro integration, speed, stroke/side/height, kinetic chain ─> poll_event() -> Swing
//!   (a burst without a contact that did not drive the racket — measure/handling.rs — is
//!   dropped)
//! finish() ─> SessionSummary (the seeds' analysis_complete_notification)
//! RallyTracker (court level): impacts of all devices ─> rallies
//! CourtAnalysis (court.rs): each stored batch to its device's analyser for its session,
//!   the rackets' impacts to the RallyTracker, summaries when a session finishes
//! ```
//!
//! `seed_method` re-implements the seed backend's once-per-session analysis for comparison.

/// Standard gravity, m/s² per g (3rd CGPM, 1901): the accelerometers read in g.
pub(crate) const STANDARD_GRAVITY: f64 = 9.806_65;

mod body_burst;
mod chain;
mod condition;
mod confidence;
mod court;
mod device;
mod measure;
mod quality;
mod rally;
pub mod seed_method;
mod settings;
pub mod signal;
mod stream;
mod summary;
mod swing;
pub mod vecmath;

pub use condition::{AxisMap, ForehandTurn, InferenceReport, NodeConditioner, UnwrapSeen};
pub use confidence::Evidence;
pub use court::{AnalysisOutput, CourtAnalysis, CourtDevice, SESSIONS_PER_DEVICE};
pub use device::{AnalysisEvent, BurstDecision, BurstFate, DeviceAnalyser, DeviceStats};
pub use measure::{
    Contact, MAX_SWING_FWHM_MS, NoStroke, SpeedReference, WIDE_STROKE_MIN_DPS,
    centre_acceleration_rms_g, classify, opens_rally,
};
pub use quality::{ANALYSIS_VERSION, Flag, FlagCounts, Flags};
pub use rally::{Rally, RallyEvent, RallyStats, RallyTracker};
pub use settings::{AnalysisSettings, DeviceProfile, Overflow, RomIdeals};
pub use summary::{AnalysisResult, ChainScores, SessionSummary, SpeedStats};
pub use swing::{Chain, ContactReading, Delays, Height, Segments, Side, Stroke, Swing};

use crate::batch::{BatchForm, BodyPosition, SensorBatch};

/// One reading of one node, on the gateway's time line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeSample {
    pub position: BodyPosition,
    /// Unix ms.
    pub t_ms: f64,
    /// Acceleration (specific force), g.
    pub acc: [f32; 3],
    /// Angular rate, °/s.
    pub gyro: [f32; 3],
    /// Fused attitude (roll, pitch, yaw), °, when the node reports it.
    pub angle: Option<[f32; 3]>,
}

/// Samples of a batch on the unix-ms time line. `map` gives a `sensor_id`'s body position
/// (frames of unmapped nodes are skipped); `frame_time` converts a seed frame's timestamp as
/// sent (unix ms or V3.3 `HHMMSSmmm`) to unix ms (frames it rejects are skipped). Compact rows
/// are at `t0 + i·1000/rate_hz`; a compact batch with a non-positive or non-finite rate or an
/// unsupported channel count yields nothing.
pub fn samples_of(
    batch: &SensorBatch,
    map: impl Fn(u32) -> Option<BodyPosition>,
    mut frame_time: impl FnMut(i64) -> Option<f64>,
) -> Vec<NodeSample> {
    match &batch.form {
        BatchForm::Compact(c) => {
            let Some(position) = map(c.sensor_id) else {
                return Vec::new();
            };
            if !(c.rate_hz.is_finite() && c.rate_hz > 0.0 && matches!(c.channels, 6 | 9)) {
                return Vec::new();
            }
            let dt = 1000.0 / c.rate_hz;
            (0..c.len())
                .map(|i| {
                    let r = c.row(i);
                    NodeSample {
                        position,
                        t_ms: c.t0 as f64 + i as f64 * dt,
                        acc: [r[0], r[1], r[2]],
                        gyro: [r[3], r[4], r[5]],
                        angle: (c.channels == 9).then(|| [r[6], r[7], r[8]]),
                    }
                })
                .collect()
        }
        BatchForm::Seed(s) => s
            .frames
            .iter()
            .filter_map(|f| {
                let position = map(f.sensor_id?)?;
                let t_ms = frame_time(f.timestamp?)?;
                Some(NodeSample {
                    position,
                    t_ms,
                    acc: f.acc,
                    gyro: f.gyro,
                    angle: f.angle,
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{CompactBatch, SeedBatch, SeedFrame};

    #[test]
    fn compact_rows_are_spaced_by_the_rate() {
        let batch = SensorBatch {
            device: "d".into(),
            session_id: "s".into(),
            seq: Some(1),
            form: BatchForm::Compact(CompactBatch {
                sensor_id: 4,
                t0: 1000,
                rate_hz: 200.0,
                channels: 6,
                samples: (0..18).map(|i| i as f32).collect(),
            }),
        };
        let s = samples_of(&batch, BodyPosition::default_for_sensor_id, |_| None);
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].t_ms, 1010.0);
        assert_eq!(s[1].gyro, [9.0, 10.0, 11.0]);
        assert_eq!(s[0].position, BodyPosition::Racket);
        assert!(s[0].angle.is_none());
    }

    #[test]
    fn seed_frames_use_frame_time_and_skip_unmapped_nodes() {
        let frame = |id, ts| SeedFrame {
            sensor_id: Some(id),
            timestamp: Some(ts),
            acc: [0.0, 0.0, 1.0],
            gyro: [0.0; 3],
            angle: Some([1.0, 2.0, 3.0]),
        };
        let batch = SensorBatch {
            device: "d".into(),
            session_id: "s".into(),
            seq: None,
            form: BatchForm::Seed(SeedBatch {
                sensor_type: None,
                timestamp: None,
                frames: vec![frame(1, 93015123), frame(9, 93015124)],
            }),
        };
        let s = samples_of(&batch, BodyPosition::default_for_sensor_id, |ts| {
            Some(ts as f64 * 2.0)
        });
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].t_ms, 186030246.0);
        assert_eq!(s[0].position, BodyPosition::Waist);
    }
}
