//! Commands from the cloud: parsing and validation (pure), the hand-off type to the daemon, and
//! the result message published back.
//!
//! A command arrives on `{prefix}/{venue}/{court}/commands` as
//! `{"device":"racket-01","command":"set_batch","params":{"batch_size":50},"command_id":"c-1"}`.
//! An unknown device, an unknown command, bad parameters or an id the shared validator
//! (`shuttlegate_core::protocol::validate`) refuses give a `command_error` result and go no
//! further (the parser is the one the admin console and the HTTP admin API use,
//! `CommandRequest::parse`); a valid one is handed to the daemon (which journals it and pushes or queues it
//! for the device) and its outcome is published as `command_ack` on
//! `{prefix}/{venue}/{court}/commands/results`. A command whose `command_id` the court already
//! saw (the broker redelivers after a reconnect) is not run again: its result says `duplicate`,
//! with what became of the first.

use serde::{Deserialize, Serialize};
use shuttlegate_core::court::RecentCommand;
use shuttlegate_core::protocol::command::RequestError;
use shuttlegate_core::protocol::validate::Invalid;
use shuttlegate_core::protocol::{CommandError as DeviceCommandError, CommandRequest};
use tokio::sync::oneshot;

/// Command names the V3.3 firmware understands (SPEC §1.1).
pub const COMMANDS: &[&str] = &[
    "start_collection",
    "stop_collection",
    "sync",
    "set_batch",
    "get_status",
];

/// A validated command, handed to the daemon.
#[derive(Debug)]
pub struct CloudCommand {
    pub device: String,
    /// One of [`COMMANDS`].
    pub command: String,
    /// The command's parameters (an object; `{}` when none were sent).
    pub params: serde_json::Value,
    pub command_id: String,
    /// The daemon answers here once the command is journaled and pushed or queued.
    pub reply: oneshot::Sender<CommandOutcome>,
}

/// What the daemon did with a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "delivery")]
pub enum CommandOutcome {
    /// Sent to the connected device.
    Pushed,
    /// Queued for the device's next `poll_commands`.
    Queued,
    /// Refused by the daemon (e.g. no session to stop).
    Rejected { reason: String },
    /// The `command_id` was seen before: not run again. `first` is what became of the first.
    Duplicate { first: FirstOutcome },
}

/// What became of the first command with a repeated `command_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstOutcome {
    /// Queued or pushed; the device has not acknowledged it yet.
    Pending,
    /// The device acknowledged it with success.
    Succeeded,
    /// The device acknowledged it with failure.
    Failed,
}

impl FirstOutcome {
    /// What the court knows of `first`.
    pub fn of(first: &RecentCommand) -> FirstOutcome {
        match first.success {
            None => FirstOutcome::Pending,
            Some(true) => FirstOutcome::Succeeded,
            Some(false) => FirstOutcome::Failed,
        }
    }
}

impl CommandOutcome {
    /// The answer to a repeat of `first`.
    pub fn duplicate(first: &RecentCommand) -> CommandOutcome {
        CommandOutcome::Duplicate {
            first: FirstOutcome::of(first),
        }
    }
}

/// Why a command was refused before reaching the daemon; `code` goes into the result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command is not a JSON object with device, command, command_id: {0}")]
    Malformed(String),
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    #[error("unknown command {0:?}; expected one of {COMMANDS:?}")]
    UnknownCommand(String),
    #[error("invalid params for {command}: {reason}")]
    InvalidParams { command: String, reason: String },
    #[error("{0}")]
    InvalidField(#[from] Invalid),
    #[error("the gateway is busy; retry later")]
    Busy,
    #[error("the gateway did not answer within {0} s")]
    Timeout(u64),
}

impl CommandError {
    /// The machine-readable code of the error result.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::Malformed(_) => "malformed",
            CommandError::UnknownDevice(_) => "unknown_device",
            CommandError::UnknownCommand(_) => "invalid_command",
            CommandError::InvalidParams { .. } => "invalid_params",
            CommandError::InvalidField(_) => "invalid_field",
            CommandError::Busy => "busy",
            CommandError::Timeout(_) => "timeout",
        }
    }
}

#[derive(Deserialize)]
struct WireCommand {
    device: String,
    command: String,
    #[serde(default)]
    params: Option<serde_json::Value>,
    command_id: String,
}

/// A command that passed validation, before it gets its reply channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCommand {
    pub device: String,
    pub command: String,
    pub params: serde_json::Value,
    pub command_id: String,
}

/// The `command_id` of a payload, if it has a readable one (for error results).
pub fn command_id_of(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        command_id: Option<String>,
    }
    serde_json::from_slice::<Id>(payload).ok()?.command_id
}

/// Parses and validates a command payload against the configured devices, with the parser
/// every operator shares ([`CommandRequest::parse`]: ids, command name, parameters).
pub fn parse_command(payload: &[u8], devices: &[String]) -> Result<ValidCommand, CommandError> {
    let wire: WireCommand =
        serde_json::from_slice(payload).map_err(|e| CommandError::Malformed(e.to_string()))?;
    let params = wire.params.unwrap_or_else(|| serde_json::json!({}));
    if !params.is_object() {
        return Err(CommandError::InvalidParams {
            command: wire.command,
            reason: "params must be an object".into(),
        });
    }
    let request = CommandRequest::parse(
        "device",
        &wire.device,
        &wire.command,
        &params,
        Some(&wire.command_id),
    );
    match request {
        Err(RequestError::Invalid(invalid)) => Err(CommandError::InvalidField(invalid)),
        _ if !devices.contains(&wire.device) => Err(CommandError::UnknownDevice(wire.device)),
        Ok(_) => Ok(ValidCommand {
            device: wire.device,
            command: wire.command,
            params,
            command_id: wire.command_id,
        }),
        Err(RequestError::Command(DeviceCommandError::Unknown(_))) => {
            Err(CommandError::UnknownCommand(wire.command))
        }
        Err(RequestError::Command(e)) => Err(CommandError::InvalidParams {
            command: wire.command,
            reason: e.to_string(),
        }),
    }
}

/// The result published on the results topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandResult {
    CommandAck {
        command_id: String,
        device: String,
        command: String,
        #[serde(flatten)]
        outcome: CommandOutcome,
        ts_ms: i64,
    },
    CommandError {
        command_id: Option<String>,
        code: &'static str,
        error: String,
        ts_ms: i64,
    },
}

impl CommandResult {
    pub fn error(command_id: Option<String>, err: &CommandError, ts_ms: i64) -> Self {
        CommandResult::CommandError {
            command_id,
            code: err.code(),
            error: err.to_string(),
            ts_ms,
        }
    }

    pub fn to_json(&self) -> String {
        // An enum of strings and integers always serialises.
        serde_json::to_string(self).expect("command result serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shuttlegate_core::protocol::validate::{self, IdKind};

    fn devices() -> Vec<String> {
        vec!["racket-01".into()]
    }

    #[test]
    fn a_valid_set_batch_passes() {
        let c = parse_command(
            br#"{"device":"racket-01","command":"set_batch","params":{"batch_size":50},"command_id":"c1"}"#,
            &devices(),
        )
        .unwrap();
        assert_eq!(c.params["batch_size"], 50);
    }

    #[test]
    fn each_kind_of_bad_command_has_its_code() {
        let code = |p: &[u8]| parse_command(p, &devices()).unwrap_err().code();
        assert_eq!(code(b"nope"), "malformed");
        assert_eq!(
            code(br#"{"device":"x","command":"sync","command_id":"1"}"#),
            "unknown_device"
        );
        assert_eq!(
            code(br#"{"device":"racket-01","command":"reboot","command_id":"1"}"#),
            "invalid_command"
        );
        assert_eq!(
            code(br#"{"device":"racket-01","command":"set_batch","params":{"batch_size":0},"command_id":"1"}"#),
            "invalid_params"
        );
        let err = parse_command(
            br#"{"device":"racket-01","command":"sync","command_id":"c\n1"}"#,
            &devices(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_field");
        assert!(
            err.to_string().starts_with("`command_id` may hold only"),
            "{err}"
        );
        assert_eq!(
            code(br#"{"device":"racket-01\u0000","command":"sync","command_id":"1"}"#),
            "invalid_field"
        );
    }

    #[test]
    fn the_shared_parser_refuses_what_the_console_refuses() {
        let err = parse_command(
            br#"{"device":"racket-01","command":"start_collection","command_id":"1"}"#,
            &devices(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_params");
        assert!(
            err.to_string().contains("`session_id` is required"),
            "{err}"
        );
        let upper = parse_command(
            br#"{"device":"racket-01","command":"SYNC","command_id":"1"}"#,
            &devices(),
        );
        assert!(
            upper.is_ok(),
            "the seed's upper-case names, as everywhere: {upper:?}"
        );
    }

    #[test]
    fn a_duplicate_says_what_became_of_the_first() {
        let first = RecentCommand {
            request_id: "c1".into(),
            device: "d".into(),
            command_id: 7,
            success: Some(false),
        };
        let ack = CommandResult::CommandAck {
            command_id: "c1".into(),
            device: "d".into(),
            command: "sync".into(),
            outcome: CommandOutcome::duplicate(&first),
            ts_ms: 5,
        };
        let v: serde_json::Value = serde_json::from_str(&ack.to_json()).unwrap();
        assert_eq!(v["delivery"], "duplicate");
        assert_eq!(v["first"], "failed");
    }

    #[test]
    fn results_serialise_with_their_type() {
        let ack = CommandResult::CommandAck {
            command_id: "c1".into(),
            device: "d".into(),
            command: "sync".into(),
            outcome: CommandOutcome::Queued,
            ts_ms: 5,
        };
        let v: serde_json::Value = serde_json::from_str(&ack.to_json()).unwrap();
        assert_eq!(v["type"], "command_ack");
        assert_eq!(v["delivery"], "queued");
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_command(&bytes, &devices());
            let _ = command_id_of(&bytes);
        }

        /// Whatever `command_id` a command carries, it passes exactly when the shared
        /// validator accepts it.
        #[test]
        fn a_command_id_passes_exactly_when_the_validator_accepts_it(id in ".{0,140}") {
            let payload = serde_json::json!({"device": "racket-01", "command": "sync", "command_id": id}).to_string();
            let parsed = parse_command(payload.as_bytes(), &devices());
            let valid = validate::id(IdKind::CommandId, "command_id", &id).is_ok();
            prop_assert_eq!(parsed.is_ok(), valid);
        }
    }
}
