//! Gateway → device messages: replies and pushes, with exactly the seed backend's `type` names
//! and fields, plus shuttlegate's additions (SPEC §1.1). Serde types, so rendering is
//! `serde_json` and a simulator can parse them back ([`parse_gateway_message`]).
//!
//! Field choices that old firmware depends on (see `docs/protocol.md`, V3.3 compatibility):
//! pushes carry `type` *and* `command` (V3.3 dispatches on `doc["type"] | doc["command"]`),
//! `command_id` is always a string (V3.3 reads it as one and sends no `ack` otherwise), and a
//! `start_collection` push names the device's own `device_code` (V3.3 overwrites its code with
//! the pushed one and sends no `upload_complete` when it is empty).

use serde::{Deserialize, Serialize};

use super::{ErrorCode, FrameClock, Ping, ProtocolError};
use crate::batch::SensorBatch;

/// A message from the gateway to a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GatewayMessage {
    /// First message on every accepted connection.
    ConnectionEstablished(ConnectionEstablished),
    /// Answer to `heartbeat`.
    HeartbeatResponse(HeartbeatResponse),
    /// Answer to `batch_sensor_data`, sent only once the batch is fsynced.
    BatchSensorDataResponse(BatchSensorDataResponse),
    /// Answer to `sensor_data`, sent only once the frame is fsynced.
    SensorDataResponse(SensorDataResponse),
    /// Answer to `status_update`.
    StatusUpdateResponse(StatusUpdateResponse),
    /// Answer to `upload_complete`.
    UploadCompleteResponse(UploadCompleteResponse),
    /// Answer to `poll_commands`.
    CommandResponse(CommandResponse),
    /// A message the gateway could not accept; the connection stays open.
    Error(ErrorMessage),
    /// Answer to `ping`.
    Pong(Pong),
    /// Push: start collecting for a session.
    StartCollection(CommandPush),
    /// Push: stop collecting, then send `upload_complete`.
    StopCollection(CommandPush),
    /// Push: run the hub's time sync with its nodes.
    Sync(CommandPush),
    /// Push: change the number of frames per batch.
    SetBatch(CommandPush),
    /// Push: answer with a `status_response`.
    GetStatus(CommandPush),
}

impl GatewayMessage {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Cannot fail: all keys are strings and the only floats are none.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The `error` message answering a [`ProtocolError`].
    pub fn error(device_code: &str, err: &ProtocolError) -> GatewayMessage {
        GatewayMessage::Error(ErrorMessage {
            device_code: device_code.to_owned(),
            error: err.message.clone(),
            code: err.code,
            field: err.field.clone(),
            seq: err.seq,
        })
    }

    /// `connection_established` at `now_ms` (unix ms).
    pub fn connection_established(device_code: &str, now_ms: i64) -> GatewayMessage {
        GatewayMessage::ConnectionEstablished(ConnectionEstablished {
            device_code: device_code.to_owned(),
            message: "connected".into(),
            server_time: now_ms,
        })
    }

    /// `heartbeat_response` at `now_ms`, its `timestamp` in the court's offset.
    pub fn heartbeat_response(
        device_code: &str,
        now_ms: i64,
        clock: &FrameClock,
    ) -> GatewayMessage {
        GatewayMessage::HeartbeatResponse(HeartbeatResponse {
            device_code: device_code.to_owned(),
            status: "ok".into(),
            timestamp: clock.iso(now_ms),
            server_time: now_ms,
        })
    }

    /// `batch_sensor_data_response` for a batch stored durably as `seq`.
    pub fn batch_stored(batch: &SensorBatch, seq: u64) -> GatewayMessage {
        let rows = batch.sample_count() as u64;
        GatewayMessage::BatchSensorDataResponse(BatchSensorDataResponse {
            success: true,
            total_items: rows,
            successful_items: rows,
            failed_items: 0,
            session_id: batch.session_id.clone(),
            seq: Some(seq),
            durable: true,
            message: None,
        })
    }

    /// `batch_sensor_data_response` for a batch not stored (journal full with policy `refuse`):
    /// the device keeps its copy.
    pub fn batch_refused(batch: &SensorBatch, why: &str) -> GatewayMessage {
        let rows = batch.sample_count() as u64;
        GatewayMessage::BatchSensorDataResponse(BatchSensorDataResponse {
            success: false,
            total_items: rows,
            successful_items: 0,
            failed_items: rows,
            session_id: batch.session_id.clone(),
            seq: batch.seq,
            durable: false,
            message: Some(why.to_owned()),
        })
    }

    /// `upload_complete_response`: complete when `missing_seqs` is empty, otherwise a request to
    /// resend them.
    pub fn upload_complete_response(
        session_id: &str,
        missing_seqs: Vec<u64>,
        now_ms: i64,
        clock: &FrameClock,
    ) -> GatewayMessage {
        GatewayMessage::UploadCompleteResponse(UploadCompleteResponse {
            session_id: session_id.to_owned(),
            message: if missing_seqs.is_empty() {
                "upload complete".into()
            } else {
                "resend missing batches".into()
            },
            timestamp: Some(clock.iso(now_ms)),
            missing_seqs,
        })
    }

    /// `pong` at `now_ms`, echoing the ping's timestamp.
    pub fn pong(ping: &Ping, now_ms: i64) -> GatewayMessage {
        GatewayMessage::Pong(Pong {
            server_time: now_ms,
            timestamp: ping.timestamp,
        })
    }

    /// True for the five command pushes.
    pub fn is_push(&self) -> bool {
        matches!(
            self,
            GatewayMessage::StartCollection(_)
                | GatewayMessage::StopCollection(_)
                | GatewayMessage::Sync(_)
                | GatewayMessage::SetBatch(_)
                | GatewayMessage::GetStatus(_)
        )
    }
}

/// Parse a gateway message (for simulators and tests).
pub fn parse_gateway_message(text: &str) -> Result<GatewayMessage, serde_json::Error> {
    serde_json::from_str(text)
}

/// `connection_established`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionEstablished {
    pub device_code: String,
    pub message: String,
    /// Gateway clock, unix ms.
    pub server_time: i64,
}

/// `heartbeat_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub device_code: String,
    /// Always `"ok"` (the seed backend's value).
    pub status: String,
    /// Gateway clock, ISO-8601 with the court's offset.
    pub timestamp: String,
    /// Gateway clock, unix ms: lets firmware sync.
    pub server_time: i64,
}

/// `batch_sensor_data_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSensorDataResponse {
    /// True when the batch is stored (durably, see `durable`).
    pub success: bool,
    /// Rows (compact samples or seed frames) in the batch.
    pub total_items: u64,
    pub successful_items: u64,
    pub failed_items: u64,
    pub session_id: String,
    /// The batch's seq: the device's own, or the one the gateway gave a V3.3 batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// True once the batch is fsynced in the journal: the device may drop its copy.
    pub durable: bool,
    /// Why `success` is false (journal full with policy `refuse`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `sensor_data_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorDataResponse {
    pub success: bool,
    /// The journal record id of the stored frame.
    pub data_id: u64,
    /// The frame's time, ISO-8601 with the court's offset.
    pub timestamp: String,
}

/// `status_update_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdateResponse {
    pub device_code: String,
    /// The status the device reported, echoed.
    pub status: String,
    pub session_id: Option<String>,
    pub message: String,
    pub timestamp: String,
}

/// `upload_complete_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadCompleteResponse {
    pub session_id: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Seqs of the session the gateway has not stored; empty when the session is complete.
    pub missing_seqs: Vec<u64>,
}

/// The seed backend's command words, as `command` in pushes and `command_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandName {
    StartCollection,
    StopCollection,
    Sync,
    SetBatch,
    GetStatus,
}

/// `command_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResponse {
    pub device_code: String,
    /// The seed backend's single command: START_COLLECTION, STOP_COLLECTION or `null` (the
    /// first pending start or stop).
    pub command: Option<CommandName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub message: String,
    /// Every pending command, each exactly as it would have been pushed.
    #[serde(default)]
    pub commands: Vec<GatewayMessage>,
}

/// `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub device_code: String,
    /// Human text naming the message type and field.
    pub error: String,
    pub code: ErrorCode,
    pub field: Option<String>,
    /// The rejected batch's seq, when it was readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// `pong`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// Gateway clock, unix ms.
    pub server_time: i64,
    /// The ping's `timestamp`, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// A command push (`start_collection`, `stop_collection`, `sync`, `set_batch`, `get_status`);
/// `type` comes from the [`GatewayMessage`] variant. Built by
/// [`DeviceCommand::to_push`](super::DeviceCommand::to_push).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandPush {
    /// The same command in the seed backend's upper case, for firmware that reads `command`.
    pub command: CommandName,
    /// The device's own code (V3.3 adopts it).
    pub device_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Frames per batch, for `set_batch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Echoed in the device's `ack`; always a string.
    pub command_id: String,
    /// Gateway clock, ISO-8601 with the court's offset.
    pub timestamp: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_render_the_spec_wire_examples_field_for_field() {
        let established = GatewayMessage::ConnectionEstablished(ConnectionEstablished {
            device_code: "2025001".into(),
            message: "connected".into(),
            server_time: 1_732_400_000_001,
        });
        assert_eq!(
            established.to_json(),
            r#"{"type":"connection_established","device_code":"2025001","message":"connected","server_time":1732400000001}"#
        );
        let batch = GatewayMessage::BatchSensorDataResponse(BatchSensorDataResponse {
            success: true,
            total_items: 30,
            successful_items: 30,
            failed_items: 0,
            session_id: "123".into(),
            seq: Some(17),
            durable: true,
            message: None,
        });
        assert_eq!(
            batch.to_json(),
            r#"{"type":"batch_sensor_data_response","success":true,"total_items":30,"successful_items":30,"failed_items":0,"session_id":"123","seq":17,"durable":true}"#
        );
        let upload = GatewayMessage::UploadCompleteResponse(UploadCompleteResponse {
            session_id: "s-0017".into(),
            message: "resend missing batches".into(),
            timestamp: None,
            missing_seqs: vec![7, 8],
        });
        assert_eq!(
            upload.to_json(),
            r#"{"type":"upload_complete_response","session_id":"s-0017","message":"resend missing batches","missing_seqs":[7,8]}"#
        );
        let sensor = GatewayMessage::SensorDataResponse(SensorDataResponse {
            success: true,
            data_id: 81234,
            timestamp: "2026-11-24T09:30:15.123+08:00".into(),
        });
        assert_eq!(
            sensor.to_json(),
            r#"{"type":"sensor_data_response","success":true,"data_id":81234,"timestamp":"2026-11-24T09:30:15.123+08:00"}"#
        );
    }

    #[test]
    fn an_error_reply_carries_the_seed_fields_and_ours() {
        let err = ProtocolError {
            code: ErrorCode::InvalidField,
            field: Some("seq".into()),
            message: "batch_sensor_data: `seq` must be a non-negative integer".into(),
            seq: None,
        };
        assert_eq!(
            GatewayMessage::error("2025001", &err).to_json(),
            r#"{"type":"error","device_code":"2025001","error":"batch_sensor_data: `seq` must be a non-negative integer","code":"invalid_field","field":"seq"}"#
        );
    }

    #[test]
    fn the_constructors_fill_the_fields_from_their_inputs() {
        let clock = FrameClock::new(chrono_tz::Asia::Shanghai);
        let now = 1_795_483_815_456; // 2026-11-24T01:30:15.456Z
        assert_eq!(
            GatewayMessage::heartbeat_response("2025001", now, &clock).to_json(),
            r#"{"type":"heartbeat_response","device_code":"2025001","status":"ok","timestamp":"2026-11-24T09:30:15.456+08:00","server_time":1795483815456}"#
        );
        let batch = crate::protocol::parse_device_message(
            r#"{"type":"batch_sensor_data","session_id":"s-0017","seq":42,"sensor_id":4,"t0":1,"rate_hz":1000,"samples":[[0,0,0,0,0,0],[1,1,1,1,1,1]]}"#,
            "d",
        );
        let Ok(crate::protocol::DeviceMessage::Batch(batch)) = batch else {
            panic!("valid batch")
        };
        assert_eq!(
            GatewayMessage::batch_stored(&batch, 42).to_json(),
            r#"{"type":"batch_sensor_data_response","success":true,"total_items":2,"successful_items":2,"failed_items":0,"session_id":"s-0017","seq":42,"durable":true}"#
        );
        let GatewayMessage::BatchSensorDataResponse(refused) =
            GatewayMessage::batch_refused(&batch, "journal full")
        else {
            panic!("a batch response")
        };
        assert!(!refused.success && !refused.durable && refused.failed_items == 2);
        let GatewayMessage::UploadCompleteResponse(done) =
            GatewayMessage::upload_complete_response("s-0017", vec![], now, &clock)
        else {
            panic!("an upload response")
        };
        assert_eq!(done.message, "upload complete");
        assert_eq!(
            GatewayMessage::pong(&Ping { timestamp: Some(5) }, now).to_json(),
            r#"{"type":"pong","server_time":1795483815456,"timestamp":5}"#
        );
    }

    #[test]
    fn a_command_response_without_command_says_null() {
        let reply = GatewayMessage::CommandResponse(CommandResponse {
            device_code: "2025001".into(),
            command: None,
            session_id: None,
            message: "no command".into(),
            commands: vec![],
        });
        let text = reply.to_json();
        assert_eq!(
            text,
            r#"{"type":"command_response","device_code":"2025001","command":null,"message":"no command","commands":[]}"#
        );
        assert_eq!(
            parse_gateway_message(&text).expect("own rendering parses"),
            reply
        );
    }
}
