//! Per-connection rate limiting, as a pure counter over one-second windows.
//!
//! A device may send `per_second` frames in each window — text, binary, ping and pong alike, since
//! each costs the gateway a read and most an answer. Past that, each further message in
//! the window is refused (`error rate_limited`) without being processed — not acked, so a
//! durable-delivery device resends it later. A window that overflowed is a *strike*; after
//! `strikes_to_close` consecutive strikes the connection is closed with 4008, so a device stuck
//! in a send loop cannot hold the gateway busy, while a single burst is only slowed down.

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Refuse it with `error rate_limited`; the connection stays.
    Refuse,
    /// The limit has been exceeded for too long: close with 4008.
    Close,
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: u32,
    strikes_to_close: u32,
    window_start_ms: i64,
    in_window: u32,
    strikes: u32,
    struck_this_window: bool,
}

impl RateLimiter {
    pub fn new(per_second: u32, strikes_to_close: u32) -> RateLimiter {
        RateLimiter {
            per_second: per_second.max(1),
            strikes_to_close: strikes_to_close.max(1),
            window_start_ms: i64::MIN,
            in_window: 0,
            strikes: 0,
            struck_this_window: false,
        }
    }

    /// Counts one message arriving at `now_ms` (a monotonic millisecond clock).
    pub fn check(&mut self, now_ms: i64) -> Verdict {
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 {
            let consecutive = now_ms.saturating_sub(self.window_start_ms) < 2000;
            if !(self.struck_this_window && consecutive) {
                self.strikes = 0;
            }
            self.window_start_ms = now_ms;
            self.in_window = 0;
            self.struck_this_window = false;
        }
        self.in_window = self.in_window.saturating_add(1);
        if self.in_window <= self.per_second {
            return Verdict::Accept;
        }
        if !self.struck_this_window {
            self.struck_this_window = true;
            self.strikes += 1;
        }
        if self.strikes >= self.strikes_to_close {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_within_the_limit_are_accepted_every_second() {
        let mut r = RateLimiter::new(10, 3);
        for second in 0..5 {
            for i in 0..10 {
                assert_eq!(r.check(second * 1000 + i), Verdict::Accept);
            }
        }
    }

    #[test]
    fn a_single_burst_is_refused_but_not_closed() {
        let mut r = RateLimiter::new(5, 3);
        let verdicts: Vec<_> = (0..8).map(|i| r.check(i)).collect();
        assert_eq!(&verdicts[..5], &[Verdict::Accept; 5]);
        assert_eq!(&verdicts[5..], &[Verdict::Refuse; 3]);
        assert_eq!(r.check(1500), Verdict::Accept);
    }

    #[test]
    fn a_limit_exceeded_for_consecutive_seconds_closes() {
        let mut r = RateLimiter::new(5, 3);
        let mut last = Verdict::Accept;
        for second in 0..3 {
            for i in 0..6 {
                last = r.check(second * 1000 + i);
            }
        }
        assert_eq!(last, Verdict::Close);
    }

    #[test]
    fn a_quiet_second_between_bursts_resets_the_strikes() {
        let mut r = RateLimiter::new(5, 2);
        for i in 0..6 {
            r.check(i);
        }
        // 2.5 s later: the previous window was not consecutive.
        for i in 0..6 {
            assert_ne!(r.check(2500 + i), Verdict::Close);
        }
    }

    proptest! {
        #[test]
        fn never_more_than_the_limit_is_accepted_in_a_window(
            per_second in 1u32..50,
            gaps in proptest::collection::vec(0i64..40, 1..400),
        ) {
            let mut r = RateLimiter::new(per_second, 3);
            let mut now = 0i64;
            let mut accepted: Vec<i64> = Vec::new();
            for gap in gaps {
                now += gap;
                if r.check(now) == Verdict::Accept {
                    accepted.push(now);
                }
            }
            // Any span shorter than a window holds at most 2× the limit (two adjacent windows).
            for (i, t) in accepted.iter().enumerate() {
                let in_span = accepted[i..].iter().take_while(|u| **u - t < 1000).count();
                prop_assert!(in_span as u32 <= 2 * per_second);
            }
        }
    }
}
