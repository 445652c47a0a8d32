//! Signal-processing primitives: Savitzky–Golay smoothing, scipy-style peak finding, sub-sample
//! peak refinement and the clipped-pulse fit used to see through gyroscope saturation.
//!
//! All of it works on short slices (one swing window, a few hundred samples), which is what
//! keeps the streaming analyser cheap: the per-sample path never calls in here.

// Index loops over parallel arrays read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

/// Savitzky–Golay smoothing coefficients for a centred window of `window` samples (odd) and a
/// polynomial of degree `order` (the seed backend uses 15 and 3 at 200 Hz). Computed by least
/// squares (the general form); `None` when the pair is not valid.
pub fn savgol_coefficients(window: usize, order: usize) -> Option<Vec<f64>> {
    if window.is_multiple_of(2) || window <= order || order > 6 {
        return None;
    }
    let m = (window / 2) as i64;
    let n = order + 1;
    // Normal matrix AᵀA with A[j][k] = j^k.
    let mut ata = vec![vec![0.0f64; n]; n];
    for j in -m..=m {
        for r in 0..n {
            for c in 0..n {
                ata[r][c] += (j as f64).powi((r + c) as i32);
            }
        }
    }
    // Row 0 of (AᵀA)⁻¹: solve AᵀA · x = e0.
    let mut e0 = vec![0.0; n];
    e0[0] = 1.0;
    let x = solve_small(ata, e0)?;
    Some(
        (-m..=m)
            .map(|j| (0..n).map(|k| x[k] * (j as f64).powi(k as i32)).sum())
            .collect(),
    )
}

/// Gaussian elimination with partial pivoting for small dense systems.
pub fn solve_small(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            for k in col..n {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// Smooths `xs` with centred coefficients; the ends use the nearest sample as padding
/// (scipy's `mode="nearest"`; the seed uses `mode="interp"`, which differs only in the first
/// and last half-window).
pub fn smooth(xs: &[f64], coefficients: &[f64]) -> Vec<f64> {
    let n = xs.len();
    if n == 0 || coefficients.len() < 3 {
        return xs.to_vec();
    }
    let m = (coefficients.len() / 2) as isize;
    (0..n as isize)
        .map(|i| {
            coefficients
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let j = (i + k as isize - m).clamp(0, n as isize - 1) as usize;
                    c * xs[j]
                })
                .sum()
        })
        .collect()
}

/// scipy.signal.find_peaks with `height`, `prominence` and `distance` (samples), as the seed
/// backend calls it: indices of local maxima (a plateau counts once, at its middle), at least
/// `height` high, standing `prominence` above the higher of the two bases, and, of peaks closer
/// than `distance`, the higher kept.
pub fn find_peaks(xs: &[f64], height: f64, prominence: f64, distance: usize) -> Vec<usize> {
    let mut peaks = local_maxima(xs);
    peaks.retain(|&i| xs[i] >= height && peak_prominence(xs, i) >= prominence);
    if distance > 1 {
        let mut by_height = peaks.clone();
        by_height.sort_by(|&a, &b| xs[b].total_cmp(&xs[a]));
        let mut keep = vec![true; xs.len()];
        let mut kept = Vec::new();
        for &p in &by_height {
            if !keep[p] {
                continue;
            }
            kept.push(p);
            let lo = p.saturating_sub(distance - 1);
            let hi = (p + distance).min(xs.len());
            for (j, k) in keep.iter_mut().enumerate().take(hi).skip(lo) {
                if j != p {
                    *k = false;
                }
            }
        }
        kept.sort_unstable();
        peaks = kept;
    }
    peaks
}

fn local_maxima(xs: &[f64]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 1;
    while i + 1 < xs.len() {
        if xs[i - 1] < xs[i] {
            let mut ahead = i + 1;
            while ahead + 1 < xs.len() && xs[ahead] == xs[i] {
                ahead += 1;
            }
            if xs[ahead] < xs[i] {
                out.push((i + ahead - 1) / 2);
                i = ahead;
            }
        }
        i += 1;
    }
    out
}

fn peak_prominence(xs: &[f64], peak: usize) -> f64 {
    let h = xs[peak];
    let mut left_min = h;
    for &x in xs[..peak].iter().rev() {
        if x > h {
            break;
        }
        left_min = left_min.min(x);
    }
    let mut right_min = h;
    for &x in &xs[peak + 1..] {
        if x > h {
            break;
        }
        right_min = right_min.min(x);
    }
    h - left_min.max(right_min)
}

/// Sub-sample position (in samples, relative to `i`) and height of the parabola through
/// `xs[i-1], xs[i], xs[i+1]`; the sample itself at the ends.
pub fn refine_peak(xs: &[f64], i: usize) -> (f64, f64) {
    if i == 0 || i + 1 >= xs.len() {
        return (0.0, xs[i]);
    }
    let (a, b, c) = (xs[i - 1], xs[i], xs[i + 1]);
    let denom = a - 2.0 * b + c;
    if denom >= -1e-12 {
        return (0.0, b);
    }
    let offset = (0.5 * (a - c) / denom).clamp(-0.5, 0.5);
    (offset, b - 0.25 * (a - c) * offset)
}

/// Sub-sample position and height of a bell-shaped peak: the parabola through the logarithms
/// of `xs[i-1], xs[i], xs[i+1]` (exact for a Gaussian, whose logarithm is a parabola). A plain
/// parabola through the values reads a bell low when the samples are sparse on it: at 100 Hz
/// it is up to 1.2 % under the crest of a pulse of σ 15 ms, 5 % for σ 10 ms. Falls back to [`refine_peak`] when a neighbour is not
/// positive.
pub fn refine_bell_peak(xs: &[f64], i: usize) -> (f64, f64) {
    if i == 0 || i + 1 >= xs.len() || xs[i - 1] <= 0.0 || xs[i + 1] <= 0.0 || xs[i] <= 0.0 {
        return refine_peak(xs, i);
    }
    let logs = [xs[i - 1].ln(), xs[i].ln(), xs[i + 1].ln()];
    let (offset, log_peak) = refine_peak(&logs, 1);
    (offset, log_peak.exp())
}

/// A unimodal pulse with a Gaussian rise and a Gaussian fall:
/// `peak · exp(-(t-t0)²/(2σ²))`, σ = `rise_ms` before `t0` and `fall_ms` after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pulse {
    pub peak: f64,
    pub t0: f64,
    pub rise_ms: f64,
    pub fall_ms: f64,
}

impl Pulse {
    pub fn at(&self, t: f64) -> f64 {
        let s = if t < self.t0 {
            self.rise_ms
        } else {
            self.fall_ms
        };
        let u = (t - self.t0) / s;
        self.peak * (-0.5 * u * u).exp()
    }

    /// Fits a pulse to `(t, value)` points that are not clipped (values > 0). The log of the
    /// pulse is a parabola on each side of `t0`, linear in (ln peak, 1/2σ²_rise, 1/2σ²_fall)
    /// for a given `t0`; `t0` is searched on a 0.5 ms grid over `[t_lo, t_hi]` and the best
    /// least-squares fit kept. `None` with fewer than four usable points or no pulse shape.
    pub fn fit(points: &[(f64, f64)], t_lo: f64, t_hi: f64) -> Option<Pulse> {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|(t, v)| t.is_finite() && v.is_finite() && *v > 0.0)
            .map(|&(t, v)| (t, v.ln()))
            .collect();
        if pts.len() < 4 || t_hi.is_nan() || t_lo.is_nan() || t_hi < t_lo || t_hi - t_lo > 2000.0 {
            return None;
        }
        let steps = ((t_hi - t_lo) / 0.5).ceil() as usize;
        let mut best: Option<(f64, Pulse)> = None;
        for k in 0..=steps {
            let t0 = t_lo + k as f64 * 0.5;
            let Some((residual, pulse)) = fit_at(&pts, t0) else {
                continue;
            };
            if best.as_ref().is_none_or(|(r, _)| residual < *r) {
                best = Some((residual, pulse));
            }
        }
        best.map(|(_, p)| p)
    }
}

fn fit_at(pts: &[(f64, f64)], t0: f64) -> Option<(f64, Pulse)> {
    // Columns: 1, -(t-t0)² if t<t0, -(t-t0)² if t≥t0.
    let mut ata = vec![vec![0.0; 3]; 3];
    let mut atb = vec![0.0; 3];
    let (mut left, mut right) = (0, 0);
    for &(t, y) in pts {
        let d2 = (t - t0) * (t - t0);
        let row = if t < t0 {
            left += 1;
            [1.0, -d2, 0.0]
        } else {
            right += 1;
            [1.0, 0.0, -d2]
        };
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += row[r] * row[c];
            }
            atb[r] += row[r] * y;
        }
    }
    if left < 2 || right < 2 {
        return None;
    }
    let x = solve_small(ata, atb)?;
    if x[1] <= 1e-9 || x[2] <= 1e-9 {
        return None;
    }
    let pulse = Pulse {
        peak: x[0].exp(),
        t0,
        rise_ms: (0.5 / x[1]).sqrt(),
        fall_ms: (0.5 / x[2]).sqrt(),
    };
    let residual: f64 = pts
        .iter()
        .map(|&(t, y)| {
            let d2 = (t - t0) * (t - t0);
            let k = if t < t0 { x[1] } else { x[2] };
            (y - (x[0] - k * d2)).powi(2)
        })
        .sum();
    Some((residual, pulse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn savgol_15_3_matches_the_closed_form() {
        // Cubic/quadratic smoothing, window 2m+1: 3(3m²+3m-1-5j²)/((2m-1)(2m+1)(2m+3)).
        let c = savgol_coefficients(15, 3).expect("valid");
        for (k, ck) in c.iter().enumerate() {
            let j = k as f64 - 7.0;
            let expected = 3.0 * (167.0 - 5.0 * j * j) / 3315.0;
            assert!((ck - expected).abs() < 1e-9, "{k}: {ck} vs {expected}");
        }
    }

    #[test]
    fn savgol_keeps_a_cubic_exactly() {
        let c = savgol_coefficients(15, 3).expect("valid");
        let xs: Vec<f64> = (0..40)
            .map(|i| (i as f64 * 0.1).powi(3) - i as f64)
            .collect();
        let ys = smooth(&xs, &c);
        for i in 8..32 {
            assert!((xs[i] - ys[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn find_peaks_applies_height_prominence_and_distance() {
        let xs = [0.0, 5.0, 0.0, 20.0, 18.0, 19.0, 0.0, 4.0, 0.0, 30.0, 0.0];
        assert_eq!(find_peaks(&xs, 10.0, 5.0, 1), vec![3, 9]);
        assert_eq!(find_peaks(&xs, 1.0, 0.5, 1), vec![1, 3, 5, 7, 9]);
        // Distance 3: of peaks fewer than 3 samples apart only the higher survives.
        assert_eq!(find_peaks(&xs, 1.0, 0.5, 3), vec![3, 9]);
    }

    #[test]
    fn refine_peak_finds_a_parabolas_vertex() {
        let xs: Vec<f64> = (0..5).map(|i| 10.0 - (i as f64 - 2.3).powi(2)).collect();
        let (off, h) = refine_peak(&xs, 2);
        assert!((off - 0.3).abs() < 1e-9 && (h - 10.0).abs() < 1e-9);
    }

    #[test]
    fn refine_bell_peak_finds_a_sparse_gaussians_crest() {
        // σ 10 ms sampled every 10 ms, crest 4.5 ms after a sample: the log-parabola gives
        // the crest back, the plain parabola reads it ~4 % low.
        let g = |t: f64| 1000.0 * (-0.5 * ((t - 24.5) / 10.0).powi(2)).exp();
        let xs: Vec<f64> = (0..6).map(|k| g(k as f64 * 10.0)).collect();
        let (off, h) = refine_bell_peak(&xs, 2);
        assert!(
            (h - 1000.0).abs() < 1e-6 && (off - 0.45).abs() < 1e-6,
            "{off} {h}"
        );
        let (_, plain) = refine_peak(&xs, 2);
        assert!(plain < 970.0, "{plain}");
    }

    #[test]
    fn refine_bell_peak_falls_back_on_non_positive_neighbours() {
        let xs = [0.0, 10.0, 4.0];
        assert_eq!(refine_bell_peak(&xs, 1), refine_peak(&xs, 1));
    }

    #[test]
    fn pulse_fit_recovers_a_clipped_peak() {
        let truth = Pulse {
            peak: 5000.0,
            t0: 100.0,
            rise_ms: 30.0,
            fall_ms: 18.0,
        };
        let pts: Vec<(f64, f64)> = (0..60)
            .map(|i| i as f64 * 5.0)
            .map(|t| (t, truth.at(t)))
            .filter(|&(_, v)| v < 2000.0 && v > 200.0)
            .collect();
        let fit = Pulse::fit(&pts, 60.0, 140.0).expect("fits");
        assert!((fit.peak / truth.peak - 1.0).abs() < 0.01, "{fit:?}");
        assert!((fit.t0 - truth.t0).abs() < 1.0);
    }
}
