//! The MQTT sink: a thin async driver over [`Delivery`] and [`Ledger`] that owns one rumqttc
//! client and event loop.
//!
//! How it stays clear of rumqttc 0.25's traps (docs/uplink.md has the long form):
//! - **One task** polls the event loop without pause and is also the only one that publishes,
//!   with `try_publish` (never `publish().await` inside the polling task, rumqtt#1025). The
//!   `poll()` future is never cancelled: it owns the event loop and hands it back when it
//!   completes, while the task's `select!` serves reads, acks and timers beside it.
//! - **Acks**: `publish` returns when queued. We match `Outgoing::Publish(pkid)` to our
//!   submissions and `PubAck(pkid)` to journal ids ([`Ledger`]); the cursor moves only on
//!   `PubAck`, and only over a contiguous acknowledged prefix ([`Delivery`]).
//! - **Sessions**: `clean_session = false` with a stable client id keeps command subscriptions
//!   and queued commands across reconnects. rumqttc drops its resend queue on a fresh session
//!   and replays it (with reused pkids) on a resumed one; we clear that queue on every
//!   disconnect and replay from our own cursor instead, so both cases behave the same.
//! - **Stale events**: after an error rumqttc still holds events of the dead connection and
//!   yields them after the next ConnAck; we drop them with the connection.
//! - **Reconnects** wait with exponential backoff and jitter (`poll()` alone retries at once).
//! - **Bounded**: at most `inflight` publishes outstanding; the request channel is sized so
//!   `try_publish` never finds it full.
//! - **Retained commands** are the broker replaying an old message to each new subscription
//!   (and we subscribe on every connect): ignored, logged and counted, never run again.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, LastWill, Outgoing, QoS,
    TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::command::{
    CloudCommand, CommandError, CommandOutcome, CommandResult, ValidCommand, command_id_of,
    parse_command,
};
use super::delivery::{Delivery, LaneSpec};
use super::envelope::{check_packet_size, json_envelope, mqtt_route, raw_envelope};
use super::feed::{Feed, SinkStart};
use super::ledger::{Ledger, Tag};
use super::outbox::{Outbox, OutboxRecord};
use super::status::{
    MqttCounters, ReplayProgress, SinkSnapshot, now_ms, online_status, publish_snapshot,
};
use super::tls::{TlsFiles, client_config};
use super::topics::{Topics, client_id};
use super::{BrokerUrl, UplinkError};
use crate::config::{Secret, SecretUrl};
use crate::journal::RecordKind;

/// Settings of the MQTT sink (the daemon maps `[uplink.mqtt]` onto these).
#[derive(Debug, Clone)]
pub struct MqttOptions {
    /// `mqtt://host:port` or `mqtts://host:port` (ports default to 1883 / 8883); logged
    /// redacted.
    pub url: SecretUrl,
    /// Defaults to [`client_id`]`(venue, court)`.
    pub client_id: Option<String>,
    pub topic_prefix: String,
    pub venue: String,
    pub court: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: TlsFiles,
    pub keep_alive: Duration,
    /// Limit on TCP connect + TLS + CONNECT/CONNACK, and on each network flush (rumqttc's
    /// default of 5 s is short for a TLS handshake over a poor venue WAN). Whole seconds.
    pub connect_timeout: Duration,
    /// Publishes unacknowledged at once (rumqttc's `inflight`).
    pub inflight: u16,
    /// Largest packet in either direction; must exceed the largest raw batch envelope.
    pub max_packet_bytes: usize,
    /// Raw batches per second while draining (`None`: unpaced).
    pub replay_rate: Option<f64>,
    /// Of `inflight`, how many slots raw batches may take (the rest stay free for results).
    pub raw_in_flight: usize,
    /// Records per journal read.
    pub read_batch: usize,
    /// Device codes commands may name.
    pub devices: Vec<String>,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How often the retained gateway status is refreshed while the backlog changes, and
    /// replay progress is logged.
    pub status_interval: Duration,
    /// How long the daemon has to answer a command before a `timeout` error result.
    pub command_timeout: Duration,
    /// Cursor name in the journal.
    pub consumer: String,
    /// Shared with `/metrics` and across the sink's restarts.
    pub counters: MqttCounters,
}

impl MqttOptions {
    /// Defaults for everything but where to connect and the court's names.
    pub fn new(url: &str, topic_prefix: &str, venue: &str, court: &str) -> Self {
        Self {
            url: url.into(),
            client_id: None,
            topic_prefix: topic_prefix.into(),
            venue: venue.into(),
            court: court.into(),
            username: None,
            password: None,
            tls: TlsFiles::default(),
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            inflight: 32,
            max_packet_bytes: 1024 * 1024,
            replay_rate: Some(5000.0),
            raw_in_flight: 24,
            read_batch: 256,
            devices: Vec::new(),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            status_interval: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            consumer: "mqtt".into(),
            counters: MqttCounters::default(),
        }
    }

    /// A CA file to trust instead of the system store.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }
}

/// A message that is not a journal record.
#[derive(Debug, Clone)]
struct Control {
    topic: String,
    payload: String,
    retain: bool,
    /// Re-sent after a reconnect (command results); the status is re-published anyway.
    resend: bool,
}

/// At most this many command results wait to be published.
const MAX_CONTROL_QUEUE: usize = 256;
/// At most this many commands wait for the daemon's answer.
const MAX_PENDING_COMMANDS: usize = 64;

type CommandReply = (ValidCommand, Result<CommandOutcome, CommandError>);

/// A running MQTT sink.
pub struct MqttSink {
    /// The sink's state, updated as it changes.
    pub snapshot: watch::Receiver<SinkSnapshot>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the MQTT sink. Commands from the cloud go to `commands`; the sink stops (publishing
/// `offline` and disconnecting cleanly) when `shutdown` is cancelled.
pub fn spawn<O: Outbox>(
    options: MqttOptions,
    outbox: Arc<O>,
    commands: mpsc::Sender<CloudCommand>,
    shutdown: CancellationToken,
) -> Result<MqttSink, UplinkError> {
    let topics = Topics::new(&options.topic_prefix, &options.venue, &options.court)?;
    let (client, eventloop) = build_client(&options, &topics)?;
    let start = SinkStart::new(
        "mqtt",
        &outbox,
        &options.consumer,
        lanes(&options),
        usize::from(options.inflight),
        options.read_batch,
    );
    let driver = Driver {
        backoff: Backoff::new(options.backoff_initial, options.backoff_max),
        durable_rx: start.durable_rx,
        options,
        topics,
        client,
        delivery: start.delivery,
        ledger: Ledger::default(),
        control: VecDeque::new(),
        feed: start.feed,
        replies: JoinSet::new(),
        commands,
        snapshot: start.snapshot_tx,
        stats: start.stats,
        last_status_backlog: None,
    };
    let task = tokio::spawn(driver.run(eventloop, shutdown));
    Ok(MqttSink {
        snapshot: start.snapshot,
        task,
    })
}

fn lanes(options: &MqttOptions) -> Vec<LaneSpec> {
    let inflight = usize::from(options.inflight);
    vec![
        LaneSpec {
            name: "results",
            kinds: vec![RecordKind::Swing, RecordKind::Summary, RecordKind::Event],
            rate: None,
            burst: 1,
            max_in_flight: inflight,
        },
        LaneSpec {
            name: "raw",
            kinds: vec![RecordKind::Batch],
            rate: options.replay_rate,
            burst: 64,
            max_in_flight: options.raw_in_flight.clamp(1, inflight),
        },
    ]
}

fn offline_status(options: &MqttOptions) -> String {
    serde_json::json!({"state": "offline", "venue": options.venue, "court": options.court})
        .to_string()
}

fn build_client(
    options: &MqttOptions,
    topics: &Topics,
) -> Result<(AsyncClient, EventLoop), UplinkError> {
    let url = BrokerUrl::parse(options.url.expose())?;
    let id = options
        .client_id
        .clone()
        .unwrap_or_else(|| client_id(&options.venue, &options.court));
    let mut mqtt = rumqttc::MqttOptions::new(id, url.host.clone(), url.port);
    mqtt.set_clean_session(false)
        .set_keep_alive(options.keep_alive)
        .set_inflight(options.inflight.max(1))
        .set_max_packet_size(options.max_packet_bytes, options.max_packet_bytes)
        .set_last_will(LastWill::new(
            topics.status(),
            offline_status(options),
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &options.username {
        let password = options.password.as_ref().map_or("", Secret::expose);
        mqtt.set_credentials(user, password);
    }
    if url.tls {
        let config = client_config(&options.tls)?;
        mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    }
    // Room for a full window of publishes plus subscribe/disconnect: `try_publish` never
    // finds the channel full.
    let cap = usize::from(options.inflight) + 16;
    let (client, mut eventloop) = AsyncClient::new(mqtt, cap);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_connection_timeout(options.connect_timeout.as_secs().max(1));
    eventloop.set_network_options(network);
    Ok((client, eventloop))
}

/// The event loop's poll in flight; it owns the event loop while it runs.
type PollFuture =
    std::pin::Pin<Box<dyn Future<Output = (EventLoop, Result<Event, ConnectionError>)> + Send>>;

/// Polls the event loop once after `delay`, and gives it back: the future owns the event loop,
/// so it is never dropped mid-poll.
async fn poll_once(
    mut eventloop: EventLoop,
    delay: Duration,
) -> (EventLoop, Result<Event, ConnectionError>) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let event = eventloop.poll().await;
    (eventloop, event)
}

struct Driver<O: Outbox> {
    options: MqttOptions,
    topics: Topics,
    client: AsyncClient,
    delivery: Delivery,
    ledger: Ledger<Control>,
    /// Messages waiting to be published before the next record.
    control: VecDeque<Control>,
    feed: Feed<O>,
    replies: JoinSet<CommandReply>,
    durable_rx: watch::Receiver<u64>,
    commands: mpsc::Sender<CloudCommand>,
    snapshot: watch::Sender<SinkSnapshot>,
    stats: SinkSnapshot,
    backoff: Backoff,
    last_status_backlog: Option<u64>,
}

impl<O: Outbox> Driver<O> {
    async fn run(mut self, eventloop: EventLoop, shutdown: CancellationToken) {
        let durable = *self.durable_rx.borrow_and_update();
        self.delivery.handle_durable(durable);
        let mut poll: PollFuture = Box::pin(poll_once(eventloop, Duration::ZERO));
        let mut tick = tokio::time::interval(at_least_10ms(self.options.status_interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut progress = ReplayProgress::new(self.options.read_batch as u64);
        loop {
            self.pump();
            let wake = self.delivery.next_wakeup(Instant::now());
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                (eventloop, event) = &mut poll => {
                    let mut eventloop = eventloop;
                    let delay = self.handle_event(&mut eventloop, event);
                    poll = Box::pin(poll_once(eventloop, delay));
                }
                Some(job) = self.feed.jobs.join_next() => {
                    self.feed.handle_job(job, &mut self.delivery, &mut self.stats);
                }
                Some(reply) = self.replies.join_next() => self.handle_reply(reply),
                Ok(()) = self.durable_rx.changed() => {
                    let durable = *self.durable_rx.borrow_and_update();
                    self.delivery.handle_durable(durable);
                }
                () = sleep_until(wake), if wake.is_some() => {}
                _ = tick.tick() => {
                    self.refresh_status();
                    let (cursor, backlog) = (self.delivery.cursor(), self.delivery.backlog());
                    if let Some(line) = progress.handle_tick(Instant::now(), cursor, backlog) {
                        log::info!("uplink mqtt: {line}");
                    }
                }
            }
            self.publish_snapshot();
        }
        self.shut_down(poll).await;
    }

    /// Issues reads and publishes what the window allows.
    fn pump(&mut self) {
        self.feed.issue_reads(&mut self.delivery);
        let window = usize::from(self.options.inflight);
        while self.delivery.is_connected() && self.ledger.in_flight() < window {
            if let Some(control) = self.control.pop_front() {
                self.submit_control(control);
                continue;
            }
            let Some(record) = self.delivery.poll_send(Instant::now()) else {
                break;
            };
            self.submit_record(record);
        }
    }

    fn submit_control(&mut self, control: Control) {
        let (topic, retain) = (control.topic.clone(), control.retain);
        let payload = control.payload.clone().into_bytes();
        if self.try_publish(topic, retain, payload) {
            self.ledger.handle_submitted(Tag::Control(control));
        }
    }

    fn submit_record(&mut self, record: OutboxRecord) {
        let id = record.id;
        let limit = self.options.max_packet_bytes;
        let encoded = mqtt_route(&self.topics, &record).and_then(|route| {
            let payload = match record.kind {
                RecordKind::Batch => raw_envelope(&record)?,
                _ => json_envelope(&record)?.into_bytes(),
            };
            check_packet_size(id, &route.topic, payload.len(), limit)?;
            Ok((route, payload))
        });
        match encoded {
            Ok((route, payload)) => {
                if self.try_publish(route.topic, route.retain, payload) {
                    self.ledger.handle_submitted(Tag::Record(id));
                    self.stats.sent += 1;
                }
            }
            Err(e) => {
                log::error!("uplink mqtt: skipping record {id}, it cannot be sent: {e}");
                self.stats.skipped += 1;
                self.ack_record(id);
            }
        }
    }

    fn try_publish(&mut self, topic: String, retain: bool, payload: Vec<u8>) -> bool {
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            Ok(()) => true,
            Err(e) => {
                // Cannot happen while the window is below the channel's capacity; if it does,
                // drop the connection so everything is resent from the cursor.
                self.note_error(format!("publish not queued: {e}"));
                let _ = self.client.try_disconnect();
                false
            }
        }
    }

    fn handle_event(
        &mut self,
        eventloop: &mut EventLoop,
        event: Result<Event, ConnectionError>,
    ) -> Duration {
        match event {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                self.handle_connack(ack.session_present);
                Duration::ZERO
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Err(e) = self.ledger.handle_outgoing_publish(pkid) {
                    self.note_error(e.to_string());
                    let _ = self.client.try_disconnect();
                }
                Duration::ZERO
            }
            Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                if let Some(Tag::Record(id)) = self.ledger.handle_puback(ack.pkid) {
                    self.ack_record(id);
                }
                Duration::ZERO
            }
            Ok(Event::Incoming(Incoming::Publish(publish))) => {
                if publish.topic == self.topics.commands() {
                    self.handle_command_publish(&publish);
                }
                Duration::ZERO
            }
            Ok(_) => Duration::ZERO,
            Err(e) => self.handle_connection_error(eventloop, e),
        }
    }

    fn handle_connack(&mut self, session_present: bool) {
        log::info!(
            "uplink mqtt: connected to {} (session_present={session_present}), {} records to \
             deliver from id {}",
            self.options.url,
            self.delivery.backlog(),
            self.delivery.cursor()
        );
        self.backoff.reset();
        self.stats.connects += 1;
        self.delivery.handle_connected();
        if let Err(e) = self
            .client
            .try_subscribe(self.topics.commands(), QoS::AtLeastOnce)
        {
            self.note_error(format!("subscribe not queued: {e}"));
        }
        self.last_status_backlog = None;
        self.refresh_status();
    }

    fn handle_connection_error(
        &mut self,
        eventloop: &mut EventLoop,
        e: ConnectionError,
    ) -> Duration {
        // rumqttc moved unacknowledged publishes into `pending` to resend them; we resend
        // from the journal instead, so both a fresh and a resumed session behave the same.
        eventloop.pending.clear();
        // Events of the dead connection are still buffered (an `Outgoing::Publish` whose write
        // failed, `PubAck`s read before a failed flush) and would be handed out after the next
        // ConnAck, where they would match the new connection's publishes. Drop them: their
        // records are resent.
        eventloop.state.events.clear();
        for tag in self.ledger.reset() {
            if let Tag::Control(control) = tag
                && control.resend
            {
                self.control.push_front(control);
            }
        }
        self.control.retain(|c| c.resend);
        self.delivery.handle_disconnected();
        let delay = self.backoff.next_delay(rand::rng().random::<f64>());
        let what = if self.backoff.failures() > 1 || self.stats.connects == 0 {
            "cannot connect to"
        } else {
            "lost connection to"
        };
        let reason = explain(&e);
        log::warn!(
            "uplink mqtt: {what} {}: {reason}; retrying in {} ms",
            self.options.url,
            delay.as_millis()
        );
        self.note_error(reason);
        delay
    }

    fn ack_record(&mut self, id: u64) {
        self.stats.acked += 1;
        self.stats.last_ack_ms = Some(now_ms());
        if let Some(cursor) = self.delivery.handle_ack(id) {
            self.feed.cursor_moved(cursor);
        }
    }

    /// Screens a publish on the command topic before it may run. A publish with the retain
    /// flag is the broker replaying a stored message to a new subscription — and the sink
    /// subscribes again on every connect — so it is an old command that already ran (or was
    /// refused) when it was first sent: it is counted and logged, never run again. Commands
    /// sent while the gateway was offline still arrive, once, from its persistent session's
    /// queue without the flag. An empty payload is how the cloud deletes a retained message;
    /// it is no command.
    fn handle_command_publish(&mut self, publish: &rumqttc::Publish) {
        if publish.retain {
            self.stats.retained_commands_ignored += 1;
            self.options.counters.retained_commands_ignored.inc();
            log::warn!(
                "uplink mqtt: ignoring a retained command on {} (command_id {:?}): the broker \
                 replays it on every subscription, so it is never run; the cloud should publish \
                 commands without retain, and can delete this one with an empty retained publish",
                publish.topic,
                command_id_of(&publish.payload)
            );
            return;
        }
        if publish.payload.is_empty() {
            return log::debug!("uplink mqtt: a retained command was deleted");
        }
        self.handle_command(&publish.payload);
    }

    fn handle_command(&mut self, payload: &[u8]) {
        let command = match parse_command(payload, &self.options.devices) {
            Ok(c) => c,
            Err(e) => {
                return self.queue_result(CommandResult::error(
                    command_id_of(payload),
                    &e,
                    now_ms(),
                ));
            }
        };
        log::info!(
            "uplink mqtt: command {} {} for {} from the cloud",
            command.command_id,
            command.command,
            command.device
        );
        if self.replies.len() >= MAX_PENDING_COMMANDS {
            let id = Some(command.command_id.clone());
            return self.queue_result(CommandResult::error(id, &CommandError::Busy, now_ms()));
        }
        let (reply, answer) = oneshot::channel();
        let sent = self.commands.try_send(CloudCommand {
            device: command.device.clone(),
            command: command.command.clone(),
            params: command.params.clone(),
            command_id: command.command_id.clone(),
            reply,
        });
        if sent.is_err() {
            let id = Some(command.command_id.clone());
            return self.queue_result(CommandResult::error(id, &CommandError::Busy, now_ms()));
        }
        let timeout = self.options.command_timeout;
        self.replies.spawn(async move {
            let outcome = match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(_)) => Err(CommandError::Busy),
                Err(_) => Err(CommandError::Timeout(timeout.as_secs())),
            };
            (command, outcome)
        });
    }

    fn handle_reply(&mut self, reply: Result<CommandReply, tokio::task::JoinError>) {
        let Ok((command, outcome)) = reply else {
            return self.note_error("command task failed".into());
        };
        let result = match outcome {
            Ok(outcome) => CommandResult::CommandAck {
                command_id: command.command_id,
                device: command.device,
                command: command.command,
                outcome,
                ts_ms: now_ms(),
            },
            Err(e) => CommandResult::error(Some(command.command_id), &e, now_ms()),
        };
        self.queue_result(result);
    }

    fn queue_result(&mut self, result: CommandResult) {
        if self.control.len() >= MAX_CONTROL_QUEUE {
            log::warn!("uplink mqtt: command result queue full; dropping {result:?}");
            return;
        }
        self.control.push_back(Control {
            topic: self.topics.command_results(),
            payload: result.to_json(),
            retain: false,
            resend: true,
        });
    }

    /// Publishes the retained gateway status if the backlog changed since the last one.
    fn refresh_status(&mut self) {
        let backlog = self.delivery.backlog();
        if !self.delivery.is_connected() || self.last_status_backlog == Some(backlog) {
            return;
        }
        self.last_status_backlog = Some(backlog);
        let status = online_status(&self.delivery, &self.options.venue, &self.options.court);
        // The control queue is bounded; a status replaces any status still waiting.
        self.control.retain(|c| c.resend);
        self.control.push_front(Control {
            topic: self.topics.status(),
            // A plain struct always serialises.
            payload: serde_json::to_string(&status).expect("status serialises"),
            retain: true,
            resend: false,
        });
    }

    fn note_error(&mut self, error: String) {
        self.stats.errors += 1;
        self.stats.last_error = Some(error);
    }

    fn publish_snapshot(&mut self) {
        let in_flight = self.ledger.in_flight();
        publish_snapshot(&self.snapshot, &self.stats, &self.delivery, in_flight);
    }

    /// Publishes `offline`, disconnects cleanly, and flushes the last cursor.
    async fn shut_down(mut self, mut poll: PollFuture) {
        if self.delivery.is_connected() {
            let offline = offline_status(&self.options);
            let _ = self
                .client
                .try_publish(self.topics.status(), QoS::AtLeastOnce, true, offline);
            let _ = self.client.try_disconnect();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            loop {
                let Ok((eventloop, event)) = tokio::time::timeout_at(deadline, &mut poll).await
                else {
                    break;
                };
                if matches!(event, Err(_) | Ok(Event::Outgoing(Outgoing::Disconnect))) {
                    break;
                }
                poll = Box::pin(poll_once(eventloop, Duration::ZERO));
            }
        }
        self.feed.finish(&mut self.delivery, &mut self.stats).await;
        self.delivery.handle_disconnected();
        self.publish_snapshot();
    }
}

/// A connection error with what the operator can do about it.
fn explain(e: &ConnectionError) -> String {
    let text = e.to_string();
    let hint = match e {
        ConnectionError::ConnectionRefused(_) => {
            " (check uplink.mqtt username / password_file and the broker's ACL)"
        }
        _ if text.contains("invalid peer certificate") => {
            " (the broker's certificate is not trusted: check uplink.mqtt.ca_file)"
        }
        _ if text.contains("CertificateRequired") || text.contains("BadCertificate") => {
            " (the broker wants a client certificate it trusts: check uplink.mqtt client_cert \
             and client_key)"
        }
        _ => "",
    };
    format!("{text}{hint}")
}

/// `interval` panics on zero; a zero setting means "as often as sensible".
fn at_least_10ms(period: Duration) -> Duration {
    period.max(Duration::from_millis(10))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
