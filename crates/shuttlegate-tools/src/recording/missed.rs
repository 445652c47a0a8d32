//! Diagnostics (`SHUTTLEGATE_SWING_TRACE`): why a labelled stroke of a real recording was not
//! found. Each labelled span with no swing in it is printed with every burst the detector
//! decided over it and that burst's fate (the rule that turned it away), or with "no burst"
//! and the fastest |ω⊥| the node read there (a stroke under the detector's trigger); each
//! burst the detector turned away anywhere else is printed too (fed and rest files have no
//! spans to hang them on).

use shuttlegate_core::analysis::{BurstDecision, BurstFate, NoStroke, NodeSample};

use super::score::{FileOutcome, SPAN_SLACK_MS, Span, Truth};

/// A burst's fate as one word (and its figures, for the wide-pulse rule).
pub(crate) fn fate_text(fate: BurstFate) -> String {
    match fate {
        BurstFate::NoStroke(NoStroke::WidePulse { width_ms, hand_g }) => {
            format!("wide_pulse(width {width_ms:.0} ms, hand {hand_g:.2} g)")
        }
        _ => fate.name().into(),
    }
}

/// Whether a burst reaches into `span` (with the scoring's slack).
fn overlaps(b: &BurstDecision, span: &Span) -> bool {
    b.end_t >= span.t_start - SPAN_SLACK_MS && b.trigger_t <= span.t_end + SPAN_SLACK_MS
}

/// The fastest |ω⊥| = |(ω_y, ω_z)| the node read within `span`, °/s.
fn fastest_in(samples: &[NodeSample], span: &Span) -> f64 {
    samples
        .iter()
        .filter(|s| s.t_ms >= span.t_start && s.t_ms <= span.t_end)
        .map(|s| f64::from(s.gyro[1]).hypot(f64::from(s.gyro[2])))
        .fold(0.0, f64::max)
}

/// Prints, for one file, its missed labelled spans and the bursts turned away elsewhere.
/// `t0`: the file's first sample's time, which the printed times count from.
pub(crate) fn print_missed(
    file: &str,
    t0: f64,
    samples: &[NodeSample],
    log: &[BurstDecision],
    outcomes: &[FileOutcome],
) {
    let mut in_a_missed_span = vec![false; log.len()];
    for outcome in outcomes {
        let Truth::Strokes { spans, .. } = &outcome.truth else {
            continue;
        };
        for span in spans {
            if outcome.swings.iter().any(|s| span.holds(s.t_impact)) {
                continue;
            }
            let mut fates = Vec::new();
            for (k, b) in log.iter().enumerate().filter(|(_, b)| overlaps(b, span)) {
                in_a_missed_span[k] = true;
                fates.push(format!(
                    "{} at {:.0} peak {:.0}",
                    fate_text(b.fate),
                    b.trigger_t - t0,
                    b.peak_dps
                ));
            }
            println!(
                "missed {file} [{}] span {:.0}-{:.0} ({:.0} ms) fastest {:.0}: {}",
                outcome.class,
                span.t_start - t0,
                span.t_end - t0,
                span.t_end - span.t_start,
                fastest_in(samples, span),
                if fates.is_empty() {
                    "no burst".to_string()
                } else {
                    fates.join("; ")
                }
            );
        }
    }
    let class = outcomes.first().map_or("", |o| o.class.as_str());
    for (b, _) in log
        .iter()
        .zip(&in_a_missed_span)
        .filter(|(b, shown)| !**shown && b.fate != BurstFate::Swing)
    {
        println!(
            "turned_away {file} [{class}] t {:.0} peak {:.0} {}",
            b.trigger_t - t0,
            b.peak_dps,
            fate_text(b.fate)
        );
    }
}
