//! Ingest: what the gateway does with each device message, whatever transport carried it.
//!
//! A transport (`transport::device` for WebSocket today; UDP and serial next) parses a frame into
//! a [`DeviceMessage`] and hands it here; the reply comes back typed ([`GatewayMessage`]) for the
//! transport to render. Each message is: court bookkeeping through the [`CourtHandle`] (queued in
//! the connection's order), data submitted to the journal (in the same order, so V3.3 batches
//! are numbered as they arrived), and the reply — for data, only once the journal says it is
//! fsynced; for court changes, once their events are. Durable batches then go to the analysis
//! pipeline's feed, in arrival order per device.

use std::net::SocketAddr;
use std::sync::Arc;

use shuttlegate_core::batch::{BatchForm, SensorBatch};
use shuttlegate_core::court::{Court, CourtError, Outcome, Telemetry, UploadVerdict};
use shuttlegate_core::protocol::outbound::{
    BatchSensorDataResponse, CommandName, CommandResponse, ConnectionEstablished,
    HeartbeatResponse, Pong, SensorDataResponse, StatusUpdateResponse, UploadCompleteResponse,
};
use shuttlegate_core::protocol::{
    DeviceCommand, DeviceMessage, ErrorCode, FrameClock, GatewayMessage, ProtocolError,
};
use tokio_util::task::TaskTracker;

use crate::court::{CourtHandle, RequestError};
use crate::device_watch::Watch;
use crate::journal::{AppendError, Appended, Journal, RecordBody};
use crate::pipeline::AnalysisFeed;
use crate::transport::connections::ConnHandle;
use crate::transport::device::{DeviceHandler, HandlerReply, PendingReply, ready};

/// The message handling shared by every device connection.
pub struct Ingest {
    court: CourtHandle,
    journal: Journal,
    frames: FrameClock,
    analysis: AnalysisFeed,
    /// Per-device figures and conditions, fed every stored batch.
    watch: Watch,
    /// The tasks that wait for a batch's fsync (they outlive a connection that goes away).
    tasks: TaskTracker,
}

impl Ingest {
    pub fn new(
        court: CourtHandle,
        journal: Journal,
        frames: FrameClock,
        analysis: AnalysisFeed,
        watch: Watch,
        tasks: TaskTracker,
    ) -> Ingest {
        Ingest {
            court,
            journal,
            frames,
            analysis,
            watch,
            tasks,
        }
    }

    /// Queues a court request in this connection's order (the device is also marked seen: one
    /// request per message); the reply future resolves with `ok` once it is applied and durable,
    /// or with an error naming what went wrong.
    fn court_then(
        &self,
        device: &str,
        op: impl FnOnce(&mut Court, i64) -> Result<Outcome, CourtError> + Send + 'static,
        ok: impl Into<Option<GatewayMessage>>,
    ) -> PendingReply {
        let ok = ok.into();
        match self
            .court
            .try_request(seen_and(device, move |c, now| Ok((op(c, now)?, ()))), None)
        {
            Ok(applied) => {
                let device = device.to_owned();
                Box::pin(async move {
                    match applied.await {
                        Ok(()) => ok,
                        Err(e) => Some(court_error(&device, &e)),
                    }
                })
            }
            Err(e) => ready(court_error(device, &e)),
        }
    }

    fn heartbeat(&self, device: &str, hb: shuttlegate_core::protocol::Heartbeat) -> PendingReply {
        let now = self.court.now();
        let telemetry = Telemetry {
            battery: hb.battery.map(f64::from),
            rssi: hb.rssi.map(f64::from),
            fw: hb.fw,
            status: hb.status,
        };
        self.court.telemetry(device, telemetry.clone());
        let owned = device.to_owned();
        let reply = GatewayMessage::HeartbeatResponse(HeartbeatResponse {
            device_code: device.to_owned(),
            status: "ok".into(),
            timestamp: self.frames.iso(now),
            server_time: now,
        });
        self.court_then(
            device,
            move |c, now| {
                c.heartbeat(&owned, telemetry, now);
                Ok(Outcome::default())
            },
            reply,
        )
    }

    /// A batch (either form) or a single `sensor_data` frame: stored, then answered.
    fn data(self: &Arc<Self>, device: &str, batch: SensorBatch, single: bool) -> PendingReply {
        let now = self.court.now();
        // Monotonic receipt time: where the latency of the swings this batch completes starts.
        let received_at = std::time::Instant::now();
        let (owned, session) = (device.to_owned(), batch.session_id.clone());
        // Refused before the batch is stored, so a device told "busy" resends a batch the
        // journal does not have.
        let op = seen_and(device, move |c, now| {
            Ok((c.data_arrived(&owned, &session, now)?, ()))
        });
        let bookkeeping = match self.court.try_request(op, None) {
            Ok(applied) => applied,
            Err(e) => return ready(court_error(device, &e)),
        };
        // Handed to the journal here, in the connection's task, so a connection's batches reach
        // the writer in the order they arrived (V3.3 batches are numbered in that order).
        let durable = self.journal.submit(RecordBody::Batch(batch.clone()));
        // Reserved now, so the analysis sees each device's batches in arrival order although the
        // tasks below finish their fsync waits together.
        let slot = self.analysis.slot(device);
        let this = self.clone();
        let device = device.to_owned();
        // The wait runs in its own task: if the connection goes away the batch still reaches
        // the journal and the analysis, only its reply is lost (and the device resends).
        let task = self.tasks.spawn(async move {
            let result = match durable {
                Ok(durable) => durable.await,
                Err(e) => Err(e),
            };
            // The batch's own answer decides the reply; a session state change its arrival made
            // that could not be journaled is the court's to report (its fsync is usually the
            // batch's own group commit, so this rarely waits). A refused batch is answered at
            // once: its court change may be held until a failing journal writes again.
            let who = device.clone();
            let bookkeeping = async move {
                if let Err(e) = bookkeeping.await {
                    log::warn!("device {who}: the court's bookkeeping of a batch: {e}");
                }
            };
            if result.is_ok() {
                bookkeeping.await;
            } else {
                this.tasks.spawn(bookkeeping);
            }
            let reply = this.stored(&device, &batch, single, now, &result);
            if let Ok(appended) = &result
                && !appended.duplicate
            {
                this.watch.batch(&batch, now);
                let mut stored = batch;
                stored.seq = appended.seq;
                slot.batch(appended.id, Arc::new(stored), now, received_at)
                    .await;
            }
            Some(reply)
        });
        Box::pin(async move {
            match task.await {
                Ok(reply) => reply,
                Err(e) => {
                    log::error!(
                        "batch reply task failed: {e}; the device gets no reply and resends"
                    );
                    None
                }
            }
        })
    }

    /// The reply to a batch once the journal has answered.
    fn stored(
        &self,
        device: &str,
        batch: &SensorBatch,
        single: bool,
        now: i64,
        result: &Result<Appended, AppendError>,
    ) -> GatewayMessage {
        let total = batch.sample_count() as u64;
        let session_id = batch.session_id.clone();
        match result {
            Ok(appended) if single => {
                let t = first_frame_time(batch)
                    .and_then(|raw| self.frames.to_unix_ms(raw, now))
                    .unwrap_or(now);
                GatewayMessage::SensorDataResponse(SensorDataResponse {
                    success: true,
                    data_id: appended.id,
                    timestamp: self.frames.iso(t),
                })
            }
            Ok(appended) => GatewayMessage::BatchSensorDataResponse(BatchSensorDataResponse {
                success: true,
                total_items: total,
                successful_items: total,
                failed_items: 0,
                session_id,
                seq: appended.seq,
                durable: true,
                message: None,
            }),
            // Not stored for now (full, the journal retrying a failed write, busy, stopping):
            // the device keeps its copy and sends it again. Not logged per batch: the journal
            // logs its state changes, and a flood would flood the log.
            Err(e) if !single && !matches!(e, AppendError::Invalid(_)) => {
                let why = match e {
                    AppendError::Full { .. } => "journal full".to_owned(),
                    e => e.to_string(),
                };
                GatewayMessage::batch_refused(
                    batch,
                    &format!("{why}: keep this batch and send it again later"),
                )
            }
            Err(e) => {
                log::error!("device {device}: batch not stored: {e}");
                let code = match e {
                    AppendError::Full { .. } | AppendError::DeviceFull { .. } => {
                        ErrorCode::JournalFull
                    }
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
                GatewayMessage::error(device, &err)
            }
        }
    }

    fn status_update(
        &self,
        device: &str,
        update: shuttlegate_core::protocol::StatusUpdate,
    ) -> PendingReply {
        let now = self.court.now();
        let reply = GatewayMessage::StatusUpdateResponse(StatusUpdateResponse {
            device_code: device.to_owned(),
            status: update.status.clone(),
            session_id: update.session_id.clone(),
            message: "status updated".into(),
            timestamp: self.frames.iso(now),
        });
        let owned = device.to_owned();
        self.court_then(
            device,
            move |c, now| {
                c.status_update(&owned, &update.status, update.session_id.as_deref(), now)
            },
            reply,
        )
    }

    /// `upload_complete`: the seqs not stored are asked for again; with none missing the session
    /// is analysed and completed. For a session the journal holds no batch of, nothing is
    /// analysed and no summary journaled (an open one is stopped, an unknown one not created),
    /// and the reply says so.
    async fn upload_complete(
        self: Arc<Self>,
        device: String,
        upload: shuttlegate_core::protocol::UploadComplete,
    ) -> Option<GatewayMessage> {
        // `upload_complete` is a barrier: every earlier batch of the connection is durable.
        let stored = self.journal.stored_seqs(&device, &upload.session_id);
        let missing = missing_seqs(&stored, upload.batches);
        let had_data = !stored.is_empty();
        let (owned, session, gaps) = (device.clone(), upload.session_id.clone(), missing.clone());
        let applied = self
            .court
            .request(seen_and(&device, move |c, now| {
                c.upload_complete(&owned, &session, had_data, &gaps, now)
            }))
            .await;
        let message = match applied {
            Ok(UploadVerdict::Analyse) => {
                self.analysis.finish(&device, &upload.session_id).await;
                "upload complete: analysing"
            }
            Ok(UploadVerdict::Wait) if !missing.is_empty() => "resend missing batches",
            Ok(UploadVerdict::Wait) => "upload complete: analysing",
            Ok(UploadVerdict::NoData) => {
                "no data received for this session: nothing to analyse (session not started or stopped)"
            }
            Err(e) => return Some(court_error(&device, &e)),
        };
        Some(GatewayMessage::UploadCompleteResponse(
            UploadCompleteResponse {
                session_id: upload.session_id,
                message: message.into(),
                timestamp: Some(self.frames.iso(self.court.now())),
                missing_seqs: missing,
            },
        ))
    }

    fn poll_commands(&self, device: &str) -> PendingReply {
        let (owned, frames) = (device.to_owned(), self.frames);
        let read = self.court.try_request(
            seen_and(device, move |c, _| {
                Ok((Outcome::default(), command_response(&owned, c, frames)))
            }),
            None,
        );
        let device = device.to_owned();
        match read {
            Ok(reply) => {
                Box::pin(
                    async move { Some(reply.await.unwrap_or_else(|e| court_error(&device, &e))) },
                )
            }
            Err(e) => ready(court_error(&device, &e)),
        }
    }

    fn ack(&self, device: &str, ack: shuttlegate_core::protocol::CommandAck) -> PendingReply {
        match ack.command_id.parse::<u64>() {
            Ok(id) => {
                let owned = device.to_owned();
                let op = seen_and(device, move |c, now| {
                    Ok((c.command_ack(&owned, id, ack.success, now), ()))
                });
                let device = device.to_owned();
                match self.court.try_request(op, None) {
                    // An ack has no reply; a failure is the court's to log, the device's to resend.
                    Ok(applied) => Box::pin(async move {
                        if let Err(e) = applied.await {
                            log::warn!("device {device}: ack of command {id}: {e}");
                        }
                        None
                    }),
                    Err(e) => ready(court_error(&device, &e)),
                }
            }
            Err(_) => {
                log::debug!(
                    "device {device}: ack for command `{}` this gateway never sent",
                    ack.command_id
                );
                self.court_then(device, |_, _| Ok(Outcome::default()), None)
            }
        }
    }

    fn status_response(
        &self,
        device: &str,
        report: shuttlegate_core::protocol::StatusReport,
    ) -> PendingReply {
        let json = serde_json::json!({
            "command_id": report.command_id, "connection": report.connection,
            "device": report.device, "stats": report.stats, "system": report.system,
        })
        .to_string();
        // An id this gateway never sent (not a number) answers nothing; the report is kept.
        let command_id = report.command_id.and_then(|id| id.parse::<u64>().ok());
        let owned = device.to_owned();
        let applied = self.court.try_request(
            seen_and(device, move |c, now| {
                Ok((c.status_response(&owned, json, command_id, now), ()))
            }),
            None,
        );
        let device = device.to_owned();
        match applied {
            // Like an ack: no reply; a failure is logged, and the device answers again.
            Ok(applied) => Box::pin(async move {
                if let Err(e) = applied.await {
                    log::warn!("device {device}: status_response: {e}");
                }
                None
            }),
            Err(e) => {
                log::warn!("device {device}: status_response not kept: {e}");
                nothing()
            }
        }
    }

    fn error_reply(&self, device: &str, err: &ProtocolError) -> GatewayMessage {
        log::debug!("device {device}: {}", err.message);
        GatewayMessage::error(device, err)
    }
}

/// `command_response` to `poll_commands`: the first start/stop as the seed's fields, every
/// pending command in `commands`.
fn command_response(
    device: &str,
    court: &shuttlegate_core::court::Court,
    frames: FrameClock,
) -> GatewayMessage {
    let pending = court.pending_commands(device);
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
            p.command
                .to_push(device, &p.command_id.to_string(), frames.iso(p.queued_ms))
        })
        .collect();
    GatewayMessage::CommandResponse(CommandResponse {
        device_code: device.to_owned(),
        command,
        session_id,
        message: message.into(),
        commands,
    })
}

/// `op` as the one court request of a device message, which also marks the device seen.
fn seen_and<T, F>(
    device: &str,
    op: F,
) -> impl FnOnce(&mut Court, i64) -> Result<(Outcome, T), CourtError> + use<T, F>
where
    F: FnOnce(&mut Court, i64) -> Result<(Outcome, T), CourtError>,
{
    let device = device.to_owned();
    move |court, now| {
        court.seen(&device, now);
        op(court, now)
    }
}

/// A court request that did not take effect, as the device's `error` reply.
fn court_error(device: &str, e: &RequestError) -> GatewayMessage {
    let code = match e {
        RequestError::Refused(CourtError::TooManySessionStarts { .. }) => ErrorCode::RateLimited,
        RequestError::Refused(_) => ErrorCode::InvalidField,
        RequestError::Busy | RequestError::NotJournaled(_) | RequestError::Stopped => {
            ErrorCode::Internal
        }
    };
    if !matches!(e, RequestError::Refused(_)) {
        log::warn!("device {device}: {e}");
    }
    GatewayMessage::error(device, &ProtocolError::new(code, e.to_string()))
}

/// The seqs of a session not stored: every gap below the highest stored, and with the device's
/// own count (`batches`), everything up to it.
pub fn missing_seqs(stored: &[u64], batches: Option<u64>) -> Vec<u64> {
    let highest = stored.last().copied();
    let end = match (batches, highest) {
        (Some(n), _) => n,
        (None, Some(h)) => h.saturating_add(1),
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
        BatchForm::Seed(s) => s.frames.first().and_then(|f| f.timestamp),
        BatchForm::Compact(c) => Some(c.t0),
    }
}

/// A message that needs no reply.
fn nothing() -> PendingReply {
    Box::pin(std::future::ready(None))
}

impl DeviceHandler for Ingest {
    fn connected(&self, device: &str, _peer: SocketAddr, handle: &ConnHandle) -> GatewayMessage {
        let now = self.court.now();
        let owned = device.to_owned();
        // Applied now; pending commands are pushed once the online event is durable, onto this
        // connection's queue, which is written only after the welcome the caller sends first.
        match self.court.try_request(
            move |c, now| Ok((c.connect(&owned, now)?, ())),
            Some(handle.clone()),
        ) {
            Ok(applied) => {
                let device = device.to_owned();
                self.tasks.spawn(async move {
                    if let Err(e) = applied.await {
                        log::error!("connect {device}: {e}");
                    }
                });
            }
            Err(e) => log::error!("connect {device}: {e}"),
        }
        GatewayMessage::ConnectionEstablished(ConnectionEstablished {
            device_code: device.to_owned(),
            message: "connected".into(),
            server_time: now,
        })
    }

    fn message(
        self: Arc<Self>,
        device: &str,
        _handle: &ConnHandle,
        message: Result<DeviceMessage, ProtocolError>,
    ) -> HandlerReply {
        let message = match message {
            Ok(message) => message,
            Err(e) => return HandlerReply::Ordered(ready(self.error_reply(device, &e))),
        };
        let reply = match message {
            DeviceMessage::Heartbeat(hb) => self.heartbeat(device, hb),
            DeviceMessage::Batch(batch) => self.data(device, batch, false),
            DeviceMessage::SensorData(batch) => self.data(device, batch, true),
            DeviceMessage::StatusUpdate(update) => self.status_update(device, update),
            DeviceMessage::UploadComplete(upload) => {
                let device = device.to_owned();
                return HandlerReply::Barrier(Box::new(move || {
                    Box::pin(self.upload_complete(device, upload))
                }));
            }
            DeviceMessage::PollCommands(_) => self.poll_commands(device),
            DeviceMessage::Ack(ack) => self.ack(device, ack),
            DeviceMessage::StatusResponse(report) => self.status_response(device, report),
            DeviceMessage::Ping(ping) => {
                let pong = GatewayMessage::Pong(Pong {
                    server_time: self.court.now(),
                    timestamp: ping.timestamp,
                });
                self.court_then(device, |_, _| Ok(Outcome::default()), pong)
            }
        };
        HandlerReply::Ordered(reply)
    }

    fn rate_limited(&self, device: &str) -> GatewayMessage {
        let err = ProtocolError::new(
            ErrorCode::RateLimited,
            "rate_limited: too many messages per second; this one was not processed, send it again later",
        );
        self.error_reply(device, &err)
    }

    fn binary(&self, device: &str, bytes: &[u8]) -> GatewayMessage {
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
        let (owned, reason) = (device.to_owned(), reason.to_owned());
        let (court, device) = (self.court.clone(), device.to_owned());
        // Waits for room rather than refusing: a device going offline must be journaled.
        self.tasks.spawn(async move {
            let request = court.request(move |c, now| Ok((c.disconnect(&owned, &reason, now), ())));
            if let Err(e) = request.await {
                log::error!("disconnect {device}: {e}");
            }
        });
    }
}
