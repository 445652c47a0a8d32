//! Analyser throughput: samples per second on one core, analyser alone (the simulator's
//! batches are rendered and decoded into samples before the clock starts).
//!
//! `cargo bench --bench analysis` prints the figure; the target is ≥ 5 M samples/s per core.
//! A plain `main` (no harness dependency): the run is repeated and the best time reported,
//! which is what a per-core capacity figure should be.

use std::hint::black_box;
use std::time::Instant;

use shuttlegate_core::analysis::{AnalysisSettings, DeviceAnalyser, NodeSample, samples_of};
use shuttlegate_core::batch::BodyPosition;
use shuttlegate_sim::{CourtConfig, CourtSim};

fn session(seed: u64, seconds: f64) -> Vec<(usize, Vec<NodeSample>)> {
    let mut sim = CourtSim::standard(seed, 4, CourtConfig::default());
    let start = sim.config().start_ms;
    let clocks: Vec<_> = (0..4).map(|i| sim.seed_clock(i)).collect();
    let mut out = Vec::new();
    let mut t = start;
    while t < start + seconds * 1000.0 {
        t += 100.0;
        for (i, b) in sim.next_batches(t) {
            let s = samples_of(&b, BodyPosition::default_for_sensor_id, |ts| {
                match clocks[i] {
                    Some(c) => c.to_unix(ts, start),
                    None => Some(ts as f64),
                }
            });
            out.push((i, s));
        }
    }
    out
}

fn main() {
    let batches = session(4242, 120.0);
    let sim = CourtSim::standard(4242, 4, CourtConfig::default());
    let profiles: Vec<_> = sim.players().iter().map(|p| p.device.profile()).collect();
    let total: usize = batches.iter().map(|(_, s)| s.len()).sum();
    let mut best = f64::INFINITY;
    let mut swings = 0;
    for _ in 0..5 {
        let mut analysers: Vec<DeviceAnalyser> = profiles
            .iter()
            .map(|p| DeviceAnalyser::new(p.clone(), AnalysisSettings::default(), "bench"))
            .collect();
        let started = Instant::now();
        swings = 0;
        for (i, s) in &batches {
            analysers[*i].handle_samples(black_box(s));
            while analysers[*i].poll_event().is_some() {
                swings += 1;
            }
        }
        for a in &mut analysers {
            black_box(a.finish());
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "analyser, 4 devices (V3.3 4-node 200 Hz, compact 4-node 200 Hz, racket-only 500 Hz): \
         {total} samples, {swings} swings: {:.2} M samples/s on one core (best of 5, {:.1} ms)",
        total as f64 / best / 1e6,
        best * 1000.0
    );
}
