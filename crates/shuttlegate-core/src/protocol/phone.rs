//! Phone (mini-program) requests: what a player's phone may ask over `/ws/miniprogram/{user_id}/`,
//! parsed and validated in one place so the endpoint only ever sees well-formed requests.
//!
//! The message names are the seed backend's (`session_status`, `start_session`, …); every id
//! passes the one input validator ([`super::validate`]). A refusal is a [`PhoneError`] naming
//! the field, answered to the phone as `{"type":"error","error":…,"field":…}`.

use serde_json::{Map, Value};

use super::untrusted::clip;
use super::validate::{self, IdKind};

/// The most summaries one `session_history` may ask for (each is a few KiB).
pub const MAX_HISTORY: usize = 50;
/// `session_history`'s `limit` when the phone gives none.
pub const DEFAULT_HISTORY: usize = 10;

/// A phone's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneRequest {
    Ping,
    /// `session_status` {session_id}.
    SessionStatus {
        session_id: String,
    },
    /// `start_session` {device_code?, session_id?}: the user's bound device (named when the
    /// user has several).
    StartSession {
        device_code: Option<String>,
        session_id: Option<String>,
    },
    /// `end_session` {device_code?}.
    EndSession {
        device_code: Option<String>,
    },
    /// `session_history` {limit?}: the user's most recent summaries, newest first.
    SessionHistory {
        limit: usize,
    },
    /// `get_analysis` {session_id}: a summary the phone missed.
    GetAnalysis {
        session_id: String,
    },
}

/// A request refused: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct PhoneError {
    pub field: String,
    pub error: String,
}

impl PhoneError {
    fn new(field: &str, error: impl Into<String>) -> PhoneError {
        PhoneError {
            field: field.to_owned(),
            error: error.into(),
        }
    }
}

impl PhoneRequest {
    /// Parses one text frame from a phone.
    pub fn parse(text: &str) -> Result<PhoneRequest, PhoneError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| PhoneError::new("message", format!("not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(PhoneError::new("message", "must be a JSON object"));
        };
        let kind = match fields.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            _ => return Err(PhoneError::new("type", "is required (a string)")),
        };
        match kind {
            "ping" => Ok(PhoneRequest::Ping),
            "session_status" => Ok(PhoneRequest::SessionStatus {
                session_id: required_id(&fields, IdKind::SessionId, "session_id")?,
            }),
            "start_session" => Ok(PhoneRequest::StartSession {
                device_code: optional_id(&fields, IdKind::DeviceCode, "device_code")?,
                session_id: optional_id(&fields, IdKind::SessionId, "session_id")?,
            }),
            "end_session" => Ok(PhoneRequest::EndSession {
                device_code: optional_id(&fields, IdKind::DeviceCode, "device_code")?,
            }),
            "session_history" => Ok(PhoneRequest::SessionHistory {
                limit: history_limit(fields.get("limit"))?,
            }),
            "get_analysis" => Ok(PhoneRequest::GetAnalysis {
                session_id: required_id(&fields, IdKind::SessionId, "session_id")?,
            }),
            other => Err(PhoneError::new(
                "type",
                format!(
                    "`{}` is not a phone message (ping, session_status, start_session, end_session, session_history, get_analysis)",
                    clip(other)
                ),
            )),
        }
    }
}

fn required_id(
    fields: &Map<String, Value>,
    kind: IdKind,
    field: &str,
) -> Result<String, PhoneError> {
    optional_id(fields, kind, field)?.ok_or_else(|| PhoneError::new(field, "is required"))
}

fn optional_id(
    fields: &Map<String, Value>,
    kind: IdKind,
    field: &str,
) -> Result<Option<String>, PhoneError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => validate::id(kind, field, id)
            .map(|()| Some(id.clone()))
            .map_err(|e| PhoneError::new(field, e.to_string())),
        Some(_) => Err(PhoneError::new(field, "must be a string")),
    }
}

fn history_limit(value: Option<&Value>) -> Result<usize, PhoneError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(DEFAULT_HISTORY);
    };
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_HISTORY).contains(n))
        .ok_or_else(|| {
            PhoneError::new(
                "limit",
                format!("must be an integer from 1 to {MAX_HISTORY}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    #[test]
    fn each_phone_message_parses_with_its_fields() {
        assert_eq!(
            PhoneRequest::parse(r#"{"type":"ping"}"#),
            Ok(PhoneRequest::Ping)
        );
        assert_eq!(
            PhoneRequest::parse(r#"{"type":"session_status","session_id":"s-1"}"#),
            Ok(PhoneRequest::SessionStatus {
                session_id: "s-1".into()
            })
        );
        assert_eq!(
            PhoneRequest::parse(r#"{"type":"start_session"}"#),
            Ok(PhoneRequest::StartSession {
                device_code: None,
                session_id: None
            })
        );
        assert_eq!(
            PhoneRequest::parse(r#"{"type":"session_history"}"#),
            Ok(PhoneRequest::SessionHistory {
                limit: DEFAULT_HISTORY
            })
        );
    }

    #[test]
    fn a_bad_message_is_refused_naming_the_field() {
        let field = |text: &str| PhoneRequest::parse(text).unwrap_err().field;
        assert_eq!(field("nope"), "message");
        assert_eq!(field("[1]"), "message");
        assert_eq!(field(r#"{"session_id":"s"}"#), "type");
        assert_eq!(field(r#"{"type":"dance"}"#), "type");
        assert_eq!(field(r#"{"type":"session_status"}"#), "session_id");
        assert_eq!(
            field(r#"{"type":"get_analysis","session_id":"a b"}"#),
            "session_id"
        );
        assert_eq!(
            field(r#"{"type":"end_session","device_code":7}"#),
            "device_code"
        );
        assert_eq!(field(r#"{"type":"session_history","limit":0}"#), "limit");
        assert_eq!(field(r#"{"type":"session_history","limit":51}"#), "limit");
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_naming_a_field_without_panicking(text in ".{0,200}") {
            if let Err(e) = PhoneRequest::parse(&text) {
                prop_assert!(!e.field.is_empty());
            }
        }

        #[test]
        fn a_session_id_is_accepted_exactly_when_the_validator_accepts_it(id in "[a-z0-9 :_.\\-]{0,80}") {
            let text = serde_json::json!({"type": "session_status", "session_id": id}).to_string();
            let parsed = PhoneRequest::parse(&text);
            prop_assert_eq!(parsed.is_ok(), validate::id(IdKind::SessionId, "session_id", &id).is_ok());
        }

        #[test]
        fn a_history_limit_is_accepted_exactly_from_1_to_the_maximum(limit in -5i64..100) {
            let text = serde_json::json!({"type": "session_history", "limit": limit}).to_string();
            let accepted = (1..=MAX_HISTORY as i64).contains(&limit);
            prop_assert_eq!(
                PhoneRequest::parse(&text).ok(),
                accepted.then_some(PhoneRequest::SessionHistory { limit: limit as usize })
            );
        }
    }
}
