//! A simulated court: two or four players, each with a device, playing serve–rally exchanges,
//! rendered sample by sample into the devices' wire forms, with the truth recorded.
//!
//! Drive it with [`CourtSim::next_batches`]`(now_ms)`: every device's samples up to `now_ms` are
//! generated and the full batches returned (in the order a device would send them, after the
//! configured loss and reordering). Everything is deterministic from the seed, whatever the
//! sequence of `now_ms` values.
//!
//! How each swing moves the racket and the body is the [`SwingModel`]'s business (the
//! [`KinematicModel`] unless [`CourtSim::with_swing_model`] gives another); the court decides
//! who swings what and when, and renders everything around the swings.

// Index loops over parallel arrays read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

use std::collections::VecDeque;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use shuttlegate_core::analysis::vecmath::{self as vm, Quat, Vec3};
use shuttlegate_core::analysis::{DeviceProfile, Stroke};
use shuttlegate_core::batch::{
    BatchForm, BodyPosition, CompactBatch, SeedBatch, SeedFrame, SensorBatch,
};

use super::model::{self, KinematicModel, normal};
use super::player::{Mount, PlayerStyle};
use super::swing::{PlannedSwing, SwingModel, SwingRequest};
use super::truth::{RallyTruth, SwingTruth};
use super::wire::SeedClock;

/// How a device sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WireForm {
    /// V3.3: 30 mixed-node frames, local time-of-day stamps.
    Seed { tz_offset_min: i32 },
    /// One node per batch, `t0`, `rate_hz`, 6 or 9 channels.
    Compact { channels: u8 },
}

/// One simulated device.
#[derive(Debug, Clone, PartialEq)]
pub struct SimDevice {
    pub code: String,
    pub form: WireForm,
    pub rate_hz: f64,
    /// The nodes it carries (sensor ids: waist 1, shoulder 2, wrist 3, racket 4).
    pub positions: Vec<BodyPosition>,
    pub mount_radius_m: f64,
    pub gyro_fs_dps: f64,
    pub acc_fs_g: f64,
    /// Samples per node per compact batch.
    pub batch_samples: usize,
    /// `(at unix ms, new rate)`: the device changes rate mid-session (compact only).
    pub rate_change: Option<(f64, f64)>,
}

impl SimDevice {
    /// A V3.3 hub with all four nodes at `rate_hz`, in UTC+8.
    pub fn seed_hub(code: impl Into<String>, rate_hz: f64) -> Self {
        SimDevice {
            code: code.into(),
            form: WireForm::Seed { tz_offset_min: 480 },
            rate_hz,
            positions: BodyPosition::ALL.to_vec(),
            mount_radius_m: 0.55,
            gyro_fs_dps: 2000.0,
            acc_fs_g: 16.0,
            batch_samples: 30,
            rate_change: None,
        }
    }

    /// Compact-form device with the given nodes and channels.
    pub fn compact(
        code: impl Into<String>,
        rate_hz: f64,
        positions: Vec<BodyPosition>,
        channels: u8,
    ) -> Self {
        SimDevice {
            code: code.into(),
            form: WireForm::Compact { channels },
            rate_hz,
            positions,
            mount_radius_m: 0.55,
            gyro_fs_dps: 2000.0,
            acc_fs_g: 16.0,
            batch_samples: 50,
            rate_change: None,
        }
    }

    /// What the analyser should be told about this device.
    pub fn profile(&self) -> DeviceProfile {
        DeviceProfile {
            device: self.code.clone(),
            user: Some(format!("user-{}", self.code)),
            mount_radius_m: self.mount_radius_m,
            acc_full_scale_g: self.acc_fs_g,
            gyro_full_scale_dps: self.gyro_fs_dps,
            positions: self.positions.clone(),
            axes: Default::default(),
            wrist_grip_deg: None,
            overflow: Default::default(),
            infer_axes: false,
        }
    }

    fn mount(&self) -> Mount {
        Mount {
            radius_m: self.mount_radius_m,
            gyro_fs_dps: self.gyro_fs_dps,
            acc_fs_g: self.acc_fs_g,
        }
    }
}

/// Transport impairments, per device.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairments {
    /// Probability a batch is lost.
    pub drop_batch: f64,
    /// Probability a batch is sent after its successor.
    pub reorder_batch: f64,
}

/// Court-level settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CourtConfig {
    /// Session start, unix ms.
    pub start_ms: f64,
    pub session_id: String,
    pub impairments: Impairments,
    /// Probability of a practice (air) swing in each pause between rallies.
    pub air_swing_rate: f64,
    /// Sensor noise and bias on (off gives clean signals for unit tests).
    pub noise: bool,
}

impl Default for CourtConfig {
    fn default() -> Self {
        CourtConfig {
            start_ms: 1_732_400_000_000.0,
            session_id: "sim-session".into(),
            impairments: Impairments::default(),
            air_swing_rate: 0.4,
            noise: true,
        }
    }
}

/// A player and the device they wear.
#[derive(Debug, Clone)]
pub struct SimPlayer {
    pub style: PlayerStyle,
    pub device: SimDevice,
}

impl SimPlayer {
    /// A player of `strength` (0 club … 1 elite) drawn from `seed`.
    pub fn new(seed: u64, strength: f64, device: SimDevice) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5157_4e47);
        SimPlayer {
            style: PlayerStyle::random(&mut rng, strength),
            device,
        }
    }
}

/// Per-node sensor imperfections.
#[derive(Debug, Clone, Copy)]
struct NodeErrors {
    gyro_bias: Vec3,
    acc_bias: Vec3,
    gyro_noise: f64,
    acc_noise: f64,
    angle_base: Vec3,
}

struct DeviceState {
    /// Sensor noise, drawn sample by sample.
    rng: SmallRng,
    /// Swing planning, drawn rally by rally (separate, so that how often the simulation is
    /// polled cannot change what is drawn).
    rng_plan: SmallRng,
    rng_link: SmallRng,
    /// Plans in contact order; old ones are pruned.
    plans: VecDeque<Box<dyn PlannedSwing>>,
    /// Walking steps between rallies: (time, amplitude g).
    walk: VecDeque<(f64, f64)>,
    /// Attitude of the racket before the first swing / after the latest plan.
    rest: Quat,
    last_planned: Quat,
    last_impact: f64,
    /// Next sample: index since the rate anchor, and the anchor.
    k: u64,
    anchor_t: f64,
    rate: f64,
    errors: [NodeErrors; 4],
    compact_rows: [Vec<f32>; 4],
    compact_t0: [f64; 4],
    seed_frames: Vec<SeedFrame>,
    held_back: Option<SensorBatch>,
    seq: u64,
}

/// The court simulation.
pub struct CourtSim {
    config: CourtConfig,
    players: Vec<SimPlayer>,
    states: Vec<DeviceState>,
    /// Plans every swing; shared, as it holds no per-court state.
    swing_model: Arc<dyn SwingModel>,
    rng: SmallRng,
    scheduled_until: f64,
    serving_side: usize,
    truth: Vec<SwingTruth>,
    rallies: Vec<RallyTruth>,
}

fn slot(p: BodyPosition) -> usize {
    match p {
        BodyPosition::Waist => 0,
        BodyPosition::Shoulder => 1,
        BodyPosition::Wrist => 2,
        BodyPosition::Racket => 3,
    }
}

fn sensor_id(p: BodyPosition) -> u32 {
    slot(p) as u32 + 1
}

impl CourtSim {
    pub fn new(seed: u64, players: Vec<SimPlayer>, config: CourtConfig) -> Self {
        let start = config.start_ms;
        let states = players
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut rng =
                    SmallRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(i as u64 + 1));
                let rng_link =
                    SmallRng::seed_from_u64(seed.wrapping_mul(131).wrapping_add(i as u64 + 7));
                let noise = if config.noise { 1.0 } else { 0.0 };
                let errors = std::array::from_fn(|_| NodeErrors {
                    gyro_bias: [0, 1, 2].map(|_| noise * 3.0 * (rng.random::<f64>() * 2.0 - 1.0)),
                    acc_bias: [0, 1, 2].map(|_| noise * 0.03 * (rng.random::<f64>() * 2.0 - 1.0)),
                    gyro_noise: noise * (0.5 + 1.5 * rng.random::<f64>()),
                    acc_noise: noise * (0.01 + 0.02 * rng.random::<f64>()),
                    angle_base: [0, 1, 2].map(|_| 60.0 * (rng.random::<f64>() * 2.0 - 1.0)),
                });
                let rest = vm::from_rotation_vector([0.3, -0.9, 0.2]);
                let rng_plan =
                    SmallRng::seed_from_u64(seed.wrapping_mul(977).wrapping_add(i as u64 + 3));
                DeviceState {
                    rng,
                    rng_plan,
                    rng_link,
                    plans: VecDeque::new(),
                    walk: VecDeque::new(),
                    rest,
                    last_planned: rest,
                    last_impact: f64::NEG_INFINITY,
                    k: 0,
                    anchor_t: start,
                    rate: p.device.rate_hz,
                    errors,
                    compact_rows: Default::default(),
                    compact_t0: [start; 4],
                    seed_frames: Vec::new(),
                    held_back: None,
                    seq: 0,
                }
            })
            .collect();
        CourtSim {
            scheduled_until: start + 2000.0,
            config,
            players,
            states,
            swing_model: Arc::new(KinematicModel),
            rng: SmallRng::seed_from_u64(seed),
            serving_side: 0,
            truth: Vec::new(),
            rallies: Vec::new(),
        }
    }

    /// `n` players (2 or 4) with a mix of devices: V3.3 hubs with all nodes at 200 Hz,
    /// compact 9-channel all-node devices at 200 Hz and compact racket-only devices at
    /// 500 Hz; strengths spread from club to elite.
    pub fn standard(seed: u64, n: usize, config: CourtConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0xC0DE);
        let players = (0..n)
            .map(|i| {
                let code = format!("dev-{i}");
                let device = match (seed as usize + i) % 3 {
                    0 => SimDevice::seed_hub(code, 200.0),
                    1 => SimDevice::compact(code, 200.0, BodyPosition::ALL.to_vec(), 9),
                    _ => SimDevice::compact(code, 500.0, vec![BodyPosition::Racket], 6),
                };
                SimPlayer::new(
                    seed.wrapping_mul(7919).wrapping_add(i as u64),
                    rng.random::<f64>(),
                    device,
                )
            })
            .collect();
        CourtSim::new(seed, players, config)
    }

    /// The same court with every device at `rate_hz` (before any sample is rendered).
    pub fn with_rate(mut self, rate_hz: f64) -> Self {
        for (p, st) in self.players.iter_mut().zip(&mut self.states) {
            p.device.rate_hz = rate_hz;
            st.rate = rate_hz;
        }
        self
    }

    /// The same court with its swings planned by `model` (before any sample is rendered:
    /// swings are planned on the first [`CourtSim::next_batches`]).
    pub fn with_swing_model(mut self, model: Arc<dyn SwingModel>) -> Self {
        self.swing_model = model;
        self
    }

    pub fn swing_model(&self) -> &Arc<dyn SwingModel> {
        &self.swing_model
    }

    pub fn players(&self) -> &[SimPlayer] {
        &self.players
    }

    pub fn config(&self) -> &CourtConfig {
        &self.config
    }

    /// Swings whose contact is at or before the time generated so far.
    pub fn truth(&self) -> &[SwingTruth] {
        &self.truth
    }

    /// Rallies completed so far.
    pub fn rallies(&self) -> &[RallyTruth] {
        &self.rallies
    }

    /// The time-of-day converter of device `i` (V3.3 form), if it uses one.
    pub fn seed_clock(&self, i: usize) -> Option<SeedClock> {
        match self.players.get(i)?.device.form {
            WireForm::Seed { tz_offset_min } => Some(SeedClock { tz_offset_min }),
            WireForm::Compact { .. } => None,
        }
    }

    /// All samples up to `now_ms`, as the batches each device would send by then.
    pub fn next_batches(&mut self, now_ms: f64) -> Vec<(usize, SensorBatch)> {
        self.schedule_until(now_ms + 6000.0);
        let mut out = Vec::new();
        for i in 0..self.players.len() {
            let mut produced = Vec::new();
            self.render_device(i, now_ms, &mut produced);
            for b in produced {
                self.impair(i, b, &mut out);
            }
        }
        out
    }

    /// Ends the session: everything generated so far goes out (partial batches included).
    pub fn flush(&mut self) -> Vec<(usize, SensorBatch)> {
        let mut out = Vec::new();
        for i in 0..self.players.len() {
            let mut produced = Vec::new();
            self.emit_partial(i, &mut produced);
            for b in produced {
                self.impair(i, b, &mut out);
            }
            if let Some(b) = self.states[i].held_back.take() {
                out.push((i, b));
            }
        }
        out
    }

    // ---- schedule -------------------------------------------------------------------------

    fn schedule_until(&mut self, t: f64) {
        while self.scheduled_until < t {
            self.schedule_rally();
        }
    }

    fn schedule_rally(&mut self) {
        let n = self.players.len();
        let idle_start = self.scheduled_until;
        let gap = 6000.0 + 6000.0 * self.rng.random::<f64>();
        let serve_t = idle_start + gap;
        // Walking about between rallies, stopping 3 s before the serve.
        for i in 0..n {
            let mut w = idle_start + 1000.0;
            while w < serve_t - 3000.0 {
                let amp = 0.15 + 0.15 * self.rng.random::<f64>();
                self.states[i].walk.push_back((w, amp));
                w += 450.0 + 150.0 * self.rng.random::<f64>();
            }
        }
        if n > 0 && self.rng.random::<f64>() < self.config.air_swing_rate && gap > 7000.0 {
            let who = self.rng.random_range(0..n);
            let stroke = [Stroke::Smash, Stroke::Clear, Stroke::Drive, Stroke::Lift]
                [self.rng.random_range(0..4)];
            let t = idle_start + 1500.0 + (gap - 6000.0) * self.rng.random::<f64>();
            self.plan(who, stroke, t, false, true);
        }
        let side = self.serving_side;
        self.serving_side = if self.rng.random::<bool>() {
            side
        } else {
            1 - side
        };
        let pick = |rng: &mut SmallRng, side: usize| -> usize {
            let on_side: Vec<usize> = (0..n).filter(|i| i % 2 == side).collect();
            on_side[rng
                .random_range(0..on_side.len().max(1))
                .min(on_side.len().saturating_sub(1))]
        };
        if n < 2 {
            self.scheduled_until = serve_t + 2000.0;
            return;
        }
        let mut hitters = Vec::new();
        let mut t = serve_t;
        let mut stroke = Stroke::Serve;
        let mut hitter = pick(&mut self.rng, side);
        loop {
            t = t.max(self.states[hitter].last_impact + 1100.0);
            let first = hitters.is_empty();
            self.plan(hitter, stroke, t, true, !first);
            hitters.push(hitter);
            let end_p = if stroke == Stroke::Smash { 0.3 } else { 0.1 };
            if hitters.len() >= 40 || (!first && self.rng.random::<f64>() < end_p) {
                break;
            }
            t += flight_ms(stroke, &mut self.rng);
            stroke = next_stroke(stroke, &mut self.rng);
            let other = 1 - hitter % 2;
            hitter = pick(&mut self.rng, other);
        }
        self.rallies.push(RallyTruth {
            t_start: serve_t,
            t_end: t,
            hitters,
        });
        self.scheduled_until = t + 1500.0;
    }

    fn plan(&mut self, i: usize, stroke: Stroke, t: f64, impact: bool, footwork: bool) {
        let st = &mut self.states[i];
        let player = &self.players[i];
        let has_chain = [
            BodyPosition::Waist,
            BodyPosition::Shoulder,
            BodyPosition::Wrist,
        ]
        .iter()
        .any(|p| player.device.positions.contains(p));
        let request = SwingRequest {
            device_index: i,
            device: &player.device.code,
            style: &player.style,
            stroke,
            t_impact: t,
            impact,
            footwork,
            has_chain,
            mount: player.device.mount(),
            q_prev: st.last_planned,
        };
        let plan = self.swing_model.plan(&request, &mut st.rng_plan);
        st.last_planned = plan.start_attitude();
        st.last_impact = t;
        self.truth.push(plan.truth().clone());
        st.plans.push_back(plan);
    }

    // ---- rendering ------------------------------------------------------------------------

    fn render_device(&mut self, i: usize, now_ms: f64, out: &mut Vec<SensorBatch>) {
        loop {
            let st = &self.states[i];
            let t = st.anchor_t + st.k as f64 * 1000.0 / st.rate;
            if t > now_ms {
                break;
            }
            if let Some((at, new_rate)) = self.players[i].device.rate_change
                && t >= at
                && st.rate != new_rate
            {
                self.emit_partial(i, out);
                let st = &mut self.states[i];
                st.anchor_t = t;
                st.k = 0;
                st.rate = new_rate;
                continue;
            }
            self.render_sample(i, t, out);
            self.states[i].k += 1;
        }
        self.prune(i, now_ms);
    }

    fn prune(&mut self, i: usize, now_ms: f64) {
        let st = &mut self.states[i];
        while st.plans.len() > 3 && st.plans[1].segment().1 + 3000.0 < now_ms {
            st.plans.pop_front();
        }
        while st.walk.front().is_some_and(|&(t, _)| t + 1000.0 < now_ms) {
            st.walk.pop_front();
        }
    }

    fn render_sample(&mut self, i: usize, t: f64, out: &mut Vec<SensorBatch>) {
        let device = &self.players[i].device;
        let (form, gyro_fs, acc_fs, batch_samples) = (
            device.form,
            device.gyro_fs_dps,
            device.acc_fs_g,
            device.batch_samples,
        );
        let mut positions = [BodyPosition::Racket; 4];
        let n = device.positions.len().min(4);
        positions[..n].copy_from_slice(&device.positions[..n]);
        for &p in &positions[..n] {
            let (acc, gyro, angle) = match p {
                BodyPosition::Racket => self.racket_truth(i, t),
                _ => self.body_truth(i, slot(p), t),
            };
            let st = &mut self.states[i];
            let e = st.errors[slot(p)];
            let gyro = [0, 1, 2].map(|k| {
                let v = gyro[k] + e.gyro_bias[k] + e.gyro_noise * normal(&mut st.rng);
                v.clamp(-gyro_fs, gyro_fs) as f32
            });
            let acc = [0, 1, 2].map(|k| {
                let v = acc[k] + e.acc_bias[k] + e.acc_noise * normal(&mut st.rng);
                v.clamp(-acc_fs, acc_fs) as f32
            });
            let angle = [0, 1, 2].map(|k| model::wrap180(angle[k] + e.angle_base[k]) as f32);
            match form {
                WireForm::Compact { channels } => {
                    let rows = &mut st.compact_rows[slot(p)];
                    if rows.is_empty() {
                        st.compact_t0[slot(p)] = t;
                    }
                    rows.extend_from_slice(&acc);
                    rows.extend_from_slice(&gyro);
                    if channels == 9 {
                        rows.extend_from_slice(&angle);
                    }
                    if rows.len() / usize::from(channels) >= batch_samples {
                        out.push(self.compact_batch(i, p));
                    }
                }
                WireForm::Seed { tz_offset_min } => {
                    let clock = SeedClock { tz_offset_min };
                    st.seed_frames.push(SeedFrame {
                        sensor_id: Some(sensor_id(p)),
                        timestamp: Some(clock.stamp(t.round() as i64)),
                        acc,
                        gyro,
                        angle: Some(angle),
                    });
                    if st.seed_frames.len() >= 30 {
                        out.push(self.seed_batch(i));
                    }
                }
            }
        }
    }

    fn emit_partial(&mut self, i: usize, out: &mut Vec<SensorBatch>) {
        for p in self.players[i].device.positions.clone() {
            if !self.states[i].compact_rows[slot(p)].is_empty() {
                out.push(self.compact_batch(i, p));
            }
        }
        if !self.states[i].seed_frames.is_empty() {
            out.push(self.seed_batch(i));
        }
    }

    fn compact_batch(&mut self, i: usize, p: BodyPosition) -> SensorBatch {
        let channels = match self.players[i].device.form {
            WireForm::Compact { channels } => channels,
            WireForm::Seed { .. } => 6,
        };
        let st = &mut self.states[i];
        st.seq += 1;
        SensorBatch {
            device: self.players[i].device.code.clone(),
            session_id: self.config.session_id.clone(),
            seq: Some(st.seq),
            form: BatchForm::Compact(CompactBatch {
                sensor_id: sensor_id(p),
                t0: st.compact_t0[slot(p)].round() as i64,
                rate_hz: st.rate,
                channels,
                samples: std::mem::take(&mut st.compact_rows[slot(p)]),
            }),
        }
    }

    fn seed_batch(&mut self, i: usize) -> SensorBatch {
        let st = &mut self.states[i];
        let frames = std::mem::take(&mut st.seed_frames);
        let sensor_type = frames
            .first()
            .and_then(|f| f.sensor_id)
            .and_then(BodyPosition::default_for_sensor_id)
            .map(|p| p.as_str().to_string());
        SensorBatch {
            device: self.players[i].device.code.clone(),
            session_id: self.config.session_id.clone(),
            seq: None,
            form: BatchForm::Seed(SeedBatch {
                sensor_type,
                // V3.3 sends millis() since boot; the hub booted a minute before the session.
                timestamp: Some(
                    (st.anchor_t + st.k as f64 * 1000.0 / st.rate - self.config.start_ms) as i64
                        + 60_000,
                ),
                frames,
            }),
        }
    }

    /// Applies loss and reordering to one produced batch of device `i`.
    fn impair(&mut self, i: usize, b: SensorBatch, out: &mut Vec<(usize, SensorBatch)>) {
        let imp = self.config.impairments;
        let st = &mut self.states[i];
        if st.rng_link.random::<f64>() < imp.drop_batch {
            return;
        }
        if let Some(held) = st.held_back.take() {
            // The held batch goes out right after its successor.
            out.push((i, b));
            out.push((i, held));
            return;
        }
        if st.rng_link.random::<f64>() < imp.reorder_batch {
            st.held_back = Some(b);
            return;
        }
        out.push((i, b));
    }

    /// Racket node truth at `t`: (acc g, gyro °/s, angle °).
    fn racket_truth(&self, i: usize, t: f64) -> (Vec3, Vec3, Vec3) {
        let st = &self.states[i];
        let up = [0.0, 0.0, 1.0];
        let next = st.plans.iter().position(|p| p.segment().1 >= t);
        let tremor = tremor(t);
        let walk = walk_g(&st.walk, t);
        let (q, rate, lin, transient) = match next {
            Some(k) if st.plans[k].segment().0 <= t => {
                let p = &st.plans[k];
                (
                    p.attitude(t),
                    p.racket_rate(t),
                    p.hand_acceleration(t),
                    p.contact_transient(t),
                )
            }
            _ => {
                let (qa, ta) = match next.map_or(st.plans.len(), |k| k).checked_sub(1) {
                    Some(k) => (
                        st.plans[k].attitude(st.plans[k].segment().1),
                        st.plans[k].segment().1,
                    ),
                    None => (st.rest, self.config.start_ms),
                };
                let (qb, tb) = next.map_or((qa, ta + 1.0), |k| {
                    (st.plans[k].start_attitude(), st.plans[k].segment().0)
                });
                let (q, rate) = transition(qa, qb, ta, tb, t);
                let steps = next.map_or(0.0, |k| st.plans[k].footwork_g(t));
                (q, rate, [0.0, 0.0, (steps + walk) * model::G], [0.0; 3])
            }
        };
        let specific = vm::add(up, vm::scale(lin, 1.0 / model::G));
        let acc = vm::add(vm::rotate(vm::conj(q), specific), transient);
        (acc, vm::add(rate, tremor), vm::euler_deg(q))
    }

    /// Body node `k` (0 waist, 1 shoulder, 2 wrist) truth at `t`.
    fn body_truth(&self, i: usize, k: usize, t: f64) -> (Vec3, Vec3, Vec3) {
        let st = &self.states[i];
        let (mut angle, mut rate, mut steps) = (0.0, 0.0, 0.0);
        let mut cross = 0.1;
        for p in st
            .plans
            .iter()
            .filter(|p| (p.truth().t_impact - t).abs() < 2500.0)
        {
            let (a, r) = p.body_motion(k, t);
            angle += a;
            rate += r;
            steps += p.footwork_g(t);
            if (p.truth().t_impact - t).abs() < 800.0 {
                cross = p.body_cross_share(k);
            }
        }
        steps += walk_g(&st.walk, t);
        // Segment k turns about its own axis: waist about z (yaw), shoulder y (pitch), wrist
        // x (roll), with a cross-axis share on the next axis.
        let axis_i = [2, 1, 0][k];
        let cross_i = (axis_i + 1) % 3;
        let mut gyro = tremor(t);
        gyro[axis_i] += rate;
        gyro[cross_i] += cross * rate;
        let mut e = [0.0; 3];
        e[axis_i] = 1.0;
        let q = vm::from_rotation_vector(vm::scale(e, angle.to_radians()));
        let acc = vm::rotate(vm::conj(q), [0.0, 0.0, 1.0 + steps]);
        let mut ang = [0.0; 3];
        ang[axis_i] = angle;
        (acc, gyro, ang)
    }
}

/// Smoothstep slerp from `qa` (at `ta`) to `qb` (at `tb`): attitude and body rate (°/s).
fn transition(qa: Quat, qb: Quat, ta: f64, tb: f64, t: f64) -> (Quat, Vec3) {
    let span = (tb - ta).max(1.0);
    let u = ((t - ta) / span).clamp(0.0, 1.0);
    let s = u * u * (3.0 - 2.0 * u);
    let ds = 6.0 * u * (1.0 - u) / (span / 1000.0);
    let r = vm::to_rotation_vector(vm::mul(vm::conj(qa), qb));
    let q = vm::mul(qa, vm::from_rotation_vector(vm::scale(r, s)));
    (q, vm::scale(r, ds.to_degrees()))
}

/// Hand tremor and small racket movements in the ready position, °/s.
fn tremor(t: f64) -> Vec3 {
    let s = t / 1000.0;
    [
        4.0 * (std::f64::consts::TAU * 3.1 * s).sin(),
        4.0 * (std::f64::consts::TAU * 4.3 * s + 1.0).sin(),
        4.0 * (std::f64::consts::TAU * 2.7 * s + 2.0).sin(),
    ]
}

fn walk_g(walk: &VecDeque<(f64, f64)>, t: f64) -> f64 {
    walk.iter()
        .map(|&(ts, a)| model::step_acceleration(t - ts, a))
        .sum()
}

/// Shuttle flight time after a stroke, ms (a smash arrives in ~0.5 s, a clear in ~1.6 s).
fn flight_ms(stroke: Stroke, rng: &mut SmallRng) -> f64 {
    let (lo, hi) = match stroke {
        Stroke::Serve => (900.0, 1400.0),
        Stroke::Clear => (1300.0, 1800.0),
        Stroke::Lift => (1100.0, 1600.0),
        Stroke::Smash => (450.0, 700.0),
        Stroke::Drop | Stroke::Net => (800.0, 1200.0),
        Stroke::Drive | Stroke::Unknown => (500.0, 800.0),
    };
    lo + (hi - lo) * rng.random::<f64>()
}

/// What a player can answer a stroke with.
fn next_stroke(prev: Stroke, rng: &mut SmallRng) -> Stroke {
    use Stroke::*;
    let options: &[(Stroke, f64)] = match prev {
        Serve => &[(Lift, 0.3), (Net, 0.3), (Drive, 0.2), (Clear, 0.2)],
        Clear | Lift => &[(Smash, 0.35), (Clear, 0.25), (Drop, 0.3), (Drive, 0.1)],
        Smash => &[(Lift, 0.5), (Net, 0.2), (Drive, 0.3)],
        Drop | Net => &[(Net, 0.4), (Lift, 0.6)],
        Drive | Unknown => &[(Drive, 0.5), (Lift, 0.2), (Net, 0.3)],
    };
    let mut x = rng.random::<f64>();
    for &(s, p) in options {
        if x < p {
            return s;
        }
        x -= p;
    }
    options[options.len() - 1].0
}
