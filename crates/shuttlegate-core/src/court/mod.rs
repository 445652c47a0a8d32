//! The court's state as a sans-IO machine: devices, their sessions and command queues.
//!
//! Transport tasks call it with what happened (`connect`, `data_arrived`, `command_ack`, …) and
//! the current time; it answers with [`Outcome`]s: events to journal (so a restart resumes the
//! same state) and commands to push to a device. It does no IO and reads no clock, so every
//! rule here is unit-tested without sockets.
//!
//! Persistence: every state change is a [`CourtEvent`] that the daemon appends to the journal as
//! an `Event` record. Because fully-acknowledged journal segments are deleted, the court also
//! writes a [`CourtEvent::Snapshot`] of everything still open (at start and periodically), so the
//! newest snapshot plus the events after it always rebuild the state. On start the daemon
//! reads exactly those (the journal's newest segments, back to the one holding the newest
//! snapshot) and folds them in with [`Court::restore`]; ended sessions are remembered only as far
//! back as that snapshot.

pub mod commands;
pub mod session;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

pub use commands::{CommandQueue, PendingCommand, QueueError};
pub use session::{Session, SessionSource, SessionState};

use crate::protocol::DeviceCommand;

/// Limits of the court's memory.
#[derive(Debug, Clone)]
pub struct CourtOptions {
    /// Commands waiting for an ack, per device.
    pub command_queue_capacity: usize,
    /// Ended sessions remembered per device (for `session_status` queries).
    pub ended_sessions_kept: usize,
}

impl Default for CourtOptions {
    fn default() -> Self {
        CourtOptions {
            command_queue_capacity: 32,
            ended_sessions_kept: 16,
        }
    }
}

/// A journaled change of court state. Serialised as the `json` of an `Event` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CourtEvent {
    /// A session changed state (or was opened).
    SessionState {
        device: String,
        session_id: String,
        state: SessionState,
        source: SessionSource,
        ts: i64,
    },
    /// A command was queued for a device.
    CommandQueued {
        device: String,
        command_id: u64,
        #[serde(with = "commands::command_serde")]
        command: DeviceCommand,
        ts: i64,
    },
    /// The device acknowledged a command (or its effect was seen).
    CommandDone {
        device: String,
        command_id: u64,
        success: bool,
        ts: i64,
    },
    /// A device came online or went offline.
    DeviceStatus {
        device: String,
        online: bool,
        ts: i64,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<String>,
    },
    /// Everything still open, so older events may be deleted with their segments.
    Snapshot {
        sessions: Vec<Session>,
        commands: Vec<(String, PendingCommand)>,
        next_command_id: u64,
        ts: i64,
    },
}

impl CourtEvent {
    /// The device the event is about, for the journal's index.
    pub fn device(&self) -> Option<&str> {
        match self {
            CourtEvent::SessionState { device, .. }
            | CourtEvent::CommandQueued { device, .. }
            | CourtEvent::CommandDone { device, .. }
            | CourtEvent::DeviceStatus { device, .. } => Some(device),
            CourtEvent::Snapshot { .. } => None,
        }
    }

    /// The session the event is about, if any.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            CourtEvent::SessionState { session_id, .. } => Some(session_id),
            _ => None,
        }
    }
}

/// What a call asks the caller to do.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Append these to the journal, in order.
    pub events: Vec<CourtEvent>,
    /// Push these to the device now if it is connected (they stay queued either way).
    pub pushes: Vec<(String, PendingCommand)>,
}

impl Outcome {
    fn event(mut self, event: CourtEvent) -> Self {
        self.events.push(event);
        self
    }
}

/// Why a request from an operator, a phone or the cloud was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CourtError {
    #[error("unknown device `{0}`: it is not in this court's configuration")]
    UnknownDevice(String),
    #[error("device `{device}` already has session `{session_id}` open ({state}); end it first")]
    SessionOpen {
        device: String,
        session_id: String,
        state: &'static str,
    },
    #[error("device `{0}` has no open session to end")]
    NoOpenSession(String),
    #[error("device `{device}`: {source}")]
    Queue { device: String, source: QueueError },
}

/// Last telemetry a device reported in its heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Telemetry {
    pub battery: Option<f64>,
    pub rssi: Option<f64>,
    pub fw: Option<String>,
    pub status: Option<String>,
}

/// One configured device as the court sees it.
#[derive(Debug, Clone, Default)]
pub struct DeviceState {
    pub online: bool,
    /// Gateway time of the last message, unix ms.
    pub last_seen_ms: Option<i64>,
    pub telemetry: Telemetry,
    /// The last `status_response` the firmware sent (answer to `get_status`), verbatim.
    pub last_status_response: Option<String>,
    /// Open sessions and the most recent ended ones, by id.
    sessions: BTreeMap<String, Session>,
    /// Ids of ended sessions, oldest first, to bound `sessions`.
    ended: VecDeque<String>,
    pub commands: CommandQueue,
}

impl DeviceState {
    /// The most recently started session that is still open.
    pub fn open_session(&self) -> Option<&Session> {
        self.sessions
            .values()
            .filter(|s| s.state.is_open())
            .max_by_key(|s| s.start_ms)
    }

    pub fn session(&self, session_id: &str) -> Option<&Session> {
        self.sessions.get(session_id)
    }

    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }
}

/// The court: every configured device's state.
#[derive(Debug)]
pub struct Court {
    devices: BTreeMap<String, DeviceState>,
    next_command_id: u64,
    options: CourtOptions,
}

impl Court {
    pub fn new(device_codes: impl IntoIterator<Item = String>, options: CourtOptions) -> Court {
        Court {
            devices: device_codes
                .into_iter()
                .map(|code| (code, DeviceState::default()))
                .collect(),
            next_command_id: 1,
            options,
        }
    }

    /// A configuration reload: devices newly configured join the court. Devices no longer
    /// configured keep their state (their sessions and commands stay until they end): the
    /// handshake refuses them from now on.
    pub fn add_devices(&mut self, device_codes: impl IntoIterator<Item = String>) {
        for code in device_codes {
            self.devices.entry(code).or_default();
        }
    }

    pub fn device(&self, code: &str) -> Option<&DeviceState> {
        self.devices.get(code)
    }

    pub fn devices(&self) -> impl Iterator<Item = (&String, &DeviceState)> {
        self.devices.iter()
    }

    fn device_mut(&mut self, code: &str) -> Result<&mut DeviceState, CourtError> {
        self.devices
            .get_mut(code)
            .ok_or_else(|| CourtError::UnknownDevice(code.to_owned()))
    }

    /// Folds journaled events back in, oldest first. Devices no longer configured are skipped.
    pub fn restore(&mut self, events: impl IntoIterator<Item = CourtEvent>) {
        for event in events {
            self.apply(event);
        }
        // Nothing is online after a restart until it reconnects.
        for state in self.devices.values_mut() {
            state.online = false;
        }
    }

    fn apply(&mut self, event: CourtEvent) {
        match event {
            CourtEvent::SessionState {
                device,
                session_id,
                state,
                source,
                ts,
            } => {
                let ended_kept = self.options.ended_sessions_kept;
                if let Some(dev) = self.devices.get_mut(&device) {
                    let session = dev
                        .sessions
                        .entry(session_id.clone())
                        .or_insert_with(|| Session::new(session_id, device, source, ts));
                    session.state = state;
                    if !state.is_open() && state != SessionState::Analyzing {
                        session.end_ms = Some(ts);
                    }
                    remember_ended(dev, ended_kept);
                }
            }
            CourtEvent::CommandQueued {
                device,
                command_id,
                command,
                ts,
            } => {
                self.next_command_id = self.next_command_id.max(command_id + 1);
                if let Some(dev) = self.devices.get_mut(&device) {
                    let pending = PendingCommand {
                        command_id,
                        command,
                        queued_ms: ts,
                    };
                    restore_command(&mut dev.commands, pending);
                }
            }
            CourtEvent::CommandDone {
                device, command_id, ..
            } => {
                if let Some(dev) = self.devices.get_mut(&device) {
                    dev.commands.ack(command_id);
                }
            }
            CourtEvent::DeviceStatus {
                device, online, ts, ..
            } => {
                if let Some(dev) = self.devices.get_mut(&device) {
                    dev.online = online;
                    dev.last_seen_ms = Some(ts);
                }
            }
            CourtEvent::Snapshot {
                sessions,
                commands,
                next_command_id,
                ..
            } => {
                self.next_command_id = self.next_command_id.max(next_command_id);
                for dev in self.devices.values_mut() {
                    dev.sessions.retain(|_, s| !s.state.is_open());
                    dev.commands = CommandQueue::default();
                }
                for session in sessions {
                    if let Some(dev) = self.devices.get_mut(&session.device) {
                        dev.sessions.insert(session.id.clone(), session);
                    }
                }
                for (device, pending) in commands {
                    if let Some(dev) = self.devices.get_mut(&device) {
                        restore_command(&mut dev.commands, pending);
                    }
                }
            }
        }
    }

    /// Everything still open, to journal so older events can go with their segments.
    pub fn snapshot(&self, now_ms: i64) -> CourtEvent {
        let sessions = self
            .devices
            .values()
            .flat_map(|d| d.sessions.values())
            .filter(|s| s.state.is_open() || s.state == SessionState::Analyzing)
            .cloned()
            .collect();
        let commands = self
            .devices
            .iter()
            .flat_map(|(code, d)| d.commands.iter().map(move |c| (code.clone(), c.clone())))
            .collect();
        CourtEvent::Snapshot {
            sessions,
            commands,
            next_command_id: self.next_command_id,
            ts: now_ms,
        }
    }

    /// A device connected: it is online, and everything it has not acked is pushed again.
    pub fn connect(&mut self, device: &str, now_ms: i64) -> Result<Outcome, CourtError> {
        let dev = self.device_mut(device)?;
        dev.online = true;
        dev.last_seen_ms = Some(now_ms);
        let pushes = dev
            .commands
            .iter()
            .map(|c| (device.to_owned(), c.clone()))
            .collect();
        Ok(Outcome {
            events: vec![],
            pushes,
        }
        .event(CourtEvent::DeviceStatus {
            device: device.to_owned(),
            online: true,
            ts: now_ms,
            reason: None,
        }))
    }

    /// A device's connection ended (closed, replaced or idle).
    pub fn disconnect(&mut self, device: &str, reason: &str, now_ms: i64) -> Outcome {
        let Ok(dev) = self.device_mut(device) else {
            return Outcome::default();
        };
        dev.online = false;
        Outcome::default().event(CourtEvent::DeviceStatus {
            device: device.to_owned(),
            online: false,
            ts: now_ms,
            reason: Some(reason.to_owned()),
        })
    }

    /// Any message from the device: it is alive.
    pub fn seen(&mut self, device: &str, now_ms: i64) {
        if let Ok(dev) = self.device_mut(device) {
            dev.last_seen_ms = Some(now_ms);
        }
    }

    pub fn heartbeat(&mut self, device: &str, telemetry: Telemetry, now_ms: i64) {
        if let Ok(dev) = self.device_mut(device) {
            dev.last_seen_ms = Some(now_ms);
            dev.telemetry = telemetry;
        }
    }

    pub fn status_response(&mut self, device: &str, json: String) {
        if let Ok(dev) = self.device_mut(device) {
            dev.last_status_response = Some(json);
        }
    }

    /// Data arrived for `session_id`: it opens the session if the gateway had not (nothing a
    /// device sends is dropped for bookkeeping reasons), moves a calibrating session to
    /// collecting, and settles its `start_collection`.
    pub fn data_arrived(&mut self, device: &str, session_id: &str, now_ms: i64) -> Outcome {
        let ended_kept = self.options.ended_sessions_kept;
        let Ok(dev) = self.device_mut(device) else {
            return Outcome::default();
        };
        let mut out = Outcome::default();
        match dev.sessions.get_mut(session_id) {
            None => {
                let session = Session::new(
                    session_id.to_owned(),
                    device.to_owned(),
                    SessionSource::Device,
                    now_ms,
                );
                out.events.push(session_event(&session, now_ms));
                dev.sessions.insert(session_id.to_owned(), session);
                remember_ended(dev, ended_kept);
            }
            Some(session) => {
                if session.state == SessionState::Calibrating
                    && session.advance(SessionState::Collecting, now_ms)
                {
                    out.events.push(session_event(session, now_ms));
                }
            }
        }
        if let Some(done) = dev.commands.settle_start(session_id) {
            out.events.push(CourtEvent::CommandDone {
                device: device.to_owned(),
                command_id: done.command_id,
                success: true,
                ts: now_ms,
            });
        }
        out
    }

    /// The firmware's `status_update`: `START_COLLECTION_CONFIRMED` moves the session to
    /// collecting (as in the seed backend); other statuses are only recorded.
    pub fn status_update(
        &mut self,
        device: &str,
        status: &str,
        session_id: Option<&str>,
        now_ms: i64,
    ) -> Outcome {
        if let Ok(dev) = self.device_mut(device) {
            dev.telemetry.status = Some(status.to_owned());
        }
        match (status, session_id) {
            ("START_COLLECTION_CONFIRMED", Some(session_id)) => {
                self.data_arrived(device, session_id, now_ms)
            }
            _ => Outcome::default(),
        }
    }

    /// `upload_complete`: with nothing `missing`, the session moves to analyzing (the caller
    /// runs the final analysis, then calls [`Court::analysis_done`]). With gaps it stays as it
    /// is and the device is asked to resend.
    pub fn upload_complete(
        &mut self,
        device: &str,
        session_id: &str,
        missing: &[u64],
        now_ms: i64,
    ) -> (Outcome, bool) {
        if !missing.is_empty() {
            return (Outcome::default(), false);
        }
        let ended_kept = self.options.ended_sessions_kept;
        let Ok(dev) = self.device_mut(device) else {
            return (Outcome::default(), false);
        };
        let session = dev
            .sessions
            .entry(session_id.to_owned())
            .or_insert_with(|| {
                Session::new(
                    session_id.to_owned(),
                    device.to_owned(),
                    SessionSource::Device,
                    now_ms,
                )
            });
        let mut out = Outcome::default();
        let moved = session.advance(SessionState::Analyzing, now_ms);
        if moved {
            out.events.push(session_event(session, now_ms));
        }
        remember_ended(dev, ended_kept);
        (out, moved)
    }

    /// The final analysis of a session is done (summary journaled): it is completed.
    pub fn analysis_done(&mut self, device: &str, session_id: &str, now_ms: i64) -> Outcome {
        self.finish(device, session_id, SessionState::Completed, now_ms)
    }

    fn finish(
        &mut self,
        device: &str,
        session_id: &str,
        state: SessionState,
        now_ms: i64,
    ) -> Outcome {
        let ended_kept = self.options.ended_sessions_kept;
        let Ok(dev) = self.device_mut(device) else {
            return Outcome::default();
        };
        let Some(session) = dev.sessions.get_mut(session_id) else {
            return Outcome::default();
        };
        let mut out = Outcome::default();
        if session.advance(state, now_ms) {
            out.events.push(session_event(session, now_ms));
        }
        remember_ended(dev, ended_kept);
        out
    }

    /// Starts a session from a command (admin, phone, cloud, tooling): `calibrating`, and
    /// `start_collection` queued and pushed.
    pub fn start_session(
        &mut self,
        device: &str,
        session_id: String,
        now_ms: i64,
    ) -> Result<Outcome, CourtError> {
        let dev = self.device_mut(device)?;
        if let Some(open) = dev.open_session() {
            return Err(CourtError::SessionOpen {
                device: device.to_owned(),
                session_id: open.id.clone(),
                state: open.state.as_str(),
            });
        }
        let session = Session::new(
            session_id.clone(),
            device.to_owned(),
            SessionSource::Command,
            now_ms,
        );
        let event = session_event(&session, now_ms);
        dev.sessions.insert(session_id.clone(), session);
        let queued = self.enqueue(
            device,
            DeviceCommand::StartCollection { session_id },
            now_ms,
        )?;
        let mut out = Outcome::default().event(event);
        out.events.extend(queued.events);
        out.pushes.extend(queued.pushes);
        Ok(out)
    }

    /// Ends the device's open session: `stopping`, and `stop_collection` queued and pushed.
    pub fn end_session(&mut self, device: &str, now_ms: i64) -> Result<Outcome, CourtError> {
        let dev = self.device_mut(device)?;
        let session_id = dev
            .open_session()
            .map(|s| s.id.clone())
            .ok_or_else(|| CourtError::NoOpenSession(device.to_owned()))?;
        let mut out = Outcome::default();
        if let Some(session) = dev.sessions.get_mut(&session_id)
            && session.advance(SessionState::Stopping, now_ms)
        {
            out.events.push(session_event(session, now_ms));
        }
        let queued = self.enqueue(device, DeviceCommand::StopCollection { session_id }, now_ms)?;
        out.events.extend(queued.events);
        out.pushes.extend(queued.pushes);
        Ok(out)
    }

    /// Queues any command for a device; it is pushed now and on every reconnect until acked.
    pub fn enqueue(
        &mut self,
        device: &str,
        command: DeviceCommand,
        now_ms: i64,
    ) -> Result<Outcome, CourtError> {
        let command_id = self.next_command_id;
        let capacity = self.options.command_queue_capacity;
        let dev = self.device_mut(device)?;
        let pending = PendingCommand {
            command_id,
            command: command.clone(),
            queued_ms: now_ms,
        };
        dev.commands
            .push(pending.clone(), capacity)
            .map_err(|source| CourtError::Queue {
                device: device.to_owned(),
                source,
            })?;
        self.next_command_id += 1;
        Ok(Outcome {
            events: vec![CourtEvent::CommandQueued {
                device: device.to_owned(),
                command_id,
                command,
                ts: now_ms,
            }],
            pushes: vec![(device.to_owned(), pending)],
        })
    }

    /// The firmware's `ack {command_id, success}`.
    pub fn command_ack(
        &mut self,
        device: &str,
        command_id: u64,
        success: bool,
        now_ms: i64,
    ) -> Outcome {
        let Ok(dev) = self.device_mut(device) else {
            return Outcome::default();
        };
        match dev.commands.ack(command_id) {
            Some(_) => Outcome::default().event(CourtEvent::CommandDone {
                device: device.to_owned(),
                command_id,
                success,
                ts: now_ms,
            }),
            None => Outcome::default(),
        }
    }

    /// What `poll_commands` returns: every command still waiting for an ack, oldest first.
    pub fn pending_commands(&self, device: &str) -> Vec<PendingCommand> {
        self.devices
            .get(device)
            .map(|d| d.commands.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Puts a journaled command back in its queue, once: a snapshot taken just after a command was
/// queued can reach the journal before the command's own event, so both may name it.
/// Restoring ignores the capacity (it may have been lowered since): a command that was accepted
/// is never forgotten.
fn restore_command(queue: &mut CommandQueue, pending: PendingCommand) {
    if queue.iter().all(|c| c.command_id != pending.command_id) {
        let _ = queue.push(pending, usize::MAX);
    }
}

fn session_event(session: &Session, now_ms: i64) -> CourtEvent {
    CourtEvent::SessionState {
        device: session.device.clone(),
        session_id: session.id.clone(),
        state: session.state,
        source: session.source,
        ts: now_ms,
    }
}

/// Keeps at most `kept` ended sessions per device, forgetting the oldest.
fn remember_ended(dev: &mut DeviceState, kept: usize) {
    for (id, session) in &dev.sessions {
        if !session.state.is_open()
            && session.state != SessionState::Analyzing
            && !dev.ended.contains(id)
        {
            dev.ended.push_back(id.clone());
        }
    }
    while dev.ended.len() > kept {
        if let Some(old) = dev.ended.pop_front() {
            dev.sessions.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests;
