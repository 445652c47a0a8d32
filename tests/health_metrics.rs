//! Issue 13: `/healthz` as liveness and `/metrics` complete, seen from outside.
//!
//! The real binary (and a real Mosquitto): `/healthz` is 200 and lists what is degraded — a
//! journal full under `refuse`, a broker gone — without failing; `/metrics` is parsed by the
//! Prometheus project's own parser (Python `prometheus_client`, strict OpenMetrics) before and
//! after real traffic, and its families, types, labels and values are checked to have moved
//! with it. In process (`daemon::start_on`, the filesystem seam): a supervised task that dies
//! turns `/healthz` 503 naming it, and a journal whose writer dies makes the verdict dead.

mod common;
mod uplink_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use shuttlegate::daemon::start_on;
use shuttlegate::health::{HealthSources, Status};
use shuttlegate::journal::{Fault, FaultyFs, FsOp, StdFs};
use shuttlegate::uplink::status::SinkBoard;
use tokio_tungstenite::tungstenite::Message;
use uplink_support::Broker;

/// Generous: the machine is shared and loaded; waits end as soon as their condition holds.
const DEADLINE: Duration = Duration::from_secs(30);

/// `GET path`: the status and the body.
fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("text body");
    (status, body)
}

fn healthz(addr: std::net::SocketAddr) -> (u16, Value) {
    let (status, body) = get(addr, "/healthz");
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, value)
}

/// Asks `/healthz` until `done` holds of its answer (or the deadline passes).
fn healthz_until(addr: std::net::SocketAddr, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let started = Instant::now();
    loop {
        let (status, body) = healthz(addr);
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            started.elapsed() < DEADLINE,
            "/healthz never got there: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn degraded_kinds(health: &Value) -> Vec<String> {
    health["degraded"]
        .as_array()
        .expect("degraded is a list")
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// ~10 KB journaled per batch of 300 rows (arbitrary six-channel samples do not compress).
fn incompressible(session: &str, seq: u64, rows: usize) -> Value {
    let mut state = seq.wrapping_mul(6364136223846793005) | 1;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0
    };
    let samples: Vec<Value> = (0..rows)
        .map(|_| json!([next(), next(), next(), next(), next(), next()]))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": session, "seq": seq, "sensor_id": 4,
           "t0": 1732400000123i64 + seq as i64 * 100, "rate_hz": 1000, "samples": samples})
}

/// A gateway whose `/healthz` and `/metrics` are degraded by a full journal and a lost broker:
/// the watchdog's answer stays 200, the body says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_stays_200_and_lists_a_journal_full_under_refuse_and_a_broker_gone() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(broker_dir.path());
    let extra = format!(
        "[journal]\nmax_bytes = \"2MiB\"\nsegment_bytes = \"1MiB\"\nwhen_full = \"refuse\"\n\n\
         [uplink.mqtt]\nenabled = true\nurl = \"{}\"\ntopic_prefix = \"sg\"\n",
        broker.url()
    );
    let devices = [("racket-01", Some("tok-racket-01"))];
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices, &extra));

    // All well once the sink has connected: 200, ok, every task running.
    let (status, health) = healthz_until(gw.addr, |_, h| h["status"] == "ok");
    assert_eq!(status, 200);
    for task in [
        "journal",
        "http",
        "analysis",
        "court-backlog",
        "uplink-mqtt",
    ] {
        assert_eq!(
            health["tasks"][task]["state"], "running",
            "{task}: {health}"
        );
    }
    assert_eq!(health["reasons"], json!([]));
    let metrics = families(&get(gw.addr, "/metrics").1);
    assert_eq!(
        value(
            &metrics,
            "shuttlegate_uplink_connected",
            &[("sink", "mqtt")]
        ),
        1.0
    );

    // The broker goes: listed as uplink_down, still 200. (First, so that the sink cannot
    // deliver the batches below and free their segments: the journal stays full.)
    broker.stop();
    let (status, health) = healthz_until(gw.addr, |_, h| {
        degraded_kinds(h).contains(&"uplink_down".to_owned())
    });
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["tasks"]["uplink-mqtt"]["state"], "running");

    // Fill the journal under `refuse` until a batch is answered success:false.
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    recv_type(&mut ws, "connection_established").await;
    let mut refused = None;
    for seq in 0..1000 {
        send(&mut ws, &incompressible("fill", seq, 300)).await;
        let reply = recv_type(&mut ws, "batch_sensor_data_response").await;
        if reply["success"] == false {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("2 MiB of incompressible batches fill the journal");
    assert_eq!(refused["durable"], false, "{refused}");
    let (status, health) = healthz(gw.addr);
    assert_eq!(
        status, 200,
        "a full journal is no reason to restart: {health}"
    );
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        degraded_kinds(&health),
        ["journal_full", "uplink_down"],
        "{health}"
    );
    let message = health["degraded"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("of 2097152 bytes"), "{message}");
    let metrics = families(&get(gw.addr, "/metrics").1);
    assert_eq!(
        value(
            &metrics,
            "shuttlegate_uplink_connected",
            &[("sink", "mqtt")]
        ),
        0.0
    );
    assert_eq!(value(&metrics, "shuttlegate_journal_full", &[]), 1.0);
    assert!(value(&metrics, "shuttlegate_journal_cap_used_ratio", &[]) > 0.5);
    assert!(
        value(
            &metrics,
            "shuttlegate_device_acks_total",
            &[("result", "refused")]
        ) >= 1.0
    );
}

/// One metric family as the parser gave it.
type Families = BTreeMap<String, Value>;

/// `/metrics` text parsed by `prometheus_client`'s strict OpenMetrics parser
/// (tests/metrics/parse_metrics.py); a malformed exposition fails the test with its message.
fn families(exposition: &str) -> Families {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/metrics/parse_metrics.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("exposition written");
    let out = child.wait_with_output().expect("parser ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the parser is missing: run .ci/setup (pip install -r tests/metrics/requirements.txt)"
    );
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {stderr}\n{exposition}"
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

/// The value of the sample `name{labels}` (labels matched exactly, `le` included).
fn value(families: &Families, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    families
        .values()
        .flat_map(|f| f["samples"].as_array().cloned().unwrap_or_default())
        .find(|s| {
            let got: BTreeMap<&str, &str> = s["labels"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            s["name"] == name && got == wanted
        })
        .and_then(|s| s["value"].as_f64())
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

/// The values of every sample named `name`, summed.
fn sum(families: &Families, name: &str) -> f64 {
    families
        .values()
        .flat_map(|f| f["samples"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["name"] == name)
        .filter_map(|s| s["value"].as_f64())
        .sum()
}

/// The label values `label` takes in the family `family`.
fn label_values(families: &Families, family: &str, label: &str) -> Vec<String> {
    let mut values: Vec<String> = families[family]["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|s| s["labels"][label].as_str().map(str::to_owned))
        .collect();
    values.dedup();
    values
}

fn compact(session: &str, seq: u64, rows: usize) -> Value {
    let samples: Vec<Value> = (0..rows)
        .map(|i| json!([0.02, -0.98, 0.11, 1.5 + i as f64, -0.4, 0.2]))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": session, "seq": seq, "sensor_id": 4,
           "t0": 1732400000123i64 + seq as i64 * 100, "rate_hz": 1000, "samples": samples})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_with_the_prometheus_parser_and_move_with_real_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let devices = [
        ("racket-01", Some("tok-racket-01")),
        ("player-01", Some("token-player-01")),
    ];
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices, ""));
    let before = families(&get(gw.addr, "/metrics").1);

    // The families and their types.
    let types = [
        ("shuttlegate_clients_connected", "gauge"),
        ("shuttlegate_client_connections", "counter"),
        ("shuttlegate_client_messages_received", "counter"),
        ("shuttlegate_client_received_bytes", "counter"),
        ("shuttlegate_client_rejects", "counter"),
        ("shuttlegate_device_acks", "counter"),
        ("shuttlegate_device_ack_latency_seconds", "histogram"),
        ("shuttlegate_journal_bytes", "gauge"),
        ("shuttlegate_journal_segments", "gauge"),
        ("shuttlegate_journal_fsync_seconds", "histogram"),
        ("shuttlegate_journal_compression_ratio", "gauge"),
        ("shuttlegate_journal_cap_used_ratio", "gauge"),
        ("shuttlegate_swings", "counter"),
        ("shuttlegate_analysis_samples", "counter"),
        ("shuttlegate_analysis_samples_set_aside", "counter"),
        ("shuttlegate_analysis_bursts_set_aside", "counter"),
        ("shuttlegate_task_up", "gauge"),
        ("shuttlegate_task_restarts", "counter"),
    ];
    for (family, kind) in types {
        let got = before
            .get(family)
            .unwrap_or_else(|| panic!("no family {family}"));
        assert_eq!(got["type"], kind, "{family}");
        assert!(
            !got["help"].as_str().unwrap_or_default().is_empty(),
            "{family} has help"
        );
    }
    assert_eq!(
        label_values(&before, "shuttlegate_clients_connected", "role"),
        ["device", "phone", "admin", "screen"]
    );
    assert_eq!(
        label_values(&before, "shuttlegate_swings", "stroke"),
        [
            "smash", "clear", "drop", "drive", "net", "lift", "serve", "unknown"
        ]
    );
    assert_eq!(
        label_values(&before, "shuttlegate_analysis_bursts_set_aside", "reason"),
        [
            "no_stroke",
            "recovery",
            "backswing",
            "settling",
            "body_no_chain"
        ]
    );
    assert!(
        label_values(&before, "shuttlegate_client_rejects", "reason")
            .contains(&"invalid_json".to_owned())
    );

    // A device connects, sends something unparsable and three batches.
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    recv_type(&mut ws, "connection_established").await;
    let connected = families(&get(gw.addr, "/metrics").1);
    assert_eq!(
        value(
            &connected,
            "shuttlegate_clients_connected",
            &[("role", "device")]
        ),
        1.0
    );
    ws.send(Message::text("this is not JSON"))
        .await
        .expect("sent");
    let error = recv_type(&mut ws, "error").await;
    assert_eq!(error["code"], "invalid_json", "{error}");
    let mut batch_bytes = 0;
    for seq in 0..3 {
        let batch = compact("s-metrics", seq, 40);
        batch_bytes += batch.to_string().len();
        send(&mut ws, &batch).await;
        let ack = recv_type(&mut ws, "batch_sensor_data_response").await;
        assert_eq!(ack["durable"], true, "{ack}");
    }
    drop(ws);

    // A simulated player: real swings, analysed and journaled.
    play_court(&gw, 1, Duration::from_secs(12), 1301).await;
    let started = Instant::now();
    let swings = loop {
        let records = export(dir.path(), &["--device", "player-01"]);
        if records.iter().any(|r| r["kind"] == "summary") {
            break records.iter().filter(|r| r["kind"] == "swing").count();
        }
        assert!(started.elapsed() < DEADLINE, "no summary for player-01");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(swings > 0, "12 s of rallies gave no swing");

    // Counted as each swing is shown (just after its journal commit), connections as each
    // socket task ends: both a moment after the export sees them.
    let after = loop {
        let after = families(&get(gw.addr, "/metrics").1);
        let open = value(
            &after,
            "shuttlegate_clients_connected",
            &[("role", "device")],
        );
        if open == 0.0 && sum(&after, "shuttlegate_swings_total") == swings as f64 {
            break after;
        }
        assert!(
            started.elapsed() < 2 * DEADLINE,
            "{open} device connections still counted, or swings not all counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let device_batches = [("role", "device"), ("type", "batch_sensor_data")];
    let batches = moved(
        "shuttlegate_client_messages_received_total",
        &device_batches,
    );
    assert!(batches > 3.0, "the player's batches count too: {batches}");
    assert_eq!(
        moved(
            "shuttlegate_client_messages_received_total",
            &[("role", "device"), ("type", "other")]
        ),
        1.0
    );
    assert!(moved("shuttlegate_client_received_bytes_total", &device_batches) > batch_bytes as f64);
    assert_eq!(
        moved(
            "shuttlegate_client_rejects_total",
            &[("role", "device"), ("reason", "invalid_json")]
        ),
        1.0
    );
    // racket-01 and the player (which may reconnect on a loaded machine).
    assert!(
        moved(
            "shuttlegate_client_connections_total",
            &[("role", "device")]
        ) >= 2.0
    );
    // Every durable ack is one latency observation, and each batch was acked.
    let acks = moved("shuttlegate_device_acks_total", &[("result", "durable")]);
    assert_eq!(acks, batches, "one durable ack per batch");
    assert_eq!(
        sum(&after, "shuttlegate_device_ack_latency_seconds_count"),
        acks
    );
    assert_eq!(
        value(
            &after,
            "shuttlegate_device_ack_latency_seconds_bucket",
            &[("le", "+Inf")]
        ),
        acks
    );
    assert!(sum(&after, "shuttlegate_device_ack_latency_seconds_sum") > 0.0);
    // Fsyncs were timed, the journal grew, compressed and counts against its cap.
    assert!(sum(&after, "shuttlegate_journal_fsync_seconds_count") >= 1.0);
    assert!(moved("shuttlegate_journal_bytes", &[]) > 0.0);
    assert!(value(&after, "shuttlegate_journal_compression_ratio", &[]) > 1.0);
    assert!(value(&after, "shuttlegate_journal_cap_used_ratio", &[]) > 0.0);
    // The analysis took in the player's samples: 12 s of play on every node, at 50 Hz or more.
    let analysed = moved("shuttlegate_analysis_samples_total", &[]);
    assert!(analysed >= 12.0 * 50.0, "{analysed} samples analysed");
    // Swings by stroke: all of them, as journaled.
    assert_eq!(sum(&after, "shuttlegate_swings_total"), swings as f64);
    assert_eq!(
        sum(&after, "shuttlegate_swings_published_total"),
        swings as f64
    );
}

/// In process, on the filesystem seam: a task that dies turns `/healthz` 503 naming it; a
/// journal whose writer thread dies makes the verdict dead, naming the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_dies_turns_healthz_503_naming_it_and_a_dead_journal_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), &[("racket-01", Some("tok-racket-01"))], "");
    let settings =
        shuttlegate::config::load_str(&dir.path().join("court.toml"), &text).expect("valid");
    let fs = FaultyFs::new(Arc::new(StdFs));
    let running = start_on(
        &settings,
        shuttlegate::court::system_clock(),
        Arc::new(fs.clone()),
    )
    .await
    .expect("starts");
    let addr = running.http_addr;
    let (status, health) = tokio::task::spawn_blocking(move || healthz(addr))
        .await
        .unwrap();
    assert_eq!((status, &health["status"]), (200, &json!("ok")), "{health}");

    // A supervised task that dies on every start (as a sink with a record it cannot take
    // would): between its restarts it is dead, and /healthz says so.
    running.supervisor.spawn_restarting(
        "probe",
        shuttlegate::supervise::restart_backoff(),
        || async { Err::<(), _>("the probe's own failure") },
    );
    let (status, health) =
        tokio::task::spawn_blocking(move || healthz_until(addr, |status, _| status == 503))
            .await
            .unwrap();
    assert_eq!(status, 503);
    assert_eq!(health["status"], "dead");
    let reasons = health["reasons"].to_string();
    assert!(
        reasons.contains("task `probe`") && reasons.contains("the probe's own failure"),
        "{reasons}"
    );
    assert_eq!(health["tasks"]["probe"]["state"], "restarting", "{health}");
    assert!(health["tasks"]["probe"]["restarts"].as_u64() >= Some(1));

    // The journal's writer thread dies (a panic below it): the daemon stops itself, and the
    // verdict it would serve names the journal. The listener is closed by then (the daemon
    // is draining), so the verdict is read in process, from the same parts /healthz reads.
    let mut ws = connect(&format!(
        "ws://{addr}/ws/esp32/racket-01/?token=tok-racket-01"
    ))
    .await;
    recv_type(&mut ws, "connection_established").await;
    fs.fail(FsOp::Write, Fault::Panic);
    send(&mut ws, &compact("s1", 0, 20)).await;
    let refused = recv_type(&mut ws, "batch_sensor_data_response").await;
    assert_eq!(refused["success"], false, "{refused}");
    tokio::time::timeout(DEADLINE, running.shutdown.token.cancelled())
        .await
        .expect("the daemon stops itself");
    let verdict = HealthSources {
        supervisor: running.supervisor.clone(),
        journal: running.journal.clone(),
        sinks: SinkBoard::default(),
        time_sync: shuttlegate::time_sync::TimeSync::configured(false),
    }
    .check();
    assert_eq!(verdict.status, Status::Dead);
    let reasons = verdict.reasons.join("; ");
    assert!(
        reasons.contains("task `journal` died") && reasons.contains("writer thread panicked"),
        "{reasons}"
    );
    drop(ws);
    let _ = running.stop().await;
}
