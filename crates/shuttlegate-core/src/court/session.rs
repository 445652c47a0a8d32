//! Sessions: the seed backend's state machine, per device.
//!
//! `calibrating` (start sent) → `collecting` (confirmed, or first data) → `stopping` (stop sent)
//! → `analyzing` (upload complete, nothing missing) → `completed`; `stopped` when a session is
//! abandoned (replaced by a new one before it completed). Transitions are pure; the court
//! journals each one as an event so a restart resumes them.

use serde::{Deserialize, Serialize};

/// A session's state, named as the seed backend names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Calibrating,
    Collecting,
    Stopping,
    Analyzing,
    Completed,
    Stopped,
}

impl SessionState {
    /// Still taking data or waiting for its upload to complete.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            SessionState::Calibrating | SessionState::Collecting | SessionState::Stopping
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Calibrating => "calibrating",
            SessionState::Collecting => "collecting",
            SessionState::Stopping => "stopping",
            SessionState::Analyzing => "analyzing",
            SessionState::Completed => "completed",
            SessionState::Stopped => "stopped",
        }
    }
}

/// Who opened a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionSource {
    /// A command from the gateway's side: admin console, phone, cloud, demo/simulate tooling.
    Command,
    /// Data arrived for a session the gateway had not started: the device opened it.
    Device,
}

/// One device's session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub device: String,
    pub state: SessionState,
    pub source: SessionSource,
    /// Gateway time the session was opened, unix ms.
    pub start_ms: i64,
    /// Gateway time it reached `completed` or `stopped`, unix ms.
    pub end_ms: Option<i64>,
}

impl Session {
    pub fn new(id: String, device: String, source: SessionSource, now_ms: i64) -> Session {
        let state = match source {
            SessionSource::Command => SessionState::Calibrating,
            SessionSource::Device => SessionState::Collecting,
        };
        Session {
            id,
            device,
            state,
            source,
            start_ms: now_ms,
            end_ms: None,
        }
    }

    /// Moves to `next` when that is a forward step of the machine; returns whether it moved.
    /// Backward steps (a late `START_COLLECTION_CONFIRMED` after a stop) are ignored, so
    /// messages that cross on the wire cannot reopen a session.
    pub fn advance(&mut self, next: SessionState, now_ms: i64) -> bool {
        if !allowed(self.state, next) {
            return false;
        }
        self.state = next;
        if matches!(next, SessionState::Completed | SessionState::Stopped) {
            self.end_ms = Some(now_ms);
        }
        true
    }
}

fn rank(state: SessionState) -> u8 {
    match state {
        SessionState::Calibrating => 0,
        SessionState::Collecting => 1,
        SessionState::Stopping => 2,
        SessionState::Analyzing => 3,
        SessionState::Completed | SessionState::Stopped => 4,
    }
}

fn allowed(from: SessionState, to: SessionState) -> bool {
    match to {
        // Abandoning is possible from any state that has not ended.
        SessionState::Stopped => rank(from) < 4,
        _ => rank(to) > rank(from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new("s1".into(), "d1".into(), SessionSource::Command, 1_000)
    }

    #[test]
    fn a_command_session_walks_the_seed_states_in_order() {
        let mut s = session();
        assert_eq!(s.state, SessionState::Calibrating);
        for next in [
            SessionState::Collecting,
            SessionState::Stopping,
            SessionState::Analyzing,
            SessionState::Completed,
        ] {
            assert!(s.advance(next, 2_000), "{next:?}");
        }
        assert_eq!(s.end_ms, Some(2_000));
    }

    #[test]
    fn a_device_opened_session_starts_collecting() {
        let s = Session::new("s1".into(), "d1".into(), SessionSource::Device, 0);
        assert_eq!(s.state, SessionState::Collecting);
    }

    #[test]
    fn a_late_confirmation_does_not_reopen_a_stopping_session() {
        let mut s = session();
        assert!(s.advance(SessionState::Stopping, 5));
        assert!(!s.advance(SessionState::Collecting, 6));
        assert_eq!(s.state, SessionState::Stopping);
    }

    #[test]
    fn an_ended_session_cannot_be_stopped_again() {
        let mut s = session();
        assert!(s.advance(SessionState::Completed, 5));
        assert!(!s.advance(SessionState::Stopped, 6));
        assert_eq!(s.end_ms, Some(5));
    }
}
