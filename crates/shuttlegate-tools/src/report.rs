//! One table per source of truth: the figures issue 14 asks of the analyser, each beside its
//! target and whether it is met. [`SourceReport`] is the shared shape: the real recordings
//! ([`crate::recording::score`]) fill it, and so can any other evaluation (the independent simulator), so
//! that one run prints every source the same way. Pure: figures in, text (or JSON) out.

use std::fmt::Write as _;

/// What a figure must reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Value ≥ the bound.
    AtLeast(f64),
    /// Value ≤ the bound.
    AtMost(f64),
    /// Value > the bound (a ratio of speeds above 1: the order holds).
    Above(f64),
}

impl Target {
    /// The comparison and its bound, as `--json` writes them (`">="`, 90.0).
    pub fn parts(self) -> (&'static str, f64) {
        match self {
            Target::AtLeast(b) => (">=", b),
            Target::AtMost(b) => ("<=", b),
            Target::Above(b) => (">", b),
        }
    }

    pub fn holds(self, value: f64) -> bool {
        match self {
            Target::AtLeast(b) => value >= b,
            Target::AtMost(b) => value <= b,
            Target::Above(b) => value > b,
        }
    }

    fn render(self, unit: Unit) -> String {
        let (op, b) = match self {
            Target::AtLeast(b) => ("≥", b),
            Target::AtMost(b) => ("≤", b),
            Target::Above(b) => (">", b),
        };
        format!("{op} {}", unit.render(b))
    }
}

/// How a figure's value reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    PerMinute,
    /// A plain ratio (speed of one class over another's).
    Ratio,
    KmPerHour,
    /// A number of swings.
    Count,
    /// A Brier score: the mean squared gap between confidences and outcomes (0 best).
    Brier,
}

impl Unit {
    /// The unit's name in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Percent => "percent",
            Unit::PerMinute => "per_minute",
            Unit::Ratio => "ratio",
            Unit::KmPerHour => "km_per_h",
            Unit::Count => "count",
            Unit::Brier => "brier",
        }
    }

    fn render(self, v: f64) -> String {
        match self {
            Unit::Percent => format!("{v:.1} %"),
            Unit::PerMinute => format!("{v:.2}/min"),
            Unit::Ratio => format!("{v:.2}"),
            Unit::KmPerHour => format!("{v:.0} km/h"),
            Unit::Count => format!("{v:.0}"),
            Unit::Brier => format!("{v:.3}"),
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Stable name, `metric: class` (`found: drive`), which tests and floors refer to.
    pub name: String,
    /// `None`: nothing to measure it on (no swing in the class, no idle time).
    pub value: Option<f64>,
    pub unit: Unit,
    /// The counts behind the value (`61/101 strokes`).
    pub detail: String,
    pub target: Option<Target>,
}

impl Figure {
    /// Whether the target is met; `None` without a target or a value.
    pub fn met(&self) -> Option<bool> {
        Some(self.target?.holds(self.value?))
    }
}

/// Every figure of one source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceReport {
    /// Short name (`padel_mdpg22`), as the `--source` flag and the floors name it.
    pub source: String,
    /// What the source is: sport, placement, rate, where it comes from.
    pub title: String,
    /// How the data reached the analyser (`daemon, compact form over /ws/esp32/`).
    pub via: String,
    /// Which data (`committed excerpt tests/fixtures/padel_mdpg22`, `seeds 1000–1019`); empty
    /// when the title says it.
    pub data: String,
    pub figures: Vec<Figure>,
    /// Caveats a reader needs to read the figures (what a label means, what is an upper bound).
    pub notes: Vec<String>,
    /// One line per input (file, session) with its own counts, for finding the ones that
    /// fail; printed by [`SourceReport::render_verbose`].
    pub inputs: Vec<String>,
}

impl SourceReport {
    /// The figure of that name.
    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// Targets met and figures with a target and a value.
    pub fn met_count(&self) -> (usize, usize) {
        let judged: Vec<bool> = self.figures.iter().filter_map(Figure::met).collect();
        (judged.iter().filter(|m| **m).count(), judged.len())
    }

    /// The table, as `eval --recordings` prints it.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "== {} — {}", self.source, self.title);
        let _ = writeln!(o, "   via {}", self.via);
        if !self.data.is_empty() {
            let _ = writeln!(o, "   data: {}", self.data);
        }
        let _ = writeln!(
            o,
            "   {:<34} {:>12}  {:<40} {:>11}  met",
            "figure", "measured", "counts", "target"
        );
        for f in &self.figures {
            let value = f.value.map_or("-".to_string(), |v| f.unit.render(v));
            let target = f.target.map_or("-".to_string(), |t| t.render(f.unit));
            let met = match f.met() {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            let _ = writeln!(
                o,
                "   {:<34} {:>12}  {:<40} {:>11}  {met}",
                f.name, value, f.detail, target
            );
        }
        let (met, judged) = self.met_count();
        let _ = writeln!(o, "   targets met: {met} of {judged}");
        for note in &self.notes {
            let _ = writeln!(o, "   note: {note}");
        }
        o
    }

    /// The report for machines (`eval --json`): every figure with its value (`null`: nothing
    /// to measure), unit, counts, target (`{"op": ">=", "bound": 90.0}` or `null`) and
    /// verdict (`met`: `true`, `false`, or `null` when not judged).
    pub fn to_json(&self) -> serde_json::Value {
        let figures: Vec<serde_json::Value> = self
            .figures
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name,
                    "value": f.value,
                    "unit": f.unit.name(),
                    "detail": f.detail,
                    "target": f.target.map(|t| {
                        let (op, bound) = t.parts();
                        serde_json::json!({"op": op, "bound": bound})
                    }),
                    "met": f.met(),
                })
            })
            .collect();
        let (met, judged) = self.met_count();
        serde_json::json!({
            "source": self.source,
            "title": self.title,
            "via": self.via,
            "data": self.data,
            "figures": figures,
            "targets_met": met,
            "targets_judged": judged,
            "notes": self.notes,
            "inputs": self.inputs,
        })
    }

    /// The table, then one line per input.
    pub fn render_verbose(&self) -> String {
        let mut o = self.render();
        for line in &self.inputs {
            let _ = writeln!(o, "   input: {line}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(value: Option<f64>, target: Option<Target>) -> Figure {
        Figure {
            name: "found: smash".into(),
            value,
            unit: Unit::Percent,
            detail: String::new(),
            target,
        }
    }

    #[test]
    fn a_figure_is_judged_only_with_a_value_and_a_target() {
        assert_eq!(
            figure(Some(92.0), Some(Target::AtLeast(90.0))).met(),
            Some(true)
        );
        assert_eq!(
            figure(Some(12.0), Some(Target::AtMost(10.0))).met(),
            Some(false)
        );
        assert_eq!(
            figure(Some(1.0), Some(Target::Above(1.0))).met(),
            Some(false)
        );
        assert_eq!(figure(None, Some(Target::AtLeast(90.0))).met(), None);
        assert_eq!(figure(Some(50.0), None).met(), None);
    }

    #[test]
    fn the_table_names_each_figure_its_target_and_the_verdict() {
        let report = SourceReport {
            source: "padel".into(),
            title: "t".into(),
            via: "v".into(),
            figures: vec![
                figure(Some(61.4), Some(Target::AtLeast(90.0))),
                figure(None, Some(Target::AtLeast(90.0))),
            ],
            notes: vec!["one stroke per capture".into()],
            inputs: vec!["drive.csv: 3 swings".into()],
            data: String::new(),
        };
        let text = report.render();
        assert!(
            text.contains("61.4 %") && text.contains("≥ 90.0 %"),
            "{text}"
        );
        assert!(
            text.contains("NO") && text.contains("targets met: 0 of 1"),
            "{text}"
        );
        assert!(text.contains("note: one stroke per capture"), "{text}");
        assert!(!text.contains("input: drive.csv"), "{text}");
        assert!(
            report
                .render_verbose()
                .contains("input: drive.csv: 3 swings")
        );
    }

    #[test]
    fn the_json_carries_each_figure_its_target_and_the_verdict() {
        let report = SourceReport {
            source: "padel".into(),
            figures: vec![
                figure(Some(92.5), Some(Target::AtLeast(90.0))),
                Figure {
                    name: "false swings per minute".into(),
                    value: Some(1.5),
                    unit: Unit::PerMinute,
                    detail: "3 in 2.0 min".into(),
                    target: Some(Target::AtMost(1.0)),
                },
                figure(None, None),
            ],
            ..SourceReport::default()
        };
        let json = report.to_json();
        assert_eq!(json["source"], "padel");
        assert_eq!(json["figures"][0]["value"], 92.5);
        assert_eq!(json["figures"][0]["unit"], "percent");
        assert_eq!(
            json["figures"][0]["target"],
            serde_json::json!({"op": ">=", "bound": 90.0})
        );
        assert_eq!(json["figures"][0]["met"], true);
        assert_eq!(json["figures"][1]["target"]["op"], "<=");
        assert_eq!(json["figures"][1]["met"], false);
        assert!(json["figures"][2]["value"].is_null() && json["figures"][2]["met"].is_null());
        assert_eq!(
            (json["targets_met"].clone(), json["targets_judged"].clone()),
            (1.into(), 2.into())
        );
    }
}
