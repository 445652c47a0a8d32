//! A latency histogram whose recording is two relaxed atomic adds: no lock, no allocation.
//!
//! It exists because the figures it holds are taken on hot paths — a device's batch ack, the
//! journal writer's fsync — and `prometheus_client`'s own `Histogram` takes a mutex on every
//! observation. Uncontended the two cost about the same (`cargo bench --bench metrics`: 4–6 ns
//! each, measured 2026-12); the difference is that a recording here never waits for another
//! thread's, so two device tasks acking at once never queue on a lock. Buckets are fixed (the Prometheus convention for latencies, 1 ms to 10 s), kept
//! per bucket (not cumulative) and summed into the exposition's cumulative form at scrape time.
//! A scrape reads the buckets one by one while recording goes on, so `count` is taken as the sum
//! of the buckets it read: the exposition is always self-consistent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Upper bounds of the buckets, in seconds; a last, unbounded bucket (`+Inf`) follows.
pub const LATENCY_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// The same bounds in microseconds, the unit recorded.
const BOUNDS_MICROS: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// Observations of a duration, in [`LATENCY_BOUNDS`] buckets.
#[derive(Debug, Default)]
pub struct AtomicHistogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; 13],
    /// Sum of every observation, µs.
    sum_micros: AtomicU64,
}

/// One reading of an [`AtomicHistogram`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative), in [`LATENCY_BOUNDS`] order then `+Inf`.
    pub buckets: [u64; 13],
    pub sum_micros: u64,
}

impl AtomicHistogram {
    pub fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BOUNDS_MICROS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

impl HistogramSnapshot {
    /// Observations in all buckets.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

impl EncodeMetric for HistogramSnapshot {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let bounds = LATENCY_BOUNDS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(self.buckets).collect();
        let sum = self.sum_micros as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, self.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn an_observation_lands_in_the_first_bucket_whose_bound_holds_it() {
        let h = AtomicHistogram::default();
        h.record(Duration::from_micros(1_000));
        h.record(Duration::from_micros(1_001));
        h.record(Duration::from_secs(3600));
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 1, "le 1 ms is inclusive");
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[12], 1, "past the last bound: +Inf");
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_micros, 1_000 + 1_001 + 3_600_000_000);
    }

    #[test]
    fn the_bounds_in_seconds_and_microseconds_agree() {
        for (s, us) in LATENCY_BOUNDS.iter().zip(BOUNDS_MICROS) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }

    proptest! {
        /// Every observation is counted once, in a bucket whose range holds it.
        #[test]
        fn every_observation_is_counted_once_in_a_bucket_that_holds_it(micros in prop::collection::vec(0u64..20_000_000, 0..50)) {
            let h = AtomicHistogram::default();
            for &m in &micros {
                h.record(Duration::from_micros(m));
            }
            let s = h.snapshot();
            prop_assert_eq!(s.count(), micros.len() as u64);
            prop_assert_eq!(s.sum_micros, micros.iter().sum::<u64>());
            for (i, &n) in s.buckets.iter().enumerate() {
                let low = if i == 0 { 0 } else { BOUNDS_MICROS[i - 1] + 1 };
                let high = BOUNDS_MICROS.get(i).copied().unwrap_or(u64::MAX);
                let inside = micros.iter().filter(|&&m| (low..=high).contains(&m)).count() as u64;
                prop_assert_eq!(n, inside);
            }
        }
    }
}
