//! The live device connections: at most one per device, each with a bounded outbound queue.
//!
//! Anything that wants to reach a device (a reply, a pushed command) goes through
//! [`Connections::send`], which never waits: a full queue means the client is not reading, and
//! such a client is disconnected ([`CLOSE_TOO_SLOW`]) rather than allowed to hold memory or
//! block the sender.
//!
//! A second connection of the same device replaces the first, which is closed with
//! [`CLOSE_REPLACED`] — if the first one's [`Takeover`] allows it: a device that proved itself
//! with its token may be replaced by any admitted connection, a tokenless one only by a
//! connection from the same address (the hub rebooted). A tokenless code is otherwise [`Held`]
//! while its holder is alive, so a second hub on the LAN cannot silently push it off.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::auth::Takeover;
use shuttlegate_core::protocol::close::{REPLACED as CLOSE_REPLACED, TOO_SLOW as CLOSE_TOO_SLOW};

/// Why a connection is being closed from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kick {
    pub code: u16,
    pub reason: String,
}

/// The handle others hold on a connection.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: u64,
    /// The address the connection came from.
    pub peer: IpAddr,
    /// Who may take the device's code over from this connection.
    takeover: Takeover,
    tx: mpsc::Sender<String>,
    kicked: CancellationToken,
    kick: std::sync::Arc<Mutex<Option<Kick>>>,
}

/// The connection's own end: where its writer reads, and how it learns it was kicked.
#[derive(Debug)]
pub struct ConnEnd {
    pub rx: mpsc::Receiver<String>,
    pub kicked: CancellationToken,
    kick: std::sync::Arc<Mutex<Option<Kick>>>,
}

impl ConnEnd {
    /// The reason this connection was kicked, once `kicked` has fired.
    pub fn kick(&self) -> Option<Kick> {
        lock(&self.kick).clone()
    }
}

impl ConnHandle {
    fn kick(&self, code: u16, reason: &str) {
        lock(&self.kick).get_or_insert_with(|| Kick {
            code,
            reason: reason.to_owned(),
        });
        self.kicked.cancel();
    }
}

/// A device's code is held by a live connection that a new one may not replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("held by a live connection from {holder}")]
pub struct Held {
    /// The holder's address (for the log).
    pub holder: IpAddr,
}

/// Whether a connection from `peer` may replace `holder`.
fn may_replace(holder: &ConnHandle, peer: IpAddr) -> bool {
    let alive = !holder.kicked.is_cancelled();
    match holder.takeover {
        Takeover::Anyone => true,
        Takeover::SameAddress => !alive || holder.peer.to_canonical() == peer.to_canonical(),
    }
}

/// What became of a message for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    NotConnected,
    /// The queue was full: the connection is being closed as too slow.
    Overflowed,
}

/// Every current device connection.
#[derive(Debug, Default)]
pub struct Connections {
    by_device: Mutex<HashMap<String, ConnHandle>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Connections {
    /// Whether a connection from `peer` could open for `device` now (checked at the handshake,
    /// so a refusal is an HTTP 401 rather than a closed socket; [`Connections::open`] decides).
    pub fn may_open(&self, device: &str, peer: IpAddr) -> Result<(), Held> {
        match lock(&self.by_device).get(device) {
            Some(holder) if !may_replace(holder, peer) => Err(Held {
                holder: holder.peer,
            }),
            _ => Ok(()),
        }
    }

    /// Registers a new connection for `device` from `peer` with an outbound queue of
    /// `capacity` messages, closing (with [`CLOSE_REPLACED`]) the one it replaces — unless that
    /// one holds the code against it ([`Held`]). `takeover` is what the new connection itself
    /// allows.
    pub fn open(
        &self,
        device: &str,
        peer: IpAddr,
        takeover: Takeover,
        capacity: usize,
    ) -> Result<(ConnHandle, ConnEnd), Held> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let kicked = CancellationToken::new();
        let kick = std::sync::Arc::new(Mutex::new(None));
        let handle = ConnHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            takeover,
            tx,
            kicked: kicked.clone(),
            kick: kick.clone(),
        };
        let mut map = lock(&self.by_device);
        if let Some(holder) = map.get(device)
            && !may_replace(holder, peer)
        {
            return Err(Held {
                holder: holder.peer,
            });
        }
        if let Some(old) = map.insert(device.to_owned(), handle.clone()) {
            old.kick(
                CLOSE_REPLACED,
                "replaced by a new connection of the same device",
            );
        }
        Ok((handle, ConnEnd { rx, kicked, kick }))
    }

    /// Forgets the connection `id` of `device` if it is still the current one; returns whether
    /// it was (a replaced connection must not mark the device offline).
    pub fn close(&self, device: &str, id: u64) -> bool {
        let mut map = lock(&self.by_device);
        if map.get(device).is_some_and(|h| h.id == id) {
            map.remove(device);
            true
        } else {
            false
        }
    }

    /// Queues `text` for `device` without waiting.
    pub fn send(&self, device: &str, text: String) -> Delivery {
        let Some(handle) = lock(&self.by_device).get(device).cloned() else {
            return Delivery::NotConnected;
        };
        send_on(&handle, text)
    }

    /// The address `device` is connected from, if it is.
    pub fn peer(&self, device: &str) -> Option<IpAddr> {
        lock(&self.by_device).get(device).map(|h| h.peer)
    }

    pub fn is_connected(&self, device: &str) -> bool {
        lock(&self.by_device).contains_key(device)
    }

    pub fn count(&self) -> usize {
        lock(&self.by_device).len()
    }

    /// Closes every connection (shutdown) with `code` and `reason`.
    pub fn close_all(&self, code: u16, reason: &str) {
        for handle in lock(&self.by_device).values() {
            handle.kick(code, reason);
        }
    }
}

/// Queues `text` on one specific connection (replies go to the connection that asked).
pub fn send_on(handle: &ConnHandle, text: String) -> Delivery {
    match handle.tx.try_send(text) {
        Ok(()) => Delivery::Queued,
        Err(mpsc::error::TrySendError::Full(_)) => {
            handle.kick(CLOSE_TOO_SLOW, "outbound queue full: client not reading");
            Delivery::Overflowed
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Delivery::NotConnected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 23));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 99));

    fn open(conns: &Connections, peer: IpAddr, takeover: Takeover) -> (ConnHandle, ConnEnd) {
        conns.open("d", peer, takeover, 4).expect("opens")
    }

    #[test]
    fn a_second_connection_replaces_the_first_and_kicks_it_with_a_reason() {
        let conns = Connections::default();
        let (first, first_end) = open(&conns, HUB, Takeover::Anyone);
        let (second, _second_end) = open(&conns, OTHER, Takeover::Anyone);
        assert!(first_end.kicked.is_cancelled());
        assert_eq!(first_end.kick().unwrap().code, CLOSE_REPLACED);
        // The replaced connection closing must not unregister the new one.
        assert!(!conns.close("d", first.id));
        assert!(conns.is_connected("d"));
        assert!(conns.close("d", second.id));
        assert!(!conns.is_connected("d"));
    }

    #[test]
    fn a_client_that_does_not_read_overflows_and_is_kicked_as_too_slow() {
        let conns = Connections::default();
        let (_h, end) = conns.open("d", HUB, Takeover::Anyone, 2).expect("opens");
        assert_eq!(conns.send("d", "1".into()), Delivery::Queued);
        assert_eq!(conns.send("d", "2".into()), Delivery::Queued);
        assert_eq!(conns.send("d", "3".into()), Delivery::Overflowed);
        assert_eq!(end.kick().unwrap().code, CLOSE_TOO_SLOW);
    }

    #[test]
    fn a_live_tokenless_holder_is_replaced_only_from_its_own_address() {
        let conns = Connections::default();
        let (first, first_end) = open(&conns, HUB, Takeover::SameAddress);
        assert_eq!(conns.may_open("d", OTHER), Err(Held { holder: HUB }));
        assert!(conns.open("d", OTHER, Takeover::SameAddress, 4).is_err());
        assert!(
            !first_end.kicked.is_cancelled(),
            "the holder keeps its connection"
        );
        // The hub rebooted: the same address takes over.
        let mapped: IpAddr = "::ffff:192.168.1.23".parse().unwrap();
        assert_eq!(conns.may_open("d", mapped), Ok(()));
        let (second, _end) = open(&conns, HUB, Takeover::SameAddress);
        assert_eq!(first_end.kick().unwrap().code, CLOSE_REPLACED);
        assert!(!conns.close("d", first.id));
        assert!(conns.close("d", second.id));
        // Nobody holds it now: any address may open.
        assert_eq!(conns.may_open("d", OTHER), Ok(()));
    }

    #[test]
    fn a_kicked_tokenless_holder_no_longer_holds_its_code() {
        let conns = Connections::default();
        let (_first, first_end) = open(&conns, HUB, Takeover::SameAddress);
        conns.close_all(1001, "going away");
        assert!(first_end.kicked.is_cancelled());
        assert_eq!(conns.may_open("d", OTHER), Ok(()));
    }

    #[test]
    fn sending_to_an_absent_device_says_so() {
        assert_eq!(
            Connections::default().send("x", "m".into()),
            Delivery::NotConnected
        );
    }
}
