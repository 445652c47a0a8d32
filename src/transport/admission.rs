//! Who may hold a connection, and for how long: the pure bookkeeping behind the accept loop
//! ([`super::listener`]), with no sockets and no clock of its own (time is passed in).
//!
//! A court's LAN is shared with players, spectators and their phones, and a Pi runs with a
//! bounded number of file descriptors. One hostile or broken host must not be able to take
//! them all, nor hold them forever:
//!
//! - [`Admission`] counts open connections in total, per address, and those that have not
//!   finished their handshake (no complete first request yet, not yet upgraded). A connection
//!   over any cap is refused at once; one flooding address fills at most its own share.
//! - [`Phase`] says which deadline a connection is under: the handshake timeout until its first
//!   response (the WebSocket's 101), the keep-alive timeout while idle between requests, none
//!   while a request is being answered or once upgraded (the WebSocket has its own idle
//!   timeout).
//! - [`AcceptBackoff`] paces the accept loop after an error such as EMFILE, so a full
//!   descriptor table is never a busy loop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The caps, as configured (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connections open at once, every address and listener together.
    pub total: usize,
    /// Connections open at once from one address (an IPv6 /64 counts as one address).
    pub per_address: usize,
    /// Connections that have not finished their handshake, every address together.
    pub handshaking: usize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `max_connections` connections are open.
    Total,
    /// The address already holds `max_connections_per_address`.
    PerAddress,
    /// `max_handshaking` connections are still in their handshake.
    Handshaking,
}

impl Refusal {
    pub const ALL: [Refusal; 3] = [Refusal::Total, Refusal::PerAddress, Refusal::Handshaking];

    /// The label on `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "total_cap",
            Refusal::PerAddress => "per_address_cap",
            Refusal::Handshaking => "handshake_budget",
        }
    }
}

/// What the caps hold now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    open: usize,
    handshaking: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// The connection caps and what they currently hold. Shared by every listener (plain and TLS)
/// so the caps are one budget.
#[derive(Debug)]
pub struct Admission {
    caps: Caps,
    counts: Mutex<Counts>,
}

/// A connection's place under the caps; released when dropped. It lives with the socket (even
/// past a WebSocket upgrade), so the counts follow the descriptors.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    address: IpAddr,
    handshaking: std::sync::atomic::AtomicBool,
}

impl Admission {
    pub fn new(caps: Caps) -> Arc<Admission> {
        Arc::new(Admission {
            caps,
            counts: Mutex::default(),
        })
    }

    /// Admits a connection from `peer` in its handshake, or says which cap it would exceed.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
        let address = address_key(peer);
        let mut counts = self.lock();
        let from_address = counts.per_address.get(&address).copied().unwrap_or(0);
        if counts.open >= self.caps.total {
            return Err(Refusal::Total);
        }
        if from_address >= self.caps.per_address {
            return Err(Refusal::PerAddress);
        }
        if counts.handshaking >= self.caps.handshaking {
            return Err(Refusal::Handshaking);
        }
        counts.open += 1;
        counts.handshaking += 1;
        counts.per_address.insert(address, from_address + 1);
        Ok(Ticket {
            admission: self.clone(),
            address,
            handshaking: true.into(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Connections in their handshake now.
    pub fn handshaking(&self) -> usize {
        self.lock().handshaking
    }

    /// Addresses holding at least one connection (the map never grows past the open count).
    pub fn addresses(&self) -> usize {
        self.lock().per_address.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts are plain integers updated in one step each: a panic elsewhere while the
        // lock was held cannot have left them half-written.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ticket {
    /// The connection finished its handshake: it leaves the handshake budget (once).
    pub fn handshake_done(&self) {
        use std::sync::atomic::Ordering;
        if self.handshaking.swap(false, Ordering::AcqRel) {
            self.admission.lock().handshaking -= 1;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.handshake_done();
        let mut counts = self.admission.lock();
        counts.open -= 1;
        if let Some(n) = counts.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.per_address.remove(&self.address);
            }
        }
    }
}

/// The address a connection counts against: IPv4 as it is (an IPv4-mapped IPv6 address as the
/// IPv4 one), IPv6 by its /64, since one host on a LAN is given a whole /64 to pick from.
pub fn address_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

/// The timeouts a connection is under (`[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Accept to the first response (a WebSocket's 101), TLS handshake included.
    pub handshake: Duration,
    /// Idle between a response and the next request.
    pub keep_alive: Duration,
}

/// Where a connection is in its life, and so which deadline applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, first response not yet given.
    Handshaking { since: Instant },
    /// A later request is being answered.
    Answering,
    /// Between requests.
    Idle { since: Instant },
    /// Switched protocols (WebSocket): the upgraded socket's own limits apply.
    Upgraded,
}

/// Which timeout closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Handshake,
    KeepAlive,
}

impl Phase {
    /// A connection accepted at `now`.
    pub fn accepted(now: Instant) -> Phase {
        Phase::Handshaking { since: now }
    }

    /// A request's head has arrived.
    pub fn request(self) -> Phase {
        match self {
            Phase::Idle { .. } => Phase::Answering,
            other => other,
        }
    }

    /// A response is ready at `now`; `upgraded` when it switches protocols.
    pub fn responded(self, upgraded: bool, now: Instant) -> Phase {
        match (self, upgraded) {
            (Phase::Upgraded, _) | (_, true) => Phase::Upgraded,
            (_, false) => Phase::Idle { since: now },
        }
    }

    /// True until the first response.
    pub fn is_handshaking(self) -> bool {
        matches!(self, Phase::Handshaking { .. })
    }

    /// When the connection is closed if nothing changes, and which timeout that is.
    pub fn deadline(self, timeouts: Timeouts) -> Option<(Instant, Expiry)> {
        match self {
            Phase::Handshaking { since } => Some((since + timeouts.handshake, Expiry::Handshake)),
            Phase::Idle { since } => Some((since + timeouts.keep_alive, Expiry::KeepAlive)),
            Phase::Answering | Phase::Upgraded => None,
        }
    }
}

/// The wait after a failed accept: 10 ms, doubling to 1 s, back to 10 ms after a success. The
/// failures it is for (EMFILE, ENFILE, ENOBUFS, ENOMEM) clear only when something else closes,
/// so retrying at once would spin on the same error.
#[derive(Debug, Clone, Default)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    pub const FIRST: Duration = Duration::from_millis(10);
    pub const MAX: Duration = Duration::from_secs(1);

    /// One more failure: how long to wait before accepting again.
    pub fn failed(&mut self) -> Duration {
        let wait = AcceptBackoff::FIRST.saturating_mul(1 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        wait.min(AcceptBackoff::MAX)
    }

    /// An accept succeeded.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn caps(total: usize, per_address: usize, handshaking: usize) -> Caps {
        Caps {
            total,
            per_address,
            handshaking,
        }
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn one_address_fills_only_its_own_share_and_another_still_gets_in() {
        let admission = Admission::new(caps(100, 3, 10));
        let flood: Vec<Ticket> = (0..3).map(|_| admission.admit(v4(3)).unwrap()).collect();
        assert_eq!(admission.admit(v4(3)).unwrap_err(), Refusal::PerAddress);
        let device = admission.admit(v4(2)).expect("another address gets in");
        assert_eq!((admission.open(), admission.handshaking()), (4, 4));
        drop(flood);
        drop(device);
        assert_eq!((admission.open(), admission.handshaking()), (0, 0));
        assert_eq!(admission.addresses(), 0);
    }

    #[test]
    fn finished_handshakes_free_the_budget_but_keep_their_place_in_the_total() {
        let admission = Admission::new(caps(3, 10, 1));
        let first = admission.admit(v4(1)).unwrap();
        assert_eq!(admission.admit(v4(2)).unwrap_err(), Refusal::Handshaking);
        first.handshake_done();
        first.handshake_done(); // once only
        let second = admission.admit(v4(2)).unwrap();
        second.handshake_done();
        let _third = admission.admit(v4(3)).unwrap();
        assert_eq!(admission.handshaking(), 1);
        assert_eq!(admission.admit(v4(4)).unwrap_err(), Refusal::Total);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: Ipv6Addr = "fd00:1:2:3:aaaa::1".parse().unwrap();
        let b: Ipv6Addr = "fd00:1:2:3:bbbb::2".parse().unwrap();
        let other: Ipv6Addr = "fd00:1:2:4::1".parse().unwrap();
        assert_eq!(address_key(a.into()), address_key(b.into()));
        assert_ne!(address_key(a.into()), address_key(other.into()));
        let mapped: IpAddr = Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped().into();
        assert_eq!(address_key(mapped), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
    }

    #[test]
    fn the_handshake_deadline_runs_from_accept_and_keep_alive_from_each_response() {
        let t0 = Instant::now();
        let timeouts = Timeouts {
            handshake: Duration::from_secs(10),
            keep_alive: Duration::from_secs(5),
        };
        let phase = Phase::accepted(t0);
        let request = phase.request();
        assert_eq!(
            request.deadline(timeouts),
            Some((t0 + timeouts.handshake, Expiry::Handshake)),
            "the first request stays under the handshake deadline"
        );
        let t1 = t0 + Duration::from_secs(1);
        let idle = request.responded(false, t1);
        assert_eq!(
            idle.deadline(timeouts),
            Some((t1 + timeouts.keep_alive, Expiry::KeepAlive))
        );
        assert_eq!(idle.request().deadline(timeouts), None);
        let upgraded = phase.responded(true, t1);
        assert_eq!(upgraded.deadline(timeouts), None);
        assert_eq!(upgraded.request().responded(false, t1), Phase::Upgraded);
    }

    #[test]
    fn accept_backoff_doubles_from_10ms_to_1s_and_resets() {
        let mut backoff = AcceptBackoff::default();
        let waits: Vec<u64> = (0..9)
            .map(|_| backoff.failed().as_millis() as u64)
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), AcceptBackoff::FIRST);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Admit(u8),
        HandshakeDone(usize),
        Close(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..6).prop_map(Step::Admit),
            any::<usize>().prop_map(Step::HandshakeDone),
            any::<usize>().prop_map(Step::Close),
        ]
    }

    proptest! {
        /// Whatever the order of admissions, handshakes and closes: no cap is ever exceeded, a
        /// refusal names a cap that is really full, and everything returns to zero.
        #[test]
        fn the_caps_hold_under_any_sequence(
            total in 1usize..12,
            per_address in 1usize..6,
            handshaking in 1usize..8,
            steps in proptest::collection::vec(step(), 0..200),
        ) {
            let caps = caps(total, per_address, handshaking);
            let admission = Admission::new(caps);
            let mut held: Vec<(IpAddr, Ticket)> = Vec::new();
            for step in steps {
                match step {
                    Step::Admit(last) => {
                        let ip = v4(last);
                        let from_ip = held.iter().filter(|(a, _)| *a == ip).count();
                        let in_handshake = held.iter().filter(|(_, t)| t.handshaking.load(std::sync::atomic::Ordering::Acquire)).count();
                        match admission.admit(ip) {
                            Ok(ticket) => held.push((ip, ticket)),
                            Err(Refusal::Total) => prop_assert_eq!(held.len(), total),
                            Err(Refusal::PerAddress) => prop_assert_eq!(from_ip, per_address),
                            Err(Refusal::Handshaking) => prop_assert_eq!(in_handshake, handshaking),
                        }
                    }
                    Step::HandshakeDone(i) if !held.is_empty() => held[i % held.len()].1.handshake_done(),
                    Step::Close(i) if !held.is_empty() => { held.swap_remove(i % held.len()); }
                    _ => {}
                }
                prop_assert!(admission.open() <= caps.total);
                prop_assert!(admission.handshaking() <= caps.handshaking);
                prop_assert_eq!(admission.open(), held.len());
                for (ip, _) in &held {
                    prop_assert!(held.iter().filter(|(a, _)| a == ip).count() <= caps.per_address);
                }
            }
            held.clear();
            prop_assert_eq!((admission.open(), admission.handshaking(), admission.addresses()), (0, 0, 0));
        }

        /// The accept backoff never spins (≥ 10 ms) and never stalls (≤ 1 s).
        #[test]
        fn accept_backoff_stays_within_10ms_and_1s(failures in 0usize..100) {
            let mut backoff = AcceptBackoff::default();
            for _ in 0..failures {
                let wait = backoff.failed();
                prop_assert!(wait >= AcceptBackoff::FIRST && wait <= AcceptBackoff::MAX);
            }
        }

        /// The address key is idempotent and never merges two IPv4 addresses.
        #[test]
        fn address_keys_are_stable(a in any::<u32>(), b in any::<u32>(), v6 in any::<u128>()) {
            let (a, b) = (IpAddr::V4(a.into()), IpAddr::V4(b.into()));
            prop_assert_eq!(address_key(a) == address_key(b), a == b);
            let v6 = IpAddr::V6(v6.into());
            prop_assert_eq!(address_key(address_key(v6)), address_key(v6));
        }
    }
}
