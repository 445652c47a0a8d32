//! The operator commands through the real binary: `journal stats` and `journal export` on a
//! journal written by another process.

use std::process::Command;

/// Runs the daemon binary (`journal stats|export`) or, for `journal torture`, the tools binary.
fn shuttlegate(args: &[&str]) -> String {
    let exe = match args {
        ["journal", "torture", ..] => env!("CARGO_BIN_EXE_shuttlegate-tools").into(),
        _ => shuttlegate_tools::daemon_exe().expect("the daemon binary is built"),
    };
    let out = Command::new(exe).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn stats_and_export_read_what_another_process_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().to_str().unwrap();
    let journal = tmp.path().join("journal");
    let acked = shuttlegate(&[
        "journal",
        "torture",
        "--appenders",
        "2",
        "--limit",
        "20",
        "--dir",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(acked.lines().count(), 20);

    let stats = shuttlegate(&["journal", "stats", "--state-dir", state]);
    assert!(
        stats.contains("records: 20 (batch 20, swing 0, summary 0, event 0)"),
        "{stats}"
    );
    assert!(stats.contains("ids: 1..=20"), "{stats}");

    // A consumer (an uplink sink) that acknowledged up to id 15 has 5 records to go.
    std::fs::write(journal.join("mqtt.cursor"), "15\n").unwrap();
    let stats = shuttlegate(&["journal", "stats", "--state-dir", state]);
    assert!(
        stats.contains("cursor mqtt: 15 (backlog 5 records, "),
        "{stats}"
    );

    let jsonl = shuttlegate(&[
        "journal",
        "export",
        "--state-dir",
        state,
        "--device",
        "dev1",
    ]);
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert!(
        lines
            .iter()
            .all(|v| v["device"] == "dev1" && v["kind"] == "batch")
    );
    assert_eq!(lines[0]["samples"].as_array().unwrap().len(), 20);

    let csv = shuttlegate(&["journal", "export", "--state-dir", state, "--format", "csv"]);
    assert_eq!(
        csv.lines().count(),
        1 + 20 * 20,
        "header + one row per sample"
    );
}
