//! Where a matched swing's racket-speed error comes from (`eval --verbose`, "speed parts …"
//! lines). The analyser's head speed is two parts: the racket's turn, |ω⊥| at contact (at
//! the pulse's peak on a wrist or forearm node) × the configured reach, and the hand's own speed along the head's path. The truth gives the
//! whole head speed and the racket's peak |ω⊥|, so per group this prints the turn part
//! against the true speed, the hand part (what the measured speed holds beyond the turn),
//! and the peak rate the analyser read against the true peak (on aligned racket nodes only:
//! elsewhere the measured node's rate is not the racket's). A bias in the turn part with the
//! peak read right is contact timing; a bias in the peak is the peak's reading (sampling,
//! clipping); a hand part near zero where the truth has a push is the hand's integral.
//! Each line also gives the group's speed MAE and bias, its share of the whole run's absolute
//! error (which group to mend first), and contact as read against the true contact (ms).
//!
//! In process only: the figures come from the swing's `contact` reading, which a swing read
//! back from the daemon's journal does not carry.

use std::collections::BTreeMap;

use shuttlegate_biomech::SwingTruth;
use shuttlegate_core::analysis::{Flag, Swing};

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
    /// The turn part over the true turn part (true head speed − the true hand's) − 1, %:
    /// the rate read at contact against the racket's true rate there.
    pub turn_vs_true_pct: ErrorStats,
    /// The hand part − the true hand's speed along the path at contact, km/h.
    pub hand_err_kmh: ErrorStats,
    /// The true hand's share of the true head speed, %.
    pub true_hand_pct: ErrorStats,
    /// The measured head speed over the true one − 1, %: the group's MAE, bias and share
    /// of the whole run's absolute error (which group to mend first).
    pub speed_pct: ErrorStats,
    /// Contact as read − the true contact, ms (signed: a rate read after the peak is low).
    pub contact_dt_ms: ErrorStats,
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
        // The rate the speed model turned the head with: at contact on a racket node, the
        // pulse's peak on a wrist or forearm node standing in for it (measure/mod.rs).
        let turn_dps = if found.flags.contains(&Flag::WristEstimate) && e.rate_ratio > 0.0 {
            (e.rate_dps / e.rate_ratio).max(e.rate_dps)
        } else {
            e.rate_dps
        };
        let turn_kmh = turn_dps.to_radians() * reach_m * 3.6;
        for g in groups {
            let p = self.groups.entry(g.clone()).or_default();
            p.turn_pct
                .add((turn_kmh / t.racket_speed_kmh - 1.0) * 100.0);
            p.hand_kmh.add(e.speed_kmh - turn_kmh);
            p.rate_share.add(e.rate_ratio);
            let true_turn_kmh = t.racket_speed_kmh - t.hand_speed_kmh;
            if true_turn_kmh > 0.0 {
                p.turn_vs_true_pct
                    .add((turn_kmh / true_turn_kmh - 1.0) * 100.0);
            }
            p.hand_err_kmh
                .add(e.speed_kmh - turn_kmh - t.hand_speed_kmh);
            p.true_hand_pct
                .add(100.0 * t.hand_speed_kmh / t.racket_speed_kmh);
            p.speed_pct
                .add((e.speed_kmh / t.racket_speed_kmh - 1.0) * 100.0);
            p.contact_dt_ms.add(found.t_impact - t.t_contact_ms);
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
        let abs_sum = |e: &ErrorStats| e.mean_abs() * e.n() as f64;
        let total = self
            .groups
            .get("all")
            .map_or(0.0, |p| abs_sum(&p.speed_pct))
            .max(1e-9);
        self.groups
            .iter()
            .map(|(name, p)| {
                format!(
                    "speed parts {name:<44} n {:>4}  turn/true {:>20}  hand km/h {:>20}  turn/true turn {:>20}  hand-true hand km/h {:>20}  true hand % {:>18}  peak {:>20} (n {:>4})  share {:.2}  MAE {:>5.1} bias {:>+6.1} of |err| {:>4.1} %  contact dt ms {}",
                    p.turn_pct.n(),
                    med(&p.turn_pct),
                    med(&p.hand_kmh),
                    med(&p.turn_vs_true_pct),
                    med(&p.hand_err_kmh),
                    med(&p.true_hand_pct),
                    med(&p.peak_pct),
                    p.peak_pct.n(),
                    p.rate_share.quantile(0.5),
                    p.speed_pct.mean_abs(),
                    p.speed_pct.mean(),
                    100.0 * abs_sum(&p.speed_pct) / total,
                    med(&p.contact_dt_ms),
                )
            })
            .collect()
    }
}
