//! Players' phones: `/ws/miniprogram/{user_id}/` (SPEC §5), the seeds' mini-program endpoint.
//!
//! A phone proves itself with a JWT the cloud signed ([`super::jwt`]); a refusal is the same 401
//! as every other handshake's, counted as `bad_jwt` and slowed down per address. Accepted, the
//! phone gets `connection_established`, then:
//! - pushes: the `swing`s of the devices bound to its user, `rally_update`s of the court,
//!   `session_update` {session_id, status} on each state change of those devices' sessions,
//!   and `analysis_complete_notification` when one of their sessions is summarised;
//! - answers: `ping`, `session_status`, `start_session` / `end_session` (through the court
//!   driver, like the admin API), `session_history` and `get_analysis` (from the journal:
//!   [`super::phone_history`]), and `error` naming the field of a bad request;
//! - on connect during a session, that session's swings so far from the journal, then live.
//!
//! The user's devices are those bound to it ([`devices_of`]: the admin's binding, else
//! `[[devices]] user`), read at connect and again when a binding or the configuration changes.
//!
//! Fan-out never slows ingest or another phone: live results and court changes come from
//! bounded broadcasts (publishing never waits), and each phone has its own bounded queue
//! (`limits.outbound_queue`) drained by its own writer task. What a phone is too slow to take
//! is dropped and counted, and it is told how much with a `lagged` {dropped} notice as soon as
//! it reads again. The socket is closed with 4001 "token expired" when its token expires.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::admission::RoleSeat;
use super::auth::{self, AuthGuard, Refusal, TokenQuery};
use super::device::ConnectionLimits;
use super::jwt::{self, LEEWAY_S, Verified};
use super::metrics::{ClientMetrics, Role};
use super::phone_history;
use super::push::{self, Outgoing, WRITE_TIMEOUT, text};
use crate::config::{Settings, SettingsHandle};
use crate::court::{CourtChange, CourtHandle};
use crate::journal::Journal;
use crate::live::{Live, LiveEvent};
use crate::service::Shutdown;
use shuttlegate_core::court::{Court, CourtEvent, Session};
use shuttlegate_core::protocol::phone::{PhoneError, PhoneRequest};
use shuttlegate_core::protocol::untrusted::clip;
use shuttlegate_core::protocol::validate::{self, IdKind};

/// Close code of a socket whose token expired (the seeds' application range, 4000–4999).
pub const TOKEN_EXPIRED: u16 = 4001;

/// What the phone endpoint needs.
pub struct PhoneEndpoint {
    /// JWT rules, device bindings and limits, read at each handshake and push (reloadable).
    pub settings: SettingsHandle,
    pub court: CourtHandle,
    pub live: Live,
    /// Summaries and swings read back (`get_analysis`, `session_history`, catching up).
    pub journal: Journal,
    /// Counts refusals and slows down addresses that keep failing (shared with devices, admin).
    pub guard: Arc<AuthGuard>,
    pub shutdown: Shutdown,
    /// Phones connected now, against `limits.max_phones`.
    pub connected: Arc<AtomicUsize>,
    /// `/metrics`: phones connected and their messages, under the `phone` role.
    pub metrics: Arc<ClientMetrics>,
}

/// The phone routes, with and without the trailing slash.
pub fn routes(endpoint: Arc<PhoneEndpoint>) -> Router {
    Router::new()
        .route("/ws/miniprogram/{user_id}/", get(phone_socket))
        .route("/ws/miniprogram/{user_id}", get(phone_socket))
        .with_state(endpoint)
}

/// The devices whose swings and sessions belong to `user`: bound by the admin
/// (`CourtHandle::bind_user`) or, without a binding that still holds, by `[[devices]] user`.
pub fn devices_of(settings: &Settings, court: &Court, user: &str) -> Vec<String> {
    settings
        .devices
        .iter()
        .filter(|d| {
            let configured = d.user.as_deref();
            let now = court
                .device(&d.code)
                .map_or(configured, |state| state.user(configured));
            now == Some(user)
        })
        .map(|d| d.code.clone())
        .collect()
}

/// [`devices_of`] through the court driver.
async fn read_devices_of(endpoint: &PhoneEndpoint, user: &str) -> Vec<String> {
    let settings = endpoint.settings.current();
    let user = user.to_owned();
    endpoint
        .court
        .read(move |court| devices_of(&settings, court, &user))
        .await
        .unwrap_or_default()
}

async fn phone_socket(
    State(endpoint): State<Arc<PhoneEndpoint>>,
    Path(user_id): Path<String>,
    Query(query): Query<TokenQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let token = query.presented(&headers);
    let settings = endpoint.settings.current();
    let now_s = endpoint.court.now() / 1000;
    let verified = validate::id(IdKind::UserId, "user_id", &user_id)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            jwt::verify(settings.auth.jwt.as_ref(), token, &user_id, now_s)
                .map_err(|e| e.to_string())
        });
    let verified = match verified {
        Ok(verified) => verified,
        Err(why) => return refuse(&endpoint, &user_id, peer, &why).await,
    };
    if endpoint.shutdown.token.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let Some(slot) = RoleSeat::take(&endpoint.connected, settings.limits.max_phones) else {
        log::warn!(
            "phone of `{user_id}` from {peer} refused: limits.max_phones ({}) connected",
            settings.limits.max_phones
        );
        endpoint.metrics.capped(Role::Phone);
        return (StatusCode::SERVICE_UNAVAILABLE, "too many phones\n").into_response();
    };
    let limits = ConnectionLimits::of(&settings);
    let upgrade = super::http::socket_limits(upgrade, &limits);
    upgrade.on_upgrade(move |socket| {
        let tasks = endpoint.shutdown.tasks.clone();
        tasks.track_future(async move {
            log::info!("phone of `{user_id}` connected from {peer}");
            let mine = read_devices_of(&endpoint, &user_id).await;
            let phone = Phone {
                endpoint,
                user: user_id,
                mine,
                dropped: Arc::new(AtomicU64::new(0)),
            };
            phone.serve(socket, verified, limits.outbound_queue).await;
            drop(slot);
        })
    })
}

/// Logs and counts a refused phone, holds the answer for an address that keeps failing, and
/// answers the generic 401.
async fn refuse(endpoint: &PhoneEndpoint, user_id: &str, peer: SocketAddr, why: &str) -> Response {
    let delay = endpoint.guard.refused(Refusal::BadJwt, peer.ip());
    log::warn!(
        "refused phone of `{}` from {peer}: {}: {why}",
        clip(user_id),
        Refusal::BadJwt
    );
    auth::hold(delay, &endpoint.shutdown).await;
    auth::unauthorized()
}

/// One connected phone.
struct Phone {
    endpoint: Arc<PhoneEndpoint>,
    user: String,
    /// The user's devices: read at connect, again when a binding or the configuration changes
    /// (not per push: the fan-out does not take the court's lock).
    mine: Vec<String>,
    /// Pushes dropped because the phone's queue was full, not yet reported to it.
    dropped: Arc<AtomicU64>,
}

/// Why a phone's connection ended, for its close frame.
enum End {
    Expired,
    Shutdown,
    ByPhone,
}

impl Phone {
    async fn serve(mut self, socket: WebSocket, verified: Verified, queue: usize) {
        let _counted = self.endpoint.metrics.connected(Role::Phone);
        let (sink, mut stream) = socket.split();
        let (tx, rx) = mpsc::channel(queue.max(1));
        let writer = tokio::spawn(push::write(sink, rx, self.client()));
        // Subscribed before the welcome, so nothing published after it is missed.
        let mut live = self.endpoint.live.subscribe();
        let mut changes = self.endpoint.court.subscribe();
        let mut reloads = self.endpoint.settings.subscribe();
        let welcome = json!({
            "type": "connection_established",
            "user_id": self.user,
            "message": "connected to the court gateway",
            "timestamp": self.endpoint.court.now(),
        });
        let _ = tx.send(text(&welcome).into()).await;
        let mut caught_up = self.catch_up(&tx).await;
        let expiry = tokio::time::sleep(self.until_expiry(&verified));
        tokio::pin!(expiry);
        let shutdown = self.endpoint.shutdown.token.clone();
        let end = loop {
            tokio::select! {
                () = shutdown.cancelled() => break End::Shutdown,
                () = &mut expiry => break End::Expired,
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(t))) => {
                        self.endpoint.metrics.received(Role::Phone, "other", t.len());
                        let reply = self.answer(t.as_str()).await;
                        // The phone's own answers wait for room: a phone that asks but does
                        // not read slows only itself.
                        if tx.send(text(&reply).into()).await.is_err() {
                            break End::ByPhone;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break End::ByPhone,
                    Some(Ok(_)) => {}
                },
                event = live.recv() => match event {
                    Ok(event) => {
                        if caught_up.already_sent(&event) {
                            continue;
                        }
                        if let Some(push) = self.live_push(&event) {
                            self.client().offer(&tx, push);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => self.lost(n),
                    Err(broadcast::error::RecvError::Closed) => break End::Shutdown,
                },
                Ok(()) = reloads.changed() => self.mine = read_devices_of(&self.endpoint, &self.user).await,
                change = changes.recv() => match change {
                    Ok(change) => {
                        if let CourtChange::Event(event) = &change
                            && matches!(event.as_ref(), CourtEvent::UserBound { .. })
                        {
                            self.mine = read_devices_of(&self.endpoint, &self.user).await;
                        }
                        if let Some(push) = self.court_push(&change) {
                            self.client().offer(&tx, push.into());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => self.lost(n),
                    Err(broadcast::error::RecvError::Closed) => break End::Shutdown,
                },
            }
        };
        let close = match end {
            End::Expired => Some((TOKEN_EXPIRED, "token expired")),
            End::Shutdown => Some((
                shuttlegate_core::protocol::close::GOING_AWAY,
                "gateway shutting down",
            )),
            End::ByPhone => None,
        };
        if let Some((code, reason)) = close {
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            // A phone whose queue stays full for this long gets no close frame, only the drop.
            let _ = tokio::time::timeout(Duration::from_secs(5), tx.send(frame.into())).await;
        }
        drop(tx);
        match tokio::time::timeout(WRITE_TIMEOUT, writer).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("phone of `{}`: writer task failed: {e}", self.user),
            Err(_) => log::warn!("phone of `{}`: not reading; dropped", self.user),
        }
        log::info!("phone of `{}` disconnected", self.user);
    }

    /// Time left until the token expires (with the leeway it was accepted under).
    fn until_expiry(&self, verified: &Verified) -> Duration {
        let deadline_ms = verified
            .expires_at
            .saturating_add(LEEWAY_S)
            .saturating_mul(1000);
        let left = deadline_ms.saturating_sub(self.endpoint.court.now());
        Duration::from_millis(u64::try_from(left).unwrap_or(0))
    }

    /// This phone as its writer and the fan-out count it.
    fn client(&self) -> push::Client {
        push::Client {
            role: Role::Phone,
            metrics: self.endpoint.metrics.clone(),
            dropped: self.dropped.clone(),
        }
    }

    fn lost(&self, n: u64) {
        self.client().lost(n);
    }

    /// The push a live result is for this phone, if it is for it.
    fn live_push(&self, event: &LiveEvent) -> Option<Outgoing> {
        match event {
            LiveEvent::Swing {
                device,
                json,
                received,
            } => self.is_mine(device).then(|| Outgoing {
                message: Message::Text(json.as_ref().into()),
                swing_received: *received,
            }),
            LiveEvent::Summary { device, json } => self
                .is_mine(device)
                .then(|| Message::Text(json.as_ref().into()).into()),
            LiveEvent::Rally { json } => Some(Message::Text(json.as_ref().into()).into()),
            LiveEvent::DeviceStatus { .. } => None,
        }
    }

    /// `session_update` for a state change of one of this user's sessions.
    fn court_push(&self, change: &CourtChange) -> Option<Message> {
        let CourtChange::Event(event) = change else {
            return None;
        };
        let CourtEvent::SessionState {
            device,
            session_id,
            state,
            ts,
            ..
        } = event.as_ref()
        else {
            return None;
        };
        self.is_mine(device).then(|| {
            text(&json!({
                "type": "session_update",
                "device_code": device,
                "session_id": session_id,
                "status": state.as_str(),
                "timestamp": ts,
            }))
        })
    }

    fn is_mine(&self, device: &str) -> bool {
        self.mine.iter().any(|d| d == device)
    }

    /// The reply to one text frame.
    async fn answer(&self, text: &str) -> Value {
        let request = match PhoneRequest::parse(text) {
            Ok(request) => request,
            Err(e) => return error_reply(&e),
        };
        match request {
            PhoneRequest::Ping => json!({"type": "pong", "timestamp": self.endpoint.court.now()}),
            PhoneRequest::SessionStatus { session_id } => self.session_status(session_id).await,
            PhoneRequest::StartSession {
                device_code,
                session_id,
            } => self.start_session(device_code, session_id).await,
            PhoneRequest::EndSession { device_code } => self.end_session(device_code).await,
            PhoneRequest::SessionHistory { limit } => self.session_history(limit).await,
            PhoneRequest::GetAnalysis { session_id } => self.analysis(session_id).await,
        }
    }

    /// Runs a blocking journal read with the user's devices; `None` (logged) if it failed.
    async fn read_journal<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Journal, &[String]) -> Result<T, crate::journal::JournalError>
        + Send
        + 'static,
    ) -> Option<T> {
        let (journal, mine) = (self.endpoint.journal.clone(), self.mine.clone());
        match tokio::task::spawn_blocking(move || read(&journal, &mine)).await {
            Ok(Ok(found)) => Some(found),
            Ok(Err(e)) => {
                log::error!("phone of `{}`: journal read failed: {e}", self.user);
                None
            }
            Err(e) => {
                log::error!("phone of `{}`: journal read panicked: {e}", self.user);
                None
            }
        }
    }

    async fn session_history(&self, limit: usize) -> Value {
        match self
            .read_journal(move |journal, mine| phone_history::history(journal, mine, limit))
            .await
        {
            Some(sessions) => json!({
                "type": "session_history_response",
                "count": sessions.len(),
                "sessions": sessions,
            }),
            None => unreadable("session_history"),
        }
    }

    /// `get_analysis`: the session's `analysis_complete_notification` itself.
    async fn analysis(&self, session_id: String) -> Value {
        let wanted = session_id.clone();
        match self
            .read_journal(move |journal, mine| phone_history::summary(journal, mine, &wanted))
            .await
        {
            Some(Some(summary)) => summary,
            Some(None) => error_reply(&PhoneError {
                field: "session_id".into(),
                error: format!(
                    "no analysis of `{session_id}` for your devices (not finished yet, or not on this gateway)"
                ),
            }),
            None => unreadable("get_analysis"),
        }
    }

    /// Sends the swings of the user's open sessions so far, from the journal; what it sent, so
    /// the same swings arriving live meanwhile are not sent twice.
    async fn catch_up(&self, tx: &mpsc::Sender<Outgoing>) -> CaughtUp {
        let mine = self.mine.clone();
        let open: Vec<(String, String)> = self
            .endpoint
            .court
            .read(move |court| {
                mine.iter()
                    .filter_map(|d| Some((d.clone(), court.device(d)?.open_session()?.id.clone())))
                    .collect()
            })
            .await
            .unwrap_or_default();
        let mut caught_up = CaughtUp::default();
        for (device, session_id) in open {
            let (d, s) = (device.clone(), session_id.clone());
            let swings = self
                .read_journal(move |journal, _| phone_history::swings_so_far(journal, &d, &s))
                .await
                .unwrap_or_default();
            for swing in swings {
                let id = swing["id"].as_u64().unwrap_or(0);
                caught_up.newest.insert(device.clone(), id);
                // Waits for room, like an answer: these come before any live push.
                if tx.send(text(&swing).into()).await.is_err() {
                    return caught_up;
                }
            }
        }
        caught_up
    }
    /// A session the court holds (open or recently ended), else one the journal still
    /// remembers (its state changes): older sessions of the user are answered too.
    async fn session_status(&self, session_id: String) -> Value {
        let mine = self.mine.clone();
        let wanted = session_id.clone();
        let held = self
            .endpoint
            .court
            .read(move |court| {
                mine.iter()
                    .filter_map(|d| court.device(d)?.session(&wanted).cloned())
                    .next()
            })
            .await
            .ok()
            .flatten();
        let info = match held {
            Some(session) => Some(session_info(&session)),
            None => {
                let wanted = session_id.clone();
                let Some(stored) = self
                    .read_journal(move |journal, mine| {
                        phone_history::session(journal, mine, &wanted)
                    })
                    .await
                else {
                    return unreadable("session_status");
                };
                stored.map(|s| stored_session_info(&session_id, &s))
            }
        };
        match info {
            Some(info) => json!({
                "type": "session_status_response",
                "session_id": session_id,
                "session_info": info,
            }),
            None => error_reply(&PhoneError {
                field: "session_id".into(),
                error: format!("no session `{session_id}` of yours is known to this gateway"),
            }),
        }
    }

    /// The device a start or end is for: the one named (if it is the user's), or the user's
    /// only device.
    fn device_for(&self, named: Option<String>) -> Result<String, PhoneError> {
        let mine = &self.mine;
        let refuse = |error: String| PhoneError {
            field: "device_code".into(),
            error,
        };
        match (named, mine.as_slice()) {
            (Some(code), _) if mine.contains(&code) => Ok(code),
            (Some(code), _) => Err(refuse(format!("`{code}` is not bound to you"))),
            (None, [only]) => Ok(only.clone()),
            (None, []) => Err(refuse("no device is bound to you".into())),
            (None, _) => Err(refuse(format!(
                "you have {} devices: name one ({})",
                mine.len(),
                mine.join(", ")
            ))),
        }
    }

    async fn start_session(&self, named: Option<String>, session_id: Option<String>) -> Value {
        let device = match self.device_for(named) {
            Ok(device) => device,
            Err(e) => return error_reply(&e),
        };
        match self.endpoint.court.start_session(&device, session_id).await {
            Ok(id) => session_reply("start_session_response", &device, &id, "calibrating"),
            Err(e) => court_refusal("start_session", &device, &e),
        }
    }

    async fn end_session(&self, named: Option<String>) -> Value {
        let device = match self.device_for(named) {
            Ok(device) => device,
            Err(e) => return error_reply(&e),
        };
        match self.endpoint.court.end_session(&device).await {
            Ok(id) => session_reply("end_session_response", &device, &id, "stopping"),
            Err(e) => court_refusal("end_session", &device, &e),
        }
    }
}

fn error_reply(e: &PhoneError) -> Value {
    json!({"type": "error", "error": e.error, "field": e.field})
}

fn unreadable(request: &str) -> Value {
    json!({"type": "error", "request": request, "error": "the gateway could not read its journal; try again"})
}

fn session_reply(kind: &str, device: &str, session_id: &str, status: &str) -> Value {
    json!({"type": kind, "device_code": device, "session_id": session_id, "status": status})
}

/// A start or end the court refused or could not make durable.
fn court_refusal(request: &str, device: &str, e: &crate::court::RequestError) -> Value {
    json!({"type": "error", "request": request, "device_code": device, "error": e.to_string()})
}

/// `session_info` {id, status, start_time, end_time}: times in RFC 3339 UTC, as the seed
/// backend's Django serialised them.
fn session_info(session: &Session) -> Value {
    json!({
        "id": session.id,
        "device_code": session.device,
        "status": session.state.as_str(),
        "start_time": rfc3339(session.start_ms),
        "end_time": session.end_ms.and_then(rfc3339),
    })
}

fn stored_session_info(session_id: &str, session: &phone_history::StoredSession) -> Value {
    json!({
        "id": session_id,
        "device_code": session.device,
        "status": session.state.as_str(),
        "start_time": rfc3339(session.start_ms),
        "end_time": session.end_ms.and_then(rfc3339),
    })
}

fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The newest journal id of each device's swings sent while catching up.
#[derive(Debug, Default)]
struct CaughtUp {
    newest: std::collections::HashMap<String, u64>,
}

impl CaughtUp {
    /// Whether a live swing was already sent from the journal (it was journaled before the
    /// catch-up read it, and published after this phone subscribed).
    fn already_sent(&mut self, event: &LiveEvent) -> bool {
        let LiveEvent::Swing { device, json, .. } = event else {
            return false;
        };
        let Some(&newest) = self.newest.get(device) else {
            return false;
        };
        let id = serde_json::from_str::<Value>(json)
            .ok()
            .and_then(|v| v["id"].as_u64())
            .unwrap_or(u64::MAX);
        if id > newest {
            // Live swings come in journal order: nothing older follows.
            self.newest.remove(device);
            return false;
        }
        true
    }
}
