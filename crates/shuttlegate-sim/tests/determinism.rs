//! The simulator's output pinned bit for bit: a fixed court's batches and truth hashed against a
//! constant recorded from the code as it stood. A refactor that reorders one random draw, or
//! changes one rounding, changes the hash. If the output is meant to change, record the new
//! constant in the same commit and say why. (`exp`, `sin` and friends come from the platform's
//! libm, so the constant is that of x86_64 Linux glibc; another platform may need its own.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::rngs::SmallRng;

use shuttlegate_core::batch::{BatchForm, SensorBatch};
use shuttlegate_sim::{
    CourtConfig, CourtSim, KinematicModel, PlannedSwing, SwingModel, SwingRequest,
};

/// FNV-1a, 64-bit: simple, stable across Rust versions and platforms (unlike `DefaultHasher`).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    fn f32s(&mut self, vs: &[f32]) {
        for v in vs {
            self.bytes(&v.to_bits().to_le_bytes());
        }
    }

    /// Length-prefixed, so that adjacent strings cannot trade bytes.
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.u64(1);
                self.u64(v as u64);
            }
            None => self.u64(0),
        }
    }

    fn batch(&mut self, i: usize, b: &SensorBatch) {
        self.u64(i as u64);
        self.str(&b.device);
        self.str(&b.session_id);
        self.opt_i64(b.seq.map(|s| s as i64));
        match &b.form {
            BatchForm::Compact(c) => {
                self.u64(1);
                self.u64(u64::from(c.sensor_id));
                self.u64(c.t0 as u64);
                self.u64(c.rate_hz.to_bits());
                self.u64(u64::from(c.channels));
                self.u64(c.samples.len() as u64);
                self.f32s(&c.samples);
            }
            BatchForm::Seed(s) => {
                self.u64(2);
                self.str(s.sensor_type.as_deref().unwrap_or("\u{0}none"));
                self.opt_i64(s.timestamp);
                self.u64(s.frames.len() as u64);
                for f in &s.frames {
                    self.opt_i64(f.sensor_id.map(i64::from));
                    self.opt_i64(f.timestamp);
                    self.f32s(&f.acc);
                    self.f32s(&f.gyro);
                    match f.angle {
                        Some(a) => {
                            self.u64(1);
                            self.f32s(&a);
                        }
                        None => self.u64(0),
                    }
                }
            }
        }
    }
}

/// Runs a standard court for `seconds`, polled once a second, then flushed, and hashes every
/// batch in the order it came out, then the truth (whose `Debug` prints each f64 exactly).
fn court_hash(
    seed: u64,
    players: usize,
    seconds: u32,
    model: Option<Arc<dyn SwingModel>>,
) -> (u64, usize, usize) {
    let config = CourtConfig::default();
    let start = config.start_ms;
    let mut sim = CourtSim::standard(seed, players, config);
    if let Some(model) = model {
        sim = sim.with_swing_model(model);
    }
    let mut h = Fnv::new();
    let mut batches = 0;
    for s in 1..=seconds {
        for (i, b) in sim.next_batches(start + f64::from(s) * 1000.0) {
            h.batch(i, &b);
            batches += 1;
        }
    }
    for (i, b) in sim.flush() {
        h.batch(i, &b);
        batches += 1;
    }
    h.str(&format!("{:?}", sim.truth()));
    h.str(&format!("{:?}", sim.rallies()));
    (h.0, batches, sim.truth().len())
}

#[test]
fn a_standard_court_at_seed_7_renders_exactly_what_it_always_has() {
    let (hash, batches, swings) = court_hash(7, 2, 30, None);
    // The court must have swung, or the hash would not pin the swing model.
    assert!(swings > 0, "no swings in 30 s");
    assert_eq!(
        (hash, batches, swings),
        (0x6861_ec94_a0df_9103, 785, 20),
        "the simulator's output changed (hash {hash:#018x}, {batches} batches, {swings} swings)"
    );
}

/// The kinematic model, counting the swings it is asked for.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

impl SwingModel for Counting {
    fn plan(&self, request: &SwingRequest<'_>, rng: &mut SmallRng) -> Box<dyn PlannedSwing> {
        self.0.fetch_add(1, Ordering::Relaxed);
        KinematicModel.plan(request, rng)
    }
}

#[test]
fn a_plugged_in_swing_model_plans_every_swing_and_the_court_renders_its_plans() {
    let model = Arc::new(Counting::default());
    let (hash, batches, swings) = court_hash(7, 2, 30, Some(model.clone()));
    // The court records a swing's truth when it plans it: one plan per truth.
    assert_eq!(model.0.load(Ordering::Relaxed), swings);
    // The same draws through the seam as through the default: the same output.
    assert_eq!((hash, batches, swings), court_hash(7, 2, 30, None));
}
