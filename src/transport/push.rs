//! The last hop of the live fan-out, shared by phones and screens: each client's own bounded
//! queue, drained into its socket by its own writer task.
//!
//! The connection task fills the queue without waiting for live pushes (a full queue drops the
//! push and counts it) and with waiting for the client's own answers; the writer reports what
//! was dropped with one `lagged` {dropped} notice after the next message it manages to write,
//! and times each swing from the receipt of the batch that completed it to its write
//! (`swing_push_latency_*` on `/metrics`): the end-to-end figure the product promises.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::metrics::{ClientMetrics, Role};

/// A write to a client that takes longer than this ends its connection: it has stopped
/// reading for a minute, and its slot is worth more to another client.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// One message on its way to a client.
#[derive(Debug)]
pub struct Outgoing {
    pub message: Message,
    /// For a live swing: when its completing batch was received (its push is timed).
    pub swing_received: Option<Instant>,
}

impl From<Message> for Outgoing {
    fn from(message: Message) -> Self {
        Outgoing {
            message,
            swing_received: None,
        }
    }
}

/// Who the writer writes for: its role on `/metrics`, and the count of pushes dropped since
/// the last `lagged` notice (the connection task adds, the writer takes).
#[derive(Debug, Clone)]
pub struct Client {
    pub role: Role,
    pub metrics: Arc<ClientMetrics>,
    pub dropped: Arc<AtomicU64>,
}

impl Client {
    /// Queues a live push without waiting: a full queue drops it and counts it.
    pub fn offer(&self, tx: &mpsc::Sender<Outgoing>, push: Outgoing) {
        if tx.try_send(push).is_err() {
            self.lost(1);
        }
    }

    /// `n` pushes this client will not get (its queue was full, or it lagged behind a
    /// broadcast): told to it with the next `lagged`, and counted.
    pub fn lost(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.metrics.lagged(self.role, n);
    }
}

/// Drains the client's queue into its socket; after each message, reports pushes dropped
/// meanwhile with one `lagged` notice. Ends when the queue is closed, after a close frame, or
/// when the client is gone or stopped reading.
pub async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
    client: Client,
) {
    while let Some(out) = rx.recv().await {
        let closing = matches!(out.message, Message::Close(_));
        if !send(&mut sink, out.message).await || closing {
            return;
        }
        if let Some(received) = out.swing_received {
            client.metrics.swing_pushed(client.role, received.elapsed());
        }
        let lost = client.dropped.swap(0, Ordering::Relaxed);
        if lost > 0 && !send(&mut sink, text(&json!({"type": "lagged", "dropped": lost}))).await {
            return;
        }
    }
}

/// Sends one message; false when the client is gone or has not read for [`WRITE_TIMEOUT`].
async fn send(sink: &mut SplitSink<WebSocket, Message>, message: Message) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await,
        Ok(Ok(()))
    )
}

/// A JSON value as a text frame.
pub fn text(value: &Value) -> Message {
    Message::Text(value.to_string().into())
}
