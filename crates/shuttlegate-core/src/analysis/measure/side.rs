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
//! so there the sense is read from it — from its fastest clean sample, the one just short of
//! the rail, not from the flank's sum: the swing's window can open on a backswing, which
//! turns the other way, more slowly but for longer, and outweighs the short clean part of the
//! drive in a sum (side21: on the tuning seeds the ±1000 °/s aligned racket nodes at 100 Hz
//! read 69–77 % right from the sum, 83–94 % from the fastest sample).
//!
//! A wrist or forearm node standing in for the racket, mounted turned on the arm and read as
//! made, has its own −y anywhere: its −ω_y says nothing of the side. The conditioning stage
//! infers the axis its forehands turn about from the arm's physics (`condition/axes.rs`,
//! `AxisInference::forehand_turn`) and the side is then read as the turn about that axis.

use super::super::vecmath::{self as vm, Vec3};
use super::Side;

/// A change of more than this share of full scale between two samples on one gyro axis is a
/// wrap's jump, not a turn (a wrap jumps by nearly two ranges; the conditioning stage's own
/// entry test is 1.5 ranges, so this also catches a wrap it found and left).
const WRAP_JUMP_SHARE: f64 = 1.0;

/// What the side is read from: the swing's window and where its contact is.
pub(super) struct SideEvidence<'a> {
    /// The head's direction at contact along the face normal (+: the forehand face leads).
    pub head_z: f64,
    /// The (rebuilt) rate at contact, °/s.
    pub omega_at_contact: Vec3,
    /// The axis a forehand turns about, when inferred away from the convention's −y.
    pub forehand_turn: Option<Vec3>,
    /// A wrap was left in the window on a ±`full_scale_dps` gyro.
    pub wraps_left: bool,
    pub full_scale_dps: f64,
    pub gyro: &'a [Vec3],
    /// The swing's first sample and its contact, in `gyro`.
    pub from: usize,
    pub contact: usize,
}

/// The side from the head's direction at contact (its component along the face normal), or
/// about an inferred forehand turn from the rate at contact; when a wrap was left in the
/// window, from the swing's samples `from..=contact` up to the first wrap's jump.
pub(super) fn read(e: &SideEvidence) -> Side {
    let turn = e.forehand_turn.unwrap_or([0.0, -1.0, 0.0]);
    let at_contact = match e.forehand_turn {
        Some(axis) => vm::dot(e.omega_at_contact, axis),
        None => e.head_z,
    };
    let sense = if e.wraps_left {
        flank_sense(e.gyro, e.from, e.contact, e.full_scale_dps, turn).unwrap_or(at_contact)
    } else {
        at_contact
    };
    if sense >= 0.0 {
        Side::Forehand
    } else {
        Side::Backhand
    }
}

/// ω·`turn` (the forehand's turn axis) at the fastest sample of `from..=to` before the first
/// sample that jumps by a wrap's size from the one before (the drive's, just short of the
/// rail); `None` when no sample precedes the jump or that reading is nil.
fn flank_sense(
    gyro: &[Vec3],
    from: usize,
    to: usize,
    full_scale_dps: f64,
    turn: Vec3,
) -> Option<f64> {
    let jump = WRAP_JUMP_SHARE * full_scale_dps;
    let mut fastest: Option<Vec3> = None;
    for i in from..=to.min(gyro.len().saturating_sub(1)) {
        let wrapped = i > 0 && (0..3).any(|k| (gyro[i][k] - gyro[i - 1][k]).abs() > jump);
        if wrapped {
            break;
        }
        if fastest.is_none_or(|f| vm::norm(gyro[i]) > vm::norm(f)) {
            fastest = Some(gyro[i]);
        }
    }
    fastest.map(|f| vm::dot(f, turn)).filter(|v| *v != 0.0)
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
        assert_eq!(read(&evidence(head_z, false, &gyro, 3, fs)), Side::Backhand);
        assert_eq!(read(&evidence(head_z, true, &gyro, 3, fs)), Side::Forehand);
    }

    /// A forehand whose window opens on a long backswing (turning about +y) before the drive
    /// wraps past −1000 °/s: the clean samples' sum says backhand (the backswing outweighs
    /// the drive's short clean part), the fastest clean sample, just short of the rail, says
    /// forehand.
    #[test]
    fn a_backswing_before_a_wrap_does_not_outvote_the_drive() {
        let fs = 1000.0;
        let ys = [
            400.0, 600.0, 600.0, 500.0, 200.0, -300.0, -700.0, -950.0, 600.0, 200.0,
        ];
        let gyro: Vec<Vec3> = ys.iter().map(|&y| [0.0, y, 50.0]).collect();
        let clean_sum: f64 = ys[..8].iter().map(|y| -y).sum();
        assert!(clean_sum < 0.0, "the sum would read a backhand");
        let head_z = -gyro[8][1];
        assert_eq!(read(&evidence(head_z, true, &gyro, 8, fs)), Side::Forehand);
    }

    #[test]
    fn without_a_clean_flank_the_contact_sample_decides() {
        let gyro: Vec<Vec3> = vec![[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]];
        assert_eq!(
            read(&evidence(-0.5, true, &gyro, 1, 1000.0)),
            Side::Backhand
        );
        assert_eq!(read(&evidence(0.5, true, &gyro, 1, 1000.0)), Side::Forehand);
    }

    /// A forearm node turned on the arm so that its own +z is the axis forehands turn about:
    /// its −ω_y (here a forearm roll) says backhand, the turn about the inferred axis says
    /// forehand.
    #[test]
    fn a_turned_arm_node_is_read_about_its_inferred_forehand_turn() {
        let gyro: Vec<Vec3> = vec![[0.0, 0.0, 0.0], [0.0, 300.0, 1500.0]];
        let mut e = evidence(-gyro[1][1], false, &gyro, 1, 2000.0);
        assert_eq!(read(&e), Side::Backhand);
        e.forehand_turn = Some([0.0, 0.0, 1.0]);
        assert_eq!(read(&e), Side::Forehand);
    }

    fn evidence(
        head_z: f64,
        wraps_left: bool,
        gyro: &[Vec3],
        contact: usize,
        full_scale_dps: f64,
    ) -> SideEvidence<'_> {
        SideEvidence {
            head_z,
            omega_at_contact: gyro[contact],
            forehand_turn: None,
            wraps_left,
            full_scale_dps,
            gyro,
            from: 0,
            contact,
        }
    }
}
