//! One simulated device of the benchmarks: connects over WebSocket, sends pre-rendered compact
//! batches (paced, or as fast as its window of unanswered batches allows) and records each
//! send → durable reply latency under the phase of the run current at send time.
//!
//! Messages are rendered once (a few sample blocks rotated through the batches) so the load
//! generator, which shares the machine with the daemon, spends its CPU on sockets, not JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Distinct sample blocks rotated through batches, so compression sees varied data.
const SAMPLE_BLOCKS: usize = 16;
/// Not recorded: set while a run is warming up or between phases.
pub const PHASE_NONE: u8 = u8::MAX;

/// A device that failed during a run.
#[derive(Debug, thiserror::Error)]
#[error("device {device}: {reason}")]
pub struct DeviceError {
    pub device: String,
    pub reason: String,
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects as device `code` with its token.
pub async fn connect(addr: &str, code: &str, token: &str) -> Result<Ws, DeviceError> {
    let url = format!("ws://{addr}/ws/esp32/{code}/?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| DeviceError {
            device: code.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(ws)
}

/// Send → durable reply latency of the devices during one phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub acks: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            acks: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms (n = {})",
            self.p50_ms, self.p99_ms, self.max_ms, self.acks
        )
    }
}

/// `SAMPLE_BLOCKS` different `samples` arrays, rendered once.
pub fn sample_blocks(n: usize) -> Vec<String> {
    (0..SAMPLE_BLOCKS)
        .map(|block| {
            let rows: Vec<String> = (0..n)
                .map(|i| {
                    let phase = (i + block * 37) as f64 * 0.05;
                    format!(
                        "[{:.3},{:.3},{:.3},{:.1},{:.1},{:.1}]",
                        0.02 + phase.sin() * 0.5,
                        -0.98 + (phase * 0.3).cos() * 0.05,
                        0.11 + (phase * 1.7).sin() * 0.02,
                        150.0 * phase.cos(),
                        -0.4 + (phase * 0.9).sin() * 12.0,
                        0.2 + block as f64
                    )
                })
                .collect();
            format!("[{}]", rows.join(","))
        })
        .collect()
}

/// The current phase and one latency histogram (µs) per recorded phase.
pub struct Phases {
    current: AtomicU8,
    histograms: std::sync::Mutex<Vec<Histogram<u64>>>,
}

impl Phases {
    /// `count` phases, numbered from 0; nothing is recorded until [`Phases::set`].
    pub fn new(count: usize) -> Self {
        // 1 µs .. 60 s at 3 significant digits: valid bounds, so construction cannot fail.
        let h =
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
        Phases {
            current: AtomicU8::new(PHASE_NONE),
            histograms: std::sync::Mutex::new(vec![h; count]),
        }
    }

    pub fn set(&self, phase: u8) {
        self.current.store(phase, Ordering::Relaxed);
    }

    pub fn record(&self, phase: u8, latency: Duration) {
        // A poisoned lock only means another device task panicked; its figures are lost anyway.
        let Ok(mut histograms) = self.histograms.lock() else {
            return;
        };
        if let Some(h) = histograms.get_mut(usize::from(phase)) {
            let _ = h.record((latency.as_micros() as u64).max(1));
        }
    }

    pub fn latency(&self, phase: u8) -> Latency {
        self.histograms
            .lock()
            .ok()
            .and_then(|h| h.get(usize::from(phase)).map(Latency::of))
            .unwrap_or_default()
    }
}

/// How one simulated device sends.
#[derive(Clone)]
pub struct Pacing {
    /// Stop after this many batches (`None`: until `stop`).
    pub batches: Option<u64>,
    /// One batch per interval (`None`: as fast as the window allows).
    pub interval: Option<Duration>,
    /// Batches in flight (sent, not yet answered durable).
    pub window: usize,
    pub batch_samples: usize,
    /// The `rate_hz` the batches declare (and their `t0` spacing).
    pub rate_hz: f64,
    /// Stop sending; the device returns once its in-flight batches are answered.
    pub stop: CancellationToken,
}

/// One device: sends compact batches per `pacing`, records send → durable reply latencies in
/// `phases` under the phase current at send time; returns the batches acknowledged durable.
pub async fn drive(
    code: String,
    ws: Ws,
    pacing: Pacing,
    blocks: Arc<Vec<String>>,
    phases: Arc<Phases>,
) -> Result<u64, DeviceError> {
    let fail = |reason: String| DeviceError {
        device: code.clone(),
        reason,
    };
    let (mut tx, mut rx) = ws.split();
    // The first message is connection_established.
    let _ = rx.next().await;
    let mut sent_at: HashMap<u64, (Instant, u8)> = HashMap::new();
    let (mut next_seq, mut acked) = (0u64, 0u64);
    let mut next_send = Instant::now();
    loop {
        let now = Instant::now();
        let more = !pacing.stop.is_cancelled() && pacing.batches.is_none_or(|n| next_seq < n);
        let due = pacing.interval.is_none_or(|_| now >= next_send);
        if more && due && sent_at.len() < pacing.window {
            let message = batch_message(&pacing, next_seq, &blocks);
            tx.send(Message::text(message))
                .await
                .map_err(|e| fail(e.to_string()))?;
            sent_at.insert(
                next_seq,
                (Instant::now(), phases.current.load(Ordering::Relaxed)),
            );
            next_seq += 1;
            if let Some(i) = pacing.interval {
                next_send += i;
            }
            continue;
        }
        if !more && sent_at.is_empty() {
            return Ok(acked);
        }
        let wait = match pacing.interval {
            Some(_) if more && sent_at.len() < pacing.window => {
                next_send.saturating_duration_since(now)
            }
            _ => Duration::from_secs(10),
        };
        let message = match tokio::time::timeout(wait, rx.next()).await {
            Err(_) if sent_at.is_empty() || wait < Duration::from_secs(10) => continue,
            Err(_) => return Err(fail("no ack within 10 s".into())),
            Ok(None) => return Err(fail("connection closed".into())),
            Ok(Some(Err(e))) => return Err(fail(e.to_string())),
            Ok(Some(Ok(m))) => m,
        };
        let Message::Text(text) = message else {
            continue;
        };
        let reply: serde_json::Value =
            serde_json::from_str(text.as_str()).map_err(|e| fail(e.to_string()))?;
        if reply["durable"] != true {
            return Err(fail(format!("not durable: {reply}")));
        }
        let seq = reply["seq"].as_u64().unwrap_or(u64::MAX);
        if let Some((at, phase)) = sent_at.remove(&seq) {
            phases.record(phase, at.elapsed());
            acked += 1;
        }
    }
}

fn batch_message(pacing: &Pacing, seq: u64, blocks: &[String]) -> String {
    let t0 = 1_732_400_000_000i64
        + (seq as f64 * pacing.batch_samples as f64 * 1000.0 / pacing.rate_hz) as i64;
    let samples = &blocks[seq as usize % blocks.len()];
    format!(
        r#"{{"type":"batch_sensor_data","session_id":"bench","seq":{seq},"sensor_id":4,"t0":{t0},"rate_hz":{},"samples":{samples}}}"#,
        pacing.rate_hz.round()
    )
}

/// Waits for every task; returns the batches acknowledged and the number of failed devices.
pub async fn join(tasks: Vec<tokio::task::JoinHandle<Result<u64, DeviceError>>>) -> (u64, u64) {
    let (mut acked, mut errors) = (0, 0);
    for task in tasks {
        match task.await {
            Ok(Ok(n)) => acked += n,
            Ok(Err(e)) => {
                log::warn!("{e}");
                errors += 1;
            }
            Err(e) => {
                log::warn!("device task: {e}");
                errors += 1;
            }
        }
    }
    (acked, errors)
}

/// Connection caps for a bench daemon: every simulated device connects from 127.0.0.1, at once,
/// so the per-address cap and the handshake budget of a court (32, 64) would refuse a fleet.
pub const CONNECTION_CAPS: &str =
    "max_connections = 4096\nmax_connections_per_address = 4096\nmax_handshaking = 4096\n";

/// The head of a benchmark daemon's config: state under `dir`, an ephemeral loopback port, a
/// large journal with the given commit window, and limits no simulated device reaches.
pub fn daemon_config_head(dir: &std::path::Path, commit_interval: std::time::Duration) -> String {
    format!(
        "[gateway]\nvenue = \"bench\"\ncourt = \"bench\"\nstate_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [journal]\nmax_bytes = \"8GiB\"\ncommit_interval = \"{}ms\"\n\n\
         [limits]\nmessages_per_second = 100000\nidle_timeout = \"60s\"\n{CONNECTION_CAPS}",
        dir.display(),
        commit_interval.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_messages_parse_as_compact_batches() {
        let pacing = Pacing {
            batches: None,
            interval: None,
            window: 1,
            batch_samples: 100,
            rate_hz: 1000.0,
            stop: CancellationToken::new(),
        };
        let blocks = sample_blocks(100);
        let v: serde_json::Value =
            serde_json::from_str(&batch_message(&pacing, 3, &blocks)).expect("valid JSON");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["t0"], 1_732_400_000_300i64);
        assert_eq!(v["samples"].as_array().map(Vec::len), Some(100));
    }
}
