//! Issue 12, the optional TLS listener (`[http] tls_listen`): a device streams over `wss://`
//! with a certificate made by the openssl CLI while plain `ws://` stays on `listen` (V3.3
//! hubs cannot do TLS), and a client that never starts its TLS handshake is shed by the
//! handshake timeout and counted — the TLS listener is under the same caps and timeouts.

mod common;
mod uplink_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::Connector;

/// The test configuration's handshake timeout, and the slack a loaded machine may add to it.
const HANDSHAKE: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_secs(8);

/// A gateway with a TLS listener on a free port, its certificate signed by the `good` test CA.
fn gateway(dir: &std::path::Path) -> (Gateway, u16) {
    uplink_support::make_ca(dir, "good");
    uplink_support::make_server_cert(dir, "good");
    let tls_port = uplink_support::free_port();
    let config = format!(
        r#"[gateway]
venue = "test-venue"
court = "court-1"
state_dir = "{}"

[http]
listen = "127.0.0.1:0"
header_read_timeout = "2s"
keep_alive_timeout = "1s"
handshake_timeout = "2s"
tls_listen = "127.0.0.1:{tls_port}"
tls_cert_file = "server.pem"
tls_key_file = "server.key"

[[devices]]
code = "racket-01"
token = "tok-racket-01"
"#,
        dir.display()
    );
    (Gateway::start(dir, &config), tls_port)
}

/// A rustls client trusting only the test CA (ring provider, as the daemon).
fn client_config(dir: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("good-ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn batch(seq: u64) -> Value {
    let samples: Vec<Value> = (0..10)
        .map(|i| json!([0.02, -0.98, 0.11, 1.5 + i as f64, -0.4, 0.2]))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": "tls", "seq": seq, "sensor_id": 4,
           "t0": 1732400000123i64 + seq as i64 * 10, "rate_hz": 1000, "samples": samples})
}

/// Sends `batches` from `seq` on and checks each is answered durable.
async fn stream(ws: &mut Ws, seqs: std::ops::Range<u64>) {
    assert_eq!(recv(ws).await["type"], "connection_established");
    for seq in seqs {
        send(ws, &batch(seq)).await;
        let reply = recv_type(ws, "batch_sensor_data_response").await;
        assert_eq!(
            (reply["seq"].as_u64(), reply["durable"].as_bool()),
            (Some(seq), Some(true)),
            "{reply}"
        );
    }
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample `{name}` in\n{body}"))
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_streams_over_wss_on_the_tls_listener_while_ws_stays_on_listen() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, tls_port) = gateway(dir.path());

    let url = format!("wss://127.0.0.1:{tls_port}/ws/esp32/racket-01/?token=tok-racket-01");
    let connector = Connector::Rustls(client_config(dir.path()));
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(&url, None, false, Some(connector))
            .await
            .expect("wss handshake with the test CA");
    stream(&mut ws, 0..5).await;
    drop(ws);

    // The same device on the plain listener, as a V3.3 hub would.
    let mut plain = connect(&format!("{}?token=tok-racket-01", gw.ws_url("racket-01"))).await;
    stream(&mut plain, 5..10).await;
    drop(plain);

    // A client that does not trust the gateway's CA gets no session.
    let untrusting = {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth()
    };
    let refused = tokio_tungstenite::connect_async_tls_with_config(
        &url,
        None,
        false,
        Some(Connector::Rustls(Arc::new(untrusting))),
    )
    .await;
    assert!(refused.is_err(), "an unknown CA is not trusted");

    let status = gw.terminate();
    assert!(status.success(), "{status:?}");
    let stored = export(dir.path(), &["--session", "tls"]);
    assert_eq!(stored.iter().filter(|r| r["kind"] == "batch").count(), 10);
}

#[tokio::test]
async fn a_client_that_never_starts_tls_is_shed_by_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, tls_port) = gateway(dir.path());
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
        .await
        .unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(HANDSHAKE + SLACK, silent.read(&mut buf))
        .await
        .expect("the daemon closes a silent TLS socket");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= HANDSHAKE - Duration::from_millis(100),
        "closed by the timeout, not at once: {closed_after:?}"
    );
    // The daemon counts the shed connection as it lets go of it, which may be just after the
    // client saw the close: on a loaded machine the first scrape can precede the count.
    let deadline = Instant::now() + SLACK;
    loop {
        let body = ureq::get(&gw.http_url("/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let timed_out = metric(
            &body,
            "shuttlegate_connections_timed_out_total{timeout=\"handshake\"}",
        );
        // The one open connection is this scrape's own.
        let open = metric(&body, "shuttlegate_connections_open");
        if (timed_out, open) == (1.0, 1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the handshake timeout counted once and the socket released: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
