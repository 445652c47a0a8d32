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
//!
//! Bounds, so that one device (a hostile host on the court LAN with its token, or none for an
//! `allow_tokenless` code) cannot grow the court: at most `max_open_sessions_per_device` open
//! sessions (opening one more stops the oldest), at most `session_starts_per_minute` sessions
//! opened by a device, `ended_sessions_kept` ended ones remembered, `commands_remembered`
//! sender command ids. So the snapshot is bounded by the number of configured devices, and the
//! work per new session by these small numbers, not by how many sessions there ever were.

pub mod commands;
pub mod recent;
pub mod session;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

pub use commands::{CommandQueue, PendingCommand, QueueError};
pub use recent::{RecentCommand, RecentCommands};
pub use session::{Session, SessionSource, SessionState};

use crate::protocol::DeviceCommand;
use crate::protocol::validate::{self, IdKind};

/// The window the session start limit counts over.
const START_WINDOW_MS: i64 = 60_000;

/// Limits of the court's memory.
#[derive(Debug, Clone)]
pub struct CourtOptions {
    /// Commands waiting for an ack, per device.
    pub command_queue_capacity: usize,
    /// Ended sessions remembered per device (for `session_status` queries).
    pub ended_sessions_kept: usize,
    /// Open sessions per device; opening one more stops the oldest.
    pub max_open_sessions_per_device: usize,
    /// Sessions a device may open (by data or `START_COLLECTION_CONFIRMED`) per minute; more
    /// are refused until the minute has passed.
    pub session_starts_per_minute: usize,
    /// Sender command ids remembered, to run a repeated one only once.
    pub commands_remembered: usize,
}

impl Default for CourtOptions {
    fn default() -> Self {
        CourtOptions {
            command_queue_capacity: 32,
            ended_sessions_kept: 16,
            max_open_sessions_per_device: 2,
            session_starts_per_minute: 10,
            commands_remembered: 1024,
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
        /// The sender's `command_id` (cloud, admin), remembered to run a repeat only once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
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
    /// A player was bound to a device (the admin's `bind_user`): their phones get its swings.
    UserBound {
        device: String,
        user: String,
        /// The device's `[[devices]] user` when it was bound: the binding holds while that is
        /// unchanged, and a new configured user wins over it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        configured: Option<String>,
        ts: i64,
    },
    /// Everything still open, so older events may be deleted with their segments.
    Snapshot {
        sessions: Vec<Session>,
        commands: Vec<(String, PendingCommand)>,
        next_command_id: u64,
        ts: i64,
        /// The window of sender command ids (absent in snapshots of older versions).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recent_commands: Vec<RecentCommand>,
        /// Devices bound to a player by `bind_user`, by device code.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bindings: Vec<(String, UserBinding)>,
    },
}

/// A player bound to a device by the admin, over the configuration's `user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBinding {
    pub user: String,
    /// The configured `user` it was bound over (see [`CourtEvent::UserBound`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured: Option<String>,
}

impl CourtEvent {
    /// The device the event is about, for the journal's index.
    pub fn device(&self) -> Option<&str> {
        match self {
            CourtEvent::SessionState { device, .. }
            | CourtEvent::CommandQueued { device, .. }
            | CourtEvent::CommandDone { device, .. }
            | CourtEvent::DeviceStatus { device, .. }
            | CourtEvent::UserBound { device, .. } => Some(device),
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

    /// Whether a journaled event document is one of the court's (by its `type`), as opposed to
    /// the journal's own notices.
    pub fn is_court_event(json: &str) -> bool {
        #[derive(Deserialize)]
        struct Typed {
            #[serde(rename = "type")]
            kind: String,
        }
        serde_json::from_str::<Typed>(json)
            .is_ok_and(|t| COURT_EVENT_TYPES.contains(&t.kind.as_str()))
    }

    /// Reads a journaled event back. A snapshot is read entry by entry: an entry that no
    /// longer reads (written by an older version, or holding an id the validator now refuses)
    /// is left out and described in the returned list, and the rest is kept — one bad session
    /// id must not cost the whole court its state after a restart. A session event with such
    /// an id is refused (the caller skips it).
    pub fn from_journal(json: &str) -> Result<(CourtEvent, Vec<String>), serde_json::Error> {
        use serde::de::Error as _;
        let event = match serde_json::from_str::<CourtEvent>(json) {
            Ok(event) => event,
            Err(e) => return lenient_snapshot(json).ok_or(e),
        };
        if let CourtEvent::SessionState {
            device, session_id, ..
        } = &event
        {
            valid_ids(session_id, device).map_err(serde_json::Error::custom)?;
        }
        let CourtEvent::Snapshot {
            sessions,
            commands,
            next_command_id,
            ts,
            recent_commands,
            bindings,
        } = event
        else {
            return Ok((event, Vec::new()));
        };
        let mut dropped = Vec::new();
        let sessions = sessions
            .into_iter()
            .filter(|s| valid_session(s, &mut dropped))
            .collect();
        let snapshot = CourtEvent::Snapshot {
            sessions,
            commands,
            next_command_id,
            ts,
            recent_commands,
            bindings,
        };
        Ok((snapshot, dropped))
    }
}

/// The `type` of every [`CourtEvent`] as journaled (checked by a test against the enum).
const COURT_EVENT_TYPES: [&str; 6] = [
    "session_state",
    "command_queued",
    "command_done",
    "device_status",
    "user_bound",
    "snapshot",
];

/// A snapshot the strict reading refused, read entry by entry; `None` if it is not a snapshot.
fn lenient_snapshot(json: &str) -> Option<(CourtEvent, Vec<String>)> {
    #[derive(Deserialize)]
    struct Loose {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        sessions: Vec<serde_json::Value>,
        #[serde(default)]
        commands: Vec<serde_json::Value>,
        next_command_id: u64,
        ts: i64,
        #[serde(default)]
        recent_commands: Vec<serde_json::Value>,
        #[serde(default)]
        bindings: Vec<serde_json::Value>,
    }
    let loose: Loose = serde_json::from_str(json).ok()?;
    if loose.kind != "snapshot" {
        return None;
    }
    let mut dropped = Vec::new();
    let sessions = entries::<Session>(loose.sessions, "session", &mut dropped)
        .into_iter()
        .filter(|s| valid_session(s, &mut dropped))
        .collect();
    let commands = entries(loose.commands, "command", &mut dropped);
    let recent_commands = entries(loose.recent_commands, "recent command", &mut dropped);
    let bindings = entries(loose.bindings, "user binding", &mut dropped);
    let snapshot = CourtEvent::Snapshot {
        sessions,
        commands,
        next_command_id: loose.next_command_id,
        ts: loose.ts,
        recent_commands,
        bindings,
    };
    Some((snapshot, dropped))
}

/// The entries that read as `T`; each one that does not is described in `dropped`.
fn entries<T: serde::de::DeserializeOwned>(
    values: Vec<serde_json::Value>,
    what: &str,
    dropped: &mut Vec<String>,
) -> Vec<T> {
    values
        .into_iter()
        .filter_map(|v| match serde_json::from_value::<T>(v.clone()) {
            Ok(entry) => Some(entry),
            Err(e) => {
                dropped.push(format!("{what} {}: {e}", clip_json(&v)));
                None
            }
        })
        .collect()
}

/// A session's ids checked by the validator.
fn valid_ids(session_id: &str, device: &str) -> Result<(), validate::Invalid> {
    validate::id(IdKind::SessionId, "session_id", session_id)?;
    validate::id(IdKind::DeviceCode, "device", device)
}

/// Whether a restored session's ids pass the validator; if not, it is described in `dropped`.
fn valid_session(session: &Session, dropped: &mut Vec<String>) -> bool {
    match valid_ids(&session.id, &session.device) {
        Ok(()) => true,
        Err(e) => {
            dropped.push(format!(
                "session {:?} of {:?}: {e}",
                session.id, session.device
            ));
            false
        }
    }
}

/// At most 120 characters of a JSON value, for a log line (serde_json escapes control
/// characters in strings, so the text cannot forge a line).
fn clip_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
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
    #[error(
        "device `{device}` opened {limit} sessions in the last minute ([limits] session_starts_per_minute): session `{session_id}` refused; send it again later"
    )]
    TooManySessionStarts {
        device: String,
        session_id: String,
        limit: usize,
    },
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
    /// The player the admin bound to it, if any (see [`DeviceState::user`]).
    pub binding: Option<UserBinding>,
    /// Open sessions and the most recent ended ones, by id.
    sessions: BTreeMap<String, Session>,
    /// Ids of ended sessions, oldest first, to bound `sessions`.
    ended: VecDeque<String>,
    /// When the device opened its recent sessions, oldest first (at most
    /// `session_starts_per_minute`, within the last minute).
    starts: VecDeque<i64>,
    pub commands: CommandQueue,
}

impl DeviceState {
    /// The most recently started session that is still open. (`sessions` is bounded by the
    /// court's limits, so this looks at a handful of sessions.)
    pub fn open_session(&self) -> Option<&Session> {
        self.open_sessions().max_by_key(|s| s.start_ms)
    }

    /// The sessions still open.
    pub fn open_sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().filter(|s| s.state.is_open())
    }

    /// Counts a session start against the per-minute limit, or refuses it.
    fn admit_start(&mut self, limit: usize, now_ms: i64) -> bool {
        while self
            .starts
            .front()
            .is_some_and(|t| *t <= now_ms - START_WINDOW_MS)
        {
            self.starts.pop_front();
        }
        if self.starts.len() >= limit {
            return false;
        }
        self.starts.push_back(now_ms);
        true
    }

    pub fn session(&self, session_id: &str) -> Option<&Session> {
        self.sessions.get(session_id)
    }

    /// The player the device belongs to now, given its configured `user`: the admin's binding
    /// while the configured user is the one it was bound over, else the configured one.
    pub fn user<'a>(&'a self, configured: Option<&'a str>) -> Option<&'a str> {
        match &self.binding {
            Some(b) if b.configured.as_deref() == configured => Some(&b.user),
            _ => configured,
        }
    }

    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }
}

/// What became of a command sent with the sender's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued now, as the gateway's command `command_id`.
    New { command_id: u64 },
    /// The id was seen before: nothing was queued; this is the first command's state.
    Duplicate(RecentCommand),
}

/// What `upload_complete` leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadVerdict {
    /// Nothing missing: the session is analysing; run the final analysis.
    Analyse,
    /// Batches are missing: the device resends them (or the session was already past this).
    Wait,
    /// The gateway never received data for the session: nothing is analysed or journaled as a
    /// summary (an open session is stopped; an unknown one is not created).
    NoData,
}

/// The court: every configured device's state.
#[derive(Debug)]
pub struct Court {
    devices: BTreeMap<String, DeviceState>,
    next_command_id: u64,
    recent: RecentCommands,
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
            recent: RecentCommands::default(),
            options,
        }
    }

    /// The window of sender command ids.
    pub fn recent_commands(&self) -> &RecentCommands {
        &self.recent
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
                        .or_insert_with(|| Session::new(session_id.clone(), device, source, ts));
                    let was_ended = is_ended(session.state);
                    session.state = state;
                    if is_ended(state) {
                        session.end_ms = Some(ts);
                        if !was_ended {
                            remember_ended(dev, session_id, ended_kept);
                        }
                    }
                }
            }
            CourtEvent::CommandQueued {
                device,
                command_id,
                command,
                ts,
                request_id,
            } => {
                self.next_command_id = self.next_command_id.max(command_id.saturating_add(1));
                if let Some(request_id) = request_id {
                    let entry = RecentCommand {
                        request_id,
                        device: device.clone(),
                        command_id,
                        success: None,
                    };
                    self.recent
                        .remember(entry, self.options.commands_remembered);
                }
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
                device,
                command_id,
                success,
                ..
            } => {
                self.recent.settle(command_id, success);
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
            CourtEvent::UserBound {
                device,
                user,
                configured,
                ..
            } => {
                if let Some(dev) = self.devices.get_mut(&device) {
                    dev.binding = Some(UserBinding { user, configured });
                }
            }
            CourtEvent::Snapshot {
                sessions,
                commands,
                next_command_id,
                recent_commands,
                bindings,
                ..
            } => {
                self.next_command_id = self.next_command_id.max(next_command_id);
                for entry in recent_commands {
                    self.recent
                        .remember(entry, self.options.commands_remembered);
                }
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
                for (device, binding) in bindings {
                    if let Some(dev) = self.devices.get_mut(&device) {
                        dev.binding = Some(binding);
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
            recent_commands: self.recent.iter().cloned().collect(),
            bindings: self
                .devices
                .iter()
                .filter_map(|(code, d)| Some((code.clone(), d.binding.clone()?)))
                .collect(),
        }
    }

    /// Binds `user` to `device` over its configured user `configured` (the admin's
    /// `bind_user`); journaled so it survives a restart.
    pub fn bind_user(
        &mut self,
        device: &str,
        user: String,
        configured: Option<String>,
        now_ms: i64,
    ) -> Result<Outcome, CourtError> {
        self.device_mut(device)?;
        let event = CourtEvent::UserBound {
            device: device.to_owned(),
            user,
            configured,
            ts: now_ms,
        };
        self.apply(event.clone());
        Ok(Outcome::default().event(event))
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

    /// The firmware's `status_response`: kept for the admin view, and — when it names a
    /// `get_status` still waiting — that command's answer: it is done (V3.3 answers `get_status`
    /// with this, never with an `ack`, so without it the command would be pushed again on
    /// every reconnect).
    pub fn status_response(
        &mut self,
        device: &str,
        json: String,
        command_id: Option<u64>,
        now_ms: i64,
    ) -> Outcome {
        let Ok(dev) = self.device_mut(device) else {
            return Outcome::default();
        };
        dev.last_status_response = Some(json);
        let answers_get_status = command_id.is_some_and(|id| {
            dev.commands
                .iter()
                .any(|c| c.command_id == id && c.command == DeviceCommand::GetStatus)
        });
        match command_id {
            Some(id) if answers_get_status => self.command_ack(device, id, true, now_ms),
            _ => Outcome::default(),
        }
    }

    /// Data arrived for `session_id`: it opens the session if the gateway had not (within the
    /// device's session limits: see [`Court::open_by_device`]), moves a calibrating session to
    /// collecting, and settles its `start_collection`.
    pub fn data_arrived(
        &mut self,
        device: &str,
        session_id: &str,
        now_ms: i64,
    ) -> Result<Outcome, CourtError> {
        let Ok(dev) = self.device_mut(device) else {
            return Ok(Outcome::default());
        };
        let mut out = Outcome::default();
        match dev.sessions.get_mut(session_id) {
            None => out = self.open_by_device(device, session_id, now_ms)?,
            Some(session) => {
                if session.state == SessionState::Calibrating
                    && session.advance(SessionState::Collecting, now_ms)
                {
                    out.events.push(session_event(session, now_ms));
                }
            }
        }
        let Ok(dev) = self.device_mut(device) else {
            return Ok(out);
        };
        if let Some(done) = dev.commands.settle_start(session_id) {
            self.recent.settle(done.command_id, true);
            out.events.push(CourtEvent::CommandDone {
                device: device.to_owned(),
                command_id: done.command_id,
                success: true,
                ts: now_ms,
            });
        }
        Ok(out)
    }

    /// A session the device opened (its data or its `START_COLLECTION_CONFIRMED` named one
    /// the gateway did not know): refused past `session_starts_per_minute`; past
    /// `max_open_sessions_per_device` the oldest open one is stopped first (journaled like any
    /// stop; its data stays in the journal for `replay`).
    fn open_by_device(
        &mut self,
        device: &str,
        session_id: &str,
        now_ms: i64,
    ) -> Result<Outcome, CourtError> {
        let options = self.options.clone();
        let dev = self.device_mut(device)?;
        if !dev.admit_start(options.session_starts_per_minute, now_ms) {
            return Err(CourtError::TooManySessionStarts {
                device: device.to_owned(),
                session_id: session_id.to_owned(),
                limit: options.session_starts_per_minute,
            });
        }
        let mut out = Outcome::default();
        while dev.open_sessions().count() >= options.max_open_sessions_per_device.max(1) {
            let Some(oldest) = dev.open_sessions().min_by_key(|s| s.start_ms) else {
                break;
            };
            let oldest = oldest.id.clone();
            out.events.extend(end_session_as(
                dev,
                &oldest,
                SessionState::Stopped,
                &options,
                now_ms,
            ));
        }
        let session = Session::new(
            session_id.to_owned(),
            device.to_owned(),
            SessionSource::Device,
            now_ms,
        );
        out.events.push(session_event(&session, now_ms));
        dev.sessions.insert(session_id.to_owned(), session);
        Ok(out)
    }

    /// The firmware's `status_update`: `START_COLLECTION_CONFIRMED` moves the session to
    /// collecting (as in the seed backend); other statuses are only recorded.
    pub fn status_update(
        &mut self,
        device: &str,
        status: &str,
        session_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Outcome, CourtError> {
        if let Ok(dev) = self.device_mut(device) {
            dev.telemetry.status = Some(status.to_owned());
        }
        match (status, session_id) {
            ("START_COLLECTION_CONFIRMED", Some(session_id)) => {
                self.data_arrived(device, session_id, now_ms)
            }
            _ => Ok(Outcome::default()),
        }
    }

    /// `upload_complete`. With gaps (`missing`) the session stays as it is and the device is
    /// asked to resend. Otherwise, `had_data` (the journal holds at least one batch of the
    /// session) decides: without data nothing is analysed — an open session is stopped, an
    /// unknown one is not created (a flood of made-up ids leaves nothing behind); with data the
    /// session moves to analyzing (the caller runs the final analysis, then calls
    /// [`Court::analysis_done`]). Refused only when reopening a session the court had
    /// forgotten is over the device's session start limit.
    pub fn upload_complete(
        &mut self,
        device: &str,
        session_id: &str,
        had_data: bool,
        missing: &[u64],
        now_ms: i64,
    ) -> Result<(Outcome, UploadVerdict), CourtError> {
        let options = self.options.clone();
        let dev = self.device_mut(device)?;
        if !missing.is_empty() {
            return Ok((Outcome::default(), UploadVerdict::Wait));
        }
        if !had_data {
            let events = end_session_as(dev, session_id, SessionState::Stopped, &options, now_ms);
            let out = Outcome {
                events,
                pushes: vec![],
            };
            return Ok((out, UploadVerdict::NoData));
        }
        // Data is stored for a session the court does not know (forgotten past the snapshot):
        // it is opened again, within the device's limits, to be analysed.
        let mut out = if dev.sessions.contains_key(session_id) {
            Outcome::default()
        } else {
            self.open_by_device(device, session_id, now_ms)?
        };
        let session = self
            .devices
            .get_mut(device)
            .and_then(|d| d.sessions.get_mut(session_id))
            .expect("the session exists: found or just opened above");
        if session.advance(SessionState::Analyzing, now_ms) {
            out.events.push(session_event(session, now_ms));
            return Ok((out, UploadVerdict::Analyse));
        }
        Ok((out, UploadVerdict::Wait))
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
        let options = self.options.clone();
        let Ok(dev) = self.device_mut(device) else {
            return Outcome::default();
        };
        Outcome {
            events: end_session_as(dev, session_id, state, &options, now_ms),
            pushes: vec![],
        }
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

    /// Queues a command the sender numbered `request_id` (the cloud's or the admin's
    /// `command_id`) — once: a repeated id queues nothing and answers the first one's state.
    pub fn enqueue_once(
        &mut self,
        device: &str,
        command: DeviceCommand,
        request_id: Option<&str>,
        now_ms: i64,
    ) -> Result<(Outcome, Enqueued), CourtError> {
        let Some(request_id) = request_id else {
            let out = self.enqueue(device, command, now_ms)?;
            let command_id = out.pushes.first().map_or(0, |(_, p)| p.command_id);
            return Ok((out, Enqueued::New { command_id }));
        };
        if let Some(first) = self.recent.find(request_id) {
            return Ok((Outcome::default(), Enqueued::Duplicate(first.clone())));
        }
        let mut out = self.enqueue(device, command, now_ms)?;
        let command_id = out.pushes.first().map_or(0, |(_, p)| p.command_id);
        for event in &mut out.events {
            if let CourtEvent::CommandQueued { request_id: id, .. } = event {
                *id = Some(request_id.to_owned());
            }
        }
        let entry = RecentCommand {
            request_id: request_id.to_owned(),
            device: device.to_owned(),
            command_id,
            success: None,
        };
        self.recent
            .remember(entry, self.options.commands_remembered);
        Ok((out, Enqueued::New { command_id }))
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
                request_id: None,
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
            Some(_) => {
                self.recent.settle(command_id, success);
                Outcome::default().event(CourtEvent::CommandDone {
                    device: device.to_owned(),
                    command_id,
                    success,
                    ts: now_ms,
                })
            }
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

/// `completed` or `stopped`: the session is over.
fn is_ended(state: SessionState) -> bool {
    matches!(state, SessionState::Completed | SessionState::Stopped)
}

/// Moves a session to `state` (completed or stopped) if it may go there; returns its event.
fn end_session_as(
    dev: &mut DeviceState,
    session_id: &str,
    state: SessionState,
    options: &CourtOptions,
    now_ms: i64,
) -> Vec<CourtEvent> {
    let Some(session) = dev.sessions.get_mut(session_id) else {
        return Vec::new();
    };
    if !session.advance(state, now_ms) {
        return Vec::new();
    }
    let event = session_event(session, now_ms);
    remember_ended(dev, session_id.to_owned(), options.ended_sessions_kept);
    vec![event]
}

/// Notes a session that just ended, forgetting the oldest ended ones past `kept` (called once
/// per session, when it ends: no scan of the device's sessions).
fn remember_ended(dev: &mut DeviceState, session_id: String, kept: usize) {
    dev.ended.push_back(session_id);
    while dev.ended.len() > kept {
        if let Some(old) = dev.ended.pop_front() {
            dev.sessions.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests;
