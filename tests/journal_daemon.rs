//! Issue 12: a journal that never stays broken, seen by a device and by systemd.
//!
//! In process (`daemon::start_on` with the filesystem seam, `FaultyFs` over the real disk): a
//! write failure answers devices `success:false` and holds court changes until it clears, then
//! the device's resend is acknowledged; a failure past `failure_grace`, or a panic in the writer
//! thread, stops the daemon with the reason. The real binary (no seam in it): its descriptor
//! limit lowered with `prlimit` so that a segment roll meets a real EMFILE — a passing limit is
//! ridden out, a lasting one makes the process exit non-zero.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use shuttlegate::daemon::{Running, start_on};
use shuttlegate::journal::{Fault, FaultyFs, FsOp, StdFs};

/// Generous: the machine is shared and loaded; waits end as soon as their condition holds.
const DEADLINE: Duration = Duration::from_secs(30);

const DEVICES: &[(&str, Option<&str>)] = &[("racket-01", Some("tok-racket-01"))];

fn compact(session: &str, seq: u64, rows: usize) -> Value {
    let samples: Vec<Value> = (0..rows)
        .map(|i| json!([0.02, -0.98, 0.11, 1.5 + i as f64, -0.4, 0.2]))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": session, "seq": seq, "sensor_id": 4,
           "t0": 1732400000123i64 + seq as i64 * 100, "rate_hz": 1000, "samples": samples})
}

/// ~10 KB journaled per batch (300 six-channel samples that do not compress).
fn incompressible(session: &str, seq: u64) -> Value {
    let mut state = seq.wrapping_mul(6364136223846793005) | 1;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0
    };
    let samples: Vec<Value> = (0..300)
        .map(|_| json!([next(), next(), next(), next(), next(), next()]))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": session, "seq": seq, "sensor_id": 4,
           "t0": 1732400000123i64 + seq as i64 * 100, "rate_hz": 1000, "samples": samples})
}

async fn start_in_process(dir: &std::path::Path, extra: &str) -> (Running, FaultyFs) {
    let text = config(dir, DEVICES, extra);
    let settings =
        shuttlegate::config::load_str(&dir.join("court.toml"), &text).expect("valid config");
    let fs = FaultyFs::new(Arc::new(StdFs));
    let running = start_on(
        &settings,
        shuttlegate::court::system_clock(),
        Arc::new(fs.clone()),
    )
    .await
    .expect("starts");
    (running, fs)
}

async fn device(running: &Running) -> Ws {
    let url = format!(
        "ws://{}/ws/esp32/racket-01/?token=tok-racket-01",
        running.http_addr
    );
    let mut ws = connect(&url).await;
    recv_type(&mut ws, "connection_established").await;
    ws
}

async fn stored(ws: &mut Ws, batch: &Value) -> Value {
    send(ws, batch).await;
    recv_type(ws, "batch_sensor_data_response").await
}

/// The device's way: send again until acknowledged (or the deadline passes).
async fn resend_until_acked(ws: &mut Ws, batch: &Value) -> Value {
    let started = Instant::now();
    loop {
        let reply = stored(ws, batch).await;
        if reply["success"] == true {
            return reply;
        }
        assert!(started.elapsed() < DEADLINE, "not acked in time: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_stop(running: &Running) {
    tokio::time::timeout(DEADLINE, running.shutdown.token.cancelled())
        .await
        .expect("the daemon stops itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failure_answers_success_false_and_holds_court_changes_until_it_clears() {
    let dir = tempfile::tempdir().unwrap();
    let (running, fs) = start_in_process(dir.path(), "").await;
    let mut ws = device(&running).await;
    let ok = stored(&mut ws, &compact("s1", 0, 20)).await;
    assert_eq!(ok["success"], true, "{ok}");

    fs.fail(FsOp::Write, Fault::Enospc);
    let refused = stored(&mut ws, &compact("s1", 1, 20)).await;
    assert_eq!(refused["success"], false, "{refused}");
    assert_eq!(refused["durable"], false, "{refused}");
    let why = refused["message"].as_str().unwrap_or_default();
    assert!(
        why.contains("No space left on device") && why.contains("keep this batch"),
        "{why}"
    );
    // An operator's change meanwhile: delayed (it cannot be journaled yet), not lost.
    let court = running.court.clone();
    let end = tokio::spawn(async move { court.end_session("racket-01").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!end.is_finished(), "held while the journal cannot write");
    assert!(running.supervisor.fatal().is_none(), "the daemon runs on");

    fs.clear();
    let acked = resend_until_acked(&mut ws, &compact("s1", 1, 20)).await;
    assert_eq!(acked["durable"], true);
    let ended = tokio::time::timeout(DEADLINE, end).await.expect("answered");
    assert_eq!(ended.unwrap().expect("journaled"), "s1");
    drop(ws);
    running.stop().await.expect("stops cleanly");

    let records = export(dir.path(), &[]);
    let batches: Vec<u64> = records
        .iter()
        .filter(|r| r["kind"] == "batch")
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [0, 1], "each batch once");
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "event" && r.to_string().contains("stop_collection")),
        "the held court change is journaled: {records:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failure_that_outlasts_the_grace_stops_the_daemon_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let (running, fs) = start_in_process(dir.path(), "[journal]\nfailure_grace = \"1s\"\n").await;
    let mut ws = device(&running).await;
    fs.fail(FsOp::Write, Fault::Eio);
    let refused = stored(&mut ws, &compact("s1", 0, 20)).await;
    assert_eq!(refused["success"], false, "{refused}");
    wait_for_stop(&running).await;
    let fatal = running.supervisor.fatal().expect("a fatal stop");
    assert_eq!(fatal.task, "journal");
    assert!(
        fatal.reason.contains("Input/output error")
            && fatal.reason.contains("journal.failure_grace"),
        "{fatal}"
    );
    drop(ws);
    let _ = running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_journal_writer_stops_the_daemon_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let (running, fs) = start_in_process(dir.path(), "").await;
    let mut ws = device(&running).await;
    fs.fail(FsOp::Write, Fault::Panic);
    let refused = stored(&mut ws, &compact("s1", 0, 20)).await;
    assert_eq!(refused["success"], false, "{refused}");
    wait_for_stop(&running).await;
    let fatal = running.supervisor.fatal().expect("a fatal stop");
    assert_eq!(fatal.task, "journal");
    assert!(
        fatal.reason.contains("writer thread panicked") && fatal.reason.contains("injected"),
        "{fatal}"
    );
    drop(ws);
    let _ = running.stop().await;
}

// ---- the real binary, with a real EMFILE ----

/// Sets the process's soft descriptor limit (util-linux `prlimit`).
fn set_nofile(pid: u32, soft: usize) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
}

/// Descriptors the process holds now.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc")
        .count()
}

/// Sends ~10 KB batches until the journal refuses one (a 1 MiB segment needs a roll within
/// ~100); returns the refused seq and the reply.
async fn fill_until_refused(ws: &mut Ws) -> (u64, Value) {
    for seq in 0..500 {
        let reply = stored(ws, &incompressible("flood", seq)).await;
        if reply["success"] == false {
            return (seq, reply);
        }
    }
    panic!("500 batches of ~10 KB and no segment roll");
}

const SMALL_SEGMENTS: &str = "[journal]\nmax_bytes = \"64MiB\"\nsegment_bytes = \"1MiB\"\n";

#[tokio::test]
async fn the_real_daemon_rides_out_a_passing_emfile_on_a_segment_roll() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), DEVICES, SMALL_SEGMENTS));
    let pid = gw.child.id();
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    recv_type(&mut ws, "connection_established").await;
    set_nofile(pid, open_fds(pid));
    let (seq, refused) = fill_until_refused(&mut ws).await;
    let why = refused["message"].as_str().unwrap_or_default();
    assert!(why.contains("Too many open files"), "{refused}");

    set_nofile(pid, 1024);
    resend_until_acked(&mut ws, &incompressible("flood", seq)).await;
    let next = stored(&mut ws, &incompressible("flood", seq + 1)).await;
    assert_eq!(next["success"], true, "{next}");
    gw.wait_log("appends are written again", DEADLINE);
    drop(ws);
    assert!(gw.terminate().success(), "a clean exit after recovering");
    let seqs: Vec<u64> = export(dir.path(), &["--session", "flood"])
        .iter()
        .filter(|r| r["kind"] == "batch")
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (0..=seq + 1).collect::<Vec<_>>(),
        "each batch once, none lost"
    );
}

#[tokio::test]
async fn the_real_daemon_exits_non_zero_when_emfile_outlasts_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{SMALL_SEGMENTS}failure_grace = \"2s\"\n");
    let mut gw = Gateway::start(dir.path(), &config(dir.path(), DEVICES, &extra));
    let pid = gw.child.id();
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    recv_type(&mut ws, "connection_established").await;
    set_nofile(pid, open_fds(pid));
    let (_, refused) = fill_until_refused(&mut ws).await;
    assert_eq!(refused["success"], false);

    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = gw.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running {DEADLINE:?} later"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        !status.success(),
        "exits non-zero so systemd restarts it: {status}"
    );
    let line = gw.wait_log("task `journal` died", DEADLINE);
    assert!(line.contains("Too many open files"), "{line}");
}
