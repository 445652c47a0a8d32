//! What a real IMU node does to the motion before it reaches the wire: its mount (axes not
//! the analyser's), bias, scale, an uncalibrated accelerometer, its anti-alias filter, full
//! scale (clipping, or the WitMotion-style wrap to the opposite sign), noise, int16
//! quantisation, and its output rate (which may change mid-session).

use std::f64::consts::PI;

use glam::{DQuat, DVec3, EulerRot};
use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Normal};

use crate::literature as lit;
use crate::motion::{INTERNAL_HZ, TICK_MS};
use crate::swing::{pick, uniform};

/// Standard gravity, m/s².
pub const G: f64 = 9.806_65;

/// What a reading past full scale turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Held at full scale.
    Clip,
    /// Wrapped to the opposite sign (+16 g followed by −16 g), as WitMotion nodes do
    /// (SEED-SYSTEM.md).
    Wrap,
}

/// One node's sensor.
#[derive(Debug, Clone)]
pub struct SensorModel {
    /// Sensor axes in the body frame: a body vector v reads as `mount.inverse() * v`.
    pub mount: DQuat,
    /// The mount is not the analyser's convention (x along shaft/forearm, z the forehand
    /// face normal).
    pub mount_rotated: bool,
    pub gyro_bias_dps: DVec3,
    pub gyro_scale: DVec3,
    pub gyro_noise_dps: f64,
    pub acc_offset_g: DVec3,
    pub acc_scale: DVec3,
    pub acc_noise_g: f64,
    pub uncalibrated: bool,
    pub acc_full_scale_g: f64,
    pub gyro_full_scale_dps: f64,
    pub overflow: Overflow,
}

/// How a device's sensors are set up (shared by its nodes).
#[derive(Debug, Clone, Copy)]
pub struct SensorHabits {
    pub overflow: Overflow,
    pub acc_full_scale_g: f64,
    pub gyro_full_scale_dps: f64,
    pub uncalibrated: bool,
    /// Chance that a node is mounted with other axes than the analyser's.
    pub rotated_mount_share: f64,
}

impl SensorHabits {
    pub fn draw(rng: &mut SmallRng) -> SensorHabits {
        SensorHabits {
            overflow: if rng.random_bool(0.4) {
                Overflow::Wrap
            } else {
                Overflow::Clip
            },
            acc_full_scale_g: pick(rng, &[16.0, 8.0, 4.0, 2.0], &[0.8, 0.1, 0.05, 0.05]),
            gyro_full_scale_dps: pick(rng, &[2000.0, 1000.0, 250.0], &[0.9, 0.05, 0.05]),
            uncalibrated: rng.random_bool(0.3),
            rotated_mount_share: pick(rng, &[0.0, 1.0], &[0.5, 0.5]),
        }
    }
}

impl SensorModel {
    pub fn draw(rng: &mut SmallRng, habits: &SensorHabits) -> SensorModel {
        let mount_rotated = rng.random_bool(habits.rotated_mount_share);
        let mount = if !mount_rotated {
            DQuat::IDENTITY
        } else if rng.random_bool(0.6) {
            // A board turned by right angles (the usual way a node is taped on).
            let quarter =
                |rng: &mut SmallRng| f64::from(rng.random_range(0..4u8)) * 90f64.to_radians();
            DQuat::from_euler(EulerRot::ZYX, quarter(rng), quarter(rng), quarter(rng))
        } else {
            DQuat::from_euler(
                EulerRot::ZYX,
                rng.random_range(-PI..PI),
                rng.random_range(-1.5..1.5),
                rng.random_range(-PI..PI),
            )
        };
        let jitter = |rng: &mut SmallRng, spread: f64| {
            DVec3::new(
                rng.random_range(-spread..spread),
                rng.random_range(-spread..spread),
                rng.random_range(-spread..spread),
            )
        };
        let (acc_scale, acc_offset_g) = if habits.uncalibrated {
            let s = uniform(rng, lit::UNCALIBRATED_SCALE);
            (DVec3::splat(s) + jitter(rng, 0.03), jitter(rng, 0.06))
        } else {
            (DVec3::ONE + jitter(rng, 0.01), jitter(rng, 0.02))
        };
        SensorModel {
            mount,
            mount_rotated,
            gyro_bias_dps: jitter(rng, 4.0),
            gyro_scale: DVec3::ONE + jitter(rng, 0.02),
            gyro_noise_dps: rng.random_range(0.3..1.5),
            acc_offset_g,
            acc_scale,
            acc_noise_g: rng.random_range(0.005..0.03),
            uncalibrated: habits.uncalibrated,
            acc_full_scale_g: habits.acc_full_scale_g,
            gyro_full_scale_dps: habits.gyro_full_scale_dps,
            overflow: habits.overflow,
        }
    }
}

/// A node's output rate over the session: `(from_ms, rate_hz)`, in order; the first from 0.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSchedule(pub Vec<(f64, f64)>);

impl RateSchedule {
    pub fn rate_at(&self, t_ms: f64) -> f64 {
        self.0
            .iter()
            .rev()
            .find(|(from, _)| t_ms >= *from)
            .map_or(self.0[0].1, |(_, r)| *r)
    }
}

/// Anti-alias bandwidth for an output rate: the highest MPU-6050 setting below half of it.
pub fn dlpf_hz(rate_hz: f64) -> f64 {
    lit::DLPF_HZ
        .iter()
        .copied()
        .find(|bw| *bw < rate_hz / 2.0)
        .unwrap_or(lit::DLPF_HZ[lit::DLPF_HZ.len() - 1])
}

/// Second-order Butterworth low-pass (RBJ biquad), one channel.
#[derive(Debug, Clone, Copy, Default)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    fn set_cutoff(&mut self, hz: f64) {
        let w0 = 2.0 * std::f64::consts::PI * hz / INTERNAL_HZ;
        let alpha = w0.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let cos = w0.cos();
        let a0 = 1.0 + alpha;
        self.b = [
            (1.0 - cos) / 2.0 / a0,
            (1.0 - cos) / a0,
            (1.0 - cos) / 2.0 / a0,
        ];
        self.a = [-2.0 * cos / a0, (1.0 - alpha) / a0];
    }

    /// Starts the filter settled on `v` (no start-up transient).
    fn settle(&mut self, v: f64) {
        self.x = [v, v];
        self.y = [v, v];
    }

    fn step(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

/// One output sample of a node, as the node sends it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Sample time, unix ms (fractional: the node's own clock).
    pub t_ms: f64,
    pub acc: [f64; 3],
    pub gyro: [f64; 3],
    /// Fused attitude (roll, pitch, yaw), °.
    pub angle: [f64; 3],
    /// Per channel (acc x, y, z, gyro x, y, z), the full ranges (2 × full scale) the int16
    /// count wrapped by: the true value is the reading plus `wraps × 2 × full scale`. Always 0
    /// on a clipping node. Truth for the evaluation, never on the wire.
    pub wraps: [i8; 6],
}

/// Samples a node's true motion through its sensor. Fed every internal tick in order; emits a
/// [`Reading`] whenever an output sample falls due.
pub struct NodeSampler {
    model: SensorModel,
    schedule: RateSchedule,
    start_ms: f64,
    filters: [Biquad; 6],
    cutoff: f64,
    next_ms: f64,
    gyro_noise: Normal<f64>,
    acc_noise: Normal<f64>,
    started: bool,
}

impl NodeSampler {
    /// `phase_ms`: the node's first sample after the session start (nodes are not in step).
    pub fn new(model: SensorModel, schedule: RateSchedule, start_ms: f64, phase_ms: f64) -> Self {
        NodeSampler {
            gyro_noise: Normal::new(0.0, model.gyro_noise_dps).expect("noise sd is positive"),
            acc_noise: Normal::new(0.0, model.acc_noise_g).expect("noise sd is positive"),
            model,
            schedule,
            start_ms,
            filters: [Biquad::default(); 6],
            cutoff: 0.0,
            next_ms: phase_ms,
            started: false,
        }
    }

    pub fn model(&self) -> &SensorModel {
        &self.model
    }

    /// One tick of true motion: body-frame specific force (m/s²), angular velocity (rad/s),
    /// and the body → world attitude.
    pub fn tick(
        &mut self,
        rng: &mut SmallRng,
        tick: usize,
        force_body: DVec3,
        omega_body: DVec3,
        q: DQuat,
    ) -> Option<Reading> {
        let t_rel = tick as f64 * TICK_MS;
        let m = &self.model;
        let to_sensor = m.mount.inverse();
        let acc = (to_sensor * (force_body / G)) * m.acc_scale + m.acc_offset_g;
        let gyro = (to_sensor * (omega_body * (180.0 / std::f64::consts::PI))) * m.gyro_scale
            + m.gyro_bias_dps;
        let mut raw = [acc.x, acc.y, acc.z, gyro.x, gyro.y, gyro.z];
        if m.overflow == Overflow::Clip {
            // The ADC saturates before the digital filter.
            for (k, v) in raw.iter_mut().enumerate() {
                let fs = self.full_scale(k);
                *v = v.clamp(-fs, fs);
            }
        }
        let rate = self.schedule.rate_at(t_rel);
        let bw = dlpf_hz(rate);
        if bw != self.cutoff {
            self.cutoff = bw;
            for f in &mut self.filters {
                f.set_cutoff(bw);
            }
        }
        if !self.started {
            self.started = true;
            for (f, v) in self.filters.iter_mut().zip(raw) {
                f.settle(v);
            }
        }
        let mut filtered = [0.0; 6];
        for k in 0..6 {
            filtered[k] = self.filters[k].step(raw[k]);
        }
        if t_rel + 1e-9 < self.next_ms {
            return None;
        }
        self.next_ms += 1000.0 / rate;
        Some(self.output(rng, t_rel, filtered, q))
    }

    fn full_scale(&self, channel: usize) -> f64 {
        if channel < 3 {
            self.model.acc_full_scale_g
        } else {
            self.model.gyro_full_scale_dps
        }
    }

    fn output(&self, rng: &mut SmallRng, t_rel: f64, filtered: [f64; 6], q: DQuat) -> Reading {
        let mut v = [0.0; 6];
        let mut wraps = [0i8; 6];
        for k in 0..6 {
            let noise = if k < 3 {
                self.acc_noise.sample(rng)
            } else {
                self.gyro_noise.sample(rng)
            };
            let fs = self.full_scale(k);
            let lsb = fs / 32768.0;
            let mut x = filtered[k] + noise;
            match self.model.overflow {
                Overflow::Clip => x = x.clamp(-fs, fs - lsb),
                Overflow::Wrap => {
                    // int16 overflow: past +FS the count runs on from −FS.
                    let ranges = ((x + fs) / (2.0 * fs)).floor();
                    wraps[k] = ranges.clamp(-100.0, 100.0) as i8;
                    x = (x + fs).rem_euclid(2.0 * fs) - fs;
                }
            }
            v[k] = (x / lsb).round() * lsb;
        }
        let sensor_q = q * self.model.mount;
        let (yaw, pitch, roll) = sensor_q.to_euler(EulerRot::ZYX);
        Reading {
            t_ms: self.start_ms + t_rel,
            acc: [v[0], v[1], v[2]],
            gyro: [v[3], v[4], v[5]],
            angle: [roll.to_degrees(), pitch.to_degrees(), yaw.to_degrees()],
            wraps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn habits(overflow: Overflow, uncalibrated: bool) -> SensorHabits {
        SensorHabits {
            overflow,
            acc_full_scale_g: 16.0,
            gyro_full_scale_dps: 2000.0,
            uncalibrated,
            rotated_mount_share: 0.0,
        }
    }

    fn run(model: SensorModel, omega: DVec3) -> Vec<Reading> {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut s = NodeSampler::new(model, RateSchedule(vec![(0.0, 100.0)]), 0.0, 0.0);
        (0..4000)
            .filter_map(|t| s.tick(&mut rng, t, DVec3::Z * G, omega, DQuat::IDENTITY))
            .collect()
    }

    #[test]
    fn an_uncalibrated_node_reads_about_1_3_g_at_rest() {
        let mut rng = SmallRng::seed_from_u64(7);
        let model = SensorModel::draw(&mut rng, &habits(Overflow::Clip, true));
        let r = run(model, DVec3::ZERO);
        let mag = DVec3::from_array(r[50].acc).length();
        assert!((1.15..1.45).contains(&mag), "{mag}");
    }

    #[test]
    fn past_full_scale_a_wrapping_node_reads_the_opposite_sign_and_a_clipping_one_holds() {
        let mut rng = SmallRng::seed_from_u64(7);
        let omega = DVec3::new(0.0, 0.0, 2300f64.to_radians());
        let wrap = run(
            SensorModel::draw(&mut rng, &habits(Overflow::Wrap, false)),
            omega,
        );
        let clip = run(
            SensorModel::draw(&mut rng, &habits(Overflow::Clip, false)),
            omega,
        );
        assert!(wrap[50].gyro[2] < -1500.0, "{:?}", wrap[50].gyro);
        assert!(clip[50].gyro[2] > 1990.0, "{:?}", clip[50].gyro);
    }

    #[test]
    fn the_rate_schedule_spaces_the_samples() {
        let mut rng = SmallRng::seed_from_u64(3);
        let model = SensorModel::draw(&mut rng, &habits(Overflow::Clip, false));
        let mut s = NodeSampler::new(
            model,
            RateSchedule(vec![(0.0, 200.0), (1000.0, 50.0)]),
            0.0,
            0.0,
        );
        let t: Vec<f64> = (0..4000)
            .filter_map(|k| s.tick(&mut rng, k, DVec3::Z * G, DVec3::ZERO, DQuat::IDENTITY))
            .map(|r| r.t_ms)
            .collect();
        assert_eq!(t[1] - t[0], 5.0);
        assert_eq!(t[t.len() - 1] - t[t.len() - 2], 20.0);
    }
}
