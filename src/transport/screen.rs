//! Courtside screens: `/ws/dashboard/` (SPEC §5), the live feed of the dashboard page.
//!
//! Anyone on the court LAN may watch the public view; with `?token=<admin token>` (or
//! `Authorization: Bearer`) a screen gets the staff view (peer addresses, firmware, error
//! texts: [`super::screen_view`]). A wrong token is the generic 401 of every refusal, counted
//! and slowed down per address. At most `[limits] max_screens` at once; one more is answered
//! 503 and counted (`client_cap_refusals_total{role="screen"}`).
//!
//! A screen gets `connection_established`, a `court_state` snapshot, then live: every `swing`
//! of the court (with its chain), `rally_update`, `session_update` {device_code, session_id,
//! status} for every session, `analysis_complete_notification`, and `court_state` again when
//! the court changed (checked every [`STATE_EVERY`]) and at least every [`STATE_REFRESH`]. It
//! may send `ping` (answered `pong`); it is pinged every half of `[limits] idle_timeout` and
//! closed (4003) when nothing is heard from it for the whole timeout.
//!
//! One feed task ([`run_feed`]) follows the live broadcast and the court's changes, folds the
//! [`Scoreboard`], renders each push once, and publishes it on the screens' own bounded
//! broadcast; each screen's task forwards from there into its own bounded queue
//! ([`super::push`]), so a stalled screen loses pushes (told with `lagged` {dropped}) and slows
//! nothing else: not ingest, not the device acks, not another screen or phone.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::admin_view::{CourtView, Sources};
use super::admission::RoleSeat;
use super::auth::{self, AuthGuard, Refusal, TokenQuery};
use super::device::ConnectionLimits;
use super::metrics::{ClientMetrics, Role};
use super::push::{self, Outgoing, WRITE_TIMEOUT, text};
use super::screen_view::{self, Scoreboard, View};
use crate::config::SettingsHandle;
use crate::court::{CourtChange, CourtHandle};
use crate::live::{Live, LiveEvent};
use crate::service::Shutdown;
use shuttlegate_core::court::CourtEvent;
use shuttlegate_core::protocol::close;

/// How often the feed checks whether the court changed (a new `court_state` if it did).
pub const STATE_EVERY: Duration = Duration::from_secs(1);
/// A `court_state` at least this often, changed or not (a screen that lost one catches up).
pub const STATE_REFRESH: Duration = Duration::from_secs(30);
/// Pushes the screens' broadcast holds for the slowest screen task before it lags.
const FEED_CAPACITY: usize = 1024;

/// One push for the screens, rendered once.
#[derive(Debug, Clone)]
pub enum ScreenPush {
    /// The same for every screen (`swing`, `rally_update`, `session_update`, summaries).
    Shared {
        json: Arc<str>,
        /// For a swing: when its completing batch was received.
        swing_received: Option<Instant>,
    },
    /// A `court_state`, in each view.
    State { public: Arc<str>, staff: Arc<str> },
}

/// The screens' broadcast and the scoreboard their snapshots include.
#[derive(Debug)]
pub struct ScreenFeed {
    tx: broadcast::Sender<ScreenPush>,
    board: Mutex<Scoreboard>,
}

impl Default for ScreenFeed {
    fn default() -> Self {
        ScreenFeed {
            tx: broadcast::channel(FEED_CAPACITY).0,
            board: Mutex::new(Scoreboard::default()),
        }
    }
}

impl ScreenFeed {
    fn publish(&self, push: ScreenPush) {
        let _no_screen_is_fine = self.tx.send(push);
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Scoreboard> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the screen endpoint and its feed need.
pub struct ScreenEndpoint {
    /// `limits.max_screens`, the admin token and the devices, read at each handshake/snapshot.
    pub settings: SettingsHandle,
    pub court: CourtHandle,
    /// The journal, sinks and connections the snapshot shows (admin_view's).
    pub sources: Sources,
    pub feed: Arc<ScreenFeed>,
    pub live: Live,
    /// Counts refusals and slows down addresses that keep failing (shared with every endpoint).
    pub guard: Arc<AuthGuard>,
    pub shutdown: Shutdown,
    /// Screens connected now, against `limits.max_screens`.
    pub connected: Arc<AtomicUsize>,
    /// `/metrics`: screens under the `screen` role.
    pub metrics: Arc<ClientMetrics>,
}

/// The screen routes, with and without the trailing slash.
pub fn routes(endpoint: Arc<ScreenEndpoint>) -> Router {
    Router::new()
        .route("/ws/dashboard/", get(screen_socket))
        .route("/ws/dashboard", get(screen_socket))
        .with_state(endpoint)
}

/// The feed: follows the live results and the court's changes until `stop`, and publishes the
/// screens' pushes. Restartable: a new run starts from the scoreboard as it was.
pub async fn run_feed(
    endpoint: Arc<ScreenEndpoint>,
    stop: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let mut live = endpoint.live.subscribe();
    let mut changes = endpoint.court.subscribe();
    let mut every = tokio::time::interval(STATE_EVERY);
    let mut last: Option<(Value, Instant)> = None;
    loop {
        // Each branch is cancel-safe: the broadcasts' `recv` and the tick lose nothing when
        // another branch wins.
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            event = live.recv() => match event {
                Ok(event) => endpoint.feed_live(&event),
                Err(broadcast::error::RecvError::Lagged(n)) => endpoint.feed_lagged(n, "live results"),
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            change = changes.recv() => match change {
                Ok(change) => endpoint.feed_change(&change),
                Err(broadcast::error::RecvError::Lagged(n)) => endpoint.feed_lagged(n, "court changes"),
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = every.tick() => {
                if endpoint.feed.tx.receiver_count() > 0 {
                    endpoint.feed_state(&mut last).await;
                }
            }
        }
    }
}

impl ScreenEndpoint {
    fn feed_live(&self, event: &LiveEvent) {
        let (json, swing_received) = match event {
            LiveEvent::Swing { json, received, .. } => {
                if let Ok(swing) = serde_json::from_str::<Value>(json) {
                    self.feed.board().handle_swing(&swing);
                }
                (json.clone(), *received)
            }
            LiveEvent::Rally { json } => {
                if let Ok(update) = serde_json::from_str::<Value>(json) {
                    self.feed.board().handle_rally(&update);
                }
                (json.clone(), None)
            }
            LiveEvent::Summary { json, .. } => (json.clone(), None),
            LiveEvent::DeviceStatus { .. } => return,
        };
        self.feed.publish(ScreenPush::Shared {
            json,
            swing_received,
        });
    }

    /// `session_update` for every session's state change (the court_state follows).
    fn feed_change(&self, change: &CourtChange) {
        let CourtChange::Event(event) = change else {
            return;
        };
        if let CourtEvent::SessionState {
            device,
            session_id,
            state,
            ts,
            ..
        } = event.as_ref()
        {
            let update = json!({
                "type": "session_update",
                "device_code": device,
                "session_id": session_id,
                "status": state.as_str(),
                "timestamp": ts,
            });
            self.feed.publish(ScreenPush::Shared {
                json: update.to_string().into(),
                swing_received: None,
            });
        }
    }

    /// The feed fell behind a broadcast: every screen misses those pushes.
    fn feed_lagged(&self, n: u64, of: &str) {
        log::warn!("screen feed: {n} {of} lost (the feed fell behind)");
        self.metrics.lagged(Role::Screen, n);
    }

    /// Publishes a `court_state` when the court changed since `last` or it is time to refresh.
    async fn feed_state(&self, last: &mut Option<(Value, Instant)>) {
        let Some([public, staff]) = self.snapshots().await else {
            return;
        };
        let compared = screen_view::without_ts(&staff);
        let due = match last {
            Some((before, at)) => *before != compared || at.elapsed() >= STATE_REFRESH,
            None => true,
        };
        if due {
            self.feed.publish(ScreenPush::State {
                public: public.to_string().into(),
                staff: staff.to_string().into(),
            });
            *last = Some((compared, Instant::now()));
        }
    }

    /// `court_state` now, public and staff; `None` (logged) when the court cannot be read.
    async fn snapshots(&self) -> Option<[Value; 2]> {
        let view = match self.court.read(CourtView::of).await {
            Ok(view) => view,
            Err(e) => {
                log::warn!("screen feed: the court could not be read: {e}");
                return None;
            }
        };
        let settings = self.settings.current();
        let board = self.feed.board().clone();
        let now = self.court.now();
        let state = |v| screen_view::court_state(v, &settings, &self.sources, &view, &board, now);
        Some([state(View::Public), state(View::Staff)])
    }
}

async fn screen_socket(
    State(endpoint): State<Arc<ScreenEndpoint>>,
    Query(query): Query<TokenQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let settings = endpoint.settings.current();
    let view = match query.presented(&headers) {
        None => View::Public,
        Some(given) => match &settings.auth.admin_token {
            Some(expected) if expected.matches(given) => View::Staff,
            _ => {
                let delay = endpoint.guard.refused(Refusal::AdminToken, peer.ip());
                log::warn!(
                    "refused a staff screen from {peer}: {}",
                    Refusal::AdminToken
                );
                auth::hold(delay, &endpoint.shutdown).await;
                return auth::unauthorized();
            }
        },
    };
    if endpoint.shutdown.token.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let max = settings.limits.max_screens;
    let Some(slot) = RoleSeat::take(&endpoint.connected, max) else {
        log::warn!("refused a screen from {peer}: {max} connected ([limits] max_screens)");
        endpoint.metrics.capped(Role::Screen);
        let body = format!("{max} screens connected already ([limits] max_screens)\n");
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    };
    let limits = ConnectionLimits::of(&settings);
    let upgrade = super::http::socket_limits(upgrade, &limits);
    upgrade.on_upgrade(move |socket| {
        let tasks = endpoint.shutdown.tasks.clone();
        tasks.track_future(async move {
            log::info!("{} screen connected from {peer}", view.as_str());
            let screen = Screen {
                client: push::Client {
                    role: Role::Screen,
                    metrics: endpoint.metrics.clone(),
                    dropped: Arc::new(AtomicU64::new(0)),
                },
                endpoint,
                view,
            };
            screen
                .serve(socket, limits.outbound_queue, limits.idle_timeout)
                .await;
            drop(slot);
            log::info!("screen from {peer} disconnected");
        })
    })
}

/// One connected screen.
struct Screen {
    endpoint: Arc<ScreenEndpoint>,
    view: View,
    client: push::Client,
}

/// Why a screen's connection ended, for its close frame.
enum End {
    Shutdown,
    Idle,
    ByScreen,
}

impl Screen {
    async fn serve(self, socket: WebSocket, queue: usize, idle: Duration) {
        let _counted = self.endpoint.metrics.connected(Role::Screen);
        let (sink, mut stream) = socket.split();
        let (tx, rx) = mpsc::channel(queue.max(1));
        let writer = tokio::spawn(push::write(sink, rx, self.client.clone()));
        // Subscribed before the snapshot, so nothing published after it is missed.
        let mut feed = self.endpoint.feed.tx.subscribe();
        let welcome = json!({
            "type": "connection_established",
            "role": "screen",
            "view": self.view.as_str(),
            "server_time": self.endpoint.court.now(),
        });
        let _ = tx.send(text(&welcome).into()).await;
        if let Some(states) = self.endpoint.snapshots().await {
            let [public, staff] = states;
            let state = if self.view == View::Staff {
                staff
            } else {
                public
            };
            let _ = tx.send(text(&state).into()).await;
        }
        let mut pings = tokio::time::interval(idle / 2);
        pings.reset();
        let mut heard = tokio::time::Instant::now();
        let shutdown = self.endpoint.shutdown.token.clone();
        let end = loop {
            tokio::select! {
                () = shutdown.cancelled() => break End::Shutdown,
                _ = pings.tick() => {
                    if heard.elapsed() >= idle {
                        break End::Idle;
                    }
                    // A screen whose queue is full is not reading: its ping can wait for the
                    // next tick (and is not a push it lost).
                    let _ = tx.try_send(Message::Ping(Default::default()).into());
                }
                frame = stream.next() => {
                    heard = tokio::time::Instant::now();
                    match frame {
                        Some(Ok(Message::Text(t))) => {
                            self.endpoint.metrics.received(Role::Screen, "other", t.len());
                            // The screen's own answers wait for room: it slows only itself.
                            if tx.send(text(&self.answer(t.as_str())).into()).await.is_err() {
                                break End::ByScreen;
                            }
                        }
                        Some(Ok(Message::Close(_)) | Err(_)) | None => break End::ByScreen,
                        Some(Ok(_)) => {}
                    }
                }
                push = feed.recv() => match push {
                    Ok(push) => self.client.offer(&tx, self.outgoing(push)),
                    Err(broadcast::error::RecvError::Lagged(n)) => self.client.lost(n),
                    Err(broadcast::error::RecvError::Closed) => break End::Shutdown,
                },
            }
        };
        let close = match end {
            End::Shutdown => Some((close::GOING_AWAY, "gateway shutting down")),
            End::Idle => Some((close::IDLE, "idle")),
            End::ByScreen => None,
        };
        if let Some((code, reason)) = close {
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            // A screen whose queue stays full for this long gets no close frame, only the drop.
            let _ = tokio::time::timeout(Duration::from_secs(5), tx.send(frame.into())).await;
        }
        drop(tx);
        match tokio::time::timeout(WRITE_TIMEOUT, writer).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("screen: writer task failed: {e}"),
            Err(_) => log::warn!("screen: not reading; dropped"),
        }
    }

    /// A feed push as this screen's view shows it.
    fn outgoing(&self, push: ScreenPush) -> Outgoing {
        match push {
            ScreenPush::Shared {
                json,
                swing_received,
            } => Outgoing {
                message: Message::Text(json.as_ref().into()),
                swing_received,
            },
            ScreenPush::State { public, staff } => {
                let state = if self.view == View::Staff {
                    staff
                } else {
                    public
                };
                Message::Text(state.as_ref().into()).into()
            }
        }
    }

    /// The reply to one text frame: screens only listen, and may ping.
    fn answer(&self, text: &str) -> Value {
        let request: Value = match serde_json::from_str(text) {
            Ok(request) => request,
            Err(e) => {
                return json!({"type": "error", "field": null, "error": format!("not JSON: {e}")});
            }
        };
        match request["type"].as_str() {
            Some("ping") => json!({"type": "pong", "timestamp": self.endpoint.court.now()}),
            Some(other) => json!({
                "type": "error",
                "field": "type",
                "error": format!("`{}` is not a screen message (ping)", shuttlegate_core::protocol::untrusted::clip(other)),
            }),
            None => json!({"type": "error", "field": "type", "error": "`type` is missing"}),
        }
    }
}
