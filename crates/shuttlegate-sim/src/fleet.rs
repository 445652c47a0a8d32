//! Many simulated hubs at once, against any gateway: what `simulate`, `demo` and the tests run.
//! [`run_from_outside`] is `simulate`'s whole run, V3.3 sessions started through the admin API.
//!
//! A fleet is the hubs (WebSocket clients, [`super::client`]) plus what feeds them, in real
//! time: either the kinematic court simulator ([`Motion::Court`]: players in rallies, swings
//! with ground truth) or a still source ([`Motion::Still`]: sensors at rest with noise, cheap,
//! for load and durability tests whose content does not matter).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::admin::{AdminClient, AdminError};
use super::client::{self, Acked, Firmware, HubError, HubOptions, HubReport, time_of_day_stamp};
use super::{CourtConfig, CourtSim, SimDevice, SimPlayer};
use shuttlegate_core::batch::{
    BatchForm, BodyPosition, CompactBatch, SeedBatch, SeedFrame, SensorBatch,
};

/// What the hubs' sensors see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Motion {
    /// Players in rallies: the kinematic swing model, with ground truth.
    Court,
    /// Sensors at rest with noise: cheap, for load tests.
    Still,
}

/// A fleet of hubs of one firmware kind.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub url: String,
    pub devices: usize,
    pub firmware: Firmware,
    /// Samples per second per node.
    pub rate_hz: f64,
    /// How long the hubs collect.
    pub duration: Duration,
    /// Device codes are `{code_prefix}{01..}`.
    pub code_prefix: String,
    /// Tokens are `{token_prefix}{01..}`; none for V3.3.
    pub token_prefix: Option<String>,
    /// Compact form: samples per batch.
    pub batch_samples: usize,
    /// The court's UTC offset, for V3.3's local-time stamps.
    pub utc_offset_s: i32,
    pub seed: u64,
    pub motion: Motion,
}

impl FleetOptions {
    pub fn code(&self, i: usize) -> String {
        format!("{}{:02}", self.code_prefix, i + 1)
    }

    /// Hub `i`'s token (none for V3.3 fleets): what a court's configuration must list for it.
    pub fn token(&self, i: usize) -> Option<String> {
        self.token_prefix
            .as_ref()
            .map(|p| format!("{p}{:02}", i + 1))
    }

    fn hub(&self, i: usize) -> HubOptions {
        HubOptions {
            url: self.url.clone(),
            code: self.code(i),
            token: self.token(i),
            session_id: format!("sim-{}-{}", self.code(i), self.seed),
        }
    }
}

/// Live counters a caller can print while the fleet runs.
#[derive(Debug, Default)]
pub struct FleetProgress {
    pub acked_batches: AtomicU64,
    pub acked_samples: AtomicU64,
}

/// Batches queued per hub between the feed and its WebSocket client.
const FEED_QUEUE: usize = 1024;
/// How often the feeds render what their sensors saw since the last time.
const FEED_TICK: Duration = Duration::from_millis(20);

/// Runs the fleet to the end; every acknowledged batch is also sent on `acked` if given.
pub async fn run(
    options: FleetOptions,
    progress: Arc<FleetProgress>,
    acked: Option<mpsc::UnboundedSender<Acked>>,
) -> Vec<(String, Result<HubReport, HubError>)> {
    let (feeds, receivers): (Vec<_>, Vec<_>) = (0..options.devices)
        .map(|_| mpsc::channel(FEED_QUEUE))
        .unzip();
    let feeder = tokio::spawn(feed(options.clone(), feeds));
    let mut set = JoinSet::new();
    for (i, rx) in receivers.into_iter().enumerate() {
        let hub = options.hub(i);
        let (tx, acks) = mpsc::unbounded_channel::<Acked>();
        tokio::spawn(count(acks, progress.clone(), acked.clone()));
        let firmware = options.firmware;
        set.spawn(async move {
            let code = hub.code.clone();
            let result = match firmware {
                Firmware::V33 => client::run_v33(hub, rx, tx).await,
                Firmware::Compact => client::run_compact(hub, rx, tx).await,
            };
            (code, result)
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(report) => reports.push(report),
            Err(e) => reports.push(("?".into(), Err(HubError::Protocol(e.to_string())))),
        }
    }
    feeder.abort();
    reports.sort_by(|a, b| a.0.cmp(&b.0));
    reports
}

/// Runs the fleet against a gateway from outside, as `shuttlegate simulate` does: V3.3 hubs
/// wait for `start_collection`, so their sessions are started through the gateway's admin API
/// once the fleet is under way and ended after its duration (compact hubs open their own).
/// A failed admin call stops the fleet and is returned; otherwise every hub's report.
pub async fn run_from_outside(
    options: FleetOptions,
    admin: &AdminClient,
) -> Result<Vec<(String, Result<HubReport, HubError>)>, AdminError> {
    let codes: Vec<String> = (0..options.devices).map(|i| options.code(i)).collect();
    let (firmware, duration) = (options.firmware, options.duration);
    let fleet = tokio::spawn(run(options, Arc::new(FleetProgress::default()), None));
    if firmware == Firmware::V33 {
        let sessions = async {
            admin.start_sessions(&codes).await?;
            tokio::time::sleep(duration).await;
            admin.end_sessions(&codes).await
        };
        if let Err(e) = sessions.await {
            fleet.abort();
            return Err(e);
        }
    }
    // `run` catches its hubs' panics itself; a panic of its own is a bug, passed on as one.
    Ok(fleet
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
}

/// Counts (and forwards) one hub's acknowledgements as they arrive.
async fn count(
    mut acks: mpsc::UnboundedReceiver<Acked>,
    progress: Arc<FleetProgress>,
    forward: Option<mpsc::UnboundedSender<Acked>>,
) {
    while let Some(a) = acks.recv().await {
        progress.acked_batches.fetch_add(1, Ordering::Relaxed);
        let samples = a.sent["samples"]
            .as_array()
            .or_else(|| a.sent["data"].as_array())
            .map_or(0, Vec::len);
        progress
            .acked_samples
            .fetch_add(samples as u64, Ordering::Relaxed);
        if let Some(f) = &forward {
            let _ = f.send(a);
        }
    }
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

/// Feeds every hub in real time for the fleet's duration, then closes the feeds.
async fn feed(options: FleetOptions, hubs: Vec<mpsc::Sender<SensorBatch>>) {
    let mut source: Box<dyn BatchSource> = match options.motion {
        Motion::Court => Box::new(court_source(&options)),
        Motion::Still => Box::new(StillSource::new(&options)),
    };
    let end = tokio::time::Instant::now() + options.duration;
    let mut tick = tokio::time::interval(FEED_TICK);
    loop {
        tick.tick().await;
        let done = tokio::time::Instant::now() >= end;
        let batches = if done {
            source.flush()
        } else {
            source.batches_until(unix_ms())
        };
        for (i, mut batch) in batches {
            batch.device = options.code(i);
            if hubs[i].send(batch).await.is_err() {
                log::debug!("hub {} stopped taking batches", options.code(i));
            }
        }
        if done {
            return;
        }
    }
}

/// Something that renders, per hub, the batches its sensors produced up to a time.
trait BatchSource: Send {
    fn batches_until(&mut self, now_ms: f64) -> Vec<(usize, SensorBatch)>;
    fn flush(&mut self) -> Vec<(usize, SensorBatch)>;
}

impl BatchSource for CourtSim {
    fn batches_until(&mut self, now_ms: f64) -> Vec<(usize, SensorBatch)> {
        self.next_batches(now_ms)
    }

    fn flush(&mut self) -> Vec<(usize, SensorBatch)> {
        CourtSim::flush(self)
    }
}

/// The kinematic court: one player per hub, strengths spread from club to elite.
fn court_source(options: &FleetOptions) -> CourtSim {
    let n = options.devices.max(1);
    let players = (0..options.devices)
        .map(|i| {
            let code = options.code(i);
            let mut device = match options.firmware {
                Firmware::V33 => SimDevice::seed_hub(code, options.rate_hz),
                Firmware::Compact => {
                    SimDevice::compact(code, options.rate_hz, vec![BodyPosition::Racket], 6)
                }
            };
            if let super::WireForm::Seed { tz_offset_min } = &mut device.form {
                *tz_offset_min = options.utc_offset_s / 60;
            }
            device.batch_samples = options.batch_samples;
            let strength = 0.3 + 0.6 * (i as f64) / (n as f64);
            SimPlayer::new(options.seed.wrapping_add(i as u64), strength, device)
        })
        .collect();
    let config = CourtConfig {
        start_ms: unix_ms(),
        session_id: format!("sim-{}", options.seed),
        ..CourtConfig::default()
    };
    CourtSim::new(options.seed, players, config)
}

/// Hubs lying still with a little sensor noise. Compact hubs carry one racket node; V3.3 hubs
/// carry the seed system's four nodes and send 30 mixed frames per batch.
struct StillSource {
    options: FleetOptions,
    rng: rand::rngs::SmallRng,
    /// Per hub: time of the next sample, unix ms.
    next_t: Vec<f64>,
}

/// V3.3 frames per batch (the firmware's default).
const V33_FRAMES: usize = 30;

impl StillSource {
    fn new(options: &FleetOptions) -> StillSource {
        StillSource {
            options: options.clone(),
            rng: rand::rngs::SmallRng::seed_from_u64(options.seed),
            next_t: vec![unix_ms(); options.devices],
        }
    }

    fn reading(&mut self) -> ([f32; 3], [f32; 3], [f32; 3]) {
        let mut noise = |scale: f32| self.rng.random_range(-scale..scale);
        (
            [noise(0.02), noise(0.02), 1.0 + noise(0.02)],
            [noise(1.5), noise(1.5), noise(1.5)],
            [noise(0.5), noise(0.5), 90.0 + noise(0.5)],
        )
    }

    /// One batch for hub `i` starting at its next sample time.
    fn batch(&mut self, i: usize) -> SensorBatch {
        let dt = 1000.0 / self.options.rate_hz;
        let t0 = self.next_t[i];
        let form = match self.options.firmware {
            Firmware::Compact => {
                let n = self.options.batch_samples;
                let mut samples = Vec::with_capacity(n * 6);
                for _ in 0..n {
                    let (acc, gyro, _) = self.reading();
                    samples.extend(acc.into_iter().chain(gyro));
                }
                self.next_t[i] = t0 + n as f64 * dt;
                BatchForm::Compact(CompactBatch {
                    sensor_id: 4,
                    t0: t0.round() as i64,
                    rate_hz: self.options.rate_hz,
                    channels: 6,
                    samples,
                })
            }
            Firmware::V33 => {
                let frames = (0..V33_FRAMES)
                    .map(|k| {
                        let (acc, gyro, angle) = self.reading();
                        let t = t0 + (k / 4) as f64 * dt;
                        SeedFrame {
                            sensor_id: Some(1 + (k % 4) as u32),
                            timestamp: Some(time_of_day_stamp(
                                t.round() as i64,
                                self.options.utc_offset_s,
                            )),
                            acc,
                            gyro,
                            angle: Some(angle),
                        }
                    })
                    .collect();
                self.next_t[i] = t0 + (V33_FRAMES as f64 / 4.0) * dt;
                BatchForm::Seed(SeedBatch {
                    sensor_type: Some("waist".into()),
                    timestamp: None,
                    frames,
                })
            }
        };
        SensorBatch {
            device: String::new(),
            session_id: String::new(),
            seq: None,
            form,
        }
    }
}

impl BatchSource for StillSource {
    fn batches_until(&mut self, now_ms: f64) -> Vec<(usize, SensorBatch)> {
        let mut out = Vec::new();
        for i in 0..self.options.devices {
            while self.next_t[i] <= now_ms {
                let batch = self.batch(i);
                out.push((i, batch));
            }
        }
        out
    }

    fn flush(&mut self) -> Vec<(usize, SensorBatch)> {
        Vec::new()
    }
}
