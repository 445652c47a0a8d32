//! Held-out figures for whatever is fitted from data (issue 14: "leave-one-source-out where
//! anything was tuned"). A figure measured on the data a parameter was fitted from is a
//! calibration, not a result; the honest figure fits on everything but one unit (a source, or
//! a file of captures), evaluates on the unit left out, and repeats for every unit.
//!
//! A fitted parameter set plugs in as a [`Fit`]: how to fit it on some units and what it
//! yields on one. [`leave_one_out`] runs the folds; the caller scores the held-out outcomes
//! together as one source (recordings: [`crate::recording::score::score`]; simulated
//! sessions: [`crate::biomech_eval::score_session`]). Today's one fitted parameter,
//! the padel board's axis map learnt from its side labels, is [`AxisMapFit`]: held out by
//! file, as no other source has padel's board (its axes mean nothing elsewhere). A fitted
//! confidence model or detector threshold would be held out by source, its units the sources'
//! outcome lists.

use std::fmt;

use shuttlegate_core::analysis::AnalysisSettings;

use crate::recording::score::FileOutcome;
use crate::recording::sources::Source;
use crate::recording::{AxisMap, Format, RecordingError, source_outcomes};

/// A parameter set fitted from data.
pub trait Fit {
    /// What is held out in turn (a file, a source).
    type Unit;
    /// What the fit yields; printed in the report's notes.
    type Params: Clone + fmt::Display;
    /// What evaluating one unit gives, for the caller to score: a recording's
    /// [`FileOutcome`]s, or a simulated session with its swings.
    type Outcome;
    /// Fits on `training` (every unit but the held-out one).
    fn fit(&self, training: &[&Self::Unit]) -> Self::Params;
    /// The outcomes of the held-out unit under `params`.
    fn outcomes(&self, params: &Self::Params, held_out: &Self::Unit) -> Vec<Self::Outcome>;
}

/// One fold: which unit was held out, what was fitted without it, how it fared.
#[derive(Debug, Clone)]
pub struct Fold<P, O> {
    pub held_out: usize,
    pub params: P,
    pub outcomes: Vec<O>,
}

/// Every unit held out once.
pub fn leave_one_out<F: Fit>(fit: &F, units: &[F::Unit]) -> Vec<Fold<F::Params, F::Outcome>> {
    (0..units.len())
        .map(|held_out| {
            let training: Vec<&F::Unit> = units
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != held_out)
                .map(|(_, u)| u)
                .collect();
            let params = fit.fit(&training);
            let outcomes = fit.outcomes(&params, &units[held_out]);
            Fold {
                held_out,
                params,
                outcomes,
            }
        })
        .collect()
}

/// The 24 proper rotations among signed axis permutations: the ways a board can be turned
/// on a handle (a mirror image is no mounting).
pub fn rotations() -> Vec<AxisMap> {
    const PERMUTATIONS: [([usize; 3], i32); 6] = [
        ([0, 1, 2], 1),
        ([0, 2, 1], -1),
        ([1, 0, 2], -1),
        ([1, 2, 0], 1),
        ([2, 0, 1], 1),
        ([2, 1, 0], -1),
    ];
    let mut out = Vec::new();
    for (perm, parity) in PERMUTATIONS {
        for signs in 0..8u8 {
            let negated = [signs & 1 != 0, signs & 2 != 0, signs & 4 != 0];
            let flips = negated.iter().filter(|n| **n).count() as i32;
            if parity * if flips % 2 == 0 { 1 } else { -1 } != 1 {
                continue;
            }
            let text: Vec<String> = perm
                .iter()
                .zip(negated)
                .map(|(axis, neg)| {
                    format!("{}{}", if neg { "-" } else { "" }, ["x", "y", "z"][*axis])
                })
                .collect();
            out.push(AxisMap::parse(&text.join(",")).expect("a generated axis map parses"));
        }
    }
    out
}

/// Swings whose side, and whose height, agree with their file's label: what an axis map is
/// fitted to maximise.
pub fn label_agreement(outcomes: &[FileOutcome]) -> usize {
    outcomes
        .iter()
        .flat_map(|o| o.swings.iter().map(move |s| (o, s)))
        .map(|(o, s)| {
            usize::from(o.label.side == Some(s.side))
                + usize::from(o.label.height == Some(s.height))
        })
        .sum()
}

/// An axis map in its `x,-y,-z` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axes(pub AxisMap);

impl fmt::Display for Axes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.text())
    }
}

/// A rate-timed source's axis map, fitted on its labelled files: of the 24 rotations, the one
/// under which most swings agree with their files' side and height labels (ties: the earlier
/// in [`rotations`], identity first). Each file's outcomes under each rotation are computed
/// once, in process.
pub struct AxisMapFit {
    maps: Vec<AxisMap>,
    /// `by_map[m][f]`: file `f`'s outcomes with map `m`.
    by_map: Vec<Vec<Vec<FileOutcome>>>,
}

impl AxisMapFit {
    /// Analyses every file of `source` under every rotation. Fails on a source whose format
    /// has no axis map (only tables have one).
    pub fn new(source: &Source, settings: &AnalysisSettings) -> Result<AxisMapFit, RecordingError> {
        let Format::Table(table) = &source.format else {
            return Err(RecordingError::Format {
                path: source.name.to_owned(),
                line: 0,
                reason: "only a table's axes can be fitted".into(),
            });
        };
        let maps = rotations();
        let mut by_map = Vec::with_capacity(maps.len());
        for map in &maps {
            let mut turned = source.clone();
            let mut format = table.clone();
            format.axes = *map;
            turned.format = Format::Table(format);
            let per_file = turned
                .files
                .iter()
                .map(|file| {
                    let one = Source {
                        files: vec![file.clone()],
                        ..turned.clone()
                    };
                    source_outcomes(&one, settings)
                })
                .collect::<Result<Vec<_>, _>>()?;
            by_map.push(per_file);
        }
        Ok(AxisMapFit { maps, by_map })
    }

    /// The files, as the units to hold out.
    pub fn units(&self) -> Vec<usize> {
        (0..self.by_map.first().map_or(0, Vec::len)).collect()
    }
}

impl Fit for AxisMapFit {
    type Unit = usize;
    type Params = Axes;
    type Outcome = FileOutcome;

    fn fit(&self, training: &[&usize]) -> Axes {
        let score = |m: usize| -> usize {
            training
                .iter()
                .map(|f| label_agreement(&self.by_map[m][**f]))
                .sum()
        };
        let best = (0..self.maps.len())
            .rev()
            .max_by_key(|m| score(*m))
            .unwrap_or(0);
        Axes(self.maps[best])
    }

    fn outcomes(&self, params: &Axes, held_out: &usize) -> Vec<FileOutcome> {
        let m = self.maps.iter().position(|m| *m == params.0).unwrap_or(0);
        self.by_map[m][*held_out].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_24_rotations_identity_first_and_the_learnt_padel_map_among_them() {
        let maps = rotations();
        assert_eq!(maps.len(), 24);
        assert_eq!(maps[0], AxisMap::IDENTITY);
        assert!(maps.contains(&AxisMap::parse("x,-y,-z").expect("parses")));
        assert!(
            !maps.contains(&AxisMap::parse("-x,y,z").expect("parses")),
            "a mirror"
        );
        let mut unique = maps.clone();
        unique.dedup();
        assert_eq!(unique.len(), 24);
    }

    /// Units are numbers; the fit is their mean, the outcome records it: each fold must see
    /// every unit but its own.
    struct Mean;
    impl Fit for Mean {
        type Unit = f64;
        type Params = f64;
        type Outcome = String;
        fn fit(&self, training: &[&f64]) -> f64 {
            training.iter().copied().sum::<f64>() / training.len() as f64
        }
        fn outcomes(&self, params: &f64, held_out: &f64) -> Vec<String> {
            vec![format!("{held_out} {params}")]
        }
    }

    #[test]
    fn each_fold_is_fitted_without_its_held_out_unit() {
        let folds = leave_one_out(&Mean, &[1.0, 2.0, 6.0]);
        let files: Vec<&str> = folds.iter().map(|f| f.outcomes[0].as_str()).collect();
        assert_eq!(files, ["1 4", "2 3.5", "6 1.5"]);
        assert_eq!(folds[2].held_out, 2);
    }
}
