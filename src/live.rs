//! Bounded fan-out of live results (swings, summaries, device status) to whoever is watching:
//! phones, the admin view, the dashboard.
//!
//! A `tokio::sync::broadcast` channel: publishing never waits, and a subscriber that falls more
//! than `capacity` messages behind loses the oldest ones and is told how many (`Lagged`). That is
//! the right trade for live views: the journal, not this channel, is what the cloud reads, so a
//! slow screen can miss a swing on screen but the record is never lost.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::broadcast;

/// What a live view may show. The JSON is rendered once and shared by every subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A swing message (SPEC §3), with its journal id filled in.
    Swing {
        device: String,
        json: Arc<str>,
        /// When the gateway received the batch that completed the swing (none for swings of
        /// a session resumed after a restart): the clients' endpoints time each push from it
        /// (`swing_push_latency_*` on `/metrics`).
        received: Option<Instant>,
    },
    /// A session summary (`analysis_complete_notification`).
    Summary { device: String, json: Arc<str> },
    /// A rally event of the court, rendered as the phones' `rally_update` (not journaled).
    Rally { json: Arc<str> },
    /// A device came online or went offline.
    DeviceStatus { device: String, online: bool },
}

/// The publishing side; clone it freely.
#[derive(Debug, Clone)]
pub struct Live {
    tx: broadcast::Sender<LiveEvent>,
}

impl Live {
    pub fn new(capacity: usize) -> Live {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Live { tx }
    }

    /// Publishes to current subscribers; with none, the event is simply not shown anywhere.
    pub fn publish(&self, event: LiveEvent) {
        let _no_subscriber_is_fine = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_subscriber_loses_the_oldest_events_and_is_told_how_many() {
        let live = Live::new(2);
        let mut rx = live.subscribe();
        for online in [true, false, true] {
            live.publish(LiveEvent::DeviceStatus {
                device: "d".into(),
                online,
            });
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        ));
        assert!(matches!(
            rx.recv().await,
            Ok(LiveEvent::DeviceStatus { online: false, .. })
        ));
    }
}
