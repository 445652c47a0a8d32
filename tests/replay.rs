//! `shuttlegate replay` against the real daemon's journal: a simulated session with real swings
//! is streamed by two compact devices and finished with `upload_complete`; replay must find the
//! same swings the daemon journaled live, work while the daemon runs, refuse `--journal` while
//! the daemon holds the lock, and journal its results as marked records once it is stopped.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use shuttlegate_core::batch::BodyPosition;
use shuttlegate_core::protocol::{DeviceMessage, render_device_message};
use shuttlegate_sim::{CourtConfig, CourtSim, SimDevice, SimPlayer};

use common::{BIN, Gateway, Ws, connect, recv_type, send};

const SESSION: &str = "replay-s1";
/// Two racket-only compact devices, a compact device with all four nodes, and a V3.3 hub (seed
/// form, time-of-day stamps, no token, no seq).
const DEVICES: [&str; 4] = ["r1", "r2", "c1", "h1"];
/// Batches sent before the first reply is awaited, per connection.
const WINDOW: usize = 16;

fn court_config(state_dir: &Path) -> String {
    // The devices send 40 s of data as fast as the gateway answers.
    let mut toml = common::config(state_dir, &[], "[limits]\nmessages_per_second = 10000\n");
    for code in ["r1", "r2"] {
        toml.push_str(&format!(
            "\n[[devices]]\ncode = \"{code}\"\ntoken = \"token-{code}-x\"\nsensors = {{ 4 = \"racket\" }}\n"
        ));
    }
    toml.push_str("\n[[devices]]\ncode = \"c1\"\ntoken = \"token-c1-x\"\n");
    toml.push_str("\n[[devices]]\ncode = \"h1\"\nallow_tokenless = true\n");
    toml
}

fn replay(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["replay", "-c"])
        .arg(config)
        .args(args)
        .output()
        .expect("run replay")
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("replay line is JSON"))
        .collect()
}

/// (stroke, side, impact, impact time, racket speed) per device and swing_no, of the swings
/// among `values`. The impact time is sample time: for the V3.3 hub it depends on the anchor
/// of its time-of-day stamps, so equal times show replay anchors them as live did.
fn swings(values: &[Value]) -> BTreeMap<(String, u64), [Value; 5]> {
    values
        .iter()
        .filter(|v| v["type"] == "swing")
        .map(|v| {
            let key = (
                v["device"].as_str().expect("device").to_owned(),
                v["swing_no"].as_u64().expect("swing_no"),
            );
            (
                key,
                ["stroke", "side", "impact", "t_impact", "racket_speed_kmh"].map(|k| v[k].clone()),
            )
        })
        .collect()
}

/// Each summary's counts (swings, hits, air swings, strokes, sides) by device.
fn totals(values: &[Value]) -> BTreeMap<String, Vec<Value>> {
    values
        .iter()
        .filter(|v| v["type"] == "analysis_complete_notification")
        .map(|v| {
            let r = &v["analysis_result"];
            let keys = ["swings", "hits", "air_swings", "strokes", "sides"];
            (
                v["device"].as_str().expect("device").to_owned(),
                keys.iter().map(|k| r[*k].clone()).collect(),
            )
        })
        .collect()
}

/// Streams 40 s of a simulated two-player court, both devices racket-only compact at 200 Hz,
/// then `upload_complete` for each.
async fn stream_session(gw: &Gateway) {
    // V3.3 stamps are local times of day, placed on the date nearest their receipt: the
    // simulated session must have just happened.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as f64;
    let config = CourtConfig {
        session_id: SESSION.into(),
        start_ms: now_ms - 45_000.0,
        ..CourtConfig::default()
    };
    let players = DEVICES
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let device = match *code {
                "h1" => SimDevice::seed_hub(*code, 200.0),
                "c1" => SimDevice::compact(*code, 200.0, BodyPosition::ALL.to_vec(), 9),
                _ => SimDevice::compact(*code, 200.0, vec![BodyPosition::Racket], 6),
            };
            SimPlayer::new(11 + i as u64, 0.3 + 0.2 * i as f64, device)
        })
        .collect();
    let start = config.start_ms;
    let mut sim = CourtSim::new(7, players, config);
    let mut sockets = Vec::new();
    for code in DEVICES {
        let url = match code {
            "h1" => gw.ws_url(code),
            _ => format!("{}?token=token-{code}-x", gw.ws_url(code)),
        };
        sockets.push((connect(&url).await, 0usize, 0u64));
    }
    // The V3.3 hub collects only once an operator starts its session.
    let hub = &mut sockets[3].0;
    let (status, started) = gw.admin("/api/devices/h1/sessions", json!({"session_id": SESSION}));
    assert_eq!(status, 200, "{started}");
    let push = recv_type(hub, "start_collection").await;
    send(
        hub,
        &json!({"type":"ack","command_id":push["command_id"],"success":true}),
    )
    .await;
    let mut t = start;
    loop {
        t += 1000.0;
        let batches = if t > start + 40_000.0 {
            sim.flush()
        } else {
            sim.next_batches(t)
        };
        for (i, mut batch) in batches.clone() {
            let (ws, in_flight, seq) = &mut sockets[i];
            // The simulator counts from 1; `upload_complete` expects seqs 0..batches. (V3.3
            // sends none: the gateway numbers its batches in arrival order.)
            batch.seq = batch.seq.map(|_| *seq);
            *seq += 1;
            send(ws, &wire(&DeviceMessage::Batch(batch), DEVICES[i])).await;
            *in_flight += 1;
            if *in_flight >= WINDOW {
                durable(ws).await;
                *in_flight -= 1;
            }
        }
        if t > start + 40_000.0 {
            break;
        }
    }
    for (i, (ws, in_flight, seq)) in sockets.iter_mut().enumerate() {
        for _ in 0..*in_flight {
            durable(ws).await;
        }
        let mut upload = json!({"type":"upload_complete","session_id":SESSION,"batches":*seq});
        if DEVICES[i] == "h1" {
            let (status, ended) = gw.admin("/api/devices/h1/sessions/end", json!({}));
            assert_eq!(status, 200, "{ended}");
            let stop = recv_type(ws, "stop_collection").await;
            send(
                ws,
                &json!({"type":"ack","command_id":stop["command_id"],"success":true}),
            )
            .await;
            upload = json!({"type":"upload_complete","session_id":SESSION,"device_code":"h1"});
        }
        send(ws, &upload).await;
        let done = recv_type(ws, "upload_complete_response").await;
        assert_eq!(done["missing_seqs"], json!([]), "{done}");
    }
}

fn wire(msg: &DeviceMessage, code: &str) -> Value {
    serde_json::from_str(&render_device_message(msg, code)).expect("rendered JSON")
}

async fn durable(ws: &mut Ws) {
    let r = recv_type(ws, "batch_sensor_data_response").await;
    assert_eq!(
        (r["success"].as_bool(), r["durable"].as_bool()),
        (Some(true), Some(true)),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_finds_the_swings_the_daemon_journaled_and_journals_them_marked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let gw = Gateway::start(dir.path(), &court_config(&state));
    stream_session(&gw).await;
    for _ in DEVICES {
        gw.wait_log("` analysed: ", Duration::from_secs(20));
    }
    let config = gw.config_path.clone();

    // Read-only replay works beside the running daemon.
    let beside = json_lines(&replay(&config, &["--session", SESSION]));

    // --journal needs the lock the daemon holds: the error names the lock file and the PID.
    let locked = replay(&config, &["--session", SESSION, "--journal"]);
    let stderr = String::from_utf8_lossy(&locked.stderr);
    assert!(!locked.status.success());
    assert!(stderr.contains("LOCK"), "{stderr}");
    assert!(stderr.contains(&gw.child.id().to_string()), "{stderr}");
    assert!(stderr.contains("stop the daemon"), "{stderr}");

    assert!(gw.terminate().success());
    let live = common::export(&state, &["--session", SESSION]);
    let live_swings = swings(&live);
    assert!(
        live_swings.len() >= 10,
        "the session should have real swings: {}",
        live_swings.len()
    );
    for code in DEVICES {
        assert!(
            live_swings.keys().any(|(d, _)| d == code),
            "no live swing of {code}"
        );
    }

    let started = std::time::Instant::now();
    let out = replay(&config, &["--session", SESSION]);
    eprintln!(
        "replay took {:?}: {}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // The daemon's analysis queue holds 4096 batches, more than this session's ~2000, so the
    // live analysis saw every batch and replay must match it exactly.
    let replayed = json_lines(&out);
    eprintln!(
        "live swings: {}; live summaries: {:?}",
        live_swings.len(),
        totals(&live)
    );
    assert_eq!(swings(&replayed), live_swings);
    assert_eq!(swings(&beside), live_swings);
    let summaries: Vec<&Value> = replayed
        .iter()
        .filter(|v| v["type"] == "analysis_complete_notification")
        .collect();
    assert_eq!(summaries.len(), DEVICES.len());
    for v in &replayed {
        assert_eq!(v["replay"], true, "{v}");
        assert_eq!(
            v["analysis_version"],
            shuttlegate_core::analysis::ANALYSIS_VERSION,
            "{v}"
        );
    }
    assert_eq!(totals(&replayed), totals(&live));

    // --journal with the daemon stopped: the results join the journal, marked.
    let journaled = json_lines(&replay(&config, &["--session", SESSION, "--journal"]));
    assert_eq!(swings(&journaled), live_swings);
    let after = common::export(&state, &["--session", SESSION]);
    let (marked, unmarked): (Vec<&Value>, Vec<&Value>) = after
        .iter()
        .filter(|v| v["kind"] == "swing" || v["kind"] == "summary")
        .partition(|v| v["replay"] == true);
    assert_eq!(marked.len(), live_swings.len() + DEVICES.len());
    assert_eq!(unmarked.len(), live_swings.len() + DEVICES.len());
    let marked_values: Vec<Value> = marked.into_iter().cloned().collect();
    assert_eq!(swings(&marked_values), live_swings);
}

#[test]
fn unknown_sessions_and_devices_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // An empty journal, as a daemon leaves it after one start.
    let gw = Gateway::start(dir.path(), &court_config(&state));
    let config = gw.config_path.clone();
    // SIGKILL: the daemon prints its ready line before it handles SIGTERM, and an empty
    // journal needs no clean close.
    gw.kill();

    let out = replay(&config, &["--session", "nope"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`nope`"), "{stderr}");

    let out = replay(&config, &["--device", "ghost"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`ghost`"), "{stderr}");

    let out = replay(&config, &["--device", "r1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("device `r1` has no stored batches"),
        "{stderr}"
    );
}

/// Sends the simulated court's batches for sample times up to `until` (all of them, and then
/// `upload_complete`, when `finish`), each racket device on its own connection, and returns
/// once every batch is durable.
async fn stream_rackets(
    gw: &Gateway,
    sim: &mut CourtSim,
    seqs: &mut [u64; 2],
    (from, until): (f64, f64),
    finish: bool,
) {
    let codes = ["r1", "r2"];
    let mut sockets = Vec::new();
    for code in codes {
        let url = format!("{}?token=token-{code}-x", gw.ws_url(code));
        sockets.push((connect(&url).await, 0usize));
    }
    let mut t = from;
    while t < until {
        t += 1000.0;
        for (i, mut batch) in sim.next_batches(t) {
            batch.seq = Some(seqs[i]);
            seqs[i] += 1;
            let (ws, in_flight) = &mut sockets[i];
            send(ws, &wire(&DeviceMessage::Batch(batch), codes[i])).await;
            *in_flight += 1;
            if *in_flight >= WINDOW {
                durable(ws).await;
                *in_flight -= 1;
            }
        }
    }
    if finish {
        for (i, mut batch) in sim.flush() {
            batch.seq = Some(seqs[i]);
            seqs[i] += 1;
            send(
                &mut sockets[i].0,
                &wire(&DeviceMessage::Batch(batch), codes[i]),
            )
            .await;
            sockets[i].1 += 1;
        }
    }
    for (i, (ws, in_flight)) in sockets.iter_mut().enumerate() {
        for _ in 0..*in_flight {
            durable(ws).await;
        }
        if finish {
            let upload =
                json!({"type":"upload_complete","session_id":"restart-s1","batches":seqs[i]});
            send(ws, &upload).await;
            let done = recv_type(ws, "upload_complete_response").await;
            assert_eq!(done["missing_seqs"], json!([]), "{done}");
        }
    }
}

/// A session cut in two by a SIGKILL is analysed as if it had not been: the restarted daemon
/// resumes its analysers from the journal, so the swings it journals (before and after the
/// kill, none twice) and its summaries equal an uninterrupted replay of the stored batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cut_by_sigkill_is_analysed_as_if_it_were_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let gw = Gateway::start(dir.path(), &court_config(&state));
    let config_path = gw.config_path.clone();
    let config = CourtConfig {
        session_id: "restart-s1".into(),
        ..CourtConfig::default()
    };
    let start = config.start_ms;
    let players = ["r1", "r2"]
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let device = SimDevice::compact(*code, 200.0, vec![BodyPosition::Racket], 6);
            SimPlayer::new(21 + i as u64, 0.4 + 0.2 * i as f64, device)
        })
        .collect();
    let mut sim = CourtSim::new(17, players, config);
    let mut seqs = [0u64; 2];
    stream_rackets(&gw, &mut sim, &mut seqs, (start, start + 20_000.0), false).await;
    gw.kill();

    let gw = Gateway::start_with(dir.path(), &config_path);
    gw.wait_log(
        "analysis resumed for 2 open session(s)",
        Duration::from_secs(20),
    );
    let span = (start + 20_000.0, start + 40_000.0);
    stream_rackets(&gw, &mut sim, &mut seqs, span, true).await;
    for _ in 0..2 {
        gw.wait_log("` analysed: ", Duration::from_secs(20));
    }
    assert!(gw.terminate().success());

    let live = common::export(&state, &["--session", "restart-s1"]);
    let live_swings = swings(&live);
    let records = live.iter().filter(|v| v["type"] == "swing").count();
    assert_eq!(records, live_swings.len(), "no swing journaled twice");
    let replayed = json_lines(&replay(&config_path, &["--session", "restart-s1"]));
    assert!(live_swings.len() >= 5, "real swings: {}", live_swings.len());
    assert_eq!(live_swings, swings(&replayed));
    assert_eq!(totals(&live), totals(&replayed));
    assert_eq!(totals(&live).len(), 2, "both sessions summarised");
}
