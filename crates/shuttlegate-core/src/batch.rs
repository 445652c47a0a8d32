//! A sensor batch as the gateway holds it, in either of its two wire forms.
//!
//! This is the one type every stage of the data path agrees on: `protocol` parses device
//! messages into it, `journal` stores it (compressed) and gives it back bit-exactly, and
//! `analysis` turns it into time-stamped samples per body position. It keeps exactly what the
//! device sent (to f32 precision) so that `journal export` can reproduce it; everything derived
//! (unix times of V3.3 time-of-day stamps, body positions) is computed from it, never stored in
//! its place.
//!
//! The two forms (SPEC §1.1):
//! - **compact**: one IMU node, `t0` (unix ms), `rate_hz`, rows of 6 or 9 channels
//!   (`ax ay az gx gy gz [roll pitch yaw]`), sample `i` at `t0 + i·1000/rate_hz`;
//! - **seed**: what the deployed V3.3 firmware sends, up to 30 frames mixing up to four nodes,
//!   each with its `sensor_id`, its own timestamp and `acc`/`gyro`/`angle` triples.

use serde::{Deserialize, Serialize};

/// Where a batch's `seq` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqSource {
    /// The device numbered the batch (compact form, or seed form from newer firmware):
    /// a resend with the same `(device, session, seq)` is a duplicate.
    Device,
    /// The device sent no `seq` (V3.3): the journal numbered it in arrival order.
    Gateway,
}

/// One batch of IMU samples from one device, as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorBatch {
    /// Device code, from the connection's URL (`/ws/esp32/{code}/`), not from the payload.
    pub device: String,
    /// Session the batch belongs to, as the device named it.
    pub session_id: String,
    /// Sequence number within `(device, session)`. `None` on the way in for a V3.3 batch;
    /// the journal assigns the next number in arrival order before the record is written.
    pub seq: Option<u64>,
    /// The samples, in the form they arrived in.
    pub form: BatchForm,
}

/// The two wire forms of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum BatchForm {
    Compact(CompactBatch),
    Seed(SeedBatch),
}

/// Compact form: one node, evenly spaced samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactBatch {
    /// The node's `sensor_id` (mapped to a body position by the device's config).
    pub sensor_id: u32,
    /// Unix time of the first sample, in ms.
    pub t0: i64,
    /// Sampling rate; sample `i` is at `t0 + i * 1000 / rate_hz` ms.
    pub rate_hz: f64,
    /// Channels per sample: 6 (`acc`, `gyro`) or 9 (plus `roll`, `pitch`, `yaw`).
    pub channels: u8,
    /// Samples, row-major: `samples[i * channels + c]`. Units: g, °/s, °.
    pub samples: Vec<f32>,
}

impl CompactBatch {
    /// Number of samples (rows).
    pub fn len(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// True when the batch carries no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Row `i` of the batch.
    pub fn row(&self, i: usize) -> &[f32] {
        let c = usize::from(self.channels);
        &self.samples[i * c..(i + 1) * c]
    }
}

/// Seed form, as the V3.3 firmware sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedBatch {
    /// `sensor_type` of the message (V3.3 copies it from frame 0), if sent.
    pub sensor_type: Option<String>,
    /// The message's own `timestamp` (V3.3: `millis()` since boot), if sent.
    pub timestamp: Option<i64>,
    /// The frames, in the order sent.
    pub frames: Vec<SeedFrame>,
}

/// One frame of a seed-form batch: one reading of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedFrame {
    /// The node that produced it (V3.3: 1 waist, 2 shoulder, 3 wrist, 4 racket), if sent.
    pub sensor_id: Option<u32>,
    /// The frame's timestamp as sent: unix ms, or V3.3's local time of day `HHMMSSmmm`
    /// (see [`crate::protocol::time`] for how the two are told apart and converted).
    pub timestamp: Option<i64>,
    /// Acceleration, g.
    pub acc: [f32; 3],
    /// Angular rate, °/s.
    pub gyro: [f32; 3],
    /// Fused attitude (roll, pitch, yaw), °, when the node sends it.
    pub angle: Option<[f32; 3]>,
}

impl SensorBatch {
    /// Number of samples (compact rows or seed frames) in the batch.
    pub fn sample_count(&self) -> usize {
        match &self.form {
            BatchForm::Compact(c) => c.len(),
            BatchForm::Seed(s) => s.frames.len(),
        }
    }
}

/// Where on the player an IMU node sits. A device's config maps its `sensor_id`s to these
/// (default, as V3.3 numbers them: 1 waist, 2 shoulder, 3 wrist, 4 racket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyPosition {
    Waist,
    Shoulder,
    Wrist,
    Racket,
}

impl BodyPosition {
    pub const ALL: [BodyPosition; 4] = [
        BodyPosition::Waist,
        BodyPosition::Shoulder,
        BodyPosition::Wrist,
        BodyPosition::Racket,
    ];

    /// The name used in config files and messages (`"waist"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            BodyPosition::Waist => "waist",
            BodyPosition::Shoulder => "shoulder",
            BodyPosition::Wrist => "wrist",
            BodyPosition::Racket => "racket",
        }
    }

    /// The V3.3 firmware's default numbering.
    pub fn default_for_sensor_id(sensor_id: u32) -> Option<BodyPosition> {
        match sensor_id {
            1 => Some(BodyPosition::Waist),
            2 => Some(BodyPosition::Shoulder),
            3 => Some(BodyPosition::Wrist),
            4 => Some(BodyPosition::Racket),
            _ => None,
        }
    }
}
