//! Where in a burst the racket turned fastest: the swing's peak, around which contact is
//! searched and from which the swing's instant is read when no contact is found.
//!
//! The gyro says it directly while it reads in range. A gyro at its rail, or read wrapped and
//! left so by the conditioning stage, does not: a narrow gyro (±250 or ±1000 °/s against a
//! stroke's 1,000–4,000 °/s) sits at its rail through the backswing as well as the forward
//! swing, so the longest clipped run can be the backswing's, and a wrapped reading's |ω⊥|
//! is a fold of the rate, not the rate. The accelerometer still reads the turn: a node at a
//! distance r from the turn's centre feels the centripetal ω²r, which grows with the square
//! of the rate, so the node is loaded most where the racket turns fastest — and the shuttle's
//! contact transient, which comes at about the racket's fastest turn (the distal segment of
//! a striking chain peaks at about contact: Putnam 1993, J. Biomech. 26 S1), adds to it.
//! The forward swing loads the node more than its backswing, which is slower (a backswing
//! turns under 60 % of the stroke's rate, device.rs), and four times more at half its rate.

/// Index of the swing's peak perpendicular rate among the samples `in_swing`. In range: the
/// fastest sample. On clipping: the middle of the longest clipped run, the forward swing's
/// plateau — unless runs turn both ways (`across`, (ω_y, ω_z) per sample): then the backswing
/// clipped too and can be the longer, and the stroke's run is the one nearest the node's
/// greatest load (`load`, ‖a‖ per sample, g). With a gyro wrap left in place
/// (`gyro_wrapped`): the greatest load itself.
pub(super) fn swing_peak_index(
    perp: &[f64],
    clipped: &[bool],
    across: &[[f64; 2]],
    load: &[f64],
    gyro_wrapped: bool,
    in_swing: &dyn Fn(usize) -> bool,
) -> usize {
    let idx: Vec<usize> = (0..perp.len()).filter(|&i| in_swing(i)).collect();
    let most_loaded = idx
        .iter()
        .copied()
        .reduce(|best, i| if load[i] > load[best] { i } else { best });
    if gyro_wrapped && let Some(i) = most_loaded {
        return i;
    }
    let runs = clipped_runs(&idx, clipped);
    // The earliest of equal lengths (`max_by_key` would keep the last).
    let longest = runs
        .iter()
        .copied()
        .reduce(|best, r| if r.1 - r.0 > best.1 - best.0 { r } else { best });
    let stroke_run = match (longest, most_loaded) {
        (Some(l), Some(i)) if turn_both_ways(&runs, l, across) => runs
            .iter()
            .copied()
            .min_by_key(|&(a, b)| (distance(i, a, b), a)),
        _ => longest,
    };
    if let Some((a, b)) = stroke_run {
        return (a + b) / 2;
    }
    idx.into_iter()
        .max_by(|&a, &b| perp[a].total_cmp(&perp[b]))
        .unwrap_or(0)
}

/// Where to rebuild the crest of a window whose gyro wraps were left in place: `peak_i` (the
/// greatest load) when its rate was `past` the rail, else the nearest sample among those
/// `in_swing` that was (`peak_i` when none was).
pub(super) fn nearest_past_rail(
    past: &[bool],
    peak_i: usize,
    in_swing: &dyn Fn(usize) -> bool,
) -> usize {
    (0..past.len())
        .filter(|&i| past[i] && in_swing(i))
        .min_by_key(|&i| (i.abs_diff(peak_i), i))
        .unwrap_or(peak_i)
}

/// Whether some clipped run turns against the run `l` (its middle's (ω_y, ω_z) opposed).
fn turn_both_ways(runs: &[(usize, usize)], l: (usize, usize), across: &[[f64; 2]]) -> bool {
    let dir = across[(l.0 + l.1) / 2];
    runs.iter().any(|&(a, b)| {
        let d = across[(a + b) / 2];
        d[0] * dir[0] + d[1] * dir[1] < 0.0
    })
}

/// The runs `(first, last)` of consecutive clipped samples among `idx`.
fn clipped_runs(idx: &[usize], clipped: &[bool]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &i in idx.iter().filter(|&&i| clipped[i]) {
        match runs.last_mut() {
            Some((_, b)) if *b + 1 == i => *b = i,
            _ => runs.push((i, i)),
        }
    }
    runs
}

/// Samples between `i` and the run `[a, b]` (0 inside it).
fn distance(i: usize, a: usize, b: usize) -> usize {
    a.saturating_sub(i) + i.saturating_sub(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A narrow gyro at its rail through a long backswing (samples 2–9) and a shorter forward
    /// swing (13–16), the node loaded most in the forward swing.
    fn backswing_longer_than_the_stroke() -> (Vec<f64>, Vec<bool>, Vec<[f64; 2]>, Vec<f64>) {
        let clipped: Vec<bool> = (0..20)
            .map(|i| (2..=9).contains(&i) || (13..=16).contains(&i))
            .collect();
        let perp = clipped
            .iter()
            .map(|&c| if c { 250.0 } else { 100.0 })
            .collect();
        let load = (0..20)
            .map(|i| match i {
                2..=9 => 3.0,
                13..=16 => 12.0 + i as f64,
                _ => 1.0,
            })
            .collect();
        let across = (0..20)
            .map(|i| if i < 11 { [250.0, 0.0] } else { [-250.0, 0.0] })
            .collect();
        (perp, clipped, across, load)
    }

    #[test]
    fn on_a_narrow_gyro_the_peak_is_the_plateau_that_loads_the_node_most() {
        let (perp, clipped, across, load) = backswing_longer_than_the_stroke();
        let peak = swing_peak_index(&perp, &clipped, &across, &load, false, &|_| true);
        assert_eq!(
            peak, 14,
            "the forward swing's plateau, not the backswing's longer one"
        );
        // Two runs turning the same way are one plateau broken: the longest stays.
        let one_way = vec![[250.0, 0.0]; 20];
        let peak = swing_peak_index(&perp, &clipped, &one_way, &load, false, &|_| true);
        assert_eq!(peak, 5);
    }

    #[test]
    fn with_a_wrap_left_the_peak_is_the_greatest_load() {
        let (perp, clipped, across, load) = backswing_longer_than_the_stroke();
        let peak = swing_peak_index(&perp, &clipped, &across, &load, true, &|_| true);
        assert_eq!(peak, 16);
    }

    #[test]
    fn in_range_the_peak_is_the_fastest_sample_whatever_the_load() {
        let perp = vec![0.0, 300.0, 900.0, 1500.0, 700.0, 200.0];
        let load = vec![1.0, 1.5, 3.0, 2.0, 9.0, 1.0];
        let peak = swing_peak_index(&perp, &[false; 6], &[[1.0, 0.0]; 6], &load, false, &|_| {
            true
        });
        assert_eq!(peak, 3);
    }
}
