//! The analyser end to end on hand-checkable signals and on the simulator, plus the property
//! that no sample stream can make it panic or grow without bound.

use proptest::prelude::*;

use shuttlegate_core::analysis::vecmath as vm;
use shuttlegate_core::analysis::{
    AnalysisEvent, AnalysisSettings, DeviceAnalyser, DeviceProfile, NodeSample, Side, Swing,
    samples_of,
};
use shuttlegate_core::batch::BodyPosition;
use shuttlegate_sim::{CourtConfig, CourtSim, Impairments, SimDevice, SimPlayer};
use shuttlegate_tools::eval::{EvalOptions, run};

const RATE_HZ: f64 = 200.0;

fn racket_profile(gyro_fs: f64) -> DeviceProfile {
    DeviceProfile {
        gyro_full_scale_dps: gyro_fs,
        positions: vec![BodyPosition::Racket],
        ..DeviceProfile::new("r")
    }
}

/// A racket still for 1 s, then one bell-shaped turn about its −y axis (the forehand face
/// leads) peaking at `peak_dps` at t = 1.2 s, then still again; gravity rotates with it.
fn bell_swing(peak_dps: f64, sigma_ms: f64, gyro_fs: f64, contact_g: f64) -> Vec<NodeSample> {
    let axis = [0.0, -1.0, 0.0];
    let dt = 1000.0 / RATE_HZ;
    let mut angle = 0.0f64;
    let q_rest = vm::from_rotation_vector([0.4, 0.0, 0.0]);
    (0..(3000.0 / dt) as usize)
        .map(|i| {
            let t = i as f64 * dt;
            let rate = peak_dps * (-0.5 * ((t - 1200.0) / sigma_ms).powi(2)).exp();
            if i > 0 {
                let prev = peak_dps * (-0.5 * ((t - dt - 1200.0) / sigma_ms).powi(2)).exp();
                angle += 0.5 * (rate + prev) * dt / 1000.0;
            }
            let q = vm::mul(
                q_rest,
                vm::from_rotation_vector(vm::scale(axis, angle.to_radians())),
            );
            let mut acc = vm::rotate(vm::conj(q), [0.0, 0.0, 1.0]);
            let u = t - 1201.0;
            if contact_g > 0.0 && u > 0.0 && u < 40.0 {
                acc[2] -= contact_g * (u / 3.0) * (1.0 - u / 3.0).exp();
            }
            let gyro = vm::scale(axis, rate).map(|g| g.clamp(-gyro_fs, gyro_fs) as f32);
            NodeSample {
                position: BodyPosition::Racket,
                t_ms: 1_700_000_000_000.0 + t,
                acc: acc.map(|a| a as f32),
                gyro,
                angle: None,
            }
        })
        .collect()
}

fn swings_of(analyser: &mut DeviceAnalyser) -> Vec<Swing> {
    let mut out = Vec::new();
    while let Some(AnalysisEvent::Swing(s)) = analyser.poll_event() {
        out.push(s);
    }
    out
}

fn analyse(samples: &[NodeSample], profile: DeviceProfile) -> Vec<Swing> {
    let mut a = DeviceAnalyser::new(profile, AnalysisSettings::default(), "s");
    for chunk in samples.chunks(30) {
        a.handle_samples(chunk);
    }
    a.finish();
    swings_of(&mut a)
}

#[test]
fn a_pure_rotation_at_a_known_rate_gives_the_known_speed() {
    // 1000 °/s at 0.55 m: 17.453 rad/s × 0.55 m = 9.599 m/s = 34.56 km/h (no hand motion).
    let swings = analyse(
        &bell_swing(1000.0, 30.0, 2000.0, 0.0),
        racket_profile(2000.0),
    );
    assert_eq!(swings.len(), 1, "{swings:?}");
    let s = &swings[0];
    let v = s.racket_speed_kmh.expect("speed");
    assert!((v / 34.56 - 1.0).abs() < 0.01, "{v}");
    assert!(!s.impact && !s.saturated);
    assert_eq!(s.side, Some(Side::Forehand));
    assert!(
        (s.t_impact - 1_700_000_001_200.0).abs() < 2.0,
        "{}",
        s.t_impact
    );
    assert!(s.shuttle_speed_kmh.is_none());
    assert!(s.null_reasons.contains_key("shuttle_speed_kmh"));
}

#[test]
fn a_clipped_rotation_is_flagged_and_its_speed_recovered() {
    // 4000 °/s through a ±2000 °/s gyro: 69.81 rad/s × 0.55 m = 38.40 m/s = 138.23 km/h.
    let swings = analyse(
        &bell_swing(4000.0, 30.0, 2000.0, 0.0),
        racket_profile(2000.0),
    );
    assert_eq!(swings.len(), 1);
    let v = swings[0].racket_speed_kmh.expect("speed");
    assert!(swings[0].saturated);
    assert!((v / 138.23 - 1.0).abs() < 0.05, "{v} {:?}", swings[0]);
}

#[test]
fn a_contact_transient_makes_an_impact_and_a_shuttle_speed() {
    let swings = analyse(
        &bell_swing(1500.0, 30.0, 2000.0, 4.0),
        racket_profile(2000.0),
    );
    assert_eq!(swings.len(), 1);
    let s = &swings[0];
    assert!(s.impact);
    assert!(
        (s.t_impact - 1_700_000_001_201.0).abs() <= 5.0,
        "{}",
        s.t_impact
    );
    let ratio = s.shuttle_speed_kmh.expect("shuttle") / s.racket_speed_kmh.expect("racket");
    assert!((ratio - 1.5).abs() < 0.01);
}

#[test]
fn gravity_alone_is_no_swing() {
    let samples: Vec<NodeSample> = (0..4000)
        .map(|i| NodeSample {
            position: BodyPosition::Racket,
            t_ms: i as f64 * 5.0,
            acc: [0.01 * ((i % 7) as f32 - 3.0), 0.02, 0.99],
            gyro: [1.5 * ((i % 5) as f32 - 2.0), -0.7, 0.3],
            angle: None,
        })
        .collect();
    assert!(analyse(&samples, racket_profile(2000.0)).is_empty());
}

#[test]
fn batches_in_reverse_order_within_the_window_give_the_same_swing() {
    let samples = bell_swing(1000.0, 30.0, 2000.0, 0.0);
    let in_order = analyse(&samples, racket_profile(2000.0));
    let mut a = DeviceAnalyser::new(racket_profile(2000.0), AnalysisSettings::default(), "s");
    let chunks: Vec<&[NodeSample]> = samples.chunks(10).collect();
    // Swap every pair of batches and send each batch twice.
    for pair in chunks.chunks(2) {
        for c in pair.iter().rev() {
            a.handle_samples(c);
            a.handle_samples(c);
        }
    }
    a.finish();
    let shuffled = swings_of(&mut a);
    assert_eq!(shuffled.len(), 1);
    assert_eq!(shuffled[0].racket_speed_kmh, in_order[0].racket_speed_kmh);
    assert!(a.stats().duplicates > 0);
}

fn sim_options(seeds: std::ops::Range<u64>, impairments: Impairments) -> EvalOptions {
    EvalOptions {
        seeds: seeds.collect(),
        players: 2,
        duration_s: 60.0,
        impairments,
        rate_hz: None,
    }
}

#[test]
fn the_simulated_court_is_analysed_with_high_accuracy() {
    let report = run(
        &sim_options(500..502, Impairments::default()),
        &AnalysisSettings::default(),
    );
    assert!(report.truth_swings > 20);
    assert!(report.f1() > 0.95, "{}", report.render());
    assert!(
        report.side_correct as f64 >= 0.95 * report.true_positives as f64,
        "{}",
        report.render()
    );
    assert!(
        report.racket_speed_pct.mean_abs() < 10.0,
        "{}",
        report.render()
    );
}

#[test]
fn lost_and_reordered_batches_cost_little() {
    let imp = Impairments {
        drop_batch: 0.01,
        reorder_batch: 0.1,
    };
    let report = run(&sim_options(510..512, imp), &AnalysisSettings::default());
    assert!(report.f1() > 0.9, "{}", report.render());
}

#[test]
fn a_rate_change_mid_session_keeps_detecting() {
    let mut device = SimDevice::compact("r", 500.0, vec![BodyPosition::Racket], 6);
    device.rate_change = Some((1_732_400_030_000.0, 200.0));
    let other = SimDevice::compact("o", 200.0, vec![BodyPosition::Racket], 6);
    let players = vec![
        SimPlayer::new(1, 0.5, device),
        SimPlayer::new(2, 0.5, other),
    ];
    let mut sim = CourtSim::new(77, players, CourtConfig::default());
    let profile = sim.players()[0].device.profile();
    let mut a = DeviceAnalyser::new(profile, AnalysisSettings::default(), "s");
    let start = sim.config().start_ms;
    let mut t = start;
    while t < start + 60_000.0 {
        t += 100.0;
        for (i, b) in sim.next_batches(t) {
            if i == 0 {
                a.handle_samples(&samples_of(&b, BodyPosition::default_for_sensor_id, |_| {
                    None
                }));
            }
        }
    }
    a.finish();
    let found = swings_of(&mut a);
    let truth: Vec<_> = sim
        .truth()
        .iter()
        .filter(|s| s.device_index == 0 && s.t_impact < t - 1000.0)
        .collect();
    let after: Vec<_> = truth
        .iter()
        .filter(|s| s.t_impact > 1_732_400_031_000.0)
        .collect();
    assert!(!after.is_empty());
    let matched = after
        .iter()
        .filter(|s| {
            found
                .iter()
                .any(|f| (f.t_impact - s.t_impact).abs() < 150.0)
        })
        .count();
    assert!(
        matched as f64 >= 0.9 * after.len() as f64,
        "{matched} of {}",
        after.len()
    );
}

#[test]
fn the_simulator_is_deterministic_whatever_the_polling() {
    let collect = |step: f64| {
        let mut sim = CourtSim::standard(9, 2, CourtConfig::default());
        let start = sim.config().start_ms;
        let mut out = Vec::new();
        let mut t = start;
        while t < start + 20_000.0 {
            t = (t + step).min(start + 20_000.0);
            out.extend(sim.next_batches(t));
        }
        out
    };
    let a = collect(100.0);
    let b = collect(370.0);
    let key = |v: &Vec<(usize, shuttlegate_core::batch::SensorBatch)>| {
        let mut per_device: Vec<Vec<&shuttlegate_core::batch::SensorBatch>> = vec![Vec::new(); 2];
        for (i, batch) in v {
            per_device[*i].push(batch);
        }
        per_device.iter().map(|d| d.len()).collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
    for d in 0..2 {
        let da: Vec<_> = a.iter().filter(|(i, _)| *i == d).map(|(_, b)| b).collect();
        let db: Vec<_> = b.iter().filter(|(i, _)| *i == d).map(|(_, b)| b).collect();
        assert_eq!(da, db);
    }
}

fn weird_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        -3000.0f32..3000.0,
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(1e30f32),
        Just(-1e30f32),
        Just(0.0f32),
    ]
}

fn weird_sample() -> impl Strategy<Value = NodeSample> {
    (
        0usize..4,
        prop_oneof![
            0.0f64..100_000.0,
            Just(f64::NAN),
            Just(1e300),
            Just(-1e300),
            Just(0.0)
        ],
        prop::array::uniform3(weird_f32()),
        prop::array::uniform3(weird_f32()),
        prop::option::of(prop::array::uniform3(weird_f32())),
    )
        .prop_map(|(p, t, acc, gyro, angle)| NodeSample {
            position: BodyPosition::ALL[p],
            t_ms: t,
            acc,
            gyro,
            angle,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_sample_stream_panics_or_grows_without_bound(
        batches in prop::collection::vec(prop::collection::vec(weird_sample(), 0..200), 0..40),
        gyro_fs in prop_oneof![Just(0.0), Just(250.0), Just(2000.0)],
    ) {
        let mut a = DeviceAnalyser::new(racket_profile(gyro_fs), AnalysisSettings::default(), "s");
        for b in &batches {
            a.handle_samples(b);
            while a.poll_event().is_some() {}
            // 4 nodes × the node cap, plus the motion marks.
            prop_assert!(a.buffered_samples() <= 4 * 4096 + 512);
        }
        let summary = a.finish();
        prop_assert!(serde_json::to_string(&summary).is_ok());
    }

    #[test]
    fn long_dense_streams_stay_bounded(n in 20_000usize..30_000, jitter in 0u64..5) {
        let mut a = DeviceAnalyser::new(DeviceProfile::new("d"), AnalysisSettings::default(), "s");
        let batch: Vec<NodeSample> = (0..n)
            .map(|i| NodeSample {
                position: BodyPosition::ALL[i % 4],
                t_ms: (i / 4) as f64 + ((i as u64 * 7919) % (jitter + 1)) as f64,
                acc: [0.0, 0.0, 1.0],
                gyro: [0.0, (i % 997) as f32, 0.0],
                angle: Some([0.0; 3]),
            })
            .collect();
        for c in batch.chunks(97) {
            a.handle_samples(c);
            prop_assert!(a.buffered_samples() <= 4 * 4096 + 512);
        }
    }
}

#[test]
fn settings_embed_as_a_toml_section_and_reject_unknown_keys() {
    let s: AnalysisSettings = toml::from_str(
        "ideal_delay_ms = [70.0, 40.0]\nideal_rom_deg = { shoulder = 110.0 }\nreorder_window_ms = 300.0\n",
    )
    .expect("parses");
    assert_eq!(s.ideal_delay_ms, [70.0, 40.0]);
    assert_eq!(s.ideal_rom_deg.shoulder, 110.0);
    assert_eq!(s.ideal_rom_deg.waist, 45.0);
    assert_eq!(s.waist_inertia_kg_m2, 1.2);
    let err =
        toml::from_str::<AnalysisSettings>("ideal_delays = [1.0, 2.0]\n").expect_err("unknown");
    assert!(err.to_string().contains("ideal_delays"), "{err}");
}

#[test]
fn the_summary_carries_the_seed_fields_and_ours() {
    let samples = bell_swing(1500.0, 30.0, 2000.0, 4.0);
    let mut a = DeviceAnalyser::new(racket_profile(2000.0), AnalysisSettings::default(), "s-1");
    a.handle_samples(&samples);
    let summary = a.finish();
    let v = serde_json::to_value(&summary).expect("serialises");
    assert_eq!(v["type"], "analysis_complete_notification");
    let r = &v["analysis_result"];
    assert!(r["phase_delay"]["waist_to_shoulder"].is_null());
    assert!(r["null_reasons"]["phase_delay"].is_string());
    assert_eq!(r["swings"], 1);
    assert_eq!(r["hits"], 1);
    assert_eq!(
        r["strokes"].as_object().map(|o| o.values().count()),
        Some(1)
    );
    assert!(
        r["racket_speed_kmh"]["top"]
            .as_f64()
            .is_some_and(|v| v > 50.0)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn samples_of_accepts_any_batch(
        channels in 0u8..12,
        rate in prop_oneof![Just(f64::NAN), Just(0.0), Just(-5.0), 1.0f64..2000.0],
        values in prop::collection::vec(weird_f32(), 0..120),
        t0 in any::<i64>(),
    ) {
        let batch = shuttlegate_core::batch::SensorBatch {
            device: "d".into(),
            session_id: "s".into(),
            seq: None,
            form: shuttlegate_core::batch::BatchForm::Compact(shuttlegate_core::batch::CompactBatch {
                sensor_id: 4,
                t0,
                rate_hz: rate,
                channels,
                samples: values,
            }),
        };
        let s = samples_of(&batch, BodyPosition::default_for_sensor_id, |_| None);
        prop_assert!(s.len() <= 120);
    }

    #[test]
    fn recording_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.csv");
        std::fs::write(&path, &bytes).expect("write");
        let _ = shuttlegate_tools::recording::read_csv(path.to_str().expect("utf-8"));
    }
}

#[test]
fn a_hobby_board_full_scale_is_warned_about() {
    let mut p = DeviceProfile::new("mpu");
    assert!(p.warnings().is_empty());
    p.gyro_full_scale_dps = 250.0;
    p.acc_full_scale_g = 2.0;
    let w = p.warnings();
    assert_eq!(w.len(), 2);
    assert!(w[0].contains("±250 °/s") && w[1].contains("±2 g"), "{w:?}");
}
