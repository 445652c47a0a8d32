//! The admin console's `system_notification`s: one task feeds the pure
//! [`Conditions`](shuttlegate_core::conditions::Conditions) machine with the court's device
//! changes and a periodic sample of the journal, the uplinks, the supervised tasks, the
//! clock's synchronisation ([`crate::time_sync`]) and the devices' conditions (skewed clocks,
//! stuck nodes: [`crate::device_watch`]), and fans what it raises out to every console.
//!
//! Why one task and one broadcast: each console must see the same notifications without each
//! one sampling the gateway, and a console that stops reading must slow nobody — the
//! `broadcast` channel never waits for a receiver; one that falls [`CAPACITY`] behind loses the
//! oldest and is told how many (the console answers it a `lagged` notice). The conditions still
//! active are kept beside it for a console that connects later.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shuttlegate_core::conditions::{Conditions, Notification, Sample};
use shuttlegate_core::court::CourtEvent;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::court::{CourtChange, CourtHandle};
use crate::device_watch::Watch;
use crate::journal::Journal;
use crate::supervise::Supervisor;
use crate::time_sync::TimeSync;
use crate::uplink::SinkBoard;

/// Notifications buffered per console.
pub const CAPACITY: usize = 256;
/// How often the journal, uplinks, tasks, clock and device conditions are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// The consoles' side: subscribe for what comes, read what is active.
#[derive(Debug, Clone)]
pub struct Notices {
    tx: broadcast::Sender<Arc<str>>,
    active: Arc<Mutex<Vec<Notification>>>,
}

impl Default for Notices {
    fn default() -> Self {
        Notices {
            tx: broadcast::channel(CAPACITY).0,
            active: Arc::default(),
        }
    }
}

impl Notices {
    /// The notifications still active (each as rendered), then the stream of new ones. A
    /// notification raised between the two may come in both.
    pub fn subscribe(&self) -> (Vec<String>, broadcast::Receiver<Arc<str>>) {
        let rx = self.tx.subscribe();
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        (active.iter().map(Notification::to_json).collect(), rx)
    }

    fn publish(&self, raised: Vec<Notification>, conditions: &Conditions) {
        // Refreshed even when nothing is raised: a condition may end silently (the journal
        // back under 75 %).
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = conditions.active();
        for notification in raised {
            log::info!(
                "system notification {:?}: {}",
                notification.kind,
                notification.message
            );
            // No console connected is not an error.
            let _ = self.tx.send(notification.to_json().into());
        }
    }
}

/// What the notices are sampled from.
#[derive(Clone)]
pub struct Watched {
    pub court: CourtHandle,
    pub journal: Journal,
    pub supervisor: Supervisor,
    pub sinks: SinkBoard,
    pub time_sync: TimeSync,
    pub watch: Watch,
}

impl Watched {
    fn sample(&self) -> Sample {
        let stats = self.journal.stats();
        let uplinks = self
            .sinks
            .snapshots()
            .into_iter()
            // A sink that has not tried yet (just started) is neither up nor down.
            .filter(|(_, s)| s.connected || s.connects > 0 || s.errors > 0)
            .map(|(name, s)| (name.to_owned(), s.connected))
            .collect();
        let restarts = self
            .supervisor
            .snapshot()
            .into_iter()
            .map(|task| (task.name, task.restarts))
            .collect();
        Sample {
            journal_bytes: stats.bytes,
            journal_max_bytes: stats.max_bytes,
            journal_full: stats.full,
            uplinks,
            restarts,
            clock_synced: self.time_sync.synchronised(),
            devices: self.watch.conditions(),
        }
    }
}

/// Runs until `stop`: raises notifications as the watched states change. Restartable (a new
/// run starts from what it samples first).
pub async fn run(
    notices: Notices,
    watched: Watched,
    stop: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let mut conditions = Conditions::new();
    let mut changes = watched.court.subscribe();
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Each branch is cancel-safe: `recv` and `tick` lose nothing when another one wins.
        let raised = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = ticks.tick() => conditions.handle_sample(&watched.sample(), watched.court.now()),
            change = changes.recv() => match change {
                Ok(CourtChange::Event(event)) => match &*event {
                    CourtEvent::DeviceStatus { device, online, ts, .. } => {
                        conditions.handle_device(device, *online, *ts)
                    }
                    _ => Vec::new(),
                },
                Ok(CourtChange::Telemetry { .. }) => Vec::new(),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    log::warn!("system notifications: {n} court changes missed; reading the devices' states");
                    resync_devices(&mut conditions, &watched.court).await
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        };
        notices.publish(raised, &conditions);
    }
}

/// After missed changes: each device's state as the court holds it now.
async fn resync_devices(conditions: &mut Conditions, court: &CourtHandle) -> Vec<Notification> {
    let now = court.now();
    let states = court
        .read(|c| {
            c.devices()
                .map(|(code, d)| (code.clone(), d.online))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    states
        .into_iter()
        .flat_map(|(code, online)| conditions.handle_device(&code, online, now))
        .collect()
}
