//! The court's analysis, sans IO: which analyser each stored batch goes to, rallies across the
//! court's rackets, and each session's summary.
//!
//! The daemon's analysis pipeline (`shuttlegate::pipeline`) feeds it live, `replay` feeds it from
//! the journal, and the resume after a restart warms it from the journal; all three get the same
//! swings from the same batches because this is the one routing they share.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{
    AnalysisEvent, AnalysisSettings, DeviceAnalyser, DeviceProfile, DeviceStats, RallyEvent,
    RallyTracker, SessionSummary, Swing, samples_of,
};
use crate::batch::{BodyPosition, SensorBatch};
use crate::protocol::{FrameClock, FrameTime};

/// Sessions analysed at once per device; a device that opens more has its oldest summarised
/// and dropped (its raw data stays in the journal for `replay`).
pub const SESSIONS_PER_DEVICE: usize = 4;

/// Hub clocks remembered at once; past this (sessions never finished) they are forgotten and
/// learnt again from the next batch.
const MAX_HUB_CLOCKS: usize = 4096;

/// A session's frame clock for the analysis. A V3.3 hub stamps frames with its own time of
/// day; when that clock is off from the gateway's by more than the protocol believes (15 min:
/// a hub on a court LAN without a time server, or never synced), `FrameClock` has no unix time
/// for its frames. Storage keeps them as sent; the analysis must not drop them — their
/// spacing is exact, only the clock's offset is unknown — so the offset from the hub's clock
/// to the gateway's is taken from the first such batch's receipt time and kept for the
/// session: every later frame keeps its spacing, and a swing comes out at gateway time
/// within the network's delay. Before this, such a hub gave no swing at all.
///
/// Stamps that are not a time of day (milliseconds since boot beyond 66 h) are the hub's
/// clock as they are. Milliseconds since boot under 66 h can pass for a time of day and
/// are then misread at the seconds that do not exist (docs/analysis.md, "Limits").
#[derive(Debug, Clone, Copy, Default)]
struct HubClock {
    /// Gateway ms minus hub ms, learnt from the first frame that needed it.
    offset_ms: Option<f64>,
}

impl HubClock {
    fn unix_ms_of(&mut self, frames: &FrameClock, raw: i64, received_ms: i64) -> Option<f64> {
        if let Some(t) = frames.to_unix_ms(raw, received_ms) {
            return Some(t as f64);
        }
        let hub_ms = match FrameTime::classify(raw) {
            FrameTime::TimeOfDay { ms_of_day } => {
                frames.anchor_time_of_day(ms_of_day, received_ms)? as f64
            }
            FrameTime::Unknown => raw as f64,
            FrameTime::UnixMs(ms) => ms as f64,
        };
        let offset = *self.offset_ms.get_or_insert(received_ms as f64 - hub_ms);
        Some(hub_ms + offset)
    }
}

/// What the court's analysis produced.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisOutput {
    Swing(Box<Swing>),
    Summary(Box<SessionSummary>),
    Rally(RallyEvent),
}

/// One configured device as the analysis sees it.
#[derive(Debug, Clone)]
pub struct CourtDevice {
    /// Who wears it and how (its code is `profile.device`).
    pub profile: DeviceProfile,
    /// Node id → where the node is worn.
    pub sensors: BTreeMap<u32, BodyPosition>,
}

/// The court's analysis, sans IO: routes each stored batch to its device's analyser for its
/// session, joins every racket's impacts into rallies, and summarises sessions.
#[derive(Debug)]
pub struct CourtAnalysis {
    settings: AnalysisSettings,
    devices: HashMap<String, CourtDevice>,
    frames: FrameClock,
    /// Open analysers per device, oldest first.
    sessions: HashMap<String, VecDeque<DeviceAnalyser>>,
    /// Per device and session: hub clock → gateway clock, for frames whose stamps the
    /// gateway does not believe (see [`HubClock`]).
    hub_clocks: HashMap<(String, String), HubClock>,
    rallies: RallyTracker,
    /// What the device analysers counted since the last [`CourtAnalysis::take_stats`].
    counted: DeviceStats,
}

impl CourtAnalysis {
    /// The analysis of a court with these devices; `frames` reads V3.3 time-of-day stamps in
    /// the court's timezone.
    pub fn new(
        settings: AnalysisSettings,
        devices: impl IntoIterator<Item = CourtDevice>,
        frames: FrameClock,
    ) -> CourtAnalysis {
        let devices = devices
            .into_iter()
            .map(|d| {
                for warning in d.profile.warnings() {
                    log::warn!("device `{}`: {warning}", d.profile.device);
                }
                (d.profile.device.clone(), d)
            })
            .collect();
        CourtAnalysis {
            rallies: RallyTracker::new(settings.rally_max_gap_ms, settings.reorder_window_ms * 2.0),
            settings,
            devices,
            frames,
            sessions: HashMap::new(),
            hub_clocks: HashMap::new(),
            counted: DeviceStats::default(),
        }
    }

    /// A configuration reload: devices' profiles and node maps as now configured. Node maps
    /// apply from the next batch; sessions already open keep the profile they started with,
    /// and the next session of a changed device uses the new one.
    pub fn set_devices(&mut self, devices: impl IntoIterator<Item = CourtDevice>) {
        self.devices = devices
            .into_iter()
            .map(|d| (d.profile.device.clone(), d))
            .collect();
    }

    fn analyser(
        &mut self,
        device: &str,
        session_id: &str,
    ) -> Option<(&mut DeviceAnalyser, Option<SessionSummary>)> {
        let entry = self.devices.get(device)?;
        let open = self.sessions.entry(device.to_owned()).or_default();
        let mut evicted = None;
        if !open.iter().any(|a| a.session_id() == session_id) {
            if open.len() >= SESSIONS_PER_DEVICE {
                evicted = open.pop_front().map(|mut old| {
                    let before = old.stats();
                    let summary = old.finish();
                    self.counted += old.stats() - before;
                    summary
                });
            }
            open.push_back(DeviceAnalyser::new(
                entry.profile.clone(),
                self.settings.clone(),
                session_id,
            ));
        }
        let analyser = open.iter_mut().find(|a| a.session_id() == session_id)?;
        Some((analyser, evicted))
    }

    /// A stored batch, received at `received_ms` (the anchor for V3.3 time-of-day stamps).
    pub fn handle_batch(&mut self, batch: &SensorBatch, received_ms: i64) -> Vec<AnalysisOutput> {
        let Some(entry) = self.devices.get(&batch.device) else {
            return Vec::new();
        };
        let sensors = entry.sensors.clone();
        let frames = self.frames;
        let key = (batch.device.clone(), batch.session_id.clone());
        if !self.hub_clocks.contains_key(&key) && self.hub_clocks.len() >= MAX_HUB_CLOCKS {
            self.hub_clocks.clear();
        }
        let hub_clock = self.hub_clocks.entry(key).or_default();
        let samples = samples_of(
            batch,
            |id| sensors.get(&id).copied(),
            |raw| hub_clock.unix_ms_of(&frames, raw, received_ms),
        );
        let mut out = Vec::new();
        let Some((analyser, evicted)) = self.analyser(&batch.device, &batch.session_id) else {
            return out;
        };
        let before = analyser.stats();
        analyser.handle_samples(&samples);
        let mut swings = Vec::new();
        while let Some(AnalysisEvent::Swing(swing)) = analyser.poll_event() {
            swings.push(swing);
        }
        let counted = analyser.stats() - before;
        self.counted += counted;
        if let Some(summary) = evicted {
            log::warn!(
                "device `{}`: more than {SESSIONS_PER_DEVICE} sessions open at once; summarised `{}` early",
                summary.device,
                summary.session_id
            );
            out.push(AnalysisOutput::Summary(Box::new(summary)));
        }
        for swing in swings {
            if swing.impact {
                self.rallies.handle_impact(&swing.device, swing.t_impact);
            }
            out.push(AnalysisOutput::Swing(Box::new(swing)));
        }
        if let Some(last) = samples.iter().map(|s| s.t_ms).reduce(f64::max) {
            self.rallies.handle_time(last);
        }
        while let Some(event) = self.rallies.poll_event() {
            out.push(AnalysisOutput::Rally(event));
        }
        out
    }

    /// What the court's device analysers counted (samples taken in and set aside, bursts set
    /// aside and why) since the last call: for `/metrics`, which adds them up. Taken rather
    /// than read because sessions' analysers come and go while the totals must only grow.
    pub fn take_stats(&mut self) -> DeviceStats {
        std::mem::take(&mut self.counted)
    }

    /// The session's upload is complete: its last swings and its summary.
    pub fn finish(&mut self, device: &str, session_id: &str) -> Vec<AnalysisOutput> {
        let mut out = Vec::new();
        let Some((analyser, evicted)) = self.analyser(device, session_id) else {
            return out;
        };
        let before = analyser.stats();
        let mut summary = analyser.finish();
        let mut swings = Vec::new();
        while let Some(AnalysisEvent::Swing(swing)) = analyser.poll_event() {
            swings.push(swing);
        }
        let counted = analyser.stats() - before;
        self.counted += counted;
        if let Some(open) = self.sessions.get_mut(device) {
            open.retain(|a| a.session_id() != session_id);
        }
        self.hub_clocks
            .remove(&(device.to_owned(), session_id.to_owned()));
        out.extend(evicted.map(|s| AnalysisOutput::Summary(Box::new(s))));
        for swing in swings {
            if swing.impact {
                self.rallies.handle_impact(&swing.device, swing.t_impact);
            }
            out.push(AnalysisOutput::Swing(Box::new(swing)));
        }
        summary.analysis_result.rallies = Some(self.rallies.stats().clone());
        out.push(AnalysisOutput::Summary(Box::new(summary)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchForm, CompactBatch};

    /// One second of a racket node (sensor 4) lying still, 100 Hz, from `t0`.
    fn still_second(t0: i64) -> SensorBatch {
        SensorBatch {
            device: "racket-01".into(),
            session_id: "s1".into(),
            seq: None,
            form: BatchForm::Compact(CompactBatch {
                sensor_id: 4,
                t0,
                rate_hz: 100.0,
                channels: 6,
                samples: [0.0, 0.0, 1.0, 0.5, -0.3, 0.1].repeat(100),
            }),
        }
    }

    #[test]
    fn the_court_hands_over_what_its_analysers_counted_once() {
        let device = CourtDevice {
            profile: DeviceProfile::new("racket-01"),
            sensors: BTreeMap::from([(4, BodyPosition::Racket)]),
        };
        let frames = FrameClock::new(chrono_tz::Asia::Shanghai);
        let mut court = CourtAnalysis::new(AnalysisSettings::default(), [device], frames);
        let t0 = 1_796_558_400_000i64;
        court.handle_batch(&still_second(t0), t0 + 1_000);
        court.handle_batch(&still_second(t0 + 5_000), t0 + 6_000);
        // The first second again, after the analysis has moved past it: set aside, counted.
        court.handle_batch(&still_second(t0), t0 + 6_100);
        let counted = court.take_stats();
        assert_eq!(counted.samples, 300);
        assert_eq!(counted.late + counted.duplicates, 100, "{counted:?}");
        assert_eq!(court.take_stats(), DeviceStats::default(), "taken once");
        court.handle_batch(&still_second(t0 + 6_000), t0 + 7_000);
        court.finish("racket-01", "s1");
        assert_eq!(court.take_stats().samples, 100);
    }

    #[test]
    fn a_hub_clock_hours_off_keeps_its_frames_spacing_on_the_gateways_clock() {
        let frames = FrameClock::new(chrono_tz::Asia::Shanghai);
        // 2026-12-06 12:00:00.000 UTC = 20:00:00.000 in Shanghai; the hub reads 17:30:00.000.
        let received = 1_796_558_400_000i64;
        let mut clock = HubClock::default();
        let first = clock
            .unix_ms_of(&frames, 173_000_000, received)
            .expect("a time");
        let later = clock
            .unix_ms_of(&frames, 173_000_005, received + 40)
            .expect("a time");
        assert_eq!(first, received as f64, "anchored at the first receipt");
        assert_eq!(later - first, 5.0, "the hub's spacing, not the receipts'");
        // A believable stamp is the protocol's own reading.
        let mut synced = HubClock::default();
        assert_eq!(
            synced.unix_ms_of(&frames, 200_000_123, received),
            Some(received as f64 + 123.0)
        );
    }
}
