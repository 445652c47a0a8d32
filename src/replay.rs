//! `shuttlegate replay`: re-run the analysis of stored sessions from the journal.
//!
//! The journal is the source of truth (SPEC §3): every batch a device was acknowledged for is
//! in it, including those the live analysis skipped when it fell behind. Replay reads the
//! segment files read-only (no lock, so it runs beside the daemon), feeds every stored batch of
//! the selected sessions, oldest first, through a fresh [`CourtAnalysis`] — the daemon's own
//! routing, with the record's `ts_ms` as the received time that anchors V3.3 time-of-day
//! stamps exactly as live — and finishes each session right after its last stored batch.
//!
//! Every swing and summary comes out as the JSON the daemon journals (which names its
//! `analysis_version`), plus `"replay": true`, so a consumer can tell replays from live
//! results. With `--journal` they are also appended as new Swing/Summary records (this
//! takes the journal lock: the daemon must be stopped), and the uplink delivers them like any
//! record.
//!
//! Two passes over the files: the first ([`ReplayPlan`]) only reads record headers, to learn
//! which sessions exist and where each one's last batch is; the second ([`Replay`], pure)
//! decodes the selected batches. Memory stays bounded by the sessions open at once, never by
//! the journal's size.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::daemon::journal_dir;
use crate::journal::tools::{ToolError, for_each_record};
use crate::journal::{
    AppendError, Document, Journal, JournalError, RecordBody, RecordKind, StoredRecord,
};
use shuttlegate_core::analysis::{AnalysisOutput, CourtAnalysis};
use shuttlegate_core::analysis::{SessionSummary, Swing};

/// The build that replayed, for the log (the results name the analysis method's own
/// `analysis_version`).
const BUILD: &str = concat!("shuttlegate ", env!("CARGO_PKG_VERSION"));

/// Appends in flight while journaling results (the journal allows 4096; a few dozen fill a
/// group commit).
const APPENDS_IN_FLIGHT: usize = 64;
/// Results queued between the reading thread and the appender.
const RESULT_QUEUE: usize = 256;

/// Why a replay could not run. Printed to the operator.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading the segment files failed; check `state_dir` and permissions.
    #[error("reading the journal: {0}")]
    Read(#[from] ToolError),
    /// `--device` names a device the court's config does not list; add it or fix the name.
    #[error("device `{device}` is not in the court's config (no [[devices]] entry with that code)")]
    UnknownDevice { device: String },
    /// `--session` names a session no record in the journal belongs to (of `--device`, if
    /// given); check the name with `journal export`.
    #[error("{what} is not in the journal {}", dir.display())]
    UnknownSession { what: String, dir: PathBuf },
    /// The selection exists but none of its batches are stored (raw data dropped for space,
    /// or the device never sent any): there is nothing to analyse.
    #[error("{what} has no stored batches in the journal {}", dir.display())]
    NoBatches { what: String, dir: PathBuf },
    /// The selected sessions belong only to devices the config does not list: their profiles
    /// and sensor maps are unknown. Add the devices to the config.
    #[error("{what} belongs to device(s) not in the court's config: {}", devices.join(", "))]
    UnconfiguredDevices { what: String, devices: Vec<String> },
    /// `--journal` could not open the journal for writing (usually: the daemon holds the lock).
    #[error("--journal needs the journal to itself; stop the daemon first: {0}")]
    Open(#[source] JournalError),
    /// A result could not be made durable; nothing after it was journaled.
    #[error("journaling a replayed result: {0}")]
    Append(#[source] AppendError),
    /// Closing the journal after appending failed; some results may not be durable.
    #[error("closing the journal: {0}")]
    Close(#[source] JournalError),
    /// Printing the results failed (closed pipe, full disk).
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
}

/// What to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Only this session (of any device, unless `device` is set too).
    pub session: Option<String>,
    /// Only this device.
    pub device: Option<String>,
    /// Also append the results to the journal as new records.
    pub journal: bool,
}

impl ReplayOptions {
    fn selects(&self, device: &str, session: &str) -> bool {
        self.device.as_deref().is_none_or(|d| d == device)
            && self.session.as_deref().is_none_or(|s| s == session)
    }

    fn describe(&self) -> String {
        match (&self.device, &self.session) {
            (Some(d), Some(s)) => format!("session `{s}` of device `{d}`"),
            (Some(d), None) => format!("device `{d}`"),
            (None, Some(s)) => format!("session `{s}`"),
            (None, None) => "the journal".to_owned(),
        }
    }
}

/// Where one session's batches are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    batches: u64,
    last_id: u64,
}

/// The first pass: which sessions exist, and the id of each selected session's last batch.
/// Reads only record headers (no decompression).
#[derive(Debug)]
pub struct ReplayPlan {
    options: ReplayOptions,
    /// Selected (device, session) → its stored batches.
    sessions: BTreeMap<(String, String), Extent>,
    /// Whether any record (of any kind) matched the selection.
    seen: bool,
}

impl ReplayPlan {
    pub fn new(options: ReplayOptions) -> ReplayPlan {
        ReplayPlan {
            options,
            sessions: BTreeMap::new(),
            seen: false,
        }
    }

    /// One stored record, oldest first.
    pub fn handle_record(&mut self, record: &StoredRecord) {
        let (Some(device), Some(session)) = (&record.device, &record.session_id) else {
            return;
        };
        if !self.options.selects(device, session) {
            return;
        }
        self.seen = true;
        if record.kind != RecordKind::Batch {
            return;
        }
        let extent = self
            .sessions
            .entry((device.clone(), session.clone()))
            .or_insert(Extent {
                batches: 0,
                last_id: record.id,
            });
        extent.batches += 1;
        extent.last_id = extent.last_id.max(record.id);
    }

    /// Checks the selection against what was found and the court's config; drops (with a
    /// warning) sessions of unconfigured devices when the whole journal is replayed.
    pub fn check(mut self, settings: &Settings, dir: &Path) -> Result<ReplayPlan, ReplayError> {
        let configured: BTreeSet<&str> = settings.devices.iter().map(|d| d.code.as_str()).collect();
        if let Some(device) = &self.options.device
            && !configured.contains(device.as_str())
        {
            return Err(ReplayError::UnknownDevice {
                device: device.clone(),
            });
        }
        if !self.seen && self.options.session.is_some() {
            return Err(ReplayError::UnknownSession {
                what: self.options.describe(),
                dir: dir.to_path_buf(),
            });
        }
        if self.sessions.is_empty() {
            return Err(ReplayError::NoBatches {
                what: self.options.describe(),
                dir: dir.to_path_buf(),
            });
        }
        let unconfigured: BTreeSet<String> = self
            .sessions
            .keys()
            .filter(|(d, _)| !configured.contains(d.as_str()))
            .map(|(d, _)| d.clone())
            .collect();
        self.sessions
            .retain(|(d, _), _| configured.contains(d.as_str()));
        if self.sessions.is_empty() {
            return Err(ReplayError::UnconfiguredDevices {
                what: self.options.describe(),
                devices: unconfigured.into_iter().collect(),
            });
        }
        for device in unconfigured {
            log::warn!(
                "replay: device `{device}` is not in the court's config; its sessions are skipped"
            );
        }
        Ok(self)
    }

    /// Selected sessions, as (device, session), in order.
    pub fn sessions(&self) -> impl Iterator<Item = &(String, String)> {
        self.sessions.keys()
    }

    fn extent(&self, device: &str, session: &str) -> Option<Extent> {
        self.sessions
            .get(&(device.to_owned(), session.to_owned()))
            .copied()
    }
}

/// A replayed result: a swing or a session summary.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayResult {
    Swing(Box<Swing>),
    Summary(Box<SessionSummary>),
}

/// A result as printed and journaled: its own fields, then the replay's marks.
#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(flatten)]
    result: &'a T,
    replay: bool,
}

impl ReplayResult {
    /// The daemon's JSON for this result plus `"replay": true`.
    pub fn json(&self) -> String {
        fn tagged(result: &impl Serialize) -> String {
            let t = Tagged {
                result,
                replay: true,
            };
            // The analysis types are plain data (numbers, strings, maps with string keys).
            serde_json::to_string(&t).unwrap_or_default()
        }
        match self {
            ReplayResult::Swing(s) => tagged(s.as_ref()),
            ReplayResult::Summary(s) => tagged(s.as_ref()),
        }
    }

    /// The journal record for this result.
    pub fn record(&self) -> RecordBody {
        let (device, session) = match self {
            ReplayResult::Swing(s) => (&s.device, &s.session_id),
            ReplayResult::Summary(s) => (&s.device, &s.session_id),
        };
        let doc = Document {
            device: Some(device.clone()),
            session_id: Some(session.clone()),
            json: self.json(),
        };
        match self {
            ReplayResult::Swing(_) => RecordBody::Swing(doc),
            ReplayResult::Summary(_) => RecordBody::Summary(doc),
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub sessions: u64,
    pub batches: u64,
    /// Samples in those batches (compact rows, seed frames).
    pub samples: u64,
    pub swings: u64,
    pub summaries: u64,
    /// Batches whose body did not decode (skipped, logged).
    pub undecodable: u64,
    /// Corrupt records the reader skipped (second pass).
    pub corrupt: u64,
}

impl ReplayReport {
    /// The one-line report `shuttlegate replay` logs to stderr (and a warning of what it
    /// skipped).
    pub fn log(&self, options: &ReplayOptions) {
        log::info!(
            "replayed {} session(s), {} batches ({} samples): {} swings, {} summaries{} ({})",
            self.sessions,
            self.batches,
            self.samples,
            self.swings,
            self.summaries,
            if options.journal { ", journaled" } else { "" },
            BUILD
        );
        if self.undecodable + self.corrupt > 0 {
            log::warn!(
                "{} undecodable batches and {} corrupt records skipped",
                self.undecodable,
                self.corrupt
            );
        }
    }
}

/// The second pass, sans IO: stored records in, results out.
#[derive(Debug)]
pub struct Replay {
    plan: ReplayPlan,
    court: CourtAnalysis,
    report: ReplayReport,
}

impl Replay {
    pub fn new(settings: &Settings, plan: ReplayPlan) -> Replay {
        Replay {
            court: settings.court_analysis(),
            plan,
            report: ReplayReport::default(),
        }
    }

    /// One stored record, oldest first: a selected batch is analysed (received at its `ts_ms`),
    /// and its session finished if it was the session's last.
    pub fn handle_record(&mut self, record: &StoredRecord) -> Vec<ReplayResult> {
        let (Some(device), Some(session)) = (&record.device, &record.session_id) else {
            return Vec::new();
        };
        if record.kind != RecordKind::Batch {
            return Vec::new();
        }
        // Batches stored after the plan was made (a daemon still writing) are left out: the
        // session was finished at its last batch as of the first pass.
        let Some(extent) = self
            .plan
            .extent(device, session)
            .filter(|e| record.id <= e.last_id)
        else {
            return Vec::new();
        };
        let mut outputs = match record.decode().map(|r| r.body) {
            Ok(RecordBody::Batch(batch)) => {
                self.report.batches += 1;
                self.report.samples += u64::from(record.samples);
                self.court.handle_batch(&batch, record.ts_ms)
            }
            other => {
                let why = other
                    .err()
                    .map_or("not a batch".to_owned(), |e| e.to_string());
                log::warn!("replay: journal record {} skipped: {why}", record.id);
                self.report.undecodable += 1;
                Vec::new()
            }
        };
        if record.id == extent.last_id {
            self.report.sessions += 1;
            outputs.extend(self.court.finish(device, session));
        }
        outputs.into_iter().filter_map(|o| self.count(o)).collect()
    }

    fn count(&mut self, output: AnalysisOutput) -> Option<ReplayResult> {
        match output {
            AnalysisOutput::Swing(s) => {
                self.report.swings += 1;
                Some(ReplayResult::Swing(s))
            }
            AnalysisOutput::Summary(s) => {
                self.report.summaries += 1;
                Some(ReplayResult::Summary(s))
            }
            // Rallies are logged, not journaled, by the daemon too; their totals are in the
            // summaries.
            AnalysisOutput::Rally(_) => None,
        }
    }

    pub fn report(&self) -> &ReplayReport {
        &self.report
    }
}

/// Both passes over the files (blocking): every result goes to `emit`, in order.
pub fn analyse(
    settings: &Settings,
    options: &ReplayOptions,
    mut emit: impl FnMut(ReplayResult) -> Result<(), ReplayError>,
) -> Result<ReplayReport, ReplayError> {
    let dir = journal_dir(settings);
    let mut plan = ReplayPlan::new(options.clone());
    for_each_record(&dir, |r| plan.handle_record(&r))?;
    let mut replay = Replay::new(settings, plan.check(settings, &dir)?);
    let mut failed = None;
    let corrupt = for_each_record(&dir, |r| {
        if failed.is_some() {
            return;
        }
        for result in replay.handle_record(&r) {
            if let Err(e) = emit(result) {
                failed = Some(e);
                return;
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let mut report = replay.report().clone();
    report.corrupt = corrupt;
    Ok(report)
}

/// `shuttlegate replay`: prints every result as a JSON line to `out` and, with
/// `options.journal`, appends it to the journal (taking the lock first, so a running daemon
/// makes this fail before anything is read).
pub async fn run(
    settings: &Settings,
    options: &ReplayOptions,
    out: impl Write + Send + 'static,
) -> Result<ReplayReport, ReplayError> {
    let journal = match options.journal {
        true => Some(open_journal(settings).await?),
        false => None,
    };
    let (tx, rx) = mpsc::channel::<RecordBody>(RESULT_QUEUE);
    let reader = {
        let (settings, options) = (settings.clone(), options.clone());
        let tx = journal.is_some().then_some(tx);
        tokio::task::spawn_blocking(move || read_and_print(&settings, &options, out, tx))
    };
    let appended = match &journal {
        Some(j) => append_all(j, rx).await,
        None => Ok(()),
    };
    let read = reader
        .await
        .map_err(|e| ReplayError::Output(std::io::Error::other(e)))?;
    if let Some(j) = journal {
        j.close().await.map_err(ReplayError::Close)?;
    }
    appended?;
    read
}

/// The blocking side: both passes, each result printed and (when journaling) queued.
fn read_and_print(
    settings: &Settings,
    options: &ReplayOptions,
    mut out: impl Write,
    to_journal: Option<mpsc::Sender<RecordBody>>,
) -> Result<ReplayReport, ReplayError> {
    let report = analyse(settings, options, |result| {
        writeln!(out, "{}", result.json()).map_err(ReplayError::Output)?;
        if let Some(tx) = &to_journal {
            // A closed queue means the appender failed; it reports why.
            tx.blocking_send(result.record())
                .map_err(|_| ReplayError::Append(AppendError::Closed))?;
        }
        Ok(())
    })?;
    out.flush().map_err(ReplayError::Output)?;
    Ok(report)
}

/// Appends queued results with up to [`APPENDS_IN_FLIGHT`] in flight, in order; a summary
/// waits until its session's swings are durable, so it is never journaled before them.
async fn append_all(
    journal: &Journal,
    mut rx: mpsc::Receiver<RecordBody>,
) -> Result<(), ReplayError> {
    let mut pending = FuturesOrdered::new();
    while let Some(body) = rx.recv().await {
        let room = match body.kind() {
            RecordKind::Summary => 0,
            _ => APPENDS_IN_FLIGHT - 1,
        };
        while pending.len() > room {
            if let Some(done) = pending.next().await {
                done_or_fail(done)?;
            }
        }
        let j = journal.clone();
        pending.push_back(async move { j.append(body).await });
    }
    while let Some(done) = pending.next().await {
        done_or_fail(done)?;
    }
    Ok(())
}

fn done_or_fail<T>(done: Result<T, AppendError>) -> Result<(), ReplayError> {
    done.map(|_| ()).map_err(ReplayError::Append)
}

/// Opens the journal as the daemon does (same cap, policy, segments and consumers, so
/// releasing segments follows the same rules).
async fn open_journal(settings: &Settings) -> Result<Journal, ReplayError> {
    let options = crate::daemon::journal_options(settings);
    let opened = tokio::task::spawn_blocking(move || Journal::open(options))
        .await
        .map_err(|e| ReplayError::Open(JournalError::Failed(e.to_string())))?;
    let (journal, _report) = opened.map_err(ReplayError::Open)?;
    Ok(journal)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::journal::JournalOptions;
    use shuttlegate_core::batch::{BodyPosition, SensorBatch};
    use shuttlegate_sim::{CourtConfig, CourtSim, SimDevice, SimPlayer};

    /// A court with racket-only devices `a` and `b` (`ghost` sends too, but is not configured).
    pub(crate) fn settings(state_dir: &Path) -> Settings {
        let mut toml = format!(
            "[gateway]\nvenue = \"v\"\ncourt = \"c\"\nstate_dir = \"{}\"\ntimezone = \"Asia/Shanghai\"\n",
            state_dir.display()
        );
        for code in ["a", "b"] {
            toml += &format!(
                "[[devices]]\ncode = \"{code}\"\ntoken = \"token-{code}-secret\"\nsensors = {{ 4 = \"racket\" }}\n"
            );
        }
        crate::config::load_str(Path::new("test.toml"), &toml).expect("valid config")
    }

    /// 30 s of a two-player court as session `session`, devices `codes`.
    pub(crate) fn session_batches(seed: u64, session: &str, codes: [&str; 2]) -> Vec<SensorBatch> {
        let players = codes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let device = SimDevice::compact(*c, 200.0, vec![BodyPosition::Racket], 6);
                SimPlayer::new(seed + i as u64, 0.6, device)
            })
            .collect();
        let config = CourtConfig {
            session_id: session.into(),
            ..CourtConfig::default()
        };
        let start = config.start_ms;
        let mut sim = CourtSim::new(seed, players, config);
        let mut out: Vec<SensorBatch> = (1..=30)
            .flat_map(|s| sim.next_batches(start + f64::from(s) * 1000.0))
            .map(|(_, b)| b)
            .collect();
        out.extend(sim.flush().into_iter().map(|(_, b)| b));
        out
    }

    /// A journal holding sessions `s1` (a, b) and `s2` (a, ghost), their batches interleaved.
    async fn journal_with_sessions(dir: &Path) {
        let (journal, _) =
            Journal::open(JournalOptions::new(dir.join("journal"))).expect("open journal");
        let s1 = session_batches(3, "s1", ["a", "b"]);
        let s2 = session_batches(4, "s2", ["a", "ghost"]);
        let mut s2 = s2.into_iter();
        for batch in s1 {
            journal
                .append(RecordBody::Batch(batch))
                .await
                .expect("append");
            if let Some(other) = s2.next() {
                journal
                    .append(RecordBody::Batch(other))
                    .await
                    .expect("append");
            }
        }
        for other in s2 {
            journal
                .append(RecordBody::Batch(other))
                .await
                .expect("append");
        }
        // A session known only from an event (its raw data gone).
        let event = Document {
            device: Some("b".into()),
            session_id: Some("s3".into()),
            json: r#"{"type":"session_started"}"#.into(),
        };
        journal
            .append(RecordBody::Event(event))
            .await
            .expect("append");
        journal.close().await.expect("close");
    }

    fn collect(
        settings: &Settings,
        options: &ReplayOptions,
    ) -> Result<Vec<ReplayResult>, ReplayError> {
        let mut out = Vec::new();
        analyse(settings, options, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    fn key(r: &ReplayResult) -> (String, String, bool) {
        match r {
            ReplayResult::Swing(s) => (s.device.clone(), s.session_id.clone(), false),
            ReplayResult::Summary(s) => (s.device.clone(), s.session_id.clone(), true),
        }
    }

    #[tokio::test]
    async fn every_configured_session_is_finished_after_its_last_batch_and_unknown_devices_skipped()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        journal_with_sessions(dir.path()).await;
        let settings = settings(dir.path());
        let results = collect(&settings, &ReplayOptions::default()).expect("replay");
        let keys: Vec<_> = results.iter().map(key).collect();
        let summaries: Vec<(String, String)> = keys
            .iter()
            .filter(|k| k.2)
            .map(|k| (k.0.clone(), k.1.clone()))
            .collect();
        assert_eq!(summaries.len(), 3, "{summaries:?}");
        for s in [("a", "s1"), ("b", "s1"), ("a", "s2")] {
            assert!(summaries.contains(&(s.0.into(), s.1.into())), "{s:?}");
        }
        assert!(keys.iter().all(|k| k.0 != "ghost"));
        // Nothing of a session comes after its summary.
        for (i, k) in keys.iter().enumerate().filter(|(_, k)| k.2) {
            assert!(keys[i + 1..].iter().all(|l| (&l.0, &l.1) != (&k.0, &k.1)));
        }
        // Each summary counts exactly the swings replayed for its session.
        for r in &results {
            if let ReplayResult::Summary(s) = r {
                let n = keys
                    .iter()
                    .filter(|k| !k.2 && (&k.0, &k.1) == (&s.device, &s.session_id))
                    .count() as u64;
                assert_eq!(s.analysis_result.swings, n);
                assert!(n > 0, "the simulated session has swings");
            }
        }
    }

    #[tokio::test]
    async fn a_selection_with_nothing_to_replay_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        journal_with_sessions(dir.path()).await;
        let settings = settings(dir.path());
        let run = |device: Option<&str>, session: Option<&str>| {
            let options = ReplayOptions {
                device: device.map(str::to_owned),
                session: session.map(str::to_owned),
                journal: false,
            };
            collect(&settings, &options).err().map(|e| e.to_string())
        };
        let e = run(None, Some("nope")).expect("error");
        assert!(e.contains("session `nope` is not in the journal"), "{e}");
        let e = run(Some("ghost"), None).expect("error");
        assert!(
            e.contains("device `ghost` is not in the court's config"),
            "{e}"
        );
        let e = run(Some("b"), Some("s2")).expect("error");
        assert!(
            e.contains("session `s2` of device `b` is not in the journal"),
            "{e}"
        );
        let e = run(None, Some("s3")).expect("error");
        assert!(e.contains("session `s3` has no stored batches"), "{e}");
        assert_eq!(run(Some("a"), Some("s2")), None);
    }

    #[test]
    fn a_result_is_the_daemons_json_plus_the_replay_marks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut court = settings(dir.path()).court_analysis();
        let mut outputs: Vec<AnalysisOutput> = session_batches(5, "s", ["a", "b"])
            .iter()
            .flat_map(|b| court.handle_batch(b, 0))
            .collect();
        outputs.extend(court.finish("a", "s"));
        let swing = outputs
            .into_iter()
            .find_map(|o| match o {
                AnalysisOutput::Swing(s) => Some(s),
                _ => None,
            })
            .expect("a swing");
        let result = ReplayResult::Swing(swing.clone());
        let value: serde_json::Value = serde_json::from_str(&result.json()).expect("JSON");
        assert_eq!(value["type"], "swing");
        assert_eq!(value["replay"], true);
        assert_eq!(
            value["analysis_version"],
            shuttlegate_core::analysis::ANALYSIS_VERSION
        );
        let back: Swing = serde_json::from_value(value).expect("still a swing");
        assert_eq!(back, *swing);
        let RecordBody::Swing(doc) = result.record() else {
            panic!("a swing record")
        };
        assert_eq!(doc.device.as_deref(), Some(swing.device.as_str()));
        assert_eq!(doc.json, result.json());
    }

    #[tokio::test]
    async fn journaling_appends_marked_records_and_a_held_lock_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        journal_with_sessions(dir.path()).await;
        let settings = settings(dir.path());
        let options = ReplayOptions {
            journal: true,
            ..ReplayOptions::default()
        };
        let report = run(&settings, &options, std::io::sink())
            .await
            .expect("replay");
        let mut marked = (0, 0);
        for_each_record(&journal_dir(&settings), |r| {
            let json = match r.decode().map(|r| r.body) {
                Ok(RecordBody::Swing(d)) => (d.json, &mut marked.0),
                Ok(RecordBody::Summary(d)) => (d.json, &mut marked.1),
                _ => return,
            };
            assert!(json.0.contains("\"replay\":true"), "{}", json.0);
            *json.1 += 1;
        })
        .expect("read");
        assert_eq!(marked, (report.swings, report.summaries));
        assert_eq!(report.summaries, 3);

        let (held, _) = Journal::open(JournalOptions::new(journal_dir(&settings))).expect("open");
        let e = run(&settings, &options, std::io::sink())
            .await
            .expect_err("locked");
        assert!(
            matches!(e, ReplayError::Open(JournalError::Locked { .. })),
            "{e}"
        );
        assert!(e.to_string().contains("stop the daemon"), "{e}");
        held.close().await.expect("close");
    }
}
