//! The one HTTP listener (`[http] listen`): every WebSocket endpoint, `/metrics`, and later the
//! pages, on one port.
//!
//! Device handshakes are checked here, before the upgrade: every refusal gets the same HTTP 401
//! ([`auth::unauthorized`], held back for an address that keeps failing) and a log line with
//! the reason, the device code as it was in the URL (clipped and escaped, never decoded) and
//! the peer address, never the token. Accepted sockets get tungstenite limits sized for a Pi
//! (see [`socket_limits`]).
//!
//! `/healthz` is [`crate::health`]'s. `/metrics` is OpenMetrics text (which Prometheus scrapes), rendered by `prometheus-client`
//! from the parts' own counters at scrape time: no metric is kept twice.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::auth::{self, AuthGuard, AuthStats, DeviceDirectory, Refusal, Takeover, TokenQuery};
use super::connections::Connections;
use super::device::{self, ConnectionLimits, DeviceHandler};
use super::metrics::{ClientCollector, ClientMetrics};
use crate::config::SettingsHandle;
use crate::journal::Journal;
use crate::pipeline::{AnalysisMetrics, SwingLatency, SwingStage};
use crate::service::Shutdown;
use crate::supervise::{Supervisor, TaskState};
use crate::uplink::status::SinkBoard;
use crate::uplink::status::SinkSnapshot;
use shuttlegate_core::analysis::{DeviceStats, Stroke};
use shuttlegate_core::protocol::close;
use shuttlegate_core::protocol::untrusted::clip;

/// The media type of OpenMetrics text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the device endpoint needs.
pub struct DeviceEndpoint {
    /// Who may connect and under which limits: read at each handshake, so a reload applies to
    /// the next connection.
    pub settings: SettingsHandle,
    pub connections: Arc<Connections>,
    pub handler: Arc<dyn DeviceHandler>,
    pub shutdown: Shutdown,
    /// Counts refusals and slows down addresses that keep failing (shared with the admin API).
    pub guard: Arc<AuthGuard>,
    /// Connections, messages, rejects and acks, for `/metrics`.
    pub metrics: Arc<ClientMetrics>,
}

/// The gateway's routes.
pub fn router(devices: Arc<DeviceEndpoint>) -> Router {
    Router::new()
        .route("/ws/esp32/{code}/", get(device_socket))
        .route("/ws/esp32/{code}", get(device_socket))
        .with_state(devices)
}

/// What `/metrics` reads at each scrape. Tools that hold only the analysis figures leave the
/// rest out ([`MetricsSources::analysis`]); the daemon gives all of them.
#[derive(Clone)]
pub struct MetricsSources {
    /// Swing latency, skipped batches, pending inputs.
    pub analysis: Arc<AnalysisMetrics>,
    /// Each supervised task's liveness and restarts.
    pub supervisor: Option<Supervisor>,
    /// The journal's size, age and consumer backlogs.
    pub journal: Option<Journal>,
    /// Refused handshakes and admin calls by reason, and the addresses slowed down.
    pub auth: Option<Arc<AuthGuard>>,
    /// The MQTT sink's counters (retained commands ignored), when it runs.
    pub mqtt: Option<crate::uplink::MqttCounters>,
    /// The listeners' connections, refusals and timeouts.
    pub listener: Option<Arc<super::listener::Gate>>,
    /// The clients' connections by role, messages, rejects, acks.
    pub clients: Option<Arc<ClientMetrics>>,
    /// Each uplink sink's state and backlog.
    pub sinks: Option<SinkBoard>,
    /// Whether the gateway's clock is synchronised.
    pub time_sync: Option<crate::time_sync::TimeSync>,
    /// The device conditions active (skewed clocks, stuck nodes).
    pub watch: Option<crate::device_watch::Watch>,
    /// Configuration reloads (SIGHUP) by outcome.
    pub reloads: Option<Arc<crate::config::ReloadCounts>>,
}

impl MetricsSources {
    /// Only the analysis figures.
    pub fn analysis(analysis: Arc<AnalysisMetrics>) -> MetricsSources {
        MetricsSources {
            analysis,
            supervisor: None,
            journal: None,
            auth: None,
            mqtt: None,
            listener: None,
            clients: None,
            sinks: None,
            time_sync: None,
            watch: None,
            reloads: None,
        }
    }
}

/// `/metrics`: the analysis task's figures, the supervised tasks, the journal.
pub fn metrics_routes(sources: MetricsSources) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(Arc::new(registry(sources)))
}

/// What `/metrics` would answer now (for tools and tests that have the metrics in hand).
pub fn render_metrics(sources: MetricsSources) -> String {
    // Writing into a String cannot fail, and the collector's own encoding only fails on that.
    encode(&registry(sources)).unwrap_or_default()
}

/// The registry's OpenMetrics text.
fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)?;
    Ok(body)
}

fn registry(sources: MetricsSources) -> Registry {
    let mut registry = Registry::with_prefix("shuttlegate");
    registry.register_collector(Box::new(AnalysisCollector(sources.analysis)));
    if let Some(supervisor) = sources.supervisor {
        registry.register_collector(Box::new(TaskCollector(supervisor)));
    }
    if let Some(journal) = sources.journal {
        registry.register_collector(Box::new(JournalCollector(journal)));
    }
    if let Some(guard) = sources.auth {
        registry.register_collector(Box::new(AuthCollector(guard)));
    }
    if let Some(mqtt) = sources.mqtt {
        registry.register(
            "mqtt_retained_commands_ignored",
            "Retained publishes on the command topic, ignored: the broker replaying an old command to a new subscription",
            mqtt.retained_commands_ignored,
        );
    }
    if let Some(gate) = sources.listener {
        registry.register_collector(Box::new(super::listener::ListenerCollector(gate)));
    }
    if let Some(clients) = sources.clients {
        registry.register_collector(Box::new(ClientCollector(clients)));
    }
    if let Some(sinks) = sources.sinks {
        registry.register_collector(Box::new(SinkCollector(sinks)));
    }
    if let Some(time_sync) = sources.time_sync {
        registry.register_collector(Box::new(crate::time_sync::ClockCollector(time_sync)));
    }
    if let Some(watch) = sources.watch {
        registry.register_collector(Box::new(crate::device_watch::WatchCollector(watch)));
    }
    if let Some(reloads) = sources.reloads {
        registry.register_collector(Box::new(ReloadCollector(reloads)));
    }
    registry
}

async fn metrics(State(registry): State<Arc<Registry>>) -> Response {
    match encode(&registry) {
        Ok(body) => ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(e) => {
            log::error!("rendering /metrics: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n").into_response()
        }
    }
}

/// Picks one figure of a stage's latency.
type Quantile = fn(&SwingLatency) -> std::time::Duration;

/// The analysis task's figures, read at each scrape. Latency quantiles are over every swing
/// since the daemon started (hdrhistogram, 0.1 % resolution), as gauges in seconds.
#[derive(Debug)]
struct AnalysisCollector(Arc<AnalysisMetrics>);

impl Collector for AnalysisCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = self.0.snapshot();
        let latency = now.swing_latency;
        let gauges = [
            (
                "swing_latency_p50_seconds",
                "Median time from receipt of the batch that completes a swing to the swing journaled and on the live broadcast",
                latency.p50,
            ),
            (
                "swing_latency_p99_seconds",
                "99th percentile of the swing latency (batch receipt to journaled and live)",
                latency.p99,
            ),
            (
                "swing_latency_max_seconds",
                "Longest swing latency (batch receipt to journaled and live)",
                latency.max,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value.as_secs_f64());
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters = [
            (
                "swings_published",
                "Swings published (journaled and live); each is one latency sample",
                latency.swings,
            ),
            (
                "analysis_batches_skipped",
                "Stored batches the live analysis skipped because its queue was full (replay re-analyses them)",
                now.skipped_batches,
            ),
        ];
        encode_counters(&mut encoder, counters)?;
        let stages = SwingStage::ALL.iter().zip(&now.stages).skip(1);
        let quantiles: [(&str, &str, Quantile); 3] = [
            ("p50", "Median", |l| l.p50),
            ("p99", "99th percentile", |l| l.p99),
            ("max", "Longest", |l| l.max),
        ];
        for (quantile, help, pick) in quantiles {
            let name = format!("swing_stage_{quantile}_seconds");
            let help = format!(
                "{help} of each part of the swing latency: durable (the completing batch's journal commit), wait (for the analysis task), analysis (of the completing input), journal (the swing's journal commit)"
            );
            let mut family = encoder.encode_descriptor(&name, &help, None, MetricType::Gauge)?;
            for (stage, latency) in stages.clone() {
                let value = pick(latency);
                let labels = [("stage", stage.as_str())];
                ConstGauge::new(value.as_secs_f64()).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut strokes = encoder.encode_descriptor(
            "swings",
            "Swings published (journaled and live), by stroke; resumed sessions' swings too",
            None,
            MetricType::Counter,
        )?;
        for (stroke, n) in Stroke::ALL.iter().zip(now.strokes) {
            ConstCounter::new(n).encode(strokes.encode_family(&[("stroke", stroke.as_str())])?)?;
        }
        encode_analysed(&mut encoder, &now.analysed)?;
        let pending = ConstGauge::new(i64::try_from(now.pending).unwrap_or(i64::MAX));
        pending.encode(encoder.encode_descriptor(
            "analysis_pending",
            "Inputs (stored batches, session finishes) handed to the live analysis whose results are not all out yet",
            None,
            pending.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Configuration reloads by outcome: applied, unchanged, refused (a restart key changed),
/// invalid (the file does not load). An operator's check that a SIGHUP took.
#[derive(Debug)]
struct ReloadCollector(Arc<crate::config::ReloadCounts>);

impl Collector for ReloadCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "config_reloads",
            "Configuration reloads (SIGHUP) by outcome: applied, unchanged, refused (a key that needs a restart changed), invalid (the file does not load)",
            None,
            MetricType::Counter,
        )?;
        for (outcome, n) in self.0.snapshot() {
            ConstCounter::new(n).encode(family.encode_family(&[("outcome", outcome)])?)?;
        }
        Ok(())
    }
}

/// One counter family `name`, a counter per `reason` label.
fn encode_by_reason(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counts: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(reason, n) in counts {
        ConstCounter::new(n).encode(family.encode_family(&[("reason", reason)])?)?;
    }
    Ok(())
}

/// What the device analysers took in and set aside: the samples a hub's clock or batching
/// made late, and the bursts of motion the detector judged not to be strokes, by reason — so
/// an operator can tell a court whose swings go missing from one that has no swings.
fn encode_analysed(
    encoder: &mut DescriptorEncoder,
    counted: &DeviceStats,
) -> Result<(), std::fmt::Error> {
    encode_counters(
        encoder,
        [
            (
                "analysis_samples",
                "Sensor samples the live analysis took in (each node's sample once; the resume's replay of unfinished sessions included)",
                counted.samples,
            ),
            (
                "analysis_events_dropped",
                "Swings a device analyser dropped because its bounded event queue was full",
                counted.events_dropped,
            ),
        ],
    )?;
    encode_by_reason(
        encoder,
        "analysis_samples_set_aside",
        "Samples the analysis did not use, by reason: late (older than a sample already analysed: beyond the reorder window), duplicate (a time already analysed), invalid (not finite, or from a node position the device does not carry), overflowed (the node's reorder buffer was full)",
        &[
            ("late", counted.late),
            ("duplicate", counted.duplicates),
            ("invalid", counted.invalid),
            ("overflowed", counted.overflowed),
        ],
    )?;
    encode_by_reason(
        encoder,
        "analysis_bursts_set_aside",
        "Bursts of rotation that crossed the swing trigger but were not reported as swings, by reason: no_stroke (no stroke's shape: handling, a slow wide turn), recovery (the racket coming back against the swing), backswing (the next stroke's backswing), settling (the racket brought back to ready after a swing), body_no_chain (a body node's burst with no racket swing and no proximal-to-distal sequence)",
        &[
            ("no_stroke", counted.rejected_bursts),
            ("recovery", counted.recoveries),
            ("backswing", counted.backswings),
            ("settling", counted.settlings),
            ("body_no_chain", counted.rejected_body_bursts),
        ],
    )?;
    Ok(())
}

/// Each supervised task: up (1 while running) and its restarts, labelled by the task's name.
#[derive(Debug)]
struct TaskCollector(Supervisor);

impl Collector for TaskCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tasks = self.0.snapshot();
        let mut up = encoder.encode_descriptor(
            "task_up",
            "1 while the supervised task runs; 0 while it waits to restart, has stopped or has failed",
            None,
            MetricType::Gauge,
        )?;
        for task in &tasks {
            let running = i64::from(task.state == TaskState::Running);
            ConstGauge::new(running).encode(up.encode_family(&[("task", task.name.as_str())])?)?;
        }
        let mut restarts = encoder.encode_descriptor(
            "task_restarts",
            "Deaths of the supervised task (panic, error, or an end before shutdown) after which it was restarted",
            None,
            MetricType::Counter,
        )?;
        for task in &tasks {
            ConstCounter::new(task.restarts)
                .encode(restarts.encode_family(&[("task", task.name.as_str())])?)?;
        }
        Ok(())
    }
}

/// The journal's size, age, pressure and each consumer's backlog, from [`Journal::stats`].
struct JournalCollector(Journal);

// `Journal` has no `Debug` (its writer thread and channels say nothing useful); a collector needs
// one.
impl std::fmt::Debug for JournalCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JournalCollector")
    }
}

impl Collector for JournalCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut gauges = vec![
            (
                "journal_bytes",
                "Bytes of the journal's segments on disk",
                int(stats.bytes),
            ),
            (
                "journal_max_bytes",
                "The journal's cap (journal.max_bytes)",
                int(stats.max_bytes),
            ),
            (
                "journal_segments",
                "Segment files of the journal",
                int(stats.segments as u64),
            ),
            (
                "journal_records",
                "Records held in the journal's segments",
                int(stats.records),
            ),
            (
                "journal_newest_id",
                "Id of the newest durable record",
                int(stats.newest_id),
            ),
            (
                "journal_full",
                "1 while the last append found the journal at its cap",
                i64::from(stats.full),
            ),
            (
                "journal_failed",
                "1 once the journal's writer stopped after an I/O error (appends fail until restart)",
                i64::from(stats.failed.is_some()),
            ),
        ];
        // Absent while the journal holds no record: a gauge at 0 would read as the epoch.
        if let Some(id) = stats.oldest_id {
            gauges.push((
                "journal_oldest_id",
                "Id of the oldest record still held",
                int(id),
            ));
        }
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        if let Some(ms) = stats.oldest_ts_ms {
            let gauge = ConstGauge::new(ms as f64 / 1000.0);
            gauge.encode(encoder.encode_descriptor(
                "journal_oldest_record_timestamp_seconds",
                "Time (Unix seconds) of the oldest record still held",
                None,
                gauge.metric_type(),
            )?)?;
        }
        let counters = [
            (
                "journal_refused_appends",
                "Appends refused because the journal was at its cap",
                stats.refused_appends,
            ),
            (
                "journal_dropped_records",
                "Batch records dropped to make room (when_full = drop_oldest_raw)",
                stats.dropped_records,
            ),
            (
                "journal_dropped_bytes",
                "Bytes freed by dropping batch records",
                stats.dropped_bytes,
            ),
            (
                "journal_corrupt_skipped",
                "Corrupt records skipped by readers (the same record may count more than once)",
                stats.corrupt_skipped_on_read,
            ),
        ];
        encode_counters(&mut encoder, counters)?;
        let ratios = [
            (
                "journal_cap_used_ratio",
                "Share of the journal's cap its segments take (journal_bytes / journal_max_bytes)",
                ratio(stats.bytes, stats.max_bytes),
            ),
            (
                "journal_compression_ratio",
                "Bytes of the held records' bodies before compression over the bytes stored (higher is better; 0 while the journal holds nothing)",
                ratio(stats.raw_body_bytes, stats.stored_body_bytes),
            ),
        ];
        for (name, help, value) in ratios {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let fsync = self.0.fsync_latency();
        fsync.encode(encoder.encode_descriptor(
            "journal_fsync_seconds",
            "How long each fsync of the open segment took (one per group commit, since start)",
            None,
            MetricType::Histogram,
        )?)?;
        let mut cursors = encoder.encode_descriptor(
            "journal_consumer_cursor",
            "Id of the last record the consumer (an uplink sink) has acknowledged",
            None,
            MetricType::Gauge,
        )?;
        for (consumer, id) in &stats.cursors {
            ConstGauge::new(int(*id))
                .encode(cursors.encode_family(&[("consumer", consumer.as_str())])?)?;
        }
        let mut backlog = encoder.encode_descriptor(
            "journal_consumer_backlog",
            "Ids between the consumer's cursor and the newest durable record: what it has yet to deliver (ids of dropped records count too)",
            None,
            MetricType::Gauge,
        )?;
        for (consumer, id) in &stats.cursors {
            let behind = int(stats.newest_id.saturating_sub(*id));
            ConstGauge::new(behind)
                .encode(backlog.encode_family(&[("consumer", consumer.as_str())])?)?;
        }
        Ok(())
    }
}

/// `part / whole`, 0 when `whole` is 0.
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A sink figure: its name, help and how to read it off a snapshot.
type SinkFigure<T> = (&'static str, &'static str, fn(&SinkSnapshot) -> T);

/// Each uplink sink's connection and delivery counts, from its latest [`SinkSnapshot`].
#[derive(Debug)]
struct SinkCollector(SinkBoard);

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sinks = self.0.snapshots();
        // The backlog is `journal_consumer_backlog{consumer}`: the sink's cursor is the journal's.
        let gauges: [SinkFigure<i64>; 2] = [
            (
                "uplink_connected",
                "1 while the uplink sink is connected to its broker or hub",
                |s| i64::from(s.connected),
            ),
            (
                "uplink_in_flight",
                "Records sent and awaiting the cloud's acknowledgement",
                |s| i64::try_from(s.in_flight).unwrap_or(i64::MAX),
            ),
        ];
        for (name, help, pick) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (sink, snapshot) in &sinks {
                ConstGauge::new(pick(snapshot))
                    .encode(family.encode_family(&[("sink", *sink)])?)?;
            }
        }
        let counters: [SinkFigure<u64>; 4] = [
            (
                "uplink_acked_records",
                "Records the cloud acknowledged since the sink's start (re-sends count once per ack; a restarted sink counts from 0)",
                |s| s.acked,
            ),
            (
                "uplink_sent_records",
                "Records sent since the sink's start, re-sends included",
                |s| s.sent,
            ),
            (
                "uplink_connects",
                "Connections the sink made since its start",
                |s| s.connects,
            ),
            (
                "uplink_errors",
                "Connection or protocol errors of the sink since its start",
                |s| s.errors,
            ),
        ];
        for (name, help, pick) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (sink, snapshot) in &sinks {
                ConstCounter::new(pick(snapshot))
                    .encode(family.encode_family(&[("sink", *sink)])?)?;
            }
        }
        Ok(())
    }
}

/// Refusals by reason and the addresses slowed down, from [`AuthGuard::stats`].
#[derive(Debug)]
struct AuthCollector(Arc<AuthGuard>);

impl Collector for AuthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let AuthStats {
            refused,
            delayed,
            failing_addresses,
            evicted_addresses,
        } = self.0.stats();
        let mut family = encoder.encode_descriptor(
            "auth_refusals",
            "Device handshakes and admin calls refused (all answered the same 401), by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in refused {
            ConstCounter::new(n).encode(family.encode_family(&[("reason", reason.as_str())])?)?;
        }
        encode_counters(
            &mut encoder,
            [
                (
                    "auth_refusals_delayed",
                    "Refusals held back because their address had failed repeatedly",
                    delayed,
                ),
                (
                    "auth_failing_addresses_evicted",
                    "Addresses forgotten early to keep the table of failing addresses bounded",
                    evicted_addresses,
                ),
            ],
        )?;
        let gauge = ConstGauge::new(i64::try_from(failing_addresses).unwrap_or(i64::MAX));
        gauge.encode(encoder.encode_descriptor(
            "auth_failing_addresses",
            "Addresses with recent authentication failures (bounded table)",
            None,
            gauge.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Per-socket buffers and limits. tungstenite's defaults (128 KiB read buffer per connection,
/// unlimited write buffer, 64 MiB messages) are sized for servers with memory to spare; a Pi
/// with a hundred hubs is not one.
pub fn socket_limits(upgrade: WebSocketUpgrade, limits: &ConnectionLimits) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
}

async fn device_socket(
    State(endpoint): State<Arc<DeviceEndpoint>>,
    uri: Uri,
    Path(code): Path<String>,
    Query(query): Query<TokenQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let token = query.presented(&headers);
    let settings = endpoint.settings.current();
    let admitted = DeviceDirectory::of(&settings)
        .admit(&code, token, peer.ip())
        .and_then(|takeover| {
            let held = endpoint.connections.may_open(&code, peer.ip());
            held.map(|()| takeover).map_err(|held| {
                // The code is a configured one here: safe to log as is.
                log::info!("device {code} from {peer}: {held}");
                Refusal::CodeHeld
            })
        });
    let takeover = match admitted {
        Ok(takeover) => takeover,
        Err(refusal) => return refuse_device(&endpoint, refusal, &uri, peer).await,
    };
    if endpoint.shutdown.token.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let limits = ConnectionLimits::of(&settings);
    let upgrade = socket_limits(upgrade, &limits);
    upgrade.on_upgrade(move |socket| {
        let tasks = endpoint.shutdown.tasks.clone();
        tasks.track_future(run_device(endpoint, code, peer, takeover, socket, limits))
    })
}

/// Answers a refused handshake: logged with its reason, counted, held back if `peer` keeps
/// failing, then the same 401 as every other refusal.
async fn refuse_device(
    endpoint: &DeviceEndpoint,
    refusal: Refusal,
    uri: &Uri,
    peer: SocketAddr,
) -> Response {
    let delay = endpoint.guard.refused(refusal, peer.ip());
    log::warn!(
        "refused device `{}` from {peer}: {refusal}{}",
        clip(code_as_sent(uri)),
        if delay.is_zero() {
            String::new()
        } else {
            format!(" (answer held {delay:?}: repeated failures from this address)")
        }
    );
    auth::hold(delay, &endpoint.shutdown).await;
    auth::unauthorized()
}

/// The `{code}` of `/ws/esp32/{code}/` as the client sent it, still percent-encoded: logging
/// the decoded form would let `%0A` start a forged log line.
fn code_as_sent(uri: &Uri) -> &str {
    let path = uri.path();
    path.strip_prefix("/ws/esp32/")
        .map_or(path, |rest| rest.trim_end_matches('/'))
}

/// Registers an upgraded device connection and serves it until it ends. The code was checked
/// free at the handshake; if another connection took it meanwhile, this one is closed (1008).
async fn run_device(
    endpoint: Arc<DeviceEndpoint>,
    code: String,
    peer: SocketAddr,
    takeover: Takeover,
    mut socket: axum::extract::ws::WebSocket,
    limits: ConnectionLimits,
) {
    let (handle, end) =
        match endpoint
            .connections
            .open(&code, peer.ip(), takeover, limits.outbound_queue)
        {
            Ok(opened) => opened,
            Err(held) => {
                endpoint.guard.refused(Refusal::CodeHeld, peer.ip());
                log::warn!("refused device `{code}` from {peer} after its upgrade: {held}");
                let frame = axum::extract::ws::CloseFrame {
                    code: close::POLICY_VIOLATION,
                    reason: "code held by another connection".into(),
                };
                // The socket is dropped next either way: a peer that cannot take the close frame
                // needs nothing more from us.
                let _ = socket
                    .send(axum::extract::ws::Message::Close(Some(frame)))
                    .await;
                return;
            }
        };
    log::info!("device {code} connected from {peer}");
    let accepted = device::Accepted {
        device: code,
        peer,
        socket,
        handle,
        end,
        metrics: endpoint.metrics.clone(),
    };
    device::serve(
        endpoint.handler.clone(),
        accepted,
        limits,
        endpoint.shutdown.token.clone(),
    )
    .await;
}

/// Encodes `(name, help, value)` counters read at scrape time.
fn encode_counters(
    encoder: &mut DescriptorEncoder,
    counters: impl IntoIterator<Item = (&'static str, &'static str, u64)>,
) -> Result<(), std::fmt::Error> {
    for (name, help, value) in counters {
        let counter = ConstCounter::new(value);
        counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::pipeline::InputTimes;

    fn rendered(metrics: Arc<AnalysisMetrics>) -> String {
        render_metrics(MetricsSources::analysis(metrics))
    }

    fn value(body: &str, name: &str) -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample `{name}` in\n{body}"))
            .parse()
            .expect("a number")
    }

    #[test]
    fn metrics_show_the_swing_latency_and_skips_as_openmetrics() {
        let metrics = Arc::new(AnalysisMetrics::default());
        for ms in [4, 6, 30] {
            let received = Instant::now();
            let queued = received + Duration::from_millis(1);
            let input = InputTimes {
                received,
                queued,
                started: queued,
                analysed: queued,
            };
            metrics.record_swing(&input, received + Duration::from_millis(ms));
        }
        let body = rendered(metrics);
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(value(&body, "shuttlegate_swings_published_total"), 3.0);
        assert_eq!(
            value(&body, "shuttlegate_analysis_batches_skipped_total"),
            0.0
        );
        assert_eq!(value(&body, "shuttlegate_analysis_pending"), 0.0);
        let p50 = value(&body, "shuttlegate_swing_latency_p50_seconds");
        assert!((p50 - 0.006).abs() < 1e-5, "{p50}");
        let max = value(&body, "shuttlegate_swing_latency_max_seconds");
        assert!((max - 0.030).abs() < 1e-4, "{max}");
        let durable = value(
            &body,
            "shuttlegate_swing_stage_p99_seconds{stage=\"durable\"}",
        );
        assert!((durable - 0.001).abs() < 1e-5, "{durable}");
        let journal = value(
            &body,
            "shuttlegate_swing_stage_max_seconds{stage=\"journal\"}",
        );
        assert!((journal - 0.029).abs() < 3e-4, "{journal}");
        assert!(
            !body.contains("stage=\"total\""),
            "the total is not repeated as a stage"
        );
    }

    #[test]
    fn metrics_sum_what_the_analysers_set_aside_by_reason() {
        let metrics = Arc::new(AnalysisMetrics::default());
        let counted = DeviceStats {
            samples: 400,
            late: 3,
            settlings: 1,
            backswings: 2,
            ..DeviceStats::default()
        };
        metrics.add_analysed(counted);
        metrics.add_analysed(counted);
        let body = rendered(metrics);
        assert_eq!(value(&body, "shuttlegate_analysis_samples_total"), 800.0);
        let set_aside = |reason: &str| {
            value(
                &body,
                &format!("shuttlegate_analysis_samples_set_aside_total{{reason=\"{reason}\"}}"),
            )
        };
        assert_eq!(set_aside("late"), 6.0);
        assert_eq!(set_aside("invalid"), 0.0);
        let bursts = |reason: &str| {
            value(
                &body,
                &format!("shuttlegate_analysis_bursts_set_aside_total{{reason=\"{reason}\"}}"),
            )
        };
        assert_eq!(bursts("settling"), 2.0);
        assert_eq!(bursts("backswing"), 4.0);
        assert_eq!(bursts("no_stroke"), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn metrics_show_each_supervised_task_up_and_its_restarts() {
        use crate::supervise::Supervisor;
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let token = shutdown.token.clone();
        supervisor.spawn_critical("cloud-commands", async move {
            token.cancelled().await;
            Ok::<(), String>(())
        });
        supervisor.spawn_restarting(
            "uplink-mqtt",
            crate::supervise::restart_backoff(),
            || async { Err::<(), _>("broker gone") },
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut sources = MetricsSources::analysis(Arc::new(AnalysisMetrics::default()));
        sources.supervisor = Some(supervisor);
        let body = render_metrics(sources);
        assert_eq!(
            value(&body, "shuttlegate_task_up{task=\"cloud-commands\"}"),
            1.0
        );
        assert_eq!(
            value(&body, "shuttlegate_task_up{task=\"uplink-mqtt\"}"),
            0.0
        );
        assert_eq!(
            value(
                &body,
                "shuttlegate_task_restarts_total{task=\"uplink-mqtt\"}"
            ),
            1.0
        );
        assert!(shutdown.drain(Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn metrics_show_the_journals_size_age_and_each_consumers_backlog() {
        use crate::journal::{Document, JournalOptions, RecordBody};
        let tmp = tempfile::tempdir().unwrap();
        let mut options = JournalOptions::new(tmp.path().join("journal"));
        options.consumers = vec!["mqtt".to_owned()];
        let (journal, _) = Journal::open(options).unwrap();
        for _ in 0..5 {
            let event = RecordBody::Event(Document {
                device: Some("racket-01".to_owned()),
                session_id: None,
                json: r#"{"type":"device_connected"}"#.to_owned(),
            });
            journal.append(event).await.unwrap();
        }
        journal.ack("mqtt", 2).unwrap();
        let mut sources = MetricsSources::analysis(Arc::new(AnalysisMetrics::default()));
        sources.journal = Some(journal.clone());
        let body = render_metrics(sources);
        assert_eq!(value(&body, "shuttlegate_journal_records"), 5.0);
        assert_eq!(value(&body, "shuttlegate_journal_segments"), 1.0);
        assert!(value(&body, "shuttlegate_journal_bytes") > 0.0);
        assert_eq!(value(&body, "shuttlegate_journal_oldest_id"), 1.0);
        assert_eq!(value(&body, "shuttlegate_journal_newest_id"), 5.0);
        assert!(value(&body, "shuttlegate_journal_oldest_record_timestamp_seconds") > 1.6e9);
        assert_eq!(
            value(
                &body,
                "shuttlegate_journal_consumer_cursor{consumer=\"mqtt\"}"
            ),
            2.0
        );
        assert_eq!(
            value(
                &body,
                "shuttlegate_journal_consumer_backlog{consumer=\"mqtt\"}"
            ),
            3.0
        );
        assert_eq!(
            value(&body, "shuttlegate_journal_refused_appends_total"),
            0.0
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        journal.close().await.unwrap();
    }
}
