//! Offline operator tools: `journal stats` and `journal export`, and what the command line
//! needs around them ([`export_to_pipe`], [`quiet_broken_pipe`]).
//!
//! They read the segment files directly, take no lock and write nothing, so they work on a
//! journal a running daemon is appending to: a record still being written at the end of the
//! open segment just looks torn and is left out.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::fs::{Fs, StdFs};
use super::segment::{kind_slot, parse_segment_name};
use shuttlegate_core::batch::{BatchForm, CompactBatch, SeedBatch};
use shuttlegate_core::journal::frame::{SEGMENT_HEADER_LEN, decode_segment_header, scan_all};
use shuttlegate_core::journal::record::{RecordBody, RecordKind};
use shuttlegate_core::journal::stored::StoredRecord;

/// Why a tool could not run. Printed to the operator.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

impl ToolError {
    /// The output's reader went away: `journal export … | head` closing the pipe early is the
    /// reader being done, not an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ToolError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// A tool's result for the command line: a closed pipe ([`ToolError::is_broken_pipe`]) ends
/// the output quietly, as `None`.
pub fn quiet_broken_pipe<T>(r: Result<T, ToolError>) -> Result<Option<T>, ToolError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_broken_pipe() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Which records `export` prints.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub device: Option<String>,
    pub session: Option<String>,
}

impl ExportFilter {
    fn matches(&self, r: &StoredRecord) -> bool {
        let want = |w: &Option<String>, have: &Option<String>| {
            w.as_ref()
                .is_none_or(|w| have.as_deref() == Some(w.as_str()))
        };
        want(&self.device, &r.device) && want(&self.session, &r.session_id)
    }
}

/// `journal export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// What a tool pass over the segments saw besides records.
#[derive(Debug, Default)]
struct Walk {
    segments: usize,
    bytes: u64,
    corrupt: u64,
    bad_segments: Vec<String>,
    /// Segments per format version (an upgraded journal holds older ones until released).
    versions: std::collections::BTreeMap<u32, usize>,
}

/// Calls `visit` for every good record, oldest first.
fn walk(
    fs: &dyn Fs,
    dir: &Path,
    mut visit: impl FnMut(StoredRecord) -> Result<(), ToolError>,
) -> Result<Walk, ToolError> {
    let io_err = |path: &Path, source| ToolError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut names: Vec<(u64, String)> = fs
        .list(dir)
        .map_err(|e| io_err(dir, e))?
        .into_iter()
        .filter_map(|n| Some((parse_segment_name(&n)?, n)))
        .collect();
    names.sort();
    let mut w = Walk::default();
    for (first, name) in names {
        let path = dir.join(&name);
        let data = match fs.read(&path) {
            Ok(d) => d,
            // Released by the daemon since we listed it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&path, e)),
        };
        match decode_segment_header(&data) {
            Ok(h) if h.first_id == first => *w.versions.entry(h.version).or_default() += 1,
            Ok(_) => {
                w.bad_segments
                    .push(format!("{name}: header names another first id"));
                continue;
            }
            Err(e) => {
                w.bad_segments.push(format!("{name}: {e}"));
                continue;
            }
        }
        w.segments += 1;
        w.bytes += data.len() as u64;
        let mut records = Vec::new();
        let summary = scan_all(&data[SEGMENT_HEADER_LEN..], |_, f| {
            records.push(StoredRecord::from_frame(f))
        });
        w.corrupt += summary.corrupt.len() as u64;
        for r in records {
            visit(r)?;
        }
    }
    Ok(w)
}

/// Calls `visit` for every good record of the journal in `dir`, oldest first, straight from the
/// segment files: no lock, nothing written, so it works beside a running daemon (`replay`'s
/// reader). Returns how many corrupt records were skipped.
pub fn for_each_record(dir: &Path, mut visit: impl FnMut(StoredRecord)) -> Result<u64, ToolError> {
    let w = walk(&StdFs, dir, |r| {
        visit(r);
        Ok(())
    })?;
    Ok(w.corrupt)
}

fn read_cursors(fs: &dyn Fs, dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs
        .list(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| {
            let consumer = n.strip_suffix(".cursor")?.to_owned();
            let value = fs
                .read(&dir.join(&n))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| s.parse::<u64>().is_ok())
                .unwrap_or_else(|| "unreadable".to_owned());
            Some((consumer, value))
        })
        .collect();
    out.sort();
    out
}

fn fmt_ts(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
}

/// Prints segments, bytes, records by kind, oldest/newest, cursors and compression figures.
pub fn stats(dir: &Path, out: &mut impl Write) -> Result<(), ToolError> {
    stats_with_fs(&StdFs, dir, out)
}

pub fn stats_with_fs(fs: &dyn Fs, dir: &Path, out: &mut impl Write) -> Result<(), ToolError> {
    let mut by_kind = [0u64; 4];
    let mut ids: Option<(u64, u64)> = None;
    let mut ts: (Option<i64>, Option<i64>) = (None, None);
    let (mut samples, mut batch_bytes, mut raw, mut stored) = (0u64, 0u64, 0u64, 0u64);
    // Each consumer's backlog: the records (and their bytes) past its cursor.
    let cursors = read_cursors(fs, dir);
    let positions: Vec<Option<u64>> = cursors.iter().map(|(_, v)| v.parse().ok()).collect();
    let mut backlog = vec![(0u64, 0u64); cursors.len()];
    let w = walk(fs, dir, |r| {
        for (pos, (records, bytes)) in positions.iter().zip(backlog.iter_mut()) {
            if pos.is_some_and(|c| r.id > c) {
                *records += 1;
                *bytes += r.encoded().len() as u64;
            }
        }
        by_kind[kind_slot(r.kind)] += 1;
        ids = Some(ids.map_or((r.id, r.id), |(a, _)| (a, r.id)));
        ts.0.get_or_insert(r.ts_ms);
        ts.1 = Some(r.ts_ms);
        if r.kind == RecordKind::Batch {
            samples += u64::from(r.samples);
            batch_bytes += r.encoded().len() as u64;
        }
        raw += u64::from(r.raw_len());
        stored += r.body().len() as u64;
        Ok(())
    })?;
    let o = |e| ToolError::Output(e);
    let total: u64 = by_kind.iter().sum();
    writeln!(out, "journal: {}", dir.display()).map_err(o)?;
    let versions: Vec<String> = w
        .versions
        .iter()
        .map(|(version, n)| format!("{version} ×{n}"))
        .collect();
    let versions = match versions.is_empty() {
        true => String::new(),
        false => format!("; format version {}", versions.join(", ")),
    };
    writeln!(
        out,
        "segments: {} ({} bytes{versions})",
        w.segments, w.bytes
    )
    .map_err(o)?;
    writeln!(
        out,
        "records: {total} (batch {}, swing {}, summary {}, event {})",
        by_kind[0], by_kind[1], by_kind[2], by_kind[3]
    )
    .map_err(o)?;
    match ids {
        Some((a, b)) => writeln!(out, "ids: {a}..={b}").map_err(o)?,
        None => writeln!(out, "ids: none").map_err(o)?,
    }
    writeln!(out, "oldest: {}  newest: {}", fmt_ts(ts.0), fmt_ts(ts.1)).map_err(o)?;
    if samples > 0 {
        writeln!(
            out,
            "samples: {samples}, batch bytes: {batch_bytes}, bytes/sample: {:.2}",
            batch_bytes as f64 / samples as f64
        )
        .map_err(o)?;
    }
    if stored > 0 {
        writeln!(
            out,
            "compression: bodies {raw} bytes transformed, {stored} stored (zstd ratio {:.2})",
            raw as f64 / stored as f64
        )
        .map_err(o)?;
    }
    for ((c, v), (records, bytes)) in cursors.iter().zip(&backlog) {
        writeln!(
            out,
            "cursor {c}: {v} (backlog {records} records, {bytes} bytes)"
        )
        .map_err(o)?;
    }
    writeln!(out, "corrupt records skipped: {}", w.corrupt).map_err(o)?;
    if let Some(p) = fs
        .read(&dir.join(super::store::PRESSURE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    {
        writeln!(
            out,
            "space (since the daemon's last start): full {}, refused appends {}, dropped raw batches {} ({} bytes)",
            p["full"], p["refused_appends"], p["dropped_records"], p["dropped_bytes"]
        )
        .map_err(o)?;
    }
    for b in &w.bad_segments {
        writeln!(out, "unusable segment: {b}").map_err(o)?;
    }
    Ok(())
}

/// What `export` printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCounts {
    pub records: u64,
    /// Records with a good checksum whose body did not decode (skipped; tell the operator).
    pub undecodable: u64,
}

/// Prints the stored records matching `filter`, oldest first (format in SPEC §2 / docs).
pub fn export(
    dir: &Path,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &mut impl Write,
) -> Result<ExportCounts, ToolError> {
    export_with_fs(&StdFs, dir, filter, format, out)
}

pub fn export_with_fs(
    fs: &dyn Fs,
    dir: &Path,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &mut impl Write,
) -> Result<ExportCounts, ToolError> {
    let mut count = 0u64;
    let mut undecodable = 0u64;
    if format == ExportFormat::Csv {
        writeln!(out, "{CSV_HEADER}").map_err(ToolError::Output)?;
    }
    walk(fs, dir, |r| {
        if !filter.matches(&r) {
            return Ok(());
        }
        let line = match format {
            ExportFormat::Jsonl => jsonl(&r),
            ExportFormat::Csv => csv_rows(&r),
        };
        match line {
            Some(text) => {
                out.write_all(text.as_bytes()).map_err(ToolError::Output)?;
                count += 1;
            }
            None => undecodable += 1,
        }
        Ok(())
    })?;
    Ok(ExportCounts {
        records: count,
        undecodable,
    })
}

/// [`export`] to a pipe (stdout): buffered and flushed at the end; a reader that closes the
/// pipe early ends it quietly ([`quiet_broken_pipe`]). The counts, unless the export stopped
/// early.
pub fn export_to_pipe(
    dir: &Path,
    filter: &ExportFilter,
    format: ExportFormat,
    out: impl Write,
) -> Result<Option<ExportCounts>, ToolError> {
    let mut out = io::BufWriter::new(out);
    let Some(counts) = quiet_broken_pipe(export(dir, filter, format, &mut out))? else {
        return Ok(None);
    };
    quiet_broken_pipe(out.flush().map_err(ToolError::Output))?;
    Ok(Some(counts))
}

fn js<T: serde::Serialize + ?Sized>(v: &T) -> String {
    // Serialising plain strings and numbers cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn kind_name(k: RecordKind) -> &'static str {
    match k {
        RecordKind::Batch => "batch",
        RecordKind::Swing => "swing",
        RecordKind::Summary => "summary",
        RecordKind::Event => "event",
    }
}

/// One JSON line: `None` if the record does not decode.
pub fn jsonl(r: &StoredRecord) -> Option<String> {
    let rec = r.decode().ok()?;
    let mut s = format!("{{\"id\":{},\"kind\":\"{}\"", r.id, kind_name(r.kind));
    match &rec.body {
        RecordBody::Batch(b) => {
            s += &format!(
                ",\"device\":{},\"session_id\":{},\"seq\":{}",
                js(&b.device),
                js(&b.session_id),
                js(&b.seq)
            );
            match &b.form {
                BatchForm::Compact(c) => compact_json(&mut s, c),
                BatchForm::Seed(sd) => seed_json(&mut s, sd),
            }
            s += "}";
        }
        RecordBody::Swing(d) | RecordBody::Summary(d) | RecordBody::Event(d) => {
            let inner = d.json.trim();
            match inner.strip_prefix('{').map(str::trim_start) {
                Some("}") => s += "}",
                Some(rest) => {
                    s += ",";
                    s += rest;
                }
                None => s += &format!(",\"message\":{inner}}}"),
            }
        }
    }
    s.push('\n');
    Some(s)
}

fn floats(v: &[f32]) -> String {
    format!("[{}]", v.iter().map(js).collect::<Vec<_>>().join(","))
}

fn compact_json(s: &mut String, c: &CompactBatch) {
    let ch = usize::from(c.channels.max(1));
    let rows: Vec<String> = c.samples.chunks(ch).map(floats).collect();
    *s += &format!(
        ",\"sensor_id\":{},\"t0\":{},\"rate_hz\":{},\"samples\":[{}]",
        c.sensor_id,
        c.t0,
        js(&c.rate_hz),
        rows.join(",")
    );
}

fn seed_json(s: &mut String, sd: &SeedBatch) {
    if let Some(t) = &sd.sensor_type {
        *s += &format!(",\"sensor_type\":{}", js(t));
    }
    let frames: Vec<String> = sd
        .frames
        .iter()
        .map(|f| {
            let mut o = format!("{{\"acc\":{},\"gyro\":{}", floats(&f.acc), floats(&f.gyro));
            if let Some(a) = f.angle {
                o += &format!(",\"angle\":{}", floats(&a));
            }
            if let Some(id) = f.sensor_id {
                o += &format!(",\"sensor_id\":{id}");
            }
            if let Some(t) = f.timestamp {
                o += &format!(",\"timestamp\":{t}");
            }
            o + "}"
        })
        .collect();
    *s += &format!(",\"data\":[{}]", frames.join(","));
    if let Some(t) = sd.timestamp {
        *s += &format!(",\"timestamp\":{t}");
    }
}

/// CSV columns: the seed backend's per-frame export (`device_code, session_id, sensor_id,
/// timestamp, acc_x … angle_z`) plus the journal's `id`, `seq`, `form`, `row` and, for the compact
/// form, the decoded sample time `t_ms` (`t0 + row·1000/rate_hz`). Only batch records have rows.
pub const CSV_HEADER: &str = "id,device_code,session_id,seq,form,row,sensor_id,timestamp,t_ms,\
acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,angle_x,angle_y,angle_z";

/// First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV
/// Injection"): `=`, `+`, `-`, `@`, and tab or carriage return, which some programs skip
/// before looking for one.
const FORMULA_PREFIXES: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A device-chosen text (device code, session id) as one CSV field. A text that a spreadsheet
/// would run as a formula gets OWASP's neutraliser, a leading `'`, so an export opened by the
/// venue's staff cannot run what a device on the court LAN wrote; a plain number (`-12`,
/// `+3.5`) is not a formula and stays as it is. Then the usual quoting.
fn csv_field(s: &str) -> String {
    let is_number = s.parse::<f64>().is_ok_and(f64::is_finite);
    let s = if s.starts_with(FORMULA_PREFIXES) && !is_number {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_rows(r: &StoredRecord) -> Option<String> {
    if r.kind != RecordKind::Batch {
        return Some(String::new());
    }
    let RecordBody::Batch(b) = r.decode().ok()?.body else {
        return None;
    };
    let head = format!(
        "{},{},{},{}",
        r.id,
        csv_field(&b.device),
        csv_field(&b.session_id),
        b.seq.map_or(String::new(), |q| q.to_string())
    );
    let num = |x: f32| js(&x);
    let mut out = String::new();
    match &b.form {
        BatchForm::Compact(c) => {
            let ch = usize::from(c.channels.max(1));
            for (i, row) in c.samples.chunks(ch).enumerate() {
                let t_ms = c.t0 as f64 + i as f64 * 1000.0 / c.rate_hz;
                let cell = |k: usize| row.get(k).map_or(String::new(), |&x| num(x));
                out += &format!(
                    "{head},compact,{i},{},,{},{}\n",
                    c.sensor_id,
                    js(&t_ms),
                    (0..9).map(cell).collect::<Vec<_>>().join(",")
                );
            }
        }
        BatchForm::Seed(sd) => {
            for (i, f) in sd.frames.iter().enumerate() {
                let angle = f.angle.map_or(",,".to_owned(), |a| {
                    a.iter().map(|&x| num(x)).collect::<Vec<_>>().join(",")
                });
                out += &format!(
                    "{head},seed,{i},{},{},,{},{},{angle}\n",
                    f.sensor_id.map_or(String::new(), |x| x.to_string()),
                    f.timestamp.map_or(String::new(), |x| x.to_string()),
                    f.acc.iter().map(|&x| num(x)).collect::<Vec<_>>().join(","),
                    f.gyro.iter().map(|&x| num(x)).collect::<Vec<_>>().join(","),
                );
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The text a spreadsheet sees in a field: quotes removed, doubled quotes undone.
    fn unquoted(field: &str) -> String {
        match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
            Some(inner) => inner.replace("\"\"", "\""),
            None => field.to_owned(),
        }
    }

    proptest! {
        /// Whatever a device writes, its field never starts a formula, keeps the text after an
        /// optional `'`, and stays one field (quoted when it holds a separator).
        #[test]
        fn a_device_text_never_becomes_a_formula(text in "[=+\\-@\t\r,\"a-z0-9 ()!|]?.{0,24}") {
            let field = csv_field(&text);
            let seen = unquoted(&field);
            let is_number = text.parse::<f64>().is_ok_and(f64::is_finite);
            prop_assert!(!seen.starts_with(FORMULA_PREFIXES) || is_number, "{field:?}");
            prop_assert!(seen == text || seen == format!("'{text}"), "{field:?}");
            if field.contains([',', '"', '\n', '\r']) {
                prop_assert!(field.starts_with('"') && field.ends_with('"'), "{field:?}");
            }
        }

        /// A number written as text (a numeric session id, a signed one) is exported as is.
        #[test]
        fn numbers_stay_numbers(x in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            let text = x.to_string();
            prop_assert_eq!(csv_field(&text), text);
        }
    }

    #[test]
    fn formula_prefixes_get_a_leading_quote() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(
            csv_field("-2+3+cmd|' /C calc'!A0"),
            "'-2+3+cmd|' /C calc'!A0"
        );
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(csv_field("-12"), "-12");
        assert_eq!(csv_field("s-0017"), "s-0017");
    }
}
