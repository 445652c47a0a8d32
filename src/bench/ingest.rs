//! `shuttlegate bench ingest`: devices over loopback through the real daemon (a child process
//! running `shuttlegate run`), measuring what a venue cares about: samples per second answered
//! durable, the device's ack latency, and the daemon's CPU and memory.
//!
//! Each simulated device keeps `window` compact batches in flight (as durable firmware would)
//! and, with a `rate_hz`, paces itself to that many samples per second; without one it sends
//! as fast as the acks allow. Messages are pre-rendered so the load generator, which shares the
//! machine with the daemon, spends its CPU on sockets rather than on JSON.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

/// One benchmark run.
#[derive(Debug, Clone)]
pub struct IngestBench {
    pub devices: usize,
    pub batch_samples: usize,
    /// Samples per second per device; `None`: as fast as acks come back.
    pub rate_hz: Option<f64>,
    pub duration: Duration,
    /// Batches in flight per device.
    pub window: usize,
    pub commit_interval: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub batches: u64,
    pub samples: u64,
    pub elapsed: Duration,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_max_ms: f64,
    /// Daemon CPU time over the run, as a share of one core.
    pub daemon_cpu_cores: f64,
    pub daemon_rss_mib: f64,
    pub daemon_peak_rss_mib: f64,
    pub errors: u64,
}

impl IngestReport {
    pub fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>10.0} samples/s durable ({} batches in {:.1} s) | ack p50 {:.2} ms p99 {:.2} ms max {:.1} ms | daemon CPU {:.2} cores, RSS {:.1} MiB (peak {:.1} MiB) | errors {}",
            self.samples_per_s(),
            self.batches,
            self.elapsed.as_secs_f64(),
            self.ack_p50_ms,
            self.ack_p99_ms,
            self.ack_max_ms,
            self.daemon_cpu_cores,
            self.daemon_rss_mib,
            self.daemon_peak_rss_mib,
            self.errors
        )
    }
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("starting the daemon: {0}")]
    Daemon(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("device {device}: {reason}")]
    Device { device: String, reason: String },
}

struct Daemon {
    child: Child,
    addr: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon(exe: &Path, dir: &Path, bench: &IngestBench) -> Result<Daemon, BenchError> {
    let mut config = format!(
        "[gateway]\nvenue = \"bench\"\ncourt = \"bench\"\nstate_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [journal]\nmax_bytes = \"8GiB\"\ncommit_interval = \"{}ms\"\n\n\
         [limits]\nmessages_per_second = 100000\nidle_timeout = \"60s\"\n",
        dir.display(),
        bench.commit_interval.as_millis()
    );
    for i in 0..bench.devices {
        config.push_str(&format!(
            "\n[[devices]]\ncode = \"bench-{i:03}\"\ntoken = \"bench-token-{i:03}\"\n"
        ));
    }
    let path = dir.join("bench.toml");
    std::fs::File::create(&path)?.write_all(config.as_bytes())?;
    let mut child = Command::new(exe)
        .args(["run", "-c"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| BenchError::Daemon("no stdout".into()))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("shuttlegate listening http=")
        .ok_or_else(|| BenchError::Daemon(format!("unexpected first line {line:?}")))?
        .to_owned();
    Ok(Daemon { child, addr })
}

/// CPU seconds (user + system) and current and peak RSS (MiB) of `pid`, from /proc.
fn process_usage(pid: u32) -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start past the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = (fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?) / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<f64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((cpu, kib("VmRSS:")? / 1024.0, kib("VmHWM:")? / 1024.0))
}

/// The fixed part of every batch: `samples` rendered once.
fn samples_json(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let phase = i as f64 * 0.05;
            format!(
                "[{:.3},{:.3},{:.3},{:.1},{:.1},{:.1}]",
                0.02 + phase.sin() * 0.5,
                -0.98,
                0.11,
                150.0 * phase.cos(),
                -0.4,
                0.2
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

/// Runs the benchmark against a fresh daemon started from `exe`.
pub async fn run(exe: &Path, bench: IngestBench) -> Result<IngestReport, BenchError> {
    let dir = tempfile::tempdir()?;
    let daemon = start_daemon(exe, dir.path(), &bench)?;
    let pid = daemon.child.id();
    let samples = Arc::new(samples_json(bench.batch_samples));
    let histogram = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
            .map_err(|e| BenchError::Daemon(e.to_string()))?,
    ));
    let mut sockets = Vec::new();
    for i in 0..bench.devices {
        let url = format!(
            "ws://{}/ws/esp32/bench-{i:03}/?token=bench-token-{i:03}",
            daemon.addr
        );
        let (ws, _) =
            tokio_tungstenite::connect_async(&url)
                .await
                .map_err(|e| BenchError::Device {
                    device: format!("bench-{i:03}"),
                    reason: e.to_string(),
                })?;
        sockets.push(ws);
    }
    let (cpu_before, _, _) = process_usage(pid).unwrap_or_default();
    let started = Instant::now();
    let deadline = started + bench.duration;
    let mut tasks = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(device(
            i,
            ws,
            bench.clone(),
            samples.clone(),
            histogram.clone(),
            deadline,
        )));
    }
    let mut batches = 0;
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(n)) => batches += n,
            Ok(Err(e)) => {
                log::warn!("{e}");
                errors += 1;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = started.elapsed();
    let (cpu_after, rss, peak) = process_usage(pid).unwrap_or_default();
    let h = histogram.lock().await;
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(IngestReport {
        batches,
        samples: batches * bench.batch_samples as u64,
        elapsed,
        ack_p50_ms: ms(h.value_at_quantile(0.5)),
        ack_p99_ms: ms(h.value_at_quantile(0.99)),
        ack_max_ms: ms(h.max()),
        daemon_cpu_cores: (cpu_after - cpu_before) / elapsed.as_secs_f64(),
        daemon_rss_mib: rss,
        daemon_peak_rss_mib: peak,
        errors,
    })
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One device: keeps `window` batches in flight, paced to `rate_hz` if given, until `deadline`;
/// returns the batches acknowledged durable.
async fn device(
    index: usize,
    ws: Ws,
    bench: IngestBench,
    samples: Arc<String>,
    histogram: Arc<Mutex<Histogram<u64>>>,
    deadline: Instant,
) -> Result<u64, BenchError> {
    let name = format!("bench-{index:03}");
    let fail = |reason: String| BenchError::Device {
        device: name.clone(),
        reason,
    };
    let (mut tx, mut rx) = ws.split();
    // The first message is connection_established.
    let _ = rx.next().await;
    let interval = bench
        .rate_hz
        .map(|r| Duration::from_secs_f64(bench.batch_samples as f64 / r));
    let mut sent_at: HashMap<u64, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut next_seq = 0u64;
    let mut acked = 0u64;
    let mut next_send = Instant::now();
    let t0 = 1_732_400_000_000i64;
    loop {
        let now = Instant::now();
        let due = interval.is_none_or(|_| now >= next_send);
        if now < deadline && sent_at.len() < bench.window && due {
            let message = format!(
                r#"{{"type":"batch_sensor_data","session_id":"bench","seq":{next_seq},"sensor_id":4,"t0":{},"rate_hz":1000,"samples":{samples}}}"#,
                t0 + next_seq as i64 * bench.batch_samples as i64
            );
            tx.send(Message::text(message))
                .await
                .map_err(|e| fail(e.to_string()))?;
            sent_at.insert(next_seq, Instant::now());
            next_seq += 1;
            if let Some(i) = interval {
                next_send += i;
            }
            continue;
        }
        if now >= deadline && sent_at.is_empty() {
            break;
        }
        let wait = match interval {
            Some(_) if sent_at.len() < bench.window && now < deadline => {
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
        if let Some(at) = sent_at.remove(&seq) {
            latencies.push(at.elapsed().as_micros() as u64);
            acked += 1;
        }
    }
    let mut h = histogram.lock().await;
    for us in latencies {
        let _ = h.record(us.max(1));
    }
    Ok(acked)
}
