//! One column of values: the scales integer columns are found at, the column kinds (float,
//! integer varints, Rice, predicted) and their decoding.

use super::reader::Reader;
use super::rice::{RICE_MAX_K, rice_cost, rice_encode, zigzagged};
use super::{CodecError, Coding};
use crate::journal::predict::Predictor;
use crate::journal::varint::{put_zz, zigzag};

/// How an integer column maps back to f32.
#[derive(Clone, Copy)]
pub(super) enum Scale {
    Mul(f32),
    Div(f32),
}

impl Scale {
    pub(super) fn apply(self, k: i64) -> f32 {
        match self {
            Scale::Mul(c) => (k as f32) * c,
            Scale::Div(c) => (k as f32) / c,
        }
    }

    fn integer_of(self, v: f32) -> Option<i64> {
        let k = match self {
            Scale::Mul(c) => (f64::from(v) / f64::from(c)).round(),
            Scale::Div(c) => (f64::from(v) * f64::from(c)).round(),
        };
        // |k| ≤ 2^24 keeps `k as f32` exact, so the decoder recomputes the same value.
        if !k.is_finite() || k.abs() > 16_777_216.0 {
            return None;
        }
        let k = k as i64;
        (self.apply(k).to_bits() == v.to_bits()).then_some(k)
    }
}

/// Resolutions tried, coarsest first: decimal fixed points (JSON printed with N decimals) and
/// the usual MEMS full-scale conversions (counts / LSB-per-unit, counts × range/32768). Part of
/// the on-disk format: entries are referred to by index, so only append to this list.
pub(super) const SCALES: &[Scale] = &[
    Scale::Div(1.0),
    Scale::Mul(2000.0 / 32768.0),
    Scale::Div(10.0),
    Scale::Div(16.4),
    Scale::Mul(1000.0 / 32768.0),
    Scale::Div(32.8),
    Scale::Mul(500.0 / 32768.0),
    Scale::Mul(180.0 / 32768.0),
    Scale::Div(65.5),
    Scale::Mul(250.0 / 32768.0),
    Scale::Div(100.0),
    Scale::Div(131.0),
    Scale::Div(1000.0),
    Scale::Div(2048.0),
    Scale::Div(4096.0),
    Scale::Div(8192.0),
    Scale::Div(10000.0),
    Scale::Div(16384.0),
    Scale::Div(32768.0),
    Scale::Div(100000.0),
    Scale::Div(1000000.0),
];

pub(super) fn integers_at(values: &[f32], scale: Scale) -> Option<Vec<i64>> {
    values.iter().map(|&v| scale.integer_of(v)).collect()
}

/// The scale index and integers of a column, at the coarsest scale that holds it exactly.
pub(super) fn integer_column(values: &[f32]) -> Option<(usize, Vec<i64>)> {
    SCALES
        .iter()
        .enumerate()
        .find_map(|(index, &scale)| Some((index, integers_at(values, scale)?)))
}

pub(super) fn encode_column(values: &[f32], out: &mut Vec<u8>, coding: Coding) {
    if values.is_empty() {
        out.push(0);
        return;
    }
    if let Some((index, ks)) = integer_column(values) {
        encode_integers(index, &ks, out, coding);
        return;
    }
    out.push(0);
    let mut prev = 0u32;
    let xored: Vec<u32> = values
        .iter()
        .map(|v| {
            let x = v.to_bits() ^ prev;
            prev = v.to_bits();
            x
        })
        .collect();
    for plane in (0..4).rev() {
        out.extend(xored.iter().map(|x| (x >> (plane * 8)) as u8));
    }
}

/// Writes the integers `ks` of a column whose values are `SCALES[index]` applied to them.
fn encode_integers(index: usize, ks: &[i64], out: &mut Vec<u8>, coding: Coding) {
    // SCALES has < 42 entries, so every header below stays in its range.
    let index = index as u8;
    match coding {
        Coding::Varints => {
            let (order, ds) = integer_differences(ks);
            out.push(1 + index * 3 + order);
            for d in ds {
                put_zz(out, d);
            }
        }
        Coding::Rice => {
            let (order, ds) = integer_differences(ks);
            out.push(RICE_COLUMN + index * 3 + order);
            put_zz(out, ds[0]);
            rice_encode(&ds[1..], out);
        }
        Coding::Predicted | Coding::Grouped => {
            let (predictor, anchors, residuals) = best_prediction(&[ks]);
            out.push(PREDICTED_COLUMN);
            out.push(index * 4 + predictor as u8);
            // One anchor: `ks` is not empty.
            for anchor in anchors {
                put_zz(out, anchor);
            }
            rice_encode(&residuals, out);
        }
    }
}

/// The predictor whose residuals Rice-code shortest over `columns` together (one column, or a
/// seed channel's column per node), with an anchor per non-empty column and every column's
/// residuals in order.
pub(super) fn best_prediction(columns: &[&[i64]]) -> (Predictor, Vec<i64>, Vec<i64>) {
    Predictor::CLASSIC
        .into_iter()
        .map(|p| {
            let (anchors, residuals): (Vec<i64>, Vec<Vec<i64>>) = columns
                .iter()
                .filter(|ks| !ks.is_empty())
                .map(|ks| p.encode(ks))
                .unzip();
            let residuals = residuals.concat();
            let cost = rice_cost(&zigzagged(&residuals), RICE_MAX_K).1
                + anchors.iter().map(|&a| zz_len(a)).sum::<u64>();
            (cost, p, anchors, residuals)
        })
        .min_by_key(|c| c.0)
        .map(|(_, p, anchors, residuals)| (p, anchors, residuals))
        .unwrap_or((Predictor::Previous, Vec::new(), Vec::new()))
}

/// Bits of `v` as a zz-varint.
fn zz_len(v: i64) -> u64 {
    let significant = 64 - u64::from(zigzag(v).leading_zeros());
    8 * significant.div_ceil(7).max(1)
}

/// Chooses how to write the integers: offsets from the first (order 0: noise around a level), first
/// differences (order 1) or second differences (order 2: smooth motion), whichever has the
/// fewest significant bits in total (a proxy for what zstd will make of them).
fn integer_differences(ks: &[i64]) -> (u8, Vec<i64>) {
    let base = ks[0];
    let zero: Vec<i64> = std::iter::once(base)
        .chain(ks[1..].iter().map(|k| k.wrapping_sub(base)))
        .collect();
    let first: Vec<i64> = differences(ks);
    let second: Vec<i64> = differences(&first);
    let bits = |d: &[i64]| {
        d.iter()
            .skip(1)
            .map(|x| 64 - zigzag(*x).leading_zeros())
            .sum::<u32>()
    };
    [(0u8, zero), (1, first), (2, second)]
        .into_iter()
        .min_by_key(|(_, d)| bits(d))
        .unwrap_or_else(|| (1, Vec::new()))
}

/// Column headers from this value on are Rice-coded integer columns (below: zz-varints).
const RICE_COLUMN: u8 = 128;
/// Column header of a [`Coding::Predicted`] column: one byte `scale index × 4 + predictor`, the
/// anchor as a zz-varint, then the residuals Rice-coded. (Headers 1..=126 and 128..=253 are
/// the older varint and Rice columns, still read.)
pub(super) const PREDICTED_COLUMN: u8 = 254;
const _: () = assert!(SCALES.len() <= 42, "column headers pack the scale index");

fn differences(xs: &[i64]) -> Vec<i64> {
    let mut prev = 0i64;
    xs.iter()
        .map(|&x| {
            let d = x.wrapping_sub(prev);
            prev = x;
            d
        })
        .collect()
}

fn integrate(ds: &mut [i64]) {
    let mut acc = 0i64;
    for d in ds.iter_mut() {
        acc = acc.wrapping_add(*d);
        *d = acc;
    }
}

impl Reader<'_> {
    /// The byte `scale index × 4 + predictor` of predicted columns and shared seed channels.
    pub(super) fn scale_and_predictor(&mut self) -> Result<(Scale, Predictor), CodecError> {
        let packed = self.u8()?;
        let scale = *SCALES
            .get(usize::from(packed / 4))
            .ok_or_else(|| self.malformed("column scale"))?;
        // Two bits: one of the classic predictors, always valid.
        let predictor =
            Predictor::from_code(packed % 4).ok_or_else(|| self.malformed("column predictor"))?;
        Ok((scale, predictor))
    }

    pub(super) fn column(&mut self, n: usize) -> Result<Vec<f32>, CodecError> {
        let mode = self.u8()?;
        if n == 0 {
            return if mode == 0 {
                Ok(Vec::new())
            } else {
                Err(self.malformed("empty column with a scale"))
            };
        }
        match mode {
            0 => {
                let planes = self.take(n.checked_mul(4).ok_or(CodecError::Truncated(self.pos))?)?;
                let mut prev = 0u32;
                Ok((0..n)
                    .map(|i| {
                        let x = (0..4).fold(0u32, |acc, p| {
                            acc | (u32::from(planes[(3 - p) * n + i]) << (p * 8))
                        });
                        prev ^= x;
                        f32::from_bits(prev)
                    })
                    .collect())
            }
            PREDICTED_COLUMN => {
                let (scale, predictor) = self.scale_and_predictor()?;
                let anchor = self.zz()?;
                let mut residuals = Vec::with_capacity(n);
                self.rice_decode(predictor.residual_count(n), &mut residuals)?;
                let ks = predictor.decode(anchor, &residuals);
                Ok(ks.into_iter().map(|k| scale.apply(k)).collect())
            }
            header => {
                let rice = header >= RICE_COLUMN;
                let code = if rice {
                    header - RICE_COLUMN
                } else {
                    header - 1
                };
                let index = usize::from(code) / 3;
                let order = code % 3;
                let scale = *SCALES
                    .get(index)
                    .ok_or_else(|| self.malformed("column scale"))?;
                let mut ks = if rice {
                    let first = self.zz()?;
                    let mut ks = vec![first];
                    self.rice_decode(n - 1, &mut ks)?;
                    ks
                } else {
                    (0..n).map(|_| self.zz()).collect::<Result<Vec<_>, _>>()?
                };
                if order == 0 {
                    let base = ks[0];
                    for k in &mut ks[1..] {
                        *k = k.wrapping_add(base);
                    }
                }
                for _ in 0..order {
                    integrate(&mut ks);
                }
                Ok(ks.into_iter().map(|k| scale.apply(k)).collect())
            }
        }
    }
}
