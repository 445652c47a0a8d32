//! Realistic synthetic IMU batches for the journal's tests, crash test and benchmark.
//!
//! Compression figures are only meaningful on data that looks like what devices send, so this
//! models it simply but honestly (the full kinematic simulator is the `shuttlegate-sim` crate;
//! the journal does not depend on it):
//! - compact form: an MPU-6050-class node at 1 kHz, ±16 g (2048 LSB/g) and ±2000 °/s
//!   (16.4 LSB/(°/s)), values computed by the firmware as `count as f32 / lsb`; sensor noise of
//!   a few LSB; a swing is a ~250 ms burst (up to ~12 g, ~1800 °/s) over an idle pose;
//! - seed form: the V3.3 hub, 30 frames per message cycling four nodes (waist, shoulder, wrist,
//!   racket) at 100 Hz each, `HHMMSSmmm` timestamps, acc/gyro/angle in one of three styles:
//!   converted from WT901-style int16 counts, printed with few decimals (as in SPEC §1.1's wire
//!   example), or arbitrary fused floats (the worst case for compression).

use rand::Rng;

use crate::batch::{BatchForm, CompactBatch, SeedBatch, SeedFrame, SensorBatch};

/// What a compact batch shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    Idle,
    Swing,
}

fn gauss(rng: &mut impl Rng) -> f64 {
    // Sum of uniforms: close enough to normal for noise, cheap and dependency-free.
    (0..6).map(|_| rng.random::<f64>()).sum::<f64>() - 3.0
}

/// How compact-form firmware turns its int16 counts into the JSON numbers it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactStyle {
    /// `(float)raw / lsb`, printed round-trip exact: every count survives.
    Counts,
    /// Printed with 2 decimals (g) and 1 decimal (°/s), as in SPEC §1.1's compact example.
    Decimals,
}

/// A compact 6-axis batch of `rows` samples at 1 kHz starting at `t0`, sent as counts.
pub fn compact_batch(
    rng: &mut impl Rng,
    device: &str,
    session: &str,
    seq: Option<u64>,
    t0: i64,
    rows: usize,
    motion: Motion,
) -> SensorBatch {
    let batch = (device, session, seq, t0);
    compact_batch_as(rng, batch, rows, motion, CompactStyle::Counts)
}

/// A compact 6-axis batch as [`compact_batch`], with the firmware's number style chosen.
/// `batch` is (device, session, seq, t0).
pub fn compact_batch_as(
    rng: &mut impl Rng,
    (device, session, seq, t0): (&str, &str, Option<u64>, i64),
    rows: usize,
    motion: Motion,
    style: CompactStyle,
) -> SensorBatch {
    let print = |count: i16, lsb: f32, decimals: f32| -> f32 {
        let v = f32::from(count) / lsb;
        match style {
            CompactStyle::Counts => v,
            // A rounded zero prints as "0.00", never "-0.00".
            CompactStyle::Decimals => (v * decimals).round() / decimals + 0.0,
        }
    };
    let mut samples = Vec::with_capacity(rows * 6);
    let swing_at = rng.random_range(0.0..(rows as f64).max(1.0));
    let peak = rng.random_range(0.6..1.0);
    for i in 0..rows {
        let t = i as f64;
        let envelope = match motion {
            Motion::Idle => 0.0,
            Motion::Swing => {
                let x = (t - swing_at) / 60.0;
                peak * (-x * x).exp()
            }
        };
        let phase = t / 40.0;
        let acc_g = [
            0.02 + envelope * 11.0 * phase.sin(),
            -0.98 + envelope * 7.0 * (phase * 1.3).cos(),
            0.11 + envelope * 5.0 * (phase * 0.7).sin(),
        ];
        let gyro_dps = [
            envelope * 1800.0 * (phase * 0.9).cos(),
            envelope * 900.0 * (phase * 1.1).sin(),
            envelope * 600.0 * (phase * 1.7).cos(),
        ];
        for a in acc_g {
            let count = (a * 2048.0 + 3.0 * gauss(rng))
                .round()
                .clamp(-32768.0, 32767.0) as i16;
            // Firmware converts an int16 count, `(float)raw / 2048.0f`: never -0.0.
            samples.push(print(count, 2048.0, 100.0));
        }
        for g in gyro_dps {
            let count = (g * 16.4 + 1.5 * gauss(rng))
                .round()
                .clamp(-32768.0, 32767.0) as i16;
            samples.push(print(count, 16.4, 10.0));
        }
    }
    SensorBatch {
        device: device.to_owned(),
        session_id: session.to_owned(),
        seq,
        form: BatchForm::Compact(CompactBatch {
            sensor_id: 4,
            t0,
            rate_hz: 1000.0,
            channels: 6,
            samples,
        }),
    }
}

/// How seed-form floats reach the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedStyle {
    /// WT901-style conversions of int16 counts (acc ×16/32768 g, gyro ×2000/32768 °/s,
    /// angle ×180/32768 °), printed round-trip exact.
    Counts,
    /// Printed with 2 decimals (acc) and 1 decimal (gyro, angle), like SPEC §1.1's example.
    Decimals,
    /// Arbitrary f32 from on-node fusion arithmetic (no resolution at all).
    Fused,
}

/// A V3.3 seed-form batch of `frames` frames, cycling nodes 1..=4, starting at local time
/// `hhmmss_ms` (e.g. 93015123).
pub fn seed_batch(
    rng: &mut impl Rng,
    device: &str,
    session: &str,
    start_ms_of_day: i64,
    frames: usize,
    style: SeedStyle,
) -> SensorBatch {
    let mut out = Vec::with_capacity(frames);
    for i in 0..frames {
        let node = (i % 4) as u32 + 1;
        let ms = start_ms_of_day + (i / 4) as i64 * 10 + i64::from(node) - 1;
        let t = ms as f64 / 1000.0;
        let swing = (t * 2.0).sin().max(0.0).powi(4);
        let acc = [
            0.01 + swing * 6.0 * (t * 9.0).sin(),
            -0.02 + swing * 4.0 * (t * 7.0).cos(),
            0.99 + swing * 2.0 * (t * 5.0).sin(),
        ];
        let gyro = [
            swing * 900.0 * (t * 8.0).cos(),
            swing * 500.0 * (t * 6.0).sin(),
            swing * 300.0 * (t * 4.0).cos(),
        ];
        let angle = [
            2.1 + swing * 40.0 * (t * 3.0).sin(),
            -0.4 + swing * 30.0 * (t * 2.0).cos(),
            87.0 + 5.0 * (t * 0.5).sin(),
        ];
        let quantise = |v: f64, full_scale: f64, noise: f64, rng: &mut dyn rand::RngCore| -> f32 {
            let n = noise * ((0..6).map(|_| rng.random::<f64>()).sum::<f64>() - 3.0);
            match style {
                SeedStyle::Counts => {
                    let count = (v / full_scale * 32768.0 + n)
                        .round()
                        .clamp(-32768.0, 32767.0) as i16;
                    f32::from(count) * (full_scale as f32 / 32768.0)
                }
                SeedStyle::Decimals => {
                    let decimals = if full_scale < 100.0 { 100.0 } else { 10.0 };
                    // Printed "%.2f": "-0.00" is printed as such only by careless firmware; a
                    // rounded zero is "0.00".
                    let x = ((v + n * full_scale / 32768.0) * decimals).round() / decimals;
                    (x + 0.0) as f32
                }
                SeedStyle::Fused => (v + n * full_scale / 32768.0 * 1.000_123) as f32,
            }
        };
        out.push(SeedFrame {
            sensor_id: Some(node),
            timestamp: Some(ms_of_day_to_hhmmss(ms)),
            acc: acc.map(|v| quantise(v, 16.0, 3.0, rng)),
            gyro: gyro.map(|v| quantise(v, 2000.0, 2.0, rng)),
            angle: Some(angle.map(|v| quantise(v, 180.0, 2.0, rng))),
        });
    }
    SensorBatch {
        device: device.to_owned(),
        session_id: session.to_owned(),
        seq: None,
        form: BatchForm::Seed(SeedBatch {
            sensor_type: Some("waist".to_owned()),
            timestamp: Some(start_ms_of_day % 1_000_000),
            frames: out,
        }),
    }
}

/// V3.3's decimal `HHMMSSmmm` rendering of a time of day in ms.
pub fn ms_of_day_to_hhmmss(ms: i64) -> i64 {
    let ms = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    ((h * 100 + m) * 100 + s) * 1000 + milli
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// `cargo test --lib journal::synth -- --ignored --nocapture`: body bytes per sample.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn print_body_bytes_per_sample() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
        let report = |name: &str, batches: Vec<SensorBatch>| {
            let samples: usize = batches.iter().map(SensorBatch::sample_count).sum();
            let (raw, z): (usize, usize) = batches
                .iter()
                .map(|b| {
                    let e = crate::journal::codec::encode_batch(b);
                    (e.raw_len as usize, e.bytes.len())
                })
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            println!(
                "{name:<12} transform {:.2} B/sample, zstd {:.2} B/sample",
                raw as f64 / samples as f64,
                z as f64 / samples as f64
            );
        };
        for m in [Motion::Swing, Motion::Idle] {
            let b = (0..300)
                .map(|i| compact_batch(&mut rng, "d", "s", Some(i), 0, 100, m))
                .collect();
            report(&format!("{m:?}"), b);
        }
        for st in [SeedStyle::Counts, SeedStyle::Decimals, SeedStyle::Fused] {
            let b = (0..300)
                .map(|i| seed_batch(&mut rng, "d", "s", 36_000_000 + i * 80, 30, st))
                .collect();
            report(&format!("{st:?}"), b);
        }
    }

    #[test]
    fn time_of_day_renders_like_v3_3() {
        assert_eq!(
            ms_of_day_to_hhmmss(((9 * 60 + 30) * 60 + 15) * 1000 + 123),
            93015123
        );
    }
}
