//! Journals written by builds before v2 frames (version-1 segments of v1 frames), on real files:
//! they open, recover, read, dedup, export and stat exactly as the same records framed by this
//! build, and new records go to a version-2 segment beside them. Also a journal mixing a
//! version-1 sealed segment and a version-2 open one, as an upgrade leaves it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shuttlegate::journal::tools::{self, ExportFilter, ExportFormat};
use shuttlegate::journal::{Document, Journal, JournalOptions, RecordBody, WhenFull};
use shuttlegate_core::journal::synth::{Motion, SeedStyle, compact_batch, seed_batch};
use shuttlegate_core::journal::{
    FORMAT_VERSION, FrameMeta, encode_batch_body, encode_frame, encode_frame_v1,
    segment_file_bytes, segment_file_bytes_v1,
};

const TS0: i64 = 1_764_000_000_000;

/// One record as a previous build stored it.
struct Stored {
    id: u64,
    body: RecordBody,
}

/// A mix of what a journal holds: compact and seed batches, swings with ids, events without,
/// documents plain and zstd'd.
fn records(n: u64) -> Vec<Stored> {
    let mut rng = SmallRng::seed_from_u64(n);
    (1..=n)
        .map(|id| {
            let body = match id % 4 {
                0 => RecordBody::Batch(seed_batch(
                    &mut rng,
                    "2025002",
                    "s-0018",
                    93_015_123,
                    30,
                    SeedStyle::Decimals,
                )),
                1 | 2 => RecordBody::Batch(compact_batch(
                    &mut rng,
                    "2025001",
                    "s-0017",
                    Some(id),
                    TS0,
                    100,
                    Motion::Swing,
                )),
                _ if id % 8 == 3 => RecordBody::Swing(Document {
                    device: Some("2025001".into()),
                    session_id: Some("s-0017".into()),
                    json: format!(r#"{{"type":"swing","n":{id}}}"#),
                }),
                _ => RecordBody::Event(Document {
                    device: None,
                    session_id: None,
                    json: format!(r#"{{"type":"event","what":"{}"}}"#, "x".repeat(200)),
                }),
            };
            Stored { id, body }
        })
        .map(|mut r| {
            // A seed batch without seq gets the gateway's numbering; store it as numbered.
            if let RecordBody::Batch(b) = &mut r.body
                && b.seq.is_none()
            {
                b.seq = Some(r.id);
            }
            r
        })
        .collect()
}

/// The frame of `r` in either layout, as the journal's writer would frame it.
fn frame(r: &Stored, v1: bool, out: &mut Vec<u8>) {
    let (kind, device, session, seq) = (
        r.body.kind(),
        r.body.device(),
        r.body.session_id(),
        match &r.body {
            RecordBody::Batch(b) => b.seq,
            _ => None,
        },
    );
    let (codec, samples, raw_len, bytes) = match &r.body {
        RecordBody::Batch(b) => {
            let e = encode_batch_body(b);
            (e.codec, e.samples, e.raw_len, e.bytes)
        }
        RecordBody::Swing(d) | RecordBody::Summary(d) | RecordBody::Event(d) => {
            let raw = d.json.as_bytes();
            let z = zstd::bulk::compress(raw, 3).unwrap();
            if z.len() < raw.len() {
                (1, 0, raw.len() as u32, z)
            } else {
                (0, 0, raw.len() as u32, raw.to_vec())
            }
        }
    };
    let meta = FrameMeta {
        id: r.id,
        ts_ms: TS0 + r.id as i64,
        kind,
        codec,
        seq,
        samples,
        raw_len,
        device,
        session_id: session,
    };
    if v1 {
        encode_frame_v1(&meta, &bytes, out);
    } else {
        encode_frame(&meta, &bytes, out);
    }
}

/// Writes `recs` as a journal: one segment per slice of `split`, each of `version` (1: v1
/// frames in a version-1 segment), a `next_id` file naming the last segment's first id, and
/// `torn` bytes of the next record's frame after the last. Returns the segment paths.
fn write_journal(dir: &Path, segments: &[(&[Stored], u32)], torn: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut paths = Vec::new();
    for (i, (recs, version)) in segments.iter().enumerate() {
        let v1 = *version == 1;
        let mut buf = Vec::new();
        for r in *recs {
            frame(r, v1, &mut buf);
        }
        let first = recs[0].id;
        if i + 1 == segments.len() {
            let next = Stored {
                id: recs.last().unwrap().id + 1,
                body: records(1).remove(0).body,
            };
            let mut partial = Vec::new();
            frame(&next, v1, &mut partial);
            buf.extend_from_slice(&partial[..torn]);
            std::fs::write(dir.join("next_id"), format!("{first}\n")).unwrap();
        }
        let file = if v1 {
            segment_file_bytes_v1(first, &buf)
        } else {
            segment_file_bytes(first, &buf)
        };
        let path = dir.join(format!("{first:020}.seg"));
        std::fs::write(&path, file).unwrap();
        paths.push(path);
    }
    paths
}

fn opts(dir: &Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.commit_interval = Duration::from_millis(1);
    o.segment_bytes = 1 << 20;
    o.max_bytes = 64 << 20;
    o
}

fn header_version(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn export(dir: &Path, format: ExportFormat) -> String {
    let mut out = Vec::new();
    let counts = tools::export(dir, &ExportFilter::default(), format, &mut out).unwrap();
    assert_eq!(counts.undecodable, 0);
    String::from_utf8(out).unwrap()
}

/// `journal stats` without the lines that name the directory or count frame bytes.
fn stats_without_bytes(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    tools::stats(dir, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("journal:"))
        .map(|l| match l.split_once('(') {
            Some((head, _)) if l.starts_with("segments:") => head.to_owned(),
            _ => match l.split_once(", batch bytes") {
                Some((head, _)) => head.to_owned(),
                None => l.to_owned(),
            },
        })
        .collect()
}

fn frame_is_v2(encoded: &[u8]) -> bool {
    encoded[3] & 0x80 != 0
}

#[tokio::test]
async fn a_journal_of_the_previous_build_reads_dedups_exports_and_stats_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("v1"), tmp.path().join("v2"));
    let recs = records(12);
    let torn = 30;
    let old_segs = write_journal(&old, &[(&recs[..8], 1), (&recs[8..], 1)], torn);
    write_journal(&new, &[(&recs[..8], 2), (&recs[8..], 2)], torn);

    // Offline tools see the same records in both layouts, only the frames are smaller.
    let jsonl = export(&old, ExportFormat::Jsonl);
    assert_eq!(jsonl.lines().count(), 12);
    assert_eq!(jsonl, export(&new, ExportFormat::Jsonl));
    assert_eq!(
        export(&old, ExportFormat::Csv),
        export(&new, ExportFormat::Csv)
    );
    assert_eq!(stats_without_bytes(&old), stats_without_bytes(&new));
    let size = |d: &Path| {
        segment_files(d)
            .iter()
            .map(|p| p.metadata().unwrap().len())
            .sum::<u64>()
    };
    assert!(size(&new) < size(&old));

    let (j, report) = Journal::open(opts(&old)).unwrap();
    assert_eq!(report.records, 12);
    assert_eq!(report.torn_bytes, torn as u64);
    assert_eq!(report.corrupt_records, 0);
    assert!(report.quarantined_segments.is_empty());
    let read = j.read_after(0, usize::MAX, None).unwrap();
    assert_eq!(read.len(), 12);
    for (got, want) in read.iter().zip(&recs) {
        assert!(!frame_is_v2(got.encoded()));
        let rec = got.decode().unwrap();
        assert_eq!((rec.id, rec.ts_ms), (want.id, TS0 + want.id as i64));
        assert_eq!(rec.body, want.body, "record {}", want.id);
    }
    let st = j.stats();
    assert_eq!(st.records, 12);
    assert_eq!(
        st.samples,
        read.iter().map(|r| u64::from(r.samples)).sum::<u64>()
    );

    // Resends of v1 records, in the sealed and in the open segment, are answered with their ids.
    for original in [&recs[0], &recs[9]] {
        let a = j.append(original.body.clone()).await.unwrap();
        assert!(a.duplicate, "record {}", original.id);
        assert_eq!(a.id, original.id);
    }
    // A new record goes to a new segment of this build's version; the old files keep theirs.
    let mut rng = SmallRng::seed_from_u64(99);
    let fresh = compact_batch(
        &mut rng,
        "2025001",
        "s-0017",
        Some(1000),
        TS0,
        100,
        Motion::Idle,
    );
    let a = j.append(RecordBody::Batch(fresh.clone())).await.unwrap();
    assert_eq!((a.id, a.duplicate), (13, false));
    j.close().await.unwrap();
    let segs = segment_files(&old);
    assert_eq!(segs.len(), 3);
    assert_eq!(&segs[..2], &old_segs[..]);
    assert_eq!(header_version(&segs[0]), 1);
    assert_eq!(header_version(&segs[1]), 1);
    assert_eq!(header_version(&segs[2]), FORMAT_VERSION);
    assert!(
        segs[1].with_extension("idx").exists(),
        "the old open segment is sealed"
    );
    let mut stats = Vec::new();
    tools::stats(&old, &mut stats).unwrap();
    let stats = String::from_utf8(stats).unwrap();
    assert!(
        stats.contains("; format version 1 ×2, 2 ×1)"),
        "stats name each format version: {stats}"
    );

    let (j, report) = Journal::open(opts(&old)).unwrap();
    assert_eq!((report.records, report.torn_bytes), (13, 0));
    let read = j.read_after(0, usize::MAX, None).unwrap();
    assert_eq!(read.len(), 13);
    assert!(frame_is_v2(read[12].encoded()));
    assert_eq!(read[12].decode().unwrap().body, RecordBody::Batch(fresh));
    j.close().await.unwrap();
    let after = export(&old, ExportFormat::Jsonl);
    assert!(after.starts_with(&jsonl));
    assert_eq!(after.lines().count(), 13);
}

#[tokio::test]
async fn an_empty_open_segment_of_the_previous_build_is_replaced_by_a_current_one() {
    // `next_id` equal to the empty segment's first id (the usual case), and above it (ids
    // reserved by an earlier roll that never got a segment).
    for hwm in [5u64, 7] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("j");
        let recs = records(4);
        write_journal(&dir, &[(&recs, 1)], 0);
        let empty = dir.join("00000000000000000005.seg");
        std::fs::write(&empty, segment_file_bytes_v1(5, &[])).unwrap();
        std::fs::write(dir.join("next_id"), format!("{hwm}\n")).unwrap();

        let (j, report) = Journal::open(opts(&dir)).unwrap();
        assert_eq!(report.records, 4);
        let mut rng = SmallRng::seed_from_u64(hwm);
        let b = compact_batch(&mut rng, "d", "s", Some(0), TS0, 10, Motion::Idle);
        let a = j.append(RecordBody::Batch(b)).await.unwrap();
        assert_eq!(a.id, hwm);
        j.close().await.unwrap();

        let segs = segment_files(&dir);
        assert_eq!(segs.len(), 2, "hwm {hwm}: {segs:?}");
        assert_eq!(header_version(&segs[0]), 1);
        assert_eq!(segs[1], dir.join(format!("{hwm:020}.seg")));
        assert_eq!(header_version(&segs[1]), FORMAT_VERSION);
        let (j, _) = Journal::open(opts(&dir)).unwrap();
        let ids: Vec<u64> = j
            .read_after(0, usize::MAX, None)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![1, 2, 3, 4, hwm]);
        j.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_v1_sealed_segment_and_a_v2_open_segment_recover_together() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let recs = records(12);
    let torn = 17;
    let segs = write_journal(&dir, &[(&recs[..8], 1), (&recs[8..], 2)], torn);
    // One flipped bit inside record 4's frame, in the v1 segment.
    let mut sealed = std::fs::read(&segs[0]).unwrap();
    let mut offsets = Vec::new();
    shuttlegate_core::journal::scan_all(&sealed[32..], |off, _| offsets.push(32 + off));
    sealed[offsets[3] + 30] ^= 0x10;
    std::fs::write(&segs[0], &sealed).unwrap();

    let (j, report) = Journal::open(opts(&dir)).unwrap();
    assert_eq!(report.records, 11);
    assert_eq!(report.corrupt_records, 1);
    assert_eq!(report.torn_bytes, torn as u64);
    let read = j.read_after(0, usize::MAX, None).unwrap();
    let ids: Vec<u64> = read.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]);
    for r in &read {
        assert_eq!(frame_is_v2(r.encoded()), r.id > 8);
        let want = &recs[r.id as usize - 1];
        assert_eq!(r.decode().unwrap().body, want.body);
    }
    // A resend of a v2 record is a duplicate; a new record stays in the v2 open segment.
    let dup = j.append(recs[9].body.clone()).await.unwrap();
    assert_eq!((dup.id, dup.duplicate), (10, true));
    let mut rng = SmallRng::seed_from_u64(5);
    let b = compact_batch(&mut rng, "d", "s", Some(0), TS0, 10, Motion::Idle);
    assert_eq!(j.append(RecordBody::Batch(b)).await.unwrap().id, 13);
    j.close().await.unwrap();
    assert_eq!(segment_files(&dir), segs);
    let out = export(&dir, ExportFormat::Jsonl);
    assert_eq!(out.lines().count(), 12);
}

#[tokio::test]
async fn drop_oldest_raw_compacts_a_version_1_segment_in_its_own_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let recs = records(40);
    let segs = write_journal(&dir, &[(&recs[..20], 1), (&recs[20..], 1)], 0);
    // The first open retires the old open segment; its size is the journal's size from then on.
    let (j, report) = Journal::open(opts(&dir)).unwrap();
    j.close().await.unwrap();
    let mut o = opts(&dir);
    o.segment_bytes = 4096;
    o.max_bytes = report.bytes + 50;
    o.when_full = WhenFull::DropOldestRaw;
    assert!(o.max_bytes >= 2 * o.segment_bytes, "{} bytes", report.bytes);

    let (j, _) = Journal::open(o).unwrap();
    let mut rng = SmallRng::seed_from_u64(3);
    let b = compact_batch(&mut rng, "d", "s", Some(0), TS0, 20, Motion::Idle);
    let a = j.append(RecordBody::Batch(b)).await.unwrap();
    assert_eq!(a.id, 41);
    let kept_in_first: Vec<u64> = recs[..20]
        .iter()
        .filter(|r| !matches!(r.body, RecordBody::Batch(_)))
        .map(|r| r.id)
        .collect();
    let batches_dropped = 20 - kept_in_first.len() as u64;
    assert_eq!(j.stats().dropped_records, batches_dropped);
    let read = j.read_after(0, usize::MAX, None).unwrap();
    let ids: Vec<u64> = read.iter().map(|r| r.id).collect();
    let want: Vec<u64> = kept_in_first.iter().copied().chain(21..=41).collect();
    assert_eq!(ids, want);
    for r in read.iter().filter(|r| r.id <= 40) {
        assert!(!frame_is_v2(r.encoded()));
        assert_eq!(r.decode().unwrap().body, recs[r.id as usize - 1].body);
    }
    j.close().await.unwrap();
    assert_eq!(
        header_version(&segs[0]),
        1,
        "compaction keeps the segment's layout"
    );
    let (j, report) = Journal::open(opts(&dir)).unwrap();
    assert_eq!(report.records, want.len() as u64);
    assert_eq!(report.corrupt_records, 0);
    j.close().await.unwrap();
}

/// Writes the fuzz corpus seeds of v2 frames (`cargo test --test journal_v1 -- --ignored`):
/// single frames of every kind for `journal_frame`, and record areas mixing both layouts, with
/// a corrupt record and a torn tail, for `journal_recovery`.
#[test]
#[ignore = "writes files under fuzz/corpus"]
fn write_fuzz_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let recs = records(8);
    for r in &recs {
        let mut out = Vec::new();
        frame(r, false, &mut out);
        std::fs::write(corpus.join(format!("journal_frame/frame2_{}", r.id)), out).unwrap();
    }
    let recs = records(12);
    let mut mixed = Vec::new();
    for r in &recs {
        frame(r, r.id <= 6, &mut mixed);
    }
    let mut torn = Vec::new();
    frame(&recs[0], false, &mut torn);
    let mut with_tail = mixed.clone();
    with_tail.extend_from_slice(&torn[..torn.len() / 2]);
    std::fs::write(corpus.join("journal_recovery/seg2_mixed_torn"), &with_tail).unwrap();
    let mut all_v2 = Vec::new();
    let mut offsets = Vec::new();
    for r in &recs {
        offsets.push(all_v2.len());
        frame(r, false, &mut all_v2);
    }
    all_v2[offsets[3] + 12] ^= 0x04;
    std::fs::write(corpus.join("journal_recovery/seg2_corrupt"), &all_v2).unwrap();
}

/// Bytes per sample of 100-sample compact batches (swing and idle motion, counts) framed in
/// each layout: `cargo test --test journal_v1 -- --ignored --nocapture print_bytes`.
#[test]
#[ignore = "a measurement, not a check"]
fn print_bytes_per_sample_by_frame_layout() {
    for motion in [Motion::Swing, Motion::Idle] {
        let mut rng = SmallRng::seed_from_u64(7);
        let recs: Vec<Stored> = (1..=1000u64)
            .map(|id| Stored {
                id,
                body: RecordBody::Batch(compact_batch(
                    &mut rng,
                    "2025001",
                    "s-0017",
                    Some(id),
                    TS0 + 100 * id as i64,
                    100,
                    motion,
                )),
            })
            .collect();
        let (mut v1, mut v2) = (Vec::new(), Vec::new());
        for r in &recs {
            frame(r, true, &mut v1);
            frame(r, false, &mut v2);
        }
        let samples = 100.0 * recs.len() as f64;
        println!(
            "{motion:?}: v1 frames {:.3} B/sample, v2 frames {:.3} B/sample ({} records)",
            v1.len() as f64 / samples,
            v2.len() as f64 / samples,
            recs.len()
        );
    }
}
