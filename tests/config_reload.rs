//! SIGHUP on the real daemon: the court's file is loaded again and what may change without a
//! restart (devices, tokens, limits, auth, analysis) applies from the next handshake; a file
//! that changes a restart key or does not load is refused, logged with the key it names, and
//! the running configuration stays. The daemon survives every hangup (SIGHUP's default action
//! would end it).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Gateway;

const LOG_WAIT: Duration = Duration::from_secs(20);

/// The court's file with these `(device, token)` pairs.
fn court(dir: &Path, devices: &[(&str, Option<&str>)]) -> String {
    common::config(dir, devices, "")
}

/// Writes `court` as the daemon's file, sends SIGHUP, and returns the log line that answers
/// it (starting `SIGHUP: reloaded` or `SIGHUP: not reloaded`, as `answer` says), once the
/// daemon is seen still running.
fn reload_with(gw: &mut Gateway, court: &str, answer: &str) -> String {
    std::fs::write(&gw.config_path, court).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let line = gw.wait_log(answer, LOG_WAIT);
    still_running(gw);
    line
}

/// The handshake's HTTP status for `device` with `token` (101 when accepted).
async fn handshake(gw: &Gateway, device: &str, token: &str) -> u16 {
    let url = format!("{}?token={token}", gw.ws_url(device));
    match tokio_tungstenite::connect_async(url).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("handshake {device}: {e}"),
    }
}

/// `shuttlegate_config_reloads_total{outcome=…}` from `/metrics`.
fn reloads(gw: &Gateway, outcome: &str) -> u64 {
    let mut response = ureq::get(&gw.http_url("/metrics"))
        .call()
        .expect("GET /metrics");
    let body = response.body_mut().read_to_string().expect("text");
    let needle = format!("shuttlegate_config_reloads_total{{outcome=\"{outcome}\"}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&needle))
        .unwrap_or_else(|| panic!("no {needle:?} in /metrics:\n{body}"))
        .trim()
        .parse()
        .expect("a count")
}

fn still_running(gw: &mut Gateway) {
    assert!(
        gw.child.try_wait().expect("wait").is_none(),
        "the daemon ended on SIGHUP"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_the_new_device_list_from_the_next_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(
        dir.path(),
        &court(dir.path(), &[("a1", Some("old-token-a1"))]),
    );
    assert_eq!(handshake(&gw, "a1", "old-token-a1").await, 101);
    assert_eq!(handshake(&gw, "a2", "token-a2").await, 401);

    let after = court(
        dir.path(),
        &[("a1", Some("new-token-a1")), ("a2", Some("token-a2"))],
    );
    let line = reload_with(&mut gw, &after, "SIGHUP: reloaded");
    assert!(
        line.contains("devices added: a2") && line.contains("devices changed: a1"),
        "{line}"
    );
    assert_eq!(handshake(&gw, "a2", "token-a2").await, 101);
    assert_eq!(handshake(&gw, "a1", "new-token-a1").await, 101);
    assert_eq!(handshake(&gw, "a1", "old-token-a1").await, 401);
    assert_eq!(reloads(&gw, "applied"), 1);

    // The same file again: accepted, nothing to apply.
    let line = reload_with(&mut gw, &after, "SIGHUP: reloaded");
    assert!(line.contains("nothing changed"), "{line}");
    assert_eq!(reloads(&gw, "unchanged"), 1);
    assert!(gw.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_needs_a_restart_or_does_not_load_is_refused_and_the_running_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let before = court(dir.path(), &[("a1", Some("token-a1"))]);
    let mut gw = Gateway::start(dir.path(), &before);
    let with_a2 = court(
        dir.path(),
        &[("a1", Some("token-a1")), ("a2", Some("token-a2"))],
    );

    // A new device, but also a new listening address: a key bound once at start.
    let moved = with_a2.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    assert_ne!(moved, with_a2, "the test's edit applies");
    let line = reload_with(&mut gw, &moved, "SIGHUP: not reloaded");
    assert!(line.contains("`http.listen` changed"), "{line}");
    assert_eq!(handshake(&gw, "a2", "token-a2").await, 401);
    assert_eq!(handshake(&gw, "a1", "token-a1").await, 101);

    // A new device, and a key with a bad value: the error names the key.
    let bad = with_a2.replace("[auth]", "[limits]\nmax_connections = \"many\"\n\n[auth]");
    let line = reload_with(&mut gw, &bad, "SIGHUP: not reloaded");
    assert!(line.contains("limits.max_connections"), "{line}");
    assert_eq!(handshake(&gw, "a2", "token-a2").await, 401);
    assert_eq!(handshake(&gw, "a1", "token-a1").await, 101);

    assert_eq!(reloads(&gw, "refused"), 1);
    assert_eq!(reloads(&gw, "invalid"), 1);
    assert_eq!(reloads(&gw, "applied"), 0);

    // Fixed: the next hangup applies it.
    reload_with(&mut gw, &with_a2, "SIGHUP: reloaded");
    assert_eq!(handshake(&gw, "a2", "token-a2").await, 101);
    assert!(gw.terminate().success());
}
