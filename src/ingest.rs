//! Ingest: what the gateway does with each device message.
//!
//! The WebSocket loop (`transport::device`) hands every text frame here. A message is parsed
//! (`protocol`), its bookkeeping applied to the court (`court`), its data appended to the journal,
//! and its reply rendered — for data, only once the journal says it is fsynced. Court events are
//! journaled too, in order, by one task, so a restart resumes sessions and commands.
//!
//! The same entry points serve every transport that arrives later (UDP, serial): they speak
//! messages, not sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use crate::journal::{AppendError, Document, Journal, RecordBody};
use crate::live::{Live, LiveEvent};
use crate::swings::AnalysisFeed;
use crate::transport::connections::{ConnHandle, Connections, send_on};
use crate::transport::device::{DeviceHandler, HandlerReply, PendingReply, ready};
use shuttlegate_core::batch::SensorBatch;
use shuttlegate_core::court::{Court, CourtError, CourtEvent, Outcome, PendingCommand, Telemetry};
use shuttlegate_core::protocol::outbound::{
    BatchSensorDataResponse, CommandName, CommandResponse, ConnectionEstablished,
    HeartbeatResponse, Pong, SensorDataResponse, StatusUpdateResponse, UploadCompleteResponse,
};
use shuttlegate_core::protocol::{
    DeviceCommand, DeviceMessage, ErrorCode, FrameClock, GatewayMessage, ProtocolError,
    parse_device_message,
};

/// Wall-clock time, unix ms. A seam so tests could pass their own; the daemon uses the system's.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    })
}

/// Court events waiting to be journaled, at most this many.
const EVENT_QUEUE: usize = 4096;

/// The message handling shared by every device connection.
pub struct Ingest {
    journal: Journal,
    court: Mutex<Court>,
    connections: Arc<Connections>,
    frames: FrameClock,
    clock: Clock,
    live: Live,
    analysis: AnalysisFeed,
    /// Per device, the signal that its latest batch has been handed to the analysis: the next
    /// batch waits for it, so the analysis sees each device's batches in arrival order (the
    /// tasks that wait for fsync finish together and would otherwise race).
    analysis_order: Mutex<HashMap<String, oneshot::Receiver<()>>>,
    events: mpsc::Sender<EventJob>,
}

/// Work for the task that journals court events.
enum EventJob {
    Event(CourtEvent),
    /// Answered once every event queued before it is journaled.
    Flush(tokio::sync::oneshot::Sender<()>),
}

fn lock(court: &Mutex<Court>) -> MutexGuard<'_, Court> {
    // The court's methods do not panic midway on valid state; if one ever did, the state it
    // left is still the best there is.
    court.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ingest {
    /// Builds the handler and the task that journals court events (spawn it: it ends when the
    /// last `Ingest` is dropped, after shutdown has flushed it).
    pub fn new(
        journal: Journal,
        court: Court,
        connections: Arc<Connections>,
        frames: FrameClock,
        clock: Clock,
        live: Live,
        analysis: AnalysisFeed,
    ) -> (
        Arc<Ingest>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let ingest = Arc::new(Ingest {
            journal: journal.clone(),
            court: Mutex::new(court),
            connections,
            frames,
            clock,
            live,
            analysis,
            analysis_order: Mutex::new(HashMap::new()),
            events,
        });
        (ingest, journal_events(journal, rx))
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Runs `f` on the court.
    pub fn with_court<T>(&self, f: impl FnOnce(&mut Court) -> T) -> T {
        f(&mut lock(&self.court))
    }

    /// Carries out an outcome: events to the journal (in order), pushes to connected devices.
    fn apply(&self, outcome: Outcome) {
        for event in outcome.events {
            if let CourtEvent::DeviceStatus { device, online, .. } = &event {
                self.live.publish(LiveEvent::DeviceStatus {
                    device: device.clone(),
                    online: *online,
                });
            }
            if self.events.try_send(EventJob::Event(event)).is_err() {
                log::error!(
                    "court event queue full ({EVENT_QUEUE}): the journal is not keeping up; \
                     this state change will not survive a restart"
                );
            }
        }
        for (device, pending) in outcome.pushes {
            let text = self.push_text(&device, &pending);
            self.connections.send(&device, text);
        }
    }

    fn push_text(&self, device: &str, pending: &PendingCommand) -> String {
        let timestamp = self.frames.iso(pending.queued_ms);
        pending
            .command
            .to_push(device, &pending.command_id.to_string(), timestamp)
            .to_json()
    }

    /// Whether the device has a connection now.
    pub fn is_connected(&self, device: &str) -> bool {
        self.connections.is_connected(device)
    }

    /// Waits until every court event queued so far is journaled (shutdown calls it before
    /// closing the journal, so the last offline events are not lost).
    pub async fn flush_events(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.events.send(EventJob::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Starts a session on `device` (admin console, phone, cloud, tooling).
    pub async fn start_session(
        &self,
        device: &str,
        session_id: Option<String>,
    ) -> Result<String, CourtError> {
        let now = self.now();
        let session_id = session_id.unwrap_or_else(|| format!("{device}-{now}"));
        let outcome = self.with_court(|c| c.start_session(device, session_id.clone(), now))?;
        self.apply_durably(outcome).await;
        Ok(session_id)
    }

    /// Ends `device`'s open session: `stop_collection` is pushed.
    pub async fn end_session(&self, device: &str) -> Result<String, CourtError> {
        let now = self.now();
        let outcome = self.with_court(|c| c.end_session(device, now))?;
        let session = outcome
            .events
            .iter()
            .find_map(|e| match e {
                CourtEvent::CommandQueued {
                    command: DeviceCommand::StopCollection { session_id },
                    ..
                } => Some(session_id.clone()),
                _ => None,
            })
            .unwrap_or_default();
        self.apply_durably(outcome).await;
        Ok(session)
    }

    /// Queues any command for `device`; resolves once the command is journaled, so an
    /// accepted command survives a restart.
    pub async fn command(&self, device: &str, command: DeviceCommand) -> Result<u64, CourtError> {
        let now = self.now();
        let outcome = self.with_court(|c| c.enqueue(device, command, now))?;
        let id = outcome
            .pushes
            .first()
            .map(|(_, p)| p.command_id)
            .unwrap_or(0);
        self.apply_durably(outcome).await;
        Ok(id)
    }

    /// Like [`Ingest::apply`], but the events are journaled (fsynced) before pushes go out.
    async fn apply_durably(&self, outcome: Outcome) {
        for event in &outcome.events {
            if let Err(e) = self.journal.append(event_record(event)).await {
                log::error!("journaling {event:?}: {e}");
            }
        }
        for (device, pending) in outcome.pushes {
            let text = self.push_text(&device, &pending);
            self.connections.send(&device, text);
        }
    }

    /// The final analysis of a session is journaled: the session is completed.
    pub fn session_analysed(&self, device: &str, session_id: &str) {
        let now = self.now();
        let outcome = self.with_court(|c| c.analysis_done(device, session_id, now));
        self.apply(outcome);
    }

    fn heartbeat(&self, device: &str, hb: shuttlegate_core::protocol::Heartbeat) -> String {
        let now = self.now();
        let telemetry = Telemetry {
            battery: hb.battery.map(f64::from),
            rssi: hb.rssi.map(f64::from),
            fw: hb.fw,
            status: hb.status,
        };
        self.with_court(|c| c.heartbeat(device, telemetry, now));
        GatewayMessage::HeartbeatResponse(HeartbeatResponse {
            device_code: device.to_owned(),
            status: "ok".into(),
            timestamp: self.frames.iso(now),
            server_time: now,
        })
        .to_json()
    }

    /// A batch (either form) or a single `sensor_data` frame: stored, then answered.
    fn data(self: &Arc<Self>, device: &str, batch: SensorBatch, single: bool) -> PendingReply {
        let now = self.now();
        // Monotonic receipt time: where the latency of the swings this batch completes starts.
        let received_at = std::time::Instant::now();
        let outcome = self.with_court(|c| c.data_arrived(device, &batch.session_id, now));
        self.apply(outcome);
        // Handed to the journal here, in the connection's task, so a connection's batches reach
        // the writer in the order they arrived (V3.3 batches are numbered in that order).
        let durable = self.journal.submit(RecordBody::Batch(batch.clone()));
        let (handed_over, next) = oneshot::channel();
        let previous = self
            .analysis_order
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.to_owned(), next);
        let this = self.clone();
        let device = device.to_owned();
        // The wait runs in its own task: if the connection goes away the batch still reaches
        // the journal and the analysis, only its reply is lost (and the device resends).
        let task = tokio::spawn(async move {
            let result = match durable {
                Ok(durable) => durable.await,
                Err(e) => Err(e),
            };
            // The previous batch is durable too (commits are in order); a dropped sender
            // (its task ended early) also releases this one.
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let reply = this.stored(&device, batch, single, now, received_at, result);
            let _ = handed_over.send(());
            reply
        });
        Box::pin(async move { task.await.ok().flatten() })
    }

    /// The reply to a batch once the journal has answered, and its hand-off to the analysis.
    fn stored(
        &self,
        device: &str,
        batch: SensorBatch,
        single: bool,
        now: i64,
        received_at: std::time::Instant,
        result: Result<crate::journal::Appended, AppendError>,
    ) -> Option<String> {
        let total = batch.sample_count() as u64;
        let session_id = batch.session_id.clone();
        let first_frame_time = first_frame_time(&batch);
        let batch = Arc::new(batch);
        match result {
            Ok(appended) => {
                if !appended.duplicate {
                    let mut stored = (*batch).clone();
                    stored.seq = appended.seq;
                    self.analysis
                        .batch(appended.id, Arc::new(stored), now, received_at);
                }
                let reply = if single {
                    let t = first_frame_time
                        .and_then(|raw| self.frames.to_unix_ms(raw, now))
                        .unwrap_or(now);
                    GatewayMessage::SensorDataResponse(SensorDataResponse {
                        success: true,
                        data_id: appended.id,
                        timestamp: self.frames.iso(t),
                    })
                } else {
                    GatewayMessage::BatchSensorDataResponse(BatchSensorDataResponse {
                        success: true,
                        total_items: total,
                        successful_items: total,
                        failed_items: 0,
                        session_id,
                        seq: appended.seq,
                        durable: true,
                        message: None,
                    })
                };
                Some(reply.to_json())
            }
            Err(AppendError::Full { .. }) if !single => Some(
                GatewayMessage::BatchSensorDataResponse(BatchSensorDataResponse {
                    success: false,
                    total_items: total,
                    successful_items: 0,
                    failed_items: total,
                    session_id,
                    seq: batch.seq,
                    durable: false,
                    message: Some("journal full: keep this batch and send it again later".into()),
                })
                .to_json(),
            ),
            Err(e) => {
                log::error!("device {device}: batch not stored: {e}");
                let code = match e {
                    AppendError::Full { .. } => ErrorCode::JournalFull,
                    _ => ErrorCode::Internal,
                };
                let err = ProtocolError {
                    code,
                    field: None,
                    message: format!(
                        "batch_sensor_data: not stored ({e}); keep it and send it again later"
                    ),
                    seq: batch.seq,
                };
                Some(GatewayMessage::error(device, &err).to_json())
            }
        }
    }

    fn status_update(
        &self,
        device: &str,
        update: shuttlegate_core::protocol::StatusUpdate,
    ) -> String {
        let now = self.now();
        let outcome = self.with_court(|c| {
            c.status_update(device, &update.status, update.session_id.as_deref(), now)
        });
        self.apply(outcome);
        GatewayMessage::StatusUpdateResponse(StatusUpdateResponse {
            device_code: device.to_owned(),
            status: update.status,
            session_id: update.session_id,
            message: "status updated".into(),
            timestamp: self.frames.iso(now),
        })
        .to_json()
    }

    /// `upload_complete`: the seqs not stored are asked for again; with none missing the session
    /// is analysed and completed.
    async fn upload_complete(
        self: Arc<Self>,
        device: String,
        upload: shuttlegate_core::protocol::UploadComplete,
    ) -> Option<String> {
        let now = self.now();
        let stored = self.journal.stored_seqs(&device, &upload.session_id);
        let missing = missing_seqs(&stored, upload.batches);
        let (outcome, finalize) =
            self.with_court(|c| c.upload_complete(&device, &upload.session_id, &missing, now));
        self.apply(outcome);
        if finalize {
            self.analysis.finish(&device, &upload.session_id);
        }
        let message = if missing.is_empty() {
            "upload complete: analysing"
        } else {
            "resend missing batches"
        };
        Some(
            GatewayMessage::UploadCompleteResponse(UploadCompleteResponse {
                session_id: upload.session_id,
                message: message.into(),
                timestamp: Some(self.frames.iso(now)),
                missing_seqs: missing,
            })
            .to_json(),
        )
    }

    fn poll_commands(&self, device: &str) -> String {
        let pending = self.with_court(|c| c.pending_commands(device));
        let first_start_stop = pending.iter().find(|p| {
            matches!(
                p.command,
                DeviceCommand::StartCollection { .. } | DeviceCommand::StopCollection { .. }
            )
        });
        let (command, session_id, message) = match first_start_stop.map(|p| &p.command) {
            Some(DeviceCommand::StartCollection { session_id }) => (
                Some(CommandName::StartCollection),
                Some(session_id.clone()),
                "start",
            ),
            Some(DeviceCommand::StopCollection { session_id }) => (
                Some(CommandName::StopCollection),
                Some(session_id.clone()),
                "stop",
            ),
            _ => (None, None, "no command"),
        };
        let commands = pending
            .iter()
            .map(|p| {
                p.command.to_push(
                    device,
                    &p.command_id.to_string(),
                    self.frames.iso(p.queued_ms),
                )
            })
            .collect();
        GatewayMessage::CommandResponse(CommandResponse {
            device_code: device.to_owned(),
            command,
            session_id,
            message: message.into(),
            commands,
        })
        .to_json()
    }

    fn ack(&self, device: &str, ack: shuttlegate_core::protocol::CommandAck) {
        let now = self.now();
        match ack.command_id.parse::<u64>() {
            Ok(id) => {
                let outcome = self.with_court(|c| c.command_ack(device, id, ack.success, now));
                self.apply(outcome);
            }
            Err(_) => log::debug!(
                "device {device}: ack for command `{}` this gateway never sent",
                ack.command_id
            ),
        }
    }

    fn error_reply(&self, device: &str, err: &ProtocolError) -> String {
        log::debug!("device {device}: {}", err.message);
        GatewayMessage::error(device, err).to_json()
    }
}

/// The seqs of a session not stored: every gap below the highest stored, and with the device's
/// own count (`batches`), everything up to it.
pub fn missing_seqs(stored: &[u64], batches: Option<u64>) -> Vec<u64> {
    let highest = stored.last().copied();
    let end = match (batches, highest) {
        (Some(n), _) => n,
        (None, Some(h)) => h + 1,
        (None, None) => 0,
    };
    let mut missing = Vec::new();
    let mut have = stored.iter().peekable();
    for seq in 0..end {
        while have.next_if(|s| **s < seq).is_some() {}
        if have.peek() != Some(&&seq) {
            missing.push(seq);
            if missing.len() >= MAX_MISSING_REPORTED {
                break;
            }
        }
    }
    missing
}

/// `missing_seqs` lists at most this many; the device resends them and asks again.
const MAX_MISSING_REPORTED: usize = 1000;

fn first_frame_time(batch: &SensorBatch) -> Option<i64> {
    match &batch.form {
        shuttlegate_core::batch::BatchForm::Seed(s) => s.frames.first().and_then(|f| f.timestamp),
        shuttlegate_core::batch::BatchForm::Compact(c) => Some(c.t0),
    }
}

/// A message that needs no reply.
fn nothing() -> PendingReply {
    Box::pin(std::future::ready(None))
}

/// A court event as a journal record.
pub fn event_record(event: &CourtEvent) -> RecordBody {
    RecordBody::Event(Document {
        device: event.device().map(str::to_owned),
        session_id: event.session_id().map(str::to_owned),
        // Serialising a plain enum of strings and numbers cannot fail.
        json: serde_json::to_string(event).unwrap_or_default(),
    })
}

/// Journals court events in the order they happened.
async fn journal_events(journal: Journal, mut rx: mpsc::Receiver<EventJob>) {
    while let Some(job) = rx.recv().await {
        match job {
            EventJob::Event(event) => {
                if let Err(e) = journal.append(event_record(&event)).await {
                    log::error!("journaling court event {event:?}: {e}");
                }
            }
            EventJob::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

impl DeviceHandler for Ingest {
    fn connected(&self, device: &str, _peer: SocketAddr, handle: &ConnHandle) -> String {
        let now = self.now();
        match self.with_court(|c| c.connect(device, now)) {
            Ok(mut outcome) => {
                // Pushes go to this connection, after the welcome (queued behind it by the
                // caller, which sends the welcome first).
                let pushes = std::mem::take(&mut outcome.pushes);
                self.apply(outcome);
                for (device, pending) in pushes {
                    send_on(handle, self.push_text(&device, &pending));
                }
            }
            Err(e) => log::error!("connect {device}: {e}"),
        }
        GatewayMessage::ConnectionEstablished(ConnectionEstablished {
            device_code: device.to_owned(),
            message: "connected".into(),
            server_time: now,
        })
        .to_json()
    }

    fn text(self: Arc<Self>, device: &str, _handle: &ConnHandle, text: &str) -> HandlerReply {
        let message = match parse_device_message(text, device) {
            Ok(message) => message,
            Err(e) => return HandlerReply::Ordered(ready(self.error_reply(device, &e))),
        };
        let now = self.now();
        self.with_court(|c| c.seen(device, now));
        let reply = match message {
            DeviceMessage::Heartbeat(hb) => ready(self.heartbeat(device, hb)),
            DeviceMessage::Batch(batch) => self.data(device, batch, false),
            DeviceMessage::SensorData(batch) => self.data(device, batch, true),
            DeviceMessage::StatusUpdate(update) => ready(self.status_update(device, update)),
            DeviceMessage::UploadComplete(upload) => {
                let device = device.to_owned();
                return HandlerReply::Barrier(Box::new(move || {
                    Box::pin(self.upload_complete(device, upload))
                }));
            }
            DeviceMessage::PollCommands(_) => ready(self.poll_commands(device)),
            DeviceMessage::Ack(ack) => {
                self.ack(device, ack);
                nothing()
            }
            DeviceMessage::StatusResponse(report) => {
                let json = serde_json::json!({
                    "command_id": report.command_id, "connection": report.connection,
                    "device": report.device, "stats": report.stats, "system": report.system,
                })
                .to_string();
                self.with_court(|c| c.status_response(device, json));
                nothing()
            }
            DeviceMessage::Ping(ping) => ready(
                GatewayMessage::Pong(Pong {
                    server_time: now,
                    timestamp: ping.timestamp,
                })
                .to_json(),
            ),
        };
        HandlerReply::Ordered(reply)
    }

    fn rate_limited(&self, device: &str) -> String {
        let err = ProtocolError::new(
            ErrorCode::RateLimited,
            "rate_limited: too many messages per second; this one was not processed, send it again later",
        );
        self.error_reply(device, &err)
    }

    fn binary(&self, device: &str, bytes: &[u8]) -> String {
        let err = ProtocolError::new(
            ErrorCode::BinaryUnsupported,
            format!(
                "binary frame of {} bytes refused: send JSON text frames (the binary frame format arrives with UDP support)",
                bytes.len()
            ),
        );
        self.error_reply(device, &err)
    }

    fn disconnected(&self, device: &str, reason: &str, replaced: bool) {
        if replaced {
            return;
        }
        let now = self.now();
        let outcome = self.with_court(|c| c.disconnect(device, reason, now));
        self.apply(outcome);
    }
}
