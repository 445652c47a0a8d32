//! `shuttlegate-tools eval`: one run, one table per source of truth (issue 14, "How it must be
//! shown"): the independent simulator on its held-out seeds (rates mixed, every node at
//! 100 Hz, at 200 Hz), every committed recording excerpt, every whole data set named with
//! `--source NAME=DIR`, and the held-out figure of each fitted parameter
//! ([`crate::held_out`]). Every source streams through a real daemon unless the run is
//! `--in-process` (the same analysis, without sockets and journal).
//!
//! Each source is a [`SourceRun`]; [`run`] turns the list into [`SourceReport`]s in order.

use std::path::Path;

use shuttlegate_core::analysis::AnalysisSettings;

use crate::biomech_eval::{self, BiomechOptions};
use crate::held_out::{AxisMapFit, leave_one_out};
use crate::recording::daemon::{StreamError, through_daemon};
use crate::recording::score::{FileOutcome, score};
use crate::recording::sources::Source;
use crate::recording::{RecordingError, evaluate_source};
use crate::report::SourceReport;

/// One source of the run.
#[derive(Debug, Clone)]
pub enum SourceRun {
    /// The independent simulator, under this label (`biomech@100Hz`).
    Biomech {
        label: String,
        options: BiomechOptions,
    },
    /// A real data set; `data` says which copy (the committed excerpt, a local clone).
    Recording { source: Source, data: String },
    /// The held-out figures of the padel axis map (the one parameter fitted from a source's
    /// own labels): each file analysed with the map fitted on the source's other files.
    AxesHeldOut { source: Source, data: String },
}

impl SourceRun {
    /// The three biomech runs of `eval`: rates drawn (50–1000 Hz, some changing), every node
    /// at 100 Hz, every node at 200 Hz (the targets are at 100 and 200 Hz).
    pub fn biomech_variants(seeds: &[u64], duration_s: f64) -> Vec<SourceRun> {
        [None, Some(100.0), Some(200.0)]
            .into_iter()
            .map(|rate_hz| SourceRun::Biomech {
                label: rate_hz.map_or("biomech".to_owned(), |r| format!("biomech@{r}Hz")),
                options: BiomechOptions {
                    seeds: seeds.to_vec(),
                    duration_s,
                    rate_hz,
                    placement: None,
                    infer_axes: None,
                },
            })
            .collect()
    }

    /// `source` as a recording run, and its held-out run when a parameter of it is fitted
    /// from its own labels.
    pub fn recording(source: Source, data: String) -> Vec<SourceRun> {
        let mut runs = vec![SourceRun::Recording {
            source: source.clone(),
            data: data.clone(),
        }];
        if source.name == "padel_mdpg22_axes_learnt" {
            runs.push(SourceRun::AxesHeldOut { source, data });
        }
        runs
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum EveryError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Recording(#[from] RecordingError),
}

/// Every run in order; through the daemon at `exe`, or in process without one.
pub async fn run(
    runs: &[SourceRun],
    exe: Option<&Path>,
    settings: &AnalysisSettings,
) -> Result<Vec<SourceReport>, EveryError> {
    let mut reports = Vec::with_capacity(runs.len());
    for one in runs {
        log::info!("eval: {}", name(one));
        reports.push(run_one(one, exe, settings).await?);
    }
    Ok(reports)
}

fn name(run: &SourceRun) -> &str {
    match run {
        SourceRun::Biomech { label, .. } => label,
        SourceRun::Recording { source, .. } | SourceRun::AxesHeldOut { source, .. } => source.name,
    }
}

async fn run_one(
    one: &SourceRun,
    exe: Option<&Path>,
    settings: &AnalysisSettings,
) -> Result<SourceReport, EveryError> {
    Ok(match one {
        SourceRun::Biomech { label, options } => {
            let report = match exe {
                Some(exe) => biomech_eval::daemon::run(exe, options).await?,
                None => biomech_eval::run(options, settings),
            };
            report.source_report(label)
        }
        SourceRun::Recording { source, data } => {
            let mut report = match exe {
                Some(exe) => through_daemon(exe, source).await?,
                None => evaluate_source(source, settings)?,
            };
            report.data = data.clone();
            report
        }
        SourceRun::AxesHeldOut { source, data } => {
            let mut report = axes_held_out(source, settings)?;
            report.data = data.clone();
            report
        }
    })
}

/// The padel axis map held out by file: each file's swings under the rotation fitted on the
/// other files' side and height labels, scored together.
pub fn axes_held_out(
    source: &Source,
    settings: &AnalysisSettings,
) -> Result<SourceReport, RecordingError> {
    let fit = AxisMapFit::new(source, settings)?;
    let folds = leave_one_out(&fit, &fit.units());
    let outcomes: Vec<FileOutcome> = folds.iter().flat_map(|f| f.outcomes.clone()).collect();
    let mut report = score(
        "padel_mdpg22_axes_held_out",
        &source.title,
        "an analyser in this process per rotation (24) and file; each file scored with the \
         rotation fitted on the other files",
        &outcomes,
        &source.speed_order,
    );
    report.notes.push(
        "held out by file: the axis map each file is scored with was fitted (most swings \
         agreeing with their files' side and height labels) without that file"
            .into(),
    );
    report.notes.extend(folds.iter().map(|f| {
        format!(
            "fold: {} held out, fitted {}",
            source.files[f.held_out]
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            f.params
        )
    }));
    Ok(report)
}

/// Every report's table, in order, with a line saying how many targets each source meets.
pub fn render(reports: &[SourceReport], verbose: bool) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&if verbose {
            r.render_verbose()
        } else {
            r.render()
        });
        out.push('\n');
    }
    out.push_str("== summary: targets met per source\n");
    for r in reports {
        let (met, judged) = r.met_count();
        out.push_str(&format!("   {:<34} {met:>2} of {judged:>2}\n", r.source));
    }
    out
}

/// Every report for machines: `{"sources": [...]}` (see [`SourceReport::to_json`]).
pub fn to_json(reports: &[SourceReport]) -> serde_json::Value {
    serde_json::json!({
        "sources": reports.iter().map(SourceReport::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Figure, Target, Unit};

    #[test]
    fn the_biomech_runs_are_mixed_100_and_200_hz_on_the_same_seeds() {
        let runs = SourceRun::biomech_variants(&[1000, 1001], 60.0);
        let labels: Vec<&str> = runs.iter().map(name).collect();
        assert_eq!(labels, ["biomech", "biomech@100Hz", "biomech@200Hz"]);
        for run in &runs {
            let SourceRun::Biomech { options, .. } = run else {
                panic!("a biomech run")
            };
            assert_eq!(options.seeds, [1000, 1001]);
            assert_eq!(options.duration_s, 60.0);
        }
    }

    #[test]
    fn a_source_with_a_fitted_parameter_gets_its_held_out_run() {
        let dir = Path::new("unused");
        let learnt =
            crate::recording::sources::padel(dir, crate::recording::sources::learnt_padel_axes());
        let plain = crate::recording::sources::padel(dir, crate::recording::AxisMap::IDENTITY);
        assert_eq!(SourceRun::recording(plain, "x".into()).len(), 1);
        let runs = SourceRun::recording(learnt, "x".into());
        assert!(matches!(runs[1], SourceRun::AxesHeldOut { .. }));
    }

    #[test]
    fn the_summary_counts_targets_met_per_source() {
        let report = |source: &str, value: f64| SourceReport {
            source: source.into(),
            figures: vec![Figure {
                name: "found: smash".into(),
                value: Some(value),
                unit: Unit::Percent,
                detail: String::new(),
                target: Some(Target::AtLeast(90.0)),
            }],
            ..SourceReport::default()
        };
        let text = render(&[report("a", 95.0), report("b", 50.0)], false);
        assert!(text.contains("== a"), "{text}");
        assert!(text.contains("== b"), "{text}");
        let summary = text.split("== summary").nth(1).expect("a summary");
        assert!(
            summary.contains("a") && summary.contains(" 1 of  1"),
            "{summary}"
        );
        assert!(summary.contains(" 0 of  1"), "{summary}");
        let json = to_json(&[report("a", 95.0)]);
        assert_eq!(json["sources"][0]["figures"][0]["met"], true);
    }
}
