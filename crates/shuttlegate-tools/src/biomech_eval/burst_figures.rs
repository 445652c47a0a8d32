//! The figures of a racket burst read on a node's conditioned samples, shared by the
//! breakdowns that look at bursts the detector missed (`missed.rs`) and kept
//! (`burst_shape.rs`): |ω⊥|, the run of samples above half a peak, the handling rule's 20 ms
//! load change (measure/handling.rs), and the contact search's jolt (the acceleration's second
//! difference).

use shuttlegate_core::analysis::NodeSample;

/// |ω⊥|, °/s: the racket's turn across its shaft.
pub(super) fn perp(s: &NodeSample) -> f64 {
    f64::from(s.gyro[1]).hypot(f64::from(s.gyro[2]))
}

/// The first and last index of the run of samples around `peak_i` whose |ω⊥| is at least
/// half of `peak`.
pub(super) fn half_peak_run(samples: &[NodeSample], peak_i: usize, peak: f64) -> (usize, usize) {
    let above = |i: usize| perp(&samples[i]) >= 0.5 * peak;
    let (mut lo, mut hi) = (peak_i, peak_i);
    while lo > 0 && above(lo - 1) {
        lo -= 1;
    }
    while hi + 1 < samples.len() && above(hi + 1) {
        hi += 1;
    }
    (lo, hi)
}

/// How far the acceleration vector moved, g, from the sample 19–40 ms before sample `i` to
/// it (the handling rule's 20 ms span); `None` without such a sample.
pub(super) fn load_change_g(samples: &[NodeSample], i: usize) -> Option<f64> {
    let s = &samples[i];
    let e = samples[..i]
        .iter()
        .rev()
        .find(|e| s.t_ms - e.t_ms >= 19.0)?;
    if s.t_ms - e.t_ms > 40.0 {
        return None;
    }
    Some(
        (0..3)
            .map(|k| (f64::from(s.acc[k]) - f64::from(e.acc[k])).powi(2))
            .sum::<f64>()
            .sqrt(),
    )
}

/// The magnitude of the acceleration vector's second difference at sample `i` (≥ 2), g.
pub(super) fn jolt_g(samples: &[NodeSample], i: usize) -> f64 {
    (0..3)
        .map(|k| {
            let (a, b, c) = (
                samples[i].acc[k],
                samples[i - 1].acc[k],
                samples[i - 2].acc[k],
            );
            f64::from(a - 2.0 * b + c).powi(2)
        })
        .sum::<f64>()
        .sqrt()
}
