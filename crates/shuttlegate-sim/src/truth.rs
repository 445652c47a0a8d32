//! Ground truth the simulator records for every swing and rally, to score the analyser.

use serde::{Deserialize, Serialize};

use shuttlegate_core::analysis::{Height, Side, Stroke};

/// What really happened in one simulated swing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwingTruth {
    /// Index of the device (and player) in the court simulation.
    pub device_index: usize,
    pub device: String,
    /// Unix ms: forward swing start (racket pulse at 1 % of its peak), contact (or, for an air
    /// swing, where contact would be), end of the follow-through.
    pub t_start: f64,
    pub t_impact: f64,
    pub t_end: f64,
    pub impact: bool,
    pub stroke: Stroke,
    pub side: Side,
    pub height: Height,
    /// Racket-head speed at contact: angular rate × mount radius + hand speed, km/h.
    pub racket_speed_kmh: f64,
    /// Initial shuttle speed (impacts only), km/h.
    pub shuttle_speed_kmh: Option<f64>,
    /// Some gyro axis exceeded the node's full scale, or the contact transient the
    /// accelerometer's.
    pub saturated: bool,
    /// Peak ‖ω‖ of waist, shoulder, wrist, °/s.
    pub peak_dps: [f64; 3],
    /// Times of those peaks, unix ms.
    pub t_peak: [f64; 3],
    /// Waist→shoulder, shoulder→wrist, ms.
    pub delay_ms: [f64; 2],
    /// Forward rotation of waist (yaw), shoulder (pitch), wrist (roll), °.
    pub rom_deg: [f64; 3],
    /// True when the device carries the body nodes (so the chain is measurable).
    pub has_chain: bool,
}

/// One simulated rally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RallyTruth {
    pub t_start: f64,
    pub t_end: f64,
    /// Device indices in hitting order.
    pub hitters: Vec<usize>,
}
