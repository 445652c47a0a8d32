//! Issue #12's session and command attacks against the real daemon, over real WebSockets and
//! the admin API: one device opening sessions by the thousand while another streams, a bad
//! admin `session_id`, a snapshot holding a bad entry, and a command id repeated across a
//! restart. What is asserted is what the journal holds (`journal export`) and what each client
//! was answered — outcomes, never speeds.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const FLOOD: &str = "flood-01";
const STEADY: &str = "steady-01";
const CAP: usize = 2;

fn devices() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        (FLOOD, Some("token-flood-01")),
        (STEADY, Some("token-steady-01")),
    ]
}

/// The per-second message limit is raised so that the flood reaches the court (the limiter is
/// its own defence, tested elsewhere); the session limits are the defaults.
const LIMITS: &str = "[limits]\nmessages_per_second = 100000\n";

fn url(gw: &Gateway, device: &str) -> String {
    format!("{}?token=token-{device}", gw.ws_url(device))
}

fn compact(session: &str, seq: u64) -> Value {
    let samples: Vec<Value> = (0..20)
        .map(|i| json!([0.02, -0.98, 0.11, 1.5 + f64::from(i), -0.4, 0.2]))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": session, "seq": seq, "sensor_id": 4,
           "t0": 1732400000123i64 + seq as i64 * 20, "rate_hz": 1000, "samples": samples})
}

/// The court events of an export, in journal order.
fn events(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["kind"] == "event").collect()
}

fn snapshot_count(records: &[Value]) -> usize {
    events(records)
        .into_iter()
        .filter(|e| e["type"] == "snapshot")
        .count()
}

/// The newest snapshot event of an export.
fn last_snapshot(records: &[Value]) -> &Value {
    events(records)
        .into_iter()
        .rev()
        .find(|e| e["type"] == "snapshot")
        .expect("a snapshot is journaled at every start")
}

fn open_sessions_of<'a>(snapshot: &'a Value, device: &str) -> Vec<&'a str> {
    snapshot["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["device"] == device)
        .filter(|s| {
            matches!(
                s["state"].as_str(),
                Some("calibrating" | "collecting" | "stopping")
            )
        })
        .map(|s| s["id"].as_str().expect("id"))
        .collect()
}

/// What the flooding device was answered.
#[derive(Default, Debug)]
struct FloodReplies {
    /// Session ids whose `START_COLLECTION_CONFIRMED` was accepted, in order.
    accepted: Vec<String>,
    rate_limited: usize,
    ghost_answers: usize,
    other: Vec<Value>,
}

/// 3,000 `START_COLLECTION_CONFIRMED` with fresh ids and 1,000 `upload_complete` for sessions
/// that never existed, on one connection, read back concurrently.
async fn flood(gw: &Gateway) -> FloodReplies {
    let ws = connect(&url(gw, FLOOD)).await;
    let (mut sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move {
        let mut replies = FloodReplies::default();
        let mut answered = 0;
        while answered < 4_000 {
            let msg = tokio::time::timeout(Duration::from_secs(60), stream.next())
                .await
                .expect("a reply within 60 s")
                .expect("connection open")
                .expect("no error");
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("JSON");
            match v["type"].as_str() {
                Some("connection_established") => continue,
                Some("status_update_response") => {
                    replies
                        .accepted
                        .push(v["session_id"].as_str().unwrap().to_owned());
                }
                Some("error") if v["code"] == "rate_limited" => {
                    assert!(
                        v["error"]
                            .as_str()
                            .unwrap()
                            .contains("session_starts_per_minute"),
                        "{v}"
                    );
                    replies.rate_limited += 1;
                }
                Some("upload_complete_response") => {
                    assert!(v["message"].as_str().unwrap().contains("no data"), "{v}");
                    assert_eq!(v["missing_seqs"], json!([]));
                    replies.ghost_answers += 1;
                }
                _ => replies.other.push(v),
            }
            answered += 1;
        }
        replies
    });
    for i in 0..3_000 {
        let confirm = json!({"type": "status_update", "status": "START_COLLECTION_CONFIRMED",
                             "session_id": format!("f-{i}")});
        sink.send(Message::text(confirm.to_string()))
            .await
            .expect("send");
        if i % 3 == 0 {
            let ghost = json!({"type": "upload_complete", "session_id": format!("ghost-{i}")});
            sink.send(Message::text(ghost.to_string()))
                .await
                .expect("send");
        }
    }
    let replies = tokio::time::timeout(Duration::from_secs(240), reader)
        .await
        .expect("every flood message answered within 240 s")
        .expect("reader");
    let _ = sink.close().await;
    replies
}

/// The steady device sends `batches` compact batches one at a time; each must be acked durable.
async fn stream_steadily(gw: &Gateway, batches: u64) {
    let mut ws = connect(&url(gw, STEADY)).await;
    recv_type(&mut ws, "connection_established").await;
    for seq in 0..batches {
        send(&mut ws, &compact("steady-s1", seq)).await;
        let ack = recv_type(&mut ws, "batch_sensor_data_response").await;
        assert_eq!(ack["success"], true, "{ack}");
        assert_eq!(ack["durable"], true, "{ack}");
        assert_eq!(ack["seq"], seq, "{ack}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_flood_from_one_device_is_capped_and_leaves_no_ghosts_while_another_streams() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), LIMITS));
    let started = Instant::now();
    let (replies, ()) = tokio::join!(flood(&gw), stream_steadily(&gw, 200));
    let minutes = started.elapsed().as_secs() / 60 + 1;

    assert!(replies.other.is_empty(), "{:?}", replies.other);
    assert_eq!(replies.ghost_answers, 1_000);
    assert_eq!(replies.accepted.len() + replies.rate_limited, 3_000);
    // 10 session starts a minute (the default), however long the flood took.
    assert!(
        replies.accepted.len() as u64 <= 10 * minutes,
        "{} starts admitted in {minutes} started minutes",
        replies.accepted.len()
    );

    // A restart: the court comes back from the journal and journals a snapshot of it.
    assert!(gw.terminate().success());
    let snapshots_before = snapshot_count(&export(dir.path(), &[]));
    let gw = Gateway::start_with(dir.path(), &dir.path().join("court.toml"));
    gw.wait_log("court restored from", Duration::from_secs(30));
    // The restarted court's own snapshot, once it is journaled (not an older one).
    let deadline = Instant::now() + Duration::from_secs(30);
    let records = loop {
        let records = gw.export(&[]);
        if snapshot_count(&records) > snapshots_before {
            break records;
        }
        assert!(Instant::now() < deadline, "no snapshot after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let snapshot = last_snapshot(&records);
    let mut open = open_sessions_of(snapshot, FLOOD);
    open.sort_unstable();
    let mut newest: Vec<&str> = replies
        .accepted
        .iter()
        .rev()
        .take(CAP)
        .map(String::as_str)
        .collect();
    newest.sort_unstable();
    assert_eq!(
        open, newest,
        "the newest {CAP} sessions are open, the rest stopped"
    );
    let snapshot_bytes = snapshot.to_string().len();
    assert!(
        snapshot_bytes < 2_048,
        "snapshot of {snapshot_bytes} bytes: {snapshot}"
    );

    eprintln!(
        "figures: {} of 3000 session starts admitted, {} refused, {} open after the flood, snapshot {snapshot_bytes} bytes, flood answered in {:?}",
        replies.accepted.len(),
        replies.rate_limited,
        open.len(),
        started.elapsed()
    );

    // Ghosts left nothing behind: no session state, no summary.
    let ghostly = |r: &&Value| {
        r["session_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("ghost-"))
    };
    assert_eq!(records.iter().filter(ghostly).count(), 0);
    assert!(
        !records
            .iter()
            .any(|r| r["kind"] == "summary" && r["device"] == FLOOD)
    );
    // Every stop of an oldest session is journaled, and no refused session appears.
    let flood_states: Vec<&Value> = events(&records)
        .into_iter()
        .filter(|e| e["type"] == "session_state" && e["device"] == FLOOD)
        .collect();
    let stopped = flood_states
        .iter()
        .filter(|e| e["state"] == "stopped")
        .count();
    assert_eq!(stopped, replies.accepted.len() - CAP);
    assert!(flood_states.len() <= 2 * replies.accepted.len());

    // The steady device's batches are all stored.
    let steady = gw
        .export(&["--session", "steady-s1"])
        .into_iter()
        .filter(|r| r["kind"] == "batch")
        .count();
    assert_eq!(steady, 200);
}

#[tokio::test]
async fn an_admin_session_id_with_control_characters_is_refused_naming_the_field_and_nothing_is_journaled()
 {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), ""));
    for bad in ["s\u{1b}[2J\n1", "s 1", "=HYPERLINK(\"x\")", &"s".repeat(65)] {
        let (status, body) = gw.admin(
            &format!("/api/devices/{STEADY}/sessions"),
            json!({"session_id": bad}),
        );
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["field"], "session_id", "{body}");
        assert!(
            body["error"].as_str().unwrap().starts_with("`session_id` "),
            "{body}"
        );
    }
    let (status, body) = gw.admin(
        &format!("/api/devices/{STEADY}/commands"),
        json!({"command": "sync", "command_id": "op\u{7}1"}),
    );
    assert_eq!(
        (status, &body["field"]),
        (400, &json!("command_id")),
        "{body}"
    );
    // Nothing of it reached the journal.
    assert!(gw.terminate().success());
    let records = export(dir.path(), &[]);
    assert!(
        !events(&records)
            .iter()
            .any(|e| e["type"] == "session_state" || e["type"] == "command_queued"),
        "{records:?}"
    );
    // A valid id still starts a session (the refusals were the ids', not the API's).
    let gw = Gateway::start_with(dir.path(), &dir.path().join("court.toml"));
    let (status, body) = gw.admin(
        &format!("/api/devices/{STEADY}/sessions"),
        json!({"session_id": "s-0017"}),
    );
    assert_eq!(status, 200, "{body}");
}

/// A snapshot journaled by an older version with one bad entry: the rest is restored, and the
/// entry left out is named in the log (it used to cost the whole snapshot, silently).
#[tokio::test]
async fn a_snapshot_with_a_bad_entry_is_restored_without_it_and_says_so() {
    use shuttlegate::journal::{Document, Journal, JournalOptions, RecordBody};
    let dir = tempfile::tempdir().unwrap();
    let snapshot = json!({
        "type": "snapshot", "next_command_id": 5, "ts": 1,
        "sessions": [
            {"id": "kept-1", "device": STEADY, "state": "collecting", "source": "device", "start_ms": 1, "end_ms": null},
            {"id": "bad\u{1b}id", "device": FLOOD, "state": "collecting", "source": "device", "start_ms": 1, "end_ms": null}
        ],
        "commands": [
            [FLOOD, {"command_id": 4, "command": {"name": "start_collection", "params": {"session_id": "bad\nid"}}, "queued_ms": 1}]
        ]
    });
    let (journal, _) = Journal::open(JournalOptions::new(dir.path().join("journal"))).unwrap();
    journal
        .append(RecordBody::Event(Document {
            device: None,
            session_id: None,
            json: snapshot.to_string(),
        }))
        .await
        .unwrap();
    journal.close().await.unwrap();

    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), ""));
    let line = gw.wait_log("left out", Duration::from_secs(30));
    assert!(line.contains("session_id"), "{line}");
    assert!(gw.terminate().success());
    let records = export(dir.path(), &[]);
    let restored = last_snapshot(&records);
    assert_eq!(open_sessions_of(restored, STEADY), ["kept-1"]);
    assert!(open_sessions_of(restored, FLOOD).is_empty());
}

#[tokio::test]
async fn a_command_id_repeated_across_a_restart_is_executed_once() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), ""));
    let path = format!("/api/devices/{STEADY}/commands");
    let command =
        json!({"command": "set_batch", "params": {"batch_size": 50}, "command_id": "op-7"});
    let (status, first) = gw.admin(&path, command.clone());
    assert_eq!(status, 200, "{first}");
    let command_id = first["command_id"].as_u64().expect("the gateway's id");
    // A retry before the device answered: not queued again.
    let (status, again) = gw.admin(&path, command.clone());
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (
            &again["duplicate"],
            &again["first"],
            again["command_id"].as_u64()
        ),
        (&json!(true), &json!("pending"), Some(command_id))
    );
    // The device gets it once and acks it.
    let mut ws = connect(&url(&gw, STEADY)).await;
    let push = recv_type(&mut ws, "set_batch").await;
    assert_eq!(push["command_id"], command_id.to_string());
    send(
        &mut ws,
        &json!({"type": "ack", "command_id": push["command_id"], "success": true}),
    )
    .await;
    drop(ws);
    assert!(gw.terminate().success());

    // After a restart the same id is still known, with the device's answer.
    let gw = Gateway::start_with(dir.path(), &dir.path().join("court.toml"));
    let (status, after) = gw.admin(&path, command);
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        (&after["duplicate"], &after["first"]),
        (&json!(true), &json!("succeeded")),
        "{after}"
    );
    // Nothing is pushed on reconnect: the command was executed once.
    let mut ws = connect(&url(&gw, STEADY)).await;
    send(&mut ws, &json!({"type": "heartbeat"})).await;
    loop {
        let v = recv(&mut ws).await;
        assert_ne!(v["type"], "set_batch", "pushed again: {v}");
        if v["type"] == "heartbeat_response" {
            break;
        }
    }
    drop(ws);
    assert!(gw.terminate().success());
    let queued = export(dir.path(), &[])
        .into_iter()
        .filter(|r| r["kind"] == "event" && r["type"] == "command_queued")
        .count();
    assert_eq!(queued, 1);
}
