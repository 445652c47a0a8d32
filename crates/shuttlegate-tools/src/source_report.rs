//! One table per evaluation source (the independent simulator, each real recording set, the
//! self-consistent simulator), every figure beside its issue-14 target and whether it is met,
//! so `eval` can print all sources in one run in one shape.

use std::fmt::Write as _;

/// A figure's target and whether the figure meets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// As the issue words it, e.g. "≥ 0.97".
    pub text: String,
    pub met: bool,
}

/// One row: a metric, its value as printed, its target if the issue sets one.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub metric: String,
    pub value: String,
    pub target: Option<Target>,
}

/// Everything one source measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceReport {
    /// e.g. "biomech (independent simulator), 100 Hz".
    pub source: String,
    /// What was run: seeds, durations, devices — printed under the title.
    pub notes: Vec<String>,
    pub rows: Vec<ReportRow>,
    /// Free text after the table (confusion matrix, breakdowns).
    pub details: String,
}

impl SourceReport {
    pub fn new(source: impl Into<String>) -> SourceReport {
        SourceReport {
            source: source.into(),
            ..SourceReport::default()
        }
    }

    /// A row without a target.
    pub fn row(&mut self, metric: impl Into<String>, value: impl Into<String>) {
        self.rows.push(ReportRow {
            metric: metric.into(),
            value: value.into(),
            target: None,
        });
    }

    /// A row with its target and whether it is met.
    pub fn row_target(
        &mut self,
        metric: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) {
        self.rows.push(ReportRow {
            metric: metric.into(),
            value: value.into(),
            target: Some(Target {
                text: target.into(),
                met,
            }),
        });
    }

    /// The rows whose target is not met.
    pub fn unmet(&self) -> impl Iterator<Item = &ReportRow> {
        self.rows
            .iter()
            .filter(|r| r.target.as_ref().is_some_and(|t| !t.met))
    }

    /// A plain-text table: metric | value | target | met.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "== {} ==", self.source);
        for note in &self.notes {
            let _ = writeln!(o, "   {note}");
        }
        let width = self
            .rows
            .iter()
            .map(|r| r.metric.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let vwidth = self
            .rows
            .iter()
            .map(|r| r.value.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let _ = writeln!(
            o,
            "{:<width$}  {:<vwidth$}  {:<14}  met",
            "metric", "value", "target"
        );
        for r in &self.rows {
            let (target, met) = match &r.target {
                Some(t) => (t.text.as_str(), if t.met { "met" } else { "NOT MET" }),
                None => ("", ""),
            };
            let _ = writeln!(
                o,
                "{:<width$}  {:<vwidth$}  {:<14}  {met}",
                r.metric, r.value, target
            );
        }
        if !self.details.is_empty() {
            o.push('\n');
            o.push_str(&self.details);
        }
        o
    }
}

/// Several sources, one after the other.
pub fn render_all(reports: &[SourceReport]) -> String {
    reports
        .iter()
        .map(SourceReport::render)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_shows_its_target_and_whether_it_is_met() {
        let mut r = SourceReport::new("demo");
        r.row_target("detection F1", "0.9500", "≥ 0.97", false);
        r.row("swings", "12");
        let text = r.render();
        assert!(text.contains("detection F1  0.9500  ≥ 0.97"), "{text}");
        assert!(text.contains("NOT MET"));
        assert_eq!(r.unmet().count(), 1);
    }
}
