//! What the gateway learns about each device from the batches it stores and the swings it
//! finds: the nodes seen (sensor id, body position, rate), batches and swings today, and two
//! conditions read from the samples — a device clock that disagrees with the gateway's
//! (`clock_skew`) and a node stuck at full scale (`sensor_saturation`).
//!
//! Why a separate watch rather than the court or the analysis: the court keeps only what its
//! state machine needs (sessions, commands), and the analysis is per session and may skip
//! batches when it is behind. Staff want per-device figures over the day and to hear when a
//! device's data is wrong, from every stored batch. Pure: times come in (`received_ms`, the
//! gateway's clock at receipt), nothing is read from a clock; the daemon feeds it and samples
//! [`DeviceWatch::conditions`] for the console's notifications.
//!
//! **Clock skew.** For each batch the *lead* is the device's time of its newest sample minus the
//! receipt time: compact rows at `t0 + i·1000/rate_hz`, seed frames by their own stamps (unix
//! ms, or V3.3 `HHMMSSmmm` anchored to the receipt date — without the 15 min plausibility cut
//! of [`crate::protocol::time`], which is exactly the skew this watch reports; a stamp of no
//! known clock gives no reading). A synced device's lead is a little negative (the batch's own
//! span plus transit). The device's clock is judged by the *freshest* batch of the last
//! [`SKEW_WINDOW_MS`] (the largest lead): a batch resent from the device's backlog is old but
//! not a clock error, and a fresher one in the window outvotes it. The clock is skewed when that
//! estimate has been beyond ±[`CLOCK_SKEW_MS`] for [`SKEW_SUSTAIN_MS`] of receipts, and
//! recovers as soon as it is back within (a clock that ran ahead and was corrected: once its
//! readings from ahead have left the window, within [`SKEW_WINDOW_MS`]). Why 2 s: the court joins rackets' impacts into
//! rallies by time, with gaps of about a second, so a clock further off than that makes the
//! device's timing meaningless beside the others; the cure is the `sync` command (or
//! `heartbeat_response.server_time`). Known limit: a device sending *only* a backlog older
//! than 2 s for over 2 s reads as a clock behind until fresh data comes.
//!
//! **A node stuck at full scale.** A swing's peak may clip for a few tens of ms; a node whose
//! reading sits at full scale ([`CLIP_FRACTION`] of the device's `acc_full_scale_g` /
//! `gyro_full_scale_dps`, or beyond) on one axis for [`STUCK_MS`] of sample time without a
//! break is stuck (a broken or wrongly configured sensor). It recovers once that axis has read
//! below full scale for [`UNSTUCK_MS`] (hysteresis: a node hovering at the limit would
//! otherwise flap).
//!
//! **Today.** Batches and swings are counted per local date in the court's timezone; the first
//! batch or swing of a new date starts the count again. The counts are kept in memory since the
//! gateway started (documented as such on the console): the journal holds the record.
//!
//! Bounded: at most [`MAX_DEVICES`] devices (the daemon feeds only configured ones), at most
//! [`MAX_NODES`] nodes per device (more sensor ids are not tracked), and the skew window at
//! most [`SKEW_WINDOW_BATCHES`] batches.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, NaiveDate};
use serde::Serialize;

use crate::batch::{BatchForm, BodyPosition, SensorBatch};
use crate::conditions::{DeviceCondition, Kind};
use crate::protocol::FrameClock;
use crate::protocol::time::FrameTime;

/// A device clock further than this from the gateway's (either way) is skewed.
pub const CLOCK_SKEW_MS: i64 = 2_000;
/// How long (of receipt time) the skew must hold before it is reported.
pub const SKEW_SUSTAIN_MS: i64 = 2_000;
/// The batches whose freshest sample judges a device's clock: those received this recently.
pub const SKEW_WINDOW_MS: i64 = 10_000;
/// At most this many batches in the skew window.
pub const SKEW_WINDOW_BATCHES: usize = 64;
/// The fraction of full scale at which a reading counts as clipped (as the analysis counts it).
pub const CLIP_FRACTION: f64 = 0.98;
/// Sample time at full scale, unbroken on one axis, after which a node is stuck.
pub const STUCK_MS: f64 = 2_000.0;
/// Sample time below full scale after which a stuck node has recovered.
pub const UNSTUCK_MS: f64 = 1_000.0;
/// Devices tracked at most.
pub const MAX_DEVICES: usize = 1024;
/// Nodes tracked per device at most.
pub const MAX_NODES: usize = 8;

/// A device's sensor ranges, from its configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FullScale {
    pub acc_g: f64,
    pub gyro_dps: f64,
}

impl Default for FullScale {
    /// The seed nodes' ranges: ±16 g, ±2000 °/s.
    fn default() -> Self {
        FullScale {
            acc_g: 16.0,
            gyro_dps: 2000.0,
        }
    }
}

/// One node of a device as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSeen {
    pub sensor_id: u32,
    /// Where it is worn, by the device's map (`null` for an unmapped id).
    pub position: Option<BodyPosition>,
    /// Its sampling rate: the compact form's `rate_hz`, or measured from a seed batch's
    /// frame stamps; `null` when neither tells.
    pub rate_hz: Option<f64>,
    /// Samples stored from it since the gateway started.
    pub samples: u64,
    /// Receipt time of its last batch, unix ms.
    pub last_seen_ms: i64,
    /// Stuck at full scale now (see the module doc).
    pub saturated: bool,
}

/// What the console's `device_list` shows of one device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceFigures {
    pub nodes: Vec<NodeSeen>,
    /// Stored batches of the local date `day`.
    pub batches_today: u64,
    /// Swings found on the local date `day`.
    pub swings_today: u64,
    /// The court's local date the counts are of.
    pub day: String,
    /// The device clock's lead over the gateway's (ms, negative: behind), by its freshest
    /// recent batch; `null` when no recent batch had readable stamps.
    pub clock_offset_ms: Option<i64>,
}

/// The watch over every device.
#[derive(Debug)]
pub struct DeviceWatch {
    frames: FrameClock,
    devices: BTreeMap<String, Tracked>,
}

#[derive(Debug, Default)]
struct Tracked {
    nodes: BTreeMap<u32, Node>,
    today: Today,
    clock: ClockTrack,
}

#[derive(Debug, Default)]
struct Today {
    day: Option<NaiveDate>,
    batches: u64,
    swings: u64,
}

#[derive(Debug)]
struct Node {
    seen: NodeSeen,
    stuck: StuckTrack,
}

impl DeviceWatch {
    /// A watch that counts days in `frames`' timezone.
    pub fn new(frames: FrameClock) -> DeviceWatch {
        DeviceWatch {
            frames,
            devices: BTreeMap::new(),
        }
    }

    fn tracked(&mut self, device: &str) -> Option<&mut Tracked> {
        if !self.devices.contains_key(device) && self.devices.len() >= MAX_DEVICES {
            return None;
        }
        Some(self.devices.entry(device.to_owned()).or_default())
    }

    /// A batch now stored, received at `received_ms`. `position_of` maps the device's sensor
    /// ids; `full_scale` is its configured ranges.
    pub fn handle_batch(
        &mut self,
        batch: &SensorBatch,
        position_of: impl Fn(u32) -> Option<BodyPosition>,
        full_scale: FullScale,
        received_ms: i64,
    ) {
        let frames = self.frames;
        let day = local_date(&frames, received_ms);
        let Some(tracked) = self.tracked(&batch.device) else {
            return;
        };
        tracked.today.count(day, 1, 0);
        let (nodes, newest) = node_readings(&frames, &batch.form, received_ms);
        if let Some(newest) = newest {
            tracked
                .clock
                .handle(received_ms, newest.saturating_sub(received_ms));
        }
        for (sensor_id, readings) in nodes {
            let nodes = &mut tracked.nodes;
            if !nodes.contains_key(&sensor_id) && nodes.len() >= MAX_NODES {
                continue;
            }
            let node = nodes.entry(sensor_id).or_insert_with(|| Node {
                seen: NodeSeen {
                    sensor_id,
                    position: None,
                    rate_hz: None,
                    samples: 0,
                    last_seen_ms: received_ms,
                    saturated: false,
                },
                stuck: StuckTrack::default(),
            });
            node.seen.position = position_of(sensor_id);
            node.seen.samples += readings.samples.len() as u64;
            node.seen.last_seen_ms = received_ms;
            if let Some(rate) = readings.rate_hz {
                node.seen.rate_hz = Some(rate);
            }
            for sample in &readings.samples {
                node.stuck.handle(sample, full_scale);
            }
            node.seen.saturated = node.stuck.stuck.is_some();
        }
    }

    /// A swing of `device` found (journaled) at `now_ms`.
    pub fn handle_swing(&mut self, device: &str, now_ms: i64) {
        let day = local_date(&self.frames, now_ms);
        if let Some(tracked) = self.tracked(device) {
            tracked.today.count(day, 0, 1);
        }
    }

    /// `device`'s figures as of `now_ms` (a count of a past date reads as 0 today); `None` for
    /// a device nothing was seen of.
    pub fn figures(&self, device: &str, now_ms: i64) -> Option<DeviceFigures> {
        let tracked = self.devices.get(device)?;
        let day = local_date(&self.frames, now_ms);
        let (batches, swings) = if tracked.today.day == day {
            (tracked.today.batches, tracked.today.swings)
        } else {
            (0, 0)
        };
        Some(DeviceFigures {
            nodes: tracked.nodes.values().map(|n| n.seen.clone()).collect(),
            batches_today: batches,
            swings_today: swings,
            day: day.map(|d| d.to_string()).unwrap_or_default(),
            clock_offset_ms: tracked.clock.estimate,
        })
    }

    /// The device conditions active now: each skewed clock, each stuck node.
    pub fn conditions(&self) -> Vec<DeviceCondition> {
        let mut out = Vec::new();
        for (device, tracked) in &self.devices {
            if let Some(lead) = tracked.clock.skewed() {
                let (secs, way) = (lead.unsigned_abs() as f64 / 1000.0, ahead_or_behind(lead));
                out.push(DeviceCondition {
                    kind: Kind::ClockSkew,
                    device: device.clone(),
                    node: None,
                    message: format!(
                        "device {device}'s clock is {secs:.1} s {way} the gateway's (more than {} s): send it `sync`",
                        CLOCK_SKEW_MS / 1000
                    ),
                });
            }
            for (id, node) in &tracked.nodes {
                let Some(axis) = node.stuck.stuck else {
                    continue;
                };
                let position = node.seen.position.map_or("unmapped", BodyPosition::as_str);
                out.push(DeviceCondition {
                    kind: Kind::SensorSaturation,
                    device: device.clone(),
                    node: Some(*id),
                    message: format!(
                        "device {device}: node {id} ({position}) is stuck at full scale on {}",
                        AXES[axis]
                    ),
                });
            }
        }
        out
    }
}

fn ahead_or_behind(lead: i64) -> &'static str {
    if lead > 0 { "ahead of" } else { "behind" }
}

impl Today {
    fn count(&mut self, day: Option<NaiveDate>, batches: u64, swings: u64) {
        if self.day != day {
            *self = Today {
                day,
                ..Today::default()
            };
        }
        self.batches += batches;
        self.swings += swings;
    }
}

/// The court's local date of an instant.
fn local_date(frames: &FrameClock, unix_ms: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.with_timezone(&frames.timezone()).date_naive())
}

/// A seed frame's stamp in unix ms, as the device's clock says it, however far off.
fn device_time(frames: &FrameClock, raw: i64, received_ms: i64) -> Option<i64> {
    match FrameTime::classify(raw) {
        FrameTime::UnixMs(ms) => Some(ms),
        FrameTime::TimeOfDay { ms_of_day } => frames.anchor_time_of_day(ms_of_day, received_ms),
        FrameTime::Unknown => None,
    }
}

/// What the skew is judged on: recent batches' leads.
#[derive(Debug, Default)]
struct ClockTrack {
    /// `(received_ms, lead_ms)` of the batches of the last [`SKEW_WINDOW_MS`].
    window: VecDeque<(i64, i64)>,
    /// The freshest lead in the window.
    estimate: Option<i64>,
    /// Receipt time since which the estimate has been out of bounds.
    out_since: Option<i64>,
    /// The latest receipt time seen.
    last_ms: i64,
}

impl ClockTrack {
    fn handle(&mut self, received_ms: i64, lead: i64) {
        self.window.push_back((received_ms, lead));
        while self.window.len() > SKEW_WINDOW_BATCHES
            || self
                .window
                .front()
                .is_some_and(|(t, _)| received_ms - t > SKEW_WINDOW_MS)
        {
            self.window.pop_front();
        }
        self.estimate = self.window.iter().map(|(_, lead)| *lead).max();
        self.last_ms = self.last_ms.max(received_ms);
        let out = self.estimate.is_some_and(|e| e.abs() > CLOCK_SKEW_MS);
        self.out_since = if out {
            Some(self.out_since.unwrap_or(received_ms))
        } else {
            None
        };
    }

    /// The lead, when the clock is skewed (out of bounds for long enough).
    fn skewed(&self) -> Option<i64> {
        let since = self.out_since?;
        (self.last_ms - since >= SKEW_SUSTAIN_MS)
            .then_some(self.estimate)
            .flatten()
    }
}

/// The axes a stuck node is named by.
const AXES: [&str; 6] = ["acc x", "acc y", "acc z", "gyro x", "gyro y", "gyro z"];

/// One reading of a node, on the device's time line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    t_ms: f64,
    acc: [f32; 3],
    gyro: [f32; 3],
}

/// A batch's readings of one node.
#[derive(Debug, Default)]
struct NodeReadings {
    rate_hz: Option<f64>,
    samples: Vec<Reading>,
}

/// The batch's readings per sensor id, and the device's time of its newest sample (`None` when
/// no stamp is of a known clock). Seed frames without a sensor id are left out of the readings
/// (nothing says which node they are); frames without a readable stamp take the receipt time,
/// so a run at full scale is still measured across batches. Each stamp is read once (anchoring
/// a V3.3 time of day in the court's timezone is the costly part).
fn node_readings(
    frames: &FrameClock,
    form: &BatchForm,
    received_ms: i64,
) -> (BTreeMap<u32, NodeReadings>, Option<i64>) {
    let mut out: BTreeMap<u32, NodeReadings> = BTreeMap::new();
    let mut newest = None;
    match form {
        BatchForm::Compact(c) => {
            let usable = c.rate_hz.is_finite() && c.rate_hz > 0.0 && matches!(c.channels, 6 | 9);
            let entry = out.entry(c.sensor_id).or_default();
            if !usable {
                return (out, None);
            }
            if !c.is_empty() && matches!(FrameTime::classify(c.t0), FrameTime::UnixMs(_)) {
                let span = (c.len() - 1) as f64 * 1000.0 / c.rate_hz;
                newest = Some(c.t0.saturating_add(span.round() as i64));
            }
            entry.rate_hz = Some(c.rate_hz);
            let dt = 1000.0 / c.rate_hz;
            entry.samples = (0..c.len())
                .map(|i| {
                    let r = c.row(i);
                    Reading {
                        t_ms: c.t0 as f64 + i as f64 * dt,
                        acc: [r[0], r[1], r[2]],
                        gyro: [r[3], r[4], r[5]],
                    }
                })
                .collect();
        }
        BatchForm::Seed(s) => {
            for f in &s.frames {
                let stamped = f
                    .timestamp
                    .and_then(|raw| device_time(frames, raw, received_ms));
                newest = newest.max(stamped);
                let Some(id) = f.sensor_id else { continue };
                let t_ms = stamped.unwrap_or(received_ms);
                out.entry(id).or_default().samples.push(Reading {
                    t_ms: t_ms as f64,
                    acc: f.acc,
                    gyro: f.gyro,
                });
            }
            for readings in out.values_mut() {
                readings.rate_hz = measured_rate(&readings.samples);
            }
        }
    }
    (out, newest)
}

/// A node's rate from its frames' stamps: (n − 1) over their span, when they span time.
fn measured_rate(samples: &[Reading]) -> Option<f64> {
    let first = samples.first()?.t_ms;
    let last = samples.last()?.t_ms;
    let span = last - first;
    (samples.len() >= 2 && span > 0.0).then(|| {
        let rate = (samples.len() - 1) as f64 * 1000.0 / span;
        (rate * 10.0).round() / 10.0
    })
}

/// Per axis, how long the node has read at (or below) full scale.
#[derive(Debug, Default)]
struct StuckTrack {
    /// Sample time since which each axis has read at full scale, unbroken.
    at_full_since: [Option<f64>; 6],
    /// Sample time since which each axis has read below full scale.
    below_since: [Option<f64>; 6],
    /// The axis the node is stuck on, if it is.
    stuck: Option<usize>,
}

impl StuckTrack {
    fn handle(&mut self, r: &Reading, fs: FullScale) {
        let values = [
            r.acc[0], r.acc[1], r.acc[2], r.gyro[0], r.gyro[1], r.gyro[2],
        ];
        for (axis, value) in values.iter().enumerate() {
            let limit = if axis < 3 { fs.acc_g } else { fs.gyro_dps } * CLIP_FRACTION;
            // A non-finite reading is no reading at all on this axis.
            if !value.is_finite() {
                continue;
            }
            if f64::from(value.abs()) >= limit {
                self.below_since[axis] = None;
                let since = *self.at_full_since[axis].get_or_insert(r.t_ms);
                if r.t_ms - since >= STUCK_MS && self.stuck.is_none() {
                    self.stuck = Some(axis);
                }
            } else {
                self.at_full_since[axis] = None;
                let since = *self.below_since[axis].get_or_insert(r.t_ms);
                if self.stuck == Some(axis) && r.t_ms - since >= UNSTUCK_MS {
                    // Another axis may be stuck too: it takes over at once.
                    self.stuck = (0..6)
                        .find(|a| self.at_full_since[*a].is_some_and(|s| r.t_ms - s >= STUCK_MS));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::batch::{CompactBatch, SeedBatch, SeedFrame};

    const T0: i64 = 1_764_900_000_000; // 2025-12-05T02:00:00Z, 10:00 in Shanghai

    fn watch() -> DeviceWatch {
        DeviceWatch::new(FrameClock::new(chrono_tz::Asia::Shanghai))
    }

    fn compact(sensor_id: u32, t0: i64, rate_hz: f64, rows: &[[f32; 6]]) -> SensorBatch {
        SensorBatch {
            device: "racket-01".into(),
            session_id: "s1".into(),
            seq: None,
            form: BatchForm::Compact(CompactBatch {
                sensor_id,
                t0,
                rate_hz,
                channels: 6,
                samples: rows.iter().flatten().copied().collect(),
            }),
        }
    }

    const REST: [f32; 6] = [0.0, 0.0, 1.0, 0.5, -0.3, 0.1];
    const PINNED: [f32; 6] = [0.0, 0.0, 1.0, 0.5, 2000.0, 0.1];

    /// Feeds `seconds` of 100 Hz batches (0.1 s each, received as their last sample is taken
    /// plus `lag_ms`) of `row`, starting at `start`; returns the next start.
    fn feed(w: &mut DeviceWatch, start: i64, seconds: i64, row: [f32; 6], lag_ms: i64) -> i64 {
        let mut t = start;
        for _ in 0..seconds * 10 {
            let b = compact(4, t, 100.0, &[row; 10]);
            w.handle_batch(
                &b,
                BodyPosition::default_for_sensor_id,
                FullScale::default(),
                t + 90 + lag_ms,
            );
            t += 100;
        }
        t
    }

    fn kinds(w: &DeviceWatch) -> Vec<(Kind, Option<u32>)> {
        w.conditions().iter().map(|c| (c.kind, c.node)).collect()
    }

    #[test]
    fn a_node_pinned_at_full_scale_for_two_seconds_is_stuck_and_recovers_after_one_below() {
        let mut w = watch();
        let t = feed(&mut w, T0, 1, PINNED, 20);
        assert!(
            kinds(&w).is_empty(),
            "one second at full scale is not stuck yet"
        );
        let t = feed(&mut w, t, 2, PINNED, 20);
        assert_eq!(kinds(&w), [(Kind::SensorSaturation, Some(4))]);
        let c = &w.conditions()[0];
        assert_eq!(c.device, "racket-01");
        assert!(
            c.message.contains("node 4 (racket)") && c.message.contains("gyro y"),
            "{}",
            c.message
        );
        let t = feed(&mut w, t, 0, REST, 20);
        let b = compact(4, t, 100.0, &[REST; 50]);
        w.handle_batch(
            &b,
            BodyPosition::default_for_sensor_id,
            FullScale::default(),
            t + 510,
        );
        assert!(
            !kinds(&w).is_empty(),
            "half a second below is not recovery yet"
        );
        feed(&mut w, t + 500, 1, REST, 20);
        assert!(kinds(&w).is_empty());
    }

    #[test]
    fn a_swings_clipped_peak_is_not_stuck() {
        let mut w = watch();
        let mut t = T0;
        for _ in 0..20 {
            // 50 ms at full scale per swing, then a second of play.
            let mut rows = vec![PINNED; 5];
            rows.extend([REST; 95]);
            let b = compact(4, t, 100.0, &rows);
            w.handle_batch(
                &b,
                BodyPosition::default_for_sensor_id,
                FullScale::default(),
                t + 1000,
            );
            t += 1000;
        }
        assert!(kinds(&w).is_empty());
        let figures = w.figures("racket-01", t).unwrap();
        assert_eq!(figures.nodes.len(), 1);
        assert!(!figures.nodes[0].saturated);
        assert_eq!(figures.nodes[0].rate_hz, Some(100.0));
        assert_eq!(figures.nodes[0].samples, 2000);
    }

    #[test]
    fn a_clock_ahead_is_skewed_once_sustained_and_clears_when_back() {
        let mut w = watch();
        // Received 5 s before the device says its samples were taken: 5 s ahead.
        let t = feed(&mut w, T0, 1, REST, -5_000);
        assert!(kinds(&w).is_empty(), "not sustained yet");
        let t = feed(&mut w, t, 2, REST, -5_000);
        assert_eq!(kinds(&w), [(Kind::ClockSkew, None)]);
        assert!(
            w.conditions()[0].message.contains("ahead of"),
            "{}",
            w.conditions()[0].message
        );
        assert!(w.figures("racket-01", t).unwrap().clock_offset_ms.unwrap() > 4_900);
        // Synced again: the readings from ahead leave the window within its 10 s.
        let t = feed(&mut w, t, 1, REST, 20);
        assert_eq!(kinds(&w), [(Kind::ClockSkew, None)], "still in the window");
        feed(&mut w, t, 10, REST, 20);
        assert!(kinds(&w).is_empty());
    }

    #[test]
    fn a_resent_backlog_beside_fresh_data_is_no_skew_but_a_clock_behind_is() {
        let mut w = watch();
        let mut t = T0;
        for _ in 0..50 {
            // A fresh batch and one from a minute ago, interleaved.
            let fresh = compact(4, t, 100.0, &[REST; 10]);
            let old = compact(4, t - 60_000, 100.0, &[REST; 10]);
            let fs = FullScale::default();
            w.handle_batch(&fresh, BodyPosition::default_for_sensor_id, fs, t + 100);
            w.handle_batch(&old, BodyPosition::default_for_sensor_id, fs, t + 110);
            t += 100;
        }
        assert!(kinds(&w).is_empty());
        feed(&mut w, t + 1_000_000, 3, REST, 30_000);
        let c = w.conditions();
        assert_eq!(c.len(), 1);
        assert!(c[0].message.contains("30.0 s behind"), "{}", c[0].message);
    }

    #[test]
    fn v3_3_time_of_day_stamps_are_read_without_the_plausibility_cut() {
        let mut w = watch();
        let frames = FrameClock::new(chrono_tz::Asia::Shanghai);
        for k in 0..40 {
            let now = T0 + k * 100;
            // The hub's clock is 20 minutes behind: beyond the 15 min the analysis believes.
            let stamp = frames.time_of_day_stamp(now - 20 * 60_000).unwrap();
            let batch = SensorBatch {
                device: "hub-1".into(),
                session_id: "1".into(),
                seq: None,
                form: BatchForm::Seed(SeedBatch {
                    sensor_type: None,
                    timestamp: None,
                    frames: (0..5)
                        .map(|i| SeedFrame {
                            sensor_id: Some(1 + i % 2),
                            timestamp: Some(stamp + i64::from(i) * 10),
                            acc: [0.0, 0.0, 1.0],
                            gyro: [0.0; 3],
                            angle: None,
                        })
                        .collect(),
                }),
            };
            w.handle_batch(
                &batch,
                BodyPosition::default_for_sensor_id,
                FullScale::default(),
                now,
            );
        }
        let c = w.conditions();
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].kind, c[0].device.as_str()),
            (Kind::ClockSkew, "hub-1")
        );
        let f = w.figures("hub-1", T0 + 4000).unwrap();
        let ids: Vec<_> = f.nodes.iter().map(|n| (n.sensor_id, n.position)).collect();
        assert_eq!(
            ids,
            [
                (1, Some(BodyPosition::Waist)),
                (2, Some(BodyPosition::Shoulder))
            ]
        );
        // Frames 0, 2, 4 of node 1 at +0, +20, +40 ms: 50 Hz.
        assert_eq!(f.nodes[0].rate_hz, Some(50.0));
    }

    #[test]
    fn today_counts_start_again_on_the_courts_next_local_date() {
        let mut w = watch();
        // 23:59:59 in Shanghai is 15:59:59Z.
        let before_midnight = 1_764_950_399_000;
        let b = compact(4, before_midnight - 100, 100.0, &[REST; 10]);
        let fs = FullScale::default();
        w.handle_batch(&b, BodyPosition::default_for_sensor_id, fs, before_midnight);
        w.handle_swing("racket-01", before_midnight);
        w.handle_swing("racket-01", before_midnight);
        let f = w.figures("racket-01", before_midnight).unwrap();
        assert_eq!(
            (f.batches_today, f.swings_today, f.day.as_str()),
            (1, 2, "2025-12-05")
        );
        let after = before_midnight + 2_000;
        assert_eq!(w.figures("racket-01", after).unwrap().batches_today, 0);
        w.handle_swing("racket-01", after);
        let f = w.figures("racket-01", after).unwrap();
        assert_eq!(
            (f.batches_today, f.swings_today, f.day.as_str()),
            (0, 1, "2025-12-06")
        );
        assert!(w.figures("other", after).is_none());
    }

    proptest! {
        /// Whatever batches come, the watch stays bounded and never panics.
        #[test]
        fn the_watch_stays_bounded(
            batches in prop::collection::vec((0u32..40, -1e6f32..1e6, 0.0f64..2000.0, -100_000i64..100_000), 1..200),
        ) {
            let mut w = watch();
            for (i, (id, value, rate, lag)) in batches.iter().enumerate() {
                let t = T0 + i as i64 * 100;
                let b = compact(*id, t, *rate, &[[*value; 6]; 4]);
                w.handle_batch(&b, BodyPosition::default_for_sensor_id, FullScale::default(), t + lag);
            }
            let f = w.figures("racket-01", T0).unwrap();
            prop_assert!(f.nodes.len() <= MAX_NODES);
            prop_assert!(w.devices["racket-01"].clock.window.len() <= SKEW_WINDOW_BATCHES);
            prop_assert!(w.conditions().len() <= MAX_NODES + 1);
        }
    }
}
