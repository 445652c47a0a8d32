//! Forehand or backhand on a wrist node turned on the arm (a wrist-only device, the node
//! standing in for the racket, no `axes` configured): its own −y is not the axis the forehand
//! turns about, so read as made its side is wrong. The forehand's turn is inferred from the
//! arm's physics (`condition/axes.rs`, `AxisInference::forehand_turn`): the centripetal
//! reading gives the forearm's long axis, the forearm's roll about it is set aside, the drives
//! turn about the axis left, and most of them are forehands. Signals from rigid-body physics
//! (`physics/`), not the analyser's pulse.

mod physics;
mod through;

use physics::{Reading, Session, Stroke};
use shuttlegate_core::analysis::{AxisMap, DeviceProfile, Flag, Side, Swing};
use shuttlegate_core::batch::BodyPosition;

/// A forearm stroke read by a wrist node in the convention (x along the forearm to the hand,
/// z out of the palm): the elbow and shoulder swing the hand about −y on a forehand (the palm
/// leads), +y on a backhand (the back of the hand leads), while the forearm pronates on a
/// forehand and supinates on a backhand (about ∓x, `roll` of the swing's rate); the node sits
/// 25 cm from the elbow along the forearm, so it reads ω²r towards the elbow.
fn arm_stroke(forehand: bool, peak_dps: f64, roll: f64) -> Stroke {
    let face = if forehand { 1.0 } else { -1.0 };
    Stroke {
        peak_dps,
        width_ms: 150.0,
        axis: physics::unit([-face * roll, -face, 0.0]),
        up_at_contact: physics::unit([0.4, 0.3, 0.85]),
        node_offset: [0.25, 0.0, 0.0],
        head_offset: [0.8, 0.0, 0.0],
        ring_g: 2.0,
    }
}

/// Twelve strokes, three of them backhands (players hit more forehands), spread through.
fn strokes() -> Vec<Stroke> {
    let backhands = [2, 6, 9];
    (0..12)
        .map(|k| {
            let roll = [0.3, 0.7, 0.5, 0.9][k % 4];
            arm_stroke(
                !backhands.contains(&k),
                1400.0 + 50.0 * (k % 3) as f64,
                roll,
            )
        })
        .collect()
}

/// The node's readings turned on the arm: the convention's axes turned 100° about z, then
/// 25° about the new x (a band strapped on with its board across the forearm, askew), so the
/// node's own y lies mostly along the forearm.
fn turned_on_the_arm(v: physics::V3) -> physics::V3 {
    let about_z = physics::rotate(v, [0.0, 0.0, 1.0], -100f64.to_radians());
    physics::rotate(about_z, [1.0, 0.0, 0.0], -25f64.to_radians())
}

fn wrist_only(axes: Option<AxisMap>, infer_axes: bool) -> DeviceProfile {
    DeviceProfile {
        positions: vec![BodyPosition::Wrist],
        axes: axes.map(|m| (BodyPosition::Wrist, m)).into_iter().collect(),
        infer_axes,
        ..DeviceProfile::new("w")
    }
}

fn analyse(profile: DeviceProfile, readings: &[Reading]) -> Vec<Swing> {
    through::analyse(profile, BodyPosition::Wrist, readings).0
}

/// The sides read for each stroke (`None`: not found), and each stroke's true side.
fn sides(profile: DeviceProfile, turned: bool) -> (Vec<Option<Side>>, Vec<Side>, Vec<Swing>) {
    let strokes = strokes();
    let mut s = Session::new(200.0, [0.0, 0.0, 1.0]);
    s.still(1500.0);
    s.play(&strokes, 800.0);
    if turned {
        physics::remount(&mut s.readings, turned_on_the_arm);
    }
    let swings = analyse(profile, &s.readings);
    let read = through::at_contacts(&swings, &s.contacts)
        .into_iter()
        .map(|w| w.and_then(|w| w.side))
        .collect();
    let truth = strokes
        .iter()
        .map(|st| {
            if st.axis[1] < 0.0 {
                Side::Forehand
            } else {
                Side::Backhand
            }
        })
        .collect();
    (read, truth, swings)
}

#[test]
fn a_wrist_node_in_the_convention_reads_every_side() {
    let (read, truth, _) = sides(wrist_only(None, true), false);
    let truth: Vec<Option<Side>> = truth.into_iter().map(Some).collect();
    assert_eq!(read, truth);
}

#[test]
fn a_wrist_node_turned_on_the_arm_reads_its_side_once_four_drives_have_voted() {
    let (read, truth, swings) = sides(wrist_only(None, true), true);
    // From the sixth stroke on (four drives judged a second after they were played, and the
    // fifth stroke measured before its own drive is), every side is the truth's.
    let later: Vec<Option<Side>> = read[5..].to_vec();
    let want: Vec<Option<Side>> = truth[5..].iter().copied().map(Some).collect();
    assert_eq!(later, want, "all read: {read:?}");
    // Read about an inferred axis: flagged so.
    let flagged = swings
        .iter()
        .filter(|w| w.flags.contains(&Flag::PlacementInferred))
        .count();
    assert!(flagged >= 7, "{flagged} flagged placement_inferred");
    // Its side is no surer than the vote that gave the axis its sense (four or five drives):
    // under the 0.99 a clear lean alone earns; its height is read along the node as made.
    for w in swings
        .iter()
        .filter(|w| w.flags.contains(&Flag::PlacementInferred))
    {
        let c = w.confidences.expect("assessed");
        assert!(c.side < 0.99, "side confidence {c:?} over the vote's");
    }
}

#[test]
fn read_as_made_the_turned_wrist_node_gets_its_sides_wrong() {
    // The same node without the inference: its own −y is mostly the forearm's roll, which
    // the physics above turns against the side (the node's y is about the forearm's −x).
    let (read, truth, _) = sides(wrist_only(None, false), true);
    let right = read
        .iter()
        .zip(&truth)
        .filter(|(r, t)| **r == Some(**t))
        .count();
    assert!(right <= 3, "{right} of {} right as made", truth.len());
}

#[test]
fn a_configured_axes_map_is_the_authority_on_a_wrist_node() {
    // A map that says the node is in the convention: the node is read as made, no turn is
    // inferred and nothing is flagged.
    let (_, _, swings) = sides(wrist_only(Some(AxisMap::IDENTITY), true), true);
    assert!(
        swings
            .iter()
            .all(|w| !w.flags.contains(&Flag::PlacementInferred))
    );
}
