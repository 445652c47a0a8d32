//! What each sink shows the daemon (admin view, `/metrics`, `journal stats`): a snapshot struct
//! published on a `watch` channel whenever it changes.

/// The state of one sink at one moment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SinkSnapshot {
    /// `mqtt` or `hub`.
    pub sink: &'static str,
    pub connected: bool,
    /// Every journal id up to this one is delivered (the persisted cursor follows it).
    pub cursor: u64,
    /// The cursor as last persisted in the journal (lags `cursor` by one write).
    pub saved_cursor: u64,
    pub durable_id: u64,
    /// Journal ids between the cursor and the newest durable id.
    pub backlog_records: u64,
    /// Bytes read from the journal and not yet acknowledged.
    pub queued_bytes: usize,
    pub in_flight: usize,
    /// Records acknowledged since start (re-sends count once per ack).
    pub acked: u64,
    /// Records sent since start (re-sends counted).
    pub sent: u64,
    /// Records skipped because they could not be encoded (logged with their id).
    pub skipped: u64,
    /// Unix ms of the last acknowledgement.
    pub last_ack_ms: Option<i64>,
    /// Connections made since start.
    pub connects: u64,
    /// Connection or protocol errors since start.
    pub errors: u64,
    pub last_error: Option<String>,
}

/// Unix time in ms (wall clock, for snapshots and payloads).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
