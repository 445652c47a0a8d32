//! The notification-hub sink: a tokio-tungstenite client of the cloud's Django Channels hub, in
//! the seed hub's style (`wss://…/ws/gateway/?token=<JWT>`, JSON `{type, data}`, `ping`/`pong`),
//! plus the two things the seed hub lacks: the journal replays what the hub missed, and the
//! hub's application acks (`{"type":"ack","id":…}`) move the cursor.
//!
//! Messages: `swing`, `analysis_complete_notification` (session summaries), `device_status`
//! (device status events) and `gateway_status` (our own, with the backlog size). Raw batches go
//! to MQTT only.
//!
//! **Fire-and-forget** (`acks = false`) is for a hub that never acks: the cursor moves when a
//! message is written to the socket. The trade-off: whatever was in socket buffers or in the
//! hub's hands when the link or the hub died is lost for the hub (MQTT is unaffected), instead
//! of being re-sent.
//!
//! One task owns the socket. Between messages it answers nothing itself (the hub pings are
//! ours); tungstenite queues protocol pongs and flushes them on our next read or write
//! (tokio-tungstenite#333), and we read continuously, so they go out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::UplinkError;
use super::backoff::Backoff;
use super::delivery::{Delivery, LaneSpec};
use super::envelope::hub_message;
use super::feed::{Feed, SinkStart};
use super::outbox::Outbox;
use super::status::{ReplayProgress, SinkSnapshot, now_ms, online_status, publish_snapshot};
use super::tls::{TlsFiles, client_config};
use crate::config::{Secret, SecretUrl};
use crate::journal::RecordKind;

/// Settings of the hub sink (the daemon maps `[uplink.hub]` onto these).
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// `ws://` or `wss://…/ws/gateway/`; the token is appended as `?token=`. Logged redacted.
    pub url: SecretUrl,
    /// The JWT the hub expects (read from `token_file` by the daemon). Never logged.
    pub token: Secret,
    /// The hub acknowledges each record (`true`), or the cursor moves on send (`false`).
    pub acks: bool,
    pub ping_interval: Duration,
    /// No `pong` (or any message) for this long, or a write stuck this long: the connection is
    /// dead.
    pub idle_timeout: Duration,
    /// Limit on TCP connect + TLS + WebSocket handshake.
    pub connect_timeout: Duration,
    pub venue: String,
    pub court: String,
    pub tls: TlsFiles,
    /// Records unacknowledged at once.
    pub window: usize,
    /// Records per second while draining a backlog (`None`: unpaced).
    pub replay_rate: Option<f64>,
    pub read_batch: usize,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub status_interval: Duration,
    /// Largest message accepted from the hub.
    pub max_message_bytes: usize,
    /// Cursor name in the journal.
    pub consumer: String,
}

impl HubOptions {
    pub fn new(url: &str, token: &str, venue: &str, court: &str) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            acks: true,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(10),
            venue: venue.into(),
            court: court.into(),
            tls: TlsFiles::default(),
            window: 64,
            replay_rate: None,
            read_batch: 256,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            status_interval: Duration::from_secs(5),
            max_message_bytes: 64 * 1024,
            consumer: "hub".into(),
        }
    }
}

/// A running hub sink.
pub struct HubSink {
    pub snapshot: watch::Receiver<SinkSnapshot>,
    pub task: tokio::task::JoinHandle<()>,
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a connection ended.
enum Ended {
    Shutdown,
    Lost(String),
}

/// Starts the hub sink; it stops when `shutdown` is cancelled.
pub fn spawn<O: Outbox>(
    options: HubOptions,
    outbox: Arc<O>,
    shutdown: CancellationToken,
) -> Result<HubSink, UplinkError> {
    let connector = connector(&options)?;
    let lane = LaneSpec {
        name: "results",
        kinds: vec![RecordKind::Swing, RecordKind::Summary, RecordKind::Event],
        rate: options.replay_rate,
        burst: 64,
        max_in_flight: options.window.max(1),
    };
    let start = SinkStart::new(
        "hub",
        &outbox,
        &options.consumer,
        vec![lane],
        options.window,
        options.read_batch,
    );
    let driver = Driver {
        backoff: Backoff::new(options.backoff_initial, options.backoff_max),
        durable_rx: start.durable_rx,
        options,
        connector,
        delivery: start.delivery,
        feed: start.feed,
        snapshot: start.snapshot_tx,
        stats: start.stats,
        last_status_backlog: None,
        progress: ReplayProgress::new(256),
    };
    let task = tokio::spawn(driver.run(shutdown));
    Ok(HubSink {
        snapshot: start.snapshot,
        task,
    })
}

fn connector(options: &HubOptions) -> Result<Option<Connector>, UplinkError> {
    let scheme = options.url.expose().split("://").next().unwrap_or_default();
    match scheme {
        "ws" => Ok(Some(Connector::Plain)),
        "wss" => Ok(Some(Connector::Rustls(client_config(&options.tls)?))),
        _ => Err(UplinkError::Url {
            url: options.url.to_string(),
            reason: "scheme must be ws:// or wss://".into(),
        }),
    }
}

/// The URL with the token, for connecting; never logged.
fn url_with_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={token}")
}

/// What went wrong at the handshake, in words an operator can act on.
fn describe_connect_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            if status.as_u16() == 401 || status.as_u16() == 403 {
                format!(
                    "the hub refused the token (HTTP {status}); check uplink.hub.token_file \
                     (expired or signed with another key?)"
                )
            } else {
                format!("the hub refused the connection (HTTP {status})")
            }
        }
        other if other.to_string().contains("invalid peer certificate") => {
            format!("{other} (the hub's certificate is not trusted: check uplink.hub.ca_file)")
        }
        other => other.to_string(),
    }
}

struct Driver<O: Outbox> {
    options: HubOptions,
    connector: Option<Connector>,
    delivery: Delivery,
    feed: Feed<O>,
    durable_rx: watch::Receiver<u64>,
    snapshot: watch::Sender<SinkSnapshot>,
    stats: SinkSnapshot,
    backoff: Backoff,
    last_status_backlog: Option<u64>,
    progress: ReplayProgress,
}

impl<O: Outbox> Driver<O> {
    async fn run(mut self, shutdown: CancellationToken) {
        let durable = *self.durable_rx.borrow_and_update();
        self.delivery.handle_durable(durable);
        loop {
            let config = WebSocketConfig::default()
                .max_message_size(Some(self.options.max_message_bytes))
                .max_frame_size(Some(self.options.max_message_bytes))
                .max_write_buffer_size(1 << 20);
            let url = url_with_token(self.options.url.expose(), self.options.token.expose());
            let connect = tokio::time::timeout(
                self.options.connect_timeout,
                tokio_tungstenite::connect_async_tls_with_config(
                    url,
                    Some(config),
                    true,
                    self.connector.clone(),
                ),
            );
            let outcome = tokio::select! {
                () = shutdown.cancelled() => break,
                result = connect => result,
            };
            let ended = match outcome {
                Ok(Ok((socket, _))) => self.serve(socket, &shutdown).await,
                Ok(Err(e)) => Ended::Lost(describe_connect_error(&e)),
                Err(_) => Ended::Lost(format!(
                    "no connection within {} s",
                    self.options.connect_timeout.as_secs()
                )),
            };
            let reason = match ended {
                Ended::Shutdown => break,
                Ended::Lost(reason) => reason,
            };
            self.delivery.handle_disconnected();
            self.last_status_backlog = None;
            let delay = self.backoff.next_delay(rand::rng().random::<f64>());
            log::warn!(
                "uplink hub: {}: {reason}; retrying in {} ms",
                self.options.url,
                delay.as_millis()
            );
            self.stats.errors += 1;
            self.stats.last_error = Some(reason);
            self.publish_snapshot();
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.idle(delay) => {}
            }
        }
        self.finish().await;
    }

    /// Waits out a backoff while still persisting cursors and following the journal.
    async fn idle(&mut self, delay: Duration) {
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                Some(job) = self.feed.jobs.join_next() => {
                    self.feed.handle_job(job, &mut self.delivery, &mut self.stats);
                }
                Ok(()) = self.durable_rx.changed() => {
                    let durable = *self.durable_rx.borrow_and_update();
                    self.delivery.handle_durable(durable);
                }
            }
        }
    }

    async fn serve(&mut self, mut socket: Socket, shutdown: &CancellationToken) -> Ended {
        log::info!(
            "uplink hub: connected to {} ({} records to deliver from id {})",
            self.options.url,
            self.delivery.backlog(),
            self.delivery.cursor()
        );
        self.backoff.reset();
        self.stats.connects += 1;
        self.delivery.handle_connected();
        let mut ping = tokio::time::interval(at_least_10ms(self.options.ping_interval));
        let mut status = tokio::time::interval(at_least_10ms(self.options.status_interval));
        for timer in [&mut ping, &mut status] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        let mut last_heard = Instant::now();
        loop {
            // A hub that stops reading would block the write forever: bound it.
            match tokio::time::timeout(self.options.idle_timeout, self.pump(&mut socket)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Ended::Lost(format!("send failed: {e}")),
                Err(_) => return Ended::Lost("a write did not complete in time".into()),
            }
            self.publish_snapshot();
            let wake = self.delivery.next_wakeup(Instant::now());
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    let _ = socket.close(None).await;
                    return Ended::Shutdown;
                }
                message = socket.next() => match message {
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        if let Err(reason) = self.handle_message(message) {
                            return Ended::Lost(reason);
                        }
                    }
                    Some(Err(e)) => return Ended::Lost(format!("connection lost: {e}")),
                    None => return Ended::Lost("the hub closed the connection".into()),
                },
                Some(job) = self.feed.jobs.join_next() => {
                    self.feed.handle_job(job, &mut self.delivery, &mut self.stats);
                }
                Ok(()) = self.durable_rx.changed() => {
                    let durable = *self.durable_rx.borrow_and_update();
                    self.delivery.handle_durable(durable);
                }
                () = sleep_until(wake), if wake.is_some() => {}
                _ = ping.tick() => {
                    if last_heard.elapsed() > self.options.idle_timeout {
                        return Ended::Lost(format!(
                            "nothing heard for {} ms (no pong)",
                            self.options.idle_timeout.as_millis()
                        ));
                    }
                    let ping = Message::text(r#"{"type":"ping"}"#);
                    if let Err(e) = socket.send(ping).await {
                        return Ended::Lost(format!("ping failed: {e}"));
                    }
                }
                _ = status.tick() => {
                    if let Err(e) = self.send_status(&mut socket).await {
                        return Ended::Lost(format!("send failed: {e}"));
                    }
                }
            }
        }
    }

    /// Issues reads and sends what the window allows.
    async fn pump(&mut self, socket: &mut Socket) -> Result<(), tungstenite::Error> {
        self.feed.issue_reads(&mut self.delivery);
        let mut wrote = false;
        while let Some(record) = self.delivery.poll_send(Instant::now()) {
            match hub_message(&record) {
                Ok(Some(text)) => {
                    socket.feed(Message::text(text)).await?;
                    wrote = true;
                    self.stats.sent += 1;
                    if !self.options.acks {
                        self.ack_record(record.id);
                    }
                }
                // Not a hub message (a command event, say): nothing to deliver.
                Ok(None) => self.skip(record.id),
                Err(e) => {
                    log::error!("uplink hub: skipping record {}: {e}", record.id);
                    self.stats.skipped += 1;
                    self.skip(record.id);
                }
            }
        }
        if wrote {
            socket.flush().await?;
        }
        Ok(())
    }

    fn skip(&mut self, id: u64) {
        if let Some(cursor) = self.delivery.handle_ack(id) {
            self.feed.cursor_moved(cursor);
        }
    }

    fn handle_message(&mut self, message: Message) -> Result<(), String> {
        let Message::Text(text) = message else {
            return match message {
                Message::Close(frame) => Err(format!("the hub closed the connection ({frame:?})")),
                _ => Ok(()), // binary, ping, pong: nothing for us
            };
        };
        #[derive(serde::Deserialize)]
        struct HubReply {
            #[serde(rename = "type")]
            kind: String,
            id: Option<u64>,
        }
        match serde_json::from_str::<HubReply>(text.as_str()) {
            Ok(HubReply { kind, id: Some(id) }) if kind == "ack" => self.ack_record(id),
            Ok(_) => {} // pong, subscription_success, error …: logged at debug only
            Err(e) => log::debug!("uplink hub: ignoring a message that is not JSON: {e}"),
        }
        Ok(())
    }

    fn ack_record(&mut self, id: u64) {
        self.stats.acked += 1;
        self.stats.last_ack_ms = Some(now_ms());
        if let Some(cursor) = self.delivery.handle_ack(id) {
            self.feed.cursor_moved(cursor);
        }
    }

    async fn send_status(&mut self, socket: &mut Socket) -> Result<(), tungstenite::Error> {
        let backlog = self.delivery.backlog();
        if self.last_status_backlog == Some(backlog) {
            return Ok(());
        }
        self.last_status_backlog = Some(backlog);
        let status = online_status(&self.delivery, &self.options.venue, &self.options.court);
        let message = serde_json::json!({"type": "gateway_status", "data": status});
        let cursor = self.delivery.cursor();
        if let Some(line) = self.progress.handle_tick(Instant::now(), cursor, backlog) {
            log::info!("uplink hub: {line}");
        }
        socket.send(Message::text(message.to_string())).await
    }

    fn publish_snapshot(&mut self) {
        let in_flight = self.delivery.in_flight();
        publish_snapshot(&self.snapshot, &self.stats, &self.delivery, in_flight);
    }

    async fn finish(mut self) {
        self.feed.finish(&mut self.delivery, &mut self.stats).await;
        self.delivery.handle_disconnected();
        self.publish_snapshot();
    }
}

/// `interval` panics on zero; a zero setting means "as often as sensible".
fn at_least_10ms(period: Duration) -> Duration {
    period.max(Duration::from_millis(10))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_in_the_query() {
        assert_eq!(
            url_with_token("ws://h/ws/gateway/", "a.b.c"),
            "ws://h/ws/gateway/?token=a.b.c"
        );
        assert_eq!(url_with_token("ws://h/?x=1", "t"), "ws://h/?x=1&token=t");
    }

    #[test]
    fn other_schemes_are_refused() {
        let o = HubOptions::new("http://h/", "t", "v", "c");
        assert!(connector(&o).is_err());
    }
}
