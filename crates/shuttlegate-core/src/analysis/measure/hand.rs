//! The hand's own speed along the head's path at contact: the pivot's velocity, from the
//! node's acceleration with the racket's own turn taken out sample by sample.
//!
//! Why per sample: the node sits r up the shaft (lever.rs), so it feels the rigid-body
//! acceleration α × r + ω × (ω × r) on top of the hand's. Integrating the node's reading and
//! subtracting |ω⊥| × r at contact at the end is the same thing only while every reading is
//! true. At stroke rates the centripetal part along the shaft, r·ω⊥², is 15–45 g for r of
//! 10–25 cm at 2000–3000 °/s: the shaft axis of a ±16 g part sits at the rail through the
//! fastest part of the swing, the integral misses what the rail cut off, and the subtraction
//! at the end then takes away a turn the integral never held (the hand read 5–9 m/s
//! backwards on hard smashes of the independent simulator's tuning seeds). Taking the rigid
//! part out of each sample, an axis at the rail is replaced by what the turn and gravity
//! predict for it (the hand's own push along the shaft on that sample is lost, not the
//! turn's tens of g).

use crate::analysis::NodeSample;
use crate::analysis::STANDARD_GRAVITY as G;
use crate::analysis::vecmath::{self as vm, Quat, Vec3};

/// What the pivot's velocity is integrated from.
pub(super) struct Strapdown<'a> {
    pub s: &'a [NodeSample],
    /// Accelerometer readings, g (units of the node's rest reading, `rest_g`).
    pub acc: &'a [Vec3],
    /// Gyro with clipped samples rebuilt, °/s.
    pub gyro: &'a [Vec3],
    /// Body → anchor attitude per sample.
    pub attitude: &'a [Quat],
    /// Gravity's reading in the anchor frame (its magnitude is the rest reading, g).
    pub gravity: Vec3,
    /// An accelerometer axis at or past this (g) is at the rail.
    pub acc_rail_g: f64,
    /// The node's distance from the pivot along the shaft, m.
    pub node_offset_m: f64,
}

/// The pivot's velocity along `dir_anchor` at sample `end`, integrated from `start`, m/s.
pub(super) fn pivot_speed_along(d: &Strapdown, dir_anchor: Vec3, start: usize, end: usize) -> f64 {
    let end = end.min(d.s.len().saturating_sub(1));
    if start >= end {
        return 0.0;
    }
    let rest_g = vm::norm(d.gravity).max(1e-6);
    let mut v = [0.0; 3];
    let mut prev = pivot_acc_anchor(d, start, rest_g);
    for i in start + 1..=end {
        let dt = (d.s[i].t_ms - d.s[i - 1].t_ms) / 1000.0;
        let next = pivot_acc_anchor(d, i, rest_g);
        v = vm::add(v, vm::scale(vm::add(prev, next), 0.5 * dt));
        prev = next;
    }
    let along = vm::dot(v, dir_anchor);
    if along.is_finite() { along } else { 0.0 }
}

/// The pivot's gravity-free acceleration at sample `i` in the anchor frame, m/s².
fn pivot_acc_anchor(d: &Strapdown, i: usize, rest_g: f64) -> Vec3 {
    let rigid = rigid_acc_body(d, i);
    let gravity_body = vm::rotate(vm::conj(d.attitude[i]), d.gravity);
    let mut specific = [0.0; 3];
    for k in 0..3 {
        let reading = d.acc[i][k];
        specific[k] = if reading.abs() >= d.acc_rail_g {
            // At the rail: what gravity and the turn alone would read.
            gravity_body[k] * G / rest_g + rigid[k]
        } else {
            reading * G / rest_g
        };
    }
    let pivot_body = vm::sub(specific, rigid);
    vm::sub(
        vm::rotate(d.attitude[i], pivot_body),
        vm::scale(d.gravity, G / rest_g),
    )
}

/// α × r + ω × (ω × r) for r = `node_offset_m` along the shaft (x), in the body frame, m/s²;
/// α from the central difference of the rate.
fn rigid_acc_body(d: &Strapdown, i: usize) -> Vec3 {
    let r = [d.node_offset_m, 0.0, 0.0];
    let w = vm::scale(d.gyro[i], 1f64.to_radians());
    let (a, b) = (i.saturating_sub(1), (i + 1).min(d.s.len() - 1));
    let span = (d.s[b].t_ms - d.s[a].t_ms) / 1000.0;
    let alpha = if span > 0.0 {
        vm::scale(vm::sub(d.gyro[b], d.gyro[a]), 1f64.to_radians() / span)
    } else {
        [0.0; 3]
    };
    vm::add(vm::cross(alpha, r), vm::cross(w, vm::cross(w, r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BodyPosition;

    fn sample(t_ms: f64) -> NodeSample {
        NodeSample {
            position: BodyPosition::Racket,
            t_ms,
            acc: [0.0; 3],
            gyro: [0.0; 3],
            angle: None,
        }
    }

    /// A racket turning about z (the face normal) from rest through a Gaussian rate pulse,
    /// the hand still, the node 15 cm up the shaft: the node reads the centripetal and
    /// tangential acceleration, its shaft axis cut at a ±16 g rail. The pivot's speed stays
    /// near zero; the node's own velocity would be r·ω, 0.15 m × 52 rad/s ≈ 8 m/s.
    #[test]
    fn a_turn_about_a_still_hand_leaves_the_pivot_still_even_through_the_rail() {
        let r = 0.15;
        let n = 80;
        let dt_ms = 5.0;
        let peak = 3000f64.to_radians();
        let omega = |k: usize| {
            let u = (k as f64 - 40.0) * dt_ms / 25.0;
            peak * (-u * u / 2.0).exp()
        };
        let s: Vec<NodeSample> = (0..n).map(|k| sample(k as f64 * dt_ms)).collect();
        let mut theta = 0.0;
        let mut attitude = Vec::new();
        let mut acc = Vec::new();
        let mut gyro = Vec::new();
        for k in 0..n {
            if k > 0 {
                theta += 0.5 * (omega(k) + omega(k - 1)) * dt_ms / 1000.0;
            }
            let q = vm::from_rotation_vector([0.0, 0.0, theta]);
            let w = omega(k);
            let alpha =
                (omega((k + 1).min(n - 1)) - omega(k.saturating_sub(1))) / (2.0 * dt_ms) * 1000.0;
            // Specific force in the body: centripetal −r·ω² along x, tangential r·α along y,
            // and gravity (world z, which a turn about z leaves on body z).
            let f = [-r * w * w / G, r * alpha / G, 1.0];
            acc.push([f[0].clamp(-16.0, 16.0), f[1].clamp(-16.0, 16.0), f[2]]);
            gyro.push([0.0, 0.0, w.to_degrees()]);
            attitude.push(q);
        }
        assert!(
            acc.iter().any(|a| a[0] <= -16.0),
            "the shaft axis reaches the rail"
        );
        let d = Strapdown {
            s: &s,
            acc: &acc,
            gyro: &gyro,
            attitude: &attitude,
            gravity: [0.0, 0.0, 1.0],
            acc_rail_g: 0.98 * 16.0,
            node_offset_m: r,
        };
        let head_dir = vm::rotate(attitude[45], [0.0, 1.0, 0.0]);
        let v = pivot_speed_along(&d, head_dir, 0, 45);
        assert!(v.abs() < 0.5, "pivot speed {v} m/s");
    }
}
