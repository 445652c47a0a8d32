//! The commands a device obeys, as one type: parsed from a name and JSON parameters (what the
//! admin console, the cloud and the test tooling send) and rendered as the push V3.3 dispatches
//! on. The command queue (court) stores them as `name` + `params`, which round-trip.

use serde_json::{Map, Value};

use super::outbound::{CommandName, CommandPush, GatewayMessage};
use super::validate::{self, IdKind};

/// Largest `batch_size` a `set_batch` may ask for.
pub const MAX_BATCH_SIZE: u32 = 1000;

/// A command for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceCommand {
    /// Start collecting for `session_id`.
    StartCollection { session_id: String },
    /// Stop collecting for `session_id` (the device then sends `upload_complete`).
    StopCollection { session_id: String },
    /// Re-run the hub's time sync with its nodes.
    Sync,
    /// Send `batch_size` frames per batch.
    SetBatch { batch_size: u32 },
    /// Answer with a `status_response`.
    GetStatus,
}

/// A command that cannot be built from what was given; the caller reports it to whoever sent
/// the command (admin console, cloud) and queues nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "unknown command `{0}` (expected start_collection, stop_collection, sync, set_batch or get_status)"
    )]
    Unknown(String),
    #[error("{command}: `{param}` is required")]
    MissingParam {
        command: &'static str,
        param: &'static str,
    },
    #[error("{command}: `{param}` {reason}")]
    InvalidParam {
        command: &'static str,
        param: &'static str,
        reason: String,
    },
}

impl DeviceCommand {
    /// Build a command from its name (`start_collection`, or the seed backend's
    /// `START_COLLECTION`) and parameters (an object, or `null` when there are none).
    pub fn parse(name: &str, params: &Value) -> Result<DeviceCommand, CommandError> {
        let lowered = name.to_ascii_lowercase();
        match lowered.as_str() {
            "start_collection" => Ok(DeviceCommand::StartCollection {
                session_id: session_param("start_collection", params)?,
            }),
            "stop_collection" => Ok(DeviceCommand::StopCollection {
                session_id: session_param("stop_collection", params)?,
            }),
            "sync" => Ok(DeviceCommand::Sync),
            "set_batch" => Ok(DeviceCommand::SetBatch {
                batch_size: batch_size_param(params)?,
            }),
            "get_status" => Ok(DeviceCommand::GetStatus),
            _ => Err(CommandError::Unknown(name.chars().take(40).collect())),
        }
    }

    /// The command's name, as `type` in its push.
    pub fn name(&self) -> &'static str {
        match self {
            DeviceCommand::StartCollection { .. } => "start_collection",
            DeviceCommand::StopCollection { .. } => "stop_collection",
            DeviceCommand::Sync => "sync",
            DeviceCommand::SetBatch { .. } => "set_batch",
            DeviceCommand::GetStatus => "get_status",
        }
    }

    /// The seed backend's upper-case word for it.
    pub fn command_name(&self) -> CommandName {
        match self {
            DeviceCommand::StartCollection { .. } => CommandName::StartCollection,
            DeviceCommand::StopCollection { .. } => CommandName::StopCollection,
            DeviceCommand::Sync => CommandName::Sync,
            DeviceCommand::SetBatch { .. } => CommandName::SetBatch,
            DeviceCommand::GetStatus => CommandName::GetStatus,
        }
    }

    /// The session it concerns, for start and stop.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            DeviceCommand::StartCollection { session_id }
            | DeviceCommand::StopCollection { session_id } => Some(session_id),
            _ => None,
        }
    }

    /// Its parameters as JSON: `DeviceCommand::parse(c.name(), &c.params()) == Ok(c)`.
    pub fn params(&self) -> Value {
        let mut params = Map::new();
        match self {
            DeviceCommand::StartCollection { session_id }
            | DeviceCommand::StopCollection { session_id } => {
                params.insert("session_id".into(), session_id.clone().into());
            }
            DeviceCommand::SetBatch { batch_size } => {
                params.insert("batch_size".into(), (*batch_size).into());
            }
            DeviceCommand::Sync | DeviceCommand::GetStatus => {}
        }
        Value::Object(params)
    }

    /// The push for `device_code` (the device's own code: V3.3 adopts the pushed one), with
    /// `command_id` for its `ack` and `timestamp` (ISO-8601, see
    /// [`FrameClock::iso`](super::FrameClock::iso)).
    pub fn to_push(
        &self,
        device_code: &str,
        command_id: &str,
        timestamp: String,
    ) -> GatewayMessage {
        let push = CommandPush {
            command: self.command_name(),
            device_code: device_code.to_owned(),
            session_id: self.session_id().map(str::to_owned),
            batch_size: match self {
                DeviceCommand::SetBatch { batch_size } => Some(*batch_size),
                _ => None,
            },
            command_id: command_id.to_owned(),
            timestamp,
            message: self.name().replace('_', " "),
        };
        match self {
            DeviceCommand::StartCollection { .. } => GatewayMessage::StartCollection(push),
            DeviceCommand::StopCollection { .. } => GatewayMessage::StopCollection(push),
            DeviceCommand::Sync => GatewayMessage::Sync(push),
            DeviceCommand::SetBatch { .. } => GatewayMessage::SetBatch(push),
            DeviceCommand::GetStatus => GatewayMessage::GetStatus(push),
        }
    }
}

/// An operator's command for one device, as the admin console, the HTTP admin API and the
/// cloud send it: the device's code, the command's name and parameters, and optionally the
/// sender's own `command_id` (so a retry runs once). One parser for every operator, so each
/// refuses the same things with the same words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRequest {
    pub device_code: String,
    pub command: DeviceCommand,
    /// The sender's `command_id`, if it gave one.
    pub request_id: Option<String>,
}

/// Why an operator's command was refused; [`RequestError::field`] names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The device code or `command_id` broke the validator's rules.
    #[error(transparent)]
    Invalid(#[from] validate::Invalid),
    /// The command's name or parameters.
    #[error(transparent)]
    Command(#[from] CommandError),
}

impl RequestError {
    /// The field that was wrong: `command`, `params.batch_size`, or the id's own field name.
    pub fn field(&self) -> String {
        match self {
            RequestError::Invalid(invalid) => invalid.field.clone(),
            RequestError::Command(CommandError::Unknown(_)) => "command".to_owned(),
            RequestError::Command(
                CommandError::MissingParam { param, .. } | CommandError::InvalidParam { param, .. },
            ) => format!("params.{param}"),
        }
    }
}

impl CommandRequest {
    /// Checks, in this order, the device code (its field called `device_field`: `device_code`
    /// on the console, `code` in the HTTP path, `device` from the cloud), the sender's
    /// `command_id`, then the command and its parameters.
    pub fn parse(
        device_field: &str,
        device_code: &str,
        name: &str,
        params: &Value,
        command_id: Option<&str>,
    ) -> Result<CommandRequest, RequestError> {
        validate::id(IdKind::DeviceCode, device_field, device_code)?;
        if let Some(id) = command_id {
            validate::id(IdKind::CommandId, "command_id", id)?;
        }
        Ok(CommandRequest {
            device_code: device_code.to_owned(),
            command: DeviceCommand::parse(name, params)?,
            request_id: command_id.map(str::to_owned),
        })
    }
}

fn param<'a>(params: &'a Value, key: &str) -> Option<&'a Value> {
    params.get(key).filter(|v| !v.is_null())
}

fn session_param(command: &'static str, params: &Value) -> Result<String, CommandError> {
    let invalid = |reason: &str| CommandError::InvalidParam {
        command,
        param: "session_id",
        reason: reason.into(),
    };
    let id = match param(params, "session_id") {
        None => {
            return Err(CommandError::MissingParam {
                command,
                param: "session_id",
            });
        }
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
        Some(_) => return Err(invalid("must be a string or a non-negative integer")),
    };
    validate::id(IdKind::SessionId, "session_id", &id).map_err(|e| invalid(&e.rule.to_string()))?;
    Ok(id)
}

fn batch_size_param(params: &Value) -> Result<u32, CommandError> {
    match param(params, "batch_size").map(Value::as_u64) {
        None => Err(CommandError::MissingParam {
            command: "set_batch",
            param: "batch_size",
        }),
        Some(Some(n)) if (1..=u64::from(MAX_BATCH_SIZE)).contains(&n) => {
            // Bounded by MAX_BATCH_SIZE above.
            Ok(n as u32)
        }
        Some(_) => Err(CommandError::InvalidParam {
            command: "set_batch",
            param: "batch_size",
            reason: format!("must be an integer from 1 to {MAX_BATCH_SIZE}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn start_collection_renders_the_push_v33_dispatches_on() {
        let cmd = DeviceCommand::parse("start_collection", &serde_json::json!({"session_id": 124}))
            .expect("valid command");
        let push = cmd.to_push("2025001", "c-7", "2026-11-24T09:30:00.000+08:00".into());
        assert_eq!(
            push.to_json(),
            r#"{"type":"start_collection","command":"START_COLLECTION","device_code":"2025001","session_id":"124","command_id":"c-7","timestamp":"2026-11-24T09:30:00.000+08:00","message":"start collection"}"#
        );
    }

    #[test]
    fn a_push_fits_the_512_byte_document_v33_parses_it_into() {
        // ArduinoJson 6 on a 32-bit ESP32: 16 bytes per member plus every key and string value
        // copied with its NUL. Longest allowed device code (32) and session id (64).
        let cmd = DeviceCommand::StartCollection {
            session_id: "s".repeat(IdKind::SessionId.max_chars()),
        };
        let push = cmd.to_push(
            &"d".repeat(32),
            "1234567890123",
            "2026-11-24T09:30:00.000+08:00".into(),
        );
        let value: serde_json::Value = serde_json::from_str(&push.to_json()).expect("json");
        let obj = value.as_object().expect("object");
        let strings: usize = obj
            .iter()
            .map(|(k, v)| k.len() + 1 + v.as_str().map_or(0, |s| s.len() + 1))
            .sum();
        assert!(
            16 * obj.len() + strings < 512,
            "{} bytes",
            16 * obj.len() + strings
        );
    }

    #[test]
    fn bad_commands_are_named() {
        assert_eq!(
            DeviceCommand::parse("reboot", &Value::Null),
            Err(CommandError::Unknown("reboot".into()))
        );
        assert_eq!(
            DeviceCommand::parse("STOP_COLLECTION", &serde_json::json!({})),
            Err(CommandError::MissingParam {
                command: "stop_collection",
                param: "session_id"
            })
        );
        assert_eq!(
            DeviceCommand::parse(
                "start_collection",
                &serde_json::json!({"session_id": "a\u{7}b"})
            )
            .unwrap_err()
            .to_string(),
            "start_collection: `session_id` may hold only the characters A–Z a–z 0–9 - _ . : (character 2 is not one)"
        );
        assert!(matches!(
            DeviceCommand::parse("set_batch", &serde_json::json!({"batch_size": 0})),
            Err(CommandError::InvalidParam {
                param: "batch_size",
                ..
            })
        ));
    }

    fn any_command() -> impl Strategy<Value = DeviceCommand> {
        prop_oneof![
            "[a-z0-9-]{1,64}".prop_map(|session_id| DeviceCommand::StartCollection { session_id }),
            "[a-z0-9-]{1,64}".prop_map(|session_id| DeviceCommand::StopCollection { session_id }),
            Just(DeviceCommand::Sync),
            (1..=MAX_BATCH_SIZE).prop_map(|batch_size| DeviceCommand::SetBatch { batch_size }),
            Just(DeviceCommand::GetStatus),
        ]
    }

    proptest! {
        #[test]
        fn name_and_params_round_trip(cmd in any_command()) {
            prop_assert_eq!(DeviceCommand::parse(cmd.name(), &cmd.params()), Ok(cmd.clone()));
            let push = cmd.to_push("dev-1", "9", "t".into());
            let back = super::super::parse_gateway_message(&push.to_json()).expect("parses");
            prop_assert_eq!(back, push);
        }

        #[test]
        fn any_name_and_params_give_a_command_or_an_error(name in ".{0,20}", n in any::<i64>(), s in ".{0,80}") {
            for params in [serde_json::json!({"session_id": s, "batch_size": n}), serde_json::json!(n), Value::Null] {
                let _ = DeviceCommand::parse(&name, &params);
            }
        }
    }
}
