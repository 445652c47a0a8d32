//! A typed fast path for the hottest message, the compact `batch_sensor_data`: deserialized
//! straight into a flat `Vec<f32>` instead of through a `serde_json::Value` tree (one allocation
//! per row and 32 bytes per number). It only ever says "valid, here it is" or "not for me":
//! anything it does not accept in full — an error of any kind, a duplicate key, a value out of
//! range — falls back to the general parser, which alone words the errors. So the two cannot
//! disagree on what is valid; a property test checks that where the fast path answers, the
//! general parser gives the same batch.

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};

use super::{MAX_ROWS, MAX_SENSOR_ID};
use crate::batch::{BatchForm, CompactBatch, SensorBatch};
use crate::protocol::validate::{self, IdKind};

/// The compact batch in `text`, when `text` is one and entirely valid; `None` otherwise (the
/// caller then runs the general parser).
pub(super) fn parse_compact_batch(text: &str, device_code: &str) -> Option<SensorBatch> {
    let wire: CompactWire = serde_json::from_str(text).ok()?;
    // The same validator as the general parser's, so the two agree on what is valid.
    let valid = wire.kind == "batch_sensor_data"
        && validate::id(IdKind::SessionId, "session_id", &wire.session_id.0).is_ok()
        && wire.seq.is_none_or(|s| validate::seq("seq", s).is_ok())
        && wire.sensor_id <= MAX_SENSOR_ID
        && wire.t0 >= 0
        && validate::rate_hz("rate_hz", wire.rate_hz).is_ok();
    valid.then(|| SensorBatch {
        device: device_code.to_owned(),
        session_id: wire.session_id.0,
        seq: wire.seq,
        form: BatchForm::Compact(CompactBatch {
            // Bounded by MAX_SENSOR_ID above.
            sensor_id: wire.sensor_id as u32,
            t0: wire.t0,
            rate_hz: wire.rate_hz,
            channels: wire.samples.channels,
            samples: wire.samples.values,
        }),
    })
}

#[derive(Deserialize)]
struct CompactWire {
    #[serde(rename = "type")]
    kind: String,
    session_id: SessionId,
    #[serde(default)]
    seq: Option<u64>,
    sensor_id: u64,
    t0: i64,
    rate_hz: f64,
    samples: Samples,
}

/// A session id: a string, or a non-negative integer held as its decimal text.
struct SessionId(String);

impl std::ops::Deref for SessionId {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SessionVisitor;
        impl Visitor<'_> for SessionVisitor {
            type Value = SessionId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SessionId, E> {
                Ok(SessionId(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SessionId, E> {
                Ok(SessionId(v.to_string()))
            }
        }
        deserializer.deserialize_any(SessionVisitor)
    }
}

/// `samples`: 1..=MAX_ROWS rows, all of 6 or all of 9 finite f32 values, flattened.
struct Samples {
    channels: u8,
    values: Vec<f32>,
}

impl<'de> Deserialize<'de> for Samples {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(RowsVisitor)
    }
}

struct RowsVisitor;

impl<'de> Visitor<'de> for RowsVisitor {
    type Value = Samples;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rows of 6 or 9 numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut rows: A) -> Result<Samples, A::Error> {
        let mut values = Vec::with_capacity(rows.size_hint().unwrap_or(0).min(MAX_ROWS) * 6);
        let mut channels = 0usize;
        let mut count = 0usize;
        while let Some(len) = rows.next_element_seed(Row { out: &mut values })? {
            count += 1;
            if count > MAX_ROWS {
                return Err(serde::de::Error::custom("too many rows"));
            }
            if len != 6 && len != 9 {
                return Err(serde::de::Error::custom("a row of neither 6 nor 9"));
            }
            if channels == 0 {
                channels = len;
            }
            if len != channels {
                return Err(serde::de::Error::custom("uneven rows"));
            }
        }
        if count == 0 {
            return Err(serde::de::Error::custom("no rows"));
        }
        Ok(Samples {
            // 6 or 9 by the checks above.
            channels: channels as u8,
            values,
        })
    }
}

/// One row, appended to `out`; yields its length.
struct Row<'a> {
    out: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut row: A) -> Result<usize, A::Error> {
        let mut len = 0;
        // f64 first, then the same cast as the general parser, so both read every number alike.
        while let Some(x) = row.next_element::<f64>()? {
            let x = x as f32;
            if !x.is_finite() || len == 9 {
                return Err(serde::de::Error::custom("not a finite f32, or too long"));
            }
            self.out.push(x);
            len += 1;
        }
        Ok(len)
    }
}
