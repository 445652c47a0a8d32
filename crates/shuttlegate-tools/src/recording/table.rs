//! Delimited-text IMU recordings in any column layout: the formats public racket and wrist
//! recordings come in (Arduino serial dumps with a bare `aX,…,gZ` header, InfluxDB annotated
//! CSV exports, iOS SensorLog `|`-separated logs). What differs between them is described by
//! a [`TableFormat`] — delimiter, which columns hold the six channels, their units, where time
//! comes from, how the sensor's axes map onto the analyser's (x along the shaft or forearm, z
//! the forehand face normal), and whether the file is a string of fixed-length captures — and
//! [`parse_table`] turns the text into analyser samples. Pure: text in, samples out.

use shuttlegate_core::analysis::NodeSample;
use shuttlegate_core::batch::BodyPosition;

/// Standard gravity, m/s² per g: exports in m/s² are divided by it.
const STANDARD_GRAVITY: f32 = 9.806_65;

/// Time between two fixed-length captures when the file does not say: the real pause is
/// unknown (the capturing firmware waits for the next trigger). One second is longer than
/// the detector's 200 ms gap cut and its 500 ms reorder window, so no swing spans two
/// captures and no capture's tail is mistaken for the next one's stillness.
pub const CAPTURE_GAP_MS: f64 = 1000.0;

/// Most rows read from one file: a bound on memory (≈ 3 h at 100 Hz), far above any public
/// recording found.
pub const MAX_ROWS: usize = 1_000_000;

/// Why a table could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    #[error("no header line (every line is empty or a `#` comment)")]
    NoHeader,
    #[error("column `{0}` is not in the header")]
    MissingColumn(String),
    #[error("line {line}: {reason}")]
    Row { line: usize, reason: String },
    #[error("more than {MAX_ROWS} rows; split the file")]
    TooLong,
}

/// Where a sample's time comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeSource {
    /// A column, in the given unit.
    Column { name: String, unit: TimeUnit },
    /// No time column: rows are `1000 / rate` ms apart.
    Rate(f64),
}

/// Unit of a time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Millis,
    /// Integer nanoseconds (Sensor Logger's unix-ns `time`).
    Nanos,
    /// `2025-11-18T17:40:00.259Z`.
    Rfc3339,
}

/// Unit of the accelerometer columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccUnit {
    G,
    MetresPerSecond2,
}

/// Unit of the gyroscope columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GyroUnit {
    DegPerSecond,
    RadPerSecond,
}

/// How the sensor's axes map onto the analyser's: analyser axis `i` is `sign · sensor[index]`.
/// Written `x,-z,y` (analyser x = sensor x, y = −sensor z, z = sensor y).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisMap([(usize, bool); 3]);

impl AxisMap {
    /// The sensor's axes are the analyser's.
    pub const IDENTITY: AxisMap = AxisMap([(0, false), (1, false), (2, false)]);

    /// Parses `x,-z,y`: three distinct axes, each optionally negated.
    pub fn parse(text: &str) -> Result<AxisMap, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [a, b, c] = parts.as_slice() else {
            return Err(format!(
                "axis map `{text}`: expected three axes such as x,-z,y"
            ));
        };
        let mut out = [(0, false); 3];
        for (slot, part) in out.iter_mut().zip([a, b, c]) {
            let (negated, name) = match part.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, *part),
            };
            let index = match name {
                "x" => 0,
                "y" => 1,
                "z" => 2,
                _ => {
                    return Err(format!(
                        "axis map `{text}`: `{part}` is not x, y or z (or -x…)"
                    ));
                }
            };
            *slot = (index, negated);
        }
        let mut seen = [false; 3];
        for (index, _) in out {
            if std::mem::replace(&mut seen[index], true) {
                return Err(format!("axis map `{text}`: an axis is used twice"));
            }
        }
        Ok(AxisMap(out))
    }

    /// The map as [`AxisMap::parse`] reads it (`x,-y,-z`).
    pub fn text(self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(index, negated)| {
                format!(
                    "{}{}",
                    if *negated { "-" } else { "" },
                    ["x", "y", "z"][*index]
                )
            })
            .collect();
        parts.join(",")
    }

    fn apply(self, v: [f32; 3]) -> [f32; 3] {
        self.0
            .map(|(index, negated)| if negated { -v[index] } else { v[index] })
    }
}

/// The layout of one kind of export.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFormat {
    pub delimiter: char,
    /// Header names of ax, ay, az, gx, gy, gz; a channel written `a+b` is the sum of two
    /// columns (Apple's CoreMotion exports split acceleration into `gravity` and user
    /// `acceleration`).
    pub channels: [String; 6],
    pub time: TimeSource,
    pub acc_unit: AccUnit,
    /// The export uses CoreMotion's sign for acceleration (a device lying face up reads
    /// z = −1 g), the opposite of specific force, which the analyser takes (+1 g up at rest).
    pub acc_negated: bool,
    pub gyro_unit: GyroUnit,
    pub axes: AxisMap,
    /// The file is a string of captures of this many rows each (firmware that records a fixed
    /// window per trigger); captures are [`CAPTURE_GAP_MS`] apart when time comes from a rate.
    pub capture_rows: Option<usize>,
    /// Header name of a per-row label column (what the player was doing at that row).
    pub label_column: Option<String>,
}

/// A stretch of consecutive rows with the same label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRun {
    pub value: String,
    /// Time of the run's first and last row, ms.
    pub t_start: f64,
    pub t_end: f64,
}

/// What a file held.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub samples: Vec<NodeSample>,
    /// Rows skipped because a channel or the time cell was empty (loggers such as SensorLog
    /// write a row whenever any sensor updates, leaving the others' cells empty).
    pub skipped_rows: usize,
    /// Fixed-length captures (complete ones), when the format has them.
    pub captures: Option<usize>,
    /// Runs of the label column, in row order, when the format has one.
    pub label_runs: Vec<LabelRun>,
}

/// Most label runs kept: a bound on memory far above the strokes of any file.
pub const MAX_LABEL_RUNS: usize = 100_000;

/// Where each value of a row is, resolved once from the header.
struct Columns {
    channels: [Vec<usize>; 6],
    time: RowTime,
    label: Option<usize>,
    /// Multipliers into g and °/s (and the accelerometer's sign).
    acc_scale: f32,
    gyro_scale: f32,
}

/// Where a row's time comes from, resolved against the header.
#[derive(Debug, Clone, Copy)]
enum RowTime {
    Column(usize, TimeUnit),
    /// Rows this many hertz apart.
    Rate(f64),
}

impl Columns {
    fn resolve(header: &str, format: &TableFormat) -> Result<Columns, TableError> {
        let names: Vec<&str> = header.split(format.delimiter).map(str::trim).collect();
        let find = |name: &str| {
            names
                .iter()
                .position(|n| *n == name.trim())
                .ok_or_else(|| TableError::MissingColumn(name.trim().into()))
        };
        let mut channels: [Vec<usize>; 6] = Default::default();
        for (slot, spec) in channels.iter_mut().zip(&format.channels) {
            *slot = spec.split('+').map(find).collect::<Result<_, _>>()?;
        }
        let time = match &format.time {
            TimeSource::Column { name, unit } => RowTime::Column(find(name)?, *unit),
            TimeSource::Rate(rate) => RowTime::Rate(*rate),
        };
        let label = format.label_column.as_deref().map(find).transpose()?;
        let acc_scale = match format.acc_unit {
            AccUnit::G => 1.0,
            AccUnit::MetresPerSecond2 => 1.0 / STANDARD_GRAVITY,
        } * if format.acc_negated { -1.0 } else { 1.0 };
        let gyro_scale = match format.gyro_unit {
            GyroUnit::DegPerSecond => 1.0,
            GyroUnit::RadPerSecond => 180.0 / std::f32::consts::PI,
        };
        Ok(Columns {
            channels,
            time,
            label,
            acc_scale,
            gyro_scale,
        })
    }

    fn all(&self) -> impl Iterator<Item = usize> + '_ {
        self.channels
            .iter()
            .flatten()
            .copied()
            .chain(match self.time {
                RowTime::Column(col, _) => Some(col),
                RowTime::Rate(_) => None,
            })
    }
}

/// Reads a table: lines that are empty or start with `#` are skipped (InfluxDB annotations),
/// the first other line is the header, a repeat of it is skipped (InfluxDB starts every result
/// table with one), and every further line is a row; a short last line (a logger cut off
/// mid-row) is skipped and counted. Columns are found by header name, so extra
/// columns (magnitudes, quaternions) are ignored. A row with an empty channel or time cell is
/// skipped and counted; any other cell that is not a finite number is an error.
pub fn parse_table(
    text: &str,
    format: &TableFormat,
    position: BodyPosition,
) -> Result<Table, TableError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (_, header) = lines.next().ok_or(TableError::NoHeader)?;
    let columns = Columns::resolve(header, format)?;
    let mut table = Table {
        samples: Vec::new(),
        skipped_rows: 0,
        captures: None,
        label_runs: Vec::new(),
    };
    let header_cells = header.split(format.delimiter).count();
    let mut lines = lines.peekable();
    while let Some((n, line)) = lines.next() {
        if line == header {
            continue;
        }
        // A logger stopped mid-row leaves its last line short (WitMotion's PC software):
        // skipped and counted like a row with empty cells. A short row elsewhere is an error.
        let last = lines.peek().is_none();
        if last && line.split(format.delimiter).count() < header_cells {
            table.skipped_rows += 1;
            continue;
        }
        // A skipped row still held its time slot in a file timed from its rate.
        let index = table.samples.len() + table.skipped_rows;
        if index == MAX_ROWS {
            return Err(TableError::TooLong);
        }
        let row = parse_row(line, format, &columns, index).map_err(|reason| TableError::Row {
            line: n + 1,
            reason,
        })?;
        let Some(row) = row else {
            table.skipped_rows += 1;
            continue;
        };
        if let Some(label) = row.label {
            extend_runs(&mut table.label_runs, label, row.t_ms)?;
        }
        table.samples.push(NodeSample {
            position,
            t_ms: row.t_ms,
            acc: row.acc,
            gyro: row.gyro,
            angle: None,
        });
    }
    let rows = table.samples.len() + table.skipped_rows;
    table.captures = format.capture_rows.map(|per| rows / per.max(1));
    Ok(table)
}

fn extend_runs(runs: &mut Vec<LabelRun>, label: &str, t_ms: f64) -> Result<(), TableError> {
    if let Some(run) = runs.last_mut().filter(|run| run.value == label) {
        run.t_end = t_ms;
        return Ok(());
    }
    if runs.len() == MAX_LABEL_RUNS {
        return Err(TableError::TooLong);
    }
    runs.push(LabelRun {
        value: label.to_string(),
        t_start: t_ms,
        t_end: t_ms,
    });
    Ok(())
}

struct Row<'a> {
    t_ms: f64,
    acc: [f32; 3],
    gyro: [f32; 3],
    label: Option<&'a str>,
}

fn parse_row<'a>(
    line: &'a str,
    format: &TableFormat,
    columns: &Columns,
    index: usize,
) -> Result<Option<Row<'a>>, String> {
    let cells: Vec<&str> = line.split(format.delimiter).map(str::trim).collect();
    if columns
        .all()
        .any(|col| cells.get(col).is_some_and(|c| c.is_empty()))
    {
        return Ok(None);
    }
    let cell = |col: usize| {
        cells
            .get(col)
            .copied()
            .ok_or_else(|| format!("{} columns, the header has more", cells.len()))
    };
    let number = |col: usize| {
        let text = cell(col)?;
        text.parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{text}` is not a finite number"))
    };
    let mut values = [0f32; 6];
    for (value, cols) in values.iter_mut().zip(&columns.channels) {
        for &col in cols {
            *value += number(col)?;
        }
    }
    let acc = [values[0], values[1], values[2]].map(|v| v * columns.acc_scale);
    let gyro = [values[3], values[4], values[5]].map(|v| v * columns.gyro_scale);
    let t_ms = match columns.time {
        RowTime::Column(col, unit) => parse_time(cell(col)?, unit)?,
        RowTime::Rate(rate) => rate_time(index, rate, format.capture_rows),
    };
    let label = columns.label.map(cell).transpose()?;
    Ok(Some(Row {
        t_ms,
        acc: format.axes.apply(acc),
        gyro: format.axes.apply(gyro),
        label,
    }))
}

/// Time of row `index` of a file without a time column: rows `1000 / rate` ms apart, and
/// each capture [`CAPTURE_GAP_MS`] after the previous one's last row.
fn rate_time(index: usize, rate_hz: f64, capture_rows: Option<usize>) -> f64 {
    let period = 1000.0 / rate_hz;
    let captures_before = capture_rows.map_or(0, |rows| index / rows.max(1));
    index as f64 * period + captures_before as f64 * CAPTURE_GAP_MS
}

fn parse_time(text: &str, unit: TimeUnit) -> Result<f64, String> {
    let bad = || format!("time `{text}` is not {unit:?}");
    let t = match unit {
        TimeUnit::Seconds => text.parse::<f64>().map_err(|_| bad())? * 1000.0,
        TimeUnit::Millis => text.parse::<f64>().map_err(|_| bad())?,
        // Parsed as an integer: f64 holds unix ns only to ~0.25 µs, plenty, but an f64 parse
        // of a 19-digit stamp is what loggers that write ns expect to be exact.
        TimeUnit::Nanos => text.parse::<i64>().map_err(|_| bad())? as f64 / 1e6,
        TimeUnit::Rfc3339 => {
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| bad())?
                .timestamp_micros() as f64
                / 1000.0
        }
    };
    if t.is_finite() { Ok(t) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn padel_format() -> TableFormat {
        TableFormat {
            delimiter: ',',
            channels: ["aX", "aY", "aZ", "gX", "gY", "gZ"].map(String::from),
            time: TimeSource::Rate(100.0),
            acc_unit: AccUnit::G,
            gyro_unit: GyroUnit::DegPerSecond,
            axes: AxisMap::IDENTITY,
            capture_rows: Some(2),
            acc_negated: false,
            label_column: None,
        }
    }

    #[test]
    fn captures_are_timed_from_the_rate_with_a_gap_between_them() {
        let text = "aX,aY,aZ,gX,gY,gZ\n1,0,0,10,0,0\n1,0,0,20,0,0\n1,0,0,30,0,0\n1,0,0,40,0,0\n1,0,0,50,0,0\n";
        let t = parse_table(text, &padel_format(), BodyPosition::Racket).expect("reads");
        let times: Vec<f64> = t.samples.iter().map(|s| s.t_ms).collect();
        assert_eq!(times, [0.0, 10.0, 1020.0, 1030.0, 2040.0]);
        assert_eq!(
            t.captures,
            Some(2),
            "the fifth row is an incomplete capture"
        );
    }

    #[test]
    fn an_influx_export_is_read_in_si_units_with_rfc3339_time() {
        let text = "#group,FALSE,FALSE\n#datatype,string,long\n#default,_result,,\n\
                    ,result,table,_time,Amag,Ax,Ay,Az,Gmag,Gx,Gy,Gz\n\
                    ,,0,2025-11-18T17:40:00.259Z,9.7,9.80665,0,-19.6133,6.2,57.29578,0,0\n\
                    ,result,table,_time,Amag,Ax,Ay,Az,Gmag,Gx,Gy,Gz\n\
                    ,,0,2025-11-18T17:40:00.301Z,9.7,0,0,0,6.2,0,0,0\n";
        let format = TableFormat {
            channels: ["Ax", "Ay", "Az", "Gx", "Gy", "Gz"].map(String::from),
            time: TimeSource::Column {
                name: "_time".into(),
                unit: TimeUnit::Rfc3339,
            },
            acc_unit: AccUnit::MetresPerSecond2,
            capture_rows: None,
            ..padel_format()
        };
        let t = parse_table(text, &format, BodyPosition::Wrist).expect("reads");
        assert_eq!(t.samples.len(), 2);
        assert!(
            (t.samples[0].acc[0] - 1.0).abs() < 1e-6 && (t.samples[0].acc[2] + 2.0).abs() < 1e-6
        );
        assert_eq!(t.samples[1].t_ms - t.samples[0].t_ms, 42.0);
        assert_eq!(t.samples[0].position, BodyPosition::Wrist);
    }

    #[test]
    fn radians_and_a_remapped_axis_come_out_in_the_analysers_frame() {
        let text = "t|gx|gy|gz|ax|ay|az\n1.5|0|3.14159265|0|0|0|1\n";
        let format = TableFormat {
            delimiter: '|',
            channels: ["ax", "ay", "az", "gx", "gy", "gz"].map(String::from),
            time: TimeSource::Column {
                name: "t".into(),
                unit: TimeUnit::Seconds,
            },
            gyro_unit: GyroUnit::RadPerSecond,
            axes: AxisMap::parse("y,-z,x").expect("valid"),
            capture_rows: None,
            ..padel_format()
        };
        let t = parse_table(text, &format, BodyPosition::Racket).expect("reads");
        assert_eq!(t.samples[0].t_ms, 1500.0);
        assert!((t.samples[0].gyro[0] - 180.0).abs() < 1e-3);
        assert_eq!(t.samples[0].acc, [0.0, -1.0, 0.0]);
    }

    #[test]
    fn bad_input_is_named() {
        let f = padel_format();
        assert_eq!(
            parse_table("# only\n\n", &f, BodyPosition::Racket),
            Err(TableError::NoHeader)
        );
        assert_eq!(
            parse_table("aX,aY\n", &f, BodyPosition::Racket),
            Err(TableError::MissingColumn("aZ".into()))
        );
        let err = parse_table(
            "aX,aY,aZ,gX,gY,gZ\n1,2,3,4,5\n1,2,3,4,5,6\n",
            &f,
            BodyPosition::Racket,
        )
        .expect_err("short row");
        assert!(matches!(err, TableError::Row { line: 2, .. }), "{err:?}");
        let t = parse_table(
            "aX,aY,aZ,gX,gY,gZ\n1,2,3,4,5,6\n1,2,3,4,5\n",
            &f,
            BodyPosition::Racket,
        )
        .expect("a short last row is a logger cut off mid-row");
        assert_eq!((t.samples.len(), t.skipped_rows), (1, 1));
        let err = parse_table(
            "aX,aY,aZ,gX,gY,gZ\n1,2,NaN,4,5,6\n",
            &f,
            BodyPosition::Racket,
        )
        .expect_err("NaN");
        assert!(err.to_string().contains("finite"), "{err}");
    }

    #[test]
    fn rows_with_an_empty_channel_are_skipped_and_counted() {
        let text = "aX,aY,aZ,gX,gY,gZ\n1,0,0,1,2,3\n1,0,0,,,\n1,0,0,4,5,6\n";
        let t = parse_table(text, &padel_format(), BodyPosition::Racket).expect("reads");
        assert_eq!(t.samples.len(), 2);
        assert_eq!(t.skipped_rows, 1);
        assert_eq!(t.samples[1].gyro, [4.0, 5.0, 6.0]);
    }

    #[test]
    fn summed_negated_channels_and_label_runs_are_read() {
        let text = "time,gx,gy,gz,ux,uy,uz,gravx,gravy,gravz,shot\n\
                    1000000000,0,0,0,0.5,0,0,0,0,-1,0\n\
                    1010000000,0,0,0,0,0,0,0,0,-1,1\n\
                    1020000000,0,0,0,0,0,0,0,0,-1,1\n\
                    1030000000,0,0,0,0,0,0,0,0,-1,0\n";
        let format = TableFormat {
            channels: ["ux+gravx", "uy+gravy", "uz+gravz", "gx", "gy", "gz"].map(String::from),
            time: TimeSource::Column {
                name: "time".into(),
                unit: TimeUnit::Nanos,
            },
            acc_negated: true,
            capture_rows: None,
            label_column: Some("shot".into()),
            ..padel_format()
        };
        let t = parse_table(text, &format, BodyPosition::Wrist).expect("reads");
        assert_eq!(
            t.samples[0].acc,
            [-0.5, 0.0, 1.0],
            "specific force points up at rest"
        );
        assert_eq!(t.samples[0].t_ms, 1000.0);
        let runs: Vec<(&str, f64, f64)> = t
            .label_runs
            .iter()
            .map(|r| (r.value.as_str(), r.t_start, r.t_end))
            .collect();
        assert_eq!(
            runs,
            [
                ("0", 1000.0, 1000.0),
                ("1", 1010.0, 1020.0),
                ("0", 1030.0, 1030.0)
            ]
        );
    }

    #[test]
    fn axis_maps_must_name_three_distinct_axes() {
        assert!(AxisMap::parse("x,y").is_err());
        assert!(AxisMap::parse("x,x,z").is_err());
        assert!(AxisMap::parse("x,w,z").is_err());
        assert_eq!(AxisMap::parse("x, y ,z"), Ok(AxisMap::IDENTITY));
    }

    proptest! {
        #[test]
        fn any_axis_map_text_is_parsed_or_refused_and_a_valid_one_permutes(
            text in "[-xyzw, ]{0,12}",
            v in prop::array::uniform3(-100.0f32..100.0),
        ) {
            if let Ok(map) = AxisMap::parse(&text) {
                // A signed permutation keeps the vector's length.
                let out = map.apply(v);
                let norm = |a: [f32; 3]| a.iter().map(|x| x * x).sum::<f32>();
                prop_assert!((norm(out) - norm(v)).abs() <= 1e-3 * norm(v).max(1.0));
            }
        }

        #[test]
        fn any_text_is_read_or_refused_without_panicking(text in "[aXYZgxyz0-9,.|#\\-eE\n ]{0,300}") {
            let _ = parse_table(&text, &padel_format(), BodyPosition::Racket);
        }

        #[test]
        fn every_complete_row_becomes_one_finite_sample(
            rows in prop::collection::vec(prop::array::uniform6(-2000.0f32..2000.0), 0..40),
        ) {
            let mut text = String::from("aX,aY,aZ,gX,gY,gZ\n");
            for r in &rows {
                let cells: Vec<String> = r.iter().map(|v| v.to_string()).collect();
                text.push_str(&cells.join(","));
                text.push('\n');
            }
            let t = parse_table(&text, &padel_format(), BodyPosition::Racket).expect("reads");
            prop_assert_eq!(t.samples.len(), rows.len());
            prop_assert_eq!(t.captures, Some(rows.len() / 2));
            for (s, r) in t.samples.iter().zip(&rows) {
                prop_assert_eq!(s.acc, [r[0], r[1], r[2]]);
                prop_assert_eq!(s.gyro, [r[3], r[4], r[5]]);
            }
            prop_assert!(t.samples.windows(2).all(|w| w[1].t_ms > w[0].t_ms));
        }
    }
}
