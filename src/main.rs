//! `shuttlegate`: the command line. Arguments are parsed here (clap) and handed, resolved, to
//! the library; this file is glue and the only place `anyhow` is used.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use shuttlegate::journal;

/// Edge gateway for badminton courts: ESP32 IMU ingest, durable journal, live swing analysis,
/// cloud uplink.
#[derive(Parser, Debug)]
#[command(name = "shuttlegate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway daemon for one court.
    Run {
        /// The court's configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration file and exit (0 when valid).
    CheckConfig {
        /// The court's configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print a fully commented default configuration.
    PrintConfig,
    /// Run the gateway on the demo configuration with simulated hubs (no other service needed).
    Demo {
        /// Configuration to use instead of the built-in `config/demo.toml`.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Simulated ESP32 hubs against any gateway.
    Simulate(SimulateArgs),
    /// Benchmarks through the real daemon.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Score the swing analyser against the simulator's ground truth (and the seed backend's
    /// method on the same sessions).
    Eval {
        /// Number of simulated sessions (seeds from --first-seed on).
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        /// First seed. Seeds below 1000 were used while developing; keep evaluations above.
        #[arg(long, default_value_t = 1000)]
        first_seed: u64,
        /// Players per court (2 or 4).
        #[arg(long, default_value_t = 2)]
        players: usize,
        /// Length of each session, seconds.
        #[arg(long, default_value_t = 180.0)]
        duration_s: f64,
        /// Probability of losing a batch.
        #[arg(long, default_value_t = 0.0)]
        drop_batch: f64,
        /// Probability of a batch arriving after its successor.
        #[arg(long, default_value_t = 0.0)]
        reorder_batch: f64,
        /// Also print the unmatched and misclassified swings.
        #[arg(long)]
        verbose: bool,
        /// Evaluate a real labelled recording instead of the simulator: `LABEL=FILE`, where
        /// LABEL is what the file holds, `+`-joined: a stroke (smash, clear, drop, drive, net,
        /// lift, serve), a side (forehand, backhand), a height (overhead, sidearm, underarm),
        /// e.g. `smash+overhead=smash.csv`. Repeatable; every file is read with the format
        /// flags below (default: a WitMotion CSV export).
        #[arg(long, value_name = "LABEL=FILE")]
        recording: Vec<String>,
        #[command(flatten)]
        recording_format: RecordingFormatArgs,
        /// Run every simulated device at this sample rate (Hz) instead of the standard mix.
        #[arg(long)]
        rate_hz: Option<f64>,
    },
    /// Re-run the swing analysis of stored sessions from the journal and print every swing and
    /// summary as a JSON line (the daemon's JSON plus `analysis_version` and `"replay": true`).
    ///
    /// Reads the journal under the config's `gateway.state_dir` without locking it, so it works
    /// while the daemon runs. With `--journal` the results are also appended to the journal
    /// (the uplink then delivers them): that needs the journal's lock, so stop the daemon first.
    Replay {
        /// The court's configuration file (TOML): device profiles, sensor maps, `[analysis]`,
        /// timezone, `state_dir`.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Only this session (default: every stored session).
        #[arg(long)]
        session: Option<String>,
        /// Only this device's sessions.
        #[arg(long)]
        device: Option<String>,
        /// Also append the results to the journal as new Swing/Summary records (stop the daemon
        /// first: this takes the journal lock).
        #[arg(long)]
        journal: bool,
    },
    /// Operator tools for the on-disk journal (work while the daemon is writing).
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
}

#[derive(Subcommand, Debug)]
enum JournalCommand {
    /// Segments, bytes, records by kind, oldest/newest, cursors, compression ratio.
    Stats {
        /// The daemon's `state_dir`.
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
    },
    /// Print stored records, oldest first, decoded.
    Export {
        /// The daemon's `state_dir`.
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// Only records of this session.
        #[arg(long)]
        session: Option<String>,
        /// Only records of this device.
        #[arg(long)]
        device: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
    /// Crash-test load generator: appends from concurrent tasks and prints `<id> <device> <seq>`
    /// per acknowledged append until killed (or `--limit` acks).
    #[command(hide = true)]
    Torture {
        /// The journal directory itself (not a state_dir).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        #[arg(long, default_value_t = 8)]
        appenders: usize,
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long, default_value_t = 64 << 10)]
        segment_bytes: u64,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Devices over loopback through a `shuttlegate run` child: samples/s answered durable, ack
    /// latency, daemon CPU and RSS. Without options it runs the two reference scenarios
    /// (64 devices unpaced; 100 devices × 1 kHz).
    Ingest {
        /// Devices (a custom scenario instead of the reference ones).
        #[arg(long)]
        devices: Option<usize>,
        /// Samples per batch.
        #[arg(long, default_value_t = 100)]
        batch_samples: usize,
        /// Samples per second per device; omit to send as fast as acks allow.
        #[arg(long)]
        rate_hz: Option<f64>,
        /// Length of each scenario.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Batches in flight per device.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// The journal's group-commit window.
        #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
        commit_interval: std::time::Duration,
    },
    /// The MQTT uplink of a `shuttlegate run` child draining a journal backlog into a Mosquitto
    /// it starts itself: records/s to a subscriber, and the live devices' ack latency while the
    /// backlog drains versus idle.
    Uplink(BenchUplinkArgs),
    /// Court-simulated players (real swings) through a `shuttlegate run` child: how long after
    /// the batch that completes a swing it is journaled and live (p50/p99/max from the daemon's
    /// `/metrics`), against the p99 ≤ 20 ms target. Without --players it runs the two reference
    /// scenarios (8 players; 32 players beside 8 unpaced ingest devices).
    Swings(BenchSwingsArgs),
}

#[derive(clap::Args, Debug)]
struct BenchSwingsArgs {
    /// Court-simulated players, in courts of two (a custom scenario instead of the reference
    /// ones).
    #[arg(long)]
    players: Option<usize>,
    /// Unpaced ingest devices sending beside the players (custom scenario: with --players).
    #[arg(long, default_value_t = 0)]
    load_devices: usize,
    /// Samples per second of each player's racket node.
    #[arg(long, default_value_t = 200.0)]
    rate_hz: f64,
    /// Samples per player batch.
    #[arg(long, default_value_t = 40)]
    batch_samples: usize,
    /// How long the players play, per scenario.
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// Batches in flight per load device.
    #[arg(long, default_value_t = 8)]
    load_window: usize,
    /// The journal's group-commit window.
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    commit_interval: std::time::Duration,
    /// Seed of the simulated players.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args, Debug)]
struct BenchUplinkArgs {
    /// Devices whose data makes up the backlog.
    #[arg(long, default_value_t = 4)]
    devices: usize,
    /// Samples per second per device (sizes the backlog; paces the live devices).
    #[arg(long, default_value_t = 1000.0)]
    rate_hz: f64,
    /// Samples per batch.
    #[arg(long, default_value_t = 100)]
    batch_samples: usize,
    /// Court time the backlog holds, e.g. "1h", "5m".
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    backlog: std::time::Duration,
    /// Paced devices whose ack latency is measured.
    #[arg(long, default_value_t = 4)]
    live_devices: usize,
    /// Length of each idle latency measurement (broker down; after the drain).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    idle: std::time::Duration,
    /// Batches in flight per device while the backlog is fed.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// `uplink.mqtt.replay_rate` (records/s) of the daemon under test.
    #[arg(long, default_value_t = 5000)]
    replay_rate: u32,
    /// `uplink.mqtt.inflight` (16..=32) of the daemon under test.
    #[arg(long, default_value_t = 32)]
    inflight: u16,
    /// Give up waiting for the drain after this long.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    drain_timeout: std::time::Duration,
    /// The journal's group-commit window.
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    commit_interval: std::time::Duration,
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    /// Gateway base URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// Number of hubs.
    #[arg(long, default_value_t = 4)]
    devices: usize,
    /// Samples per second per node.
    #[arg(long, default_value_t = 200.0)]
    rate_hz: f64,
    /// How long each hub collects, e.g. "30s", "5m".
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// Which firmware the hubs imitate.
    #[arg(long, value_enum, default_value = "compact")]
    firmware: shuttlegate::sim::client::Firmware,
    /// Device codes are PREFIX01, PREFIX02, …
    #[arg(long, default_value = "demo-")]
    code_prefix: String,
    /// Tokens are PREFIX01, PREFIX02, … (compact firmware; V3.3 sends none).
    #[arg(long, default_value = "demo-token-")]
    token_prefix: String,
    /// Compact form: samples per batch.
    #[arg(long, default_value_t = 100)]
    batch_samples: usize,
    /// V3.3 hubs wait for `start_collection`: start (and at the end stop) their sessions through
    /// the gateway's admin API with this token.
    #[arg(long, env = "SHUTTLEGATE_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// The court's UTC offset in hours, for V3.3's local-time stamps.
    #[arg(long, default_value_t = 8)]
    utc_offset_hours: i32,
    /// Random seed of the simulated motion.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// What the sensors see: players in rallies (with real swings), or sensors at rest.
    #[arg(long, value_enum, default_value = "court")]
    motion: shuttlegate::sim::fleet::Motion,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ExportFormat {
    Jsonl,
    Csv,
}

/// `check-config`: one OK line and exit 0, or every problem and a non-zero exit.
fn check_config(path: &std::path::Path) -> Result<()> {
    match shuttlegate::config::load(path) {
        Ok(settings) => {
            println!("OK {}: {}", path.display(), settings.summary());
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `run`: the daemon until SIGTERM/SIGINT.
fn run(config: &std::path::Path) -> Result<()> {
    let settings = shuttlegate::config::load(config)?;
    runtime()?.block_on(async {
        let signal = shuttlegate::service::termination_signal()?;
        let running =
            shuttlegate::daemon::start(&settings, shuttlegate::ingest::system_clock()).await?;
        // One machine-readable line on stdout: tests and scripts read the bound address here.
        println!("shuttlegate listening http={}", running.http_addr);
        log::info!("ready: listening on {}", running.http_addr);
        let signal = signal.await;
        log::info!("{signal}: shutting down");
        running.stop().await?;
        log::info!("stopped cleanly");
        Ok(())
    })
}

fn demo(config: Option<&std::path::Path>) -> Result<()> {
    let settings = match config {
        Some(path) => shuttlegate::config::load(path)?,
        None => shuttlegate::config::load_str(
            std::path::Path::new("config/demo.toml (built in)"),
            shuttlegate::demo::DEMO_CONFIG,
        )?,
    };
    runtime()?.block_on(async {
        let signal = shuttlegate::service::termination_signal()?;
        let stop = async {
            signal.await;
        };
        shuttlegate::demo::run(settings, stop).await?;
        Ok(())
    })
}

fn simulate(args: SimulateArgs) -> Result<()> {
    use shuttlegate::sim::client::Firmware;
    use shuttlegate::sim::fleet::{FleetOptions, FleetProgress};
    let options = FleetOptions {
        url: args.url.clone(),
        devices: args.devices,
        firmware: args.firmware,
        rate_hz: args.rate_hz,
        duration: args.duration,
        code_prefix: args.code_prefix,
        token_prefix: (args.firmware == Firmware::Compact).then_some(args.token_prefix),
        batch_samples: args.batch_samples,
        utc_offset_s: args.utc_offset_hours * 3600,
        seed: args.seed,
        motion: args.motion,
    };
    runtime()?.block_on(async move {
        let progress = std::sync::Arc::new(FleetProgress::default());
        let admin = shuttlegate::sim::admin::AdminClient::new(&args.url, args.admin_token.clone());
        let codes: Vec<String> = (0..options.devices).map(|i| options.code(i)).collect();
        let fleet = tokio::spawn(shuttlegate::sim::fleet::run(
            options.clone(),
            progress.clone(),
            None,
        ));
        if options.firmware == Firmware::V33 {
            admin.start_sessions(&codes).await?;
            tokio::time::sleep(options.duration).await;
            admin.end_sessions(&codes).await?;
        }
        let reports = fleet.await?;
        let mut failed = 0;
        for (code, report) in &reports {
            match report {
                Ok(r) => println!(
                    "{code}: sent {} acked {} resent {} reconnects {} upload_complete {} errors {}",
                    r.batches_sent,
                    r.batches_acked,
                    r.resends,
                    r.reconnects,
                    r.upload_complete,
                    r.errors.len()
                ),
                Err(e) => {
                    failed += 1;
                    println!("{code}: failed: {e}");
                }
            }
        }
        anyhow::ensure!(failed == 0, "{failed} of {} hubs failed", reports.len());
        Ok(())
    })
}

fn bench(command: BenchCommand) -> Result<()> {
    use shuttlegate::bench::ingest::{self, IngestBench};
    let (devices, batch_samples, rate_hz, duration, window, commit_interval) = match command {
        BenchCommand::Uplink(args) => return bench_uplink(args),
        BenchCommand::Swings(args) => return bench_swings(args),
        BenchCommand::Ingest {
            devices,
            batch_samples,
            rate_hz,
            duration,
            window,
            commit_interval,
        } => (
            devices,
            batch_samples,
            rate_hz,
            duration,
            window,
            commit_interval,
        ),
    };
    let base = IngestBench {
        devices: devices.unwrap_or(64),
        batch_samples,
        rate_hz,
        duration,
        window,
        commit_interval,
    };
    let scenarios = match devices {
        Some(_) => vec![base],
        None => vec![
            base.clone(),
            IngestBench {
                devices: 100,
                rate_hz: Some(1000.0),
                ..base
            },
        ],
    };
    let exe = std::env::current_exe()?;
    let rt = runtime()?;
    for scenario in scenarios {
        let label = format!(
            "{} devices x {} samples/batch, {}, window {}, commit {:?}",
            scenario.devices,
            scenario.batch_samples,
            scenario
                .rate_hz
                .map_or("unpaced".to_owned(), |r| format!("{r} Hz each")),
            scenario.window,
            scenario.commit_interval
        );
        let report = rt.block_on(ingest::run(&exe, scenario))?;
        println!("bench ingest: {label}\n  {report}");
    }
    Ok(())
}

/// `replay`: results on stdout, a one-line report on stderr.
fn replay(config: &std::path::Path, options: shuttlegate::replay::ReplayOptions) -> Result<()> {
    let settings = shuttlegate::config::load(config)?;
    let out = std::io::BufWriter::new(std::io::stdout());
    let report = runtime()?.block_on(shuttlegate::replay::run(&settings, &options, out))?;
    log::info!(
        "replayed {} session(s), {} batches ({} samples): {} swings, {} summaries{} ({})",
        report.sessions,
        report.batches,
        report.samples,
        report.swings,
        report.summaries,
        if options.journal { ", journaled" } else { "" },
        shuttlegate::replay::ANALYSIS_VERSION
    );
    if report.undecodable + report.corrupt > 0 {
        log::warn!(
            "{} undecodable batches and {} corrupt records skipped",
            report.undecodable,
            report.corrupt
        );
    }
    Ok(())
}

/// `bench uplink`: one run, its report on stdout.
fn bench_uplink(args: BenchUplinkArgs) -> Result<()> {
    use shuttlegate::bench::uplink::{self, UplinkBench};
    anyhow::ensure!(args.devices > 0, "--devices must be at least 1");
    anyhow::ensure!(args.batch_samples > 0, "--batch-samples must be at least 1");
    anyhow::ensure!(args.rate_hz > 0.0, "--rate-hz must be positive");
    anyhow::ensure!(args.window > 0, "--window must be at least 1");
    let bench = UplinkBench {
        devices: args.devices,
        rate_hz: args.rate_hz,
        batch_samples: args.batch_samples,
        backlog: args.backlog,
        live_devices: args.live_devices,
        idle: args.idle,
        window: args.window,
        replay_rate: args.replay_rate,
        inflight: args.inflight,
        drain_timeout: args.drain_timeout,
        commit_interval: args.commit_interval,
    };
    let exe = std::env::current_exe()?;
    let report = runtime()?.block_on(uplink::run(&exe, bench))?;
    println!("bench uplink\n{report}");
    Ok(())
}

/// `bench swings`: one report per scenario on stdout.
fn bench_swings(args: BenchSwingsArgs) -> Result<()> {
    use shuttlegate::bench::swings::{self, SwingBench};
    anyhow::ensure!(args.rate_hz > 0.0, "--rate-hz must be positive");
    anyhow::ensure!(args.batch_samples > 0, "--batch-samples must be at least 1");
    anyhow::ensure!(args.players != Some(0), "--players must be at least 1");
    anyhow::ensure!(
        args.players.is_some() || args.load_devices == 0,
        "--load-devices sets up a custom scenario: give --players too"
    );
    let base = SwingBench {
        players: args.players.unwrap_or(8),
        rate_hz: args.rate_hz,
        batch_samples: args.batch_samples,
        load_devices: args.load_devices,
        load_window: args.load_window.max(1),
        duration: args.duration,
        commit_interval: args.commit_interval,
        seed: args.seed,
    };
    let scenarios = match args.players {
        Some(_) => vec![base],
        None => vec![
            SwingBench {
                load_devices: 0,
                ..base.clone()
            },
            SwingBench {
                players: 32,
                load_devices: 8,
                ..base
            },
        ],
    };
    let exe = std::env::current_exe()?;
    let rt = runtime()?;
    for scenario in scenarios {
        let label = format!(
            "{} players at {} Hz x {} samples/batch, {} unpaced load devices (window {}), {:?}, commit {:?}",
            scenario.players,
            scenario.rate_hz,
            scenario.batch_samples,
            scenario.load_devices,
            scenario.load_window,
            scenario.duration,
            scenario.commit_interval
        );
        let report = rt.block_on(swings::run(&exe, scenario))?;
        println!("bench swings: {label}\n  {report}");
    }
    Ok(())
}

/// How `eval --recording` files are laid out. Without `--columns` they are WitMotion CSV
/// exports; with it, delimited tables read by header name.
#[derive(clap::Args, Debug)]
struct RecordingFormatArgs {
    /// Header names of the six channels, in the order ax,ay,az,gx,gy,gz (selects the table
    /// reader); `a+b` sums two columns.
    #[arg(long, value_name = "AX,AY,AZ,GX,GY,GZ")]
    columns: Option<String>,
    /// Field delimiter of the table.
    #[arg(long, default_value_t = ',')]
    delimiter: char,
    /// Header name of the time column; without it rows are timed from --sample-rate-hz.
    #[arg(long, value_name = "NAME")]
    time_column: Option<String>,
    /// Unit of the time column.
    #[arg(long, value_enum, default_value_t = TimeUnitArg::S)]
    time_unit: TimeUnitArg,
    /// Sample rate of a table without a time column, Hz.
    #[arg(long)]
    sample_rate_hz: Option<f64>,
    /// The table is a string of fixed-length captures of this many rows (one stroke each).
    #[arg(long, value_name = "ROWS")]
    capture_rows: Option<usize>,
    /// Accelerometer unit.
    #[arg(long, value_enum, default_value_t = AccUnitArg::G)]
    acc_unit: AccUnitArg,
    /// The export uses Apple CoreMotion's acceleration sign (−1 g on z lying face up).
    #[arg(long)]
    acc_negate: bool,
    /// Header name of a per-row label column; runs of rows with one value are scored as
    /// strokes (see --label-map).
    #[arg(long, value_name = "NAME")]
    label_column: Option<String>,
    /// Which values of --label-column are strokes and what they are, e.g.
    /// `1=forehand,2=backhand,3=overhead`; other values hold no stroke.
    #[arg(long, value_name = "VALUE=LABEL,…")]
    label_map: Option<String>,
    /// Gyroscope unit.
    #[arg(long, value_enum, default_value_t = GyroUnitArg::Dps)]
    gyro_unit: GyroUnitArg,
    /// Sensor axes as the analyser's x (along the shaft or forearm), y, z (forehand face
    /// normal), e.g. `y,-x,z`.
    #[arg(long, default_value = "x,y,z")]
    axes: String,
    /// Where the sensor was worn.
    #[arg(long, value_enum, default_value_t = MountArg::Racket)]
    mount: MountArg,
    /// Accelerometer full scale of the recording device, g.
    #[arg(long, default_value_t = 16.0)]
    acc_full_scale_g: f64,
    /// Gyroscope full scale of the recording device, °/s.
    #[arg(long, default_value_t = 2000.0)]
    gyro_full_scale_dps: f64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum TimeUnitArg {
    S,
    Ms,
    Ns,
    Rfc3339,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum AccUnitArg {
    G,
    Mps2,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum GyroUnitArg {
    Dps,
    Rads,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum MountArg {
    Racket,
    Wrist,
}

impl RecordingFormatArgs {
    fn format(&self) -> Result<shuttlegate::sim::recording::Format> {
        use shuttlegate::sim::recording::{
            AccUnit, AxisMap, Format, GyroUnit, TableFormat, TimeSource, TimeUnit,
        };
        let Some(columns) = &self.columns else {
            return Ok(Format::WitMotion);
        };
        let names: Vec<String> = columns.split(',').map(|c| c.trim().to_string()).collect();
        let channels: [String; 6] = names
            .try_into()
            .map_err(|_| anyhow::anyhow!("--columns {columns}: expected six names"))?;
        let time = match (&self.time_column, self.sample_rate_hz) {
            (Some(name), _) => TimeSource::Column {
                name: name.clone(),
                unit: match self.time_unit {
                    TimeUnitArg::S => TimeUnit::Seconds,
                    TimeUnitArg::Ms => TimeUnit::Millis,
                    TimeUnitArg::Ns => TimeUnit::Nanos,
                    TimeUnitArg::Rfc3339 => TimeUnit::Rfc3339,
                },
            },
            (None, Some(rate)) if rate.is_finite() && rate > 0.0 => TimeSource::Rate(rate),
            (None, _) => anyhow::bail!(
                "a table needs --time-column or a positive --sample-rate-hz to time its rows"
            ),
        };
        anyhow::ensure!(
            self.capture_rows != Some(0),
            "--capture-rows must be at least 1"
        );
        Ok(Format::Table(Box::new(TableFormat {
            delimiter: self.delimiter,
            channels,
            time,
            acc_unit: match self.acc_unit {
                AccUnitArg::G => AccUnit::G,
                AccUnitArg::Mps2 => AccUnit::MetresPerSecond2,
            },
            acc_negated: self.acc_negate,
            label_column: self.label_column.clone(),
            gyro_unit: match self.gyro_unit {
                GyroUnitArg::Dps => GyroUnit::DegPerSecond,
                GyroUnitArg::Rads => GyroUnit::RadPerSecond,
            },
            axes: AxisMap::parse(&self.axes).map_err(|e| anyhow::anyhow!("--axes: {e}"))?,
            capture_rows: self.capture_rows,
        })))
    }
}

impl RecordingFormatArgs {
    /// `--label-map 1=forehand,2=backhand` as (value, label) pairs.
    fn run_labels(&self) -> Result<Vec<(String, shuttlegate::sim::recording::Label)>> {
        use shuttlegate::sim::recording::Label;
        let Some(map) = &self.label_map else {
            anyhow::ensure!(
                self.label_column.is_none(),
                "--label-column needs --label-map to say which values are strokes"
            );
            return Ok(Vec::new());
        };
        anyhow::ensure!(
            self.label_column.is_some(),
            "--label-map needs --label-column"
        );
        map.split(',')
            .map(|pair| {
                let (value, label) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--label-map {pair}: expected VALUE=LABEL"))?;
                let label =
                    Label::parse(label).map_err(|e| anyhow::anyhow!("--label-map {pair}: {e}"))?;
                Ok((value.trim().to_string(), label))
            })
            .collect()
    }
}

/// `eval --recording LABEL=FILE …`: the analyser over real labelled recordings.
fn eval_recordings(specs: &[String], format_args: &RecordingFormatArgs) -> Result<()> {
    use shuttlegate::analysis::AnalysisSettings;
    use shuttlegate::batch::BodyPosition;
    use shuttlegate::sim::recording::{Label, RecordingSpec};
    let settings = AnalysisSettings::default();
    let format = format_args.format()?;
    let run_labels = format_args.run_labels()?;
    let mut results = Vec::new();
    for spec in specs {
        let (label, path) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--recording {spec}: expected LABEL=FILE"))?;
        let label = Label::parse(label).map_err(|e| anyhow::anyhow!("--recording {spec}: {e}"))?;
        let spec = RecordingSpec {
            path: path.into(),
            label,
            format: format.clone(),
            position: match format_args.mount {
                MountArg::Racket => BodyPosition::Racket,
                MountArg::Wrist => BodyPosition::Wrist,
            },
            acc_full_scale_g: format_args.acc_full_scale_g,
            gyro_full_scale_dps: format_args.gyro_full_scale_dps,
            run_labels: run_labels.clone(),
        };
        results.push(shuttlegate::sim::recording::evaluate(&spec, &settings)?);
    }
    print!("{}", shuttlegate::sim::recording::render(&results));
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Run { config } => run(&config),
        Command::CheckConfig { config } => check_config(&config),
        Command::PrintConfig => {
            print!("{}", shuttlegate::config::commented_default());
            Ok(())
        }
        Command::Demo { config } => demo(config.as_deref()),
        Command::Simulate(args) => simulate(args),
        Command::Bench { command } => bench(command),
        Command::Eval {
            seeds,
            first_seed,
            players,
            duration_s,
            drop_batch,
            reorder_batch,
            verbose,
            recording,
            recording_format,
            rate_hz,
        } => {
            if !recording.is_empty() {
                return eval_recordings(&recording, &recording_format);
            }
            anyhow::ensure!(players == 2 || players == 4, "--players must be 2 or 4");
            anyhow::ensure!(
                rate_hz.is_none_or(|r| (50.0..=2000.0).contains(&r)),
                "--rate-hz must be between 50 and 2000"
            );
            let options = shuttlegate::sim::eval::EvalOptions {
                seeds: (first_seed..first_seed + seeds).collect(),
                players,
                duration_s,
                impairments: shuttlegate::sim::Impairments {
                    drop_batch,
                    reorder_batch,
                },
                rate_hz,
            };
            let report = shuttlegate::sim::eval::run(
                &options,
                &shuttlegate::analysis::AnalysisSettings::default(),
            );
            print!("{}", report.render());
            if verbose {
                for line in &report.mismatches {
                    println!("{line}");
                }
            }
            Ok(())
        }
        Command::Replay {
            config,
            session,
            device,
            journal,
        } => replay(
            &config,
            shuttlegate::replay::ReplayOptions {
                session,
                device,
                journal,
            },
        ),
        Command::Journal { command } => match command {
            JournalCommand::Stats { state_dir } => {
                let mut out = std::io::stdout().lock();
                quiet_broken_pipe(journal::tools::stats(&state_dir.join("journal"), &mut out))
            }
            JournalCommand::Export {
                state_dir,
                session,
                device,
                format,
            } => {
                let filter = journal::tools::ExportFilter { device, session };
                let format = match format {
                    ExportFormat::Jsonl => journal::tools::ExportFormat::Jsonl,
                    ExportFormat::Csv => journal::tools::ExportFormat::Csv,
                };
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                let dir = state_dir.join("journal");
                let counts = journal::tools::export(&dir, &filter, format, &mut out);
                if let Ok(c) = &counts
                    && c.undecodable > 0
                {
                    eprintln!(
                        "journal export: {} records could not be decoded and were skipped",
                        c.undecodable
                    );
                }
                quiet_broken_pipe(counts)?;
                quiet_broken_pipe(out.flush().map_err(journal::tools::ToolError::Output))
            }
            JournalCommand::Torture {
                dir,
                appenders,
                limit,
                segment_bytes,
            } => {
                let rt = tokio::runtime::Runtime::new()?;
                rt.block_on(journal::torture::run(dir, appenders, limit, segment_bytes))?;
                Ok(())
            }
        },
    }
}

/// `journal export … | head` closes the pipe early: that is the reader being done, not an error.
fn quiet_broken_pipe<T>(r: Result<T, journal::tools::ToolError>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(journal::tools::ToolError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
