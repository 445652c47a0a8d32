//! The admin console's requests (`/ws/admin/`, SPEC §5): JSON text frames with a `type`, in the
//! seed backend's names (`get_system_status`, `get_device_list`), parsed into [`AdminRequest`].
//!
//! Why here and not in the socket's driver: what a staff member may ask, and what is refused
//! with which words, is protocol, tested without a socket. Every id goes through the one
//! validator ([`super::validate`]); a command through [`CommandRequest::parse`], the parser the
//! HTTP admin API and the cloud's commands share. A refusal ([`AdminError`]) names the request
//! and the field, and the console's connection stays open.

use serde_json::{Map, Value};

use super::command::CommandRequest;
use super::untrusted::clip;
use super::validate::{self, IdKind};

/// Largest request the console sends that is worth reading (a command with its parameters).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// What a staff member asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    /// `ping` → `pong`.
    Ping,
    /// `get_system_status` → `system_status`.
    SystemStatus,
    /// `get_device_list` → `device_list`.
    DeviceList,
    /// `send_command` → `send_command_response`, later `command_result`.
    SendCommand(CommandRequest),
    /// `start_session` → `start_session_response`.
    StartSession {
        device_code: String,
        /// The operator's id for it; the gateway makes one when absent.
        session_id: Option<String>,
    },
    /// `end_session` → `end_session_response`.
    EndSession { device_code: String },
    /// `bind_user` → `bind_user_response`: the player whose phones get the device's results
    /// (a gateway-side binding, not a device command).
    BindUser {
        device_code: String,
        user_id: String,
    },
}

/// A request that was refused: what to put in the `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AdminError {
    /// The request's `type`, when it had a readable one.
    pub request: Option<String>,
    /// The field that was wrong (`type`, `device_code`, `params.batch_size`, …), if one was.
    pub field: Option<String>,
    /// English, naming the request and the rule.
    pub message: String,
}

impl AdminError {
    fn new(request: Option<&str>, field: Option<&str>, message: String) -> AdminError {
        AdminError {
            request: request.map(str::to_owned),
            field: field.map(str::to_owned),
            message,
        }
    }
}

/// Parses one text frame of the console.
pub fn parse_admin_request(text: &str) -> Result<AdminRequest, AdminError> {
    if text.len() > MAX_REQUEST_BYTES {
        let message = format!(
            "request of {} bytes; at most {MAX_REQUEST_BYTES}",
            text.len()
        );
        return Err(AdminError::new(None, None, message));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| AdminError::new(None, None, format!("not JSON: {e}")))?;
    let Value::Object(fields) = value else {
        let message = "a request is a JSON object with a `type`".to_owned();
        return Err(AdminError::new(None, None, message));
    };
    let Some(kind) = fields.get("type").and_then(Value::as_str) else {
        let message = "`type` is required and must be a string".to_owned();
        return Err(AdminError::new(None, Some("type"), message));
    };
    let request = Request {
        kind,
        fields: &fields,
    };
    match kind {
        "ping" => Ok(AdminRequest::Ping),
        "get_system_status" => Ok(AdminRequest::SystemStatus),
        "get_device_list" => Ok(AdminRequest::DeviceList),
        "send_command" => request.send_command(),
        "start_session" => Ok(AdminRequest::StartSession {
            device_code: request.device_code()?,
            session_id: request.session_id()?,
        }),
        "end_session" => Ok(AdminRequest::EndSession {
            device_code: request.device_code()?,
        }),
        "bind_user" => Ok(AdminRequest::BindUser {
            device_code: request.device_code()?,
            user_id: request
                .opt_id("user_id", IdKind::UserId)?
                .ok_or_else(|| request.error("user_id", "is required"))?,
        }),
        other => Err(AdminError::new(
            None,
            Some("type"),
            format!(
                "unknown request type `{}` (expected ping, get_system_status, get_device_list, send_command, start_session, end_session or bind_user)",
                clip(other)
            ),
        )),
    }
}

/// One request's fields, with its `type` for the error messages.
struct Request<'a> {
    kind: &'a str,
    fields: &'a Map<String, Value>,
}

impl Request<'_> {
    fn error(&self, field: &str, rule: &str) -> AdminError {
        let message = format!("{}: `{field}` {rule}", self.kind);
        AdminError::new(Some(self.kind), Some(field), message)
    }

    fn present(&self, key: &str) -> Option<&Value> {
        self.fields.get(key).filter(|v| !v.is_null())
    }

    /// A required string field.
    fn text(&self, key: &str) -> Result<&str, AdminError> {
        match self.present(key) {
            None => Err(self.error(key, "is required")),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.error(key, "must be a string")),
        }
    }

    /// An optional id: a string, or a non-negative integer taken as its decimal text (the seed
    /// backend's session ids are numbers).
    fn opt_id(&self, key: &str, kind: IdKind) -> Result<Option<String>, AdminError> {
        let id = match self.present(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
            Some(_) => return Err(self.error(key, "must be a string or a non-negative integer")),
        };
        validate::id(kind, key, &id).map_err(|e| self.error(key, &e.rule.to_string()))?;
        Ok(Some(id))
    }

    fn device_code(&self) -> Result<String, AdminError> {
        let code = self.text("device_code")?;
        validate::id(IdKind::DeviceCode, "device_code", code)
            .map_err(|e| self.error("device_code", &e.rule.to_string()))?;
        Ok(code.to_owned())
    }

    fn session_id(&self) -> Result<Option<String>, AdminError> {
        self.opt_id("session_id", IdKind::SessionId)
    }

    fn send_command(&self) -> Result<AdminRequest, AdminError> {
        let device_code = self.text("device_code")?;
        let name = self.text("command")?;
        let params = self.present("params").cloned().unwrap_or(Value::Null);
        if !(params.is_null() || params.is_object()) {
            return Err(self.error("params", "must be an object"));
        }
        let command_id = self.opt_id("command_id", IdKind::CommandId)?;
        CommandRequest::parse(
            "device_code",
            device_code,
            name,
            &params,
            command_id.as_deref(),
        )
        .map(AdminRequest::SendCommand)
        .map_err(|e| {
            let message = format!("{}: {e}", self.kind);
            AdminError::new(Some(self.kind), Some(&e.field()), message)
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::DeviceCommand;

    fn parse(v: Value) -> Result<AdminRequest, AdminError> {
        parse_admin_request(&v.to_string())
    }

    #[test]
    fn bind_user_takes_a_device_and_a_user_each_validated() {
        use serde_json::json;
        assert_eq!(
            parse(json!({"type": "bind_user", "device_code": "racket-01", "user_id": 42})),
            Ok(AdminRequest::BindUser {
                device_code: "racket-01".into(),
                user_id: "42".into()
            })
        );
        let missing = parse(json!({"type": "bind_user", "device_code": "racket-01"}));
        assert_eq!(missing.unwrap_err().field.as_deref(), Some("user_id"));
        let bad = parse(json!({"type": "bind_user", "device_code": "racket-01", "user_id": "a b"}));
        assert_eq!(bad.unwrap_err().field.as_deref(), Some("user_id"));
    }

    #[test]
    fn the_seed_names_parse() {
        use serde_json::json;
        assert_eq!(parse(json!({"type": "ping"})), Ok(AdminRequest::Ping));
        assert_eq!(
            parse(json!({"type": "get_system_status"})),
            Ok(AdminRequest::SystemStatus)
        );
        assert_eq!(
            parse(json!({"type": "get_device_list"})),
            Ok(AdminRequest::DeviceList)
        );
        assert_eq!(
            parse(json!({"type": "start_session", "device_code": "racket-01", "session_id": 124})),
            Ok(AdminRequest::StartSession {
                device_code: "racket-01".into(),
                session_id: Some("124".into())
            })
        );
        assert_eq!(
            parse(json!({"type": "end_session", "device_code": "racket-01"})),
            Ok(AdminRequest::EndSession {
                device_code: "racket-01".into()
            })
        );
        let command = parse(json!({"type": "send_command", "device_code": "racket-01",
            "command": "set_batch", "params": {"batch_size": 60}, "command_id": "op-1"}));
        assert_eq!(
            command,
            Ok(AdminRequest::SendCommand(CommandRequest {
                device_code: "racket-01".into(),
                command: DeviceCommand::SetBatch { batch_size: 60 },
                request_id: Some("op-1".into()),
            }))
        );
    }

    #[test]
    fn each_refusal_names_its_field() {
        use serde_json::json;
        let field = |v: Value| parse(v).unwrap_err().field;
        assert_eq!(field(json!({"kind": "ping"})), Some("type".into()));
        assert_eq!(field(json!({"type": "reboot"})), Some("type".into()));
        assert_eq!(
            field(json!({"type": "end_session"})),
            Some("device_code".into())
        );
        assert_eq!(
            field(json!({"type": "end_session", "device_code": "a b"})),
            Some("device_code".into())
        );
        assert_eq!(
            field(json!({"type": "send_command", "device_code": "d", "command": "reboot"})),
            Some("command".into())
        );
        assert_eq!(
            field(
                json!({"type": "send_command", "device_code": "d", "command": "set_batch", "params": {"batch_size": 0}})
            ),
            Some("params.batch_size".into())
        );
        assert_eq!(
            field(
                json!({"type": "send_command", "device_code": "d", "command": "sync", "params": [1]})
            ),
            Some("params".into())
        );
        assert_eq!(
            field(
                json!({"type": "send_command", "device_code": "d", "command": "sync", "command_id": "a\nb"})
            ),
            Some("command_id".into())
        );
        let err = parse(json!({"type": "start_session", "device_code": "d", "session_id": -1}))
            .unwrap_err();
        assert_eq!(err.field, Some("session_id".into()));
        assert!(
            err.message.starts_with("start_session: `session_id`"),
            "{err}"
        );
        assert!(
            parse_admin_request("{")
                .unwrap_err()
                .message
                .starts_with("not JSON")
        );
        let huge = format!(
            "{{\"type\":\"ping\",\"x\":\"{}\"}}",
            "a".repeat(MAX_REQUEST_BYTES)
        );
        assert!(parse_admin_request(&huge).is_err());
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(text in ".{0,300}") {
            let _ = parse_admin_request(&text);
        }

        /// Whatever device code a request names, it passes exactly when the shared validator
        /// accepts it, and a refusal names `device_code`.
        #[test]
        fn a_device_code_passes_exactly_when_the_validator_accepts_it(
            code in ".{0,40}",
            kind in prop::sample::select(vec!["end_session", "start_session", "send_command"]),
        ) {
            let v = serde_json::json!({"type": kind, "device_code": code, "command": "sync"});
            let parsed = parse(v);
            let valid = validate::id(IdKind::DeviceCode, "device_code", &code).is_ok();
            prop_assert_eq!(parsed.is_ok(), valid);
            if let Err(e) = parsed {
                prop_assert_eq!(e.field, Some("device_code".to_owned()));
            }
        }
    }
}
