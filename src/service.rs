//! Process life: signals, the configuration reload on SIGHUP, and two-phase shutdown with a
//! deadline.
//!
//! Phase one: a `CancellationToken` tells every task to stop taking new work (listeners stop
//! accepting, connections stop reading). Phase two: the `TaskTracker` waits for tasks to finish
//! what they hold (in-flight appends reach fsync and their acks go out), bounded by a deadline
//! after which the process exits anyway. (systemd notify and the watchdog arrive with the
//! systemd issue.)

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared shutdown state: the "begin" signal and the set of tasks to wait for.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    pub token: CancellationToken,
    pub tasks: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Phase two: waits for every tracked task, at most `deadline`. Returns false if the
    /// deadline passed with tasks still running.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.token.cancel();
        self.tasks.close();
        tokio::time::timeout(deadline, self.tasks.wait())
            .await
            .is_ok()
    }
}

/// Installs the SIGTERM and SIGINT (Ctrl-C) handlers now and returns a future that resolves on
/// the first of them. Install before announcing readiness: a signal that arrives between the
/// announcement and the handler would otherwise kill the process without draining.
pub fn termination_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// Installs the SIGHUP handler now and returns its stream of hangups. Install before
/// announcing readiness: until then SIGHUP keeps its default action, which ends the process.
pub fn hangup_signal() -> std::io::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
}

/// What SIGHUP does: loads `path` again into `settings` and logs the outcome, naming what
/// changed, or why nothing did (the current settings stay in force on any error).
pub fn reload_and_log(settings: &crate::config::SettingsHandle, path: &std::path::Path) {
    let file = path.display();
    match settings.reload_file(path) {
        Ok(changed) => {
            log::info!("SIGHUP: reloaded {file}: {changed}");
            for warning in &settings.current().warnings {
                log::warn!("{file}: {warning}");
            }
        }
        Err(e) => log::error!("SIGHUP: not reloaded, the running configuration stays: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_tasks_that_finish_their_work_after_the_signal() {
        let shutdown = Shutdown::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let token = shutdown.token.clone();
        shutdown.tasks.spawn(async move {
            token.cancelled().await;
            tx.send("flushed").unwrap();
        });
        assert!(shutdown.drain(Duration::from_secs(5)).await);
        assert_eq!(rx.await.unwrap(), "flushed");
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_at_the_deadline() {
        let shutdown = Shutdown::new();
        shutdown.tasks.spawn(std::future::pending::<()>());
        assert!(!shutdown.drain(Duration::from_secs(1)).await);
    }
}
