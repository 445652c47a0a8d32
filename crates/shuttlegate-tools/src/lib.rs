//! shuttlegate's developer tools, as a library the `shuttlegate-tools` binary and its tests use.
//! None of it ships in the daemon.
//!
//! ```text
//! eval.rs        the analyser scored against the self-consistent simulator (shuttlegate-sim),
//!                beside the seed method
//! biomech_eval.rs the analyser scored against the independent simulator (shuttlegate-biomech)
//!                through the daemon's parser and court analysis, as a report::SourceReport;
//!                biomech_eval/daemon.rs the same sessions through a real daemon over WebSocket
//! every_source.rs `eval`'s one run over every source: biomech, each recording, held-out fits
//! held_out.rs    leave-one-out figures for fitted parameters (the Fit trait)
//! recording/     real labelled IMU recordings (WitMotion CSV, generic tables) read and scored
//! report.rs      one table per source of truth (SourceReport), the shape every evaluation prints
//! bench/         benchmarks through a real `shuttlegate run` child: ingest, uplink, swings
//! torture.rs     the journal crash test's load generator
//! ```

use std::path::PathBuf;

pub mod bench;
pub mod biomech_eval;
pub mod children;
pub mod eval;
pub mod every_source;
pub mod held_out;
pub mod recording;
pub mod report;
pub mod torture;

/// The daemon binary the benchmarks and tests drive: `SHUTTLEGATE_BIN`, else the `shuttlegate`
/// built beside this binary (the same cargo target directory).
pub fn daemon_exe() -> std::io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SHUTTLEGATE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    // A binary sits in target/<profile>/, a test in target/<profile>/deps/.
    let candidates = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(format!("shuttlegate{}", std::env::consts::EXE_SUFFIX)));
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!(
            "no `shuttlegate` binary beside {}: build it first (`cargo build --release -p shuttlegate`) or set SHUTTLEGATE_BIN",
            exe.display()
        ),
    ))
}
