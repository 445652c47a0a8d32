//! Real recordings streamed through the real daemon, scored on detections. Each test starts
//! `shuttlegate run` (built beside the tools, or SHUTTLEGATE_BIN), sends every committed
//! excerpt of one source (tests/fixtures/, licences in tests/fixtures/README.md) as a device
//! session over `/ws/esp32/` — compact batches for rate-timed files, seed-form batches with
//! unix-ms frame stamps otherwise — ends it with `upload_complete`, reads the journaled swings
//! and checks the source's figures against the floors below.
//!
//! The floors are a little under what today's analyser measures on these excerpts (see
//! `eval --recordings`), so a regression fails here; most are far from issue 14's targets
//! (≥ 90 % found, ≤ 10 % twice, ≤ 1 false swing/min, ≥ 85 % side/height), which the report
//! prints met or not. Figures the analyser gets entirely wrong today (padel side without the
//! learnt axes, padel smash height, table-tennis side) carry no floor: a floor at 0 cannot fail.
//! When the analyser improves, raise them (the lead re-measures after merging).
//!
//! One test is in process: the padel axis map held out by file (a fit over 24 rotations ×
//! 4 files is analysis, not transport; `every_source::axes_held_out`).

use std::path::PathBuf;

use shuttlegate_core::analysis::AnalysisSettings;
use shuttlegate_tools::recording::daemon::through_daemon;
use shuttlegate_tools::recording::evaluate_source;
use shuttlegate_tools::recording::sources::{self, Source};
use shuttlegate_tools::report::SourceReport;

/// A floor (`≥`) or a ceiling (`≤`) on one figure of one source.
enum Bound {
    AtLeast(f64),
    AtMost(f64),
}
use Bound::{AtLeast, AtMost};

/// The floors, one block per source: (source, figure, bound). Measured on the excerpts at
/// this commit, through the daemon: in brackets.
const FLOORS: &[(&str, &str, Bound)] = &[
    // padel_mdpg22: 20 captures per stroke, 10 of noise.
    ("padel_mdpg22", "found: drive (forehand)", AtLeast(97.0)), // [100: 20/20]
    ("padel_mdpg22", "found: revés (backhand)", AtLeast(95.0)), // [100: 20/20]
    ("padel_mdpg22", "found: smash (overhead)", AtLeast(95.0)), // [100: 20/20]
    ("padel_mdpg22", "twice: drive (forehand)", AtMost(10.0)),  // [0]
    ("padel_mdpg22", "twice: revés (backhand)", AtMost(10.0)),  // [0]
    ("padel_mdpg22", "twice: smash (overhead)", AtMost(10.0)),  // [0]
    ("padel_mdpg22", "false swings per minute", AtMost(1.0)),   // [0 in 0.24 min]
    // The same files with the axis map learnt from their side labels (a calibration).
    (
        "padel_mdpg22_axes_learnt",
        "side: all classes",
        AtLeast(95.0),
    ), // [100: 33/33]
    // tabletennis_mikapower: 12 s of three fast-robot sessions, 22 s of rest.
    (
        "tabletennis_mikapower",
        "found: topspin forehand",
        AtLeast(90.0),
    ), // [100: 10/10]
    (
        "tabletennis_mikapower",
        "found: topspin backhand",
        AtLeast(90.0),
    ), // [100: 10/10]
    ("tabletennis_mikapower", "found: block", AtLeast(80.0)), // [90: 9/10]
    (
        "tabletennis_mikapower",
        "twice: topspin forehand",
        AtMost(10.0),
    ), // [0]
    (
        "tabletennis_mikapower",
        "twice: topspin backhand",
        AtMost(10.0),
    ), // [0]
    ("tabletennis_mikapower", "twice: block", AtMost(10.0)),  // [0]
    (
        "tabletennis_mikapower",
        "false swings per minute",
        AtMost(1.0),
    ), // [0 in 0.37 min]
    (
        "tabletennis_mikapower",
        "speed order: topspin forehand > block",
        AtLeast(2.0),
    ), // [2.33]
    (
        "tabletennis_mikapower",
        "speed order: topspin backhand > block",
        AtLeast(3.0),
    ), // [3.79]
    // tennis_wrist_jweaver: the first 419 rows (5 forehand runs).
    ("tennis_wrist_jweaver", "found: forehand", AtLeast(20.0)), // [20: 1/5]
    // badminton_witmotion_deadpoolcnn: 10 shadow smashes at 10 Hz.
    (
        "badminton_witmotion_deadpoolcnn",
        "found: smash",
        AtLeast(60.0),
    ), // [70: 7/10]
];

fn fixture_source(name: &str) -> Source {
    let dir = match name {
        "padel_mdpg22_axes_learnt" => "padel_mdpg22",
        other => other,
    };
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "../../tests/fixtures", dir]
        .iter()
        .collect();
    let source = sources::by_name(name, &path)
        .expect("the fixture directory lists")
        .expect("a built-in source");
    assert!(!source.files.is_empty(), "{name}: no fixture files");
    source
}

async fn streamed(name: &str) -> SourceReport {
    let exe = shuttlegate_tools::daemon_exe().expect("the daemon binary is built");
    through_daemon(&exe, &fixture_source(name))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every floor of `report`'s source holds; a figure named in the table must exist and have a
/// value (a renamed or vanished figure fails rather than passing silently).
fn check_floors(report: &SourceReport) {
    let floors: Vec<_> = FLOORS
        .iter()
        .filter(|(source, _, _)| *source == report.source)
        .collect();
    assert!(!floors.is_empty(), "no floors for {}", report.source);
    let table = report.render();
    for (_, name, bound) in floors {
        let value = report
            .figure(name)
            .and_then(|f| f.value)
            .unwrap_or_else(|| panic!("{name}: no value in\n{table}"));
        match bound {
            AtLeast(floor) => assert!(value >= *floor, "{name}: {value} < floor {floor}\n{table}"),
            AtMost(ceiling) => assert!(
                value <= *ceiling,
                "{name}: {value} > ceiling {ceiling}\n{table}"
            ),
        }
    }
}

/// The daemon's journaled swings are exactly an in-process analyser's fed what the wire
/// carries (`as_the_wire_carries`: whole-millisecond stamps, the compact form's t0 + i/rate):
/// the wire, the journal and the pipeline lose or shift nothing, so `eval --in-process`
/// gives the daemon's figures.
fn assert_same_as_in_process(report: &SourceReport) {
    let local = evaluate_source(
        &fixture_source(&report.source),
        &AnalysisSettings::default(),
    )
    .expect("reads");
    let shape = |r: &SourceReport| {
        r.figures
            .iter()
            .map(|f| (f.name.clone(), f.detail.clone(), f.value.is_some()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(report), shape(&local), "{}", report.render());
    for (a, b) in report.figures.iter().zip(&local.figures) {
        if let (Some(a_v), Some(b_v)) = (a.value, b.value) {
            assert!(
                (a_v - b_v).abs() <= 1e-6 * a_v.abs().max(1.0),
                "{}: {a_v} through the daemon, {b_v} in process",
                a.name
            );
        }
    }
}

async fn check_streamed(name: &str) {
    let report = streamed(name).await;
    check_floors(&report);
    assert_same_as_in_process(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padel_strokes_streamed_through_the_daemon_are_found_once_each_and_noise_gives_none() {
    check_streamed("padel_mdpg22").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padel_sides_separate_with_the_axis_map_learnt_from_the_labels() {
    check_streamed("padel_mdpg22_axes_learnt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_tennis_balls_from_a_robot_are_returned_once_each_and_rest_gives_no_swing() {
    check_streamed("tabletennis_mikapower").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tennis_strokes_at_the_wrist_are_found_through_a_wrist_only_device() {
    check_streamed("tennis_wrist_jweaver").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witmotion_badminton_smashes_at_10_hz_are_found() {
    check_streamed("badminton_witmotion_deadpoolcnn").await;
}

#[test]
fn every_source_has_floors_and_every_floor_names_a_source() {
    for name in sources::FIXTURE_SOURCES {
        assert!(
            FLOORS.iter().any(|(source, _, _)| *source == name),
            "{name} has no floors"
        );
    }
    for (source, _, _) in FLOORS {
        assert!(sources::FIXTURE_SOURCES.contains(source), "{source}");
    }
}

/// The padel axis map held out by file (`every_source::axes_held_out`: each file scored with
/// the rotation fitted on the other files' labels), in process, on the excerpt. Measured: found
/// drive 65.0 (13/20), revés 100, smash 100; side 100 (33/33); false swings 20.9/min (5 in the
/// noise file, analysed under the rotation fitted on the strokes). Floors a little under; the
/// false-swing figure is not floored (it is what the held-out figure exposes).
#[test]
fn padel_sides_hold_with_the_axis_map_fitted_without_the_file_scored() {
    let report = shuttlegate_tools::every_source::axes_held_out(
        &fixture_source("padel_mdpg22_axes_learnt"),
        &AnalysisSettings::default(),
    )
    .expect("reads");
    let table = report.render();
    for (name, floor) in [
        ("found: drive (forehand)", 60.0),
        ("found: revés (backhand)", 95.0),
        ("found: smash (overhead)", 95.0),
        ("side: all classes", 95.0),
    ] {
        let value = report
            .figure(name)
            .and_then(|f| f.value)
            .unwrap_or_else(|| panic!("{name}: no value in\n{table}"));
        assert!(value >= floor, "{name}: {value} < floor {floor}\n{table}");
    }
    let folds = report
        .notes
        .iter()
        .filter(|n| n.starts_with("fold: "))
        .count();
    assert_eq!(folds, 4, "one fold per file\n{table}");
}
