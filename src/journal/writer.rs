//! The writer thread: the group-commit loop between the async front and the [`Store`].
//!
//! A dedicated std thread, so fsync never runs on the reactor. It blocks for the first command,
//! collects more for up to `commit_interval` (or until [`MAX_GROUP`] appends or
//! [`MAX_GROUP_BYTES`] of bodies are waiting), hands the group to [`Store::commit`] (one write,
//! one fsync), then answers every waiter. Each waiter holds a semaphore permit until answered,
//! which bounds the appends in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedSemaphorePermit, oneshot, watch};

use super::error::{AppendError, JournalError};
use super::store::{Appended, Incoming, Store};

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
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs until a `Close` arrives or every sender is gone.
pub(crate) fn run(mut store: Store, rx: Receiver<Command>, interval: Duration, out: Outputs) {
    loop {
        let Ok(first) = rx.recv() else {
            let _ = store.close();
            return;
        };
        let group = collect(first, &rx, interval);
        if let Some(reply) = handle(&mut store, group, &out) {
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

/// Commits a group and answers it; returns the close reply if the group asked to close.
fn handle(
    store: &mut Store,
    group: Vec<Command>,
    out: &Outputs,
) -> Option<oneshot::Sender<Result<(), JournalError>>> {
    let mut incoming = Vec::with_capacity(group.len());
    let mut waiters = Vec::with_capacity(group.len());
    let mut cursors = false;
    let mut cursor_waiters = Vec::new();
    let mut close = None;
    for c in group {
        match c {
            Command::Append {
                incoming: i,
                reply,
                permit,
                ..
            } => {
                incoming.push(i);
                waiters.push((reply, permit));
            }
            Command::Cursors { done } => {
                cursors = true;
                cursor_waiters.extend(done);
            }
            Command::Close { reply } => close = Some(reply),
        }
    }
    if !incoming.is_empty() {
        let results = store.commit(incoming, now_ms());
        out.durable.send_replace(store.shared().durable_id());
        for ((reply, permit), r) in waiters.into_iter().zip(results) {
            let _ = reply.send(r);
            drop(permit);
        }
    }
    if cursors || out.cursors_pending.load(Ordering::Acquire) {
        out.cursors_pending.store(false, Ordering::Release);
        store.persist_cursors_and_release();
    }
    for w in cursor_waiters {
        let _ = w.send(());
    }
    publish_pressure(store, out);
    close
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
