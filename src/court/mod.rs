//! The court driver: the one owner of the court's state (`shuttlegate_core::court::Court`, the
//! sans-IO state machine of devices, sessions and command queues).
//!
//! Everything that changes the court — device messages (`crate::ingest`), operators
//! (`transport::admin`), cloud commands, the analysis finishing a session
//! (`crate::pipeline`), the periodic snapshot — sends a request through a [`CourtHandle`]. One
//! task, the driver, applies the requests in the order they arrive, and hands every event they
//! produce to the journal in that same order, waiting for a journal place when the journal is
//! that far behind (backpressure, never a dropped event). The requester then awaits the events'
//! fsync: a change is reported done only once it would survive a restart, and a failed append
//! reaches it as an error. Commands are pushed to connected devices only after that.
//!
//! The driver also publishes every change on a broadcast stream ([`CourtHandle::subscribe`]):
//! journaled events (sessions, commands queued and done, online/offline) and heartbeat telemetry,
//! for phones, the admin console and dashboards.
//!
//! Shutdown: the driver outlives the connections and the analysis (they still report to it while
//! they drain); [`CourtDriver::stop`] then applies what is queued and ends it, before the journal
//! closes. `restore.rs` reads the court back from the journal at start.

pub mod restore;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::try_join_all;
use shuttlegate_core::court::{Court, CourtError, CourtEvent, Outcome, PendingCommand, Telemetry};
use shuttlegate_core::protocol::FrameClock;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::journal::{AppendError, Appended, Document, Journal, RecordBody};
use crate::live::{Live, LiveEvent};
use crate::transport::connections::{ConnHandle, Connections, send_on};

/// Requests waiting for the driver, at most this many; a device message that finds the queue
/// full is answered "busy" (and resent), an operator's or the analysis' request waits for room.
const REQUEST_QUEUE: usize = 8192;
/// Changes buffered per subscriber; a subscriber that falls further behind skips (and is told
/// how many it missed by `broadcast`'s `Lagged`).
const CHANGE_BUFFER: usize = 1024;

/// Wall-clock time, unix ms. A seam so tests can pass their own; the daemon uses the system's.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    })
}

/// A change the court made, as its subscribers see it.
#[derive(Debug, Clone)]
pub enum CourtChange {
    /// A journaled state change: a session's state, a command queued or done (its `command_id`
    /// is what [`CourtHandle::command`] returned to whoever sent it), a device online/offline.
    Event(Arc<CourtEvent>),
    /// A heartbeat's telemetry (not journaled: it is only ever the latest).
    Telemetry {
        device: String,
        telemetry: Arc<Telemetry>,
    },
}

/// Why a request to the court did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The court refused it (unknown device, no open session, …): tell the requester why.
    #[error(transparent)]
    Refused(#[from] CourtError),
    /// The change was made in memory but its event is not durable: report the failure; the
    /// state after a restart will not have it.
    #[error("the court's change was not journaled: {0}")]
    NotJournaled(#[from] AppendError),
    /// Too many requests are waiting for the driver: send it again later.
    #[error("the gateway is busy: too many court changes waiting; send it again later")]
    Busy,
    /// The driver has stopped (shutdown).
    #[error("the court is shutting down")]
    Stopped,
}

/// What a request does to the court: runs on the driver, given the court and the time.
type Op<T> = Box<dyn FnOnce(&mut Court, i64) -> Result<(Outcome, T), CourtError> + Send>;

/// Where a request's answer comes back: its value and what the driver did, or the refusal.
type Answer<T> = oneshot::Receiver<Result<(T, Applied), CourtError>>;

/// A request as the driver holds it: typed value and reply channel erased.
type Job = Box<dyn FnOnce(&mut Court, i64) -> Step + Send>;

/// What the driver does after running a job: journal the outcome's events, then reply.
struct Step {
    outcome: Outcome,
    reply: Box<dyn FnOnce(Applied) + Send>,
}

/// The journal's answers for one request's events, in order.
type Commit = Vec<Pin<Box<dyn Future<Output = Result<Appended, AppendError>> + Send>>>;

/// A request the driver has applied: its events are handed to the journal.
struct Applied {
    commit: Commit,
    pushes: Vec<(String, PendingCommand)>,
}

/// Where pushed commands go.
#[derive(Clone)]
struct Pusher {
    connections: Arc<Connections>,
    frames: FrameClock,
}

impl Pusher {
    fn text(&self, device: &str, pending: &PendingCommand) -> String {
        let timestamp = self.frames.iso(pending.queued_ms);
        pending
            .command
            .to_push(device, &pending.command_id.to_string(), timestamp)
            .to_json()
    }

    fn push(&self, pushes: Vec<(String, PendingCommand)>, to: Option<&ConnHandle>) {
        for (device, pending) in pushes {
            let text = self.text(&device, &pending);
            match to {
                Some(handle) => {
                    send_on(handle, text);
                }
                None => {
                    self.connections.send(&device, text);
                }
            }
        }
    }
}

/// Everyone else's way to the court. Cheap to clone.
#[derive(Clone)]
pub struct CourtHandle {
    jobs: mpsc::Sender<Job>,
    changes: broadcast::Sender<CourtChange>,
    clock: Clock,
    pusher: Pusher,
}

/// The running driver, for shutdown.
pub struct CourtDriver {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl CourtDriver {
    /// Applies every request already queued, then ends the driver (later requests get
    /// [`RequestError::Stopped`]). Call once connections and the analysis have drained, before
    /// the journal closes.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            log::error!("court driver: {e}; court changes queued at shutdown may be lost");
        }
    }
}

/// Starts the driver over `court` (restored from the journal) and returns its handle.
pub fn spawn(
    court: Court,
    journal: Journal,
    connections: Arc<Connections>,
    frames: FrameClock,
    clock: Clock,
    live: Live,
) -> (CourtHandle, CourtDriver) {
    let (jobs, rx) = mpsc::channel(REQUEST_QUEUE);
    let (changes, _) = broadcast::channel(CHANGE_BUFFER);
    let stop = CancellationToken::new();
    let driver = Driver {
        court,
        journal,
        changes: changes.clone(),
        live,
        clock: clock.clone(),
    };
    let task = tokio::spawn(driver.run(rx, stop.clone()));
    let handle = CourtHandle {
        jobs,
        changes,
        clock,
        pusher: Pusher {
            connections,
            frames,
        },
    };
    (handle, CourtDriver { stop, task })
}

impl CourtHandle {
    /// Wall-clock now, unix ms (the clock the court runs on).
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The court's changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CourtChange> {
        self.changes.subscribe()
    }

    /// Whether the device has a connection now.
    pub fn is_connected(&self, device: &str) -> bool {
        self.pusher.connections.is_connected(device)
    }

    /// Applies `op`, waiting for room in the driver's queue; resolves once its events are
    /// durable and its pushes sent.
    pub async fn request<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Court, i64) -> Result<(Outcome, T), CourtError> + Send + 'static,
    ) -> Result<T, RequestError> {
        let (job, reply) = job(Box::new(op));
        self.jobs
            .send(job)
            .await
            .map_err(|_| RequestError::Stopped)?;
        self.finish(reply, None).await
    }

    /// Queues `op` now, in the caller's order (a connection's messages are applied in the order
    /// they arrived), or refuses with [`RequestError::Busy`] when the queue is full. The future
    /// resolves like [`CourtHandle::request`]'s; pushes go to `to` when given (a device that just
    /// connected gets its pending commands on this connection, after the welcome).
    pub fn try_request<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Court, i64) -> Result<(Outcome, T), CourtError> + Send + 'static,
        to: Option<ConnHandle>,
    ) -> Result<impl Future<Output = Result<T, RequestError>> + Send + 'static, RequestError> {
        let (job, reply) = job(Box::new(op));
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => RequestError::Busy,
            mpsc::error::TrySendError::Closed(_) => RequestError::Stopped,
        })?;
        let this = self.clone();
        Ok(async move { this.finish(reply, to.as_ref()).await })
    }

    /// Reads the court (after every request queued before this one).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Court) -> T + Send + 'static,
    ) -> Result<T, RequestError> {
        self.request(move |court, _| Ok((Outcome::default(), f(court))))
            .await
    }

    /// Publishes a heartbeat's telemetry to subscribers (the court keeps it via its own request).
    pub fn telemetry(&self, device: &str, telemetry: Telemetry) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.changes.send(CourtChange::Telemetry {
            device: device.to_owned(),
            telemetry: Arc::new(telemetry),
        });
    }

    /// Starts a session on `device` (admin console, phone, cloud, tooling); resolves with its id
    /// once the change is durable and `start_collection` pushed.
    pub async fn start_session(
        &self,
        device: &str,
        session_id: Option<String>,
    ) -> Result<String, RequestError> {
        let device = device.to_owned();
        self.request(move |court, now| {
            let id = session_id.unwrap_or_else(|| format!("{device}-{now}"));
            let outcome = court.start_session(&device, id.clone(), now)?;
            Ok((outcome, id))
        })
        .await
    }

    /// Ends `device`'s open session (`stop_collection` is pushed); resolves with its id.
    pub async fn end_session(&self, device: &str) -> Result<String, RequestError> {
        let device = device.to_owned();
        self.request(move |court, now| {
            let outcome = court.end_session(&device, now)?;
            let session = outcome
                .events
                .iter()
                .find_map(|e| match e {
                    CourtEvent::CommandQueued {
                        command: shuttlegate_core::protocol::DeviceCommand::StopCollection {
                            session_id,
                        },
                        ..
                    } => Some(session_id.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            Ok((outcome, session))
        })
        .await
    }

    /// Queues any command for `device`; resolves with its command id once it is journaled (an
    /// accepted command survives a restart) and pushed if the device is connected.
    pub async fn command(
        &self,
        device: &str,
        command: shuttlegate_core::protocol::DeviceCommand,
    ) -> Result<u64, RequestError> {
        let device = device.to_owned();
        self.request(move |court, now| {
            let outcome = court.enqueue(&device, command, now)?;
            let id = outcome
                .pushes
                .first()
                .map(|(_, p)| p.command_id)
                .unwrap_or(0);
            Ok((outcome, id))
        })
        .await
    }

    /// The analysis has journaled a session's summary: the session is completed.
    pub async fn session_analysed(
        &self,
        device: &str,
        session_id: &str,
    ) -> Result<(), RequestError> {
        let (device, session_id) = (device.to_owned(), session_id.to_owned());
        self.request(move |court, now| Ok((court.analysis_done(&device, &session_id, now), ())))
            .await
    }

    /// Journals the court's open state as a snapshot event, in order with every other change
    /// (so no change made after it can be undone by it on restore).
    pub async fn snapshot(&self) -> Result<(), RequestError> {
        self.request(|court, now| {
            let outcome = Outcome {
                events: vec![court.snapshot(now)],
                pushes: Vec::new(),
            };
            Ok((outcome, ()))
        })
        .await
    }

    /// Waits for the driver's answer, then for the events' fsync; then pushes.
    async fn finish<T>(
        &self,
        reply: Answer<T>,
        to: Option<&ConnHandle>,
    ) -> Result<T, RequestError> {
        let (value, applied) = reply.await.map_err(|_| RequestError::Stopped)??;
        try_join_all(applied.commit).await?;
        self.pusher.push(applied.pushes, to);
        Ok(value)
    }
}

/// Wraps a typed request into a job and the channel its answer comes back on.
fn job<T: Send + 'static>(op: Op<T>) -> (Job, Answer<T>) {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |court, now| match op(court, now) {
        Ok((outcome, value)) => Step {
            outcome,
            reply: Box::new(move |applied| {
                // A requester that stopped waiting (its connection closed) does not need it.
                let _ = tx.send(Ok((value, applied)));
            }),
        },
        Err(e) => {
            let _ = tx.send(Err(e));
            Step {
                outcome: Outcome::default(),
                reply: Box::new(|_| {}),
            }
        }
    });
    (job, rx)
}

/// The task that owns the court.
struct Driver {
    court: Court,
    journal: Journal,
    changes: broadcast::Sender<CourtChange>,
    live: Live,
    clock: Clock,
}

impl Driver {
    /// Applies requests in arrival order until stopped (then what is queued) or every handle is
    /// gone.
    async fn run(mut self, mut jobs: mpsc::Receiver<Job>, stop: CancellationToken) {
        loop {
            let job = tokio::select! {
                // Requests first: a stop drains what is queued rather than racing it.
                biased;
                job = jobs.recv() => job,
                _ = stop.cancelled() => jobs.try_recv().ok(),
            };
            let Some(job) = job else { break };
            self.apply(job).await;
        }
    }

    async fn apply(&mut self, job: Job) {
        let now = (self.clock)();
        let Step { outcome, reply } = job(&mut self.court, now);
        let mut commit: Commit = Vec::with_capacity(outcome.events.len());
        for event in outcome.events {
            // In order, one at a time: waits for a journal place when the journal is that far
            // behind, so court events are never dropped (the queue before the driver fills and
            // device messages are answered "busy" instead).
            match self.journal.enqueue(event_record(&event)).await {
                Ok(durable) => commit.push(Box::pin(durable)),
                Err(e) => {
                    log::error!("journaling court event {event:?}: {e}");
                    commit.push(Box::pin(std::future::ready(Err(e))));
                }
            }
            self.publish(event);
        }
        reply(Applied {
            commit,
            pushes: outcome.pushes,
        });
    }

    fn publish(&self, event: CourtEvent) {
        if let CourtEvent::DeviceStatus { device, online, .. } = &event {
            self.live.publish(LiveEvent::DeviceStatus {
                device: device.clone(),
                online: *online,
            });
        }
        // No subscriber is not an error.
        let _ = self.changes.send(CourtChange::Event(Arc::new(event)));
    }
}

/// A court event as a journal record.
pub fn event_record(event: &CourtEvent) -> RecordBody {
    RecordBody::Event(Document {
        device: event.device().map(str::to_owned),
        session_id: event.session_id().map(str::to_owned),
        // Serialising a plain enum of strings and numbers cannot fail.
        json: serde_json::to_string(event).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use shuttlegate_core::court::{CourtOptions, SessionState};
    use shuttlegate_core::protocol::DeviceCommand;

    use super::*;
    use crate::journal::{JournalOptions, RecordKind, WhenFull};

    struct Fixture {
        _dir: tempfile::TempDir,
        journal: Journal,
        court: CourtHandle,
        driver: CourtDriver,
    }

    fn fixture(options: impl FnOnce(&mut JournalOptions)) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = JournalOptions::new(dir.path().join("journal"));
        options(&mut opts);
        let (journal, _) = Journal::open(opts).unwrap();
        let court = Court::new(["d1".to_owned(), "d2".to_owned()], CourtOptions::default());
        let clock: Clock = Arc::new(|| 1_000);
        let (court, driver) = spawn(
            court,
            journal.clone(),
            Arc::new(Connections::default()),
            FrameClock::new(chrono_tz::Asia::Shanghai),
            clock,
            Live::new(16),
        );
        Fixture {
            _dir: dir,
            journal,
            court,
            driver,
        }
    }

    /// The court events in the journal, in id order.
    fn journaled(journal: &Journal) -> Vec<CourtEvent> {
        journal
            .read_range(0, u64::MAX, 1000, Some(&[RecordKind::Event]))
            .unwrap()
            .iter()
            .map(|r| match r.decode().unwrap().body {
                RecordBody::Event(doc) => serde_json::from_str(&doc.json).unwrap(),
                other => panic!("not an event: {other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn an_accepted_request_is_journaled_before_it_resolves_and_in_request_order() {
        let f = fixture(|_| {});
        let mut changes = f.court.subscribe();
        let id = f
            .court
            .start_session("d1", Some("s1".into()))
            .await
            .unwrap();
        assert_eq!(id, "s1");
        let command = f
            .court
            .command(
                "d2",
                DeviceCommand::parse("sync", &serde_json::Value::Null).unwrap(),
            )
            .await
            .unwrap();
        let events = journaled(&f.journal);
        assert!(
            matches!(&events[0], CourtEvent::SessionState { session_id, state: SessionState::Calibrating, .. } if session_id == "s1"),
            "{events:?}"
        );
        assert!(
            matches!(events.last(), Some(CourtEvent::CommandQueued { device, command_id, .. }) if device == "d2" && *command_id == command),
            "{events:?}"
        );
        // Subscribers saw the same changes, in the same order.
        let mut seen = Vec::new();
        while let Ok(CourtChange::Event(event)) = changes.try_recv() {
            seen.push((*event).clone());
        }
        assert_eq!(seen, events);
        f.driver.stop().await;
    }

    #[tokio::test]
    async fn a_refused_request_journals_nothing_and_says_why() {
        let f = fixture(|_| {});
        let refused = f.court.start_session("nobody", None).await;
        assert!(
            matches!(
                refused,
                Err(RequestError::Refused(CourtError::UnknownDevice(_)))
            ),
            "{refused:?}"
        );
        assert!(journaled(&f.journal).is_empty());
        f.driver.stop().await;
    }

    #[tokio::test]
    async fn a_change_the_journal_refuses_fails_the_request() {
        let f = fixture(|o| {
            o.segment_bytes = 4096;
            o.max_bytes = 8192;
            o.when_full = WhenFull::Refuse;
        });
        // Fill the journal with documents until not even a small one fits.
        let filler = |n: usize| {
            RecordBody::Event(Document {
                device: None,
                session_id: None,
                json: "x".repeat(n),
            })
        };
        let mut size = 1000;
        while size > 0 {
            if f.journal.append(filler(size)).await.is_err() {
                size /= 2;
            }
        }
        let failed = f.court.start_session("d1", Some("s1".into())).await;
        assert!(
            matches!(
                failed,
                Err(RequestError::NotJournaled(AppendError::Full { .. }))
            ),
            "{failed:?}"
        );
        f.driver.stop().await;
    }

    #[tokio::test]
    async fn stopping_the_driver_applies_what_is_queued_then_refuses() {
        let f = fixture(|_| {});
        let queued: Vec<_> = ["d1", "d2"]
            .into_iter()
            .map(|device| {
                let device = device.to_owned();
                f.court
                    .try_request(
                        move |c, now| {
                            Ok((c.start_session(&device, format!("{device}-s"), now)?, ()))
                        },
                        None,
                    )
                    .unwrap()
            })
            .collect();
        f.driver.stop().await;
        for applied in queued {
            applied.await.unwrap();
        }
        assert_eq!(
            journaled(&f.journal).len(),
            4,
            "two sessions and their start commands"
        );
        assert!(matches!(
            f.court.start_session("d1", None).await,
            Err(RequestError::Stopped)
        ));
    }
}
