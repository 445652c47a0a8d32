//! What goes on the wire for each journal record, and where: pure routing and encoding.
//!
//! Every payload carries the journal id, so a consumer drops duplicates (delivery is at least
//! once: a record whose acknowledgement was lost is sent again, with the same id).
//!
//! - **JSON envelope** (swings, summaries, events):
//!   `{"id":81234,"kind":"swing","ts_ms":…,"device":…,"session_id":…,"message":{…}}`, where
//!   `message` is the record's JSON message verbatim (SPEC §3–§5).
//! - **Binary envelope** (raw batches, topic `raw/{device}`): `b"SGB1"`, a u32 big-endian
//!   header length, a JSON header `{"id","kind":"batch","ts_ms","device","session_id","seq",
//!   "body"}`, then the body. `body` names the body's format: `"journal-batch-v1"` is the
//!   record body exactly as the journal stores it (delta-coded, zstd; see the journal docs), `"json"`
//!   a JSON batch. Shipping the stored bytes means no recompression on the gateway.
//! - **Hub messages**: `{"type":…, "data": <JSON envelope>}` with the seed hub's names.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::outbox::OutboxRecord;
use super::topics::{TopicError, Topics};
use crate::journal::RecordKind;

/// Magic of the binary envelope, version 1.
pub const RAW_MAGIC: &[u8; 4] = b"SGB1";
/// Upper bound on a binary envelope's header (a header is ~200 bytes).
const MAX_RAW_HEADER: usize = 64 * 1024;

/// A record that cannot be put on the wire; the sink logs it, counts it and skips it (a
/// malformed record must never block the records behind it).
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("record {id}: {what}")]
    Malformed { id: u64, what: String },
    #[error("record {id}: {source}")]
    Topic { id: u64, source: TopicError },
    #[error(
        "record {id}: its MQTT packet of {bytes} bytes exceeds max_packet_bytes ({limit}); \
         raise uplink.mqtt.max_packet_bytes (and the broker's limit)"
    )]
    TooLarge { id: u64, bytes: usize, limit: usize },
}

/// Size of an MQTT 3.1.1 QoS 1 PUBLISH packet: fixed header (1 byte + up to 4 of remaining
/// length), topic (2 + len), packet id (2), payload.
pub fn publish_packet_len(topic: &str, payload_len: usize) -> usize {
    let remaining = 2 + topic.len() + 2 + payload_len;
    let length_bytes = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + length_bytes + remaining
}

/// Refuses a payload rumqttc would refuse at write time: that error would drop the connection
/// and the record would be re-sent forever, blocking everything behind it.
pub fn check_packet_size(
    id: u64,
    topic: &str,
    payload_len: usize,
    limit: usize,
) -> Result<(), EnvelopeError> {
    let bytes = publish_packet_len(topic, payload_len);
    if bytes > limit {
        return Err(EnvelopeError::TooLarge { id, bytes, limit });
    }
    Ok(())
}

/// Where a record goes on MQTT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub topic: String,
    pub retain: bool,
}

/// The `type` of a record's JSON message, if it has one.
fn message_type(record: &OutboxRecord) -> Option<String> {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let json = record.json.as_deref()?;
    serde_json::from_str::<Typed>(json).ok()?.kind
}

/// Event types that describe a device's state and go to its retained status topic.
fn is_device_status(kind: &str) -> bool {
    matches!(kind, "device_status" | "device_online" | "device_offline")
}

/// The MQTT topic and retain flag of a record.
pub fn mqtt_route(topics: &Topics, record: &OutboxRecord) -> Result<Route, EnvelopeError> {
    let plain = |topic| Route {
        topic,
        retain: false,
    };
    let device = || {
        record.device.as_deref().ok_or(EnvelopeError::Malformed {
            id: record.id,
            what: "has no device".into(),
        })
    };
    let topic_err = |source| EnvelopeError::Topic {
        id: record.id,
        source,
    };
    Ok(match record.kind {
        RecordKind::Swing => plain(topics.swings()),
        RecordKind::Summary => plain(topics.sessions()),
        RecordKind::Batch => plain(topics.raw(device()?).map_err(topic_err)?),
        RecordKind::Event => match message_type(record) {
            Some(t) if is_device_status(&t) && record.device.is_some() => Route {
                topic: topics.device_status(device()?).map_err(topic_err)?,
                retain: true,
            },
            Some(t) if t.starts_with("session") => plain(topics.sessions()),
            _ => plain(topics.events()),
        },
    })
}

/// The hub message type of a record, or `None` when the hub does not carry it.
pub fn hub_type(record: &OutboxRecord) -> Option<&'static str> {
    match record.kind {
        RecordKind::Swing => Some("swing"),
        RecordKind::Summary => Some("analysis_complete_notification"),
        RecordKind::Event => message_type(record)
            .filter(|t| is_device_status(t))
            .map(|_| "device_status"),
        RecordKind::Batch => None,
    }
}

/// Lower-case name of a kind, as it appears in envelopes.
pub fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Batch => "batch",
        RecordKind::Swing => "swing",
        RecordKind::Summary => "summary",
        RecordKind::Event => "event",
    }
}

#[derive(Serialize)]
struct JsonEnvelope<'a> {
    id: u64,
    kind: &'static str,
    ts_ms: i64,
    device: Option<&'a str>,
    session_id: Option<&'a str>,
    message: &'a RawValue,
}

/// The header of a binary envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawHeader {
    pub id: u64,
    pub kind: String,
    pub ts_ms: i64,
    pub device: Option<String>,
    pub session_id: Option<String>,
    pub seq: Option<u64>,
    /// Format of the body: `journal-batch-v1` or `json`.
    pub body: String,
}

fn verbatim(record: &OutboxRecord) -> Result<Box<RawValue>, EnvelopeError> {
    let json = record.json.clone().ok_or(EnvelopeError::Malformed {
        id: record.id,
        what: "has no JSON message".into(),
    })?;
    RawValue::from_string(json).map_err(|e| EnvelopeError::Malformed {
        id: record.id,
        what: format!("its message is not JSON ({e})"),
    })
}

/// The JSON envelope of a swing, summary or event.
pub fn json_envelope(record: &OutboxRecord) -> Result<String, EnvelopeError> {
    let message = verbatim(record)?;
    let envelope = JsonEnvelope {
        id: record.id,
        kind: kind_name(record.kind),
        ts_ms: record.ts_ms,
        device: record.device.as_deref(),
        session_id: record.session_id.as_deref(),
        message: &message,
    };
    // Serialising borrowed strings and a validated RawValue cannot fail.
    Ok(serde_json::to_string(&envelope).expect("envelope serialises"))
}

/// The binary envelope of a raw batch.
pub fn raw_envelope(record: &OutboxRecord) -> Result<Vec<u8>, EnvelopeError> {
    let (body_format, body) = match (&record.raw, &record.json) {
        (Some(raw), _) => ("journal-batch-v1", raw.as_slice()),
        (None, Some(json)) => ("json", json.as_bytes()),
        (None, None) => {
            return Err(EnvelopeError::Malformed {
                id: record.id,
                what: "batch has neither a stored body nor JSON".into(),
            });
        }
    };
    let header = RawHeader {
        id: record.id,
        kind: kind_name(record.kind).into(),
        ts_ms: record.ts_ms,
        device: record.device.clone(),
        session_id: record.session_id.clone(),
        seq: record.seq,
        body: body_format.into(),
    };
    // A struct of strings and integers always serialises.
    let header = serde_json::to_vec(&header).expect("header serialises");
    let mut out = Vec::with_capacity(8 + header.len() + body.len());
    out.extend_from_slice(RAW_MAGIC);
    // The header is a few hundred bytes: the cast cannot truncate.
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    Ok(out)
}

/// Why a binary envelope could not be read (consumers and tests use the decoder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawDecodeError {
    #[error("binary envelope shorter than its {0}")]
    Truncated(&'static str),
    #[error("binary envelope does not start with SGB1")]
    BadMagic,
    #[error("binary envelope header of {0} bytes exceeds 64 KiB")]
    HeaderTooLarge(usize),
    #[error("binary envelope header is not valid JSON: {0}")]
    Header(String),
}

/// Splits a binary envelope into its header and body.
pub fn decode_raw(bytes: &[u8]) -> Result<(RawHeader, &[u8]), RawDecodeError> {
    let magic = bytes.get(..4).ok_or(RawDecodeError::Truncated("magic"))?;
    if magic != RAW_MAGIC {
        return Err(RawDecodeError::BadMagic);
    }
    let len = bytes
        .get(4..8)
        .ok_or(RawDecodeError::Truncated("header length"))?;
    // `get(4..8)` returned exactly four bytes.
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    if len > MAX_RAW_HEADER {
        return Err(RawDecodeError::HeaderTooLarge(len));
    }
    let header = bytes
        .get(8..8 + len)
        .ok_or(RawDecodeError::Truncated("header"))?;
    let header =
        serde_json::from_slice(header).map_err(|e| RawDecodeError::Header(e.to_string()))?;
    Ok((header, &bytes[8 + len..]))
}

/// A hub message `{"type": …, "data": <JSON envelope>}`, or `None` if the hub does not carry
/// this record.
pub fn hub_message(record: &OutboxRecord) -> Result<Option<String>, EnvelopeError> {
    let Some(kind) = hub_type(record) else {
        return Ok(None);
    };
    let data = json_envelope(record)?;
    Ok(Some(format!(r#"{{"type":"{kind}","data":{data}}}"#)))
}

/// The gateway's own status, retained on `status` and sent to the hub as `gateway_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayStatus {
    /// `online` or `offline` (the last will).
    pub state: String,
    pub venue: String,
    pub court: String,
    /// Records not yet acknowledged by this sink (journal ids between its cursor and the
    /// newest durable id).
    pub backlog_records: u64,
    /// Every id up to this one is delivered.
    pub cursor: u64,
    pub durable_id: u64,
    pub ts_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(kind: RecordKind, json: Option<&str>, raw: Option<Vec<u8>>) -> OutboxRecord {
        OutboxRecord {
            id: 42,
            ts_ms: 1_732_400_000_000,
            kind,
            device: Some("racket-01".into()),
            session_id: Some("s-1".into()),
            seq: Some(7),
            json: json.map(str::to_owned),
            raw,
        }
    }

    #[test]
    fn each_kind_is_routed_to_its_topic_with_its_retain_flag() {
        let t = Topics::new("sg", "v", "c").unwrap();
        let route = |r| mqtt_route(&t, &r).unwrap();
        let swing = record(RecordKind::Swing, Some(r#"{"type":"swing"}"#), None);
        assert_eq!(route(swing).topic, "sg/v/c/swings");
        let batch = record(RecordKind::Batch, None, Some(vec![1]));
        assert_eq!(route(batch).topic, "sg/v/c/raw/racket-01");
        let status = record(RecordKind::Event, Some(r#"{"type":"device_status"}"#), None);
        assert_eq!(
            route(status),
            Route {
                topic: "sg/v/c/devices/racket-01/status".into(),
                retain: true
            }
        );
        let other = record(RecordKind::Event, Some(r#"{"type":"command"}"#), None);
        assert_eq!(route(other).topic, "sg/v/c/events");
    }

    #[test]
    fn json_envelope_carries_the_id_and_the_message_verbatim() {
        let r = record(
            RecordKind::Swing,
            Some(r#"{"type":"swing","x":1.50}"#),
            None,
        );
        let env = json_envelope(&r).unwrap();
        assert!(
            env.contains(r#""message":{"type":"swing","x":1.50}"#),
            "{env}"
        );
        let v: serde_json::Value = serde_json::from_str(&env).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["kind"], "swing");
    }

    #[test]
    fn a_record_with_invalid_json_is_an_error_not_a_panic() {
        let r = record(RecordKind::Swing, Some("{not json"), None);
        assert!(json_envelope(&r).is_err());
    }

    #[test]
    fn hub_messages_use_the_seed_hub_names() {
        let s = record(RecordKind::Summary, Some(r#"{"type":"x"}"#), None);
        let msg = hub_message(&s).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
        assert_eq!(v["type"], "analysis_complete_notification");
        assert_eq!(v["data"]["id"], 42);
        let b = record(RecordKind::Batch, None, Some(vec![]));
        assert!(hub_message(&b).unwrap().is_none());
    }

    #[test]
    fn packet_size_counts_headers_and_refuses_what_rumqttc_would() {
        assert_eq!(publish_packet_len("a/b", 10), 1 + 1 + 2 + 3 + 2 + 10);
        assert_eq!(publish_packet_len("t", 200), 1 + 2 + 2 + 1 + 2 + 200);
        assert!(check_packet_size(1, "t", 100, 1000).is_ok());
        let err = check_packet_size(7, "t", 2000, 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("record 7") && err.contains("max_packet_bytes"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn raw_envelope_round_trips(body in proptest::collection::vec(any::<u8>(), 0..512),
                                    id in any::<u64>(), seq in proptest::option::of(any::<u64>())) {
            let mut r = record(RecordKind::Batch, None, Some(body.clone()));
            r.id = id;
            r.seq = seq;
            let bytes = raw_envelope(&r).unwrap();
            let (header, got) = decode_raw(&bytes).unwrap();
            prop_assert_eq!(header.id, id);
            prop_assert_eq!(header.seq, seq);
            prop_assert_eq!(header.body.as_str(), "journal-batch-v1");
            prop_assert_eq!(got, body.as_slice());
        }

        #[test]
        fn raw_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut with_magic = RAW_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode_raw(&bytes);
            let _ = decode_raw(&with_magic);
        }
    }
}
