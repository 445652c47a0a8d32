//! Secrets at rest and in what the daemon prints, through the real binary: a secret file that
//! others can read is warned about (at start and by `check-config`), systemd credentials
//! (`$CREDENTIALS_DIRECTORY`) are found, a half-typed secret's syntax error does not echo it,
//! and credentials inside URLs never reach the log or `check-config`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{BIN, Gateway, config};

fn check_config(path: &Path, env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["check-config", "-c"]).arg(path);
    cmd.env_remove("CREDENTIALS_DIRECTORY");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_mode(path: &Path, contents: &str, mode: u32) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Issue 12: a device token in a 0644 file. `check-config` accepts the file and warns, naming
/// the key, the file and its mode; the daemon says the same at start. At 0600: no warning.
#[test]
fn a_secret_file_with_mode_0644_is_warned_about_by_check_config_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("racket-01.token");
    write_mode(&token, "token-racket-01-secret\n", 0o644);
    let cfg = config(dir.path(), &[], "")
        + "\n[[devices]]\ncode = \"racket-01\"\ntoken_file = \"racket-01.token\"\n";
    let path = dir.path().join("court.toml");
    std::fs::write(&path, &cfg).unwrap();

    let out = check_config(&path, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let warning = format!(
        "warning: {}: devices[0].token_file: {} is readable by group or others (mode 0644)",
        path.display(),
        token.display()
    );
    assert!(stderr.contains(&warning), "{stderr}");
    assert!(text(&out.stdout).starts_with("OK "));

    let gw = Gateway::start_with(dir.path(), &path);
    let line = gw.wait_log("is readable by group or others", Duration::from_secs(10));
    assert!(
        line.contains("devices[0].token_file") && line.contains("0644"),
        "{line}"
    );
    assert!(gw.terminate().success());

    write_mode(&token, "token-racket-01-secret\n", 0o600);
    let out = check_config(&path, &[]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        text(&out.stderr)
    );
}

/// `LoadCredential=racket-01.token:…` in the unit: the relative `token_file` is read from
/// `$CREDENTIALS_DIRECTORY`, and a missing credential names the path looked at.
#[test]
fn a_relative_secret_file_is_read_from_the_systemd_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    let creds = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[], "")
        + "\n[[devices]]\ncode = \"racket-01\"\ntoken_file = \"racket-01.token\"\n";
    let path = dir.path().join("court.toml");
    std::fs::write(&path, &cfg).unwrap();

    let out = check_config(&path, &[("CREDENTIALS_DIRECTORY", creds.path())]);
    assert!(!out.status.success());
    let missing = creds.path().join("racket-01.token");
    assert!(
        text(&out.stderr).contains(&format!("devices[0].token_file: {}", missing.display())),
        "{}",
        text(&out.stderr)
    );
    write_mode(&missing, "token-racket-01-secret\n", 0o400);
    let out = check_config(&path, &[("CREDENTIALS_DIRECTORY", creds.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// Issue 12: a half-typed `admin_token = "…` is refused with its line, column and key; the
/// secret's text is nowhere in the output.
#[test]
fn a_half_typed_secret_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court.toml");
    std::fs::write(
        &path,
        "[gateway]\nvenue = \"v\"\ncourt = \"c\"\n\n[auth]\nadmin_token = \"Half-Typed-Secret-42\n",
    )
    .unwrap();
    let out = check_config(&path, &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("not valid TOML: line 6") && stderr.contains("(key `admin_token`)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Half-Typed") && out.stdout.is_empty(),
        "{stderr}"
    );
}

/// Credentials inside the broker and hub URLs: `check-config` and the daemon's log show the
/// URLs with `***` in their place.
#[test]
fn credentials_in_uplink_urls_are_redacted_in_check_config_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: the sinks keep retrying, and say so in the log.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = format!(
        "[uplink.mqtt]\nenabled = true\nurl = \"mqtt://gw:Url-Secret-1@127.0.0.1:{port}\"\n\n\
         [uplink.hub]\nenabled = true\nurl = \"ws://127.0.0.1:{port}/ws/gateway/?token=Url-Secret-2\"\n\
         token = \"hub-jwt\"\n"
    );
    let cfg = config(
        dir.path(),
        &[("racket-01", Some("token-racket-01"))],
        &extra,
    );
    let path = dir.path().join("court.toml");
    std::fs::write(&path, &cfg).unwrap();

    let out = check_config(&path, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("mqtt://gw:***@127.0.0.1:{port}"))
            && stdout.contains("?token=***"),
        "{stdout}"
    );
    assert!(!stdout.contains("Url-Secret"), "{stdout}");

    let gw = Gateway::start_with(dir.path(), &path);
    // Every line, until both sinks have said where they failed to connect.
    let wanted = [
        format!("uplink mqtt: cannot connect to mqtt://gw:***@127.0.0.1:{port}"),
        format!("uplink hub: ws://127.0.0.1:{port}/ws/gateway/?token=***"),
    ];
    let mut log: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !wanted
        .iter()
        .all(|w| log.iter().any(|l| l.contains(w.as_str())))
    {
        assert!(std::time::Instant::now() < deadline, "{}", log.join("\n"));
        std::thread::sleep(Duration::from_millis(100));
        log.extend(gw.log());
    }
    assert!(gw.terminate().success());
    assert!(
        !log.iter().any(|l| l.contains("Url-Secret")),
        "{}",
        log.join("\n")
    );
}
