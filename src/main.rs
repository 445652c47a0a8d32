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
    motion: shuttlegate_sim::fleet::Motion,
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
            shuttlegate::daemon::start(&settings, shuttlegate::court::system_clock()).await?;
        // One machine-readable line on stdout: tests and scripts read the bound address here.
        println!("shuttlegate listening http={}", running.http_addr);
        log::info!("ready: listening on {}", running.http_addr);
        tokio::select! {
            signal = signal => log::info!("{signal}: shutting down"),
            // A critical task died and the supervisor began the shutdown (it logged why).
            () = running.shutdown.token.cancelled() => {}
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
    use shuttlegate_sim::client::Firmware;
    use shuttlegate_sim::fleet::{FleetOptions, FleetProgress};
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
        let admin = shuttlegate_sim::admin::AdminClient::new(&args.url, args.admin_token.clone());
        let codes: Vec<String> = (0..options.devices).map(|i| options.code(i)).collect();
        let fleet = tokio::spawn(shuttlegate_sim::fleet::run(
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
