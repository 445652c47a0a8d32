//! `shuttlegate-tools bench swings`: how soon a swing is out after the batch that completes it,
//! measured by the real daemon (a `shuttlegate run` child) and read from its `/metrics`.
//!
//! Players are the kinematic court simulator (`sim::fleet`, `Motion::Court`) in courts of two,
//! sending in real time over loopback; optionally beside them unpaced ingest devices
//! (`bench::device`) load the journal and the analysis queue. The daemon times every swing
//! from the receipt of the batch that completed it to the swing journaled and on the live
//! broadcast (see `shuttlegate::pipeline::AnalysisMetrics`); this bench drives it, waits until the analysis
//! has caught up, and reads the figures. The last hop (live broadcast → a phone's socket) is
//! `bench phones`'s figure.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::device::{self, Pacing, Phases};
use super::ingest::{BenchError, process_usage, start_daemon_with};
use shuttlegate::pipeline::SwingStage;
use shuttlegate_sim::client::Firmware;
use shuttlegate_sim::fleet::{self, FleetOptions, FleetProgress, Motion};

/// Players per simulated court (the court simulator plays singles or doubles).
const PLAYERS_PER_COURT: usize = 2;
/// Samples per unpaced load batch, and the rate they declare.
const LOAD_BATCH_SAMPLES: usize = 100;
const LOAD_RATE_HZ: f64 = 1000.0;
/// How long the analysis may take to catch up once the devices have stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `/metrics` is polled while waiting for it.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// The figure to report against (issue 5): p99 swing latency after the completing batch.
pub const TARGET_P99: Duration = Duration::from_millis(20);

/// One benchmark run.
#[derive(Debug, Clone)]
pub struct SwingBench {
    /// Court-simulated player devices (in courts of two; an odd one plays alone).
    pub players: usize,
    /// Samples per second of each player's racket node.
    pub rate_hz: f64,
    /// Samples per player batch.
    pub batch_samples: usize,
    /// Unpaced ingest devices beside the players (0: none).
    pub load_devices: usize,
    /// Batches in flight per load device.
    pub load_window: usize,
    /// How long the players play.
    pub duration: Duration,
    /// The journal's group-commit window.
    pub commit_interval: Duration,
    pub seed: u64,
}

/// What a run measured: the daemon's `/metrics` after the run, and the load around it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwingReport {
    pub swings: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// p50 / p99 / max (ms) of each part: `durable` (the completing batch's journal commit),
    /// `wait` (for the analysis task), `analysis` (of the completing input), `journal` (the
    /// swing's journal commit).
    pub stages: Vec<(String, [f64; 3])>,
    /// Batches the live analysis skipped (queue full): their swings are missing from `swings`.
    pub skipped_batches: u64,
    pub player_batches: u64,
    pub load_batches: u64,
    pub elapsed: Duration,
    /// Daemon CPU over the run, as a share of one core.
    pub daemon_cpu_cores: f64,
    pub daemon_peak_rss_mib: f64,
    /// Devices that failed (players and load).
    pub errors: u64,
}

impl SwingReport {
    pub fn meets_target(&self) -> bool {
        self.swings > 0 && self.p99_ms <= TARGET_P99.as_secs_f64() * 1e3
    }
}

impl std::fmt::Display for SwingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.meets_target() {
            "met"
        } else {
            "NOT met"
        };
        let stages: Vec<String> = self
            .stages
            .iter()
            .map(|(stage, [p50, p99, max])| {
                format!("{stage} p50 {p50:.2} p99 {p99:.2} max {max:.2}")
            })
            .collect();
        write!(
            f,
            "swing latency (batch receipt -> journaled + live) p50 {:.2} ms p99 {:.2} ms max {:.2} ms over {} swings | target p99 <= {} ms: {verdict}\n  \
             stages (ms): {}\n  \
             skipped batches {} | batches: players {}, load {} in {:.1} s | daemon CPU {:.2} cores, peak RSS {:.1} MiB | errors {}",
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.swings,
            TARGET_P99.as_millis(),
            stages.join(" | "),
            self.skipped_batches,
            self.player_batches,
            self.load_batches,
            self.elapsed.as_secs_f64(),
            self.daemon_cpu_cores,
            self.daemon_peak_rss_mib,
            self.errors
        )
    }
}

/// Runs the benchmark against a fresh daemon started from `exe`.
pub async fn run(exe: &Path, bench: SwingBench) -> Result<SwingReport, BenchError> {
    let dir = crate::children::scratch_dir()?;
    let daemon = start_daemon_with(exe, dir.path(), &config(dir.path(), &bench))?;
    let pid = daemon.child.id();
    let addr = daemon.addr.clone();
    let (cpu_before, _, _) = process_usage(pid).unwrap_or_default();
    let started = Instant::now();

    let stop_load = CancellationToken::new();
    let load = start_load(&addr, &bench, stop_load.clone()).await?;
    let progress = Arc::new(FleetProgress::default());
    let courts: Vec<_> = court_fleets(&addr, &bench)
        .into_iter()
        .map(|options| tokio::spawn(fleet::run(options, progress.clone(), None)))
        .collect();
    let mut errors = 0;
    for court in courts {
        match court.await {
            Ok(reports) => {
                for (code, report) in reports {
                    if let Err(e) = report {
                        log::warn!("player {code}: {e}");
                        errors += 1;
                    }
                }
            }
            Err(e) => {
                log::warn!("court task: {e}");
                errors += 1;
            }
        }
    }
    stop_load.cancel();
    let (load_batches, load_errors) = device::join(load).await;
    let figures = drained_metrics(&addr).await?;
    let elapsed = started.elapsed();
    let (cpu_after, _, peak) = process_usage(pid).unwrap_or_default();
    drop(daemon);
    Ok(SwingReport {
        swings: figures.value("shuttlegate_swings_published_total") as u64,
        p50_ms: figures.value("shuttlegate_swing_latency_p50_seconds") * 1e3,
        p99_ms: figures.value("shuttlegate_swing_latency_p99_seconds") * 1e3,
        max_ms: figures.value("shuttlegate_swing_latency_max_seconds") * 1e3,
        stages: figures.stages(),
        skipped_batches: figures.value("shuttlegate_analysis_batches_skipped_total") as u64,
        player_batches: progress.acked_batches.load(Ordering::Relaxed),
        load_batches,
        elapsed,
        daemon_cpu_cores: (cpu_after - cpu_before) / elapsed.as_secs_f64(),
        daemon_peak_rss_mib: peak,
        errors: errors + load_errors,
    })
}

/// The daemon's configuration: every player and load device, with tokens.
pub(super) fn config(dir: &Path, bench: &SwingBench) -> String {
    let mut config = super::device::daemon_config_head(dir, bench.commit_interval);
    let fleets = court_fleets("", bench);
    let players = fleets
        .iter()
        .flat_map(|f| (0..f.devices).map(move |i| (f.code(i), f.token(i))));
    let load = (0..bench.load_devices).map(|i| (load_code(i), Some(load_token(i))));
    for (code, token) in players.chain(load) {
        let auth = match token {
            Some(token) => format!("token = \"{token}\""),
            None => "allow_tokenless = true".to_owned(),
        };
        config.push_str(&format!("\n[[devices]]\ncode = \"{code}\"\n{auth}\n"));
    }
    config
}

/// One fleet per court of [`PLAYERS_PER_COURT`], each with its own codes and seed.
pub(super) fn court_fleets(addr: &str, bench: &SwingBench) -> Vec<FleetOptions> {
    let courts = bench.players.div_ceil(PLAYERS_PER_COURT);
    (0..courts)
        .map(|c| FleetOptions {
            url: format!("ws://{addr}"),
            devices: PLAYERS_PER_COURT.min(bench.players - c * PLAYERS_PER_COURT),
            firmware: Firmware::Compact,
            rate_hz: bench.rate_hz,
            duration: bench.duration,
            code_prefix: format!("court{c:02}-p"),
            token_prefix: Some(format!("court{c:02}-t")),
            batch_samples: bench.batch_samples,
            utc_offset_s: 8 * 3600,
            seed: bench.seed.wrapping_add(c as u64),
            motion: Motion::Court,
        })
        .collect()
}

pub(super) fn load_code(i: usize) -> String {
    format!("load-{i:03}")
}

pub(super) fn load_token(i: usize) -> String {
    format!("load-token-{i:03}")
}

/// Connects the unpaced load devices and starts them sending until `stop`.
async fn start_load(
    addr: &str,
    bench: &SwingBench,
    stop: CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<Result<u64, device::DeviceError>>>, BenchError> {
    let blocks = Arc::new(device::sample_blocks(LOAD_BATCH_SAMPLES));
    // Their ack latency is `bench ingest`'s business; here they are only load.
    let phases = Arc::new(Phases::new(0));
    let pacing = Pacing {
        batches: None,
        interval: None,
        window: bench.load_window.max(1),
        batch_samples: LOAD_BATCH_SAMPLES,
        rate_hz: LOAD_RATE_HZ,
        stop,
    };
    let mut tasks = Vec::new();
    for i in 0..bench.load_devices {
        let code = load_code(i);
        let ws = device::connect(addr, &code, &load_token(i)).await?;
        tasks.push(tokio::spawn(device::drive(
            code,
            ws,
            pacing.clone(),
            blocks.clone(),
            phases.clone(),
        )));
    }
    Ok(tasks)
}

/// `/metrics` once the analysis has caught up with everything handed to it.
pub(super) async fn drained_metrics(addr: &str) -> Result<Scrape, BenchError> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let scrape = scrape(addr).await?;
        if scrape.value("shuttlegate_analysis_pending") == 0.0 {
            return Ok(scrape);
        }
        if Instant::now() > deadline {
            return Err(BenchError::Daemon(format!(
                "the analysis had not caught up {DRAIN_TIMEOUT:?} after the devices stopped"
            )));
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

pub(crate) async fn scrape(addr: &str) -> Result<Scrape, BenchError> {
    let url = format!("http://{addr}/metrics");
    let body = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let mut response = ureq::get(&url).call().map_err(|e| e.to_string())?;
        response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| BenchError::Daemon(format!("scraping /metrics: {e}")))?
    .map_err(|e| BenchError::Daemon(format!("scraping /metrics: {e}")))?;
    Ok(Scrape(body))
}

/// An OpenMetrics text body.
#[derive(Debug, Clone)]
pub(crate) struct Scrape(String);

impl Scrape {
    /// The value of the unlabelled sample `name`; NaN when absent or not a number.
    pub(crate) fn value(&self, name: &str) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (sample, value) = l.split_once(' ')?;
                (sample == name).then(|| value.trim().parse().ok())?
            })
            .unwrap_or(f64::NAN)
    }
}

impl Scrape {
    /// The per-stage figures (ms), in the daemon's order.
    fn stages(&self) -> Vec<(String, [f64; 3])> {
        let stages = SwingStage::ALL.iter().filter(|s| **s != SwingStage::Total);
        stages
            .map(|stage| {
                let ms = |q: &str| {
                    let name = format!(
                        "shuttlegate_swing_stage_{q}_seconds{{stage=\"{}\"}}",
                        stage.as_str()
                    );
                    self.value(&name) * 1e3
                };
                (stage.as_str().to_owned(), [ms("p50"), ms("p99"), ms("max")])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bench(players: usize, load_devices: usize) -> SwingBench {
        SwingBench {
            players,
            rate_hz: 200.0,
            batch_samples: 40,
            load_devices,
            load_window: 8,
            duration: Duration::from_secs(1),
            commit_interval: Duration::from_millis(2),
            seed: 7,
        }
    }

    #[test]
    fn every_player_and_load_device_is_configured_once_with_the_token_it_presents() {
        let b = bench(5, 2);
        let config = config(Path::new("/tmp/x"), &b);
        let fleets = court_fleets("127.0.0.1:1", &b);
        assert_eq!(
            fleets.iter().map(|f| f.devices).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        let settings =
            shuttlegate::config::load_str(Path::new("bench.toml"), &config).expect("valid");
        assert_eq!(settings.devices.len(), 7);
        // The fleet derives its hubs' codes and tokens itself: the config must agree.
        assert!(config.contains("code = \"court02-p01\"\ntoken = \"court02-t01\""));
        assert!(config.contains("code = \"load-001\"\ntoken = \"load-token-001\""));
        let seeds: Vec<u64> = fleets.iter().map(|f| f.seed).collect();
        assert_eq!(seeds, [7, 8, 9], "each court plays its own rallies");
    }

    #[test]
    fn a_scrape_reads_unlabelled_samples_and_nothing_else() {
        let body =
            "# HELP a_total x\n# TYPE a counter\na_total 12\nab 3\nb{l=\"1\"} 4\nc 0.0125\n# EOF\n";
        let s = Scrape(body.into());
        assert_eq!(s.value("a_total"), 12.0);
        assert_eq!(s.value("c"), 0.0125);
        assert!(s.value("a").is_nan());
        assert!(s.value("b").is_nan());
    }

    #[test]
    fn the_daemons_rendering_of_stages_reads_back_in_ms() {
        use shuttlegate::pipeline::AnalysisMetrics;
        use shuttlegate::pipeline::InputTimes;
        let metrics = Arc::new(AnalysisMetrics::default());
        let received = Instant::now();
        let input = InputTimes {
            received,
            queued: received + Duration::from_millis(2),
            started: received + Duration::from_millis(3),
            analysed: received + Duration::from_millis(5),
        };
        metrics.record_swing(&input, received + Duration::from_millis(9));
        let body = shuttlegate::transport::http::render_metrics(
            shuttlegate::transport::http::MetricsSources::analysis(metrics),
        );
        let stages = Scrape(body).stages();
        let names: Vec<&str> = stages.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["durable", "wait", "analysis", "journal"]);
        for ((_, [p50, p99, max]), want) in stages.iter().zip([2.0, 1.0, 2.0, 4.0]) {
            for got in [p50, p99, max] {
                assert!((got - want).abs() <= want * 0.01, "{stages:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_body_reads_without_panicking(body in ".{0,400}", name in "[a-z_]{1,12}") {
            let _ = Scrape(body).value(&name);
        }

        #[test]
        fn a_rendered_value_reads_back(value in 0.0f64..1e6, name in "[a-z_]{1,12}") {
            let s = Scrape(format!("# TYPE {name} gauge\n{name} {value}\n# EOF\n"));
            prop_assert_eq!(s.value(&name), value);
        }
    }
}
