//! The shuttle's contact: the instant the racket met it, from the transient it rings
//! through the frame. Apart from the swing's measurement (mod.rs) because finding it is its
//! own signal problem: the accelerometer's second difference has to tell the impulse of
//! contact from the swing's own smooth motion.

use crate::analysis::vecmath::{self as vm, Vec3};
use crate::analysis::{AnalysisSettings, NodeSample};

/// The contact transient's foot, caught by the first sample after contact when contact fell
/// just before it, must exceed this share of the impact threshold (0.3 g: four times the
/// second difference of 0.03 g accelerometer noise)…
const ONSET_SHARE: f64 = 0.3;
/// …and jump to this multiple of the previous sample's second difference (before contact the
/// second difference comes from smooth motion — the arm's push, gravity turning in the node's
/// frame — and changes little from one sample to the next).
const ONSET_JUMP: f64 = 3.0;
/// The samples around the transient's foot must be one interval apart, up to this (20 ms at
/// 50 Hz, with slack); a longer interval is a gap in the data.
const ONSET_LOOKBACK_MS: f64 = 25.0;
/// How far back the foot can be: the second difference spans three samples, so the first
/// two samples after contact can both read under the threshold.
const ONSET_MAX_STEPS: usize = 2;
/// First sample whose acceleration breaks from its own linear trend by more than the
/// threshold, near the swing's peak: the shuttle's contact transient.
pub(super) fn find_impact(
    acc: &[Vec3],
    s: &[NodeSample],
    peak_t: f64,
    trigger_t: f64,
    settings: &AnalysisSettings,
) -> Option<usize> {
    if acc.len() < 3 {
        return None;
    }
    let residual = |i: usize| {
        vm::norm(vm::add(
            vm::sub(acc[i], vm::scale(acc[i - 1], 2.0)),
            acc[i - 2],
        ))
    };
    let mut swing_residuals: Vec<f64> = (2..acc.len())
        .filter(|&i| s[i].t_ms >= trigger_t && s[i].t_ms <= peak_t)
        .map(residual)
        .collect();
    swing_residuals.sort_by(f64::total_cmp);
    let median = swing_residuals
        .get(swing_residuals.len() / 2)
        .copied()
        .unwrap_or(0.0);
    // The smooth part of a fast swing has its own second difference; an impact must stand
    // well above the swing's typical one (5× its median) as well as the absolute floor.
    let threshold = settings.impact_threshold_g.max(5.0 * median);
    let first = (2..acc.len())
        .filter(|&i| {
            s[i].t_ms >= (peak_t - 120.0).max(trigger_t - 50.0) && s[i].t_ms <= peak_t + 80.0
        })
        .find(|&i| residual(i) > threshold)?;
    // The transient rises from nothing at contact, so the first sample after contact may
    // catch only its foot, and the second difference of the next one subtracts twice that
    // foot: the detection can come up to two samples late. Step back over samples that
    // stand above the noise to the earliest that jumps above the smooth second difference of
    // the sample before it.
    let floor = ONSET_SHARE * settings.impact_threshold_g;
    // Second differences across a gap in the data say nothing about contact.
    let contiguous =
        |k: usize| (k - 2..first).all(|j| s[j + 1].t_ms - s[j].t_ms <= ONSET_LOOKBACK_MS);
    let mut onset = first;
    for k in (first.saturating_sub(ONSET_MAX_STEPS)..first).rev() {
        if k < 3 || !contiguous(k) || residual(k) <= floor {
            break;
        }
        if residual(k) > ONSET_JUMP * residual(k - 1) {
            onset = k;
        }
    }
    Some(onset)
}
