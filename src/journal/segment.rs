//! What the journal knows about one segment file without reading it: id range, counts, a sparse
//! id → offset index, and the seqs it holds. Kept in memory for every segment, and written beside
//! each sealed segment as a sidecar (`<first_id>.idx`, JSON) so that opening a large journal reads
//! a few KiB per segment instead of the segment itself.
//!
//! A sidecar is trusted only if it names the segment's first id and the segment file's current
//! length; anything else (missing, garbage, stale after compaction) means "scan the segment and
//! write a new one". Pure data plus file naming; no IO.

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
    /// Corrupt byte ranges found when the segment was last scanned: (offset, length).
    pub corrupt: Vec<(u64, u64)>,
}

impl SegmentInfo {
    pub fn empty(first_id: u64, created_ms: i64) -> SegmentInfo {
        SegmentInfo {
            first_id,
            created_ms,
            bytes: SEGMENT_HEADER_LEN as u64,
            ..SegmentInfo::default()
        }
    }

    /// Accounts for a good record stored at file offset `offset`.
    pub fn add(&mut self, offset: u64, f: &Frame) {
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
        }
        let last_indexed = self.sparse.last().map_or(0, |&(_, o)| o);
        if self.sparse.is_empty() || offset >= last_indexed + SPARSE_EVERY {
            self.sparse.push((m.id, offset));
        }
        self.bytes = self.bytes.max(offset + len);
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
}
