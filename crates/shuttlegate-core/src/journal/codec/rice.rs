//! Golomb-Rice codes of zigzagged residuals: the parameter choice, MSB-first bit packing and
//! decoding.

use super::CodecError;
use super::reader::{BitReader, Reader};
use crate::journal::varint::{unzigzag, zigzag};

/// A quotient this large is not written in unary: the value follows as 64 raw bits.
pub(super) const RICE_ESCAPE: u64 = 24;
/// Largest Rice parameter a column may carry.
pub(super) const RICE_MAX_K: u32 = 40;

/// Golomb-Rice code of zigzagged residuals with the best parameter for the column: within a few
/// percent of the entropy for the two-sided geometric residuals of sensor noise, with no tables
/// (zstd's tables cost a good part of a 100-sample body). Layout: k u8, then per value `q` zero
/// bits, a one bit and `k` low bits (or RICE_ESCAPE zero bits and 64 raw bits), padded to a byte.
pub(super) fn rice_encode(ds: &[i64], out: &mut Vec<u8>) {
    let us = zigzagged(ds);
    let (k, _) = rice_cost(&us, RICE_MAX_K);
    out.push(k as u8);
    let mut w = BitWriter::default();
    w.rice_codes(&us, k);
    w.finish(out);
}

pub(super) fn zigzagged(ds: &[i64]) -> Vec<u64> {
    ds.iter().map(|&d| zigzag(d)).collect()
}

/// The Rice parameter (≤ `max_k`) for `us` and the bits its codes take. The cost is convex in
/// `k` near its minimum, which lies within a step or two of log2 of the mean value, so only that
/// neighbourhood is searched (any `k` decodes; the search only affects size).
pub(super) fn rice_cost(us: &[u64], max_k: u32) -> (u32, u64) {
    let cost = |k: u32| -> u64 {
        us.iter()
            .map(|&u| match u >> k {
                q if q >= RICE_ESCAPE => RICE_ESCAPE + 64,
                q => q + 1 + u64::from(k),
            })
            .sum()
    };
    let mean = us.iter().map(|&u| u128::from(u)).sum::<u128>() / us.len().max(1) as u128;
    let guess = 128 - mean.leading_zeros();
    (guess.saturating_sub(2).min(max_k)..=(guess + 1).min(max_k))
        .map(|k| (k, cost(k)))
        .min_by_key(|&(_, c)| c)
        .unwrap_or((0, 0))
}

/// MSB-first bit packing for [`rice_encode`].
#[derive(Default)]
pub(super) struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    /// Writes the low `n` bits of `v`, most significant first (n ≤ 64).
    pub(super) fn put(&mut self, v: u64, n: u32) {
        if n > 32 {
            self.put_small(v >> 32, n - 32);
            self.put_small(v, 32);
        } else {
            self.put_small(v, n);
        }
    }

    /// n ≤ 32: with at most 7 bits pending, the accumulator never needs more than 39.
    fn put_small(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | (v & ((1u64 << n) - 1));
        self.bits += n;
        while self.bits >= 8 {
            self.bits -= 8;
            self.bytes.push((self.acc >> self.bits) as u8);
        }
    }

    /// Golomb-Rice codes of `us` with parameter `k`: per value `q = u >> k` zero bits, a one
    /// bit and the `k` low bits, or RICE_ESCAPE zero bits and the 64 raw bits when q is that
    /// large.
    pub(super) fn rice_codes(&mut self, us: &[u64], k: u32) {
        for &u in us {
            match u >> k {
                q if q >= RICE_ESCAPE => {
                    self.put(0, RICE_ESCAPE as u32);
                    self.put(u >> 32, 32);
                    self.put(u & 0xffff_ffff, 32);
                }
                q => {
                    self.put(1, q as u32 + 1);
                    self.put(u & ((1u64 << k) - 1), k);
                }
            }
        }
    }

    pub(super) fn finish(mut self, out: &mut Vec<u8>) {
        if self.bits > 0 {
            self.bytes.push((self.acc << (8 - self.bits)) as u8);
        }
        out.extend_from_slice(&self.bytes);
    }
}

impl Reader<'_> {
    /// Reads `n` Rice-coded values (see [`rice_encode`]) into `out`, then skips the padding.
    pub(super) fn rice_decode(&mut self, n: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
        let k = u32::from(self.u8()?);
        if k > RICE_MAX_K {
            return Err(self.malformed("rice parameter"));
        }
        let mut bits = BitReader {
            buf: self.buf,
            bit: self.pos * 8,
        };
        bits.rice_values(k, n, out)?;
        self.pos = bits.bit.div_ceil(8);
        Ok(())
    }
}

impl BitReader<'_> {
    /// Reads `n` Rice codes of parameter `k` (see [`BitWriter::rice_codes`]) as signed values.
    pub(super) fn rice_values(
        &mut self,
        k: u32,
        n: usize,
        out: &mut Vec<i64>,
    ) -> Result<(), CodecError> {
        for _ in 0..n {
            let mut q = 0u64;
            while q < RICE_ESCAPE && !self.bit()? {
                q += 1;
            }
            let u = if q == RICE_ESCAPE {
                (self.bits(32)? << 32) | self.bits(32)?
            } else {
                (q << k) | self.bits(k)?
            };
            out.push(unzigzag(u));
        }
        Ok(())
    }
}
