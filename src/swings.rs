//! The analysis task: stored batches in, swings and session summaries out.
//!
//! Ingest hands each batch here *after* it is durable and answered, through a bounded queue that
//! never blocks ingest: analysis must never delay an ack. The task feeds per-device streaming
//! analysers (`analysis`), journals every swing and summary, and publishes them live.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::analysis::{
    AnalysisEvent, AnalysisSettings, DeviceAnalyser, DeviceProfile, RallyEvent, RallyTracker,
    SessionSummary, Swing, samples_of,
};
use crate::batch::{BodyPosition, SensorBatch};
use crate::config::Settings;
use crate::ingest::Ingest;
use crate::journal::{Document, Journal, RecordBody};
use crate::live::{Live, LiveEvent};
use crate::protocol::FrameClock;
use crate::resume::ResumePoint;

/// Sessions analysed at once per device; a device that opens more has its oldest summarised
/// and dropped (its raw data stays in the journal for `replay`).
const SESSIONS_PER_DEVICE: usize = 4;

/// Work for the analysis task.
#[derive(Debug)]
pub enum AnalysisInput {
    /// A batch now in the journal under `id`, received at `received_ms`.
    Batch {
        id: u64,
        batch: Arc<SensorBatch>,
        received_ms: i64,
    },
    /// The session's upload is complete: flush, summarise, complete it.
    Finish { device: String, session_id: String },
}

/// The ingest side of the analysis queue.
#[derive(Debug, Clone)]
pub struct AnalysisFeed {
    tx: mpsc::Sender<AnalysisInput>,
}

impl AnalysisFeed {
    pub fn new(capacity: usize) -> (AnalysisFeed, mpsc::Receiver<AnalysisInput>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (AnalysisFeed { tx }, rx)
    }

    /// Offers a stored batch; if the analysis is that far behind, it is skipped for the live
    /// view (it stays in the journal, and `replay` re-analyses it) and a warning is logged.
    pub fn batch(&self, id: u64, batch: Arc<SensorBatch>, received_ms: i64) {
        let input = AnalysisInput::Batch {
            id,
            batch,
            received_ms,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(input) {
            log::warn!("analysis is behind: journal record {id} skipped for live analysis");
        }
    }

    /// Asks for a session's summary. Waits for room: a summary must not be skipped.
    pub fn finish(&self, device: &str, session_id: &str) {
        let input = AnalysisInput::Finish {
            device: device.to_owned(),
            session_id: session_id.to_owned(),
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _closed_at_shutdown = tx.send(input).await;
        });
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
struct DeviceEntry {
    profile: DeviceProfile,
    sensors: BTreeMap<u32, BodyPosition>,
}

/// The court's analysis, sans IO: routes each stored batch to its device's analyser for its
/// session, joins every racket's impacts into rallies, and summarises sessions.
#[derive(Debug)]
pub struct CourtAnalysis {
    settings: AnalysisSettings,
    devices: HashMap<String, DeviceEntry>,
    frames: FrameClock,
    /// Open analysers per device, oldest first.
    sessions: HashMap<String, VecDeque<DeviceAnalyser>>,
    rallies: RallyTracker,
}

impl CourtAnalysis {
    pub fn new(settings: &Settings) -> CourtAnalysis {
        let analysis = settings.analysis.clone();
        let devices = settings
            .devices
            .iter()
            .map(|d| {
                let profile = DeviceProfile {
                    device: d.code.clone(),
                    user: d.user.clone(),
                    mount_radius_m: d.mount_radius_m,
                    acc_full_scale_g: d.acc_full_scale_g,
                    gyro_full_scale_dps: d.gyro_full_scale_dps,
                    positions: d.sensors.values().copied().collect(),
                };
                for warning in profile.warnings() {
                    log::warn!("device `{}`: {warning}", d.code);
                }
                let entry = DeviceEntry {
                    profile,
                    sensors: d.sensors.clone(),
                };
                (d.code.clone(), entry)
            })
            .collect();
        CourtAnalysis {
            rallies: RallyTracker::new(analysis.rally_max_gap_ms, analysis.reorder_window_ms * 2.0),
            settings: analysis,
            devices,
            frames: FrameClock::new(settings.gateway.timezone),
            sessions: HashMap::new(),
        }
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

/// The analysis task: first resumes the sessions a restart interrupted (`crate::resume`), then
/// runs until its queue closes or shutdown has drained it.
pub async fn run(
    mut rx: mpsc::Receiver<AnalysisInput>,
    shutdown: CancellationToken,
    ingest: Arc<Ingest>,
    journal: Journal,
    live: Live,
    settings: Settings,
    resume_point: ResumePoint,
) {
    let resumed = crate::resume::resume(&settings, &journal, resume_point).await;
    let mut court = resumed.analysis;
    for output in resumed.missing {
        publish(output, &journal, &live, &ingest).await;
    }
    for (device, session_id) in resumed.summarised {
        ingest.session_analysed(&device, &session_id);
    }
    loop {
        let input = tokio::select! {
            input = rx.recv() => input,
            // Connections have drained by the time this fires in earnest; finish what is queued.
            _ = shutdown.cancelled() => rx.try_recv().ok(),
        };
        let Some(input) = input else { return };
        let outputs = match input {
            AnalysisInput::Batch {
                batch, received_ms, ..
            } => court.handle_batch(&batch, received_ms),
            AnalysisInput::Finish { device, session_id } => court.finish(&device, &session_id),
        };
        for output in outputs {
            publish(output, &journal, &live, &ingest).await;
        }
    }
}

/// Journals a result, then shows it live with its journal id.
async fn publish(output: AnalysisOutput, journal: &Journal, live: &Live, ingest: &Ingest) {
    match output {
        AnalysisOutput::Swing(mut swing) => {
            let doc = document(&swing.device, &swing.session_id, &swing);
            match journal.append(RecordBody::Swing(doc)).await {
                Ok(appended) => swing.id = Some(appended.id),
                Err(e) => log::error!("swing of `{}` not journaled: {e}", swing.device),
            }
            live.publish(LiveEvent::Swing {
                device: swing.device.clone(),
                json: to_json(&swing).into(),
            });
        }
        AnalysisOutput::Summary(summary) => {
            let doc = document(&summary.device, &summary.session_id, &summary);
            if let Err(e) = journal.append(RecordBody::Summary(doc)).await {
                log::error!("summary of `{}` not journaled: {e}", summary.session_id);
            }
            log::info!(
                "session `{}` of `{}` analysed: {} swings",
                summary.session_id,
                summary.device,
                summary.analysis_result.swings
            );
            live.publish(LiveEvent::Summary {
                device: summary.device.clone(),
                json: to_json(&summary).into(),
            });
            ingest.session_analysed(&summary.device, &summary.session_id);
        }
        AnalysisOutput::Rally(event) => log::debug!("rally: {event:?}"),
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    // The analysis types are plain data (numbers, strings, maps with string keys).
    serde_json::to_string(value).unwrap_or_default()
}

fn document(device: &str, session_id: &str, value: &impl serde::Serialize) -> Document {
    Document {
        device: Some(device.to_owned()),
        session_id: Some(session_id.to_owned()),
        json: to_json(value),
    }
}
