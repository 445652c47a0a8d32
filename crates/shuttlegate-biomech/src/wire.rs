//! The firmware's wire forms, as JSON text exactly as devices send them (SPEC §1.1):
//! - the V3.3 seed form: 30 frames per `batch_sensor_data`, all nodes interleaved in time
//!   order, each frame stamped with the local time of day `HHMMSSmmm` (UTC+8 after the
//!   firmware's NTP sync), the message stamped with `millis()`, no `seq`;
//! - the compact form: one node per batch, `t0` (unix ms), `rate_hz`, `seq`, rows of 6 or 9
//!   channels; a new batch whenever the node's rate changes.
//!
//! Written independently of the gateway's own renderer: the JSON is built here from the
//! SPEC's field list, fields in the firmware's order (`type` first; serde_json's map would
//! sort them).

use std::fmt::Write as _;

use crate::sensor::Reading;

/// A text frame as a device sends it, and when the gateway receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct WireMessage {
    /// Unix ms at which the gateway receives it.
    pub received_ms: i64,
    pub text: String,
}

/// Which form a device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireForm {
    /// V3.3 firmware: seed form, time-of-day stamps.
    SeedV33,
    /// Compact batches.
    Compact,
}

/// V3.3's local time zone offset, minutes (China Standard Time).
pub const V33_TZ_OFFSET_MIN: i64 = 480;
const DAY_MS: i64 = 86_400_000;
/// Frames per V3.3 batch (the firmware's batch size).
pub const V33_FRAMES: usize = 30;

/// The `HHMMSSmmm` local time of day of a unix ms, as V3.3 stamps frames.
pub fn time_of_day_stamp(unix_ms: i64) -> i64 {
    let local = (unix_ms + V33_TZ_OFFSET_MIN * 60_000).rem_euclid(DAY_MS);
    let (h, rest) = (local / 3_600_000, local % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    h * 10_000_000 + m * 100_000 + rest
}

fn round(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

/// A number as JSON (serde_json's shortest round-trip form).
fn num(v: f64) -> String {
    serde_json::to_string(&v).unwrap_or_else(|_| "0".into())
}

/// A string as JSON (quoted, escaped).
fn text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn array(values: impl IntoIterator<Item = f64>) -> String {
    let items: Vec<String> = values.into_iter().map(num).collect();
    format!("[{}]", items.join(","))
}

fn triple(v: [f64; 3], decimals: i32) -> String {
    array(v.map(|x| round(x, decimals)))
}

/// Names V3.3 gives its nodes in `sensor_type` (taken from the batch's first frame).
fn sensor_type(sensor_id: u32) -> &'static str {
    match sensor_id {
        1 => "waist",
        2 => "shoulder",
        3 => "wrist",
        _ => "racket",
    }
}

/// V3.3 batches of all nodes' readings, merged in time order. `boot_ms` is the unix ms the
/// hub booted (its `millis()` origin); `latency_ms` per message when the gateway gets it.
pub fn seed_batches(
    device_code: &str,
    session_id: &str,
    nodes: &[(u32, Vec<Reading>)],
    boot_ms: i64,
    mut latency_ms: impl FnMut() -> i64,
) -> Vec<WireMessage> {
    let mut frames: Vec<(f64, u32, &Reading)> = nodes
        .iter()
        .flat_map(|(id, readings)| readings.iter().map(move |r| (r.t_ms, *id, r)))
        .collect();
    frames.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    frames
        .chunks(V33_FRAMES)
        .map(|chunk| {
            let mut data = String::new();
            for (i, (t, id, r)) in chunk.iter().enumerate() {
                let _ = write!(
                    data,
                    "{}{{\"acc\":{},\"gyro\":{},\"angle\":{},\"sensor_id\":{id},\"timestamp\":{}}}",
                    if i > 0 { "," } else { "" },
                    triple(r.acc, 4),
                    triple(r.gyro, 2),
                    triple(r.angle, 2),
                    time_of_day_stamp(t.round() as i64),
                );
            }
            let last = chunk.last().map_or(0.0, |f| f.0).round() as i64;
            let sent = last + 2;
            let text = format!(
                "{{\"type\":\"batch_sensor_data\",\"device_code\":{},\"sensor_type\":\"{}\",\"timestamp\":{},\"session_id\":{},\"data\":[{data}]}}",
                text(device_code),
                sensor_type(chunk[0].1),
                sent - boot_ms,
                text(session_id),
            );
            WireMessage {
                received_ms: sent + latency_ms(),
                text,
            }
        })
        .collect()
}

/// Compact batches of one node: `batch_ms` of samples each, a new batch at a rate change.
/// `seq` continues from `*seq`.
#[allow(clippy::too_many_arguments)]
pub fn compact_batches(
    session_id: &str,
    sensor_id: u32,
    readings: &[Reading],
    rate_at: impl Fn(f64) -> f64,
    angles: bool,
    batch_ms: f64,
    seq: &mut u64,
    mut latency_ms: impl FnMut() -> i64,
) -> Vec<WireMessage> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < readings.len() {
        let rate = rate_at(readings[start].t_ms);
        let cap = ((batch_ms * rate / 1000.0) as usize).max(1);
        let mut end = start + 1;
        while end < readings.len() && end - start < cap && rate_at(readings[end].t_ms) == rate {
            end += 1;
        }
        let rows: Vec<String> = readings[start..end]
            .iter()
            .map(|r| {
                let mut row = vec![
                    round(r.acc[0], 4),
                    round(r.acc[1], 4),
                    round(r.acc[2], 4),
                    round(r.gyro[0], 2),
                    round(r.gyro[1], 2),
                    round(r.gyro[2], 2),
                ];
                if angles {
                    row.extend(r.angle.map(|a| round(a, 2)));
                }
                array(row)
            })
            .collect();
        let t0 = readings[start].t_ms.round() as i64;
        let text = format!(
            "{{\"type\":\"batch_sensor_data\",\"session_id\":{},\"seq\":{},\"sensor_id\":{sensor_id},\"t0\":{t0},\"rate_hz\":{},\"samples\":[{}]}}",
            text(session_id),
            *seq,
            num(rate),
            rows.join(","),
        );
        *seq += 1;
        let last = readings[end - 1].t_ms.round() as i64;
        out.push(WireMessage {
            received_ms: last + 2 + latency_ms(),
            text,
        });
        start = end;
    }
    out
}

/// The device's `upload_complete` for the session.
pub fn upload_complete(device_code: &str, session_id: &str, sent_ms: i64) -> WireMessage {
    WireMessage {
        received_ms: sent_ms,
        text: format!(
            "{{\"type\":\"upload_complete\",\"session_id\":{},\"device_code\":{}}}",
            text(session_id),
            text(device_code)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_stamp() {
        // 2024-11-24 01:30:15.123 UTC is 09:30:15.123 in UTC+8.
        let unix = 1_732_411_815_123;
        assert_eq!(time_of_day_stamp(unix), 93_015_123);
    }

    #[test]
    fn seed_batches_carry_thirty_frames_in_time_order() {
        let reading = |t| Reading {
            t_ms: t,
            acc: [0.0, 0.0, 1.0],
            gyro: [0.0; 3],
            angle: [0.0; 3],
            wraps: [0; 6],
        };
        let nodes = vec![
            (
                1,
                (0..40)
                    .map(|i| reading(1_732_411_815_000.0 + 10.0 * f64::from(i)))
                    .collect(),
            ),
            (
                4,
                (0..40)
                    .map(|i| reading(1_732_411_815_005.0 + 10.0 * f64::from(i)))
                    .collect(),
            ),
        ];
        let msgs = seed_batches("d", "s", &nodes, 1_732_411_000_000, || 10);
        assert_eq!(msgs.len(), 3);
        assert!(
            msgs[0]
                .text
                .starts_with(r#"{"type":"batch_sensor_data","device_code":"d""#)
        );
        let v: serde_json::Value = serde_json::from_str(&msgs[0].text).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 30);
        assert_eq!(v["data"][0]["timestamp"], 93_015_000);
        assert_eq!(v["data"][1]["sensor_id"], 4);
        assert!(v.get("seq").is_none());
    }
}
