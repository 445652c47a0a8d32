//! The detector's physics of what a stroke is, against the racket handling that turns the
//! racket as fast as a push does (docs/analysis.md, detection): a head dipped to the floor to
//! scoop up the shuttle is no swing, a slow push that meets the shuttle is one, and an air
//! swing that drives the racket stays one. Signals written from rigid-body physics
//! (`physics/`), not from the analyser's pulse.

mod physics;
mod through;

use physics::{Reading, Session, Stroke, V3, add, cross, rotate, scale, unit};
use shuttlegate_core::analysis::{AxisMap, DeviceProfile, Swing};
use shuttlegate_core::batch::BodyPosition;

const G: f64 = 9.81;

/// One aligned racket node's readings through the analyser, in batches of 40.
fn swings_of(readings: &[Reading]) -> Vec<Swing> {
    let profile = DeviceProfile {
        positions: vec![BodyPosition::Racket],
        axes: [(BodyPosition::Racket, AxisMap::IDENTITY)].into(),
        ..DeviceProfile::new("d")
    };
    through::analyse(profile, BodyPosition::Racket, readings).0
}

/// A racket node at `rate_hz` held still 1.2 s, then three of `stroke`, each from the ready
/// position and followed by 0.7 s still.
fn three_strokes(rate_hz: f64, stroke: &Stroke) -> Session {
    let mut s = Session::new(rate_hz, [0.5, 0.0, 0.86]);
    s.still(1200.0);
    s.play(std::iter::repeat_n(stroke, 3), 700.0);
    s
}

/// Asserts a swing within 150 ms of each of `contacts` (an impact when `impact`).
fn assert_each_contact_found(swings: &[Swing], contacts: &[f64], impact: bool, label: &str) {
    for c in contacts {
        assert!(
            swings
                .iter()
                .any(|w| (w.t_impact - c).abs() < 150.0 && (w.impact || !impact)),
            "{label}no swing at {c}: {swings:#?}"
        );
    }
}

/// A racket node held still, then dipped `times` times: its head turned down `deg` about
/// the node's y axis in `ms` by the wrist, a minimum-jerk turn (Flash & Hogan 1985) with the
/// hand still and the node 3 cm from the turn's centre, tapped on the floor at the bottom
/// (3 g, ringing out over 10 ms), and brought back in 600 ms.
struct Dips {
    readings: Vec<Reading>,
    t: f64,
    dt: f64,
    up: V3,
}

impl Dips {
    fn new(rate_hz: f64) -> Dips {
        Dips {
            readings: Vec::new(),
            t: 1_000_000.0,
            dt: 1000.0 / rate_hz,
            up: unit([0.5, 0.0, 0.86]),
        }
    }

    fn push(&mut self, acc: V3, gyro: V3) {
        self.readings.push(Reading {
            t_ms: self.t,
            acc,
            gyro,
        });
        self.t += self.dt;
    }

    fn still(&mut self, ms: f64) {
        let end = self.t + ms;
        while self.t < end {
            self.push(self.up, [0.0; 3]);
        }
    }

    /// A minimum-jerk turn of `deg` about `axis` over `ms`; `tap_g` rings along z at its end.
    fn turn(&mut self, axis: V3, deg: f64, ms: f64, tap_g: f64) {
        let (t0, start, amp) = (self.t, self.up, deg.to_radians());
        let node = [0.03, 0.0, 0.0];
        while self.t < t0 + ms {
            let s = (self.t - t0) / ms;
            let angle = amp * (10.0 * s.powi(3) - 15.0 * s.powi(4) + 6.0 * s.powi(5));
            let rate = amp * 30.0 * (s * (1.0 - s)).powi(2) / (ms / 1000.0);
            let accel = amp * 60.0 * s * (1.0 - s) * (1.0 - 2.0 * s) / (ms / 1000.0).powi(2);
            let omega = scale(axis, rate);
            self.up = rotate(start, axis, -angle);
            let centripetal = cross(omega, cross(omega, node));
            let tangential = cross(scale(axis, accel), node);
            let f = add(self.up, scale(add(centripetal, tangential), 1.0 / G));
            self.push(f, scale(omega, 1f64.to_degrees()));
        }
        self.up = rotate(start, axis, -amp);
        let t_tap = self.t;
        while self.t < t_tap + 10.0 {
            let ring = tap_g * (-(self.t - t_tap) / 3.0).exp();
            self.push(add(self.up, [0.0, 0.0, ring]), [0.0; 3]);
        }
    }

    fn dip(&mut self) {
        self.turn([0.0, 1.0, 0.0], 60.0, 200.0, 3.0);
        self.still(100.0);
        self.turn([0.0, -1.0, 0.0], 60.0, 600.0, 0.0);
        self.still(1500.0);
    }
}

#[test]
fn a_racket_head_dipped_to_the_floor_to_scoop_up_the_shuttle_is_no_swing() {
    for rate_hz in [100.0, 200.0, 1000.0] {
        let mut d = Dips::new(rate_hz);
        d.still(1500.0);
        for _ in 0..5 {
            d.dip();
        }
        let swings = swings_of(&d.readings);
        assert!(swings.is_empty(), "{rate_hz} Hz: {swings:#?}");
    }
}

#[test]
fn a_slow_wide_push_that_meets_the_shuttle_is_a_swing() {
    // A net push: 400 °/s, 250 ms at half its peak (wider than a repositioning's 200 ms
    // and slower than the wide-stroke rule's 600 °/s), and the shuttle's ring.
    let push = Stroke {
        width_ms: 500.0,
        ..Stroke::racket(400.0, true, 10.0, 5.0)
    };
    // 200 Hz: the physics' 150 Hz ring falls between samples of a 100 Hz node aligned on
    // contact.
    let s = three_strokes(200.0, &push);
    assert_each_contact_found(&swings_of(&s.readings), &s.contacts, true, "");
}

#[test]
fn an_air_swing_that_drives_the_racket_is_still_a_swing() {
    // A shadow drive at 900 °/s swung from the elbow: no shuttle; the node on the handle,
    // 30 cm from the turn's centre, moves with the hand, and its centripetal and tangential
    // load change by over a g within 20 ms.
    let shadow = Stroke {
        ring_g: 0.0,
        node_offset: [0.3, 0.0, 0.0],
        ..Stroke::racket(900.0, true, 0.0, 5.0)
    };
    for rate_hz in [100.0, 1000.0] {
        let s = three_strokes(rate_hz, &shadow);
        let label = format!("{rate_hz} Hz: ");
        assert_each_contact_found(&swings_of(&s.readings), &s.contacts, false, &label);
    }
}

/// A net push played slower than the detector's trigger: `peak_dps` under `swing_start_dps`
/// (220 °/s) but over `swing_end_dps` (150 °/s), 150 ms at half its peak, with the shuttle's
/// ring (`ring_g`, 0 for none).
fn slow_pushes(rate_hz: f64, peak_dps: f64, ring_g: f64) -> Session {
    let push = Stroke {
        width_ms: 300.0,
        ring_g,
        ..Stroke::racket(peak_dps, true, 10.0, 5.0)
    };
    three_strokes(rate_hz, &push)
}

#[test]
fn a_net_push_slower_than_the_trigger_that_meets_the_shuttle_is_a_swing() {
    // 200 and 1000 Hz: the physics' 150 Hz ring falls between samples of a 100 Hz node
    // aligned on contact.
    for rate_hz in [200.0, 1000.0] {
        let s = slow_pushes(rate_hz, 190.0, 6.0);
        let swings = swings_of(&s.readings);
        assert_each_contact_found(&swings, &s.contacts, true, &format!("{rate_hz} Hz: "));
        assert_eq!(swings.len(), s.contacts.len(), "{rate_hz} Hz: {swings:#?}");
    }
}

#[test]
fn a_turn_slower_than_the_trigger_that_meets_nothing_is_no_swing() {
    // The same pushes in the air: the racket carried, as far as the racket node can tell.
    for rate_hz in [100.0, 200.0, 1000.0] {
        let s = slow_pushes(rate_hz, 190.0, 0.0);
        let swings = swings_of(&s.readings);
        assert!(swings.is_empty(), "{rate_hz} Hz: {swings:#?}");
    }
}

/// Wide, slow air pushes (400 °/s, 250 ms at half their peak: wider than a forward swing and
/// slower than the wide-stroke rule's 600 °/s, no shuttle), the hand pushed along y by
/// `hand_g` in one sine period of 200 ms around the turn's peak (0: the hand still).
fn wide_air_pushes(rate_hz: f64, hand_g: f64) -> Session {
    let push = Stroke {
        width_ms: 500.0,
        ring_g: 0.0,
        ..Stroke::racket(400.0, true, 10.0, 5.0)
    };
    let mut s = three_strokes(rate_hz, &push);
    for r in &mut s.readings {
        for c in &s.contacts {
            let phase = (r.t_ms - (c - 100.0)) / 200.0;
            if (0.0..1.0).contains(&phase) {
                r.acc[1] += hand_g * (std::f64::consts::TAU * phase).sin();
            }
        }
    }
    s
}

#[test]
fn a_wide_slow_push_whose_hand_is_driven_is_a_swing() {
    for rate_hz in [100.0, 200.0, 1000.0] {
        let s = wide_air_pushes(rate_hz, 2.0);
        let label = format!("{rate_hz} Hz: ");
        assert_each_contact_found(&swings_of(&s.readings), &s.contacts, false, &label);
    }
}

#[test]
fn a_wide_slow_turn_with_the_hand_still_is_no_swing() {
    for rate_hz in [100.0, 200.0, 1000.0] {
        let s = wide_air_pushes(rate_hz, 0.0);
        let swings = swings_of(&s.readings);
        assert!(swings.is_empty(), "{rate_hz} Hz: {swings:#?}");
    }
}
