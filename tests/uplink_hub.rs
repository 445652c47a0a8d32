//! The hub sink against the real Django Channels test hub (tests/hub) under Daphne.

mod uplink_support;

use std::sync::Arc;
use std::time::Duration;

use shuttlegate::uplink::{HubOptions, MemoryOutbox, Outbox, hub};
use tokio_util::sync::CancellationToken;
use uplink_support::*;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "hub-test-secret";

fn options(url: &str, token: &str) -> HubOptions {
    let mut o = HubOptions::new(url, token, "venue1", "court1");
    o.backoff_initial = Duration::from_millis(200);
    o.backoff_max = Duration::from_millis(800);
    o.ping_interval = Duration::from_millis(300);
    o.status_interval = Duration::from_millis(200);
    o
}

/// Hub messages carrying journal records: their ids, in arrival order.
fn record_ids(received: &[serde_json::Value]) -> Vec<u64> {
    received
        .iter()
        .filter(|m| m["type"] != "gateway_status")
        .filter_map(|m| m["data"]["id"].as_u64())
        .collect()
}

/// Waits (bounded) until what the hub recorded satisfies `pred`.
async fn wait_received(
    hub: &Hub,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let received = hub.received();
        if pred(&received) {
            return received;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hub never got it: {received:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_ids(hub: &Hub, last: u64) -> Vec<u64> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ids = record_ids(&hub.received());
        let all: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
        if all.len() as u64 >= last {
            return ids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hub got {} of {last} ids; daphne log:\n{}",
            all.len(),
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_hub_with_seed_names_and_acks_move_the_cursor() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let hub_proc = Hub::start(dir.path(), SECRET, true);
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.append(swing("racket-01", 1));
    outbox.append(summary("racket-01"));
    outbox.append(device_status("racket-01", 80));
    outbox.append(event("racket-01")); // not a hub message: skipped, cursor still moves
    outbox.append(batch("racket-01", 1, 100)); // raw data goes to MQTT only
    let stop = CancellationToken::new();
    let token = jwt(SECRET, "gateway-venue1-court1");
    let mut sink = hub::spawn(
        options(&hub_proc.url(), &token),
        Arc::clone(&outbox),
        stop.clone(),
    )
    .unwrap();

    wait_snapshot(&mut sink.snapshot, WAIT, "all acked and saved", |s| {
        s.saved_cursor == 5
    })
    .await;
    // The gateway_status goes out beside the records, possibly after their acks.
    let received = wait_received(&hub_proc, |r| {
        r.iter().any(|m| m["type"] == "gateway_status")
    })
    .await;
    let types: Vec<&str> = received
        .iter()
        .filter(|m| m["type"] != "gateway_status")
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["swing", "analysis_complete_notification", "device_status"]
    );
    assert_eq!(record_ids(&received), vec![1, 2, 3]);
    let last_record = received
        .iter()
        .rfind(|m| m["type"] != "gateway_status")
        .unwrap();
    assert_eq!(last_record["data"]["message"]["type"], "device_status");
    let status = received
        .iter()
        .find(|m| m["type"] == "gateway_status")
        .unwrap_or_else(|| panic!("no gateway_status in {received:?}"));
    assert!(status["data"]["backlog_records"].is_u64());
    assert_eq!(outbox.cursor("hub"), 5);
    stop.cancel();
    sink.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_survives_a_hub_restart() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut hub_proc = Hub::start(dir.path(), SECRET, true);
    let outbox = Arc::new(MemoryOutbox::new());
    let stop = CancellationToken::new();
    let token = jwt(SECRET, "gw");
    let mut sink = hub::spawn(
        options(&hub_proc.url(), &token),
        Arc::clone(&outbox),
        stop.clone(),
    )
    .unwrap();
    for n in 0..50 {
        outbox.append(swing(if n % 2 == 0 { "racket-01" } else { "racket-02" }, n));
    }
    wait_snapshot(&mut sink.snapshot, WAIT, "first 50 acked", |s| {
        s.cursor == 50
    })
    .await;
    hub_proc.stop();
    wait_snapshot(&mut sink.snapshot, WAIT, "sink notices", |s| !s.connected).await;
    for n in 50..100 {
        outbox.append(swing(if n % 2 == 0 { "racket-01" } else { "racket-02" }, n));
    }
    hub_proc.restart();
    let snap = wait_snapshot(&mut sink.snapshot, WAIT, "all acked", |s| s.cursor == 100).await;
    assert!(snap.connects >= 2);
    let ids = wait_ids(&hub_proc, 100).await;
    // In order, duplicates only re-sends.
    let mut seen = std::collections::BTreeSet::new();
    let firsts: Vec<u64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    assert_eq!(firsts, (1..=100).collect::<Vec<_>>());
    stop.cancel();
    sink.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_reported_clearly_and_retried_with_backoff() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let hub_proc = Hub::start(dir.path(), SECRET, true);
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.append(swing("racket-01", 1));
    let stop = CancellationToken::new();
    let token = jwt("another-secret", "gw");
    let sink = hub::spawn(
        options(&hub_proc.url(), &token),
        Arc::clone(&outbox),
        stop.clone(),
    )
    .unwrap();
    let started = tokio::time::Instant::now();
    let mut rx = sink.snapshot.clone();
    let first = wait_snapshot(&mut rx, WAIT, "a refusal", |s| s.errors >= 1).await;
    let error = first.last_error.unwrap();
    assert!(error.contains("refused the token (HTTP 403"), "{error}");
    assert!(!error.contains(&token), "the token must never be logged");
    // Backoff, not a tight loop: over ~1.5 s with 200..800 ms delays, a handful of attempts.
    tokio::time::sleep_until(started + Duration::from_millis(1500)).await;
    let attempts = sink.snapshot.borrow().errors;
    assert!((2..=8).contains(&attempts), "{attempts} attempts in 1.5 s");
    assert!(!sink.snapshot.borrow().connected);
    assert!(record_ids(&hub_proc.received()).is_empty());
    assert_eq!(outbox.cursor("hub"), 0);
    stop.cancel();
    sink.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_and_forget_moves_the_cursor_on_send() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let hub_proc = Hub::start(dir.path(), SECRET, false);
    let outbox = Arc::new(MemoryOutbox::new());
    for n in 0..10 {
        outbox.append(swing("racket-01", n));
    }
    let stop = CancellationToken::new();
    let mut opts = options(&hub_proc.url(), &jwt(SECRET, "gw"));
    opts.acks = false;
    let mut sink = hub::spawn(opts, Arc::clone(&outbox), stop.clone()).unwrap();
    wait_snapshot(&mut sink.snapshot, WAIT, "cursor on send", |s| {
        s.cursor == 10
    })
    .await;
    assert_eq!(wait_ids(&hub_proc, 10).await, (1..=10).collect::<Vec<_>>());
    stop.cancel();
    sink.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_works_with_the_right_ca_and_is_refused_with_a_wrong_one() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "good");
    make_ca(dir.path(), "other");
    make_server_cert(dir.path(), "good");
    let tls = Some((dir.path().join("server.pem"), dir.path().join("server.key")));
    let hub_proc = Hub::start_with(dir.path(), SECRET, true, tls);
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.append(swing("racket-01", 1));
    let token = jwt(SECRET, "gw");

    let stop = CancellationToken::new();
    let mut opts = options(&hub_proc.url(), &token);
    opts.tls.ca_file = Some(dir.path().join("good-ca.pem"));
    let mut sink = hub::spawn(opts, Arc::clone(&outbox), stop.clone()).unwrap();
    wait_snapshot(&mut sink.snapshot, WAIT, "acked over wss", |s| {
        s.cursor == 1
    })
    .await;
    assert_eq!(wait_ids(&hub_proc, 1).await, vec![1]);
    stop.cancel();
    sink.task.await.unwrap();

    let stop = CancellationToken::new();
    let mut opts = options(&hub_proc.url(), &token);
    opts.tls.ca_file = Some(dir.path().join("other-ca.pem"));
    opts.consumer = "hub-wrong-ca".into();
    let mut sink = hub::spawn(opts, Arc::clone(&outbox), stop.clone()).unwrap();
    let snap = wait_snapshot(&mut sink.snapshot, WAIT, "a TLS refusal", |s| s.errors >= 1).await;
    let error = snap.last_error.unwrap();
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert_eq!(outbox.cursor("hub-wrong-ca"), 0);
    stop.cancel();
    sink.task.await.unwrap();
}

/// A half-open link: a hub that completes the handshake and then never says anything (no
/// pong, no ack). The sink gives up after `idle_timeout` and connects again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_hub_is_dropped_after_the_idle_timeout() {
    init_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::channel::<()>(8);
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                held.push(ws); // kept open, never read or written
                let _ = accepted_tx.send(()).await;
            }
        }
    });
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.append(swing("racket-01", 1));
    let stop = CancellationToken::new();
    let mut opts = options(&format!("ws://127.0.0.1:{port}/ws/gateway/"), "t");
    opts.ping_interval = Duration::from_millis(100);
    opts.idle_timeout = Duration::from_millis(400);
    let mut sink = hub::spawn(opts, Arc::clone(&outbox), stop.clone()).unwrap();
    for _ in 0..2 {
        tokio::time::timeout(WAIT, accepted.recv())
            .await
            .unwrap()
            .unwrap();
    }
    let snap = wait_snapshot(&mut sink.snapshot, WAIT, "an idle error", |s| s.errors >= 1).await;
    assert!(
        snap.last_error
            .as_deref()
            .unwrap_or("")
            .contains("nothing heard"),
        "{snap:?}"
    );
    assert_eq!(snap.cursor, 0, "nothing was acknowledged");
    stop.cancel();
    sink.task.await.unwrap();
    server.abort();
}
