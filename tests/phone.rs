//! Players' phones on the real daemon (`/ws/miniprogram/{user_id}/`): JWT refusals that look
//! like every other refusal, the welcome and the answers, swings pushed to the bound user's phone
//! only, a token that expires, the phone cap, and a stalled phone that slows nobody.
//!
//! Tokens are signed here with `jsonwebtoken`, as the cloud would; `alg: none` is crafted by hand.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{ADMIN_TOKEN, Gateway, Ws, closed_with, config, read_response, recv, recv_type, send};
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const JWT_SECRET: &str = "cloud-signing-secret";

/// `{"alg":"none","typ":"JWT"}`, base64url.
const ALG_NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

const UNAUTHORIZED: &str = "HTTP/1.1 401 Unauthorized\r\n";

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token for `sub` signed with `secret`, expiring `exp_in` seconds from now.
fn token(sub: Value, exp_in: i64, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &json!({"sub": sub, "exp": now_s() + exp_in}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn good_token(user: &str) -> String {
    token(json!(user), 3600, JWT_SECRET)
}

/// A court of `players` (`player-01`… bound to users `u-1`…) with phones on HS256.
fn court(dir: &std::path::Path, players: usize, extra: &str) -> String {
    let codes: Vec<(String, String)> = (1..=players)
        .map(|i| (format!("player-{i:02}"), format!("token-player-{i:02}")))
        .collect();
    let devices: Vec<(&str, Option<&str>)> = codes
        .iter()
        .map(|(c, t)| (c.as_str(), Some(t.as_str())))
        .collect();
    let mut toml = config(dir, &devices, extra);
    toml = toml.replace(
        "[auth]\n",
        &format!("[auth]\njwt_secret = \"{JWT_SECRET}\"\n"),
    );
    for i in 1..=players {
        let code = format!("code = \"player-{i:02}\"\n");
        toml = toml.replace(&code, &format!("{code}user = \"u-{i}\"\n"));
    }
    toml
}

fn phone_url(gw: &Gateway, user: &str, token: &str) -> String {
    format!("ws://{}/ws/miniprogram/{user}/?token={token}", gw.addr)
}

async fn phone(gw: &Gateway, user: &str) -> Ws {
    let mut ws = common::connect(&phone_url(gw, user, &good_token(user))).await;
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "connection_established", "{welcome}");
    ws
}

/// A TCP connection to the gateway from `source` (inside 127.0.0.0/8), any port.
async fn tcp_from(source: &str, gateway: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let source: IpAddr = source.parse().expect("an address");
    socket.bind(SocketAddr::new(source, 0)).expect("bind");
    tokio::time::timeout(Duration::from_secs(10), socket.connect(gateway))
        .await
        .expect("connects within 10 s")
        .expect("connect")
}

/// A WebSocket upgrade of `path` from `source`, with `extra` header lines; the response as
/// sent, less its `date` header (the only part allowed to differ).
async fn handshake(gw: &Gateway, source: &str, path: &str, extra: &str) -> String {
    let mut stream = tcp_from(source, gw.addr).await;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n",
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

#[tokio::test]
async fn every_jwt_refusal_is_the_same_401_as_a_refused_device_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &court(dir.path(), 1, ""));
    let signed = good_token("u-1");
    let payload = signed.split('.').nth(1).unwrap();
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &json!({"sub": "u-1", "exp": now_s() + 3600}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let refused = [
        ("no token", String::new()),
        ("bad signature", token(json!("u-1"), 3600, "not-the-cloud")),
        ("wrong sub", good_token("u-2")),
        (
            "expired past the leeway",
            token(json!("u-1"), -120, JWT_SECRET),
        ),
        ("alg none", format!("{ALG_NONE_HEADER}.{payload}.")),
        ("HS512", hs512),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    let baseline = handshake(&gw, "127.0.0.9", "/ws/esp32/nobody/", "").await;
    assert!(baseline.starts_with(UNAUTHORIZED), "{baseline}");
    assert!(baseline.ends_with("\r\n\r\nunauthorized\n"), "{baseline}");
    // Each from its own address, so none is held back by the failures before it.
    for (i, (what, jwt)) in refused.iter().enumerate() {
        let source = format!("127.0.0.{}", 10 + i);
        let by_query = handshake(
            &gw,
            &source,
            &format!("/ws/miniprogram/u-1/?token={jwt}"),
            "",
        )
        .await;
        assert_eq!(by_query, baseline, "{what}");
    }
    let by_header = handshake(
        &gw,
        "127.0.0.30",
        "/ws/miniprogram/u-1",
        &format!("Authorization: Bearer {}\r\n", good_token("u-2")),
    )
    .await;
    assert_eq!(by_header, baseline, "a wrong sub in the header");
    let body = metrics(&gw);
    assert_eq!(
        metric(&body, "shuttlegate_auth_refusals_total{reason=\"bad_jwt\"}"),
        (refused.len() + 1) as f64
    );
    // The log arrives through a pipe, after the answers: gather it until every reason is in.
    let reasons = [
        "no token presented",
        "`sub` is `u-2`",
        "expired at",
        "signature",
    ];
    let mut log = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !reasons.iter().all(|r| log.contains(r)) && std::time::Instant::now() < deadline {
        for line in gw.log() {
            log.push_str(&line);
            log.push('\n');
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for reason in reasons {
        assert!(log.contains(reason), "no `{reason}` in the log:\n{log}");
    }
    assert!(!log.contains(payload), "a token was logged:\n{log}");

    // The right token is admitted, by query or by header, with a numeric `sub` as its text.
    let mut ws = phone(&gw, "u-1").await;
    send(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws/miniprogram/42",
            gw.addr
        ))
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(json!(42), 60, JWT_SECRET))
            .parse()
            .unwrap(),
    );
    let (mut numeric, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("admitted");
    assert_eq!(recv(&mut numeric).await["type"], "connection_established");
    gw.terminate();
}

#[tokio::test]
async fn a_phone_is_welcomed_and_answered_and_a_bad_request_gets_an_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &court(dir.path(), 1, ""));
    let mut ws = phone(&gw, "u-1").await;
    send(&mut ws, &json!({"type": "ping"})).await;
    let pong = recv(&mut ws).await;
    assert_eq!(pong["type"], "pong");
    assert!(
        pong["timestamp"].as_i64().unwrap() > 1_600_000_000_000,
        "{pong}"
    );

    for (request, field) in [
        (json!("not an object"), "message"),
        (json!({"type": "dance"}), "type"),
        (json!({"type": "session_status"}), "session_id"),
        (
            json!({"type": "session_status", "session_id": "a b"}),
            "session_id",
        ),
        (
            json!({"type": "start_session", "device_code": "player-02"}),
            "device_code",
        ),
        (
            json!({"type": "session_status", "session_id": "nobody-s"}),
            "session_id",
        ),
    ] {
        send(&mut ws, &request).await;
        let error = recv(&mut ws).await;
        assert_eq!(error["type"], "error", "{request} → {error}");
        assert_eq!(error["field"], field, "{request} → {error}");
        assert!(!error["error"].as_str().unwrap().is_empty(), "{error}");
    }

    send(
        &mut ws,
        &json!({"type": "start_session", "session_id": "s-phone-1"}),
    )
    .await;
    let started = recv_type(&mut ws, "start_session_response").await;
    assert_eq!(
        started,
        json!({"type": "start_session_response", "device_code": "player-01",
               "session_id": "s-phone-1", "status": "calibrating"})
    );
    let update = recv_type(&mut ws, "session_update").await;
    assert_eq!(update["session_id"], "s-phone-1");
    assert_eq!(update["status"], "calibrating");

    send(
        &mut ws,
        &json!({"type": "session_status", "session_id": "s-phone-1"}),
    )
    .await;
    let status = recv_type(&mut ws, "session_status_response").await;
    assert_eq!(status["session_id"], "s-phone-1");
    let info = &status["session_info"];
    assert_eq!(info["id"], "s-phone-1");
    assert_eq!(info["status"], "calibrating");
    assert!(
        info["start_time"].as_str().unwrap().ends_with('Z'),
        "{info}"
    );
    assert_eq!(info["end_time"], Value::Null);

    send(&mut ws, &json!({"type": "end_session"})).await;
    let ended = recv_type(&mut ws, "end_session_response").await;
    assert_eq!(
        ended,
        json!({"type": "end_session_response", "device_code": "player-01",
               "session_id": "s-phone-1", "status": "stopping"})
    );
    let update = recv_type(&mut ws, "session_update").await;
    assert_eq!(
        (&update["session_id"], &update["status"]),
        (&json!("s-phone-1"), &json!("stopping"))
    );

    // The court's own refusal reaches the phone as an error: the stopping session is still
    // open (waiting for the device's upload), so another cannot start.
    send(&mut ws, &json!({"type": "start_session"})).await;
    let error = recv_type(&mut ws, "error").await;
    assert_eq!(error["request"], "start_session", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("s-phone-1"),
        "{error}"
    );
    gw.terminate();
}

/// Reads `ws` until `done` says so or `limit` passes; returns every JSON message read.
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
            Ok(other) => panic!("phone connection ended: {other:?}"),
            Err(_) => break,
        }
    }
    seen
}

fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind).collect()
}

fn summarised(messages: &[Value]) -> bool {
    !of_type(messages, "analysis_complete_notification").is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swings_reach_the_bound_users_phone_and_not_another_users() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &court(dir.path(), 2, ""));
    let mut first = phone(&gw, "u-1").await;
    let mut second = phone(&gw, "u-2").await;
    let mut nobody = phone(&gw, "u-9").await;
    let limit = Duration::from_secs(90);
    // A phone of u-1 that connects mid-session gets the swings so far from the journal first.
    let late = async {
        tokio::time::sleep(Duration::from_secs(12)).await;
        let mut ws = phone(&gw, "u-1").await;
        let connected_ms = now_s() * 1000;
        let seen = collect(&mut ws, limit, summarised).await;
        (connected_ms, seen)
    };
    let (_, seen_first, second, nobody, (late_connected_ms, late)) = tokio::join!(
        common::play_court(&gw, 2, Duration::from_secs(15), 1301),
        collect(&mut first, limit, summarised),
        collect(&mut second, limit, summarised),
        collect(&mut nobody, Duration::from_secs(20), |_| false),
        late,
    );
    let ids = |m: &[Value]| -> Vec<u64> {
        of_type(m, "swing")
            .iter()
            .map(|s| s["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(&late),
        ids(&seen_first),
        "the late phone's swings, each once"
    );
    let before = of_type(&late, "swing")
        .iter()
        .filter(|s| s["t_end"].as_f64().unwrap() < late_connected_ms as f64)
        .count();
    assert!(
        before > 0,
        "no swing before the late phone connected: nothing to catch up"
    );
    let first_messages = seen_first;
    for (messages, device) in [(&first_messages, "player-01"), (&second, "player-02")] {
        let swings = of_type(messages, "swing");
        assert!(!swings.is_empty(), "{device}: no swing pushed");
        assert!(
            swings.iter().all(|s| s["device"] == device),
            "{device}: {swings:?}"
        );
        assert!(
            swings.iter().all(|s| s["id"].as_u64().is_some()),
            "journal ids"
        );
        let summaries = of_type(messages, "analysis_complete_notification");
        assert!(
            summaries.iter().all(|s| s["device"] == device),
            "{summaries:?}"
        );
        let updates = of_type(messages, "session_update");
        assert!(!updates.is_empty(), "{device}: no session_update");
        assert!(
            updates.iter().all(|u| u["device_code"] == device),
            "{device}: {updates:?}"
        );
        assert!(
            !of_type(messages, "rally_update").is_empty(),
            "{device}: no rally_update"
        );
    }
    assert!(
        of_type(&nobody, "swing").is_empty(),
        "an unbound user got swings"
    );
    assert!(of_type(&nobody, "session_update").is_empty());

    // The summaries are read back from the journal: the history, and one by its id.
    let summary = of_type(&first_messages, "analysis_complete_notification")[0].clone();
    send(&mut first, &json!({"type": "session_history", "limit": 5})).await;
    let history = recv_type(&mut first, "session_history_response").await;
    assert_eq!(history["count"], 1, "{history}");
    assert_eq!(history["sessions"][0], summary);
    send(
        &mut first,
        &json!({"type": "get_analysis", "session_id": summary["session_id"]}),
    )
    .await;
    assert_eq!(
        recv_type(&mut first, "analysis_complete_notification").await,
        summary
    );
    let theirs = &of_type(&second, "analysis_complete_notification")[0]["session_id"];
    send(
        &mut first,
        &json!({"type": "get_analysis", "session_id": theirs}),
    )
    .await;
    let error = recv_type(&mut first, "error").await;
    assert_eq!(
        error["field"], "session_id",
        "another user's session: {error}"
    );
    gw.terminate();
}

#[tokio::test]
async fn a_socket_whose_token_expires_is_closed_with_4001() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &court(dir.path(), 1, ""));
    // Expired 22 s ago: still inside the 30 s leeway, so it has about 8 s left.
    let jwt = token(json!("u-1"), -22, JWT_SECRET);
    let mut ws = common::connect(&phone_url(&gw, "u-1", &jwt)).await;
    assert_eq!(recv(&mut ws).await["type"], "connection_established");
    assert_eq!(closed_with(&mut ws).await, 4001);
    gw.terminate();
}

#[tokio::test]
async fn phones_over_max_phones_are_refused_with_503_and_a_freed_place_is_taken_again() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &court(dir.path(), 1, "[limits]\nmax_phones = 1\n"),
    );
    let ws = phone(&gw, "u-1").await;
    let path = format!("/ws/miniprogram/u-1/?token={}", good_token("u-1"));
    let answer = handshake(&gw, "127.0.0.1", &path, "").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(ws);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = handshake(&gw, "127.0.0.1", &path, "").await;
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
async fn a_stalled_phone_slows_neither_another_phone_nor_the_acks_and_is_told_it_lagged() {
    use shuttlegate_sim::client::Firmware;
    use shuttlegate_sim::fleet::{self, FleetOptions, FleetProgress, Motion};
    let dir = tempfile::tempdir().unwrap();
    // Real play is a trickle (a swing every few seconds): the flood that overflows a phone here
    // is session changes, from `FLOOD` offline devices of u-1 whose sessions its reading phone
    // starts and ends while two real players play.
    const FLOOD: usize = 600;
    let mut toml = court(dir.path(), 2, "[limits]\noutbound_queue = 16\n");
    for i in 0..FLOOD {
        toml.push_str(&format!(
            "\n[[devices]]\ncode = \"flood-{i:03}\"\nallow_tokenless = true\nuser = \"u-1\"\n"
        ));
    }
    let gw = Gateway::start(dir.path(), &toml);
    // The stalled phone never reads. Its tiny receive window and segment size keep what the
    // kernels buffer for it small (loopback's default 64 KiB segments would let the gateway's
    // send buffer grow to megabytes), so the flood reaches the gateway's own queue.
    let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    raw.set_recv_buffer_size(2048).unwrap();
    raw.set_tcp_mss(536).unwrap();
    raw.set_nonblocking(true).unwrap();
    let socket = TcpSocket::from_std_stream(raw.into());
    let stream = socket.connect(gw.addr).await.unwrap();
    let (mut stalled, _) =
        tokio_tungstenite::client_async(phone_url(&gw, "u-1", &good_token("u-1")), stream)
            .await
            .expect("admitted");
    let mut reading = phone(&gw, "u-1").await;
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
        seed: 1302,
        motion: Motion::Court,
    };
    let fleet = fleet::run(options, std::sync::Arc::new(FleetProgress::default()), None);
    let flood = async {
        let mut updates = 0;
        for i in 0..FLOOD {
            let device = format!("flood-{i:03}");
            for (request, reply) in [
                ("start_session", "start_session_response"),
                ("end_session", "end_session_response"),
            ] {
                send(
                    &mut reading,
                    &json!({"type": request, "device_code": device}),
                )
                .await;
                loop {
                    let message = recv(&mut reading).await;
                    assert_ne!(message["type"], "lagged", "the reading phone lagged");
                    updates += usize::from(message["type"] == "session_update");
                    if message["type"] == reply {
                        assert_eq!(message["device_code"], device.as_str(), "{message}");
                        break;
                    }
                }
            }
        }
        updates
    };
    let (reports, updates) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(60), fleet),
        tokio::time::timeout(Duration::from_secs(240), flood),
    );
    assert!(
        updates.expect("the flood is answered") > FLOOD,
        "session_updates reached the reading phone"
    );
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
    // Now the stalled phone reads: what fit in its queue and the kernels' buffers, and notices
    // of what did not; together they account for every change of its sessions.
    let accounted = |m: &[Value]| {
        let dropped: u64 = of_type(m, "lagged")
            .iter()
            .map(|l| l["dropped"].as_u64().unwrap())
            .sum();
        of_type(m, "session_update").len() + dropped as usize
    };
    let late = collect(&mut stalled, Duration::from_secs(60), |m| {
        accounted(m) >= 2 * FLOOD
    })
    .await;
    let lagged = of_type(&late, "lagged");
    assert!(!lagged.is_empty(), "{} messages, none `lagged`", late.len());
    assert!(
        lagged.iter().all(|l| l["dropped"].as_u64().unwrap() > 0),
        "{lagged:?}"
    );
    assert!(
        accounted(&late) >= 2 * FLOOD,
        "{} accounted for",
        accounted(&late)
    );
    // The fan-out's lag is on /metrics too, as many as the phone was told of.
    let told: u64 = lagged.iter().map(|l| l["dropped"].as_u64().unwrap()).sum();
    let body = metrics(&gw);
    let line = body
        .lines()
        .find(|l| l.starts_with("shuttlegate_client_pushes_dropped_total{role=\"phone\"}"))
        .unwrap_or_else(|| panic!("no phone drops on /metrics:\n{body}"));
    let counted: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(counted >= told, "{counted} counted, {told} told");
    gw.terminate();
}

/// The daemon in this process (for `CourtHandle::bind_user`, which the admin WebSocket will
/// call), on the court of [`court`] with `player-01`'s configured user `configured`.
async fn in_process(dir: &std::path::Path, configured: &str) -> shuttlegate::daemon::Running {
    let toml = court(dir, 1, "").replace("user = \"u-1\"", &format!("user = \"{configured}\""));
    let path = dir.join("court.toml");
    std::fs::write(&path, &toml).unwrap();
    let settings = shuttlegate::config::load_str(&path, &toml).expect("valid config");
    shuttlegate::daemon::start(&settings, shuttlegate::court::system_clock())
        .await
        .expect("daemon starts")
}

async fn in_process_phone(running: &shuttlegate::daemon::Running, user: &str) -> Ws {
    let url = format!(
        "ws://{}/ws/miniprogram/{user}/?token={}",
        running.http_addr,
        good_token(user)
    );
    let mut ws = common::connect(&url).await;
    assert_eq!(recv(&mut ws).await["type"], "connection_established");
    ws
}

/// Asks for a session on the user's only device; the device code it went to, or the error.
async fn start_on_my_device(ws: &mut Ws) -> Value {
    send(ws, &json!({"type": "start_session"})).await;
    loop {
        let m = recv(ws).await;
        if m["type"] == "start_session_response" || m["type"] == "error" {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_user_gets_the_device_survives_a_restart_and_yields_to_a_new_configured_user() {
    let dir = tempfile::tempdir().unwrap();
    let running = in_process(dir.path(), "u-1").await;
    let mut bound = in_process_phone(&running, "u-7").await;
    let mut configured = in_process_phone(&running, "u-1").await;
    running
        .court
        .bind_user("player-01", "u-7", Some("u-1".into()))
        .await
        .expect("journaled");
    let started = start_on_my_device(&mut bound).await;
    assert_eq!(started["device_code"], "player-01", "{started}");
    let update = recv_type(&mut bound, "session_update").await;
    assert_eq!(update["status"], "calibrating");
    let refused = start_on_my_device(&mut configured).await;
    assert_eq!(refused["field"], "device_code", "{refused}");
    drop((bound, configured));
    running.stop().await.expect("stops");

    // Restarted on the same journal: the binding is back.
    let running = in_process(dir.path(), "u-1").await;
    let mut bound = in_process_phone(&running, "u-7").await;
    send(&mut bound, &json!({"type": "end_session"})).await;
    let ended = recv_type(&mut bound, "end_session_response").await;
    assert_eq!(ended["device_code"], "player-01", "{ended}");
    drop(bound);
    running.stop().await.expect("stops");

    // The device's configured user changed: the new one wins over the old binding.
    let running = in_process(dir.path(), "u-3").await;
    let mut bound = in_process_phone(&running, "u-7").await;
    let refused = start_on_my_device(&mut bound).await;
    assert_eq!(refused["field"], "device_code", "{refused}");
    let mut now_configured = in_process_phone(&running, "u-3").await;
    send(&mut now_configured, &json!({"type": "end_session"})).await;
    let ended = recv_type(&mut now_configured, "end_session_response").await;
    assert_eq!(ended["device_code"], "player-01", "{ended}");
    drop((bound, now_configured));
    running.stop().await.expect("stops");
}

/// A player bound by the staff console (`bind_user`) is the one named in the device's results,
/// not only the one its phone hears from: the swings and summary of the next session carry the
/// bound user, in the journal (and so to the cloud) as on the phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_of_a_bound_device_name_the_bound_player() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &court(dir.path(), 2, ""));
    let console_url = format!("ws://{}/ws/admin/?token={ADMIN_TOKEN}", gw.addr);
    let mut console = common::connect(&console_url).await;
    send(
        &mut console,
        &json!({"type": "bind_user", "device_code": "player-02", "user_id": "u-1"}),
    )
    .await;
    let bound = recv_type(&mut console, "bind_user_response").await;
    assert_eq!(bound["success"], true, "{bound}");
    common::play_court(&gw, 2, Duration::from_secs(15), 1301).await;
    // The summaries are journaled once each device's upload is complete.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let records = loop {
        let records = gw.export(&[]);
        if records.iter().filter(|r| r["kind"] == "summary").count() == 2 {
            break records;
        }
        assert!(std::time::Instant::now() < deadline, "no two summaries");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (device, user) in [("player-01", "u-1"), ("player-02", "u-1")] {
        let results: Vec<&Value> = records
            .iter()
            .filter(|r| r["device"] == device)
            .filter(|r| r["kind"] == "swing" || r["kind"] == "summary")
            .collect();
        assert!(
            results.iter().any(|r| r["kind"] == "swing"),
            "{device}: no swing in 15 s of rallies"
        );
        for r in results {
            assert_eq!(r["user"], user, "{device}: {r}");
        }
    }
}
