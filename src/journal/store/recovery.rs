//! Recovery on open: [`Store::open`] and the helpers that read, check, scan or quarantine
//! what an earlier run left on disk.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use log::{info, warn};

use super::commit::NoFile;
use super::cursors::cursor_path;
use super::{
    Counters, JournalOptions, JournalStats, LOCK_FILE, NEXT_ID_FILE, RecoveryReport,
    SEQ_HIGHS_FILE, Shared, Store,
};
use crate::journal::error::JournalError;
use crate::journal::fs::{AppendFile, Fs, LockFailure, write_atomic};
use crate::journal::segment::{SegmentInfo, parse_segment_name, segment_name, sidecar_path};
use crate::journal::seqs::SeqIndex;
use shuttlegate_core::journal::frame::{
    FORMAT_VERSION, SEGMENT_HEADER_LEN, SegmentHeader, decode_segment_header, scan_all,
};

impl Store {
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
            trouble: None,
            repaired: None,
            stopped: None,
            devices_at_share: HashSet::new(),
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
) -> (SegmentInfo, shuttlegate_core::journal::frame::ScanSummary) {
    let mut info = SegmentInfo::empty(header.first_id, header.created_ms);
    let body = &data[SEGMENT_HEADER_LEN..];
    let summary = scan_all(body, |off, f| {
        info.add((SEGMENT_HEADER_LEN + off) as u64, f);
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
