//! What the journal stores: records of four kinds, each with a gateway-wide id and a timestamp.
//!
//! These are the in-memory types; their byte layout on disk lives beside the segment code.

use crate::batch::SensorBatch;

/// The kind of a record; also its tag byte on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RecordKind {
    /// Raw IMU samples from a device ([`SensorBatch`]).
    Batch = 1,
    /// One analysed swing (the `swing` message of SPEC §3).
    Swing = 2,
    /// A session summary (`analysis_complete_notification`, SPEC §3).
    Summary = 3,
    /// A device or gateway event: session state changes, commands and their acks, device
    /// online/offline, journal full. Kept when raw data is dropped for space.
    Event = 4,
}

/// A record as appended and as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Gateway-wide, strictly increasing, never reused (also across restarts).
    pub id: u64,
    /// Gateway wall-clock time of the append, unix ms.
    pub ts_ms: i64,
    pub body: RecordBody,
}

/// The payload of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordBody {
    Batch(SensorBatch),
    Swing(Document),
    Summary(Document),
    Event(Document),
}

/// A JSON message kept verbatim (swings, summaries, events are the messages of SPEC §3–§5),
/// with the keys the journal indexes and filters on.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub device: Option<String>,
    pub session_id: Option<String>,
    /// The message, serialised JSON (an object with a `type`).
    pub json: String,
}

impl RecordBody {
    pub fn kind(&self) -> RecordKind {
        match self {
            RecordBody::Batch(_) => RecordKind::Batch,
            RecordBody::Swing(_) => RecordKind::Swing,
            RecordBody::Summary(_) => RecordKind::Summary,
            RecordBody::Event(_) => RecordKind::Event,
        }
    }

    /// Device the record is about, if any.
    pub fn device(&self) -> Option<&str> {
        match self {
            RecordBody::Batch(b) => Some(&b.device),
            RecordBody::Swing(d) | RecordBody::Summary(d) | RecordBody::Event(d) => {
                d.device.as_deref()
            }
        }
    }

    /// Session the record belongs to, if any.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            RecordBody::Batch(b) => Some(&b.session_id),
            RecordBody::Swing(d) | RecordBody::Summary(d) | RecordBody::Event(d) => {
                d.session_id.as_deref()
            }
        }
    }
}
