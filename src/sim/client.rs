//! Simulated hubs on the wire: real WebSocket clients that behave like device firmware.
//!
//! - [`Firmware::V33`] speaks exactly as the deployed V3.3 firmware does (SEED-SYSTEM.md): no
//!   token, no `seq`, heartbeats, waits for a pushed `start_collection` (acking it), then sends
//!   `batch_sensor_data` of 30 frames mixing its nodes with local-time `HHMMSSmmm` stamps; on
//!   `stop_collection` it acks, sends `upload_complete`, and drops anything not yet sent. It
//!   never resends.
//! - [`Firmware::Compact`] is what new firmware can do: a token, its own session, the compact
//!   form with `seq`, every batch kept until answered durably and resent after a reconnect or
//!   when `upload_complete` reports it missing.
//!
//! The JSON is built here by hand, as firmware builds it, not with the gateway's own codec, so
//! tests that use these clients check the gateway against an independent rendering.
//! What the samples contain comes from a [`SensorSource`]; everything a client saw acknowledged
//! is reported as [`Acked`] so tests can check it against `journal export`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::Message;

use crate::batch::BodyPosition;

/// Which firmware a simulated hub imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Firmware {
    /// The deployed V3.3 firmware, message for message.
    #[value(name = "v3.3")]
    V33,
    /// Compact form with `seq`: durable, gap-free, idempotent delivery.
    Compact,
}

/// One reading of one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub acc: [f32; 3],
    pub gyro: [f32; 3],
    pub angle: [f32; 3],
}

/// Where a simulated hub's samples come from.
pub trait SensorSource: Send {
    /// The reading of the node at `position` at unix time `t_ms`.
    fn read(&mut self, position: BodyPosition, t_ms: f64) -> Reading;
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

/// How one simulated hub behaves.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Gateway base URL, e.g. `ws://127.0.0.1:8080`.
    pub url: String,
    pub code: String,
    pub token: Option<String>,
    pub firmware: Firmware,
    /// Samples per second per node.
    pub rate_hz: f64,
    /// Nodes the hub carries, with their `sensor_id`s.
    pub nodes: Vec<(u32, BodyPosition)>,
    /// How long to collect.
    pub duration: Duration,
    /// Compact form: samples per batch.
    pub batch_samples: usize,
    /// Compact form: session id to open; V3.3 waits for `start_collection` instead.
    pub session_id: String,
    /// UTC offset of the court, for V3.3's local-time stamps, in seconds.
    pub utc_offset_s: i32,
}

/// What a hub did, for reports and tests.
#[derive(Debug, Default, Clone)]
pub struct HubReport {
    pub batches_sent: u64,
    pub batches_acked: u64,
    pub resends: u64,
    pub reconnects: u64,
    pub errors: Vec<String>,
    /// Send → durable-reply latencies, ms.
    pub ack_latency_ms: Vec<f64>,
    pub upload_complete: bool,
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

fn unix_ms() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_secs_f64() * 1000.0
}

/// V3.3's frame stamp: local time of day as the decimal `HHMMSSmmm`.
pub fn time_of_day_stamp(unix_ms: i64, utc_offset_s: i32) -> i64 {
    let local = unix_ms + i64::from(utc_offset_s) * 1000;
    let ms_of_day = local.rem_euclid(86_400_000);
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    ((h * 100 + m) * 100 + s) * 1000 + ms
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

/// Runs one V3.3 hub: waits for `start_collection`, streams until `stop_collection` or the
/// duration ends, then `upload_complete`. Reports every acknowledged batch on `acked`.
pub async fn run_v33(
    opts: HubOptions,
    mut source: impl SensorSource,
    acked: mpsc::UnboundedSender<Acked>,
) -> Result<HubReport, HubError> {
    let mut report = HubReport::default();
    let mut socket = connect(&opts).await?;
    let deadline = Instant::now() + opts.duration;
    let mut session: Option<String> = None;
    let mut in_flight: BTreeMap<usize, (Value, Instant)> = BTreeMap::new();
    let mut sent_index = 0usize;
    let frame_interval = Duration::from_secs_f64(1.0 / opts.rate_hz);
    let frames_per_batch = 30usize;
    let batch_every =
        frame_interval.mul_f64(frames_per_batch as f64 / opts.nodes.len().max(1) as f64);
    let mut next_batch = Instant::now();
    let mut next_heartbeat = Instant::now();
    let mut t_ms = unix_ms();
    loop {
        if Instant::now() >= deadline && session.is_none() {
            break;
        }
        tokio::select! {
            message = recv_json(&mut socket) => {
                let Some(message) = message? else { break };
                match message["type"].as_str().unwrap_or_default() {
                    "start_collection" => {
                        session = message["session_id"].as_str().map(str::to_owned)
                            .or_else(|| message["session_id"].as_i64().map(|n| n.to_string()));
                        ack(&mut socket, &message).await?;
                    }
                    "stop_collection" => {
                        ack(&mut socket, &message).await?;
                        if let Some(id) = session.take() {
                            send_json(&mut socket, &json!({"type": "upload_complete", "session_id": id,
                                "device_code": opts.code, "timestamp": millis_since_boot()})).await?;
                        }
                    }
                    "sync" | "set_batch" => ack(&mut socket, &message).await?,
                    "get_status" => {
                        send_json(&mut socket, &json!({"type": "status_response", "command_id": message["command_id"],
                            "connection": {"connected": true}, "device": {"firmware_version": "V3.3"},
                            "stats": {"batches_sent": report.batches_sent}, "system": {"free_heap": 123456}})).await?;
                    }
                    "batch_sensor_data_response" => {
                        let Some((first, _)) = in_flight.first_key_value().map(|(k, v)| (*k, v.clone())) else { continue };
                        let (sent, at) = in_flight.remove(&first).expect("first key exists");
                        if message["success"] == json!(true) && message["durable"] == json!(true) {
                            report.batches_acked += 1;
                            report.ack_latency_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                            let _ = acked.send(Acked {
                                device: opts.code.clone(),
                                session_id: sent["session_id"].as_str().unwrap_or_default().to_owned(),
                                seq: message["seq"].as_u64().unwrap_or(u64::MAX),
                                sent,
                            });
                        } else {
                            report.errors.push(message.to_string());
                        }
                    }
                    "upload_complete_response" => {
                        report.upload_complete = true;
                        if Instant::now() >= deadline { break }
                    }
                    "error" => report.errors.push(message.to_string()),
                    _ => {}
                }
            }
            _ = sleep_until_or_pending(next_heartbeat) => {
                send_json(&mut socket, &json!({"type": "heartbeat", "device_code": opts.code,
                    "timestamp": millis_since_boot()})).await?;
                next_heartbeat += Duration::from_secs(5);
            }
            _ = sleep_until_or_pending(next_batch), if session.is_some() => {
                next_batch += batch_every;
                if Instant::now() >= deadline {
                    // V3.3 stops when told; a simulated run ends by asking for the stop itself.
                    continue;
                }
                let Some(id) = session.clone() else { continue };
                let mut frames = Vec::with_capacity(frames_per_batch);
                while frames.len() < frames_per_batch {
                    for (sensor_id, position) in &opts.nodes {
                        let r = source.read(*position, t_ms);
                        frames.push(json!({"acc": r.acc, "gyro": r.gyro, "angle": r.angle, "sensor_id": sensor_id,
                            "timestamp": time_of_day_stamp(t_ms as i64, opts.utc_offset_s)}));
                    }
                    t_ms += 1000.0 / opts.rate_hz;
                }
                frames.truncate(frames_per_batch);
                let sensor_type = opts.nodes.first().map(|(_, p)| p.as_str()).unwrap_or("waist");
                let message = json!({"type": "batch_sensor_data", "device_code": opts.code, "sensor_type": sensor_type,
                    "timestamp": millis_since_boot(), "data": frames, "session_id": id});
                send_json(&mut socket, &message).await?;
                in_flight.insert(sent_index, (message, Instant::now()));
                sent_index += 1;
                report.batches_sent += 1;
            }
        }
    }
    let _ = socket.close(None).await;
    Ok(report)
}

async fn ack(socket: &mut Socket, command: &Value) -> Result<(), HubError> {
    send_json(
        socket,
        &json!({"type": "ack", "command_id": command["command_id"], "success": true,
            "timestamp": millis_since_boot()}),
    )
    .await
}

fn millis_since_boot() -> u64 {
    static BOOT: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    u64::try_from(
        BOOT.get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

async fn sleep_until_or_pending(at: Instant) {
    tokio::time::sleep_until(at).await
}

/// Runs one compact-form hub: opens its own session, sends `duration` worth of batches with
/// `seq`, keeps every batch until it is answered durably, resends after reconnects and for
/// `missing_seqs`, and finishes with a clean `upload_complete`.
pub async fn run_compact(
    opts: HubOptions,
    mut source: impl SensorSource,
    acked: mpsc::UnboundedSender<Acked>,
) -> Result<HubReport, HubError> {
    let mut report = HubReport::default();
    let total_batches = {
        let per_node =
            (opts.duration.as_secs_f64() * opts.rate_hz / opts.batch_samples as f64).ceil();
        per_node as u64 * opts.nodes.len() as u64
    };
    let batch_span = Duration::from_secs_f64(opts.batch_samples as f64 / opts.rate_hz);
    let start_ms = unix_ms();
    // Everything not yet durably acknowledged, by seq.
    let mut unacked: BTreeMap<u64, (Value, Instant)> = BTreeMap::new();
    let mut next_seq = 0u64;
    let started = Instant::now();
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
        for (seq, (message, at)) in unacked.iter_mut() {
            send_json(&mut socket, message).await?;
            *at = Instant::now();
            report.resends += 1;
            log::trace!("{} resent seq {seq}", opts.code);
        }
        match stream_compact(
            &opts,
            &mut socket,
            &mut source,
            &mut unacked,
            &mut next_seq,
            total_batches,
            (started, batch_span, start_ms),
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
#[allow(clippy::too_many_arguments)]
async fn stream_compact(
    opts: &HubOptions,
    socket: &mut Socket,
    source: &mut impl SensorSource,
    unacked: &mut BTreeMap<u64, (Value, Instant)>,
    next_seq: &mut u64,
    total_batches: u64,
    (started, batch_span, start_ms): (Instant, Duration, f64),
    report: &mut HubReport,
    acked: &mpsc::UnboundedSender<Acked>,
) -> Result<bool, HubError> {
    let nodes = opts.nodes.len().max(1) as u64;
    let mut upload_sent = false;
    loop {
        // Batches are due in real time: round r of all nodes at started + r·batch_span.
        let due_round = *next_seq / nodes;
        let due_at = started + batch_span.mul_f64(due_round as f64);
        let can_send = *next_seq < total_batches && unacked.len() < 64;
        tokio::select! {
            message = recv_json(socket) => {
                let Some(message) = message? else { return Ok(false) };
                match message["type"].as_str().unwrap_or_default() {
                    "batch_sensor_data_response" => {
                        let Some(seq) = message["seq"].as_u64() else { continue };
                        if message["success"] == json!(true) && message["durable"] == json!(true) {
                            if let Some((sent, at)) = unacked.remove(&seq) {
                                report.batches_acked += 1;
                                report.ack_latency_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                                let _ = acked.send(Acked { device: opts.code.clone(), session_id: opts.session_id.clone(), seq, sent });
                            }
                        } else {
                            report.errors.push(message.to_string());
                        }
                    }
                    "upload_complete_response" => {
                        let missing: Vec<u64> = message["missing_seqs"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
                        if missing.is_empty() && unacked.is_empty() {
                            report.upload_complete = true;
                            return Ok(true);
                        }
                        for seq in missing {
                            if let Some((m, at)) = unacked.get_mut(&seq) {
                                send_json(socket, m).await?;
                                *at = Instant::now();
                                report.resends += 1;
                            }
                        }
                        upload_sent = false;
                    }
                    "start_collection" | "stop_collection" | "sync" | "set_batch" | "get_status" => ack(socket, &message).await?,
                    "error" => report.errors.push(message.to_string()),
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(due_at), if can_send => {
                let seq = *next_seq;
                let (sensor_id, position) = opts.nodes[(seq % nodes) as usize];
                let t0 = start_ms + (due_round as f64) * batch_span.as_secs_f64() * 1000.0;
                let samples: Vec<Value> = (0..opts.batch_samples).map(|i| {
                    let r = source.read(position, t0 + i as f64 * 1000.0 / opts.rate_hz);
                    json!([r.acc[0], r.acc[1], r.acc[2], r.gyro[0], r.gyro[1], r.gyro[2]])
                }).collect();
                let message = json!({"type": "batch_sensor_data", "session_id": opts.session_id, "seq": seq,
                    "sensor_id": sensor_id, "t0": t0.round() as i64, "rate_hz": opts.rate_hz, "samples": samples});
                send_json(socket, &message).await?;
                unacked.insert(seq, (message, Instant::now()));
                *next_seq += 1;
                report.batches_sent += 1;
            }
            _ = sleep(Duration::from_millis(200)), if *next_seq >= total_batches && unacked.is_empty() && !upload_sent => {
                send_json(socket, &json!({"type": "upload_complete", "session_id": opts.session_id, "batches": total_batches})).await?;
                upload_sent = true;
            }
            _ = sleep(Duration::from_secs(2)), if *next_seq >= total_batches && !unacked.is_empty() => {
                // Replies are overdue: resend what is still unanswered.
                for (m, at) in unacked.values_mut() {
                    send_json(socket, m).await?;
                    *at = Instant::now();
                    report.resends += 1;
                }
            }
        }
    }
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

/// A hub lying still with a little sensor noise: for load and protocol tests whose content does
/// not matter (the kinematic model in this module's siblings makes real swings).
#[derive(Debug, Clone)]
pub struct StillSource {
    rng: rand::rngs::SmallRng,
}

impl StillSource {
    pub fn new(seed: u64) -> StillSource {
        use rand::SeedableRng;
        StillSource {
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }
}

impl SensorSource for StillSource {
    fn read(&mut self, _position: BodyPosition, _t_ms: f64) -> Reading {
        use rand::Rng;
        let mut noise = |scale: f32| self.rng.random_range(-scale..scale);
        Reading {
            acc: [noise(0.02), noise(0.02), 1.0 + noise(0.02)],
            gyro: [noise(1.5), noise(1.5), noise(1.5)],
            angle: [noise(0.5), noise(0.5), 90.0 + noise(0.5)],
        }
    }
}
