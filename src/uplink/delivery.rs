//! The delivery core every sink shares: which records to read, which to send next, and how far
//! the cursor may move. Sans-IO: the driver does the reads and sends, and reports back.
//!
//! ## Lanes
//! A sink reads the journal through *lanes*, each an ordered reader of some record kinds with
//! its own read position: the MQTT sink has a **results** lane (swings, summaries, events) and
//! a **raw** lane (sensor batches). Lanes are served in priority order, so after an outage new
//! swings and summaries go out at once while hours of raw batches drain behind them at the
//! configured replay rate (a token bucket, [`Pacer`]) and in at most `max_in_flight` slots of
//! the window, leaving the rest of the window to the results lane. Within a lane records are
//! sent in id order, so every topic is in id order per device (MQTT keeps the order of one
//! client's QoS 1 messages per topic).
//!
//! ## The cursor
//! A lane has *scanned* up to `s` when every record of its kinds with `id <= s` has been read
//! into it. Its own cursor is `min(s, first not yet acknowledged id - 1)`; the sink's cursor is
//! the minimum over its lanes. So the cursor never passes a record that was not acknowledged,
//! whatever order acknowledgements arrive in (property-tested below), and records of kinds a
//! sink does not carry never hold it back.
//!
//! ## Reconnects
//! When a connection drops, everything sent but not acknowledged may or may not have arrived:
//! each lane forgets its queue and in-flight set and re-reads from its own cursor. Duplicates
//! are therefore only re-sends of unacknowledged ids, and each lane's order is kept.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use super::outbox::OutboxRecord;
use super::pacer::Pacer;
use crate::journal::RecordKind;

/// How one lane behaves.
#[derive(Debug, Clone)]
pub struct LaneSpec {
    /// For logs: `results`, `raw`.
    pub name: &'static str,
    pub kinds: Vec<RecordKind>,
    /// Records per second this lane may send (`None`: unpaced).
    pub rate: Option<f64>,
    /// Token bucket size for `rate`.
    pub burst: u32,
    /// At most this many of the lane's records unacknowledged at once.
    pub max_in_flight: usize,
}

/// A read the driver should perform: `outbox.read_after(after, max, Some(kinds))`, after taking
/// `outbox.durable_id()` (pass it back to [`Delivery::handle_read`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    pub lane: usize,
    pub after: u64,
    pub max: usize,
    pub kinds: Vec<RecordKind>,
    /// Connection epoch the read belongs to; stale answers are dropped.
    pub epoch: u64,
}

#[derive(Debug)]
struct Lane {
    spec: LaneSpec,
    scanned: u64,
    queue: VecDeque<OutboxRecord>,
    in_flight: BTreeSet<u64>,
    pacer: Pacer,
    /// A read is outstanding.
    reading: bool,
    /// The last read came back short: nothing more to read until the durable id moves.
    caught_up: bool,
}

impl Lane {
    fn first_unacked(&self) -> Option<u64> {
        let queued = self.queue.front().map(|r| r.id);
        let sent = self.in_flight.first().copied();
        match (queued, sent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn cursor(&self) -> u64 {
        match self.first_unacked() {
            Some(id) => self.scanned.min(id - 1),
            None => self.scanned,
        }
    }

    fn restart_from(&mut self, from: u64) {
        self.scanned = from;
        self.queue.clear();
        self.in_flight.clear();
        self.caught_up = false;
    }
}

/// Counters a sink reports (see [`super::status::SinkSnapshot`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub cursor: u64,
    pub durable_id: u64,
    /// Read but not yet acknowledged.
    pub queued_records: usize,
    pub queued_bytes: usize,
    pub in_flight: usize,
}

/// The delivery state of one sink.
#[derive(Debug)]
pub struct Delivery {
    lanes: Vec<Lane>,
    cursor: u64,
    durable: u64,
    window: usize,
    read_batch: usize,
    connected: bool,
    epoch: u64,
}

impl Delivery {
    /// `cursor`: the persisted cursor; `window`: records unacknowledged at once, over all lanes;
    /// `read_batch`: records per read (also the bound of each lane's queue).
    pub fn new(
        lanes: Vec<LaneSpec>,
        cursor: u64,
        window: usize,
        read_batch: usize,
        now: Instant,
    ) -> Self {
        let lanes = lanes
            .into_iter()
            .map(|spec| Lane {
                pacer: Pacer::new(spec.rate, spec.burst, now),
                spec,
                scanned: cursor,
                queue: VecDeque::new(),
                in_flight: BTreeSet::new(),
                reading: false,
                caught_up: false,
            })
            .collect();
        Self {
            lanes,
            cursor,
            durable: cursor,
            window: window.max(1),
            read_batch: read_batch.max(1),
            connected: false,
            epoch: 0,
        }
    }

    /// The connection is up: sending may start.
    pub fn handle_connected(&mut self) {
        self.connected = true;
    }

    /// The connection dropped: unacknowledged records will be read and sent again.
    pub fn handle_disconnected(&mut self) {
        self.connected = false;
        self.epoch += 1;
        for lane in &mut self.lanes {
            let from = lane.cursor();
            lane.restart_from(from);
            lane.reading = false;
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The journal committed up to `durable_id`.
    pub fn handle_durable(&mut self, durable_id: u64) {
        if durable_id > self.durable {
            self.durable = durable_id;
        }
        for lane in &mut self.lanes {
            if lane.scanned < self.durable {
                lane.caught_up = false;
            }
        }
    }

    /// The next read to do, if any lane is running low. Call until `None`.
    pub fn poll_read(&mut self) -> Option<ReadRequest> {
        let (max, epoch) = (self.read_batch, self.epoch);
        let (index, lane) = self
            .lanes
            .iter_mut()
            .enumerate()
            .find(|(_, l)| !l.reading && !l.caught_up && l.queue.len() <= max / 2)?;
        lane.reading = true;
        Some(ReadRequest {
            lane: index,
            after: lane.scanned,
            max: max - lane.queue.len(),
            kinds: lane.spec.kinds.clone(),
            epoch,
        })
    }

    /// The answer to `request`; `durable_before` is the durable id taken before the read.
    /// Returns false if the answer was stale (the connection dropped meanwhile) and dropped.
    pub fn handle_read(
        &mut self,
        request: &ReadRequest,
        records: Vec<OutboxRecord>,
        durable_before: u64,
    ) -> bool {
        let Some(lane) = self.lanes.get_mut(request.lane) else {
            return false;
        };
        if request.epoch != self.epoch {
            // A read of a previous connection; the current one may have its own outstanding.
            return false;
        }
        lane.reading = false;
        if request.after != lane.scanned {
            return false;
        }
        let short = records.len() < request.max;
        let mut last = lane.scanned;
        for record in records {
            if record.id > last && lane.spec.kinds.contains(&record.kind) {
                last = record.id;
                lane.queue.push_back(record);
            }
        }
        lane.scanned = if short {
            last.max(durable_before)
        } else {
            last
        };
        lane.caught_up = short && lane.scanned >= self.durable;
        self.durable = self.durable.max(durable_before);
        true
    }

    /// A read failed (and was waited out): the lane may read again.
    pub fn handle_read_failed(&mut self, request: &ReadRequest) {
        if request.epoch == self.epoch
            && let Some(lane) = self.lanes.get_mut(request.lane)
        {
            lane.reading = false;
        }
    }

    /// The next record to send, live lanes first, within the window, lane slots and pacing.
    pub fn poll_send(&mut self, now: Instant) -> Option<OutboxRecord> {
        if !self.connected || self.in_flight() >= self.window {
            return None;
        }
        for lane in &mut self.lanes {
            if lane.queue.is_empty() || lane.in_flight.len() >= lane.spec.max_in_flight {
                continue;
            }
            if !lane.pacer.try_take(now) {
                continue;
            }
            // The queue was checked to be non-empty just above.
            let record = lane.queue.pop_front().expect("non-empty queue");
            lane.in_flight.insert(record.id);
            return Some(record);
        }
        None
    }

    /// When a paced lane will next be allowed to send, if one is waiting for its pacer.
    pub fn next_wakeup(&mut self, now: Instant) -> Option<Instant> {
        if !self.connected {
            return None;
        }
        self.lanes
            .iter_mut()
            .filter(|l| !l.queue.is_empty() && l.in_flight.len() < l.spec.max_in_flight)
            .map(|l| l.pacer.next_ready(now))
            .min()
    }

    /// `id` was acknowledged (or skipped: not for this sink, or unencodable). Returns the new
    /// cursor when it moved.
    pub fn handle_ack(&mut self, id: u64) -> Option<u64> {
        for lane in &mut self.lanes {
            if lane.in_flight.remove(&id) {
                break;
            }
        }
        self.poll_cursor()
    }

    /// The new cursor, if it moved since the last call. Acks move it, and so do reads that
    /// scan past records of kinds no lane carries: call after each read too.
    pub fn poll_cursor(&mut self) -> Option<u64> {
        let cursor = self
            .lanes
            .iter()
            .map(Lane::cursor)
            .min()
            .unwrap_or(self.durable);
        (cursor > self.cursor).then(|| {
            self.cursor = cursor;
            cursor
        })
    }

    /// Records sent and not acknowledged, over all lanes.
    pub fn in_flight(&self) -> usize {
        self.lanes.iter().map(|l| l.in_flight.len()).sum()
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Journal ids between the cursor and the newest durable id.
    pub fn backlog(&self) -> u64 {
        self.durable.saturating_sub(self.cursor)
    }

    /// Raw-lane style backlog of one lane: ids it has not yet scanned (for progress logs).
    pub fn lane_unscanned(&self, lane: usize) -> u64 {
        self.lanes
            .get(lane)
            .map_or(0, |l| self.durable.saturating_sub(l.scanned))
    }

    pub fn counts(&self) -> DeliveryCounts {
        let queued = || self.lanes.iter().flat_map(|l| l.queue.iter());
        DeliveryCounts {
            cursor: self.cursor,
            durable_id: self.durable,
            queued_records: queued().count(),
            queued_bytes: queued().map(OutboxRecord::payload_len).sum(),
            in_flight: self.in_flight(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uplink::outbox::{MemoryOutbox, Outbox};
    use proptest::prelude::*;
    use std::time::Duration;

    fn rec(kind: RecordKind) -> OutboxRecord {
        OutboxRecord {
            id: 0,
            ts_ms: 0,
            kind,
            device: Some("d".into()),
            session_id: None,
            seq: None,
            json: Some("{}".into()),
            raw: None,
        }
    }

    fn lanes(raw_rate: Option<f64>) -> Vec<LaneSpec> {
        vec![
            LaneSpec {
                name: "results",
                kinds: vec![RecordKind::Swing, RecordKind::Summary, RecordKind::Event],
                rate: None,
                burst: 1,
                max_in_flight: 8,
            },
            LaneSpec {
                name: "raw",
                kinds: vec![RecordKind::Batch],
                rate: raw_rate,
                burst: 2,
                max_in_flight: 4,
            },
        ]
    }

    /// Does every read the core asks for against a real in-memory log.
    fn pump_reads(d: &mut Delivery, outbox: &MemoryOutbox) {
        while let Some(req) = d.poll_read() {
            let durable = outbox.durable_id();
            let got = outbox
                .read_after(req.after, req.max, Some(&req.kinds))
                .unwrap();
            d.handle_read(&req, got, durable);
        }
        d.poll_cursor();
    }

    fn drain_sends(d: &mut Delivery, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| d.poll_send(now).map(|r| r.id)).collect()
    }

    #[test]
    fn results_overtake_a_paced_raw_backlog() {
        let outbox = MemoryOutbox::new();
        for _ in 0..20 {
            outbox.append(rec(RecordKind::Batch));
        }
        let swing = outbox.append(rec(RecordKind::Swing));
        let now = Instant::now();
        let mut d = Delivery::new(lanes(Some(10.0)), 0, 16, 64, now);
        d.handle_connected();
        d.handle_durable(outbox.durable_id());
        pump_reads(&mut d, &outbox);
        let sent = drain_sends(&mut d, now);
        // The swing goes first; the raw lane gets its burst of two.
        assert_eq!(sent, vec![swing, 1, 2]);
        let later = d.next_wakeup(now).unwrap();
        assert_eq!(later - now, Duration::from_millis(100));
    }

    #[test]
    fn reconnect_resends_only_unacknowledged_ids_in_order() {
        let outbox = MemoryOutbox::new();
        for _ in 0..6 {
            outbox.append(rec(RecordKind::Swing));
        }
        let now = Instant::now();
        let mut d = Delivery::new(lanes(None), 0, 16, 64, now);
        d.handle_connected();
        d.handle_durable(outbox.durable_id());
        pump_reads(&mut d, &outbox);
        assert_eq!(drain_sends(&mut d, now), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(d.handle_ack(1), Some(1));
        assert_eq!(d.handle_ack(3), None);
        d.handle_disconnected();
        d.handle_connected();
        pump_reads(&mut d, &outbox);
        assert_eq!(drain_sends(&mut d, now), vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn kinds_a_sink_does_not_carry_do_not_hold_the_cursor() {
        let outbox = MemoryOutbox::new();
        outbox.append(rec(RecordKind::Batch));
        let s = outbox.append(rec(RecordKind::Swing));
        let now = Instant::now();
        let results_only = vec![lanes(None).remove(0)];
        let mut d = Delivery::new(results_only, 0, 16, 64, now);
        d.handle_connected();
        d.handle_durable(outbox.durable_id());
        pump_reads(&mut d, &outbox);
        assert_eq!(drain_sends(&mut d, now), vec![s]);
        assert_eq!(d.handle_ack(s), Some(2));
        // Trailing records the sink does not carry move the cursor without any ack.
        let b = outbox.append(rec(RecordKind::Batch));
        d.handle_durable(outbox.durable_id());
        pump_reads(&mut d, &outbox);
        assert_eq!(d.cursor(), b);
    }

    #[test]
    fn the_window_bounds_what_is_in_flight() {
        let outbox = MemoryOutbox::new();
        for _ in 0..50 {
            outbox.append(rec(RecordKind::Swing));
        }
        let now = Instant::now();
        let mut d = Delivery::new(lanes(None), 0, 5, 64, now);
        d.handle_connected();
        d.handle_durable(outbox.durable_id());
        pump_reads(&mut d, &outbox);
        assert_eq!(drain_sends(&mut d, now).len(), 5);
        d.handle_ack(1);
        assert_eq!(drain_sends(&mut d, now), vec![6]);
    }

    proptest! {
        /// Whatever the kinds, the acks' order, the disconnects: the cursor never passes an id
        /// that was not acknowledged, and once everything is acked it reaches the end.
        #[test]
        fn the_cursor_never_passes_an_unacknowledged_id(
            kinds in proptest::collection::vec(0u8..2, 1..60),
            ops in proptest::collection::vec((0usize..64, any::<bool>()), 0..200),
        ) {
            let outbox = MemoryOutbox::new();
            for k in &kinds {
                outbox.append(rec(if *k == 0 { RecordKind::Swing } else { RecordKind::Batch }));
            }
            let now = Instant::now();
            let mut d = Delivery::new(lanes(None), 0, 6, 7, now);
            d.handle_connected();
            d.handle_durable(outbox.durable_id());
            let mut acked = std::collections::BTreeSet::new();
            let mut in_flight: Vec<u64> = Vec::new();
            for (pick, drop_link) in ops {
                pump_reads(&mut d, &outbox);
                in_flight.extend(drain_sends(&mut d, now));
                if drop_link && pick % 7 == 0 {
                    d.handle_disconnected();
                    d.handle_connected();
                    in_flight.clear();
                    continue;
                }
                if !in_flight.is_empty() {
                    let id = in_flight.remove(pick % in_flight.len());
                    acked.insert(id);
                    d.handle_ack(id);
                }
                let cursor = d.cursor();
                prop_assert!((1..=cursor).all(|id| acked.contains(&id)),
                    "cursor {} passed an unacked id; acked {:?}", cursor, acked);
            }
            // Now ack everything that is sent, until the end.
            for _ in 0..1000 {
                pump_reads(&mut d, &outbox);
                let sent = drain_sends(&mut d, now);
                in_flight.extend(sent);
                if in_flight.is_empty() { break; }
                for id in in_flight.drain(..) { d.handle_ack(id); }
            }
            prop_assert_eq!(d.cursor(), outbox.durable_id());
        }
    }
}
