//! The physics tests' readings (`physics/`) through a device's analyser as the daemon feeds it:
//! one node's samples in batches of 40, then the session's end. Apart from `physics/`, which
//! imports nothing from the analyser on purpose.

#![allow(dead_code)]

use shuttlegate_core::analysis::{
    AnalysisEvent, AnalysisSettings, BurstDecision, DeviceAnalyser, DeviceProfile, NodeSample,
    SessionSummary, Swing,
};
use shuttlegate_core::batch::BodyPosition;

use crate::physics::Reading;

/// The readings as one node's samples at `position`.
pub fn node_samples(position: BodyPosition, readings: &[Reading]) -> Vec<NodeSample> {
    readings
        .iter()
        .map(|r| NodeSample {
            position,
            t_ms: r.t_ms,
            acc: r.acc.map(|v| v as f32),
            gyro: r.gyro.map(|v| v as f32),
            angle: None,
        })
        .collect()
}

/// Runs one device's session through the analyser in batches of 40 readings: its swings and
/// its summary.
pub fn analyse(
    profile: DeviceProfile,
    position: BodyPosition,
    readings: &[Reading],
) -> (Vec<Swing>, SessionSummary) {
    let mut a = DeviceAnalyser::new(profile, AnalysisSettings::default(), "s");
    feed(&mut a, position, readings)
}

/// [`analyse`] with the detector's burst log kept: the swings, and what became of each burst.
pub fn analyse_logged(
    profile: DeviceProfile,
    position: BodyPosition,
    readings: &[Reading],
) -> (Vec<Swing>, Vec<BurstDecision>) {
    let mut a = DeviceAnalyser::new(profile, AnalysisSettings::default(), "s");
    a.keep_burst_log();
    let (swings, _) = feed(&mut a, position, readings);
    (swings, a.burst_log().to_vec())
}

/// The readings through `a` in batches of 40, then the session's end: its swings and summary.
fn feed(
    a: &mut DeviceAnalyser,
    position: BodyPosition,
    readings: &[Reading],
) -> (Vec<Swing>, SessionSummary) {
    let mut swings = Vec::new();
    let mut drain = |a: &mut DeviceAnalyser| {
        while let Some(AnalysisEvent::Swing(s)) = a.poll_event() {
            swings.push(s);
        }
    };
    for chunk in node_samples(position, readings).chunks(40) {
        a.handle_samples(chunk);
        drain(a);
    }
    let summary = a.finish();
    drain(a);
    (swings, summary)
}

/// The swing found at each of `contacts`, in order: the first within 60 ms of it (`None`
/// where none was).
pub fn at_contacts<'a>(swings: &'a [Swing], contacts: &[f64]) -> Vec<Option<&'a Swing>> {
    contacts
        .iter()
        .map(|&c| swings.iter().find(|s| (s.t_impact - c).abs() < 60.0))
        .collect()
}
