//! Real recordings streamed through the real daemon, as devices would send them: a
//! `shuttlegate run` child on loopback, one configured device per file (the source's
//! placement, full scales and sensor id), each file sent as one session over
//! `/ws/esp32/{code}/` — compact batches for files timed by a fixed rate, seed-form batches
//! with per-frame unix-ms stamps for files with a time column — each batch awaited durable,
//! then `upload_complete`. Once every session's summary is journaled, the swings are read
//! back from the journal (the records the cloud would get) and scored
//! ([`super::score`]). Unpaced: batches go out as fast as the window of unanswered ones
//! allows; the analysis is driven by sample time, not wall time, so pacing changes nothing
//! it computes.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use shuttlegate::journal::tools::{for_each_record, jsonl};
use shuttlegate_core::analysis::{Height, NodeSample, Side};
use shuttlegate_core::batch::BodyPosition;

use super::score::{Detected, FileOutcome, score};
use super::sources::{ReadFile, Source};
use super::table::TimeSource;
use super::{Format, RecordingError};
use crate::bench::device::daemon_config_head;
use crate::bench::ingest::{Daemon, start_daemon_with};
use crate::report::SourceReport;

/// Where every file's first sample is put on the wire: 2026-01-01T00:00:00Z, so stamps read as
/// unix ms (not as V3.3 `HHMMSSmmm`) whatever clock the recording used.
pub const WIRE_EPOCH_MS: i64 = 1_767_225_600_000;

/// Samples per batch: 0.5–1 s at the recordings' rates, as hubs batch.
pub const BATCH_SAMPLES: usize = 50;

/// Batches in flight per device before it waits for a durable answer.
pub const WINDOW: usize = 16;

/// Files streamed at once.
pub const CONCURRENT_FILES: usize = 4;

/// Longest wait for one durable answer, and for every summary after the last upload.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
pub const SUMMARY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why streaming a source failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("daemon: {0}")]
    Daemon(String),
    #[error("{file}: {reason}")]
    Device { file: String, reason: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

fn device_code(i: usize) -> String {
    format!("rec-{i:03}")
}

fn device_token(i: usize) -> String {
    format!("rec-token-{i:03}")
}

/// The sensor id the source's node sends under (SPEC §1.1's default map).
fn sensor_id(position: BodyPosition) -> u8 {
    match position {
        BodyPosition::Wrist => 3,
        _ => 4,
    }
}

/// The device's configured node: the one the recording's sensor was, under its default id (a
/// one-node device, as SPEC §3 has racket-only and wrist-only devices).
fn sensors_key(position: BodyPosition) -> String {
    let name = match position {
        BodyPosition::Wrist => "wrist",
        _ => "racket",
    };
    format!("{{ {} = \"{name}\" }}", sensor_id(position))
}

fn daemon_config(dir: &Path, source: &Source) -> String {
    let mut config = daemon_config_head(dir, Duration::from_millis(2));
    for i in 0..source.files.len() {
        config.push_str(&format!(
            "\n[[devices]]\ncode = \"{}\"\ntoken = \"{}\"\nacc_full_scale_g = {:.1}\n\
             gyro_full_scale_dps = {:.1}\nsensors = {}\ninfer_axes = {}\n",
            device_code(i),
            device_token(i),
            source.acc_full_scale_g,
            source.gyro_full_scale_dps,
            sensors_key(source.position),
            !source.axes_configured(),
        ));
    }
    config
}

/// One batch's messages: consecutive samples split at [`BATCH_SAMPLES`] and, for the compact
/// form, at any step that is not the rate's (a gap between captures): its `t0 + i/rate`
/// timing cannot span one.
fn batches(samples: &[NodeSample], rate_hz: Option<f64>) -> Vec<&[NodeSample]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=samples.len() {
        let full = i - start == BATCH_SAMPLES;
        let gap = rate_hz.is_some_and(|rate| {
            i < samples.len() && (samples[i].t_ms - samples[i - 1].t_ms - 1000.0 / rate).abs() > 1.0
        });
        if i == samples.len() || full || gap {
            out.push(&samples[start..i]);
            start = i;
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

/// The rate a source's files are sent at in the compact form; `None`: the seed form, each
/// frame with its own stamp.
fn wire_rate(source: &Source) -> Option<f64> {
    match &source.format {
        Format::Table(t) => match t.time {
            TimeSource::Rate(rate) => Some(rate),
            TimeSource::Column { .. } => None,
        },
        Format::StrokeWindows { rate_hz } => Some(*rate_hz),
        Format::WitMotion => None,
    }
}

/// `samples` as the daemon reads them once sent: stamps on whole milliseconds from the
/// first sample, and in the compact form each batch's samples at `t0 + i·1000/rate`
/// (the recording's jitter of up to 1 ms within a batch is not on the wire), without the
/// fused angles the six-channel messages leave out. The in-process evaluation feeds these,
/// so it and the daemon analyse the same samples.
pub(crate) fn as_the_wire_carries(samples: &[NodeSample], source: &Source) -> Vec<NodeSample> {
    let rate_hz = wire_rate(source);
    let first_ms = samples.first().map_or(0.0, |s| s.t_ms);
    let on_wire = |t_ms: f64| first_ms + (wire_ms(t_ms, first_ms) - WIRE_EPOCH_MS) as f64;
    let mut out = Vec::with_capacity(samples.len());
    for batch in batches(samples, rate_hz) {
        let t0 = on_wire(batch[0].t_ms);
        out.extend(batch.iter().enumerate().map(|(i, s)| NodeSample {
            t_ms: match rate_hz {
                Some(rate) => t0 + i as f64 * 1000.0 / rate,
                None => on_wire(s.t_ms),
            },
            angle: None,
            ..*s
        }));
    }
    out
}

fn wire_ms(t_ms: f64, first_ms: f64) -> i64 {
    WIRE_EPOCH_MS + (t_ms - first_ms).round() as i64
}

fn six(s: &NodeSample) -> [f32; 6] {
    [
        s.acc[0], s.acc[1], s.acc[2], s.gyro[0], s.gyro[1], s.gyro[2],
    ]
}

/// The batch as the device sends it: compact with a rate, seed form with frame stamps.
fn batch_message(
    batch: &[NodeSample],
    seq: u64,
    session: &str,
    sensor: u8,
    rate_hz: Option<f64>,
    first_ms: f64,
) -> String {
    let message = match rate_hz {
        Some(rate) => json!({
            "type": "batch_sensor_data",
            "session_id": session,
            "seq": seq,
            "sensor_id": sensor,
            "t0": wire_ms(batch[0].t_ms, first_ms),
            "rate_hz": rate,
            "samples": batch.iter().map(six).collect::<Vec<_>>(),
        }),
        None => json!({
            "type": "batch_sensor_data",
            "session_id": session,
            "seq": seq,
            "timestamp": wire_ms(batch[0].t_ms, first_ms),
            "data": batch.iter().map(|s| json!({
                "acc": s.acc,
                "gyro": s.gyro,
                "sensor_id": sensor,
                "timestamp": wire_ms(s.t_ms, first_ms),
            })).collect::<Vec<_>>(),
        }),
    };
    message.to_string()
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn next_json(ws: &mut Ws) -> Result<Value, String> {
    loop {
        let message = tokio::time::timeout(ANSWER_TIMEOUT, ws.next())
            .await
            .map_err(|_| format!("no answer within {ANSWER_TIMEOUT:?}"))?
            .ok_or("connection closed")?
            .map_err(|e| e.to_string())?;
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).map_err(|e| e.to_string());
        }
    }
}

/// Sends one file as device `i`'s session; returns once `upload_complete` is answered with
/// nothing missing.
async fn stream_file(
    addr: &str,
    i: usize,
    source: &Source,
    samples: &[NodeSample],
) -> Result<(), String> {
    let url = format!(
        "ws://{addr}/ws/esp32/{}/?token={}",
        device_code(i),
        device_token(i)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| e.to_string())?;
    let hello = next_json(&mut ws).await?;
    if hello["type"] != "connection_established" {
        return Err(format!("expected connection_established, got {hello}"));
    }
    let rate_hz = wire_rate(source);
    let session = format!("rec-{i:03}");
    let sensor = sensor_id(source.position);
    let first_ms = samples.first().map_or(0.0, |s| s.t_ms);
    let all = batches(samples, rate_hz);
    let mut unanswered: HashMap<u64, ()> = HashMap::new();
    for (seq, batch) in all.iter().enumerate() {
        while unanswered.len() >= WINDOW {
            await_durable(&mut ws, &mut unanswered).await?;
        }
        let text = batch_message(batch, seq as u64, &session, sensor, rate_hz, first_ms);
        ws.send(Message::text(text))
            .await
            .map_err(|e| e.to_string())?;
        unanswered.insert(seq as u64, ());
    }
    while !unanswered.is_empty() {
        await_durable(&mut ws, &mut unanswered).await?;
    }
    let done = json!({"type": "upload_complete", "session_id": session, "batches": all.len()});
    ws.send(Message::text(done.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let reply = next_json(&mut ws).await?;
        if reply["type"] == "upload_complete_response" {
            let missing = reply["missing_seqs"].as_array().map_or(0, Vec::len);
            if missing > 0 {
                return Err(format!("the gateway misses {missing} batches: {reply}"));
            }
            break;
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

async fn await_durable(ws: &mut Ws, unanswered: &mut HashMap<u64, ()>) -> Result<(), String> {
    let reply = next_json(ws).await?;
    match reply["type"].as_str() {
        Some("batch_sensor_data_response") if reply["durable"] == true => {
            let seq = reply["seq"]
                .as_u64()
                .ok_or("a durable answer without seq")?;
            unanswered.remove(&seq);
            Ok(())
        }
        Some("batch_sensor_data_response") | Some("error") => {
            Err(format!("batch refused: {reply}"))
        }
        _ => Ok(()),
    }
}

/// A journaled swing's facts, or `None` when the record is not a swing.
fn detected(record: &Value) -> Option<(String, Detected)> {
    if record["kind"] != "swing" {
        return None;
    }
    let side = Side::ALL
        .into_iter()
        .find(|s| record["side"] == s.as_str())?;
    let height = Height::ALL
        .into_iter()
        .find(|h| record["height"] == h.as_str())?;
    Some((
        record["device"].as_str()?.to_string(),
        Detected {
            t_impact: record["t_impact"].as_f64()?,
            side,
            height,
            racket_speed_kmh: record["racket_speed_kmh"].as_f64(),
            side_confidence: record["confidences"]["side"].as_f64(),
            height_confidence: record["confidences"]["height"].as_f64(),
        },
    ))
}

/// Swings per device and the number of summaries, read from the journal's segment files.
fn journaled(journal: &Path) -> Result<(HashMap<String, Vec<Detected>>, usize), StreamError> {
    let mut swings: HashMap<String, Vec<Detected>> = HashMap::new();
    let summaries = journaled_results(journal, |value| {
        if let Some((device, swing)) = detected(&value) {
            swings.entry(device).or_default().push(swing);
        }
    })?;
    Ok((swings, summaries))
}

/// Walks the journal's analysis results: each swing record's JSON to `swing`; returns how many
/// session summaries it holds. Shared by the recordings' and the simulator's daemon runs.
pub(crate) fn journaled_results(
    journal: &Path,
    mut swing: impl FnMut(Value),
) -> Result<usize, StreamError> {
    let mut summaries = 0;
    for_each_record(journal, |record| {
        use shuttlegate_core::journal::record::RecordKind;
        if !matches!(record.kind, RecordKind::Swing | RecordKind::Summary) {
            return;
        }
        let Some(value) = jsonl(&record).and_then(|l| serde_json::from_str::<Value>(&l).ok())
        else {
            return;
        };
        if value["kind"] == "summary" {
            summaries += 1;
        } else {
            swing(value);
        }
    })
    .map_err(|e| StreamError::Daemon(format!("reading the journal: {e}")))?;
    Ok(summaries)
}

/// Streams every file of `source` through a daemon started from `exe` (state in a temporary
/// directory) and scores the journaled swings.
pub async fn through_daemon(exe: &Path, source: &Source) -> Result<SourceReport, StreamError> {
    let dir = crate::children::scratch_dir()?;
    let read: Vec<ReadFile> = source
        .files
        .iter()
        .map(|f| source.read(f))
        .collect::<Result<_, _>>()?;
    let daemon: Daemon = start_daemon_with(exe, dir.path(), &daemon_config(dir.path(), source))
        .map_err(|e| StreamError::Daemon(e.to_string()))?;
    let addr = daemon.addr.clone();
    let results: Vec<Result<(), StreamError>> = futures_util::stream::iter(read.iter().enumerate())
        .map(|(i, file)| {
            let addr = addr.clone();
            async move {
                stream_file(&addr, i, source, &file.samples)
                    .await
                    .map_err(|reason| StreamError::Device {
                        file: source.files[i].path.display().to_string(),
                        reason,
                    })
            }
        })
        .buffer_unordered(CONCURRENT_FILES)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    let journal = dir.path().join("journal");
    let deadline = Instant::now() + SUMMARY_TIMEOUT;
    let swings = loop {
        let (swings, summaries) = journaled(&journal)?;
        if summaries >= read.len() {
            break swings;
        }
        if Instant::now() > deadline {
            return Err(StreamError::Daemon(format!(
                "{summaries} of {} session summaries journaled after {SUMMARY_TIMEOUT:?}",
                read.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let skipped = crate::bench::swings::scrape(&addr)
        .await
        .map_err(|e| StreamError::Daemon(e.to_string()))?
        .value("shuttlegate_analysis_batches_skipped_total");
    if skipped != 0.0 {
        return Err(StreamError::Daemon(format!(
            "the daemon's analysis skipped {skipped} batches: its swings are not the whole files'"
        )));
    }
    drop(daemon);
    let mut swings = swings;
    let outcomes: Vec<FileOutcome> = read
        .iter()
        .enumerate()
        .flat_map(|(i, file)| {
            let first_ms = file.samples.first().map_or(0.0, |s| s.t_ms);
            let mine: Vec<Detected> = swings
                .remove(&device_code(i))
                .unwrap_or_default()
                .into_iter()
                .map(|mut s| {
                    // Back to the recording's own clock.
                    s.t_impact = s.t_impact - WIRE_EPOCH_MS as f64 + first_ms;
                    s
                })
                .collect();
            file.outcomes(&source.files[i].path.display().to_string(), mine)
        })
        .collect();
    let form = match &source.format {
        Format::Table(t) if matches!(t.time, TimeSource::Rate(_)) => "compact form",
        Format::StrokeWindows { .. } => "compact form",
        _ => "seed form, unix-ms frame stamps",
    };
    let mut report = score(
        source.name,
        &source.title,
        &format!(
            "the daemon: {} files as sessions over /ws/esp32/, {form}, unpaced",
            read.len()
        ),
        &outcomes,
        &source.speed_order,
    );
    report.notes.extend(source.notes.iter().cloned());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: f64) -> NodeSample {
        NodeSample {
            position: BodyPosition::Racket,
            t_ms,
            acc: [0.0, 0.0, 1.0],
            gyro: [1.0, 2.0, 3.0],
            angle: None,
        }
    }

    #[test]
    fn compact_batches_break_at_gaps_and_at_the_batch_size() {
        let mut samples: Vec<NodeSample> = (0..120).map(|i| sample(i as f64 * 10.0)).collect();
        samples.extend((0..10).map(|i| sample(5000.0 + i as f64 * 10.0)));
        let lens: Vec<usize> = batches(&samples, Some(100.0))
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(lens, [50, 50, 20, 10]);
        let lens: Vec<usize> = batches(&samples, None).iter().map(|b| b.len()).collect();
        assert_eq!(lens, [50, 50, 30], "seed frames carry their own stamps");
    }

    #[test]
    fn messages_are_the_devices_wire_forms_with_unix_ms_stamps() {
        let samples = [sample(100.0), sample(110.0)];
        let compact: Value =
            serde_json::from_str(&batch_message(&samples, 3, "s", 4, Some(100.0), 100.0))
                .expect("json");
        assert_eq!(compact["t0"], WIRE_EPOCH_MS);
        assert_eq!(compact["seq"], 3);
        assert_eq!(compact["samples"][1], json!([0.0, 0.0, 1.0, 1.0, 2.0, 3.0]));
        let seed: Value =
            serde_json::from_str(&batch_message(&samples, 0, "s", 3, None, 90.0)).expect("json");
        assert_eq!(seed["data"][1]["timestamp"], WIRE_EPOCH_MS + 20);
        assert_eq!(seed["data"][0]["sensor_id"], 3);
    }
}
