//! Per-batch cost of the device watch (`cargo bench --bench device_watch`): what each stored
//! batch adds to ingest after its fsync — the watch's lock, the node's rate and count, the
//! clock's lead, and the stuck-at-full-scale scan of every sample — for the simulator's
//! batches (compact, 40 rows at 200 Hz) and V3.3's (seed, 30 frames of four nodes, stamped
//! `HHMMSSmmm`). One thread, the watch held behind a mutex as the daemon holds it.
//!
//! Env: `WATCH_BENCH_CALLS` (per run, default 1,000,000).

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Instant;

use shuttlegate_core::batch::{
    BatchForm, BodyPosition, CompactBatch, SeedBatch, SeedFrame, SensorBatch,
};
use shuttlegate_core::device_watch::{DeviceWatch, FullScale};
use shuttlegate_core::protocol::FrameClock;

const T0: i64 = 1_764_900_000_000;

fn calls() -> u64 {
    std::env::var("WATCH_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn compact() -> SensorBatch {
    let row = [0.02f32, -0.98, 0.11, 150.0, -40.0, 20.0];
    SensorBatch {
        device: "player-01".into(),
        session_id: "s-1".into(),
        seq: Some(1),
        form: BatchForm::Compact(CompactBatch {
            sensor_id: 4,
            t0: T0,
            rate_hz: 200.0,
            channels: 6,
            samples: (0..40).flat_map(|_| row).collect(),
        }),
    }
}

fn seed(frames: &FrameClock) -> SensorBatch {
    let stamp = frames.time_of_day_stamp(T0).expect("a time of day");
    SensorBatch {
        device: "hub-01".into(),
        session_id: "123".into(),
        seq: None,
        form: BatchForm::Seed(SeedBatch {
            sensor_type: Some("waist".into()),
            timestamp: Some(123_456),
            frames: (0..30)
                .map(|i| SeedFrame {
                    sensor_id: Some(1 + i % 4),
                    timestamp: Some(stamp + i64::from(i) * 5),
                    acc: [0.01, -0.02, 0.99],
                    gyro: [1.2, -3.4, 0.5],
                    angle: Some([2.1, -0.4, 87.0]),
                })
                .collect(),
        }),
    }
}

/// ns per batch handed to the watch, behind its lock.
fn per_batch(batch: &SensorBatch, frames: FrameClock) -> f64 {
    let watch = Mutex::new(DeviceWatch::new(frames));
    let watch = black_box(&watch);
    let n = calls();
    let started = Instant::now();
    for i in 0..n {
        let received = T0 + 300 + (i as i64 % 1000);
        watch.lock().unwrap().handle_batch(
            black_box(batch),
            BodyPosition::default_for_sensor_id,
            FullScale::default(),
            received,
        );
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let frames = FrameClock::new(chrono_tz::Asia::Shanghai);
    println!(
        "device watch per batch: compact 40 rows {:.0} ns | seed 30 frames (4 nodes, HHMMSSmmm) {:.0} ns",
        per_batch(&compact(), frames),
        per_batch(&seed(&frames), frames),
    );
}
