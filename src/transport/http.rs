//! The one HTTP listener (`[http] listen`): every WebSocket endpoint, and later the pages and
//! `/metrics`, on one port.
//!
//! Device handshakes are checked here, before the upgrade: an unknown device or a wrong token
//! gets HTTP 401 and a log line with the device code and the peer address, never the token.
//! Accepted sockets get tungstenite limits sized for a Pi (see [`socket_limits`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;

use super::auth::{DeviceDirectory, presented_token};
use super::connections::Connections;
use super::device::{self, ConnectionLimits, DeviceHandler};
use crate::service::Shutdown;

/// What the device endpoint needs.
pub struct DeviceEndpoint {
    pub directory: DeviceDirectory,
    pub connections: Arc<Connections>,
    pub limits: ConnectionLimits,
    pub handler: Arc<dyn DeviceHandler>,
    pub shutdown: Shutdown,
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The gateway's routes.
pub fn router(devices: Arc<DeviceEndpoint>) -> Router {
    Router::new()
        .route("/ws/esp32/{code}/", get(device_socket))
        .route("/ws/esp32/{code}", get(device_socket))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(devices)
}

/// Serves `router` on `listener` until `shutdown` begins.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.token.cancelled().await })
    .await
}

/// Per-socket buffers and limits. tungstenite's defaults (128 KiB read buffer per connection,
/// unlimited write buffer, 64 MiB messages) are sized for servers with memory to spare; a Pi
/// with a hundred hubs is not one.
pub fn socket_limits(upgrade: WebSocketUpgrade, limits: &ConnectionLimits) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
}

async fn device_socket(
    State(endpoint): State<Arc<DeviceEndpoint>>,
    Path(code): Path<String>,
    Query(query): Query<TokenQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = presented_token(query.token.as_deref(), authorization);
    if let Err(refusal) = endpoint.directory.admit(&code, token) {
        log::warn!("refused device `{code}` from {peer}: {refusal}");
        return (StatusCode::UNAUTHORIZED, format!("{refusal}\n")).into_response();
    }
    if endpoint.shutdown.token.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let upgrade = socket_limits(upgrade, &endpoint.limits);
    upgrade.on_upgrade(move |socket| {
        let endpoint = endpoint.clone();
        let (handle, end) = endpoint
            .connections
            .open(&code, endpoint.limits.outbound_queue);
        log::info!("device {code} connected from {peer}");
        let accepted = device::Accepted {
            device: code,
            peer,
            socket,
            handle,
            end,
        };
        let task = device::serve(
            endpoint.handler.clone(),
            accepted,
            endpoint.limits.clone(),
            endpoint.shutdown.token.clone(),
        );
        endpoint.shutdown.tasks.track_future(task)
    })
}
