//! CI floors for the analyser on the independent simulator (issue 14): a regression in
//! detection, stroke type, side or the kinetic chain on data the analyser was not written
//! against fails here.
//!
//! Each session's wire text goes through the daemon's parser and the court analysis
//! (`biomech_eval`), on fixed held-out seeds, so the figures are exact and repeatable: the
//! floors sit a little under what today's analyser scores, not at the targets (which
//! it does not meet; docs/analysis.md has the full table). **When the analyser changes,
//! re-measure (the test prints the figures) and move the floors in [`FLOORS`].**

use shuttlegate_biomech::Placement;
use shuttlegate_core::analysis::AnalysisSettings;
use shuttlegate_tools::biomech_eval::{BiomechOptions, BiomechReport, run};

/// One figure's floor at each rate.
struct Floor {
    metric: &'static str,
    figure: fn(&Figures) -> f64,
    at_100_hz: f64,
    at_200_hz: f64,
}

/// The floors: about 0.03 under the figures measured on main at 10930ab (the analyser before
/// issue 14's work) with the simulator at 4c3d66c, the seeds and durations of [`measure`].
/// Figures (100 / 200 Hz): F1 0.895 / 0.881, stroke 0.281 / 0.303, side 0.708 / 0.730, chain
/// delays 0.787 / 0.783, peaks 0.766 / 0.783 (these chain seeds include ±250 and ±1000 °/s
/// gyros, whose body nodes clip).
///
/// Re-measured with the contact classifier of `measure/classify.rs` and the node-offset speed
/// correction (branch cls14): F1, side and chain unchanged; stroke 0.247 / 0.281. On these six
/// mixed sessions the stroke figure fell (from 0.281 / 0.303) while it rose on the held-out
/// seeds 1000–1019 (18.2 → 24.9 % at 100 Hz, 20.2 → 26.1 % at 200 Hz) and on the tuning seeds
/// 0–39 (21.1 → 26 % at 100 Hz); the 100 Hz stroke floor moved to 0.22, 0.03 under the new
/// figure. Nothing was tuned on these seeds.
///
/// Analysis version 5 (the wide-pulse rule, the confidence threshold and the conditioning
/// stage together, measured after their merge): F1 0.890 / 0.881, stroke 0.315 / 0.315,
/// side 0.708 / 0.730, chain delays 0.755 / 0.755, peaks 0.735 / 0.755. The stroke floors rose
/// to 0.28; the chain shares fell 0.03 (two more swings found on the four-node seeds, their
/// chains off) and sit on their floors.
///
/// Analysis version 6 (measured after the merge of the contact rule and per-sample hand of
/// speed15, the chain-only swings and 600 °/s wide-pulse rule of det15, and the wraps undone by
/// default of cond15): F1 0.870 / 0.886, stroke 0.368 / 0.326, side 0.759 / 0.764, chain delays
/// 0.765 / 0.769, peaks 0.745 / 0.769, chain-only delays 1.0 / 1.0 (3 of 3 at each rate; a
/// share of nothing is 0 and fails, so the floor asks for all of them). Stroke floors rose to
/// 0.34 / 0.30 and side to 0.73 / 0.73. F1 at 100 Hz fell 0.020 with the wrap change (87 of 99
/// found, 14 false, against 89 and 12) while it rose on the tuning seeds 0–99 (0.879 → 0.881):
/// left as found, not tuned on these seeds; its floor stays 0.86.
///
/// The backswing rule (det16): F1 0.870 / 0.886 → 0.897 / 0.918 (the same swings found, fewer
/// false ones); every other figure here unchanged. F1 floors raised to 0.87 / 0.88.
///
/// speed16 (contact not before a clipped plateau, and at 80 % of the peak rate on the rising
/// flank; measure/ reading the conditioning stage's wrap verdict): stroke 0.368 → 0.379 at
/// 100 Hz, side 0.764 → 0.775 at 200 Hz, every other figure the same; the 100 Hz stroke floor
/// rose to 0.35 and the 200 Hz side floor to 0.74.
///
/// Analysis version 7 (both merged, with att16's carried gravity and axes16's opt-in inference):
/// F1 0.897 / 0.918, stroke 0.379 / 0.326, side 0.759 / 0.775, chain delays 0.765 / 0.769,
/// peaks 0.745 / 0.769, chain-only delays 1.0 / 1.0.
///
/// cls17 (speed read against the device's own reference; the rising head path below overhead
/// read as underarm): stroke 0.379 / 0.326 → 0.379 / 0.337, every other figure the same; the
/// 200 Hz stroke floor rose to 0.31.
///
/// det17 (a wide burst that met the shuttle is a stroke; racket handling with no contact is
/// not, handling.rs): F1 0.897 / 0.918 → 0.953 / 0.979, stroke 0.379 / 0.326 → 0.391 /
/// 0.347, side 0.759 / 0.775 → 0.750 / 0.768 (more pushes found, some read on the wrong
/// side), chain delays 0.773 / 0.782, peaks 0.755 / 0.782; chain-only swings on missed
/// swings 1 / 0 (the racket rule now finds the swing the chain-only rule covered at 200 Hz:
/// with none to score the figure is not checked, rather than read as 0). F1 floors raised to
/// 0.92 / 0.95, stroke to 0.36 / 0.32.
///
/// axis inference on by default (axes17; the turned-over rule and the drives' peaks for the
/// swing plane): side 0.759 / 0.775 → 0.824 / 0.839, floors raised to 0.79 / 0.81; but F1
/// 0.897 / 0.918 → 0.885 / 0.906 (turned nodes read right give the aligned nodes' false swings
/// in rest: det17's matter) and stroke at 100 Hz 0.379 → 0.353 (200 Hz 0.326 → 0.333); chain
/// figures unchanged. Those floors are left where they were (not lowered; not tuned here).
///
/// Analysis version 8 (clip17, cls17, det17 and axes17 merged; inference on by default): F1
/// 0.942 / 0.963, stroke 0.356 / 0.380, side 0.822 / 0.837, chain delays 0.769 / 0.782, peaks
/// 0.750 / 0.782, chain-only delays 1.0 / none to score. The inference costs stroke at 100 Hz
/// on these seeds (0.391 with it off: one aligned node read through a wrongly turned frame)
/// while it raises stroke 36.5 → 42.2 % on the tuning seeds 0–199 (docs/analysis.md,
/// Conditioning step 4): the 100 Hz stroke floor is 0.33, under the new figure; 200 Hz
/// stroke rose to 0.35.
///
/// speed18 (the lever fitted from 80 % of the peak rate): 200 Hz stroke 0.380 → 0.391 (a
/// swing's speed against the device's reference), the rest identical; its floor 0.36.
///
/// side18 as merged (a node whose centripetal reading says its x is the shaft judged as made,
/// the side read before a wrap left in place; its energy-weighted vote dropped at the merge):
/// every figure as with speed18 alone; the side floors stay 0.79 / 0.81.
///
/// det20 (a narrow gyro's swing read where the node is loaded most, measure/fastest.rs): at
/// 100 Hz the chain seeds find 4 more swings (52 → 56 of 58, false 11 → 7; F1 on them 0.860 →
/// 0.926), all on ±250 / ±1000 °/s devices whose body nodes clip too, so their chains are off:
/// chain delays 40/52 → 41/56 (0.769 → 0.732), peaks 39/52 → 40/56 (0.750 → 0.714) — no
/// swing found before lost its chain (as in version 5). At 200 Hz the same: 55 → 58 found
/// (false 9 → 6; F1 on them 0.902 → 0.951), the 3 on a ±250 °/s device, chain delays and
/// peaks 43/55 → 43/58 each (0.782 → 0.741). The chain floors move to 0.71 / 0.69 at 100 Hz
/// and 0.72 / 0.72 at 200 Hz, about 0.02 under; nothing was tuned on these seeds. The mixed
/// seeds' figures are unchanged (F1 0.9424 / 0.9634, stroke 0.356 / 0.391, side 0.822 /
/// 0.837).
///
/// wrist20 (the side of a wrist or forearm node turned on the arm read about the axis its
/// forehands turn about, the sense from its drives' vote): side 0.822 / 0.837 → 0.744 / 0.761,
/// every other figure identical. The fall is one session: seed 2001, a forearm node turned by
/// right angles, whose axis the inference finds within 3° but whose 15 drives vote only 2 the
/// forehand's way at the end and lean the other way for most of the session — 4 of its 16
/// swings right, against 11 read as made. On the tuning seeds side rose 85.1 → 86.5 % and
/// held out 81.0 / 79.8 / 80.2 → 83.7 / 84.6 / 84.9 % (docs/analysis.md, Conditioning step 4,
/// "Side on wrist and forearm nodes turned on the arm"). Side floors 0.72 / 0.74.
///
/// Version 10 (det20, speed20, height20 and wrist20 merged): F1 0.9424 / 0.9634, stroke
/// 0.356 / 0.391 → 0.378 / 0.413 (height20's height along the arm for a stand-in node turned
/// on it), side 0.744 / 0.761, chain delays 0.732 / 0.741, peaks 0.714 / 0.741. The stroke
/// floors rise 0.33 / 0.36 → 0.35 / 0.39.
///
/// Version 11 (det21, side21, rail21 and conf21 merged): F1 0.9424 / 0.9634 → 0.9588 / 0.9846
/// (det21: slow turns that met the shuttle and thrown wide bursts are strokes), stroke 0.378 /
/// 0.413 → 0.398 / 0.427, side 0.744 / 0.761 → 0.753 / 0.760, chain delays 0.732 / 0.741 →
/// 0.737 / 0.741, peaks 0.714 / 0.741 → 0.719 / 0.741. F1 floors rise to 0.94 / 0.96 and the
/// 100 Hz stroke floor to 0.37, about 0.02 under; nothing was tuned on these seeds.
///
/// Version 12 (peaks22: a body segment's crest past its gyro's rail, or through a sign wrap
/// left in place, estimated from the clean flanks): chain delays 0.737 / 0.741 → 0.965 /
/// 0.983 (the crest's time, not the plateau's first sample), peaks 0.719 / 0.741 unchanged (the
/// ±250 °/s wrists of these chain seeds peak at 4–6 times their range), every other figure
/// identical. The chain-delay floors rise to 0.94 / 0.96.
///
/// Version 13 (wrap23, det23, side23): at 100 Hz F1 0.9588 → 0.9794 (seeds 2000–2005: found
/// 93 → 95 of 99, false 2 → 0; wrap23: a ±2000 °/s gyro wrap entered by a jump of 1.42–1.44
/// ranges is undone, and its return is no longer read as a wrap the other way), side 0.753 →
/// 0.758, stroke 0.398 → 0.379 (37 of 93 → 36 of 95); 200 Hz and the chain figures identical.
/// The 100 Hz F1 floor rises to 0.96; the stroke floor stays 0.37 (deterministic, not tuned
/// here).
///
/// Version 16: the simulator plays rallies (rally26), so every seed's session changed and the
/// floors were measured again on the new sessions, with rally26's serve rule, det26's
/// hand-still handling rule and peaks26's narrow-crest peak merged (100 / 200 Hz): F1 0.9659 /
/// 0.9758, stroke 0.414 / 0.465, side 0.889 / 0.891, chain delays 1.000 / 0.967, peaks
/// 0.776 / 0.767; chain-only delays 1.000 at 100 Hz, none to score at 200 Hz. Floors about
/// 0.02–0.03 under: stroke 0.39 / 0.44, side 0.86 / 0.86, chain delays 0.97 / 0.94, peaks
/// 0.74 / 0.74; F1 stays 0.96 / 0.96. Nothing was tuned on these seeds.
///
/// Version 17 (speed27: the lever fit without gravity): stroke at 100 Hz 0.414 → 0.404, every
/// other figure identical; no floor moved.
#[rustfmt::skip]
const FLOORS: [Floor; 6] = [
    //      metric                               figure                                       100 Hz           200 Hz
    Floor { metric: "detection F1",               figure: |f| f.mixed.all.f1(),               at_100_hz: 0.96, at_200_hz: 0.96 },
    Floor { metric: "stroke type",                figure: |f| f.mixed.stroke_accuracy(),      at_100_hz: 0.39, at_200_hz: 0.44 },
    Floor { metric: "forehand/backhand",          figure: |f| f.mixed.side_accuracy(),        at_100_hz: 0.86, at_200_hz: 0.86 },
    Floor { metric: "chain delays within ±10 ms", figure: |f| f.chain.chain_delays_share(),   at_100_hz: 0.97, at_200_hz: 0.94 },
    Floor { metric: "segment peaks within ±5 %",  figure: |f| f.chain.chain_peaks_share(),    at_100_hz: 0.74, at_200_hz: 0.74 },
    Floor { metric: "chain-only delays ±10 ms",   figure: |f| f.chain.chain_only_delays_share(), at_100_hz: 0.97, at_200_hz: 0.97 },
];

struct Figures {
    /// Devices of every placement, drawn per seed.
    mixed: BiomechReport,
    /// 4-node devices only: the chain figures.
    chain: BiomechReport,
}

fn measure(rate_hz: f64) -> Figures {
    let settings = AnalysisSettings::default();
    let mixed = run(
        &BiomechOptions {
            seeds: (2000..2006).collect(),
            duration_s: 120.0,
            rate_hz: Some(rate_hz),
            placement: None,
            infer_axes: None,
        },
        &settings,
    );
    let chain = run(
        &BiomechOptions {
            seeds: (2100..2104).collect(),
            duration_s: 120.0,
            rate_hz: Some(rate_hz),
            placement: Some(Placement::FourNode),
            infer_axes: None,
        },
        &settings,
    );
    Figures { mixed, chain }
}

fn check(rate_hz: f64, floor_of: fn(&Floor) -> f64) {
    let figures = measure(rate_hz);
    assert_eq!(
        figures.mixed.parse_errors + figures.chain.parse_errors,
        0,
        "the parser refused simulated messages"
    );
    assert!(
        figures.mixed.all.truth > 80,
        "too few swings to score: {}",
        figures.mixed.all.truth
    );
    assert!(
        figures.chain.chain_n > 30,
        "too few chain swings to score: {}",
        figures.chain.chain_n
    );
    println!(
        "{rate_hz} Hz  chain-only swings: {} on missed swings ({} with chain truth), {} on found ones, {} on none",
        figures.chain.chain_only.on_missed,
        figures.chain.chain_only.chain_n,
        figures.chain.chain_only.on_found,
        figures.chain.chain_only.false_swings
    );
    let mut failures = Vec::new();
    for floor in &FLOORS {
        if floor.metric.starts_with("chain-only") && figures.chain.chain_only.chain_n == 0 {
            // Every chained swing was found by the racket rule: no chain-only swing to score.
            println!("{rate_hz} Hz  {:<28} none to score", floor.metric);
            continue;
        }
        let value = (floor.figure)(&figures);
        println!(
            "{rate_hz} Hz  {:<28} {value:.4}  (floor {:.4})",
            floor.metric,
            floor_of(floor)
        );
        if value < floor_of(floor) {
            failures.push(format!(
                "{}: {value:.4} < floor {:.4}",
                floor.metric,
                floor_of(floor)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "below the floors at {rate_hz} Hz: {failures:?}"
    );
}

#[test]
fn the_analyser_holds_its_floors_on_the_independent_simulator_at_100_hz() {
    check(100.0, |f| f.at_100_hz);
}

#[test]
fn the_analyser_holds_its_floors_on_the_independent_simulator_at_200_hz() {
    check(200.0, |f| f.at_200_hz);
}

fn tools(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shuttlegate-tools"))
        .args(args)
        .output()
        .expect("shuttlegate-tools runs")
}

#[test]
fn eval_prints_the_biomech_table_by_default_and_refuses_flags_of_the_other_simulator() {
    let out = tools(&[
        "eval",
        "--seeds",
        "1",
        "--duration-s",
        "30",
        "--rate-hz",
        "100",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("== biomech@100Hz — independent simulator"),
        "{text}"
    );
    for figure in [
        "detection F1",
        "stroke type",
        "forehand/backhand",
        "racket-speed MAE",
    ] {
        assert!(text.contains(figure), "{figure} missing: {text}");
    }
    let out = tools(&["eval", "--drop-batch", "0.1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--simulator sim only"));
    let out = tools(&["eval", "--simulator", "sim", "--placement", "wrist-only"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--simulator biomech only"));
}
