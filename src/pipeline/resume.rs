//! Resuming the live analysis after a restart.
//!
//! The analysers keep each session's state (the samples around a swing in progress, the session's
//! counts) in memory. Without this module a restart would lose it: a session that spans the
//! restart would be summarised from the data after it, a swing whose batch was acknowledged
//! just before a crash but whose result was not yet journaled would never exist, and a session
//! whose upload completed just before the crash would wait for its summary for ever.
//!
//! So before the analysis task takes live input, it replays from the journal every stored batch
//! of the sessions the restored court still has open or awaiting analysis, up to the last record
//! that was durable when the daemon started (later batches reach it live), reading from where
//! the earliest of them began ([`sessions_start`], below), not from the journal's start. The
//! analysers end up where they were. Swings found that the journal lacks are journaled and
//! published; sessions that were awaiting analysis are summarised, or only marked completed when
//! their summary was journaled just before the crash. A swing is "already stored" when a swing
//! record of the same device and session has the same impact time: the analysis is
//! deterministic in its input, so replaying the same batches finds the same swings.
//!
//! [`Resume`] is the pure part (records in, analysers and outputs out); [`resume`] reads the
//! journal for it.

use std::collections::{BTreeMap, HashSet};

use crate::config::Settings;
use crate::journal::{Journal, JournalError, Record, RecordBody, RecordKind, StoredRecord};
use shuttlegate_core::analysis::{AnalysisOutput, CourtAnalysis};
use shuttlegate_core::court::{Court, CourtEvent, SessionSource, SessionState};

use crate::court::restore::{court_event, for_each_record};

/// Records read per page while resuming.
const PAGE: usize = 1024;

/// What the analysis resumes: chosen from the restored court before devices connect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResumePoint {
    /// Records up to this id are replayed; later ones arrive live.
    pub until_id: u64,
    /// (device, session) → whether the session awaits its summary (its upload completed).
    pub sessions: BTreeMap<(String, String), bool>,
}

impl ResumePoint {
    /// The sessions of `court` that are open or awaiting analysis, up to `until_id`.
    pub fn of(court: &Court, until_id: u64) -> ResumePoint {
        let sessions = court
            .devices()
            .flat_map(|(device, state)| {
                state.sessions().filter_map(move |s| {
                    let awaiting = s.state == SessionState::Analyzing;
                    (s.state.is_open() || awaiting)
                        .then(|| ((device.clone(), s.id.clone()), awaiting))
                })
            })
            .collect();
        ResumePoint { until_id, sessions }
    }
}

/// Replays stored records of the resumed sessions through a fresh [`CourtAnalysis`].
#[derive(Debug)]
pub struct Resume {
    analysis: CourtAnalysis,
    point: ResumePoint,
    /// (device, session, impact time in ms) of every swing already journaled.
    stored: HashSet<(String, String, i64)>,
    /// Sessions whose summary is already journaled.
    summarised: HashSet<(String, String)>,
    found: Vec<AnalysisOutput>,
    batches: u64,
    /// Where the replay started reading (records with larger ids).
    read_after: u64,
}

/// What resuming produced.
#[derive(Debug)]
pub struct Resumed {
    /// The analysers, warm: live input continues from here.
    pub analysis: CourtAnalysis,
    /// Results the journal lacks, to journal and publish: swings replay found that were never
    /// journaled, then the summaries of sessions that were awaiting one.
    pub missing: Vec<AnalysisOutput>,
    /// Sessions awaiting analysis whose summary was journaled before the restart (the crash
    /// came before the court recorded them completed): only that is left to do.
    pub summarised: Vec<(String, String)>,
}

impl Resume {
    pub fn new(settings: &Settings, point: ResumePoint) -> Resume {
        Resume {
            analysis: settings.court_analysis(),
            point,
            stored: HashSet::new(),
            summarised: HashSet::new(),
            found: Vec::new(),
            batches: 0,
            read_after: 0,
        }
    }

    /// Feeds one stored record (any kind; only the resumed sessions' batches and swings count).
    /// A record that does not decode is logged and skipped, as live analysis would have.
    pub fn handle_record(&mut self, stored: &StoredRecord) {
        let (Some(device), Some(session)) = (&stored.device, &stored.session_id) else {
            return;
        };
        if stored.id > self.point.until_id
            || !self
                .point
                .sessions
                .contains_key(&(device.clone(), session.clone()))
        {
            return;
        }
        let body = match stored.decode() {
            Ok(Record { body, .. }) => body,
            Err(e) => {
                log::warn!("resuming the analysis: record {} skipped: {e}", stored.id);
                return;
            }
        };
        match body {
            RecordBody::Batch(batch) => {
                self.batches += 1;
                let outputs = self.analysis.handle_batch(&batch, stored.ts_ms);
                self.found.extend(outputs);
            }
            RecordBody::Swing(doc) => {
                if let Some(t) = impact_ms(&doc.json) {
                    self.stored.insert((device.clone(), session.clone(), t));
                }
            }
            RecordBody::Summary(_) => {
                self.summarised.insert((device.clone(), session.clone()));
            }
            _ => {}
        }
    }

    /// The warmed analysis and what is left to do.
    pub fn finish(mut self) -> Resumed {
        // Summaries of sessions evicted during replay were journaled when that happened live;
        // rally events are never journaled.
        let mut missing: Vec<AnalysisOutput> = std::mem::take(&mut self.found)
            .into_iter()
            .filter(|o| self.is_new_swing(o))
            .collect();
        let awaiting: Vec<(String, String)> = self
            .point
            .sessions
            .iter()
            .filter(|(_, awaiting)| **awaiting)
            .map(|(key, _)| key.clone())
            .collect();
        let mut summarised = Vec::new();
        for (device, session) in awaiting {
            if self.summarised.contains(&(device.clone(), session.clone())) {
                summarised.push((device, session));
                continue;
            }
            let outputs = self.analysis.finish(&device, &session);
            missing.extend(
                outputs
                    .into_iter()
                    .filter(|o| matches!(o, AnalysisOutput::Summary(_)) || self.is_new_swing(o)),
            );
        }
        Resumed {
            analysis: self.analysis,
            missing,
            summarised,
        }
    }

    fn is_new_swing(&self, output: &AnalysisOutput) -> bool {
        let AnalysisOutput::Swing(s) = output else {
            return false;
        };
        let key = (
            s.device.clone(),
            s.session_id.clone(),
            s.t_impact.round() as i64,
        );
        !self.stored.contains(&key)
    }
}

/// The impact time (ms) of a journaled swing document.
fn impact_ms(json: &str) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(value.get("t_impact")?.as_f64()?.round() as i64)
}

/// Reads the journal up to `point.until_id` and resumes the analysis of `point.sessions`.
/// On a read error, logs it and resumes with what was read: the daemon must come up.
pub async fn resume(settings: &Settings, journal: &Journal, point: ResumePoint) -> Resumed {
    let sessions = point.sessions.len();
    let mut state = Resume::new(settings, point.clone());
    if sessions == 0 {
        return state.finish();
    }
    let started = std::time::Instant::now();
    let journal = journal.clone();
    let read = tokio::task::spawn_blocking(move || {
        let result = replay_into(&mut state, &journal, point.until_id);
        (state, result)
    })
    .await;
    let Ok((state, result)) = read else {
        log::error!("resuming the analysis: the reading thread failed; starting empty");
        return Resume::new(settings, ResumePoint::default()).finish();
    };
    if let Err(e) = result {
        log::error!("resuming the analysis: {e}; resumed from what was read");
    }
    let (batches, read_after) = (state.batches, state.read_after);
    let resumed = state.finish();
    log::info!(
        "analysis resumed for {sessions} open session(s) from {batches} stored batches (records after id {read_after}) in {:?}; {} result(s) the journal lacked",
        started.elapsed(),
        resumed.missing.len()
    );
    resumed
}

/// Replays the records of the resumed sessions, from the segment where the earliest of them
/// began (not from the journal's start: on a large journal that would delay the live analysis
/// by as long as reading it takes).
fn replay_into(state: &mut Resume, journal: &Journal, until_id: u64) -> Result<(), JournalError> {
    let kinds = [RecordKind::Batch, RecordKind::Swing, RecordKind::Summary];
    let mut after = sessions_start(journal, state.point.sessions.keys())?;
    state.read_after = after;
    while after < until_id {
        let page = journal.read_range(after, until_id, PAGE, Some(&kinds))?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for stored in &page {
            state.handle_record(stored);
        }
    }
    Ok(())
}

/// The id after which every record of `sessions` (device, session) lies, or 0 (the whole
/// journal) when that is not found. A session opens with its first state event: `calibrating`
/// when started by a command, `collecting` when its data opened it. Its data follows that event,
/// except for what was journaled beside it (a session opened by its data journals the data and
/// the event concurrently; under load the event can trail by a while). So segments are read
/// newest first until each session's opening was seen and then a segment holding none of its
/// batches: the session's data lies after that segment.
pub fn sessions_start<'a>(
    journal: &Journal,
    sessions: impl IntoIterator<Item = &'a (String, String)>,
) -> Result<u64, JournalError> {
    let mut unopened: HashSet<&(String, String)> = sessions.into_iter().collect();
    // Opened in a newer segment; their earliest data may still lie further back.
    let mut opened: HashSet<&(String, String)> = HashSet::new();
    for (first, last) in journal.segment_ranges().into_iter().rev() {
        // The opened sessions with batches in this segment, and the sessions it opens.
        let mut held: HashSet<&(String, String)> = HashSet::new();
        let mut openings = Vec::new();
        let kinds = [RecordKind::Event, RecordKind::Batch];
        for_each_record(journal, (first, last), &kinds, |r| match r.kind {
            RecordKind::Batch => {
                let of_record = |key: &&&(String, String)| {
                    r.device.as_ref() == Some(&key.0) && r.session_id.as_ref() == Some(&key.1)
                };
                held.extend(opened.iter().find(of_record).copied());
            }
            _ => openings.extend(court_event(r).as_ref().and_then(opening)),
        })?;
        opened.retain(|key| held.contains(key));
        if unopened.is_empty() && opened.is_empty() {
            return Ok(last);
        }
        for key in openings {
            if let Some(session) = unopened.take(&key) {
                opened.insert(session);
            }
        }
    }
    Ok(0)
}

/// The (device, session) an event opens, if it is a session's first state.
fn opening(event: &CourtEvent) -> Option<(String, String)> {
    match event {
        CourtEvent::SessionState {
            device,
            session_id,
            state,
            source,
            ..
        } => {
            let first_state = match source {
                SessionSource::Command => SessionState::Calibrating,
                SessionSource::Device => SessionState::Collecting,
            };
            (*state == first_state).then(|| (device.clone(), session_id.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Document, JournalOptions};
    use crate::replay::tests::{session_batches, settings};
    use shuttlegate_core::analysis::Swing;

    fn swings(outputs: &[AnalysisOutput]) -> Vec<&Swing> {
        outputs
            .iter()
            .filter_map(|o| match o {
                AnalysisOutput::Swing(s) => Some(&**s),
                _ => None,
            })
            .collect()
    }

    fn impacts(swings: &[&Swing]) -> Vec<(String, i64)> {
        let mut v: Vec<_> = swings
            .iter()
            .map(|s| (s.device.clone(), s.t_impact.round() as i64))
            .collect();
        v.sort();
        v
    }

    fn summary_swings(outputs: &[AnalysisOutput], device: &str) -> Option<u64> {
        outputs.iter().find_map(|o| match o {
            AnalysisOutput::Summary(s) if s.device == device => Some(s.analysis_result.swings),
            _ => None,
        })
    }

    /// Small segments, so resuming can skip the ones before the session.
    fn journal_options(settings: &Settings) -> JournalOptions {
        let mut options = JournalOptions::new(crate::daemon::journal_dir(settings));
        options.segment_bytes = 32 << 10;
        options
    }

    /// Session `s1` of devices a and b: every batch journaled, but only the swings live
    /// analysis had found by the half-way batch (the daemon died there). Before it, an earlier
    /// session `s0` fills several segments that resuming `s1` need not read.
    async fn interrupted_session() -> Interrupted {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = settings(dir.path());
        let (journal, _) = Journal::open(journal_options(&settings)).expect("open");
        for batch in session_batches(3, "s0", ["a", "b"]) {
            journal
                .append(RecordBody::Batch(batch))
                .await
                .expect("append");
        }
        for device in ["a", "b"] {
            let opened = shuttlegate_core::court::CourtEvent::SessionState {
                device: device.to_owned(),
                session_id: "s1".to_owned(),
                state: SessionState::Collecting,
                source: shuttlegate_core::court::SessionSource::Device,
                ts: 0,
            };
            journal
                .append(crate::court::event_record(&opened))
                .await
                .expect("append");
        }
        let batches = session_batches(5, "s1", ["a", "b"]);
        let mut live = settings.court_analysis();
        let mut all = Vec::new();
        let mut journaled = 0;
        for (i, batch) in batches.iter().enumerate() {
            journal
                .append(RecordBody::Batch(batch.clone()))
                .await
                .expect("append");
            // Compact batches carry absolute time: the receipt time anchors nothing.
            let outputs = live.handle_batch(batch, 0);
            for swing in swings(&outputs) {
                all.push(swing.clone());
                if i < batches.len() / 2 {
                    let json = serde_json::to_string(swing).expect("swing json");
                    let doc = Document {
                        device: Some(swing.device.clone()),
                        session_id: Some(swing.session_id.clone()),
                        json,
                    };
                    journal
                        .append(RecordBody::Swing(doc))
                        .await
                        .expect("append");
                    journaled += 1;
                }
            }
        }
        journal.close().await.expect("close");
        let mut finished = Vec::new();
        for device in ["a", "b"] {
            finished.extend(live.finish(device, "s1"));
        }
        all.extend(swings(&finished).into_iter().cloned());
        let counts = ["a", "b"].map(|d| summary_swings(&finished, d).expect("summary"));
        let all: Vec<&Swing> = all.iter().collect();
        Interrupted {
            _dir: dir,
            settings,
            all: impacts(&all),
            journaled,
            counts,
        }
    }

    struct Interrupted {
        _dir: tempfile::TempDir,
        settings: Settings,
        /// (device, impact ms) of every swing an uninterrupted run finds, finish included.
        all: Vec<(String, i64)>,
        /// How many of them were journaled before the crash.
        journaled: usize,
        /// Each device's summary swing count in an uninterrupted run.
        counts: [u64; 2],
    }

    async fn resumed(settings: &Settings, awaiting: bool) -> Resumed {
        let (journal, _) = Journal::open(journal_options(settings)).expect("reopen");
        assert!(
            sessions_start(&journal, [&("a".into(), "s1".into())]).expect("read") > 0,
            "resuming s1 skips the segments of s0"
        );
        let point = ResumePoint {
            until_id: journal.durable_id(),
            sessions: [("a", awaiting), ("b", awaiting)]
                .into_iter()
                .map(|(d, w)| ((d.to_owned(), "s1".to_owned()), w))
                .collect(),
        };
        let out = resume(settings, &journal, point).await;
        journal.close().await.expect("close");
        out
    }

    #[tokio::test]
    async fn an_open_session_resumes_with_the_swings_the_journal_lacked_and_a_warm_analyser() {
        let run = interrupted_session().await;
        assert!(
            run.journaled > 0,
            "some swings were journaled before the crash"
        );
        let Resumed {
            mut analysis,
            missing,
            summarised,
        } = resumed(&run.settings, false).await;
        assert!(summarised.is_empty());
        let mut found = impacts(&swings(&missing));
        assert!(!found.is_empty(), "the crash lost some swings");
        // Swings still in progress at the end come out at finish, as they would have live.
        let mut finished = Vec::new();
        for device in ["a", "b"] {
            finished.extend(analysis.finish(device, "s1"));
        }
        found.extend(impacts(&swings(&finished)));
        found.sort();
        // Journaled + found = an uninterrupted run: nothing twice, nothing invented.
        assert_eq!(found.len() + run.journaled, run.all.len());
        assert!(found.windows(2).all(|w| w[0] != w[1]), "no swing twice");
        assert!(
            found.iter().all(|k| run.all.contains(k)),
            "no invented swing"
        );
        assert_eq!(
            ["a", "b"].map(|d| summary_swings(&finished, d).expect("summary")),
            run.counts,
            "the summary counts the swings from before the restart"
        );
    }

    #[tokio::test]
    async fn a_session_awaiting_analysis_is_summarised_on_resume() {
        let run = interrupted_session().await;
        let resumed = resumed(&run.settings, true).await;
        assert_eq!(
            ["a", "b"].map(|d| summary_swings(&resumed.missing, d)),
            run.counts.map(Some)
        );
        assert!(resumed.summarised.is_empty());
    }

    #[tokio::test]
    async fn a_session_already_summarised_is_only_completed() {
        let run = interrupted_session().await;
        let (journal, _) = Journal::open(journal_options(&run.settings)).expect("reopen");
        let summary = Document {
            device: Some("a".into()),
            session_id: Some("s1".into()),
            json: r#"{"type":"analysis_complete_notification"}"#.into(),
        };
        journal
            .append(RecordBody::Summary(summary))
            .await
            .expect("append");
        journal.close().await.expect("close");
        let resumed = resumed(&run.settings, true).await;
        assert_eq!(
            summary_swings(&resumed.missing, "a"),
            None,
            "not summarised twice"
        );
        assert_eq!(summary_swings(&resumed.missing, "b"), Some(run.counts[1]));
        assert_eq!(resumed.summarised, vec![("a".to_owned(), "s1".to_owned())]);
    }

    #[tokio::test]
    async fn nothing_to_resume_reads_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = settings(dir.path());
        let (journal, _) = Journal::open(JournalOptions::new(dir.path().join("j"))).expect("open");
        let resumed = resume(&settings, &journal, ResumePoint::default()).await;
        assert!(resumed.missing.is_empty() && resumed.summarised.is_empty());
        journal.close().await.expect("close");
    }
}

#[cfg(test)]
mod sessions_start_tests {
    use rand::SeedableRng;
    use shuttlegate_core::court::{CourtEvent, SessionSource, SessionState};
    use shuttlegate_core::journal::synth;

    use super::sessions_start;
    use crate::court::event_record;
    use crate::journal::{Journal, JournalOptions};

    fn session_state(session: &str, state: SessionState, source: SessionSource) -> CourtEvent {
        CourtEvent::SessionState {
            device: "d".into(),
            session_id: session.into(),
            state,
            source,
            ts: 0,
        }
    }

    fn key(session: &str) -> (String, String) {
        ("d".to_owned(), session.to_owned())
    }

    /// Journals `steps`: an event, or `n` batches of session `s` of device `d`.
    async fn journal_of(steps: &[Step]) -> (tempfile::TempDir, Journal, Vec<u64>) {
        let tmp = tempfile::tempdir().unwrap();
        let mut options = JournalOptions::new(tmp.path().join("journal"));
        options.segment_bytes = 4 << 10;
        let (journal, _) = Journal::open(options).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut ids = Vec::new();
        let mut next_seq = std::collections::HashMap::new();
        for step in steps {
            let id = match step {
                Step::Event(event) => journal.append(event_record(event)).await.unwrap().id,
                Step::Batches(session, n) => {
                    let mut id = 0;
                    let seqs = next_seq.entry(*session).or_insert(0u64);
                    for seq in *seqs..*seqs + n {
                        let batch = synth::compact_batch(
                            &mut rng,
                            "d",
                            session,
                            Some(seq),
                            0,
                            100,
                            synth::Motion::Idle,
                        );
                        id = journal
                            .append(crate::journal::RecordBody::Batch(batch))
                            .await
                            .unwrap()
                            .id;
                    }
                    *seqs += n;
                    id
                }
            };
            ids.push(id);
        }
        (tmp, journal, ids)
    }

    enum Step {
        Event(CourtEvent),
        Batches(&'static str, u64),
    }

    /// The last id of the segment before the one holding record `id`.
    fn before_segment_of(journal: &Journal, id: u64) -> u64 {
        let ranges = journal.segment_ranges();
        let at = ranges
            .iter()
            .position(|&(first, last)| (first..=last).contains(&id))
            .expect("id in a segment");
        ranges[at].0 - 1
    }

    #[tokio::test]
    async fn sessions_are_replayed_from_where_their_data_begins() {
        use SessionSource::{Command, Device};
        use Step::{Batches, Event};
        let (_tmp, journal, ids) = journal_of(&[
            Batches("old", 20),
            Event(session_state(
                "by-command",
                SessionState::Calibrating,
                Command,
            )),
            Batches("other", 20),
            Event(session_state(
                "by-command",
                SessionState::Collecting,
                Command,
            )),
            Batches("by-command", 20),
            Batches("other", 20),
            // Data journaled well before the event that opened its session (the event trailed
            // under load).
            Batches("by-data", 40),
            Event(session_state("by-data", SessionState::Collecting, Device)),
            Batches("by-data", 10),
        ])
        .await;
        assert!(
            journal.segment_ranges().len() >= 8,
            "{:?}",
            journal.segment_ranges()
        );
        let start = |sessions: &[(String, String)]| sessions_start(&journal, sessions).unwrap();
        // From the segment of its first batch, far before its opening event.
        let by_data = start(&[key("by-data")]);
        assert_eq!(by_data, before_segment_of(&journal, ids[5] + 1));
        assert!(by_data < before_segment_of(&journal, ids[7]));
        // A command-started session from its opening (calibrating, not the later collecting);
        // the earliest session decides.
        let both = start(&[key("by-data"), key("by-command")]);
        assert_eq!(both, before_segment_of(&journal, ids[1]));
        assert!(both > 0, "the test reads less than the whole journal");
        // A session whose opening is not in the journal (its segments were released) is
        // replayed from the start.
        assert_eq!(start(&[key("by-data"), key("unknown")]), 0);
    }
}
