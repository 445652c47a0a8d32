//! The analysis results' way out: journaled, then shown live, in the order they were made.
//!
//! Exists so that the analysis task never waits for an fsync. Each swing is journaled first and
//! published live with its journal id (SPEC §3: the swing message carries it), so publishing
//! must follow the swing's group commit. Awaited inline, every commit held up the analysis of
//! everything queued behind it; under a flood of batches, when commits take longer, that
//! queueing was the tail of the swing latency. Here each result is handed to the journal the
//! moment it arrives (`Journal::enqueue`, which keeps their order) and published when durable,
//! oldest first, while the analysis goes on.
//!
//! Bounded: at most [`IN_FLIGHT`] results wait for their commit; beyond that the task stops
//! taking new ones and the analysis task waits on the channel.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::mpsc;

use shuttlegate_core::analysis::AnalysisOutput;

use super::metrics::{AnalysisMetrics, InputTimes};
use crate::court::CourtHandle;
use crate::journal::{AppendError, Appended, Document, Journal, RecordBody};
use crate::live::{Live, LiveEvent};

/// Results waiting for their journal commit at once.
pub const IN_FLIGHT: usize = 1024;

/// The results of one analysed input. An input handed over live (with `times`) counts in
/// `AnalysisMetrics::pending` until its last result is out; resumed results do not.
#[derive(Debug)]
pub struct Results {
    pub outputs: Vec<AnalysisOutput>,
    pub times: Option<InputTimes>,
}

/// A result whose commit has resolved.
struct Durable {
    output: AnalysisOutput,
    appended: Result<Appended, AppendError>,
    times: Option<InputTimes>,
    /// The last result of a live input: the input is done once it is out.
    completes_input: bool,
}

type Commit = Pin<Box<dyn Future<Output = Durable> + Send>>;

/// Journals and publishes results until the channel closes and everything in flight is out.
pub async fn run(
    mut rx: mpsc::Receiver<Results>,
    journal: Journal,
    live: Live,
    court: CourtHandle,
    metrics: Arc<AnalysisMetrics>,
) {
    let mut commits: FuturesOrdered<Commit> = FuturesOrdered::new();
    let mut open = true;
    while open || !commits.is_empty() {
        tokio::select! {
            results = rx.recv(), if open && commits.len() < IN_FLIGHT => match results {
                Some(results) => submit(results, &journal, &live, &mut commits, &metrics).await,
                None => open = false,
            },
            Some(done) = commits.next(), if !commits.is_empty() => {
                show(done, &live, &court, &metrics).await;
            }
        }
    }
}

/// Hands each journaled result to the journal, in order: now, or, when the journal is that far
/// behind, as soon as it has room (the commits already handed over resolve meanwhile).
async fn submit(
    results: Results,
    journal: &Journal,
    live: &Live,
    commits: &mut FuturesOrdered<Commit>,
    metrics: &AnalysisMetrics,
) {
    let Results { outputs, times } = results;
    let journaled: Vec<(AnalysisOutput, RecordBody)> = outputs
        .into_iter()
        .filter_map(|output| match record(&output) {
            Some(body) => Some((output, body)),
            None => {
                // A rally is not journaled, so it has no commit to wait for: shown at once
                // (it may reach a phone a few ms before the last swing it counts).
                if let AnalysisOutput::Rally(rally) = &output {
                    live.publish(LiveEvent::Rally {
                        json: rally_update(rally).into(),
                    });
                }
                None
            }
        })
        .collect();
    if journaled.is_empty() && times.is_some() {
        metrics.input_done();
    }
    let n = journaled.len();
    for (i, (output, body)) in journaled.into_iter().enumerate() {
        // Handed over before the next one, so results reach the writer in the order they came.
        let enqueued = journal.enqueue(body).await;
        commits.push_back(Box::pin(async move {
            let appended = match enqueued {
                Ok(durable) => durable.await,
                Err(e) => Err(e),
            };
            Durable {
                output,
                appended,
                times,
                completes_input: times.is_some() && i + 1 == n,
            }
        }));
    }
}

/// The record a result is journaled as; rally events are not journaled.
fn record(output: &AnalysisOutput) -> Option<RecordBody> {
    match output {
        AnalysisOutput::Swing(swing) => Some(RecordBody::Swing(document(
            &swing.device,
            &swing.session_id,
            swing,
        ))),
        AnalysisOutput::Summary(summary) => Some(RecordBody::Summary(document(
            &summary.device,
            &summary.session_id,
            summary,
        ))),
        AnalysisOutput::Rally(_) => None,
    }
}

/// Shows a durable result live (with its journal id), counts it, and tells the court when a
/// session is summarised.
async fn show(done: Durable, live: &Live, court: &CourtHandle, metrics: &AnalysisMetrics) {
    let Durable {
        output,
        appended,
        times,
        completes_input,
    } = done;
    match output {
        AnalysisOutput::Swing(mut swing) => {
            match appended {
                Ok(appended) => swing.id = Some(appended.id),
                Err(e) => log::error!("swing of `{}` not journaled: {e}", swing.device),
            }
            metrics.count_stroke(swing.stroke);
            live.publish(LiveEvent::Swing {
                device: swing.device.clone(),
                json: to_json(&swing).into(),
                received: times.map(|t| t.received),
            });
            if let Some(t) = times {
                metrics.record_swing(&t, std::time::Instant::now());
            }
        }
        AnalysisOutput::Summary(summary) => {
            if let Err(e) = appended {
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
            // The court completes the session once the summary is out (a request to the court,
            // which journals the change).
            if let Err(e) = court
                .session_analysed(&summary.device, &summary.session_id)
                .await
            {
                log::error!(
                    "session `{}` of `{}` analysed, but the court could not record it: {e}",
                    summary.session_id,
                    summary.device
                );
            }
        }
        AnalysisOutput::Rally(_) => {}
    }
    if completes_input {
        metrics.input_done();
    }
}

/// `{"type":"rally_update","event":"rally_shot"|"rally_end",…}`: the rally event's own fields,
/// its tag renamed so the message type is the phones'.
fn rally_update(rally: &shuttlegate_core::analysis::RallyEvent) -> String {
    let mut value = serde_json::to_value(rally).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        if let Some(kind) = fields.remove("type") {
            fields.insert("event".into(), kind);
        }
        fields.insert("type".into(), "rally_update".into());
    }
    value.to_string()
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
