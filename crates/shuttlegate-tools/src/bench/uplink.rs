//! `shuttlegate-tools bench uplink`: the MQTT uplink of the real daemon (a `shuttlegate run`
//! child) draining a backlog into a real Mosquitto, and what that does to the devices' ack latency.
//!
//! A run (1) starts Mosquitto on a free loopback port, creates the cloud subscriber's
//! persistent session on it and stops it again; (2) starts the daemon with `[uplink.mqtt]`
//! pointing at that (now closed) port and feeds it a backlog of compact batches over WebSocket,
//! as fast as the daemon acknowledges them durable, so the backlog is really in the journal;
//! (3) paces a few live devices and times send → durable reply with the broker down (idle
//! uplink), then (4) brings the broker back and counts, at the subscriber, distinct journal ids
//! until every id of the backlog has arrived (live devices still sending; their latency counts
//! as "draining" from the first delivered record on), and (5) measures the live latency again
//! once the backlog is gone. The subscriber's session exists before the
//! daemon can connect, so nothing published is missed whatever the sink's reconnect timing.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use super::device::Latency;
use super::device::{self, PHASE_NONE, Pacing, Phases, Ws, sample_blocks};
use super::ingest::spawn_daemon;

/// The topic prefix the bench configures; the subscriber takes `{PREFIX}/#`.
const PREFIX: &str = "bench";
/// The subscriber's MQTT client id (its persistent session outlives the broker restart).
const CLOUD_ID: &str = "bench-cloud";
/// Live batches in flight per device (durable firmware keeps a few).
const LIVE_WINDOW: usize = 8;
/// Latencies before this much of a phase has passed are a warm-up and not recorded.
const WARM_UP: Duration = Duration::from_secs(1);

/// One benchmark run.
#[derive(Debug, Clone)]
pub struct UplinkBench {
    /// Devices whose data makes up the backlog.
    pub devices: usize,
    /// Samples per second per device (sizes the backlog and paces the live devices).
    pub rate_hz: f64,
    pub batch_samples: usize,
    /// How much court time the backlog holds.
    pub backlog: Duration,
    /// Paced devices whose ack latency is measured.
    pub live_devices: usize,
    /// Length of each idle latency measurement (before the broker starts, after the drain).
    pub idle: Duration,
    /// Batches in flight per device while the backlog is fed.
    pub window: usize,
    /// `uplink.mqtt.replay_rate`, records/s.
    pub replay_rate: u32,
    /// `uplink.mqtt.inflight`.
    pub inflight: u16,
    /// Give up waiting for the drain after this long (the report then says so).
    pub drain_timeout: Duration,
    /// The journal's group-commit window.
    pub commit_interval: Duration,
}

impl UplinkBench {
    /// Batches the backlog holds: devices × rate × backlog ÷ samples per batch.
    pub fn backlog_batches(&self) -> u64 {
        let samples = self.devices as f64 * self.rate_hz * self.backlog.as_secs_f64();
        (samples / self.batch_samples.max(1) as f64).round() as u64
    }

    fn batch_interval(&self) -> Duration {
        Duration::from_secs_f64(self.batch_samples as f64 / self.rate_hz.max(f64::MIN_POSITIVE))
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct UplinkReport {
    pub bench: UplinkBench,
    /// Batches fed and acknowledged durable.
    pub fed_batches: u64,
    pub feed_elapsed: Duration,
    /// The journal's ids when the broker came up: the backlog to deliver.
    pub backlog_ids: (u64, u64),
    /// Broker start → first backlog record at the subscriber (includes the sink's backoff).
    pub first_delivery: Option<Duration>,
    /// Broker start → every backlog id at the subscriber; `None`: not within the timeout.
    pub drained: Option<Duration>,
    /// Distinct backlog ids received.
    pub delivered_ids: u64,
    /// Messages received (any id, duplicates included) and their payload bytes.
    pub messages: u64,
    pub payload_bytes: u64,
    /// Backlog ids received more than once.
    pub duplicates: u64,
    /// Live latency with the broker down (the sink only retrying).
    pub idle_disconnected: Latency,
    /// Live latency while the backlog drains (first delivered record → last backlog id).
    pub draining: Latency,
    /// Live latency with the broker up and the backlog gone.
    pub idle_connected: Latency,
    /// Live devices that failed (their figures are missing from the histograms).
    pub live_errors: u64,
    /// The daemon's CPU use (share of one core) in the three phases: idle with the broker
    /// down, draining, idle with the broker up.
    pub daemon_cpu_cores: [f64; 3],
}

impl UplinkReport {
    pub fn backlog_records(&self) -> u64 {
        self.backlog_ids.1 + 1 - self.backlog_ids.0
    }

    /// Records/s from the first delivered record to the last backlog id.
    pub fn drain_rate(&self) -> Option<f64> {
        let span = self.drained?.checked_sub(self.first_delivery?)?;
        Some(self.backlog_records() as f64 / span.as_secs_f64())
    }

    /// Draining p99 over the connected-idle p99 (the issue's "≤ 2× idle").
    pub fn p99_ratio(&self) -> f64 {
        self.draining.p99_ms / self.idle_connected.p99_ms
    }
}

impl std::fmt::Display for UplinkReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.bench;
        let secs = |d: Option<Duration>| {
            d.map_or("not reached".into(), |d| {
                format!("{:.1} s", d.as_secs_f64())
            })
        };
        writeln!(
            f,
            "backlog: {} devices x {} Hz x {:?} = {} batches of {} samples, fed in {:.1} s ({:.0} batches/s)",
            b.devices,
            b.rate_hz,
            b.backlog,
            self.fed_batches,
            b.batch_samples,
            self.feed_elapsed.as_secs_f64(),
            self.fed_batches as f64 / self.feed_elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "journal ids {}..={} ({} records) to deliver; uplink replay_rate {}/s, inflight {}",
            self.backlog_ids.0,
            self.backlog_ids.1,
            self.backlog_records(),
            b.replay_rate,
            b.inflight
        )?;
        writeln!(
            f,
            "drain: broker start -> first record {}, -> all {} ids {} (target <= 60 s for a 1 h backlog)",
            secs(self.first_delivery),
            self.backlog_records(),
            secs(self.drained)
        )?;
        writeln!(
            f,
            "  {} of {} ids delivered; {:.0} records/s from first record to last; {} messages, {:.1} MB payload, {} duplicate ids",
            self.delivered_ids,
            self.backlog_records(),
            self.drain_rate().unwrap_or(0.0),
            self.messages,
            self.payload_bytes as f64 / 1e6,
            self.duplicates
        )?;
        writeln!(
            f,
            "live ack latency, {} devices x {} Hz in batches of {}:",
            b.live_devices, b.rate_hz, b.batch_samples
        )?;
        writeln!(f, "  idle, broker down:      {}", self.idle_disconnected)?;
        writeln!(f, "  while draining:         {}", self.draining)?;
        writeln!(f, "  idle, broker up:        {}", self.idle_connected)?;
        write!(
            f,
            "  p99 draining / p99 idle (broker up) = {:.2} (target <= 2); / p99 idle (broker down) = {:.2}; live device errors {}\n\
             daemon CPU (cores): idle broker down {:.2}, draining {:.2}, idle broker up {:.2}",
            self.p99_ratio(),
            self.draining.p99_ms / self.idle_disconnected.p99_ms,
            self.live_errors,
            self.daemon_cpu_cores[0],
            self.daemon_cpu_cores[1],
            self.daemon_cpu_cores[2]
        )
    }
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UplinkBenchError {
    #[error("mosquitto: {0} (is it installed? `apt-get install mosquitto`)")]
    Broker(String),
    #[error("starting the daemon: {0}")]
    Daemon(String),
    #[error("the cloud subscriber: {0}")]
    Subscriber(String),
    #[error("reading the journal: {0}")]
    Journal(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Device(#[from] device::DeviceError),
}

/// A free TCP port on 127.0.0.1 (the OS picks it; the listener is closed before use).
fn free_port() -> Result<u16, UplinkBenchError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Mosquitto with its own config and persistence; killed (by PID) on drop.
struct Broker {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    async fn start(dir: &Path, port: u16) -> Result<Self, UplinkBenchError> {
        let mut broker = Broker {
            port,
            dir: dir.to_owned(),
            child: None,
        };
        broker.spawn().await?;
        Ok(broker)
    }

    async fn spawn(&mut self) -> Result<(), UplinkBenchError> {
        let conf = self.dir.join("mosquitto.conf");
        let data = self.dir.join("mosquitto-data");
        std::fs::create_dir_all(&data)?;
        // Queue limits are raised so the subscriber's session can hold the whole backlog.
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\nuser root\n\
                 persistence_location {}/\nmax_queued_messages 10000000\nmax_inflight_messages 100\n",
                self.port,
                data.display()
            ),
        )?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))?;
        let child = crate::children::spawn(
            Command::new("mosquitto")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(log),
        )
        .map_err(|e| UplinkBenchError::Broker(e.to_string()))?;
        self.child = Some(child);
        self.wait_listening().await
    }

    /// Polls the port: Mosquitto says nothing on stdout when it is ready.
    async fn wait_listening(&mut self) -> Result<(), UplinkBenchError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(UplinkBenchError::Broker(format!(
                    "exited with {status}: {}",
                    std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
                )));
            }
            if Instant::now() > deadline {
                return Err(UplinkBenchError::Broker(format!(
                    "nothing listens on port {} after 10 s",
                    self.port
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// SIGTERM (Mosquitto saves its persistent sessions), then waits for the process.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::children::terminate(&mut child);
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::children::kill(&mut child);
        }
    }
}

/// The `shuttlegate run` child; killed on drop.
struct Daemon {
    child: Child,
    addr: String,
    state_dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        crate::children::kill(&mut self.child);
    }
}

fn feeder(i: usize) -> (String, String) {
    (format!("feed-{i:03}"), format!("feed-token-{i:03}"))
}

fn live(i: usize) -> (String, String) {
    (format!("live-{i:03}"), format!("live-token-{i:03}"))
}

fn daemon_config(dir: &Path, broker_port: u16, bench: &UplinkBench) -> String {
    let mut config = format!(
        "[gateway]\nvenue = \"bench\"\ncourt = \"bench\"\nstate_dir = \"{dir}\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\n\
         [journal]\nmax_bytes = \"8GiB\"\ncommit_interval = \"{commit}ms\"\n\n\
         [limits]\nmessages_per_second = 100000\nidle_timeout = \"600s\"\n{caps}\n\
         [uplink.mqtt]\nenabled = true\nurl = \"mqtt://127.0.0.1:{broker_port}\"\n\
         topic_prefix = \"{PREFIX}\"\nreplay_rate = {rate}\ninflight = {inflight}\n",
        dir = dir.display(),
        commit = bench.commit_interval.as_millis(),
        rate = bench.replay_rate,
        inflight = bench.inflight,
        caps = super::device::CONNECTION_CAPS,
    );
    let devices = (0..bench.devices)
        .map(feeder)
        .chain((0..bench.live_devices).map(live));
    for (code, token) in devices {
        config.push_str(&format!(
            "\n[[devices]]\ncode = \"{code}\"\ntoken = \"{token}\"\n"
        ));
    }
    config
}

fn start_daemon(
    exe: &Path,
    dir: &Path,
    broker_port: u16,
    bench: &UplinkBench,
) -> Result<Daemon, UplinkBenchError> {
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir)?;
    let path = dir.join("bench.toml");
    std::fs::File::create(&path)?
        .write_all(daemon_config(&state_dir, broker_port, bench).as_bytes())?;
    let log = std::fs::File::create(dir.join("daemon.log"))?;
    let (child, addr) = spawn_daemon(exe, &path, log)?.map_err(|line| {
        let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
        UplinkBenchError::Daemon(format!("unexpected first line {line:?}; log: {log}"))
    })?;
    Ok(Daemon {
        addr,
        child,
        state_dir,
    })
}

/// Which histogram a live ack goes to (by the phase at send time).
const PHASE_IDLE_DOWN: u8 = 0;
const PHASE_DRAINING: u8 = 1;
const PHASE_IDLE_UP: u8 = 2;

/// Connects device `(code, token)`; returns its code with the socket.
async fn connect_device(
    addr: &str,
    (code, token): (String, String),
) -> Result<(String, Ws), UplinkBenchError> {
    let ws = device::connect(addr, &code, &token).await?;
    Ok((code, ws))
}

/// What the cloud subscriber has seen of the backlog so far.
#[derive(Debug, Clone, Default)]
struct Tally {
    first: Option<Instant>,
    drained: Option<Instant>,
    distinct: u64,
    duplicates: u64,
    messages: u64,
    bytes: u64,
}

/// The cloud side: a rumqttc client with a persistent session on `{PREFIX}/#`.
fn cloud_options(port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(CLOUD_ID, "127.0.0.1", port);
    options
        .set_clean_session(false)
        .set_max_packet_size(4 << 20, 4 << 20)
        .set_keep_alive(Duration::from_secs(30));
    options
}

/// Creates the subscriber's session (subscription included) on the broker, then leaves.
async fn create_cloud_session(port: u16) -> Result<(), UplinkBenchError> {
    let (client, mut eventloop) = AsyncClient::new(cloud_options(port), 16);
    client
        .subscribe(format!("{PREFIX}/#"), QoS::AtLeastOnce)
        .await
        .map_err(|e| UplinkBenchError::Subscriber(e.to_string()))?;
    let subscribed = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::SubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(UplinkBenchError::Subscriber(e.to_string())),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .map_err(|_| UplinkBenchError::Subscriber("no SubAck within 10 s".into()))??;
    let _ = client.disconnect().await;
    // Let the Disconnect packet go out; an error here only means the broker closed first.
    let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
    Ok(())
}

/// The journal id in a payload: binary raw envelope or JSON envelope; `None` for messages that
/// are not journal records (gateway status, command results).
fn journal_id(topic: &str, payload: &[u8]) -> Option<u64> {
    if payload.starts_with(shuttlegate::uplink::envelope::RAW_MAGIC) {
        return shuttlegate::uplink::envelope::decode_raw(payload)
            .ok()
            .map(|(h, _)| h.id);
    }
    if topic.ends_with("/status") && !topic.contains("/devices/") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("kind")?;
    v["id"].as_u64()
}

/// Reconnects to the session and counts distinct backlog ids until `stop`.
fn spawn_cloud(
    port: u16,
    ids: (u64, u64),
    stop: CancellationToken,
) -> (watch::Receiver<Tally>, tokio::task::JoinHandle<()>) {
    let (tally_tx, tally_rx) = watch::channel(Tally::default());
    let task = tokio::spawn(async move {
        let (_client, mut eventloop) = AsyncClient::new(cloud_options(port), 16);
        let expected = ids.1 + 1 - ids.0;
        let mut seen = vec![false; expected as usize];
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Incoming::Publish(p))) => tally_tx.send_modify(|t| {
                    t.messages += 1;
                    t.bytes += p.payload.len() as u64;
                    let Some(id) = journal_id(&p.topic, &p.payload) else {
                        return;
                    };
                    let Some(slot) = id.checked_sub(ids.0).and_then(|i| seen.get_mut(i as usize))
                    else {
                        return;
                    };
                    if std::mem::replace(slot, true) {
                        t.duplicates += 1;
                        return;
                    }
                    t.distinct += 1;
                    let now = Instant::now();
                    t.first.get_or_insert(now);
                    if t.distinct == expected {
                        t.drained = Some(now);
                    }
                }),
                Ok(_) => {}
                Err(e) => {
                    log::warn!("cloud subscriber: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    (tally_rx, task)
}

/// The journal's id range, read from its files while the daemon runs (`journal stats`). The
/// bench needs contiguous ids to know which ones the subscriber must see.
fn journal_ids(state_dir: &Path) -> Result<(u64, u64), UplinkBenchError> {
    let mut out = Vec::new();
    shuttlegate::journal::tools::stats(&state_dir.join("journal"), &mut out)
        .map_err(|e| UplinkBenchError::Journal(e.to_string()))?;
    let text = String::from_utf8_lossy(&out);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .ok_or_else(|| UplinkBenchError::Journal(format!("no `{prefix}` in stats: {text}")))
    };
    let records: u64 = field("records: ")?
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| UplinkBenchError::Journal(format!("bad record count in {text}")))?;
    let ids = field("ids: ")?;
    let (first, last) = ids
        .split_once("..=")
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .ok_or_else(|| UplinkBenchError::Journal(format!("bad id range `{ids}`")))?;
    if last + 1 - first != records {
        return Err(UplinkBenchError::Journal(format!(
            "ids {first}..={last} are not contiguous ({records} records)"
        )));
    }
    Ok((first, last))
}

/// Feeds the backlog through `bench.devices` connections, unpaced; returns batches acked.
async fn feed_backlog(
    daemon: &Daemon,
    bench: &UplinkBench,
    blocks: &Arc<Vec<String>>,
    phases: &Arc<Phases>,
) -> Result<u64, UplinkBenchError> {
    let total = bench.backlog_batches();
    let per_device = total / bench.devices as u64;
    let mut tasks = Vec::new();
    for i in 0..bench.devices {
        let (code, ws) = connect_device(&daemon.addr, feeder(i)).await?;
        let share = per_device + u64::from((i as u64) < total % bench.devices as u64);
        let pacing = Pacing {
            batches: Some(share),
            interval: None,
            window: bench.window,
            batch_samples: bench.batch_samples,
            rate_hz: bench.rate_hz,
            stop: CancellationToken::new(),
        };
        tasks.push(tokio::spawn(device::drive(
            code,
            ws,
            pacing,
            blocks.clone(),
            phases.clone(),
        )));
    }
    let (acked, errors) = device::join(tasks).await;
    if errors > 0 {
        return Err(UplinkBenchError::Device(device::DeviceError {
            device: "feeder".into(),
            reason: format!("{errors} feeding devices failed (see the log)"),
        }));
    }
    Ok(acked)
}

/// CPU seconds (user + system) `pid` has used, from /proc (0 where /proc cannot be read).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start past the last ')';
    // utime and stime are the 12th and 13th of them, in USER_HZ (100 on Linux).
    let fields: Vec<&str> = stat
        .rfind(')')
        .map_or("", |i| stat.get(i + 2..).unwrap_or(""))
        .split(' ')
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    ticks(11)
        .zip(ticks(12))
        .map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// Measures the daemon's CPU use as a share of one core between `start` and now.
struct CpuMeter {
    pid: u32,
    cpu: f64,
    at: Instant,
}

impl CpuMeter {
    fn start(pid: u32) -> Self {
        CpuMeter {
            pid,
            cpu: cpu_seconds(pid),
            at: Instant::now(),
        }
    }

    fn cores(&self) -> f64 {
        (cpu_seconds(self.pid) - self.cpu) / self.at.elapsed().as_secs_f64().max(1e-9)
    }
}

/// Runs `phase` for `length`, the first [`WARM_UP`] of it unrecorded; returns the daemon's CPU
/// use (cores) over the recorded part.
async fn measure_phase(phases: &Phases, phase: u8, length: Duration, pid: u32) -> f64 {
    phases.set(PHASE_NONE);
    tokio::time::sleep(WARM_UP.min(length / 2)).await;
    phases.set(phase);
    let meter = CpuMeter::start(pid);
    tokio::time::sleep(length.saturating_sub(WARM_UP.min(length / 2))).await;
    phases.set(PHASE_NONE);
    meter.cores()
}

/// Runs the benchmark against a fresh daemon started from `exe` and a Mosquitto it starts.
pub async fn run(exe: &Path, bench: UplinkBench) -> Result<UplinkReport, UplinkBenchError> {
    if bench.devices == 0 || bench.batch_samples == 0 || bench.rate_hz <= 0.0 {
        return Err(UplinkBenchError::Daemon(
            "devices, batch samples and rate must be positive".into(),
        ));
    }
    let dir = crate::children::scratch_dir()?;
    let port = free_port()?;
    let mut broker = Broker::start(dir.path(), port).await?;
    create_cloud_session(port).await?;
    broker.stop();

    let daemon = start_daemon(exe, dir.path(), port, &bench)?;
    let blocks = Arc::new(sample_blocks(bench.batch_samples));
    let phases = Arc::new(Phases::new(3));
    eprintln!(
        "bench uplink: feeding {} batches (broker down)…",
        bench.backlog_batches()
    );
    let fed_at = Instant::now();
    let fed_batches = feed_backlog(&daemon, &bench, &blocks, &phases).await?;
    let feed_elapsed = fed_at.elapsed();
    let backlog_ids = journal_ids(&daemon.state_dir)?;

    let stop_live = CancellationToken::new();
    let live_tasks = start_live(&daemon, &bench, &blocks, &phases, &stop_live).await?;
    eprintln!(
        "bench uplink: live latency, broker down ({:?})…",
        bench.idle
    );
    let pid = daemon.child.id();
    let mut daemon_cpu_cores = [0.0; 3];
    daemon_cpu_cores[0] = measure_phase(&phases, PHASE_IDLE_DOWN, bench.idle, pid).await;

    eprintln!(
        "bench uplink: broker up, draining journal ids {}..={}…",
        backlog_ids.0, backlog_ids.1
    );
    let broker_up = Instant::now();
    broker.spawn().await?;
    let stop_cloud = CancellationToken::new();
    let (mut tally, cloud) = spawn_cloud(port, backlog_ids, stop_cloud.clone());
    // Latency counts as "while draining" from the first delivered record: before it the sink
    // is still waiting out its reconnect backoff and the uplink is as idle as before.
    let mut draining_meter = None;
    let drain = async {
        let _ = tally.wait_for(|t| t.first.is_some()).await;
        phases.set(PHASE_DRAINING);
        draining_meter = Some(CpuMeter::start(pid));
        let _ = tally.wait_for(|t| t.drained.is_some()).await;
    };
    let _ = tokio::time::timeout(bench.drain_timeout, drain).await;
    daemon_cpu_cores[1] = draining_meter.map_or(0.0, |m| m.cores());
    phases.set(PHASE_NONE);
    let drained_tally = tally.borrow().clone();

    if drained_tally.drained.is_some() {
        eprintln!(
            "bench uplink: live latency, broker up, backlog gone ({:?})…",
            bench.idle
        );
        daemon_cpu_cores[2] = measure_phase(&phases, PHASE_IDLE_UP, bench.idle, pid).await;
    }
    stop_live.cancel();
    let (_, live_errors) = device::join(live_tasks).await;
    stop_cloud.cancel();
    let _ = cloud.await;
    drop(daemon);
    broker.stop();

    let since_up = |at: Option<Instant>| at.map(|t| t.saturating_duration_since(broker_up));
    Ok(UplinkReport {
        fed_batches,
        feed_elapsed,
        backlog_ids,
        first_delivery: since_up(drained_tally.first),
        drained: since_up(drained_tally.drained),
        delivered_ids: drained_tally.distinct,
        messages: drained_tally.messages,
        payload_bytes: drained_tally.bytes,
        duplicates: drained_tally.duplicates,
        idle_disconnected: phases.latency(PHASE_IDLE_DOWN),
        draining: phases.latency(PHASE_DRAINING),
        idle_connected: phases.latency(PHASE_IDLE_UP),
        live_errors,
        daemon_cpu_cores,
        bench,
    })
}

/// Connects the live devices and starts them, paced, until `stop`.
async fn start_live(
    daemon: &Daemon,
    bench: &UplinkBench,
    blocks: &Arc<Vec<String>>,
    phases: &Arc<Phases>,
    stop: &CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<Result<u64, device::DeviceError>>>, UplinkBenchError> {
    let mut tasks = Vec::new();
    for i in 0..bench.live_devices {
        let (code, ws) = connect_device(&daemon.addr, live(i)).await?;
        let pacing = Pacing {
            batches: None,
            interval: Some(bench.batch_interval()),
            window: LIVE_WINDOW,
            batch_samples: bench.batch_samples,
            rate_hz: bench.rate_hz,
            stop: stop.clone(),
        };
        tasks.push(tokio::spawn(device::drive(
            code,
            ws,
            pacing,
            blocks.clone(),
            phases.clone(),
        )));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench() -> UplinkBench {
        UplinkBench {
            devices: 4,
            rate_hz: 1000.0,
            batch_samples: 100,
            backlog: Duration::from_secs(3600),
            live_devices: 4,
            idle: Duration::from_secs(10),
            window: 16,
            replay_rate: 5000,
            inflight: 32,
            drain_timeout: Duration::from_secs(300),
            commit_interval: Duration::from_millis(2),
        }
    }

    #[test]
    fn a_court_hour_is_144_000_batches() {
        assert_eq!(bench().backlog_batches(), 144_000);
        let minute = UplinkBench {
            backlog: Duration::from_secs(60),
            batch_samples: 50,
            ..bench()
        };
        assert_eq!(minute.backlog_batches(), 4800);
    }

    #[test]
    fn journal_ids_come_from_both_envelopes_and_status_is_not_a_record() {
        let json = br#"{"id":17,"kind":"event","ts_ms":1,"device":"d","message":{}}"#;
        assert_eq!(journal_id("bench/v/c/events", json), Some(17));
        assert_eq!(journal_id("bench/v/c/devices/d/status", json), Some(17));
        let status = br#"{"state":"online","backlog_records":3,"cursor":9}"#;
        assert_eq!(journal_id("bench/v/c/status", status), None);
        assert_eq!(journal_id("bench/v/c/events", b"not json"), None);
    }

    #[tokio::test]
    async fn journal_ids_are_read_from_a_real_journal() {
        use shuttlegate::journal::{Document, Journal, JournalOptions, RecordBody, WhenFull};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut options = JournalOptions::new(dir.path().join("journal"));
        options.max_bytes = 64 << 20;
        options.when_full = WhenFull::Refuse;
        options.commit_interval = Duration::from_millis(1);
        options.segment_bytes = 4096;
        let (journal, _) = Journal::open(options).expect("journal opens");
        for n in 0..40 {
            let doc = Document {
                device: Some("d".into()),
                session_id: None,
                json: format!(r#"{{"type":"note","n":{n}}}"#),
            };
            journal
                .append(RecordBody::Event(doc))
                .await
                .expect("append");
        }
        journal.close().await.expect("close");
        let (first, last) = journal_ids(dir.path()).expect("stats parse");
        assert_eq!(last + 1 - first, 40);
    }

    #[test]
    fn cpu_seconds_grow_while_this_process_works() {
        let before = cpu_seconds(std::process::id());
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_seconds(std::process::id()) > before);
    }
}
