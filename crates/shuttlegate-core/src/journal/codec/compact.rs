//! The compact form, first layout (tag 1), and the column split both compact layouts share
//! (`mod.rs` chooses the packed layout when it applies).

use super::column::encode_column;
use super::reader::Reader;
use super::{CodecError, Coding};
use crate::batch::CompactBatch;
use crate::journal::varint::{put_varint, put_zz};

/// The first compact layout (tag 1): a column kind per column, any of them a float column.
pub(super) fn encode_compact_columns(c: &CompactBatch, out: &mut Vec<u8>, coding: Coding) {
    out.push(1);
    put_varint(out, u64::from(c.sensor_id));
    put_zz(out, c.t0);
    out.extend_from_slice(&c.rate_hz.to_le_bytes());
    out.push(c.channels);
    let (layered, rows, columns) = compact_columns(c);
    out.push(u8::from(layered));
    put_varint(out, rows as u64);
    for column in &columns {
        encode_column(column, out, coding);
    }
}

/// A compact batch's columns, for both compact layouts: `channels` columns of `rows` values
/// (true), or, for a sample count that is not rows × channels (or no channels), every sample
/// in one flat column (false), so nothing the device sent is lost.
pub(super) fn compact_columns(c: &CompactBatch) -> (bool, usize, Vec<Vec<f32>>) {
    let ch = usize::from(c.channels);
    if ch == 0 || !c.samples.len().is_multiple_of(ch) {
        return (false, c.samples.len(), vec![c.samples.clone()]);
    }
    let rows = c.samples.len() / ch;
    let column = |k: usize| (0..rows).map(|i| c.samples[i * ch + k]).collect();
    (true, rows, (0..ch).map(column).collect())
}

pub(super) fn decode_compact(r: &mut Reader) -> Result<CompactBatch, CodecError> {
    let sensor_id = u32::try_from(r.varint()?).map_err(|_| r.malformed("sensor_id"))?;
    let t0 = r.zz()?;
    let rate_hz = f64::from_le_bytes(r.array::<8>()?);
    let channels = r.u8()?;
    let layout = r.u8()?;
    let ch = usize::from(channels);
    let samples = match layout {
        0 => {
            let n = r.count()?;
            r.column(n)?
        }
        1 => {
            let rows = r.count()?;
            // Every value takes at least one bit (Rice-coded zero), so a count beyond 8× what
            // remains is corrupt (and must not size an allocation).
            if ch == 0
                || rows
                    .checked_mul(ch)
                    .is_none_or(|n| n > (r.buf.len() - r.pos) * 8)
            {
                return Err(r.malformed("rows × channels"));
            }
            let mut samples = vec![0f32; rows * ch];
            for k in 0..ch {
                interleave(&mut samples, k, ch, r.column(rows)?);
            }
            samples
        }
        _ => return Err(r.malformed("compact layout")),
    };
    Ok(CompactBatch {
        sensor_id,
        t0,
        rate_hz,
        channels,
        samples,
    })
}

/// Puts column `k` of a batch with `ch` columns into its row-major samples.
pub(super) fn interleave(samples: &mut [f32], k: usize, ch: usize, column: Vec<f32>) {
    for (i, v) in column.into_iter().enumerate() {
        samples[i * ch + k] = v;
    }
}
