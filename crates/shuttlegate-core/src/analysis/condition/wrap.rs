//! Sign wrap past full scale, undone.
//!
//! WitMotion-type sensors report a 16-bit two's-complement value without saturating: a reading
//! past +full scale comes out near −full scale (and the other way), so one sample jumps by
//! nearly twice the range. Such a jump is read as a wrap and undone by adding or removing one
//! full range (2 × full scale). Each axis keeps its own count of wraps.
//!
//! A jump is taken for a wrap only on evidence: both readings on opposite sides, each beyond
//! half full scale, the jump over 1.5 × full scale, and the unwrapped value where the last two
//! samples' trend points (a clean sensor's steepest real reversal lands nearer its raw reading
//! than a full range away). Where the sensor's quantity cannot change by more than full scale
//! in one sample, a wrap cannot jump by less than twice full scale less that change, and the
//! bar falls to it (at 100 Hz a ±2000 °/s gyro's wrap can jump by one full scale only: at 1.5
//! such wraps were missed, the readings left a range off), and so does the half full scale
//! each reading must lie beyond (the reading before the wrap lay within that change of the
//! rail). And a wrap-shaped jump back soon
//! after one not taken is that one's return, not a wrap of its own (taken, it put a range on
//! readings that had none until the wrap was let go: 4,900 °/s read after a swing).
//!
//! Two kinds of wrapping sensor exist, and the return from a wrap differs:
//! - the count **runs on** past the rail (an int16 overflow after the sensor's filter): the
//!   wrapped readings move, and the wrap ends with the mirror jump across the rails;
//! - the sensor **pins then wraps** (WitMotion BWT61: its MPU-6050 saturates, the module's
//!   output then overflows): the wrapped readings sit on the opposite rail, unchanging. The
//!   true value can leave full scale at any speed — an impact or a racket's reversal takes
//!   2000 °/s off in one 10 ms sample — so the return is a reading *off the rail*, whatever
//!   the jump. Waiting for the mirror jump instead kept a wrap 250 ms on a value read a whole
//!   range too high (a 4000 °/s plateau), which lost the ChoongGao smashes.
//!
//! An axis is taken to pin once a wrapped reading has held on the rail, repeating its code,
//! for two samples.

/// A jump larger than this multiple of full scale in one sample can be a wrap (3000 °/s at
/// ±2000 °/s): beyond a racket's real change between samples at 100 Hz and up (its angular
/// acceleration stays under ~2·10⁵ °/s², 2000 °/s in 10 ms), while a wrap jumps by twice full
/// scale less the two samples' distances from the rail. The trend test below guards the rest.
pub const WRAP_JUMP_FS: f64 = 1.5;
/// The smallest jump, as a multiple of full scale, that can be a wrap at any rate: past it
/// the two readings lie a full scale apart across zero, which a wrap's return to a value
/// still beyond the rail needs; under it a running-on count cannot be told from the real
/// changes between samples.
const MIN_WRAP_JUMP_FS: f64 = 1.0;
/// Both readings of a wrap lie on opposite sides, each beyond this share of full scale (a
/// real change that steep would start or end near zero); at any rate where the bar falls,
/// it falls too ([`wrap_rail_share`]).
const WRAP_RAIL_SHARE: f64 = 0.5;
/// A wrapped reading within this share of full scale sits on the rail (sensors pin a few LSB
/// under it): the same share the clipping test uses.
const PINNED_SHARE: f64 = 0.98;
/// Two wrapped readings closer than this share of full scale held still: within one LSB of a
/// 16-bit reading. A pinned sensor repeats one code; a count running on past the rail moves
/// by more than its noise (0.3–1.5 °/s on MEMS gyros, 15–25 LSB at ±2000 °/s) even at the
/// flat top of a swing's peak.
const HELD_SHARE: f64 = 1.0 / 32768.0;
/// A return to the unwrapped reading by a jump over this multiple of full scale back across
/// the rails, where it follows the trend: a running-on sensor's value falling back under full
/// scale faster than the mirror jump's test allows.
const RETURN_JUMP_FS: f64 = 1.0;
/// Wraps tracked per axis, each way. A reading two ranges away from the true value would need
/// a rate of ±6000 °/s (±48 g), which no racket reaches; more is noise.
const MAX_WRAPS: i32 = 1;
/// A value past the rail is a swing's peak, and lasts no longer than this past it, ms.
const PEAK_PAST_RAIL_MS: f64 = 100.0;
/// A wrap lasts no longer than this, ms: a value past full scale is a swing's peak (under
/// 100 ms past the rail); a longer one means the jump was not a wrap (a glitch, a reset), and
/// the raw readings are taken as they are again.
const MAX_WRAPPED_MS: f64 = 250.0;

/// One axis's unwrapping state.
#[derive(Debug, Clone, Copy, Default)]
pub struct AxisUnwrap {
    /// The previous raw reading.
    prev_raw: Option<f64>,
    /// When it was read, ms.
    prev_t: f64,
    /// Full ranges added to the raw reading (−1, 0 or +1).
    wraps: i32,
    /// When the current wrap began, ms.
    wrapped_since: f64,
    /// The last two unwrapped values, newest first (the trend a wrap must follow).
    recent: [Option<f64>; 2],
    /// This axis's sensor pins on the rail when it wraps (seen once, kept).
    pins: bool,
    /// The last wrap-shaped jump (over [`MIN_WRAP_JUMP_FS`]) not taken for a wrap: when, and
    /// the wraps it would have added.
    untaken: Option<(f64, i32)>,
}

impl AxisUnwrap {
    /// The unwrapped value of `raw` (at `t` ms) on a sensor of ±`full_scale` whose quantity
    /// really changes by at most `max_change_per_s`, and whether it differs from the raw
    /// reading (the sample was past the rail).
    pub fn unwrap(
        &mut self,
        t: f64,
        raw: f64,
        full_scale: f64,
        max_change_per_s: f64,
    ) -> (f64, bool) {
        let prev_t = std::mem::replace(&mut self.prev_t, t);
        if let Some(prev) = self.prev_raw.replace(raw) {
            if self.wraps == 0 {
                let real_change = max_change_per_s * (t - prev_t) / 1000.0;
                self.enter(t, prev, raw, full_scale, real_change);
            } else {
                self.leave_or_hold(prev, raw, full_scale);
            }
        }
        if self.wraps != 0 && t - self.wrapped_since > MAX_WRAPPED_MS {
            self.wraps = 0;
        }
        let value = raw + f64::from(self.wraps) * 2.0 * full_scale;
        self.recent = [Some(value), self.recent[0]];
        (value, self.wraps != 0)
    }

    /// Starts a wrap on a wrap-shaped jump (over [`wrap_jump_fs`]'s bar for a real change of
    /// at most `real_change` since the last sample) that follows the trend.
    fn enter(&mut self, t: f64, prev: f64, raw: f64, full_scale: f64, real_change: f64) {
        // The shape first: it rules out nearly every sample before the bar and the share of
        // full scale the readings must lie beyond are worked out.
        if !is_wrap_shaped(prev, raw, full_scale, MIN_WRAP_JUMP_FS, 0.0) {
            return;
        }
        let rail_share = wrap_rail_share(full_scale, real_change);
        if !is_wrap_shaped(prev, raw, full_scale, MIN_WRAP_JUMP_FS, rail_share) {
            return;
        }
        let jump_fs = wrap_jump_fs(full_scale, real_change);
        // Down across −FS after rising past +FS: one wrap upwards, and the other way.
        let wraps = if raw < prev { 1 } else { -1 }.clamp(-MAX_WRAPS, MAX_WRAPS);
        if self.returns_from_untaken(t, wraps) {
            self.untaken = None;
            return;
        }
        // Under the rate-free bar a real change of that size is possible too: only the trend
        // can tell them apart, so it must be known.
        let lowered = (raw - prev).abs() <= WRAP_JUMP_FS * full_scale;
        let taken = (raw - prev).abs() > jump_fs * full_scale
            && !(lowered && self.recent[1].is_none())
            && self.follows_trend(raw + f64::from(wraps) * 2.0 * full_scale, raw);
        if taken {
            self.wraps = wraps;
            self.wrapped_since = t;
            self.untaken = None;
        } else {
            self.untaken = Some((t, wraps));
        }
    }

    /// Whether a wrap-shaped jump the other way than one not taken shortly before is that
    /// one's return: had the first been a wrap missed, the readings since were a range off,
    /// and the value coming back under the rail jumps back across the rails. Taken for a wrap,
    /// that return would put a range on readings that had none, until the wrap is let go.
    fn returns_from_untaken(&self, t: f64, wraps: i32) -> bool {
        self.untaken
            .is_some_and(|(since, w)| w == -wraps && t - since <= PEAK_PAST_RAIL_MS)
    }

    /// Ends the wrap when the reading came back under full scale: off the rail on a pinning
    /// sensor, or by a jump back across the rails that follows the trend. Otherwise notes
    /// whether the wrapped reading holds on the rail (the sensor pins).
    fn leave_or_hold(&mut self, prev: f64, raw: f64, full_scale: f64) {
        let on_rail = raw.abs() >= PINNED_SHARE * full_scale;
        let back = f64::from(self.wraps) * (raw - prev) > RETURN_JUMP_FS * full_scale
            && self.follows_trend(raw, raw + f64::from(self.wraps) * 2.0 * full_scale);
        if (self.pins && !on_rail) || back {
            self.wraps = 0;
        } else if on_rail && (raw - prev).abs() < HELD_SHARE * full_scale {
            self.pins = true;
        }
    }

    /// Whether `unwrapped` lies nearer the linear extrapolation of the last two values than
    /// `kept` does (true with less history: the rails and the jump already agreed).
    fn follows_trend(&self, unwrapped: f64, kept: f64) -> bool {
        let [Some(u1), Some(u2)] = self.recent else {
            return true;
        };
        let predicted = 2.0 * u1 - u2;
        (unwrapped - predicted).abs() < (kept - predicted).abs()
    }
}

/// Whether `prev` → `raw` is shaped like a sign wrap: a jump of most of the range between
/// readings on opposite sides, each well away from zero.
pub(crate) fn is_wrap(prev: f64, raw: f64, full_scale: f64) -> bool {
    is_wrap_shaped(prev, raw, full_scale, WRAP_JUMP_FS, WRAP_RAIL_SHARE)
}

/// [`is_wrap`] with a jump over `jump_fs` × full scale between readings beyond `rail_share` ×
/// full scale.
fn is_wrap_shaped(prev: f64, raw: f64, full_scale: f64, jump_fs: f64, rail_share: f64) -> bool {
    let near_rail = rail_share * full_scale;
    (raw - prev).abs() > jump_fs * full_scale
        && prev.abs() > near_rail
        && raw.abs() > near_rail
        && prev.signum() != raw.signum()
}

/// The jump, as a multiple of full scale, past which a sample can be a wrap on a sensor whose
/// quantity changed by at most `real_change` since the last sample. A wrap jumps by twice full
/// scale less the real change between the two samples, so where that real change is at most
/// one full scale, the smallest wrap's jump is at least the largest real change, and the bar
/// can fall to it, under the rate-free [`WRAP_JUMP_FS`] (at 100 Hz a racket turning at
/// 2·10⁵ °/s² changes by 2000 °/s: a ±2000 °/s gyro's wrap jumps by as little as one full
/// scale; a ±16 g accelerometer's, at 1000 g/s, by 1.375). Where a sample's real change can
/// exceed full scale the jump's size says nothing, and the rate-free bar stays (so it does
/// without a sample interval: a first sample, or time running backwards). Never under
/// [`MIN_WRAP_JUMP_FS`]; the trend test guards the real changes it lets in.
fn wrap_jump_fs(full_scale: f64, real_change: f64) -> f64 {
    change_within_full_scale(full_scale, real_change).map_or(WRAP_JUMP_FS, |c| {
        (2.0 - c).clamp(MIN_WRAP_JUMP_FS, WRAP_JUMP_FS)
    })
}

/// The share of full scale both readings of a wrap lie beyond, on a sensor whose quantity
/// changed by at most `real_change` since the last sample. The value crossed the rail, so the
/// reading before lay within that change of it, and the wrapped one as far inside the other
/// rail: beyond 1 − change/FS each. Where that is under [`WRAP_RAIL_SHARE`] the share falls
/// to it (at 100 Hz a racket's gyro can come from anywhere on its own side: 924 °/s before
/// a wrap to −1985 was not taken, and the jump back out was then taken for a wrap the other
/// way, 4,800 °/s read after a swing). The trend test guards what it lets in.
fn wrap_rail_share(full_scale: f64, real_change: f64) -> f64 {
    change_within_full_scale(full_scale, real_change)
        .map_or(WRAP_RAIL_SHARE, |c| (1.0 - c).min(WRAP_RAIL_SHARE))
}

/// A sample's largest real change as a share of full scale, where it is known (a positive
/// sample interval) and at most one full scale: the only case in which a wrap's jump and
/// readings say more than the rate-free tests do (`None`: the rate-free bar and share stand).
fn change_within_full_scale(full_scale: f64, real_change: f64) -> Option<f64> {
    let c = real_change / full_scale;
    (real_change > 0.0 && c <= 1.0).then_some(c)
}

/// A wrapped axis's unwrapped value beyond this share of full scale is a reading (the count
/// ran on past the rail); up to it, a pinned rail (the true value is not known past it).
const RUN_ON_SHARE: f64 = 1.005;

/// What unwrapping found in one sample of a sensor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Past {
    /// Some axis was past the rail (wrapped, and undone in the returned values).
    pub wrapped: bool,
    /// Which axes were past the rail.
    pub axes: [bool; 3],
    /// Some wrapped axis's value runs on past the rail: a real reading there, not clipping.
    pub runs_on: bool,
}

/// What the unwrapping step made of one sample (for the evaluation's wrap breakdown, which
/// compares it with a simulator's truth): each sensor's values as the unwrapper reads them,
/// and whether the conditioning stage applied them (a wrap it does not undo at the node's
/// rate and range is only flagged, the raw reading kept).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UnwrapSeen {
    pub acc: [f32; 3],
    pub gyro: [f32; 3],
    pub acc_undone: bool,
    pub gyro_undone: bool,
}

/// Three axes of one sensor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwrap3 {
    axes: [AxisUnwrap; 3],
}

impl Unwrap3 {
    /// Unwraps a triple in place (a sensor of ±`full_scale`, whose quantity really changes by
    /// at most `max_change_per_s`).
    pub fn unwrap(
        &mut self,
        t: f64,
        v: &mut [f32; 3],
        full_scale: f64,
        max_change_per_s: f64,
    ) -> Past {
        let mut past = Past::default();
        for (k, (x, axis)) in v.iter_mut().zip(&mut self.axes).enumerate() {
            let (value, wrapped) = axis.unwrap(t, f64::from(*x), full_scale, max_change_per_s);
            *x = value as f32;
            past.wrapped |= wrapped;
            past.axes[k] = wrapped;
            past.runs_on |= wrapped && value.abs() > RUN_ON_SHARE * full_scale;
        }
        past
    }
}

/// The wraps the conditioning stage found in a swing's window and left in place (the device
/// says its nodes clip, or at the node's rate and range a wrap's jump is not unambiguous):
/// there the readings are a full range off. The measurement reads this verdict rather than
/// testing for wraps again, so one decision holds for the whole analysis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrapsLeft {
    /// The time spans `[from, to]` (ms) of the gyro's wrapped readings: runs of samples whose
    /// rate was past the rail on some axis (measure/ rebuilds the crest over them).
    pub gyro_spans: Vec<(f64, f64)>,
    /// Per accelerometer axis, the time spans `[from, to]` (ms) of its wrapped readings.
    pub acc_axes: [Vec<(f64, f64)>; 3],
}

impl WrapsLeft {
    /// Whether some gyro axis read wrapped in the window: |ω⊥| does not say how fast the
    /// racket turns.
    pub fn gyro(&self) -> bool {
        !self.gyro_spans.is_empty()
    }

    /// Whether some gyro axis read wrapped, left in place, at `t_ms`.
    pub fn gyro_wrapped_at(&self, t_ms: f64) -> bool {
        self.gyro_spans
            .iter()
            .any(|&(from, to)| from <= t_ms && t_ms <= to)
    }

    /// Whether accelerometer axis `k` read wrapped at `t_ms`.
    pub fn acc_wrapped_at(&self, k: usize, t_ms: f64) -> bool {
        self.acc_axes[k]
            .iter()
            .any(|&(from, to)| from <= t_ms && t_ms <= to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A racket's largest angular acceleration, °/s² (condition/mod.rs's).
    const GYRO: f64 = 2.0e5;

    /// What a wrapping ±2000 °/s sensor reports for a true value.
    fn wrapped_reading(v: f64) -> f64 {
        (v + 2000.0).rem_euclid(4000.0) - 2000.0
    }

    #[test]
    fn a_pulse_past_full_scale_comes_back_whole() {
        let truth: Vec<f64> = (0..40)
            .map(|i| 3000.0 * (-((i as f64 - 20.0) / 6.0).powi(2)).exp())
            .collect();
        let mut axis = AxisUnwrap::default();
        for (i, &v) in truth.iter().enumerate() {
            let (out, past) = axis.unwrap(i as f64 * 5.0, wrapped_reading(v), 2000.0, GYRO);
            assert!((out - v).abs() < 1e-6, "{out} vs {v}");
            assert_eq!(past, v > 2000.0);
        }
    }

    #[test]
    fn negative_pulses_unwrap_too_and_a_steep_real_change_is_not_a_wrap() {
        let mut axis = AxisUnwrap::default();
        for (i, v) in [-1500.0, -1990.0, -2400.0, -2600.0, -2100.0, -1800.0, -100.0]
            .into_iter()
            .enumerate()
        {
            let (out, _) = axis.unwrap(i as f64 * 5.0, wrapped_reading(v), 2000.0, GYRO);
            assert!((out - v).abs() < 1e-6, "{out} vs {v}");
        }
        // 2500 °/s in one sample is steep but under 1.6 × full scale: real.
        let mut axis = AxisUnwrap::default();
        axis.unwrap(0.0, -1200.0, 2000.0, GYRO);
        assert_eq!(axis.unwrap(20.0, 1300.0, 2000.0, GYRO), (1300.0, false));
        // A clipping (not wrapping) sensor's plateau and a fall from it are not wraps.
        let mut axis = AxisUnwrap::default();
        for (i, v) in [1500.0, 2000.0, 2000.0, 2000.0, 400.0, -900.0]
            .into_iter()
            .enumerate()
        {
            assert_eq!(axis.unwrap(i as f64 * 20.0, v, 2000.0, GYRO), (v, false));
        }
    }

    #[test]
    fn a_jump_that_never_comes_back_is_let_go() {
        let mut axis = AxisUnwrap::default();
        axis.unwrap(0.0, 1900.0, 2000.0, GYRO);
        // A wrap-like jump, then the readings stay at −1900: after MAX_WRAPPED_MS they are
        // taken as read.
        assert_eq!(axis.unwrap(10.0, -1900.0, 2000.0, GYRO), (2100.0, true));
        let late = axis.unwrap(10.0 + MAX_WRAPPED_MS + 10.0, -1900.0, 2000.0, GYRO);
        assert_eq!(late, (-1900.0, false));
    }

    #[test]
    fn a_sensor_that_pins_then_wraps_returns_as_soon_as_it_leaves_the_rail() {
        // A BWT61-like axis (ChoongGao smash): a fast rise onto the rail reads on the opposite
        // rail and holds there; contact takes the true value back under full scale in one
        // sample, a jump much smaller than a wrap's.
        let mut axis = AxisUnwrap::default();
        let read = [
            487.4, 649.8, 1144.2, -1998.7, -1998.7, -1998.7, -269.7, -697.7, -178.5,
        ];
        let truth = [
            487.4, 649.8, 1144.2, 2001.3, 2001.3, 2001.3, -269.7, -697.7, -178.5,
        ];
        for (i, (&r, &v)) in read.iter().zip(&truth).enumerate() {
            let (out, _) = axis.unwrap(i as f64 * 10.0, r, 2000.0, GYRO);
            assert!((out - v).abs() < 1e-6, "{i}: {out} vs {v}");
        }
        // Once known to pin, a single wrapped sample returns too.
        for (i, (r, v)) in [(1500.0, 1500.0), (-1998.7, 2001.3), (696.0, 696.0)]
            .into_iter()
            .enumerate()
        {
            let (out, _) = axis.unwrap(100.0 + i as f64 * 10.0, r, 2000.0, GYRO);
            assert!((out - v).abs() < 1e-6, "{out} vs {v}");
        }
    }

    #[test]
    fn a_running_on_wrap_that_falls_back_fast_returns_on_the_trend() {
        // Past the rail the count runs on; the value then falls 1400 °/s in one sample, a
        // jump of 2600 in the raw readings, under the entry test's 3000.
        let mut axis = AxisUnwrap::default();
        for (i, v) in [1400.0, 1900.0, 2300.0, 2500.0, 2300.0, 900.0, 200.0]
            .into_iter()
            .enumerate()
        {
            let (out, past) = axis.unwrap(i as f64 * 10.0, wrapped_reading(v), 2000.0, GYRO);
            assert!((out - v).abs() < 1e-6, "{out} vs {v}");
            assert_eq!(past, v > 2000.0);
        }
    }

    #[test]
    fn a_wrap_at_100_hz_whose_jump_is_under_one_and_a_half_ranges_is_undone_and_returns() {
        // A racket's turn at 100 Hz falling past −2000 °/s by 1130 °/s in one sample (the
        // evaluation's example): the wrap jumps by 1.44 full scales only. Missed, the readings
        // stay a range off and the return's jump is then taken for a wrap the other way.
        let truth = [
            -800.0, -1200.0, -1550.0, -2679.0, -3348.0, -3343.0, -2856.0, -2170.0, -1506.0, -961.0,
            -568.0,
        ];
        let mut axis = AxisUnwrap::default();
        for (i, &v) in truth.iter().enumerate() {
            let (out, past) = axis.unwrap(i as f64 * 10.0, wrapped_reading(v), 2000.0, GYRO);
            assert!((out - v).abs() < 1e-6, "{i}: {out} vs {v}");
            assert_eq!(past, v < -2000.0);
        }
        // Without the trend's history the same jump is not taken: at 50 Hz a real change of
        // 2500 °/s is possible.
        let mut axis = AxisUnwrap::default();
        axis.unwrap(0.0, -1550.0, 2000.0, GYRO);
        assert_eq!(axis.unwrap(10.0, 1321.0, 2000.0, GYRO), (1321.0, false));
    }

    #[test]
    fn a_wrap_at_100_hz_from_under_half_full_scale_is_undone_and_its_return_not_taken() {
        // The held-out seed 1000's racket at 100 Hz: 924 °/s, then 2015 °/s past the rail
        // (read −1985), a plateau near 2560 °/s for 90 ms, contact taking it to 1012 °/s. The
        // reading before the wrap lay under half full scale; missed, the plateau stayed a range
        // off and the jump back out was taken for a wrap the other way (4,800 °/s read in the
        // follow-through).
        let truth = [
            -352.0, -271.0, -202.0, 32.0, 924.0, 2015.0, 2554.0, 2573.0, 2568.0, 2566.0, 2557.0,
            1012.0, 73.0, -277.0, -320.0,
        ];
        let mut axis = AxisUnwrap::default();
        for (i, &v) in truth.iter().enumerate() {
            let (out, past) = axis.unwrap(i as f64 * 10.0, wrapped_reading(v), 2000.0, GYRO);
            assert!((out - v).abs() < 1e-6, "{i}: {out} vs {v}");
            assert_eq!(past, v > 2000.0);
        }
        // At 200 Hz a real change is at most half full scale: the reading before a wrap lies
        // beyond half full scale, and a jump from 924 °/s to −1985 °/s is not one.
        assert_eq!(wrap_rail_share(2000.0, GYRO * 0.005), WRAP_RAIL_SHARE);
        assert_eq!(wrap_rail_share(2000.0, GYRO * 0.010), 0.0);
        assert_eq!(wrap_rail_share(2000.0, GYRO * 0.020), WRAP_RAIL_SHARE);
    }

    #[test]
    fn the_wrap_bar_falls_to_the_smallest_wrap_jump_only_where_it_exceeds_any_real_change() {
        // The largest real change over `dt_ms` at `per_s`.
        let change = |per_s: f64, dt_ms: f64| per_s * dt_ms / 1000.0;
        assert_eq!(wrap_jump_fs(2000.0, change(GYRO, 10.0)), 1.0);
        assert_eq!(wrap_jump_fs(2000.0, change(GYRO, 5.0)), 1.5);
        assert_eq!(wrap_jump_fs(2000.0, change(GYRO, 1.0)), 1.5);
        assert!((wrap_jump_fs(16.0, change(1000.0, 10.0)) - 1.375).abs() < 1e-12);
        assert_eq!(wrap_jump_fs(2000.0, change(GYRO, 0.0)), 1.5);
        // At 50 Hz a real change can exceed full scale: the jump says nothing.
        assert_eq!(wrap_jump_fs(2000.0, change(GYRO, 20.0)), 1.5);
        assert_eq!(wrap_jump_fs(16.0, change(1000.0, 20.0)), 1.5);
    }

    #[test]
    fn the_return_of_a_wrap_not_taken_is_not_taken_for_a_wrap_the_other_way() {
        // At 200 Hz the bar stays at 1.5 ranges: a fall of 1100 °/s in 5 ms past −2000 °/s
        // jumps by 1.45 and is not taken, so those readings stay a range off. When the value
        // comes back under the rail the readings jump back by 1.8 ranges, along the wrong
        // readings' trend: taken for a wrap, it would add a range to readings that had none
        // (held up to MAX_WRAPPED_MS).
        let truth = [
            -800.0, -1200.0, -1500.0, -2600.0, -2900.0, -2300.0, -1900.0, -1500.0, -1000.0, -600.0,
        ];
        let mut axis = AxisUnwrap::default();
        for (i, &v) in truth.iter().enumerate() {
            let read = wrapped_reading(v);
            let (out, _) = axis.unwrap(i as f64 * 5.0, read, 2000.0, GYRO);
            let expected = if v < -2000.0 { read } else { v };
            assert!((out - expected).abs() < 1e-6, "{i}: {out} vs {expected}");
        }
    }
}
