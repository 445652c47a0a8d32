//! Simulated hubs on the wire: real WebSocket clients that behave like device firmware.
//!
//! - [`Firmware::V33`] speaks exactly as the deployed V3.3 firmware does (SEED-SYSTEM.md): no
//!   token, no `seq`, heartbeats, waits for a pushed `start_collection` (acking it), then sends
//!   its batches (30 frames mixing its nodes, local-time `HHMMSSmmm` stamps); on
//!   `stop_collection` it acks and sends `upload_complete`. It never resends, and what it
//!   collects while no session runs is dropped, as on the device.
//! - [`Firmware::Compact`] is what new firmware can do: a token, its own session, the compact
//!   form with `seq`, every batch kept until answered durably and resent after a reconnect or
//!   when `upload_complete` reports it missing.
//!
//! What a hub sends comes from its *feed*: a channel of [`SensorBatch`]es produced in real time
//! by the kinematic court simulator or a plain load source ([`super::fleet`]). The JSON is built
//! here by hand, as firmware builds it, not with the gateway's own codec, so tests that use these
//! clients check the gateway against an independent rendering. Everything a client saw
//! acknowledged is reported as [`Acked`] so tests can check it against `journal export`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::Message;

use shuttlegate_core::batch::{BatchForm, CompactBatch, SeedBatch, SensorBatch};

/// Which firmware a simulated hub imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Firmware {
    /// The deployed V3.3 firmware, message for message.
    #[value(name = "v3.3")]
    V33,
    /// Compact form with `seq`: durable, gap-free, idempotent delivery.
    Compact,
}

/// A batch the gateway acknowledged as durable, as the device sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Acked {
    pub device: String,
    pub session_id: String,
    /// The `seq` of the reply (gateway-assigned for V3.3).
    pub seq: u64,
    /// The message exactly as sent.
    pub sent: Value,
}

/// Where and as whom a simulated hub connects.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Gateway base URL, e.g. `ws://127.0.0.1:8080`.
    pub url: String,
    pub code: String,
    pub token: Option<String>,
    /// Compact form: the session it opens. V3.3 waits for `start_collection` instead.
    pub session_id: String,
}

/// What a hub did, for reports and tests.
#[derive(Debug, Default, Clone)]
pub struct HubReport {
    pub batches_sent: u64,
    pub batches_acked: u64,
    /// V3.3: batches collected while no session ran (dropped, as the firmware does).
    pub batches_dropped: u64,
    pub resends: u64,
    pub reconnects: u64,
    pub errors: Vec<String>,
    /// Send → durable-reply latencies, ms.
    pub ack_latency_ms: Vec<f64>,
    pub upload_complete: bool,
}

impl HubReport {
    /// Counts a durable reply to `sent` (sent at `at`) and reports it.
    fn acknowledged(
        &mut self,
        acked: &mpsc::UnboundedSender<Acked>,
        device: &str,
        seq: u64,
        sent: Value,
        at: Instant,
    ) {
        self.batches_acked += 1;
        self.ack_latency_ms
            .push(at.elapsed().as_secs_f64() * 1000.0);
        let _ = acked.send(Acked {
            device: device.to_owned(),
            session_id: sent["session_id"].as_str().unwrap_or_default().to_owned(),
            seq,
            sent,
        });
    }
}

/// One line of counts, as `shuttlegate simulate` prints per hub.
impl std::fmt::Display for HubReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {} acked {} resent {} reconnects {} upload_complete {} errors {}",
            self.batches_sent,
            self.batches_acked,
            self.resends,
            self.reconnects,
            self.upload_complete,
            self.errors.len()
        )
    }
}

/// A reply that says the batch is stored durably.
fn is_durable(reply: &Value) -> bool {
    reply["success"] == json!(true) && reply["durable"] == json!(true)
}

/// Failure of a simulated hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("connect {url}: {source}")]
    Connect {
        url: String,
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("connection: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("{0}")]
    Protocol(String),
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// V3.3's frame stamp: local time of day as the decimal `HHMMSSmmm`.
pub fn time_of_day_stamp(unix_ms: i64, utc_offset_s: i32) -> i64 {
    let local = unix_ms + i64::from(utc_offset_s) * 1000;
    let ms_of_day = local.rem_euclid(86_400_000);
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    ((h * 100 + m) * 100 + s) * 1000 + ms
}

/// A V3.3 `batch_sensor_data` message, as the firmware renders it.
pub fn render_seed(device_code: &str, session_id: &str, batch: &SeedBatch) -> Value {
    let frames: Vec<Value> = batch
        .frames
        .iter()
        .map(|f| {
            let mut frame = json!({"acc": f.acc, "gyro": f.gyro});
            if let Some(angle) = f.angle {
                frame["angle"] = json!(angle);
            }
            if let Some(id) = f.sensor_id {
                frame["sensor_id"] = json!(id);
            }
            if let Some(t) = f.timestamp {
                frame["timestamp"] = json!(t);
            }
            frame
        })
        .collect();
    json!({"type": "batch_sensor_data", "device_code": device_code,
           "sensor_type": batch.sensor_type.as_deref().unwrap_or("waist"),
           "timestamp": batch.timestamp.unwrap_or_else(millis_since_boot),
           "data": frames, "session_id": session_id})
}

/// A compact-form `batch_sensor_data` message.
pub fn render_compact(session_id: &str, seq: u64, batch: &CompactBatch) -> Value {
    let rows: Vec<&[f32]> = batch
        .samples
        .chunks(usize::from(batch.channels.max(1)))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": session_id, "seq": seq,
           "sensor_id": batch.sensor_id, "t0": batch.t0, "rate_hz": batch.rate_hz, "samples": rows})
}

async fn connect(opts: &HubOptions) -> Result<Socket, HubError> {
    let mut url = format!("{}/ws/esp32/{}/", opts.url.trim_end_matches('/'), opts.code);
    if let Some(token) = &opts.token {
        url.push_str(&format!("?token={token}"));
    }
    let (socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|source| HubError::Connect {
            url: url.clone(),
            source,
        })?;
    Ok(socket)
}

async fn send_json(socket: &mut Socket, value: &Value) -> Result<(), HubError> {
    socket.send(Message::text(value.to_string())).await?;
    Ok(())
}

/// Next JSON message from the gateway, or `None` when the connection ended.
async fn recv_json(socket: &mut Socket) -> Result<Option<Value>, HubError> {
    while let Some(message) = socket.next().await {
        match message? {
            Message::Text(text) => {
                return serde_json::from_str(text.as_str())
                    .map(Some)
                    .map_err(|e| HubError::Protocol(format!("gateway sent non-JSON: {e}")));
            }
            Message::Close(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

async fn ack(socket: &mut Socket, command: &Value) -> Result<(), HubError> {
    send_json(
        socket,
        &json!({"type": "ack", "command_id": command["command_id"], "success": true,
            "timestamp": millis_since_boot()}),
    )
    .await
}

/// The firmware's `millis()`: time since this process (the simulated boot) started.
fn millis_since_boot() -> i64 {
    static BOOT: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    i64::try_from(
        BOOT.get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

/// What a V3.3 hub is doing.
struct V33State {
    session: Option<String>,
    feed_open: bool,
    /// `upload_complete` sent, its response not yet received.
    uploading: bool,
    /// Sent batches not yet answered, oldest first (replies come in order).
    in_flight: std::collections::VecDeque<(Value, Instant)>,
}

/// Runs one V3.3 hub until its feed ends and no session is left open (the operator, or
/// `simulate`, stops the session with `stop_collection`).
pub async fn run_v33(
    opts: HubOptions,
    mut feed: mpsc::Receiver<SensorBatch>,
    acked: mpsc::UnboundedSender<Acked>,
) -> Result<HubReport, HubError> {
    let mut report = HubReport::default();
    let mut socket = connect(&opts).await?;
    let mut state = V33State {
        session: None,
        feed_open: true,
        uploading: false,
        in_flight: Default::default(),
    };
    let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
    loop {
        let idle = state.session.is_none() && !state.uploading && state.in_flight.is_empty();
        if !state.feed_open && idle {
            break;
        }
        tokio::select! {
            message = recv_json(&mut socket) => {
                let Some(message) = message? else { break };
                v33_message(&opts, &mut socket, &mut state, &message, &mut report, &acked).await?;
            }
            _ = heartbeat.tick() => {
                send_json(&mut socket, &json!({"type": "heartbeat", "device_code": opts.code,
                    "timestamp": millis_since_boot()})).await?;
            }
            batch = feed.recv(), if state.feed_open => {
                let Some(batch) = batch else {
                    state.feed_open = false;
                    continue;
                };
                let (Some(session), BatchForm::Seed(seed)) = (&state.session, &batch.form) else {
                    report.batches_dropped += 1;
                    continue;
                };
                let message = render_seed(&opts.code, session, seed);
                send_json(&mut socket, &message).await?;
                state.in_flight.push_back((message, Instant::now()));
                report.batches_sent += 1;
            }
        }
    }
    let _ = socket.close(None).await;
    Ok(report)
}

async fn v33_message(
    opts: &HubOptions,
    socket: &mut Socket,
    state: &mut V33State,
    message: &Value,
    report: &mut HubReport,
    acked: &mpsc::UnboundedSender<Acked>,
) -> Result<(), HubError> {
    match message["type"].as_str().unwrap_or_default() {
        "start_collection" => {
            state.session = message["session_id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| message["session_id"].as_i64().map(|n| n.to_string()));
            ack(socket, message).await?;
        }
        "stop_collection" => {
            ack(socket, message).await?;
            if let Some(id) = state.session.take() {
                send_json(
                    socket,
                    &json!({"type": "upload_complete", "session_id": id,
                    "device_code": opts.code, "timestamp": millis_since_boot()}),
                )
                .await?;
                state.uploading = true;
            }
        }
        "sync" | "set_batch" => ack(socket, message).await?,
        "get_status" => {
            send_json(
                socket,
                &json!({"type": "status_response", "command_id": message["command_id"],
                "connection": {"wifi_connected": true, "server_connected": true},
                "device": {"device_code": opts.code, "firmware_version": "V3.3"},
                "stats": {"batches_sent": report.batches_sent}, "system": {"free_heap": 123_456}}),
            )
            .await?;
        }
        "batch_sensor_data_response" => {
            let Some((sent, at)) = state.in_flight.pop_front() else {
                return Ok(());
            };
            if is_durable(message) {
                let seq = message["seq"].as_u64().unwrap_or(u64::MAX);
                report.acknowledged(acked, &opts.code, seq, sent, at);
            } else {
                report.errors.push(message.to_string());
            }
        }
        "upload_complete_response" => {
            report.upload_complete = true;
            state.uploading = false;
        }
        "error" => report.errors.push(message.to_string()),
        _ => {}
    }
    Ok(())
}

/// A compact hub's memory across reconnects.
struct CompactState {
    /// Everything not yet durably acknowledged, by seq.
    unacked: BTreeMap<u64, (Value, Instant)>,
    next_seq: u64,
    feed_open: bool,
    upload_sent: bool,
}

/// Batches a compact hub keeps unanswered before it stops taking from its feed.
const COMPACT_WINDOW: usize = 64;

/// Runs one compact-form hub: sends its feed with `seq`, keeps every batch until it is
/// answered durably, resends after reconnects and for `missing_seqs`, and finishes with a clean
/// `upload_complete` once the feed has ended.
pub async fn run_compact(
    opts: HubOptions,
    mut feed: mpsc::Receiver<SensorBatch>,
    acked: mpsc::UnboundedSender<Acked>,
) -> Result<HubReport, HubError> {
    let mut report = HubReport::default();
    let mut state = CompactState {
        unacked: BTreeMap::new(),
        next_seq: 0,
        feed_open: true,
        upload_sent: false,
    };
    let mut attempts = 0u32;
    loop {
        let mut socket = match connect(&opts).await {
            Ok(s) => s,
            Err(e) if attempts < 200 => {
                attempts += 1;
                report.reconnects += 1;
                log::debug!("{}: {e}; retrying", opts.code);
                sleep(Duration::from_millis(50 * u64::from(attempts.min(20)))).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        // Resend whatever was not answered on the previous connection, oldest first.
        for (message, at) in state.unacked.values_mut() {
            send_json(&mut socket, message).await?;
            *at = Instant::now();
            report.resends += 1;
        }
        state.upload_sent = false;
        match stream_compact(
            &opts,
            &mut socket,
            &mut feed,
            &mut state,
            &mut report,
            &acked,
        )
        .await
        {
            Ok(true) => {
                let _ = socket.close(None).await;
                return Ok(report);
            }
            Ok(false) | Err(HubError::Socket(_)) => {
                attempts += 1;
                report.reconnects += 1;
                if attempts > 200 {
                    return Err(HubError::Protocol("gave up after 200 reconnects".into()));
                }
                sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One connection's worth of the compact hub; `Ok(true)` when the session is complete,
/// `Ok(false)` when the connection ended first.
async fn stream_compact(
    opts: &HubOptions,
    socket: &mut Socket,
    feed: &mut mpsc::Receiver<SensorBatch>,
    state: &mut CompactState,
    report: &mut HubReport,
    acked: &mpsc::UnboundedSender<Acked>,
) -> Result<bool, HubError> {
    loop {
        let can_take = state.feed_open && state.unacked.len() < COMPACT_WINDOW;
        let finished = !state.feed_open && state.unacked.is_empty();
        tokio::select! {
            message = recv_json(socket) => {
                let Some(message) = message? else { return Ok(false) };
                if compact_message(opts, socket, state, &message, report, acked).await? {
                    return Ok(true);
                }
            }
            batch = feed.recv(), if can_take => {
                let Some(batch) = batch else {
                    state.feed_open = false;
                    continue;
                };
                let BatchForm::Compact(compact) = &batch.form else { continue };
                let seq = state.next_seq;
                let message = render_compact(&opts.session_id, seq, compact);
                send_json(socket, &message).await?;
                state.unacked.insert(seq, (message, Instant::now()));
                state.next_seq += 1;
                report.batches_sent += 1;
            }
            _ = sleep(Duration::from_millis(100)), if finished && !state.upload_sent => {
                send_json(socket, &json!({"type": "upload_complete", "session_id": opts.session_id,
                    "batches": state.next_seq})).await?;
                state.upload_sent = true;
            }
            _ = sleep(Duration::from_secs(2)), if !state.feed_open && !state.unacked.is_empty() => {
                // Replies are overdue: resend what is still unanswered.
                for (m, at) in state.unacked.values_mut() {
                    send_json(socket, m).await?;
                    *at = Instant::now();
                    report.resends += 1;
                }
            }
        }
    }
}

/// Handles one gateway message; `Ok(true)` once the session is complete.
async fn compact_message(
    opts: &HubOptions,
    socket: &mut Socket,
    state: &mut CompactState,
    message: &Value,
    report: &mut HubReport,
    acked: &mpsc::UnboundedSender<Acked>,
) -> Result<bool, HubError> {
    match message["type"].as_str().unwrap_or_default() {
        "batch_sensor_data_response" => {
            let Some(seq) = message["seq"].as_u64() else {
                return Ok(false);
            };
            if is_durable(message) {
                if let Some((sent, at)) = state.unacked.remove(&seq) {
                    report.acknowledged(acked, &opts.code, seq, sent, at);
                }
            } else {
                report.errors.push(message.to_string());
            }
        }
        "upload_complete_response" => {
            let missing: Vec<u64> = message["missing_seqs"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            if missing.is_empty() && state.unacked.is_empty() && !state.feed_open {
                report.upload_complete = true;
                return Ok(true);
            }
            for seq in missing {
                if let Some((m, at)) = state.unacked.get_mut(&seq) {
                    send_json(socket, m).await?;
                    *at = Instant::now();
                    report.resends += 1;
                }
            }
            state.upload_sent = false;
        }
        "start_collection" | "stop_collection" | "sync" | "set_batch" | "get_status" => {
            ack(socket, message).await?
        }
        "error" => report.errors.push(message.to_string()),
        _ => {}
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_stamps_drop_the_leading_zero_like_v33() {
        // 2024-11-24 01:30:15.123 UTC is 09:30:15.123 in UTC+8.
        let unix = 1_732_411_815_123;
        assert_eq!(time_of_day_stamp(unix, 8 * 3600), 93_015_123);
        assert_eq!(time_of_day_stamp(unix, 0), 13_015_123);
    }
}
