//! Rallies: the impacts of every racket on one court joined into exchanges.
//!
//! A rally is a run of impacts in which each follows the previous within the configured
//! maximum gap and comes from a different device than the previous one (a player cannot hit
//! twice in a row; in doubles, partners share a side but still alternate with the opponents).
//! Impacts from different devices reach the tracker in whatever order their analysers emit
//! them, so the tracker keeps a short sorted backlog and only decides on impacts older than
//! the newest by `settle_ms`. Pure: time comes from the impacts and from `handle_time`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Impacts kept undecided at most (a court has ≤ 4 rackets; this is minutes of play).
const MAX_BACKLOG: usize = 256;
/// Shots remembered per rally in its sequence (a record rally is ~ 200 shots).
const MAX_SEQUENCE: usize = 512;
/// Finished rallies whose shot counts are kept for the statistics.
const MAX_HISTORY: usize = 4096;

/// One rally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rally {
    pub rally_no: u64,
    pub t_start: f64,
    pub t_end: f64,
    pub shots: u64,
    /// Devices in hitting order (first `MAX_SEQUENCE`).
    pub sequence: Vec<String>,
}

/// What the tracker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RallyEvent {
    RallyShot {
        rally_no: u64,
        shot_no: u64,
        device: String,
        t: f64,
    },
    RallyEnd(Rally),
}

/// Court statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RallyStats {
    pub rallies: u64,
    pub shots: u64,
    pub mean_shots_per_rally: Option<f64>,
    pub longest_rally: u64,
    pub shots_per_rally: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct RallyTracker {
    max_gap_ms: f64,
    settle_ms: f64,
    backlog: Vec<(f64, String)>,
    current: Option<Rally>,
    events: VecDeque<RallyEvent>,
    newest_t: f64,
    next_no: u64,
    stats: RallyStats,
}

impl RallyTracker {
    /// `settle_ms`: how late an impact from another device may arrive and still be put in
    /// order (the analysers' worst emission latency, ~ the reorder window).
    pub fn new(max_gap_ms: f64, settle_ms: f64) -> Self {
        RallyTracker {
            max_gap_ms,
            settle_ms: settle_ms.max(0.0),
            backlog: Vec::new(),
            current: None,
            events: VecDeque::new(),
            newest_t: f64::NEG_INFINITY,
            next_no: 1,
            stats: RallyStats::default(),
        }
    }

    /// One impact (air swings are not shots and should not be passed).
    pub fn handle_impact(&mut self, device: &str, t_impact_ms: f64) {
        if !t_impact_ms.is_finite() {
            return;
        }
        let pos = self.backlog.partition_point(|(t, _)| *t <= t_impact_ms);
        self.backlog.insert(pos, (t_impact_ms, device.to_string()));
        if self.backlog.len() > MAX_BACKLOG {
            let (t, d) = self.backlog.remove(0);
            self.decide(t, d);
        }
        self.handle_time(t_impact_ms);
    }

    /// Time has reached `now_ms` (sample time): decide settled impacts, end a rally whose gap
    /// has passed.
    pub fn handle_time(&mut self, now_ms: f64) {
        if now_ms.is_finite() && now_ms > self.newest_t {
            self.newest_t = now_ms;
        }
        while self
            .backlog
            .first()
            .is_some_and(|(t, _)| *t <= self.newest_t - self.settle_ms)
        {
            let (t, d) = self.backlog.remove(0);
            self.decide(t, d);
        }
        let settled_until = self.newest_t - self.settle_ms;
        if let Some(r) = &self.current
            && self.backlog.is_empty()
            && settled_until - r.t_end > self.max_gap_ms
        {
            self.end_rally();
        }
    }

    /// Ends the session: everything pending is decided and the open rally closed.
    pub fn finish(&mut self) -> RallyStats {
        for (t, d) in std::mem::take(&mut self.backlog) {
            self.decide(t, d);
        }
        self.end_rally();
        self.stats.clone()
    }

    pub fn poll_event(&mut self) -> Option<RallyEvent> {
        self.events.pop_front()
    }

    pub fn stats(&self) -> &RallyStats {
        &self.stats
    }

    fn decide(&mut self, t: f64, device: String) {
        let continues = self
            .current
            .as_ref()
            .is_some_and(|r| t - r.t_end <= self.max_gap_ms && r.sequence.last() != Some(&device));
        if !continues {
            self.end_rally();
            self.current = Some(Rally {
                rally_no: self.next_no,
                t_start: t,
                t_end: t,
                shots: 0,
                sequence: Vec::new(),
            });
            self.next_no += 1;
        }
        // Invariant: `current` was set just above when it was None.
        let Some(r) = self.current.as_mut() else {
            return;
        };
        r.shots += 1;
        r.t_end = t;
        if r.sequence.len() < MAX_SEQUENCE {
            r.sequence.push(device.clone());
        }
        self.events.push_back(RallyEvent::RallyShot {
            rally_no: r.rally_no,
            shot_no: r.shots,
            device,
            t,
        });
        self.bound_events();
    }

    fn end_rally(&mut self) {
        let Some(r) = self.current.take() else { return };
        self.stats.rallies += 1;
        self.stats.shots += r.shots;
        self.stats.longest_rally = self.stats.longest_rally.max(r.shots);
        if self.stats.shots_per_rally.len() < MAX_HISTORY {
            self.stats.shots_per_rally.push(r.shots);
        }
        self.stats.mean_shots_per_rally = Some(self.stats.shots as f64 / self.stats.rallies as f64);
        self.events.push_back(RallyEvent::RallyEnd(r));
        self.bound_events();
    }

    /// Unpolled events are bounded: the oldest go first.
    fn bound_events(&mut self) {
        while self.events.len() > MAX_BACKLOG * 4 {
            self.events.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternating_hits_within_the_gap_make_one_rally_and_a_pause_ends_it() {
        let mut r = RallyTracker::new(3000.0, 0.0);
        for (i, t) in [0.0, 900.0, 1800.0, 2600.0].into_iter().enumerate() {
            r.handle_impact(if i % 2 == 0 { "a" } else { "b" }, t);
        }
        r.handle_impact("a", 12_000.0);
        r.handle_impact("b", 12_800.0);
        let stats = r.finish();
        assert_eq!(stats.rallies, 2);
        assert_eq!(stats.shots_per_rally, vec![4, 2]);
        assert_eq!(stats.longest_rally, 4);
    }

    #[test]
    fn the_same_racket_twice_in_a_row_starts_a_new_rally() {
        let mut r = RallyTracker::new(3000.0, 0.0);
        r.handle_impact("a", 0.0);
        r.handle_impact("a", 1000.0);
        assert_eq!(r.finish().rallies, 2);
    }

    #[test]
    fn impacts_arriving_out_of_order_are_sorted_within_the_settle_time() {
        let mut r = RallyTracker::new(3000.0, 1000.0);
        r.handle_impact("b", 900.0);
        r.handle_impact("a", 0.0);
        r.handle_impact("a", 1800.0);
        let stats = r.finish();
        assert_eq!(stats.shots_per_rally, vec![3]);
    }
}
