//! shuttlegate's pure core: everything the gateway decides, with none of the IO it does.
//!
//! ```text
//! protocol   device messages ⇄ types (the seed system's JSON, V3.3 and compact forms); frame times
//! batch      a device's IMU batch as the rest of the gateway sees it (seed frames or compact samples)
//! conditions the admin console's system notifications: sampled states → edge-triggered notices
//! court      the court's state machine: devices, sessions (the seeds' states), command queues
//! analysis   swings, strokes, speeds, the kinetic chain, rallies, session summaries, and the
//!            court's routing of batches to per-device analysers (`analysis::court`)
//! journal    the journal's record format: records, frames, the lossless sample codecs
//! ```
//!
//! Nothing here touches a file, a socket or the clock, and nothing depends on an async runtime:
//! time comes in as a parameter (`now_ms`), bytes come in as slices. The compiler holds that
//! line: this crate's `clippy.toml` refuses `std::fs`, `std::net`, `SystemTime::now` and
//! `Instant::now`, and CI checks that `cargo tree -p shuttlegate-core -e normal` has no tokio.
//! The daemon (the `shuttlegate` package) is the thin async driver over it.

pub mod analysis;
pub mod batch;
pub mod conditions;
pub mod court;
pub mod device_watch;
pub mod journal;
pub mod protocol;
