//! What the court LAN's clients show on `/metrics`: connections by role, messages and bytes
//! received by type, rejects by reason, and the devices' batch acks with their latency.
//!
//! The connection tasks count as they go, and `/metrics` reads the counters at scrape time
//! ([`ClientCollector`]): no figure is kept twice. On the ingest hot path a message costs a
//! few relaxed atomic adds and a clock read — no lock, no allocation — so the counters are fixed
//! tables (one slot per role, message type and error code) rather than `prometheus_client`
//! families, whose lookup takes a lock.
//!
//! Each endpoint counts under its [`Role`]: devices (`/ws/esp32/`) today; phones, the admin
//! console and courtside screens use the same table — `connected(Role::Phone)` for the
//! connection gauge, `received(Role::Phone, type, bytes)` per message, `rejected` per error
//! sent — and list their message types in [`Role::message_types`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::histogram::AtomicHistogram;
use shuttlegate_core::protocol::{ErrorCode, GatewayMessage};

/// Who is at the other end of a local connection (the `role` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An ESP32 sensor hub (`/ws/esp32/{code}/`).
    Device,
    /// A player's phone (`/ws/miniprogram/{user_id}/`).
    Phone,
    /// The staff's admin console (`/ws/admin/`).
    Admin,
    /// A courtside screen (`/ws/dashboard/`).
    Screen,
}

/// The `type` label of a message that parsed as none of its role's types.
pub const OTHER_TYPE: &str = "other";

/// The device protocol's message types (`DeviceMessage::type_name`), then [`OTHER_TYPE`].
const DEVICE_TYPES: &[&str] = &[
    "heartbeat",
    "batch_sensor_data",
    "sensor_data",
    "status_update",
    "upload_complete",
    "poll_commands",
    "ack",
    "status_response",
    "ping",
    OTHER_TYPE,
];

impl Role {
    pub const ALL: [Role; 4] = [Role::Device, Role::Phone, Role::Admin, Role::Screen];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Device => "device",
            Role::Phone => "phone",
            Role::Admin => "admin",
            Role::Screen => "screen",
        }
    }

    /// The message types counted for this role, [`OTHER_TYPE`] last. The endpoints of phones,
    /// admin and screens add theirs here as they come.
    pub fn message_types(self) -> &'static [&'static str] {
        match self {
            Role::Device => DEVICE_TYPES,
            Role::Phone | Role::Admin | Role::Screen => &[OTHER_TYPE],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a device's batch (or frame) was answered, for the `result` label of the acks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckResult {
    /// `success:true, durable:true`: fsynced; the device may drop its copy.
    Durable,
    /// `success:false`: not stored (journal full under `refuse`, a failing disk); the device
    /// keeps its copy and resends.
    Refused,
}

/// Messages and bytes received by one role, per type.
#[derive(Debug)]
struct Received {
    messages: Box<[AtomicU64]>,
    bytes: Box<[AtomicU64]>,
}

impl Received {
    fn of(role: Role) -> Received {
        let slots = || {
            role.message_types()
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect()
        };
        Received {
            messages: slots(),
            bytes: slots(),
        }
    }
}

/// The clients' counters (one per daemon, shared by every endpoint).
#[derive(Debug)]
pub struct ClientMetrics {
    /// Connections open now, per role.
    open: [AtomicI64; 4],
    /// Connections accepted since start, per role.
    accepted: [AtomicU64; 4],
    /// Per role, in `Role::ALL` order.
    received: [Received; 4],
    /// `error` messages sent, per role and code (`ErrorCode::ALL` order).
    rejected: [[AtomicU64; ErrorCode::ALL.len()]; 4],
    /// Batch and frame answers sent to devices, per [`AckResult`].
    acks: [AtomicU64; 2],
    /// Message received → its durable ack written to the socket (batches and frames).
    ack_latency: AtomicHistogram,
    /// Pushes a client fell too far behind to get (each told to it as `lagged`), per role.
    lagged: [AtomicU64; 4],
    /// Handshakes refused because the role's cap (`max_phones`, `max_admins`, `max_screens`)
    /// was reached, per role.
    capped: [AtomicU64; 4],
    /// Completing batch received → swing written to a phone's or screen's socket, per role.
    push_latency: PushLatency,
}

/// Swing push latency per role: hdrhistograms (1 % resolution) behind one lock, taken once per
/// swing written to a phone or screen — a few thousand times a second at most, never on the
/// ingest path.
#[derive(Debug)]
struct PushLatency(Mutex<[Histogram<u64>; 4]>);

/// Longest push latency told apart; slower ones are recorded as this.
const PUSH_LATENCY_CEILING: Duration = Duration::from_secs(60);

impl Default for PushLatency {
    fn default() -> Self {
        let ceiling = PUSH_LATENCY_CEILING.as_micros() as u64;
        // Constant, valid bounds (1 ≤ low, 2·low ≤ high, digits ≤ 5): construction cannot fail.
        let histogram =
            |_| Histogram::new_with_bounds(1, ceiling, 2).expect("valid histogram bounds");
        PushLatency(Mutex::new(Role::ALL.map(histogram)))
    }
}

/// One role's swing push latency since start.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PushFigures {
    pub pushes: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Default for ClientMetrics {
    fn default() -> Self {
        ClientMetrics {
            open: Default::default(),
            accepted: Default::default(),
            received: Role::ALL.map(Received::of),
            rejected: Default::default(),
            acks: Default::default(),
            ack_latency: AtomicHistogram::default(),
            lagged: Default::default(),
            capped: Default::default(),
            push_latency: PushLatency::default(),
        }
    }
}

/// A connection counted as open under its role until dropped.
#[derive(Debug)]
pub struct Connected {
    metrics: Arc<ClientMetrics>,
    role: Role,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.metrics.open[self.role.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

impl ClientMetrics {
    /// Counts a connection of `role`, open until the guard is dropped.
    pub fn connected(self: &Arc<Self>, role: Role) -> Connected {
        self.open[role.index()].fetch_add(1, Ordering::Relaxed);
        self.accepted[role.index()].fetch_add(1, Ordering::Relaxed);
        Connected {
            metrics: self.clone(),
            role,
        }
    }

    /// One text message of `bytes` from a client of `role`; `message_type` is its parsed type,
    /// or [`OTHER_TYPE`] (a type not in [`Role::message_types`] counts as that too).
    pub fn received(&self, role: Role, message_type: &str, bytes: usize) {
        let types = role.message_types();
        let slot = types
            .iter()
            .position(|t| *t == message_type)
            .unwrap_or(types.len() - 1);
        let counters = &self.received[role.index()];
        counters.messages[slot].fetch_add(1, Ordering::Relaxed);
        counters.bytes[slot].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// An `error` with `code` sent to a client of `role`.
    pub fn rejected(&self, role: Role, code: ErrorCode) {
        let slot = ErrorCode::ALL.iter().position(|c| *c == code).unwrap_or(0);
        self.rejected[role.index()][slot].fetch_add(1, Ordering::Relaxed);
    }

    /// `n` pushes a slow client of `role` did not get (it is told with a `lagged` notice).
    pub fn lagged(&self, role: Role, n: u64) {
        self.lagged[role.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// A client of `role` refused at its handshake because its role's cap was reached.
    pub fn capped(&self, role: Role) {
        self.capped[role.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// A swing was written to a client of `role`, `took` after its completing batch arrived.
    pub fn swing_pushed(&self, role: Role, took: Duration) {
        let micros = took.min(PUSH_LATENCY_CEILING).as_micros().max(1) as u64;
        let mut histograms = self
            .push_latency
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        histograms[role.index()].saturating_record(micros);
    }

    /// The swing push latency of `role` since start.
    pub fn push_figures(&self, role: Role) -> PushFigures {
        let histograms = self
            .push_latency
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let h = &histograms[role.index()];
        let at = |q: f64| Duration::from_micros(h.value_at_quantile(q));
        PushFigures {
            pushes: h.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: Duration::from_micros(h.max()),
        }
    }

    /// `reply` was written to a device `took` after the message it answers was read.
    pub fn device_replied(&self, reply: &GatewayMessage, took: Duration) {
        let result = match reply {
            GatewayMessage::Error(e) => return self.rejected(Role::Device, e.code),
            GatewayMessage::BatchSensorDataResponse(r) if r.success => AckResult::Durable,
            GatewayMessage::SensorDataResponse(r) if r.success => AckResult::Durable,
            GatewayMessage::BatchSensorDataResponse(_) | GatewayMessage::SensorDataResponse(_) => {
                AckResult::Refused
            }
            _ => return,
        };
        self.acks[result as usize].fetch_add(1, Ordering::Relaxed);
        if result == AckResult::Durable {
            self.ack_latency.record(took);
        }
    }
}

/// The clients' figures on `/metrics`.
#[derive(Debug)]
pub struct ClientCollector(pub Arc<ClientMetrics>);

impl Collector for ClientCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        let mut open = encoder.encode_descriptor(
            "clients_connected",
            "WebSocket clients connected now, by role (device, phone, admin, screen)",
            None,
            MetricType::Gauge,
        )?;
        for role in Role::ALL {
            let n = m.open[role.index()].load(Ordering::Relaxed);
            ConstGauge::new(n).encode(open.encode_family(&[("role", role.as_str())])?)?;
        }
        let mut lagged = encoder.encode_descriptor(
            "client_pushes_dropped",
            "Live pushes a slow client did not get (it is told with a `lagged` notice), by role: the fan-out's lag",
            None,
            MetricType::Counter,
        )?;
        for role in Role::ALL {
            let n = m.lagged[role.index()].load(Ordering::Relaxed);
            ConstCounter::new(n).encode(lagged.encode_family(&[("role", role.as_str())])?)?;
        }
        let mut capped = encoder.encode_descriptor(
            "client_cap_refusals",
            "Handshakes answered 503 because the role's cap was reached (limits.max_phones, max_admins, max_screens), by role",
            None,
            MetricType::Counter,
        )?;
        for role in Role::ALL {
            let n = m.capped[role.index()].load(Ordering::Relaxed);
            ConstCounter::new(n).encode(capped.encode_family(&[("role", role.as_str())])?)?;
        }
        encode_push_latency(m, &mut encoder)?;
        let mut accepted = encoder.encode_descriptor(
            "client_connections",
            "WebSocket clients accepted since start (past their handshake), by role",
            None,
            MetricType::Counter,
        )?;
        for role in Role::ALL {
            let n = m.accepted[role.index()].load(Ordering::Relaxed);
            ConstCounter::new(n).encode(accepted.encode_family(&[("role", role.as_str())])?)?;
        }
        let received = [
            (
                "client_messages_received",
                "Text messages received from clients, by role and message type (`other`: unparsable or of no known type)",
                false,
            ),
            (
                "client_received_bytes",
                "Bytes of the text messages received from clients, by role and message type",
                true,
            ),
        ];
        for (name, help, bytes) in received {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for role in Role::ALL {
                let counters = &m.received[role.index()];
                let counts = if bytes {
                    &counters.bytes
                } else {
                    &counters.messages
                };
                for (ty, n) in role.message_types().iter().zip(counts.iter()) {
                    let labels = [("role", role.as_str()), ("type", ty)];
                    ConstCounter::new(n.load(Ordering::Relaxed))
                        .encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut rejects = encoder.encode_descriptor(
            "client_rejects",
            "`error` messages sent to clients, by role and error code (invalid_json, missing_field, rate_limited, …)",
            None,
            MetricType::Counter,
        )?;
        for role in Role::ALL {
            for (code, n) in ErrorCode::ALL.iter().zip(&m.rejected[role.index()]) {
                let labels = [("role", role.as_str()), ("reason", code.as_str())];
                ConstCounter::new(n.load(Ordering::Relaxed))
                    .encode(rejects.encode_family(&labels)?)?;
            }
        }
        let mut acks = encoder.encode_descriptor(
            "device_acks",
            "Answers to device batches and frames: durable (fsynced, success:true) or refused (success:false, the device keeps its copy)",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in ["durable", "refused"].iter().zip(&m.acks) {
            ConstCounter::new(n.load(Ordering::Relaxed))
                .encode(acks.encode_family(&[("result", *result)])?)?;
        }
        let latency = m.ack_latency.snapshot();
        latency.encode(encoder.encode_descriptor(
            "device_ack_latency_seconds",
            "Time from reading a device's batch (or frame) to writing its durable ack: group commit, fsync and the ordered reply queue",
            None,
            MetricType::Histogram,
        )?)?;
        Ok(())
    }
}

/// Picks one figure of a role's push latency.
type PickFigure = fn(&PushFigures) -> Duration;

/// `swing_pushes_total{role}` and the p50 / p99 / max gauges of the swing push latency, for
/// the roles that get swings (phones, screens).
fn encode_push_latency(
    m: &ClientMetrics,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    const PUSHED: [Role; 2] = [Role::Phone, Role::Screen];
    let figures = PUSHED.map(|role| (role, m.push_figures(role)));
    let mut pushes = encoder.encode_descriptor(
        "swing_pushes",
        "Swings written to a phone's or screen's socket, by role",
        None,
        MetricType::Counter,
    )?;
    for (role, f) in &figures {
        ConstCounter::new(f.pushes).encode(pushes.encode_family(&[("role", role.as_str())])?)?;
    }
    let quantiles: [(&str, &str, PickFigure); 3] = [
        (
            "swing_push_latency_p50_seconds",
            "Median time from receipt of the batch that completes a swing to the swing written to a phone's or screen's socket, by role",
            |f| f.p50,
        ),
        (
            "swing_push_latency_p99_seconds",
            "99th percentile of the swing push latency (completing batch received -> written to the client's socket), by role",
            |f| f.p99,
        ),
        (
            "swing_push_latency_max_seconds",
            "Longest swing push latency (completing batch received -> written to the client's socket), by role",
            |f| f.max,
        ),
    ];
    for (name, help, pick) in quantiles {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (role, f) in &figures {
            ConstGauge::new(pick(f).as_secs_f64())
                .encode(family.encode_family(&[("role", role.as_str())])?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_as_open_until_its_guard_drops() {
        let m = Arc::new(ClientMetrics::default());
        let first = m.connected(Role::Device);
        let _second = m.connected(Role::Device);
        drop(first);
        assert_eq!(m.open[Role::Device.index()].load(Ordering::Relaxed), 1);
        assert_eq!(m.accepted[Role::Device.index()].load(Ordering::Relaxed), 2);
        assert_eq!(m.open[Role::Phone.index()].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn every_role_counts_unknown_types_as_other() {
        for role in Role::ALL {
            assert_eq!(role.message_types().last(), Some(&OTHER_TYPE));
        }
        let m = ClientMetrics::default();
        m.received(Role::Device, "batch_sensor_data", 100);
        m.received(Role::Device, "no_such_type", 7);
        let device = &m.received[Role::Device.index()];
        assert_eq!(device.bytes[1].load(Ordering::Relaxed), 100);
        assert_eq!(
            device.bytes[DEVICE_TYPES.len() - 1].load(Ordering::Relaxed),
            7
        );
    }
}
