//! Reading the court's journaled events back, for a restart: the daemon restores the court
//! from the newest snapshot on, and the analysis resume finds where its open sessions began.
//!
//! Exists so that neither reads the whole journal: both walk its segments newest first and stop
//! as soon as they have what they need, so the time a restart takes follows the data since the
//! last snapshot or the open sessions' start, not the journal's size. Blocking (reads files).

use std::collections::HashSet;

use crate::journal::{Journal, JournalError, RecordBody, RecordKind, StoredRecord};
use shuttlegate_core::court::{CourtEvent, SessionSource, SessionState};

/// Event records read per page.
const PAGE: usize = 4096;

/// The court's journaled events from the newest snapshot on (all of them when there is none).
/// Segments are read newest first until one holds a snapshot: the daemon journals one at every
/// start and every ten minutes, so that is the last minutes of data, not the whole journal (on
/// an SD card, a GiB takes tens of seconds to read).
pub fn court_events_since_snapshot(journal: &Journal) -> Result<Vec<CourtEvent>, JournalError> {
    let mut newest_first: Vec<Vec<CourtEvent>> = Vec::new();
    for (first, last) in journal.segment_ranges().into_iter().rev() {
        let mut events = segment_court_events(journal, first, last)?;
        let snapshot = events
            .iter()
            .rposition(|e| matches!(e, CourtEvent::Snapshot { .. }));
        if let Some(at) = snapshot {
            newest_first.push(events.split_off(at));
            break;
        }
        newest_first.push(events);
    }
    Ok(newest_first.into_iter().rev().flatten().collect())
}

/// The court events among the records `first..=last`, in order.
pub fn segment_court_events(
    journal: &Journal,
    first: u64,
    last: u64,
) -> Result<Vec<CourtEvent>, JournalError> {
    let mut events = Vec::new();
    for_each_record(journal, (first, last), &[RecordKind::Event], |r| {
        events.extend(court_event(r));
    })?;
    Ok(events)
}

/// Visits the records `first..=last` of these kinds, in order, a page at a time (bodies are not
/// decoded).
fn for_each_record(
    journal: &Journal,
    (first, last): (u64, u64),
    kinds: &[RecordKind],
    mut visit: impl FnMut(&StoredRecord),
) -> Result<(), JournalError> {
    let mut after = first.saturating_sub(1);
    loop {
        let page = journal.read_range(after, last, PAGE, Some(kinds))?;
        let Some(newest) = page.last() else {
            return Ok(());
        };
        after = newest.id;
        page.iter().for_each(&mut visit);
    }
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

/// The court event a stored record holds, if any. A record that does not decode is logged and
/// skipped (the daemon must come up); events that are not the court's (journal-full notices, …)
/// are not state.
fn court_event(stored: &StoredRecord) -> Option<CourtEvent> {
    match stored.decode() {
        Ok(record) => match record.body {
            RecordBody::Event(doc) => serde_json::from_str(&doc.json).ok(),
            _ => None,
        },
        Err(e) => {
            log::warn!(
                "restoring the court: event record {} skipped: {e}",
                stored.id
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event_record;
    use crate::journal::JournalOptions;
    use rand::SeedableRng;
    use shuttlegate_core::journal::synth;

    fn status(device: &str, ts: i64) -> CourtEvent {
        CourtEvent::DeviceStatus {
            device: device.to_owned(),
            online: true,
            ts,
            reason: None,
        }
    }

    fn snapshot(ts: i64) -> CourtEvent {
        CourtEvent::Snapshot {
            sessions: Vec::new(),
            commands: Vec::new(),
            next_command_id: 1,
            ts,
        }
    }

    /// Appends `events` with raw batches between them, so they land in several segments.
    async fn journal_with(events: &[CourtEvent]) -> (tempfile::TempDir, Journal) {
        let tmp = tempfile::tempdir().unwrap();
        let mut options = JournalOptions::new(tmp.path().join("journal"));
        options.segment_bytes = 4 << 10;
        let (journal, _) = Journal::open(options).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for (i, event) in events.iter().enumerate() {
            for seq in 0..8 {
                let batch = synth::compact_batch(
                    &mut rng,
                    "d",
                    "s",
                    Some(i as u64 * 8 + seq),
                    0,
                    100,
                    synth::Motion::Idle,
                );
                journal
                    .append(crate::journal::RecordBody::Batch(batch))
                    .await
                    .unwrap();
            }
            journal.append(event_record(event)).await.unwrap();
        }
        (tmp, journal)
    }

    #[tokio::test]
    async fn a_restart_reads_the_court_events_from_the_newest_snapshot_on() {
        let session = CourtEvent::SessionState {
            device: "d".into(),
            session_id: "s".into(),
            state: SessionState::Collecting,
            source: SessionSource::Device,
            ts: 3,
        };
        let events = [
            status("d", 1),
            snapshot(2),
            session.clone(),
            status("d", 4),
            snapshot(5),
            status("d", 6),
        ];
        let (_tmp, journal) = journal_with(&events).await;
        assert!(
            journal.segment_ranges().len() >= 4,
            "events spread over segments"
        );
        let restored = tokio::task::spawn_blocking(move || court_events_since_snapshot(&journal))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(restored, [snapshot(5), status("d", 6)]);
    }

    #[tokio::test]
    async fn without_a_snapshot_every_court_event_is_read() {
        let events = [status("d", 1), status("d", 2), status("d", 3)];
        let (_tmp, journal) = journal_with(&events).await;
        let restored = tokio::task::spawn_blocking(move || court_events_since_snapshot(&journal))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(restored, events);
    }

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
