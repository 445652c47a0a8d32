//! Swings of a V3.3 hub through the real daemon, from a signal written down from the physics of
//! a stroke — not from the simulator and not from any of the analyser's shapes or constants.
//!
//! The hub is what the deployed firmware is: tokenless, four nodes (1 waist, 2 shoulder,
//! 3 wrist, 4 racket) at 200 Hz each, 30-frame seed-form batches mixing the nodes, frames
//! stamped with the court's local time of day `HHMMSSmmm` (docs/protocol.md, "V3.3
//! compatibility"). The player stands still, then strokes: no footwork, no backswing.
//!
//! The physics, and where each number comes from:
//! - **Proximal-to-distal sequencing** (Putnam 1993, "Sequential motions of body segments in
//!   striking and throwing skills", J. Biomech. 26 Suppl 1): each segment's angular speed peaks
//!   after the one before it, and each peak is higher. The delays here, waist→shoulder 80 ms and
//!   shoulder→wrist 50 ms, are inside the ranges the issue gives (60–100 and 30–70 ms).
//! - **Each segment's rotation is a minimum-jerk movement** (Flash & Hogan 1985, J. Neurosci.
//!   5(7)): a turn of θ over T has the angular speed `θ/T · 30 τ²(1−τ)²`, τ = (t − start)/T,
//!   peaking at τ = ½ at `1.875 θ/T`. Not a Gaussian; its flanks are finite and it has no tail.
//! - Segment turns and durations (ranges of a forehand stroke's axial trunk rotation, shoulder
//!   rotation and wrist/forearm motion): waist 45° in 300 ms (peak 281 °/s), shoulder 60° in
//!   200 ms (562 °/s), wrist 45° in 100 ms (844 °/s), racket 60° in 110 ms (1 023 °/s).
//! - **The racket node sits on the handle**, `HANDLE_R_M` = 8 cm from the wrist's axis: besides
//!   gravity it feels the centripetal `ω²r` (towards the wrist, along −x) and the tangential
//!   `α r` (along the head's path). The racket turns about its −y axis, so the forehand face
//!   (+z) leads.
//! - **Shuttle contact** rings the frame: a damped oscillation of the handle's acceleration
//!   along the face normal, 6 g at onset, 90 Hz, decaying with a 6 ms time constant (an impulse
//!   of ~1 ms exciting the frame's bending mode) — the kind of transient an impact leaves in an
//!   accelerometer, at a size a light stroke makes.
//! - Sensor noise: ±1.5 °/s and ±0.01 g uniform, from a fixed-seed generator.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use common::{Gateway, config, connect, recv, recv_type, send};

const RATE_HZ: f64 = 200.0;
/// The court's timezone in `common::config` is Asia/Shanghai: UTC+8, no DST.
const UTC_OFFSET_MS: i64 = 8 * 3600 * 1000;
/// Distance of the racket node from the wrist's rotation axis, m.
const HANDLE_R_M: f64 = 0.08;
/// Standing still before the first stroke and between strokes, ms.
const STILL_MS: f64 = 1500.0;
/// Strokes in the session.
const STROKES: usize = 3;
/// Stroke spacing (a rally's pace), ms.
const STROKE_EVERY_MS: f64 = 2200.0;

/// One segment's minimum-jerk turn: `turn_deg` over `duration_ms`, peaking at `peak_at`.
#[derive(Clone, Copy)]
struct Turn {
    turn_deg: f64,
    duration_ms: f64,
    /// Peak time relative to contact, ms.
    peak_at: f64,
}

impl Turn {
    fn peak_dps(&self) -> f64 {
        1.875 * self.turn_deg / (self.duration_ms / 1000.0)
    }

    /// Angular speed, °/s, `t` ms after contact.
    fn rate(&self, t: f64) -> f64 {
        let tau = (t - self.peak_at) / self.duration_ms + 0.5;
        if !(0.0..=1.0).contains(&tau) {
            return 0.0;
        }
        self.turn_deg / (self.duration_ms / 1000.0) * 30.0 * tau * tau * (1.0 - tau).powi(2)
    }

    /// Angular acceleration, °/s², `t` ms after contact.
    fn accel(&self, t: f64) -> f64 {
        let tau = (t - self.peak_at) / self.duration_ms + 0.5;
        if !(0.0..=1.0).contains(&tau) {
            return 0.0;
        }
        let d = self.duration_ms / 1000.0;
        self.turn_deg / (d * d) * 60.0 * tau * (1.0 - tau) * (1.0 - 2.0 * tau)
    }

    /// Angle turned so far, °, `t` ms after contact.
    fn angle(&self, t: f64) -> f64 {
        let tau = ((t - self.peak_at) / self.duration_ms + 0.5).clamp(0.0, 1.0);
        self.turn_deg * (10.0 * tau.powi(3) - 15.0 * tau.powi(4) + 6.0 * tau.powi(5))
    }
}

const WAIST: Turn = Turn {
    turn_deg: 45.0,
    duration_ms: 300.0,
    peak_at: -150.0,
};
const SHOULDER: Turn = Turn {
    turn_deg: 60.0,
    duration_ms: 200.0,
    peak_at: -70.0,
};
const WRIST: Turn = Turn {
    turn_deg: 45.0,
    duration_ms: 100.0,
    peak_at: -20.0,
};
const RACKET: Turn = Turn {
    turn_deg: 60.0,
    duration_ms: 110.0,
    peak_at: -3.0,
};

/// A fixed-seed uniform generator (xorshift), for sensor noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self, amplitude: f64) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        amplitude * ((self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
    }
}

/// Rotates `v` about the unit `axis` by `deg` (Rodrigues).
fn rotate(v: [f64; 3], axis: [f64; 3], deg: f64) -> [f64; 3] {
    let (s, c) = deg.to_radians().sin_cos();
    let cross = [
        axis[1] * v[2] - axis[2] * v[1],
        axis[2] * v[0] - axis[0] * v[2],
        axis[0] * v[1] - axis[1] * v[0],
    ];
    let dot = axis[0] * v[0] + axis[1] * v[1] + axis[2] * v[2];
    [0, 1, 2].map(|k| v[k] * c + cross[k] * s + axis[k] * dot * (1.0 - c))
}

/// One node's reading at `t` ms of session time: (acc g, gyro °/s, angle °).
type Reading = ([f64; 3], [f64; 3], [f64; 3]);

/// A racket turned too slowly for any stroke rule (8° in 110 ms, peak 136 °/s: under the
/// detector's 220 °/s trigger and under its 150 °/s lower threshold, below which no turn is
/// read at all; between the two, a turn in which the contact search finds the shuttle's ring is
/// a stroke, det21): a racket node mounted where it barely turns, or a light touch.
const SLOW_RACKET: Turn = Turn {
    turn_deg: 8.0,
    ..RACKET
};

/// The signal of node `sensor_id` at session time `t` ms, the racket node turning `racket`.
fn reading(sensor_id: u32, t: f64, strokes: &[f64], noise: &mut Noise, racket: Turn) -> Reading {
    // Time relative to the contact of the stroke in progress: the last one that has begun.
    let u = strokes
        .iter()
        .rev()
        .find(|&&c| t >= c - 600.0)
        .or(strokes.first())
        .map_or(f64::INFINITY, |c| t - c);
    // Each node's body axis of rotation and where gravity (world up) lies in its rest frame.
    let (turn, axis, up_at_rest): (Turn, [f64; 3], [f64; 3]) = match sensor_id {
        // Waist: trunk rotation about the vertical; the node's z is up.
        1 => (WAIST, [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]),
        // Shoulder (upper arm): turns about its y axis, x along the arm, 30° above horizontal.
        2 => (
            SHOULDER,
            [0.0, 1.0, 0.0],
            rotate([0.0, 0.0, 1.0], [0.0, 1.0, 0.0], -30.0),
        ),
        // Wrist (forearm): pronation about its x axis, the forearm horizontal.
        3 => (WRIST, [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]),
        // Racket: turns about −y (forehand face +z leads), shaft 40° above horizontal.
        _ => (
            racket,
            [0.0, -1.0, 0.0],
            rotate([0.0, 0.0, 1.0], [0.0, 1.0, 0.0], 40.0),
        ),
    };
    // After the stroke the player brings the segment back to its ready position: the same
    // turn undone, slowly (a minimum-jerk turn over 1 s from 300 ms after contact).
    let back = Turn {
        turn_deg: turn.turn_deg,
        duration_ms: 1000.0,
        peak_at: 800.0,
    };
    let rate = turn.rate(u) - back.rate(u);
    let angle = turn.angle(u) - back.angle(u);
    // Gravity seen by the node: world up rotated back by the turn.
    let mut acc = rotate(up_at_rest, axis, -angle);
    let gyro = axis.map(|a| a * rate);
    if sensor_id == 4 {
        let g = 9.806_65;
        let w = rate.to_radians();
        let alpha = (turn.accel(u) - back.accel(u)).to_radians();
        // Centripetal along −x (towards the wrist), tangential along the head's path (+z).
        acc[0] -= w * w * HANDLE_R_M / g;
        acc[2] += alpha * HANDLE_R_M / g;
        // Contact rings the frame along the face normal.
        if u > 0.0 && u < 60.0 {
            acc[2] += 6.0 * (-u / 6.0).exp() * (2.0 * std::f64::consts::PI * 0.090 * u).cos();
        }
    }
    let acc = acc.map(|a| a + noise.next(0.01));
    let gyro = gyro.map(|g| g + noise.next(1.5));
    // Attitude angles (roll, pitch, yaw) the node fuses: the turn on its axis's channel.
    let channel = match sensor_id {
        1 => 2,
        2 => 1,
        _ => 0,
    };
    let mut angles = [0.0, 0.0, 0.0];
    angles[channel] = angle;
    (acc, gyro, angles)
}

/// Unix ms → the court's local time of day as V3.3 stamps it, `HHMMSSmmm`.
fn hhmmssmmm(unix_ms: i64) -> i64 {
    let ms = (unix_ms + UTC_OFFSET_MS).rem_euclid(86_400_000);
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    h * 10_000_000 + m * 100_000 + s * 1000 + milli
}

/// The session's frames in the order a V3.3 hub sends them: sample by sample, node by node.
fn frames(sensors: &[u32], start_unix_ms: i64, racket: Turn) -> (Vec<Value>, Vec<f64>) {
    let strokes: Vec<f64> = (0..STROKES)
        .map(|k| STILL_MS + 200.0 + k as f64 * STROKE_EVERY_MS)
        .collect();
    let span = strokes.last().copied().unwrap_or(0.0) + STILL_MS;
    let dt = 1000.0 / RATE_HZ;
    let mut noise = Noise(0x5eed_2025);
    let mut out = Vec::new();
    for k in 0..(span / dt) as usize {
        let t = k as f64 * dt;
        for &id in sensors {
            let (acc, gyro, angle) = reading(id, t, &strokes, &mut noise, racket);
            out.push(json!({
                "acc": acc, "gyro": gyro, "angle": angle, "sensor_id": id,
                "timestamp": hhmmssmmm(start_unix_ms + t.round() as i64),
            }));
        }
    }
    (out, strokes)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// Plays one V3.3 session of `sensors` through the daemon and returns the journal's swings and
/// the summary.
/// Sends one batch and waits for its reply. This test sends faster than a hub streams (the
/// four-node session's ~220 batches in about a second, over the default 200 messages per
/// second): a batch refused with `rate_limited` ("send it again later") is sent again after a
/// pause, as a hub does with a batch it got no success for.
async fn send_batch_until_stored(ws: &mut common::Ws, message: &Value) {
    for _ in 0..50 {
        send(ws, message).await;
        loop {
            let r = recv(ws).await;
            match r["type"].as_str() {
                Some("batch_sensor_data_response") => {
                    assert_eq!(r["success"], true, "{r}");
                    return;
                }
                Some("error") if r["code"] == "rate_limited" => break,
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a batch still rate limited after 50 tries");
}

async fn play_v33_session(sensors: &[u32], hub_clock_offset_ms: i64) -> (Vec<Value>, Value) {
    play_v33_session_with(sensors, hub_clock_offset_ms, RACKET).await
}

/// As [`play_v33_session`], the racket node (when sent) turning `racket`.
async fn play_v33_session_with(
    sensors: &[u32],
    hub_clock_offset_ms: i64,
    racket: Turn,
) -> (Vec<Value>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &[("2025001", None)], ""));
    let mut ws = connect(&gw.ws_url("2025001")).await;
    assert_eq!(recv(&mut ws).await["type"], "connection_established");
    let (status, started) = gw.admin(
        "/api/devices/2025001/sessions",
        json!({"session_id": "124"}),
    );
    assert_eq!(status, 200, "{started}");
    let push = recv_type(&mut ws, "start_collection").await;
    send(
        &mut ws,
        &json!({"type":"ack","command_id":push["command_id"],"success":true}),
    )
    .await;
    // The stamps start now, so the gateway anchors them to today (as a synced hub's would be).
    let (frames, _) = frames(sensors, now_ms() + hub_clock_offset_ms, racket);
    for chunk in frames.chunks(30) {
        let sensor_type = match chunk[0]["sensor_id"].as_u64() {
            Some(1) => "waist",
            Some(2) => "shoulder",
            Some(3) => "wrist",
            _ => "racket",
        };
        let message = json!({"type":"batch_sensor_data","device_code":"2025001",
            "sensor_type":sensor_type,"timestamp":123456,"session_id":"124","data":chunk});
        send_batch_until_stored(&mut ws, &message).await;
    }
    send(
        &mut ws,
        &json!({"type":"upload_complete","session_id":"124","device_code":"2025001","timestamp":99999}),
    )
    .await;
    assert_eq!(
        recv_type(&mut ws, "upload_complete_response").await["missing_seqs"],
        json!([])
    );
    let mut records = Vec::new();
    for _ in 0..150 {
        records = gw.export(&[]);
        if records.iter().any(|r| r["kind"] == "summary") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let swings: Vec<Value> = records
        .iter()
        .filter(|r| r["kind"] == "swing")
        .cloned()
        .collect();
    let summary = records
        .iter()
        .find(|r| r["kind"] == "summary")
        .cloned()
        .expect("a summary within 15 s of upload_complete");
    assert!(gw.terminate().success());
    (swings, summary)
}

fn close_to(value: &Value, truth: f64, tolerance: f64) -> bool {
    value
        .as_f64()
        .is_some_and(|v| (v - truth).abs() <= tolerance)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v33_hubs_textbook_kinetic_chain_gives_every_stroke_and_its_chain() {
    let (swings, summary) = play_v33_session(&[1, 2, 3, 4], 0).await;
    assert_eq!(
        swings.len(),
        STROKES,
        "one swing per stroke: {swings:#?}\nsummary {summary:#}"
    );
    for s in &swings {
        assert_eq!(s["impact"], true, "the contact transient is an impact: {s}");
        assert_eq!(s["side"], "forehand", "the +z face led: {s}");
        assert!(
            s["confidence"]
                .as_f64()
                .is_some_and(|c| (0.0..=1.0).contains(&c)),
            "every classified swing carries its confidence: {s}"
        );
        for kind in ["stroke", "side", "height"] {
            assert!(
                s["confidences"][kind]
                    .as_f64()
                    .is_some_and(|c| (0.0..=1.0).contains(&c)),
                "each classification carries its confidence ({kind}): {s}"
            );
        }
        assert_eq!(s["confidences"]["stroke"], s["confidence"], "{s}");
        assert_textbook_chain(s);
        // 1 023 °/s at the 0.55 m default mount radius is 35 km/h; the handle's own motion
        // adds a little.
        assert!(
            s["racket_speed_kmh"]
                .as_f64()
                .is_some_and(|v| (30.0..50.0).contains(&v)),
            "{s}"
        );
    }
    assert!(
        summary["confidence"].as_f64().is_some(),
        "the summary carries the swings' mean confidence: {summary:#}"
    );
    let result = &summary["analysis_result"];
    assert_eq!(result["swings"], STROKES as u64, "{summary:#}");
    assert!(
        close_to(&result["phase_delay"]["waist_to_shoulder"], 0.080, 0.010),
        "{summary:#}"
    );
    assert!(
        close_to(&result["phase_delay"]["shoulder_to_wrist"], 0.050, 0.010),
        "{summary:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racket_only_v33_device_without_footwork_or_backswing_gives_every_stroke() {
    let (swings, summary) = play_v33_session(&[4], 0).await;
    assert_eq!(swings.len(), STROKES, "{swings:#?}\n{summary:#}");
    for s in &swings {
        assert_eq!(s["impact"], true, "{s}");
        assert!(s["stroke"].is_string(), "{s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v33_hub_whose_clock_is_off_still_gives_every_stroke() {
    let (swings, summary) = play_v33_session(&[1, 2, 3, 4], 2 * 3600 * 1000 + 417).await;
    assert_eq!(swings.len(), STROKES, "{swings:#?}\n{summary:#}");
}

/// The hub clock two hours off, racket node only: the frames' time-of-day stamps are not
/// believed by the protocol, and the analysis used to drop every one of them (zero swings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racket_only_v33_device_whose_clock_is_off_still_gives_every_stroke() {
    let (swings, summary) = play_v33_session(&[4], 2 * 3600 * 1000 + 417).await;
    assert_eq!(swings.len(), STROKES, "{swings:#?}\n{summary:#}");
}

/// The swing's chain is the session's: each segment's peak within 5 %, the delays 80 and 50 ms
/// within 10 ms.
fn assert_textbook_chain(s: &Value) {
    let chain = &s["chain"];
    for (segment, turn) in [("waist", WAIST), ("shoulder", SHOULDER), ("wrist", WRIST)] {
        let peak = turn.peak_dps();
        assert!(
            close_to(&chain["peak_dps"][segment], peak, 0.05 * peak),
            "{segment} peak {} vs {peak:.0} °/s: {s}",
            chain["peak_dps"][segment]
        );
    }
    assert!(
        close_to(&chain["delay_ms"]["waist_to_shoulder"], 80.0, 10.0),
        "{s}"
    );
    assert!(
        close_to(&chain["delay_ms"]["shoulder_to_wrist"], 50.0, 10.0),
        "{s}"
    );
}

/// Every stroke's chain, measured on a swing flagged `chain_only` whose racket fields are null
/// with a reason (the racket rule did not fire).
fn assert_chain_only_strokes(swings: &[Value], summary: &Value) {
    assert_eq!(
        swings.len(),
        STROKES,
        "one chain-only swing per stroke: {swings:#?}\nsummary {summary:#}"
    );
    for s in swings {
        assert_eq!(s["flags"], json!(["chain_only"]), "{s}");
        assert_eq!(s["stroke"], "unknown", "{s}");
        for field in ["side", "height", "racket_speed_kmh", "shuttle_speed_kmh"] {
            assert!(s[field].is_null(), "{field}: {s}");
            assert!(
                s["null_reasons"][field]
                    .as_str()
                    .is_some_and(|r| r.contains("chain only")),
                "{field} says why it is null: {s}"
            );
        }
        assert_textbook_chain(s);
    }
    let result = &summary["analysis_result"];
    assert!(
        close_to(&result["phase_delay"]["waist_to_shoulder"], 0.080, 0.010),
        "the summary's chain comes from the chain-only swings: {summary:#}"
    );
    assert_eq!(
        summary["flags"]["chain_only"], STROKES as u64,
        "{summary:#}"
    );
}

/// Issue 14: a chain is measured on every swing the body makes, whether or not the racket rule
/// fires. The hub's racket node sends nothing (flat battery, lost radio); its body nodes carry
/// the textbook chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v33_hub_whose_racket_node_is_silent_still_gives_every_strokes_chain() {
    let (swings, summary) = play_v33_session(&[1, 2, 3], 0).await;
    assert_chain_only_strokes(&swings, &summary);
}

/// The racket node sends, but turns too slowly for the racket rule; the body's chain is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v33_hub_whose_racket_turns_too_slowly_still_gives_every_strokes_chain() {
    let (swings, summary) = play_v33_session_with(&[1, 2, 3, 4], 0, SLOW_RACKET).await;
    assert_chain_only_strokes(&swings, &summary);
}

/// The racket node turns between the detector's two thresholds (10° in 110 ms, peak 170 °/s)
/// and rings with the shuttle's contact: each stroke is a racket swing that met the shuttle
/// (det21), with its chain, not a chain-only swing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v33_hub_whose_racket_turns_slowly_but_meets_the_shuttle_gives_every_stroke() {
    let slow_touch = Turn {
        turn_deg: 10.0,
        ..RACKET
    };
    let (swings, summary) = play_v33_session_with(&[1, 2, 3, 4], 0, slow_touch).await;
    assert_eq!(swings.len(), STROKES, "{swings:#?}\n{summary:#}");
    for s in &swings {
        assert_eq!(s["impact"], true, "{s}");
        assert!(
            !s["flags"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("chain_only"))),
            "{s}"
        );
        assert_textbook_chain(s);
    }
}
