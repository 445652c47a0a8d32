//! Benchmark (ignored by default; run with `--ignored --nocapture`, ideally `--release`):
//! drain a raw-data backlog into a local Mosquitto, and measure how long live swings take to
//! reach a subscriber while it drains, against the same figure with no backlog.
//!
//! The default backlog is one court-hour: 4 devices × 1 kHz = 14.4 M samples, in batches of
//! 100 samples = 144 000 batches (`SG_BENCH_RECORDS` overrides), each with a body of
//! `SG_BENCH_BODY` bytes (default 1024, the order of a compressed 100-sample batch).
//! Target (issue 6): drained in ≤ 60 s, live p99 ≤ 2× idle.

mod uplink_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use shuttlegate::uplink::{CloudCommand, MemoryOutbox, MqttOptions, Outbox, mqtt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uplink_support::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Appends `n` swings 20 ms apart and returns their append times by id.
async fn live_swings(outbox: &MemoryOutbox, n: usize) -> Vec<(u64, Instant)> {
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        sent.push((outbox.append(swing("racket-01", i as u64)), Instant::now()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sent
}

/// Latencies (ms) from append to arrival at the subscriber, sorted.
async fn latencies(sub: &mut Subscriber, sent: &[(u64, Instant)]) -> Vec<f64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let got = sub.snapshot();
        let mut lat: Vec<f64> = sent
            .iter()
            .filter_map(|(id, at)| {
                got.iter()
                    .filter(|r| r.topic.ends_with("/swings"))
                    .find(|r| payload_id(&r.payload) == *id)
                    .map(|r| r.at.duration_since(*at).as_secs_f64() * 1e3)
            })
            .collect();
        if lat.len() == sent.len() || tokio::time::Instant::now() > deadline {
            lat.sort_by(f64::total_cmp);
            return lat;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn backlog_drain_rate_and_live_latency() {
    let records = env_or("SG_BENCH_RECORDS", 144_000);
    let body = env_or("SG_BENCH_BODY", 1024);
    let rate = env_or("SG_BENCH_RATE", 0);
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let mut swings_sub =
        Subscriber::start(broker.port, "bench-swings", "sg/venue1/court1/swings").await;
    let outbox = Arc::new(MemoryOutbox::new());
    let mut opts = MqttOptions::new(&broker.url(), "sg", "venue1", "court1");
    opts.replay_rate = (rate > 0).then_some(rate as f64);
    opts.status_interval = Duration::from_secs(2);
    let (tx, _rx) = mpsc::channel::<CloudCommand>(4);
    let stop = CancellationToken::new();
    let mut sink = mqtt::spawn(opts, Arc::clone(&outbox), tx, stop.clone()).unwrap();
    wait_snapshot(
        &mut sink.snapshot,
        Duration::from_secs(10),
        "connected",
        |s| s.connected,
    )
    .await;

    // Idle: live swings with no backlog.
    let idle_sent = live_swings(&outbox, 100).await;
    let idle = latencies(&mut swings_sub, &idle_sent).await;
    let idle_end = outbox.durable_id();
    wait_snapshot(
        &mut sink.snapshot,
        Duration::from_secs(10),
        "idle acked",
        |s| s.cursor == idle_end,
    )
    .await;

    // Backlog: appended while the sink is cut off from the journal's notifications is not
    // possible with a live sink, so append it all at once (the sink drains as it reads).
    let start = Instant::now();
    for i in 0..records {
        outbox.append(batch(
            ["racket-01", "racket-02", "racket-03", "racket-04"][i % 4],
            i as u64,
            body,
        ));
    }
    let appended = start.elapsed();
    let drain_sent = live_swings(&outbox, 100).await;
    let last = outbox.durable_id();
    let snap = wait_snapshot(
        &mut sink.snapshot,
        Duration::from_secs(600),
        "drained",
        |s| s.cursor == last,
    )
    .await;
    let drained = start.elapsed();
    let during = latencies(&mut swings_sub, &drain_sent).await;
    println!(
        "backlog: {records} raw batches of {body} B (appended in {:.1} s), drained to Mosquitto in {:.1} s = {:.0} records/s ({:.1} MB/s payload); sent {}, acked {}",
        appended.as_secs_f64(),
        drained.as_secs_f64(),
        records as f64 / drained.as_secs_f64(),
        (records * body) as f64 / drained.as_secs_f64() / 1e6,
        snap.sent,
        snap.acked,
    );
    println!(
        "live swing latency append→subscriber, ms: idle p50 {:.1} p99 {:.1} (n={}); during drain p50 {:.1} p99 {:.1} (n={})",
        pct(&idle, 0.5),
        pct(&idle, 0.99),
        idle.len(),
        pct(&during, 0.5),
        pct(&during, 0.99),
        during.len()
    );
    stop.cancel();
    sink.task.await.unwrap();
}
