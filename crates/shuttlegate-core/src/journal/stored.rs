//! A record as read back from disk: its indexed fields decoded, its body still compressed.
//!
//! Readers (the uplink sinks, replay, the export tool) mostly filter on kind, device and
//! session and forward bytes; decoding the samples is done only when asked ([`StoredRecord::decode`]).

use super::codec::{self, CodecError};
use super::frame::{Frame, Parse, parse_frame};
use super::record::{Document, Record, RecordBody, RecordKind};
use crate::batch::SensorBatch;

/// One durable record, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub id: u64,
    pub ts_ms: i64,
    pub kind: RecordKind,
    pub device: Option<String>,
    pub session_id: Option<String>,
    pub seq: Option<u64>,
    /// Samples in a batch (compact rows or seed frames); 0 for other kinds.
    pub samples: u32,
    codec: u8,
    raw_len: u32,
    frame: Vec<u8>,
    body_at: usize,
}

impl StoredRecord {
    pub fn from_frame(f: &Frame) -> StoredRecord {
        StoredRecord {
            id: f.meta.id,
            ts_ms: f.meta.ts_ms,
            kind: f.meta.kind,
            device: f.meta.device.map(str::to_owned),
            session_id: f.meta.session_id.map(str::to_owned),
            seq: f.meta.seq,
            samples: f.meta.samples,
            codec: f.meta.codec,
            raw_len: f.meta.raw_len,
            frame: f.bytes.to_vec(),
            body_at: f.bytes.len() - f.body.len(),
        }
    }

    /// Parses a frame produced by [`StoredRecord::encoded`] (e.g. after it crossed a network).
    pub fn from_encoded(bytes: &[u8]) -> Option<StoredRecord> {
        match parse_frame(bytes) {
            Parse::Frame(f) if f.bytes.len() == bytes.len() => Some(StoredRecord::from_frame(&f)),
            _ => None,
        }
    }

    /// The whole record as stored on disk: frame prefix (length, CRC32C), indexed fields and the
    /// compressed body (format in the module doc). Self-checking; forward it as is.
    pub fn encoded(&self) -> &[u8] {
        &self.frame
    }

    /// Length of the body before zstd.
    pub fn raw_len(&self) -> u32 {
        self.raw_len
    }

    /// Only the body as stored (zstd-compressed transform for batches, see `codec`).
    pub fn body(&self) -> &[u8] {
        &self.frame[self.body_at..]
    }

    /// Decompresses and decodes the body into the record that was appended.
    pub fn decode(&self) -> Result<Record, CodecError> {
        let raw = codec::decompress(self.codec, self.body(), self.raw_len)?;
        let body = match self.kind {
            RecordKind::Batch => RecordBody::Batch(SensorBatch {
                device: self.device.clone().unwrap_or_default(),
                session_id: self.session_id.clone().unwrap_or_default(),
                seq: self.seq,
                form: codec::decode_batch_form(&raw)?,
            }),
            kind => {
                let doc = Document {
                    device: self.device.clone(),
                    session_id: self.session_id.clone(),
                    json: codec::decode_document(raw)?,
                };
                match kind {
                    RecordKind::Swing => RecordBody::Swing(doc),
                    RecordKind::Summary => RecordBody::Summary(doc),
                    _ => RecordBody::Event(doc),
                }
            }
        };
        Ok(Record {
            id: self.id,
            ts_ms: self.ts_ms,
            body,
        })
    }
}
