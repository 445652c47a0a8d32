//! A serve opens a rally: a still, low stroke is a serve only when it comes after the
//! player's previous hit by more than a rally allows (`classify::opens_rally`), on signals
//! written from physics in `physics/`.

mod physics;
mod through;

use physics::{Session, Stroke};
use shuttlegate_core::analysis::{AxisMap, DeviceProfile, Stroke as StrokeType};
use shuttlegate_core::batch::BodyPosition;
use through::{analyse, at_contacts};

fn racket() -> DeviceProfile {
    DeviceProfile {
        positions: vec![BodyPosition::Racket],
        axes: [(BodyPosition::Racket, AxisMap::IDENTITY)].into(),
        ..DeviceProfile::new("d")
    }
}

/// A low backhand stroke met with the shaft well down and the head rising: a serve when the
/// player stood still before it and it opens a rally.
fn low_push() -> Stroke {
    Stroke::racket(900.0, false, -50.0, 30.0)
}

/// The stroke from a still stance: the racket brought into position, then held still long
/// enough for the serve test (no footwork in the second before the swing).
fn from_still(s: &mut Session, stroke: &Stroke) {
    s.turn_to(Session::start_of(stroke), 250.0);
    s.still(1500.0);
    s.stroke(stroke);
}

#[test]
fn a_still_low_stroke_is_a_serve_only_when_it_opens_a_rally() {
    let push = low_push();
    let mut s = Session::new(200.0, [0.5, 0.0, 0.86]);
    s.still(2000.0);
    from_still(&mut s, &push);
    // The next still, low stroke ~3 s later: the same rally (two flights at most).
    s.still(1000.0);
    from_still(&mut s, &push);
    // The rally over, a pause, a practice swing that meets nothing, then the next serve.
    s.still(15_000.0);
    from_still(
        &mut s,
        &Stroke {
            ring_g: 0.0,
            ..push
        },
    );
    s.still(2500.0);
    from_still(&mut s, &push);
    s.still(1000.0);

    let (swings, _) = analyse(racket(), BodyPosition::Racket, &s.readings);
    let found = at_contacts(&swings, &s.contacts);
    let strokes: Vec<_> = found.iter().map(|w| w.map(|w| w.stroke)).collect();
    assert_eq!(
        strokes[0],
        Some(StrokeType::Serve),
        "the first: {strokes:?}"
    );
    assert!(
        !matches!(strokes[1], Some(StrokeType::Serve) | None),
        "a still, low stroke within the rally is no serve: {strokes:?}"
    );
    assert_eq!(
        strokes[2],
        Some(StrokeType::Serve),
        "after the pause: {strokes:?}"
    );
}
