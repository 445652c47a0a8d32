//! The writer thread: the group-commit loop between the async front and the [`Store`].
//!
//! A dedicated std thread, so fsync never runs on the reactor. It blocks for the first command,
//! collects more for up to `commit_interval` (or until [`MAX_GROUP`] appends or
//! [`MAX_GROUP_BYTES`] of bodies are waiting), hands the group to [`Store::commit`] (one write,
//! one fsync), then answers every waiter. Each waiter holds a semaphore permit until answered,
//! which bounds the appends in flight.
//!
//! While a failed roll or write is retried (`store/failure.rs`), the thread wakes for each retry
//! even with nothing to write, and tells the daemon how the journal is ([`JournalHealth`]). A
//! device's batch is refused at once (the device keeps it and sends it again); the gateway's own
//! records — court events, swings, summaries, which no one else holds a copy of — wait here, in
//! order and ahead of later ones, until the journal writes again or stops (bounded: each keeps
//! its in-flight permit).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedSemaphorePermit, oneshot, watch};

use super::error::{AppendError, JournalError};
use super::store::{Appended, Incoming, JournalHealth, Store};
use shuttlegate_core::journal::record::RecordKind;

/// At most this many appends share one commit.
pub const MAX_GROUP: usize = 4096;
/// A group is committed early once its bodies reach this size.
pub const MAX_GROUP_BYTES: usize = 4 << 20;

/// What the front sends the writer.
pub(crate) enum Command {
    Append {
        incoming: Incoming,
        reply: oneshot::Sender<Result<Appended, AppendError>>,
        /// Released when the append is answered (bounds appends in flight).
        permit: OwnedSemaphorePermit,
        /// When the caller sent it: the commit window runs from the oldest waiting append, so
        /// appends that queued during the previous fsync do not wait a second window.
        sent_at: Instant,
    },
    /// A consumer acked: persist cursors and release segments; answer `done` afterwards.
    Cursors { done: Option<oneshot::Sender<()>> },
    Close {
        reply: oneshot::Sender<Result<(), JournalError>>,
    },
}

/// Space pressure, published for the daemon (log, metric, admin-view event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalPressure {
    /// The last append found the journal at its cap.
    pub full: bool,
    pub refused_appends: u64,
    pub dropped_records: u64,
}

/// Channels the writer publishes on.
pub(crate) struct Outputs {
    pub durable: watch::Sender<u64>,
    pub pressure: watch::Sender<JournalPressure>,
    pub cursors_pending: Arc<AtomicBool>,
    /// Shared with the thread's panic guard, which reports a panic on it.
    pub health: Arc<watch::Sender<JournalHealth>>,
}

/// An append waiting for its answer.
struct Waiter {
    reply: oneshot::Sender<Result<Appended, AppendError>>,
    permit: OwnedSemaphorePermit,
    /// A copy of the record when it is the gateway's own (not a device batch): it is held and
    /// written later if the journal cannot write it now.
    retained: Option<Incoming>,
}

/// The gateway's own records waiting for the journal to write again, oldest first.
type Held = VecDeque<(Incoming, Waiter)>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs until a `Close` arrives or every sender is gone.
pub(crate) fn run(mut store: Store, rx: Receiver<Command>, interval: Duration, out: Outputs) {
    let mut held = Held::new();
    loop {
        let first = match store.retry_at() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let group = match first {
            Ok(first) => collect(first, &rx, interval),
            // Time for a retry: nothing new, but the held records may go now.
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => {
                answer_held(&mut held, &store);
                let _ = store.close();
                return;
            }
        };
        if let Some(reply) = handle(&mut store, group, &mut held, &out) {
            let _ = reply.send(store.close());
            return;
        }
    }
}

/// Gathers the commands of one commit window.
fn collect(first: Command, rx: &Receiver<Command>, interval: Duration) -> Vec<Command> {
    let (wait, deadline) = match &first {
        Command::Append { sent_at, .. } => (true, *sent_at + interval),
        _ => (false, Instant::now()),
    };
    let mut bytes = body_len(&first);
    let mut group = vec![first];
    while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
        let next = if wait {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.try_recv() {
                Ok(c) => c,
                Err(_) => break,
            }
        };
        let closing = matches!(next, Command::Close { .. });
        bytes += body_len(&next);
        group.push(next);
        if closing {
            break;
        }
    }
    group
}

fn body_len(c: &Command) -> usize {
    match c {
        Command::Append { incoming, .. } => incoming.body.bytes.len(),
        _ => 0,
    }
}

/// Commits a group (after the held records) and answers it; returns the close reply if the
/// group asked to close.
fn handle(
    store: &mut Store,
    group: Vec<Command>,
    held: &mut Held,
    out: &Outputs,
) -> Option<oneshot::Sender<Result<(), JournalError>>> {
    let mut appends: Vec<(Incoming, Waiter)> = held.drain(..).collect();
    let mut cursors = false;
    let mut cursor_waiters = Vec::new();
    let mut close = None;
    for c in group {
        match c {
            Command::Append {
                incoming,
                reply,
                permit,
                ..
            } => {
                let retained = (incoming.kind != RecordKind::Batch).then(|| incoming.clone());
                let waiter = Waiter {
                    reply,
                    permit,
                    retained,
                };
                appends.push((incoming, waiter));
            }
            Command::Cursors { done } => {
                cursors = true;
                cursor_waiters.extend(done);
            }
            Command::Close { reply } => close = Some(reply),
        }
    }
    store.ready(Instant::now(), now_ms());
    if !appends.is_empty() {
        commit(store, appends, held, close.is_none());
        out.durable.send_replace(store.shared().durable_id());
    }
    if cursors || out.cursors_pending.load(Ordering::Acquire) {
        out.cursors_pending.store(false, Ordering::Release);
        store.persist_cursors_and_release();
    }
    for w in cursor_waiters {
        let _ = w.send(());
    }
    publish_pressure(store, out);
    let health = store.health();
    out.health.send_if_modified(|h| {
        let changed = *h != health;
        *h = health;
        changed
    });
    close
}

/// Commits the appends and answers them, except the gateway's own records the journal could not
/// write for now: those go back to `held` (unless the journal is closing).
fn commit(store: &mut Store, appends: Vec<(Incoming, Waiter)>, held: &mut Held, may_hold: bool) {
    let (incoming, waiters): (Vec<Incoming>, Vec<Waiter>) = appends.into_iter().unzip();
    let results = store.commit(incoming, now_ms(), Instant::now());
    for (waiter, result) in waiters.into_iter().zip(results) {
        if may_hold
            && matches!(result, Err(AppendError::Unavailable(_)))
            && let Some(record) = waiter.retained.clone()
        {
            held.push_back((record, waiter));
            continue;
        }
        let _ = waiter.reply.send(result);
        drop(waiter.permit);
    }
}

/// The writer is ending with records still held: they are answered with why.
fn answer_held(held: &mut Held, store: &Store) {
    let why = store.refusal().unwrap_or(AppendError::Closed);
    for (_, waiter) in held.drain(..) {
        let _ = waiter.reply.send(Err(why.clone()));
    }
}

fn publish_pressure(store: &mut Store, out: &Outputs) {
    let c = &store.shared().counters;
    let now = JournalPressure {
        full: c.full.load(Ordering::Relaxed),
        refused_appends: c.refused.load(Ordering::Relaxed),
        dropped_records: c.dropped_records.load(Ordering::Relaxed),
    };
    let changed = out.pressure.send_if_modified(|p| {
        let changed = *p != now;
        *p = now;
        changed
    });
    if changed {
        store.persist_pressure(false);
    }
}
