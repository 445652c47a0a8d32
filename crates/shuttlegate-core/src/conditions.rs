//! The admin console's `system_notification`s as a small state machine: sampled states in,
//! edge-triggered notifications out.
//!
//! Why a state machine: the daemon only ever *samples* the journal's fill, the uplinks' and the
//! tasks' states, and sees devices go online and offline on the court's change stream. Staff
//! want to hear about a change once — "the journal is filling", not the same sentence every two
//! seconds — and, when they open the console, what is wrong *now*. So [`Conditions`] remembers
//! the last state of each thing it watches, answers each new sample or device change with the
//! notifications its edges deserve, and keeps the conditions still active ([`Conditions::active`])
//! for a console that connects later. It reads no clock (`now_ms` comes in) and does no IO.
//!
//! What is edge-triggered, and when a condition ends:
//! - `device_online` / `device_offline`: each change of a device's state (a repeat of the same
//!   state is not news). An offline device is an active condition until it is back online.
//! - `journal_filling` (the journal at [`FILLING_PERCENT`] % of its cap) and `journal_full`
//!   (an append found it at its cap): on the way up only. Filling ends below
//!   [`FILLING_CLEARS_PERCENT`] % (hysteresis: a journal hovering at the threshold would
//!   otherwise notify on every sample); full ends when an append fits again.
//! - `uplink_down` / `uplink_up`: each change of a sink's state; a sink first seen down is
//!   news, one first seen up is not (that is the normal start). Down is an active condition.
//! - `task_restarted`: each increase of a task's restart count (an event, never active).
//! - `clock_unsynced`: the kernel says the gateway's clock is not synchronised (NTP), sampled
//!   ([`Sample::clock_synced`]); active until it says synchronised again, which is told as the
//!   same kind with `cleared: true`. A probe that cannot tell (`None`) changes nothing.
//! - `clock_skew` (a device's clock off the gateway's) and `sensor_saturation` (a node stuck
//!   at full scale): the device conditions active in each sample ([`Sample::devices`], from
//!   [`crate::device_watch`]); each is told when it appears and, with `cleared: true`, when it
//!   is gone. Each is about a device (`device_code`), a stuck node also names its `node`.

use std::collections::BTreeMap;

use serde::Serialize;

/// The journal's fill (of `max_bytes`) at which `journal_filling` is raised.
pub const FILLING_PERCENT: u64 = 80;
/// The fill below which `journal_filling` ends.
pub const FILLING_CLEARS_PERCENT: u64 = 75;

/// How much a notification matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// What a notification is about; the console's pages translate by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DeviceOnline,
    DeviceOffline,
    JournalFilling,
    JournalFull,
    UplinkDown,
    UplinkUp,
    ClockSkew,
    ClockUnsynced,
    SensorSaturation,
    TaskRestarted,
}

/// One `system_notification`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub level: Level,
    pub kind: Kind,
    /// The device it is about, for the device kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_code: Option<String>,
    /// The node (`sensor_id`) it is about, for `sensor_saturation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<u32>,
    /// The condition `kind` names has ended (an `info` notification; absent otherwise).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cleared: bool,
    /// English, for staff; pages in other languages translate by `kind`.
    pub message: String,
    /// When the gateway noticed, unix ms.
    pub ts: i64,
}

impl Notification {
    /// The message as the console receives it: `{"type":"system_notification", …}`.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("type".into(), "system_notification".into());
        }
        value.to_string()
    }
}

/// What the daemon sampled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Bytes of the journal's segments, and its cap.
    pub journal_bytes: u64,
    pub journal_max_bytes: u64,
    /// The last append found the journal at its cap.
    pub journal_full: bool,
    /// Each uplink sink by name, and whether it is up.
    pub uplinks: Vec<(String, bool)>,
    /// Each supervised task by name, and its restarts so far.
    pub restarts: Vec<(String, u64)>,
    /// The kernel's verdict on the gateway's clock; `None` when it cannot tell.
    pub clock_synced: Option<bool>,
    /// The device conditions active now (`clock_skew`, `sensor_saturation`).
    pub devices: Vec<DeviceCondition>,
}

/// A condition of one device (or one of its nodes), active while it is listed in a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCondition {
    /// `ClockSkew` or `SensorSaturation`.
    pub kind: Kind,
    pub device: String,
    /// The node, for a stuck one.
    pub node: Option<u32>,
    /// English, as the notification raising it says it.
    pub message: String,
}

/// How full the journal is, as far as notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Fill {
    #[default]
    Normal,
    Filling,
    Full,
}

/// The watched states, and the notifications of the conditions still active.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    devices: BTreeMap<String, bool>,
    fill: Fill,
    uplinks: BTreeMap<String, bool>,
    restarts: BTreeMap<String, u64>,
    /// The notification that raised each active condition, by what it is about (the device or
    /// sink, and the node).
    active: BTreeMap<(Kind, Option<String>, Option<u32>), Notification>,
}

impl Conditions {
    pub fn new() -> Conditions {
        Conditions::default()
    }

    /// The notifications of the conditions active now (for a console that just connected),
    /// in the order of their kinds, each as it was first raised.
    pub fn active(&self) -> Vec<Notification> {
        self.active.values().cloned().collect()
    }

    /// A device came online or went offline.
    pub fn handle_device(&mut self, device: &str, online: bool, now_ms: i64) -> Vec<Notification> {
        if self.devices.insert(device.to_owned(), online) == Some(online) {
            return Vec::new();
        }
        let key = (Kind::DeviceOffline, Some(device.to_owned()), None);
        if online {
            self.active.remove(&key);
            let message = format!("device {device} is online");
            vec![notice(
                Level::Info,
                Kind::DeviceOnline,
                Some(device),
                message,
                now_ms,
            )]
        } else {
            let message = format!("device {device} went offline");
            let n = notice(
                Level::Warning,
                Kind::DeviceOffline,
                Some(device),
                message,
                now_ms,
            );
            self.active.insert(key, n.clone());
            vec![n]
        }
    }

    /// A new sample of the journal, the uplinks and the tasks.
    pub fn handle_sample(&mut self, sample: &Sample, now_ms: i64) -> Vec<Notification> {
        let mut out = self.journal(sample, now_ms);
        for (name, up) in &sample.uplinks {
            out.extend(self.uplink(name, *up, now_ms));
        }
        out.extend(self.clock(sample.clock_synced, now_ms));
        out.extend(self.devices_conditions(&sample.devices, now_ms));
        for (task, restarts) in &sample.restarts {
            let before = self.restarts.insert(task.clone(), *restarts).unwrap_or(0);
            if *restarts > before {
                let message =
                    format!("task {task} died and was restarted ({restarts} restarts so far)");
                out.push(notice(
                    Level::Warning,
                    Kind::TaskRestarted,
                    None,
                    message,
                    now_ms,
                ));
            }
        }
        out
    }

    fn journal(&mut self, sample: &Sample, now_ms: i64) -> Vec<Notification> {
        let percent = sample
            .journal_bytes
            .saturating_mul(100)
            .checked_div(sample.journal_max_bytes)
            .unwrap_or(0);
        let next = if sample.journal_full {
            Fill::Full
        } else if percent >= FILLING_PERCENT
            || (self.fill != Fill::Normal && percent >= FILLING_CLEARS_PERCENT)
        {
            Fill::Filling
        } else {
            Fill::Normal
        };
        let before = std::mem::replace(&mut self.fill, next);
        if before == next {
            // The same condition goes on: its first notification (`ts`: since when) stays.
            return Vec::new();
        }
        self.active.remove(&(Kind::JournalFull, None, None));
        self.active.remove(&(Kind::JournalFilling, None, None));
        let raised = match next {
            Fill::Normal => return Vec::new(),
            Fill::Filling => notice(
                Level::Warning,
                Kind::JournalFilling,
                None,
                format!("the journal is at {percent} % of its cap (journal.max_bytes)"),
                now_ms,
            ),
            Fill::Full => notice(
                Level::Error,
                Kind::JournalFull,
                None,
                "the journal is full (journal.max_bytes): see journal.when_full".to_owned(),
                now_ms,
            ),
        };
        self.active
            .insert((raised.kind, None, None), raised.clone());
        // Only the way up is news: full going back to filling is the end of an alarm.
        if before == Fill::Full {
            Vec::new()
        } else {
            vec![raised]
        }
    }

    fn uplink(&mut self, name: &str, up: bool, now_ms: i64) -> Vec<Notification> {
        let before = self.uplinks.insert(name.to_owned(), up);
        let key = (Kind::UplinkDown, Some(name.to_owned()), None);
        match (before, up) {
            (Some(true) | None, false) => {
                let message = format!("uplink {name} is down");
                let n = notice(Level::Error, Kind::UplinkDown, None, message, now_ms);
                self.active.insert(key, n.clone());
                vec![n]
            }
            (Some(false), true) => {
                self.active.remove(&key);
                let message = format!("uplink {name} is up again");
                vec![notice(Level::Info, Kind::UplinkUp, None, message, now_ms)]
            }
            _ => Vec::new(),
        }
    }
}

impl Conditions {
    fn clock(&mut self, synced: Option<bool>, now_ms: i64) -> Vec<Notification> {
        let key = (Kind::ClockUnsynced, None, None);
        match (synced, self.active.contains_key(&key)) {
            (Some(false), false) => {
                let message = "the gateway's clock is not synchronised (NTP): device and swing times may drift; check the time service (timedatectl)".to_owned();
                let n = notice(Level::Warning, Kind::ClockUnsynced, None, message, now_ms);
                self.active.insert(key, n.clone());
                vec![n]
            }
            (Some(true), true) => {
                self.active.remove(&key);
                let message = "the gateway's clock is synchronised again".to_owned();
                vec![cleared(Kind::ClockUnsynced, None, None, message, now_ms)]
            }
            _ => Vec::new(),
        }
    }

    /// Raises each device condition new in `now`, clears each active one no longer in it.
    fn devices_conditions(&mut self, now: &[DeviceCondition], now_ms: i64) -> Vec<Notification> {
        let is_device_kind = |k: Kind| matches!(k, Kind::ClockSkew | Kind::SensorSaturation);
        let listed: std::collections::BTreeSet<_> = now
            .iter()
            .map(|c| (c.kind, Some(c.device.clone()), c.node))
            .collect();
        let ended: Vec<_> = self
            .active
            .keys()
            .filter(|key| is_device_kind(key.0) && !listed.contains(*key))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for key in ended {
            self.active.remove(&key);
            let (kind, device, node) = key;
            let device = device.unwrap_or_default();
            let message = match (kind, node) {
                (Kind::SensorSaturation, Some(node)) => {
                    format!("device {device}: node {node} reads below full scale again")
                }
                _ => format!("device {device}'s clock agrees with the gateway's again"),
            };
            out.push(cleared(kind, Some(&device), node, message, now_ms));
        }
        for condition in now.iter().filter(|c| is_device_kind(c.kind)) {
            let key = (
                condition.kind,
                Some(condition.device.clone()),
                condition.node,
            );
            if self.active.contains_key(&key) {
                continue;
            }
            let mut n = notice(
                Level::Warning,
                condition.kind,
                Some(&condition.device),
                condition.message.clone(),
                now_ms,
            );
            n.node = condition.node;
            self.active.insert(key, n.clone());
            out.push(n);
        }
        out
    }
}

/// The end of a condition: `info`, the condition's kind, `cleared: true`.
fn cleared(
    kind: Kind,
    device: Option<&str>,
    node: Option<u32>,
    message: String,
    ts: i64,
) -> Notification {
    Notification {
        node,
        cleared: true,
        ..notice(Level::Info, kind, device, message, ts)
    }
}

fn notice(
    level: Level,
    kind: Kind,
    device: Option<&str>,
    message: String,
    ts: i64,
) -> Notification {
    Notification {
        level,
        kind,
        device_code: device.map(str::to_owned),
        node: None,
        cleared: false,
        message,
        ts,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn journal(bytes: u64, full: bool) -> Sample {
        Sample {
            journal_bytes: bytes,
            journal_max_bytes: 1000,
            journal_full: full,
            ..Sample::default()
        }
    }

    fn kinds(notifications: &[Notification]) -> Vec<Kind> {
        notifications.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn a_device_going_offline_is_told_once_and_stays_active_until_it_is_back() {
        let mut c = Conditions::new();
        assert_eq!(kinds(&c.handle_device("d1", true, 1)), [Kind::DeviceOnline]);
        assert!(c.handle_device("d1", true, 2).is_empty(), "no news");
        let offline = c.handle_device("d1", false, 3);
        assert_eq!(kinds(&offline), [Kind::DeviceOffline]);
        assert_eq!(offline[0].device_code.as_deref(), Some("d1"));
        assert_eq!(offline[0].level, Level::Warning);
        assert_eq!(c.active(), offline);
        assert!(c.handle_device("d1", false, 4).is_empty());
        assert_eq!(kinds(&c.handle_device("d1", true, 5)), [Kind::DeviceOnline]);
        assert!(c.active().is_empty());
    }

    #[test]
    fn the_journal_filling_is_told_on_the_way_up_with_hysteresis() {
        let mut c = Conditions::new();
        assert!(c.handle_sample(&journal(799, false), 1).is_empty());
        assert_eq!(
            kinds(&c.handle_sample(&journal(800, false), 2)),
            [Kind::JournalFilling]
        );
        // Hovering between 75 % and 80 %: still filling, nothing new.
        assert!(c.handle_sample(&journal(760, false), 3).is_empty());
        assert!(c.handle_sample(&journal(810, false), 4).is_empty());
        assert_eq!(c.active()[0].ts, 2, "the condition says since when");
        let full = c.handle_sample(&journal(990, true), 5);
        assert_eq!(kinds(&full), [Kind::JournalFull]);
        assert_eq!(full[0].level, Level::Error);
        assert_eq!(kinds(&c.active()), [Kind::JournalFull]);
        // Room again but still above 80 %: filling again, which is no alarm.
        assert!(c.handle_sample(&journal(900, false), 6).is_empty());
        assert_eq!(kinds(&c.active()), [Kind::JournalFilling]);
        assert!(c.handle_sample(&journal(700, false), 7).is_empty());
        assert!(c.active().is_empty());
    }

    #[test]
    fn an_uplink_is_told_down_and_up_and_a_restart_is_told_once() {
        let mut c = Conditions::new();
        let sample = |up: bool, restarts: u64| Sample {
            uplinks: vec![("mqtt".into(), up)],
            restarts: vec![("uplink-mqtt".into(), restarts)],
            ..journal(0, false)
        };
        assert!(c.handle_sample(&sample(true, 0), 1).is_empty());
        let down = c.handle_sample(&sample(false, 1), 2);
        assert_eq!(kinds(&down), [Kind::UplinkDown, Kind::TaskRestarted]);
        assert_eq!(kinds(&c.active()), [Kind::UplinkDown]);
        assert!(c.handle_sample(&sample(false, 1), 3).is_empty());
        assert_eq!(
            kinds(&c.handle_sample(&sample(true, 1), 4)),
            [Kind::UplinkUp]
        );
        assert!(c.active().is_empty());
    }

    #[test]
    fn a_notification_renders_as_the_console_receives_it() {
        let mut c = Conditions::new();
        let n = &c.handle_device("racket-01", false, 1_700_000_000_000)[0];
        let v: serde_json::Value = serde_json::from_str(&n.to_json()).unwrap();
        assert_eq!(v["type"], "system_notification");
        assert_eq!(v["level"], "warning");
        assert_eq!(v["kind"], "device_offline");
        assert_eq!(v["device_code"], "racket-01");
        assert_eq!(v["ts"], 1_700_000_000_000_i64);
        assert!(v["message"].as_str().unwrap().contains("racket-01"));
    }

    #[test]
    fn an_unsynchronised_clock_is_raised_once_and_cleared_when_synchronised() {
        let mut c = Conditions::new();
        let clock = |synced| Sample {
            clock_synced: synced,
            ..journal(0, false)
        };
        assert!(
            c.handle_sample(&clock(None), 1).is_empty(),
            "unknown is no news"
        );
        assert!(c.handle_sample(&clock(Some(true)), 2).is_empty());
        let raised = c.handle_sample(&clock(Some(false)), 3);
        assert_eq!(kinds(&raised), [Kind::ClockUnsynced]);
        assert_eq!(
            (raised[0].level, raised[0].cleared),
            (Level::Warning, false)
        );
        assert!(c.handle_sample(&clock(Some(false)), 4).is_empty());
        assert!(
            c.handle_sample(&clock(None), 5).is_empty(),
            "unknown keeps it"
        );
        assert_eq!(kinds(&c.active()), [Kind::ClockUnsynced]);
        let ended = c.handle_sample(&clock(Some(true)), 6);
        assert_eq!(kinds(&ended), [Kind::ClockUnsynced]);
        assert_eq!((ended[0].level, ended[0].cleared), (Level::Info, true));
        assert!(c.active().is_empty());
        let v: serde_json::Value = serde_json::from_str(&ended[0].to_json()).unwrap();
        assert_eq!(v["cleared"], true);
        let v: serde_json::Value = serde_json::from_str(&raised[0].to_json()).unwrap();
        assert!(v.get("cleared").is_none(), "{v}");
    }

    #[test]
    fn device_conditions_are_raised_as_they_appear_and_cleared_as_they_go() {
        let mut c = Conditions::new();
        let stuck = DeviceCondition {
            kind: Kind::SensorSaturation,
            device: "racket-01".into(),
            node: Some(4),
            message: "device racket-01: node 4 (racket) is stuck".into(),
        };
        let skew = DeviceCondition {
            kind: Kind::ClockSkew,
            device: "racket-02".into(),
            node: None,
            message: "device racket-02's clock is 5.0 s ahead".into(),
        };
        let with = |devices: Vec<DeviceCondition>| Sample {
            devices,
            ..journal(0, false)
        };
        let raised = c.handle_sample(&with(vec![stuck.clone(), skew.clone()]), 1);
        assert_eq!(kinds(&raised), [Kind::SensorSaturation, Kind::ClockSkew]);
        assert_eq!(raised[0].node, Some(4));
        assert_eq!(raised[0].device_code.as_deref(), Some("racket-01"));
        let v: serde_json::Value = serde_json::from_str(&raised[0].to_json()).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["node"].as_u64()),
            (Some("sensor_saturation"), Some(4))
        );
        assert!(
            c.handle_sample(&with(vec![skew.clone(), stuck.clone()]), 2)
                .is_empty()
        );
        let ended = c.handle_sample(&with(vec![skew]), 3);
        assert_eq!(kinds(&ended), [Kind::SensorSaturation]);
        assert!(ended[0].cleared && ended[0].node == Some(4), "{ended:?}");
        assert_eq!(kinds(&c.active()), [Kind::ClockSkew]);
        let ended = c.handle_sample(&with(vec![]), 4);
        assert_eq!(kinds(&ended), [Kind::ClockSkew]);
        assert!(c.active().is_empty());
    }

    #[derive(Debug, Clone)]
    enum Input {
        Device(u8, bool),
        Sample { fill: u64, full: bool, up: bool },
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            (0u8..3, any::<bool>()).prop_map(|(d, on)| Input::Device(d, on)),
            (0u64..=1000, any::<bool>(), any::<bool>())
                .prop_map(|(fill, full, up)| Input::Sample { fill, full, up }),
        ]
    }

    proptest! {
        /// After any sequence of inputs: a device is an active offline condition exactly when
        /// its last change was offline, the uplink exactly when it was last sampled down, the
        /// journal full exactly when the last sample said so; and an input repeated at once
        /// raises nothing (edge-triggered).
        #[test]
        fn the_active_conditions_follow_the_last_state_and_repeats_are_silent(
            inputs in proptest::collection::vec(input(), 1..60),
        ) {
            let mut c = Conditions::new();
            let mut devices = BTreeMap::new();
            let mut uplink = None;
            let mut full = false;
            for (t, input) in inputs.iter().enumerate() {
                let now = t as i64;
                let (first, again) = match input {
                    Input::Device(d, on) => {
                        let name = format!("d{d}");
                        devices.insert(name.clone(), *on);
                        (c.handle_device(&name, *on, now), c.handle_device(&name, *on, now))
                    }
                    Input::Sample { fill, full: f, up } => {
                        let s = Sample {
                            uplinks: vec![("mqtt".into(), *up)],
                            ..journal(*fill, *f)
                        };
                        uplink = Some(*up);
                        full = *f;
                        (c.handle_sample(&s, now), c.handle_sample(&s, now))
                    }
                };
                prop_assert!(again.is_empty(), "{:?} repeated raised {:?}", input, again);
                prop_assert!(first.len() <= 2);
            }
            let active = c.active();
            let offline: Vec<_> = active
                .iter()
                .filter(|n| n.kind == Kind::DeviceOffline)
                .filter_map(|n| n.device_code.clone())
                .collect();
            let expected: Vec<_> = devices.iter().filter(|(_, on)| !**on).map(|(d, _)| d.clone()).collect();
            prop_assert_eq!(offline, expected);
            let down = active.iter().any(|n| n.kind == Kind::UplinkDown);
            prop_assert_eq!(down, uplink == Some(false));
            prop_assert_eq!(active.iter().any(|n| n.kind == Kind::JournalFull), full);
        }
    }
}
