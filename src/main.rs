//! `shuttlegate`: the command line. The arguments as the user wrote them ([`Cli`], clap) are
//! resolved once into what the gateway runs ([`Mode`]: configurations loaded, options in the
//! library's types), then dispatched to the library. This file is glue and the only place
//! `anyhow` is used.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};
use futures_util::FutureExt;
use shuttlegate::config::{self, ConfigError, Secret, Settings};
use shuttlegate::journal::tools::{self as journal_tools, ExportFilter, ExportFormat};
use shuttlegate::replay::{self, ReplayOptions};
use shuttlegate_sim::admin::AdminClient;
use shuttlegate_sim::client::Firmware;
use shuttlegate_sim::fleet::{self, FleetOptions};
use tokio::runtime::Runtime;

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
    /// Re-run the swing analysis of stored sessions from the journal and print every swing and
    /// summary as a JSON line (the daemon's JSON, which names its `analysis_version`, plus
    /// `"replay": true`).
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
        format: ExportFormatArg,
    },
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
    firmware: shuttlegate_sim::client::Firmware,
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
    // A secret: `--help` leaves the variable's value out, `Debug` the token.
    #[arg(long, env = "SHUTTLEGATE_ADMIN_TOKEN", hide_env_values = true,
          value_parser = |t: &str| Ok::<_, std::convert::Infallible>(Secret::from(t)))]
    admin_token: Option<Secret>,
    /// The court's UTC offset in hours, for V3.3's local-time stamps.
    #[arg(long, default_value_t = 8)]
    utc_offset_hours: i32,
    /// Random seed of the simulated motion.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// What the sensors see: players in rallies (with real swings), or sensors at rest.
    #[arg(long, value_enum, default_value = "court")]
    motion: shuttlegate_sim::fleet::Motion,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ExportFormatArg {
    Jsonl,
    Csv,
}

/// What the gateway runs, resolved from [`Cli`].
enum Mode {
    /// `run`: the file (SIGHUP loads it again) and its settings.
    Run(PathBuf, Box<Settings>),
    /// `check-config`: the file and whether it loaded.
    CheckConfig(PathBuf, Result<Box<Settings>, ConfigError>),
    PrintConfig,
    Demo(Box<Settings>),
    Simulate(FleetOptions, AdminClient),
    Replay(Box<Settings>, ReplayOptions),
    /// `journal stats` of this journal directory.
    JournalStats(PathBuf),
    JournalExport(PathBuf, ExportFilter, ExportFormat),
}

impl Cli {
    /// Loads the configuration named and turns every flag into the library's options.
    fn resolve(self) -> Result<Mode> {
        let load = |path: &Path| config::load(path).map(Box::new);
        Ok(match self.command {
            Command::Run { config } => {
                let settings = load(&config)?;
                Mode::Run(config, settings)
            }
            Command::CheckConfig { config } => Mode::CheckConfig(config.clone(), load(&config)),
            Command::PrintConfig => Mode::PrintConfig,
            Command::Demo { config } => Mode::Demo(match config {
                Some(path) => load(&path)?,
                None => Box::new(shuttlegate::demo::builtin_settings()?),
            }),
            Command::Simulate(args) => Mode::Simulate(
                FleetOptions {
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
                },
                AdminClient::new(&args.url, args.admin_token.map(|t| t.expose().to_owned())),
            ),
            Command::Replay {
                config,
                session,
                device,
                journal,
            } => Mode::Replay(
                load(&config)?,
                ReplayOptions {
                    session,
                    device,
                    journal,
                },
            ),
            Command::Journal { command } => match command {
                JournalCommand::Stats { state_dir } => {
                    Mode::JournalStats(state_dir.join("journal"))
                }
                JournalCommand::Export {
                    state_dir,
                    session,
                    device,
                    format,
                } => Mode::JournalExport(
                    state_dir.join("journal"),
                    ExportFilter { device, session },
                    match format {
                        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
                        ExportFormatArg::Csv => ExportFormat::Csv,
                    },
                ),
            },
        })
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    match cli.resolve()? {
        // The daemon until SIGTERM/SIGINT; SIGHUP reloads the file.
        Mode::Run(path, settings) => Runtime::new()?.block_on(run(&path, &settings))?,
        // One OK line and exit 0, or every problem and a non-zero exit.
        // Warnings (a secret file others can read) go to stderr: the file still loads.
        Mode::CheckConfig(path, Ok(settings)) => {
            for warning in &settings.warnings {
                eprintln!("warning: {}: {warning}", path.display());
            }
            println!("OK {}: {}", path.display(), settings.summary());
        }
        Mode::CheckConfig(_, Err(e)) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
        Mode::PrintConfig => print!("{}", config::commented_default()),
        Mode::Demo(settings) => Runtime::new()?.block_on(async {
            let signal = shuttlegate::service::termination_signal()?;
            shuttlegate::demo::run(*settings, signal.map(drop)).await?;
            anyhow::Ok(())
        })?,
        Mode::Simulate(options, admin) => {
            let reports = Runtime::new()?.block_on(fleet::run_from_outside(options, &admin))?;
            for (code, report) in &reports {
                match report {
                    Ok(r) => println!("{code}: {r}"),
                    Err(e) => println!("{code}: failed: {e}"),
                }
            }
            let failed = reports.iter().filter(|(_, r)| r.is_err()).count();
            anyhow::ensure!(failed == 0, "{failed} of {} hubs failed", reports.len());
        }
        Mode::Replay(settings, options) => {
            // Results on stdout, a one-line report on stderr.
            let out = std::io::BufWriter::new(std::io::stdout());
            Runtime::new()?
                .block_on(replay::run(&settings, &options, out))?
                .log(&options);
        }
        Mode::JournalStats(dir) => {
            let mut out = std::io::stdout().lock();
            journal_tools::quiet_broken_pipe(journal_tools::stats(&dir, &mut out))?;
        }
        Mode::JournalExport(dir, filter, format) => {
            let out = std::io::stdout().lock();
            if let Some(c) = journal_tools::export_to_pipe(&dir, &filter, format, out)?
                && c.undecodable > 0
            {
                eprintln!(
                    "journal export: {} records could not be decoded and were skipped",
                    c.undecodable
                );
            }
        }
    }
    Ok(())
}

/// The daemon until SIGTERM/SIGINT, or until a critical task dies (then non-zero, saying which).
/// SIGHUP loads `path` again and applies what may change without a restart.
async fn run(path: &Path, settings: &Settings) -> Result<()> {
    let signal = shuttlegate::service::termination_signal()?;
    let mut hangups = shuttlegate::service::hangup_signal()?;
    let running = shuttlegate::daemon::start(settings, shuttlegate::court::system_clock()).await?;
    // Machine-readable lines on stdout: tests and scripts read the bound addresses here (the
    // TLS one first: the http line is the readiness signal).
    if let Some(tls) = running.tls_addr {
        println!("shuttlegate listening tls={tls}");
    }
    println!("shuttlegate listening http={}", running.http_addr);
    log::info!("ready: listening on {}", running.http_addr);
    let mut signal = std::pin::pin!(signal);
    loop {
        tokio::select! {
            signal = &mut signal => {
                log::info!("{signal}: shutting down");
                break;
            }
            // A critical task died and the supervisor began the shutdown (it logged why).
            () = running.shutdown.token.cancelled() => break,
            Some(()) = hangups.recv() => {
                shuttlegate::service::reload_and_log(&running.settings, path);
            }
        }
    }
    let supervisor = running.supervisor.clone();
    let stopped = running.stop().await;
    if let Some(fatal) = supervisor.fatal() {
        if let Err(e) = stopped {
            log::error!("stopping after the failure: {e}");
        }
        return Err(fatal.into());
    }
    stopped?;
    log::info!("stopped cleanly");
    Ok(())
}
