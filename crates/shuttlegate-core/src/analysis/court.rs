//! The court's analysis, sans IO: which analyser each stored batch goes to, rallies across the
//! court's rackets, and each session's summary.
//!
//! The daemon's analysis pipeline (`shuttlegate::pipeline`) feeds it live, `replay` feeds it from
//! the journal, and the resume after a restart warms it from the journal; all three get the same
//! swings from the same batches because this is the one routing they share.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{
    AnalysisEvent, AnalysisSettings, DeviceAnalyser, DeviceProfile, RallyEvent, RallyTracker,
    SessionSummary, Swing, samples_of,
};
use crate::batch::{BodyPosition, SensorBatch};
use crate::protocol::FrameClock;

/// Sessions analysed at once per device; a device that opens more has its oldest summarised
/// and dropped (its raw data stays in the journal for `replay`).
pub const SESSIONS_PER_DEVICE: usize = 4;

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
    rallies: RallyTracker,
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
                evicted = open.pop_front().map(|mut old| old.finish());
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
        let samples = samples_of(
            batch,
            |id| sensors.get(&id).copied(),
            |raw| frames.to_unix_ms(raw, received_ms).map(|t| t as f64),
        );
        let mut out = Vec::new();
        let Some((analyser, evicted)) = self.analyser(&batch.device, &batch.session_id) else {
            return out;
        };
        analyser.handle_samples(&samples);
        let mut swings = Vec::new();
        while let Some(AnalysisEvent::Swing(swing)) = analyser.poll_event() {
            swings.push(swing);
        }
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

    /// The session's upload is complete: its last swings and its summary.
    pub fn finish(&mut self, device: &str, session_id: &str) -> Vec<AnalysisOutput> {
        let mut out = Vec::new();
        let Some((analyser, evicted)) = self.analyser(device, session_id) else {
            return out;
        };
        let mut summary = analyser.finish();
        let mut swings = Vec::new();
        while let Some(AnalysisEvent::Swing(swing)) = analyser.poll_event() {
            swings.push(swing);
        }
        if let Some(open) = self.sessions.get_mut(device) {
            open.retain(|a| a.session_id() != session_id);
        }
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
