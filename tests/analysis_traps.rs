//! Real sensors' traps through the real daemon: a wrist band with no racket node (SPEC §3's
//! fallback) and a racket node whose gyro wraps past full scale stream compact batches over
//! WebSocket; their journaled swings come out with speeds from the wrist and unwrapped rates,
//! flagged `wrist_estimate` and `wrapped`. The signals are written from physics
//! (crates/shuttlegate-core/tests/physics/), not with the analyser's pulse.

mod common;

#[path = "../crates/shuttlegate-core/tests/physics/mod.rs"]
mod physics;

use std::time::Duration;

use common::{Gateway, config, connect, export, recv_type, send};
use physics::{Reading, Session, Stroke};
use serde_json::{Value, json};

/// Streams `readings` as one node's compact batches of 50 rows (timestamps evenly spaced at
/// `rate_hz` within each batch), then completes the upload.
async fn stream(gw: &Gateway, device: &str, sensor_id: u32, rate_hz: f64, readings: &[Reading]) {
    let mut ws = connect(&format!("{}?token=token-{device}", gw.ws_url(device))).await;
    let batches: Vec<&[Reading]> = readings.chunks(50).collect();
    for (seq, batch) in batches.iter().enumerate() {
        let rows: Vec<Vec<f32>> = batch
            .iter()
            .map(|r| r.acc.iter().chain(&r.gyro).map(|&v| v as f32).collect())
            .collect();
        send(
            &mut ws,
            &json!({"type": "batch_sensor_data", "session_id": format!("s-{device}"),
                    "seq": seq, "sensor_id": sensor_id, "t0": batch[0].t_ms as i64,
                    "rate_hz": rate_hz, "samples": rows}),
        )
        .await;
        let reply = recv_type(&mut ws, "batch_sensor_data_response").await;
        assert_eq!(reply["seq"], seq, "{reply}");
    }
    send(
        &mut ws,
        &json!({"type": "upload_complete", "session_id": format!("s-{device}"),
                "batches": batches.len()}),
    )
    .await;
    let done = recv_type(&mut ws, "upload_complete_response").await;
    assert_eq!(done["missing_seqs"], json!([]), "{done}");
}

/// A session of `strokes` at `rate_hz`: rest, then each stroke after a walk and a still spell.
fn session(rate_hz: f64, up: [f64; 3], strokes: &[Stroke]) -> Session {
    let mut s = Session::new(rate_hz, up);
    s.still(1200.0);
    for stroke in strokes {
        s.ready(stroke);
        s.stroke(stroke);
        s.still(700.0);
    }
    s
}

/// Times are whole ms at 200 Hz (5 ms apart), so batch `t0`s are exact.
fn whole_ms(readings: &mut [Reading]) {
    for r in readings {
        r.t_ms = r.t_ms.round();
    }
}

/// The device's journaled swings once its summary is in (bounded wait).
async fn swings_of(gw: &Gateway, device: &str) -> (Vec<Value>, Value) {
    for _ in 0..150 {
        let records = export(&gw.dir, &[]);
        let summary = records
            .iter()
            .find(|r| r["kind"] == "summary" && r["device"] == device)
            .cloned();
        if let Some(summary) = summary {
            let swings = records
                .into_iter()
                .filter(|r| r["kind"] == "swing" && r["device"] == device)
                .collect();
            return (swings, summary);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{device}: no summary within 15 s");
}

fn near(swings: &[Value], contact_ms: f64) -> &Value {
    swings
        .iter()
        .find(|s| (s["t_impact"].as_f64().unwrap() - contact_ms).abs() < 60.0)
        .unwrap_or_else(|| panic!("no swing at {contact_ms}: {swings:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrist_band_and_a_wrapping_gyro_give_flagged_swings_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = config(
        dir.path(),
        &[
            ("band-1", Some("token-band-1")),
            ("wit-1", Some("token-wit-1")),
        ],
        "",
    );
    // The band: one node on the wrist, whatever its sensor id. The WitMotion node: on the
    // racket, in the analyser's axes; its wraps undone without any `overflow` key.
    toml = toml.replace(
        "code = \"band-1\"\n",
        "code = \"band-1\"\nplacement = \"wrist\"\nwrist_grip_deg = 75.0\n",
    );
    toml = toml.replace(
        "code = \"wit-1\"\n",
        "code = \"wit-1\"\nsensors = { 9 = \"racket\" }\naxes = [\"x\", \"y\", \"z\"]\n",
    );
    let gw = Gateway::start(dir.path(), &toml);

    let wrist_strokes = [Stroke::forearm(1500.0, 45.0), Stroke::forearm(1200.0, 45.0)];
    let mut band = session(200.0, [0.0, 0.7, 0.7], &wrist_strokes);
    whole_ms(&mut band.readings);
    stream(&gw, "band-1", 3, 200.0, &band.readings).await;

    let racket =
        |peak: f64, elevation: f64, pitch: f64| Stroke::racket(peak, true, elevation, pitch);
    let wit_strokes = [racket(2900.0, 40.0, -25.0), racket(1500.0, 50.0, 10.0)];
    let mut wit = session(200.0, [0.5, 0.0, 0.86], &wit_strokes);
    physics::map_axis(&mut wit.readings, true, |v| physics::wrap(v, 2000.0));
    whole_ms(&mut wit.readings);
    stream(&gw, "wit-1", 9, 200.0, &wit.readings).await;

    let (swings, summary) = swings_of(&gw, "band-1").await;
    assert_eq!(swings.len(), 2, "{swings:#?}");
    for (stroke, contact) in wrist_strokes.iter().zip(&band.contacts) {
        let s = near(&swings, *contact);
        assert!(
            s["flags"]
                .as_array()
                .unwrap()
                .contains(&json!("wrist_estimate")),
            "{s}"
        );
        let v = s["racket_speed_kmh"].as_f64().unwrap();
        let truth = stroke.head_speed_kmh();
        assert!(
            (v / truth - 1.0).abs() < 0.15,
            "wrist speed {v}, truth {truth:.1}"
        );
        assert_eq!(s["side"], "forehand");
    }
    assert_eq!(summary["flags"]["wrist_estimate"], 2, "{summary}");
    assert_eq!(summary["analysis_version"], swings[0]["analysis_version"]);

    let (swings, summary) = swings_of(&gw, "wit-1").await;
    let smash = near(&swings, wit.contacts[0]);
    let clear = near(&swings, wit.contacts[1]);
    assert!(
        smash["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("wrapped")),
        "{smash}"
    );
    assert_eq!(smash["saturated"], true);
    assert_eq!(smash["stroke"], "smash");
    let (v_smash, v_clear) = (
        smash["racket_speed_kmh"].as_f64().unwrap(),
        clear["racket_speed_kmh"].as_f64().unwrap(),
    );
    let truth = wit_strokes[0].head_speed_kmh();
    assert!(
        (v_smash / truth - 1.0).abs() < 0.10,
        "smash {v_smash}, truth {truth:.1}"
    );
    assert!(
        v_smash > v_clear,
        "smash {v_smash} km/h, clear {v_clear} km/h"
    );
    assert_eq!(summary["flags"]["wrapped"], 1, "{summary}");
    assert!(gw.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turned_racket_node_without_axes_has_them_inferred_by_default_and_can_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = config(
        dir.path(),
        &[
            ("tape-1", Some("token-tape-1")),
            ("off-1", Some("token-off-1")),
        ],
        "",
    );
    // Both racket nodes taped on turned (the board's x along the analyser's y), neither with
    // `axes`: the first says nothing else, the second opts out.
    toml = toml.replace(
        "code = \"tape-1\"\n",
        "code = \"tape-1\"\nsensors = { 4 = \"racket\" }\n",
    );
    toml = toml.replace(
        "code = \"off-1\"\n",
        "code = \"off-1\"\nsensors = { 4 = \"racket\" }\ninfer_axes = false\n",
    );
    let gw = Gateway::start(dir.path(), &toml);

    // (peak °/s, forehand, shaft elevation °, pitch °): clears, smashes and drives.
    let plan = [
        (1700.0, true, 50.0, 10.0),
        (2000.0, true, 40.0, -25.0),
        (1500.0, true, 0.0, 5.0),
        (1600.0, true, 50.0, 10.0),
        (1900.0, true, 40.0, -25.0),
        (1500.0, false, 0.0, 5.0),
        (1800.0, true, 50.0, 10.0),
        (2000.0, true, 40.0, -25.0),
        (1500.0, true, 0.0, 5.0),
        (1700.0, true, 50.0, 10.0),
    ];
    let strokes = plan
        .map(|(peak, forehand, elevation, pitch)| Stroke::racket(peak, forehand, elevation, pitch));
    let mut s = session(200.0, [0.5, 0.0, 0.86], &strokes);
    // node x = analyser y, node y = −analyser x, node z = analyser z.
    physics::remount(&mut s.readings, |v| [v[1], -v[0], v[2]]);
    whole_ms(&mut s.readings);
    stream(&gw, "tape-1", 4, 200.0, &s.readings).await;
    stream(&gw, "off-1", 4, 200.0, &s.readings).await;

    let flagged = |s: &Value| {
        s["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("placement_inferred"))
    };
    let (inferred, summary) = swings_of(&gw, "tape-1").await;
    let (as_read, _) = swings_of(&gw, "off-1").await;
    // From the fifth stroke on (four drives have voted) the inferred frame reads every side.
    for (k, (&(_, forehand, _, _), contact)) in plan.iter().zip(&s.contacts).enumerate().skip(4) {
        let swing = near(&inferred, *contact);
        assert!(flagged(swing), "stroke {k}: {swing}");
        let side = if forehand { "forehand" } else { "backhand" };
        assert_eq!(swing["side"], side, "stroke {k}: {swing}");
    }
    assert!(
        summary["flags"]["placement_inferred"].as_u64().unwrap() >= 6,
        "{summary}"
    );
    // Opted out: read as the node reads, nothing flagged.
    assert!(!as_read.is_empty());
    assert!(as_read.iter().all(|s| !flagged(s)), "{as_read:#?}");
    assert!(gw.terminate().success());
}
