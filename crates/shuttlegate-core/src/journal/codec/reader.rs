//! Primitive readers: bytes (varints, zigzag, bounded counts) and bits, MSB first.

use super::CodecError;
use crate::journal::varint::unzigzag;

pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl Reader<'_> {
    pub(super) fn malformed(&self, what: &'static str) -> CodecError {
        CodecError::Malformed { at: self.pos, what }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(CodecError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(super) fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    pub(super) fn zz(&mut self) -> Result<i64, CodecError> {
        let u = self.varint()?;
        Ok(unzigzag(u))
    }

    /// A count of items that each take at least one bit of what remains (bounds allocations).
    pub(super) fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.varint()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if n > remaining.saturating_mul(8) {
            return Err(self.malformed("count larger than the body"));
        }
        Ok(n as usize)
    }
}

/// MSB-first bit reading for [`Reader::rice_decode`].
pub(super) struct BitReader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) bit: usize,
}

impl BitReader<'_> {
    pub(super) fn bit(&mut self) -> Result<bool, CodecError> {
        let byte = *self
            .buf
            .get(self.bit / 8)
            .ok_or(CodecError::Truncated(self.bit / 8))?;
        let b = byte >> (7 - self.bit % 8) & 1 == 1;
        self.bit += 1;
        Ok(b)
    }

    pub(super) fn bits(&mut self, n: u32) -> Result<u64, CodecError> {
        (0..n).try_fold(0u64, |acc, _| Ok((acc << 1) | u64::from(self.bit()?)))
    }
}
