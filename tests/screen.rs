//! Courtside screens on the real daemon (`/ws/dashboard/`): the `court_state` snapshot in its
//! public and staff views, the live swings, rallies and session updates of the whole court, the
//! screen cap, and a stalled screen that slows neither another screen nor the device acks.

mod common;

use std::time::Duration;

use common::{ADMIN_TOKEN, Gateway, Ws, config, read_response, recv, recv_type, send};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A court of `players` (`player-01`… with tokens, bound to users `u-1`…) plus `extra` config.
fn court(dir: &std::path::Path, players: usize, extra: &str) -> String {
    let codes: Vec<(String, String)> = (1..=players)
        .map(|i| (format!("player-{i:02}"), format!("token-player-{i:02}")))
        .collect();
    let devices: Vec<(&str, Option<&str>)> = codes
        .iter()
        .map(|(c, t)| (c.as_str(), Some(t.as_str())))
        .collect();
    let mut toml = config(dir, &devices, extra);
    for i in 1..=players {
        let code = format!("code = \"player-{i:02}\"\n");
        toml = toml.replace(&code, &format!("{code}user = \"u-{i}\"\n"));
    }
    toml
}

fn screen_url(gw: &Gateway, token: Option<&str>) -> String {
    match token {
        Some(token) => format!("ws://{}/ws/dashboard/?token={token}", gw.addr),
        None => format!("ws://{}/ws/dashboard/", gw.addr),
    }
}

/// A screen past its welcome; returns it with its first `court_state`.
async fn screen(gw: &Gateway, token: Option<&str>) -> (Ws, Value) {
    let mut ws = common::connect(&screen_url(gw, token)).await;
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "connection_established", "{welcome}");
    assert_eq!(welcome["role"], "screen", "{welcome}");
    let state = recv(&mut ws).await;
    assert_eq!(state["type"], "court_state", "{state}");
    (ws, state)
}

async fn handshake(gw: &Gateway, path: &str) -> String {
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        gw.addr
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    tokio::time::timeout(Duration::from_secs(30), read_response(&mut stream))
        .await
        .expect("an answer within 30 s")
}

fn metrics(gw: &Gateway) -> String {
    ureq::get(&gw.http_url("/metrics"))
        .call()
        .expect("/metrics")
        .body_mut()
        .read_to_string()
        .expect("text")
}

fn metric(body: &str, sample: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample `{sample}` in\n{body}"))
        .parse()
        .expect("a number")
}

/// Reads until `done` holds or `limit` passes.
async fn collect<S>(ws: &mut S, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while !done(&seen) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => seen.push(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("screen connection ended: {other:?}"),
            Err(_) => break,
        }
    }
    seen
}

fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_view_shows_the_players_without_addresses_and_the_staff_view_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &court(dir.path(), 2, ""));
    // player-01 online, so it has a peer address to hide.
    let mut device =
        common::connect(&format!("{}?token=token-player-01", gw.ws_url("player-01"))).await;
    recv_type(&mut device, "connection_established").await;
    send(
        &mut device,
        &json!({"type": "heartbeat", "device_code": "player-01", "timestamp": 1, "battery": 87, "rssi": -61, "fw": "V3.3"}),
    )
    .await;
    recv_type(&mut device, "heartbeat_response").await;

    let (_public_ws, public) = screen(&gw, None).await;
    assert_eq!(public["view"], "public", "{public}");
    assert_eq!(
        (public["venue"].as_str(), public["court"].as_str()),
        (Some("test-venue"), Some("court-1"))
    );
    let players = public["players"].as_array().expect("players");
    let codes: Vec<&str> = players
        .iter()
        .map(|p| p["device_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["player-01", "player-02"]);
    let first = &players[0];
    assert_eq!(
        (first["online"].as_bool(), first["user"].as_str()),
        (Some(true), Some("u-1"))
    );
    assert_eq!(
        (first["battery"].as_f64(), first["rssi"].as_f64()),
        (Some(87.0), Some(-61.0))
    );
    assert_eq!(first["stats"], Value::Null, "no swing yet");
    assert_eq!(players[1]["online"], false);
    let text = public.to_string();
    for hidden in [
        "peer",
        "127.0.0.1",
        "firmware",
        "V3.3",
        "pending_commands",
        "last_error",
    ] {
        assert!(
            !text.contains(hidden),
            "`{hidden}` in the public view: {text}"
        );
    }
    assert_eq!(public["journal"]["failing"], false, "{public}");
    assert!(
        public["journal"]["max_bytes"].as_u64().unwrap() > 0,
        "{public}"
    );
    assert_eq!(public["rallies"]["rallies"], 0, "{public}");

    let (mut staff_ws, staff) = screen(&gw, Some(ADMIN_TOKEN)).await;
    assert_eq!(staff["view"], "staff", "{staff}");
    assert_eq!(staff["players"][0]["peer"], "127.0.0.1", "{staff}");
    assert_eq!(staff["players"][0]["firmware"], "V3.3", "{staff}");

    // Screens only listen, but answer a ping.
    send(&mut staff_ws, &json!({"type": "ping"})).await;
    let pong = recv_type(&mut staff_ws, "pong").await;
    assert!(pong["timestamp"].as_i64().unwrap() > 0, "{pong}");
    send(&mut staff_ws, &json!({"type": "start_session"})).await;
    let refused = recv_type(&mut staff_ws, "error").await;
    assert_eq!(refused["field"], "type", "{refused}");

    // A wrong admin token is the generic 401, not a quiet downgrade to the public view.
    let answer = handshake(&gw, "/ws/dashboard/?token=not-the-admin-token").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let body = metrics(&gw);
    assert_eq!(
        metric(&body, "shuttlegate_clients_connected{role=\"screen\"}"),
        2.0
    );
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_gets_every_swing_of_the_court_with_rallies_session_updates_and_fresh_court_states()
 {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &court(dir.path(), 2, ""));
    let (mut ws, _) = screen(&gw, None).await;
    let play = common::play_court(&gw, 2, Duration::from_secs(15), 1313);
    // The court completes a session once its summary is out: both come, in that order.
    let summaries = |m: &[Value]| {
        let completed = of_type(m, "session_update")
            .iter()
            .filter(|u| u["status"] == "completed")
            .count();
        of_type(m, "analysis_complete_notification").len() >= 2 && completed >= 2
    };
    let (_, seen) = tokio::join!(play, collect(&mut ws, Duration::from_secs(90), summaries));
    assert!(summaries(&seen), "both sessions summarised on the screen");
    let swings = of_type(&seen, "swing");
    let journaled: Vec<Value> = gw
        .export(&[])
        .into_iter()
        .filter(|r| r["kind"] == "swing")
        .collect();
    assert!(!journaled.is_empty(), "the players swung");
    // Every swing of the court, whoever it belongs to, with its journal id.
    let mut pushed: Vec<u64> = swings.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    let mut stored: Vec<u64> = journaled
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    pushed.sort_unstable();
    stored.sort_unstable();
    assert_eq!(pushed, stored);
    for device in ["player-01", "player-02"] {
        assert!(swings.iter().any(|s| s["device"] == device), "{device}");
        let states: Vec<&str> = of_type(&seen, "session_update")
            .iter()
            .filter(|u| u["device_code"] == device)
            .map(|u| u["status"].as_str().unwrap())
            .collect();
        assert!(
            states.contains(&"collecting") && states.contains(&"completed"),
            "{device}: {states:?}"
        );
    }
    assert!(
        !of_type(&seen, "rally_update").is_empty(),
        "a court of two plays rallies"
    );
    // The court_state pushed after the play counts what the screen was shown.
    let state = recv_type(&mut ws, "court_state").await;
    let tallied: u64 = state["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["stats"]["swings"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(tallied, swings.len() as u64, "{state}");
    assert!(
        state["players"][0]["stats"]["last_swing"]["stroke"].is_string(),
        "{state}"
    );
    let rally_ends = of_type(&seen, "rally_update")
        .iter()
        .filter(|r| r["event"] == "rally_end")
        .count();
    assert!(
        state["rallies"]["rallies"].as_u64().unwrap() >= rally_ends as u64,
        "{state}"
    );
    assert!(
        !of_type(&seen, "court_state").is_empty(),
        "court_state pushed as the court changed"
    );
    // Each swing written to the screen was timed from its completing batch.
    let body = metrics(&gw);
    assert_eq!(
        metric(&body, "shuttlegate_swing_pushes_total{role=\"screen\"}"),
        swings.len() as f64
    );
    assert!(
        metric(
            &body,
            "shuttlegate_swing_push_latency_max_seconds{role=\"screen\"}"
        ) > 0.0
    );
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screens_over_max_screens_are_refused_with_503_counted_and_a_freed_place_is_taken_again() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &court(dir.path(), 1, "[limits]\nmax_screens = 1\n"),
    );
    let (ws, _) = screen(&gw, None).await;
    let answer = handshake(&gw, "/ws/dashboard/").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("max_screens"), "{answer}");
    let body = metrics(&gw);
    assert_eq!(
        metric(
            &body,
            "shuttlegate_client_cap_refusals_total{role=\"screen\"}"
        ),
        1.0
    );
    drop(ws);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = handshake(&gw, "/ws/dashboard/").await;
        if answer.starts_with("HTTP/1.1 101") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was not freed: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_screen_slows_neither_another_screen_nor_the_acks_and_is_told_it_lagged() {
    use shuttlegate_sim::client::Firmware;
    use shuttlegate_sim::fleet::{self, FleetOptions, FleetProgress, Motion};
    let dir = tempfile::tempdir().unwrap();
    // Swings are a trickle; the flood that overflows a screen is session changes of `FLOOD`
    // offline devices, started and ended over the admin API while two real players play (and
    // the court_states that list all of them).
    const FLOOD: usize = 200;
    let mut toml = court(
        dir.path(),
        2,
        "[limits]\noutbound_queue = 16\nidle_timeout = \"300s\"\n",
    );
    for i in 0..FLOOD {
        toml.push_str(&format!(
            "\n[[devices]]\ncode = \"flood-{i:03}\"\nallow_tokenless = true\n"
        ));
    }
    let gw = Gateway::start(dir.path(), &toml);
    // The stalled screen never reads; a tiny receive window keeps the kernels' buffers small,
    // so the flood reaches the gateway's own queue for it.
    let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    raw.set_recv_buffer_size(2048).unwrap();
    raw.set_tcp_mss(536).unwrap();
    raw.set_nonblocking(true).unwrap();
    let stream = TcpSocket::from_std_stream(raw.into())
        .connect(gw.addr)
        .await
        .unwrap();
    let (mut stalled, _) = tokio_tungstenite::client_async(screen_url(&gw, None), stream)
        .await
        .expect("admitted");
    let (mut reading, _) = screen(&gw, None).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let reader = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                tokio::select! {
                    () = stop.cancelled() => return seen,
                    m = reading.next() => match m {
                        Some(Ok(Message::Text(t))) => seen.push(serde_json::from_str::<Value>(t.as_str()).unwrap()),
                        Some(Ok(_)) => {}
                        other => panic!("the reading screen was cut off: {other:?}"),
                    },
                }
            }
        })
    };
    let options = FleetOptions {
        url: format!("ws://{}", gw.addr),
        devices: 2,
        firmware: Firmware::Compact,
        rate_hz: 200.0,
        duration: Duration::from_secs(10),
        code_prefix: "player-".into(),
        token_prefix: Some("token-player-".into()),
        batch_samples: 40,
        utc_offset_s: 8 * 3600,
        seed: 1314,
        motion: Motion::Court,
    };
    let fleet = fleet::run(options, std::sync::Arc::new(FleetProgress::default()), None);
    let flood = tokio::task::spawn_blocking({
        let url = gw.http_url("");
        move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            for i in 0..FLOOD {
                for path in ["sessions", "sessions/end"] {
                    let status = agent
                        .post(&format!("{url}/api/devices/flood-{i:03}/{path}"))
                        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
                        .send_json(json!({}))
                        .expect("admin call")
                        .status()
                        .as_u16();
                    assert!(
                        (200..300).contains(&status),
                        "flood-{i:03} {path}: {status}"
                    );
                }
            }
        }
    });
    let (reports, flooded) =
        tokio::join!(tokio::time::timeout(Duration::from_secs(60), fleet), flood);
    flooded.expect("the flood ran");
    for (code, report) in reports.expect("the fleet finishes") {
        let report = report.expect("device ran");
        assert!(report.upload_complete, "{code}");
        assert_eq!(
            report.batches_acked, report.batches_sent,
            "{code}: {report:?}"
        );
        assert_eq!(
            (report.resends, report.reconnects),
            (0, 0),
            "{code}: {report:?}"
        );
        assert!(report.errors.is_empty(), "{code}: {report:?}");
    }
    // Let the last court_state and summaries reach the reading screen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let seen = reader.await.expect("reader");
    assert!(
        of_type(&seen, "lagged").is_empty(),
        "the reading screen lagged"
    );
    assert!(
        of_type(&seen, "session_update").len() >= 2 * FLOOD,
        "{} updates",
        of_type(&seen, "session_update").len()
    );
    // Now the stalled screen reads: what fit in its queue, and notices of what did not.
    let late = collect(&mut stalled, Duration::from_secs(30), |m| {
        !of_type(m, "lagged").is_empty()
    })
    .await;
    let lagged = of_type(&late, "lagged");
    assert!(!lagged.is_empty(), "{} messages, none `lagged`", late.len());
    let told: u64 = lagged.iter().map(|l| l["dropped"].as_u64().unwrap()).sum();
    assert!(told > 0);
    let counted = metric(
        &metrics(&gw),
        "shuttlegate_client_pushes_dropped_total{role=\"screen\"}",
    );
    assert!(counted >= told as f64, "{counted} counted, {told} told");
    gw.terminate();
}
