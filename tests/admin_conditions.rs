//! Issue 13's remaining staff items against the real daemon, with real WebSocket clients: the
//! `clock_unsynced`, `clock_skew` and `sensor_saturation` notifications reaching a connected
//! console, re-sent to one that connects while they are active, and cleared; `device_list`'s
//! nodes, batches and swings today and rejects; a phone's `session_status` of a session the
//! court no longer holds (answered from the journal).
//!
//! The clock's synchronisation is the kernel's and differs per machine, so that test runs the
//! daemon in process on the probe seam (`daemon::start_with`) and switches the verdict; the real
//! probe is read by a unit test (`time_sync`). Everything else runs the binary.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use shuttlegate::daemon::{Seams, start_with};
use shuttlegate::journal::StdFs;
use shuttlegate::time_sync::{ClockProbe, TimeSync};
use tokio_tungstenite::tungstenite::Message;

const RACKET: &str = "racket-01";
const JWT_SECRET: &str = "cloud-signing-secret";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn console(addr: std::net::SocketAddr) -> Ws {
    let mut ws = connect(&format!("ws://{addr}/ws/admin/?token={ADMIN_TOKEN}")).await;
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "connection_established", "{welcome}");
    ws
}

/// The next `system_notification` that `matches`, within `within`.
async fn notified(ws: &mut Ws, within: Duration, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no such notification within {within:?}"))
            .expect("connection open")
            .expect("no error");
        if let Message::Text(text) = next {
            let v: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if v["type"] == "system_notification" && matches(&v) {
                return v;
            }
        }
    }
}

/// The `system_notification`s of `kinds` (raised, or cleared), in whichever order they come
/// (two conditions may be sampled apart), within `within`.
async fn notified_each(
    ws: &mut Ws,
    within: Duration,
    kinds: &[&'static str],
    cleared: bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    let mut found: Vec<Option<Value>> = vec![None; kinds.len()];
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let n = notified(ws, left, |v| {
            kinds.iter().any(|k| v["kind"] == *k) && (v["cleared"] == true) == cleared
        })
        .await;
        let i = kinds.iter().position(|k| n["kind"] == *k).unwrap();
        found[i].get_or_insert(n);
    }
    found.into_iter().flatten().collect()
}

fn kind_is(kind: &'static str, cleared: bool) -> impl Fn(&Value) -> bool {
    move |v| v["kind"] == kind && (v["cleared"] == true) == cleared
}

/// `GET path` in a blocking task: the status and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let url = format!("http://{addr}{path}");
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent.get(&url).call().expect("GET");
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().expect("text"))
    })
    .await
    .unwrap()
}

/// A probe the test switches.
struct Switch(AtomicBool);

impl ClockProbe for Switch {
    fn synchronised(&self) -> Result<bool, String> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsynchronised_clock_is_notified_listed_degraded_and_cleared_once_synchronised() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), &[(RACKET, Some("tok-racket-01"))], "");
    let settings =
        shuttlegate::config::load_str(&dir.path().join("court.toml"), &text).expect("valid");
    let probe = Arc::new(Switch(AtomicBool::new(false)));
    let seams = Seams {
        fs: Arc::new(StdFs),
        time_sync: TimeSync::with_probe(probe.clone()),
    };
    let running = start_with(&settings, shuttlegate::court::system_clock(), seams)
        .await
        .expect("starts");
    let addr = running.http_addr;

    let mut admin = console(addr).await;
    let raised = notified(
        &mut admin,
        Duration::from_secs(15),
        kind_is("clock_unsynced", false),
    )
    .await;
    assert_eq!(raised["level"], "warning", "{raised}");
    assert!(raised.get("device_code").is_none(), "{raised}");
    assert!(
        raised["message"]
            .as_str()
            .unwrap()
            .contains("not synchronised"),
        "{raised}"
    );
    // Still active: a console connecting now is told at once, as it was raised.
    let mut late = console(addr).await;
    assert_eq!(recv(&mut late).await, raised);
    // /healthz: degraded, never dead; /metrics: 0.
    let (status, body) = get(addr, "/healthz").await;
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &health["status"]),
        (200, &json!("degraded")),
        "{health}"
    );
    assert_eq!(health["degraded"][0]["kind"], "clock_unsynced", "{health}");
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(
        metrics.contains("\nshuttlegate_clock_synchronised 0\n"),
        "{metrics}"
    );

    probe.0.store(true, Ordering::SeqCst);
    for ws in [&mut admin, &mut late] {
        let ended = notified(ws, Duration::from_secs(20), kind_is("clock_unsynced", true)).await;
        assert_eq!(ended["level"], "info", "{ended}");
    }
    let (status, body) = get(addr, "/healthz").await;
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &health["status"]), (200, &json!("ok")), "{health}");
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(
        metrics.contains("\nshuttlegate_clock_synchronised 1\n"),
        "{metrics}"
    );
    // Nothing active: a new console's first message after the welcome answers its ping.
    let mut third = console(addr).await;
    send(&mut third, &json!({"type": "ping"})).await;
    assert_eq!(recv(&mut third).await["type"], "pong");
    drop((admin, late, third));
    let _ = running.stop().await;
}

/// A compact 100 Hz batch of 10 rows of `row` from the racket node, stamped `t0`.
fn batch(session: &str, seq: u64, t0: i64, row: [f64; 6]) -> Value {
    json!({"type": "batch_sensor_data", "session_id": session, "seq": seq, "sensor_id": 4,
           "t0": t0, "rate_hz": 100, "samples": vec![row; 10]})
}

const REST: [f64; 6] = [0.0, 0.0, 1.0, 0.4, -0.3, 0.1];
/// Gyro y pinned at the configured full scale (±2000 °/s).
const PINNED: [f64; 6] = [0.0, 0.0, 1.0, 0.4, 2000.0, 0.1];

/// Sends `n` batches 100 ms apart (in real time: the skew is judged over receipt time), each
/// stamped `lag_ms` behind the gateway's clock; answers each durable.
async fn stream(device: &mut Ws, first_seq: u64, n: u64, lag_ms: i64, row: [f64; 6]) {
    for seq in first_seq..first_seq + n {
        let t0 = now_ms() - 100 - lag_ms;
        send(device, &batch("s-1", seq, t0, row)).await;
        let reply = recv_type(device, "batch_sensor_data_response").await;
        assert_eq!(reply["durable"], true, "{reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_clock_and_a_stuck_node_are_notified_listed_and_cleared_and_the_device_list_counts()
 {
    let dir = tempfile::tempdir().unwrap();
    let devices = [
        (RACKET, Some("token-racket-01")),
        ("player-01", Some("token-player-01")),
    ];
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices, ""));
    let mut admin = console(gw.addr).await;
    let mut device = connect(&format!("{}?token=token-{RACKET}", gw.ws_url(RACKET))).await;
    recv_type(&mut device, "connection_established").await;

    // A bad batch: rejected, and counted against the device by its reason.
    send(
        &mut device,
        &json!({"type": "batch_sensor_data", "session_id": "s-1", "seq": -1,
        "sensor_id": 4, "t0": now_ms(), "rate_hz": 100, "samples": [REST]}),
    )
    .await;
    assert_eq!(
        recv_type(&mut device, "error").await["code"],
        "invalid_field"
    );

    // 3 s of a clock 5 s behind, with the racket node pinned at full scale on gyro y.
    stream(&mut device, 0, 30, 5_000, PINNED).await;
    let kinds = ["clock_skew", "sensor_saturation"];
    let raised = notified_each(&mut admin, Duration::from_secs(20), &kinds, false).await;
    let (skew, stuck) = (raised[0].clone(), raised[1].clone());
    assert_eq!(
        (skew["level"].as_str(), skew["device_code"].as_str()),
        (Some("warning"), Some(RACKET))
    );
    assert!(
        skew["message"].as_str().unwrap().contains("behind"),
        "{skew}"
    );
    assert_eq!(stuck["device_code"], RACKET, "{stuck}");
    assert_eq!(stuck["node"], 4, "{stuck}");
    let message = stuck["message"].as_str().unwrap();
    assert!(
        message.contains("node 4 (racket)") && message.contains("gyro y"),
        "{stuck}"
    );
    // Both still active: a console connecting now hears of them first, as raised.
    let mut late = console(gw.addr).await;
    assert_eq!(recv(&mut late).await, skew);
    assert_eq!(recv(&mut late).await, stuck);
    let (_, metrics) = get(gw.addr, "/metrics").await;
    for kind in kinds {
        let line = format!("\nshuttlegate_device_conditions{{kind=\"{kind}\"}} 1\n");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }

    // Fresh, in-range data: both clear, on both consoles.
    stream(&mut device, 30, 15, 0, REST).await;
    for ws in [&mut admin, &mut late] {
        let ended = notified_each(ws, Duration::from_secs(20), &kinds, true).await;
        assert_eq!(
            (ended[0]["level"].as_str(), ended[0]["device_code"].as_str()),
            (Some("info"), Some(RACKET))
        );
        assert_eq!(ended[1]["node"], 4, "{}", ended[1]);
    }

    // Swings of a simulated player, for swings_today.
    play_court(&gw, 1, Duration::from_secs(12), 1301).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let swings_journaled = loop {
        let records = gw.export(&["--device", "player-01"]);
        if records.iter().any(|r| r["kind"] == "summary") {
            break records.iter().filter(|r| r["kind"] == "swing").count();
        }
        assert!(Instant::now() < deadline, "no summary for player-01");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(swings_journaled > 0, "12 s of rallies gave no swing");

    send(&mut admin, &json!({"type": "get_device_list"})).await;
    let list = recv_type(&mut admin, "device_list").await;
    let racket = &list["devices"][0];
    assert_eq!(racket["device_code"], RACKET, "{list}");
    assert_eq!(racket["batches_today"], 45, "{list}");
    assert_eq!(racket["swings_today"], 0, "{list}");
    assert_eq!(racket["rejects"], json!({"invalid_field": 1}), "{list}");
    let nodes = racket["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{list}");
    assert_eq!(nodes[0]["sensor_id"], 4);
    assert_eq!(nodes[0]["position"], "racket");
    assert_eq!(nodes[0]["rate_hz"], 100.0);
    assert_eq!(nodes[0]["samples"], 450);
    assert_eq!(nodes[0]["saturated"], false);
    let offset = racket["clock_offset_ms"].as_i64().expect("an offset");
    assert!(offset.abs() < 2_000, "{list}");
    let player = &list["devices"][1];
    assert_eq!(player["swings_today"], swings_journaled, "{list}");
    assert!(player["batches_today"].as_u64() > Some(0), "{list}");
    assert_eq!(player["nodes"][0]["rate_hz"], 200.0, "{list}");
    assert!(
        list["counted_since_ms"].as_i64() <= Some(now_ms()),
        "{list}"
    );
}

fn phone_token(user: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": user, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn session_status(gw: &Gateway, session_id: &str) -> Value {
    let url = format!(
        "ws://{}/ws/miniprogram/u-7/?token={}",
        gw.addr,
        phone_token("u-7")
    );
    let mut phone = connect(&url).await;
    recv_type(&mut phone, "connection_established").await;
    send(
        &mut phone,
        &json!({"type": "session_status", "session_id": session_id}),
    )
    .await;
    loop {
        let reply = recv(&mut phone).await;
        if reply["type"] == "session_status_response" || reply["type"] == "error" {
            return reply;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_status_answers_a_session_the_court_no_longer_holds_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = config(dir.path(), &[(RACKET, Some("token-racket-01"))], "");
    text = text.replace(
        "[auth]\n",
        &format!("[auth]\njwt_secret = \"{JWT_SECRET}\"\n"),
    );
    text = text.replace(
        "code = \"racket-01\"\n",
        "code = \"racket-01\"\nuser = \"u-7\"\n",
    );
    let gw = Gateway::start(dir.path(), &text);
    let mut device = connect(&format!("{}?token=token-{RACKET}", gw.ws_url(RACKET))).await;
    recv_type(&mut device, "connection_established").await;
    send(&mut device, &batch("s-old", 0, now_ms() - 100, REST)).await;
    recv_type(&mut device, "batch_sensor_data_response").await;
    send(
        &mut device,
        &json!({"type": "upload_complete", "session_id": "s-old", "batches": 1}),
    )
    .await;
    recv_type(&mut device, "upload_complete_response").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let reply = session_status(&gw, "s-old").await;
        if reply["session_info"]["status"] == "completed" {
            break reply;
        }
        assert!(Instant::now() < deadline, "never completed: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(device);
    gw.terminate();

    // The court restores only the events since its last snapshot, and journals a snapshot
    // (open sessions only) at every start: after two restarts it no longer holds `s-old`.
    let mut snapshotted = false;
    for _ in 0..3 {
        let gw = Gateway::start_with(dir.path(), &dir.path().join("court.toml"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        gw.terminate();
        let records = export(dir.path(), &[]);
        let completed = records
            .iter()
            .rposition(|r| r["type"] == "session_state" && r["state"] == "completed")
            .expect("the completion is journaled");
        let snapshots = records[completed..]
            .iter()
            .filter(|r| r["type"] == "snapshot")
            .count();
        if snapshots >= 2 {
            snapshotted = true;
            break;
        }
    }
    assert!(
        snapshotted,
        "two snapshots journaled after the session ended"
    );
    let gw = Gateway::start_with(dir.path(), &dir.path().join("court.toml"));
    let from_journal = session_status(&gw, "s-old").await;
    assert_eq!(from_journal, held, "the same answer, read from the journal");
    let info = &from_journal["session_info"];
    assert_eq!(info["device_code"], RACKET);
    assert!(
        info["start_time"].is_string() && info["end_time"].is_string(),
        "{info}"
    );
    let unknown = session_status(&gw, "never-was").await;
    assert_eq!(unknown["type"], "error", "{unknown}");
    assert_eq!(unknown["field"], "session_id", "{unknown}");
}

/// A console that stops reading falls behind alone: the court's changes it could not take are
/// dropped for it and it is told how many (`lagged`), the device is answered all along, and the
/// console, reading again, is answered as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_that_stops_reading_is_told_it_lagged_and_slows_nothing() {
    use futures_util::SinkExt;
    let dir = tempfile::tempdir().unwrap();
    let limits = "[limits]\nmessages_per_second = 100000\n";
    let devices = [(RACKET, Some("token-racket-01"))];
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices, limits));
    let mut admin = console(gw.addr).await;
    let mut device = connect(&format!("{}?token=token-{RACKET}", gw.ws_url(RACKET))).await;
    recv_type(&mut device, "connection_established").await;

    // The console asks and asks without reading: once the socket's buffers are full, its
    // task waits to write, and stops taking the court's changes.
    let request = Message::text(json!({"type": "get_system_status"}).to_string());
    let mut asked = 0;
    for _ in 0..20_000 {
        match tokio::time::timeout(Duration::from_millis(500), admin.send(request.clone())).await {
            Ok(Ok(())) => asked += 1,
            Ok(Err(e)) => panic!("send: {e}"),
            // Its own send buffer is full too: the gateway stopped reading it.
            Err(_) => break,
        }
    }
    // More court changes than their buffer holds (1024): heartbeats' telemetry, each answered
    // while the console stalls (the console's own answers are still unread).
    for round in 0..30 {
        for i in 0..100 {
            let hb = json!({"type": "heartbeat", "device_code": RACKET,
                "timestamp": round * 100 + i, "battery": 80});
            send(&mut device, &hb).await;
        }
        for _ in 0..100 {
            recv_type(&mut device, "heartbeat_response").await;
        }
    }

    // Reading again: the answers it asked for, and a `lagged` notice naming the stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut answered = 0;
    let lagged = loop {
        let next = tokio::time::timeout_at(deadline, admin.next())
            .await
            .expect("the lagged notice within 60 s")
            .expect("still open")
            .expect("no error");
        let Message::Text(text) = next else { continue };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        match v["type"].as_str() {
            Some("system_status") => answered += 1,
            Some("lagged") => break v,
            _ => {}
        }
    };
    assert_eq!(lagged["of"], "court_changes", "{lagged}");
    assert!(lagged["dropped"].as_u64() > Some(0), "{lagged}");
    assert!(answered > 0 && answered <= asked, "{answered} of {asked}");
    // Still served: a ping is answered (after the answers still queued).
    send(&mut admin, &json!({"type": "ping"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline, admin.next())
            .await
            .expect("pong within 60 s")
            .expect("still open")
            .expect("no error");
        if let Message::Text(text) = next
            && text.as_str().contains("\"pong\"")
        {
            break;
        }
    }
    let (_, metrics) = get(gw.addr, "/metrics").await;
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("shuttlegate_client_pushes_dropped_total{role=\"admin\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("the admin role's dropped pushes");
    // Counted as dropped: this notice's and any that followed it.
    assert!(dropped >= lagged["dropped"].as_f64().unwrap(), "{metrics}");
}

/// `task_restarted` reaches a console. No restartable task of the daemon can be made to die by
/// honest means from outside (the sinks survive lost brokers and failed reads and cursor
/// writes; a cursor write that panics is in the journal's writer, a critical task), so the
/// task that dies is one the test registers on the daemon's own supervisor; what is shown is
/// the path from the supervisor's registry through the notifications to the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_dies_and_is_restarted_is_told_to_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), &[(RACKET, Some("tok-racket-01"))], "");
    let settings =
        shuttlegate::config::load_str(&dir.path().join("court.toml"), &text).expect("valid");
    let running = shuttlegate::daemon::start(&settings, shuttlegate::court::system_clock())
        .await
        .expect("starts");
    let mut admin = console(running.http_addr).await;
    running.supervisor.spawn_restarting(
        "probe",
        shuttlegate::supervise::restart_backoff(),
        || async { Err::<(), _>("the probe's own failure") },
    );
    let restarted = notified(
        &mut admin,
        Duration::from_secs(20),
        kind_is("task_restarted", false),
    )
    .await;
    assert_eq!(restarted["level"], "warning", "{restarted}");
    let message = restarted["message"].as_str().unwrap();
    assert!(
        message.contains("task probe died and was restarted"),
        "{restarted}"
    );
    drop(admin);
    let _ = running.stop().await;
}
