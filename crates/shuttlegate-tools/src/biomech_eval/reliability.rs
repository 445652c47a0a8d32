//! Whether a swing's confidences mean what they say (`eval --verbose`, "reliability …"
//! lines): matched swings binned by each classification's confidence (stroke, side, height),
//! over all swings and by the measured node's mount, with how many of each bin the analyser
//! got right. A confidence is useful when the share
//! right rises with it and sits near the bin's confidence; one that is right as often at 0.95
//! as at 0.55 tells the cloud nothing. The Brier score (mean squared gap between confidence
//! and outcome, 0 best; 0.25 for a constant 0.5) sums it up per classification.
//!
//! A withheld stroke (`unknown`, under `min_stroke_confidence`) counts as wrong, at its
//! guess's confidence, as the evaluation's stroke figure counts it.

use std::collections::BTreeMap;

use shuttlegate_biomech::SwingTruth;
use shuttlegate_core::analysis::{Flag, Swing};

/// Upper edges of the confidence bins; the last takes 1.0 itself.
const BIN_EDGES: [f64; 5] = [0.3, 0.5, 0.7, 0.9, 1.0];

/// Swings with a confidence (one bin's, or a whole source's): how many, how many right, the
/// sum of their confidences and Σ (confidence − outcome)², for the Brier score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bin {
    pub n: usize,
    pub right: usize,
    pub confidence_sum: f64,
    pub squared_gap: f64,
}

impl Bin {
    /// One classification said with `confidence`, `right` or not.
    pub fn add(&mut self, confidence: f64, right: bool) {
        self.n += 1;
        self.right += usize::from(right);
        self.confidence_sum += confidence;
        self.squared_gap += (confidence - f64::from(u8::from(right))).powi(2);
    }

    /// Another bin's swings added to these.
    pub fn absorb(&mut self, other: Bin) {
        self.n += other.n;
        self.right += other.right;
        self.confidence_sum += other.confidence_sum;
        self.squared_gap += other.squared_gap;
    }

    /// The Brier score; `None` without swings.
    pub fn brier(&self) -> Option<f64> {
        (self.n > 0).then(|| self.squared_gap / self.n as f64)
    }

    pub fn mean_confidence(&self) -> f64 {
        self.confidence_sum / self.n.max(1) as f64
    }
}

/// Every classification's bins.
#[derive(Debug, Clone, Default)]
pub struct Reliability {
    /// (classification, group, bin index) → its swings; the group is "all", a mount, or a mount
    /// and whether the swing was read through an inferred frame (`framed`, flagged
    /// `placement_inferred`) or as made (`unframed`): a node taped on turned but read as made,
    /// before its inference framed it, says so here.
    pub bins: BTreeMap<(&'static str, String, usize), Bin>,
}

impl Reliability {
    /// A matched swing `found` of truth `t`, its measured node mounted as `mount`: each
    /// classification that carries a confidence and has a true class.
    pub fn add(&mut self, t: &SwingTruth, found: &Swing, mount: &str) {
        let Some(c) = found.confidences else { return };
        let mut outcomes = vec![("stroke", c.stroke, found.stroke.as_str() == t.stroke.name())];
        if let Some(side) = found.side {
            outcomes.push(("side", c.side, side.as_str() == t.side.name()));
        }
        if let (Some(truth), Some(height)) = (t.stroke.height_class(), found.height) {
            outcomes.push(("height", c.height, height.as_str() == truth.name()));
        }
        let read = if found.flags.contains(&Flag::PlacementInferred) {
            // Through an inferred frame (a turned racket node, or a stand-in's side).
            "framed"
        } else {
            "unframed"
        };
        let by_frame = format!("{mount} {read}");
        for (kind, confidence, right) in outcomes {
            self.add_one(kind, "all", confidence, right);
            self.add_one(kind, mount, confidence, right);
            self.add_one(kind, &by_frame, confidence, right);
        }
    }

    fn add_one(&mut self, kind: &'static str, group: &str, confidence: f64, right: bool) {
        let bin = BIN_EDGES
            .iter()
            .position(|&edge| confidence < edge)
            .unwrap_or(BIN_EDGES.len() - 1);
        self.bins
            .entry((kind, group.to_owned(), bin))
            .or_default()
            .add(confidence, right);
    }

    /// The Brier score of one classification in one group over every bin; `None` without
    /// swings.
    pub fn brier(&self, kind: &str, group: &str) -> Option<f64> {
        let mut all = Bin::default();
        for (_, b) in self
            .bins
            .iter()
            .filter(|((k, g, _), _)| *k == kind && g == group)
        {
            all.absorb(*b);
        }
        all.brier()
    }

    /// A line per classification, group and bin, then the Brier scores.
    pub fn lines(&self) -> Vec<String> {
        let bins = self.bins.iter().map(|((kind, group, bin), b)| {
            let low = if *bin == 0 { 0.0 } else { BIN_EDGES[bin - 1] };
            format!(
                "reliability {kind:<6} {group:<30} confidence {low:.1}–{:.1}  n {:>5}  mean confidence {:.2}  right {:>5.1} %",
                BIN_EDGES[*bin],
                b.n,
                b.mean_confidence(),
                100.0 * b.right as f64 / b.n as f64
            )
        });
        let groups: std::collections::BTreeSet<(&str, &str)> = self
            .bins
            .keys()
            .map(|(kind, group, _)| (*kind, group.as_str()))
            .collect();
        let brier = groups.into_iter().filter_map(|(kind, group)| {
            self.brier(kind, group)
                .map(|score| format!("reliability {kind:<6} {group:<30} Brier score {score:.3}"))
        });
        bins.chain(brier).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidences_fall_in_their_bins_and_the_top_bin_takes_one() {
        let mut r = Reliability::default();
        for (confidence, right) in [(0.29, false), (0.3, true), (0.95, true), (1.0, true)] {
            r.add_one("side", "all", confidence, right);
        }
        let n = |bin: usize| r.bins[&("side", "all".to_owned(), bin)].n;
        assert_eq!((n(0), n(1), n(4)), (1, 1, 2));
    }

    #[test]
    fn the_brier_score_is_zero_when_sure_and_right_and_a_quarter_for_coin_tosses() {
        let mut sure = Reliability::default();
        sure.add_one("height", "all", 1.0, true);
        sure.add_one("height", "all", 0.0, false);
        assert_eq!(sure.brier("height", "all"), Some(0.0));
        let mut tossed = Reliability::default();
        tossed.add_one("height", "all", 0.5, true);
        tossed.add_one("height", "all", 0.5, false);
        assert!((tossed.brier("height", "all").unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(tossed.brier("side", "all"), None);
    }
}
