//! One ESP32 hub's WebSocket connection: the read loop, ordered replies, limits and closing.
//!
//! One task per connection owns the socket and does both directions, so there is no shared sink
//! to lock. It reads messages while earlier ones are still on their way to fsync: each message
//! becomes a reply *future* in a bounded, ordered queue, so replies go out in the order the
//! messages came in, a batch's reply goes out only once it is durable, and a slow fsync never
//! stops the connection from reading (up to `max_in_flight`, then the socket is left unread
//! and TCP pushes back on the device).
//!
//! Writes are bounded by a timeout and the outbound queue is bounded too: a client that does not
//! read is disconnected with a reason, never allowed to stall anything but itself.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::StreamExt;
use futures_util::future::{Join, Ready, join};
use futures_util::stream::FuturesOrdered;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite;

use super::connections::{ConnEnd, ConnHandle};
use super::limits::{RateLimiter, Verdict};
use super::metrics::{ClientMetrics, OTHER_TYPE, Role};
use crate::config::Settings;

use shuttlegate_core::protocol::{
    DeviceMessage, GatewayMessage, ProtocolError, close, parse_device_message,
};

/// Limits of one device connection.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    /// Consecutive over-limit seconds before closing with 4008.
    pub rate_strikes_to_close: u32,
    /// No message for this long: the device is offline and the connection closed.
    pub idle_timeout: Duration,
    /// Outbound messages queued for a client before it counts as not reading.
    pub outbound_queue: usize,
    /// Messages read but not yet answered (waiting for fsync) before reading pauses.
    pub max_in_flight: usize,
    /// A single write to the socket taking longer than this closes the connection.
    pub write_timeout: Duration,
}

impl ConnectionLimits {
    /// The `[limits]` a connection runs under.
    pub fn of(settings: &Settings) -> ConnectionLimits {
        let limits = &settings.limits;
        ConnectionLimits {
            max_message_bytes: limits.max_message_bytes,
            messages_per_second: limits.messages_per_second,
            rate_strikes_to_close: limits.rate_limit_strikes,
            idle_timeout: limits.idle_timeout,
            outbound_queue: limits.outbound_queue,
            ..ConnectionLimits::default()
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_message_bytes: 64 * 1024,
            messages_per_second: 200,
            rate_strikes_to_close: 5,
            idle_timeout: Duration::from_secs(30),
            outbound_queue: 256,
            max_in_flight: 64,
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// A reply that may still be waiting for its data to become durable. `None`: nothing to send.
pub type PendingReply = Pin<Box<dyn Future<Output = Option<GatewayMessage>> + Send>>;

/// What the connection needs from the rest of the gateway: message handling is elsewhere, so
/// this loop only knows frames, limits and order.
pub trait DeviceHandler: Send + Sync + 'static {
    /// The first message on a new connection (`connection_established`), plus side effects of
    /// the device coming online (pending commands get pushed through `handle`).
    fn connected(&self, device: &str, peer: SocketAddr, handle: &ConnHandle) -> GatewayMessage;
    /// One message as the transport parsed it (or why it could not). Returns its reply,
    /// possibly still in flight. `barrier` messages (e.g. `upload_complete`) are only handled
    /// once every earlier reply is out.
    fn message(
        self: Arc<Self>,
        device: &str,
        handle: &ConnHandle,
        message: Result<DeviceMessage, ProtocolError>,
    ) -> HandlerReply;
    /// Message refused by the rate limiter (`error rate_limited`).
    fn rate_limited(&self, device: &str) -> GatewayMessage;
    /// A binary frame (refused until the binary frame format exists).
    fn binary(&self, device: &str, bytes: &[u8]) -> GatewayMessage;
    /// The connection ended (`replaced` when a newer connection of the device took over).
    fn disconnected(&self, device: &str, reason: &str, replaced: bool);
}

/// A reply with when its message was read (the ack latency on `/metrics`). Not boxed again:
/// the wrapping costs no allocation per message.
type TimedReply = Join<Ready<std::time::Instant>, PendingReply>;

fn timed(received: std::time::Instant, reply: PendingReply) -> TimedReply {
    join(futures_util::future::ready(received), reply)
}

/// How to treat one message's reply.
pub enum HandlerReply {
    /// Goes in order behind earlier replies.
    Ordered(PendingReply),
    /// Must wait until all earlier replies are out, then is computed (it reads what they wrote).
    Barrier(Box<dyn FnOnce() -> PendingReply + Send>),
}

/// Why the loop ended, for the log line and the court.
enum End {
    Closed(String),
    Kicked(u16, String),
    Shutdown,
    Idle,
    Error(String),
    Refused(u16, String),
}

/// A device connection past its handshake, registered with the connection table.
pub struct Accepted {
    pub device: String,
    pub peer: SocketAddr,
    pub socket: WebSocket,
    pub handle: ConnHandle,
    pub end: ConnEnd,
    /// Where the connection counts what it reads and answers.
    pub metrics: Arc<ClientMetrics>,
}

/// Serves one accepted device connection until it ends.
pub async fn serve(
    handler: Arc<dyn DeviceHandler>,
    accepted: Accepted,
    limits: ConnectionLimits,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let Accepted {
        device,
        peer,
        mut socket,
        handle,
        mut end,
        metrics,
    } = accepted;
    let _connected = metrics.connected(Role::Device);
    let welcome = handler.connected(&device, peer, &handle).to_json();
    let mut writer = Writer {
        device: &device,
        socket: &mut socket,
        write_timeout: limits.write_timeout,
        metrics: &metrics,
    };
    let outcome = match writer.send(welcome).await {
        Ok(()) => {
            read_loop(
                &handler,
                &device,
                &handle,
                &mut end,
                &limits,
                &shutdown,
                &mut writer,
            )
            .await
        }
        Err(e) => End::Error(e),
    };
    let (reason, replaced) = match &outcome {
        End::Closed(r) => (format!("closed by device ({r})"), false),
        End::Kicked(code, r) => (format!("{r} ({code})"), *code == close::REPLACED),
        End::Shutdown => ("gateway shutting down".to_owned(), false),
        End::Idle => (format!("idle for {:?}", limits.idle_timeout), false),
        End::Error(e) => (format!("connection error: {e}"), false),
        End::Refused(code, r) => (format!("{r} ({code})"), false),
    };
    let close = match &outcome {
        End::Kicked(code, r) | End::Refused(code, r) => Some((*code, r.clone())),
        End::Shutdown => Some((close::GOING_AWAY, "gateway shutting down".to_owned())),
        End::Idle => Some((close::IDLE, "idle timeout".to_owned())),
        End::Closed(_) | End::Error(_) => None,
    };
    if let Some((code, text)) = close {
        writer.close(code, &text).await;
    }
    log::info!("device {device} ({peer}) disconnected: {reason}");
    handler.disconnected(&device, &reason, replaced);
}

struct Writer<'a> {
    /// Whose replies it writes (rejects are counted per device).
    device: &'a str,
    socket: &'a mut WebSocket,
    write_timeout: Duration,
    metrics: &'a ClientMetrics,
}

impl Writer<'_> {
    /// Writes a message's reply, if it has one, and counts it (acks, their latency, rejects).
    async fn reply(
        &mut self,
        (received, reply): (std::time::Instant, Option<GatewayMessage>),
    ) -> Result<(), String> {
        let Some(reply) = reply else { return Ok(()) };
        self.send(reply.to_json()).await?;
        (self.metrics).device_replied(self.device, &reply, received.elapsed());
        Ok(())
    }

    async fn send(&mut self, text: String) -> Result<(), String> {
        match timeout(
            self.write_timeout,
            self.socket.send(Message::Text(text.into())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("write blocked for {:?}", self.write_timeout)),
        }
    }

    /// Sends a close frame and waits briefly for the peer's, so the reason reaches it.
    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let sent = timeout(
            self.write_timeout,
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
        // Read until the peer's close (or a short deadline), as the close handshake asks.
        let _ = timeout(Duration::from_secs(2), async {
            while let Some(Ok(msg)) = self.socket.recv().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_loop(
    handler: &Arc<dyn DeviceHandler>,
    device: &str,
    handle: &ConnHandle,
    end: &mut ConnEnd,
    limits: &ConnectionLimits,
    shutdown: &tokio_util::sync::CancellationToken,
    writer: &mut Writer<'_>,
) -> End {
    let mut in_flight: FuturesOrdered<TimedReply> = FuturesOrdered::new();
    let mut rate = RateLimiter::new(limits.messages_per_second, limits.rate_strikes_to_close);
    let started = Instant::now();
    let mut idle_deadline = Instant::now() + limits.idle_timeout;
    loop {
        let can_read = in_flight.len() < limits.max_in_flight;
        tokio::select! {
            // Order matters only for fairness; every branch is cancel-safe: `recv` on the
            // socket and the mpsc, `next` on the ordered queue, token and sleep futures.
            biased;
            _ = end.kicked.cancelled() => {
                let kick = end.kick().unwrap_or(super::connections::Kick { code: close::GOING_AWAY, reason: "closed".into() });
                return End::Kicked(kick.code, kick.reason);
            }
            _ = shutdown.cancelled() => {
                // Let what was accepted reach fsync and its ack go out, then say goodbye.
                while let Some(reply) = in_flight.next().await {
                    if writer.reply(reply).await.is_err() {
                        break;
                    }
                }
                return End::Shutdown;
            }
            Some(text) = end.rx.recv() => {
                if let Err(e) = writer.send(text).await {
                    return End::Error(e);
                }
            }
            Some(reply) = in_flight.next(), if !in_flight.is_empty() => {
                if let Err(e) = writer.reply(reply).await {
                    return End::Error(e);
                }
            }
            _ = sleep_until(idle_deadline) => return End::Idle,
            incoming = writer.socket.recv(), if can_read => {
                idle_deadline = Instant::now() + limits.idle_timeout;
                let received = std::time::Instant::now();
                let message = match incoming {
                    None => return End::Closed("connection dropped".into()),
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return read_error(e, limits),
                };
                if let Message::Close(frame) = message {
                    let why = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_else(|| "no reason".into());
                    return End::Closed(why);
                }
                // Every frame counts against the limit, not only text: a flood of pings or
                // binary frames costs the gateway as much to read and answer.
                let now_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
                match rate.check(now_ms) {
                    Verdict::Accept => {}
                    Verdict::Refuse => {
                        // Pings and pongs get no `error`: answering each would amplify the flood.
                        if matches!(message, Message::Text(_) | Message::Binary(_)) {
                            in_flight.push_back(timed(received, ready(handler.rate_limited(device))));
                        }
                        continue;
                    }
                    Verdict::Close => {
                        return End::Refused(close::RATE_LIMITED, format!(
                            "over {} frames per second for {} seconds",
                            limits.messages_per_second, limits.rate_strikes_to_close));
                    }
                }
                match message {
                    Message::Text(text) => {
                        let message = parse_device_message(text.as_str(), device);
                        let type_name = message.as_ref().map_or(OTHER_TYPE, DeviceMessage::type_name);
                        writer.metrics.received(Role::Device, type_name, text.len());
                        match handler.clone().message(device, handle, message) {
                            HandlerReply::Ordered(reply) => in_flight.push_back(timed(received, reply)),
                            HandlerReply::Barrier(later) => {
                                while let Some(reply) = in_flight.next().await {
                                    if let Err(e) = writer.reply(reply).await {
                                        return End::Error(e);
                                    }
                                }
                                in_flight.push_back(timed(received, later()));
                            }
                        }
                    }
                    Message::Binary(bytes) => in_flight.push_back(timed(received, ready(handler.binary(device, &bytes)))),
                    // Pings are answered by tungstenite; pongs need nothing; closes ended above.
                    Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
                }
            }
        }
    }
}

/// A reply that is ready now.
pub fn ready(reply: GatewayMessage) -> PendingReply {
    Box::pin(std::future::ready(Some(reply)))
}

/// Maps a read error to how the connection ends: an oversized message closes with 1009 and
/// invalid UTF-8 with 1007, both naming the problem; anything else is a broken connection.
fn read_error(error: axum::Error, limits: &ConnectionLimits) -> End {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => End::Refused(
            close::MESSAGE_TOO_BIG,
            format!("message over the {} byte limit", limits.max_message_bytes),
        ),
        Some(tungstenite::Error::Utf8(_)) => End::Refused(
            close::INVALID_UTF8,
            "text frame is not valid UTF-8".to_owned(),
        ),
        _ => End::Error(inner.to_string()),
    }
}
