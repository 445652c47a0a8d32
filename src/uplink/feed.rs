//! The journal side of a sink driver: reads and cursor writes run on the blocking pool (the
//! journal does file IO), one cursor write at a time, and a failed read is retried after a
//! pause rather than in a loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::delivery::{Delivery, LaneSpec, ReadRequest};
use super::outbox::{Outbox, OutboxError, OutboxRecord};
use super::status::SinkSnapshot;

/// How long a lane waits after a failed journal read.
const READ_RETRY: Duration = Duration::from_secs(1);

/// A finished piece of journal work.
pub(crate) enum Job {
    Read(ReadRequest, Result<Vec<OutboxRecord>, OutboxError>, u64),
    RetryRead(ReadRequest),
    Saved(u64, Result<(), OutboxError>),
}

/// What every sink starts from: delivery from its saved cursor, its feed, the journal's durable
/// watermark, and its status snapshot (published on `snapshot_tx`, read from `snapshot`).
pub(crate) struct SinkStart<O: Outbox> {
    pub(crate) delivery: Delivery,
    pub(crate) feed: Feed<O>,
    pub(crate) durable_rx: watch::Receiver<u64>,
    pub(crate) stats: SinkSnapshot,
    pub(crate) snapshot_tx: watch::Sender<SinkSnapshot>,
    pub(crate) snapshot: watch::Receiver<SinkSnapshot>,
}

impl<O: Outbox> SinkStart<O> {
    /// Sink `sink` reading as `consumer`: `window` records unacknowledged at once, `read_batch`
    /// per journal read.
    pub(crate) fn new(
        sink: &'static str,
        outbox: &Arc<O>,
        consumer: &str,
        lanes: Vec<LaneSpec>,
        window: usize,
        read_batch: usize,
    ) -> Self {
        let cursor = outbox.cursor(consumer);
        let delivery = Delivery::new(lanes, cursor, window, read_batch, Instant::now());
        let stats = SinkSnapshot {
            sink,
            cursor,
            saved_cursor: cursor,
            ..SinkSnapshot::default()
        };
        let (snapshot_tx, snapshot) = watch::channel(stats.clone());
        SinkStart {
            delivery,
            feed: Feed::new(Arc::clone(outbox), consumer.to_owned()),
            durable_rx: outbox.subscribe(),
            stats,
            snapshot_tx,
            snapshot,
        }
    }
}

/// Journal reads and cursor writes of one sink.
pub(crate) struct Feed<O: Outbox> {
    outbox: Arc<O>,
    consumer: String,
    /// Outstanding work; `join_next` is cancel-safe, so drivers select on it.
    pub(crate) jobs: JoinSet<Job>,
    /// The cursor being written, if a write is outstanding.
    saving: Option<u64>,
    unsaved: Option<u64>,
}

impl<O: Outbox> Feed<O> {
    pub(crate) fn new(outbox: Arc<O>, consumer: String) -> Self {
        Self {
            outbox,
            consumer,
            jobs: JoinSet::new(),
            saving: None,
            unsaved: None,
        }
    }

    /// Starts every read the delivery core asks for.
    pub(crate) fn issue_reads(&mut self, delivery: &mut Delivery) {
        while let Some(request) = delivery.poll_read() {
            let outbox = Arc::clone(&self.outbox);
            self.jobs.spawn_blocking(move || {
                // Taken before the read: the read then returns everything durable up to it.
                let durable = outbox.durable_id();
                let got = outbox.read_after(request.after, request.max, Some(&request.kinds));
                Job::Read(request, got, durable)
            });
        }
    }

    /// The cursor moved: persist it (coalescing writes while one is outstanding).
    pub(crate) fn cursor_moved(&mut self, cursor: u64) {
        self.unsaved = self.unsaved.max(Some(cursor));
        self.save();
    }

    fn save(&mut self) {
        if self.saving.is_some() {
            return;
        }
        let Some(cursor) = self.unsaved.take() else {
            return;
        };
        self.saving = Some(cursor);
        let (outbox, consumer) = (Arc::clone(&self.outbox), self.consumer.clone());
        self.jobs
            .spawn_blocking(move || Job::Saved(cursor, outbox.ack(&consumer, cursor)));
    }

    pub(crate) fn handle_job(
        &mut self,
        job: Result<Job, JoinError>,
        delivery: &mut Delivery,
        stats: &mut SinkSnapshot,
    ) {
        let mut error = |what: String| {
            log::warn!("uplink {}: {what}", stats.sink);
            stats.errors += 1;
            stats.last_error = Some(what);
        };
        match job {
            Ok(Job::Read(request, Ok(records), durable)) => {
                delivery.handle_read(&request, records, durable);
                if let Some(cursor) = delivery.poll_cursor() {
                    self.cursor_moved(cursor);
                }
            }
            Ok(Job::Read(request, Err(e), _)) => {
                error(format!("journal read failed, retrying in 1 s: {e}"));
                self.jobs.spawn(async move {
                    tokio::time::sleep(READ_RETRY).await;
                    Job::RetryRead(request)
                });
            }
            Ok(Job::RetryRead(request)) => delivery.handle_read_failed(&request),
            Ok(Job::Saved(cursor, Ok(()))) => {
                self.saving = None;
                stats.saved_cursor = stats.saved_cursor.max(cursor);
                self.save();
            }
            Ok(Job::Saved(cursor, Err(e))) => {
                self.saving = None;
                error(format!("saving cursor {cursor} failed: {e}"));
                // Retried with the next cursor move, or at shutdown.
                self.unsaved = self.unsaved.max(Some(cursor));
            }
            // A read or cursor write that panicked (a bug) would leave its request unanswered
            // and the sink stalled while it looks alive: the sink dies of it instead, and the
            // supervisor restarts it at its cursor.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => error(format!("journal task failed: {e}")),
        }
    }

    /// At shutdown: waits for outstanding work and writes the last cursor.
    pub(crate) async fn finish(&mut self, delivery: &mut Delivery, stats: &mut SinkSnapshot) {
        // Pending reads and retries are of no use any more; a cursor write that was aborted
        // before it ran is redone below.
        self.jobs.abort_all();
        while let Some(job) = self.jobs.join_next().await {
            if let Ok(job @ Job::Saved(..)) = job {
                self.handle_job(Ok(job), delivery, stats);
            }
        }
        if let Some(cursor) = self.unsaved.take().max(self.saving.take()) {
            match self.outbox.ack(&self.consumer, cursor) {
                Ok(()) => stats.saved_cursor = stats.saved_cursor.max(cursor),
                Err(e) => log::warn!(
                    "uplink {}: saving cursor {cursor} at shutdown failed: {e}",
                    stats.sink
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::RecordKind;
    use crate::uplink::outbox::MemoryOutbox;

    /// An outbox whose reads panic (a bug in the journal's read path).
    struct PanickingReads(MemoryOutbox);

    impl Outbox for PanickingReads {
        fn read_after(
            &self,
            _: u64,
            _: usize,
            _: Option<&[RecordKind]>,
        ) -> Result<Vec<OutboxRecord>, OutboxError> {
            panic!("read bug");
        }
        fn durable_id(&self) -> u64 {
            1
        }
        fn subscribe(&self) -> watch::Receiver<u64> {
            self.0.subscribe()
        }
        fn cursor(&self, consumer: &str) -> u64 {
            self.0.cursor(consumer)
        }
        fn ack(&self, consumer: &str, id: u64) -> Result<(), OutboxError> {
            self.0.ack(consumer, id)
        }
    }

    /// Issue 12: a panic in a journal read reaches the sink (which then dies and is restarted by
    /// the supervisor) instead of leaving the read unanswered and the sink stalled.
    #[tokio::test]
    async fn a_panicking_journal_read_is_the_sinks_own_panic() {
        let outbox = Arc::new(PanickingReads(MemoryOutbox::new()));
        let lanes = vec![LaneSpec {
            name: "all",
            kinds: vec![RecordKind::Event],
            rate: None,
            burst: 1,
            max_in_flight: 8,
        }];
        let mut start = SinkStart::new("test", &outbox, "hub", lanes, 8, 8);
        start.delivery.handle_durable(1);
        start.feed.issue_reads(&mut start.delivery);
        let job = start
            .feed
            .jobs
            .join_next()
            .await
            .expect("a read was issued");
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            start
                .feed
                .handle_job(job, &mut start.delivery, &mut start.stats)
        }));
        let panic = handled.expect_err("the read's panic goes on");
        assert_eq!(crate::supervise::panic_message(&*panic), "read bug");
    }
}
