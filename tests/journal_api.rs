//! The journal's public API against real files in a temp dir: durability across restarts,
//! idempotence, gateway numbering, segments, cursors and release, the cap policies, the lock,
//! and the offline tools (including their exact export format).

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shuttlegate::journal::tools::{self, ExportFilter, ExportFormat};
use shuttlegate::journal::{
    AppendError, Document, Journal, JournalError, JournalOptions, RecordBody, RecordKind, WhenFull,
};
use shuttlegate_core::batch::{BatchForm, CompactBatch, SeedBatch, SeedFrame, SensorBatch};
use shuttlegate_core::journal::synth::{Motion, SeedStyle, compact_batch, seed_batch};

fn opts(dir: &std::path::Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir.join("journal"));
    o.commit_interval = Duration::from_millis(1);
    o.segment_bytes = 8 << 10;
    o.max_bytes = 64 << 20;
    o
}

fn batch(seq: Option<u64>, session: &str, rng: &mut SmallRng) -> RecordBody {
    RecordBody::Batch(compact_batch(
        rng,
        "dev1",
        session,
        seq,
        1_732_400_000_000,
        50,
        Motion::Swing,
    ))
}

fn doc(kind: RecordKind, json: &str) -> RecordBody {
    let d = Document {
        device: Some("dev1".into()),
        session_id: Some("s1".into()),
        json: json.into(),
    };
    match kind {
        RecordKind::Swing => RecordBody::Swing(d),
        RecordKind::Summary => RecordBody::Summary(d),
        _ => RecordBody::Event(d),
    }
}

fn all(j: &Journal) -> Vec<shuttlegate::journal::StoredRecord> {
    j.read_after(0, usize::MAX, None).expect("read")
}

#[tokio::test]
async fn appended_records_read_back_exactly_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    let (j, report) = Journal::open(opts(tmp.path())).unwrap();
    assert_eq!(report.records, 0);
    let mut sent = Vec::new();
    for i in 0..40 {
        let body = if i % 5 == 4 {
            doc(
                RecordKind::Swing,
                &format!("{{\"type\":\"swing\",\"n\":{i}}}"),
            )
        } else {
            batch(Some(i), "s1", &mut rng)
        };
        let a = j.append(body.clone()).await.unwrap();
        assert!(!a.duplicate);
        sent.push((a.id, body));
    }
    assert!(sent.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert_eq!(j.durable_id(), sent.last().unwrap().0);
    j.close().await.unwrap();

    let (j, report) = Journal::open(opts(tmp.path())).unwrap();
    assert_eq!(report.records, 40);
    assert!(report.segments > 1, "small segments rolled");
    let back = all(&j);
    assert_eq!(back.len(), sent.len());
    for (r, (id, body)) in back.iter().zip(&sent) {
        assert_eq!(r.id, *id);
        assert_eq!(&r.decode().unwrap().body, body);
    }
    let next = j.append(batch(Some(99), "s1", &mut rng)).await.unwrap();
    assert!(next.id > sent.last().unwrap().0);
    // Reading from the middle uses the sparse index and crosses segments.
    let mid = j.read_after(sent[17].0, 5, None).unwrap();
    assert_eq!(
        mid.iter().map(|r| r.id).collect::<Vec<_>>(),
        sent[18..23].iter().map(|s| s.0).collect::<Vec<_>>()
    );
    let swings = j.read_after(0, 100, Some(&[RecordKind::Swing])).unwrap();
    assert_eq!(swings.len(), 8);
    j.close().await.unwrap();
}

#[tokio::test]
async fn a_resent_batch_is_acknowledged_with_its_original_id_and_stored_once_even_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(2);
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    let b = batch(Some(7), "s1", &mut rng);
    let first = j.append(b.clone()).await.unwrap();
    let again = j.append(b.clone()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!((again.id, again.seq), (first.id, Some(7)));
    // Concurrent resends inside one commit window.
    let (x, y) = tokio::join!(
        j.append(batch(Some(8), "s1", &mut rng)),
        j.append(batch(Some(8), "s1", &mut rng))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.id, y.id);
    assert!(x.duplicate != y.duplicate);
    // Enough other records that the original is in a sealed segment, read from disk.
    for i in 100..140 {
        j.append(batch(Some(i), "s2", &mut rng)).await.unwrap();
    }
    j.close().await.unwrap();
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    let again = j.append(b).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    assert_eq!(j.stored_seqs("dev1", "s1"), vec![7, 8]);
    assert_eq!(all(&j).len(), 42);
    j.close().await.unwrap();
}

#[tokio::test]
async fn batches_without_seq_are_numbered_in_arrival_order_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(3);
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    for want in 0..3 {
        let b = RecordBody::Batch(seed_batch(
            &mut rng,
            "dev1",
            "123",
            93015123,
            30,
            SeedStyle::Decimals,
        ));
        assert_eq!(j.append(b).await.unwrap().seq, Some(want));
    }
    j.close().await.unwrap();
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    let b = RecordBody::Batch(seed_batch(
        &mut rng,
        "dev1",
        "123",
        93016123,
        30,
        SeedStyle::Decimals,
    ));
    assert_eq!(j.append(b).await.unwrap().seq, Some(3));
    let b = RecordBody::Batch(seed_batch(
        &mut rng,
        "dev1",
        "other",
        93016123,
        30,
        SeedStyle::Decimals,
    ));
    assert_eq!(j.append(b).await.unwrap().seq, Some(0));
    assert_eq!(j.stored_seqs("dev1", "123"), vec![0, 1, 2, 3]);
    j.close().await.unwrap();
}

#[tokio::test]
async fn a_second_opener_is_refused_with_the_lock_file_and_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    let err = Journal::open(opts(tmp.path()))
        .err()
        .expect("second open must fail");
    match &err {
        JournalError::Locked { lock, pid } => {
            assert_eq!(lock, &tmp.path().join("journal").join("LOCK"));
            assert_eq!(pid, &std::process::id().to_string());
        }
        other => panic!("unexpected {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("LOCK") && text.contains(&std::process::id().to_string()),
        "{text}"
    );
    j.close().await.unwrap();
    let (j, _) = Journal::open(opts(tmp.path())).expect("lock released on close");
    j.close().await.unwrap();
}

#[tokio::test]
async fn segments_are_released_only_when_every_consumer_acked_past_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(4);
    let mut o = opts(tmp.path());
    o.consumers = vec!["mqtt".into(), "hub".into()];
    let (j, _) = Journal::open(o.clone()).unwrap();
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(j.append(batch(Some(i), "s1", &mut rng)).await.unwrap().id);
    }
    let segments_before = j.stats().segments;
    assert!(segments_before > 3);
    j.ack("mqtt", ids[150]).unwrap();
    j.sync_cursors().await.unwrap();
    assert!(
        j.stats().segments >= segments_before,
        "one consumer's ack releases nothing"
    );
    assert_eq!(
        j.read_after(0, 1, None).unwrap()[0].id,
        ids[0],
        "hub has not acked"
    );
    j.ack("hub", ids[120]).unwrap();
    j.sync_cursors().await.unwrap();
    let first_left = j.read_after(0, 1, None).unwrap()[0].id;
    assert!(
        first_left > ids[0] && first_left <= ids[121],
        "released up to hub's cursor: {first_left}"
    );
    assert!(j.stats().segments < segments_before);
    assert_eq!(j.cursor("mqtt"), ids[150]);
    j.close().await.unwrap();
    let (j, _) = Journal::open(o).unwrap();
    assert_eq!(j.cursor("mqtt"), ids[150]);
    assert_eq!(j.cursor("hub"), ids[120]);
    assert_eq!(j.cursor("court"), 0);
    assert!(j.ack("bad/name", 1).is_err());
    j.close().await.unwrap();
}

#[tokio::test]
async fn ids_keep_increasing_when_every_segment_was_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(5);
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    let mut last = 0;
    // Enough batches for several segments, however well they compress.
    for i in 0..1000 {
        last = j.append(batch(Some(i), "s1", &mut rng)).await.unwrap().id;
        if j.stats().segments >= 3 {
            break;
        }
    }
    j.close().await.unwrap();
    let dir = tmp.path().join("journal");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut deleted = 0;
    let mut segs: Vec<_> = names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    // Every segment but the newest: the high-water mark (written at each roll) must carry ids.
    for p in &segs[..segs.len() - 1] {
        std::fs::remove_file(p).unwrap();
        deleted += 1;
    }
    assert!(deleted > 0);
    let newest_first: u64 = segs
        .last()
        .unwrap()
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    std::fs::remove_file(segs.last().unwrap()).unwrap();
    let (j, report) = Journal::open(opts(tmp.path())).unwrap();
    assert!(
        report.next_id >= newest_first,
        "{} < {newest_first}",
        report.next_id
    );
    let a = j.append(batch(Some(0), "s9", &mut rng)).await.unwrap();
    assert!(
        a.id >= newest_first && a.id > 1,
        "id {} after deleting all (last was {last})",
        a.id
    );
    j.close().await.unwrap();
}

#[tokio::test]
async fn refuse_policy_fails_appends_with_full_and_counts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(6);
    let mut o = opts(tmp.path());
    o.max_bytes = 2 * o.segment_bytes;
    o.when_full = WhenFull::Refuse;
    let (j, _) = Journal::open(o).unwrap();
    let mut pressure = j.pressure();
    let mut refused = None;
    for i in 0..1000 {
        match j.append(batch(Some(i), "s1", &mut rng)).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(refused, Some(AppendError::Full { .. })),
        "{refused:?}"
    );
    let st = j.stats();
    assert!(st.full && st.refused_appends >= 1 && st.bytes <= st.max_bytes);
    pressure.changed().await.unwrap();
    assert!(pressure.borrow().full);
    let refused = j.stats().refused_appends;
    j.close().await.unwrap();
    let mut out = Vec::new();
    tools::stats(&tmp.path().join("journal"), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!("full true, refused appends {refused},")),
        "{text}"
    );
}

#[tokio::test]
async fn drop_oldest_raw_drops_batches_but_keeps_swings_summaries_and_events() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut o = opts(tmp.path());
    o.max_bytes = 4 * o.segment_bytes;
    let (j, _) = Journal::open(o.clone()).unwrap();
    let mut kept = Vec::new();
    for i in 0..400u64 {
        if i % 10 == 0 {
            kept.push(
                j.append(doc(
                    RecordKind::Summary,
                    &format!("{{\"type\":\"summary\",\"i\":{i}}}"),
                ))
                .await
                .unwrap()
                .id,
            );
        } else {
            j.append(batch(Some(i), "s1", &mut rng))
                .await
                .expect("drop_oldest_raw makes room");
        }
    }
    let st = j.stats();
    assert!(st.bytes <= st.max_bytes, "{} > {}", st.bytes, st.max_bytes);
    assert!(st.dropped_records > 0 && st.dropped_bytes > 0);
    let summaries: Vec<u64> = j
        .read_after(0, usize::MAX, Some(&[RecordKind::Summary]))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(summaries, kept, "every summary kept");
    let batches = j
        .read_after(0, usize::MAX, Some(&[RecordKind::Batch]))
        .unwrap();
    assert!(batches.len() < 360 && !batches.is_empty());
    // Dropped seqs leave the idempotence index (bounded by what the journal holds).
    assert_eq!(j.stored_seqs("dev1", "s1").len(), batches.len());
    j.close().await.unwrap();
    let (j, report) = Journal::open(o).unwrap();
    assert_eq!(report.corrupt_records, 0);
    let again: Vec<u64> = j
        .read_after(0, usize::MAX, Some(&[RecordKind::Summary]))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(again, kept);
    j.close().await.unwrap();
}

#[tokio::test]
async fn close_answers_everything_pending_and_later_appends_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(8);
    let mut o = opts(tmp.path());
    o.commit_interval = Duration::from_millis(50);
    let (j, _) = Journal::open(o).unwrap();
    let mut pending = Vec::new();
    for i in 0..20 {
        let j2 = j.clone();
        let b = batch(Some(i), "s1", &mut rng);
        pending.push(tokio::spawn(async move { j2.append(b).await }));
    }
    tokio::task::yield_now().await;
    let other = j.clone();
    j.close().await.unwrap();
    let mut ok = 0;
    for p in pending {
        match p.await.unwrap() {
            Ok(_) => ok += 1,
            Err(AppendError::Closed) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let r = other.append(batch(Some(99), "s1", &mut rng)).await;
    assert_eq!(r, Err(AppendError::Closed));
    assert_eq!(other.read_after(0, 100, None).unwrap().len(), ok);
}

fn compact_record() -> SensorBatch {
    SensorBatch {
        device: "2025001".into(),
        session_id: "s-0017".into(),
        seq: Some(42),
        form: BatchForm::Compact(CompactBatch {
            sensor_id: 4,
            t0: 1732400000123,
            rate_hz: 1000.0,
            channels: 6,
            samples: vec![
                0.02, -0.98, 0.11, 1.5, -0.4, 0.2, 0.1234567, 3.0, -0.0, 1e-7, 65504.0, -2.5,
            ],
        }),
    }
}

fn seed_record() -> SensorBatch {
    SensorBatch {
        device: "2025001".into(),
        session_id: "123".into(),
        seq: None,
        form: BatchForm::Seed(SeedBatch {
            sensor_type: Some("waist".into()),
            timestamp: Some(123456),
            frames: vec![
                SeedFrame {
                    sensor_id: Some(1),
                    timestamp: Some(93015123),
                    acc: [0.01, -0.02, 0.99],
                    gyro: [1.2, -3.4, 0.5],
                    angle: Some([2.1, -0.4, 87.0]),
                },
                SeedFrame {
                    sensor_id: Some(4),
                    timestamp: Some(93015133),
                    acc: [0.3, 0.0, -1.0],
                    gyro: [100.25, 0.0, -7.5],
                    angle: None,
                },
            ],
        }),
    }
}

#[tokio::test]
async fn export_prints_the_spec_format_with_values_exactly_as_received() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    j.append(RecordBody::Batch(compact_record())).await.unwrap();
    j.append(RecordBody::Batch(seed_record())).await.unwrap();
    j.append(RecordBody::Swing(Document {
        device: Some("2025001".into()),
        session_id: Some("s-0017".into()),
        json: r#"{"type":"swing","speed_kmh":212.5}"#.into(),
    }))
    .await
    .unwrap();
    // The tools run while the daemon holds the journal open.
    let dir = tmp.path().join("journal");
    let mut out = Vec::new();
    let n = tools::export(
        &dir,
        &ExportFilter::default(),
        ExportFormat::Jsonl,
        &mut out,
    )
    .unwrap();
    assert_eq!((n.records, n.undecodable), (3, 0));
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        r#"{"id":1,"kind":"batch","device":"2025001","session_id":"s-0017","seq":42,"sensor_id":4,"t0":1732400000123,"rate_hz":1000.0,"samples":[[0.02,-0.98,0.11,1.5,-0.4,0.2],[0.1234567,3.0,-0.0,1e-7,65504.0,-2.5]]}"#
    );
    assert_eq!(
        lines[1],
        r#"{"id":2,"kind":"batch","device":"2025001","session_id":"123","seq":0,"sensor_type":"waist","data":[{"acc":[0.01,-0.02,0.99],"gyro":[1.2,-3.4,0.5],"angle":[2.1,-0.4,87.0],"sensor_id":1,"timestamp":93015123},{"acc":[0.3,0.0,-1.0],"gyro":[100.25,0.0,-7.5],"sensor_id":4,"timestamp":93015133}],"timestamp":123456}"#
    );
    assert_eq!(
        lines[2],
        r#"{"id":3,"kind":"swing","type":"swing","speed_kmh":212.5}"#
    );
    // Values parse back to the identical f32 bits.
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let BatchForm::Compact(c) = compact_record().form else {
        unreachable!()
    };
    let parsed: Vec<u32> = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| (x.as_f64().unwrap() as f32).to_bits())
        })
        .collect();
    assert_eq!(
        parsed,
        c.samples.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );

    let mut out = Vec::new();
    let filter = ExportFilter {
        device: None,
        session: Some("123".into()),
    };
    tools::export(&dir, &filter, ExportFormat::Csv, &mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], tools::CSV_HEADER);
    assert_eq!(
        rows[1],
        "2,2025001,123,0,seed,0,1,93015123,,0.01,-0.02,0.99,1.2,-3.4,0.5,2.1,-0.4,87.0"
    );
    assert_eq!(rows.len(), 3);

    let mut out = Vec::new();
    tools::stats(&dir, &mut out).unwrap();
    let stats = String::from_utf8(out).unwrap();
    assert!(
        stats.contains("records: 3 (batch 2, swing 1, summary 0, event 0)"),
        "{stats}"
    );
    j.close().await.unwrap();
}

#[tokio::test]
async fn gateway_numbering_continues_after_the_session_was_released_and_the_daemon_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(10);
    let mut o = opts(tmp.path());
    o.consumers = vec!["mqtt".into()];
    let (j, _) = Journal::open(o.clone()).unwrap();
    for want in 0..5 {
        let b = RecordBody::Batch(seed_batch(
            &mut rng,
            "v33",
            "123",
            93015123,
            30,
            SeedStyle::Fused,
        ));
        assert_eq!(j.append(b).await.unwrap().seq, Some(want));
    }
    // Other traffic rolls segments so the session's records all end up in sealed segments.
    for i in 0..100 {
        j.append(batch(Some(i), "other", &mut rng)).await.unwrap();
    }
    j.ack("mqtt", j.durable_id()).unwrap();
    j.sync_cursors().await.unwrap();
    assert!(j.stored_seqs("v33", "123").is_empty(), "released");
    j.close().await.unwrap();
    let (j, _) = Journal::open(o).unwrap();
    let b = RecordBody::Batch(seed_batch(
        &mut rng,
        "v33",
        "123",
        93016123,
        30,
        SeedStyle::Fused,
    ));
    assert_eq!(
        j.append(b).await.unwrap().seq,
        Some(5),
        "not numbered from 0 again"
    );
    j.close().await.unwrap();
}

#[test]
fn options_for_a_small_cap_pick_a_segment_size_that_fits() {
    let o = JournalOptions::new("/x").with_max_bytes(64 << 20);
    assert_eq!(o.segment_bytes, 4 << 20);
    let mut bad = JournalOptions::new(std::env::temp_dir().join("sg-journal-bad-opts"));
    bad.max_bytes = bad.segment_bytes;
    match Journal::open(bad) {
        Err(JournalError::InvalidOption { option, .. }) => assert_eq!(option, "max_bytes"),
        other => panic!("expected an option error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_records_reach_the_writer_in_submission_order() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(opts(dir.path())).unwrap();
    let mut rng = SmallRng::seed_from_u64(9);
    // Submitted one after another from one task, awaited concurrently from others.
    let pending: Vec<_> = (0..200)
        .map(|_| j.submit(batch(None, "pipelined", &mut rng)).expect("room"))
        .collect();
    let waits: Vec<_> = pending.into_iter().map(tokio::spawn).collect();
    let mut answers = Vec::new();
    for w in waits {
        answers.push(w.await.unwrap().expect("durable"));
    }
    let seqs: Vec<u64> = answers.iter().map(|a| a.seq.unwrap()).collect();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    assert!(answers.windows(2).all(|w| w[0].id < w[1].id));
    j.close().await.unwrap();
}

#[tokio::test]
async fn segment_ranges_cover_every_id_and_read_range_stops_at_its_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(8);
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    for i in 0..200 {
        j.append(batch(Some(i), "s1", &mut rng)).await.unwrap();
        if j.stats().segments >= 4 {
            break;
        }
    }
    let ranges = j.segment_ranges();
    assert!(ranges.len() >= 4, "{ranges:?}");
    // Oldest first, contiguous, ending at the last durable id.
    assert_eq!(ranges[0].0, 1);
    for pair in ranges.windows(2) {
        assert_eq!(pair[0].1 + 1, pair[1].0, "{ranges:?}");
    }
    assert_eq!(ranges.last().unwrap().1, j.durable_id());
    let (first, last) = ranges[1];
    let ids: Vec<u64> = j
        .read_range(first - 1, last, usize::MAX, None)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, (first..=last).collect::<Vec<_>>());
    assert!(j.read_range(last, last, 10, None).unwrap().is_empty());
}

#[tokio::test]
async fn enqueue_waits_for_room_where_submit_is_busy_and_keeps_the_order() {
    let sim = shuttlegate::journal::SimFs::new();
    // Slow commits, so the places in flight fill up.
    sim.set_sync_latency(Duration::from_millis(300));
    let mut o = opts(std::path::Path::new("/sim"));
    o.segment_bytes = 16 << 20;
    let (j, _) = Journal::open_with_fs(o, std::sync::Arc::new(sim)).unwrap();
    let mut submitted = Vec::new();
    let busy = loop {
        match j.submit(doc(RecordKind::Event, r#"{"n":1}"#)) {
            Ok(durable) => submitted.push(durable),
            Err(e) => break e,
        }
    };
    assert!(matches!(busy, AppendError::Busy), "{busy:?}");
    let waiting = j.clone();
    let enqueued = waiting.enqueue(doc(RecordKind::Event, r#"{"n":2}"#));
    tokio::pin!(enqueued);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut enqueued)
            .await
            .is_err(),
        "no room yet: it waits"
    );
    let last = enqueued.await.unwrap().await.unwrap().id;
    let mut newest_before = 0;
    for durable in submitted {
        newest_before = newest_before.max(durable.await.unwrap().id);
    }
    assert!(last > newest_before, "{last} after {newest_before}");
    j.close().await.unwrap();
}

fn session_doc(kind: RecordKind, device: &str, session: &str, n: usize) -> RecordBody {
    let d = Document {
        device: Some(device.into()),
        session_id: Some(session.into()),
        json: format!(r#"{{"type":"x","n":{n},"pad":"{}"}}"#, "p".repeat(n % 97)),
    };
    match kind {
        RecordKind::Swing => RecordBody::Swing(d),
        RecordKind::Summary => RecordBody::Summary(d),
        _ => RecordBody::Event(d),
    }
}

/// Every page of `read_session`, `max` at a time, from the start.
fn session_pages(
    j: &Journal,
    device: &str,
    session: &str,
    kinds: Option<&[RecordKind]>,
    max: usize,
) -> Vec<u64> {
    let mut ids = Vec::new();
    loop {
        let after = ids.last().copied().unwrap_or(0);
        let page = j.read_session(device, session, after, max, kinds).unwrap();
        assert!(page.len() <= max);
        if page.is_empty() {
            return ids;
        }
        ids.extend(page.iter().map(|r| r.id));
    }
}

#[tokio::test]
async fn read_session_returns_exactly_that_sessions_records_of_the_asked_kinds_in_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(11);
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    // Three sessions (two share a session id on different devices), interleaved; the third
    // starts only after several segments, so the early ones do not hold it.
    let sessions = [("dev1", "s1"), ("dev2", "s1"), ("dev1", "late")];
    for i in 0..240 {
        for (k, &(device, session)) in sessions.iter().enumerate() {
            if session == "late" && i < 120 {
                continue;
            }
            let body = match (i + k) % 4 {
                0 | 1 => RecordBody::Batch(compact_batch(
                    &mut rng,
                    device,
                    session,
                    Some(i as u64),
                    1_732_400_000_000,
                    20,
                    Motion::Swing,
                )),
                2 => session_doc(RecordKind::Swing, device, session, i),
                _ if i % 40 == 3 => session_doc(RecordKind::Summary, device, session, i),
                _ => session_doc(RecordKind::Event, device, session, i),
            };
            j.append(body).await.unwrap();
        }
    }
    let segments = j.segment_ranges();
    assert!(segments.len() > 6, "{segments:?}");
    let every = all(&j);
    let expected = |device: &str, session: &str, kinds: Option<&[RecordKind]>| -> Vec<u64> {
        every
            .iter()
            .filter(|r| r.device.as_deref() == Some(device))
            .filter(|r| r.session_id.as_deref() == Some(session))
            .filter(|r| kinds.is_none_or(|k| k.contains(&r.kind)))
            .map(|r| r.id)
            .collect()
    };
    let swings_and_summary: &[RecordKind] = &[RecordKind::Swing, RecordKind::Summary];
    let check = |j: &Journal| {
        for &(device, session) in &sessions {
            for kinds in [
                None,
                Some(swings_and_summary),
                Some(&[RecordKind::Batch][..]),
            ] {
                let want = expected(device, session, kinds);
                assert!(!want.is_empty());
                for max in [1, 7, usize::MAX] {
                    assert_eq!(
                        session_pages(j, device, session, kinds, max),
                        want,
                        "{device}/{session} {kinds:?} by {max}"
                    );
                }
            }
        }
        assert!(
            j.read_session("dev3", "s1", 0, 10, None)
                .unwrap()
                .is_empty()
        );
        assert!(
            j.read_session("dev1", "s9", 0, 10, None)
                .unwrap()
                .is_empty()
        );
        let records = j
            .read_session("dev1", "s1", 0, usize::MAX, Some(swings_and_summary))
            .unwrap();
        assert!(records.iter().all(|r| r.decode().is_ok()));
    };
    check(&j);

    // Segments that do not hold the session are not opened: corrupt one record in the first
    // segment (which "late" does not reach); reading "late" skips nothing, reading all does.
    let first = tmp
        .path()
        .join("journal")
        .join(format!("{:020}.seg", segments[0].0));
    let mut bytes = std::fs::read(&first).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    let late = j.read_session("dev1", "late", 0, usize::MAX, None).unwrap();
    assert_eq!(late.len(), expected("dev1", "late", None).len());
    assert_eq!(j.stats().corrupt_skipped_on_read, 0);
    j.read_after(0, usize::MAX, None).unwrap();
    assert!(j.stats().corrupt_skipped_on_read > 0);
    std::fs::write(&first, {
        bytes[at] ^= 0xff;
        &bytes
    })
    .unwrap();
    j.close().await.unwrap();

    // After a restart the lists come from the sidecars; sidecars of an earlier build (no
    // session list) make those segments be read, with the same answers.
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    check(&j);
    j.close().await.unwrap();
    for entry in std::fs::read_dir(tmp.path().join("journal")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "idx") {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            assert!(v.as_object_mut().unwrap().remove("sessions").is_some());
            std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        }
    }
    let (j, report) = Journal::open(opts(tmp.path())).unwrap();
    assert_eq!(report.rebuilt_sidecars, 0, "old sidecars are still trusted");
    check(&j);
    j.close().await.unwrap();
}

#[tokio::test]
async fn stats_give_each_consumers_cursor_and_backlog_without_reading_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(12);
    let mut o = opts(tmp.path());
    o.consumers = vec!["hub".into(), "mqtt".into()];
    let (j, _) = Journal::open(o).unwrap();
    for i in 0..120 {
        j.append(batch(Some(i), "s1", &mut rng)).await.unwrap();
        j.append(doc(RecordKind::Swing, r#"{"type":"swing"}"#))
            .await
            .unwrap();
    }
    let ranges = j.segment_ranges();
    assert!(ranges.len() > 3, "{ranges:?}");
    let st = j.stats();
    assert_eq!(st.records, 240);
    assert_eq!(st.oldest_id, Some(1));
    assert!(st.oldest_ts_ms.is_some());
    assert_eq!(st.newest_id, j.durable_id());
    assert!(st.bytes <= st.max_bytes && st.segments >= ranges.len());
    let names: Vec<&str> = st.consumers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["hub", "mqtt"]);
    for c in &st.consumers {
        assert_eq!((c.cursor, c.backlog_records), (0, 240));
        assert!(c.backlog_bytes > st.bytes - 64 && c.backlog_bytes <= st.bytes);
    }

    // hub acks to the end of the second segment, mqtt a few records into the third.
    let (_, second_last) = ranges[1];
    let (third_first, _) = ranges[2];
    j.ack("hub", second_last).unwrap();
    j.ack("mqtt", third_first + 2).unwrap();
    let st = j.stats();
    let hub = &st.consumers[0];
    let mqtt = &st.consumers[1];
    assert_eq!(hub.cursor, second_last);
    assert_eq!(hub.backlog_records, st.newest_id - second_last);
    assert_eq!(mqtt.backlog_records, st.newest_id - third_first - 2);
    // Both wait on the third segment onwards: the same bytes held on disk.
    assert_eq!(mqtt.backlog_bytes, hub.backlog_bytes);
    assert!(hub.backlog_bytes > 0);
    assert_eq!(
        st.cursors,
        vec![
            ("hub".to_owned(), second_last),
            ("mqtt".to_owned(), third_first + 2)
        ]
    );

    j.ack("hub", st.newest_id).unwrap();
    let hub = j.stats().consumers[0].clone();
    assert_eq!((hub.backlog_records, hub.backlog_bytes), (0, 0));
    j.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_async_opens_off_the_runtime_and_a_handle_dropped_on_a_worker_releases_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let (j, report) = Journal::open_async(opts(tmp.path())).await.unwrap();
    assert_eq!(report.records, 0);
    let id = j
        .append(doc(RecordKind::Event, r#"{"n":1}"#))
        .await
        .unwrap()
        .id;
    assert!(matches!(
        Journal::open_async(opts(tmp.path())).await,
        Err(JournalError::Locked { .. })
    ));
    // The last handle dropped inside a task (on a runtime worker): the lock is released when
    // the drop returns, as for synchronous users.
    tokio::spawn(async move { drop(j) }).await.unwrap();
    let (j, report) = Journal::open_async(opts(tmp.path())).await.unwrap();
    assert_eq!(report.records, 1);
    assert_eq!(all(&j)[0].id, id);
    j.close().await.unwrap();
}

#[test]
fn a_journal_dropped_on_a_current_thread_runtime_releases_the_lock_before_the_drop_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (j, _) = Journal::open_async(opts(tmp.path())).await.unwrap();
        j.append(doc(RecordKind::Event, r#"{"n":1}"#))
            .await
            .unwrap();
        drop(j);
        let (j, report) = Journal::open(opts(tmp.path())).unwrap();
        assert_eq!(report.records, 1);
        drop(j);
    });
}
