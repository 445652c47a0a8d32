//! Reads: the readers' side of [`Shared`] (durable id, range and session reads, corrupt-record
//! reports).

use std::sync::atomic::Ordering;

use log::warn;

use super::{ConsumerStats, SegView, Shared, locked};
use crate::journal::error::JournalError;
use crate::journal::segment::SegmentInfo;
use shuttlegate_core::journal::frame::{FrameMeta, Step, next_step};
use shuttlegate_core::journal::record::RecordKind;
use shuttlegate_core::journal::stored::StoredRecord;

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
        let keep = |m: &FrameMeta| kinds.is_none_or(|k| k.contains(&m.kind));
        self.read_segments(after_id, until_id, max, &|_| true, &keep)
    }

    /// Durable records of (device, session) with id > `after_id`, oldest first, at most `max`,
    /// optionally only these kinds. Opens only the segments whose session list names the
    /// session with one of the kinds (and those whose list is unknown); reads each such
    /// segment from the sparse index entry before `after_id` to its end.
    pub fn read_session(
        &self,
        device: &str,
        session_id: &str,
        after_id: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
    ) -> Result<Vec<StoredRecord>, JournalError> {
        let keep = |m: &FrameMeta| {
            m.device == Some(device)
                && m.session_id == Some(session_id)
                && kinds.is_none_or(|k| k.contains(&m.kind))
        };
        let holds = |v: &SegView| {
            v.sessions
                .as_ref()
                .is_none_or(|s| s.holds(device, session_id, kinds))
        };
        self.read_segments(after_id, u64::MAX, max, &holds, &keep)
    }

    /// The records `keep` accepts with `after_id` < id ≤ min(`until_id`, durable), oldest first,
    /// at most `max`, from the segments `holds` accepts (the others are not opened). Records
    /// past `until_id` are treated like records not yet durable: the read stops there.
    fn read_segments(
        &self,
        after_id: u64,
        until_id: u64,
        max: usize,
        holds: &dyn Fn(&SegView) -> bool,
        keep: &dyn Fn(&FrameMeta) -> bool,
    ) -> Result<Vec<StoredRecord>, JournalError> {
        let durable = self.durable_id().min(until_id);
        let mut out = Vec::new();
        if after_id >= durable || max == 0 {
            return Ok(out);
        }
        let views = self.views_snapshot();
        for v in views.iter().filter(|v| v.last_id > after_id && holds(v)) {
            if self.read_segment(v, after_id, durable, max, keep, &mut out)? {
                break;
            }
        }
        Ok(out)
    }

    /// Each consumer's backlog, from the segment views (see [`ConsumerStats`]).
    pub fn consumer_stats(&self, cursors: &[(String, u64)], durable: u64) -> Vec<ConsumerStats> {
        let views = self.views.read().unwrap_or_else(|e| e.into_inner());
        cursors
            .iter()
            .map(|(name, cursor)| {
                let mut st = ConsumerStats {
                    name: name.clone(),
                    cursor: *cursor,
                    ..ConsumerStats::default()
                };
                for v in views
                    .iter()
                    .filter(|v| v.records > 0 && v.last_id > *cursor)
                {
                    let past = v.last_id.min(durable).saturating_sub(*cursor);
                    st.backlog_records += if v.first_id > *cursor {
                        v.records
                    } else {
                        v.records.min(past)
                    };
                    st.backlog_bytes += v.len;
                }
                st
            })
            .collect()
    }

    /// The segment views as published now (a cheap clone: the vectors are shared).
    fn views_snapshot(&self) -> Vec<SegView> {
        self.views.read().unwrap_or_else(|e| e.into_inner()).clone()
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
        keep: &dyn Fn(&FrameMeta) -> bool,
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
                    if f.meta.id > after_id && keep(&f.meta) {
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
