//! Predictors for integer sample columns: a value is stored as its difference from what the
//! column's earlier values predict, so only the part the predictor could not guess costs bits.
//!
//! Exists because IMU columns come in two shapes that want opposite predictors: a node at rest
//! is sensor noise around a level (the best guess is the level: predicting from the previous
//! value doubles the noise's variance), while a swing is smooth motion sampled far faster than
//! it changes (the best guess extrapolates the last values). The encoder tries each
//! [`Predictor`] on a column and keeps the one whose residuals Rice-code shortest; the choice
//! costs two or three bits in the column header. Pure integer arithmetic (wrapping, so corrupt
//! input cannot panic), identical in encoder and decoder.
//!
//! Extrapolating from the last two or three values amplifies the sensor's noise (sixfold and
//! twentyfold in variance), so the smoothing predictors fit a low-degree polynomial to a longer
//! window by least squares and extrapolate that: on 1 kHz swings they cut the residuals by
//! about a fifth. Their coefficients are fixed-point constants computed at compile time from
//! (degree, window); being part of the format, they must never change.

/// How a column's values are predicted. The discriminant is part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predictor {
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
    /// The least-squares line through the last 3 values, one step on.
    LineOf3 = 4,
    /// The least-squares parabola through the last 8 values, one step on.
    ParabolaOf8 = 5,
    /// The least-squares cubic through the last 12 values, one step on.
    CubicOf12 = 6,
    /// The least-squares quartic through the last 20 values, one step on: the smoothest, for
    /// the fastest part of a 1 kHz swing.
    QuarticOf20 = 7,
}

/// Fixed-point precision of the smoothing predictors' coefficients (part of the format).
const FIR_SHIFT: u32 = 20;
const LINE_OF_3: [i64; 3] = extrapolator::<3>(1);
const PARABOLA_OF_8: [i64; 8] = extrapolator::<8>(2);
const CUBIC_OF_12: [i64; 12] = extrapolator::<12>(3);
const QUARTIC_OF_20: [i64; 20] = extrapolator::<20>(4);

impl Predictor {
    /// The predictors a two-bit predictor field (the older column kinds) can name.
    pub const CLASSIC: [Predictor; 4] = [
        Predictor::Mean,
        Predictor::Previous,
        Predictor::Linear,
        Predictor::Quadratic,
    ];

    /// The smoothing predictors, which only three-bit fields can name.
    pub const SMOOTHING: [Predictor; 4] = [
        Predictor::LineOf3,
        Predictor::ParabolaOf8,
        Predictor::CubicOf12,
        Predictor::QuarticOf20,
    ];

    pub fn from_code(code: u8) -> Option<Predictor> {
        let all = Predictor::CLASSIC.iter().chain(&Predictor::SMOOTHING);
        all.copied().find(|p| *p as u8 == code)
    }

    /// How many residuals a column of `n` values has: `Mean` codes every value against its
    /// anchor; the others store the first value as the anchor and predict the rest.
    pub fn residual_count(self, n: usize) -> usize {
        match self {
            Predictor::Mean => n,
            _ => n.saturating_sub(1),
        }
    }

    /// The anchor and the residuals of `ks` (non-empty).
    pub fn encode(self, ks: &[i64]) -> (i64, Vec<i64>) {
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
    pub fn decode(self, anchor: i64, residuals: &[i64]) -> Vec<i64> {
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
        let fir = |coefficients: &[i64]| -> Option<i64> {
            let window = seen.get(seen.len().checked_sub(coefficients.len())?..)?;
            let sum = window
                .iter()
                .zip(coefficients)
                .fold(0i64, |acc, (x, c)| acc.wrapping_add(x.wrapping_mul(*c)));
            Some(sum.wrapping_add(1 << (FIR_SHIFT - 1)) >> FIR_SHIFT)
        };
        let smoothed = match self {
            Predictor::LineOf3 => fir(&LINE_OF_3),
            Predictor::ParabolaOf8 => fir(&PARABOLA_OF_8),
            Predictor::CubicOf12 => fir(&CUBIC_OF_12),
            Predictor::QuarticOf20 => fir(&QUARTIC_OF_20),
            _ => None,
        };
        if let Some(guess) = smoothed {
            return guess;
        }
        // Quadratic and linear extrapolation; also what a smoothing predictor falls back to
        // while the history is shorter than its window.
        let quadratic = matches!(
            self,
            Predictor::Quadratic
                | Predictor::ParabolaOf8
                | Predictor::CubicOf12
                | Predictor::QuarticOf20
        );
        let linear = quadratic || matches!(self, Predictor::Linear | Predictor::LineOf3);
        match seen {
            [.., c, b, a] if quadratic => a.wrapping_sub(*b).wrapping_mul(3).wrapping_add(*c),
            [.., b, a] if linear => a.wrapping_mul(2).wrapping_sub(*b),
            [.., a] => *a,
            [] => 0,
        }
    }
}

/// Coefficients, oldest value first and scaled by 2^FIR_SHIFT, of the least-squares polynomial
/// of `degree` (≤ 4) through `W` equally spaced values, evaluated one step after the last.
/// They sum to exactly 2^FIR_SHIFT, so a constant column is predicted exactly.
const fn extrapolator<const W: usize>(degree: usize) -> [i64; W] {
    // Positions centred on the window (t = i − (W−1)/2) keep the normal equations well
    // conditioned; the prediction is the fitted polynomial at t = (W+1)/2.
    let m = degree + 1;
    let centre = (W as f64 - 1.0) / 2.0;
    let mut normal = [[0.0f64; 5]; 5];
    let mut inverse = [[0.0f64; 5]; 5];
    let mut i = 0;
    while i < W {
        let t = i as f64 - centre;
        let (mut a, mut ta) = (0, 1.0);
        while a < m {
            let (mut b, mut tb) = (0, 1.0);
            while b < m {
                normal[a][b] += ta * tb;
                tb *= t;
                b += 1;
            }
            ta *= t;
            a += 1;
        }
        i += 1;
    }
    let mut d = 0;
    while d < m {
        inverse[d][d] = 1.0;
        d += 1;
    }
    // Gauss–Jordan without pivoting: the matrix is symmetric positive definite.
    let mut c = 0;
    while c < m {
        let pivot = normal[c][c];
        let mut j = 0;
        while j < m {
            normal[c][j] /= pivot;
            inverse[c][j] /= pivot;
            j += 1;
        }
        let mut r = 0;
        while r < m {
            if r != c {
                let f = normal[r][c];
                let mut j = 0;
                while j < m {
                    normal[r][j] -= f * normal[c][j];
                    inverse[r][j] -= f * inverse[c][j];
                    j += 1;
                }
            }
            r += 1;
        }
        c += 1;
    }
    // Powers of the position predicted.
    let target = (W as f64 + 1.0) / 2.0;
    let mut target_powers = [0.0f64; 5];
    let (mut j, mut p) = (0, 1.0);
    while j < m {
        target_powers[j] = p;
        p *= target;
        j += 1;
    }
    let scale = (1u64 << FIR_SHIFT) as f64;
    let mut out = [0i64; W];
    let mut sum = 0i64;
    let mut i = 0;
    while i < W {
        let t = i as f64 - centre;
        // Coefficient i = Σ_j Σ_l target^j · inverse[j][l] · t_i^l.
        let mut coefficient = 0.0;
        let mut j = 0;
        while j < m {
            let (mut l, mut tl) = (0, 1.0);
            while l < m {
                coefficient += target_powers[j] * inverse[j][l] * tl;
                tl *= t;
                l += 1;
            }
            j += 1;
        }
        let scaled = coefficient * scale;
        out[i] = if scaled < 0.0 {
            (scaled - 0.5) as i64
        } else {
            (scaled + 0.5) as i64
        };
        sum += out[i];
        i += 1;
    }
    out[W - 1] += (1i64 << FIR_SHIFT) - sum;
    out
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
    fn the_line_of_3_is_the_least_squares_fit_in_fixed_point() {
        // Line through t = −1, 0, 1 evaluated at t = 2: −2/3·x₁ + 1/3·x₂ + 4/3·x₃, times 2^20
        // (rounded; the last absorbs the rounding so the sum is exactly 2^20).
        assert_eq!(LINE_OF_3, [-699051, 349525, 1398102]);
    }

    #[test]
    fn each_smoothing_predictor_extrapolates_its_degree_to_within_one() {
        let cases: [(Predictor, u32); 4] = [
            (Predictor::LineOf3, 1),
            (Predictor::ParabolaOf8, 2),
            (Predictor::CubicOf12, 3),
            (Predictor::QuarticOf20, 4),
        ];
        for (p, degree) in cases {
            // A polynomial of exactly that degree, with values of int16 size.
            let ks: Vec<i64> = (0..60i64)
                .map(|t| (0..=degree).fold(0i64, |acc, _| acc * (t - 30) + 2))
                .collect();
            let (_, residuals) = p.encode(&ks);
            let tail = &residuals[25..];
            assert!(tail.iter().all(|r| r.abs() <= 1), "{p:?}: {tail:?}");
            // A polynomial one degree higher is not predicted exactly: the test can fail.
            let cubic_more: Vec<i64> = ks
                .iter()
                .zip(0i64..)
                .map(|(k, t)| k + t.pow(degree + 1))
                .collect();
            let (_, off) = p.encode(&cubic_more);
            assert!(
                off[25..].iter().any(|r| r.abs() > 1),
                "{p:?} predicted degree {}",
                degree + 1
            );
        }
    }

    /// The coefficients are part of the on-disk format: computed at compile time, they must
    /// come out the same from every compiler, forever.
    #[test]
    fn smoothing_coefficients_are_pinned() {
        assert_eq!(
            PARABOLA_OF_8,
            [
                393216, -56174, -318318, -393216, -280869, 18725, 505563, 1179649
            ]
        );
        assert_eq!(
            CUBIC_OF_12,
            [
                -349525, 127100, 317750, 296567, 137692, -84733, -296567, -423667, -391892,
                -127100, 444850, 1398101
            ]
        );
        assert_eq!(
            QUARTIC_OF_20,
            [
                262144, -68985, -206956, -212366, -137294, -25295, 88599, 177874, 224540, 219130,
                160695, 56811, -76425, -214395, -323960, -363458, -282704, -22995, 482897, 1310719
            ]
        );
    }

    #[test]
    fn smoothing_coefficients_sum_to_one() {
        for sum in [
            LINE_OF_3.iter().sum::<i64>(),
            PARABOLA_OF_8.iter().sum(),
            CUBIC_OF_12.iter().sum(),
            QUARTIC_OF_20.iter().sum(),
        ] {
            assert_eq!(sum, 1 << FIR_SHIFT);
        }
    }

    #[test]
    fn the_mean_rounds_half_away_from_zero() {
        assert_eq!(rounded_mean(&[1, 2]), 2);
        assert_eq!(rounded_mean(&[-1, -2]), -2);
        assert_eq!(rounded_mean(&[i64::MAX, i64::MAX]), i64::MAX);
    }

    proptest! {
        #[test]
        fn every_predictor_round_trips(ks in proptest::collection::vec(any::<i64>(), 1..64), code in 0u8..8) {
            let p = Predictor::from_code(code).expect("valid code");
            let (anchor, residuals) = p.encode(&ks);
            prop_assert_eq!(residuals.len(), p.residual_count(ks.len()));
            prop_assert_eq!(p.decode(anchor, &residuals), ks);
        }
    }
}
