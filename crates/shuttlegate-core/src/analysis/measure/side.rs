//! Which face met the shuttle: forehand or backhand, from the sense the racket turns in.
//!
//! The head moves along ω × x̂ (x the shaft), whose component along the forehand face's
//! normal z is −ω_y: a forehand turns about −y. At contact the gyro says so directly —
//! unless the node's gyro wrapped in the swing and the wrap was left in place (a ±250 or
//! ±1000 °/s part at 100 Hz, whose rails a real swing crosses between two samples, so the
//! conditioning stage cannot tell a wrap from a turn, `condition/wrap.rs`). A wrapped reading
//! is the true one less a whole range: past full scale it reads the *opposite* sign, so the
//! sample at contact can say backhand for a forehand. The rising flank before the first wrap
//! still turns the way the drive does (the racket accelerates about one axis into contact),
//! so there the sense is read from it.

use super::super::vecmath::Vec3;
use super::Side;

/// A change of more than this share of full scale between two samples on one gyro axis is a
/// wrap's jump, not a turn (a wrap jumps by nearly two ranges; the conditioning stage's own
/// entry test is 1.5 ranges, so this also catches a wrap it found and left).
const WRAP_JUMP_SHARE: f64 = 1.0;

/// The side from the head's direction at contact (`head_z`: its component along the face
/// normal), or, when a wrap was left in the window (`wraps_left`), from the swing's samples
/// `from..=contact` up to the first wrap's jump on a ±`full_scale_dps` gyro.
pub(super) fn read(
    head_z: f64,
    wraps_left: bool,
    gyro: &[Vec3],
    from: usize,
    contact: usize,
    full_scale_dps: f64,
) -> Side {
    let sense = if wraps_left {
        flank_sense(gyro, from, contact, full_scale_dps).unwrap_or(head_z)
    } else {
        head_z
    };
    if sense >= 0.0 {
        Side::Forehand
    } else {
        Side::Backhand
    }
}

/// Σ −ω_y over `from..=to` until the first sample that jumps by a wrap's size from the one
/// before; `None` when no sample precedes the jump or the sum is nil.
fn flank_sense(gyro: &[Vec3], from: usize, to: usize, full_scale_dps: f64) -> Option<f64> {
    let jump = WRAP_JUMP_SHARE * full_scale_dps;
    let mut sum = 0.0;
    for i in from..=to.min(gyro.len().saturating_sub(1)) {
        let wrapped = i > 0 && (0..3).any(|k| (gyro[i][k] - gyro[i - 1][k]).abs() > jump);
        if wrapped {
            break;
        }
        sum -= gyro[i][1];
    }
    (sum != 0.0).then_some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forehand (turning about −y) on a ±1000 °/s gyro whose y wraps past −1000 °/s: the
    /// contact sample reads +600 °/s (a backhand's sign), the flank before the wrap −900.
    #[test]
    fn a_forehand_read_through_a_wrap_left_in_place_is_a_forehand() {
        let fs = 1000.0;
        let ys = [-100.0, -400.0, -900.0, 600.0, 200.0];
        let gyro: Vec<Vec3> = ys.iter().map(|&y| [0.0, y, 50.0]).collect();
        // At contact (index 3) the head seems to move against the face normal.
        let head_z = -gyro[3][1];
        assert_eq!(read(head_z, false, &gyro, 0, 3, fs), Side::Backhand);
        assert_eq!(read(head_z, true, &gyro, 0, 3, fs), Side::Forehand);
    }

    #[test]
    fn without_a_clean_flank_the_contact_sample_decides() {
        let gyro: Vec<Vec3> = vec![[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]];
        assert_eq!(read(-0.5, true, &gyro, 0, 1, 1000.0), Side::Backhand);
        assert_eq!(read(0.5, true, &gyro, 0, 1, 1000.0), Side::Forehand);
    }
}
