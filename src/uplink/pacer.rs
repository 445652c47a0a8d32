//! The replay pacer: a token bucket that bounds how fast a lane may send.
//!
//! After an outage the raw-data backlog can be hours of samples; draining it flat out would
//! saturate the uplink and the SD card while devices are still streaming. The bucket refills at
//! `rate` records per second up to `burst`; each send takes one token. Pure: `now` is passed in.

use std::time::{Duration, Instant};

/// A token bucket.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Records per second; `None` means unpaced.
    rate: Option<f64>,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// `rate` records/s (`None` or non-positive: unpaced), at most `burst` at once.
    pub fn new(rate: Option<f64>, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: rate.filter(|r| *r > 0.0),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(rate) = self.rate {
            let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(self.burst);
        }
        self.last = now;
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.rate.is_none() {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there (`now` if one is there already).
    pub fn next_ready(&mut self, now: Instant) -> Instant {
        let Some(rate) = self.rate else {
            return now;
        };
        self.refill(now);
        if self.tokens >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(10.0), 3, t0);
        assert_eq!((0..5).filter(|_| p.try_take(t0)).count(), 3);
        assert_eq!(p.next_ready(t0), t0 + Duration::from_millis(100));
        assert!(p.try_take(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn unpaced_always_allows() {
        let t0 = Instant::now();
        let mut p = Pacer::new(None, 1, t0);
        assert!((0..1000).all(|_| p.try_take(t0)));
    }

    proptest! {
        #[test]
        fn never_more_than_burst_plus_rate_times_elapsed(
            rate in 1.0f64..5000.0, burst in 1u32..100,
            steps in proptest::collection::vec(0u64..20_000, 1..200),
        ) {
            let t0 = Instant::now();
            let mut p = Pacer::new(Some(rate), burst, t0);
            let (mut now, mut taken) = (t0, 0u64);
            for step in steps {
                now += Duration::from_micros(step);
                taken += u64::from(p.try_take(now));
                let allowed = f64::from(burst) + rate * (now - t0).as_secs_f64();
                prop_assert!(taken as f64 <= allowed + 1e-6);
            }
        }
    }
}
