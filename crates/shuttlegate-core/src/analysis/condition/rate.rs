//! A node's sample rate, followed sample by sample, and the times it changed.
//!
//! Nodes run at anything from 50 to 1,000 Hz and some firmware changes rate mid-session (a hub
//! dropping to a lower rate under radio load). The analyser's windows are in milliseconds, so
//! a change does not break them, but a swing whose data spans one mixes two noise levels and
//! two resolutions of the contact transient: it is flagged `rate_changed`.

use std::collections::VecDeque;

/// A spacing this far from the learned one (either way) is not the same rate.
const CHANGE_RATIO: f64 = 1.3;
/// Consecutive off-rate spacings, agreeing with each other, that make a change (one odd
/// spacing is jitter or a lost sample).
const CHANGE_RUN: usize = 4;
/// Spacings above this are gaps in the data, not a rate, ms (a rate under 5 Hz is no IMU's).
const MAX_SPACING_MS: f64 = 200.0;
/// Change times kept (a session with more is broken anyway; the oldest go first).
const MAX_CHANGES: usize = 32;

/// A run of off-rate spacings: where it started, its first spacing, how many, their sum.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: f64,
    first: f64,
    count: usize,
    sum: f64,
}

impl Run {
    fn new(start: f64, gap: f64) -> Run {
        Run {
            start,
            first: gap,
            count: 1,
            sum: gap,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RateTracker {
    prev_t: Option<f64>,
    /// The learned spacing, ms.
    spacing: Option<f64>,
    /// Off-rate spacings in a row, agreeing with the first of them.
    run: Option<Run>,
    changes: VecDeque<f64>,
}

impl RateTracker {
    /// Notes one sample's time (in time order).
    pub fn note(&mut self, t: f64) {
        let Some(prev) = self.prev_t.replace(t) else {
            return;
        };
        let gap = t - prev;
        if !(gap > 0.0 && gap <= MAX_SPACING_MS) {
            self.run = None;
            return;
        }
        let Some(spacing) = self.spacing else {
            self.spacing = Some(gap);
            return;
        };
        let ratio = gap / spacing;
        if ratio < CHANGE_RATIO && ratio > 1.0 / CHANGE_RATIO {
            self.spacing = Some(0.9 * spacing + 0.1 * gap);
            self.run = None;
            return;
        }
        let run = match self.run {
            Some(mut run) if (gap / run.first - 1.0).abs() <= CHANGE_RATIO - 1.0 => {
                run.count += 1;
                run.sum += gap;
                run
            }
            // The first off-rate spacing, or one that disagrees with the run: a new run.
            _ => Run::new(prev, gap),
        };
        if run.count >= CHANGE_RUN {
            self.changes.push_back(run.start);
            while self.changes.len() > MAX_CHANGES {
                self.changes.pop_front();
            }
            self.spacing = Some(run.sum / run.count as f64);
            self.run = None;
        } else {
            self.run = Some(run);
        }
    }

    /// The node's sample spacing as learned so far, ms (`None` before two samples).
    pub fn spacing_ms(&self) -> Option<f64> {
        self.spacing
    }

    /// True when the rate changed within `[from, to]`.
    pub fn changed_between(&self, from: f64, to: f64) -> bool {
        self.changes.iter().any(|&t| t >= from && t <= to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_change_is_found_at_its_time_and_jitter_and_gaps_are_not() {
        let mut r = RateTracker::default();
        let mut t = 0.0;
        for i in 0..200 {
            // ±1 ms stamp jitter at 200 Hz, a lost sample at 100.
            t += if i == 100 { 10.0 } else { 5.0 } + if i % 2 == 0 { 1.0 } else { -1.0 };
            r.note(t);
        }
        let before = t;
        for _ in 0..50 {
            t += 10.0;
            r.note(t);
        }
        assert!(!r.changed_between(0.0, before - 1.0));
        assert!(r.changed_between(before - 1.0, before + 50.0));
    }
}
