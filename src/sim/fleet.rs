//! Many simulated hubs at once, against any gateway: what `simulate` and `demo` run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::client::{self, Acked, Firmware, HubError, HubOptions, HubReport, StillSource};
use crate::batch::BodyPosition;

/// A fleet of hubs of one firmware kind.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub url: String,
    pub devices: usize,
    pub firmware: Firmware,
    pub rate_hz: f64,
    pub duration: Duration,
    /// Device codes are `{code_prefix}{01..}`.
    pub code_prefix: String,
    /// Tokens are `{token_prefix}{01..}`; none for V3.3.
    pub token_prefix: Option<String>,
    pub batch_samples: usize,
    pub utc_offset_s: i32,
    pub seed: u64,
}

impl FleetOptions {
    pub fn code(&self, i: usize) -> String {
        format!("{}{:02}", self.code_prefix, i + 1)
    }

    fn hub(&self, i: usize) -> HubOptions {
        let nodes = match self.firmware {
            // V3.3 hubs carry the four nodes of the seed system.
            Firmware::V33 => vec![
                (1, BodyPosition::Waist),
                (2, BodyPosition::Shoulder),
                (3, BodyPosition::Wrist),
                (4, BodyPosition::Racket),
            ],
            Firmware::Compact => vec![(4, BodyPosition::Racket)],
        };
        HubOptions {
            url: self.url.clone(),
            code: self.code(i),
            token: self
                .token_prefix
                .as_ref()
                .map(|p| format!("{p}{:02}", i + 1)),
            firmware: self.firmware,
            rate_hz: self.rate_hz,
            nodes,
            duration: self.duration,
            batch_samples: self.batch_samples,
            session_id: format!("sim-{}-{}", self.code(i), self.seed),
            utc_offset_s: self.utc_offset_s,
        }
    }
}

/// Live counters a caller can print while the fleet runs.
#[derive(Debug, Default)]
pub struct FleetProgress {
    pub acked_batches: AtomicU64,
    pub acked_samples: AtomicU64,
}

/// Runs the fleet to the end; every acknowledged batch is also sent on `acked` if given.
pub async fn run(
    options: FleetOptions,
    progress: Arc<FleetProgress>,
    acked: Option<mpsc::UnboundedSender<Acked>>,
) -> Vec<(String, Result<HubReport, HubError>)> {
    let mut set = JoinSet::new();
    for i in 0..options.devices {
        let hub = options.hub(i);
        let (tx, mut rx) = mpsc::unbounded_channel::<Acked>();
        let progress = progress.clone();
        let forward = acked.clone();
        // Count (and forward) acknowledgements as they arrive.
        tokio::spawn(async move {
            while let Some(a) = rx.recv().await {
                progress.acked_batches.fetch_add(1, Ordering::Relaxed);
                let samples = a.sent["samples"]
                    .as_array()
                    .or_else(|| a.sent["data"].as_array())
                    .map_or(0, Vec::len);
                progress
                    .acked_samples
                    .fetch_add(samples as u64, Ordering::Relaxed);
                if let Some(f) = &forward {
                    let _ = f.send(a);
                }
            }
        });
        let source = StillSource::new(options.seed.wrapping_add(i as u64));
        set.spawn(async move {
            let code = hub.code.clone();
            let result = match hub.firmware {
                Firmware::V33 => client::run_v33(hub, source, tx).await,
                Firmware::Compact => client::run_compact(hub, source, tx).await,
            };
            (code, result)
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(report) => reports.push(report),
            Err(e) => reports.push(("?".into(), Err(HubError::Protocol(e.to_string())))),
        }
    }
    reports.sort_by(|a, b| a.0.cmp(&b.0));
    reports
}
