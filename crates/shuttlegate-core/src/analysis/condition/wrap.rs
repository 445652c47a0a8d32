//! Sign wrap past full scale, undone.
//!
//! WitMotion-type sensors report a 16-bit two's-complement value without saturating: a reading
//! past +full scale comes out near −full scale (and the other way), so one sample jumps by
//! nearly twice the range. No real motion does that between two samples at 50 Hz or faster (a
//! racket's angular acceleration stays under ~2·10⁵ °/s², i.e. under 4000 °/s in 20 ms, and
//! under 2000 °/s in the 5 ms of 200 Hz), so such a jump is read as a wrap and undone by
//! adding or removing one full range (2 × full scale). Each axis keeps its own count of
//! wraps; the count returns to zero when the value comes back across the rail.
//!
//! A jump is taken for a wrap only on evidence: both readings near opposite rails, and the
//! unwrapped value where the last two samples' trend points (a clean sensor's steepest real
//! reversal lands nearer its raw reading than a full range away).

/// A jump larger than this share of the full range (2 × full scale) in one sample can be a
/// wrap: 0.8 of the range is 1.6 × full scale (3200 °/s at ±2000 °/s in one sample), beyond any
/// real swing's change between samples at 50 Hz and up, while a wrap jumps by the range less
/// the two samples' distances from the rail.
const WRAP_JUMP_SHARE: f64 = 0.8;
/// Both readings of a wrap lie near opposite rails: each beyond this share of full scale, on
/// opposite sides of zero (a real change that steep would start or end near zero).
const WRAP_RAIL_SHARE: f64 = 0.6;
/// Wraps tracked per axis, each way. A reading two ranges away from the true value would need
/// a rate of ±6000 °/s (±48 g), which no racket reaches; more is noise.
const MAX_WRAPS: i32 = 1;
/// A wrap lasts no longer than this, ms: a value past full scale is a swing's peak (under
/// 100 ms past the rail); a longer one means the jump was not a wrap (a glitch, a reset), and
/// the raw readings are taken as they are again.
const MAX_WRAPPED_MS: f64 = 250.0;

/// One axis's unwrapping state.
#[derive(Debug, Clone, Copy, Default)]
pub struct AxisUnwrap {
    /// The previous raw reading.
    prev_raw: Option<f64>,
    /// Full ranges added to the raw reading (−1, 0 or +1).
    wraps: i32,
    /// When the current wrap began, ms.
    wrapped_since: f64,
    /// The last two unwrapped values, newest first (the trend a wrap must follow).
    recent: [Option<f64>; 2],
}

impl AxisUnwrap {
    /// The unwrapped value of `raw` (at `t` ms) on a sensor of ±`full_scale`, and whether it
    /// differs from the raw reading (the sample was past the rail).
    pub fn unwrap(&mut self, t: f64, raw: f64, full_scale: f64) -> (f64, bool) {
        let range = 2.0 * full_scale;
        if let Some(prev) = self.prev_raw.replace(raw)
            && is_wrap(prev, raw, full_scale)
        {
            // Down across −FS after rising past +FS: one more wrap upwards, and back.
            let step = if raw < prev { 1 } else { -1 };
            let was = self.wraps;
            let wraps = (was + step).clamp(-MAX_WRAPS, MAX_WRAPS);
            if self.follows_trend(raw + f64::from(wraps) * range, raw + f64::from(was) * range) {
                self.wraps = wraps;
                if was == 0 {
                    self.wrapped_since = t;
                }
            }
        }
        if self.wraps != 0 && t - self.wrapped_since > MAX_WRAPPED_MS {
            self.wraps = 0;
        }
        let value = raw + f64::from(self.wraps) * range;
        self.recent = [Some(value), self.recent[0]];
        (value, self.wraps != 0)
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

/// Whether `prev` → `raw` is a sign wrap: a jump of nearly the whole range between readings
/// near opposite rails.
fn is_wrap(prev: f64, raw: f64, full_scale: f64) -> bool {
    let near_rail = WRAP_RAIL_SHARE * full_scale;
    (raw - prev).abs() > WRAP_JUMP_SHARE * 2.0 * full_scale
        && prev.abs() > near_rail
        && raw.abs() > near_rail
        && prev.signum() != raw.signum()
}

/// Three axes of one sensor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwrap3 {
    axes: [AxisUnwrap; 3],
}

impl Unwrap3 {
    /// Unwraps a triple in place; true when any axis was past the rail.
    pub fn unwrap(&mut self, t: f64, v: &mut [f32; 3], full_scale: f64) -> bool {
        let mut wrapped = false;
        for (x, axis) in v.iter_mut().zip(&mut self.axes) {
            let (value, past) = axis.unwrap(t, f64::from(*x), full_scale);
            *x = value as f32;
            wrapped |= past;
        }
        wrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let (out, past) = axis.unwrap(i as f64 * 5.0, wrapped_reading(v), 2000.0);
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
            let (out, _) = axis.unwrap(i as f64 * 5.0, wrapped_reading(v), 2000.0);
            assert!((out - v).abs() < 1e-6, "{out} vs {v}");
        }
        // 2500 °/s in one sample is steep but under 1.6 × full scale: real.
        let mut axis = AxisUnwrap::default();
        axis.unwrap(0.0, -1200.0, 2000.0);
        assert_eq!(axis.unwrap(20.0, 1300.0, 2000.0), (1300.0, false));
        // A clipping (not wrapping) sensor's plateau and a fall from it are not wraps.
        let mut axis = AxisUnwrap::default();
        for (i, v) in [1500.0, 2000.0, 2000.0, 2000.0, 400.0, -900.0]
            .into_iter()
            .enumerate()
        {
            assert_eq!(axis.unwrap(i as f64 * 20.0, v, 2000.0), (v, false));
        }
    }

    #[test]
    fn a_jump_that_never_comes_back_is_let_go() {
        let mut axis = AxisUnwrap::default();
        axis.unwrap(0.0, 1900.0, 2000.0);
        // A wrap-like jump, then the readings stay at −1900: after MAX_WRAPPED_MS they are
        // taken as read.
        assert_eq!(axis.unwrap(10.0, -1900.0, 2000.0), (2100.0, true));
        let late = axis.unwrap(10.0 + MAX_WRAPPED_MS + 10.0, -1900.0, 2000.0);
        assert_eq!(late, (-1900.0, false));
    }
}
