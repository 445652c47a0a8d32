//! `/healthz`: liveness, for a watchdog (systemd, a supervisor on the Pi, a monitoring probe).
//!
//! The answer is 200 while the gateway works — the journal's writer stores appends and every
//! supervised task runs (the `http` task stands for the listeners) — and 503, with the reasons,
//! once a part is dead: a task that died (a critical one stops the daemon; a restarting one waits
//! out its backoff), or a journal that stopped for good. A restart is what helps then.
//!
//! Conditions a restart would not cure are *degraded*, listed in the body without failing it, so
//! a watchdog built on this endpoint never restarts a gateway for a full disk: the journal at
//! its cap (devices are answered `success:false` under `refuse`, the oldest raw batches give way
//! under `drop_oldest_raw`), a journal write being retried within `journal.failure_grace` (the
//! journal stops by itself — and turns this endpoint 503 — if it outlasts it), an uplink sink not
//! connected (the journal keeps everything for it), the gateway's clock not synchronised (the
//! kernel's verdict, [`crate::time_sync`]: the time service's to fix, not a restart's).
//!
//! [`assess`] is pure (the parts' states and `now` in, the verdict out); [`routes`] reads the
//! parts at each request.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::time::Instant;

use crate::journal::{Journal, JournalHealth};
use crate::supervise::{Fatal, Supervisor, TaskKind, TaskState, TaskStatus};
use crate::time_sync::TimeSync;
use crate::uplink::status::{SinkBoard, SinkSnapshot};

/// The verdict, as the body's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything works.
    Ok,
    /// Everything is alive; something is listed in `degraded` (still 200).
    Degraded,
    /// A part is dead (503): see `reasons`.
    Dead,
}

/// A condition that does not fail the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Degraded {
    /// `journal_full`, `journal_retrying`, `uplink_down` or `clock_unsynced`.
    pub kind: &'static str,
    /// What it is, in English, for the operator.
    pub message: String,
}

/// One supervised task, as the body shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskReport {
    /// `running`, `restarting`, `stopped` or `failed`.
    pub state: &'static str,
    /// `critical` (its death stops the daemon) or `restarting` (restarted after a backoff).
    pub policy: &'static str,
    pub restarts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// How long it has been in its state.
    pub for_seconds: u64,
}

/// The body of `/healthz`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub status: Status,
    /// Why it is dead (empty unless `status` is `dead`).
    pub reasons: Vec<String>,
    pub degraded: Vec<Degraded>,
    pub tasks: BTreeMap<String, TaskReport>,
}

/// What [`assess`] looks at.
#[derive(Debug)]
pub struct Parts<'a> {
    pub tasks: &'a [TaskStatus],
    /// The critical task's death that stopped the daemon, if one did.
    pub fatal: Option<&'a Fatal>,
    pub journal: &'a JournalHealth,
    /// The last append found the journal at its cap.
    pub journal_full: bool,
    /// The journal's bytes and cap, for the message.
    pub journal_bytes: (u64, u64),
    pub sinks: &'a [(&'static str, SinkSnapshot)],
    /// The kernel's verdict on the clock (`None`: it cannot tell, which is not reported).
    pub clock_synced: Option<bool>,
}

/// The verdict on `parts` at `now`.
pub fn assess(parts: &Parts<'_>, now: Instant) -> Health {
    let mut reasons = Vec::new();
    if let Some(fatal) = parts.fatal {
        reasons.push(fatal.to_string());
    }
    for task in parts.tasks {
        if let Some(why) = task_dead(task, parts.fatal) {
            reasons.push(why);
        }
    }
    let mut degraded = Vec::new();
    match parts.journal {
        JournalHealth::Writing => {}
        JournalHealth::Stopped(why) => reasons.push(format!("the journal stopped: {why}")),
        JournalHealth::Retrying { why, since } => degraded.push(Degraded {
            kind: "journal_retrying",
            message: format!(
                "journal writes failing for {} s, being retried (devices are answered success:false meanwhile): {why}",
                now.into_std().saturating_duration_since(*since).as_secs()
            ),
        }),
    }
    if parts.journal_full {
        let (bytes, cap) = parts.journal_bytes;
        degraded.push(Degraded {
            kind: "journal_full",
            message: format!("the journal is at its cap ({bytes} of {cap} bytes)"),
        });
    }
    for (name, sink) in parts.sinks.iter().filter(|(_, s)| !s.connected) {
        let last = sink
            .last_error
            .as_deref()
            .map_or(String::new(), |e| format!(" (last error: {e})"));
        degraded.push(Degraded {
            kind: "uplink_down",
            message: format!(
                "uplink `{name}` not connected, {} records waiting{last}",
                sink.backlog_records
            ),
        });
    }
    if parts.clock_synced == Some(false) {
        degraded.push(Degraded {
            kind: "clock_unsynced",
            message: "the gateway's clock is not synchronised (NTP): times it stamps may be off"
                .to_owned(),
        });
    }
    let status = match (reasons.is_empty(), degraded.is_empty()) {
        (false, _) => Status::Dead,
        (true, false) => Status::Degraded,
        (true, true) => Status::Ok,
    };
    let tasks = parts
        .tasks
        .iter()
        .map(|t| (t.name.clone(), report(t, now)))
        .collect();
    Health {
        status,
        reasons,
        degraded,
        tasks,
    }
}

/// Why `task` counts as dead, if it does. The fatal stop is reported once, by itself.
fn task_dead(task: &TaskStatus, fatal: Option<&Fatal>) -> Option<String> {
    let why = task.last_failure.as_deref().unwrap_or("no reason recorded");
    match task.state {
        TaskState::Running | TaskState::Stopped => None,
        TaskState::Failed if fatal.is_some_and(|f| f.task == task.name) => None,
        TaskState::Failed => Some(format!("task `{}` died: {why}", task.name)),
        TaskState::Restarting => Some(format!(
            "task `{}` died and waits to restart (restart {}): {why}",
            task.name, task.restarts
        )),
    }
}

fn report(task: &TaskStatus, now: Instant) -> TaskReport {
    TaskReport {
        state: task.state.as_str(),
        policy: match task.kind {
            TaskKind::Critical => "critical",
            TaskKind::Restarting => "restarting",
        },
        restarts: task.restarts,
        last_failure: task.last_failure.clone(),
        for_seconds: now.saturating_duration_since(task.since).as_secs(),
    }
}

/// The parts `/healthz` reads at each request.
#[derive(Clone)]
pub struct HealthSources {
    pub supervisor: Supervisor,
    pub journal: Journal,
    pub sinks: SinkBoard,
    pub time_sync: TimeSync,
}

impl HealthSources {
    /// The verdict now.
    pub fn check(&self) -> Health {
        let tasks = self.supervisor.snapshot();
        let fatal = self.supervisor.fatal();
        let journal = self.journal.health().borrow().clone();
        let stats = self.journal.stats();
        let sinks = self.sinks.snapshots();
        let parts = Parts {
            tasks: &tasks,
            fatal: fatal.as_ref(),
            journal: &journal,
            journal_full: stats.full,
            journal_bytes: (stats.bytes, stats.max_bytes),
            sinks: &sinks,
            clock_synced: self.time_sync.synchronised(),
        };
        assess(&parts, Instant::now())
    }
}

/// `GET /healthz`.
pub fn routes(sources: HealthSources) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(Arc::new(sources))
}

async fn healthz(State(sources): State<Arc<HealthSources>>) -> Response {
    let health = sources.check();
    let code = match health.status {
        Status::Ok | Status::Degraded => StatusCode::OK,
        Status::Dead => StatusCode::SERVICE_UNAVAILABLE,
    };
    // Serialising strings, numbers and maps of them cannot fail.
    let mut body = serde_json::to_string(&health).unwrap_or_default();
    body.push('\n');
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (code, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn task(name: &str, kind: TaskKind, state: TaskState, now: Instant) -> TaskStatus {
        TaskStatus {
            name: name.to_owned(),
            kind,
            state,
            restarts: u64::from(state == TaskState::Restarting),
            last_failure: (state != TaskState::Running).then(|| "panicked: boom".to_owned()),
            since: now,
        }
    }

    fn parts<'a>(
        tasks: &'a [TaskStatus],
        journal: &'a JournalHealth,
        sinks: &'a [(&'static str, SinkSnapshot)],
    ) -> Parts<'a> {
        Parts {
            tasks,
            fatal: None,
            journal,
            journal_full: false,
            journal_bytes: (10, 100),
            sinks,
            clock_synced: Some(true),
        }
    }

    #[test]
    fn a_full_journal_and_a_down_uplink_are_degraded_not_dead() {
        let now = Instant::now();
        let tasks = [task("http", TaskKind::Critical, TaskState::Running, now)];
        let down = SinkSnapshot {
            sink: "mqtt",
            backlog_records: 42,
            last_error: Some("connection refused".into()),
            ..SinkSnapshot::default()
        };
        let sinks = [("mqtt", down)];
        let mut p = parts(&tasks, &JournalHealth::Writing, &sinks);
        p.journal_full = true;
        p.clock_synced = Some(false);
        let health = assess(&p, now);
        assert_eq!(health.status, Status::Degraded);
        assert!(health.reasons.is_empty());
        let kinds: Vec<_> = health.degraded.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, ["journal_full", "uplink_down", "clock_unsynced"]);
        assert!(health.degraded[1].message.contains("42 records waiting"));
        assert!(health.degraded[1].message.contains("connection refused"));
    }

    #[test]
    fn a_restarting_task_and_a_stopped_journal_are_dead_with_their_reasons() {
        let now = Instant::now();
        let tasks = [
            task("http", TaskKind::Critical, TaskState::Running, now),
            task(
                "uplink-hub",
                TaskKind::Restarting,
                TaskState::Restarting,
                now,
            ),
        ];
        let stopped = JournalHealth::Stopped("fsync failed".into());
        let health = assess(&parts(&tasks, &stopped, &[]), now);
        assert_eq!(health.status, Status::Dead);
        assert_eq!(health.reasons.len(), 2, "{:?}", health.reasons);
        assert!(health.reasons[0].contains("`uplink-hub`") && health.reasons[0].contains("boom"));
        assert!(health.reasons[1].contains("fsync failed"));
        assert_eq!(health.tasks["uplink-hub"].state, "restarting");
    }

    #[test]
    fn a_fatal_stop_is_reported_once() {
        let now = Instant::now();
        let tasks = [task("journal", TaskKind::Critical, TaskState::Failed, now)];
        let fatal = Fatal {
            task: "journal".into(),
            reason: "failed: the journal stopped".into(),
        };
        let mut p = parts(&tasks, &JournalHealth::Writing, &[]);
        p.fatal = Some(&fatal);
        let health = assess(&p, now);
        assert_eq!(health.reasons, [fatal.to_string()]);
    }

    #[test]
    fn a_write_being_retried_is_degraded_with_its_age() {
        let now = Instant::now() + Duration::from_secs(10);
        let retrying = JournalHealth::Retrying {
            why: "No space left on device".into(),
            since: (now - Duration::from_secs(7)).into_std(),
        };
        let health = assess(&parts(&[], &retrying, &[]), now);
        assert_eq!(health.status, Status::Degraded);
        assert!(
            health.degraded[0].message.contains("for 7 s"),
            "{:?}",
            health.degraded
        );
    }

    fn any_state() -> impl Strategy<Value = TaskState> {
        prop_oneof![
            Just(TaskState::Running),
            Just(TaskState::Restarting),
            Just(TaskState::Stopped),
            Just(TaskState::Failed),
        ]
    }

    proptest! {
        /// The verdict is dead exactly when a reason is given, and no degraded condition
        /// alone ever makes it dead: the watchdog's rule.
        #[test]
        fn dead_exactly_when_a_task_or_the_journal_is(
            states in prop::collection::vec(any_state(), 0..6),
            full in any::<bool>(),
            connected in prop::collection::vec(any::<bool>(), 0..3),
            journal in 0u8..3,
            clock in prop::option::of(any::<bool>()),
        ) {
            let now = Instant::now();
            let tasks: Vec<_> = states
                .iter()
                .enumerate()
                .map(|(i, s)| task(&format!("t{i}"), TaskKind::Restarting, *s, now))
                .collect();
            let journal = match journal {
                0 => JournalHealth::Writing,
                1 => JournalHealth::Retrying { why: "EIO".into(), since: now.into_std() },
                _ => JournalHealth::Stopped("EIO".into()),
            };
            let sinks: Vec<_> = connected
                .iter()
                .map(|c| ("mqtt", SinkSnapshot { connected: *c, ..SinkSnapshot::default() }))
                .collect();
            let mut p = parts(&tasks, &journal, &sinks);
            p.journal_full = full;
            p.clock_synced = clock;
            let health = assess(&p, now);
            let dead = states.iter().any(|s| matches!(s, TaskState::Restarting | TaskState::Failed))
                || matches!(journal, JournalHealth::Stopped(_));
            prop_assert_eq!(health.status == Status::Dead, dead);
            prop_assert_eq!(!health.reasons.is_empty(), dead);
            let degraded = full
                || connected.contains(&false)
                || matches!(journal, JournalHealth::Retrying { .. })
                || clock == Some(false);
            prop_assert_eq!(health.status == Status::Ok, !dead && !degraded);
            prop_assert_eq!(health.tasks.len(), tasks.len());
        }
    }
}
