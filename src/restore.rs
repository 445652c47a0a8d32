//! Reading the court's journaled events back, for a restart: the daemon restores the court
//! from the newest snapshot on, and the analysis resume finds where its open sessions began.
//!
//! Exists so that neither reads the whole journal: both walk its segments newest first and stop
//! as soon as they have what they need, so the time a restart takes follows the data since the
//! last snapshot or the open sessions' start, not the journal's size. Blocking (reads files).

use std::collections::HashSet;

use crate::court::{CourtEvent, SessionSource, SessionState};
use crate::journal::{Journal, JournalError, RecordBody, RecordKind, StoredRecord};

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
    let mut after = first.saturating_sub(1);
    let mut events = Vec::new();
    loop {
        let page = journal.read_range(after, last, PAGE, Some(&[RecordKind::Event]))?;
        let Some(newest) = page.last() else {
            return Ok(events);
        };
        after = newest.id;
        events.extend(page.iter().filter_map(court_event));
    }
}

/// The id after which every record of `sessions` (device, session) lies: the start of the segment
/// before the one where the earliest of them opened, or 0 (the whole journal) when an opening is
/// not found. A session opens with its first state event: `calibrating` when started by a
/// command, `collecting` when its data opened it. The segment before is included because a
/// session opened by its data journals that data and the opening event side by side, in either
/// order.
pub fn sessions_start<'a>(
    journal: &Journal,
    sessions: impl IntoIterator<Item = &'a (String, String)>,
) -> Result<u64, JournalError> {
    let mut unopened: HashSet<&(String, String)> = sessions.into_iter().collect();
    let ranges = journal.segment_ranges();
    for (index, &(first, last)) in ranges.iter().enumerate().rev() {
        if unopened.is_empty() {
            break;
        }
        for event in segment_court_events(journal, first, last)? {
            if let Some(key) = opening(&event) {
                unopened.remove(&key);
            }
        }
        if unopened.is_empty() {
            let from = ranges[index.saturating_sub(1)].0;
            return Ok(from.saturating_sub(1));
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
    use crate::journal::synth;
    use rand::SeedableRng;

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

    /// The segment (index into `segment_ranges`) holding record `id`.
    fn segment_of(journal: &Journal, id: u64) -> usize {
        let ranges = journal.segment_ranges();
        ranges
            .iter()
            .position(|&(first, last)| (first..=last).contains(&id))
            .expect("id in a segment")
    }

    #[tokio::test]
    async fn sessions_are_replayed_from_the_segment_before_the_earliest_opening() {
        use SessionSource::{Command, Device};
        let events = [
            status("d", 1),
            session_state("old", SessionState::Calibrating, Command),
            status("d", 2),
            session_state("by-command", SessionState::Calibrating, Command),
            session_state("by-command", SessionState::Collecting, Command),
            status("d", 3),
            session_state("by-data", SessionState::Collecting, Device),
            status("d", 4),
        ];
        let (_tmp, journal) = journal_with(&events).await;
        let opened = |event_index: usize| {
            // Each event follows its 8 batches: event i is record 9·(i + 1).
            let segment = segment_of(&journal, 9 * (event_index as u64 + 1));
            journal.segment_ranges()[segment.saturating_sub(1)].0 - 1
        };
        let start = |sessions: &[(String, String)]| sessions_start(&journal, sessions).unwrap();
        assert_eq!(start(&[key("by-data")]), opened(6));
        // The earliest opening decides; a later state of a session is not its opening.
        assert_eq!(start(&[key("by-data"), key("by-command")]), opened(3));
        assert!(opened(3) > 0, "the test reads less than the whole journal");
        // A session whose opening is not in the journal (its segments were released) is
        // replayed from the start.
        assert_eq!(start(&[key("by-data"), key("unknown")]), 0);
    }
}
