//! The pipeline's queues and figures: the feed's bound, the fair queue's order, the latency
//! histograms.

use std::time::Duration;

use shuttlegate_core::batch::{BatchForm, CompactBatch, SensorBatch};

use super::metrics::LATENCY_CEILING;
use super::*;

fn batch() -> Arc<SensorBatch> {
    batch_of("d")
}

fn batch_of(device: &str) -> Arc<SensorBatch> {
    Arc::new(SensorBatch {
        device: device.into(),
        session_id: "s".into(),
        seq: None,
        form: BatchForm::Compact(CompactBatch {
            sensor_id: 4,
            t0: 0,
            rate_hz: 200.0,
            channels: 6,
            samples: vec![0.0; 6],
        }),
    })
}

#[tokio::test]
async fn a_full_queue_skips_batches_and_counts_them() {
    let (feed, mut rx) = AnalysisFeed::new(2);
    for id in 0..5 {
        feed.batch(id, batch(), 0, Instant::now());
    }
    let now = feed.metrics().snapshot();
    assert_eq!(now.skipped_batches, 3);
    assert_eq!(now.pending, 2);
    // The two that fit are the first two, in order.
    for expected in 0..2 {
        match rx.recv().await {
            Some(AnalysisInput::Batch { id, .. }) => assert_eq!(id, expected),
            other => panic!("expected batch {expected}, got {other:?}"),
        }
    }
}

/// A swing whose stages took `durable`, `analysis` and `journal`: its input's times and
/// when it was published.
fn timeline(durable: Duration, analysis: Duration, journal: Duration) -> (InputTimes, Instant) {
    let received = Instant::now();
    let queued = received + durable;
    let started = queued + analysis / 2;
    let analysed = queued + analysis;
    let input = InputTimes {
        received,
        queued,
        started,
        analysed,
    };
    (input, analysed + journal)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn batches_taken_off_the_channel_still_count_against_the_bound_until_analysed() {
    let (feed, mut rx) = AnalysisFeed::new(2);
    feed.batch(0, batch(), 0, Instant::now());
    feed.batch(1, batch(), 0, Instant::now());
    // The task has drained the channel into its fair queue but analysed nothing yet.
    let mut queue = FairQueue::default();
    while let Ok(input) = rx.try_recv() {
        queue.push(input);
    }
    feed.batch(2, batch(), 0, Instant::now());
    assert_eq!(queue.len(), 2);
    assert_eq!(feed.metrics().snapshot().skipped_batches, 1);
    assert!(rx.try_recv().is_err(), "the third batch was not queued");
}

fn input(device: &str, id: u64) -> AnalysisInput {
    let now = Instant::now();
    AnalysisInput::Batch {
        id,
        batch: batch_of(device),
        received_ms: 0,
        received_at: now,
        queued_at: now,
    }
}

/// (device, batch id) or (device, u64::MAX) for a finish.
fn served(queue: &mut FairQueue) -> Vec<(String, u64)> {
    std::iter::from_fn(|| queue.pop()).map(id_of).collect()
}

#[test]
fn a_flooding_device_waits_its_turn_behind_one_input_of_each_other_device() {
    let mut queue = FairQueue::default();
    for id in 0..3 {
        queue.push(input("flood", id));
    }
    queue.push(input("player-1", 10));
    queue.push(input("player-2", 20));
    queue.push(AnalysisInput::Finish {
        device: "flood".into(),
        session_id: "s".into(),
        requested_at: Instant::now(),
    });
    let order: Vec<(&str, u64)> = served(&mut queue)
        .iter()
        .map(|(d, id)| (if d == "flood" { "flood" } else { "player" }, *id))
        .collect();
    assert_eq!(
        order,
        [
            ("flood", 0),
            ("player", 10),
            ("player", 20),
            ("flood", 1),
            ("flood", 2),
            ("flood", u64::MAX),
        ]
    );
    assert!(queue.is_empty());
}

fn id_of(input: AnalysisInput) -> (String, u64) {
    match input {
        AnalysisInput::Batch { id, batch, .. } => (batch.device.clone(), id),
        AnalysisInput::Finish { device, .. } => (device, u64::MAX),
    }
}

proptest::proptest! {
    #[test]
    fn every_input_is_served_once_and_each_device_in_its_own_order(
        ops in proptest::collection::vec(proptest::option::of(0usize..4), 0..200)
    ) {
        let mut queue = FairQueue::default();
        let mut pushed = Vec::new();
        let mut served = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Some(device) => {
                    let device = format!("d{device}");
                    queue.push(input(&device, i as u64));
                    pushed.push((device, i as u64));
                }
                None => served.extend(queue.pop().map(id_of)),
            }
            proptest::prop_assert_eq!(queue.len() + served.len(), pushed.len());
            proptest::prop_assert_eq!(queue.is_empty(), served.len() == pushed.len());
        }
        served.extend(std::iter::from_fn(|| queue.pop()).map(id_of));
        // Each device's inputs come out in the order they went in, and all of them.
        for device in ["d0", "d1", "d2", "d3"] {
            let of = |v: &[(String, u64)]| -> Vec<u64> {
                v.iter().filter(|(d, _)| d == device).map(|(_, id)| *id).collect()
            };
            proptest::prop_assert_eq!(of(&served), of(&pushed));
        }
    }
}

#[test]
fn swing_latency_quantiles_come_from_every_recorded_swing() {
    let metrics = AnalysisMetrics::default();
    for n in 1..=100 {
        let (input, published) = timeline(ms(n), Duration::ZERO, Duration::ZERO);
        metrics.record_swing(&input, published);
    }
    let latency = metrics.snapshot().swing_latency;
    assert_eq!(latency.swings, 100);
    // 0.1 % resolution: each quantile within 0.1 % of the exact order statistic.
    let near = |d: Duration, ms: f64| (d.as_secs_f64() * 1e3 - ms).abs() <= ms * 1e-3;
    assert!(near(latency.p50, 50.0), "{latency:?}");
    assert!(near(latency.p99, 99.0), "{latency:?}");
    assert!(near(latency.max, 100.0), "{latency:?}");
}

#[test]
fn each_stage_is_timed_between_its_own_two_points() {
    let metrics = AnalysisMetrics::default();
    let (input, published) = timeline(ms(3), ms(40), ms(500));
    metrics.record_swing(&input, published);
    let now = metrics.snapshot();
    let max_ms = |stage: SwingStage| {
        let i = SwingStage::ALL.iter().position(|s| *s == stage).unwrap();
        now.stages[i].max.as_secs_f64() * 1e3
    };
    // 1 % resolution on the stages, 0.1 % on the total.
    let near = |got: f64, want: f64, rel: f64| (got - want).abs() <= want * rel;
    assert!(near(max_ms(SwingStage::Durable), 3.0, 0.01), "{now:?}");
    assert!(near(max_ms(SwingStage::Wait), 20.0, 0.01), "{now:?}");
    assert!(near(max_ms(SwingStage::Analysis), 20.0, 0.01), "{now:?}");
    assert!(near(max_ms(SwingStage::Journal), 500.0, 0.01), "{now:?}");
    assert!(near(max_ms(SwingStage::Total), 543.0, 0.001), "{now:?}");
    assert_eq!(now.stages[0], now.swing_latency);
}

#[test]
fn latencies_beyond_the_ceiling_and_below_a_microsecond_are_still_counted() {
    let metrics = AnalysisMetrics::default();
    let (input, published) = timeline(Duration::from_secs(3600), ms(0), ms(0));
    metrics.record_swing(&input, published);
    let (input, published) = timeline(Duration::ZERO, ms(0), ms(0));
    metrics.record_swing(&input, published);
    let latency = metrics.snapshot().swing_latency;
    assert_eq!(latency.swings, 2);
    let max = latency.max.as_secs_f64();
    assert!((max - LATENCY_CEILING.as_secs_f64()).abs() < 0.1, "{max}");
}
