//! LEB128 varints and zigzag, as the record frame and the batch body codec both write them.
//!
//! Exists so the two layers share one definition of the encodings they have in common. The
//! readers stay with their layers: the frame's accepts only minimal encodings (a v2 frame must
//! re-encode to its own bytes), the codec's reports where a body went wrong.

/// Maps signed to unsigned so that small magnitudes of either sign stay small.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Undoes [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` as LEB128: 7 bits per byte, low groups first, the high bit set on all but the last.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzagged, as a varint.
pub fn put_zz(out: &mut Vec<u8>, v: i64) {
    put_varint(out, zigzag(v));
}

/// Bytes [`put_varint`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 still takes a byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn zigzag_round_trips_and_varints_take_their_length(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
            let mut out = Vec::new();
            put_zz(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(zigzag(v)));
        }
    }
}
