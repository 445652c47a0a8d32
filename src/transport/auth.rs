//! Who may connect as a device, and how a refusal looks from outside.
//!
//! Tokens come from `?token=` or `Authorization: Bearer`, and are compared in constant time
//! (`subtle`), so the comparison's duration says nothing about how much of a guess was right.
//! Devices configured `allow_tokenless` (the deployed V3.3 firmware cannot send a token) are
//! let in without one; a token they do send must still be right. Any device may be restricted
//! to `allowed_peers` (addresses or networks).
//!
//! Every refusal — unknown code, missing or wrong token, a peer not allowed, a tokenless code
//! held by a hub on another address, a wrong admin token — looks the same from outside
//! ([`unauthorized`]: one status, one body, no extra header), so nobody can learn which codes
//! exist by trying them. The reason goes to the log and to `/metrics`
//! ([`AuthGuard::refused`]), which also slows down an address that keeps failing
//! ([`super::failures`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde::Deserialize;

use super::failures::{FailurePolicy, FailureTable};
use crate::config::{DeviceAuth, Secret, Settings};
use crate::service::Shutdown;

/// How one device proves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredential {
    /// The expected token, if one is configured.
    pub token: Option<Secret>,
    /// Accept a connection that presents no token at all.
    pub allow_tokenless: bool,
    /// Networks the device may connect from; empty: anywhere.
    pub allowed_peers: Vec<IpNet>,
}

/// Why a client was refused (logged and counted; the client only sees [`unauthorized`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown device")]
    UnknownDevice,
    #[error("missing token")]
    MissingToken,
    #[error("wrong token")]
    WrongToken,
    #[error("address not in the device's allowed_peers")]
    PeerNotAllowed,
    #[error("tokenless code held by a live connection from another address")]
    CodeHeld,
    #[error("wrong or missing admin token")]
    AdminToken,
    #[error("phone JWT refused")]
    BadJwt,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::UnknownDevice,
        Refusal::MissingToken,
        Refusal::WrongToken,
        Refusal::PeerNotAllowed,
        Refusal::CodeHeld,
        Refusal::AdminToken,
        Refusal::BadJwt,
    ];

    /// The `reason` label on `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownDevice => "unknown_device",
            Refusal::MissingToken => "missing_token",
            Refusal::WrongToken => "wrong_token",
            Refusal::PeerNotAllowed => "peer_not_allowed",
            Refusal::CodeHeld => "code_held",
            Refusal::AdminToken => "admin_token",
            Refusal::BadJwt => "bad_jwt",
        }
    }
}

/// Who may take a device's code over from a live connection that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Any admitted connection: it proved itself with the device's token, so the newest wins
    /// (a hub that reconnects after a network blip must not wait for its old socket to time
    /// out).
    Anyone,
    /// Only a connection from the holder's address (the hub rebooted): a tokenless code proves
    /// nothing, so a second hub elsewhere on the LAN must not silently displace the first.
    SameAddress,
}

/// The court's devices and their credentials.
#[derive(Debug, Clone, Default)]
pub struct DeviceDirectory {
    devices: HashMap<String, DeviceCredential>,
}

impl DeviceDirectory {
    /// The configured devices and their credentials.
    pub fn of(settings: &Settings) -> DeviceDirectory {
        DeviceDirectory::new(settings.devices.iter().map(|d| {
            let credential = DeviceCredential {
                token: match &d.auth {
                    DeviceAuth::Token(secret) => Some(secret.clone()),
                    DeviceAuth::Tokenless => None,
                },
                allow_tokenless: d.is_tokenless(),
                allowed_peers: d.allowed_peers.clone(),
            };
            (d.code.clone(), credential)
        }))
    }

    pub fn new(devices: impl IntoIterator<Item = (String, DeviceCredential)>) -> DeviceDirectory {
        DeviceDirectory {
            devices: devices.into_iter().collect(),
        }
    }

    pub fn contains(&self, code: &str) -> bool {
        self.devices.contains_key(code)
    }

    /// Checks a handshake from `peer`: `presented` is the token from the query or the header,
    /// if any. Admitted, it says who may later take the code over from this connection.
    pub fn admit(
        &self,
        code: &str,
        presented: Option<&str>,
        peer: IpAddr,
    ) -> Result<Takeover, Refusal> {
        let credential = self.devices.get(code).ok_or(Refusal::UnknownDevice)?;
        let takeover = match (presented, &credential.token) {
            (None, _) if credential.allow_tokenless => Takeover::SameAddress,
            (None, _) => return Err(Refusal::MissingToken),
            (Some(given), Some(expected)) => {
                if expected.matches(given) {
                    Takeover::Anyone
                } else {
                    return Err(Refusal::WrongToken);
                }
            }
            // A token offered to a device that has none configured cannot be right.
            (Some(_), None) => return Err(Refusal::WrongToken),
        };
        if !peer_allowed(&credential.allowed_peers, peer) {
            return Err(Refusal::PeerNotAllowed);
        }
        Ok(takeover)
    }
}

/// Whether `peer` is in one of `allowed` (empty: anyone). An IPv4 peer seen as IPv6 (a
/// listener on `[::]`) is matched as IPv4.
pub fn peer_allowed(allowed: &[IpNet], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    allowed.is_empty() || allowed.iter().any(|net| net.contains(&peer))
}

/// The one answer to every refused handshake or admin call.
pub fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response()
}

/// Waits `delay` before a refusal is answered, or less if the gateway begins shutting down.
/// The wait is the refused request's own: no task or timer is spawned for it.
pub async fn hold(delay: Duration, shutdown: &Shutdown) {
    if !delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.token.cancelled() => {}
        }
    }
}

/// Counts refusals by reason and remembers which addresses keep failing. One per gateway,
/// shared by the device endpoint and the admin API.
#[derive(Debug)]
pub struct AuthGuard {
    failures: Mutex<FailureTable>,
    refused: [AtomicU64; Refusal::ALL.len()],
    delayed: AtomicU64,
}

impl Default for AuthGuard {
    fn default() -> Self {
        AuthGuard::new(FailurePolicy::default())
    }
}

/// What `/metrics` shows of the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthStats {
    /// Refusals by reason, in [`Refusal::ALL`]'s order.
    pub refused: Vec<(Refusal, u64)>,
    /// Refusals held back because their address had failed repeatedly.
    pub delayed: u64,
    /// Addresses with recent failures.
    pub failing_addresses: usize,
    /// Addresses forgotten early to keep the table bounded.
    pub evicted_addresses: u64,
}

impl AuthGuard {
    pub fn new(policy: FailurePolicy) -> AuthGuard {
        AuthGuard {
            failures: Mutex::new(FailureTable::new(policy)),
            refused: Default::default(),
            delayed: AtomicU64::new(0),
        }
    }

    /// Counts a refusal of `peer` for `why`; returns how long to hold the answer.
    pub fn refused(&self, why: Refusal, peer: IpAddr) -> Duration {
        let index = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.refused[index].fetch_add(1, Ordering::Relaxed);
        let delay = lock(&self.failures).record_failure(peer, Instant::now());
        if !delay.is_zero() {
            self.delayed.fetch_add(1, Ordering::Relaxed);
        }
        delay
    }

    pub fn stats(&self) -> AuthStats {
        let table = lock(&self.failures);
        AuthStats {
            refused: Refusal::ALL
                .iter()
                .zip(&self.refused)
                .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
                .collect(),
            delayed: self.delayed.load(Ordering::Relaxed),
            failing_addresses: table.len(),
            evicted_addresses: table.evicted(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this short lock leaves plain counters behind: keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A WebSocket handshake's query (devices, phones, the admin console): its `?token=`.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<Secret>,
}

impl TokenQuery {
    /// The token the client presented, in the query or in `Authorization: Bearer`.
    pub fn presented<'a>(&'a self, headers: &'a HeaderMap) -> Option<&'a str> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        presented_token(self.token.as_ref().map(Secret::expose), authorization)
    }
}

/// The token a client presented: `?token=` first, then `Authorization: Bearer`.
pub fn presented_token<'a>(
    query_token: Option<&'a str>,
    authorization: Option<&'a str>,
) -> Option<&'a str> {
    query_token.filter(|t| !t.is_empty()).or_else(|| {
        authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    const LAN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 23));

    fn directory() -> DeviceDirectory {
        DeviceDirectory::new([
            (
                "racket-01".to_owned(),
                DeviceCredential {
                    token: Some(Secret::from("s3cret")),
                    allow_tokenless: false,
                    allowed_peers: Vec::new(),
                },
            ),
            (
                "v33".to_owned(),
                DeviceCredential {
                    token: None,
                    allow_tokenless: true,
                    allowed_peers: Vec::new(),
                },
            ),
            (
                "v33-fenced".to_owned(),
                DeviceCredential {
                    token: None,
                    allow_tokenless: true,
                    allowed_peers: vec![
                        "192.168.1.0/24".parse().unwrap(),
                        "10.9.9.9/32".parse().unwrap(),
                    ],
                },
            ),
        ])
    }

    #[test]
    fn the_right_token_is_admitted_and_a_wrong_one_refused() {
        let d = directory();
        assert_eq!(
            d.admit("racket-01", Some("s3cret"), LAN),
            Ok(Takeover::Anyone)
        );
        assert_eq!(
            d.admit("racket-01", Some("s3cre"), LAN),
            Err(Refusal::WrongToken)
        );
        assert_eq!(d.admit("racket-01", None, LAN), Err(Refusal::MissingToken));
    }

    #[test]
    fn unknown_devices_are_refused_whatever_they_present() {
        assert_eq!(
            directory().admit("nobody", Some("s3cret"), LAN),
            Err(Refusal::UnknownDevice)
        );
    }

    #[test]
    fn tokenless_devices_need_no_token_but_cannot_present_a_wrong_one() {
        let d = directory();
        assert_eq!(d.admit("v33", None, LAN), Ok(Takeover::SameAddress));
        assert_eq!(d.admit("v33", Some("guess"), LAN), Err(Refusal::WrongToken));
    }

    #[test]
    fn a_fenced_device_is_admitted_only_from_its_allowed_peers() {
        let d = directory();
        assert_eq!(d.admit("v33-fenced", None, LAN), Ok(Takeover::SameAddress));
        let mapped: IpAddr = "::ffff:10.9.9.9".parse().unwrap();
        assert_eq!(
            d.admit("v33-fenced", None, mapped),
            Ok(Takeover::SameAddress)
        );
        for outside in ["192.168.2.23", "10.9.9.8", "fe80::1"] {
            assert_eq!(
                d.admit("v33-fenced", None, outside.parse().unwrap()),
                Err(Refusal::PeerNotAllowed),
                "{outside}"
            );
        }
    }

    #[test]
    fn the_guard_counts_each_reason_and_delays_a_repeating_address() {
        let guard = AuthGuard::default();
        let attacker: IpAddr = "10.0.0.66".parse().unwrap();
        let delays: Vec<_> = (0..5)
            .map(|_| guard.refused(Refusal::UnknownDevice, attacker))
            .collect();
        assert!(delays[..3].iter().all(Duration::is_zero), "{delays:?}");
        assert!(
            delays[3] > Duration::ZERO && delays[4] > delays[3],
            "{delays:?}"
        );
        assert_eq!(guard.refused(Refusal::AdminToken, LAN), Duration::ZERO);
        let stats = guard.stats();
        assert_eq!(stats.refused[0], (Refusal::UnknownDevice, 5));
        assert_eq!(stats.refused[5], (Refusal::AdminToken, 1));
        assert_eq!(stats.delayed, 2);
        assert_eq!(stats.failing_addresses, 2);
    }

    #[test]
    fn every_refusal_is_answered_the_same() {
        let first = unauthorized();
        assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            format!("{:?}", first.headers()),
            format!("{:?}", unauthorized().headers())
        );
    }

    proptest! {
        #[test]
        fn a_peer_is_allowed_exactly_when_a_listed_network_contains_it(
            net_bits in any::<u32>(),
            prefix in 0u8..=32,
            peer_bits in any::<u32>(),
        ) {
            let net = IpNet::new(IpAddr::from(net_bits.to_be_bytes()), prefix).unwrap().trunc();
            let peer = IpAddr::from(peer_bits.to_be_bytes());
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let inside = peer_bits & mask == net_bits & mask;
            prop_assert_eq!(peer_allowed(&[net], peer), inside);
            let mapped = IpAddr::V6(std::net::Ipv4Addr::from(peer_bits).to_ipv6_mapped());
            prop_assert_eq!(peer_allowed(&[net], mapped), inside);
            prop_assert!(peer_allowed(&[], peer));
        }
    }

    #[test]
    fn the_query_token_wins_over_the_header_and_empty_ones_do_not_count() {
        assert_eq!(presented_token(Some("q"), Some("Bearer h")), Some("q"));
        assert_eq!(presented_token(Some(""), Some("Bearer h")), Some("h"));
        assert_eq!(presented_token(None, Some("Basic x")), None);
        assert_eq!(presented_token(None, Some("Bearer ")), None);
    }
}
