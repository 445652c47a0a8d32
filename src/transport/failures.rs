//! Recent authentication failures per peer address, and how long to hold each further refusal.
//!
//! Someone on the court's Wi-Fi guessing device codes or tokens gets an answer at once for the
//! first few tries, then each refusal from that address is held back for twice as long as the
//! last (up to [`FailurePolicy::max_delay`]). A device or admin on another address is never
//! slowed, and a successful handshake is never delayed: only refusals wait.
//!
//! The table is pure (time is passed in) and bounded: at most [`FailurePolicy::capacity`]
//! addresses, an address forgotten `forget_after` its last failure, and the least recently
//! failing address evicted when the table is full. The delay itself is served by the request
//! that failed (it sleeps before answering), so there is no task or timer per attempt; how many
//! such requests one address can hold at once is the listener's per-address cap.
//!
//! IPv6 peers are counted per /64 (one host can use a whole /64), IPv4 per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How failures turn into delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Failures from one address answered without delay (a mistyped token, a device retrying).
    pub free_failures: u32,
    /// The delay of the first failure past the free ones; each further one doubles it.
    pub first_delay: Duration,
    /// The longest a refusal is held.
    pub max_delay: Duration,
    /// An address with no failure for this long starts again from zero.
    pub forget_after: Duration,
    /// Addresses remembered at most.
    pub capacity: usize,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            free_failures: 3,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            forget_after: Duration::from_secs(600),
            capacity: 4096,
        }
    }
}

impl FailurePolicy {
    /// How long to hold the refusal that is an address's `failures`-th in a row.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let Some(past_free) = failures.checked_sub(self.free_failures + 1) else {
            return Duration::ZERO;
        };
        // 2^16 × any sensible first delay is past any sensible cap: stop doubling there.
        let factor = 1u32 << past_free.min(16);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

#[derive(Debug, Clone, Copy)]
struct Recent {
    failures: u32,
    last: Instant,
}

/// The addresses that failed recently.
#[derive(Debug)]
pub struct FailureTable {
    policy: FailurePolicy,
    by_address: HashMap<IpAddr, Recent>,
    evicted: u64,
}

impl FailureTable {
    pub fn new(policy: FailurePolicy) -> FailureTable {
        FailureTable {
            policy,
            by_address: HashMap::new(),
            evicted: 0,
        }
    }

    /// Records a failure from `peer` at `now`; returns how long to hold its refusal.
    pub fn record_failure(&mut self, peer: IpAddr, now: Instant) -> Duration {
        let key = counted_as(peer);
        if !self.by_address.contains_key(&key) {
            self.make_room(now);
        }
        let forget_after = self.policy.forget_after;
        let recent = self.by_address.entry(key).or_insert(Recent {
            failures: 0,
            last: now,
        });
        if now.saturating_duration_since(recent.last) >= forget_after {
            recent.failures = 0;
        }
        recent.failures = recent.failures.saturating_add(1);
        recent.last = now;
        self.policy.delay_after(recent.failures)
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// Addresses dropped while they still counted, to make room for others.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Forgets expired addresses, then, if still full, the one that failed least recently.
    fn make_room(&mut self, now: Instant) {
        if self.by_address.len() < self.policy.capacity.max(1) {
            return;
        }
        let forget_after = self.policy.forget_after;
        self.by_address
            .retain(|_, r| now.saturating_duration_since(r.last) < forget_after);
        if self.by_address.len() < self.policy.capacity.max(1) {
            return;
        }
        let oldest = self
            .by_address
            .iter()
            .min_by_key(|(_, r)| r.last)
            .map(|(ip, _)| *ip);
        if let Some(ip) = oldest {
            self.by_address.remove(&ip);
            self.evicted += 1;
        }
    }
}

/// The key an address is counted under: IPv4 (also when mapped into IPv6) as itself, IPv6 by
/// its /64.
fn counted_as(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn delays(table: &mut FailureTable, peer: IpAddr, at: Instant, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| table.record_failure(peer, at).as_millis() as u64)
            .collect()
    }

    #[test]
    fn the_first_failures_are_free_then_each_waits_twice_as_long_up_to_the_cap() {
        let mut table = FailureTable::new(FailurePolicy::default());
        let now = Instant::now();
        assert_eq!(
            delays(&mut table, ip("192.168.1.50"), now, 10),
            [0, 0, 0, 250, 500, 1000, 2000, 4000, 4000, 4000]
        );
    }

    #[test]
    fn another_address_is_not_slowed_by_a_failing_one() {
        let mut table = FailureTable::new(FailurePolicy::default());
        let now = Instant::now();
        delays(&mut table, ip("192.168.1.50"), now, 20);
        assert_eq!(
            table.record_failure(ip("192.168.1.51"), now),
            Duration::ZERO
        );
    }

    #[test]
    fn an_address_quiet_for_forget_after_starts_again() {
        let policy = FailurePolicy::default();
        let mut table = FailureTable::new(policy.clone());
        let now = Instant::now();
        delays(&mut table, ip("10.0.0.9"), now, 8);
        let later = now + policy.forget_after;
        assert_eq!(table.record_failure(ip("10.0.0.9"), later), Duration::ZERO);
    }

    #[test]
    fn ipv6_hosts_of_one_64_count_together_and_mapped_ipv4_as_ipv4() {
        let mut table = FailureTable::new(FailurePolicy::default());
        let now = Instant::now();
        for n in 1..=4 {
            table.record_failure(ip(&format!("fe80::{n}")), now);
        }
        assert_eq!(table.len(), 1);
        assert_eq!(
            table.record_failure(ip("fe80::99"), now),
            Duration::from_millis(500)
        );
        table.record_failure(ip("::ffff:10.0.0.1"), now);
        table.record_failure(ip("10.0.0.1"), now);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_full_table_evicts_the_address_that_failed_least_recently() {
        let policy = FailurePolicy {
            capacity: 2,
            ..FailurePolicy::default()
        };
        let mut table = FailureTable::new(policy);
        let t0 = Instant::now();
        delays(&mut table, ip("10.0.0.1"), t0, 5);
        delays(&mut table, ip("10.0.0.2"), t0 + Duration::from_secs(1), 5);
        table.record_failure(ip("10.0.0.3"), t0 + Duration::from_secs(2));
        assert_eq!(table.len(), 2);
        assert_eq!(table.evicted(), 1);
        // 10.0.0.2 is still remembered (its sixth failure waits), 10.0.0.1 starts again.
        assert_eq!(
            table.record_failure(ip("10.0.0.2"), t0 + Duration::from_secs(3)),
            Duration::from_millis(1000)
        );
    }

    proptest! {
        #[test]
        fn delays_never_shrink_within_a_run_never_pass_the_cap_and_the_table_stays_bounded(
            capacity in 1usize..64,
            attempts in proptest::collection::vec((0u8..32, 0u64..1_000), 1..300),
        ) {
            let policy = FailurePolicy { capacity, ..FailurePolicy::default() };
            let mut table = FailureTable::new(policy.clone());
            let mut now = Instant::now();
            let mut last_delay: HashMap<u8, Duration> = HashMap::new();
            for (host, gap_ms) in attempts {
                now += Duration::from_millis(gap_ms);
                let delay = table.record_failure(IpAddr::from([10, 0, 0, host]), now);
                prop_assert!(delay <= policy.max_delay);
                prop_assert!(table.len() <= capacity);
                // 300 attempts ≤ 1 s apart stay within forget_after, so without eviction
                // (room for all 32 hosts) a host's delay only grows.
                if capacity >= 32
                    && let Some(before) = last_delay.get(&host)
                {
                    prop_assert!(delay >= *before);
                }
                last_delay.insert(host, delay);
            }
        }

        #[test]
        fn the_delay_of_the_nth_failure_is_the_policys(
            n in 1usize..40,
            first_ms in 1u64..1000,
            max_ms in 1u64..10_000,
        ) {
            let policy = FailurePolicy {
                first_delay: Duration::from_millis(first_ms),
                max_delay: Duration::from_millis(max_ms),
                ..FailurePolicy::default()
            };
            let mut table = FailureTable::new(policy.clone());
            let now = Instant::now();
            let got = delays(&mut table, ip("10.1.2.3"), now, n);
            for (i, ms) in got.iter().enumerate() {
                let nth = i as u32 + 1;
                let expected = if nth <= policy.free_failures {
                    0
                } else {
                    (first_ms << (nth - policy.free_failures - 1).min(16)).min(max_ms)
                };
                prop_assert_eq!(*ms, expected);
            }
        }
    }
}
