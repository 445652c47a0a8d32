//! Packing simulated samples into the two wire forms, and V3.3's time-of-day stamps.
//!
//! V3.3 frames carry the local time of day as a decimal `HHMMSSmmm` (after its NTP sync), so a
//! consumer needs the court's timezone and a rough date to get unix time back: [`SeedClock`]
//! does both directions for the simulator and the evaluation (the daemon has its own in
//! `protocol`).

const DAY_MS: i64 = 86_400_000;

/// Converts between unix ms and V3.3's `HHMMSSmmm` local time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedClock {
    /// Offset of local time from UTC, minutes (Asia/Shanghai: +480).
    pub tz_offset_min: i32,
}

impl SeedClock {
    /// The stamp a V3.3 node would put on a sample taken at `unix_ms`.
    pub fn stamp(&self, unix_ms: i64) -> i64 {
        let local = (unix_ms + i64::from(self.tz_offset_min) * 60_000).rem_euclid(DAY_MS);
        let (h, rest) = (local / 3_600_000, local % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        let (s, ms) = (rest / 1000, rest % 1000);
        h * 10_000_000 + m * 100_000 + s * 1000 + ms
    }

    /// The unix ms of `stamp` nearest to `near_ms` (so a session crossing midnight works as long
    /// as `near_ms` is within 12 h). `None` for a stamp that is not a time of day.
    pub fn to_unix(&self, stamp: i64, near_ms: f64) -> Option<f64> {
        if !(0..240_000_000).contains(&stamp) {
            return None;
        }
        let (h, m, s, ms) = (
            stamp / 10_000_000,
            stamp / 100_000 % 100,
            stamp / 1000 % 100,
            stamp % 1000,
        );
        if h > 23 || m > 59 || s > 59 {
            return None;
        }
        let of_day = ((h * 60 + m) * 60 + s) * 1000 + ms;
        let offset = i64::from(self.tz_offset_min) * 60_000;
        let near = near_ms as i64;
        let local_day_start = (near + offset).div_euclid(DAY_MS) * DAY_MS;
        let base = local_day_start + of_day - offset;
        [base - DAY_MS, base, base + DAY_MS]
            .into_iter()
            .min_by_key(|c| (c - near).abs())
            .map(|c| c as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_across_midnight() {
        let clock = SeedClock { tz_offset_min: 480 };
        // 2024-11-23 15:59:59.995 UTC = 23:59:59.995 in UTC+8.
        let t = 1_732_377_599_995;
        assert_eq!(clock.stamp(t), 235_959_995);
        assert_eq!(clock.stamp(t + 10), 5);
        for dt in [0, 10, 5000] {
            assert_eq!(
                clock.to_unix(clock.stamp(t + dt), t as f64),
                Some((t + dt) as f64)
            );
        }
        assert_eq!(clock.to_unix(93_015_123, 0.0).map(|_| ()), Some(()));
        assert_eq!(clock.to_unix(256_000_000, 0.0), None);
    }
}
