//! Authentication hygiene against a hostile host on the court LAN, tried on the real daemon:
//! refusals that cannot be told apart, a device code that cannot forge a log line, an address
//! that keeps failing slowed down while a good device elsewhere connects, a tokenless code that
//! a second hub cannot take, `allowed_peers`, and a ping flood closed with 4008.
//!
//! Clients bind their source address inside 127.0.0.0/8 (Linux routes all of it to loopback),
//! so "another address on the LAN" is 127.0.0.2 or 127.0.0.3.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Gateway, Ws, closed_with, config, read_response, recv, recv_type, send};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const GOOD: &str = "127.0.0.2";
const HOSTILE: &str = "127.0.0.3";

/// A TCP connection to the gateway from `source` (any port).
async fn tcp_from(source: &str, gateway: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let source: IpAddr = source.parse().expect("an address");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind the source address");
    tokio::time::timeout(Duration::from_secs(10), socket.connect(gateway))
        .await
        .expect("connects within 10 s")
        .expect("connect")
}

/// A WebSocket upgrade of `path` sent from `source`, with `extra` header lines; returns the
/// response as sent, less its `date` header (the only part allowed to differ), and how long
/// the answer took.
async fn handshake(gw: &Gateway, source: &str, path: &str, extra: &str) -> (String, Duration) {
    let mut stream = tcp_from(source, gw.addr).await;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n",
        gw.addr
    );
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.expect("write");
    let response = tokio::time::timeout(Duration::from_secs(30), read_response(&mut stream))
        .await
        .expect("an answer within 30 s");
    (response, started.elapsed())
}

/// Connects as a device from `source`; panics if refused.
async fn connect_from(source: &str, gw: &Gateway, path: &str) -> Ws {
    let stream = tcp_from(source, gw.addr).await;
    let url = format!("ws://{}{path}", gw.addr);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream)),
    )
    .await
    .expect("handshake within 10 s")
    .unwrap_or_else(|e| panic!("connect {path} from {source}: {e}"));
    ws
}

/// Connects and reads the `connection_established` welcome.
async fn welcomed(source: &str, gw: &Gateway, path: &str) -> Ws {
    let mut ws = connect_from(source, gw, path).await;
    assert_eq!(recv(&mut ws).await["type"], "connection_established");
    ws
}

async fn heartbeat_answered(ws: &mut Ws, code: &str) {
    send(
        ws,
        &json!({"type": "heartbeat", "device_code": code, "timestamp": 1}),
    )
    .await;
    assert_eq!(
        recv_type(ws, "heartbeat_response").await["device_code"],
        code
    );
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

const UNAUTHORIZED: &str = "HTTP/1.1 401 Unauthorized\r\n";

#[tokio::test]
async fn every_refusal_is_the_same_401_byte_for_byte_and_only_the_log_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = config(dir.path(), &[("racket-01", Some("token-racket-01"))], "");
    toml.push_str(
        "\n[[devices]]\ncode = \"v33\"\nallow_tokenless = true\nallowed_peers = [\"127.0.0.2\"]\n",
    );
    let gw = Gateway::start(dir.path(), &toml);

    // Spread over two addresses so that none is held long; the answers must not differ.
    let tries = [
        (GOOD, "/ws/esp32/nobody/", ""),
        (GOOD, "/ws/esp32/racket-01/", ""),
        (GOOD, "/ws/esp32/racket-01/?token=token-racket-02", ""),
        (
            GOOD,
            "/ws/esp32/racket-01/",
            "Authorization: Bearer wrong-bearer\r\n",
        ),
        (HOSTILE, "/ws/esp32/v33/", ""),
        (HOSTILE, "/ws/esp32/v33/?token=guess", ""),
    ];
    let mut answers = Vec::new();
    for (source, path, header) in tries {
        answers.push(handshake(&gw, source, path, header).await.0);
    }
    assert!(answers[0].starts_with(UNAUTHORIZED), "{}", answers[0]);
    assert!(
        answers[0].ends_with("\r\n\r\nunauthorized\n"),
        "{}",
        answers[0]
    );
    for (answer, (source, path, _)) in answers.iter().zip(tries) {
        assert_eq!(answer, &answers[0], "{path} from {source}");
    }

    // The admin API refuses the same way, before reading a body it would reject.
    let (admin, _) = admin_call(&gw, "Bearer not-the-admin-token", "{not json").await;
    assert!(admin.starts_with(UNAUTHORIZED), "{admin}");
    assert!(admin.ends_with("\r\n\r\nunauthorized\n"), "{admin}");

    // The reasons are logged and counted, the tokens never.
    let log = gw.log_holding(
        &[
            "unknown device",
            "missing token",
            "wrong token",
            "allowed_peers",
            "admin token",
        ],
        Duration::from_secs(10),
    );
    for secret in [
        "token-racket-02",
        "wrong-bearer",
        "not-the-admin-token",
        "guess",
    ] {
        assert!(!log.contains(secret), "`{secret}` logged:\n{log}");
    }
    let body = metrics(&gw);
    let refused = |reason: &str| {
        metric(
            &body,
            &format!("shuttlegate_auth_refusals_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(refused("unknown_device"), 1.0);
    assert_eq!(refused("missing_token"), 1.0);
    assert_eq!(refused("wrong_token"), 3.0);
    assert_eq!(refused("peer_not_allowed"), 1.0);
    assert_eq!(refused("admin_token"), 1.0);
    gw.terminate();
}

/// A raw admin call (`POST /api/devices/racket-01/commands`) from 127.0.0.1.
async fn admin_call(gw: &Gateway, authorization: &str, body: &str) -> (String, Duration) {
    let mut stream = tcp_from("127.0.0.1", gw.addr).await;
    let request = format!(
        "POST /api/devices/racket-01/commands HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        gw.addr,
        body.len()
    );
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.expect("write");
    let response = tokio::time::timeout(Duration::from_secs(30), read_response(&mut stream))
        .await
        .expect("an answer within 30 s");
    (response, started.elapsed())
}

#[tokio::test]
async fn a_percent_encoded_newline_in_the_code_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &config(dir.path(), &[("racket-01", Some("token-racket-01"))], ""),
    );
    let forged = "INFO%20shuttlegate::transport::http]%20device%20racket-01%20connected";
    let (answer, _) = handshake(&gw, GOOD, &format!("/ws/esp32/x%0A%0D{forged}/"), "").await;
    assert!(answer.starts_with(UNAUTHORIZED), "{answer}");
    let line = gw.wait_log("refused device", Duration::from_secs(10));
    assert!(
        line.contains("`x%0A%0DINFO%20shuttlegate"),
        "logged as sent: {line}"
    );
    assert!(line.contains('…'), "clipped: {line}");
    assert!(
        !line.contains("racket-01%20connected"),
        "clipped to 40 characters: {line}"
    );

    let long = "y".repeat(300);
    handshake(&gw, GOOD, &format!("/ws/esp32/{long}/"), "").await;
    let line = gw.wait_log("refused device", Duration::from_secs(10));
    assert!(line.contains(&format!("`{}…`", "y".repeat(40))), "{line}");
    let terminated = gw.terminate();
    assert!(terminated.success());
}

// Two workers: the held refusal's client runs while this thread waits on the daemon's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_one_address_get_slower_while_a_good_device_elsewhere_connects_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &config(dir.path(), &[("racket-01", Some("token-racket-01"))], ""),
    );
    // Failures 1–3 are free, then 250 ms, 500 ms, 1 s, 2 s: each at least its delay.
    let mut took = Vec::new();
    for n in 0..7 {
        let (answer, elapsed) = handshake(&gw, HOSTILE, &format!("/ws/esp32/guess-{n}/"), "").await;
        assert!(answer.starts_with(UNAUTHORIZED), "{answer}");
        took.push(elapsed);
    }
    for (n, least_ms) in [(3, 200), (4, 450), (5, 900), (6, 1800)] {
        assert!(
            took[n] >= Duration::from_millis(least_ms),
            "failure {} took {:?}, expected at least {least_ms} ms: {took:?}",
            n + 1,
            took[n]
        );
    }

    // The eighth is held 4 s (the cap); meanwhile a device on another address connects and is
    // served.
    let hostile = tokio::spawn({
        let path = "/ws/esp32/guess-7/".to_owned();
        let gw_addr = gw.addr;
        async move {
            let started = Instant::now();
            let mut stream = tcp_from(HOSTILE, gw_addr).await;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {gw_addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.expect("write");
            let answer = read_response(&mut stream).await;
            (answer, started.elapsed())
        }
    });
    let log_line = gw.wait_log("answer held 4s", Duration::from_secs(20));
    assert!(log_line.contains(HOSTILE), "{log_line}");
    let mut good = welcomed(GOOD, &gw, "/ws/esp32/racket-01/?token=token-racket-01").await;
    heartbeat_answered(&mut good, "racket-01").await;
    assert!(
        !hostile.is_finished(),
        "the good device was served while the hostile address's refusal was still held"
    );
    let (answer, held) = tokio::time::timeout(Duration::from_secs(30), hostile)
        .await
        .expect("the held refusal ends")
        .expect("task");
    assert!(answer.starts_with(UNAUTHORIZED), "{answer}");
    assert!(held >= Duration::from_millis(3600), "held {held:?}");

    let body = metrics(&gw);
    assert_eq!(
        metric(
            &body,
            "shuttlegate_auth_refusals_total{reason=\"unknown_device\"}"
        ),
        8.0
    );
    assert_eq!(
        metric(&body, "shuttlegate_auth_refusals_delayed_total"),
        5.0
    );
    assert_eq!(metric(&body, "shuttlegate_auth_failing_addresses"), 1.0);
    drop(good);
    gw.terminate();
}

#[tokio::test]
async fn a_second_hub_on_another_address_cannot_displace_a_tokenless_holder() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &[("v33", None)], ""));
    let mut holder = welcomed(GOOD, &gw, "/ws/esp32/v33/").await;

    let (answer, _) = handshake(&gw, HOSTILE, "/ws/esp32/v33/", "").await;
    assert!(answer.starts_with(UNAUTHORIZED), "{answer}");
    let line = gw.wait_log("refused device `v33`", Duration::from_secs(10));
    assert!(line.contains("held by a live connection"), "{line}");
    heartbeat_answered(&mut holder, "v33").await;

    // The hub rebooted: from its own address it takes its code back, the old socket gets 4001.
    let mut rebooted = welcomed(GOOD, &gw, "/ws/esp32/v33/").await;
    assert_eq!(closed_with(&mut holder).await, 4001);
    heartbeat_answered(&mut rebooted, "v33").await;

    let body = metrics(&gw);
    assert_eq!(
        metric(
            &body,
            "shuttlegate_auth_refusals_total{reason=\"code_held\"}"
        ),
        1.0
    );
    gw.terminate();
}

#[tokio::test]
async fn token_devices_keep_replace_on_reconnect_from_any_address() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &config(dir.path(), &[("racket-01", Some("token-racket-01"))], ""),
    );
    let path = "/ws/esp32/racket-01/?token=token-racket-01";
    let mut first = welcomed(GOOD, &gw, path).await;
    let mut second = welcomed(HOSTILE, &gw, path).await;
    assert_eq!(closed_with(&mut first).await, 4001);
    heartbeat_answered(&mut second, "racket-01").await;
    gw.terminate();
}

#[tokio::test]
async fn allowed_peers_admit_a_tokenless_device_only_from_listed_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = config(dir.path(), &[], "");
    toml.push_str(
        "\n[[devices]]\ncode = \"v33\"\nallow_tokenless = true\nallowed_peers = [\"127.0.0.2\", \"10.0.0.0/8\"]\n",
    );
    let gw = Gateway::start(dir.path(), &toml);
    let (answer, _) = handshake(&gw, HOSTILE, "/ws/esp32/v33/", "").await;
    assert!(answer.starts_with(UNAUTHORIZED), "{answer}");
    let line = gw.wait_log("refused device `v33`", Duration::from_secs(10));
    assert!(
        line.contains("allowed_peers") && line.contains(HOSTILE),
        "{line}"
    );
    let mut ws = welcomed(GOOD, &gw, "/ws/esp32/v33/").await;
    heartbeat_answered(&mut ws, "v33").await;
    gw.terminate();
}

#[tokio::test]
async fn a_ping_flood_is_limited_like_text_and_closed_with_4008() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &config(
            dir.path(),
            &[("racket-01", Some("token-racket-01"))],
            "[limits]\nmessages_per_second = 20\nrate_limit_strikes = 2\n",
        ),
    );
    let ws = welcomed(GOOD, &gw, "/ws/esp32/racket-01/?token=token-racket-01").await;
    let (mut sink, mut stream) = ws.split();
    // Pings as fast as the socket takes them, for at most 20 s (bounded in count too).
    let flood = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut sent = 0u32;
        while Instant::now() < deadline && sent < 200_000 {
            if sink.send(Message::Ping(vec![0u8; 8].into())).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let code = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("error instead of a close frame: {e}"),
            }
        }
    })
    .await
    .expect("closed within 30 s");
    assert_eq!(code, 4008);
    let sent = flood.await.expect("flood task");
    assert!(sent > 40, "the flood sent {sent} pings");
    let line = gw.wait_log("disconnected", Duration::from_secs(10));
    assert!(line.contains("frames per second"), "{line}");
    gw.terminate();
}
