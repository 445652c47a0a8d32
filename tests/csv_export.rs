//! `journal export --format csv` through the real binary, on a journal the real daemon wrote:
//! what a device chose to call itself or its session never reaches a spreadsheet as a formula.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

/// Issue 12: a device on the court LAN chooses its session ids (and the operator a code that
/// starts with `-`). The input validator already refuses `=`, `+` and `@` in ids; what it lets
/// through can still start a formula (`-A1` is a cell reference to a spreadsheet). The exported
/// CSV holds such text behind OWASP's `'`, and numbers — signed readings, a numeric session id —
/// stay numbers.
#[tokio::test]
async fn device_chosen_text_is_exported_as_text_never_as_a_formula() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &config(dir.path(), &[("-racket", Some("tok-minus-racket"))], ""),
    );
    let mut ws = connect(&format!("{}?token=tok-minus-racket", gw.ws_url("-racket"))).await;
    assert_eq!(recv(&mut ws).await["type"], "connection_established");
    let batch = |session: &str, seq: i64| {
        json!({"type": "batch_sensor_data", "session_id": session, "seq": 0, "sensor_id": 4,
               "t0": 1732400000123i64 + seq * 100, "rate_hz": 1000,
               "samples": [[0.02, -0.98, 0.11, -1.5, -0.4, 0.2]]})
    };
    // Never stored: the validator refuses them by name.
    for formula in ["=HYPERLINK(\"http://evil.example\",\"x\")", "@SUM(1+1)"] {
        send(&mut ws, &batch(formula, 0)).await;
        let reply = recv(&mut ws).await;
        assert!(
            reply.to_string().contains("session_id"),
            "{formula}: {reply}"
        );
    }
    let sessions = ["-A1", "-12"];
    for (seq, session) in sessions.iter().enumerate() {
        send(&mut ws, &batch(session, seq as i64)).await;
        let reply = recv_type(&mut ws, "batch_sensor_data_response").await;
        assert_eq!(reply["success"], true, "{session}: {reply}");
    }
    drop(ws);
    assert!(gw.terminate().success());

    let out = Command::new(BIN)
        .args(["journal", "export", "--format", "csv", "--state-dir"])
        .arg(dir.path())
        .output()
        .expect("journal export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), sessions.len(), "{csv}");
    let expected_heads = [
        "'-racket,'-A1,0,compact,0,4,",
        "'-racket,-12,0,compact,0,4,",
    ];
    for (row, head) in rows.iter().zip(expected_heads) {
        // The journal id comes first; the readings last, signed and unquoted.
        let (_, rest) = row.split_once(',').unwrap();
        assert!(rest.starts_with(head), "{row}\nwanted after the id: {head}");
        assert!(row.ends_with(",0.02,-0.98,0.11,-1.5,-0.4,0.2,,,"), "{row}");
    }
}
