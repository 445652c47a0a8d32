//! The real-recording reader and `shuttlegate-tools eval --recording` over committed public data:
//! tests/fixtures/padel_mdpg22 (an excerpt of a padel racket/wrist IMU recording, MIT per its
//! author's README) and tests/fixtures/tennis_wrist_jweaver (an excerpt of an Apple Watch
//! tennis recording with per-row shot labels, MIT); see the README in each. These tests check
//! what the reader makes of the files — rows, captures, rate, labels — and that the evaluator
//! and the command run over them; the analyser's detections on them, streamed through the
//! daemon, are asserted in tests/recordings_daemon.rs.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use shuttlegate_core::analysis::AnalysisSettings;
use shuttlegate_core::batch::BodyPosition;
use shuttlegate_tools::recording::{
    AccUnit, AxisMap, Format, GyroUnit, Label, RecordingSpec, TableFormat, TimeSource, evaluate,
    read_recording,
};

fn fixture_in(dir: &str, name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "../../tests/fixtures",
        dir,
        name,
    ]
    .iter()
    .collect();
    path.to_str().expect("utf-8 path").to_string()
}

fn fixture(name: &str) -> String {
    fixture_in("padel_mdpg22", name)
}

/// The Arduino capture sketch's layout: g and °/s, 104 Hz, 150-row captures.
fn padel_spec(name: &str, label: &str) -> RecordingSpec {
    RecordingSpec {
        path: fixture(name),
        label: Label::parse(label).expect("valid label"),
        format: Format::Table(Box::new(TableFormat {
            delimiter: ',',
            channels: ["aX", "aY", "aZ", "gX", "gY", "gZ"].map(String::from),
            time: TimeSource::Rate(104.0),
            acc_unit: AccUnit::G,
            gyro_unit: GyroUnit::DegPerSecond,
            axes: AxisMap::IDENTITY,
            capture_rows: Some(150),
            acc_negated: false,
            label_column: None,
        })),
        position: BodyPosition::Racket,
        acc_full_scale_g: 4.0,
        gyro_full_scale_dps: 2000.0,
        run_labels: Vec::new(),
    }
}

#[test]
fn the_padel_captures_are_read_row_for_row() {
    for (name, rows, captures) in [
        ("drive.csv", 3000, 20),
        ("reves.csv", 3000, 20),
        ("smash.csv", 3000, 20),
        ("ruido.csv", 1500, 10),
    ] {
        let table = read_recording(&padel_spec(name, "any")).expect("reads");
        assert_eq!(table.samples.len(), rows, "{name}");
        assert_eq!(table.captures, Some(captures), "{name}");
        assert_eq!(table.skipped_rows, 0, "{name}");
        assert!(
            table
                .samples
                .iter()
                .all(|s| s.position == BodyPosition::Racket)
        );
        // The first row of drive.csv, as written in the file.
        if name == "drive.csv" {
            assert_eq!(table.samples[0].acc, [0.742, 0.628, -1.210]);
            assert_eq!(table.samples[0].gyro, [-179.871, 68.848, -54.565]);
        }
        // Captures are one gap apart; rows within one are 1/104 s apart.
        let steps: Vec<f64> = table
            .samples
            .windows(2)
            .map(|w| w[1].t_ms - w[0].t_ms)
            .collect();
        let gaps = steps.iter().filter(|d| **d > 100.0).count();
        assert_eq!(gaps, captures - 1, "{name}");
    }
}

#[test]
fn the_evaluator_reports_the_files_counts_and_labels() {
    let settings = AnalysisSettings::default();
    let r = evaluate(&padel_spec("smash.csv", "smash+overhead"), &settings).expect("runs");
    assert_eq!(r.samples, 3000);
    assert_eq!(r.nominal, Some(20), "one stroke per capture");
    assert!((r.rate_hz - 104.0).abs() < 0.5, "{}", r.rate_hz);
    // Whatever the analyser found, the tallies are consistent with each other.
    assert_eq!(r.strokes.values().sum::<usize>(), r.swings);
    assert_eq!(r.heights.values().sum::<usize>(), r.swings);
    assert!(r.impacts <= r.swings && r.forehand <= r.swings);
    let [stroke, side, height] = r.agreeing();
    assert!(stroke.is_some() && side.is_none() && height.is_some());
    let idle = evaluate(&padel_spec("ruido.csv", "idle"), &settings).expect("runs");
    assert_eq!(idle.nominal, Some(0), "an idle file holds no strokes");
}

#[test]
fn the_eval_command_reads_the_fixture_with_the_documented_flags() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shuttlegate-tools"))
        .args([
            "eval",
            "--columns",
            "aX,aY,aZ,gX,gY,gZ",
            "--sample-rate-hz",
            "104",
            "--capture-rows",
            "150",
            "--acc-full-scale-g",
            "4",
            "--recording",
        ])
        .arg(format!("forehand={}", fixture("drive.csv")))
        .arg("--recording")
        .arg(format!("idle={}", fixture("ruido.csv")))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(std::time::Instant::now() < deadline, "eval took over 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |file: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(file))
            .unwrap_or_else(|| panic!("no row for {file} in:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let drive = row("drive.csv");
    assert_eq!(&drive[1..4], ["forehand", "104.0", "20"], "{stdout}");
    let ruido = row("ruido.csv");
    assert_eq!(&ruido[1..4], ["idle", "104.0", "0"], "{stdout}");
}

#[test]
fn a_wrong_column_name_is_refused_with_the_file_named() {
    let mut spec = padel_spec("drive.csv", "forehand");
    if let Format::Table(t) = &mut spec.format {
        t.channels[5] = "Gyro_Z".into();
    }
    let err = read_recording(&spec).expect_err("no such column");
    let msg = err.to_string();
    assert!(msg.contains("drive.csv") && msg.contains("Gyro_Z"), "{msg}");
}

/// Sensor Logger's Apple Watch export as documented in the fixture's README.
fn tennis_spec() -> RecordingSpec {
    RecordingSpec {
        path: fixture_in("tennis_wrist_jweaver", "alex_shot_data_head.csv"),
        label: Label::parse("any").expect("valid label"),
        format: Format::Table(Box::new(TableFormat {
            delimiter: ',',
            channels: [
                "accelerationX+gravityX",
                "accelerationY+gravityY",
                "accelerationZ+gravityZ",
                "rotationRateX",
                "rotationRateY",
                "rotationRateZ",
            ]
            .map(String::from),
            time: TimeSource::Column {
                name: "time".into(),
                unit: shuttlegate_tools::recording::TimeUnit::Nanos,
            },
            acc_unit: AccUnit::G,
            acc_negated: true,
            gyro_unit: GyroUnit::RadPerSecond,
            axes: AxisMap::IDENTITY,
            capture_rows: None,
            label_column: Some("shot".into()),
        })),
        position: BodyPosition::Wrist,
        acc_full_scale_g: 16.0,
        gyro_full_scale_dps: 2000.0,
        run_labels: vec![
            ("1".into(), Label::parse("forehand").expect("valid")),
            ("2".into(), Label::parse("backhand").expect("valid")),
            ("3".into(), Label::parse("overhead").expect("valid")),
        ],
    }
}

#[test]
fn the_tennis_export_is_read_with_its_label_runs() {
    let table = read_recording(&tennis_spec()).expect("reads");
    assert_eq!(table.samples.len(), 419);
    assert_eq!(table.skipped_rows, 0);
    // Row 1: gravity (-0.206071407, 0.592926562, -0.778442442) plus user acceleration
    // (0.1084304004907608, 0.028975904, 0.13226330280303955), sign flipped to specific force.
    let first = &table.samples[0];
    let expected = [0.097_641, -0.621_902, 0.646_179];
    for (got, want) in first.acc.iter().zip(expected) {
        assert!((got - want).abs() < 1e-5, "{:?}", first.acc);
    }
    assert!((first.gyro[0] - (-1.404_323_1_f32).to_degrees()).abs() < 1e-3);
    assert_eq!(first.t_ms, 1_710_358_910_298.293_5);
    // Label changes at file lines 12, 91, 110, 202, 208, 283, 290, 401, 407.
    let values: Vec<&str> = table.label_runs.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, ["0", "1", "0", "1", "0", "1", "0", "1", "0", "1"]);
    assert_eq!(
        table.label_runs[1].t_start, 1_710_358_919_225.292_3,
        "line 12"
    );
    let r = evaluate(&tennis_spec(), &AnalysisSettings::default()).expect("runs");
    let forehand = &r.run_scores[0];
    assert_eq!((forehand.value.as_str(), forehand.runs), ("1", 5));
    assert_eq!(r.run_scores[1].runs, 0, "no backhand in the first 419 rows");
    let in_runs: usize = r.run_scores.iter().map(|s| s.swings).sum();
    assert_eq!(in_runs + r.swings_outside_runs.expect("scored"), r.swings);
}

#[test]
fn a_witmotion_export_is_read_with_its_count_from_the_file_name() {
    let spec = RecordingSpec {
        path: fixture_in("badminton_witmotion_deadpoolcnn", "smash_10_kyle.csv"),
        label: Label::parse("smash").expect("valid label"),
        format: Format::WitMotion,
        position: BodyPosition::Racket,
        acc_full_scale_g: 16.0,
        gyro_full_scale_dps: 2000.0,
        run_labels: Vec::new(),
    };
    let table = read_recording(&spec).expect("reads despite the Latin-1 header");
    assert_eq!(table.samples.len(), 251);
    // 2025-11-05,13:08:58.842,0.00031,-1.03382,-0.04608,-0.50757,-1.01675,0.99044,…
    assert_eq!(table.samples[0].acc, [0.00031, -1.03382, -0.04608]);
    assert_eq!(table.samples[0].gyro, [-0.50757, -1.01675, 0.99044]);
    let r = evaluate(&spec, &AnalysisSettings::default()).expect("runs");
    assert_eq!(r.nominal, Some(10), "from `_10_` in the file name");
    assert!((r.rate_hz - 10.0).abs() < 0.01, "{}", r.rate_hz);
    assert_eq!(r.strokes.values().sum::<usize>(), r.swings);
}

#[test]
fn the_badminton_window_document_is_scored_per_stroke_and_contact() {
    // Two windows in the layout of PhusNguyen's badminton_stroke_dataset.json (a Git LFS
    // object not in this repository): the wiring from document to report, not accuracy.
    let dir = tempfile::tempdir().expect("tempdir");
    let still = |n: usize, v: f32| format!("[{}]", vec![v.to_string(); n].join(","));
    let window = |stroke: &str| {
        format!(
            r#"{{"sample_id":0,"stroke_type":"{stroke}","label":0,"IMU_data_sequences":{{"AccX":{z},"AccY":{z},"AccZ":{g},"GyX":{z},"GyY":{z},"GyZ":{z}}}}}"#,
            z = still(100, 0.0),
            g = still(100, 9.81),
        )
    };
    std::fs::write(
        dir.path().join("badminton_stroke_dataset.json"),
        format!(
            r#"{{"dataset_info":{{}},"samples":[{},{}]}}"#,
            window("Smash_real"),
            window("Clear_fake")
        ),
    )
    .expect("write");
    let source =
        shuttlegate_tools::recording::sources::by_name("badminton_racket_phusnguyen", dir.path())
            .expect("lists")
            .expect("a source");
    let report =
        shuttlegate_tools::recording::evaluate_source(&source, &AnalysisSettings::default())
            .expect("reads");
    let found = |name: &str| report.figure(name).and_then(|f| f.value);
    assert_eq!(
        found("found: smash (hit)"),
        Some(0.0),
        "{}",
        report.render()
    );
    assert_eq!(
        found("found: clear (air)"),
        Some(0.0),
        "{}",
        report.render()
    );
    assert!(
        report.figure("found: drive (hit)").is_none(),
        "no drive window"
    );
}

fn tools(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shuttlegate-tools"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "{args:?} took over 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn eval_recordings_prints_one_judged_table_per_committed_source() {
    let out = tools(&["eval", "--recordings", "--in-process"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for source in shuttlegate_tools::recording::sources::FIXTURE_SOURCES {
        assert!(
            stdout.contains(&format!("== {source} — ")),
            "no table for {source}:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("targets met: ").count(),
        shuttlegate_tools::recording::sources::FIXTURE_SOURCES.len(),
        "{stdout}"
    );
    assert!(
        stdout.contains("found: smash (overhead)") && stdout.contains("≥ 90.0 %"),
        "{stdout}"
    );
}

#[test]
fn eval_recordings_refuses_an_unknown_source_naming_the_known_ones() {
    let out = tools(&["eval", "--recordings", "--source", "squash=/nowhere"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("squash") && stderr.contains("tabletennis_mikapower"),
        "{stderr}"
    );
    let out = tools(&["eval", "--recordings", "--source", "padel_mdpg22=/nowhere"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/nowhere"), "{stderr}");
}
