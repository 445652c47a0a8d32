//! One node's samples put back in time order: a bounded reorder buffer with a "frontier".
//!
//! Samples arrive batch by batch, possibly out of order, duplicated, with gaps or a new rate.
//! The buffer keeps them sorted; the frontier is the newest sample that can no longer be
//! preceded by a late one: the next sample is released as soon as it follows the previous at
//! the expected spacing (so in-order data flows with no delay), or once data newer by the
//! reorder window has arrived (so a gap or a rate change costs at most that window). Samples
//! older than the frontier are late: counted and dropped. Memory is bounded by a time horizon
//! kept behind the frontier and a hard sample cap.

use std::collections::VecDeque;

use super::NodeSample;

/// Hard cap on buffered samples per node: 4 s at 1 kHz, the highest rate we expect, which is
/// more than the history plus the reorder window. Beyond it the oldest samples are dropped.
pub const MAX_NODE_SAMPLES: usize = 4096;

/// Spacing up to this multiple of the expected one still counts as "the next sample"
/// (tolerates the ±1 ms jitter of V3.3's millisecond stamps at 200 Hz).
const CONTIGUOUS_FACTOR: f64 = 1.6;

#[derive(Debug, Clone, Default)]
pub struct NodeStream {
    /// Sorted by `t_ms`, no two equal.
    buf: VecDeque<NodeSample>,
    /// Index in `buf` of the first sample not yet released.
    released: usize,
    /// Time of the newest released sample (`-inf` before the first).
    frontier_t: Option<f64>,
    /// Expected spacing, ms (learned from the data).
    dt_est: Option<f64>,
    /// Newest time seen.
    newest_t: f64,
    pub late: u64,
    pub duplicates: u64,
    pub invalid: u64,
    pub overflowed: u64,
}

impl NodeStream {
    /// Adds one sample; returns false when it was dropped (invalid, late or duplicate).
    pub fn insert(&mut self, s: NodeSample) -> bool {
        if !sample_is_valid(&s) {
            self.invalid += 1;
            return false;
        }
        if let Some(f) = self.frontier_t
            && s.t_ms <= f
        {
            if s.t_ms == f {
                self.duplicates += 1;
            } else {
                self.late += 1;
            }
            return false;
        }
        match self.buf.back() {
            Some(last) if s.t_ms < last.t_ms => {
                let lo = self.released;
                let slice_pos = self.buf.range(lo..).position(|x| x.t_ms >= s.t_ms);
                let pos = lo + slice_pos.unwrap_or(self.buf.len() - lo);
                if self.buf.get(pos).is_some_and(|x| x.t_ms == s.t_ms) {
                    self.duplicates += 1;
                    return false;
                }
                self.buf.insert(pos, s);
            }
            Some(last) if s.t_ms == last.t_ms => {
                self.duplicates += 1;
                return false;
            }
            _ => self.buf.push_back(s),
        }
        if self.buf.len() == 1 || s.t_ms > self.newest_t {
            self.newest_t = s.t_ms;
        }
        true
    }

    /// Releases the samples that are now certain to be in order, calling `f` on each in time
    /// order. `f` may rewrite the sample in place (conditioning happens here, where order is
    /// certain); what it leaves is what windows read later.
    pub fn release(&mut self, reorder_window_ms: f64, mut f: impl FnMut(&mut NodeSample)) {
        while let Some(s) = self.buf.get(self.released).copied() {
            let old_enough = s.t_ms <= self.newest_t - reorder_window_ms;
            let ok = match (self.frontier_t, self.dt_est) {
                (None, _) => old_enough || self.buf.len() - self.released >= 4,
                (Some(f), Some(dt)) => s.t_ms - f <= dt * CONTIGUOUS_FACTOR || old_enough,
                (Some(_), None) => true,
            };
            if !ok {
                break;
            }
            if let Some(prev) = self.frontier_t {
                self.learn_spacing(s.t_ms - prev);
            }
            self.frontier_t = Some(s.t_ms);
            self.released += 1;
            if let Some(kept) = self.buf.get_mut(self.released - 1) {
                f(kept);
            }
        }
    }

    /// Expected spacing: follows a faster rate at once, a slower one (or a gap) gradually,
    /// so one lost batch does not make the next reordered batch look contiguous.
    fn learn_spacing(&mut self, gap: f64) {
        let dt = match self.dt_est {
            None => gap,
            Some(dt) if gap < dt => 0.5 * dt + 0.5 * gap,
            Some(dt) => 0.7 * dt + 0.3 * gap.min(4.0 * dt),
        };
        self.dt_est = Some(dt.max(1e-3));
    }

    /// Releases everything (end of session).
    pub fn flush(&mut self, f: impl FnMut(&mut NodeSample)) {
        self.release(f64::NEG_INFINITY, f);
        // `old_enough` with an infinite window is always true, except for the first sample
        // rule, which also accepts when old enough: nothing stays behind.
    }

    /// Drops released samples older than `keep_from_t`, and the oldest beyond the cap.
    pub fn trim(&mut self, keep_from_t: f64) {
        while self.released > 0 && self.buf.front().is_some_and(|s| s.t_ms < keep_from_t) {
            self.buf.pop_front();
            self.released -= 1;
        }
        while self.buf.len() > MAX_NODE_SAMPLES {
            self.buf.pop_front();
            if self.released > 0 {
                self.released -= 1;
            } else {
                self.overflowed += 1;
            }
        }
    }

    /// Time of the newest released sample.
    pub fn frontier(&self) -> Option<f64> {
        self.frontier_t
    }

    /// Released samples with `t_ms` in `[from, to]`, in order.
    pub fn window(&self, from: f64, to: f64) -> impl Iterator<Item = &NodeSample> {
        let released = self.buf.range(..self.released);
        let start = released
            .clone()
            .position(|s| s.t_ms >= from)
            .unwrap_or(self.released);
        self.buf
            .range(start..self.released)
            .take_while(move |s| s.t_ms <= to)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Finite time and channels. Huge finite values are kept (they clip like a saturated sensor).
fn sample_is_valid(s: &NodeSample) -> bool {
    s.t_ms.is_finite()
        && s.acc.iter().chain(s.gyro.iter()).all(|v| v.is_finite())
        && s.angle.is_none_or(|a| a.iter().all(|v| v.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BodyPosition;

    fn at(t: f64) -> NodeSample {
        NodeSample {
            position: BodyPosition::Racket,
            t_ms: t,
            acc: [0.0, 0.0, 1.0],
            gyro: [0.0; 3],
            angle: None,
        }
    }

    fn released(stream: &mut NodeStream, window: f64) -> Vec<f64> {
        let mut out = Vec::new();
        stream.release(window, |s| out.push(s.t_ms));
        out
    }

    #[test]
    fn in_order_samples_are_released_at_once() {
        let mut s = NodeStream::default();
        for i in 0..10 {
            s.insert(at(i as f64 * 5.0));
        }
        assert_eq!(released(&mut s, 500.0).len(), 10);
    }

    #[test]
    fn a_gap_waits_for_the_late_batch_then_orders_it() {
        let mut s = NodeStream::default();
        for i in (0..10).chain(20..30) {
            s.insert(at(i as f64 * 5.0));
        }
        assert_eq!(released(&mut s, 500.0).len(), 10, "stops at the gap");
        for i in 10..20 {
            s.insert(at(i as f64 * 5.0));
        }
        let out = released(&mut s, 500.0);
        assert_eq!(out.len(), 20);
        assert!(out.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_lost_batch_costs_at_most_the_reorder_window() {
        let mut s = NodeStream::default();
        for i in (0..10).chain(20..110) {
            s.insert(at(i as f64 * 5.0));
        }
        assert_eq!(
            released(&mut s, 500.0).len(),
            10,
            "545 ms is not 500 ms past the gap"
        );
        for i in 110..200 {
            s.insert(at(i as f64 * 5.0));
        }
        let out = released(&mut s, 500.0);
        // Held at the gap until data 500 ms newer arrived, then given up on: everything after
        // the gap is contiguous again and flows.
        assert_eq!(out.len(), 180);
        assert_eq!(out[0], 100.0);
    }

    #[test]
    fn duplicates_and_late_samples_are_counted_not_kept() {
        let mut s = NodeStream::default();
        for i in 0..10 {
            s.insert(at(i as f64 * 5.0));
        }
        released(&mut s, 500.0);
        assert!(!s.insert(at(45.0)));
        assert!(!s.insert(at(20.0)));
        assert_eq!((s.duplicates, s.late), (1, 1));
        assert!(!s.insert(at(f64::NAN)));
        assert_eq!(s.invalid, 1);
    }
}
