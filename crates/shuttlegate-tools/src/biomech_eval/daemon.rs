//! The independent simulator's sessions streamed through the real daemon, as the recordings
//! are ([`crate::recording::daemon`]): a `shuttlegate run` child on loopback configured with
//! each session's device (its nodes, full scales, reach), every session's wire text sent over
//! `/ws/esp32/{code}/` in the order the gateway would receive it — V3.3 seed batches from a
//! tokenless hub, compact batches from a device with a token — each batch awaited durable,
//! then the device's own `upload_complete`. The swings are read back from the journal (the
//! records the cloud gets) and scored by the same code as the in-process run
//! ([`super::score_session`]).
//!
//! **Why the stamps are moved.** A V3.3 hub stamps frames with its time of day, which the
//! gateway believes only within 15 min of its own clock; the simulator's sessions happened on
//! a fixed date, and a stream that fast is not paced like a hub. Every time on the wire is
//! therefore moved by one constant, `now − the first message's receipt`, as if the session
//! were played now: compact `t0` by that many ms, V3.3 frame stamps to the time of day that
//! many ms later. Nothing else in the text changes. The journaled swings are moved back by
//! the same constant before scoring, so the truth's times apply unchanged. The in-process run
//! reads the text unmoved against the simulator's receipt times: the same analysis on the
//! same spacing of samples, which the integration test checks on one seed.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use shuttlegate_biomech::{Segment, Session, SessionOptions, WireForm, generate};
use shuttlegate_core::analysis::Swing;

use super::{BiomechOptions, BiomechReport, court_device, score_session};
use crate::bench::device::daemon_config_head;
use crate::bench::ingest::start_daemon_with;
use crate::bench::swings::scrape;
use crate::recording::daemon::{
    SUMMARY_TIMEOUT, StreamError, WINDOW, Ws, journaled_results, next_json,
};

/// The daemon's live analysis skips stored batches when its queue (4096) is full; a stream
/// waits whenever the analysis is this many batches behind, so the analysis sees every batch
/// (checked after the run: a skipped batch fails it).
pub const MAX_ANALYSIS_BACKLOG: f64 = 1024.0;

/// Batches sent between looks at the analysis backlog (`/metrics`).
const BACKLOG_CHECK_EVERY: usize = 64;

/// Sessions generated, streamed and scored at once (each holds its whole wire text: up to
/// ~100 MB for 300 s of four nodes at 1 kHz).
pub const CONCURRENT_SESSIONS: usize = 2;

const DAY_MS: i64 = 86_400_000;

/// The V3.3 `HHMMSSmmm` stamp `ms` later, across midnight; `None` when `stamp` is not a time
/// of day.
fn later_time_of_day(stamp: i64, ms: i64) -> Option<i64> {
    let (h, m, s_ms) = (stamp / 10_000_000, stamp / 100_000 % 100, stamp % 100_000);
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60_000).contains(&s_ms) {
        return None;
    }
    let of_day = (h * 3_600_000 + m * 60_000 + s_ms + ms).rem_euclid(DAY_MS);
    let (h, rest) = (of_day / 3_600_000, of_day % 3_600_000);
    Some(h * 10_000_000 + rest / 60_000 * 100_000 + rest % 60_000)
}

/// `text` with the integer after each `"key":` from byte `from` on replaced by `f` of it
/// (unchanged where `f` gives `None`).
fn replace_integers(text: &str, key: &str, from: usize, f: impl Fn(i64) -> Option<i64>) -> String {
    let pattern = format!("\"{key}\":");
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    let mut offset = 0;
    while let Some(found) = rest.find(&pattern) {
        let value_at = found + pattern.len();
        let digits = rest[value_at..]
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len() - value_at);
        out.push_str(&rest[..value_at]);
        let number = &rest[value_at..value_at + digits];
        match number
            .parse::<i64>()
            .ok()
            .filter(|_| offset + found >= from)
        {
            Some(n) => out.push_str(&f(n).unwrap_or(n).to_string()),
            None => out.push_str(number),
        }
        offset += value_at + digits;
        rest = &rest[value_at + digits..];
    }
    out.push_str(rest);
    out
}

/// One message's text with every time on it `delta_ms` later (see the module doc): compact
/// `t0`, V3.3 frame stamps (not the message's own `timestamp`, the hub's `millis()`).
pub fn shifted(text: &str, delta_ms: i64) -> String {
    if text.contains("\"t0\":") {
        return replace_integers(text, "t0", 0, |t0| Some(t0 + delta_ms));
    }
    match text.find("\"data\":[") {
        Some(data) => replace_integers(text, "timestamp", data, |stamp| {
            later_time_of_day(stamp, delta_ms)
        }),
        None => text.to_owned(),
    }
}

fn device_token(session: &Session) -> String {
    format!("{}-token", session.device.device_code)
}

fn position_name(segment: Segment) -> &'static str {
    match segment {
        Segment::Waist => "waist",
        Segment::Shoulder => "shoulder",
        Segment::Wrist | Segment::Forearm => "wrist",
        Segment::Racket => "racket",
    }
}

/// The session's device as a venue configures it: the same facts the in-process run gives
/// the analysis ([`court_device`]). A V3.3 hub cannot send a token: tokenless, as deployed.
pub fn device_config(session: &Session) -> String {
    let device = court_device(session, None);
    let d = &session.device;
    let sensors: Vec<String> = d
        .nodes
        .iter()
        .map(|n| {
            format!(
                "{} = \"{}\"",
                n.segment.sensor_id(),
                position_name(n.segment)
            )
        })
        .collect();
    let auth = match d.form {
        WireForm::SeedV33 => "allow_tokenless = true".to_owned(),
        WireForm::Compact => format!("token = \"{}\"", device_token(session)),
    };
    format!(
        "\n[[devices]]\ncode = \"{}\"\n{auth}\nmount_radius_m = {}\nacc_full_scale_g = {:.1}\n\
         gyro_full_scale_dps = {:.1}\nsensors = {{ {} }}\n",
        d.device_code,
        device.profile.mount_radius_m,
        device.profile.acc_full_scale_g,
        device.profile.gyro_full_scale_dps,
        sensors.join(", "),
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sends one session's messages; returns the shift its times got once `upload_complete` is
/// answered with nothing missing.
async fn stream_session(addr: &str, session: &Session) -> Result<i64, String> {
    let d = &session.device;
    let query = match d.form {
        WireForm::SeedV33 => String::new(),
        WireForm::Compact => format!("?token={}", device_token(session)),
    };
    let url = format!("ws://{addr}/ws/esp32/{}/{query}", d.device_code);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let hello = next_json(&mut ws).await?;
    if hello["type"] != "connection_established" {
        return Err(format!("expected connection_established, got {hello}"));
    }
    let delta_ms = now_ms() - session.messages.first().map_or(0, |m| m.received_ms);
    let mut unanswered = 0usize;
    let mut sent = 0usize;
    for message in &session.messages {
        let is_batch = message.text.contains("\"type\":\"batch_sensor_data\"");
        let is_done = message.text.contains("\"type\":\"upload_complete\"");
        if is_done {
            while unanswered > 0 {
                unanswered -= await_durable(&mut ws).await?;
            }
        }
        while is_batch && unanswered >= WINDOW {
            unanswered -= await_durable(&mut ws).await?;
        }
        if is_batch && sent % BACKLOG_CHECK_EVERY == BACKLOG_CHECK_EVERY - 1 {
            await_analysis(addr).await?;
        }
        sent += usize::from(is_batch);
        ws.send(Message::text(shifted(&message.text, delta_ms)))
            .await
            .map_err(|e| e.to_string())?;
        unanswered += usize::from(is_batch);
        if is_done {
            await_upload_answer(&mut ws).await?;
        }
    }
    let _ = ws.close(None).await;
    Ok(delta_ms)
}

/// Returns once the daemon's analysis is at most [`MAX_ANALYSIS_BACKLOG`] batches behind.
async fn await_analysis(addr: &str) -> Result<(), String> {
    let deadline = Instant::now() + SUMMARY_TIMEOUT;
    loop {
        let pending = scrape(addr)
            .await
            .map_err(|e| e.to_string())?
            .value("shuttlegate_analysis_pending");
        if pending <= MAX_ANALYSIS_BACKLOG {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the analysis stayed {pending} batches behind for {SUMMARY_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 1 for a durable batch answer, 0 for anything else; an error for a refused batch.
async fn await_durable(ws: &mut Ws) -> Result<usize, String> {
    let reply = next_json(ws).await?;
    match reply["type"].as_str() {
        Some("batch_sensor_data_response") if reply["durable"] == true => Ok(1),
        Some("batch_sensor_data_response") | Some("error") => {
            Err(format!("batch refused: {reply}"))
        }
        _ => Ok(0),
    }
}

async fn await_upload_answer(ws: &mut Ws) -> Result<(), String> {
    loop {
        let reply = next_json(ws).await?;
        if reply["type"] == "upload_complete_response" {
            let missing = reply["missing_seqs"].as_array().map_or(0, Vec::len);
            if missing > 0 {
                return Err(format!("the gateway misses {missing} batches: {reply}"));
            }
            return Ok(());
        }
    }
}

/// The journal's swings per device, and how many session summaries it holds.
fn journaled(journal: &Path) -> Result<(HashMap<String, Vec<Swing>>, usize), StreamError> {
    let mut swings: HashMap<String, Vec<Swing>> = HashMap::new();
    let mut unreadable = None;
    let summaries = journaled_results(journal, |value| {
        match serde_json::from_value::<Swing>(value) {
            Ok(swing) => swings.entry(swing.device.clone()).or_default().push(swing),
            Err(e) => {
                unreadable.get_or_insert(e.to_string());
            }
        }
    })?;
    match unreadable {
        Some(e) => Err(StreamError::Daemon(format!(
            "a journaled swing does not read as a swing: {e}"
        ))),
        None => Ok((swings, summaries)),
    }
}

/// Streams `sessions` (distinct devices) through one daemon and returns each one's swings
/// as journaled, on the simulator's clock.
pub async fn swings_through_daemon(
    exe: &Path,
    sessions: &[Session],
) -> Result<Vec<Vec<Swing>>, StreamError> {
    let dir = crate::children::scratch_dir()?;
    let mut config = daemon_config_head(dir.path(), Duration::from_millis(2));
    for session in sessions {
        config.push_str(&device_config(session));
    }
    let daemon = start_daemon_with(exe, dir.path(), &config)
        .map_err(|e| StreamError::Daemon(e.to_string()))?;
    let deltas: Vec<i64> = futures_util::future::try_join_all(sessions.iter().map(|s| {
        let addr = daemon.addr.clone();
        async move {
            stream_session(&addr, s)
                .await
                .map_err(|reason| StreamError::Device {
                    file: s.device.device_code.clone(),
                    reason,
                })
        }
    }))
    .await?;
    let journal = dir.path().join("journal");
    let deadline = Instant::now() + SUMMARY_TIMEOUT;
    let mut swings = loop {
        let (swings, summaries) = journaled(&journal)?;
        if summaries >= sessions.len() {
            break swings;
        }
        if Instant::now() > deadline {
            return Err(StreamError::Daemon(format!(
                "{summaries} of {} session summaries journaled after {SUMMARY_TIMEOUT:?}",
                sessions.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let skipped = scrape(&daemon.addr)
        .await
        .map_err(|e| StreamError::Daemon(e.to_string()))?
        .value("shuttlegate_analysis_batches_skipped_total");
    if skipped != 0.0 {
        return Err(StreamError::Daemon(format!(
            "the daemon's analysis skipped {skipped} batches: its swings are not the whole \
             sessions'"
        )));
    }
    drop(daemon);
    Ok(sessions
        .iter()
        .zip(deltas)
        .map(|(s, delta)| {
            let mut mine = swings.remove(&s.device.device_code).unwrap_or_default();
            for swing in &mut mine {
                let back = delta as f64;
                swing.t_start -= back;
                swing.t_impact -= back;
                swing.t_end -= back;
            }
            mine.sort_by(|a, b| a.t_impact.total_cmp(&b.t_impact));
            mine
        })
        .collect())
}

/// The evaluation of [`super::run`], every session streamed through a daemon started from
/// `exe` (state in a temporary directory per group of [`CONCURRENT_SESSIONS`]).
pub async fn run(exe: &Path, options: &BiomechOptions) -> Result<BiomechReport, StreamError> {
    let mut report = BiomechReport::new(
        options,
        "wire text through a `shuttlegate run` child over /ws/esp32/ (V3.3 hubs tokenless), \
         swings read back from its journal",
    );
    for seeds in options.seeds.chunks(CONCURRENT_SESSIONS) {
        let sessions: Vec<Session> = seeds
            .iter()
            .map(|&seed| {
                generate(&SessionOptions {
                    seed,
                    duration_s: options.duration_s,
                    rate_hz: options.rate_hz,
                    placement: options.placement,
                })
            })
            .collect();
        let found = swings_through_daemon(exe, &sessions).await?;
        for (session, swings) in sessions.iter().zip(&found) {
            score_session(session, swings, &mut report);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_of_day_stamp_moves_across_midnight() {
        assert_eq!(later_time_of_day(235_959_500, 1_000), Some(500));
        assert_eq!(
            later_time_of_day(120_000_000, 90_061_001),
            Some(130_101_001)
        );
        assert_eq!(later_time_of_day(120_000_000, -DAY_MS), Some(120_000_000));
        assert_eq!(later_time_of_day(250_000_000, 1), None, "hour 25");
    }

    #[test]
    fn compact_t0_and_v33_frame_stamps_move_and_nothing_else() {
        let compact = r#"{"type":"batch_sensor_data","session_id":"s","seq":3,"sensor_id":4,"t0":1795000000000,"rate_hz":200,"samples":[[1,2,3,4,5,6]]}"#;
        assert_eq!(
            shifted(compact, 25),
            compact.replace("1795000000000", "1795000000025")
        );
        let seed = r#"{"type":"batch_sensor_data","device_code":"d","sensor_type":"waist","timestamp":3600123,"session_id":"s","data":[{"acc":[0,0,1],"gyro":[1,2,3],"angle":[0,0,0],"sensor_id":1,"timestamp":101500250},{"acc":[0,0,1],"gyro":[1,2,3],"angle":[0,0,0],"sensor_id":2,"timestamp":101500255}]}"#;
        let moved = shifted(seed, 60_000);
        assert_eq!(
            moved,
            seed.replace("101500250", "101600250")
                .replace("101500255", "101600255"),
            "the hub's millis() stays"
        );
        let done = r#"{"type":"upload_complete","session_id":"s","device_code":"d"}"#;
        assert_eq!(shifted(done, 5), done);
    }
}
