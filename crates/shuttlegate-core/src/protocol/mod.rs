//! Device protocol: the seed system's WebSocket messages as types, parsed and rendered by pure
//! codecs (no IO). `transport` feeds it text frames; `court` consumes the typed messages and
//! answers with [`GatewayMessage`]s rendered here.
//!
//! - [`inbound`]: device → gateway (`heartbeat`, both `batch_sensor_data` forms, `sensor_data`,
//!   `status_update`, `upload_complete`, `poll_commands`, `ack`, `status_response`, `ping`),
//!   parsed from JSON text with a [`ProtocolError`] naming the message type and field when
//!   something is wrong; also rendered back, for simulators and tests.
//! - [`outbound`]: gateway → device replies and pushes, with exactly the seed backend's names
//!   and fields plus shuttlegate's additions (SPEC §1.1).
//! - [`command`]: the commands a device obeys (`start_collection`, …), parsed from a name and
//!   parameters (admin console, cloud) and rendered as the push V3.3 dispatches on.
//! - [`admin`]: the admin console's requests (`/ws/admin/`), parsed with the field named.
//! - [`phone`]: what a player's phone may ask (`/ws/miniprogram/`), parsed and validated.
//! - [`time`]: frame timestamps (unix ms or V3.3's local `HHMMSSmmm`) to unix ms.
//! - [`untrusted`]: client-chosen text clipped and escaped for errors and logs.
//! - [`validate`]: the one input validator every source uses (ids, `seq`, `rate_hz`, numbers).
//!
//! `docs/protocol.md` is the wire-level description of all of this.

pub mod admin;
pub mod command;
pub mod inbound;
pub mod outbound;
pub mod phone;
pub mod time;
pub mod untrusted;
pub mod validate;

use serde::{Deserialize, Serialize};

pub use command::{CommandError, CommandRequest, DeviceCommand};
pub use inbound::{
    CommandAck, DeviceMessage, Heartbeat, Ping, PollCommands, StatusReport, StatusUpdate,
    UploadComplete, parse_device_message, render_device_message,
};
pub use outbound::{
    BatchSensorDataResponse, CommandName, CommandPush, CommandResponse, ConnectionEstablished,
    ErrorMessage, GatewayMessage, HeartbeatResponse, Pong, SensorDataResponse,
    StatusUpdateResponse, UploadCompleteResponse, parse_gateway_message,
};
pub use time::{FrameClock, FrameTime};

/// WebSocket close codes the gateway uses on device connections (`docs/protocol.md`, "Closing").
pub mod close {
    /// The gateway is shutting down (RFC 6455).
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame that is not valid UTF-8 (RFC 6455 "invalid frame payload data").
    pub const INVALID_UTF8: u16 = 1007;
    /// A tokenless code was taken from another address between the handshake and the upgrade
    /// (RFC 6455 "policy violation"; the handshake itself answers such a client 401).
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A message larger than `[limits] max_message_bytes` (RFC 6455 "message too big").
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// A newer connection of the same device took over.
    pub const REPLACED: u16 = 4001;
    /// The device did not read its replies fast enough: its outbound queue overflowed.
    pub const TOO_SLOW: u16 = 4002;
    /// No traffic for `[limits] idle_timeout`.
    pub const IDLE: u16 = 4003;
    /// Over `[limits] messages_per_second` for `rate_limit_strikes` seconds in a row.
    pub const RATE_LIMITED: u16 = 4008;
}

/// Machine-readable class of a protocol error, sent as `code` in the `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The text is not JSON, or not a JSON object.
    InvalidJson,
    /// A required field is absent (or `null`).
    MissingField,
    /// A field is present with the wrong type or an out-of-range value.
    InvalidField,
    /// `type` names no message this gateway knows.
    UnknownType,
    /// The device sends faster than `[limits] messages_per_second` (transport's verdict).
    RateLimited,
    /// A binary WebSocket frame arrived; binary frames come with the UDP frame format.
    BinaryUnsupported,
    /// The journal is full and its policy is `refuse`: the device keeps its copy.
    JournalFull,
    /// The gateway failed on its side; the device should resend later.
    Internal,
}

impl ErrorCode {
    /// Every code, for tables indexed by code (the gateway's reject counters).
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::InvalidJson,
        ErrorCode::MissingField,
        ErrorCode::InvalidField,
        ErrorCode::UnknownType,
        ErrorCode::RateLimited,
        ErrorCode::BinaryUnsupported,
        ErrorCode::JournalFull,
        ErrorCode::Internal,
    ];

    /// The wire name (`"invalid_field"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BinaryUnsupported => "binary_unsupported",
            ErrorCode::JournalFull => "journal_full",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A device message the gateway cannot accept. The caller answers it with an `error` message
/// ([`GatewayMessage::error`]) and keeps the connection open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    /// What kind of problem it is.
    pub code: ErrorCode,
    /// The offending field, as a path (`seq`, `data[3].acc`), when one field is to blame.
    pub field: Option<String>,
    /// Human text naming the message type and the field, e.g.
    /// "batch_sensor_data: `seq` must be a non-negative integer".
    pub message: String,
    /// The batch's `seq`, when it was readable, so a durable device knows which batch failed.
    pub seq: Option<u64>,
}

impl ProtocolError {
    /// An error not tied to one field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            code,
            field: None,
            message: message.into(),
            seq: None,
        }
    }
}
