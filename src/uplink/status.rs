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
    /// Retained publishes on the command topic, ignored (MQTT sink; see `mqtt.rs`).
    pub retained_commands_ignored: u64,
    /// Connection or protocol errors since start.
    pub errors: u64,
    /// The most recent error, kept after recovery (see `connected` for the state now).
    pub last_error: Option<String>,
}

/// Counters of the MQTT sink that outlive its restarts (each start gets a clone of the same
/// counters) and that `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub struct MqttCounters {
    /// Retained publishes on the command topic, ignored (never run).
    pub retained_commands_ignored: prometheus_client::metrics::counter::Counter,
}

/// Each enabled sink's latest snapshot: the receiver of its current run, replaced when the
/// supervisor restarts it. What `/metrics` and `/healthz` read (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct SinkBoard {
    sinks: std::sync::Arc<
        std::sync::Mutex<
            std::collections::BTreeMap<&'static str, tokio::sync::watch::Receiver<SinkSnapshot>>,
        >,
    >,
}

impl SinkBoard {
    /// Shows `sink`'s snapshots from this run on.
    pub fn follow(&self, sink: &'static str, run: tokio::sync::watch::Receiver<SinkSnapshot>) {
        self.lock().insert(sink, run);
    }

    /// Every enabled sink's state now, by name (`hub`, `mqtt`).
    pub fn snapshots(&self) -> Vec<(&'static str, SinkSnapshot)> {
        self.lock()
            .iter()
            .map(|(name, rx)| (*name, rx.borrow().clone()))
            .collect()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::BTreeMap<&'static str, tokio::sync::watch::Receiver<SinkSnapshot>>,
    > {
        // Held only to insert or clone a receiver: a panic cannot leave the map half-changed.
        self.sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Unix time in ms (wall clock, for snapshots and payloads).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Replay progress lines for the log: one per tick while a sink is more than `threshold`
/// records behind, and one when it has caught up. Quiet in steady state, where a few records
/// are always in flight. Pure: time and figures passed in.
#[derive(Debug, Clone)]
pub struct ReplayProgress {
    threshold: u64,
    /// Set while behind: when and at which cursor the last line was logged.
    behind_since: Option<(std::time::Instant, u64)>,
}

impl ReplayProgress {
    pub fn new(threshold: u64) -> Self {
        Self {
            threshold,
            behind_since: None,
        }
    }

    /// The line to log at this tick, if any.
    pub fn handle_tick(
        &mut self,
        now: std::time::Instant,
        cursor: u64,
        backlog: u64,
    ) -> Option<String> {
        match self.behind_since {
            None if backlog > self.threshold => {
                self.behind_since = Some((now, cursor));
                Some(format!(
                    "replaying a backlog of {backlog} records from id {cursor}"
                ))
            }
            None => None,
            Some(_) if backlog <= self.threshold => {
                self.behind_since = None;
                Some(format!("caught up (cursor {cursor})"))
            }
            Some((since, from)) => {
                self.behind_since = Some((now, cursor));
                let secs = now.duration_since(since).as_secs_f64().max(1e-3);
                let rate = cursor.saturating_sub(from) as f64 / secs;
                Some(format!(
                    "replaying, {backlog} records behind (cursor {cursor}), {rate:.0} records/s"
                ))
            }
        }
    }
}

/// `stats` brought up to date with `delivery`'s counts, and published on `tx` if that changes
/// it. `in_flight` is the sink's own count of records awaiting an acknowledgement.
pub(crate) fn publish_snapshot(
    tx: &tokio::sync::watch::Sender<SinkSnapshot>,
    stats: &SinkSnapshot,
    delivery: &super::delivery::Delivery,
    in_flight: usize,
) {
    let counts = delivery.counts();
    let next = SinkSnapshot {
        connected: delivery.is_connected(),
        cursor: counts.cursor,
        durable_id: counts.durable_id,
        backlog_records: delivery.backlog(),
        queued_bytes: counts.queued_bytes,
        in_flight,
        ..stats.clone()
    };
    tx.send_if_modified(|s| {
        let changed = *s != next;
        *s = next;
        changed
    });
}

/// The gateway's `online` status as a sink's delivery sees it (retained on MQTT `status`, sent
/// to the hub as `gateway_status`).
pub(crate) fn online_status(
    delivery: &super::delivery::Delivery,
    venue: &str,
    court: &str,
) -> super::envelope::GatewayStatus {
    super::envelope::GatewayStatus {
        state: "online".into(),
        venue: venue.to_owned(),
        court: court.to_owned(),
        backlog_records: delivery.backlog(),
        cursor: delivery.cursor(),
        durable_id: delivery.counts().durable_id,
        ts_ms: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn logs_only_while_behind_and_once_when_caught_up() {
        let t0 = Instant::now();
        let mut p = ReplayProgress::new(100);
        assert_eq!(p.handle_tick(t0, 10, 5), None);
        assert!(
            p.handle_tick(t0, 10, 5000)
                .unwrap()
                .contains("backlog of 5000")
        );
        let line = p
            .handle_tick(t0 + Duration::from_secs(2), 4010, 1000)
            .unwrap();
        assert!(line.contains("2000 records/s"), "{line}");
        assert!(
            p.handle_tick(t0 + Duration::from_secs(3), 5000, 3)
                .unwrap()
                .contains("caught up")
        );
        assert_eq!(p.handle_tick(t0 + Duration::from_secs(4), 5001, 3), None);
    }
}
