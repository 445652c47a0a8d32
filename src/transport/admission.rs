//! Who may hold a connection, and for how long: the pure bookkeeping behind the accept loop
//! ([`super::listener`]), with no sockets and no clock of its own (time is passed in).
//!
//! A court's LAN is shared with players, spectators and their phones, and a Pi runs with a
//! bounded number of file descriptors. One hostile or broken host must not be able to take
//! them all, nor hold them forever:
//!
//! - [`Admission`] counts open connections in total, per address, and those that have not
//!   finished their handshake (no complete first request yet, not yet upgraded). A connection
//!   over the total or its address's cap is refused at once; one flooding address fills at
//!   most its own share. When the handshake budget is full, the oldest handshake is evicted to
//!   make room if it has gone on for [`EVICTABLE_AFTER`] (a hub's or a phone's handshake takes
//!   milliseconds; a silent socket sits), else the newcomer is refused: hosts holding sockets
//!   half-open cannot keep the budget full without opening new ones ever faster.
//! - [`Phase`] says which deadline a connection is under: the handshake timeout until its first
//!   response (the WebSocket's 101), the keep-alive timeout while idle between requests, none
//!   while a request is being answered or once upgraded (the WebSocket has its own idle
//!   timeout).
//! - [`AcceptBackoff`] paces the accept loop after an error such as EMFILE, so a full
//!   descriptor table is never a busy loop.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// How long a handshake must have gone on before a newcomer may evict it from a full
/// handshake budget.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `max_connections` connections are open.
    Total,
    /// The address already holds `max_connections_per_address`.
    PerAddress,
    /// `max_handshaking` connections are in their handshake, none of them for
    /// [`EVICTABLE_AFTER`] yet.
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
#[derive(Debug)]
struct Counts<H> {
    open: usize,
    per_address: HashMap<IpAddr, usize>,
    /// Connections in their handshake by admission number (so the first is the oldest).
    handshakes: BTreeMap<u64, Handshake<H>>,
    next_id: u64,
}

#[derive(Debug)]
struct Handshake<H> {
    since: Instant,
    /// What the caller fires to close the connection if it is evicted.
    on_evict: H,
}

/// What the connection caps currently hold. Shared by every listener (plain and TLS) so the
/// caps are one budget. The caps themselves are passed to each [`Admission::admit`], as read
/// from the settings then, so a reload applies from the next connection on. `H` is how an
/// evicted connection is told to close (the listener's cancellation token; anything in tests).
#[derive(Debug)]
pub struct Admission<H> {
    counts: Mutex<Counts<H>>,
}

/// A connection's place under the caps; released when dropped. It lives with the socket (even
/// past a WebSocket upgrade), so the counts follow the descriptors.
#[derive(Debug)]
pub struct Ticket<H> {
    admission: Arc<Admission<H>>,
    address: IpAddr,
    id: u64,
}

/// An admitted connection, and the one evicted from the handshake budget to make room for it.
#[derive(Debug)]
pub struct Admitted<H> {
    pub ticket: Ticket<H>,
    /// Fire it: that connection must close.
    pub evicted: Option<H>,
}

impl<H> Admission<H> {
    pub fn new() -> Arc<Admission<H>> {
        Arc::new(Admission {
            counts: Mutex::new(Counts {
                open: 0,
                per_address: HashMap::new(),
                handshakes: BTreeMap::new(),
                next_id: 0,
            }),
        })
    }

    /// Admits a connection from `peer` at `now` under `caps`, in its handshake, or says which
    /// cap it would exceed. `on_evict` is kept until its handshake ends, for an eviction.
    pub fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        now: Instant,
        caps: &Caps,
        on_evict: H,
    ) -> Result<Admitted<H>, Refusal> {
        let address = address_key(peer);
        let mut counts = self.lock();
        let from_address = counts.per_address.get(&address).copied().unwrap_or(0);
        if counts.open >= caps.total {
            return Err(Refusal::Total);
        }
        if from_address >= caps.per_address {
            return Err(Refusal::PerAddress);
        }
        let mut evicted = None;
        if counts.handshakes.len() >= caps.handshaking {
            let evictable = counts
                .handshakes
                .first_key_value()
                .is_some_and(|(_, oldest)| {
                    now.saturating_duration_since(oldest.since) >= EVICTABLE_AFTER
                });
            if !evictable {
                return Err(Refusal::Handshaking);
            }
            evicted = counts.handshakes.pop_first().map(|(_, h)| h.on_evict);
        }
        let id = counts.next_id;
        counts.next_id += 1;
        counts.open += 1;
        counts.per_address.insert(address, from_address + 1);
        counts.handshakes.insert(
            id,
            Handshake {
                since: now,
                on_evict,
            },
        );
        let ticket = Ticket {
            admission: self.clone(),
            address,
            id,
        };
        Ok(Admitted { ticket, evicted })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Connections in their handshake now.
    pub fn handshaking(&self) -> usize {
        self.lock().handshakes.len()
    }

    /// Addresses holding at least one connection (the map never grows past the open count).
    pub fn addresses(&self) -> usize {
        self.lock().per_address.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts<H>> {
        // Each update is a few integer and map operations that cannot panic half-way: a panic
        // elsewhere while the lock was held cannot have left the counts half-written.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<H> Ticket<H> {
    /// The connection finished its handshake (or was evicted): it leaves the handshake budget.
    /// Idempotent.
    pub fn handshake_done(&self) {
        self.admission.lock().handshakes.remove(&self.id);
    }

    /// True while the connection counts against the handshake budget.
    pub fn is_handshaking(&self) -> bool {
        self.admission.lock().handshakes.contains_key(&self.id)
    }
}

impl<H> Drop for Ticket<H> {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.handshakes.remove(&self.id);
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
    /// Accepted at `since`; no complete request head yet.
    Accepted { since: Instant },
    /// The first request (accepted at `since`) is being answered.
    FirstRequest { since: Instant },
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
        Phase::Accepted { since: now }
    }

    /// A request's head has arrived.
    pub fn request(self) -> Phase {
        match self {
            Phase::Accepted { since } => Phase::FirstRequest { since },
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

    /// True while nothing is being answered (no request head yet, or idle between requests):
    /// at shutdown such a connection is closed at once rather than waited for.
    pub fn is_quiet(self) -> bool {
        matches!(self, Phase::Accepted { .. } | Phase::Idle { .. })
    }

    /// When the connection is closed if nothing changes, and which timeout that is.
    pub fn deadline(self, timeouts: Timeouts) -> Option<(Instant, Expiry)> {
        match self {
            Phase::Accepted { since } | Phase::FirstRequest { since } => {
                Some((since + timeouts.handshake, Expiry::Handshake))
            }
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

/// One place under a client role's cap (`max_phones`, `max_screens`, `max_admins`), given back
/// when dropped. `taken` is the role's count of places held, shared with whoever reports it.
#[derive(Debug)]
pub struct RoleSeat(Arc<AtomicUsize>);

impl RoleSeat {
    /// A seat, when fewer than `max` are taken.
    pub fn take(taken: &Arc<AtomicUsize>, max: usize) -> Option<RoleSeat> {
        taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| RoleSeat(taken.clone()))
    }
}

impl Drop for RoleSeat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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

    /// Admits under `caps`, expecting no eviction.
    fn admit(
        admission: &Arc<Admission<u32>>,
        caps: &Caps,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Ticket<u32>, Refusal> {
        admission.admit(ip, now, caps, 0).map(|a| {
            assert_eq!(a.evicted, None);
            a.ticket
        })
    }

    #[test]
    fn one_address_fills_only_its_own_share_and_another_still_gets_in() {
        let now = Instant::now();
        let (admission, caps) = (Admission::new(), caps(100, 3, 10));
        let flood: Vec<_> = (0..3)
            .map(|_| admit(&admission, &caps, v4(3), now).unwrap())
            .collect();
        assert_eq!(
            admit(&admission, &caps, v4(3), now).unwrap_err(),
            Refusal::PerAddress
        );
        let device = admit(&admission, &caps, v4(2), now).expect("another address gets in");
        assert_eq!((admission.open(), admission.handshaking()), (4, 4));
        drop(flood);
        drop(device);
        assert_eq!((admission.open(), admission.handshaking()), (0, 0));
        assert_eq!(admission.addresses(), 0);
    }

    #[test]
    fn finished_handshakes_free_the_budget_but_keep_their_place_in_the_total() {
        let now = Instant::now();
        let (admission, caps) = (Admission::new(), caps(3, 10, 1));
        let first = admit(&admission, &caps, v4(1), now).unwrap();
        assert_eq!(
            admit(&admission, &caps, v4(2), now).unwrap_err(),
            Refusal::Handshaking
        );
        first.handshake_done();
        first.handshake_done(); // once only
        let second = admit(&admission, &caps, v4(2), now).unwrap();
        second.handshake_done();
        let third = admit(&admission, &caps, v4(3), now).unwrap();
        third.handshake_done();
        assert_eq!(
            admit(&admission, &caps, v4(4), now).unwrap_err(),
            Refusal::Total
        );
        // The caps are read anew at each admission: a raised cap applies to the next one.
        let raised = Caps { total: 4, ..caps };
        let _fourth = admit(&admission, &raised, v4(4), now).unwrap();
        assert_eq!((admission.open(), admission.handshaking()), (4, 1));
    }

    #[test]
    fn a_full_handshake_budget_evicts_its_oldest_once_it_has_sat_long_enough() {
        let t0 = Instant::now();
        let (admission, caps) = (Admission::new(), caps(10, 10, 2));
        let old = admission.admit(v4(3), t0, &caps, 1).unwrap().ticket;
        let young = admission
            .admit(v4(4), t0 + Duration::from_millis(500), &caps, 2)
            .unwrap()
            .ticket;
        let soon = t0 + EVICTABLE_AFTER - Duration::from_millis(1);
        assert_eq!(
            admission.admit(v4(2), soon, &caps, 3).unwrap_err(),
            Refusal::Handshaking
        );
        let device = admission
            .admit(v4(2), t0 + EVICTABLE_AFTER, &caps, 3)
            .unwrap();
        assert_eq!(device.evicted, Some(1), "the oldest handshake makes room");
        assert!(!old.is_handshaking() && young.is_handshaking());
        assert_eq!((admission.open(), admission.handshaking()), (3, 2));
        drop(old);
        assert_eq!((admission.open(), admission.handshaking()), (2, 2));
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
        assert!(phase.is_quiet());
        let request = phase.request();
        assert!(!request.is_quiet());
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
        assert!(idle.is_quiet());
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
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..6).prop_map(Step::Admit),
            any::<usize>().prop_map(Step::HandshakeDone),
            any::<usize>().prop_map(Step::Close),
            (0u64..1500).prop_map(Step::Wait),
        ]
    }

    /// A connection the model holds: its address, when it was admitted, its handle, its ticket.
    struct Held {
        ip: IpAddr,
        since: Instant,
        name: u32,
        ticket: Ticket<u32>,
    }

    proptest! {
        /// Whatever the order of admissions, handshakes, closes and waits: no cap is ever
        /// exceeded, a refusal names a cap that is really full, an eviction takes the oldest
        /// handshake and only once it is old enough, and everything returns to zero.
        #[test]
        fn the_caps_hold_under_any_sequence(
            total in 1usize..12,
            per_address in 1usize..6,
            handshaking in 1usize..8,
            steps in proptest::collection::vec(step(), 0..200),
        ) {
            let caps = caps(total, per_address, handshaking);
            let admission: Arc<Admission<u32>> = Admission::new();
            let mut now = Instant::now();
            let mut held: Vec<Held> = Vec::new();
            let mut names = 0u32;
            for step in steps {
                match step {
                    Step::Admit(last) => {
                        let ip = v4(last);
                        let from_ip = held.iter().filter(|h| h.ip == ip).count();
                        let oldest_handshake = held
                            .iter()
                            .filter(|h| h.ticket.is_handshaking())
                            .min_by_key(|h| h.ticket.id)
                            .map(|h| (h.name, h.since));
                        let in_handshake = held.iter().filter(|h| h.ticket.is_handshaking()).count();
                        names += 1;
                        match admission.admit(ip, now, &caps, names) {
                            Ok(admitted) => {
                                match admitted.evicted {
                                    Some(name) => {
                                        let (oldest, since) = oldest_handshake.expect("something to evict");
                                        prop_assert_eq!(name, oldest);
                                        prop_assert!(now - since >= EVICTABLE_AFTER);
                                        prop_assert_eq!(in_handshake, handshaking);
                                    }
                                    None => prop_assert!(in_handshake < handshaking),
                                }
                                held.push(Held { ip, since: now, name: names, ticket: admitted.ticket });
                            }
                            Err(Refusal::Total) => prop_assert_eq!(held.len(), total),
                            Err(Refusal::PerAddress) => prop_assert_eq!(from_ip, per_address),
                            Err(Refusal::Handshaking) => {
                                prop_assert_eq!(in_handshake, handshaking);
                                let (_, since) = oldest_handshake.expect("a full budget");
                                prop_assert!(now - since < EVICTABLE_AFTER);
                            }
                        }
                    }
                    Step::HandshakeDone(i) if !held.is_empty() => {
                        let n = held.len();
                        held[i % n].ticket.handshake_done();
                    }
                    Step::Close(i) if !held.is_empty() => {
                        let n = held.len();
                        held.swap_remove(i % n);
                    }
                    Step::Wait(ms) => now += Duration::from_millis(ms),
                    _ => {}
                }
                prop_assert!(admission.open() <= caps.total);
                prop_assert!(admission.handshaking() <= caps.handshaking);
                prop_assert_eq!(admission.open(), held.len());
                for h in &held {
                    prop_assert!(held.iter().filter(|o| o.ip == h.ip).count() <= caps.per_address);
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
