//! Swing analysis inside the real daemon: simulated players' batches go in over WebSocket,
//! swings and session summaries come out in the journal, and the session completes.

mod common;

use std::time::Duration;

use common::{Gateway, config, export};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_rallies_come_out_as_journaled_swings_and_a_summary_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let devices = [
        ("player-01", Some("token-player-01")),
        ("player-02", Some("token-player-02")),
    ];
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices, ""));
    common::play_court(&gw, 2, Duration::from_secs(20), 1001).await;
    // The summary is journaled after upload_complete, and the session's `completed` after the
    // summary: wait for both (bounded).
    let mut records = Vec::new();
    for _ in 0..100 {
        records = export(dir.path(), &[]);
        let summaries = records.iter().filter(|r| r["kind"] == "summary").count();
        let completed = records
            .iter()
            .filter(|r| r["type"] == "session_state" && r["state"] == "completed")
            .count();
        if summaries == 2 && completed == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for device in ["player-01", "player-02"] {
        let swings: Vec<_> = records
            .iter()
            .filter(|r| r["kind"] == "swing" && r["device"] == device)
            .collect();
        assert!(
            !swings.is_empty(),
            "{device}: 20 s of rallies gave no swing"
        );
        for s in &swings {
            assert_eq!(s["type"], "swing");
            assert!(s["stroke"].is_string() && s["side"].is_string(), "{s}");
        }
        let summary = records
            .iter()
            .find(|r| r["kind"] == "summary" && r["device"] == device)
            .unwrap_or_else(|| panic!("{device}: no summary"));
        assert_eq!(summary["type"], "analysis_complete_notification");
        assert_eq!(
            summary["analysis_result"]["swings"].as_u64(),
            Some(swings.len() as u64),
            "{device}: the summary counts the journaled swings"
        );
        // The session went calibrating/collecting → analyzing → completed, journaled.
        let states: Vec<_> = records
            .iter()
            .filter(|r| {
                r["kind"] == "event" && r["type"] == "session_state" && r["device"] == device
            })
            .map(|r| r["state"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            states.last().map(String::as_str),
            Some("completed"),
            "{device}: {states:?}"
        );
    }
    assert!(gw.terminate().success());
}
