//! The tools' child processes, and the scratch directories they work in, end with the tools.
//!
//! `eval` and the benchmarks start a real daemon (and Mosquitto) as children, each in a
//! temporary state directory, and each owner kills its child and removes its directory when it
//! is dropped. A signal's default action, though, ends the process without running
//! destructors: `shuttlegate-tools eval` stopped by SIGTERM left its daemon running, orphaned,
//! holding its port, and its temporary state directory on disk. So every child is started
//! through [`spawn`], which records its pid until the owner ends it ([`kill`], [`terminate`]),
//! every such directory is made by [`scratch_dir`], which records its path until it is
//! dropped, and the binary calls [`end_on_signal`] once: SIGINT, SIGTERM or SIGHUP then sends
//! SIGTERM to every recorded child (the daemon's clean shutdown), waits up to [`GRACE`] for
//! them, kills what is left, removes the recorded directories (nothing writes there any more),
//! and exits with 128 + the signal's number, as the default action would have.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// How long a signalled child gets to shut down cleanly before it is killed.
pub const GRACE: Duration = Duration::from_secs(5);

/// The pids of the children started by [`spawn`] and not yet ended by their owners.
static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    // A panic elsewhere while holding the lock leaves the set itself intact.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The scratch directories made by [`scratch_dir`] and not yet dropped.
static SCRATCH: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn scratch() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    SCRATCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A temporary directory removed when dropped, or by [`end_on_signal`]'s handler if a signal
/// ends the tools first.
#[derive(Debug)]
pub struct ScratchDir(tempfile::TempDir);

impl ScratchDir {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // The record goes first; the TempDir then removes the directory.
        scratch().remove(self.0.path());
    }
}

/// Makes a temporary directory and records it, so a signal to the tools removes it too.
pub fn scratch_dir() -> io::Result<ScratchDir> {
    let dir = tempfile::tempdir()?;
    scratch().insert(dir.path().to_owned());
    Ok(ScratchDir(dir))
}

/// Starts `command` and records the child, so a signal to the tools ends it too.
pub fn spawn(command: &mut Command) -> io::Result<Child> {
    let mut live = live();
    let child = command.spawn()?;
    live.insert(child.id());
    Ok(child)
}

/// Kills the child (SIGKILL) and reaps it.
pub fn kill(child: &mut Child) {
    forget(child);
    let _ = child.kill();
    let _ = child.wait();
}

/// Asks the child to shut down (SIGTERM) and waits for it.
pub fn terminate(child: &mut Child) {
    forget(child);
    send(child.id(), Signal::TERM);
    let _ = child.wait();
}

/// Drops the child from the record before its owner signals and reaps it: once reaped, its pid
/// may be reused by an unrelated process, which the signal handler must never reach.
fn forget(child: &Child) {
    live().remove(&child.id());
}

fn send(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Installs the handler described in the module docs, on a thread of its own.
pub fn end_on_signal() -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Registered here, before returning, so no signal falls between start-up and the thread.
    let (mut int, mut term, mut hup) = {
        let _context = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        )
    };
    std::thread::Builder::new()
        .name("end-children".into())
        .spawn(move || {
            let number = runtime.block_on(async {
                tokio::select! {
                    _ = int.recv() => 2,
                    _ = term.recv() => 15,
                    _ = hup.recv() => 1,
                }
            });
            end_children();
            remove_scratch_dirs();
            std::process::exit(128 + number);
        })?;
    Ok(())
}

/// SIGTERM to every recorded child, up to [`GRACE`] for them to exit, then SIGKILL to the rest.
/// The lock is held throughout, so no owner reaps (and frees the pid of) a child meanwhile.
fn end_children() {
    let mut live = live();
    for &pid in live.iter() {
        send(pid, Signal::TERM);
    }
    let deadline = Instant::now() + GRACE;
    while !live.is_empty() && Instant::now() < deadline {
        live.retain(|&pid| !reaped(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in live.iter() {
        send(pid, Signal::KILL);
        while !reaped(pid) && Instant::now() < deadline + GRACE {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Removes every recorded scratch directory; called once the children are gone. The lock is
/// held, so an owner dropping its directory meanwhile waits (and then finds it gone).
fn remove_scratch_dirs() {
    for dir in scratch().iter() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Whether the child has exited (and is now reaped), or is no child of ours any more.
fn reaped(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return true;
    };
    !matches!(
        rustix::process::waitpid(Some(pid), WaitOptions::NOHANG),
        Ok(None)
    )
}
