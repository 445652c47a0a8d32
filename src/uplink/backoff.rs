//! Reconnect delays: exponential with full jitter, so a venue's gateways that lost the same
//! WAN link do not reconnect in lock-step and stampede the broker when it comes back.
//!
//! Pure: the random draw is passed in (a number in `[0, 1)`), so the schedule is testable.

use std::time::Duration;

/// The delay schedule of one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Consecutive failures since the last success.
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// The ceiling of the next delay: `initial · 2^failures`, capped at `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.failures.min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Records a failure and returns how long to wait: uniform in `[ceiling/2, ceiling]`
    /// ("equal jitter": never a tight loop, never in step with others). `unit` is a random
    /// number in `[0, 1)`.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let unit = unit.clamp(0.0, 1.0);
        ceiling / 2 + ceiling.div_f64(2.0).mul_f64(unit)
    }

    /// A connection succeeded: start again from `initial`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_doubling_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let ceilings: Vec<_> = (0..6)
            .map(|_| {
                let c = b.ceiling();
                b.next_delay(0.5);
                c.as_millis()
            })
            .collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    proptest! {
        #[test]
        fn every_delay_is_between_half_the_ceiling_and_the_ceiling(
            draws in proptest::collection::vec(0.0f64..1.0, 1..40),
        ) {
            let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(30));
            for unit in draws {
                let ceiling = b.ceiling();
                let d = b.next_delay(unit);
                prop_assert!(d >= ceiling / 2 && d <= ceiling);
                prop_assert!(d >= Duration::from_millis(25));
            }
        }
    }
}
