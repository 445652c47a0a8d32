//! The staff's console `/ws/admin/` against the real daemon, with real WebSocket clients: a
//! console and a device (a WebSocket client speaking the V3.3 messages) on the same gateway.
//! What is asserted is what each client is answered and pushed — never how fast.

mod common;
mod uplink_support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const RACKET: &str = "racket-01";
const SPARE: &str = "spare-01";

fn devices() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        (RACKET, Some("token-racket-01")),
        (SPARE, Some("token-spare-01")),
    ]
}

fn console_url(gw: &Gateway) -> String {
    format!("ws://{}/ws/admin/?token={ADMIN_TOKEN}", gw.addr)
}

/// A console, past its `connection_established`.
async fn console(gw: &Gateway) -> Ws {
    let mut ws = connect(&console_url(gw)).await;
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "connection_established", "{welcome}");
    assert_eq!(welcome["role"], "admin", "{welcome}");
    ws
}

/// A device, past its `connection_established`.
async fn device(gw: &Gateway, code: &str) -> Ws {
    let mut ws = connect(&format!("{}?token=token-{code}", gw.ws_url(code))).await;
    recv_type(&mut ws, "connection_established").await;
    ws
}

/// Sends a request and returns the next message of `reply` (skipping notifications).
async fn ask(ws: &mut Ws, request: Value, reply: &str) -> Value {
    send(ws, &request).await;
    recv_type(ws, reply).await
}

/// The next `system_notification` of `kind` about `device`.
async fn notified(ws: &mut Ws, kind: &str, device: &str) -> Value {
    loop {
        let n = recv_type(ws, "system_notification").await;
        if n["kind"] == kind && n["device_code"] == device {
            return n;
        }
    }
}

/// The next `system_notification` of `kind`, waiting up to `within` (an uplink reconnects
/// with backoff: longer than [`recv`]'s bound for one message).
async fn notified_within(ws: &mut Ws, kind: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} notification within {within:?}"))
            .expect("connection open")
            .expect("no error");
        if let Message::Text(text) = next {
            let v: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if v["type"] == "system_notification" && v["kind"] == kind {
                return v;
            }
        }
    }
}

/// A raw WebSocket upgrade of `path` from `source` with `extra` header lines: the response as
/// sent, less its `date` header.
async fn handshake(addr: SocketAddr, source: &str, path: &str, extra: &str) -> String {
    upgrade(addr, source, path, extra).await.0
}

/// [`handshake`], keeping the connection (open while the stream lives).
async fn upgrade(addr: SocketAddr, source: &str, path: &str, extra: &str) -> (String, TcpStream) {
    let socket = TcpSocket::new_v4().expect("socket");
    let source: IpAddr = source.parse().expect("an address");
    socket.bind(SocketAddr::new(source, 0)).expect("bind");
    let mut stream = socket.connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let l = l.to_ascii_lowercase();
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().expect("a length"))
                    })
                    .unwrap_or(0);
                if bytes.len() >= end + 4 + length {
                    return text
                        .split_inclusive("\r\n")
                        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
                        .collect::<String>();
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed mid-response: {text}");
            bytes.extend_from_slice(&chunk[..n]);
        }
    };
    let response = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("an answer within 30 s");
    (response, stream)
}

#[tokio::test]
async fn a_wrong_or_missing_admin_token_gets_the_devices_401_and_the_console_cap_holds() {
    let dir = tempfile::tempdir().unwrap();
    let toml = config(dir.path(), &devices(), "[limits]\nmax_admins = 2\n");
    let gw = Gateway::start(dir.path(), &toml);
    // Each refusal from an address of its own, so none is held back for repeated failures.
    let refused = [
        ("127.0.0.2", "/ws/esp32/nobody/", String::new()),
        ("127.0.0.3", "/ws/admin/", String::new()),
        (
            "127.0.0.4",
            "/ws/admin/?token=not-the-admin-token",
            String::new(),
        ),
        (
            "127.0.0.5",
            "/ws/admin",
            "Authorization: Bearer wrong\r\n".to_owned(),
        ),
        (
            "127.0.0.6",
            "/ws/admin/?token=token-racket-01",
            String::new(),
        ),
    ];
    let mut answers = Vec::new();
    for (source, path, extra) in &refused {
        answers.push(handshake(gw.addr, source, path, extra).await);
    }
    assert!(answers[0].starts_with("HTTP/1.1 401 "), "{}", answers[0]);
    for (answer, (_, path, _)) in answers.iter().zip(&refused) {
        assert_eq!(answer, &answers[0], "{path}");
    }
    gw.wait_log("refused an admin console", Duration::from_secs(10));

    // The bearer header works like the query, without the trailing slash too.
    let bearer = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    let (accepted, first) = upgrade(gw.addr, "127.0.0.7", "/ws/admin", &bearer).await;
    assert!(accepted.starts_with("HTTP/1.1 101 "), "{accepted}");
    let _second = console(&gw).await;
    // The cap: a third console is turned away while two are connected …
    let full = handshake(gw.addr, "127.0.0.8", "/ws/admin/", &bearer).await;
    assert!(full.starts_with("HTTP/1.1 503 "), "{full}");
    assert!(full.contains("max_admins"), "{full}");
    // … and welcome again once one has gone.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let again = handshake(gw.addr, "127.0.0.8", "/ws/admin/", &bearer).await;
        if again.starts_with("HTTP/1.1 101 ") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{again}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_an_admin_token_the_console_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let toml =
        config(dir.path(), &devices(), "").replace(&format!("admin_token = \"{ADMIN_TOKEN}\""), "");
    let gw = Gateway::start(dir.path(), &toml);
    let answer = handshake(
        gw.addr,
        "127.0.0.1",
        &format!("/ws/admin/?token={ADMIN_TOKEN}"),
        "",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}

#[tokio::test]
async fn every_request_is_answered_and_a_bad_one_names_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), ""));
    let mut racket = device(&gw, RACKET).await;
    send(
        &mut racket,
        &json!({"type": "heartbeat", "device_code": RACKET, "timestamp": 1, "battery": 87, "rssi": -61, "fw": "V3.3"}),
    )
    .await;
    recv_type(&mut racket, "heartbeat_response").await;
    let mut admin = console(&gw).await;

    let pong = ask(&mut admin, json!({"type": "ping"}), "pong").await;
    assert!(
        pong["timestamp"].as_i64().unwrap() > 1_600_000_000_000,
        "{pong}"
    );
    // The console counts under its role on /metrics, beside the device.
    let metrics = ureq::get(&gw.http_url("/metrics"))
        .call()
        .expect("/metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    for role in ["admin", "device"] {
        let line = format!("shuttlegate_clients_connected{{role=\"{role}\"}} 1");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }

    let status = ask(
        &mut admin,
        json!({"type": "get_system_status"}),
        "system_status",
    )
    .await;
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{status}");
    assert_eq!(
        status["devices"],
        json!({"configured": 2, "online": 1}),
        "{status}"
    );
    assert!(
        status["journal"]["max_bytes"].as_u64().unwrap() > 0,
        "{status}"
    );
    assert!(status["journal"]["bytes"].as_u64().unwrap() > 0, "{status}");
    assert!(status["uplinks"].as_array().unwrap().is_empty(), "{status}");
    assert!(status["uptime_s"].is_u64(), "{status}");
    assert_eq!(status["load"].as_array().map(Vec::len), Some(3), "{status}");
    assert!(
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "admin-notices"),
        "{status}"
    );

    let list = ask(
        &mut admin,
        json!({"type": "get_device_list"}),
        "device_list",
    )
    .await;
    let listed = list["devices"].as_array().expect("devices");
    assert_eq!(listed.len(), 2, "{list}");
    let racket_row = &listed[0];
    assert_eq!(racket_row["device_code"], RACKET, "{list}");
    assert_eq!(racket_row["online"], true, "{list}");
    assert_eq!(racket_row["peer"], "127.0.0.1", "{list}");
    assert_eq!(racket_row["battery"], 87.0, "{list}");
    assert_eq!(racket_row["firmware"], "V3.3", "{list}");
    assert_eq!(racket_row["swings_today"], 0, "{list}");
    assert_eq!(racket_row["batches_today"], 0, "{list}");
    assert_eq!(racket_row["nodes"], json!([]), "{list}");
    assert_eq!(racket_row["rejects"], json!({}), "{list}");
    assert_eq!(listed[1]["online"], false, "{list}");
    assert!(listed[1]["peer"].is_null(), "{list}");

    // Sessions, started and ended from the console, reach the device.
    let started = ask(
        &mut admin,
        json!({"type": "start_session", "device_code": RACKET, "session_id": "s-41"}),
        "start_session_response",
    )
    .await;
    assert_eq!(
        started,
        json!({"type": "start_session_response", "device_code": RACKET, "session_id": "s-41", "status": "calibrating"})
    );
    let push = recv_type(&mut racket, "start_collection").await;
    assert_eq!(push["session_id"], "s-41", "{push}");
    let list = ask(
        &mut admin,
        json!({"type": "get_device_list"}),
        "device_list",
    )
    .await;
    assert_eq!(
        list["devices"][0]["session"]["session_id"], "s-41",
        "{list}"
    );
    let ended = ask(
        &mut admin,
        json!({"type": "end_session", "device_code": RACKET}),
        "end_session_response",
    )
    .await;
    assert_eq!(ended["session_id"], "s-41", "{ended}");
    assert_eq!(ended["status"], "stopping", "{ended}");
    recv_type(&mut racket, "stop_collection").await;

    // Bad input: an `error` naming the field; the console stays connected.
    let bad = [
        (json!({"type": "reboot"}), "type"),
        (
            json!({"type": "end_session", "device_code": "a b"}),
            "device_code",
        ),
        (
            json!({"type": "send_command", "device_code": RACKET, "command": "explode"}),
            "command",
        ),
        (
            json!({"type": "send_command", "device_code": RACKET, "command": "set_batch", "params": {"batch_size": 0}}),
            "params.batch_size",
        ),
        (
            json!({"type": "start_session", "device_code": RACKET, "session_id": "s\n1"}),
            "session_id",
        ),
        (
            json!({"type": "end_session", "device_code": "nobody"}),
            "device_code",
        ),
    ];
    for (request, field) in bad {
        let error = ask(&mut admin, request.clone(), "error").await;
        assert_eq!(error["field"], field, "{request} → {error}");
        assert!(!error["error"].as_str().unwrap().is_empty(), "{error}");
    }
    let unknown = ask(
        &mut admin,
        json!({"type": "end_session", "device_code": "nobody"}),
        "error",
    )
    .await;
    assert_eq!(unknown["code"], "unknown_device", "{unknown}");
    let no_session = ask(
        &mut admin,
        json!({"type": "end_session", "device_code": SPARE}),
        "error",
    )
    .await;
    assert_eq!(no_session["code"], "conflict", "{no_session}");
    admin.send(Message::text("{not json")).await.unwrap();
    let error = recv_type(&mut admin, "error").await;
    assert!(
        error["error"].as_str().unwrap().starts_with("not JSON"),
        "{error}"
    );
    admin.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let error = recv_type(&mut admin, "error").await;
    assert!(
        error["error"].as_str().unwrap().contains("JSON text"),
        "{error}"
    );
    ask(&mut admin, json!({"type": "ping"}), "pong").await;
}

#[tokio::test]
async fn a_command_reaches_the_device_and_its_ack_and_status_response_come_back_as_results() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), ""));
    let mut racket = device(&gw, RACKET).await;
    let mut admin = console(&gw).await;

    let sent = ask(
        &mut admin,
        json!({"type": "send_command", "device_code": RACKET, "command": "set_batch", "params": {"batch_size": 60}, "command_id": "op-1"}),
        "send_command_response",
    )
    .await;
    assert_eq!(sent["delivered"], "pushed", "{sent}");
    assert_eq!(sent["device_code"], RACKET, "{sent}");
    let command_id = sent["command_id"].as_u64().expect("the gateway's id");
    let push = recv_type(&mut racket, "set_batch").await;
    assert_eq!(push["command_id"], command_id.to_string(), "{push}");
    assert_eq!(push["batch_size"], 60, "{push}");
    // A retry of the operator's id is not run again.
    let again = ask(
        &mut admin,
        json!({"type": "send_command", "device_code": RACKET, "command": "set_batch", "params": {"batch_size": 60}, "command_id": "op-1"}),
        "send_command_response",
    )
    .await;
    assert_eq!(
        (
            &again["delivered"],
            &again["first"],
            again["command_id"].as_u64()
        ),
        (&json!("duplicate"), &json!("pending"), Some(command_id)),
        "{again}"
    );
    send(
        &mut racket,
        &json!({"type": "ack", "command_id": push["command_id"], "success": true}),
    )
    .await;
    let result = recv_type(&mut admin, "command_result").await;
    assert_eq!(
        result,
        json!({"type": "command_result", "device_code": RACKET, "command_id": command_id, "success": true})
    );

    // get_status is answered by the device's status_response, which comes back as the result.
    let sent = ask(
        &mut admin,
        json!({"type": "send_command", "device_code": RACKET, "command": "get_status"}),
        "send_command_response",
    )
    .await;
    let status_id = sent["command_id"].as_u64().unwrap();
    let push = recv_type(&mut racket, "get_status").await;
    send(
        &mut racket,
        &json!({"type": "status_response", "command_id": push["command_id"],
                "connection": {"wifi_connected": true}, "stats": {"blocks_sent": 42}, "system": {"free_heap": 123456}}),
    )
    .await;
    let result = recv_type(&mut admin, "command_result").await;
    assert_eq!(result["command_id"], status_id, "{result}");
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["response"]["stats"]["blocks_sent"], 42, "{result}");
    // Answered, the get_status is done: a reconnecting device is not asked again.
    drop(racket);
    let mut racket = device(&gw, RACKET).await;
    send(&mut racket, &json!({"type": "ping"})).await;
    let next = recv(&mut racket).await;
    assert_eq!(next["type"], "pong", "no command pushed again: {next}");

    // A device that is not connected gets its command queued.
    let queued = ask(
        &mut admin,
        json!({"type": "send_command", "device_code": SPARE, "command": "sync"}),
        "send_command_response",
    )
    .await;
    assert_eq!(queued["delivered"], "queued", "{queued}");
    let mut spare = device(&gw, SPARE).await;
    let push = recv_type(&mut spare, "sync").await;
    assert_eq!(
        push["command_id"],
        queued["command_id"].as_u64().unwrap().to_string()
    );
    send(
        &mut spare,
        &json!({"type": "ack", "command_id": push["command_id"], "success": false}),
    )
    .await;
    let result = recv_type(&mut admin, "command_result").await;
    assert_eq!(result["success"], false, "{result}");
    assert_eq!(result["device_code"], SPARE, "{result}");
}

#[tokio::test]
async fn a_device_going_offline_is_notified_and_a_console_connecting_later_is_told_it_still_is() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), ""));
    let mut admin = console(&gw).await;
    let racket = device(&gw, RACKET).await;
    let online = notified(&mut admin, "device_online", RACKET).await;
    assert_eq!(online["level"], "info", "{online}");
    assert!(
        online["ts"].as_i64().unwrap() > 1_600_000_000_000,
        "{online}"
    );
    drop(racket);
    let offline = notified(&mut admin, "device_offline", RACKET).await;
    assert_eq!(offline["level"], "warning", "{offline}");
    assert!(
        offline["message"].as_str().unwrap().contains(RACKET),
        "{offline}"
    );

    // A console that connects now hears of the condition still active, at once.
    let mut late = connect(&console_url(&gw)).await;
    assert_eq!(recv(&mut late).await["type"], "connection_established");
    let active = recv(&mut late).await;
    assert_eq!(active, offline, "the condition as it was raised");

    // Back online: both consoles are told, and the condition is over.
    let _racket = device(&gw, RACKET).await;
    notified(&mut admin, "device_online", RACKET).await;
    notified(&mut late, "device_online", RACKET).await;
    // Nothing is active any more: a new console's first message after the welcome is the
    // answer to its ping.
    let mut third = console(&gw).await;
    send(&mut third, &json!({"type": "ping"})).await;
    let first = recv(&mut third).await;
    assert_eq!(first["type"], "pong", "{first}");
}

#[tokio::test]
async fn an_uplink_losing_its_broker_is_notified_down_then_up_and_down_is_active_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = uplink_support::Broker::start(dir.path());
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let extra = format!(
        "[uplink.mqtt]\nenabled = true\nurl = \"{}\"\ntopic_prefix = \"sg\"\n",
        broker.url()
    );
    let gw = Gateway::start(&state, &config(&state, &devices(), &extra));
    let mut admin = console(&gw).await;
    // The sink connects: system_status says so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = ask(
            &mut admin,
            json!({"type": "get_system_status"}),
            "system_status",
        )
        .await;
        let mqtt = &status["uplinks"][0];
        assert_eq!(mqtt["sink"], "mqtt", "{status}");
        if mqtt["connected"] == true {
            assert!(mqtt["backlog_records"].is_u64(), "{status}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never connected: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    broker.stop();
    let down = notified_within(&mut admin, "uplink_down", Duration::from_secs(30)).await;
    assert_eq!(down["level"], "error", "{down}");
    assert!(down["message"].as_str().unwrap().contains("mqtt"), "{down}");
    let mut late = connect(&console_url(&gw)).await;
    assert_eq!(recv(&mut late).await["type"], "connection_established");
    assert_eq!(
        recv(&mut late).await,
        down,
        "the active condition, as raised"
    );

    broker.restart();
    // Reconnects back off up to 10 s; the notice follows within a sample (2 s).
    let up = notified_within(&mut admin, "uplink_up", Duration::from_secs(60)).await;
    assert_eq!(up["level"], "info", "{up}");
    notified_within(&mut late, "uplink_up", Duration::from_secs(30)).await;
}

/// A compact batch of `rows` six-channel samples that do not compress (arbitrary floats), so a
/// few of them fill a small journal.
fn incompressible(session: &str, seq: u64, rows: usize) -> Value {
    let mut state = seq
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
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

#[tokio::test]
async fn a_filling_then_full_journal_is_notified_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let journal = "[journal]\nmax_bytes = \"2MiB\"\nsegment_bytes = \"1MiB\"\nwhen_full = \"refuse\"\ndevice_share = 1.0\n";
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), journal));
    let mut admin = console(&gw).await;
    let mut racket = device(&gw, RACKET).await;
    // ~10 KB journaled per batch: past 80 % of 2 MiB after about 170.
    let mut seq = 0;
    let mut filling = None;
    loop {
        send(&mut racket, &incompressible("fill", seq, 300)).await;
        let reply = recv_type(&mut racket, "batch_sensor_data_response").await;
        assert_eq!(reply["success"], true, "not full yet at 80 %: {reply}");
        seq += 1;
        // The notification may come while the status is asked for: keep it, do not skip it.
        send(&mut admin, &json!({"type": "get_system_status"})).await;
        let status = loop {
            let v = recv(&mut admin).await;
            if v["type"] == "system_notification" && v["kind"] == "journal_filling" {
                filling.get_or_insert(v);
            } else if v["type"] == "system_status" {
                break v;
            }
        };
        let journal = &status["journal"];
        let (bytes, max) = (
            journal["bytes"].as_u64().unwrap(),
            journal["max_bytes"].as_u64().unwrap(),
        );
        if bytes * 100 >= max * 82 {
            break;
        }
        assert!(seq < 1000, "{status}");
    }
    let filling = match filling {
        Some(seen) => seen,
        None => notified_within(&mut admin, "journal_filling", Duration::from_secs(30)).await,
    };
    assert_eq!(filling["level"], "warning", "{filling}");
    // On until the journal refuses even one sample.
    let mut rows = 300;
    loop {
        send(&mut racket, &incompressible("fill", seq, rows)).await;
        let reply = recv_type(&mut racket, "batch_sensor_data_response").await;
        seq += 1;
        if reply["success"] == false {
            if rows == 1 {
                break;
            }
            rows /= 2;
        }
        assert!(
            seq < 2000,
            "2 MiB of incompressible batches fill the journal"
        );
    }
    let full = notified_within(&mut admin, "journal_full", Duration::from_secs(30)).await;
    assert_eq!(full["level"], "error", "{full}");
    // Still active: a console connecting now hears of it first, as it was raised.
    let mut late = connect(&console_url(&gw)).await;
    assert_eq!(recv(&mut late).await["type"], "connection_established");
    assert_eq!(recv(&mut late).await, full);
}

#[tokio::test]
async fn a_console_that_vanished_gives_its_seat_back_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let limits = "[limits]\nmax_admins = 1\nidle_timeout = \"3s\"\n";
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), limits));
    let bearer = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    // Upgraded, then silent: it answers no ping (a console whose Wi-Fi is gone, no FIN).
    let (accepted, _vanished) = upgrade(gw.addr, "127.0.0.2", "/ws/admin/", &bearer).await;
    assert!(accepted.starts_with("HTTP/1.1 101 "), "{accepted}");
    let full = handshake(gw.addr, "127.0.0.3", "/ws/admin/", &bearer).await;
    assert!(
        full.starts_with("HTTP/1.1 503 "),
        "the one seat is taken: {full}"
    );
    // A console that answers pings (tungstenite does while it reads) keeps its seat past it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut admin = loop {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(console_url(&gw)).await {
            break ws;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the seat never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    gw.wait_log("nothing heard for 3s", Duration::from_secs(10));
    assert_eq!(recv(&mut admin).await["type"], "connection_established");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ask(&mut admin, json!({"type": "ping"}), "pong").await;
    }
    // Reading only (tungstenite answers the gateway's pings by itself), sending nothing, for
    // more than twice the idle timeout: still connected.
    let quiet_until = tokio::time::Instant::now() + Duration::from_secs(7);
    let mut pinged = 0;
    while let Ok(next) = tokio::time::timeout_at(quiet_until, admin.next()).await {
        match next.expect("still open").expect("no error") {
            Message::Ping(_) => pinged += 1,
            Message::Close(frame) => panic!("closed while answering pings: {frame:?}"),
            _ => {}
        }
    }
    assert!(pinged >= 2, "pinged every 1.5 s: {pinged}");
    ask(&mut admin, json!({"type": "ping"}), "pong").await;
}

/// `bind_user` from the console is a journaled court event (so it survives a restart), the
/// device list names the bound player from then on, and a device the court does not know is
/// refused naming it.
#[tokio::test]
async fn bind_user_is_answered_once_journaled_and_an_unknown_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices(), ""));
    let mut admin = console(&gw).await;
    let bound = ask(
        &mut admin,
        json!({"type": "bind_user", "device_code": RACKET, "user_id": "u-42"}),
        "bind_user_response",
    )
    .await;
    assert_eq!(bound["success"], true, "{bound}");
    assert_eq!(bound["user_id"], "u-42", "{bound}");
    let list = ask(
        &mut admin,
        json!({"type": "get_device_list"}),
        "device_list",
    )
    .await;
    let racket = list["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["device_code"] == RACKET))
        .unwrap_or_else(|| panic!("{RACKET} listed: {list}"));
    assert_eq!(
        racket["user"], "u-42",
        "the bound player, not the configured one: {racket}"
    );
    let refused = ask(
        &mut admin,
        json!({"type": "bind_user", "device_code": "nobody-01", "user_id": "u-42"}),
        "error",
    )
    .await;
    assert!(refused.to_string().contains("nobody-01"), "{refused}");
    drop(admin);
    assert!(gw.terminate().success());
    let events = export(dir.path(), &[]);
    let journaled = events
        .iter()
        .filter(|r| r["kind"] == "event")
        .filter(|r| r["type"] == "user_bound" && r["device"] == RACKET && r["user"] == "u-42")
        .count();
    assert_eq!(journaled, 1, "one user_bound event in the journal");
}
