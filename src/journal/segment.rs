//! What the journal knows about one segment file without reading it: id range, counts, a sparse
//! id → offset index, the seqs it holds, and which sessions' records (of which kinds) it holds. Kept in memory for every segment, and written beside
//! each sealed segment as a sidecar (`<first_id>.idx`, JSON) so that opening a large journal reads
//! a few KiB per segment instead of the segment itself.
//!
//! A sidecar is trusted only if it names the segment's first id and the segment file's current
//! length; anything else (missing, garbage, stale after compaction) means "scan the segment and
//! write a new one". Pure data plus file naming; no IO.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::seqs::SegmentSeqs;
use shuttlegate_core::journal::frame::{Frame, SEGMENT_HEADER_LEN};
use shuttlegate_core::journal::record::RecordKind;

/// A sparse index entry is added at least every this many bytes, so a reader seeks close to any
/// id and reads at most this much before it.
pub const SPARSE_EVERY: u64 = 64 << 10;

/// Name of the segment whose first id is `first_id` (zero-padded so names sort by id).
pub fn segment_name(first_id: u64) -> String {
    format!("{first_id:020}.seg")
}

pub fn sidecar_path(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

/// The first id a segment file name stands for, if it is a segment name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment lists at most this many (device, session) pairs; one holding more lists none
/// ([`SegmentInfo::sessions`] becomes `None`: readers of a session read it). Bounds the sidecar
/// and the memory per segment (a 64 MiB segment of one court holds a few dozen).
pub const MAX_SESSIONS_LISTED: usize = 1024;

/// Counts per record kind, indexed by `kind as usize - 1`.
pub type KindCounts = [u64; 4];

pub fn kind_slot(kind: RecordKind) -> usize {
    kind as usize - 1
}

/// Everything known about one segment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// From the header; ids inside are ≥ it.
    pub first_id: u64,
    pub created_ms: i64,
    /// Id of the last good record; 0 when the segment holds none.
    pub last_id: u64,
    /// File length covered by this info (header + records + skipped corrupt bytes).
    pub bytes: u64,
    pub records: u64,
    pub by_kind: KindCounts,
    /// Frame bytes of batch records (for bytes per sample).
    pub batch_bytes: u64,
    /// Samples in batch records.
    pub samples: u64,
    /// Body bytes before zstd and after (for the compression ratio).
    pub raw_body_bytes: u64,
    pub stored_body_bytes: u64,
    pub first_ts_ms: Option<i64>,
    pub last_ts_ms: Option<i64>,
    /// (id, offset) of some records, ascending, at least every [`SPARSE_EVERY`] bytes.
    pub sparse: Vec<(u64, u64)>,
    pub seqs: SegmentSeqs,
    /// The sessions it holds records of, any kind, so that [`Journal::read_session`] opens only
    /// the segments holding the session. `None` when unknown: a sidecar written by an earlier
    /// build (no such field; the segment is read), or more than [`MAX_SESSIONS_LISTED`] pairs.
    ///
    /// [`Journal::read_session`]: crate::journal::Journal::read_session
    #[serde(default)]
    pub sessions: Option<SegmentSessions>,
    /// Corrupt byte ranges found when the segment was last scanned: (offset, length).
    pub corrupt: Vec<(u64, u64)>,
    /// Frame bytes of batch records per device: what each device's raw data costs the
    /// journal, for `device_share`. Empty in sidecars of earlier builds (not counted then).
    #[serde(default)]
    pub device_batch_bytes: BTreeMap<String, u64>,
}

impl SegmentInfo {
    pub fn empty(first_id: u64, created_ms: i64) -> SegmentInfo {
        SegmentInfo {
            first_id,
            created_ms,
            bytes: SEGMENT_HEADER_LEN as u64,
            sessions: Some(SegmentSessions::default()),
            ..SegmentInfo::default()
        }
    }

    /// Accounts for a good record stored at file offset `offset`. True when the session list
    /// changed (a new session, or a new kind of record for one): the writer then republishes it
    /// to readers.
    pub fn add(&mut self, offset: u64, f: &Frame) -> bool {
        let len = f.bytes.len() as u64;
        let m = &f.meta;
        self.records += 1;
        self.by_kind[kind_slot(m.kind)] += 1;
        self.last_id = m.id;
        self.first_ts_ms.get_or_insert(m.ts_ms);
        self.last_ts_ms = Some(m.ts_ms);
        self.raw_body_bytes += u64::from(m.raw_len);
        self.stored_body_bytes += f.body.len() as u64;
        if m.kind == RecordKind::Batch {
            self.batch_bytes += len;
            self.samples += u64::from(m.samples);
            if let (Some(d), Some(s), Some(q)) = (m.device, m.session_id, m.seq) {
                self.seqs.insert(d, s, q);
            }
            if let Some(d) = m.device {
                *self.device_batch_bytes.entry(d.to_owned()).or_default() += len;
            }
        }
        let last_indexed = self.sparse.last().map_or(0, |&(_, o)| o);
        if self.sparse.is_empty() || offset >= last_indexed + SPARSE_EVERY {
            self.sparse.push((m.id, offset));
        }
        self.bytes = self.bytes.max(offset + len);
        let mut sessions_changed = false;
        if let (Some(d), Some(s)) = (m.device, m.session_id)
            && let Some(list) = &mut self.sessions
        {
            sessions_changed = list.insert(d, s, m.kind);
            if list.len() > MAX_SESSIONS_LISTED {
                self.sessions = None;
            }
        }
        sessions_changed
    }

    pub fn batch_records(&self) -> u64 {
        self.by_kind[kind_slot(RecordKind::Batch)]
    }

    /// File offset to start reading at to find the first record with id > `after_id`.
    pub fn seek_offset(sparse: &[(u64, u64)], after_id: u64) -> u64 {
        let i = sparse.partition_point(|&(id, _)| id <= after_id.saturating_add(1));
        match i {
            0 => SEGMENT_HEADER_LEN as u64,
            i => sparse[i - 1].1,
        }
    }
}

/// (device → session → kinds) of the records a segment holds; the kinds as a bit mask, bit
/// [`kind_slot`] for each kind present. Serialised in the sidecar as nested JSON objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SegmentSessions(BTreeMap<String, BTreeMap<String, u8>>);

impl SegmentSessions {
    /// Notes a record of `kind` for (device, session); true when that is new (a new pair or a
    /// new kind for it). Allocates only for a new pair.
    pub fn insert(&mut self, device: &str, session: &str, kind: RecordKind) -> bool {
        let bit = 1u8 << kind_slot(kind);
        let Some(sessions) = self.0.get_mut(device) else {
            self.0.insert(
                device.to_owned(),
                BTreeMap::from([(session.to_owned(), bit)]),
            );
            return true;
        };
        match sessions.get_mut(session) {
            Some(mask) => {
                let new = *mask & bit == 0;
                *mask |= bit;
                new
            }
            None => {
                sessions.insert(session.to_owned(), bit);
                true
            }
        }
    }

    /// True when the segment holds records of (device, session) of one of `kinds` (any kind
    /// when `None`).
    pub fn holds(&self, device: &str, session: &str, kinds: Option<&[RecordKind]>) -> bool {
        let Some(&mask) = self.0.get(device).and_then(|s| s.get(session)) else {
            return false;
        };
        kinds.is_none_or(|ks| ks.iter().any(|&k| mask & (1 << kind_slot(k)) != 0))
    }

    /// Number of (device, session) pairs.
    pub fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_by_id_and_parse_back() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("00000000000000000042.idx"), None);
        assert_eq!(parse_segment_name("42.seg"), None);
    }

    #[test]
    fn seek_offset_picks_the_last_index_entry_at_or_before_the_wanted_id() {
        let sparse = vec![(1, 32), (10, 1000), (20, 2000)];
        assert_eq!(SegmentInfo::seek_offset(&sparse, 0), 32);
        assert_eq!(SegmentInfo::seek_offset(&sparse, 9), 1000);
        assert_eq!(SegmentInfo::seek_offset(&sparse, 15), 1000);
        assert_eq!(SegmentInfo::seek_offset(&sparse, 25), 2000);
        assert_eq!(SegmentInfo::seek_offset(&[], 25), 32);
    }

    #[test]
    fn session_lists_say_which_kinds_a_segment_holds_for_each_session() {
        let mut list = SegmentSessions::default();
        assert!(list.insert("d1", "s1", RecordKind::Batch));
        assert!(!list.insert("d1", "s1", RecordKind::Batch));
        assert!(list.insert("d1", "s1", RecordKind::Swing));
        assert!(list.insert("d2", "s1", RecordKind::Summary));
        assert_eq!(list.len(), 2);
        assert!(list.holds("d1", "s1", None));
        assert!(list.holds("d1", "s1", Some(&[RecordKind::Summary, RecordKind::Swing])));
        assert!(!list.holds("d1", "s1", Some(&[RecordKind::Summary])));
        assert!(!list.holds("d1", "s2", None));
        assert!(!list.holds("d3", "s1", None));
    }

    #[test]
    fn a_sidecar_of_an_earlier_build_loads_with_its_sessions_unknown() {
        let mut info = SegmentInfo::empty(7, 0);
        info.sessions = None;
        let mut json: serde_json::Value = serde_json::to_value(&info).unwrap();
        json.as_object_mut().unwrap().remove("sessions");
        let back: SegmentInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, info);
        let listed = SegmentInfo::empty(7, 0);
        let again: SegmentInfo =
            serde_json::from_slice(&serde_json::to_vec(&listed).unwrap()).unwrap();
        assert_eq!(again, listed);
    }
}
