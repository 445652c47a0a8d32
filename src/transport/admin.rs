//! The operator's HTTP hooks: start and end sessions and send commands to a device.
//!
//! `POST /api/devices/{code}/sessions` (body `{"session_id": …}` optional) starts a session,
//! `POST /api/devices/{code}/sessions/end` ends the open one, `POST /api/devices/{code}/commands`
//! (body `{"command": "set_batch", "params": {"batch_size": 60}}`) queues any command
//! (answered with its `command_id` and `delivered`: `pushed`, `queued` or `duplicate`). Each needs
//! `Authorization: Bearer <admin_token>` (at least 16 characters); without a configured admin
//! token they are off (404). A call without the right token gets the same 401 as a refused
//! device handshake, checked before its body is read, counted and slowed down per address like
//! one. The device code, `session_id` and `command_id` pass the same validator as a
//! device's messages (`protocol::validate`): a bad one is answered 400 naming the field, and
//! nothing is journaled. A command may carry the operator's `command_id`: a retry with the same
//! id is answered `duplicate` and not queued again.
//! The `simulate` tool and tests start V3.3 sessions through them; the admin console, phones and
//! the cloud reach the same court operations through their own endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{self, AuthGuard, Refusal};
use crate::config::SettingsHandle;
use crate::court::{CourtHandle, Delivered, RequestError};
use crate::service::Shutdown;
use crate::uplink::command::FirstOutcome;
use shuttlegate_core::court::CourtError;
use shuttlegate_core::protocol::CommandRequest;
use shuttlegate_core::protocol::command::RequestError as CommandRequestError;
use shuttlegate_core::protocol::validate::{self, IdKind, Invalid};

/// What the admin hooks need.
pub struct AdminApi {
    /// `auth.admin_token` is read per request, so a reload applies at once.
    pub settings: SettingsHandle,
    pub court: CourtHandle,
    /// Counts refusals and slows down addresses that keep failing (shared with the devices').
    pub guard: Arc<AuthGuard>,
    /// A held-back refusal is answered at once when shutdown begins.
    pub shutdown: Shutdown,
}

#[derive(Debug, Default, Deserialize)]
struct StartBody {
    session_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CommandBody {
    command: String,
    #[serde(default)]
    params: Value,
    /// The operator's id for the command, so a retry runs it once.
    #[serde(default)]
    command_id: Option<String>,
}

/// The admin routes, to merge into the gateway's router.
pub fn routes(api: Arc<AdminApi>) -> axum::Router {
    axum::Router::new()
        .route("/api/devices/{code}/sessions", post(start_session))
        .route("/api/devices/{code}/sessions/end", post(end_session))
        .route("/api/devices/{code}/commands", post(command))
        .with_state(api)
}

fn token_matches(api: &AdminApi, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let settings = api.settings.current();
    let Some(token) = &settings.auth.admin_token else {
        return false;
    };
    token.matches(given)
}

/// `Ok` for the right admin token; otherwise the generic 401, held back if `peer` keeps
/// failing.
async fn authorize(api: &AdminApi, headers: &HeaderMap, peer: SocketAddr) -> Result<(), Response> {
    if token_matches(api, headers) {
        return Ok(());
    }
    let delay = api.guard.refused(Refusal::AdminToken, peer.ip());
    log::warn!("refused an admin call from {peer}: {}", Refusal::AdminToken);
    auth::hold(delay, &api.shutdown).await;
    Err(auth::unauthorized())
}

/// A request body that could not be read as JSON: 400 naming the problem.
fn bad_body(e: &JsonRejection) -> Response {
    refused(StatusCode::BAD_REQUEST, e.body_text())
}

fn refused(status: StatusCode, error: String) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// A value the validator refused: 400, naming the field and the rule.
fn invalid(e: Invalid) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": e.to_string(), "field": e.field })),
    )
        .into_response()
}

/// A command the shared parser refused: 400, naming the field.
fn invalid_request(e: &CommandRequestError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": e.to_string(), "field": e.field() })),
    )
        .into_response()
}

/// The 400 for a path's device code the validator refuses, checked before it reaches the court
/// (or a log line).
fn bad_device_code(code: &str) -> Option<Response> {
    validate::id(IdKind::DeviceCode, "code", code)
        .err()
        .map(invalid)
}

/// A court request that did not take effect: the court's refusal (404 unknown device, 409 the
/// state does not allow it), or the gateway's failure to make it durable (503: try again).
fn court_error(e: RequestError) -> Response {
    let status = match &e {
        RequestError::Refused(CourtError::UnknownDevice(_)) => StatusCode::NOT_FOUND,
        RequestError::Refused(_) => StatusCode::CONFLICT,
        RequestError::NotJournaled(_) | RequestError::Busy | RequestError::Stopped => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    refused(status, e.to_string())
}

async fn start_session(
    State(api): State<Arc<AdminApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Response {
    if let Err(refusal) = authorize(&api, &headers, peer).await {
        return refusal;
    }
    // The body is optional: none (no JSON content type) starts a session with a new id.
    let session_id = match body {
        Ok(Json(b)) => b.session_id,
        Err(JsonRejection::MissingJsonContentType(_)) => None,
        Err(e) => return bad_body(&e),
    };
    if let Some(response) = bad_device_code(&code) {
        return response;
    }
    if let Some(id) = &session_id
        && let Err(e) = validate::id(IdKind::SessionId, "session_id", id)
    {
        return invalid(e);
    }
    match api.court.start_session(&code, session_id).await {
        Ok(id) => {
            Json(json!({"device": code, "session_id": id, "state": "calibrating"})).into_response()
        }
        Err(e) => court_error(e),
    }
}

async fn end_session(
    State(api): State<Arc<AdminApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorize(&api, &headers, peer).await {
        return refusal;
    }
    if let Some(response) = bad_device_code(&code) {
        return response;
    }
    match api.court.end_session(&code).await {
        Ok(id) => {
            Json(json!({"device": code, "session_id": id, "state": "stopping"})).into_response()
        }
        Err(e) => court_error(e),
    }
}

async fn command(
    State(api): State<Arc<AdminApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CommandBody>, JsonRejection>,
) -> Response {
    if let Err(refusal) = authorize(&api, &headers, peer).await {
        return refusal;
    }
    let body = match body {
        Ok(Json(body)) => body,
        Err(e) => return bad_body(&e),
    };
    let request = CommandRequest::parse(
        "code",
        &code,
        &body.command,
        &body.params,
        body.command_id.as_deref(),
    );
    let request = match request {
        Ok(request) => request,
        Err(e) => return invalid_request(&e),
    };
    match api.court.send_command(request).await {
        Ok(Delivered::Duplicate(first)) => Json(json!({
            "device": code,
            "command_id": first.command_id,
            "delivered": "duplicate",
            "duplicate": true,
            "first": FirstOutcome::of(&first),
        }))
        .into_response(),
        Ok(delivered) => Json(json!({
            "device": code,
            "command_id": delivered.command_id(),
            "delivered": delivered.as_str(),
        }))
        .into_response(),
        Err(e) => court_error(e),
    }
}
