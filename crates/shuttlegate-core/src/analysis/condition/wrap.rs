//! Sign wrap past full scale, undone.
//!
//! WitMotion-type sensors report a 16-bit two's-complement value without saturating: a reading
//! past +full scale comes out near −full scale (and the other way), so one sample jumps by
//! nearly twice the range. No real motion does that between two samples at 50 Hz or faster (a
//! racket's angular acceleration stays under ~2·10⁵ °/s², i.e. under 4000 °/s in 20 ms, and
//! under 2000 °/s in the 5 ms of 200 Hz), so such a jump is read as a wrap and undone by
//! adding or removing one full range (2 × full scale). Each axis keeps its own count of
//! wraps; the count returns to zero when the value comes back across the rail.

/// A jump larger than this share of the full range (2 × full scale) in one sample is a wrap.
/// Nearly twice the full scale: 0.75 of the range is 1.5 × full scale (3000 °/s at ±2000 °/s
/// in one sample), beyond any real swing's change between samples at 50 Hz and up.
const WRAP_JUMP_SHARE: f64 = 0.75;
/// Wraps tracked per axis, each way. A reading two ranges away from the true value would need
/// a rate of ±6000 °/s (±48 g), which no racket reaches; more is noise.
const MAX_WRAPS: i32 = 1;

/// One axis's unwrapping state.
#[derive(Debug, Clone, Copy, Default)]
pub struct AxisUnwrap {
    /// The previous raw reading.
    prev_raw: Option<f64>,
    /// Full ranges added to the raw reading (−1, 0 or +1).
    wraps: i32,
}

impl AxisUnwrap {
    /// The unwrapped value of `raw` on a sensor of ±`full_scale`, and whether it differs from
    /// the raw reading (the sample was past the rail).
    pub fn unwrap(&mut self, raw: f64, full_scale: f64) -> (f64, bool) {
        let range = 2.0 * full_scale;
        if let Some(prev) = self.prev_raw {
            let jump = raw - prev;
            if jump.abs() > WRAP_JUMP_SHARE * range {
                // Down across −FS after rising past +FS: one more wrap upwards, and back.
                let step = if jump < 0.0 { 1 } else { -1 };
                self.wraps = (self.wraps + step).clamp(-MAX_WRAPS, MAX_WRAPS);
            }
        }
        self.prev_raw = Some(raw);
        let value = raw + f64::from(self.wraps) * range;
        (value, self.wraps != 0)
    }
}

/// Three axes of one sensor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwrap3 {
    axes: [AxisUnwrap; 3],
}

impl Unwrap3 {
    /// Unwraps a triple in place; true when any axis was past the rail.
    pub fn unwrap(&mut self, v: &mut [f32; 3], full_scale: f64) -> bool {
        let mut wrapped = false;
        for (x, axis) in v.iter_mut().zip(&mut self.axes) {
            let (value, past) = axis.unwrap(f64::from(*x), full_scale);
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
        for &v in &truth {
            let (out, past) = axis.unwrap(wrapped_reading(v), 2000.0);
            assert!((out - v).abs() < 1e-6, "{out} vs {v}");
            assert_eq!(past, v > 2000.0);
        }
    }

    #[test]
    fn negative_pulses_unwrap_too_and_a_steep_real_change_is_not_a_wrap() {
        let mut axis = AxisUnwrap::default();
        for v in [-1500.0, -1990.0, -2400.0, -2600.0, -2100.0, -1800.0, -100.0] {
            let (out, _) = axis.unwrap(wrapped_reading(v), 2000.0);
            assert!((out - v).abs() < 1e-6, "{out} vs {v}");
        }
        // 2500 °/s in one sample is steep but under 1.5 × full scale: real.
        let mut axis = AxisUnwrap::default();
        axis.unwrap(-1200.0, 2000.0);
        assert_eq!(axis.unwrap(1300.0, 2000.0), (1300.0, false));
    }
}
