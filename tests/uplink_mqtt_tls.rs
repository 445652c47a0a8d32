//! The MQTT sink over TLS: a test CA and server certificate made with the openssl CLI, Mosquitto
//! with a TLS listener, the sink with `mqtts://` and the CA file (rustls, ring provider).

mod uplink_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shuttlegate::uplink::{CloudCommand, MemoryOutbox, MqttOptions, mqtt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uplink_support::*;

const WAIT: Duration = Duration::from_secs(20);

fn tls_broker(dir: &Path) -> Broker {
    make_ca(dir, "good");
    make_ca(dir, "other");
    make_server_cert(dir, "good");
    let d = dir.display();
    // The plain listener (for the test subscriber) plus a TLS one on its own free port.
    let tls_port = free_port();
    let extra = format!(
        "listener {tls_port} 127.0.0.1\ncafile {d}/good-ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n"
    );
    let broker = Broker::start_with(dir, free_port(), &extra);
    wait_listening(tls_port);
    std::fs::write(dir.join("tls_port"), tls_port.to_string()).unwrap();
    broker
}

fn options(dir: &Path, ca: &str) -> MqttOptions {
    let tls_port = std::fs::read_to_string(dir.join("tls_port")).unwrap();
    let url = format!("mqtts://127.0.0.1:{tls_port}");
    let mut o = MqttOptions::new(&url, "sg", "venue1", "court1")
        .with_ca_file(dir.join(format!("{ca}-ca.pem")));
    o.backoff_initial = Duration::from_millis(100);
    o.backoff_max = Duration::from_millis(400);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_delivers_over_tls_with_the_right_ca_and_is_refused_with_a_wrong_one() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let broker = tls_broker(dir.path());
    let mut sub = Subscriber::start(broker.port, "test-tls", "sg/venue1/court1/swings").await;
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.append(swing("racket-01", 1));

    // Right CA: connects, delivers, the cursor follows.
    let (tx, _rx) = mpsc::channel::<CloudCommand>(4);
    let stop = CancellationToken::new();
    let mut sink = mqtt::spawn(
        options(dir.path(), "good"),
        Arc::clone(&outbox),
        tx,
        stop.clone(),
    )
    .unwrap();
    wait_snapshot(&mut sink.snapshot, WAIT, "delivered over TLS", |s| {
        s.connected && s.cursor == 1
    })
    .await;
    let got = sub.wait_for(1, WAIT).await;
    assert_eq!(payload_id(&got[0].payload), 1);
    stop.cancel();
    sink.task.await.unwrap();

    // Wrong CA: refused, with the reason in the error, and nothing delivered.
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.append(swing("racket-01", 1));
    let (tx, _rx) = mpsc::channel::<CloudCommand>(4);
    let stop = CancellationToken::new();
    let mut opts = options(dir.path(), "other");
    opts.client_id = Some("wrong-ca".into());
    let mut sink = mqtt::spawn(opts, Arc::clone(&outbox), tx, stop.clone()).unwrap();
    let snap = wait_snapshot(&mut sink.snapshot, WAIT, "a TLS refusal", |s| s.errors >= 2).await;
    let error = snap.last_error.unwrap();
    assert!(
        error.contains("invalid peer certificate") && error.contains("UnknownIssuer"),
        "{error}"
    );
    assert!(!snap.connected && snap.connects == 0 && snap.cursor == 0);
    stop.cancel();
    sink.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_requiring_client_certificates_accepts_the_gateways() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "good");
    make_server_cert(dir.path(), "good");
    make_client_cert(dir.path(), "good");
    let d = dir.path().display();
    let tls_port = free_port();
    let extra = format!(
        "listener {tls_port} 127.0.0.1\ncafile {d}/good-ca.pem\ncertfile {d}/server.pem\n\
         keyfile {d}/server.key\nrequire_certificate true\n"
    );
    let _broker = Broker::start_with(dir.path(), free_port(), &extra);
    wait_listening(tls_port);
    let url = format!("mqtts://127.0.0.1:{tls_port}");
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.append(swing("racket-01", 1));
    let (tx, _rx) = mpsc::channel::<CloudCommand>(4);

    // Without a certificate the broker ends the handshake.
    let stop = CancellationToken::new();
    let mut opts = MqttOptions::new(&url, "sg", "venue1", "court1")
        .with_ca_file(dir.path().join("good-ca.pem"));
    opts.backoff_initial = Duration::from_millis(100);
    let mut sink =
        mqtt::spawn(opts.clone(), Arc::clone(&outbox), tx.clone(), stop.clone()).unwrap();
    let snap = wait_snapshot(&mut sink.snapshot, WAIT, "a refusal", |s| s.errors >= 1).await;
    assert!(!snap.connected && snap.cursor == 0, "{snap:?}");
    let error = snap.last_error.unwrap();
    assert!(error.contains("client_cert"), "{error}");
    stop.cancel();
    sink.task.await.unwrap();

    // With it: connected and delivered.
    let stop = CancellationToken::new();
    opts.tls.client_cert = Some(dir.path().join("client.pem"));
    opts.tls.client_key = Some(dir.path().join("client.key"));
    let mut sink = mqtt::spawn(opts, Arc::clone(&outbox), tx, stop.clone()).unwrap();
    wait_snapshot(
        &mut sink.snapshot,
        WAIT,
        "delivered with a client certificate",
        |s| s.cursor == 1,
    )
    .await;
    stop.cancel();
    sink.task.await.unwrap();
}
