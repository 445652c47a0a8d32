//! The synchronous core of the journal: recovery on open, group commit of staged records,
//! segment roll, cursor persistence, release of acknowledged segments, the `max_bytes` policy,
//! and reads. No tokio: the writer thread owns a [`Store`]; readers share [`Shared`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use log::{info, warn};

use super::codec::EncodedBody;
use super::error::{AppendError, JournalError};
use super::frame::{
    FORMAT_VERSION, FrameMeta, SEGMENT_HEADER_LEN, SegmentHeader, Step, decode_segment_header,
    encode_frame, encode_segment_header, frame_len, next_step, scan_all,
};
use super::fs::{AppendFile, Fs, LockFailure, LockGuard, write_atomic};
use super::record::RecordKind;
use super::segment::{SegmentInfo, kind_slot, parse_segment_name, segment_name, sidecar_path};
use super::seqs::{SeqIndex, SessionKey};
use super::stored::StoredRecord;

/// What to do when an append would take the journal past `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Compact the oldest segments, dropping their raw sensor batches and keeping swings,
    /// summaries and events; refuse only if nothing is left to drop.
    #[default]
    DropOldestRaw,
    /// Fail the append with [`AppendError::Full`] so the device keeps its copy.
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
    /// True while the last append found the journal at its cap.
    pub full: bool,
    /// Appends refused for space.
    pub refused_appends: u64,
    /// Batch records dropped by `drop_oldest_raw`, and the bytes freed.
    pub dropped_records: u64,
    pub dropped_bytes: u64,
    /// Corrupt records skipped by readers (each skip counted, the same record may count twice).
    pub corrupt_skipped_on_read: u64,
    /// Set when the writer stopped after an unrecoverable I/O error.
    pub failed: Option<String>,
}

impl JournalStats {
    /// Stored batch bytes (frames) per sample.
    pub fn bytes_per_sample(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.batch_bytes as f64 / self.samples as f64)
    }
}

/// A reader's view of one segment.
#[derive(Debug, Clone)]
pub(crate) struct SegView {
    pub first_id: u64,
    pub last_id: u64,
    pub path: PathBuf,
    /// Bytes known durable (the open segment grows).
    pub len: u64,
    pub sparse: Arc<Vec<(u64, u64)>>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub refused: AtomicU64,
    pub dropped_records: AtomicU64,
    pub dropped_bytes: AtomicU64,
    pub corrupt_on_read: AtomicU64,
    pub full: AtomicBool,
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

struct Staged {
    slot: usize,
    id: u64,
    seq: Option<u64>,
    offset: u64,
    len: usize,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    staged: Vec<Staged>,
    keys: HashMap<(SessionKey, u64), usize>,
    high: HashMap<SessionKey, u64>,
}

enum Outcome {
    Staged,
    Done(Result<Appended, AppendError>),
    DuplicateOf(usize, u64),
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

fn cursor_path(dir: &Path, consumer: &str) -> PathBuf {
    dir.join(format!("{consumer}.cursor"))
}

/// The writer's side of the journal.
pub(crate) struct Store {
    shared: Arc<Shared>,
    opts: JournalOptions,
    segments: Vec<SegmentInfo>,
    tail: Box<dyn AppendFile>,
    next_id: u64,
    failed: Option<String>,
    persisted_cursors: BTreeMap<String, u64>,
    persisted_highs: Vec<(String, String, u64)>,
    pressure_written: Option<Instant>,
    _lock: Box<dyn LockGuard>,
}

impl Store {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Takes the lock and recovers the journal in `opts.dir`.
    pub fn open(
        opts: JournalOptions,
        fs: Arc<dyn Fs>,
        now_ms: i64,
    ) -> Result<(Store, RecoveryReport), JournalError> {
        let started = Instant::now();
        opts.validate()?;
        let dir = opts.dir.clone();
        fs.create_dir_all(&dir)
            .map_err(|e| JournalError::io(&dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs
            .lock(&lock_path, std::process::id())
            .map_err(|f| match f {
                LockFailure::Held { holder } => JournalError::Locked {
                    lock: lock_path.clone(),
                    pid: if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder
                    },
                },
                LockFailure::Io(e) => JournalError::io(&lock_path, e),
            })?;
        let mut report = RecoveryReport::default();
        let names = fs.list(&dir).map_err(|e| JournalError::io(&dir, e))?;
        for leftover in names
            .iter()
            .filter(|n| n.ends_with(".tmp") || n.ends_with(".compact"))
        {
            // An interrupted atomic write or compaction: the original is intact.
            let _ = fs.remove(&dir.join(leftover));
        }
        let mut firsts: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        firsts.sort_unstable();
        let hwm = read_u64_file(&*fs, &dir.join(NEXT_ID_FILE), &mut report).unwrap_or(1);

        let mut segments = Vec::with_capacity(firsts.len());
        let mut tail_file = None;
        let mut tail_version = FORMAT_VERSION;
        for (i, &first) in firsts.iter().enumerate() {
            let path = dir.join(segment_name(first));
            let loaded = if i + 1 == firsts.len() {
                recover_tail(&*fs, &path, first, &mut report).map(|(info, version, f)| {
                    tail_file = Some(f);
                    tail_version = version;
                    info
                })
            } else {
                load_sealed(&*fs, &path, first, &mut report)
            };
            match loaded {
                Ok(info) => segments.push(info),
                Err(reason) => quarantine(&*fs, &path, &reason, &mut report),
            }
        }
        let next_id = segments
            .iter()
            .map(|s| s.last_id.saturating_add(1))
            .chain(segments.last().map(|s| s.first_id))
            .chain([hwm, 1])
            .max()
            .unwrap_or(1);

        let mut cursors = BTreeMap::new();
        for c in &opts.consumers {
            let id = read_u64_file(&*fs, &cursor_path(&dir, c), &mut report).unwrap_or(0);
            cursors.insert(c.clone(), id);
        }
        // A release interrupted by a power cut (file removed, directory not yet synced) can bring
        // a segment back; finish it before the index is built, or its seqs would shadow later ones.
        if let Some(min) = cursors.values().copied().min() {
            while segments.len() > 1 && segments[0].last_id <= min {
                let seg = segments.remove(0);
                let path = dir.join(segment_name(seg.first_id));
                let _ = fs.remove(&sidecar_path(&path));
                let _ = fs.remove(&path);
                let _ = fs.sync_dir(&dir);
            }
        }
        let mut seqs = SeqIndex::default();
        for (d, s, high) in read_seq_highs(&*fs, &dir.join(SEQ_HIGHS_FILE), &mut report) {
            seqs.restore_high(&d, &s, high);
        }
        for s in &segments {
            seqs.insert_segment(&s.seqs);
        }
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            fs: fs.clone(),
            views: RwLock::new(Vec::new()),
            durable: AtomicU64::new(next_id - 1),
            seqs: Mutex::new(seqs),
            cursors: Mutex::new(cursors.clone()),
            counters: Counters::default(),
            stats: Mutex::new(JournalStats::default()),
            reported_corrupt: Mutex::new(HashSet::new()),
        });
        let tail: Box<dyn AppendFile> = tail_file.unwrap_or_else(|| Box::new(NoFile));
        let mut store = Store {
            shared,
            opts,
            segments,
            tail,
            next_id,
            failed: None,
            persisted_cursors: cursors,
            persisted_highs: Vec::new(),
            pressure_written: None,
            _lock: lock,
        };
        if store.segments.is_empty() || !store.tail_is_open() {
            store
                .start_segment(now_ms)
                .map_err(|e| JournalError::io(&dir, e))?;
        } else if tail_version < FORMAT_VERSION {
            store
                .retire_old_tail(now_ms)
                .map_err(|e| JournalError::io(&dir, e))?;
        }
        store.publish_all();
        report.segments = store.segments.len();
        report.records = store.segments.iter().map(|s| s.records).sum();
        report.bytes = store.total_bytes();
        report.next_id = store.next_id;
        report.duration = started.elapsed();
        info!(
            "journal {}: ready in {:?}: {} segments, {} records, {} bytes, next id {}, \
             torn {} bytes, {} corrupt records, {} quarantined, {} sidecars rebuilt",
            dir.display(),
            report.duration,
            report.segments,
            report.records,
            report.bytes,
            report.next_id,
            report.torn_bytes,
            report.corrupt_records,
            report.quarantined_segments.len(),
            report.rebuilt_sidecars
        );
        Ok((store, report))
    }

    fn tail_is_open(&self) -> bool {
        !self.tail.is_placeholder()
    }

    fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    fn tail_info(&mut self) -> &mut SegmentInfo {
        // Invariant: `open` always leaves at least one (open) segment, and nothing removes the
        // last one.
        self.segments
            .last_mut()
            .expect("journal has an open segment")
    }

    // ---- appending ----

    /// Writes a group of appends with as few fsyncs as possible (one, unless the group rolls a
    /// segment or exceeds [`MAX_GROUP_BYTES`]); returns one result per append, in order.
    pub fn commit(
        &mut self,
        group: Vec<Incoming>,
        now_ms: i64,
    ) -> Vec<Result<Appended, AppendError>> {
        let mut outcomes = Vec::with_capacity(group.len());
        let mut pending = Pending::default();
        for (slot, inc) in group.into_iter().enumerate() {
            let o = self.stage(slot, inc, now_ms, &mut pending, &mut outcomes);
            outcomes.push(o);
        }
        self.flush(&mut pending, &mut outcomes);
        let done: Vec<Option<Result<Appended, AppendError>>> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Done(r) => Some(r.clone()),
                _ => None,
            })
            .collect();
        outcomes
            .into_iter()
            .map(|o| match o {
                Outcome::Done(r) => r,
                Outcome::DuplicateOf(slot, seq) => match &done[slot] {
                    Some(Ok(a)) => Ok(Appended {
                        id: a.id,
                        seq: Some(seq),
                        duplicate: true,
                    }),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err(AppendError::Io("internal: unresolved duplicate".into())),
                },
                Outcome::Staged => Err(AppendError::Io("internal: unflushed record".into())),
            })
            .collect()
    }

    fn stage(
        &mut self,
        slot: usize,
        inc: Incoming,
        now_ms: i64,
        pending: &mut Pending,
        outcomes: &mut [Outcome],
    ) -> Outcome {
        if let Some(f) = &self.failed {
            return Outcome::Done(Err(AppendError::Io(f.clone())));
        }
        let mut seq = inc.seq;
        let key = match (inc.kind, &inc.device, &inc.session_id) {
            (RecordKind::Batch, Some(d), Some(s)) => Some((d.clone(), s.clone())),
            _ => None,
        };
        if let Some(key) = &key {
            match seq {
                Some(q) => {
                    if let Some(&orig) = pending.keys.get(&(key.clone(), q)) {
                        return Outcome::DuplicateOf(orig, q);
                    }
                    let stored = locked(&self.shared.seqs).contains(&key.0, &key.1, q);
                    if stored {
                        let id = self.original_id(&key.0, &key.1, q);
                        return Outcome::Done(Ok(Appended {
                            id,
                            seq: Some(q),
                            duplicate: true,
                        }));
                    }
                }
                None => {
                    let next = locked(&self.shared.seqs).next_seq(&key.0, &key.1);
                    let in_group = pending.high.get(key).map_or(0, |h| h + 1);
                    seq = Some(next.max(in_group));
                }
            }
        }
        let mut meta = FrameMeta {
            id: 0, // assigned below, once the record is sure to be written; ids are fixed-size
            ts_ms: now_ms,
            kind: inc.kind,
            codec: inc.body.codec,
            seq,
            samples: inc.body.samples,
            raw_len: inc.body.raw_len,
            device: inc.device.as_deref(),
            session_id: inc.session_id.as_deref(),
        };
        let len = frame_len(&meta, inc.body.bytes.len());
        let tail_has_records = self.tail_info().records > 0 || !pending.staged.is_empty();
        let tail_bytes = self.tail_info().bytes + pending.buf.len() as u64;
        if tail_has_records && tail_bytes + len as u64 > self.opts.segment_bytes {
            self.flush(pending, outcomes);
            if let Err(e) = self.roll(now_ms) {
                self.fail(format!("starting a new segment: {e}"));
                return Outcome::Done(Err(AppendError::Io(e.to_string())));
            }
        } else if pending.buf.len() + len > MAX_GROUP_BYTES {
            self.flush(pending, outcomes);
        }
        if let Some(f) = &self.failed {
            return Outcome::Done(Err(AppendError::Io(f.clone())));
        }
        let used = self.total_bytes() + pending.buf.len() as u64;
        if used + len as u64 > self.opts.max_bytes && !self.make_room(used + len as u64) {
            return Outcome::Done(Err(self.refuse(used)));
        }
        self.shared.counters.full.store(false, Ordering::Relaxed);
        let id = self.next_id;
        self.next_id += 1;
        let offset = self.tail_info().bytes + pending.buf.len() as u64;
        meta.id = id;
        encode_frame(&meta, &inc.body.bytes, &mut pending.buf);
        if let (Some(key), Some(q)) = (key, seq) {
            let h = pending.high.entry(key.clone()).or_insert(q);
            *h = (*h).max(q);
            pending.keys.insert((key, q), slot);
        }
        pending.staged.push(Staged {
            slot,
            id,
            seq,
            offset,
            len,
        });
        Outcome::Staged
    }

    fn refuse(&mut self, used: u64) -> AppendError {
        let c = &self.shared.counters;
        c.refused.fetch_add(1, Ordering::Relaxed);
        if !c.full.swap(true, Ordering::Relaxed) {
            warn!(
                "journal {}: full ({used} of {} bytes, when_full = {:?}): refusing appends",
                self.opts.dir.display(),
                self.opts.max_bytes,
                self.opts.when_full
            );
        }
        AppendError::Full {
            used,
            max_bytes: self.opts.max_bytes,
        }
    }

    fn fail(&mut self, why: String) {
        warn!("journal {}: writer failed: {why}", self.opts.dir.display());
        self.failed = Some(why);
        locked(&self.shared.stats).failed = self.failed.clone();
    }

    /// Writes and fsyncs the staged records; resolves their outcomes.
    fn flush(&mut self, pending: &mut Pending, outcomes: &mut [Outcome]) {
        if pending.staged.is_empty() {
            return;
        }
        let before = self.tail_info().bytes;
        let written = self
            .tail
            .append(&pending.buf)
            .and_then(|()| self.tail.sync());
        match written {
            Ok(()) => self.apply_flushed(pending, outcomes),
            Err(e) => {
                // After a failed write or fsync the page cache may not match the disk; cut back to
                // what was durable and stop, so a restart's recovery decides what survived.
                let _ = self.tail.truncate(before);
                self.next_id = pending.staged[0].id;
                self.fail(format!("writing {} bytes: {e}", pending.buf.len()));
                for s in &pending.staged {
                    outcomes[s.slot] = Outcome::Done(Err(AppendError::Io(e.to_string())));
                }
            }
        }
        pending.buf.clear();
        pending.staged.clear();
    }

    fn apply_flushed(&mut self, pending: &Pending, outcomes: &mut [Outcome]) {
        let base = self.tail_info().bytes;
        for s in &pending.staged {
            let at = (s.offset - base) as usize;
            let bytes = &pending.buf[at..at + s.len];
            if let super::frame::Parse::Frame(f) = super::frame::parse_frame(bytes) {
                self.tail_info().add(s.offset, &f);
                if let (RecordKind::Batch, Some(d), Some(ses), Some(q)) =
                    (f.meta.kind, f.meta.device, f.meta.session_id, f.meta.seq)
                {
                    locked(&self.shared.seqs).insert(d, ses, q, Some(s.id));
                }
            }
            outcomes[s.slot] = Outcome::Done(Ok(Appended {
                id: s.id,
                seq: s.seq,
                duplicate: false,
            }));
        }
        let info = self.tail_info();
        info.bytes = base + pending.buf.len() as u64;
        let last = pending.staged.last().map_or(0, |s| s.id);
        self.shared.durable.fetch_max(last, Ordering::Release);
        self.publish_tail();
    }

    /// The id of an already stored (device, session, seq): from the recent cache, else by
    /// scanning the segments that hold it (rare: a resend of an old batch).
    fn original_id(&self, device: &str, session: &str, seq: u64) -> u64 {
        if let Some(id) = locked(&self.shared.seqs).recent_id(device, session, seq) {
            return id;
        }
        let holders = self.segments.iter().rev().filter(|s| {
            s.seqs
                .0
                .iter()
                .any(|(d, ss, set)| d == device && ss == session && set.contains(seq))
        });
        for seg in holders {
            let path = self.opts.dir.join(segment_name(seg.first_id));
            let Ok(data) = self.shared.fs.read(&path) else {
                continue;
            };
            let mut found = None;
            scan_all(data.get(SEGMENT_HEADER_LEN..).unwrap_or(&[]), |_, f| {
                if f.meta.seq == Some(seq)
                    && f.meta.device == Some(device)
                    && f.meta.session_id == Some(session)
                {
                    found = Some(f.meta.id);
                }
            });
            if let Some(id) = found {
                return id;
            }
        }
        warn!("journal: duplicate {device}/{session}/{seq} is indexed but was not found on disk");
        0
    }

    // ---- segments ----

    fn start_segment(&mut self, now_ms: i64) -> std::io::Result<()> {
        let first_id = self.next_id;
        let fs = self.shared.fs.clone();
        write_atomic(
            &*fs,
            &self.opts.dir.join(NEXT_ID_FILE),
            format!("{first_id}\n").as_bytes(),
        )?;
        let path = self.opts.dir.join(segment_name(first_id));
        let mut f = fs.open_append(&path)?;
        f.truncate(0)?;
        let header = encode_segment_header(&SegmentHeader {
            version: FORMAT_VERSION,
            first_id,
            created_ms: now_ms,
        });
        f.append(&header)?;
        f.sync()?;
        fs.sync_dir(&self.opts.dir)?;
        self.tail = f;
        self.segments.push(SegmentInfo::empty(first_id, now_ms));
        self.publish_all();
        Ok(())
    }

    /// The open segment was written by an earlier build (an older segment version): new frames
    /// go to a new segment of this build's version instead, so every segment's header names the
    /// layout of all its frames, and an older build that opens the directory quarantines the
    /// new segment rather than taking its frames for a torn tail. A retired segment that holds
    /// records is sealed; an empty one (header only) is replaced.
    fn retire_old_tail(&mut self, now_ms: i64) -> std::io::Result<()> {
        if self.tail_info().records > 0 {
            return self.roll(now_ms);
        }
        // Invariant: the caller checked that an open segment exists.
        let empty = self.segments.pop().expect("journal has an open segment");
        let path = self.opts.dir.join(segment_name(empty.first_id));
        self.tail = Box::new(NoFile);
        if empty.first_id != self.next_id {
            // Otherwise `start_segment` truncates and reuses the very same file.
            self.shared.fs.remove(&path)?;
        }
        self.start_segment(now_ms)
    }

    /// Seals the open segment (writes its sidecar) and starts the next.
    fn roll(&mut self, now_ms: i64) -> std::io::Result<()> {
        let sealed = self.tail_info().clone();
        self.write_sidecar(&sealed);
        self.start_segment(now_ms)
    }

    fn write_sidecar(&self, info: &SegmentInfo) {
        let path = sidecar_path(&self.opts.dir.join(segment_name(info.first_id)));
        let json = serde_json::to_vec(info).unwrap_or_default();
        if let Err(e) = write_atomic(&*self.shared.fs, &path, &json) {
            // Not fatal: the next open scans the segment instead.
            warn!("journal: writing sidecar {}: {e}", path.display());
        }
    }

    /// Applies `drop_oldest_raw` until a journal of `wanted` bytes fits under the cap (`wanted`
    /// counts what is on disk plus what is staged). False when it cannot.
    fn make_room(&mut self, wanted: u64) -> bool {
        if self.opts.when_full == WhenFull::Refuse {
            return false;
        }
        let mut excess = wanted.saturating_sub(self.opts.max_bytes);
        while excess > 0 {
            let sealed = self.segments.len() - 1;
            let Some(idx) = self.segments[..sealed]
                .iter()
                .position(|s| s.batch_records() > 0)
            else {
                return false;
            };
            let before = self.total_bytes();
            if let Err(e) = self.compact(idx) {
                warn!(
                    "journal: compacting segment {}: {e}",
                    self.segments[idx].first_id
                );
                return false;
            }
            excess = excess.saturating_sub(before - self.total_bytes());
        }
        true
    }

    /// Rewrites sealed segment `idx` without its batch records (or deletes it if nothing else
    /// is in it). Atomic: temp file, fsync, rename over, fsync dir.
    fn compact(&mut self, idx: usize) -> std::io::Result<()> {
        let fs = self.shared.fs.clone();
        let old = self.segments[idx].clone();
        let path = self.opts.dir.join(segment_name(old.first_id));
        let data = fs.read(&path)?;
        let mut kept = data[..SEGMENT_HEADER_LEN.min(data.len())].to_vec();
        let mut info = SegmentInfo::empty(old.first_id, old.created_ms);
        scan_all(data.get(SEGMENT_HEADER_LEN..).unwrap_or(&[]), |_, f| {
            if f.meta.kind != RecordKind::Batch {
                info.add(kept.len() as u64, f);
                kept.extend_from_slice(f.bytes);
            }
        });
        let _ = fs.remove(&sidecar_path(&path));
        if info.records == 0 {
            fs.remove(&path)?;
            fs.sync_dir(&self.opts.dir)?;
            self.segments.remove(idx);
        } else {
            let tmp = path.with_extension("compact");
            fs.write_synced(&tmp, &kept)?;
            fs.rename(&tmp, &path)?;
            fs.sync_dir(&self.opts.dir)?;
            info.bytes = kept.len() as u64;
            self.write_sidecar(&info);
            self.segments[idx] = info.clone();
        }
        locked(&self.shared.seqs).remove_segment(&old.seqs);
        self.persist_seq_highs();
        let freed = old.bytes - info.bytes.min(old.bytes);
        let c = &self.shared.counters;
        c.dropped_records
            .fetch_add(old.batch_records(), Ordering::Relaxed);
        c.dropped_bytes.fetch_add(freed, Ordering::Relaxed);
        warn!(
            "journal {}: full: dropped {} raw batches ({freed} bytes) from segment {} (ids {}..={}), \
             kept {} other records",
            self.opts.dir.display(),
            old.batch_records(),
            old.first_id,
            old.first_id,
            old.last_id,
            info.records
        );
        self.publish_all();
        Ok(())
    }

    // ---- cursors and release ----

    /// Persists changed cursors (temp, fsync, rename, one dir fsync), then deletes the sealed
    /// segments every enabled consumer has acked past.
    pub fn persist_cursors_and_release(&mut self) {
        let current = locked(&self.shared.cursors).clone();
        let changed: Vec<(String, u64)> = current
            .into_iter()
            .filter(|(c, id)| self.persisted_cursors.get(c) != Some(id))
            .collect();
        if !changed.is_empty() {
            let fs = self.shared.fs.clone();
            let dir = self.opts.dir.clone();
            let result = changed.iter().try_for_each(|(c, id)| {
                let path = cursor_path(&dir, c);
                let tmp = path.with_extension("tmp");
                fs.write_synced(&tmp, format!("{id}\n").as_bytes())?;
                fs.rename(&tmp, &path)
            });
            match result.and_then(|()| fs.sync_dir(&dir)) {
                Ok(()) => self.persisted_cursors.extend(changed),
                Err(e) => {
                    warn!("journal: persisting cursors: {e} (will retry)");
                    return;
                }
            }
        }
        self.release_acked();
    }

    fn release_acked(&mut self) {
        let Some(min) = self
            .opts
            .consumers
            .iter()
            .map(|c| self.persisted_cursors.get(c).copied().unwrap_or(0))
            .min()
        else {
            return;
        };
        let fs = self.shared.fs.clone();
        let mut released = Vec::new();
        while self.segments.len() > 1 && self.segments[0].last_id <= min {
            let seg = self.segments.remove(0);
            let path = self.opts.dir.join(segment_name(seg.first_id));
            let _ = fs.remove(&sidecar_path(&path));
            if let Err(e) = fs.remove(&path) {
                warn!("journal: deleting {}: {e}", path.display());
            }
            released.push(seg);
        }
        if released.is_empty() {
            return;
        }
        let _ = fs.sync_dir(&self.opts.dir);
        let mut seqs = locked(&self.shared.seqs);
        for seg in &released {
            seqs.remove_segment(&seg.seqs);
        }
        drop(seqs);
        self.persist_seq_highs();
        info!(
            "journal: released {} segments acked by every consumer (up to id {})",
            released.len(),
            released.last().map_or(0, |s| s.last_id)
        );
        self.publish_all();
    }

    /// Writes the high-water seqs of fully released sessions, if they changed.
    fn persist_seq_highs(&mut self) {
        let highs = locked(&self.shared.seqs).released_highs(MAX_SEQ_HIGHS);
        if highs == self.persisted_highs {
            return;
        }
        let path = self.opts.dir.join(SEQ_HIGHS_FILE);
        let json = serde_json::to_vec(&highs).unwrap_or_default();
        match write_atomic(&*self.shared.fs, &path, &json) {
            Ok(()) => self.persisted_highs = highs,
            Err(e) => warn!("journal: writing {}: {e} (will retry)", path.display()),
        }
    }

    /// Writes the space-pressure counters for the offline `journal stats` (since this open):
    /// at most once a second unless `force`, so a refusing journal does not fsync per append.
    pub fn persist_pressure(&mut self, force: bool) {
        let recent = self
            .pressure_written
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if recent && !force {
            return;
        }
        let c = &self.shared.counters;
        let json = format!(
            "{{\"full\":{},\"refused_appends\":{},\"dropped_records\":{},\"dropped_bytes\":{}}}\n",
            c.full.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
            c.dropped_records.load(Ordering::Relaxed),
            c.dropped_bytes.load(Ordering::Relaxed)
        );
        let path = self.opts.dir.join(PRESSURE_FILE);
        match write_atomic(&*self.shared.fs, &path, json.as_bytes()) {
            Ok(()) => self.pressure_written = Some(Instant::now()),
            Err(e) => warn!("journal: writing {}: {e}", path.display()),
        }
    }

    /// Final flush at close: cursors persisted; the open segment stays open (unsealed) so the
    /// next start verifies it.
    pub fn close(&mut self) -> Result<(), JournalError> {
        self.persist_cursors_and_release();
        if self.pressure_written.is_some() {
            self.persist_pressure(true);
        }
        match &self.failed {
            Some(f) => Err(JournalError::Failed(f.clone())),
            None => Ok(()),
        }
    }

    // ---- publishing the reader view ----

    fn view_of(&self, s: &SegmentInfo) -> SegView {
        SegView {
            first_id: s.first_id,
            last_id: s.last_id,
            path: self.opts.dir.join(segment_name(s.first_id)),
            len: s.bytes,
            sparse: Arc::new(s.sparse.clone()),
        }
    }

    fn publish_all(&mut self) {
        let views: Vec<SegView> = self.segments.iter().map(|s| self.view_of(s)).collect();
        *self.shared.views.write().unwrap_or_else(|e| e.into_inner()) = views;
        self.publish_stats();
    }

    fn publish_tail(&mut self) {
        let tail = self
            .segments
            .last()
            .map(|s| (s.first_id, s.last_id, s.bytes, s.sparse.len()));
        {
            let mut views = self.shared.views.write().unwrap_or_else(|e| e.into_inner());
            if let (Some(v), Some((first, last, len, sparse_len))) = (views.last_mut(), tail)
                && v.first_id == first
            {
                {
                    v.last_id = last;
                    v.len = len;
                    if v.sparse.len() != sparse_len {
                        v.sparse = Arc::new(
                            self.segments
                                .last()
                                .map(|s| s.sparse.clone())
                                .unwrap_or_default(),
                        );
                    }
                }
            }
        }
        self.publish_stats();
    }

    fn publish_stats(&self) {
        let mut st = locked(&self.shared.stats);
        let mut by_kind = [0u64; 4];
        for s in &self.segments {
            for (k, n) in s.by_kind.iter().enumerate() {
                by_kind[k] += n;
            }
        }
        st.segments = self.segments.len();
        st.bytes = self.total_bytes();
        st.max_bytes = self.opts.max_bytes;
        st.records = self.segments.iter().map(|s| s.records).sum();
        st.by_kind = [
            RecordKind::Batch,
            RecordKind::Swing,
            RecordKind::Summary,
            RecordKind::Event,
        ]
        .into_iter()
        .map(|k| (k, by_kind[kind_slot(k)]))
        .collect();
        st.samples = self.segments.iter().map(|s| s.samples).sum();
        st.batch_bytes = self.segments.iter().map(|s| s.batch_bytes).sum();
        st.raw_body_bytes = self.segments.iter().map(|s| s.raw_body_bytes).sum();
        st.stored_body_bytes = self.segments.iter().map(|s| s.stored_body_bytes).sum();
        st.oldest_id = self
            .segments
            .iter()
            .find(|s| s.records > 0)
            .and_then(|s| s.sparse.first().map(|&(id, _)| id));
        st.newest_id = self.next_id - 1;
        st.oldest_ts_ms = self.segments.iter().find_map(|s| s.first_ts_ms);
        st.newest_ts_ms = self.segments.iter().rev().find_map(|s| s.last_ts_ms);
        st.failed = self.failed.clone();
    }
}

/// Placeholder before the first segment exists.
struct NoFile;

impl AppendFile for NoFile {
    fn append(&mut self, _: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("no open segment"))
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("no open segment"))
    }
    fn truncate(&mut self, _: u64) -> std::io::Result<()> {
        Ok(())
    }
    fn is_placeholder(&self) -> bool {
        true
    }
}

// ---- recovery helpers ----

fn read_u64_file(fs: &dyn Fs, path: &Path, report: &mut RecoveryReport) -> Option<u64> {
    let bytes = fs.read(path).ok()?;
    match std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        Some(v) => Some(v),
        None => {
            warn!(
                "journal: {} is unreadable; treating it as absent",
                path.display()
            );
            report.garbage_files.push(path.to_path_buf());
            None
        }
    }
}

fn read_seq_highs(
    fs: &dyn Fs,
    path: &Path,
    report: &mut RecoveryReport,
) -> Vec<(String, String, u64)> {
    let Ok(bytes) = fs.read(path) else {
        return Vec::new();
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        warn!(
            "journal: {} is unreadable; treating it as absent",
            path.display()
        );
        report.garbage_files.push(path.to_path_buf());
        Vec::new()
    })
}

fn quarantine(fs: &dyn Fs, path: &Path, reason: &str, report: &mut RecoveryReport) {
    let bad = path.with_extension("seg.bad");
    warn!(
        "journal: segment {} is unusable ({reason}); renamed to {}",
        path.display(),
        bad.display()
    );
    let _ = fs.remove(&sidecar_path(path));
    if fs.rename(path, &bad).is_ok() {
        let _ = fs.sync_dir(path.parent().unwrap_or(Path::new(".")));
    }
    report.quarantined_segments.push(bad);
}

fn check_header(bytes: &[u8], first: u64) -> Result<SegmentHeader, String> {
    let h = decode_segment_header(bytes).map_err(|e| e.to_string())?;
    if h.first_id != first {
        return Err(format!(
            "header says first id {} but the name says {first}",
            h.first_id
        ));
    }
    Ok(h)
}

/// Scans a whole segment, building its info; logs corrupt ranges.
fn scan_segment(
    path: &Path,
    data: &[u8],
    header: SegmentHeader,
    report: &mut RecoveryReport,
) -> (SegmentInfo, super::frame::ScanSummary) {
    let mut info = SegmentInfo::empty(header.first_id, header.created_ms);
    let body = &data[SEGMENT_HEADER_LEN..];
    let summary = scan_all(body, |off, f| {
        info.add((SEGMENT_HEADER_LEN + off) as u64, f)
    });
    for &(off, len) in &summary.corrupt {
        let at = (SEGMENT_HEADER_LEN + off) as u64;
        warn!(
            "journal: {}: corrupt record at offset {at} ({len} bytes) skipped",
            path.display()
        );
        info.corrupt.push((at, len as u64));
    }
    report.corrupt_records += summary.corrupt.len() as u64;
    (info, summary)
}

fn load_sealed(
    fs: &dyn Fs,
    path: &Path,
    first: u64,
    report: &mut RecoveryReport,
) -> Result<SegmentInfo, String> {
    let mut file = fs.open_read(path).map_err(|e| e.to_string())?;
    let header_bytes = file
        .read_at(0, SEGMENT_HEADER_LEN)
        .map_err(|e| e.to_string())?;
    let header = check_header(&header_bytes, first)?;
    let len = file.size().map_err(|e| e.to_string())?;
    let sidecar = fs
        .read(&sidecar_path(path))
        .ok()
        .and_then(|b| serde_json::from_slice::<SegmentInfo>(&b).ok())
        .filter(|i| i.first_id == first && i.bytes == len);
    if let Some(info) = sidecar {
        report.corrupt_records += info.corrupt.len() as u64;
        return Ok(info);
    }
    let data = file.read_at(0, len as usize).map_err(|e| e.to_string())?;
    let (mut info, summary) = scan_segment(path, &data, header, report);
    if summary.torn {
        // A sealed segment never grows again: bytes after its last good record are dead, kept
        // in its size so that the sidecar matches the file.
        let valid = (SEGMENT_HEADER_LEN + summary.valid_len) as u64;
        warn!(
            "journal: {}: {} dead bytes at offset {valid}",
            path.display(),
            len - valid
        );
        info.corrupt.push((valid, len - valid));
        report.corrupt_records += 1;
    }
    info.bytes = len;
    report.rebuilt_sidecars += 1;
    let json = serde_json::to_vec(&info).unwrap_or_default();
    if let Err(e) = write_atomic(fs, &sidecar_path(path), &json) {
        warn!("journal: writing sidecar for {}: {e}", path.display());
    }
    Ok(info)
}

/// Scans the open segment, truncates its torn tail; gives its info, header version and file.
fn recover_tail(
    fs: &dyn Fs,
    path: &Path,
    first: u64,
    report: &mut RecoveryReport,
) -> Result<(SegmentInfo, u32, Box<dyn AppendFile>), String> {
    let data = fs.read(path).map_err(|e| e.to_string())?;
    let header = check_header(&data, first)?;
    let (mut info, summary) = scan_segment(path, &data, header, report);
    let valid = (SEGMENT_HEADER_LEN + summary.valid_len) as u64;
    let mut file = fs.open_append(path).map_err(|e| e.to_string())?;
    if (data.len() as u64) > valid {
        let torn = data.len() as u64 - valid;
        warn!(
            "journal: {}: torn tail of {torn} bytes at offset {valid} truncated",
            path.display()
        );
        file.truncate(valid).map_err(|e| e.to_string())?;
        file.sync().map_err(|e| e.to_string())?;
        report.torn_bytes += torn;
    }
    info.bytes = valid;
    // The open segment will grow: a sidecar left by an interrupted roll would be stale.
    let _ = fs.remove(&sidecar_path(path));
    Ok((info, header.version, file))
}

// ---- reading ----

const READ_CHUNK: usize = 1 << 20;

impl Shared {
    pub fn durable_id(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Durable records with `after_id` < id ≤ `until_id`, oldest first, at most `max`,
    /// optionally filtered.
    pub fn read_range(
        &self,
        after_id: u64,
        until_id: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
    ) -> Result<Vec<StoredRecord>, JournalError> {
        // Records past `until_id` are treated like records not yet durable: the read stops there.
        let durable = self.durable_id().min(until_id);
        let mut out = Vec::new();
        if after_id >= durable || max == 0 {
            return Ok(out);
        }
        let views: Vec<SegView> = self.views.read().unwrap_or_else(|e| e.into_inner()).clone();
        for v in views.iter().filter(|v| v.last_id > after_id) {
            let done = self.read_segment(v, after_id, durable, max, kinds, &mut out)?;
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// The id ranges (first, last) of the segments holding records, oldest first; the open
    /// segment's last id is the last durable one.
    pub fn segment_ranges(&self) -> Vec<(u64, u64)> {
        let durable = self.durable_id();
        let views = self.views.read().unwrap_or_else(|e| e.into_inner());
        views
            .iter()
            .filter(|v| v.last_id >= v.first_id && v.first_id <= durable)
            .map(|v| (v.first_id, v.last_id.min(durable)))
            .collect()
    }

    /// Reads one segment's matching records into `out`; true when no more are wanted.
    fn read_segment(
        &self,
        v: &SegView,
        after_id: u64,
        durable: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
        out: &mut Vec<StoredRecord>,
    ) -> Result<bool, JournalError> {
        let mut file = match self.fs.open_read(&v.path) {
            Ok(f) => f,
            // Released between the snapshot and now: its records are acked by everyone.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(JournalError::io(&v.path, e)),
        };
        let end = v.len;
        let mut pos = SegmentInfo::seek_offset(&v.sparse, after_id);
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_at = pos;
        let mut prev_id = 0u64;
        let mut chunk = READ_CHUNK;
        loop {
            let at_eof = buf_at + buf.len() as u64 >= end;
            let start = (pos - buf_at) as usize;
            match next_step(&buf[start..], prev_id, at_eof) {
                Step::Record(f) => {
                    if f.meta.id > durable {
                        return Ok(true);
                    }
                    prev_id = f.meta.id;
                    pos += f.bytes.len() as u64;
                    if f.meta.id > after_id && kinds.is_none_or(|k| k.contains(&f.meta.kind)) {
                        out.push(StoredRecord::from_frame(&f));
                        if out.len() >= max {
                            return Ok(true);
                        }
                    }
                }
                Step::Corrupt { skip } => {
                    self.report_corrupt(v, pos, skip);
                    pos += skip as u64;
                }
                Step::NeedMore => {
                    buf.drain(..start);
                    buf_at = pos;
                    let want = chunk.min((end - (buf_at + buf.len() as u64)) as usize);
                    let more = file
                        .read_at(buf_at + buf.len() as u64, want)
                        .map_err(|e| JournalError::io(&v.path, e))?;
                    if more.is_empty() {
                        return Ok(false);
                    }
                    buf.extend_from_slice(&more);
                    chunk = chunk.saturating_mul(2).min(64 << 20);
                }
                Step::End | Step::Torn => return Ok(false),
            }
        }
    }

    fn report_corrupt(&self, v: &SegView, offset: u64, len: usize) {
        self.counters
            .corrupt_on_read
            .fetch_add(1, Ordering::Relaxed);
        if locked(&self.reported_corrupt).insert((v.first_id, offset)) {
            warn!(
                "journal: {}: corrupt record at offset {offset} ({len} bytes) skipped",
                v.path.display()
            );
        }
    }
}
