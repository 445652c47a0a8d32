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

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ExportFormat {
    Jsonl,
    Csv,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => anyhow::bail!("run {}: not wired yet", config.display()),
        Command::CheckConfig { config } => {
            anyhow::bail!("check-config {}: not wired yet", config.display())
        }
        Command::PrintConfig => anyhow::bail!("print-config: not wired yet"),
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
