//! Predictors for integer sample columns: a value is stored as its difference from what the
//! column's earlier values predict, so only the part the predictor could not guess costs bits.
//!
//! Exists because IMU columns come in two shapes that want opposite predictors: a node at rest
//! is sensor noise around a level (the best guess is the level: predicting from the previous
//! value doubles the noise's variance), while a swing is smooth motion sampled far faster than
//! it changes (the best guess extrapolates the last two or three values). The encoder tries each
//! [`Predictor`] on a column and keeps the one whose residuals Rice-code shortest; the choice
//! costs two bits in the column header. Pure integer arithmetic (wrapping, so corrupt input
//! cannot panic), identical in encoder and decoder.

/// How a column's values are predicted. The discriminant is part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Predictor {
    /// Every value against one anchor, the column's rounded mean: noise around a level costs
    /// its own variance, not twice it.
    Mean = 0,
    /// Against the previous value (first differences): drifting levels, slow motion.
    Previous = 1,
    /// Linear extrapolation of the last two values (second differences): smooth motion.
    Linear = 2,
    /// Quadratic extrapolation of the last three (third differences): the fast, smooth part of
    /// a swing sampled at hundreds of hertz. It amplifies noise twentyfold, so it only wins
    /// where motion dominates.
    Quadratic = 3,
}

impl Predictor {
    pub(super) const ALL: [Predictor; 4] = [
        Predictor::Mean,
        Predictor::Previous,
        Predictor::Linear,
        Predictor::Quadratic,
    ];

    pub(super) fn from_code(code: u8) -> Option<Predictor> {
        Predictor::ALL.get(usize::from(code)).copied()
    }

    /// How many residuals a column of `n` values has: `Mean` codes every value against its
    /// anchor; the others store the first value as the anchor and predict the rest.
    pub(super) fn residual_count(self, n: usize) -> usize {
        match self {
            Predictor::Mean => n,
            _ => n.saturating_sub(1),
        }
    }

    /// The anchor and the residuals of `ks` (non-empty).
    pub(super) fn encode(self, ks: &[i64]) -> (i64, Vec<i64>) {
        if self == Predictor::Mean {
            let anchor = rounded_mean(ks);
            return (anchor, ks.iter().map(|k| k.wrapping_sub(anchor)).collect());
        }
        let residuals = (1..ks.len())
            .map(|i| ks[i].wrapping_sub(self.predict(&ks[..i])))
            .collect();
        (ks[0], residuals)
    }

    /// The column back from its anchor and residuals.
    pub(super) fn decode(self, anchor: i64, residuals: &[i64]) -> Vec<i64> {
        if self == Predictor::Mean {
            return residuals.iter().map(|r| r.wrapping_add(anchor)).collect();
        }
        let mut ks = Vec::with_capacity(residuals.len() + 1);
        ks.push(anchor);
        for r in residuals {
            let next = self.predict(&ks).wrapping_add(*r);
            ks.push(next);
        }
        ks
    }

    /// The guess for the value after `seen` (non-empty). Near the start of a column, where a
    /// higher-order predictor lacks history, it falls back to the order the history allows.
    fn predict(self, seen: &[i64]) -> i64 {
        match (self, seen) {
            (Predictor::Quadratic, [.., c, b, a]) => {
                a.wrapping_sub(*b).wrapping_mul(3).wrapping_add(*c)
            }
            (Predictor::Linear | Predictor::Quadratic, [.., b, a]) => {
                a.wrapping_mul(2).wrapping_sub(*b)
            }
            (_, [.., a]) => *a,
            (_, []) => 0,
        }
    }
}

/// Mean rounded half away from zero, exact for any i64 column (summed in i128).
fn rounded_mean(ks: &[i64]) -> i64 {
    let n = ks.len().max(1) as i128;
    let sum: i128 = ks.iter().map(|&k| i128::from(k)).sum();
    let half = if sum < 0 { -n / 2 } else { n / 2 };
    ((sum + half) / n) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_predictor_guesses_its_own_polynomial_exactly() {
        let level = [7i64; 6];
        let ramp: Vec<i64> = (0..6).map(|t| 3 * t - 5).collect();
        let parabola: Vec<i64> = (0..6).map(|t| t * t - 4 * t + 1).collect();
        let cubic: Vec<i64> = (0..6).map(|t| t * t * t).collect();
        assert_eq!(Predictor::Mean.encode(&level), (7, vec![0; 6]));
        assert_eq!(Predictor::Previous.encode(&ramp).1, vec![3; 5]);
        // From the third value on, linear extrapolation is exact on a ramp…
        assert_eq!(Predictor::Linear.encode(&ramp).1[1..], [0; 4]);
        // …and quadratic extrapolation on a parabola (its third differences vanish),
        assert_eq!(Predictor::Quadratic.encode(&parabola).1[2..], [0; 3]);
        // while on a cubic it leaves the constant third difference, 6.
        assert_eq!(Predictor::Quadratic.encode(&cubic).1[2..], [6; 3]);
    }

    #[test]
    fn the_mean_rounds_half_away_from_zero() {
        assert_eq!(rounded_mean(&[1, 2]), 2);
        assert_eq!(rounded_mean(&[-1, -2]), -2);
        assert_eq!(rounded_mean(&[i64::MAX, i64::MAX]), i64::MAX);
    }

    proptest! {
        #[test]
        fn every_predictor_round_trips(ks in proptest::collection::vec(any::<i64>(), 1..64), code in 0u8..4) {
            let p = Predictor::from_code(code).expect("valid code");
            let (anchor, residuals) = p.encode(&ks);
            prop_assert_eq!(residuals.len(), p.residual_count(ks.len()));
            prop_assert_eq!(p.decode(anchor, &residuals), ks);
        }
    }
}
