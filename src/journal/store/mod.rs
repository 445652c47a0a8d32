//! The synchronous core of the journal: recovery on open, group commit of staged records,
//! segment roll, cursor persistence, release of acknowledged segments, the `max_bytes` policy,
//! and reads. No tokio: the writer thread owns a [`Store`]; readers share [`Shared`].
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Store`] and [`Shared`], the option/report/stats types, the small files' names |
//! | `recovery.rs` | [`Store::open`]: lock, leftovers, segment scan or sidecar, torn tail, quarantine |
//! | `commit.rs` | group commit: staging, dedup by seq, one write + fsync per group |
//! | `failure.rs` | a failed roll or write retried with backoff; a failed fsync or one past the grace stops |
//! | `retention.rs` | segments and the cap: start, roll, sidecars, `drop_oldest_raw` compaction, the device share |
//! | `cursors.rs` | cursor persistence, release of acked segments, seq highs, pressure, close |
//! | `publish.rs` | publishing the reader view (segment views) and the stats gauges |
//! | `reads.rs` | the readers' side ([`Shared`]): durable id, range reads, corrupt-record reports |

mod commit;
mod cursors;
mod failure;
mod publish;
mod reads;
mod recovery;
mod retention;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use super::error::JournalError;
use super::fs::{AppendFile, Fs, LockGuard};
use super::segment::{SegmentInfo, SegmentSessions};
use super::seqs::SeqIndex;
use shuttlegate_core::journal::codec::EncodedBody;
use shuttlegate_core::journal::record::RecordKind;

/// What to do when an append would take the journal past `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Compact the oldest segments, dropping their raw sensor batches and keeping swings,
    /// summaries and events; refuse only if nothing is left to drop.
    #[default]
    DropOldestRaw,
    /// Fail the append with [`AppendError::Full`](super::error::AppendError::Full) so the device keeps its copy.
    Refuse,
}

/// How to open a journal.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// `<state_dir>/journal`; the lock file `LOCK` lives in it.
    pub dir: PathBuf,
    /// Cap on the segment files' total size.
    pub max_bytes: u64,
    pub when_full: WhenFull,
    /// Group-commit window: how long the writer collects appends before one fsync.
    pub commit_interval: Duration,
    /// A segment is sealed and a new one started when the next record would take it past this.
    pub segment_bytes: u64,
    /// Enabled consumers; a segment is deleted only when each has acked past it. With none,
    /// segments go only by the `when_full` policy.
    pub consumers: Vec<String>,
    /// How long a failed segment roll or write may keep failing (retried with backoff) before
    /// the journal gives up and reports [`JournalHealth::Stopped`].
    pub failure_grace: Duration,
    /// The fraction of `max_bytes` one device's batches may take (1.0: no limit of its own).
    /// Past it, under `refuse` its batches are refused with [`AppendError::DeviceFull`], under
    /// `drop_oldest_raw` its own oldest batches are dropped first.
    ///
    /// [`AppendError::DeviceFull`]: super::error::AppendError::DeviceFull
    pub device_share: f64,
}

impl JournalOptions {
    /// Defaults for everything but the directory: 1 GiB cap, drop oldest raw, 2 ms, 64 MiB.
    pub fn new(dir: impl Into<PathBuf>) -> JournalOptions {
        JournalOptions {
            dir: dir.into(),
            max_bytes: 1 << 30,
            when_full: WhenFull::DropOldestRaw,
            commit_interval: Duration::from_millis(2),
            segment_bytes: 64 << 20,
            consumers: Vec::new(),
            failure_grace: Duration::from_secs(60),
            device_share: 1.0,
        }
    }

    /// Sets `max_bytes` and a segment size that suits it (a sixteenth of the cap, between
    /// 1 MiB and 64 MiB), so that `drop_oldest_raw` always has sealed segments to compact.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> JournalOptions {
        self.max_bytes = max_bytes;
        self.segment_bytes = (max_bytes / 16).clamp(1 << 20, 64 << 20);
        self
    }

    fn validate(&self) -> Result<(), JournalError> {
        let bad = |option, reason: &str| {
            Err(JournalError::InvalidOption {
                option,
                reason: reason.to_owned(),
            })
        };
        if self.segment_bytes < 4096 {
            return bad("segment_bytes", "must be at least 4096");
        }
        if self.max_bytes < 2 * self.segment_bytes {
            return bad("max_bytes", "must be at least twice segment_bytes");
        }
        if self.commit_interval > Duration::from_secs(1) {
            return bad("commit_interval", "must be at most 1 s");
        }
        if !(self.device_share > 0.0 && self.device_share <= 1.0) {
            return bad("device_share", "must be above 0 and at most 1");
        }
        for c in &self.consumers {
            check_consumer(c)?;
        }
        Ok(())
    }
}

pub(crate) fn check_consumer(name: &str) -> Result<(), JournalError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(JournalError::InvalidConsumer(name.to_owned()))
    }
}

/// A durable append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub id: u64,
    /// The batch's seq (assigned by the journal when the batch came without one).
    pub seq: Option<u64>,
    /// The batch was already stored: nothing was written, `id` is the original record's.
    pub duplicate: bool,
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// Bytes cut off the open segment's end (a torn write).
    pub torn_bytes: u64,
    /// Corrupt records skipped (offsets logged), in segments scanned during recovery.
    pub corrupt_records: u64,
    /// Segment files with a bad header, renamed to `*.bad` and left for the operator.
    pub quarantined_segments: Vec<PathBuf>,
    /// Sealed segments whose sidecar was missing or stale and that were scanned.
    pub rebuilt_sidecars: usize,
    /// Cursor or id files that were unreadable (treated as absent).
    pub garbage_files: Vec<PathBuf>,
    pub next_id: u64,
    pub duration: Duration,
}

/// Gauges and counters of a live journal (what `journal stats` prints, plus event counters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalStats {
    pub segments: usize,
    pub bytes: u64,
    pub max_bytes: u64,
    pub records: u64,
    pub by_kind: Vec<(RecordKind, u64)>,
    pub samples: u64,
    pub batch_bytes: u64,
    pub raw_body_bytes: u64,
    pub stored_body_bytes: u64,
    pub oldest_id: Option<u64>,
    pub newest_id: u64,
    pub oldest_ts_ms: Option<i64>,
    pub newest_ts_ms: Option<i64>,
    pub cursors: Vec<(String, u64)>,
    /// Each consumer's cursor and backlog (the consumers of `cursors`, in the same order).
    pub consumers: Vec<ConsumerStats>,
    /// True while the last append found the journal at its cap.
    pub full: bool,
    /// Appends refused for space.
    pub refused_appends: u64,
    /// Batch records dropped by `drop_oldest_raw`, and the bytes freed.
    pub dropped_records: u64,
    pub dropped_bytes: u64,
    /// Corrupt records skipped by readers (each skip counted, the same record may count twice).
    pub corrupt_skipped_on_read: u64,
    /// Set while appends are refused for a storage failure (being retried, or for good).
    pub failed: Option<String>,
}

/// Whether the writer can store appends, for the daemon's supervision (see `failure.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum JournalHealth {
    /// Appends are written.
    #[default]
    Writing,
    /// A segment roll or a write failed: appends are refused (device batches) or held (the
    /// gateway's own records) while the failed step is retried with backoff.
    Retrying { why: String, since: Instant },
    /// The journal cannot go on (an fsync failed, the failure outlasted `failure_grace`, or the
    /// writer thread died): every append is refused; restart so recovery decides what is
    /// durable.
    Stopped(String),
}

impl JournalStats {
    /// Stored batch bytes (frames) per sample.
    pub fn bytes_per_sample(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.batch_bytes as f64 / self.samples as f64)
    }
}

/// One consumer's position, for `/metrics` and the admin view. Computed from the in-memory
/// segment list: no disk reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    pub name: String,
    /// Its last ack (0 if it never acked).
    pub cursor: u64,
    /// Durable records past the cursor. Exact, except in the segment the cursor points into
    /// when records of it were dropped (`drop_oldest_raw`) or are corrupt: then an upper bound
    /// (that segment counts its ids past the cursor, at most its records).
    pub backlog_records: u64,
    /// Bytes of the segments holding those records: what this consumer's lag keeps on disk.
    /// Whole segments, so at most one segment more than the records themselves take.
    pub backlog_bytes: u64,
}

/// A reader's view of one segment.
#[derive(Debug, Clone)]
pub(crate) struct SegView {
    pub first_id: u64,
    pub last_id: u64,
    pub path: PathBuf,
    /// Bytes known durable (the open segment grows).
    pub len: u64,
    /// Good records in it (for the consumers' backlog in the stats).
    pub records: u64,
    pub sparse: Arc<Vec<(u64, u64)>>,
    /// The sessions it holds ([`SegmentInfo::sessions`]); `None`: unknown, read it.
    pub sessions: Option<Arc<SegmentSessions>>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub refused: AtomicU64,
    pub dropped_records: AtomicU64,
    pub dropped_bytes: AtomicU64,
    pub corrupt_on_read: AtomicU64,
    pub full: AtomicBool,
    /// How long each fsync of the open segment took (one per group commit).
    pub fsync: crate::histogram::AtomicHistogram,
}

/// State readers and the async front share with the writer.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub fs: Arc<dyn Fs>,
    pub views: RwLock<Vec<SegView>>,
    pub durable: AtomicU64,
    pub seqs: Mutex<SeqIndex>,
    /// Latest acked id per consumer (persisted by the writer).
    pub cursors: Mutex<BTreeMap<String, u64>>,
    pub counters: Counters,
    pub stats: Mutex<JournalStats>,
    reported_corrupt: Mutex<HashSet<(u64, u64)>>,
}

pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent at every await-free step; a panicking holder leaves it
    // usable, so keep going rather than cascade the panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One append as the writer receives it: body already encoded by the caller.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub kind: RecordKind,
    pub device: Option<String>,
    pub session_id: Option<String>,
    pub seq: Option<u64>,
    pub body: EncodedBody,
}

const LOCK_FILE: &str = "LOCK";
const NEXT_ID_FILE: &str = "next_id";
/// High-water seqs of sessions whose records were all released (JSON list).
const SEQ_HIGHS_FILE: &str = "seq_highs.json";
/// Space-pressure counters, for `journal stats` (JSON; rewritten at most once a second).
pub(crate) const PRESSURE_FILE: &str = "pressure.json";
/// At most this many released sessions are remembered across restarts.
const MAX_SEQ_HIGHS: usize = 4096;
/// A group is written in one go up to this size, then committed and a new group begun.
const MAX_GROUP_BYTES: usize = 8 << 20;

/// The writer's side of the journal.
pub(crate) struct Store {
    shared: Arc<Shared>,
    opts: JournalOptions,
    segments: Vec<SegmentInfo>,
    tail: Box<dyn AppendFile>,
    next_id: u64,
    /// A failed roll or write being retried (appends refused meanwhile).
    trouble: Option<failure::Trouble>,
    /// A repaired failure not yet proven by a write: when it began, and the last backoff.
    repaired: Option<(Instant, Duration)>,
    /// Why the journal stopped for good, once it has.
    stopped: Option<String>,
    /// Devices whose batches are refused for their share (logged once per episode).
    devices_at_share: HashSet<String>,
    persisted_cursors: BTreeMap<String, u64>,
    persisted_highs: Vec<(String, String, u64)>,
    pressure_written: Option<Instant>,
    _lock: Box<dyn LockGuard>,
}

impl Store {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn tail_is_open(&self) -> bool {
        !self.tail.is_placeholder()
    }

    fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Bytes of `device`'s batches on disk.
    fn device_bytes(&self, device: &str) -> u64 {
        self.segments
            .iter()
            .filter_map(|s| s.device_batch_bytes.get(device))
            .sum()
    }

    /// What one device's batches may take, when `device_share` limits it.
    fn device_share_bytes(&self) -> Option<u64> {
        (self.opts.device_share < 1.0)
            .then_some((self.opts.max_bytes as f64 * self.opts.device_share) as u64)
    }

    fn tail_info(&mut self) -> &mut SegmentInfo {
        // Invariant: `open` always leaves at least one (open) segment, and nothing removes the
        // last one.
        self.segments
            .last_mut()
            .expect("journal has an open segment")
    }
}
