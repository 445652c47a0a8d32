//! The seam between the uplink and the journal: what a sink needs from the outbox it drains.
//!
//! The journal is the outbox and the source of truth; each sink is a reader of it with its own
//! named cursor. This trait is the small slice of the journal's API a sink uses, so the sinks can
//! be tested against [`MemoryOutbox`] (a real, if volatile, log) and run against the journal
//! (the lead implements the trait over `Journal::read_after`, `durable_id`, `subscribe`,
//! `cursor` and `ack` at merge).
//!
//! Calls are synchronous (the journal reads files): async callers wrap them in
//! `spawn_blocking`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::journal::RecordKind;

/// One journal record as a sink sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// Journal id: gateway-wide, strictly increasing, never reused. Carried in every payload.
    pub id: u64,
    /// Gateway wall-clock time of the append, unix ms.
    pub ts_ms: i64,
    pub kind: RecordKind,
    pub device: Option<String>,
    pub session_id: Option<String>,
    /// Batch sequence number within `(device, session)` (batches only).
    pub seq: Option<u64>,
    /// The JSON message, verbatim (swings, summaries, events).
    pub json: Option<String>,
    /// The stored, compressed record body (batches): `StoredRecord::encoded()`.
    pub raw: Option<Vec<u8>>,
}

impl OutboxRecord {
    /// Bytes this record occupies in a sink's queues (for backlog figures and buffer bounds).
    pub fn payload_len(&self) -> usize {
        self.json.as_ref().map_or(0, String::len) + self.raw.as_ref().map_or(0, Vec::len)
    }
}

/// Why the outbox could not serve a sink; the sink logs it and retries after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox read failed: {0}")]
    Read(String),
    #[error("outbox cursor update failed: {0}")]
    Ack(String),
}

/// What a sink needs from the journal.
pub trait Outbox: Send + Sync + 'static {
    /// Up to `max` records with `id > after`, oldest first, of the given kinds only
    /// (`None`: every kind). Only durable records are returned.
    fn read_after(
        &self,
        after: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
    ) -> Result<Vec<OutboxRecord>, OutboxError>;
    /// Highest durable id (0 when empty).
    fn durable_id(&self) -> u64;
    /// Changes on each commit (value: the new durable id).
    fn subscribe(&self) -> watch::Receiver<u64>;
    /// The consumer's persisted cursor: every record with `id <= cursor` is delivered.
    fn cursor(&self, consumer: &str) -> u64;
    /// Persist the consumer's cursor (monotonic: a lower id is ignored).
    fn ack(&self, consumer: &str, id: u64) -> Result<(), OutboxError>;
}

/// An in-memory outbox: a real append-only log with cursors, for tests and the demo.
#[derive(Debug, Clone)]
pub struct MemoryOutbox {
    inner: Arc<Mutex<MemoryLog>>,
    durable: Arc<watch::Sender<u64>>,
}

#[derive(Debug, Default)]
struct MemoryLog {
    records: BTreeMap<u64, OutboxRecord>,
    next_id: u64,
    cursors: HashMap<String, u64>,
}

impl Default for MemoryOutbox {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryOutbox {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(0);
        Self {
            inner: Arc::new(Mutex::new(MemoryLog {
                next_id: 1,
                ..MemoryLog::default()
            })),
            durable: Arc::new(tx),
        }
    }

    /// Appends a record, assigning the next id (the record's own `id` is ignored); returns the id.
    pub fn append(&self, mut record: OutboxRecord) -> u64 {
        let id = {
            let mut log = self.lock();
            let id = log.next_id;
            log.next_id += 1;
            record.id = id;
            log.records.insert(id, record);
            id
        };
        self.durable.send_replace(id);
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryLog> {
        // A poisoned lock means a test thread panicked mid-append; the log itself is still
        // consistent (every mutation is a single insert), so keep serving it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Outbox for MemoryOutbox {
    fn read_after(
        &self,
        after: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
    ) -> Result<Vec<OutboxRecord>, OutboxError> {
        let log = self.lock();
        Ok(log
            .records
            .range(after.saturating_add(1)..)
            .map(|(_, r)| r)
            .filter(|r| kinds.is_none_or(|k| k.contains(&r.kind)))
            .take(max)
            .cloned()
            .collect())
    }

    fn durable_id(&self) -> u64 {
        *self.durable.borrow()
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    fn cursor(&self, consumer: &str) -> u64 {
        self.lock().cursors.get(consumer).copied().unwrap_or(0)
    }

    fn ack(&self, consumer: &str, id: u64) -> Result<(), OutboxError> {
        let mut log = self.lock();
        let cursor = log.cursors.entry(consumer.to_owned()).or_insert(0);
        *cursor = (*cursor).max(id);
        Ok(())
    }
}

/// The journal is the outbox: records are read from it as stored (raw batches in their stored,
/// compressed encoding; documents as their JSON), and a sink's ack moves its journal cursor.
impl Outbox for crate::journal::Journal {
    fn read_after(
        &self,
        after: u64,
        max: usize,
        kinds: Option<&[RecordKind]>,
    ) -> Result<Vec<OutboxRecord>, OutboxError> {
        use crate::journal::RecordBody;
        let stored = crate::journal::Journal::read_after(self, after, max, kinds)
            .map_err(|e| OutboxError::Read(e.to_string()))?;
        stored
            .into_iter()
            .map(|r| {
                let (json, raw) = match r.kind {
                    RecordKind::Batch => (None, Some(r.encoded().to_vec())),
                    _ => match r
                        .decode()
                        .map_err(|e| OutboxError::Read(e.to_string()))?
                        .body
                    {
                        RecordBody::Swing(d) | RecordBody::Summary(d) | RecordBody::Event(d) => {
                            (Some(d.json), None)
                        }
                        RecordBody::Batch(_) => (None, Some(r.encoded().to_vec())),
                    },
                };
                Ok(OutboxRecord {
                    id: r.id,
                    ts_ms: r.ts_ms,
                    kind: r.kind,
                    device: r.device.clone(),
                    session_id: r.session_id.clone(),
                    seq: r.seq,
                    json,
                    raw,
                })
            })
            .collect()
    }

    fn durable_id(&self) -> u64 {
        crate::journal::Journal::durable_id(self)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        crate::journal::Journal::subscribe(self)
    }

    fn cursor(&self, consumer: &str) -> u64 {
        crate::journal::Journal::cursor(self, consumer)
    }

    fn ack(&self, consumer: &str, id: u64) -> Result<(), OutboxError> {
        crate::journal::Journal::ack(self, consumer, id)
            .map_err(|e| OutboxError::Ack(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(device: &str) -> OutboxRecord {
        OutboxRecord {
            id: 0,
            ts_ms: 1,
            kind: RecordKind::Event,
            device: Some(device.into()),
            session_id: None,
            seq: None,
            json: Some(r#"{"type":"device_status"}"#.into()),
            raw: None,
        }
    }

    #[test]
    fn reads_after_an_id_filtered_by_kind_and_bounded() {
        let outbox = MemoryOutbox::new();
        for _ in 0..5 {
            outbox.append(event("a"));
        }
        let got = outbox.read_after(2, 2, None).unwrap();
        assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), vec![3, 4]);
        assert!(
            outbox
                .read_after(0, 10, Some(&[RecordKind::Batch]))
                .unwrap()
                .is_empty()
        );
        assert_eq!(outbox.durable_id(), 5);
    }

    #[test]
    fn cursors_only_move_forward() {
        let outbox = MemoryOutbox::new();
        outbox.ack("mqtt", 4).unwrap();
        outbox.ack("mqtt", 2).unwrap();
        assert_eq!(outbox.cursor("mqtt"), 4);
        assert_eq!(outbox.cursor("hub"), 0);
    }
}
