//! Gravity carried through the motion: where "up" is in the node's axes at every sample,
//! whether or not the node has been still lately.
//!
//! measure/ reads the racket's attitude at contact against gravity. Gravity shows on the
//! accelerometer only while the node is quasi-static (the hand's own acceleration and the
//! racket's centripetal ω²r swamp it otherwise), and real players seldom hold the racket still
//! in the 600 ms before a stroke: with no still spell in the swing's window, measure/ had no
//! anchor and the stroke was `unknown`, or its height read from a spell far from contact.
//!
//! This filter runs on every sample of the node, in time order, in the frame the rest of the
//! analyser reads (after calibration and the axes map): a complementary filter on the gravity
//! direction (Mahony et al. 2008, "Nonlinear complementary filters on the special orthogonal
//! group", IEEE TAC 53(5), with the accelerometer's gain scheduled on how still the node is,
//! as in Valenti et al. 2015, Sensors 15(8), "adaptive gain"):
//! - **propagate**: up, a fixed world direction, turns in the node's axes against the node's
//!   rotation, `u ← R(−ω·dt) u` (ω the mean of the interval's two gyro readings);
//! - **correct** towards the accelerometer's direction with a gain `w·dt/τ`, where the weight
//!   `w` falls from 1 to 0 as ‖a‖ leaves the node's rest reading (by [`ACC_TOL_G`]) and as the
//!   node turns faster (by [`GYRO_TOL_DPS`]): a swinging racket's accelerometer says nothing of
//!   gravity, a racket turned slowly in the hand between strokes says nearly all of it.
//!
//! **Through a rail.** A gyro axis at full scale (clipped), or wrapped to the opposite sign
//! and left so, under-reports the turn by an unknown amount: propagating through it would give
//! a wrong "up" until the next still moment. So the estimate is marked *lost* from the first
//! such sample, and it is restarted from the accelerometer's direction at the next calm sample
//! and believed again only once [`TRUST_S`] of full-weight evidence has come in. measure/
//! reads the estimate before a swing's trigger (where the gyro has not reached the rail) and
//! integrates through the swing itself with its own rebuilt (desaturated) gyro.
//!
//! The node's rest reading (1 g calibrated, ~1.3 g on an uncalibrated part) is learned here
//! from its slowest samples, so an uncalibrated node's gravity is still recognised.

use std::collections::VecDeque;

use super::super::vecmath::{self as vm, Vec3};
use super::calibrate::REST_READING_G;

/// ‖a‖ further than this from the rest reading gives the accelerometer no weight, g. At
/// 0.1 g off, a linear acceleration could tilt the reading by up to asin 0.1 ≈ 6°; the weight
/// falls quadratically, so samples within 0.05 g carry ¾ of it. The same 0.1 g as measure/'s
/// quasi-static anchors.
pub const ACC_TOL_G: f64 = 0.1;
/// A node turning faster than this gives the accelerometer no weight, °/s: half the detector's
/// default swing start (220 °/s). At 110 °/s a node 10 cm from the wrist feels ω²r ≈ 0.04 g
/// of centripetal acceleration, and the hand that turns it accelerates too.
pub const GYRO_TOL_DPS: f64 = 110.0;
/// Time constant of the accelerometer's correction at full weight, s: long enough to average
/// 0.01–0.03 g of accelerometer noise over ~10 samples at 100 Hz (≈ 0.5°), short enough to
/// take in the brief calm moments between strokes.
const TAU_S: f64 = 0.1;
/// Full-weight evidence (Σ w·dt, s) needed before the estimate is believed, after a start or a
/// loss: three samples at 100 Hz, as many as measure/'s quasi-static anchors need.
pub const TRUST_S: f64 = 0.03;
/// A sample restarts a lost estimate when its weight is at least this.
const RESTART_WEIGHT: f64 = 0.5;
/// The rest reading follows the slowest samples (under this rate, °/s) with this time
/// constant, s, and stays within the range a real part reads at rest
/// ([`REST_READING_G`], the calibration's).
const REST_LEARN_DPS: f64 = 30.0;
const REST_LEARN_TAU_S: f64 = 1.0;
/// A gap longer than this, ms, is not integrated across (lost data: the turn in it is
/// unknown).
const MAX_GAP_MS: f64 = 200.0;
/// Estimates kept, one per sample: the stream's own cap (4 s at 1 kHz).
const MAX_HISTORY: usize = 4096;

/// Up in the node's axes at one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Carried {
    pub t_ms: f64,
    /// Unit vector: the direction the accelerometer reads at rest.
    pub up: Vec3,
    /// Time since the estimate last took in a full-weight sample's worth of evidence
    /// (Σ w·dt ≥ [`TRUST_S`] counted back from here), ms: how long the gyro alone carried it.
    pub carried_ms: f64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    t_ms: f64,
    up: [f32; 3],
    trusted: bool,
    carried_ms: f32,
}

/// The running estimate of one node, and its recent history.
#[derive(Debug, Clone)]
pub struct GravityTracker {
    up: Option<Vec3>,
    /// Evidence since the last start or loss, Σ w·dt, s.
    evidence_s: f64,
    /// When the evidence last reached a full-weight sample's worth, ms.
    last_anchor_t: Option<f64>,
    /// Evidence gathered since `last_anchor_t`, s.
    pending_s: f64,
    /// What the node reads at rest, g: its first slow sample's ‖a‖, then followed.
    rest_g: Option<f64>,
    last: Option<(f64, Vec3)>,
    history: VecDeque<Entry>,
}

impl Default for GravityTracker {
    fn default() -> Self {
        GravityTracker {
            up: None,
            evidence_s: 0.0,
            last_anchor_t: None,
            pending_s: 0.0,
            rest_g: None,
            last: None,
            history: VecDeque::new(),
        }
    }
}

/// How much a sample's accelerometer says about gravity, 0–1.
pub fn stillness_weight(acc_norm_g: f64, rest_g: f64, rate_dps: f64) -> f64 {
    let a = (acc_norm_g - rest_g) / ACC_TOL_G;
    let g = rate_dps / GYRO_TOL_DPS;
    (1.0 - a * a).max(0.0) * (1.0 - g * g).max(0.0)
}

impl GravityTracker {
    /// Takes one conditioned sample (time order). `railed`: a gyro axis is at full scale, or
    /// wrapped and left so — its turn is not what the gyro says.
    pub fn note(&mut self, t_ms: f64, acc: Vec3, gyro: Vec3, railed: bool) {
        let dt_s = self
            .last
            .map(|(t, _)| (t_ms - t) / 1000.0)
            .filter(|dt| *dt > 0.0);
        let gap = dt_s.is_none_or(|dt| dt * 1000.0 > MAX_GAP_MS);
        if railed || (gap && self.last.is_some()) {
            self.lose();
        }
        if let (Some(up), Some(dt), false, Some((_, prev))) = (self.up, dt_s, gap, self.last) {
            let mean = vm::scale(vm::add(gyro, prev), 0.5);
            let turn = vm::scale(mean, -dt * 1f64.to_radians());
            self.up = Some(vm::rotate(vm::from_rotation_vector(turn), up));
        }
        let norm = vm::norm(acc);
        let rate = vm::norm(gyro);
        if rate < REST_LEARN_DPS {
            self.learn_rest(norm, dt_s.filter(|_| !gap));
        }
        let w = if railed {
            0.0
        } else {
            stillness_weight(norm, self.rest_g.unwrap_or(1.0), rate)
        };
        let seen = vm::unit(acc);
        match (self.up, seen) {
            (None, Some(a)) if w >= RESTART_WEIGHT => self.up = Some(a),
            (Some(u), Some(a)) if w > 0.0 => {
                let dt = dt_s.filter(|_| !gap).unwrap_or(0.0);
                let k = (w * dt / TAU_S).min(1.0);
                self.up = vm::unit(vm::add(u, vm::scale(vm::sub(a, u), k)));
            }
            _ => {}
        }
        if self.up.is_some() && !railed {
            let evidence = w * dt_s.filter(|_| !gap).unwrap_or(0.0);
            self.evidence_s += evidence;
            self.pending_s += evidence;
            if self.pending_s >= TRUST_S {
                self.last_anchor_t = Some(t_ms);
                self.pending_s = 0.0;
            }
        }
        self.last = Some((t_ms, gyro));
        self.record(t_ms);
    }

    /// Follows the rest reading with a slow sample's ‖a‖ (`dt_s` after the previous sample).
    /// The first one sets it outright: an uncalibrated part's 1.3 g would otherwise take
    /// seconds of following from 1 g before its gravity counted, longer than a player holds
    /// the racket ready.
    fn learn_rest(&mut self, norm: f64, dt_s: Option<f64>) {
        let norm = norm.clamp(REST_READING_G.0, REST_READING_G.1);
        self.rest_g = Some(match (self.rest_g, dt_s) {
            (None, _) => norm,
            (Some(g), Some(dt)) => g + (dt / REST_LEARN_TAU_S).min(1.0) * (norm - g),
            (Some(g), None) => g,
        });
    }

    /// The gyro stopped telling the turn: the estimate is dropped until the accelerometer
    /// restarts it.
    fn lose(&mut self) {
        self.up = None;
        self.evidence_s = 0.0;
        self.pending_s = 0.0;
        self.last_anchor_t = None;
    }

    fn record(&mut self, t_ms: f64) {
        let trusted = self.evidence_s >= TRUST_S;
        let up = self.up.unwrap_or([0.0; 3]);
        self.history.push_back(Entry {
            t_ms,
            up: up.map(|v| v as f32),
            trusted: trusted && self.up.is_some(),
            carried_ms: self
                .last_anchor_t
                .map_or(f32::INFINITY, |a| (t_ms - a) as f32),
        });
        while self.history.len() > MAX_HISTORY {
            self.history.pop_front();
        }
    }

    /// The newest believed estimate at or before `t_ms` (and not before `from_ms`).
    pub fn carried_at(&self, from_ms: f64, t_ms: f64) -> Option<Carried> {
        self.history
            .iter()
            .rev()
            .skip_while(|e| e.t_ms > t_ms)
            .take_while(|e| e.t_ms >= from_ms)
            .find(|e| e.trusted)
            .map(|e| Carried {
                t_ms: e.t_ms,
                up: vm::widen(e.up),
                carried_ms: f64::from(e.carried_ms),
            })
    }

    /// The node's axes were turned (an axis map decided): the estimate and its history are
    /// re-expressed in the new axes by `map`.
    pub fn reframe(&mut self, map: impl Fn(Vec3) -> Vec3) {
        self.up = self.up.map(&map);
        if let Some((t, g)) = self.last {
            self.last = Some((t, map(g)));
        }
        for e in &mut self.history {
            e.up = map(vm::widen(e.up)).map(|v| v as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node turning about its z axis at `rate` °/s with gravity along its x at t = 0, while
    /// its accelerometer reads only the hand's push (no gravity information).
    fn spin(tracker: &mut GravityTracker, t0: f64, ms: f64, rate: f64, dt: f64) -> f64 {
        let mut t = t0;
        while t < t0 + ms {
            t += dt;
            tracker.note(t, [0.0, 0.0, 3.0], [0.0, 0.0, rate], false);
        }
        t
    }

    fn still(tracker: &mut GravityTracker, t0: f64, ms: f64, up: Vec3, dt: f64) -> f64 {
        let mut t = t0;
        while t < t0 + ms {
            t += dt;
            tracker.note(t, up, [0.0; 3], false);
        }
        t
    }

    #[test]
    fn gravity_is_carried_through_a_turn_by_the_gyro() {
        let mut g = GravityTracker::default();
        let t = still(&mut g, 0.0, 100.0, [1.0, 0.0, 0.0], 5.0);
        // 90° about z in 450 ms at 200 °/s: up, fixed in the world, turns by −90° in the
        // node's axes: from +x to −y.
        let t = spin(&mut g, t, 450.0, 200.0, 5.0);
        let c = g.carried_at(0.0, t).expect("believed");
        assert!(vm::dot(c.up, [0.0, -1.0, 0.0]) > 0.999, "{:?}", c.up);
        assert!(c.carried_ms > 400.0);
    }

    #[test]
    fn a_railed_gyro_loses_the_estimate_until_the_next_calm_sample() {
        let mut g = GravityTracker::default();
        let t = still(&mut g, 0.0, 100.0, [1.0, 0.0, 0.0], 5.0);
        g.note(t + 5.0, [0.0, 0.0, 3.0], [0.0, 0.0, 2000.0], true);
        assert!(g.carried_at(t + 1.0, t + 5.0).is_none());
        let t = still(&mut g, t + 5.0, 50.0, [0.0, 1.0, 0.0], 5.0);
        let c = g.carried_at(0.0, t).expect("restarted");
        assert!(vm::dot(c.up, [0.0, 1.0, 0.0]) > 0.999);
    }

    #[test]
    fn an_uncalibrated_rest_reading_is_still_gravity() {
        let mut g = GravityTracker::default();
        let t = still(&mut g, 0.0, 60.0, [0.0, 0.0, 1.3], 10.0);
        assert!(
            g.carried_at(0.0, t).is_some(),
            "believed after 50 ms of rest"
        );
        assert!((stillness_weight(1.3, g.rest_g.unwrap_or(1.0), 0.0) - 1.0).abs() < 1e-9);
    }
}
