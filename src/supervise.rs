//! Supervision: one registry of the daemon's long-lived tasks, and the policy that decides what
//! happens when one of them dies.
//!
//! Without it a task that panics or returns an error ends silently: its `JoinHandle` resolves
//! with nobody looking, and the daemon runs on without it (an uplink that stopped delivering
//! while `/healthz` still says "ok"). The [`Supervisor`] owns every task it starts: it spawns
//! them on the daemon's [`TaskTracker`](tokio_util::task::TaskTracker) (so shutdown's drain
//! waits for them), awaits each one, and turns its end into an event: logged at error level
//! naming the task and the reason (a panic's message, an error's text), counted, and acted on.
//!
//! # Policy per kind of task
//!
//! - **Restarting** ([`Supervisor::spawn_restarting`]): a task that can be rebuilt and resume by
//!   itself, like an uplink sink (a journal reader whose cursor is persisted: a new one re-reads
//!   from the cursor, at least once). When it panics, returns `Err`, or returns `Ok` before
//!   shutdown began, the supervisor counts a restart, waits an exponential backoff with jitter
//!   (from [`RESTART_INITIAL`] to [`RESTART_MAX`], back to the start after a run of
//!   [`HEALTHY_RUN`]) and builds it again. Shutdown interrupts the wait.
//! - **Critical** ([`Supervisor::spawn_critical`]): a task whose state cannot be rebuilt (it
//!   owns a channel's receiver, say) and without which the daemon must not pretend to work.
//!   When it dies the supervisor marks it failed, records the reason as the daemon's [`Fatal`]
//!   stop (the first one wins) and cancels the shutdown token: the daemon drains and `main`
//!   exits non-zero with "task `X` died: <why>; stopping the daemon".
//!
//! Both kinds are long-lived: they are meant to run until shutdown. A task that returns `Ok`
//! after shutdown began has stopped normally; one that returns `Ok` before has died.
//!
//! # Readers
//!
//! [`Supervisor::snapshot`] is what `/metrics` (`shuttlegate_task_up`,
//! `shuttlegate_task_restarts_total`), a health endpoint and the systemd watchdog read: per task
//! its state, restart count, last failure and since when it is in its state.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use tokio::task::JoinError;
use tokio::time::Instant;

use crate::service::Shutdown;
use crate::uplink::backoff::Backoff;

/// First wait before a restart.
pub const RESTART_INITIAL: Duration = Duration::from_secs(1);
/// Longest wait before a restart: a task that dies at once on every start (a record it cannot
/// take, a bug) is retried once a minute, not in a loop that floods the log.
pub const RESTART_MAX: Duration = Duration::from_secs(60);
/// A run at least this long before failing counts as healthy: the next restart waits
/// [`RESTART_INITIAL`] again instead of where the backoff had got to.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// The restart schedule of [`RESTART_INITIAL`] to [`RESTART_MAX`].
pub fn restart_backoff() -> Backoff {
    Backoff::new(RESTART_INITIAL, RESTART_MAX)
}

/// What the supervisor does when a task dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Restarted after a backoff.
    Restarting,
    /// Its death stops the daemon.
    Critical,
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Started and not ended.
    Running,
    /// Died; waiting out the backoff before it is started again.
    Restarting,
    /// Ended normally (shutdown).
    Stopped,
    /// Died and will not be started again (a critical task, or a failure during shutdown).
    Failed,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Restarting => "restarting",
            TaskState::Stopped => "stopped",
            TaskState::Failed => "failed",
        }
    }
}

/// One task as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// The name it was spawned under (`uplink-mqtt`), unique in the registry.
    pub name: String,
    /// The policy it is under.
    pub kind: TaskKind,
    /// Its state now.
    pub state: TaskState,
    /// Restarts scheduled so far (each one a death seen).
    pub restarts: u64,
    /// Why it last died, if it ever did.
    pub last_failure: Option<String>,
    /// When it entered its current state.
    pub since: Instant,
}

/// Why the daemon stopped itself: a critical task died.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task `{task}` died: {reason}; stopping the daemon")]
pub struct Fatal {
    /// The task's name.
    pub task: String,
    /// How it died (`panicked: …`, `failed: …`, `returned before shutdown`).
    pub reason: String,
}

/// The registry and its policy; cheap to clone (every clone is the same registry).
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The token a fatal stop cancels, and the tracker every task runs on.
    shutdown: Shutdown,
    /// Every task spawned so far, by name.
    tasks: Mutex<BTreeMap<String, TaskStatus>>,
    /// The first critical task's death, once there is one.
    fatal: Mutex<Option<Fatal>>,
}

/// How one run of a task ended.
enum Ending {
    /// Returned `Ok` after shutdown began.
    Stopped,
    /// Anything else, with the reason.
    Died(String),
}

impl Supervisor {
    /// A supervisor that spawns on `shutdown.tasks` and cancels `shutdown.token` on a fatal
    /// failure.
    pub fn new(shutdown: Shutdown) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                shutdown,
                tasks: Mutex::new(BTreeMap::new()),
                fatal: Mutex::new(None),
            }),
        }
    }

    /// Runs the future `make` builds until shutdown, building and starting a new one after
    /// each death (panic, `Err`, or `Ok` before shutdown), `backoff` apart. See the module doc.
    pub fn spawn_restarting<F, Fut, E>(
        &self,
        name: impl Into<String>,
        mut backoff: Backoff,
        mut make: F,
    ) where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let name = name.into();
        self.register(&name, TaskKind::Restarting);
        let this = self.clone();
        let token = self.inner.shutdown.token.clone();
        self.inner.shutdown.tasks.spawn(async move {
            loop {
                let started = Instant::now();
                // `make` runs here, outside the spawned run: a panic while building is a death
                // like any other, not the end of this loop.
                let ending = match std::panic::catch_unwind(AssertUnwindSafe(&mut make)) {
                    Ok(run) => {
                        let run = this.inner.shutdown.tasks.spawn(run);
                        ending(run.await, token.is_cancelled())
                    }
                    Err(panic) => Ending::Died(format!("panicked: {}", panic_message(&*panic))),
                };
                let reason = match ending {
                    Ending::Stopped => {
                        this.update(&name, |t| t.state = TaskState::Stopped);
                        return;
                    }
                    Ending::Died(reason) => reason,
                };
                if token.is_cancelled() {
                    log::error!("task `{name}` {reason} while the daemon stops; not restarted");
                    this.update(&name, |t| {
                        t.state = TaskState::Failed;
                        t.last_failure = Some(reason);
                    });
                    return;
                }
                if started.elapsed() >= HEALTHY_RUN {
                    backoff.reset();
                }
                let delay = backoff.next_delay(rand::rng().random::<f64>());
                let mut restarts = 0;
                this.update(&name, |t| {
                    t.state = TaskState::Restarting;
                    t.restarts += 1;
                    t.last_failure = Some(reason.clone());
                    restarts = t.restarts;
                });
                log::error!(
                    "task `{name}` {reason}; restarting in {delay:.1?} (restart {restarts})"
                );
                tokio::select! {
                    // Shutdown during the wait: the task is not started again.
                    _ = token.cancelled() => {
                        this.update(&name, |t| t.state = TaskState::Stopped);
                        return;
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
                log::info!("task `{name}`: restarting");
                this.update(&name, |t| t.state = TaskState::Running);
            }
        });
    }

    /// Runs `task` until shutdown; its death (panic, `Err`, or `Ok` before shutdown) stops the
    /// daemon: see the module doc and [`Supervisor::fatal`].
    pub fn spawn_critical<Fut, E>(&self, name: impl Into<String>, task: Fut)
    where
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let name = name.into();
        self.register(&name, TaskKind::Critical);
        let this = self.clone();
        let token = self.inner.shutdown.token.clone();
        let run = self.inner.shutdown.tasks.spawn(task);
        self.inner.shutdown.tasks.spawn(async move {
            match ending(run.await, token.is_cancelled()) {
                Ending::Stopped => this.update(&name, |t| t.state = TaskState::Stopped),
                Ending::Died(reason) => {
                    this.update(&name, |t| {
                        t.state = TaskState::Failed;
                        t.last_failure = Some(reason.clone());
                    });
                    let fatal = Fatal { task: name, reason };
                    log::error!("{fatal}");
                    locked(&this.inner.fatal).get_or_insert(fatal);
                    token.cancel();
                }
            }
        });
    }

    /// The critical task's death that stopped the daemon, if one did (the first, if several).
    pub fn fatal(&self) -> Option<Fatal> {
        locked(&self.inner.fatal).clone()
    }

    /// Every task spawned so far, by name.
    pub fn snapshot(&self) -> Vec<TaskStatus> {
        locked(&self.inner.tasks).values().cloned().collect()
    }

    /// Enters a task into the registry as running. Names are unique: a second task under a
    /// name replaces the first's entry (a programming error, said in the log).
    fn register(&self, name: &str, kind: TaskKind) {
        let status = TaskStatus {
            name: name.to_owned(),
            kind,
            state: TaskState::Running,
            restarts: 0,
            last_failure: None,
            since: Instant::now(),
        };
        if locked(&self.inner.tasks)
            .insert(name.to_owned(), status)
            .is_some()
        {
            log::warn!("supervisor: a second task named `{name}` replaces the first's entry");
        }
    }

    /// Changes a task's entry; a change of state also moves `since`.
    fn update(&self, name: &str, change: impl FnOnce(&mut TaskStatus)) {
        let mut tasks = locked(&self.inner.tasks);
        if let Some(task) = tasks.get_mut(name) {
            let before = task.state;
            change(task);
            if task.state != before {
                task.since = Instant::now();
            }
        }
    }
}

/// How a run ended, as the policy sees it.
fn ending<E: Display>(joined: Result<Result<(), E>, JoinError>, shutting_down: bool) -> Ending {
    match joined {
        Ok(Ok(())) if shutting_down => Ending::Stopped,
        Ok(Ok(())) => Ending::Died("returned before shutdown".to_owned()),
        Ok(Err(e)) => Ending::Died(format!("failed: {e}")),
        Err(e) if e.is_panic() => {
            Ending::Died(format!("panicked: {}", panic_message(&*e.into_panic())))
        }
        // Only when the runtime itself shuts down under the task.
        Err(e) => Ending::Died(format!("was cancelled: {e}")),
    }
}

/// The message `panic!` was given (a `&str` or a `String`; anything else is unnamed).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// The registry's locks are held for a copy or an assignment: a panic cannot leave them half
/// changed, so a poisoned lock's data is as good as any.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Backoff of 1 s to 4 s: every wait is between 0.5 s and 4 s.
    fn short_backoff() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(4))
    }

    fn status(supervisor: &Supervisor, name: &str) -> TaskStatus {
        supervisor
            .snapshot()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no task `{name}`"))
    }

    /// Lets the spawned tasks run (paused time advances only when every task waits).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    /// A task that dies on its first `deaths` starts (by `die`) and then runs until shutdown.
    fn dies_then_runs<E: Display + Send + 'static>(
        shutdown: &Shutdown,
        deaths: usize,
        die: fn() -> Result<(), E>,
    ) -> (
        Arc<AtomicUsize>,
        impl FnMut() -> futures_util::future::BoxFuture<'static, Result<(), E>> + Send + 'static,
    ) {
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let token = shutdown.token.clone();
        let make = move || {
            let start = counted.fetch_add(1, Ordering::SeqCst);
            let token = token.clone();
            let run: futures_util::future::BoxFuture<'static, Result<(), E>> =
                Box::pin(async move {
                    if start < deaths {
                        return die();
                    }
                    token.cancelled().await;
                    Ok(())
                });
            run
        };
        (starts, make)
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_counted_and_running_again_after_the_backoff() {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let (starts, make) = dies_then_runs::<String>(&shutdown, 1, || panic!("sink exploded"));
        supervisor.spawn_restarting("sink", short_backoff(), make);
        settle().await;

        let dead = status(&supervisor, "sink");
        assert_eq!(dead.state, TaskState::Restarting);
        assert_eq!(dead.restarts, 1);
        assert_eq!(
            dead.last_failure.as_deref(),
            Some("panicked: sink exploded")
        );
        assert_eq!(dead.kind, TaskKind::Restarting);

        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = status(&supervisor, "sink");
        assert_eq!(again.state, TaskState::Running);
        assert_eq!(again.restarts, 1);
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert!(again.since > dead.since);

        assert!(shutdown.drain(Duration::from_secs(1)).await);
        assert_eq!(status(&supervisor, "sink").state, TaskState::Stopped);
        assert_eq!(supervisor.fatal(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_returns_an_error_is_restarted_with_growing_waits() {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let (starts, make) =
            dies_then_runs(&shutdown, 3, || Err::<(), _>("broker refused the session"));
        let began = Instant::now();
        supervisor.spawn_restarting("sink", short_backoff(), make);
        settle().await;
        assert_eq!(
            status(&supervisor, "sink").last_failure.as_deref(),
            Some("failed: broker refused the session")
        );
        // Waits of at least 0.5 s, 1 s, 2 s (half of each ceiling): not before 3.5 s.
        tokio::time::sleep(Duration::from_millis(3400)).await;
        assert_eq!(status(&supervisor, "sink").state, TaskState::Restarting);
        // And at most 1 + 2 + 4 s.
        tokio::time::sleep(Duration::from_millis(3700)).await;
        let now = status(&supervisor, "sink");
        assert_eq!((now.state, now.restarts), (TaskState::Running, 3));
        assert_eq!(starts.load(Ordering::SeqCst), 4);
        assert!(began.elapsed() >= Duration::from_millis(3500));
        assert!(shutdown.drain(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarting_task_that_returns_before_shutdown_has_died() {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        supervisor.spawn_restarting("sink", short_backoff(), || async { Ok::<(), String>(()) });
        settle().await;
        let dead = status(&supervisor, "sink");
        assert_eq!(dead.state, TaskState::Restarting);
        assert_eq!(
            dead.last_failure.as_deref(),
            Some("returned before shutdown")
        );
        assert!(shutdown.drain(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_the_backoff_stops_the_loop_without_another_start() {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let (starts, make) = dies_then_runs(&shutdown, usize::MAX, || Err::<(), _>("down"));
        supervisor.spawn_restarting("sink", restart_backoff(), make);
        settle().await;
        assert_eq!(status(&supervisor, "sink").state, TaskState::Restarting);

        let waited = Instant::now();
        // The backoff is at least half a second; the drain must not wait for it.
        assert!(shutdown.drain(Duration::from_millis(100)).await);
        assert!(waited.elapsed() < Duration::from_millis(100));
        let stopped = status(&supervisor, "sink");
        assert_eq!((stopped.state, stopped.restarts), (TaskState::Stopped, 1));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_critical_task_that_panics_stops_the_daemon_and_says_why() {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        supervisor.spawn_critical("commands", async {
            if true {
                panic!("receiver gone");
            }
            Ok::<(), String>(())
        });
        tokio::time::timeout(Duration::from_secs(1), shutdown.token.cancelled())
            .await
            .expect("the token is cancelled");
        let fatal = supervisor.fatal().expect("a fatal stop");
        assert_eq!(
            fatal.to_string(),
            "task `commands` died: panicked: receiver gone; stopping the daemon"
        );
        let failed = status(&supervisor, "commands");
        assert_eq!(
            (failed.state, failed.kind),
            (TaskState::Failed, TaskKind::Critical)
        );
        assert!(shutdown.drain(Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_critical_task_that_fails_stops_the_daemon_and_the_first_death_is_the_reason() {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        supervisor.spawn_critical("first", async { Err::<(), _>("disk gone") });
        let token = shutdown.token.clone();
        // Dies only after the first death stopped the daemon: not the reason.
        supervisor.spawn_critical("second", async move {
            token.cancelled().await;
            Err::<(), _>("also gone")
        });
        assert!(shutdown.drain(Duration::from_secs(1)).await);
        let fatal = supervisor.fatal().expect("a fatal stop");
        assert_eq!(
            (fatal.task.as_str(), fatal.reason.as_str()),
            ("first", "failed: disk gone")
        );
        assert_eq!(status(&supervisor, "second").state, TaskState::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_critical_task_that_ends_at_shutdown_has_stopped_normally() {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let token = shutdown.token.clone();
        supervisor.spawn_critical("commands", async move {
            token.cancelled().await;
            Ok::<(), String>(())
        });
        settle().await;
        assert_eq!(status(&supervisor, "commands").state, TaskState::Running);
        assert!(shutdown.drain(Duration::from_secs(1)).await);
        assert_eq!(status(&supervisor, "commands").state, TaskState::Stopped);
        assert_eq!(supervisor.fatal(), None);
    }
}
