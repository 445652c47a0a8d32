//! Swings seen by the body nodes alone, so that a kinetic chain is measured on every swing the
//! body makes whether or not the racket rule fires (issue 14): the racket node silent, lost,
//! mounted in a way the racket rule misreads, or a burst the racket rule rejects.
//!
//! A candidate is a burst of the most distal body node that is not the device's primary node
//! (the wrist, else the shoulder, else the waist), found with the racket's hysteresis on ‖ω‖:
//! it starts above `swing_start_dps` and ends after `swing_end_hold_ms` below `swing_end_dps`.
//! The same bounds hold for the same reason: segments in the ready stance and between strokes
//! turn under ~150 °/s, a stroke's wrist, shoulder and waist peak above 250 °/s.
//!
//! A candidate is a swing only when the body shows what makes a throw-like motion a swing: a
//! proximal-to-distal sequence, each segment peaking after the one it is driven by (waist, then
//! shoulder, then wrist) within a link delay a stroke has (Putnam 1993, "Sequential motions of
//! body segments in striking and throwing skills", J Biomech 26 Suppl 1; in badminton overhead
//! strokes the adjacent-segment delays are 20–100 ms, the seed system's ideals 80 and 50 ms).
//! Walking, turning to look or reaching turns the segments together or distal-first.
//!
//! Pure logic: the device analyser feeds released samples in, decides which candidates a racket
//! swing accounts for, measures the chain and asks [`is_a_sequence`].

use super::{AnalysisSettings, Chain, NodeSample};

/// A body burst longer than this is cut (as the racket's: nobody swings for over a second).
const MAX_BURST_MS: f64 = 1200.0;
/// A gap in the body node's data longer than this ends a burst (as the racket's).
const MAX_GAP_MS: f64 = 200.0;
/// The longest delay between adjacent segments' peaks that is still one sequence, ms: the
/// slowest strokes' waist-to-shoulder delay is ~150 ms (Putnam 1993; the seeds' ideal is
/// 80 ms); beyond 250 ms the two peaks are separate motions.
pub const MAX_LINK_DELAY_MS: f64 = 250.0;

/// One burst of the body node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub start_t: f64,
    /// Time of the burst's fastest sample.
    pub peak_t: f64,
    pub peak_dps: f64,
    pub end_t: f64,
}

#[derive(Debug, Clone, Copy, Default)]
enum Phase {
    #[default]
    Idle,
    Active {
        start_t: f64,
        peak_t: f64,
        peak_dps: f64,
        below_since: Option<f64>,
    },
}

/// The hysteresis detector over one body node's released samples.
#[derive(Debug, Clone, Default)]
pub struct BodyBurstDetector {
    phase: Phase,
    last_t: Option<f64>,
}

impl BodyBurstDetector {
    /// One released sample (in time order); a finished burst comes out.
    pub fn step(&mut self, s: &NodeSample, settings: &AnalysisSettings) -> Option<Candidate> {
        let rate = norm(s.gyro);
        let gap = self.last_t.map_or(0.0, |t| s.t_ms - t);
        let prev_t = self.last_t.unwrap_or(s.t_ms);
        self.last_t = Some(s.t_ms);
        let Phase::Active {
            start_t,
            peak_t,
            peak_dps,
            below_since,
        } = self.phase
        else {
            if rate > settings.swing_start_dps {
                self.phase = Phase::Active {
                    start_t: s.t_ms,
                    peak_t: s.t_ms,
                    peak_dps: rate,
                    below_since: None,
                };
            }
            return None;
        };
        let ended = |end_t| Candidate {
            start_t,
            peak_t,
            peak_dps,
            end_t,
        };
        if gap > MAX_GAP_MS {
            self.phase = Phase::Idle;
            return Some(ended(prev_t));
        }
        let (peak_t, peak_dps) = if rate > peak_dps {
            (s.t_ms, rate)
        } else {
            (peak_t, peak_dps)
        };
        let below_since = (rate < settings.swing_end_dps).then(|| below_since.unwrap_or(s.t_ms));
        let held = below_since.is_some_and(|b| s.t_ms - b >= settings.swing_end_hold_ms);
        if held || s.t_ms - start_t > MAX_BURST_MS {
            self.phase = Phase::Idle;
            return Some(Candidate {
                start_t,
                peak_t,
                peak_dps,
                end_t: below_since.unwrap_or(s.t_ms),
            });
        }
        self.phase = Phase::Active {
            start_t,
            peak_t,
            peak_dps,
            below_since,
        };
        None
    }

    /// The burst in progress, ended at the last sample (end of session).
    pub fn flush(&mut self) -> Option<Candidate> {
        match std::mem::take(&mut self.phase) {
            Phase::Idle => None,
            Phase::Active {
                start_t,
                peak_t,
                peak_dps,
                ..
            } => Some(Candidate {
                start_t,
                peak_t,
                peak_dps,
                end_t: self.last_t.unwrap_or(peak_t),
            }),
        }
    }
}

fn norm(v: [f32; 3]) -> f64 {
    v.iter()
        .map(|&g| f64::from(g) * f64::from(g))
        .sum::<f64>()
        .sqrt()
}

/// A racket burst's span (a swing, or a burst the racket rule rejected), for covering body
/// bursts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RacketSpan {
    pub start_t: f64,
    pub end_t: f64,
    /// The racket rule measured a swing here (it carries the chain).
    pub swing: bool,
}

/// The body moves before the racket (the chain leads it by up to ~300 ms) and after it (the
/// follow-through and the return to the ready position): a body burst whose peak lies in
/// `[start − LEAD, end + FOLLOW]` of a racket swing is that swing's.
pub const COVER_LEAD_MS: f64 = 350.0;
pub const COVER_FOLLOW_MS: f64 = 500.0;

/// True when a racket swing accounts for the body burst (a rejected racket burst does not: the
/// body may have swung where the racket rule saw no stroke).
pub fn covered(c: &Candidate, spans: impl IntoIterator<Item = RacketSpan>) -> bool {
    spans
        .into_iter()
        .filter(|s| s.swing)
        .any(|s| c.peak_t >= s.start_t - COVER_LEAD_MS && c.peak_t <= s.end_t + COVER_FOLLOW_MS)
}

/// Whether a measured chain is a proximal-to-distal sequence: at least one adjacent pair of
/// segments has both peaks, and every such pair peaks in order (the distal one later) within
/// [`MAX_LINK_DELAY_MS`].
pub fn is_a_sequence(chain: &Chain) -> bool {
    let delays = [
        chain.delay_ms.waist_to_shoulder,
        chain.delay_ms.shoulder_to_wrist,
    ];
    let in_order = |d: f64| d > 0.0 && d <= MAX_LINK_DELAY_MS;
    delays.iter().any(Option::is_some) && delays.iter().flatten().all(|&d| in_order(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Delays, Segments};
    use crate::batch::BodyPosition;

    fn wrist(t_ms: f64, rate: f32) -> NodeSample {
        NodeSample {
            position: BodyPosition::Wrist,
            t_ms,
            acc: [0.0, 0.0, 1.0],
            gyro: [rate * 0.6, 0.0, rate * 0.8],
            angle: None,
        }
    }

    #[test]
    fn a_wrist_burst_is_found_with_its_peak() {
        let settings = AnalysisSettings::default();
        let mut d = BodyBurstDetector::default();
        let mut out = Vec::new();
        for k in 0..200 {
            let t = k as f64 * 5.0;
            // A 900 °/s bump around 500 ms, 80 ms wide (about any axis: ‖ω‖ counts).
            let rate = 900.0 * (-0.5 * ((t - 500.0) / 40.0f64).powi(2)).exp();
            out.extend(d.step(&wrist(t, rate as f32), &settings));
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert!((out[0].peak_t - 500.0).abs() < 1e-9 && out[0].peak_dps > 899.0);
        assert!(out[0].start_t > 400.0 && out[0].end_t > 550.0, "{out:?}");
    }

    #[test]
    fn a_ready_stance_makes_no_burst() {
        let settings = AnalysisSettings::default();
        let mut d = BodyBurstDetector::default();
        let found = (0..400)
            .filter_map(|k| d.step(&wrist(k as f64 * 5.0, 120.0), &settings))
            .count();
        assert_eq!(found, 0);
        assert_eq!(d.flush(), None);
    }

    #[test]
    fn a_burst_near_a_racket_swing_is_covered_and_near_a_rejected_burst_is_not() {
        let swing = RacketSpan {
            start_t: 1000.0,
            end_t: 1150.0,
            swing: true,
        };
        let at = |peak_t| Candidate {
            start_t: peak_t - 50.0,
            peak_t,
            peak_dps: 500.0,
            end_t: peak_t + 50.0,
        };
        assert!(covered(&at(950.0), [swing]), "the chain leads the racket");
        assert!(covered(&at(1500.0), [swing]), "the return after it");
        assert!(!covered(&at(2200.0), [swing]), "a later swing of the body");
        let rejected = RacketSpan {
            swing: false,
            ..swing
        };
        assert!(
            !covered(&at(1100.0), [rejected]),
            "the racket rule saw no stroke"
        );
        assert!(!covered(&at(500.0), []), "no racket swing at all");
    }

    fn chain(w2s: Option<f64>, s2w: Option<f64>) -> Chain {
        Chain {
            peak_dps: Segments::default(),
            delay_ms: Delays {
                waist_to_shoulder: w2s,
                shoulder_to_wrist: s2w,
            },
            rom_deg: Segments::default(),
            energy_ratio: None,
        }
    }

    #[test]
    fn only_segments_peaking_proximal_first_within_a_link_delay_are_a_sequence() {
        assert!(is_a_sequence(&chain(Some(80.0), Some(50.0))), "textbook");
        assert!(
            is_a_sequence(&chain(None, Some(40.0))),
            "shoulder and wrist only"
        );
        assert!(
            !is_a_sequence(&chain(Some(80.0), Some(-30.0))),
            "wrist first"
        );
        assert!(!is_a_sequence(&chain(Some(0.0), Some(50.0))), "together");
        assert!(
            !is_a_sequence(&chain(Some(400.0), Some(50.0))),
            "two motions"
        );
        assert!(!is_a_sequence(&chain(None, None)), "no pair to order");
    }
}
