//! Frame timestamps: telling V3.3's local time of day from unix milliseconds, and turning both
//! into unix ms on the court's clock.
//!
//! A frame's `timestamp` is one of two clocks (SPEC §1.1):
//! - **unix ms** — newer firmware and the compact form's `t0`;
//! - **local time of day `HHMMSSmmm`** — what V3.3 sends after its TimeSync: the decimal digits of
//!   the wall-clock time in the court's timezone, leading zero lost (`93015123` = 09:30:15.123).
//!
//! **The rule that tells them apart.** A time of day is below 240 000 000 (24 h) and every field
//! is in range (minutes and seconds below 60); a unix ms stamp for any date from 2001-09-09 to
//! 2100-01-01 lies in `[10^12, 4.1·10^12)`. The ranges are disjoint, so a raw value is read as
//! a time of day, as unix ms, or (anything else: `millis()` since boot from a hub that never
//! synced, unix seconds, negatives, `95960000` with 60 minutes) as [`FrameTime::Unknown`], which
//! the caller replaces by the receipt time.
//!
//! **Anchoring.** A time of day carries no date. It is placed on the local date — of the day
//! before, the day of, or the day after the reference instant (the batch's receipt time) — that
//! puts it nearest that reference. A frame stamped 23:59:59.900 received at 00:00:00.050 lands on
//! the previous day; one stamped 00:00:00.010 received at 23:59:59.990 (a hub clock running a
//! little fast) lands on the next day. Across DST: an ambiguous local time (the repeated hour)
//! takes whichever of its two instants is nearer the reference; a local time inside a DST gap
//! (which no synced clock shows, but a drifting one can) is read with the offset after the gap.
//!
//! **Plausibility.** A node that has not synced yet stamps its frames with its own
//! milliseconds since boot, and below 66 hours of uptime such a value can look like a valid
//! `HHMMSSmmm`. A synced V3.3 frame reaches the gateway within seconds of its stamp (the
//! firmware drops what it cannot send), so a time of day that anchors more than
//! [`TIME_OF_DAY_MAX_SKEW_MS`] (15 min) from the receipt time is not believed: it reads as
//! unknown, like any other unreadable clock. A hub whose clock is off by more than that also
//! gets receipt times; `heartbeat_response.server_time` and the `sync` push are the cure.
//!
//! Pure functions; the reference is passed in, never read from a clock.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::batch::BatchForm;

/// Smallest raw value read as unix ms (2001-09-09T01:46:40Z).
pub const UNIX_MS_MIN: i64 = 1_000_000_000_000;
/// First raw value no longer read as unix ms (2100-01-01T00:00:00Z).
pub const UNIX_MS_END: i64 = 4_102_444_800_000;
/// First raw value no longer a candidate time of day (24:00:00.000 as `HHMMSSmmm`).
pub const TIME_OF_DAY_END: i64 = 240_000_000;
/// Farthest a time-of-day stamp may land from the receipt time and still be believed.
pub const TIME_OF_DAY_MAX_SKEW_MS: i64 = 15 * 60 * 1000;

/// What a raw frame timestamp is, by the rule in the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameTime {
    /// Unix milliseconds.
    UnixMs(i64),
    /// Local time of day, as milliseconds since local midnight.
    TimeOfDay { ms_of_day: u32 },
    /// Neither: the caller uses the receipt time instead.
    Unknown,
}

impl FrameTime {
    /// Classify a raw frame timestamp.
    pub fn classify(raw: i64) -> FrameTime {
        if (UNIX_MS_MIN..UNIX_MS_END).contains(&raw) {
            return FrameTime::UnixMs(raw);
        }
        if !(0..TIME_OF_DAY_END).contains(&raw) {
            return FrameTime::Unknown;
        }
        let millis = raw % 1000;
        let seconds = raw / 1000 % 100;
        let minutes = raw / 100_000 % 100;
        let hours = raw / 10_000_000;
        if seconds >= 60 || minutes >= 60 {
            return FrameTime::Unknown;
        }
        let ms_of_day = ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
        // In range by the checks above: below 24 h of milliseconds.
        FrameTime::TimeOfDay {
            ms_of_day: u32::try_from(ms_of_day).unwrap_or(0),
        }
    }
}

/// The court's clock: converts frame timestamps to unix ms and formats instants for replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameClock {
    tz: Tz,
}

impl FrameClock {
    /// A clock for the court's timezone (`[gateway] timezone`).
    pub fn new(tz: Tz) -> FrameClock {
        FrameClock { tz }
    }

    /// The court's timezone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Unix ms of a raw frame timestamp, anchored near `reference_ms` (the receipt time) when
    /// it is a time of day. `None` when the raw value is neither clock ([`FrameTime::Unknown`]),
    /// or a time of day that lands more than [`TIME_OF_DAY_MAX_SKEW_MS`] from the reference (see
    /// the module doc: an unsynced node's ms-since-boot).
    pub fn to_unix_ms(&self, raw: i64, reference_ms: i64) -> Option<i64> {
        match FrameTime::classify(raw) {
            FrameTime::UnixMs(ms) => Some(ms),
            FrameTime::TimeOfDay { ms_of_day } => self
                .anchor_time_of_day(ms_of_day, reference_ms)
                .filter(|ms| ms.abs_diff(reference_ms) <= TIME_OF_DAY_MAX_SKEW_MS.unsigned_abs()),
            FrameTime::Unknown => None,
        }
    }

    /// Unix ms of the local time of day `ms_of_day` on the date that puts it nearest to
    /// `reference_ms`.
    pub fn anchor_time_of_day(&self, ms_of_day: u32, reference_ms: i64) -> Option<i64> {
        let time = NaiveTime::from_num_seconds_from_midnight_opt(
            ms_of_day / 1000,
            (ms_of_day % 1000) * 1_000_000,
        )?;
        let reference = DateTime::from_timestamp_millis(reference_ms)?.with_timezone(&self.tz);
        let today = reference.date_naive();
        let candidates = [
            today.checked_sub_days(Days::new(1)),
            Some(today),
            today.checked_add_days(Days::new(1)),
        ];
        candidates
            .into_iter()
            .flatten()
            .filter_map(|date| self.local_instants_ms(date, time, reference_ms))
            .min_by_key(|ms| ms.abs_diff(reference_ms))
    }

    /// The instant of `date` at local `time`, resolving DST as the module doc says; when the
    /// local time is ambiguous, the instant nearer `reference_ms`.
    fn local_instants_ms(
        &self,
        date: NaiveDate,
        time: NaiveTime,
        reference_ms: i64,
    ) -> Option<i64> {
        let local = NaiveDateTime::new(date, time);
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.timestamp_millis()),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.timestamp_millis(), b.timestamp_millis());
                Some(if a.abs_diff(reference_ms) <= b.abs_diff(reference_ms) {
                    a
                } else {
                    b
                })
            }
            LocalResult::None => self.read_in_gap(local),
        }
    }

    /// A local time inside a DST gap, read with the offset in force after the gap: step forward
    /// in 15-minute slices (gaps are 30 min to 2 h) to the first existing local time, then take
    /// the same step back in absolute time.
    fn read_in_gap(&self, local: NaiveDateTime) -> Option<i64> {
        const SLICE_MS: i64 = 15 * 60 * 1000;
        (1..=12).find_map(|k| {
            let later = local.checked_add_signed(chrono::TimeDelta::milliseconds(k * SLICE_MS))?;
            let instant = self.tz.from_local_datetime(&later).earliest()?;
            Some(instant.timestamp_millis() - k * SLICE_MS)
        })
    }

    /// Unix ms of every sample of a batch received at `received_ms`: compact rows at
    /// `t0 + i·1000/rate_hz` (rounded to the ms), seed frames by their own timestamp as the
    /// module doc says, or `received_ms` when a frame has none or an unknown clock.
    pub fn sample_times_ms(&self, form: &BatchForm, received_ms: i64) -> Vec<i64> {
        match form {
            BatchForm::Compact(c) => {
                let step_ms = 1000.0 / c.rate_hz;
                (0..c.len())
                    .map(|i| c.t0.saturating_add((i as f64 * step_ms).round() as i64))
                    .collect()
            }
            BatchForm::Seed(s) => s
                .frames
                .iter()
                .map(|f| {
                    f.timestamp
                        .and_then(|raw| self.to_unix_ms(raw, received_ms))
                        .unwrap_or(received_ms)
                })
                .collect(),
        }
    }

    /// An instant as ISO-8601 with milliseconds and the court's offset
    /// (`2026-11-24T09:30:15.123+08:00`), as replies carry it.
    pub fn iso(&self, unix_ms: i64) -> String {
        match DateTime::from_timestamp_millis(unix_ms) {
            Some(t) => t
                .with_timezone(&self.tz)
                .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string(),
            // Out of chrono's range (±262,000 years): no reply ever carries such a time, but
            // a formatter must not panic on it.
            None => unix_ms.to_string(),
        }
    }

    /// The local time of day of an instant as V3.3 would stamp it (`HHMMSSmmm`), for simulators
    /// and tests.
    pub fn time_of_day_stamp(&self, unix_ms: i64) -> Option<i64> {
        use chrono::Timelike;
        let t = DateTime::from_timestamp_millis(unix_ms)?.with_timezone(&self.tz);
        let millis = i64::from(t.nanosecond() / 1_000_000).min(999);
        Some(
            i64::from(t.hour()) * 10_000_000
                + i64::from(t.minute()) * 100_000
                + i64::from(t.second()) * 1000
                + millis,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shanghai() -> FrameClock {
        FrameClock::new(chrono_tz::Asia::Shanghai)
    }

    /// Unix ms of local `date` (y, m, d) at `time` (h, m, s, ms) in `tz`.
    fn unix_ms(tz: Tz, (y, mo, d): (i32, u32, u32), (h, mi, s, ms): (u32, u32, u32, i64)) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("test dates are unambiguous")
            .timestamp_millis()
            + ms
    }

    #[test]
    fn the_spec_example_is_a_time_of_day() {
        assert_eq!(
            FrameTime::classify(93_015_123),
            FrameTime::TimeOfDay {
                ms_of_day: ((9 * 60 + 30) * 60 + 15) * 1000 + 123
            }
        );
    }

    #[test]
    fn unix_ms_and_out_of_range_values_are_told_apart() {
        assert_eq!(
            FrameTime::classify(1_732_400_000_123),
            FrameTime::UnixMs(1_732_400_000_123)
        );
        assert_eq!(FrameTime::classify(-1), FrameTime::Unknown);
        assert_eq!(FrameTime::classify(240_000_000), FrameTime::Unknown);
        assert_eq!(
            FrameTime::classify(96_000_000),
            FrameTime::Unknown,
            "60 minutes"
        );
        assert_eq!(
            FrameTime::classify(93_060_000),
            FrameTime::Unknown,
            "60 seconds"
        );
        assert_eq!(
            FrameTime::classify(1_732_400_000),
            FrameTime::Unknown,
            "unix seconds"
        );
        assert_eq!(FrameTime::classify(UNIX_MS_END), FrameTime::Unknown);
    }

    #[test]
    fn a_time_of_day_lands_on_the_reference_date() {
        let clock = shanghai();
        let tz = clock.timezone();
        let reference = unix_ms(tz, (2026, 11, 24), (9, 30, 16, 0));
        assert_eq!(
            clock.to_unix_ms(93_015_123, reference),
            Some(unix_ms(tz, (2026, 11, 24), (9, 30, 15, 123)))
        );
        assert_eq!(
            clock.iso(unix_ms(tz, (2026, 11, 24), (9, 30, 15, 123))),
            "2026-11-24T09:30:15.123+08:00"
        );
    }

    #[test]
    fn a_stamp_just_before_midnight_received_just_after_lands_on_the_previous_day() {
        let clock = shanghai();
        let tz = clock.timezone();
        let reference = unix_ms(tz, (2026, 11, 25), (0, 0, 0, 50));
        assert_eq!(
            clock.to_unix_ms(235_959_900, reference),
            Some(unix_ms(tz, (2026, 11, 24), (23, 59, 59, 900)))
        );
    }

    #[test]
    fn a_stamp_just_after_midnight_received_just_before_lands_on_the_next_day() {
        let clock = shanghai();
        let tz = clock.timezone();
        let reference = unix_ms(tz, (2026, 11, 24), (23, 59, 59, 990));
        assert_eq!(
            clock.to_unix_ms(10, reference),
            Some(unix_ms(tz, (2026, 11, 25), (0, 0, 0, 10)))
        );
    }

    #[test]
    fn the_repeated_hour_of_a_dst_change_takes_the_instant_nearer_the_reference() {
        // Europe/Berlin, 2026-10-25: 02:00–03:00 local happens twice (CEST, then CET).
        let clock = FrameClock::new(chrono_tz::Europe::Berlin);
        let first = 1_792_888_200_000; // 2026-10-25T00:30:00Z = 02:30 CEST
        let second = first + 3_600_000; // 01:30Z = 02:30 CET
        assert_eq!(clock.to_unix_ms(23_000_000, first + 1000), Some(first));
        assert_eq!(clock.to_unix_ms(23_000_000, second + 1000), Some(second));
    }

    #[test]
    fn a_time_inside_a_dst_gap_is_read_with_the_offset_after_it() {
        // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let clock = FrameClock::new(chrono_tz::Europe::Berlin);
        let reference = 1_774_744_800_000; // 2026-03-29T00:40:00Z = 01:40 CET
        // 02:30 read as CEST (+02:00) = 00:30Z.
        assert_eq!(
            clock.to_unix_ms(23_000_000, reference),
            Some(1_774_744_200_000)
        );
    }

    #[test]
    fn a_time_of_day_far_from_the_receipt_is_not_believed() {
        let clock = shanghai();
        let tz = clock.timezone();
        let received = unix_ms(tz, (2026, 11, 24), (9, 30, 16, 0));
        // 00:01:23.456, or 83 s of node uptime: either way not a stamp of a frame sent now.
        assert_eq!(clock.to_unix_ms(123_456, received), None);
        assert_eq!(
            clock.to_unix_ms(91_516_000, received),
            Some(unix_ms(tz, (2026, 11, 24), (9, 15, 16, 0))),
            "exactly 15 minutes is still believed"
        );
        assert_eq!(clock.to_unix_ms(91_515_999, received), None);
    }

    #[test]
    fn sample_times_follow_the_rate_or_each_frame_stamp() {
        use crate::batch::{CompactBatch, SeedBatch, SeedFrame};
        let clock = shanghai();
        let compact = BatchForm::Compact(CompactBatch {
            sensor_id: 4,
            t0: 1_000_000_000_000,
            rate_hz: 300.0,
            channels: 6,
            samples: vec![0.0; 18],
        });
        assert_eq!(
            clock.sample_times_ms(&compact, 0),
            [1_000_000_000_000, 1_000_000_000_003, 1_000_000_000_007]
        );
        let tz = clock.timezone();
        let received = unix_ms(tz, (2026, 11, 24), (9, 30, 16, 0));
        let frame = |timestamp| SeedFrame {
            sensor_id: Some(1),
            timestamp,
            acc: [0.0; 3],
            gyro: [0.0; 3],
            angle: None,
        };
        let seed = BatchForm::Seed(SeedBatch {
            sensor_type: None,
            timestamp: Some(123_456),
            frames: vec![
                frame(Some(93_015_123)),
                frame(None),
                frame(Some(123_456)),
                frame(Some(1_000_000_000_000)),
            ],
        });
        assert_eq!(
            clock.sample_times_ms(&seed, received),
            [
                unix_ms(tz, (2026, 11, 24), (9, 30, 15, 123)),
                received,
                received,
                1_000_000_000_000
            ]
        );
    }

    proptest! {
        #[test]
        fn any_raw_value_and_reference_convert_without_panicking(raw in any::<i64>(), reference in any::<i64>()) {
            let _ = shanghai().to_unix_ms(raw, reference);
            let _ = shanghai().iso(raw);
        }

        #[test]
        fn a_stamp_taken_near_the_reference_converts_back_to_its_instant(
            instant in UNIX_MS_MIN..UNIX_MS_END - 86_400_000,
            delay_ms in -TIME_OF_DAY_MAX_SKEW_MS..=TIME_OF_DAY_MAX_SKEW_MS,
            zone in prop::sample::select(vec![
                chrono_tz::Asia::Shanghai, chrono_tz::Europe::Berlin,
                chrono_tz::America::New_York, chrono_tz::Australia::Lord_Howe, chrono_tz::UTC,
            ]),
        ) {
            let clock = FrameClock::new(zone);
            let stamp = clock.time_of_day_stamp(instant).expect("instant in chrono's range");
            let got = clock.to_unix_ms(stamp, instant + delay_ms).expect("a valid time of day");
            // Exact except in a repeated hour, where the stamp names two instants an offset apart
            // and the nearer one to the reference is taken.
            prop_assert!(got == instant || (got - instant).abs() <= 3_600_000,
                "instant {instant} stamp {stamp} got {got}");
            if got != instant {
                prop_assert_eq!(clock.time_of_day_stamp(got), Some(stamp));
            }
        }
    }
}
