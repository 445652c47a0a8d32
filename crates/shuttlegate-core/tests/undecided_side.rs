//! How sure the side is on a node read as made before anything has decided its mount: the
//! first swings of a racket node whose axes are inferred, before its first frame, and of a
//! wrist node standing in for the racket, before four drives have voted on its forehand turn.
//! Read as made, the side is the head's lean along the node's z, right only if the node's +x
//! is the shaft; the centripetal reading (ω × (ω × r), towards the centre of the swing) says
//! where the shaft is from the first swing on, so a node whose reading puts it across or down
//! its x has a side no surer than a coin toss (`AxisInference::as_made_side_bound`). Signals
//! from rigid-body physics (`physics/`), not the analyser's pulse.

mod physics;
mod through;

use physics::{Session, Stroke};
use shuttlegate_core::analysis::{DeviceProfile, Swing};
use shuttlegate_core::batch::BodyPosition;

/// A racket stroke read by a node taped 10 cm up the shaft from the wrist (the centre the
/// physics turns the racket about), so its centripetal reading is strong.
fn racket_stroke(forehand: bool, elevation_deg: f64, pitch_deg: f64) -> Stroke {
    Stroke {
        node_offset: [0.10, 0.0, 0.0],
        ..Stroke::racket(1700.0, forehand, elevation_deg, pitch_deg)
    }
}

/// Clears, smashes and drives of both wings, forehands the most.
fn racket_strokes() -> Vec<Stroke> {
    vec![
        racket_stroke(true, 50.0, 10.0),
        racket_stroke(true, 0.0, 5.0),
        racket_stroke(true, 40.0, -25.0),
        racket_stroke(false, 0.0, 5.0),
        racket_stroke(true, 50.0, 10.0),
        racket_stroke(true, 0.0, 5.0),
    ]
}

/// A forearm stroke read by a wrist node in the convention, 25 cm from the elbow (as in
/// `arm_side.rs`): the hand swung about −y on a forehand, +y on a backhand, the forearm
/// rolling about ∓x at 0.5 of the swing's rate.
fn arm_stroke(forehand: bool) -> Stroke {
    let face = if forehand { 1.0 } else { -1.0 };
    Stroke {
        peak_dps: 1450.0,
        width_ms: 150.0,
        axis: physics::unit([-face * 0.5, -face, 0.0]),
        up_at_contact: physics::unit([0.4, 0.3, 0.85]),
        node_offset: [0.25, 0.0, 0.0],
        head_offset: [0.8, 0.0, 0.0],
        ring_g: 2.0,
    }
}

fn record(strokes: &[Stroke], remount: Option<fn(physics::V3) -> physics::V3>) -> Session {
    let mut s = Session::new(200.0, [0.5, 0.0, 0.86]);
    s.still(1200.0);
    s.play(strokes, 700.0);
    if let Some(node_of) = remount {
        physics::remount(&mut s.readings, node_of);
    }
    s
}

/// A board taped on turned about its own y, its z up the shaft (the analyser's x is the
/// node's z, its z the node's −x): its y is still the swing's axis, so its side reads as
/// clearly as an aligned node's — about the wrong face.
fn turned_about_y(v: physics::V3) -> physics::V3 {
    [-v[2], v[1], v[0]]
}

/// A wrist band strapped on across the forearm (its own y mostly along the forearm), as in
/// `arm_side.rs`.
fn turned_on_the_arm(v: physics::V3) -> physics::V3 {
    let about_z = physics::rotate(v, [0.0, 0.0, 1.0], -100f64.to_radians());
    physics::rotate(about_z, [1.0, 0.0, 0.0], -25f64.to_radians())
}

/// The side confidences of the swings found at the first `n` contacts.
fn first_side_confidences(
    profile: DeviceProfile,
    position: BodyPosition,
    s: &Session,
    n: usize,
) -> Vec<f64> {
    let swings: Vec<Swing> = through::analyse(profile, position, &s.readings).0;
    through::at_contacts(&swings, &s.contacts)
        .into_iter()
        .take(n)
        .enumerate()
        .map(|(k, w)| {
            let w = w.unwrap_or_else(|| panic!("stroke {k} not found"));
            w.side.unwrap_or_else(|| panic!("stroke {k}: no side"));
            w.confidences.expect("assessed").side
        })
        .collect()
}

fn racket_inferred() -> DeviceProfile {
    DeviceProfile {
        positions: vec![BodyPosition::Racket],
        infer_axes: true,
        ..DeviceProfile::new("r")
    }
}

fn wrist_only() -> DeviceProfile {
    DeviceProfile {
        positions: vec![BodyPosition::Wrist],
        infer_axes: true,
        ..DeviceProfile::new("w")
    }
}

#[test]
fn a_racket_node_turned_about_its_own_y_is_no_surer_than_a_coin_toss_before_its_frame() {
    let strokes = racket_strokes();
    let aligned = record(&strokes, None);
    // The first stroke is measured before any frame (the inference frames from the second
    // drive on, between swings).
    let sure = first_side_confidences(racket_inferred(), BodyPosition::Racket, &aligned, 1);
    assert!(sure[0] > 0.9, "aligned: {sure:?}");
    let turned = record(&strokes, Some(turned_about_y));
    let bounded = first_side_confidences(racket_inferred(), BodyPosition::Racket, &turned, 1);
    assert!(bounded[0] <= 0.6, "turned about its y: {bounded:?}");
}

#[test]
fn a_wrist_band_turned_on_the_arm_is_no_surer_than_a_coin_toss_before_four_drives() {
    let strokes: Vec<Stroke> = [true, true, false, true].map(arm_stroke).to_vec();
    let aligned = record(&strokes, None);
    let sure = first_side_confidences(wrist_only(), BodyPosition::Wrist, &aligned, 4);
    assert!(sure.iter().all(|&c| c > 0.9), "aligned: {sure:?}");
    let turned = record(&strokes, Some(turned_on_the_arm));
    let bounded = first_side_confidences(wrist_only(), BodyPosition::Wrist, &turned, 4);
    assert!(
        bounded.iter().all(|&c| c <= 0.6),
        "turned on the arm: {bounded:?}"
    );
}
