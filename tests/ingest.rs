//! The device side of the real daemon, over real WebSockets: handshakes, every message and its
//! reply, the V3.3 conversation verbatim, durability bookkeeping (duplicates, gaps), limits.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const DEVICES: &[(&str, Option<&str>)] = &[
    ("racket-01", Some("tok-racket-01")),
    ("2025001", None),
    ("d3", Some("token-d3-x")),
];

fn gateway(extra: &str) -> (tempfile::TempDir, Gateway) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), DEVICES, extra);
    let gw = Gateway::start(dir.path(), &cfg);
    (dir, gw)
}

fn compact(session: &str, seq: u64, rows: usize) -> Value {
    let samples: Vec<Value> = (0..rows)
        .map(|i| json!([0.02, -0.98, 0.11, 1.5 + i as f64, -0.4, 0.2]))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": session, "seq": seq, "sensor_id": 4,
           "t0": 1732400000123i64 + seq as i64 * 100, "rate_hz": 1000, "samples": samples})
}

async fn status_of_handshake(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

#[tokio::test]
async fn handshakes_with_an_unknown_device_or_a_wrong_token_are_refused_with_401() {
    let (_dir, gw) = gateway("");
    assert_eq!(status_of_handshake(&gw.ws_url("nobody")).await, 401);
    let wrong = format!("{}?token=nope", gw.ws_url("racket-01"));
    assert_eq!(status_of_handshake(&wrong).await, 401);
    assert_eq!(
        status_of_handshake(&gw.ws_url("racket-01")).await,
        401,
        "token required"
    );
    let right = format!("{}?token=tok-racket-01", gw.ws_url("racket-01"));
    assert_eq!(status_of_handshake(&right).await, 101);
    // The refusal is logged with the device code and the peer, never the token.
    let line = gw.wait_log("refused device `racket-01`", Duration::from_secs(5));
    assert!(line.contains("127.0.0.1"), "{line}");
    assert!(!gw.log().iter().any(|l| l.contains("nope")));
}

#[tokio::test]
async fn a_bearer_header_is_accepted_as_the_token() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (_dir, gw) = gateway("");
    let mut request = gw.ws_url("d3").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", "Bearer token-d3-x".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(recv(&mut ws).await["type"], "connection_established");
}

#[tokio::test]
async fn every_device_message_gets_its_seed_reply() {
    let (_dir, gw) = gateway("");
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "connection_established");
    assert_eq!(hello["device_code"], "racket-01");
    assert!(hello["server_time"].as_i64().unwrap() > 1_700_000_000_000);

    send(&mut ws, &json!({"type":"heartbeat","device_code":"racket-01","timestamp":456789,"battery":87,"rssi":-61,"fw":"V3.3"})).await;
    let hb = recv(&mut ws).await;
    assert_eq!(hb["type"], "heartbeat_response");
    assert_eq!(hb["status"], "ok");
    assert_eq!(hb["device_code"], "racket-01");
    assert!(hb["server_time"].is_i64() && hb["timestamp"].is_string());

    send(&mut ws, &compact("s-0017", 0, 100)).await;
    let r = recv(&mut ws).await;
    assert_eq!(
        (
            r["type"].as_str(),
            r["success"].as_bool(),
            r["total_items"].as_u64()
        ),
        (Some("batch_sensor_data_response"), Some(true), Some(100))
    );
    assert_eq!(
        (r["successful_items"].as_u64(), r["failed_items"].as_u64()),
        (Some(100), Some(0))
    );
    assert_eq!(
        (
            r["session_id"].as_str(),
            r["seq"].as_u64(),
            r["durable"].as_bool()
        ),
        (Some("s-0017"), Some(0), Some(true))
    );

    send(&mut ws, &json!({"type":"sensor_data","session_id":"s-0017","data":{"acc":[0.02,-0.98,0.11],"gyro":[1.5,-0.4,0.2],"sensor_id":4,"timestamp":1732400000123i64}})).await;
    let r = recv(&mut ws).await;
    assert_eq!(r["type"], "sensor_data_response");
    assert_eq!(r["success"], true);
    assert!(r["data_id"].as_u64().is_some());
    assert!(r["timestamp"].as_str().unwrap().ends_with("+08:00"), "{r}");

    send(&mut ws, &json!({"type":"status_update","status":"START_COLLECTION_CONFIRMED","session_id":"s-0017"})).await;
    let r = recv(&mut ws).await;
    assert_eq!(r["type"], "status_update_response");
    assert_eq!(
        (r["status"].as_str(), r["session_id"].as_str()),
        (Some("START_COLLECTION_CONFIRMED"), Some("s-0017"))
    );

    send(
        &mut ws,
        &json!({"type":"poll_commands","current_session":"","status":"idle"}),
    )
    .await;
    let r = recv(&mut ws).await;
    assert_eq!(r["type"], "command_response");
    assert_eq!(r["command"], Value::Null);
    assert_eq!(r["commands"], json!([]));

    send(&mut ws, &json!({"type":"ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");

    // The firmware's own answers are accepted silently (the seed backend errored on them):
    // the next reply is the heartbeat's.
    send(
        &mut ws,
        &json!({"type":"ack","command_id":"999","success":true}),
    )
    .await;
    send(&mut ws, &json!({"type":"status_response","command_id":"1","connection":{},"device":{"firmware_version":"V3.3"},"stats":{},"system":{}})).await;
    send(
        &mut ws,
        &json!({"type":"heartbeat","device_code":"racket-01","timestamp":1}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "heartbeat_response");

    send(
        &mut ws,
        &json!({"type":"upload_complete","session_id":"s-0017","batches":1}),
    )
    .await;
    let r = recv(&mut ws).await;
    assert_eq!(r["type"], "upload_complete_response");
    assert_eq!(r["missing_seqs"], json!([]));
}

#[tokio::test]
async fn bad_messages_get_a_named_error_and_the_connection_stays_open() {
    let (_dir, gw) = gateway("");
    let mut ws = connect(&format!("{}?token=token-d3-x", gw.ws_url("d3"))).await;
    recv(&mut ws).await;
    ws.send(Message::text("not json")).await.unwrap();
    let e = recv(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("invalid_json"))
    );
    assert_eq!(e["device_code"], "d3");

    let mut bad = compact("s", 0, 2);
    bad["seq"] = json!(-1);
    send(&mut ws, &bad).await;
    let e = recv(&mut ws).await;
    assert_eq!(e["code"], "invalid_field");
    assert_eq!(e["field"], "seq");
    assert!(e["error"].as_str().unwrap().contains("seq"), "{e}");

    send(&mut ws, &json!({"type":"teleport"})).await;
    assert_eq!(recv(&mut ws).await["code"], "unknown_type");

    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "binary_unsupported");

    send(&mut ws, &json!({"type":"ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong", "still open");
}

/// The V3.3 firmware's conversation, message for message as SPEC §1.1 and SEED-SYSTEM.md give
/// it: no token, pushed start, 30-frame mixed-node batches with HHMMSSmmm stamps, stop,
/// upload_complete.
#[tokio::test]
async fn a_v33_conversation_works_unchanged() {
    let (_dir, gw) = gateway("");
    let mut ws = connect(&gw.ws_url("2025001")).await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "connection_established");
    assert_eq!(hello["message"], "connected");

    let (status, started) = gw.admin(
        "/api/devices/2025001/sessions",
        json!({"session_id": "123"}),
    );
    assert_eq!(status, 200, "{started}");
    let push = recv_type(&mut ws, "start_collection").await;
    assert_eq!(push["command"], "START_COLLECTION");
    assert_eq!(push["session_id"], "123");
    assert_eq!(push["device_code"], "2025001");
    let command_id = push["command_id"].clone();
    assert!(command_id.is_string(), "{push}");
    send(
        &mut ws,
        &json!({"type":"ack","command_id":command_id,"success":true,"timestamp":5000}),
    )
    .await;

    for batch in 0..3u64 {
        let frames: Vec<Value> = (0..30)
            .map(|i| {
                let sensor = 1 + (i % 4);
                json!({"acc":[0.01,-0.02,0.99],"gyro":[1.2,-3.4,0.5],"angle":[2.1,-0.4,87.0],
                       "sensor_id":sensor,"timestamp":93015123 + batch as i64 * 100 + (i / 4) as i64 * 10})
            })
            .collect();
        send(
            &mut ws,
            &json!({"type":"batch_sensor_data","device_code":"2025001","sensor_type":"waist",
            "timestamp":123456,"session_id":"123","data":frames}),
        )
        .await;
        let r = recv_type(&mut ws, "batch_sensor_data_response").await;
        assert_eq!(r["success"], true);
        assert_eq!(r["total_items"], 30);
        assert_eq!(r["successful_items"], 30);
        assert_eq!(r["failed_items"], 0);
        assert_eq!(r["session_id"], "123");
        assert_eq!(
            r["seq"], batch,
            "the gateway numbers V3.3 batches in arrival order"
        );
        assert_eq!(r["durable"], true);
    }

    let (status, _) = gw.admin("/api/devices/2025001/sessions/end", json!({}));
    assert_eq!(status, 200);
    let stop = recv_type(&mut ws, "stop_collection").await;
    assert_eq!(stop["command"], "STOP_COLLECTION");
    send(
        &mut ws,
        &json!({"type":"ack","command_id":stop["command_id"],"success":true}),
    )
    .await;
    send(&mut ws, &json!({"type":"upload_complete","session_id":"123","device_code":"2025001","timestamp":99999})).await;
    let done = recv_type(&mut ws, "upload_complete_response").await;
    assert_eq!(done["session_id"], "123");
    assert_eq!(done["missing_seqs"], json!([]));

    // Exactly what was sent is in the journal, in seed form.
    let batches: Vec<Value> = gw
        .export(&["--device", "2025001"])
        .into_iter()
        .filter(|r| r["kind"] == "batch")
        .collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0]["data"][0]["timestamp"], 93015123);
    assert_eq!(batches[0]["data"][0]["acc"], json!([0.01, -0.02, 0.99]));
    assert_eq!(batches[0]["sensor_type"], "waist");
}

#[tokio::test]
async fn a_resent_batch_is_answered_again_but_stored_once() {
    let (_dir, gw) = gateway("");
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    recv(&mut ws).await;
    for _ in 0..3 {
        send(&mut ws, &compact("dup", 5, 10)).await;
        let r = recv(&mut ws).await;
        assert_eq!(
            (r["seq"].as_u64(), r["durable"].as_bool()),
            (Some(5), Some(true))
        );
    }
    drop(ws);
    let batches = gw.export(&["--session", "dup"]);
    assert_eq!(batches.iter().filter(|r| r["kind"] == "batch").count(), 1);
}

#[tokio::test]
async fn upload_complete_names_the_missing_seqs_until_they_arrive() {
    let (_dir, gw) = gateway("");
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    recv(&mut ws).await;
    for seq in [0, 1, 2, 3, 4, 5, 6, 9] {
        send(&mut ws, &compact("gap", seq, 5)).await;
    }
    send(
        &mut ws,
        &json!({"type":"upload_complete","session_id":"gap","batches":10}),
    )
    .await;
    let r = recv_type(&mut ws, "upload_complete_response").await;
    assert_eq!(r["missing_seqs"], json!([7, 8]));
    assert_eq!(r["message"], "resend missing batches");
    for seq in [7, 8] {
        send(&mut ws, &compact("gap", seq, 5)).await;
    }
    send(
        &mut ws,
        &json!({"type":"upload_complete","session_id":"gap","batches":10}),
    )
    .await;
    let r = recv_type(&mut ws, "upload_complete_response").await;
    assert_eq!(r["missing_seqs"], json!([]));
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let (_dir, gw) = gateway("[limits]\nmax_message_bytes = \"4KiB\"\n");
    let mut ws = connect(&format!("{}?token=token-d3-x", gw.ws_url("d3"))).await;
    recv(&mut ws).await;
    send(&mut ws, &compact("big", 0, 200)).await;
    assert_eq!(closed_with(&mut ws).await, 1009);
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    use tokio::io::AsyncWriteExt;
    let (_dir, gw) = gateway("");
    // A hand-made masked text frame whose payload is not UTF-8.
    let mut ws = connect(&format!("{}?token=token-d3-x", gw.ws_url("d3"))).await;
    recv(&mut ws).await;
    let payload = [0xff_u8, 0xfe, 0xfd];
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    match ws.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.write_all(&frame).await.unwrap(),
        _ => unreachable!("plain ws"),
    }
    assert_eq!(closed_with(&mut ws).await, 1007);
}

#[tokio::test]
async fn a_device_over_its_rate_is_refused_then_closed_with_4008() {
    let (_dir, gw) = gateway("[limits]\nmessages_per_second = 5\nrate_limit_strikes = 2\n");
    let mut ws = connect(&format!("{}?token=token-d3-x", gw.ws_url("d3"))).await;
    recv(&mut ws).await;
    for _ in 0..8 {
        send(&mut ws, &json!({"type":"ping"})).await;
    }
    let mut limited = false;
    for _ in 0..8 {
        let v = recv(&mut ws).await;
        limited |= v["code"] == "rate_limited";
    }
    assert!(limited, "an error rate_limited first");
    // Keep flooding across windows: the connection is closed with 4008.
    let flood = async {
        loop {
            if ws.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Ok(Some(Ok(Message::Close(Some(f))))) = tokio::time::timeout(
                Duration::from_millis(1),
                futures_util::StreamExt::next(&mut ws),
            )
            .await
            {
                return u16::from(f.code);
            }
        }
        closed_with(&mut ws).await
    };
    let code = tokio::time::timeout(Duration::from_secs(10), flood)
        .await
        .expect("closed in time");
    assert_eq!(code, 4008);
}

#[tokio::test]
async fn a_second_connection_of_a_device_replaces_the_first() {
    let (_dir, gw) = gateway("");
    let url = format!("{}?token=token-d3-x", gw.ws_url("d3"));
    let mut first = connect(&url).await;
    recv(&mut first).await;
    let mut second = connect(&url).await;
    recv(&mut second).await;
    assert_eq!(closed_with(&mut first).await, 4001);
    send(&mut second, &json!({"type":"ping"})).await;
    assert_eq!(recv(&mut second).await["type"], "pong");
}

#[tokio::test]
async fn an_idle_device_is_disconnected_and_marked_offline() {
    let (_dir, gw) = gateway("[limits]\nidle_timeout = \"1s\"\n");
    let mut ws = connect(&format!("{}?token=token-d3-x", gw.ws_url("d3"))).await;
    recv(&mut ws).await;
    assert_eq!(closed_with(&mut ws).await, 4003);
    gw.wait_log("idle for", Duration::from_secs(5));
}

#[tokio::test]
async fn sigterm_lets_in_flight_batches_reach_fsync_then_exits_zero() {
    let (dir, gw) = gateway("");
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    recv(&mut ws).await;
    for seq in 0..200 {
        send(&mut ws, &compact("term", seq, 50)).await;
    }
    // SIGTERM while replies are still coming: every batch answered durable must be stored.
    let term = tokio::task::spawn_blocking(move || gw.terminate());
    let mut acked = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(
        Duration::from_secs(15),
        futures_util::StreamExt::next(&mut ws),
    )
    .await
    {
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["durable"] == true {
                    acked.push(v["seq"].as_u64().unwrap());
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let status = term.await.unwrap();
    assert!(status.success(), "{status:?}");
    let stored: Vec<u64> = export(dir.path(), &["--session", "term"])
        .iter()
        .filter(|r| r["kind"] == "batch")
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    for seq in &acked {
        assert!(stored.contains(seq), "acked seq {seq} not stored");
    }
    assert!(!acked.is_empty());
}

#[tokio::test]
async fn a_restart_resumes_sessions_and_pushes_unacknowledged_commands_again() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), DEVICES, "");
    let gw = Gateway::start(dir.path(), &cfg);
    let (status, _) = gw.admin("/api/devices/2025001/sessions", json!({"session_id": "77"}));
    assert_eq!(status, 200);
    // The device is offline: the start is queued, journaled, and the gateway then dies.
    gw.kill();
    let gw = Gateway::start_with(dir.path(), &dir.path().join("court.toml"));
    let mut ws = connect(&gw.ws_url("2025001")).await;
    assert_eq!(recv(&mut ws).await["type"], "connection_established");
    let push = recv_type(&mut ws, "start_collection").await;
    assert_eq!(push["session_id"], "77");
    // The session is still open after the restart: a second start is refused, naming it.
    let (status, body) = gw.admin("/api/devices/2025001/sessions", json!({}));
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("`77`"), "{body}");
    // Once acked, a reconnect brings no push.
    send(
        &mut ws,
        &json!({"type":"ack","command_id":push["command_id"],"success":true}),
    )
    .await;
    send(&mut ws, &json!({"type":"ping"})).await;
    recv_type(&mut ws, "pong").await;
    drop(ws);
    let mut ws = connect(&gw.ws_url("2025001")).await;
    recv(&mut ws).await;
    send(&mut ws, &json!({"type":"ping"})).await;
    assert_eq!(
        recv(&mut ws).await["type"],
        "pong",
        "no command pushed again"
    );
}

/// V3.3 sends batch after batch without waiting for replies: the gateway numbers them in the
/// order they arrived, and stores them in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_v33_batches_are_numbered_and_stored_in_arrival_order() {
    let (_dir, gw) = gateway("[limits]\nmessages_per_second = 10000\n");
    let mut ws = connect(&gw.ws_url("2025001")).await;
    recv(&mut ws).await;
    const N: i64 = 200;
    for batch in 0..N {
        let frames: Vec<Value> = (0..30)
            .map(|i| {
                json!({"acc":[0.01,-0.02,0.99],"gyro":[1.2,-3.4,0.5],"angle":[2.1,-0.4,87.0],
                            "sensor_id": 1 + i % 4, "timestamp": 93_000_000 + batch * 100 + i})
            })
            .collect();
        send(
            &mut ws,
            &json!({"type":"batch_sensor_data","device_code":"2025001","sensor_type":"waist",
            "timestamp": batch, "session_id":"pipe","data":frames}),
        )
        .await;
    }
    for expected in 0..N {
        let r = recv_type(&mut ws, "batch_sensor_data_response").await;
        assert_eq!(
            r["seq"], expected,
            "replies in order, numbered in arrival order"
        );
    }
    let stored: Vec<(u64, i64)> = gw
        .export(&["--session", "pipe"])
        .iter()
        .filter(|r| r["kind"] == "batch")
        .map(|r| (r["seq"].as_u64().unwrap(), r["timestamp"].as_i64().unwrap()))
        .collect();
    let expected: Vec<(u64, i64)> = (0..N).map(|b| (b as u64, b)).collect();
    assert_eq!(stored, expected, "seq n is the n-th batch sent");
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

/// Issue 11: a court change whose event the journal refuses is reported as failed, not as done
/// (it would not survive a restart).
#[tokio::test]
async fn a_session_start_the_journal_cannot_store_fails_the_admin_call() {
    let (_dir, gw) = gateway(
        "[journal]\nmax_bytes = \"2MiB\"\nsegment_bytes = \"1MiB\"\nwhen_full = \"refuse\"\ndevice_share = 1.0\n",
    );
    let mut ws = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    recv_type(&mut ws, "connection_established").await;
    // ~10 KB journaled per batch (300 arbitrary six-channel samples, under the 64 KiB message
    // limit as JSON): about 200 fill 2 MiB. Each refusal halves the batch, until not even one
    // sample fits: then no court event fits either.
    let (mut rows, mut full) = (300, false);
    for seq in 0..1000 {
        send(&mut ws, &incompressible("fill", seq, rows)).await;
        let reply = recv_type(&mut ws, "batch_sensor_data_response").await;
        if reply["success"] == false {
            if rows == 1 {
                full = true;
                break;
            }
            rows /= 2;
        }
    }
    assert!(full, "2 MiB of incompressible batches fill the journal");
    let (status, body) = gw.admin("/api/devices/d3/sessions", json!({"session_id": "s-full"}));
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not journaled") && error.contains("journal full"),
        "{error}"
    );
}
