//! The crash-test load generator behind the hidden `shuttlegate-tools journal torture` command.
//!
//! Appends batches from several concurrent tasks until killed, and prints one line per
//! acknowledged append, `<id> <device> <seq>`, flushed at once: whatever a test reads from
//! stdout was acknowledged, so it must be in the journal after the kill.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;

use shuttlegate::journal::{AppendError, Journal, JournalError, JournalOptions, RecordBody};
use shuttlegate_core::journal::synth::{Motion, compact_batch};

/// Runs until `limit` appends were acknowledged (or forever with `None`), or an append fails.
pub async fn run(
    dir: PathBuf,
    appenders: usize,
    limit: Option<u64>,
    segment_bytes: u64,
) -> Result<(), JournalError> {
    let mut opts = JournalOptions::new(dir);
    opts.segment_bytes = segment_bytes;
    opts.max_bytes = segment_bytes.saturating_mul(1024);
    let (journal, _report) = Journal::open(opts)?;
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let mut tasks: Vec<tokio::task::JoinHandle<Result<(), AppendError>>> = Vec::new();
    for a in 0..appenders {
        let journal = journal.clone();
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            let device = format!("dev{a}");
            let mut rng = rand::rngs::SmallRng::seed_from_u64(a as u64);
            let per_task = limit.map(|l| l.div_ceil(appenders as u64));
            let mut n = 0u64;
            loop {
                if per_task.is_some_and(|p| n >= p) {
                    return Ok(());
                }
                // Device-numbered from where this device's session stands (it survives restarts).
                let seq = journal
                    .stored_seqs(&device, "torture")
                    .last()
                    .map_or(0, |s| s + 1);
                let batch = compact_batch(
                    &mut rng,
                    &device,
                    "torture",
                    Some(seq),
                    0,
                    20,
                    Motion::Swing,
                );
                let acked = journal.append(RecordBody::Batch(batch)).await?;
                let line = format!("{} {device} {seq}\n", acked.id);
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                let _ = o.write_all(line.as_bytes());
                let _ = o.flush();
                n += 1;
            }
        }));
    }
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(JournalError::Failed(e.to_string())),
            Err(e) => return Err(JournalError::Failed(e.to_string())),
        }
    }
    journal.close().await
}
