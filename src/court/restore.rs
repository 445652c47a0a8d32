//! Reading the court's journaled events back, for a restart: the daemon restores the court
//! from the newest snapshot on (and the analysis resume reads the same events to find where its
//! open sessions began: `pipeline::resume::sessions_start`).
//!
//! Exists so that a restart does not read the whole journal: segments are walked newest first
//! and the walk stops at the newest snapshot, so the time a restart takes follows the data since
//! the last snapshot, not the journal's size. Blocking (reads files).

use crate::journal::{Journal, JournalError, RecordBody, RecordKind, StoredRecord};
use shuttlegate_core::court::CourtEvent;

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
pub(crate) fn for_each_record(
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

/// The court event a stored record holds, if any. A record that does not decode is logged and
/// skipped (the daemon must come up); events that are not the court's (journal-full notices, …)
/// are not state. A snapshot with entries that no longer read keeps the rest, and each entry
/// left out is logged.
pub(crate) fn court_event(stored: &StoredRecord) -> Option<CourtEvent> {
    match stored.decode() {
        Ok(record) => match record.body {
            RecordBody::Event(doc) => read_court_event(stored.id, &doc.json),
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

/// A journaled event's JSON as a court event: `None` for the journal's own notices, and for a
/// court event that does not read at all (logged).
fn read_court_event(id: u64, json: &str) -> Option<CourtEvent> {
    match CourtEvent::from_journal(json) {
        Ok((event, dropped)) => {
            for entry in dropped {
                log::warn!("restoring the court: event record {id}: left out {entry}");
            }
            Some(event)
        }
        Err(e) if CourtEvent::is_court_event(json) => {
            log::warn!("restoring the court: event record {id} skipped: {e}");
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::court::event_record;
    use crate::journal::JournalOptions;
    use rand::SeedableRng;
    use shuttlegate_core::court::{SessionSource, SessionState};
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
            recent_commands: Vec::new(),
            bindings: Vec::new(),
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
}
