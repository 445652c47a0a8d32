//! The independent simulator's sessions streamed through the real daemon (a `shuttlegate run`
//! child, WebSocket, journal) find the swings the simulator played, and exactly the swings the
//! in-process evaluation finds on the same wire text: the in-process run is the same
//! analysis's fast variant, not a different one.
//!
//! Two short sessions at 100 Hz, one device each: seed 111, a tokenless V3.3 hub with four
//! nodes (time-of-day stamps, 30 interleaved frames per batch), and seed 100, a four-node
//! device sending compact batches. Neither seed is a held-out one (1000–1019) nor a floor's
//! (2000–2104).

use shuttlegate_biomech::{Session, SessionOptions, WireForm, generate};
use shuttlegate_core::analysis::{AnalysisSettings, Swing};
use shuttlegate_tools::biomech_eval::daemon::swings_through_daemon;
use shuttlegate_tools::biomech_eval::{
    BiomechOptions, BiomechReport, MATCH_MS, score_session, swings_in_process,
};

fn session(seed: u64) -> Session {
    generate(&SessionOptions {
        seed,
        duration_s: 60.0,
        rate_hz: Some(100.0),
        placement: None,
    })
}

/// What must agree between the two paths: when, what, how fast, the chain.
fn facts(s: &Swing) -> String {
    format!(
        "{:.0} {} {} {} {:?} {:?}",
        s.t_impact,
        s.stroke.as_str(),
        s.side.map_or("null", |v| v.as_str()),
        s.height.map_or("null", |v| v.as_str()),
        s.racket_speed_kmh.map(|v| (v * 1000.0).round()),
        s.chain
            .as_ref()
            .map(|c| (c.delay_ms.waist_to_shoulder, c.delay_ms.shoulder_to_wrist)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v33_hub_and_a_compact_device_streamed_through_the_daemon_find_the_played_swings() {
    let sessions = [session(111), session(100)];
    assert_eq!(sessions[0].device.form, WireForm::SeedV33);
    assert_eq!(sessions[1].device.form, WireForm::Compact);
    let exe = shuttlegate_tools::daemon_exe().expect("the daemon binary is built");
    let streamed = swings_through_daemon(&exe, &sessions)
        .await
        .expect("streams through the daemon");
    let settings = AnalysisSettings::default();
    for (session, through_daemon) in sessions.iter().zip(&streamed) {
        let code = &session.device.device_code;
        // Detections: every swing the simulator played is found near its contact.
        assert!(session.swings.len() >= 3, "{code}: too short a session");
        for truth in &session.swings {
            assert!(
                through_daemon
                    .iter()
                    .any(|s| (s.t_impact - truth.t_contact_ms).abs() <= MATCH_MS),
                "{code}: the {} at {} was not found; the daemon journaled {:?}",
                truth.stroke.name(),
                truth.t_contact_ms,
                through_daemon.iter().map(facts).collect::<Vec<_>>()
            );
        }
        // The four-node chain is measured on the swings found.
        assert!(
            through_daemon.iter().any(|s| s.chain.is_some()),
            "{code}: no kinetic chain"
        );
        // Agreement: the in-process run finds the same swings with the same figures.
        let (in_process, refused) = swings_in_process(session, &settings);
        assert_eq!(refused, 0, "{code}: the parser refused simulated messages");
        assert_eq!(
            through_daemon.iter().map(facts).collect::<Vec<_>>(),
            in_process.iter().map(facts).collect::<Vec<_>>(),
            "{code}: through the daemon vs in process"
        );
        // And so the scores agree.
        let options = BiomechOptions::default();
        let mut a = BiomechReport::new(&options, "daemon");
        let mut b = BiomechReport::new(&options, "in process");
        score_session(session, through_daemon, &mut a);
        score_session(session, &in_process, &mut b);
        assert_eq!(
            (
                a.all.found,
                a.all.false_positives,
                a.all.stroke_ok,
                a.all.side_ok
            ),
            (
                b.all.found,
                b.all.false_positives,
                b.all.stroke_ok,
                b.all.side_ok
            ),
            "{code}"
        );
    }
}
