//! Where a matched swing's racket-speed error comes from (`eval --verbose`, "speed parts …"
//! lines). The analyser's head speed is two parts: the racket's turn, |ω⊥| at contact × the
//! configured reach, and the hand's own speed along the head's path. The truth gives the
//! whole head speed and the racket's peak |ω⊥|, so per group this prints the turn part
//! against the true speed, the hand part (what the measured speed holds beyond the turn),
//! and the peak rate the analyser read against the true peak (on aligned racket nodes only:
//! elsewhere the measured node's rate is not the racket's). A bias in the turn part with the
//! peak read right is contact timing; a bias in the peak is the peak's reading (sampling,
//! clipping); a hand part near zero where the truth has a push is the hand's integral.
//!
//! In process only: the figures come from the swing's `contact` reading, which a swing read
//! back from the daemon's journal does not carry.

use std::collections::BTreeMap;

use shuttlegate_biomech::SwingTruth;
use shuttlegate_core::analysis::Swing;

use crate::eval::ErrorStats;

/// One group's speed parts.
#[derive(Debug, Clone, Default)]
pub struct SpeedParts {
    /// The turn part (rate at contact × reach) over the true head speed − 1, %.
    pub turn_pct: ErrorStats,
    /// The hand part, measured speed − turn part, km/h.
    pub hand_kmh: ErrorStats,
    /// Measured peak rate over the true racket peak − 1, % (aligned racket nodes).
    pub peak_pct: ErrorStats,
    /// Rate at contact over the measured peak.
    pub rate_share: ErrorStats,
}

/// Every group's speed parts.
#[derive(Debug, Clone, Default)]
pub struct SpeedPartsBreakdown {
    pub groups: BTreeMap<String, SpeedParts>,
}

impl SpeedPartsBreakdown {
    /// A matched swing `found` of truth `t` in `groups`, its device's reach `reach_m`;
    /// `racket_rate` when the measured node's rate is the racket's (an aligned racket node).
    pub fn add(
        &mut self,
        t: &SwingTruth,
        found: &Swing,
        reach_m: f64,
        racket_rate: bool,
        groups: &[String],
    ) {
        let Some(e) = found.contact.0 else { return };
        let turn_kmh = e.rate_dps.to_radians() * reach_m * 3.6;
        for g in groups {
            let p = self.groups.entry(g.clone()).or_default();
            p.turn_pct
                .add((turn_kmh / t.racket_speed_kmh - 1.0) * 100.0);
            p.hand_kmh.add(e.speed_kmh - turn_kmh);
            p.rate_share.add(e.rate_ratio);
            if racket_rate && e.rate_ratio > 0.0 {
                let peak = e.rate_dps / e.rate_ratio;
                p.peak_pct.add((peak / t.racket_peak_dps - 1.0) * 100.0);
            }
        }
    }

    /// A line per group.
    pub fn lines(&self) -> Vec<String> {
        let med = |e: &ErrorStats| {
            if e.n() == 0 {
                "-".to_owned()
            } else {
                format!(
                    "{:+.1} [{:+.0}, {:+.0}]",
                    e.quantile(0.5),
                    e.quantile(0.1),
                    e.quantile(0.9)
                )
            }
        };
        self.groups
            .iter()
            .map(|(name, p)| {
                format!(
                    "speed parts {name:<44} n {:>4}  turn/true {:>20}  hand km/h {:>20}  peak {:>20} (n {:>4})  share {:.2}",
                    p.turn_pct.n(),
                    med(&p.turn_pct),
                    med(&p.hand_kmh),
                    med(&p.peak_pct),
                    p.peak_pct.n(),
                    p.rate_share.quantile(0.5),
                )
            })
            .collect()
    }
}
