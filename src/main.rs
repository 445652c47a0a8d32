//! `shuttlegate`: the command line. Arguments are parsed here (clap) and handed, resolved, to
//! the library; this file is glue and the only place `anyhow` is used.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
        /// Evaluate a real labelled recording instead of the simulator: `STROKE=FILE`, a CSV
        /// export (`Date,Time,Accel_X (g),…,Gyro_Z (°/s)`) holding repetitions of one stroke.
        /// Repeatable.
        #[arg(long, value_name = "STROKE=FILE")]
        recording: Vec<String>,
        /// Run every simulated device at this sample rate (Hz) instead of the standard mix.
        #[arg(long)]
        rate_hz: Option<f64>,
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

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ExportFormat {
    Jsonl,
    Csv,
}

/// `eval --recording STROKE=FILE …`: the analyser over real labelled recordings.
fn eval_recordings(specs: &[String]) -> Result<()> {
    use shuttlegate::analysis::{AnalysisSettings, Stroke};
    let settings = AnalysisSettings::default();
    let mut results = Vec::new();
    for spec in specs {
        let (label, path) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--recording {spec}: expected STROKE=FILE"))?;
        let stroke = Stroke::ALL
            .into_iter()
            .find(|s| s.as_str() == label)
            .ok_or_else(|| anyhow::anyhow!("--recording {spec}: unknown stroke `{label}`"))?;
        results.push(shuttlegate::sim::recording::evaluate(
            path, stroke, &settings,
        )?);
    }
    print!("{}", shuttlegate::sim::recording::render(&results));
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => anyhow::bail!("run {}: not wired yet", config.display()),
        Command::CheckConfig { config } => {
            anyhow::bail!("check-config {}: not wired yet", config.display())
        }
        Command::PrintConfig => anyhow::bail!("print-config: not wired yet"),
        Command::Eval {
            seeds,
            first_seed,
            players,
            duration_s,
            drop_batch,
            reorder_batch,
            verbose,
            recording,
            rate_hz,
        } => {
            if !recording.is_empty() {
                return eval_recordings(&recording);
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
        Command::Journal { command } => match command {
            JournalCommand::Stats { state_dir } => {
                anyhow::bail!("journal stats {}: not wired yet", state_dir.display())
            }
            JournalCommand::Export { state_dir, .. } => {
                anyhow::bail!("journal export {}: not wired yet", state_dir.display())
            }
        },
    }
}
