//! The compact form's body, second layout (tag 4): every column bit-packed into one stream,
//! predicted by the best of eight [`Predictor`]s and Rice-coded in up to four partitions.
//!
//! Exists because a 100-sample compact batch is small enough that fixed costs count against the
//! ≤ 3 bytes per 6-axis sample target: the first layout (tag 1) spends an f64 on the rate, a
//! byte each on column kind, scale and predictor, and Rice parameter, and pads every column to
//! a byte. Here the rate is a varint, a column's header is 17 bits plus its anchor and 5 bits
//! per run, and only the body's end is padded: 0.14 B per sample less on a node at rest. The
//! smoothing predictors cut a swing's residuals by about a fifth; partitions let the quiet
//! lead-in and the violent middle of a swing each get their own Rice parameter (0.62–0.84 B per
//! sample less in swings, both together).
//!
//! ```text
//! 0x04 | sensor_id varint | t0 zz-varint | rate varint (2n: exactly n Hz; 1: an f64 follows)
//!      | channels u8 | rows·2 + layout varint (layout 1: `channels` columns of `rows` values;
//!        0: one flat column of `rows` values, for a sample count that is not rows × channels)
//!      | bits, MSB first, padded with zeros to a byte at the end; per column:
//!        scale 5 | predictor 3 | anchor length n 7 | anchor's zigzag n
//!        | partition order 2 (the residuals split into 2^order runs, run j starting at j·m/2^order)
//!        | per run: Rice parameter 5, then its residuals' Rice codes ([`super::rice::rice_encode`])
//! ```
//! Used only when every column is whole multiples of one of the [`super::column::SCALES`]; a batch with
//! any other column is written in the first layout, whose float mode stores anything.

use super::CodecError;
use super::column::{SCALES, integer_column};
use super::compact::{compact_columns, interleave};
use super::reader::{BitReader, Reader};
use super::rice::{BitWriter, rice_cost, zigzagged};
use crate::batch::CompactBatch;
use crate::journal::predict::Predictor;
use crate::journal::varint::{put_varint, put_zz, unzigzag, zigzag};

/// The body tag of this layout.
pub(super) const PACKED_COMPACT: u8 = 4;

const SCALE_BITS: u32 = 5;
const PREDICTOR_BITS: u32 = 3;
const ANCHOR_LENGTH_BITS: u32 = 7;
const PARTITION_ORDER_BITS: u32 = 2;
const RICE_K_BITS: u32 = 5;
/// Largest partition order the encoder uses (4 runs); the decoder accepts all four orders.
const MAX_PARTITION_ORDER: u32 = 2;
const _: () = assert!(
    SCALES.len() <= 1 << SCALE_BITS,
    "scale index fits its field"
);

/// Writes `c` in the packed layout, or returns false (writing nothing) when a column is not
/// integer-valued at any scale.
pub(super) fn encode_packed(c: &CompactBatch, out: &mut Vec<u8>) -> bool {
    let (layered, rows, columns) = compact_columns(c);
    let Some(integer_columns) = columns
        .iter()
        .map(|values| integer_column(values))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    out.push(PACKED_COMPACT);
    put_varint(out, u64::from(c.sensor_id));
    put_zz(out, c.t0);
    put_rate(out, c.rate_hz);
    out.push(c.channels);
    put_varint(out, ((rows as u64) << 1) | u64::from(layered));
    let mut bits = BitWriter::default();
    for (scale, ks) in &integer_columns {
        encode_column(*scale, ks, &mut bits);
    }
    bits.finish(out);
    true
}

fn put_rate(out: &mut Vec<u8>, rate_hz: f64) {
    // Whole rates below 2^53 are exact as integers; `-0.0` and fractions take the f64 path.
    let whole = rate_hz.fract() == 0.0
        && (0.0..9e15).contains(&rate_hz)
        && rate_hz.to_bits() != (-0.0f64).to_bits();
    if whole {
        put_varint(out, (rate_hz as u64) << 1);
    } else {
        put_varint(out, 1);
        out.extend_from_slice(&rate_hz.to_le_bytes());
    }
}

fn encode_column(scale: usize, ks: &[i64], bits: &mut BitWriter) {
    let (predictor, anchor, residuals) = choose_predictor(ks);
    bits.put(scale as u64, SCALE_BITS);
    bits.put(predictor as u64, PREDICTOR_BITS);
    let anchor = zigzag(anchor);
    let anchor_len = 64 - anchor.leading_zeros();
    bits.put(u64::from(anchor_len), ANCHOR_LENGTH_BITS);
    bits.put(anchor, anchor_len);
    let us = zigzagged(&residuals);
    let (order, ks) = partition(&us);
    bits.put(u64::from(order), PARTITION_ORDER_BITS);
    for (run, k) in runs(&us, order).zip(ks) {
        bits.put(u64::from(k), RICE_K_BITS);
        bits.rice_codes(run, k);
    }
}

/// The predictor whose residuals are smallest in sum (the Rice cost at the best parameter is
/// n·(k + 1) + Σu / 2^k with 2^k near the mean, so it grows with the sum; summing is much
/// cheaper than costing every parameter). The smoothing predictors are only tried when the
/// column is not noise around a level (the mean wins there, and they cost ten times the
/// arithmetic of the others).
pub(super) fn choose_predictor(ks: &[i64]) -> (Predictor, i64, Vec<i64>) {
    if ks.is_empty() {
        return (Predictor::Mean, 0, Vec::new());
    }
    let candidate = |p: Predictor| {
        let (anchor, residuals) = p.encode(ks);
        let size = residuals
            .iter()
            .fold(0u64, |sum, &r| sum.saturating_add(zigzag(r)));
        (size, p, anchor, residuals)
    };
    let classic = Predictor::CLASSIC.into_iter().map(candidate);
    let best_classic = classic.min_by_key(|c| c.0);
    let best = match best_classic {
        Some(c) if c.1 != Predictor::Mean => Predictor::SMOOTHING
            .into_iter()
            .map(candidate)
            .chain([c])
            .min_by_key(|c| c.0),
        other => other,
    };
    // CLASSIC is not empty, so there is a best.
    best.map_or((Predictor::Mean, 0, Vec::new()), |(_, p, a, r)| (p, a, r))
}

/// Largest Rice parameter the 5-bit field carries.
const MAX_K: u32 = (1 << RICE_K_BITS) - 1;

/// The partition order (0 ..= MAX_PARTITION_ORDER) whose runs, each with its own parameter,
/// cost the fewest bits, and those parameters.
fn partition(us: &[u64]) -> (u32, Vec<u32>) {
    (0..=MAX_PARTITION_ORDER)
        .map(|order| {
            let costed: Vec<(u32, u64)> =
                runs(us, order).map(|run| rice_cost(run, MAX_K)).collect();
            let bits: u64 = costed
                .iter()
                .map(|&(_, c)| u64::from(RICE_K_BITS) + c)
                .sum();
            (bits, order, costed.into_iter().map(|(k, _)| k).collect())
        })
        .min_by_key(|c| c.0)
        .map_or((0, Vec::new()), |(_, order, ks)| (order, ks))
}

/// The 2^order runs of `xs`, run j starting at j·len/2^order (some may be empty).
fn runs<T>(xs: &[T], order: u32) -> impl Iterator<Item = &[T]> {
    let parts = 1usize << order;
    (0..parts).map(move |j| &xs[j * xs.len() / parts..(j + 1) * xs.len() / parts])
}

/// Reads a packed compact body after its tag.
pub(super) fn decode_packed(r: &mut Reader) -> Result<CompactBatch, CodecError> {
    let sensor_id = u32::try_from(r.varint()?).map_err(|_| r.malformed("sensor_id"))?;
    let t0 = r.zz()?;
    let rate_hz = match r.varint()? {
        1 => f64::from_le_bytes(r.array::<8>()?),
        n if n % 2 == 0 => (n >> 1) as f64,
        _ => return Err(r.malformed("rate")),
    };
    let channels = r.u8()?;
    let rows_layout = r.varint()?;
    let (rows, layered) = ((rows_layout >> 1) as usize, rows_layout & 1 == 1);
    let ch = usize::from(channels);
    let column_count = if layered { ch } else { 1 };
    // Every value takes at least one bit, so more values than bits left is corrupt (and must
    // not size an allocation).
    let remaining_bits = (r.buf.len() - r.pos).saturating_mul(8);
    if (layered && ch == 0)
        || rows
            .checked_mul(column_count)
            .is_none_or(|n| n > remaining_bits)
    {
        return Err(r.malformed("rows × channels"));
    }
    let mut bits = BitReader {
        buf: r.buf,
        bit: r.pos * 8,
    };
    let mut samples = vec![0f32; rows * column_count];
    for k in 0..column_count {
        interleave(
            &mut samples,
            k,
            column_count,
            decode_column(&mut bits, rows)?,
        );
    }
    r.pos = bits.bit.div_ceil(8);
    Ok(CompactBatch {
        sensor_id,
        t0,
        rate_hz,
        channels,
        samples,
    })
}

fn decode_column(bits: &mut BitReader, n: usize) -> Result<Vec<f32>, CodecError> {
    let scale = *SCALES
        .get(bits.bits(SCALE_BITS)? as usize)
        .ok_or_else(|| bits.malformed("column scale"))?;
    let predictor = Predictor::from_code(bits.bits(PREDICTOR_BITS)? as u8)
        .ok_or_else(|| bits.malformed("column predictor"))?;
    let anchor_len = bits.bits(ANCHOR_LENGTH_BITS)? as u32;
    if anchor_len > 64 {
        return Err(bits.malformed("anchor length"));
    }
    let anchor = bits.bits(anchor_len)?;
    let anchor = unzigzag(anchor);
    let order = bits.bits(PARTITION_ORDER_BITS)? as u32;
    let count = predictor.residual_count(n);
    let mut residuals = Vec::with_capacity(count);
    let parts = 1usize << order;
    for j in 0..parts {
        let run = (j + 1) * count / parts - j * count / parts;
        let k = bits.bits(RICE_K_BITS)? as u32;
        bits.rice_values(k, run, &mut residuals)?;
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let ks = predictor.decode(anchor, &residuals);
    Ok(ks.into_iter().map(|k| scale.apply(k)).collect())
}

impl BitReader<'_> {
    fn malformed(&self, what: &'static str) -> CodecError {
        CodecError::Malformed {
            at: self.bit / 8,
            what,
        }
    }
}
