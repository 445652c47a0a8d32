//! `shuttlegate-tools bench ingest`: devices over loopback through the real daemon (a child
//! process running `shuttlegate run`), measuring what a venue cares about: samples per second
//! answered durable, the device's ack latency, and the daemon's CPU and memory.
//!
//! Each simulated device keeps `window` compact batches in flight (as durable firmware would)
//! and, with a `rate_hz`, paces itself to that many samples per second; without one it sends
//! as fast as the acks allow. Messages are pre-rendered so the load generator, which shares the
//! machine with the daemon, spends its CPU on sockets rather than on JSON.

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::device::{self, Pacing, Phases};

/// The one phase this bench records: the whole run.
const MEASURED: u8 = 0;

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
    #[error("{0}")]
    Device(#[from] device::DeviceError),
}

/// A `shuttlegate run` child; killed when dropped.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    /// The bound HTTP address (`IP:port`).
    pub(crate) addr: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        crate::children::kill(&mut self.child);
    }
}

fn start_daemon(exe: &Path, dir: &Path, bench: &IngestBench) -> Result<Daemon, BenchError> {
    let mut config = super::device::daemon_config_head(dir, bench.commit_interval);
    for i in 0..bench.devices {
        config.push_str(&format!(
            "\n[[devices]]\ncode = \"bench-{i:03}\"\ntoken = \"bench-token-{i:03}\"\n"
        ));
    }
    start_daemon_with(exe, dir, &config)
}

/// Starts `exe run` on `config` (written to `dir/bench.toml`); returns once it listens.
pub(crate) fn start_daemon_with(
    exe: &Path,
    dir: &Path,
    config: &str,
) -> Result<Daemon, BenchError> {
    let path = dir.join("bench.toml");
    std::fs::File::create(&path)?.write_all(config.as_bytes())?;
    let (child, addr) = spawn_daemon(exe, &path, Stdio::inherit())?
        .map_err(|line| BenchError::Daemon(format!("unexpected first line {line:?}")))?;
    Ok(Daemon { child, addr })
}

/// Starts `exe run -c config_path`, its stderr to `stderr`, and reads the first line it
/// prints: the child and the address it listens on; or, when it says anything else, the line,
/// the child killed (it would otherwise be left running).
pub(crate) fn spawn_daemon(
    exe: &Path,
    config_path: &Path,
    stderr: impl Into<Stdio>,
) -> std::io::Result<Result<(Child, String), String>> {
    let mut child = crate::children::spawn(
        Command::new(exe)
            .args(["run", "-c"])
            .arg(config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr),
    )?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line)?;
    }
    Ok(
        match line.trim().strip_prefix("shuttlegate listening http=") {
            Some(addr) => Ok((child, addr.to_owned())),
            None => {
                crate::children::kill(&mut child);
                Err(line)
            }
        },
    )
}

/// CPU seconds (user + system) and current and peak RSS (MiB) of `pid`, from /proc.
pub(super) fn process_usage(pid: u32) -> Option<(f64, f64, f64)> {
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

/// Runs the benchmark against a fresh daemon started from `exe`.
pub async fn run(exe: &Path, bench: IngestBench) -> Result<IngestReport, BenchError> {
    let dir = crate::children::scratch_dir()?;
    let daemon = start_daemon(exe, dir.path(), &bench)?;
    let pid = daemon.child.id();
    let blocks = Arc::new(device::sample_blocks(bench.batch_samples));
    let phases = Arc::new(Phases::new(1));
    let mut sockets = Vec::new();
    for i in 0..bench.devices {
        let code = format!("bench-{i:03}");
        let ws = device::connect(&daemon.addr, &code, &format!("bench-token-{i:03}")).await?;
        sockets.push((code, ws));
    }
    let stop = CancellationToken::new();
    let pacing = Pacing {
        batches: None,
        interval: bench
            .rate_hz
            .map(|r| Duration::from_secs_f64(bench.batch_samples as f64 / r)),
        window: bench.window,
        batch_samples: bench.batch_samples,
        rate_hz: bench.rate_hz.unwrap_or(1000.0),
        stop: stop.clone(),
    };
    let (cpu_before, _, _) = process_usage(pid).unwrap_or_default();
    let started = Instant::now();
    phases.set(MEASURED);
    let tasks = sockets
        .into_iter()
        .map(|(code, ws)| {
            tokio::spawn(device::drive(
                code,
                ws,
                pacing.clone(),
                blocks.clone(),
                phases.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(bench.duration).await;
    stop.cancel();
    let (batches, errors) = device::join(tasks).await;
    let elapsed = started.elapsed();
    let (cpu_after, rss, peak) = process_usage(pid).unwrap_or_default();
    let latency = phases.latency(MEASURED);
    Ok(IngestReport {
        batches,
        samples: batches * bench.batch_samples as u64,
        elapsed,
        ack_p50_ms: latency.p50_ms,
        ack_p99_ms: latency.p99_ms,
        ack_max_ms: latency.max_ms,
        daemon_cpu_cores: (cpu_after - cpu_before) / elapsed.as_secs_f64(),
        daemon_rss_mib: rss,
        daemon_peak_rss_mib: peak,
        errors,
    })
}
