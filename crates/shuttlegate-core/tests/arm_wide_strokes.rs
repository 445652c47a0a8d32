//! A wrist node standing in for the racket reads the forearm's turn, which carries the hand
//! and racket about the elbow: a stroke's head speed turns it slower than it turns a racket
//! node, so the wide-pulse rule's peak bound is lower there (docs/analysis.md, detection,
//! "The wide-pulse rule's bound on the arm"). A wide groundstroke swung from the shoulder at
//! a tennis backhand's 500 °/s at the wrist is a stroke; the same turn on a racket node, or
//! slower, or with the hand not driven, is not. Signals from rigid-body physics (`physics/`).

mod physics;
mod through;

use physics::{Reading, Session, Stroke};
use shuttlegate_core::analysis::{
    AxisMap, BurstDecision, BurstFate, DeviceProfile, NoStroke, Swing,
};
use shuttlegate_core::batch::BodyPosition;

/// A wide forearm turn about the node's z (across the forearm, the arm swung from the
/// shoulder), 500 ms long (250 ms at half its peak, wider than a badminton forward swing's
/// 200 ms), the node `reach_m` from the turn's centre along the forearm (its centripetal ω²r
/// is the hand's drive), no shuttle ring (a wrist feels it damped).
fn wide_turn(peak_dps: f64, reach_m: f64) -> Stroke {
    Stroke {
        peak_dps,
        width_ms: 500.0,
        axis: [0.0, 0.0, -1.0],
        up_at_contact: [0.0, 1.0, 0.0],
        node_offset: [reach_m, 0.0, 0.0],
        head_offset: [0.8, 0.0, 0.0],
        ring_g: 0.0,
    }
}

/// Held still 1.5 s, then three of `stroke`, each from the ready position, 0.8 s still after.
fn three(rate_hz: f64, stroke: &Stroke) -> Session {
    let mut s = Session::new(rate_hz, [0.0, 1.0, 0.0]);
    s.still(1500.0);
    s.play(std::iter::repeat_n(stroke, 3), 800.0);
    s
}

fn profile(position: BodyPosition) -> DeviceProfile {
    DeviceProfile {
        positions: vec![position],
        axes: [(position, AxisMap::IDENTITY)].into(),
        ..DeviceProfile::new("d")
    }
}

/// The node's readings at `position` through the analyser: its swings, and what became of
/// each burst.
fn analyse(position: BodyPosition, readings: &[Reading]) -> (Vec<Swing>, Vec<BurstDecision>) {
    through::analyse_logged(profile(position), position, readings)
}

/// The strokes (by contact time) whose burst the wide-pulse rule turned away.
fn turned_away_as_wide(log: &[BurstDecision], contacts: &[f64]) -> usize {
    contacts
        .iter()
        .filter(|&&c| {
            log.iter().any(|b| {
                b.trigger_t <= c
                    && c <= b.end_t
                    && matches!(b.fate, BurstFate::NoStroke(NoStroke::WidePulse { .. }))
            })
        })
        .count()
}

#[test]
fn a_wide_driven_forearm_stroke_at_a_backhands_rate_is_found_at_the_wrist() {
    // 500 °/s with the node 0.25 m from the elbow: ≈ 1.9 g of centripetal drive, and the
    // head (0.8 m out) at 25 km/h, over a net push's 21.
    for rate_hz in [50.0, 100.0] {
        let s = three(rate_hz, &wide_turn(500.0, 0.25));
        let (swings, fates) = analyse(BodyPosition::Wrist, &s.readings);
        for c in &s.contacts {
            assert!(
                swings.iter().any(|w| (w.t_impact - c).abs() < 150.0),
                "{rate_hz} Hz: no swing at {c}: {fates:?}"
            );
        }
        assert_eq!(swings.len(), 3, "{rate_hz} Hz: {fates:?}");
    }
}

#[test]
fn the_same_turn_on_a_racket_node_slower_or_with_the_hand_still_is_turned_away_as_wide() {
    for rate_hz in [50.0, 100.0] {
        let cases = [
            // A racket node turning at 500 °/s moves its head at 0.55 m: 17 km/h.
            (BodyPosition::Racket, wide_turn(500.0, 0.25)),
            // The wrist at 380 °/s: the head at 0.8 m under 20 km/h.
            (BodyPosition::Wrist, wide_turn(380.0, 0.25)),
            // The wrist at 500 °/s with the hand still (the node at the turn's centre).
            (BodyPosition::Wrist, wide_turn(500.0, 0.0)),
        ];
        for (position, stroke) in cases {
            let s = three(rate_hz, &stroke);
            let (swings, fates) = analyse(position, &s.readings);
            let label = format!("{rate_hz} Hz, {position:?} {} °/s", stroke.peak_dps);
            assert!(swings.is_empty(), "{label}: {swings:#?}");
            assert_eq!(
                turned_away_as_wide(&fates, &s.contacts),
                3,
                "{label}: {fates:?}"
            );
        }
    }
}
