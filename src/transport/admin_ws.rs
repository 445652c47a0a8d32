//! The staff's console over WebSocket: `/ws/admin/` (SPEC §5, the seed backend's `AdminConsumer`
//! and its message names).
//!
//! Who may connect: whoever presents `[auth] admin_token` in `?token=` or `Authorization:
//! Bearer`, compared in constant time (`Secret::matches`). Every refusal is the one generic 401
//! of [`auth::unauthorized`], counted and slowed down per address by the shared [`AuthGuard`].
//! Without a configured token the route does not exist (404, like the HTTP admin API). At most
//! `[limits] max_admins` consoles at once; one more is answered 503.
//!
//! What a console gets: answers to its requests (parsed by
//! `shuttlegate_core::protocol::admin`; a bad one is answered `error` naming the field, and the
//! connection stays open), `command_result` for each command it sent once the device acks it
//! (or answers `get_status` with its `status_response`), and every `system_notification`
//! ([`crate::notices`]), the conditions still active first. Commands and sessions go through
//! the same court operations as the HTTP admin API and the cloud's commands
//! ([`CourtHandle::send_command`], `start_session`, `end_session`).
//!
//! One task per console, reading its socket, the court's change stream and the notifications in
//! one `select!`. Both streams are bounded broadcasts: a console that does not read falls
//! behind alone, loses the oldest messages and is told so (`lagged` {dropped}); a console
//! that cannot take a message for [`SEND_TIMEOUT`] is closed. Neither slows anything else. A
//! console from which nothing (not even a pong) is heard for `[limits] idle_timeout` is closed
//! (4003) and its seat given back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use shuttlegate_core::court::{CourtError, CourtEvent};
use shuttlegate_core::protocol::DeviceCommand;
use shuttlegate_core::protocol::admin::{AdminError, AdminRequest, parse_admin_request};
use shuttlegate_core::protocol::{CommandRequest, close};
use tokio::sync::broadcast::error::RecvError;

use super::admin_view::{self, CourtView, Sources};
use super::admission::RoleSeat;
use super::auth::{self, AuthGuard, Refusal, TokenQuery};
use super::device::ConnectionLimits;
use super::http::socket_limits;
use super::metrics::{ClientMetrics, Role};
use crate::config::SettingsHandle;
use crate::court::{CourtChange, CourtHandle, Delivered, RequestError};
use crate::notices::Notices;
use crate::service::Shutdown;
use crate::uplink::command::FirstOutcome;

/// A console that cannot take one message for this long is closed (its seat freed).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands one console waits for results of; past it the oldest is forgotten (its result is
/// then not sent to this console).
const AWAITED_MAX: usize = 256;

/// What the console endpoint needs.
pub struct AdminConsole {
    /// `auth.admin_token` and `limits.max_admins` are read at each handshake (a reload applies
    /// to the next console).
    pub settings: SettingsHandle,
    pub court: CourtHandle,
    /// What `system_status` and `device_list` read.
    pub sources: Sources,
    pub notices: Notices,
    /// Counts refusals and slows down addresses that keep failing (shared with the devices').
    pub guard: Arc<AuthGuard>,
    pub shutdown: Shutdown,
    /// Consoles connected now.
    pub connected: Arc<AtomicUsize>,
    /// `/metrics`: consoles connected and their messages, under the `admin` role.
    pub metrics: Arc<ClientMetrics>,
}

/// The console routes, to merge into the gateway's router when an admin token is configured.
pub fn routes(console: Arc<AdminConsole>) -> Router {
    Router::new()
        .route("/ws/admin/", get(admin_socket))
        .route("/ws/admin", get(admin_socket))
        .with_state(console)
}

async fn admin_socket(
    State(console): State<Arc<AdminConsole>>,
    Query(query): Query<TokenQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let given = query.presented(&headers);
    let settings = console.settings.current();
    let admitted = match (&settings.auth.admin_token, given) {
        (Some(expected), Some(given)) => expected.matches(given),
        _ => false,
    };
    if !admitted {
        let delay = console.guard.refused(Refusal::AdminToken, peer.ip());
        log::warn!(
            "refused an admin console from {peer}: {}",
            Refusal::AdminToken
        );
        auth::hold(delay, &console.shutdown).await;
        return auth::unauthorized();
    }
    if console.shutdown.token.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let max = settings.limits.max_admins;
    let Some(seat) = RoleSeat::take(&console.connected, max) else {
        log::warn!("refused an admin console from {peer}: {max} connected ([limits] max_admins)");
        console.metrics.capped(Role::Admin);
        let body = format!("{max} admin consoles connected already ([limits] max_admins)\n");
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    };
    let limits = ConnectionLimits::of(&settings);
    let upgrade = socket_limits(upgrade, &limits);
    let idle = limits.idle_timeout;
    upgrade.on_upgrade(move |socket| {
        let tasks = console.shutdown.tasks.clone();
        tasks.track_future(serve(console, socket, seat, peer, idle))
    })
}

/// The console went away or could not take a message in time: end its task.
struct Gone;

/// One connected console.
struct Console {
    console: Arc<AdminConsole>,
    socket: WebSocket,
    /// The gateway's ids of the commands this console sent, still unanswered, and whether each
    /// is a `get_status` (whose result carries the device's report).
    awaited: BTreeMap<u64, bool>,
}

/// Serves one console until it leaves, shutdown, or `idle` passes without a frame from it
/// (it is pinged every half of that: a browser answers by itself, so only a console that has
/// vanished — Wi-Fi gone, no FIN — is closed, and its seat given back).
async fn serve(
    console: Arc<AdminConsole>,
    socket: WebSocket,
    seat: RoleSeat,
    peer: SocketAddr,
    idle: Duration,
) {
    log::info!("admin console connected from {peer}");
    let _counted = console.metrics.connected(Role::Admin);
    let mut changes = console.court.subscribe();
    let (active, mut notices) = console.notices.subscribe();
    let stop = console.shutdown.token.clone();
    let mut this = Console {
        console,
        socket,
        awaited: BTreeMap::new(),
    };
    let mut ended = this.welcome(active).await;
    let mut pings = tokio::time::interval(idle / 2);
    pings.reset();
    let mut heard = tokio::time::Instant::now();
    while ended.is_ok() {
        // Each branch is cancel-safe: the socket's and the broadcasts' `recv` and the tick lose
        // nothing when another branch wins.
        ended = tokio::select! {
            () = stop.cancelled() => {
                this.close(close::GOING_AWAY, "shutting down").await;
                Err(Gone)
            }
            _ = pings.tick() => {
                if heard.elapsed() >= idle {
                    log::info!("admin console from {peer}: nothing heard for {idle:?}; closed");
                    this.close(close::IDLE, "idle").await;
                    Err(Gone)
                } else {
                    this.ping().await
                }
            }
            message = this.socket.recv() => {
                heard = tokio::time::Instant::now();
                this.frame(message).await
            }
            change = changes.recv() => this.court_change(change).await,
            notice = notices.recv() => match notice {
                Ok(text) => this.send(text.to_string()).await,
                Err(RecvError::Lagged(n)) => this.lagged("notifications", n).await,
                Err(RecvError::Closed) => Err(Gone),
            },
        };
    }
    drop(seat);
    log::info!("admin console from {peer} disconnected");
}

impl Console {
    /// `connection_established`, then the conditions still active.
    async fn welcome(&mut self, active: Vec<String>) -> Result<(), Gone> {
        let welcome = json!({
            "type": "connection_established",
            "role": "admin",
            "server_time": self.console.court.now(),
        });
        self.send(welcome.to_string()).await?;
        for notice in active {
            self.send(notice).await?;
        }
        Ok(())
    }

    /// One frame from the console (or its end).
    async fn frame(&mut self, message: Option<Result<Message, axum::Error>>) -> Result<(), Gone> {
        match message {
            Some(Ok(Message::Text(text))) => self.request(text.as_str()).await,
            Some(Ok(Message::Binary(_))) => {
                let refused = refusal(&AdminError {
                    request: None,
                    field: None,
                    message: "requests are JSON text frames".to_owned(),
                });
                self.send(refused.to_string()).await
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
            Some(Ok(Message::Close(_)) | Err(_)) | None => Err(Gone),
        }
    }

    async fn send(&mut self, text: String) -> Result<(), Gone> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::text(text))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Gone),
            Err(_) => {
                log::warn!("admin console not reading for {SEND_TIMEOUT:?}: closed");
                Err(Gone)
            }
        }
    }

    async fn ping(&mut self) -> Result<(), Gone> {
        match tokio::time::timeout(
            SEND_TIMEOUT,
            self.socket.send(Message::Ping(Default::default())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(Gone),
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // The console is leaving either way.
        let _ =
            tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Close(Some(frame)))).await;
    }

    async fn lagged(&mut self, of: &str, dropped: u64) -> Result<(), Gone> {
        self.console.metrics.lagged(Role::Admin, dropped);
        let notice = json!({"type": "lagged", "dropped": dropped, "of": of});
        self.send(notice.to_string()).await
    }

    async fn request(&mut self, text: &str) -> Result<(), Gone> {
        self.console
            .metrics
            .received(Role::Admin, "other", text.len());
        let reply = match parse_admin_request(text) {
            Err(e) => refusal(&e),
            Ok(request) => self.answer(request).await,
        };
        self.send(reply.to_string()).await
    }

    async fn answer(&mut self, request: AdminRequest) -> Value {
        let court = &self.console.court;
        match request {
            AdminRequest::Ping => json!({"type": "pong", "timestamp": court.now()}),
            AdminRequest::SystemStatus => {
                let load = admin_view::load_average().await;
                let view = court.read(CourtView::of).await;
                match view {
                    Ok(view) => {
                        admin_view::system_status(&self.console.sources, &view, load, court.now())
                    }
                    Err(e) => court_error("get_system_status", None, &e),
                }
            }
            AdminRequest::DeviceList => {
                let settings = self.console.settings.current();
                match court.read(CourtView::of).await {
                    Ok(view) => admin_view::device_list(
                        &settings,
                        &self.console.sources,
                        &view,
                        court.now(),
                    ),
                    Err(e) => court_error("get_device_list", None, &e),
                }
            }
            AdminRequest::SendCommand(request) => self.send_command(request).await,
            AdminRequest::StartSession {
                device_code,
                session_id,
            } => match court.start_session(&device_code, session_id).await {
                Ok(id) => {
                    session_response("start_session_response", &device_code, &id, "calibrating")
                }
                Err(e) => court_error("start_session", Some(&device_code), &e),
            },
            AdminRequest::EndSession { device_code } => match court.end_session(&device_code).await
            {
                Ok(id) => session_response("end_session_response", &device_code, &id, "stopping"),
                Err(e) => court_error("end_session", Some(&device_code), &e),
            },
            AdminRequest::BindUser {
                device_code,
                user_id,
            } => bind_user(self.console.clone(), device_code, user_id).await,
        }
    }

    /// Runs the command, and remembers its id to send its `command_result` when it comes.
    async fn send_command(&mut self, request: CommandRequest) -> Value {
        let device = request.device_code.clone();
        let get_status = request.command == DeviceCommand::GetStatus;
        let delivered = match self.console.court.send_command(request).await {
            Ok(delivered) => delivered,
            Err(e) => return court_error("send_command", Some(&device), &e),
        };
        let command_id = delivered.command_id();
        let mut reply = json!({
            "type": "send_command_response",
            "device_code": device,
            "command_id": command_id,
            "delivered": delivered.as_str(),
        });
        let settled = match &delivered {
            Delivered::Duplicate(first) => {
                reply["first"] = json!(FirstOutcome::of(first));
                first.success.is_some()
            }
            Delivered::Pushed { .. } | Delivered::Queued { .. } => false,
        };
        if !settled {
            self.await_result(command_id, get_status);
        }
        reply
    }

    fn await_result(&mut self, command_id: u64, get_status: bool) {
        self.awaited.insert(command_id, get_status);
        while self.awaited.len() > AWAITED_MAX {
            self.awaited.pop_first();
        }
    }

    async fn court_change(&mut self, change: Result<CourtChange, RecvError>) -> Result<(), Gone> {
        let event = match change {
            Ok(CourtChange::Event(event)) => event,
            Ok(CourtChange::Telemetry { .. }) => return Ok(()),
            Err(RecvError::Lagged(n)) => return self.lagged("court_changes", n).await,
            Err(RecvError::Closed) => return Err(Gone),
        };
        let CourtEvent::CommandDone {
            device,
            command_id,
            success,
            ..
        } = &*event
        else {
            return Ok(());
        };
        let Some(get_status) = self.awaited.remove(command_id) else {
            return Ok(());
        };
        let mut result = json!({
            "type": "command_result",
            "device_code": device,
            "command_id": command_id,
            "success": success,
        });
        let court = self.console.court.clone();
        if get_status && let Some(report) = status_report(&court, device, *command_id).await {
            result["response"] = report;
        }
        self.send(result.to_string()).await
    }
}

/// Binds a player to a device over its configured `user` (which wins again once the
/// configuration changes it); answered once journaled.
async fn bind_user(console: Arc<AdminConsole>, device_code: String, user_id: String) -> Value {
    let configured = (console.settings.current().devices.iter())
        .find(|d| d.code == device_code)
        .and_then(|d| d.user.clone());
    let court = &console.court;
    match court.bind_user(&device_code, &user_id, configured).await {
        Ok(()) => json!({
            "type": "bind_user_response",
            "device_code": device_code,
            "user_id": user_id,
            "success": true,
        }),
        Err(e) => court_error("bind_user", Some(&device_code), &e),
    }
}

/// The device's `status_response` that answered `command_id`, if it is still the latest.
async fn status_report(court: &CourtHandle, device: &str, command_id: u64) -> Option<Value> {
    let device = device.to_owned();
    let kept = court
        .read(move |c| c.device(&device)?.last_status_response.clone())
        .await
        .ok()??;
    let report: Value = serde_json::from_str(&kept).ok()?;
    (report["command_id"] == json!(command_id.to_string())).then_some(report)
}

fn session_response(kind: &str, device: &str, session_id: &str, status: &str) -> Value {
    json!({"type": kind, "device_code": device, "session_id": session_id, "status": status})
}

/// A request the parser refused.
fn refusal(e: &AdminError) -> Value {
    json!({"type": "error", "request": e.request, "field": e.field, "error": e.message})
}

/// A court operation that did not take effect: why, and a `code` for the page.
fn court_error(request: &str, device: Option<&str>, e: &RequestError) -> Value {
    let code = match e {
        RequestError::Refused(CourtError::UnknownDevice(_)) => "unknown_device",
        RequestError::Refused(_) => "conflict",
        RequestError::NotJournaled(_) | RequestError::Busy | RequestError::Stopped => "unavailable",
    };
    let field =
        matches!(e, RequestError::Refused(CourtError::UnknownDevice(_))).then_some("device_code");
    json!({
        "type": "error",
        "request": request,
        "device_code": device,
        "field": field,
        "code": code,
        "error": e.to_string(),
    })
}
