//! Per-message cost of the clients' counters (`cargo bench --bench metrics`): what a device's
//! batch adds to the ingest path — a clock read at receipt, its type counted, its ack counted
//! with its latency — against `prometheus_client`'s own `Histogram::observe` (a mutex), the
//! alternative to `src/histogram.rs`. One thread: on a shared 2-core machine two recording
//! threads are not reliably on two cores at once, so a contended figure would measure the
//! scheduler.
//!
//! Env: `METRICS_BENCH_CALLS` (per run, default 5,000,000).

use std::hint::black_box;
use std::time::{Duration, Instant};

use shuttlegate::histogram::AtomicHistogram;
use shuttlegate::transport::metrics::{ClientMetrics, Role};
use shuttlegate_core::protocol::GatewayMessage;
use shuttlegate_core::protocol::outbound::BatchSensorDataResponse;

fn calls() -> u64 {
    std::env::var("METRICS_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000)
}

fn ack() -> GatewayMessage {
    GatewayMessage::BatchSensorDataResponse(BatchSensorDataResponse {
        success: true,
        total_items: 100,
        successful_items: 100,
        failed_items: 0,
        session_id: "s1".into(),
        seq: Some(1),
        durable: true,
        message: None,
    })
}

/// What the device task does per batch.
fn per_batch(metrics: &ClientMetrics, reply: &GatewayMessage) {
    let received = Instant::now();
    metrics.received(
        Role::Device,
        black_box("batch_sensor_data"),
        black_box(4_000),
    );
    metrics.device_replied(black_box("racket-01"), reply, received.elapsed());
}

/// ns per call of `work`.
fn timed(work: impl Fn()) -> f64 {
    let n = calls();
    let started = Instant::now();
    for _ in 0..n {
        work();
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let metrics = ClientMetrics::default();
    let reply = ack();
    let ours = AtomicHistogram::default();
    let theirs = prometheus_client::metrics::histogram::Histogram::new(
        shuttlegate::histogram::LATENCY_BOUNDS.iter().copied(),
    );
    let took = Duration::from_micros(3_000);
    // Seen from outside (as the daemon's shared counters are): otherwise the compiler may treat
    // atomics on a local that never escapes as plain memory.
    let (metrics, ours, theirs) = (black_box(&metrics), black_box(&ours), black_box(&theirs));
    println!(
        "per batch (clock read + type + ack + latency) {:.1} ns | of which Instant::now + elapsed {:.1} ns | AtomicHistogram::record {:.1} ns | prometheus_client Histogram::observe {:.1} ns",
        timed(|| per_batch(metrics, &reply)),
        timed(|| {
            black_box(Instant::now().elapsed());
        }),
        timed(|| ours.record(black_box(took))),
        timed(|| theirs.observe(black_box(0.003))),
    );
}
