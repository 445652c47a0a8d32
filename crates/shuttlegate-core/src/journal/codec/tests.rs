//! Tests of the body codecs: every layout round-trips bit for bit, the encoder is pinned
//! (its bytes are part of the format), and no input makes a decoder panic.

use super::column::{PREDICTED_COLUMN, SCALES, Scale, encode_column};
use super::compact::encode_compact_columns;
use super::*;
use crate::batch::{CompactBatch, SeedBatch, SeedFrame};
use proptest::prelude::*;

fn roundtrip(b: &SensorBatch) -> BatchForm {
    let e = encode_batch(b);
    let raw = decompress(e.codec, &e.bytes, e.raw_len).expect("decompress");
    decode_batch_form(&raw).expect("decode")
}

fn bits_equal(a: &BatchForm, b: &BatchForm) -> bool {
    // PartialEq on f32 treats NaN != NaN and -0 == 0; compare bits through serde_json of
    // the bit patterns instead.
    format!("{:?}", bits(a)) == format!("{:?}", bits(b))
}

fn bits(f: &BatchForm) -> Vec<u64> {
    match f {
        BatchForm::Compact(c) => {
            let mut v = vec![
                u64::from(c.sensor_id),
                c.t0 as u64,
                c.rate_hz.to_bits(),
                u64::from(c.channels),
            ];
            v.extend(c.samples.iter().map(|x| u64::from(x.to_bits())));
            v
        }
        BatchForm::Seed(s) => {
            let mut v = vec![
                s.timestamp.map_or(u64::MAX, |t| t as u64),
                s.frames.len() as u64,
            ];
            v.extend(s.sensor_type.iter().flat_map(|t| t.bytes().map(u64::from)));
            for f in &s.frames {
                v.push(f.sensor_id.map_or(u64::MAX, u64::from));
                v.push(f.timestamp.map_or(u64::MAX - 1, |t| t as u64));
                v.extend(f.acc.iter().chain(&f.gyro).map(|x| u64::from(x.to_bits())));
                match f.angle {
                    Some(a) => v.extend(a.iter().map(|x| u64::from(x.to_bits()))),
                    None => v.push(u64::MAX - 2),
                }
            }
            v
        }
    }
}

#[test]
fn decimal_values_use_an_integer_column() {
    let mut out = Vec::new();
    encode_column(&[0.02, -0.98, 0.11, 1.5], &mut out, Coding::Predicted);
    assert_eq!(out[0], PREDICTED_COLUMN);
    let scale = SCALES[usize::from(out[1] / 4)];
    assert!(
        matches!(scale, Scale::Div(c) if c == 100.0),
        "decimal resolution found"
    );
}

#[test]
fn values_without_resolution_use_the_float_mode() {
    let mut out = Vec::new();
    encode_column(
        &[0.1234567, std::f32::consts::PI, -0.0],
        &mut out,
        Coding::Predicted,
    );
    assert_eq!(out[0], 0);
}

/// Batches built with integer arithmetic only (no libm), so every platform builds the same.
fn platform_independent_batches() -> Vec<SensorBatch> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 61) as i64 - 4
    };
    let mut forms = Vec::new();
    for (lsb, decimals) in [(2048.0f32, None), (2048.0, Some(100.0f32))] {
        let mut samples = Vec::new();
        for t in 0..100i64 {
            for c in 0..6i64 {
                let motion = (t - 50) * (t - 50) * (t - 50) / (40 + c);
                let count = (motion + noise()) as f32 / lsb;
                samples.push(decimals.map_or(count, |d| (count * d).round() / d + 0.0));
            }
        }
        forms.push(BatchForm::Compact(CompactBatch {
            sensor_id: 4,
            t0: 1_732_400_000_123,
            rate_hz: 1000.0,
            channels: 6,
            samples,
        }));
    }
    let mut frames = Vec::new();
    for i in 0..30u32 {
        let mut count = |k: i64| (k * i64::from(i) + noise()) as f32;
        let acc = [1, 2, 3].map(|k| count(k) * (16.0 / 32768.0));
        let gyro = [40, -30, 20].map(|k| count(k) * (2000.0 / 32768.0));
        // Fused-looking floats: arbitrary mantissas.
        let angle =
            [7, -5, 3].map(|k| f32::from_bits(0x3f80_0000 + (count(k) as i32 as u32 & 0xffff)));
        frames.push(SeedFrame {
            sensor_id: Some(i % 4 + 1),
            timestamp: Some(93_015_123 + i64::from(i / 4) * 10),
            acc,
            gyro,
            angle: Some(angle),
        });
    }
    forms.push(BatchForm::Seed(SeedBatch {
        sensor_type: Some("waist".into()),
        timestamp: Some(123_456),
        frames,
    }));
    forms
        .into_iter()
        .map(|form| SensorBatch {
            device: "2025001".into(),
            session_id: "s-0017".into(),
            seq: Some(42),
            form,
        })
        .collect()
}

/// The encoder is part of the on-disk format: a journal written on the build machine must
/// be read on the board and the other way round. These bytes were produced on x86_64; the
/// same test under qemu-aarch64 must give the same (`cargo test --target
/// aarch64-unknown-linux-gnu`, see docs/journal.md).
#[test]
fn bodies_are_the_same_bytes_on_every_platform() {
    let mut all = Vec::new();
    for batch in platform_independent_batches() {
        let e = encode_batch(&batch);
        all.push(e.codec);
        all.extend_from_slice(&e.bytes);
        assert!(bits_equal(&roundtrip(&batch), &batch.form));
    }
    assert_eq!((all.len(), crc32c::crc32c(&all)), (926, 1637608466));
}

#[test]
fn corrupt_bodies_are_errors_not_panics() {
    assert!(decode_batch_form(&[]).is_err());
    assert!(decode_batch_form(&[1, 0xff, 0xff, 0xff]).is_err());
    assert!(decode_batch_form(&[2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
}

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>().prop_map(f32::from_bits),
        (-20000i32..20000).prop_map(|k| k as f32 / 100.0),
        (-32768i32..32768).prop_map(|k| k as f32 / 16.4),
        (-32768i32..32768).prop_map(|k| k as f32 * (180.0 / 32768.0)),
    ]
}

fn any_frame() -> impl Strategy<Value = SeedFrame> {
    (
        proptest::option::of(0u32..6),
        proptest::option::of(any::<i64>()),
        [any_f32(), any_f32(), any_f32()],
        [any_f32(), any_f32(), any_f32()],
        proptest::option::of([any_f32(), any_f32(), any_f32()]),
    )
        .prop_map(|(sensor_id, timestamp, acc, gyro, angle)| SeedFrame {
            sensor_id,
            timestamp,
            acc,
            gyro,
            angle,
        })
}

fn any_form() -> impl Strategy<Value = BatchForm> {
    prop_oneof![
        (
            any::<u32>(),
            any::<i64>(),
            any::<f64>(),
            0u8..12,
            proptest::collection::vec(any_f32(), 0..200)
        )
            .prop_map(|(sensor_id, t0, rate_hz, channels, samples)| {
                BatchForm::Compact(CompactBatch {
                    sensor_id,
                    t0,
                    rate_hz,
                    channels,
                    samples,
                })
            }),
        (
            proptest::option::of("[a-z]{0,8}"),
            proptest::option::of(any::<i64>()),
            proptest::collection::vec(any_frame(), 0..40)
        )
            .prop_map(
                |(sensor_type, timestamp, frames)| BatchForm::Seed(SeedBatch {
                    sensor_type,
                    timestamp,
                    frames,
                })
            ),
    ]
}

proptest! {
    #[test]
    fn every_integer_coding_round_trips(ks in proptest::collection::vec(-40000i32..40000, 1..300), small in any::<bool>()) {
        let values: Vec<f32> = ks.iter().map(|&k| if small { (k % 8) as f32 / 100.0 } else { k as f32 / 16.4 }).collect();
        for coding in [Coding::Varints, Coding::Rice, Coding::Predicted] {
            let mut out = Vec::new();
            encode_column(&values, &mut out, coding);
            let mut r = Reader { buf: &out, pos: 0 };
            let back = r.column(values.len()).expect("decodes");
            prop_assert_eq!(r.pos, out.len(), "consumed exactly");
            prop_assert_eq!(back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn every_batch_round_trips_bit_exactly(form in any_form()) {
        let b = SensorBatch { device: "d".into(), session_id: "s".into(), seq: None, form };
        let back = roundtrip(&b);
        prop_assert!(bits_equal(&back, &b.form), "{:?} != {:?}", back, b.form);
    }

    #[test]
    fn every_seed_layout_round_trips_bit_exactly(form in any_form()) {
        let BatchForm::Seed(seed) = &form else { return Ok(()) };
        for coding in [Coding::Varints, Coding::Rice, Coding::Predicted, Coding::Grouped] {
            let mut raw = Vec::new();
            encode_seed(seed, &mut raw, coding);
            let back = decode_batch_form(&raw).expect("decodes");
            prop_assert!(bits_equal(&back, &form), "{:?}: {:?} != {:?}", coding, back, form);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_batch_form(&bytes);
    }

    #[test]
    fn integer_compact_batches_pack_and_round_trip(c in integer_compact()) {
        let form = BatchForm::Compact(c);
        let b = SensorBatch { device: "d".into(), session_id: "s".into(), seq: None, form };
        let e = encode_batch(&b);
        prop_assert_eq!(e.bytes[0], packed::PACKED_COMPACT);
        let back = roundtrip(&b);
        prop_assert!(bits_equal(&back, &b.form), "{:?} != {:?}", back, b.form);
    }

    #[test]
    fn every_compact_layout_round_trips(c in prop_oneof![integer_compact(), any_form().prop_filter_map("compact", |f| match f {
        BatchForm::Compact(c) => Some(c),
        BatchForm::Seed(_) => None,
    })]) {
        for coding in [Coding::Varints, Coding::Rice, Coding::Predicted] {
            let mut raw = Vec::new();
            encode_compact_columns(&c, &mut raw, coding);
            let back = decode_batch_form(&raw).expect("decodes");
            let form = BatchForm::Compact(c.clone());
            prop_assert!(bits_equal(&back, &form), "{:?}: {:?} != {:?}", coding, back, form);
        }
    }

    #[test]
    fn truncated_packed_bodies_are_errors(c in integer_compact(), cut in any::<prop::sample::Index>()) {
        let mut raw = Vec::new();
        prop_assume!(packed::encode_packed(&c, &mut raw));
        let cut = cut.index(raw.len());
        prop_assert!(decode_batch_form(&raw[..cut]).is_err());
    }
}

/// Compact batches whose columns are whole multiples of a resolution: noise, smooth motion,
/// constants and extreme integers, at any channel count, sample count and rate.
fn integer_compact() -> impl Strategy<Value = CompactBatch> {
    let rate = prop_oneof![
        Just(1000.0),
        Just(100.0),
        Just(0.0),
        Just(-0.0),
        Just(99.5),
        Just(f64::NAN),
        Just(1e300),
        any::<f64>(),
    ];
    let column = (0u8..5, any::<u64>(), 1i64..40_000);
    (
        any::<u32>(),
        any::<i64>(),
        rate,
        0u8..10,
        0usize..150,
        proptest::collection::vec(column, 1..10),
    )
        .prop_map(|(sensor_id, t0, rate_hz, channels, rows, kinds)| {
            let ch = usize::from(channels).max(1);
            let samples = (0..rows * ch)
                .map(|i| {
                    let (kind, seed, amplitude) = kinds[(i % ch) % kinds.len()];
                    let t = (i / ch) as i64;
                    let noise =
                        ((seed ^ (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 7) as i64 - 3;
                    match kind {
                        0 => (noise as f32) / 100.0,
                        1 => {
                            ((amplitude * (t % 50 - 25) * (t % 50 - 25) / 625) + noise) as f32
                                / 16.4
                        }
                        2 => (seed % 1000) as f32 / 10.0,
                        // Up to ±2^24, the largest integers an f32 holds exactly.
                        3 => ((seed as i64 % (1 << 23)) - (noise << 20)) as f32,
                        _ => (noise * amplitude) as f32 * (2000.0 / 32768.0),
                    }
                })
                .collect();
            CompactBatch {
                sensor_id,
                t0,
                rate_hz,
                channels,
                samples,
            }
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_packed_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut body = vec![packed::PACKED_COMPACT];
        body.extend(bytes);
        let _ = decode_batch_form(&body);
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_batch_form(&bytes);
    }
}
