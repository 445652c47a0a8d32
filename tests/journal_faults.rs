//! Issue 12: a journal that never stays broken. Real files in a temp dir, with faults injected
//! through the filesystem seam (`FaultyFs`): a failed segment roll or write is retried and the
//! journal writes again once the fault clears (no id skipped or repeated, nothing acknowledged
//! lost); a failed fsync, a fault that outlasts the grace, or a panic in the writer stop it and
//! say why on `Journal::health` (the daemon exits on that). Also the seq arithmetic at the top
//! of u64.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shuttlegate::journal::{
    AppendError, Document, Fault, FaultyFs, FsOp, Journal, JournalHealth, JournalOptions,
    RecordBody, RecordKind, StdFs, StoredRecord,
};
use shuttlegate_core::journal::synth::{Motion, compact_batch};

/// Generous: the machine is shared and loaded; every wait ends as soon as its condition holds.
const DEADLINE: Duration = Duration::from_secs(30);

fn opts(dir: &std::path::Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir.join("journal"));
    o.commit_interval = Duration::from_millis(1);
    o.segment_bytes = 8 << 10;
    o.max_bytes = 64 << 20;
    o
}

fn open(o: JournalOptions) -> (Journal, FaultyFs) {
    let fs = FaultyFs::new(Arc::new(StdFs));
    let (j, _) = Journal::open_with_fs(o, Arc::new(fs.clone())).expect("open");
    (j, fs)
}

fn batch(seq: u64, rng: &mut SmallRng) -> RecordBody {
    RecordBody::Batch(compact_batch(
        rng,
        "dev1",
        "s1",
        Some(seq),
        1_732_400_000_000,
        50,
        Motion::Swing,
    ))
}

fn event(n: u32) -> RecordBody {
    RecordBody::Event(Document {
        device: Some("dev1".into()),
        session_id: Some("s1".into()),
        json: format!("{{\"event\":{n}}}"),
    })
}

/// Appends batches 0, 1, … until one is refused; returns the ids stored and the refused seq with
/// its error.
async fn append_until_refused(j: &Journal, rng: &mut SmallRng) -> (Vec<u64>, u64, AppendError) {
    let mut ids = Vec::new();
    for seq in 0..2000 {
        match j.append(batch(seq, rng)).await {
            Ok(a) => ids.push(a.id),
            Err(e) => return (ids, seq, e),
        }
    }
    panic!("2000 batches and no segment roll: the fault was never reached");
}

/// A device's way: send the batch again until it is stored (or the deadline passes).
async fn resend_until_stored(j: &Journal, body: RecordBody) -> u64 {
    let started = Instant::now();
    loop {
        match j.append(body.clone()).await {
            Ok(a) => return a.id,
            Err(AppendError::Unavailable(_)) if started.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("not stored within {DEADLINE:?}: {e}"),
        }
    }
}

async fn wait_for_health(j: &Journal, ok: impl Fn(&JournalHealth) -> bool) -> JournalHealth {
    let mut health = j.health();
    let found = tokio::time::timeout(DEADLINE, async {
        health.wait_for(|h| ok(h)).await.map(|h| h.clone())
    })
    .await;
    match found {
        Ok(Ok(h)) => h,
        Ok(Err(_)) => panic!("the writer ended; health {:?}", *j.health().borrow()),
        Err(_) => panic!("health still {:?} after {DEADLINE:?}", *j.health().borrow()),
    }
}

fn all(j: &Journal) -> Vec<StoredRecord> {
    j.read_after(0, usize::MAX, None).expect("read")
}

/// Every id from 1 on, once each, in order; every batch seq once.
fn assert_no_gap_or_duplicate(records: &[StoredRecord]) {
    let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    let expected: Vec<u64> = (1..=records.len() as u64).collect();
    assert_eq!(ids, expected, "ids are 1..=n, no gap, no duplicate");
    let mut seqs: Vec<u64> = records.iter().filter_map(|r| r.seq).collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "each seq stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_roll_failing_with_emfile_is_retried_and_appends_resume_with_no_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    let (j, fs) = open(opts(tmp.path()));
    fs.fail(FsOp::Create, Fault::Emfile);
    let (acked, refused_seq, e) = append_until_refused(&j, &mut rng).await;
    assert!(fs.struck() > 0, "the roll met the fault");
    let why = match &e {
        AppendError::Unavailable(why) => why.clone(),
        other => panic!("refused as unavailable, not {other:?}"),
    };
    assert!(
        why.contains("starting a new segment") && why.contains("Too many open files"),
        "{why}"
    );
    assert!(matches!(
        wait_for_health(&j, |h| !matches!(h, JournalHealth::Writing)).await,
        JournalHealth::Retrying { .. }
    ));
    // Still failing: still refused, nothing written, however often the device resends.
    for _ in 0..3 {
        let again = j.append(batch(refused_seq, &mut rng)).await;
        assert!(
            matches!(again, Err(AppendError::Unavailable(_))),
            "{again:?}"
        );
    }

    fs.clear();
    let id = resend_until_stored(&j, batch(refused_seq, &mut rng)).await;
    assert_eq!(
        Some(id),
        acked.last().map(|l| l + 1),
        "the next id, none skipped"
    );
    for seq in refused_seq + 1..refused_seq + 20 {
        j.append(batch(seq, &mut rng)).await.expect("writes again");
    }
    wait_for_health(&j, |h| *h == JournalHealth::Writing).await;
    assert!(j.stats().segments >= 2, "the roll happened");
    j.close().await.expect("closes cleanly after recovering");

    let (j, report) = Journal::open(opts(tmp.path())).expect("reopen");
    assert_eq!(report.corrupt_records, 0);
    let records = all(&j);
    assert_eq!(records.len() as u64, refused_seq + 20);
    assert_no_gap_or_duplicate(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_with_enospc_is_cut_back_and_retried_and_nothing_acked_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(2);
    let (j, fs) = open(opts(tmp.path()));
    let mut acked = Vec::new();
    for seq in 0..10 {
        acked.push(j.append(batch(seq, &mut rng)).await.expect("stored").id);
    }
    fs.fail_times(FsOp::Write, Fault::Enospc, 5);
    let mut seq = 10;
    let refused = j.append(batch(seq, &mut rng)).await;
    match &refused {
        Err(AppendError::Unavailable(why)) => {
            assert!(why.contains("No space left on device"), "{why}")
        }
        other => panic!("refused as unavailable, not {other:?}"),
    }
    // The device resends until the card has room again; later batches follow.
    while seq < 30 {
        acked.push(resend_until_stored(&j, batch(seq, &mut rng)).await);
        seq += 1;
    }
    assert_eq!(fs.struck(), 5, "every injected failure was met");
    j.close().await.expect("closes");

    let (j, report) = Journal::open(opts(tmp.path())).expect("reopen");
    assert_eq!(report.torn_bytes, 0, "the failed writes were cut back");
    assert_eq!(report.corrupt_records, 0);
    let records = all(&j);
    assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), acked);
    assert_no_gap_or_duplicate(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_records_wait_for_the_journal_while_device_batches_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(3);
    let (j, fs) = open(opts(tmp.path()));
    j.append(batch(0, &mut rng)).await.expect("stored");
    fs.fail(FsOp::Write, Fault::Eio);
    let refused = j.append(batch(1, &mut rng)).await;
    assert!(
        matches!(refused, Err(AppendError::Unavailable(_))),
        "{refused:?}"
    );
    // A court event while the journal cannot write: held, in order, not refused.
    let events: Vec<_> = (0..3)
        .map(|n| {
            let j = j.clone();
            tokio::spawn(async move { j.append(event(n)).await })
        })
        .collect();
    // Not answered while the fault lasts (it cannot be: nothing can be written).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        events.iter().all(|e| !e.is_finished()),
        "held, not answered"
    );
    let refused = j.append(batch(1, &mut rng)).await;
    assert!(
        matches!(refused, Err(AppendError::Unavailable(_))),
        "{refused:?}"
    );

    fs.clear();
    let mut event_ids = Vec::new();
    for e in events {
        let stored = tokio::time::timeout(DEADLINE, e).await.expect("answered");
        event_ids.push(stored.unwrap().expect("stored once the journal writes").id);
    }
    let batch_id = resend_until_stored(&j, batch(1, &mut rng)).await;
    assert!(
        event_ids.iter().all(|&id| id < batch_id),
        "held events go first"
    );
    let records = all(&j);
    assert_eq!(
        records
            .iter()
            .filter(|r| r.kind == RecordKind::Event)
            .count(),
        3,
        "each event stored once"
    );
    assert_no_gap_or_duplicate(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_journal_for_good_and_recovery_keeps_what_was_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(4);
    let (j, fs) = open(opts(tmp.path()));
    for seq in 0..5 {
        j.append(batch(seq, &mut rng)).await.expect("stored");
    }
    fs.fail_times(FsOp::Sync, Fault::Eio, 1);
    let failed = j.append(batch(5, &mut rng)).await;
    assert!(
        matches!(&failed, Err(AppendError::Io(why)) if why.contains("fsync")),
        "{failed:?}"
    );
    let JournalHealth::Stopped(why) = wait_for_health(&j, |h| *h != JournalHealth::Writing).await
    else {
        panic!("stopped, not retrying: a retried fsync proves nothing");
    };
    assert!(why.contains("fsync of the open segment failed"), "{why}");
    // The fault is gone, the journal stays stopped: only a restart's recovery decides.
    assert_eq!(fs.struck(), 1);
    let later = j.append(batch(5, &mut rng)).await;
    assert!(matches!(later, Err(AppendError::Io(_))), "{later:?}");
    assert!(j.close().await.is_err(), "close reports the failure");

    let (j, _) = Journal::open(opts(tmp.path())).expect("recovery");
    let records = all(&j);
    assert_eq!(
        records.len(),
        5,
        "the five acked batches, not the failed one"
    );
    assert_no_gap_or_duplicate(&records);
    j.append(batch(5, &mut rng))
        .await
        .expect("a restart writes again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_outlasts_the_grace_stops_the_journal_saying_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(5);
    let mut o = opts(tmp.path());
    o.failure_grace = Duration::from_secs(1);
    let (j, fs) = open(o);
    fs.fail(FsOp::Create, Fault::Eio);
    let (_, seq, _) = append_until_refused(&j, &mut rng).await;
    // Nothing more is sent: the writer retries (and gives up) by itself.
    let JournalHealth::Stopped(why) =
        wait_for_health(&j, |h| matches!(h, JournalHealth::Stopped(_))).await
    else {
        unreachable!()
    };
    assert!(
        why.contains("starting a new segment") && why.contains("journal.failure_grace"),
        "{why}"
    );
    fs.clear();
    let later = j.append(batch(seq, &mut rng)).await;
    assert!(matches!(later, Err(AppendError::Io(_))), "{later:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_writer_thread_is_reported_and_every_append_then_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(6);
    let (j, fs) = open(opts(tmp.path()));
    j.append(batch(0, &mut rng)).await.expect("stored");
    fs.fail(FsOp::Write, Fault::Panic);
    let lost = j.append(batch(1, &mut rng)).await;
    assert_eq!(lost, Err(AppendError::Closed));
    let JournalHealth::Stopped(why) =
        wait_for_health(&j, |h| matches!(h, JournalHealth::Stopped(_))).await
    else {
        unreachable!()
    };
    assert!(
        why.contains("the writer thread panicked") && why.contains("injected panic"),
        "{why}"
    );
    assert_eq!(j.append(batch(1, &mut rng)).await, Err(AppendError::Closed));
}

#[tokio::test]
async fn seqs_at_the_top_of_u64_are_stored_and_never_overflow() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let (j, _) = Journal::open(opts(tmp.path())).expect("open");
    let numbered = |seq: Option<u64>, rng: &mut SmallRng| {
        RecordBody::Batch(compact_batch(
            rng,
            "dev1",
            "s1",
            seq,
            1_732_400_000_000,
            10,
            Motion::Swing,
        ))
    };
    let a = j.append(numbered(Some(u64::MAX - 1), &mut rng)).await;
    assert_eq!(a.unwrap().seq, Some(u64::MAX - 1));
    let next = j.append(numbered(None, &mut rng)).await.expect("numbered");
    assert_eq!(next.seq, Some(u64::MAX), "the gateway's next seq");
    let none_left = j.append(numbered(None, &mut rng)).await;
    assert!(
        matches!(&none_left, Err(AppendError::Invalid(why)) if why.contains("every seq")),
        "{none_left:?}"
    );
    let dup = j.append(numbered(Some(u64::MAX), &mut rng)).await.unwrap();
    assert!(dup.duplicate);
    drop(j);
    let (j, _) = Journal::open(opts(tmp.path())).expect("reopen");
    assert_eq!(j.stored_seqs("dev1", "s1"), vec![u64::MAX - 1, u64::MAX]);
}
