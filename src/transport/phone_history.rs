//! What a phone reads back from the journal: a session's summary it missed (`get_analysis`), the
//! user's recent summaries (`session_history`), and the swings of a session so far (a phone
//! that connects mid-session sees them before the live ones).
//!
//! The journal is the record; the live broadcast only shows what happens while a phone watches.
//! These reads are blocking (they open segment files) and bounded: callers run them on
//! `spawn_blocking`.

use serde_json::Value;

use crate::journal::{Journal, JournalError, RecordBody, RecordKind, StoredRecord};

/// Newest segments `session_history` looks through: a phone's history is recent sessions, and a
/// request must not read a whole long-lived journal.
const HISTORY_SEGMENTS: usize = 64;
/// Swings of one session replayed to a phone that connects mid-session.
pub const CATCH_UP_SWINGS: usize = 2000;

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
