//! A wrist band worn turned on the forearm still reads overhead and underarm strokes right:
//! the height of a stand-in node (no racket node on the device) is read along the arm, out
//! from the swing's centre, once the node's centripetal reading says its x is not that way
//! (measure/radius.rs). Signals written from rigid-body physics in `physics/`.

mod physics;
mod through;

use physics::{Reading, Session, Stroke};
use shuttlegate_core::analysis::{DeviceProfile, Height, Swing};
use shuttlegate_core::batch::BodyPosition;

/// Runs a wrist-only device's session through the analyser in batches of 40 readings.
fn analyse(readings: &[Reading]) -> Vec<Swing> {
    let profile = DeviceProfile {
        positions: vec![BodyPosition::Wrist],
        ..DeviceProfile::new("w")
    };
    through::analyse(profile, BodyPosition::Wrist, readings).0
}

/// The whole arm swung about the shoulder, read by a band on the forearm 0.3 m out from the
/// swing's centre (x along the forearm to the hand): the turn is across the forearm, and the
/// forearm points `elevation_deg` above the horizontal at contact.
fn arm_swing(elevation_deg: f64) -> Stroke {
    let e = elevation_deg.to_radians();
    Stroke {
        peak_dps: 900.0,
        width_ms: 140.0,
        axis: [0.0, -1.0, 0.0],
        up_at_contact: [e.sin(), 0.0, e.cos()],
        node_offset: [0.3, 0.0, 0.0],
        head_offset: [0.85, 0.0, 0.0],
        ring_g: 0.0,
    }
}

#[test]
fn a_band_worn_reversed_on_the_forearm_reads_overhead_and_underarm_along_the_arm() {
    let strokes = [arm_swing(50.0), arm_swing(-45.0), arm_swing(60.0)];
    let mut s = Session::new(200.0, [0.0, 0.0, 1.0]);
    s.still(1200.0);
    s.play(&strokes, 700.0);
    // The band turned half round on the forearm: its x points back to the elbow, its y the
    // other way across the arm (a proper rotation about its z).
    physics::remount(&mut s.readings, |v| [-v[0], -v[1], v[2]]);
    let swings = analyse(&s.readings);
    let heights: Vec<Option<Height>> = through::at_contacts(&swings, &s.contacts)
        .into_iter()
        .map(|w| w.and_then(|w| w.height))
        .collect();
    assert_eq!(
        heights,
        [
            Some(Height::Overhead),
            Some(Height::Underarm),
            Some(Height::Overhead)
        ],
        "{swings:#?}"
    );
}
