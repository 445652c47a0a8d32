//! Segments and the cap: starting, retiring and rolling segments, sidecars, and the
//! `drop_oldest_raw` policy (compaction of sealed segments).

use std::sync::atomic::Ordering;

use log::warn;

use super::commit::NoFile;
use super::{NEXT_ID_FILE, Store, WhenFull, locked};
use crate::journal::fs::write_atomic;
use crate::journal::segment::{SegmentInfo, segment_name, sidecar_path};
use shuttlegate_core::journal::frame::{
    FORMAT_VERSION, SEGMENT_HEADER_LEN, SegmentHeader, encode_segment_header, scan_all,
};
use shuttlegate_core::journal::record::RecordKind;

impl Store {
    // ---- segments ----

    pub(super) fn start_segment(&mut self, now_ms: i64) -> std::io::Result<()> {
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
    pub(super) fn retire_old_tail(&mut self, now_ms: i64) -> std::io::Result<()> {
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
    pub(super) fn roll(&mut self, now_ms: i64) -> std::io::Result<()> {
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
    pub(super) fn make_room(&mut self, wanted: u64) -> bool {
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
            if let Err(e) = self.compact(idx, None) {
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

    /// Under `drop_oldest_raw`, drops `device`'s own oldest batches (oldest sealed segment
    /// first) until `wanted` bytes of its batches fit its `share`; the other devices' data stays.
    /// False when it cannot (policy `refuse`, or its batches are all in the open segment).
    pub(super) fn make_device_room(&mut self, device: &str, wanted: u64, share: u64) -> bool {
        if self.opts.when_full == WhenFull::Refuse {
            return false;
        }
        let mut used = wanted;
        while used > share {
            let sealed = self.segments.len() - 1;
            let holding = |s: &SegmentInfo| s.device_batch_bytes.get(device).copied();
            let Some((idx, bytes)) = self.segments[..sealed]
                .iter()
                .enumerate()
                .find_map(|(i, s)| holding(s).filter(|&b| b > 0).map(|b| (i, b)))
            else {
                return false;
            };
            if let Err(e) = self.compact(idx, Some(device)) {
                let first_id = self.segments[idx].first_id;
                warn!("journal: compacting segment {first_id} for device `{device}`: {e}");
                return false;
            }
            used = used.saturating_sub(bytes);
        }
        true
    }

    /// Rewrites sealed segment `idx` without its batch records — only `device`'s, when given —
    /// (or deletes it if nothing else is in it). Atomic: temp file, fsync, rename over, fsync
    /// dir.
    fn compact(&mut self, idx: usize, device: Option<&str>) -> std::io::Result<()> {
        let fs = self.shared.fs.clone();
        let old = self.segments[idx].clone();
        let path = self.opts.dir.join(segment_name(old.first_id));
        let data = fs.read(&path)?;
        let mut kept = data[..SEGMENT_HEADER_LEN.min(data.len())].to_vec();
        let mut info = SegmentInfo::empty(old.first_id, old.created_ms);
        scan_all(data.get(SEGMENT_HEADER_LEN..).unwrap_or(&[]), |_, f| {
            let dropped =
                f.meta.kind == RecordKind::Batch && device.is_none_or(|d| f.meta.device == Some(d));
            if !dropped {
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
        {
            // The batches kept (other devices') are indexed again after their segment's went.
            let mut seqs = locked(&self.shared.seqs);
            seqs.remove_segment(&old.seqs);
            seqs.insert_segment(&info.seqs);
        }
        self.persist_seq_highs();
        let freed = old.bytes - info.bytes.min(old.bytes);
        let dropped = old.batch_records() - info.batch_records().min(old.batch_records());
        let c = &self.shared.counters;
        c.dropped_records.fetch_add(dropped, Ordering::Relaxed);
        c.dropped_bytes.fetch_add(freed, Ordering::Relaxed);
        let whose = device.map_or_else(String::new, |d| {
            format!(" of device `{d}` (its device_share)")
        });
        warn!(
            "journal {}: full: dropped {dropped} raw batches{whose} ({freed} bytes) from segment {} \
             (ids {}..={}), kept {} other records",
            self.opts.dir.display(),
            old.first_id,
            old.first_id,
            old.last_id,
            info.records
        );
        self.publish_all();
        Ok(())
    }
}
