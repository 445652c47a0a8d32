//! The real recordings the analyser is scored on, one [`Source`] each: where its files lie (the
//! committed excerpt under tests/fixtures/, or a local clone of the whole data set), how they
//! are laid out, what each file is known to hold ([`Truth`]) and which speed order physics
//! predicts between its classes. tests/fixtures/README.md says where each comes from, under
//! which licence, and how to clone it.
//!
//! A source reads the same from the excerpt and from the clone: each constructor takes the
//! directory holding the files as the data set lays them out.

use std::path::{Path, PathBuf};

use shuttlegate_core::analysis::NodeSample;
use shuttlegate_core::batch::BodyPosition;

use super::score::{Detected, FileOutcome, GAP_MS, Span, Truth};
use super::table::{AccUnit, AxisMap, GyroUnit, Table, TableFormat, TimeSource, TimeUnit};
use super::{Format, Label, RecordingError, RecordingSpec, read_recording};

/// What a file holds, before its samples are read.
#[derive(Debug, Clone, PartialEq)]
pub enum FileKind {
    /// Fixed-length trigger captures, one stroke each.
    Captures,
    /// Rows labelled by activity: these label values are strokes (value, class, implied side
    /// and height), every other value is not. A run of one value is a window holding one
    /// stroke or several (the tennis set's runs hold 1–7 wrist peaks over 300 °/s).
    LabelledRuns(Vec<(String, String, Label)>),
    /// A ball robot feeding one ball per interval.
    Fed { interval_ms: f64 },
    /// No strokes.
    Idle,
    /// The file name states the count.
    Counted(usize),
}

/// One file of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Class name (`drive`, `topspin forehand`).
    pub class: String,
    /// Side and height the class implies.
    pub label: Label,
    pub kind: FileKind,
}

/// A data set as the analyser sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Short name, as `--source NAME=DIR` and the floors name it.
    pub name: &'static str,
    pub title: String,
    pub format: Format,
    pub position: BodyPosition,
    pub acc_full_scale_g: f64,
    pub gyro_full_scale_dps: f64,
    pub files: Vec<SourceFile>,
    /// Class pairs whose racket speeds physics orders, faster first.
    pub speed_order: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// Names of the built-in sources, for `--source NAME=DIR`.
pub const SOURCE_NAMES: [&str; 7] = [
    "padel_mdpg22",
    "padel_mdpg22_axes_learnt",
    "tennis_wrist_jweaver",
    "tabletennis_mikapower",
    "badminton_witmotion_deadpoolcnn",
    "badminton_racket_phusnguyen",
    "badminton_witmotion_choonggao",
];

/// The sources with an excerpt committed under tests/fixtures/ (the rest need a local clone).
pub const FIXTURE_SOURCES: [&str; 5] = [
    "padel_mdpg22",
    "padel_mdpg22_axes_learnt",
    "tennis_wrist_jweaver",
    "tabletennis_mikapower",
    "badminton_witmotion_deadpoolcnn",
];

/// The source of that name over the files in `dir` (the excerpt or a clone); `None` for an
/// unknown name.
pub fn by_name(name: &str, dir: &Path) -> Result<Option<Source>, std::io::Error> {
    Ok(match name {
        "padel_mdpg22" => Some(padel(dir, AxisMap::IDENTITY)),
        "padel_mdpg22_axes_learnt" => Some(padel(dir, learnt_padel_axes())),
        "tennis_wrist_jweaver" => Some(tennis(dir)?),
        "tabletennis_mikapower" => Some(table_tennis(dir)?),
        "badminton_witmotion_deadpoolcnn" => Some(badminton_witmotion(dir)?),
        "badminton_racket_phusnguyen" => Some(badminton_racket(dir)),
        "badminton_witmotion_choonggao" => Some(badminton_witmotion_bwt61(dir)?),
        _ => None,
    })
}

/// CSV files directly in `dir`, sorted (so a run reads them in the same order every time).
fn csv_files(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    Ok(files)
}

fn label(text: &str) -> Label {
    // The texts below are constants this module controls.
    Label::parse(text).expect("a built-in label parses")
}

/// The padel board's axes as learnt from its own side labels (docs/analysis.md): turned over
/// about the shaft. A figure on `padel_mdpg22_axes_learnt` is therefore not held out.
pub fn learnt_padel_axes() -> AxisMap {
    AxisMap::parse("x,-y,-z").expect("a constant axis map parses")
}

/// mdpg22/Inteligent-Pade-Stroke-Classifier `data/`: an Arduino Nano 33 BLE (BMI270, ±4 g,
/// ±2000 °/s, ≈104 Hz) on a padel racket handle or the wrist, one 150-row capture per trigger.
/// `axes` maps the board onto the analyser's axes (the board's z points out of the backhand
/// face: `x,-y,-z` is the mapping learnt from these labels, see docs/analysis.md).
pub fn padel(dir: &Path, axes: AxisMap) -> Source {
    let file = |name: &str, class: &str, l: &str, kind: FileKind| SourceFile {
        path: dir.join(name),
        class: class.into(),
        label: label(l),
        kind,
    };
    let learnt = axes == learnt_padel_axes();
    let mut notes = vec![
        "captures start at the trigger (|a| ≥ 2.5 g): no stillness before a stroke, and a \
         noise capture is 1.44 s of handling"
            .to_string(),
    ];
    if learnt {
        notes.push(
            "axes x,-y,-z were learnt from these files' side labels: the side figures are a \
             calibration, not held out (padel_mdpg22 gives the held-out ones)"
                .into(),
        );
    }
    Source {
        name: if learnt {
            "padel_mdpg22_axes_learnt"
        } else {
            "padel_mdpg22"
        },
        title: "padel, racket handle or wrist, BMI270 ±4 g ±2000 °/s, 104 Hz, one stroke per \
                150-row capture (mdpg22, MIT per its README)"
            .into(),
        format: Format::Table(Box::new(TableFormat {
            delimiter: ',',
            channels: ["aX", "aY", "aZ", "gX", "gY", "gZ"].map(String::from),
            time: TimeSource::Rate(104.0),
            acc_unit: AccUnit::G,
            acc_negated: false,
            gyro_unit: GyroUnit::DegPerSecond,
            axes,
            capture_rows: Some(150),
            label_column: None,
        })),
        position: BodyPosition::Racket,
        acc_full_scale_g: 4.0,
        gyro_full_scale_dps: 2000.0,
        files: vec![
            file(
                "drive.csv",
                "drive (forehand)",
                "forehand",
                FileKind::Captures,
            ),
            file(
                "reves.csv",
                "revés (backhand)",
                "backhand",
                FileKind::Captures,
            ),
            file(
                "smash.csv",
                "smash (overhead)",
                "overhead",
                FileKind::Captures,
            ),
            file("ruido.csv", "noise", "idle", FileKind::Idle),
        ],
        speed_order: Vec::new(),
        notes,
    }
}

/// Joshua-Weaver1/Tennis-Stroke-Classifier `Data/`: an Apple Watch on the wrist (Sensor
/// Logger, ≈100 Hz), rows labelled 0 none, 1 forehand, 2 backhand, 3 overhead.
pub fn tennis(dir: &Path) -> Result<Source, std::io::Error> {
    let runs = FileKind::LabelledRuns(
        [
            ("1", "forehand", "forehand"),
            ("2", "backhand", "backhand"),
            ("3", "overhead", "overhead"),
        ]
        .map(|(value, class, l)| (value.to_string(), class.to_string(), label(l)))
        .to_vec(),
    );
    // `all_shot_data.csv` is the players' files concatenated: reading it too would count
    // every stroke twice.
    let files = csv_files(dir)?
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "all_shot_data.csv"))
        .map(|path| SourceFile {
            path,
            class: String::new(),
            label: Label::default(),
            kind: runs.clone(),
        })
        .collect();
    Ok(Source {
        name: "tennis_wrist_jweaver",
        title: "tennis, Apple Watch on the wrist, ≈100 Hz, rows labelled forehand / backhand / \
                overhead (Joshua-Weaver1, MIT)"
            .into(),
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
                unit: TimeUnit::Nanos,
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
        files,
        speed_order: Vec::new(),
        notes: vec![
            "a labelled run is an activity window, not one stroke (runs hold 1–7 wrist peaks \
             over 300 °/s): `found` counts windows with a swing, `twice` is not measured"
                .into(),
            "which wrist and which way the watch faces is not stated".into(),
        ],
    })
}

/// The classes of ai_ping_pong's raw sets: directory, class, implied side. direita/esquerda
/// (right/left) are read as forehand/backhand of a right-handed player, which the data set
/// does not state.
const TABLE_TENNIS_CLASSES: [(&str, &str, &str); 5] = [
    ("top_spin_direita", "topspin forehand", "forehand"),
    ("top_spin_esquerda", "topspin backhand", "backhand"),
    ("flip_direita", "flip forehand", "forehand"),
    ("flip_esquerda", "flip backhand", "backhand"),
    ("bloco", "block", "any"),
];

/// MikaPower/ai_ping_pong `datasets/raw/`: an Apple Watch (SensorLog, 50 Hz) on the wrist of a
/// player returning balls from a robot (one every 1.166 s in `fast_dataset`, 1.74 s in
/// `slow_dataset`) until it ran out; `rest` sessions hold no stroke. `dir` is `datasets/raw`
/// (or the excerpt laid out the same way); a set or class directory that is absent is skipped.
pub fn table_tennis(dir: &Path) -> Result<Source, std::io::Error> {
    let mut files = Vec::new();
    for (set, interval_ms) in [("fast_dataset", 1166.0), ("slow_dataset", 1740.0)] {
        for (class_dir, class, side) in TABLE_TENNIS_CLASSES {
            let path = dir.join(set).join("files").join(class_dir);
            if !path.is_dir() {
                continue;
            }
            for file in csv_files(&path)? {
                files.push(SourceFile {
                    path: file,
                    class: class.into(),
                    label: label(side),
                    kind: FileKind::Fed { interval_ms },
                });
            }
        }
    }
    // The slow set's rest files are the fast set's (15 of its 16, byte for byte): read once.
    let rest = dir.join("fast_dataset/files/rest");
    if rest.is_dir() {
        for file in csv_files(&rest)? {
            files.push(SourceFile {
                path: file,
                class: "rest".into(),
                label: label("idle"),
                kind: FileKind::Idle,
            });
        }
    }
    Ok(Source {
        name: "tabletennis_mikapower",
        title: "table tennis against a ball robot, Apple Watch on the wrist, 50 Hz, rest \
                sessions (MikaPower/ai_ping_pong, MIT per its README)"
            .into(),
        format: Format::Table(Box::new(TableFormat {
            delimiter: '|',
            channels: [
                "accelerometerAccelerationX(G)",
                "accelerometerAccelerationY(G)",
                "accelerometerAccelerationZ(G)",
                "motionRotationRateX(rad/s)",
                "motionRotationRateY(rad/s)",
                "motionRotationRateZ(rad/s)",
            ]
            .map(String::from),
            time: TimeSource::Column {
                name: "motionTimestamp_sinceReboot(s)".into(),
                unit: TimeUnit::Seconds,
            },
            acc_unit: AccUnit::G,
            // CoreMotion's raw accelerometer reads −1 g on z lying face up.
            acc_negated: true,
            gyro_unit: GyroUnit::RadPerSecond,
            axes: AxisMap::IDENTITY,
            capture_rows: None,
            label_column: None,
        })),
        position: BodyPosition::Wrist,
        acc_full_scale_g: 16.0,
        gyro_full_scale_dps: 2000.0,
        files,
        speed_order: vec![
            ("topspin forehand".into(), "block".into()),
            ("topspin backhand".into(), "block".into()),
        ],
        notes: vec![
            "balls fed = session length / robot interval, an upper bound: `found` is a lower \
             bound on recall; two swings within half an interval count as one ball twice"
                .into(),
            "a block meets the ball with a nearly still bat, a topspin drives through it: \
             topspin > block is the speed order physics gives here"
                .into(),
        ],
    })
}

/// deadpoolcnn/ml_badminton `dataset/`: WitMotion exports at 10 Hz, the stroke count in each
/// file name (`smash_10_kyle.csv`).
pub fn badminton_witmotion(dir: &Path) -> Result<Source, std::io::Error> {
    let files = csv_files(dir)?
        .into_iter()
        .filter_map(|path| {
            // `smash_x30.csv`, `clear_10_kyle.csv`: the raw exports (the data set's feature
            // tables, `clear_x30_threshold_windowing_features.csv`, have more parts).
            let stem = path.file_stem()?.to_str()?.to_string();
            let parts: Vec<&str> = stem.split('_').collect();
            if parts.len() > 3 || !["smash", "clear", "drive", "lift"].contains(&parts[0]) {
                return None;
            }
            let class = parts[0].to_string();
            let count = super::nominal_count(path.to_str()?)?;
            let l = match class.as_str() {
                "smash" | "clear" => "overhead",
                _ => "any",
            };
            Some(SourceFile {
                path,
                class,
                label: label(l),
                kind: FileKind::Counted(count),
            })
        })
        .collect();
    Ok(Source {
        name: "badminton_witmotion_deadpoolcnn",
        title: "badminton shadow swings, WitMotion 9-axis IMU (mount not stated), 10 Hz, count \
                in the file name (deadpoolcnn, MIT)"
            .into(),
        format: Format::WitMotion,
        position: BodyPosition::Racket,
        acc_full_scale_g: 16.0,
        gyro_full_scale_dps: 2000.0,
        files,
        speed_order: vec![("smash".into(), "lift".into())],
        notes: vec!["at 10 Hz a swing is two or three samples".into()],
    })
}

/// PhusNguyen/Realtime-IMU-Badminton-Stroke-Recognition `dataset/`: an MPU6050 on the handle of
/// a badminton racket, 100 Hz, 9,784 one-second windows of five players, each a clear, slice,
/// drive or smash, with the shuttle (`_real`) or without (`_fake`). The document is a 402 MB
/// Git LFS object: `dir` is the clone's `dataset/` after `git lfs pull`. Nothing of it is
/// committed here (no copy was reachable); the MPU6050's configured ranges are not stated
/// (±16 g / ±2000 °/s assumed).
pub fn badminton_racket(dir: &Path) -> Source {
    let mut runs = Vec::new();
    for (stroke, height) in [
        ("Smash", "overhead"),
        ("Clear", "overhead"),
        ("Slice", "overhead"),
        ("Drive", "any"),
    ] {
        for (suffix, kind) in [("real", "hit"), ("fake", "air")] {
            runs.push((
                format!("{stroke}_{suffix}"),
                format!("{} ({kind})", stroke.to_lowercase()),
                label(height),
            ));
        }
    }
    let order = |a: &str, b: &str| (a.to_string(), b.to_string());
    Source {
        name: "badminton_racket_phusnguyen",
        title: "badminton, MPU6050 on the racket handle, 100 Hz, one-second windows of clear /                 slice / drive / smash, hit or air (PhusNguyen, MIT; local clone only)"
            .into(),
        format: Format::StrokeWindows { rate_hz: 100.0 },
        position: BodyPosition::Racket,
        acc_full_scale_g: 16.0,
        gyro_full_scale_dps: 2000.0,
        files: vec![SourceFile {
            path: dir.join("badminton_stroke_dataset.json"),
            class: String::new(),
            label: Label::default(),
            kind: FileKind::LabelledRuns(runs),
        }],
        speed_order: vec![
            order("smash (hit)", "clear (hit)"),
            order("clear (hit)", "slice (hit)"),
        ],
        notes: vec![
            "each window is cut around one stroke: nothing before or after it, and no idle \
             time to count false swings on"
                .into(),
            "slice (a sliced drop or cut) stands for the drop of smash > clear > drop".into(),
        ],
    }
}

/// ChoongGao/mlbadminton `raw_csv/`: a WitMotion BWT61 (the seed system's sensor family,
/// ±16 g, ±2000 °/s) in an armband on the playing arm, one swing per file (`clear/`, `drop/`,
/// `smash/`, 50 each; the files named by their start time), exported by WitMotion's PC
/// software at ≈100 Hz. Its `Time(s)` column is the Bluetooth arrival time of day (a quarter of
/// the rows repeat the previous stamp), so rows are timed from the rate. The repository has no
/// licence: nothing is committed, a clone is read locally.
pub fn badminton_witmotion_bwt61(dir: &Path) -> Result<Source, std::io::Error> {
    let mut files = Vec::new();
    for class in ["clear", "drop", "smash"] {
        let class_dir = dir.join(class);
        if !class_dir.is_dir() {
            continue;
        }
        for path in csv_files(&class_dir)? {
            // `clear.csv`, `clear2.csv` are whole sessions of another layout; the swings are
            // the files named by their timestamp.
            let stamped = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
            if stamped {
                files.push(SourceFile {
                    path,
                    class: class.into(),
                    label: label("overhead"),
                    kind: FileKind::Captures,
                });
            }
        }
    }
    let order = |a: &str, b: &str| (a.to_string(), b.to_string());
    Ok(Source {
        name: "badminton_witmotion_choonggao",
        title: "badminton, WitMotion BWT61 ±16 g ±2000 °/s in an armband, ≈100 Hz, one clear / \
                drop / smash per file (ChoongGao, no licence: local clone only)"
            .into(),
        format: Format::Table(Box::new(TableFormat {
            delimiter: ',',
            channels: [
                "ax(g)",
                "ay(g)",
                "az(g)",
                "wx(deg/s)",
                "wy(deg/s)",
                "wz(deg/s)",
            ]
            .map(String::from),
            time: TimeSource::Rate(100.0),
            acc_unit: AccUnit::G,
            acc_negated: false,
            gyro_unit: GyroUnit::DegPerSecond,
            axes: AxisMap::IDENTITY,
            capture_rows: None,
            label_column: None,
        })),
        position: BodyPosition::Wrist,
        acc_full_scale_g: 16.0,
        gyro_full_scale_dps: 2000.0,
        files,
        speed_order: vec![order("smash", "clear"), order("clear", "drop")],
        notes: vec![
            "clears and smashes reach the gyro's ±2000 °/s (clipped or wrapped); drops do not"
                .into(),
            "each file is one swing from a ready position: no idle time to count false swings on"
                .into(),
        ],
    })
}

impl Source {
    /// Whether the reader turns the board onto the analyser's axes (a learnt or fitted map):
    /// that is the map a venue would configure as `axes`, so the analyser's own inference is
    /// off for it, as it is for a device with `axes`.
    pub fn axes_configured(&self) -> bool {
        matches!(&self.format, Format::Table(t) if t.axes != AxisMap::IDENTITY)
    }

    /// The file read as a recording (format, placement, full scales).
    pub fn spec(&self, file: &SourceFile) -> RecordingSpec {
        RecordingSpec {
            path: file.path.to_string_lossy().into_owned(),
            label: file.label,
            format: self.format.clone(),
            position: self.position,
            acc_full_scale_g: self.acc_full_scale_g,
            gyro_full_scale_dps: self.gyro_full_scale_dps,
            run_labels: Vec::new(),
        }
    }

    /// Reads one file: its samples and, per stroke class found in it, its truth. A file of
    /// labelled runs splits into one entry per label value; others give one.
    pub fn read(&self, file: &SourceFile) -> Result<ReadFile, RecordingError> {
        let table = read_recording(&self.spec(file))?;
        let parts = truth_of(file, &table);
        Ok(ReadFile {
            samples: table.samples,
            parts,
        })
    }
}

/// A file's samples and the truth of each class it holds.
#[derive(Debug, Clone)]
pub struct ReadFile {
    pub samples: Vec<NodeSample>,
    /// (class, label, truth); swings are scored against each part in turn.
    pub parts: Vec<(String, Label, Truth)>,
}

impl ReadFile {
    /// The file's swings split by the part (class) whose strokes they fall in; a swing in no
    /// part's span goes to the first part, where it counts as a false swing.
    pub fn outcomes(&self, file: &str, swings: Vec<Detected>) -> Vec<FileOutcome> {
        let mut per_part: Vec<Vec<Detected>> = vec![Vec::new(); self.parts.len()];
        for swing in swings {
            let owner = self
                .parts
                .iter()
                .position(|(_, _, truth)| match truth {
                    Truth::Strokes { spans, .. } => spans.iter().any(|s| s.holds(swing.t_impact)),
                    _ => false,
                })
                .unwrap_or(0);
            if let Some(part) = per_part.get_mut(owner) {
                part.push(swing);
            }
        }
        self.parts
            .iter()
            .zip(per_part)
            .map(|((class, label, truth), swings)| FileOutcome {
                file: file.to_string(),
                class: class.clone(),
                label: *label,
                truth: truth.clone(),
                swings,
            })
            .collect()
    }
}

/// Recorded time, ms: the sum of sample steps shorter than [`GAP_MS`], for which `keep` holds.
fn recorded_ms(samples: &[NodeSample], keep: impl Fn(f64) -> bool) -> f64 {
    samples
        .windows(2)
        .map(|w| (w[0].t_ms, w[1].t_ms - w[0].t_ms))
        .filter(|(t, dt)| *dt > 0.0 && *dt < GAP_MS && keep(*t))
        .map(|(_, dt)| dt)
        .sum()
}

/// The stretches between gaps longer than half [`GAP_MS`] (a capture file's captures are
/// 1 s apart, its rows 10 ms).
fn captures(samples: &[NodeSample]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for s in samples {
        match spans.last_mut() {
            Some(span) if s.t_ms - span.t_end < GAP_MS / 2.0 => span.t_end = s.t_ms,
            _ => spans.push(Span {
                t_start: s.t_ms,
                t_end: s.t_ms,
            }),
        }
    }
    spans
}

fn truth_of(file: &SourceFile, table: &Table) -> Vec<(String, Label, Truth)> {
    let samples = &table.samples;
    let one = |truth| vec![(file.class.clone(), file.label, truth)];
    match &file.kind {
        FileKind::Captures => one(Truth::Strokes {
            spans: captures(samples),
            idle_ms: 0.0,
            one_each: true,
        }),
        FileKind::Idle => one(Truth::Idle {
            recorded_ms: recorded_ms(samples, |_| true),
        }),
        FileKind::Fed { interval_ms } => one(Truth::Fed {
            interval_ms: *interval_ms,
            recorded_ms: recorded_ms(samples, |_| true),
        }),
        FileKind::Counted(n) => one(Truth::Counted(*n)),
        FileKind::LabelledRuns(values) => {
            let stroke_runs: Vec<_> = table
                .label_runs
                .iter()
                .filter(|r| values.iter().any(|(v, _, _)| *v == r.value))
                .collect();
            let in_run = |t: f64| stroke_runs.iter().any(|r| t >= r.t_start && t < r.t_end);
            let idle_ms = recorded_ms(samples, |t| !in_run(t));
            let mut parts = Vec::new();
            for (value, class, l) in values {
                let spans = stroke_runs
                    .iter()
                    .filter(|r| &r.value == value)
                    .map(|r| Span {
                        t_start: r.t_start,
                        t_end: r.t_end,
                    })
                    .collect();
                parts.push((
                    class.clone(),
                    *l,
                    Truth::Strokes {
                        spans,
                        // Idle time is counted once per file, with the first part.
                        idle_ms: if parts.is_empty() { idle_ms } else { 0.0 },
                        one_each: false,
                    },
                ));
            }
            parts
        }
    }
}
