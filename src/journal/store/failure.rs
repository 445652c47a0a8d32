//! Storage failures: the ones the writer rides out, and the ones it must not.
//!
//! A journal that refuses every append after one failed `open` while the process stays up is
//! broken for good (systemd restarts only a process that exits). On a court the causes are
//! mostly passing: the descriptor limit hit during a connection flood (EMFILE), a card full until
//! the uplink releases segments (ENOSPC), a brown-out glitch (EIO). So:
//!
//! - **A failed segment roll or write** (open, create, write, rename, the new segment's header,
//!   the small files' temp-file fsyncs) puts the store in [`Trouble`]: appends are refused with
//!   [`AppendError::Unavailable`] (a device gets `success:false` and keeps its batch; the
//!   gateway's own records are held by the writer thread and written once it recovers), and the
//!   failed step is retried with backoff ([`RETRY_INITIAL`] doubling to [`RETRY_MAX`]). Each
//!   retry redoes its step from scratch — a roll truncates the new segment and rewrites its
//!   header and the `next_id` file through a new temp file; a failed write first cuts the open
//!   segment back to its durable length — so every byte it relies on was written again after
//!   the failure. Ids and seqs of refused records are handed out again: no gap, no duplicate.
//! - **A failed fsync of the open segment** stops the journal at once ([`JournalHealth::Stopped`]):
//!   after a failed fsync the kernel may have marked the dirty pages clean without writing them
//!   ("fsyncgate", PostgreSQL 2018), so a retry that "succeeds" proves nothing about records
//!   already written to the page cache. Only a restart's recovery, reading the disk back and
//!   checking each record's CRC, knows what survived. The daemon sees the stop and exits
//!   non-zero; systemd restarts it.
//! - **Trouble that outlasts `failure_grace`** stops the journal the same way: the daemon exits
//!   so that systemd restarts it (a fresh process, fresh descriptors, recovery) and the operator
//!   sees a failed unit rather than a gateway that quietly refuses every batch.

use std::time::{Duration, Instant};

use log::{error, info, warn};

use super::{JournalHealth, Store, locked};
use crate::journal::error::AppendError;

/// First wait before a failed step is retried.
pub const RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between retries: a failure that clears is noticed within this.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// A failed step, refused appends meanwhile, and when to try the step again.
#[derive(Debug)]
pub(crate) struct Trouble {
    /// What failed last, for the log, the stats and the refusals.
    why: String,
    /// When the first failure of this episode happened (the grace runs from here).
    since: Instant,
    retry_at: Instant,
    delay: Duration,
    repair: Repair,
}

/// What must succeed before appends go on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Repair {
    /// Seal the open segment and start the next (a roll failed; the open one is full).
    Roll,
    /// Cut the open segment back to its durable length (a write failed midway).
    Truncate(u64),
}

impl Store {
    /// A roll or a write failed: refuse appends and retry `repair` from `now` on, with backoff.
    /// The episode (grace and backoff) goes on until a write succeeds: a repair that works
    /// followed by a write that fails again (a card that stays full) is the same failure.
    pub(super) fn trouble(&mut self, why: String, repair: Repair, now: Instant) {
        let episode = match (&self.trouble, &self.repaired) {
            (Some(t), _) => Some((t.since, t.delay)),
            (None, repaired) => *repaired,
        };
        let (since, delay) = match episode {
            Some((since, delay)) => (since, (delay * 2).min(RETRY_MAX)),
            None => (now, RETRY_INITIAL),
        };
        warn!(
            "journal {}: {why}; refusing appends, retrying in {delay:?}",
            self.opts.dir.display()
        );
        self.trouble = Some(Trouble {
            why,
            since,
            // The last retry falls on the grace's end, so the journal gives up on time.
            retry_at: (now + delay).min(since + self.opts.failure_grace).max(now),
            delay,
            repair,
        });
        self.publish_failure();
    }

    /// Stops the journal for good: every later append is refused, and the daemon exits.
    pub(super) fn stop_for_good(&mut self, why: String) {
        error!(
            "journal {}: {why}; stopping: restart so recovery decides what is durable",
            self.opts.dir.display()
        );
        self.stopped.get_or_insert(why);
        self.trouble = None;
        self.repaired = None;
        self.publish_failure();
    }

    /// Retries the failed step if its time has come, and gives up past the grace. True when
    /// appends can be written.
    pub fn ready(&mut self, now: Instant, now_ms: i64) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        let Some(t) = &self.trouble else {
            return true;
        };
        let failing_for = now.saturating_duration_since(t.since);
        if failing_for >= self.opts.failure_grace {
            let why = format!(
                "{} (still failing after {:.1?}; journal.failure_grace is {:?})",
                t.why, failing_for, self.opts.failure_grace
            );
            self.stop_for_good(why);
            return false;
        }
        if now < t.retry_at {
            return false;
        }
        let (repair, since, delay) = (t.repair, t.since, t.delay);
        let repaired = match repair {
            Repair::Roll => self
                .roll(now_ms)
                .map_err(|e| format!("starting a new segment: {e}")),
            Repair::Truncate(len) => self
                .tail
                .truncate(len)
                .map_err(|e| format!("cutting the open segment back to {len} bytes: {e}")),
        };
        match repaired {
            Ok(()) => {
                // Appends go ahead; the episode ends with the first one written.
                self.trouble = None;
                self.repaired = Some((since, delay));
                self.publish_failure();
                true
            }
            Err(why) => {
                self.trouble(why, repair, now);
                false
            }
        }
    }

    /// A group was written and fsynced: a failure episode, if one was going on, is over.
    pub(super) fn written(&mut self, now: Instant) {
        if let Some((since, _)) = self.repaired.take() {
            info!(
                "journal {}: recovered after {:.1?}; appends are written again",
                self.opts.dir.display(),
                now.saturating_duration_since(since)
            );
        }
    }

    /// When the writer should wake to retry (it has nothing else to wake it), if it should.
    pub fn retry_at(&self) -> Option<Instant> {
        self.trouble.as_ref().map(|t| t.retry_at)
    }

    /// Whether appends can be written, are refused for now, or refused for good.
    pub fn health(&self) -> JournalHealth {
        match (&self.stopped, &self.trouble) {
            (Some(why), _) => JournalHealth::Stopped(why.clone()),
            (None, Some(t)) => JournalHealth::Retrying {
                why: t.why.clone(),
                since: t.since,
            },
            (None, None) => JournalHealth::Writing,
        }
    }

    /// The answer to an append while appends are refused.
    pub(crate) fn refusal(&self) -> Option<AppendError> {
        if let Some(why) = &self.stopped {
            return Some(AppendError::Io(format!("journal stopped: {why}")));
        }
        self.trouble
            .as_ref()
            .map(|t| AppendError::Unavailable(t.why.clone()))
    }

    /// Why appends are refused, if they are (the stats' `failed`, `close`'s error).
    pub(super) fn failure(&self) -> Option<String> {
        self.stopped
            .clone()
            .or_else(|| self.trouble.as_ref().map(|t| t.why.clone()))
    }

    fn publish_failure(&self) {
        locked(&self.shared.stats).failed = self.failure();
    }
}
