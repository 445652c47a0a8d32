//! The journal: the durable, compressed, crash-safe store-and-forward log under `state_dir`.
//!
//! Everything that must reach the cloud (sensor batches, swings, session summaries, device
//! events) is appended here before a device is acknowledged or anything is forwarded. A device
//! may delete its copy the moment it gets the ack, so an acknowledged record must survive
//! SIGKILL, power cuts and a full disk, on an SD card where one fsync costs 2–20 ms.
//!
//! # Pieces
//!
//! | file | owns | IO |
//! |---|---|---|
//! | `shuttlegate_core::journal` | the record format: `record.rs` (record types), `frame.rs` (segment header, record frame, the scanner), `codec/` (lossless sample transform + zstd for bodies: `mod.rs` the API, `compact.rs`/`packed.rs` the compact layouts, `seed.rs` the seed layouts, `column.rs`/`rice.rs` column coding, `reader.rs` byte/bit readers), `predict.rs`, `varint.rs`, `stored.rs` (a stored record decoded) | none |
//! | `segment.rs` | per-segment summary (ids, counts, sparse index, seqs, the sessions it holds) + sidecar, file names | none |
//! | `seqs.rs` | idempotence index (device, session) → seq ranges | none |
//! | `fs.rs` | the [`Fs`] seam: [`StdFs`] (disk), [`SimFs`] (power cuts), [`FaultyFs`] (EMFILE, ENOSPC, EIO, panics on demand) | all of it |
//! | `store/` | recovery (`recovery.rs`), group commit (`commit.rs`), roll and cap policy (`retention.rs`), cursors and release (`cursors.rs`), reads (`reads.rs`, `publish.rs`) | via `Fs` |
//! | `writer.rs` | the writer thread (group-commit loop) | thread |
//! | `mod.rs` | [`Journal`], the thin async front (API below, under Reads and Opening and closing) | channels |
//! | `tools.rs` | offline `journal stats` / `journal export` (no lock, read-only) | via `Fs` |
//!
//! Synthetic batches for tests and benchmarks are `shuttlegate_core::journal::synth` (feature
//! `synth`); the crash test's load generator is `shuttlegate-tools journal torture`.
//!
//! No tokio below `writer.rs`: the format, codec, scanner, recovery and store are plain Rust
//! (the format and codecs in a crate that cannot depend on tokio at all).
//!
//! # On disk (format version 2; version 1 still read)
//!
//! `dir` holds `LOCK` (PID of the holder, `flock`ed), `next_id` (id high-water mark),
//! `<consumer>.cursor` (one decimal id), `seq_highs.json` (last seq of sessions whose records
//! were all released, so gateway numbering of V3.3 batches continues after a restart; at most
//! 4096), `pressure.json` (space-pressure counters since the daemon's start, for `journal
//! stats`), and segments `<first_id:020>.seg` with, once sealed, a sidecar `<first_id:020>.idx`.
//! Segments whose header is unusable are renamed `*.seg.bad`. Every small file is written
//! atomically (temp, fsync, rename, fsync dir).
//!
//! Segment header, 32 bytes, little-endian:
//! ```text
//!  0  magic      8  "SGJRNL\r\n"
//!  8  version    u32   2 (segments this build creates); 1 in segments of earlier builds
//! 12  first_id   u64   id of the first record written to it; the file name says the same
//! 20  created_ms i64
//! 28  crc32c     u32   of bytes 0..28
//! ```
//! Then records, back to back, each never spanning segments. Every record starts with the same
//! 8-byte prefix, and bit 31 of `len` says which of two payload layouts follows:
//! ```text
//!  0  len        u32   bit 31: 1 = v2 payload, 0 = v1 payload; bits 0..31: payload length
//!                      (at most 8 MiB, so a v1 length never has bit 31 set)
//!  4  crc32c     u32   over the 4 len bytes as stored (bit 31 included) and the payload
//!  8  payload
//! ```
//! v2 payload (what this build writes). Fields in this order; a varint is LEB128, minimal, at
//! most 10 bytes, and must fit its field (else the record is invalid, like a bad CRC):
//! ```text
//! id         u64 LE      payload offset 0; gateway-wide, strictly increasing
//! ts_ms      zz-varint   gateway clock at append (zigzag-coded i64)
//! packed     u8          bits 0..3 kind (1 batch, 2 swing, 3 summary, 4 event)
//!                        bits 3..5 codec (0 plain, 1 zstd)
//!                        bits 5..8 flags (1 has seq, 2 has device, 4 has session)
//! seq        varint      only with flag 1
//! samples    varint      (u32) batch rows / frames, 0 otherwise
//! raw_len    varint      (u32) body length before zstd; absent when codec is plain (it is the
//!                        body's length then)
//! device     varint length + UTF-8, only with flag 2
//! session    varint length + UTF-8, only with flag 4
//! body       the rest of the payload
//! ```
//! The smallest v2 payload is 11 bytes (id, ts, packed, samples). A 100-sample compact batch
//! from device `2025001`, session `s-0017`, seq 42, plain codec, costs 40 bytes of frame besides
//! its body (8 prefix + 8 id + 6 ts (until 2039) + 1 packed + 1 seq + 1 samples + 8 + 7 for the
//! names): 0.40 B/sample, where v1 costs 61 (0.61 B/sample).
//!
//! v1 payload (every record of a version-1 segment), offsets in the file from the record's start:
//! ```text
//!  8  id         u64   gateway-wide, strictly increasing
//! 16  ts_ms      i64   gateway clock at append
//! 24  kind       u8    1 batch, 2 swing, 3 summary, 4 event
//! 25  codec      u8    0 plain, 1 zstd
//! 26  flags      u8    1 has seq, 2 has device, 4 has session
//! 27  reserved   u8    0
//! 28  seq        u64   (0 when absent)
//! 36  samples    u32   batch rows / frames (0 otherwise)
//! 40  raw_len    u32   body length before zstd
//! 44  device_len u16
//! 46  session_len u16
//! 48  device, session (UTF-8), body
//! ```
//! This build also writes a v1 frame for a record the v2 layout cannot express exactly (a codec
//! above 3, or a plain body whose `raw_len` differs from its length); no record is like that today.
//!
//! Telling versions apart: a frame is parsed from its own bytes alone (no segment context), so the
//! scanner, recovery, readers, `journal stats`/`export` and the fuzz targets read both layouts
//! anywhere. The id sits at payload offset 0 in both, so the scanner's resynchronisation after a
//! corrupt record reads it in one place; the length's lower bound is per layout (11 or 40).
//! A version-1 segment holds only v1 frames, and this build never appends to one: on open, an
//! open segment of version 1 is sealed (with its sidecar) and a version-2 segment started after
//! it (an empty one is replaced). Journals written by version-1 builds therefore open, recover,
//! read, dedup, export and stat as before, in place, with no migration. A build that reads only
//! version 1 renames version-2 segments `*.seg.bad` rather than taking their frames for a torn
//! tail.
//!
//! A batch body is the column transform described in `codec/` (integer columns for values
//! that are whole multiples of a resolution, as offsets, deltas or deltas of deltas; XOR + byte planes
//! for other f32; delta timestamps; integers as varints or Rice codes), zstd'd when that is
//! smaller. Documents (swing, summary, event) are their JSON
//! text, zstd'd when that is smaller. Device, session and seq stay outside the compressed body
//! so that the index, filters and dedup never decompress.
//!
//! # Invariants
//!
//! - Ids are strictly increasing within and across segments and restarts. `next_id` on open is
//!   the largest of: last id + 1, the open segment's first id, and the `next_id` file, which is
//!   rewritten (atomically) before every new segment; so ids stay monotonic even if every
//!   segment is gone. Ids of records that were never durable (torn tail) may be reused: no one
//!   ever saw them (readers stop at the durable id).
//! - A record is acknowledged (its `append` resolves) only after the `fdatasync` that covers it.
//!   Readers never see records past [`Journal::durable_id`].
//! - Segments are append-only, except that (a) recovery truncates a torn tail of the open segment
//!   and (b) `drop_oldest_raw` replaces a sealed segment by a compacted copy (temp file, fsync,
//!   rename over, fsync dir). Files are otherwise deleted whole.
//! - At most one (device, session, seq) batch is stored, among the records the journal holds.
//!   A resend is answered with the original id: from a per-session cache of the last 256 seqs,
//!   else by scanning the segment that holds it (rare).
//!
//! # Commit protocol
//!
//! [`Journal::append`] encodes the body on the caller's task (CPU only, microseconds), takes a
//! permit (at most 4096 appends in flight), and sends it to the writer thread over a channel
//! with a oneshot for the answer. The writer blocks for the first command, then collects more
//! until `commit_interval` (default 2 ms) after the oldest waiting append was sent, or until
//! 4096 appends / 4 MiB; it assigns ids and
//! gateway seqs in arrival order, checks dedup (index + the group itself), applies the cap,
//! writes the group with one `write` and one `fdatasync`, publishes the new durable id on a
//! `watch` channel, and answers every waiter. A failed write or fsync cuts the open segment back
//! to the last durable length and fails the group (callers withhold acks). A failed roll or
//! write is then retried with backoff while appends are refused ([`AppendError::Unavailable`];
//! the gateway's own records wait in the writer); a failed fsync, or a failure that outlasts
//! `failure_grace`, stops the journal for good ([`Journal::health`]), and the daemon exits so
//! that a restart's recovery decides what survived: `store/failure.rs` says why.
//! Dropping an `append` future after it was sent does not cancel the write.
//! [`Journal::submit`] sends before it returns (refusing with `Busy` rather than waiting for a
//! permit), so records submitted one after another from one task are numbered in that order.
//! [`Journal::enqueue`] waits for a permit instead, then sends and returns the future of the
//! commit: the same order, however far behind the writer is (the analysis results use it).
//!
//! # When files are deleted
//!
//! A segment rolls when the next record would take it past `segment_bytes`; the sealed segment
//! gets its sidecar. Consumers ack with [`Journal::ack`] (in memory, immediately); the writer
//! persists changed cursors (temp, fsync, rename, fsync dir) at its next wake-up and then
//! deletes every sealed segment whose last id every enabled consumer has passed. The open
//! segment is never deleted. With no consumers, only the cap deletes data.
//!
//! When an append would take the journal past `max_bytes`: with `refuse` it fails with
//! [`AppendError::Full`]; with `drop_oldest_raw` the oldest sealed segments holding batches are
//! compacted (batches dropped, swings/summaries/events kept, same ids) until it fits, or the
//! append is refused when nothing is left to drop. Either way [`JournalStats`] counts it, a log
//! line says it (once per transition into full, and once per compacted segment),
//! [`Journal::pressure`] (a `watch`) changes so the daemon can raise an event for the admin view
//! and a metric, and `pressure.json` lets `journal stats` show it.
//!
//! # Reads
//!
//! All reads return durable records only (id ≤ [`Journal::durable_id`]), oldest first, each
//! record's CRC checked (a corrupt one is skipped, counted and logged). They read files: call them
//! from `spawn_blocking` or a thread.
//!
//! | call | returns | reads |
//! |---|---|---|
//! | [`Journal::read_after`] | records with id > `after_id`, at most `max`, optionally of some kinds | every segment past `after_id` |
//! | [`Journal::read_range`] + [`Journal::segment_ranges`] | the same, bounded by `until_id` (one segment at a time) | the segments in the range |
//! | [`Journal::read_session`] | one (device, session)'s records with id > `after_id`, at most `max`, optionally of some kinds: a phone catching up pages with `after_id` = the last id it got | only the segments holding that session's records of those kinds |
//! | [`Journal::stored_seqs`] | the seqs stored for a (device, session) | memory |
//! | [`Journal::stats`] | gauges, counters, each consumer's cursor and backlog ([`ConsumerStats`]) for `/metrics` and the admin view | memory |
//!
//! Each segment lists the (device, session) pairs it holds records of, with the kinds of those
//! records (a bit mask), in memory and in its sidecar (`sessions`, device → session → mask), at
//! most 1024 pairs; a segment with more, or whose sidecar was written by an earlier build (no
//! `sessions` field; still trusted), has no list and `read_session` reads it. A segment it reads is
//! read from the sparse-index entry before `after_id` to its end, other sessions' records parsed
//! and skipped: the cost of a session read is the bytes of the segments that hold it, not of the
//! journal.
//!
//! # Opening and closing
//!
//! [`Journal::open`] blocks (recovery reads the disk): call it before the runtime starts, or use
//! [`Journal::open_async`], which runs it on the blocking pool (a panic in recovery comes back as
//! [`JournalError::OpenAborted`]). [`Journal::close`] is the orderly end: it commits what is
//! pending, persists cursors, answers every waiter and waits for the writer thread without
//! blocking the runtime. Dropping the last handle instead also stops the writer and waits for it,
//! so the lock is released when the drop returns (tests reopen the directory at once); on a
//! multi-thread runtime that wait runs through `block_in_place`, so the worker's other tasks move
//! to another thread; on a current-thread runtime it blocks that thread for the writer's last
//! cursor write (milliseconds).
//!
//! # Recovery (on open; bounded: O(sidecars + one segment))
//!
//! 1. Take `LOCK` (`flock`; a second opener gets [`JournalError::Locked`] naming the file and the
//!    PID written in it). Remove leftover `*.tmp` / `*.compact` files.
//! 2. Sealed segments (all but the newest): check the header; load the sidecar if it names the
//!    same first id and the file's current length, else scan the segment and rewrite it. Their
//!    records are verified lazily: every read checks each record's CRC, and a corrupt record is
//!    skipped, counted and logged with its offset.
//! 3. The open (newest) segment is scanned in full: each record's length and CRC checked; a
//!    corrupt record followed by good ones is skipped, counted and logged with its offset (the
//!    scanner resynchronises on the next offset holding a valid frame with a larger id); bytes
//!    after the last good record are a torn tail and are truncated (and fsynced).
//! 4. A segment with a bad header is renamed `*.seg.bad` and reported; an unreadable cursor or
//!    `next_id` file counts as absent (cursor 0: consumers re-read, at-least-once). The daemon
//!    always comes up; the [`RecoveryReport`] and a log line say what happened and how long it
//!    took.
//! 5. The idempotence index is rebuilt from the sidecars' seq ranges.

mod error;
mod fs;
mod segment;
mod seqs;
mod store;
pub mod tools;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use shuttlegate_core::journal::{codec, frame};
use tokio::sync::{Semaphore, oneshot, watch};

pub use error::{AppendError, JournalError};
pub use fs::{AppendFile, Fault, FaultyFs, Fs, FsOp, LockFailure, LockGuard, ReadAt, SimFs, StdFs};
/// The record format (shuttlegate-core) this journal stores.
pub use shuttlegate_core::journal::{
    CodecError, Document, EncodedBody, Record, RecordBody, RecordKind, StoredRecord,
};
pub use store::{
    Appended, ConsumerStats, JournalHealth, JournalOptions, JournalStats, RecoveryReport, WhenFull,
};
pub use writer::JournalPressure;

use store::{Incoming, Shared, Store, check_consumer, locked};
use writer::{Command, Outputs};

/// Appends in flight (sent to the writer, not yet answered) are bounded by this.
const MAX_IN_FLIGHT: usize = 4096;
/// Device and session ids longer than this are rejected (they are framed with a u16 length).
const MAX_ID_LEN: usize = 1024;

/// The journal's async front. Cheap to clone; all clones share one writer thread.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Command>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    durable: watch::Receiver<u64>,
    pressure: watch::Receiver<JournalPressure>,
    health: watch::Receiver<JournalHealth>,
    cursors_pending: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: the writer sees the channel close, persists cursors and
        // exits; wait for it so the lock is released when this returns (tests and tools drop a
        // journal and reopen the directory at once). The wait is the writer's last cursor
        // write, milliseconds; on a multi-thread runtime's worker it goes through
        // `block_in_place` so the worker's other tasks move to another thread meanwhile. On a
        // current-thread runtime nothing can take over, so the join blocks it briefly; async
        // code that cares closes the journal with `close().await` instead.
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        let Some(thread) = locked(&self.thread).take() else {
            return;
        };
        let join = move || {
            if thread.join().is_err() {
                log::error!("journal: the writer thread panicked; cursors may not be persisted");
            }
        };
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(join);
        } else {
            join();
        }
    }
}

impl Journal {
    /// Takes the lock, recovers, starts the writer thread. Blocking (recovery reads the disk,
    /// ~0.1 s for 1 GiB): call it before the runtime starts, or use [`Journal::open_async`].
    pub fn open(opts: JournalOptions) -> Result<(Journal, RecoveryReport), JournalError> {
        Journal::open_with_fs(opts, Arc::new(StdFs))
    }

    /// [`Journal::open`] on tokio's blocking pool, for callers already on the runtime. A panic
    /// in recovery (a bug) comes back as [`JournalError::OpenAborted`]; the lock, if it was
    /// taken, is released by then.
    pub async fn open_async(
        opts: JournalOptions,
    ) -> Result<(Journal, RecoveryReport), JournalError> {
        tokio::task::spawn_blocking(move || Journal::open(opts))
            .await
            .map_err(|e| JournalError::OpenAborted(e.to_string()))?
    }

    /// [`Journal::open`] over any filesystem (tests use [`SimFs`]).
    pub fn open_with_fs(
        opts: JournalOptions,
        fs: Arc<dyn Fs>,
    ) -> Result<(Journal, RecoveryReport), JournalError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let interval = opts.commit_interval;
        let (store, report) = Store::open(opts, fs, now)?;
        let shared = store.shared().clone();
        let (durable_tx, durable) = watch::channel(shared.durable_id());
        let (pressure_tx, pressure) = watch::channel(JournalPressure::default());
        let (health_tx, health) = watch::channel(JournalHealth::Writing);
        let health_tx = Arc::new(health_tx);
        let cursors_pending = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let outputs = Outputs {
            durable: durable_tx,
            pressure: pressure_tx,
            cursors_pending: cursors_pending.clone(),
            health: health_tx.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                let run =
                    std::panic::AssertUnwindSafe(|| writer::run(store, rx, interval, outputs));
                // A panic (a bug) ends the writer: every waiter is answered `Closed` as its
                // channel drops, and the daemon learns why from the health channel.
                if let Err(panic) = std::panic::catch_unwind(run) {
                    let why = crate::supervise::panic_message(&*panic);
                    log::error!("journal: the writer thread panicked: {why}");
                    health_tx.send_replace(JournalHealth::Stopped(format!(
                        "the writer thread panicked: {why}"
                    )));
                }
            })
            .map_err(|e| JournalError::io(&shared.dir, e))?;
        let inner = Inner {
            tx,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            shared,
            durable,
            pressure,
            health,
            cursors_pending,
            thread: Mutex::new(Some(thread)),
        };
        Ok((
            Journal {
                inner: Arc::new(inner),
            },
            report,
        ))
    }

    /// Appends a record; resolves only after it is fsynced (group commit). For a batch whose
    /// (device, session, seq) is already stored: `Ok(Appended { duplicate: true, id: <original> })`
    /// and nothing is written. A batch without seq gets the session's next seq (0 first), in
    /// arrival order. Any error means "not durable: do not ack".
    pub async fn append(&self, body: RecordBody) -> Result<Appended, AppendError> {
        self.enqueue(body).await?.await
    }

    /// Hands the record to the writer as soon as one of the `MAX_IN_FLIGHT` places is free,
    /// and resolves then with the future of its commit. Between [`Journal::append`] (waits
    /// for the commit) and [`Journal::submit`] (never waits): records enqueued one after
    /// another from one task reach the writer in that order, however far behind it is.
    pub async fn enqueue(
        &self,
        body: RecordBody,
    ) -> Result<impl std::future::Future<Output = Result<Appended, AppendError>> + use<>, AppendError>
    {
        let incoming = encode(&body)?;
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppendError::Closed)?;
        self.send(incoming, permit)
    }

    /// Like [`Journal::append`], but hands the record to the writer *now*, before returning
    /// the future that resolves when it is durable: records submitted one after another from
    /// one task reach the writer in that order (so a V3.3 connection's batches are numbered in
    /// arrival order even while earlier ones wait for fsync). Never waits: with
    /// `MAX_IN_FLIGHT` appends already waiting it refuses with [`AppendError::Busy`].
    pub fn submit(
        &self,
        body: RecordBody,
    ) -> Result<impl std::future::Future<Output = Result<Appended, AppendError>> + use<>, AppendError>
    {
        let incoming = encode(&body)?;
        let permit = self
            .inner
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|e| match e {
                tokio::sync::TryAcquireError::Closed => AppendError::Closed,
                tokio::sync::TryAcquireError::NoPermits => AppendError::Busy,
            })?;
        self.send(incoming, permit)
    }

    /// Queues an encoded record for the writer; the future resolves with its durable answer.
    fn send(
        &self,
        incoming: Incoming,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<impl std::future::Future<Output = Result<Appended, AppendError>> + use<>, AppendError>
    {
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Append {
                incoming,
                reply,
                permit,
                sent_at: std::time::Instant::now(),
            })
            .map_err(|_| AppendError::Closed)?;
        Ok(async move { answer.await.map_err(|_| AppendError::Closed)? })
    }

    /// Seqs stored for (device, session), ascending (for `upload_complete`'s `missing_seqs`).
    pub fn stored_seqs(&self, device: &str, session_id: &str) -> Vec<u64> {
        locked(&self.inner.shared.seqs).stored(device, session_id)
    }

    /// Durable records with id > `after_id`, oldest first, at most `max`, optionally only these
    /// kinds. Blocking (reads files): call from `spawn_blocking` or a thread.
    pub fn read_after(
        &self,
        after_id: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
    ) -> Result<Vec<StoredRecord>, JournalError> {
        self.inner.shared.read_range(after_id, u64::MAX, max, kinds)
    }

    /// Durable records with `after_id` < id ≤ `until_id`, oldest first, at most `max`,
    /// optionally only these kinds: one segment's worth, with [`Journal::segment_ranges`].
    /// Blocking, like [`Journal::read_after`].
    pub fn read_range(
        &self,
        after_id: u64,
        until_id: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
    ) -> Result<Vec<StoredRecord>, JournalError> {
        self.inner.shared.read_range(after_id, until_id, max, kinds)
    }

    /// Durable records of one session — `device`'s `session_id` — with id > `after_id`, oldest
    /// first, at most `max`, optionally only these kinds: a phone catching up on its session
    /// pages through its swings and summary with `after_id` = the last id it got.
    ///
    /// Cost: each segment lists the (device, session) pairs it holds records of and their kinds
    /// (in memory and in its sidecar), so only segments holding the session's records of those
    /// kinds are opened; each is read from the sparse-index entry before `after_id` to its end
    /// (or until `max`), other sessions' records parsed and skipped. Segments whose list is
    /// unknown (sidecars of earlier builds, or more than 1024 sessions in one segment) are
    /// read too. Blocking, like [`Journal::read_after`].
    pub fn read_session(
        &self,
        device: &str,
        session_id: &str,
        after_id: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
    ) -> Result<Vec<StoredRecord>, JournalError> {
        self.inner
            .shared
            .read_session(device, session_id, after_id, max, kinds)
    }

    /// The id ranges `(first, last)` of the segments that hold records, oldest first: for
    /// readers that want the newest records of a kind without reading the whole journal.
    pub fn segment_ranges(&self) -> Vec<(u64, u64)> {
        self.inner.shared.segment_ranges()
    }

    /// The last durable id (0 when nothing was ever written).
    pub fn durable_id(&self) -> u64 {
        self.inner.shared.durable_id()
    }

    /// Changes on every commit; readers wait on it for new data.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.durable.clone()
    }

    /// Changes when the journal becomes full, refuses an append or drops raw data.
    pub fn pressure(&self) -> watch::Receiver<JournalPressure> {
        self.inner.pressure.clone()
    }

    /// Whether the journal writes, retries a failed step, or has stopped for good (see
    /// `store/failure.rs`). The channel closes when the writer thread ends.
    pub fn health(&self) -> watch::Receiver<JournalHealth> {
        self.inner.health.clone()
    }

    /// The consumer's cursor: its last ack (persisted or about to be), 0 if it never acked.
    pub fn cursor(&self, consumer: &str) -> u64 {
        if let Some(&id) = locked(&self.inner.shared.cursors).get(consumer) {
            return id;
        }
        if check_consumer(consumer).is_err() {
            return 0;
        }
        let path = self.inner.shared.dir.join(format!("{consumer}.cursor"));
        let id = self
            .inner
            .shared
            .fs
            .read(&path)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()?.trim().parse().ok())
            .unwrap_or(0);
        *locked(&self.inner.shared.cursors)
            .entry(consumer.to_owned())
            .or_insert(id)
    }

    /// Advances a consumer's cursor to `id` (never backwards, never past the durable id).
    /// Returns at once; the writer persists it atomically at its next wake-up and then releases
    /// segments every enabled consumer has passed. An ack once persisted is never lost; one not
    /// yet persisted at a crash is re-delivered (at-least-once).
    pub fn ack(&self, consumer: &str, id: u64) -> Result<(), JournalError> {
        check_consumer(consumer)?;
        let id = id.min(self.durable_id());
        let current = self.cursor(consumer);
        if id <= current {
            return Ok(());
        }
        locked(&self.inner.shared.cursors).insert(consumer.to_owned(), id);
        if !self.inner.cursors_pending.swap(true, Ordering::AcqRel) {
            self.inner
                .tx
                .send(Command::Cursors { done: None })
                .map_err(|_| JournalError::Closed)?;
        }
        Ok(())
    }

    /// Resolves once every ack made before the call is persisted and the segments it allows to
    /// go are deleted (shutdown paths and tests; normal acks need not wait).
    pub async fn sync_cursors(&self) -> Result<(), JournalError> {
        let (done, finished) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Cursors { done: Some(done) })
            .map_err(|_| JournalError::Closed)?;
        finished.await.map_err(|_| JournalError::Closed)
    }

    /// Gauges and counters (also what `journal stats` prints), for `/metrics` and the admin
    /// view: from memory (what the writer published and the cursors), no disk reads.
    pub fn stats(&self) -> JournalStats {
        let shared = &self.inner.shared;
        let mut st = locked(&shared.stats).clone();
        let c = &shared.counters;
        st.full = c.full.load(Ordering::Relaxed);
        st.refused_appends = c.refused.load(Ordering::Relaxed);
        st.dropped_records = c.dropped_records.load(Ordering::Relaxed);
        st.dropped_bytes = c.dropped_bytes.load(Ordering::Relaxed);
        st.corrupt_skipped_on_read = c.corrupt_on_read.load(Ordering::Relaxed);
        st.newest_id = shared.durable_id();
        st.cursors = locked(&shared.cursors)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        st.consumers = shared.consumer_stats(&st.cursors, st.newest_id);
        st
    }

    /// How long the writer's fsyncs of the open segment have taken since the journal opened.
    pub fn fsync_latency(&self) -> crate::histogram::HistogramSnapshot {
        self.inner.shared.counters.fsync.snapshot()
    }

    /// Stops accepting appends, commits and fsyncs everything pending, persists cursors,
    /// answers every waiter, and joins the writer thread.
    pub async fn close(self) -> Result<(), JournalError> {
        self.inner.permits.close();
        let (reply, answer) = oneshot::channel();
        if self.inner.tx.send(Command::Close { reply }).is_err() {
            return Err(JournalError::Closed);
        }
        let result = answer.await.unwrap_or(Err(JournalError::Closed));
        let thread = locked(&self.inner.thread).take();
        if let Some(t) = thread {
            // The writer has answered Close and is returning; the join is immediate.
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        result
    }
}

/// Validates and encodes a body for the writer (CPU only).
fn encode(body: &RecordBody) -> Result<Incoming, AppendError> {
    let too_long = |what: &str, s: Option<&str>| match s {
        Some(s) if s.len() > MAX_ID_LEN => Err(AppendError::Invalid(format!(
            "{what} is {} bytes (at most {MAX_ID_LEN})",
            s.len()
        ))),
        _ => Ok(()),
    };
    too_long("device", body.device())?;
    too_long("session_id", body.session_id())?;
    let (seq, encoded) = match body {
        RecordBody::Batch(b) => (b.seq, codec::encode_batch(b)),
        RecordBody::Swing(d) | RecordBody::Summary(d) | RecordBody::Event(d) => {
            (None, codec::encode_document(&d.json))
        }
    };
    let limit = frame::MAX_PAYLOAD_LEN - frame::MAX_PAYLOAD_META_LEN - 2 * MAX_ID_LEN;
    if encoded.bytes.len() > limit {
        return Err(AppendError::Invalid(format!(
            "record body is {} bytes compressed (at most {limit})",
            encoded.bytes.len()
        )));
    }
    Ok(Incoming {
        kind: body.kind(),
        device: body.device().map(str::to_owned),
        session_id: body.session_id().map(str::to_owned),
        seq,
        body: encoded,
    })
}
