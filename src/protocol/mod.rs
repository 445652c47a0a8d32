//! Device protocol: the seed system's WebSocket messages as types, parsed and rendered by pure
//! codecs (no IO). `transport` feeds it text frames; `court` consumes the typed messages.

// Placeholder until the protocol codec lands: the court's view of a device command.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum DeviceCommand {
    StartCollection { session_id: String },
    StopCollection { session_id: String },
    Sync,
    SetBatch { batch_size: u32 },
    GetStatus,
}
