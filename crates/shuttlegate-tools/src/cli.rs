//! The command line as the user wrote it (clap's structs, [`Cli`]) and its resolution, once,
//! into what the tools run ([`Mode`]): every flag checked, every option in the library's own
//! types. ripgrep's `LowArgs` → `HiArgs`; main.rs only dispatches.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use shuttlegate_biomech::Placement;
use shuttlegate_core::batch::BodyPosition;
use shuttlegate_tools::bench::ingest::IngestBench;
use shuttlegate_tools::bench::phones::PhoneBench;
use shuttlegate_tools::bench::swings::SwingBench;
use shuttlegate_tools::bench::uplink::UplinkBench;
use shuttlegate_tools::biomech_eval::BiomechOptions;
use shuttlegate_tools::eval::EvalOptions;
use shuttlegate_tools::every_source::SourceRun;
use shuttlegate_tools::recording::sources::{self, SOURCE_NAMES, Source};
use shuttlegate_tools::recording::{
    AccUnit, AxisMap, Format, GyroUnit, Label, RecordingSpec, TableFormat, TimeSource, TimeUnit,
};

/// Developer tools for shuttlegate: the analysis evaluation, benchmarks through the real daemon,
/// the journal crash-test load generator.
#[derive(Parser, Debug)]
#[command(name = "shuttlegate-tools", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmarks through the real daemon.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Score the swing analyser. Without a narrowing flag: one table per source — the
    /// independent simulator on held-out seeds (rates mixed, 100 Hz, 200 Hz), every committed
    /// recording excerpt, every `--source NAME=DIR` whole set, the held-out figure of each
    /// fitted parameter — each streamed through a real daemon (`--in-process`: the same
    /// analysis in this process). Narrowed: `--simulator biomech` (or `--rate-hz`,
    /// `--placement`) the independent simulator alone, `--simulator sim` the project's
    /// self-consistent simulator with the seed backend's method beside it, `--recordings` the
    /// real sources alone, `--recording` single labelled files.
    Eval {
        /// Only this simulator's truth (default: every source).
        #[arg(long, value_enum)]
        simulator: Option<SimulatorArg>,
        /// `--simulator biomech`: put every device's nodes here instead of drawing per session.
        #[arg(long, value_enum)]
        placement: Option<PlacementArg>,
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
        /// Also print the unmatched and misclassified swings (with --recordings: one line per
        /// file with its own counts).
        #[arg(long)]
        verbose: bool,
        /// Evaluate a real labelled recording instead of the simulator: `LABEL=FILE`, where
        /// LABEL is what the file holds, `+`-joined: a stroke (smash, clear, drop, drive, net,
        /// lift, serve), a side (forehand, backhand), a height (overhead, sidearm, underarm),
        /// e.g. `smash+overhead=smash.csv`. Repeatable; every file is read with the format
        /// flags below (default: a WitMotion CSV export).
        #[arg(long, value_name = "LABEL=FILE")]
        recording: Vec<String>,
        /// One table per real source (padel, tennis, table tennis, badminton WitMotion): strokes
        /// found per class, counted twice, false swings per minute, side and height agreement,
        /// speed order, against issue 14's targets. Each source's files go through a real
        /// daemon (`shuttlegate` beside this binary, or SHUTTLEGATE_BIN) as device sessions.
        /// Reads the excerpts committed under tests/fixtures/ unless --source names a clone.
        #[arg(long)]
        recordings: bool,
        /// Read source NAME from DIR (a local clone laid out as the data set is; see
        /// tests/fixtures/README.md). Repeatable. With --recordings only the named sources
        /// run; without it, each is added after the committed excerpts.
        #[arg(long, value_name = "NAME=DIR")]
        source: Vec<String>,
        /// Run the analyser in this process instead of through a daemon (every source and
        /// --recordings).
        #[arg(long)]
        in_process: bool,
        /// Print the reports as JSON (`{"sources": [...]}`) instead of tables; not with
        /// --simulator sim or --recording.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        recording_format: RecordingFormatArgs,
        /// Run every simulated device at this sample rate (Hz) instead of the standard mix.
        #[arg(long)]
        rate_hz: Option<f64>,
        /// With --simulator biomech: infer each racket node's axes from its swings (`true`),
        /// or read them in the convention (`false`); default: the analyser's default.
        #[arg(long)]
        infer_axes: Option<bool>,
    },
    /// Write one independent-simulator session to DIR: `wire.jsonl` (the device's text frames,
    /// one per line, exactly as sent) and `truth.json` (the device, each frame's receipt time,
    /// the swings as meant, the rest windows).
    Biomech {
        /// Seed of the session.
        #[arg(long, default_value_t = 1000)]
        seed: u64,
        /// Length, seconds.
        #[arg(long, default_value_t = 120.0)]
        duration_s: f64,
        /// Every node at this rate (50–1000 Hz); default: drawn.
        #[arg(long)]
        rate_hz: Option<f64>,
        /// Where the nodes are worn; default: drawn.
        #[arg(long, value_enum)]
        placement: Option<PlacementArg>,
        /// Output directory (created).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The journal's crash-test load generator.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
}

/// Where `eval` gets its truth.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SimulatorArg {
    /// The independent simulator (shuttlegate-biomech): literature kinematics, real sensors'
    /// faults, labels from the stroke meant; streamed through the daemon's parser.
    Biomech,
    /// The project's own court simulator: self-consistent with the analyser (it shares its
    /// pulse model and labelling rules), kept for regression comparison.
    Sim,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum PlacementArg {
    FourNode,
    RacketOnly,
    WristOnly,
    Forearm,
}

impl PlacementArg {
    fn placement(self) -> Placement {
        match self {
            PlacementArg::FourNode => Placement::FourNode,
            PlacementArg::RacketOnly => Placement::RacketOnly,
            PlacementArg::WristOnly => Placement::WristOnly,
            PlacementArg::Forearm => Placement::Forearm,
        }
    }
}

#[derive(Subcommand, Debug)]
enum JournalCommand {
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
    /// Players' phones and courtside screens on a `shuttlegate run` child under `bench swings`'s
    /// load: swing -> phone latency (completing batch received -> written to the phone's socket,
    /// from the daemon's `/metrics`) against p99 <= 20 ms, and the cost of the clients: paced
    /// probe devices' ack latency, daemon CPU and RSS, quiet versus with every client connected,
    /// and the pushes dropped.
    Phones(BenchPhonesArgs),
}

#[derive(clap::Args, Debug)]
struct BenchPhonesArgs {
    /// Court-simulated players, in courts of two; each is bound to a user of its own.
    #[arg(long, default_value_t = 8)]
    players: usize,
    /// Phones, spread evenly over the players' users (each JWT-authenticated).
    #[arg(long, default_value_t = 200)]
    phones: usize,
    /// Public courtside screens (each gets every swing).
    #[arg(long, default_value_t = 4)]
    screens: usize,
    /// Paced devices whose ack latency is measured.
    #[arg(long, default_value_t = 4)]
    probes: usize,
    /// Each probe's interval between batches (of 100 samples).
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    probe_interval: std::time::Duration,
    /// Unpaced ingest devices sending beside the players.
    #[arg(long, default_value_t = 0)]
    load_devices: usize,
    /// Batches in flight per load device.
    #[arg(long, default_value_t = 8)]
    load_window: usize,
    /// Samples per second of each player's racket node.
    #[arg(long, default_value_t = 200.0)]
    rate_hz: f64,
    /// Samples per player batch.
    #[arg(long, default_value_t = 40)]
    batch_samples: usize,
    /// How long the players play, per run (quiet, then watched).
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// The journal's group-commit window.
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    commit_interval: std::time::Duration,
    /// Seed of the simulated players.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl BenchPhonesArgs {
    fn resolve(self) -> Result<PhoneBench> {
        anyhow::ensure!(self.players > 0, "--players must be at least 1");
        anyhow::ensure!(self.rate_hz > 0.0, "--rate-hz must be positive");
        anyhow::ensure!(self.batch_samples > 0, "--batch-samples must be at least 1");
        anyhow::ensure!(
            self.phones <= 100_000 && self.screens <= 256,
            "at most 100000 phones and 256 screens (limits.max_phones, limits.max_screens)"
        );
        anyhow::ensure!(
            !self.probe_interval.is_zero(),
            "--probe-interval must be positive"
        );
        Ok(PhoneBench {
            load: SwingBench {
                players: self.players,
                rate_hz: self.rate_hz,
                batch_samples: self.batch_samples,
                load_devices: self.load_devices,
                load_window: self.load_window.max(1),
                duration: self.duration,
                commit_interval: self.commit_interval,
                seed: self.seed,
            },
            phones: self.phones,
            screens: self.screens,
            probes: self.probes,
            probe_interval: self.probe_interval,
        })
    }
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

/// What the tools run, resolved from [`Cli`].
pub enum Mode {
    /// `bench ingest`: one scenario, or the two reference ones.
    BenchIngest(Vec<IngestBench>),
    BenchUplink(UplinkBench),
    /// `bench swings`: one scenario, or the two reference ones.
    BenchSwings(Vec<SwingBench>),
    /// `bench phones`: one scenario, quiet then watched.
    BenchPhones(PhoneBench),
    /// `eval`: every source, one table each.
    EvalEvery {
        runs: Vec<SourceRun>,
        in_process: bool,
        verbose: bool,
        json: bool,
    },
    /// `eval --simulator biomech`: against the independent simulator.
    EvalBiomech {
        options: BiomechOptions,
        verbose: bool,
        json: bool,
    },
    /// `eval --simulator sim`: against the self-consistent simulator.
    Eval {
        options: EvalOptions,
        verbose: bool,
    },
    /// `eval --recording LABEL=FILE …`: the analyser over real labelled recordings.
    EvalRecordings(Vec<RecordingSpec>),
    /// `eval --recordings`: one report per real source.
    EvalSources {
        sources: Vec<Source>,
        in_process: bool,
        /// Also one line per file.
        verbose: bool,
        json: bool,
    },
    /// `biomech`: one session written out.
    BiomechSession {
        options: shuttlegate_biomech::SessionOptions,
        out: PathBuf,
    },
    /// `journal torture`.
    Torture {
        dir: PathBuf,
        appenders: usize,
        limit: Option<u64>,
        segment_bytes: u64,
    },
}

impl Cli {
    /// Checks every flag and turns them into the library's options.
    pub fn resolve(self) -> Result<Mode> {
        Ok(match self.command {
            Command::Bench { command } => match command {
                BenchCommand::Ingest {
                    devices,
                    batch_samples,
                    rate_hz,
                    duration,
                    window,
                    commit_interval,
                } => {
                    let base = IngestBench {
                        devices: devices.unwrap_or(64),
                        batch_samples,
                        rate_hz,
                        duration,
                        window,
                        commit_interval,
                    };
                    Mode::BenchIngest(match devices {
                        Some(_) => vec![base],
                        None => vec![
                            base.clone(),
                            IngestBench {
                                devices: 100,
                                rate_hz: Some(1000.0),
                                ..base
                            },
                        ],
                    })
                }
                BenchCommand::Uplink(args) => Mode::BenchUplink(args.resolve()?),
                BenchCommand::Swings(args) => Mode::BenchSwings(args.resolve()?),
                BenchCommand::Phones(args) => Mode::BenchPhones(args.resolve()?),
            },
            Command::Eval {
                simulator,
                placement,
                seeds,
                first_seed,
                players,
                duration_s,
                drop_batch,
                reorder_batch,
                verbose,
                recording,
                recordings,
                source,
                in_process,
                json,
                recording_format,
                rate_hz,
                infer_axes,
            } => {
                if recordings {
                    return Ok(Mode::EvalSources {
                        sources: resolve_sources(&source)?,
                        in_process,
                        verbose,
                        json,
                    });
                }
                if !recording.is_empty() {
                    anyhow::ensure!(!json, "--json does not apply to --recording");
                    return Ok(Mode::EvalRecordings(recording_format.specs(&recording)?));
                }
                anyhow::ensure!(
                    duration_s.is_finite() && duration_s >= 10.0,
                    "--duration-s must be at least 10"
                );
                let narrowed = simulator.is_some()
                    || placement.is_some()
                    || rate_hz.is_some()
                    || infer_axes.is_some();
                if !narrowed {
                    anyhow::ensure!(
                        drop_batch == 0.0 && reorder_batch == 0.0 && players == 2,
                        "--drop-batch, --reorder-batch and --players apply to --simulator sim only"
                    );
                    let seeds: Vec<u64> = (first_seed..first_seed + seeds).collect();
                    let mut runs = SourceRun::biomech_variants(&seeds, duration_s);
                    for name in sources::FIXTURE_SOURCES {
                        let dir = fixture_dir(name);
                        let data = format!(
                            "committed excerpt tests/fixtures/{}",
                            dir.file_name()
                                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                        );
                        runs.extend(SourceRun::recording(resolve_source(name, &dir)?, data));
                    }
                    for pair in &source {
                        let (name, dir) = source_pair(pair)?;
                        let data = format!("whole set at {}", dir.display());
                        runs.extend(SourceRun::recording(resolve_source(&name, &dir)?, data));
                    }
                    return Ok(Mode::EvalEvery {
                        runs,
                        in_process,
                        verbose,
                        json,
                    });
                }
                anyhow::ensure!(
                    source.is_empty() && !in_process,
                    "--source and --in-process apply to every source or --recordings, not to --simulator, --rate-hz or --placement"
                );
                if simulator != Some(SimulatorArg::Sim) {
                    anyhow::ensure!(
                        rate_hz.is_none_or(|r| (50.0..=1000.0).contains(&r)),
                        "--rate-hz must be between 50 and 1000 (the independent simulator's nodes)"
                    );
                    anyhow::ensure!(
                        drop_batch == 0.0 && reorder_batch == 0.0 && players == 2,
                        "--drop-batch, --reorder-batch and --players apply to --simulator sim only"
                    );
                    return Ok(Mode::EvalBiomech {
                        verbose,
                        json,
                        options: BiomechOptions {
                            seeds: (first_seed..first_seed + seeds).collect(),
                            duration_s,
                            rate_hz,
                            placement: placement.map(PlacementArg::placement),
                            infer_axes,
                        },
                    });
                }
                anyhow::ensure!(
                    placement.is_none() && infer_axes.is_none(),
                    "--placement and --infer-axes apply to --simulator biomech only"
                );
                anyhow::ensure!(!json, "--json does not apply to --simulator sim");
                anyhow::ensure!(players == 2 || players == 4, "--players must be 2 or 4");
                anyhow::ensure!(
                    rate_hz.is_none_or(|r| (50.0..=2000.0).contains(&r)),
                    "--rate-hz must be between 50 and 2000"
                );
                Mode::Eval {
                    options: EvalOptions {
                        seeds: (first_seed..first_seed + seeds).collect(),
                        players,
                        duration_s,
                        impairments: shuttlegate_sim::Impairments {
                            drop_batch,
                            reorder_batch,
                        },
                        rate_hz,
                    },
                    verbose,
                }
            }
            Command::Biomech {
                seed,
                duration_s,
                rate_hz,
                placement,
                out,
            } => {
                anyhow::ensure!(
                    duration_s.is_finite() && duration_s >= 10.0,
                    "--duration-s must be at least 10"
                );
                anyhow::ensure!(
                    rate_hz.is_none_or(|r| (50.0..=1000.0).contains(&r)),
                    "--rate-hz must be between 50 and 1000"
                );
                Mode::BiomechSession {
                    options: shuttlegate_biomech::SessionOptions {
                        seed,
                        duration_s,
                        rate_hz,
                        placement: placement.map(PlacementArg::placement),
                    },
                    out,
                }
            }
            Command::Journal {
                command:
                    JournalCommand::Torture {
                        dir,
                        appenders,
                        limit,
                        segment_bytes,
                    },
            } => Mode::Torture {
                dir,
                appenders,
                limit,
                segment_bytes,
            },
        })
    }
}

impl BenchUplinkArgs {
    fn resolve(self) -> Result<UplinkBench> {
        anyhow::ensure!(self.devices > 0, "--devices must be at least 1");
        anyhow::ensure!(self.batch_samples > 0, "--batch-samples must be at least 1");
        anyhow::ensure!(self.rate_hz > 0.0, "--rate-hz must be positive");
        anyhow::ensure!(self.window > 0, "--window must be at least 1");
        Ok(UplinkBench {
            devices: self.devices,
            rate_hz: self.rate_hz,
            batch_samples: self.batch_samples,
            backlog: self.backlog,
            live_devices: self.live_devices,
            idle: self.idle,
            window: self.window,
            replay_rate: self.replay_rate,
            inflight: self.inflight,
            drain_timeout: self.drain_timeout,
            commit_interval: self.commit_interval,
        })
    }
}

impl BenchSwingsArgs {
    fn resolve(self) -> Result<Vec<SwingBench>> {
        anyhow::ensure!(self.rate_hz > 0.0, "--rate-hz must be positive");
        anyhow::ensure!(self.batch_samples > 0, "--batch-samples must be at least 1");
        anyhow::ensure!(self.players != Some(0), "--players must be at least 1");
        anyhow::ensure!(
            self.players.is_some() || self.load_devices == 0,
            "--load-devices sets up a custom scenario: give --players too"
        );
        let base = SwingBench {
            players: self.players.unwrap_or(8),
            rate_hz: self.rate_hz,
            batch_samples: self.batch_samples,
            load_devices: self.load_devices,
            load_window: self.load_window.max(1),
            duration: self.duration,
            commit_interval: self.commit_interval,
            seed: self.seed,
        };
        Ok(match self.players {
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
        })
    }
}

/// The committed excerpt of a source: tests/fixtures/ in this source tree.
fn fixture_dir(name: &str) -> PathBuf {
    let dir = match name {
        "padel_mdpg22_axes_learnt" => "padel_mdpg22",
        other => other,
    };
    [env!("CARGO_MANIFEST_DIR"), "../../tests/fixtures", dir]
        .iter()
        .collect()
}

/// `--source NAME=DIR …` as sources; without any, every source with a committed excerpt.
fn resolve_sources(pairs: &[String]) -> Result<Vec<Source>> {
    let wanted: Vec<(String, PathBuf)> = if pairs.is_empty() {
        sources::FIXTURE_SOURCES
            .iter()
            .map(|n| (n.to_string(), fixture_dir(n)))
            .collect()
    } else {
        pairs
            .iter()
            .map(|p| source_pair(p))
            .collect::<Result<_>>()?
    };
    wanted
        .into_iter()
        .map(|(name, dir)| resolve_source(&name, &dir))
        .collect()
}

/// One `--source NAME=DIR`.
fn source_pair(pair: &str) -> Result<(String, PathBuf)> {
    let (name, dir) = pair
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--source {pair}: expected NAME=DIR"))?;
    Ok((name.to_string(), PathBuf::from(dir)))
}

/// The built-in source `name` over the files in `dir`; an error for an unknown name or a
/// directory without its files.
fn resolve_source(name: &str, dir: &std::path::Path) -> Result<Source> {
    let source = sources::by_name(name, dir)
        .map_err(|e| anyhow::anyhow!("--source {name}={}: {e}", dir.display()))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--source {name}: not a source (one of {})",
                SOURCE_NAMES.join(", ")
            )
        })?;
    anyhow::ensure!(
        !source.files.is_empty(),
        "--source {name}={}: no recording files there",
        dir.display()
    );
    Ok(source)
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
    fn format(&self) -> Result<Format> {
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

    /// `--label-map 1=forehand,2=backhand` as (value, label) pairs.
    fn run_labels(&self) -> Result<Vec<(String, Label)>> {
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

    /// `--recording LABEL=FILE …`, each file to be read with this format.
    fn specs(&self, recordings: &[String]) -> Result<Vec<RecordingSpec>> {
        let format = self.format()?;
        let run_labels = self.run_labels()?;
        recordings
            .iter()
            .map(|spec| {
                let (label, path) = spec
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--recording {spec}: expected LABEL=FILE"))?;
                let label =
                    Label::parse(label).map_err(|e| anyhow::anyhow!("--recording {spec}: {e}"))?;
                Ok(RecordingSpec {
                    path: path.into(),
                    label,
                    format: format.clone(),
                    position: match self.mount {
                        MountArg::Racket => BodyPosition::Racket,
                        MountArg::Wrist => BodyPosition::Wrist,
                    },
                    acc_full_scale_g: self.acc_full_scale_g,
                    gyro_full_scale_dps: self.gyro_full_scale_dps,
                    run_labels: run_labels.clone(),
                })
            })
            .collect()
    }
}
