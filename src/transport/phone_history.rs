//! What a phone reads back from the journal: a session's summary it missed (`get_analysis`), the
//! user's recent summaries (`session_history`), the swings of a session so far (a phone
//! that connects mid-session sees them before the live ones), and the state of a session the
//! court no longer remembers (`session_status`: its journaled state changes).
//!
//! The journal is the record; the live broadcast only shows what happens while a phone watches.
//! These reads are blocking (they open segment files) and bounded: callers run them on
//! `spawn_blocking`.

use serde_json::Value;

use shuttlegate_core::court::{CourtEvent, SessionState};

use crate::journal::{Journal, JournalError, RecordBody, RecordKind, StoredRecord};

/// Newest segments `session_history` looks through: a phone's history is recent sessions, and a
/// request must not read a whole long-lived journal.
const HISTORY_SEGMENTS: usize = 64;
/// Swings of one session replayed to a phone that connects mid-session.
pub const CATCH_UP_SWINGS: usize = 2000;
/// Events of one session read for its status: its state changes are a handful (calibrating,
/// collecting, stopping, analyzing, completed), and the journal's session index opens only
/// the segments that hold them.
const SESSION_EVENTS: usize = 64;

/// A session as its journaled state changes tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub device: String,
    /// Its last journaled state.
    pub state: SessionState,
    /// When it was opened (its first state change), unix ms.
    pub start_ms: i64,
    /// When it ended (completed or stopped), unix ms.
    pub end_ms: Option<i64>,
}

/// `session_id` on one of `devices`, from the journal; `None` when the journal no longer
/// holds a state change of it (deleted with its segment once every sink had it).
pub fn session(
    journal: &Journal,
    devices: &[String],
    session_id: &str,
) -> Result<Option<StoredSession>, JournalError> {
    for device in devices {
        let events = journal.read_session(
            device,
            session_id,
            0,
            SESSION_EVENTS,
            Some(&[RecordKind::Event]),
        )?;
        let changes = events.iter().filter_map(session_change);
        if let Some(session) = fold_session(device, changes) {
            return Ok(Some(session));
        }
    }
    Ok(None)
}

/// A journaled session state change: its state and time.
fn session_change(stored: &StoredRecord) -> Option<(SessionState, i64)> {
    let RecordBody::Event(document) = stored.decode().ok()?.body else {
        return None;
    };
    match CourtEvent::from_journal(&document.json).ok()?.0 {
        CourtEvent::SessionState { state, ts, .. } => Some((state, ts)),
        _ => None,
    }
}

/// A session from its state changes, oldest first.
fn fold_session(
    device: &str,
    changes: impl Iterator<Item = (SessionState, i64)>,
) -> Option<StoredSession> {
    let mut session: Option<StoredSession> = None;
    for (state, ts) in changes {
        let s = session.get_or_insert(StoredSession {
            device: device.to_owned(),
            state,
            start_ms: ts,
            end_ms: None,
        });
        s.state = state;
        if matches!(state, SessionState::Completed | SessionState::Stopped) {
            s.end_ms = Some(ts);
        }
    }
    session
}

/// The summary (`analysis_complete_notification`) of `session_id` on one of `devices`.
pub fn summary(
    journal: &Journal,
    devices: &[String],
    session_id: &str,
) -> Result<Option<Value>, JournalError> {
    for device in devices {
        let found = journal.read_session(device, session_id, 0, 1, Some(&[RecordKind::Summary]))?;
        if let Some(message) = found.iter().find_map(message) {
            return Ok(Some(message));
        }
    }
    Ok(None)
}

/// The newest `limit` summaries of `devices`, newest first.
pub fn history(
    journal: &Journal,
    devices: &[String],
    limit: usize,
) -> Result<Vec<Value>, JournalError> {
    let mut newest_first = Vec::new();
    for (first, last) in journal
        .segment_ranges()
        .into_iter()
        .rev()
        .take(HISTORY_SEGMENTS)
    {
        let records = journal.read_range(
            first.saturating_sub(1),
            last,
            usize::MAX,
            Some(&[RecordKind::Summary]),
        )?;
        let mine = records
            .iter()
            .rev()
            .filter(|r| r.device.as_ref().is_some_and(|d| devices.contains(d)));
        newest_first.extend(mine.filter_map(message).take(limit - newest_first.len()));
        if newest_first.len() >= limit {
            break;
        }
    }
    Ok(newest_first)
}

/// The swings of `device`'s `session_id` so far, oldest first, each with its journal `id`.
pub fn swings_so_far(
    journal: &Journal,
    device: &str,
    session_id: &str,
) -> Result<Vec<Value>, JournalError> {
    let records = journal.read_session(
        device,
        session_id,
        0,
        CATCH_UP_SWINGS,
        Some(&[RecordKind::Swing]),
    )?;
    Ok(records.iter().filter_map(message).collect())
}

/// A stored swing or summary as the message a phone gets: its JSON, with the journal id of a
/// swing filled in as the live one carries it.
fn message(stored: &StoredRecord) -> Option<Value> {
    let record = match stored.decode() {
        Ok(record) => record,
        Err(e) => {
            log::warn!("a phone's read skipped record {}: {e}", stored.id);
            return None;
        }
    };
    let (document, is_swing) = match record.body {
        RecordBody::Swing(doc) => (doc, true),
        RecordBody::Summary(doc) => (doc, false),
        RecordBody::Batch(_) | RecordBody::Event(_) => return None,
    };
    let mut value: Value = serde_json::from_str(&document.json).ok()?;
    if is_swing && let Some(fields) = value.as_object_mut() {
        fields.insert("id".into(), stored.id.into());
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_its_last_state_from_its_first_change_to_its_end() {
        let changes = [
            (SessionState::Calibrating, 10),
            (SessionState::Collecting, 20),
            (SessionState::Stopping, 30),
            (SessionState::Analyzing, 31),
            (SessionState::Completed, 40),
        ];
        let s = fold_session("d1", changes.into_iter()).unwrap();
        assert_eq!(
            s,
            StoredSession {
                device: "d1".into(),
                state: SessionState::Completed,
                start_ms: 10,
                end_ms: Some(40),
            }
        );
        let open = fold_session("d1", changes[..2].iter().copied()).unwrap();
        assert_eq!((open.state, open.end_ms), (SessionState::Collecting, None));
        assert!(fold_session("d1", std::iter::empty()).is_none());
    }
}
