//! Group commit: staging a group of appends (seq dedup within the group and against the index),
//! one write and one fsync per group. What a failure does is `failure.rs`'s.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use log::warn;

use super::failure::Repair;
use super::{Appended, Incoming, MAX_GROUP_BYTES, Store, locked};
use crate::journal::error::AppendError;
use crate::journal::fs::AppendFile;
use crate::journal::segment::segment_name;
use crate::journal::seqs::SessionKey;
use shuttlegate_core::journal::frame::{
    FrameMeta, SEGMENT_HEADER_LEN, encode_frame, frame_len, scan_all,
};
use shuttlegate_core::journal::record::RecordKind;

struct Staged {
    slot: usize,
    id: u64,
    seq: Option<u64>,
    offset: u64,
    len: usize,
}

struct Pending {
    buf: Vec<u8>,
    staged: Vec<Staged>,
    keys: HashMap<(SessionKey, u64), usize>,
    high: HashMap<SessionKey, u64>,
    /// When the group is committed (a failure's retries are scheduled from it).
    now: Instant,
    /// Batch bytes per device staged in this group (not yet in the segments' counts).
    device_staged: HashMap<String, u64>,
    /// Batch bytes per device on disk, summed over the segments once per group and device.
    device_on_disk: HashMap<String, u64>,
}

impl Pending {
    fn new(now: Instant) -> Pending {
        Pending {
            buf: Vec::new(),
            staged: Vec::new(),
            keys: HashMap::new(),
            high: HashMap::new(),
            now,
            device_staged: HashMap::new(),
            device_on_disk: HashMap::new(),
        }
    }
}

enum Outcome {
    Staged,
    Done(Result<Appended, AppendError>),
    DuplicateOf(usize, u64),
}

impl Store {
    // ---- appending ----

    /// Writes a group of appends with as few fsyncs as possible (one, unless the group rolls a
    /// segment or exceeds [`MAX_GROUP_BYTES`]); returns one result per append, in order. While
    /// a failure is being retried ([`Store::ready`] false) every append is refused.
    pub fn commit(
        &mut self,
        group: Vec<Incoming>,
        now_ms: i64,
        now: Instant,
    ) -> Vec<Result<Appended, AppendError>> {
        let mut outcomes = Vec::with_capacity(group.len());
        let mut pending = Pending::new(now);
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
        if let Some(refused) = self.refusal() {
            return Outcome::Done(Err(refused));
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
                    let in_group = pending.high.get(key).map_or(Some(0), |h| h.checked_add(1));
                    let Some(next) = next.zip(in_group).map(|(a, b)| a.max(b)) else {
                        return Outcome::Done(Err(AppendError::Invalid(format!(
                            "session `{}` of `{}` has used every seq up to {}: start a new session",
                            key.1,
                            key.0,
                            u64::MAX
                        ))));
                    };
                    seq = Some(next);
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
            if self.refusal().is_none()
                && let Err(e) = self.roll(now_ms)
            {
                let why = format!("starting a new segment: {e}");
                self.trouble(why, Repair::Roll, pending.now);
            }
        } else if pending.buf.len() + len > MAX_GROUP_BYTES {
            self.flush(pending, outcomes);
        }
        if let Some(refused) = self.refusal() {
            return Outcome::Done(Err(refused));
        }
        if inc.kind == RecordKind::Batch
            && let Some(device) = inc.device.as_deref()
            && let Err(refused) = self.within_device_share(device, len as u64, pending)
        {
            return Outcome::Done(Err(refused));
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
        if inc.kind == RecordKind::Batch
            && let Some(device) = inc.device
        {
            *pending.device_staged.entry(device).or_default() += len as u64;
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

    /// Makes room for `len` more bytes of `device`'s batches within its `device_share`
    /// (dropping its own oldest batches under `drop_oldest_raw`), or says why not.
    fn within_device_share(
        &mut self,
        device: &str,
        len: u64,
        pending: &mut Pending,
    ) -> Result<(), AppendError> {
        let Some(share) = self.device_share_bytes() else {
            return Ok(());
        };
        let on_disk = match pending.device_on_disk.get(device) {
            Some(&bytes) => bytes,
            None => {
                let bytes = self.device_bytes(device);
                pending.device_on_disk.insert(device.to_owned(), bytes);
                bytes
            }
        };
        let used = on_disk + pending.device_staged.get(device).copied().unwrap_or(0);
        if used + len <= share {
            self.devices_at_share.remove(device);
            return Ok(());
        }
        let made_room = self.make_device_room(device, used + len, share);
        // Compaction changed what is on disk.
        pending.device_on_disk.remove(device);
        if made_room {
            return Ok(());
        }
        self.shared.counters.refused.fetch_add(1, Ordering::Relaxed);
        if self.devices_at_share.insert(device.to_owned()) {
            warn!(
                "journal {}: device `{device}` has its share ({used} of {share} bytes, \
                 journal.device_share = {}): refusing its batches",
                self.opts.dir.display(),
                self.opts.device_share
            );
        }
        Err(AppendError::DeviceFull {
            device: device.to_owned(),
            used,
            share,
        })
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

    /// Writes and fsyncs the staged records; resolves their outcomes.
    fn flush(&mut self, pending: &mut Pending, outcomes: &mut [Outcome]) {
        if pending.staged.is_empty() {
            return;
        }
        let before = self.tail_info().bytes;
        if let Err(e) = self.tail.append(&pending.buf) {
            // Nothing of it was acknowledged: cut it off (again before the next write, in case
            // this cut fails too) and retry.
            self.cut_back(before);
            let why = format!("writing {} bytes: {e}", pending.buf.len());
            self.trouble(why, Repair::Truncate(before), pending.now);
        } else if let Err(e) = self.synced() {
            // fsyncgate: see `failure.rs`. The records are not acknowledged; recovery decides.
            self.cut_back(before);
            self.stop_for_good(format!("fsync of the open segment failed: {e}"));
        } else {
            self.apply_flushed(pending, outcomes);
            self.written(pending.now);
        }
        if let Some(refused) = self.refusal()
            && let Some(first) = pending.staged.first()
        {
            // Not written: their ids are handed out again, so no id is skipped.
            self.next_id = first.id;
            for s in &pending.staged {
                outcomes[s.slot] = Outcome::Done(Err(refused.clone()));
            }
        }
        pending.buf.clear();
        pending.staged.clear();
        // Written: now in the segments' counts (or refused).
        pending.device_staged.clear();
        pending.device_on_disk.clear();
    }

    /// Fsyncs the open segment, timing it for `/metrics`.
    fn synced(&mut self) -> std::io::Result<()> {
        let started = std::time::Instant::now();
        let synced = self.tail.sync();
        self.shared.counters.fsync.record(started.elapsed());
        synced
    }

    /// Cuts the open segment back to `len` bytes (what is durable), saying so if it cannot.
    fn cut_back(&mut self, len: u64) {
        if let Err(e) = self.tail.truncate(len) {
            warn!("journal: cutting the open segment back to {len} bytes: {e}");
        }
    }

    fn apply_flushed(&mut self, pending: &Pending, outcomes: &mut [Outcome]) {
        let base = self.tail_info().bytes;
        let mut sessions_changed = false;
        for s in &pending.staged {
            let at = (s.offset - base) as usize;
            let bytes = &pending.buf[at..at + s.len];
            if let shuttlegate_core::journal::frame::Parse::Frame(f) =
                shuttlegate_core::journal::frame::parse_frame(bytes)
            {
                sessions_changed |= self.tail_info().add(s.offset, &f);
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
        self.publish_tail(sessions_changed);
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
}

/// Placeholder before the first segment exists.
pub(super) struct NoFile;

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
