//! A signal to the tools ends the daemon they started and removes its temporary state
//! directory (src/children.rs): `eval` stopped with SIGTERM used to leave its `shuttlegate run`
//! child running, orphaned, and the directory on disk.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pids of `pid`'s children, from every thread's `/proc/<pid>/task/<tid>/children`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn running(pid: u32) -> bool {
    // Absent once reaped; a zombie (state Z) has ended but not been reaped.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim()
            .starts_with('Z')
    })
}

/// Starts an eval that streams the committed recordings through a real daemon, and returns it
/// with the daemon's pid once the daemon is up.
fn eval_with_its_daemon() -> (Child, u32) {
    let mut eval = Command::new(env!("CARGO_BIN_EXE_shuttlegate-tools"))
        .args(["eval", "--recordings"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("shuttlegate-tools starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(&daemon) = children_of(eval.id()).first() {
            return (eval, daemon);
        }
        assert!(
            eval.try_wait().expect("wait").is_none(),
            "eval ended before its daemon was seen"
        );
        assert!(Instant::now() < deadline, "no daemon child within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The directory of the configuration file the daemon `pid` runs on (`run -c FILE`): the
/// tools' scratch directory for it. Polled: the child is seen as soon as it is forked, and
/// until it execs the daemon its command line is still the tools'.
fn config_dir_of(pid: u32) -> std::path::PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(file) = config_file_of(pid) {
            return file.parent().expect("a directory").to_owned();
        }
        assert!(Instant::now() < deadline, "no `run -c FILE` in 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The FILE of `run -c FILE` in `pid`'s command line, once it has one.
fn config_file_of(pid: u32) -> Option<std::path::PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let file = args
        .iter()
        .position(|a| *a == b"-c")
        .and_then(|i| args.get(i + 1))?;
    Some(std::str::from_utf8(file).ok()?.into())
}

#[test]
fn sigterm_to_eval_ends_the_daemon_it_started_and_removes_its_state() {
    let (mut eval, daemon) = eval_with_its_daemon();
    assert!(running(daemon));
    let scratch = config_dir_of(daemon);
    assert!(scratch.is_dir(), "{}", scratch.display());
    signal(eval.id(), rustix::process::Signal::TERM);

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = eval.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "eval still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    if running(daemon) {
        // Orphaned: end it here, so a failing run leaves nothing behind.
        signal(daemon, rustix::process::Signal::KILL);
        panic!("the daemon (pid {daemon}) outlived the eval that started it");
    }
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "exits as a SIGTERM would: {status}"
    );
    assert!(
        !scratch.exists(),
        "the daemon's scratch directory {} outlived the eval",
        scratch.display()
    );
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
    rustix::process::kill_process(pid, signal).expect("signal sent");
}
