//! `check-config` and `print-config` through the real binary: exit codes, the one-line summary,
//! errors naming file, key and reason, and environment overrides (which need a process of their
//! own, the environment being process-wide).

use std::path::Path;
use std::process::{Command, Output};

fn shuttlegate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shuttlegate"));
    cmd.args(args);
    // Overrides from the calling environment would change the results.
    for (key, _) in std::env::vars() {
        if key.starts_with("SHUTTLEGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn demo() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/demo.toml")
        .display()
        .to_string()
}

#[test]
fn check_config_accepts_the_demo_file_with_one_summary_line() {
    let out = shuttlegate(&["check-config", "-c", &demo()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("OK "), "{stdout}");
    assert!(stdout.contains("5 device(s) (1 tokenless)"), "{stdout}");
    assert!(stdout.contains("http 127.0.0.1:8080"), "{stdout}");
}

#[test]
fn print_config_output_passes_check_config() {
    let out = shuttlegate(&["print-config"], &[]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("printed.toml");
    std::fs::write(&path, &out.stdout).expect("write");
    let check = shuttlegate(&["check-config", "-c", &path.display().to_string()], &[]);
    assert!(check.status.success(), "{}", text(&check.stderr));
}

#[test]
fn an_environment_override_wins_over_the_file() {
    let out = shuttlegate(
        &["check-config", "-c", &demo()],
        &[
            ("SHUTTLEGATE_HTTP__LISTEN", "127.0.0.1:9999"),
            ("SHUTTLEGATE_GATEWAY__STATE_DIR", "/tmp/elsewhere"),
            ("SHUTTLEGATE_GATEWAY__COURT", "7"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("http 127.0.0.1:9999"), "{stdout}");
    assert!(stdout.contains("state_dir /tmp/elsewhere"), "{stdout}");
    assert!(stdout.contains("court 7:"), "{stdout}");
}

#[test]
fn a_bad_environment_override_is_named_by_its_variable() {
    let out = shuttlegate(
        &["check-config", "-c", &demo()],
        &[("SHUTTLEGATE_LIMITS__IDLE_TIMEOUT", "soon")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("demo.toml: limits.idle_timeout"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SHUTTLEGATE_LIMITS__IDLE_TIMEOUT"),
        "{stderr}"
    );
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
}

#[test]
fn check_config_names_file_key_and_reason_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("court.toml");
    std::fs::write(
        &path,
        "[gateway]\nvenue = \"v\"\ncourt = \"c\"\n[[devices]]\ncode = \"racket-01\"\nmount_radius_m = 0.5\n\
         [[devices]]\ncode = \"racket-02\"\nallow_tokenless = true\nmount_radius = 0.5\n",
    )
    .expect("write");
    let out = shuttlegate(&["check-config", "-c", &path.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: devices[1].mount_radius", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("unknown key `mount_radius`"), "{stderr}");

    std::fs::write(
        &path,
        "[gateway]\nvenue = \"v\"\ncourt = \"c\"\n[[devices]]\ncode = \"racket-01\"\n",
    )
    .expect("write");
    let out = shuttlegate(&["check-config", "-c", &path.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("devices[0].token"), "{stderr}");
    assert!(stderr.contains("allow_tokenless"), "{stderr}");
}
