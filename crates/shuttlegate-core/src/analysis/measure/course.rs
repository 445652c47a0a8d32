//! The swing's course up to contact, beyond the figures at the contact instant: how wide the
//! angular-rate pulse is, where contact falls on it, and where the racket head travelled over
//! the last [`APPROACH_MS`] before it.
//!
//! Why: the contact figures alone (shaft elevation, head-path pitch, speed) leave strokes
//! that share a contact attitude apart only by speed — a net push and a drive are both met
//! with the shaft near level, a lift and a drive both below the shoulder. Coaching texts
//! describe these strokes by their course, not by their contact: a net shot or a low serve is
//! "pushed" or "guided" with little backswing (a long, slow pulse), a drive is a short flat
//! swing, a lift swings the head up from below (Badminton: Steps to Success, 3rd ed., chapters
//! on the net shot, drive and underhand clear; Grice 2008).
//!
//! Measured, not yet decided on: on the independent simulator's tuning seeds the swing plane
//! separates drives from overhead strokes and lifts (balanced accuracy 0.86–0.90 on aligned
//! mounts), but every rule built on it took more overhead strokes to sidearm than it gained
//! drives, and the pulse's width added nothing the speed share did not already carry
//! (docs/analysis-history.md, "What the swing's course separates"). The figures ride on the
//! swing's `Evidence` for `eval --verbose` and its per-swing dump.

use crate::analysis::NodeSample;
use crate::analysis::vecmath::{self as vm, Quat, Vec3};

/// How far before contact the head's approach is read, ms. A forward swing's last 100 ms
/// carry most of its arc (its pulse is 40–120 ms above half speed); longer would reach into
/// the backswing, whose head goes the other way.
pub const APPROACH_MS: f64 = 100.0;

/// The course figures of one swing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Course {
    /// How long |ω⊥| stays above half the swing's peak around the peak, ms.
    pub width_ms: f64,
    /// Contact's time after the pulse's peak, ms: positive on the falling flank (checked).
    pub contact_lag_ms: f64,
    /// The head path's mean pitch over the approach, weighted by the head's speed, °: the
    /// head's rise over the approach as an angle of its path (a lift's comes up, a smash's
    /// goes down, a drive's is flat).
    pub approach_pitch_deg: f64,
    /// The shaft's elevation at contact minus its elevation [`APPROACH_MS`] before, °.
    pub elevation_rise_deg: f64,
    /// The turn's axis above the horizontal over the approach, weighted by the head's speed,
    /// °: near 90° the racket sweeps a level plane (a drive), near 0° an upright one (an
    /// overhead or an underarm swing).
    pub axis_elevation_deg: f64,
    /// The racket speed's parts, for the evaluation's speed breakdowns: the node's fitted
    /// distance up the shaft from the pivot (lever.rs), m, and the hand's own speed along
    /// the head's path at contact (hand.rs), m/s.
    pub node_offset_m: f64,
    pub hand_speed_ms: f64,
}

/// What the course is measured from: the window's samples, |ω⊥|, the desaturated gyro, the
/// integrated attitude (body → anchor frame) and gravity's "up" in the anchor frame.
pub struct Approach<'a> {
    pub samples: &'a [NodeSample],
    pub gyro: &'a [Vec3],
    pub attitude: &'a [Quat],
    pub up_anchor: Vec3,
}

impl Approach<'_> {
    /// The head path's mean pitch and the shaft's rise over the approach to contact at
    /// `t_impact` (the last sample before it `pre_i`, attitude at contact `q_imp`).
    pub fn course(
        &self,
        pre_i: usize,
        q_imp: Quat,
        t_impact: f64,
        width_ms: f64,
        t_peak: f64,
    ) -> Course {
        let from = t_impact - APPROACH_MS;
        let picked: Vec<usize> = (0..=pre_i)
            .filter(|&i| self.samples[i].t_ms >= from)
            .collect();
        let (mut rise, mut path, mut axis) = (0.0, 0.0, 0.0);
        for &i in &picked {
            let dt = self.samples[i].t_ms - self.samples[i.saturating_sub(1)].t_ms;
            let omega = self.gyro[i];
            let speed = omega[1].hypot(omega[2]) * dt;
            rise += speed * self.head_pitch_sin(self.attitude[i], omega);
            axis += speed * self.axis_up_sin(self.attitude[i], omega);
            path += speed;
        }
        let mean_deg = |sum: f64| {
            if path > 0.0 {
                (sum / path).clamp(-1.0, 1.0).asin().to_degrees()
            } else {
                0.0
            }
        };
        let before = picked.first().map_or(q_imp, |&i| self.attitude[i]);
        Course {
            width_ms,
            contact_lag_ms: t_impact - t_peak,
            approach_pitch_deg: mean_deg(rise),
            elevation_rise_deg: self.elevation_deg(q_imp) - self.elevation_deg(before),
            axis_elevation_deg: mean_deg(axis),
            ..Course::default()
        }
    }

    /// sin of the head path's pitch at a sample with attitude `q` turning at `omega`.
    fn head_pitch_sin(&self, q: Quat, omega: Vec3) -> f64 {
        vm::unit(vm::cross(omega, [1.0, 0.0, 0.0]))
            .map_or(0.0, |d| vm::dot(vm::rotate(q, d), self.up_anchor))
    }

    /// |sin| of the turn axis's elevation (the part of ω across the shaft) at a sample.
    fn axis_up_sin(&self, q: Quat, omega: Vec3) -> f64 {
        vm::unit([0.0, omega[1], omega[2]])
            .map_or(0.0, |a| vm::dot(vm::rotate(q, a), self.up_anchor).abs())
    }

    /// The shaft's elevation above the horizontal at attitude `q`, °.
    fn elevation_deg(&self, q: Quat) -> f64 {
        vm::elevation_deg(vm::rotate(q, [1.0, 0.0, 0.0]), self.up_anchor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: f64) -> NodeSample {
        NodeSample {
            position: crate::batch::BodyPosition::Racket,
            t_ms,
            acc: [0.0, 0.0, 1.0],
            gyro: [0.0; 3],
            angle: None,
        }
    }

    /// A racket turning about its face normal (z) by 90° over the approach, the shaft starting
    /// level and the head moving straight up (ω × x̂ = +y, "up"): the shaft ends vertical, and
    /// the head's path pitch goes from 90° to 0° along the way.
    #[test]
    fn a_head_swung_upwards_reads_a_rising_path_and_shaft() {
        let n = 11; // 100 ms at 100 Hz
        let rate_dps = 900.0; // 90° over the 100 ms
        let samples: Vec<NodeSample> = (0..n).map(|i| sample(10.0 * i as f64)).collect();
        let gyro = vec![[0.0, 0.0, rate_dps]; n];
        let attitude: Vec<Quat> = (0..n)
            .map(|i| {
                let turn = (rate_dps * 0.01 * i as f64).to_radians();
                vm::from_rotation_vector([0.0, 0.0, turn])
            })
            .collect();
        // Up along +y of the anchor frame: the shaft (x) starts level and turns up to 90°.
        let a = Approach {
            samples: &samples,
            gyro: &gyro,
            attitude: &attitude,
            up_anchor: [0.0, 1.0, 0.0],
        };
        let c = a.course(n - 1, attitude[n - 1], 100.0, 80.0, 90.0);
        assert!((c.elevation_rise_deg - 90.0).abs() < 1.0, "{c:?}");
        // The head's path pitch goes 90° → 0° as the shaft comes up: a mean near 45°.
        assert!(
            c.approach_pitch_deg > 30.0 && c.approach_pitch_deg < 60.0,
            "{c:?}"
        );
        // Turning about z, which stays level: an upright swing plane.
        assert!(c.axis_elevation_deg.abs() < 1.0, "{c:?}");
        assert_eq!(c.contact_lag_ms, 10.0);
        assert_eq!(c.width_ms, 80.0);
    }
}
