//! Detections scored against what each recording is known to hold, per stroke class: strokes
//! found, strokes counted twice, false swings per minute of non-stroke motion, side and
//! height agreement, and the speed order between classes. Pure: swings and truth in, a
//! [`SourceReport`] out — the same whether the swings came from the daemon's journal or from an
//! analyser in this process.
//!
//! What a recording is known to hold differs by source ([`Truth`]): one stroke per fixed-length
//! capture, labelled runs of rows, a ball robot's fixed interval, a stated count, or nothing
//! (rest and noise). Where truth is only an upper bound (balls fed), the figure says so.

use std::collections::BTreeMap;

use shuttlegate_core::analysis::{Height, Side};

use super::label::Label;
use crate::biomech_eval::reliability::Bin;
use crate::report::{Figure, SourceReport, Target, Unit};

/// Issue 14's targets for real recordings.
pub const FOUND_TARGET_PCT: f64 = 90.0;
pub const TWICE_TARGET_PCT: f64 = 10.0;
pub const FALSE_PER_MIN_TARGET: f64 = 1.0;
pub const SEPARATION_TARGET_PCT: f64 = 85.0;

/// How far outside a stroke's span a swing's contact may fall and still count for it, ms
/// (see [`super::RUN_MATCH_SLACK_MS`]).
pub const SPAN_SLACK_MS: f64 = super::RUN_MATCH_SLACK_MS;

/// Two swings closer than this share of a ball robot's interval are one ball counted twice:
/// nobody returns two balls fed that far apart within half the interval.
pub const FED_DOUBLE_SHARE: f64 = 0.5;

/// Sample-to-sample steps longer than this are gaps between clips, not recorded time.
pub const GAP_MS: f64 = 1000.0;

/// One swing as scored: what the journal (or the analyser) says about it. Times in the
/// recording's own clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    pub t_impact: f64,
    pub side: Side,
    pub height: Height,
    pub racket_speed_kmh: Option<f64>,
    /// How sure the analyser said the side and the height were (`None`: not assessed).
    pub side_confidence: Option<f64>,
    pub height_confidence: Option<f64>,
}

/// A stretch of the recording holding one stroke, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub t_start: f64,
    pub t_end: f64,
}

impl Span {
    /// Whether a swing whose contact is at `t_impact` counts for this span (within it, with
    /// [`SPAN_SLACK_MS`] either side).
    pub fn holds(&self, t_impact: f64) -> bool {
        t_impact >= self.t_start - SPAN_SLACK_MS && t_impact <= self.t_end + SPAN_SLACK_MS
    }
}

/// What one file is known to hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// Strokes in spans (fixed-length trigger captures, labelled runs); `idle_ms` of recorded
    /// time outside every span, where a swing is a false one. `one_each`: a span is one stroke
    /// (a capture); otherwise it is an activity window holding one or more (a labelled run), so
    /// a second swing in it is no double count and "twice" cannot be measured.
    Strokes {
        spans: Vec<Span>,
        idle_ms: f64,
        one_each: bool,
    },
    /// No stroke at all: every swing is false.
    Idle { recorded_ms: f64 },
    /// A ball robot fed one ball every `interval_ms` for at most `recorded_ms`: the ball count
    /// is an upper bound (the robot may start late and run out early).
    Fed { interval_ms: f64, recorded_ms: f64 },
    /// The file name states how many strokes it holds, nothing says when.
    Counted(usize),
}

/// One file's truth, class and detections.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutcome {
    pub file: String,
    /// Class name as the source calls it (`drive`, `topspin forehand`); idle files have one too.
    pub class: String,
    /// Side and height the class implies, where it implies one.
    pub label: Label,
    pub truth: Truth,
    pub swings: Vec<Detected>,
}

/// Tallies of one class over its files.
#[derive(Debug, Clone, Default, PartialEq)]
struct ClassTally {
    label: Label,
    strokes: usize,
    found: usize,
    twice: usize,
    /// Swings counted against the class (in its spans, or all of a fed or counted file).
    swings: usize,
    side_agree: usize,
    height_agree: usize,
    /// The side's and the height's confidences against their outcomes.
    side_reliability: Bin,
    height_reliability: Bin,
    speeds: Vec<f64>,
    /// The stroke count is an upper bound (balls fed).
    upper_bound: bool,
    /// Nothing says where one stroke ends and the next begins (a stated count, or activity
    /// windows holding several): "twice" cannot be measured.
    twice_unmeasurable: bool,
}

/// False swings over non-stroke time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct IdleTally {
    swings: usize,
    ms: f64,
}

impl ClassTally {
    fn judge(&mut self, swing: &Detected) {
        self.swings += 1;
        let side_right = self.label.side == Some(swing.side);
        let height_right = self.label.height == Some(swing.height);
        self.side_agree += usize::from(side_right);
        self.height_agree += usize::from(height_right);
        if let (Some(_), Some(c)) = (self.label.side, swing.side_confidence) {
            self.side_reliability.add(c, side_right);
        }
        if let (Some(_), Some(c)) = (self.label.height, swing.height_confidence) {
            self.height_reliability.add(c, height_right);
        }
        if let Some(v) = swing.racket_speed_kmh {
            self.speeds.push(v);
        }
    }
}

fn tally_file(outcome: &FileOutcome, class: &mut ClassTally, idle: &mut IdleTally) {
    match &outcome.truth {
        Truth::Strokes {
            spans,
            idle_ms,
            one_each,
        } => {
            class.twice_unmeasurable |= !one_each;
            let mut per_span = vec![0usize; spans.len()];
            idle.ms += idle_ms;
            for swing in &outcome.swings {
                let owner = spans.iter().position(|s| s.holds(swing.t_impact));
                match owner {
                    Some(k) => {
                        per_span[k] += 1;
                        class.judge(swing);
                    }
                    None => idle.swings += 1,
                }
            }
            class.strokes += spans.len();
            class.found += per_span.iter().filter(|n| **n >= 1).count();
            class.twice += per_span.iter().filter(|n| **n >= 2).count();
        }
        Truth::Idle { recorded_ms } => {
            idle.ms += recorded_ms;
            idle.swings += outcome.swings.len();
        }
        Truth::Fed {
            interval_ms,
            recorded_ms,
        } => {
            class.upper_bound = true;
            let balls = (recorded_ms / interval_ms).floor() as usize;
            let mut times: Vec<f64> = outcome.swings.iter().map(|s| s.t_impact).collect();
            times.sort_by(f64::total_cmp);
            let doubles = times
                .windows(2)
                .filter(|w| w[1] - w[0] < FED_DOUBLE_SHARE * interval_ms)
                .count();
            class.strokes += balls;
            class.found += (times.len() - doubles).min(balls);
            class.twice += doubles;
            for swing in &outcome.swings {
                class.judge(swing);
            }
        }
        Truth::Counted(n) => {
            class.twice_unmeasurable = true;
            class.strokes += n;
            class.found += outcome.swings.len().min(*n);
            for swing in &outcome.swings {
                class.judge(swing);
            }
        }
    }
}

fn pct(n: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| 100.0 * n as f64 / of as f64)
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Scores a source's files into its report. `speed_order` lists class pairs whose racket
/// speeds physics orders (faster first); `via` says how the swings were obtained.
pub fn score(
    source: &str,
    title: &str,
    via: &str,
    outcomes: &[FileOutcome],
    speed_order: &[(String, String)],
) -> SourceReport {
    let mut classes: BTreeMap<String, ClassTally> = BTreeMap::new();
    let mut idle = IdleTally::default();
    for outcome in outcomes {
        let class = classes
            .entry(outcome.class.clone())
            .or_insert_with(|| ClassTally {
                label: outcome.label,
                ..ClassTally::default()
            });
        tally_file(outcome, class, &mut idle);
    }
    let mut figures = Vec::new();
    let stroke_classes: Vec<(&String, &ClassTally)> =
        classes.iter().filter(|(_, t)| t.strokes > 0).collect();
    for (name, t) in &stroke_classes {
        let bound = if t.upper_bound {
            " (≤ balls fed)"
        } else {
            ""
        };
        figures.push(Figure {
            name: format!("found: {name}"),
            value: pct(t.found, t.strokes),
            unit: Unit::Percent,
            detail: format!("{}/{} strokes{bound}", t.found, t.strokes),
            target: Some(Target::AtLeast(FOUND_TARGET_PCT)),
        });
        if !t.twice_unmeasurable {
            figures.push(Figure {
                name: format!("twice: {name}"),
                value: pct(t.twice, t.found.max(t.twice)),
                unit: Unit::Percent,
                detail: format!("{} of {} found", t.twice, t.found.max(t.twice)),
                target: Some(Target::AtMost(TWICE_TARGET_PCT)),
            });
        }
    }
    figures.push(Figure {
        name: "false swings per minute".into(),
        value: (idle.ms > 0.0).then(|| idle.swings as f64 / (idle.ms / 60_000.0)),
        unit: Unit::PerMinute,
        detail: format!(
            "{} swings in {:.1} min without strokes",
            idle.swings,
            idle.ms / 60_000.0
        ),
        target: Some(Target::AtMost(FALSE_PER_MIN_TARGET)),
    });
    separation(&stroke_classes, &mut figures);
    for (name, t) in &stroke_classes {
        figures.push(Figure {
            name: format!("median speed: {name}"),
            value: median(&t.speeds),
            unit: Unit::KmPerHour,
            detail: format!("{} swings with a speed", t.speeds.len()),
            target: None,
        });
    }
    for (fast, slow) in speed_order {
        let m = |c: &String| classes.get(c).and_then(|t| median(&t.speeds));
        let ratio = m(fast).zip(m(slow)).map(|(f, s)| f / s);
        figures.push(Figure {
            name: format!("speed order: {fast} > {slow}"),
            value: ratio,
            unit: Unit::Ratio,
            detail: "median over median".into(),
            target: Some(Target::Above(1.0)),
        });
    }
    SourceReport {
        data: String::new(),
        source: source.into(),
        title: title.into(),
        via: via.into(),
        figures,
        notes: Vec::new(),
        inputs: outcomes.iter().map(input_line).collect(),
    }
}

/// One file's (or one class part's) counts: what it holds and what was found in it.
fn input_line(outcome: &FileOutcome) -> String {
    let name = std::path::Path::new(&outcome.file)
        .file_name()
        .map_or(outcome.file.clone(), |n| n.to_string_lossy().into_owned());
    let mut class = ClassTally {
        label: outcome.label,
        ..ClassTally::default()
    };
    let mut idle = IdleTally::default();
    tally_file(outcome, &mut class, &mut idle);
    let truth = match &outcome.truth {
        Truth::Strokes { spans, .. } => format!("{} strokes", spans.len()),
        Truth::Idle { recorded_ms } => format!("{:.1} s without strokes", recorded_ms / 1000.0),
        Truth::Fed {
            interval_ms,
            recorded_ms,
        } => format!(
            "≤ {} balls ({:.0} s, one per {:.2} s)",
            (recorded_ms / interval_ms).floor(),
            recorded_ms / 1000.0,
            interval_ms / 1000.0
        ),
        Truth::Counted(n) => format!("{n} strokes stated"),
    };
    format!(
        "{name} [{}]: {truth}; {} swings: found {}, twice {}, outside every stroke {}",
        outcome.class,
        outcome.swings.len(),
        class.found,
        class.twice,
        idle.swings
    )
}

/// Side and height agreement, per class and over the classes that state one: how well the
/// analyser separates forehand from backhand, overhead from the rest.
fn separation(classes: &[(&String, &ClassTally)], figures: &mut Vec<Figure>) {
    let mut side = (0, 0);
    let mut height = (0, 0);
    for (name, t) in classes {
        if let Some(s) = t.label.side {
            side.0 += t.side_agree;
            side.1 += t.swings;
            figures.push(Figure {
                name: format!("side: {name}"),
                value: pct(t.side_agree, t.swings),
                unit: Unit::Percent,
                detail: format!("{}/{} {}", t.side_agree, t.swings, s.as_str()),
                target: Some(Target::AtLeast(SEPARATION_TARGET_PCT)),
            });
        }
        if let Some(h) = t.label.height {
            height.0 += t.height_agree;
            height.1 += t.swings;
            figures.push(Figure {
                name: format!("height: {name}"),
                value: pct(t.height_agree, t.swings),
                unit: Unit::Percent,
                detail: format!("{}/{} {}", t.height_agree, t.swings, h.as_str()),
                target: Some(Target::AtLeast(SEPARATION_TARGET_PCT)),
            });
        }
    }
    for (name, (agree, of)) in [("side: all classes", side), ("height: all classes", height)] {
        if of > 0 {
            figures.push(Figure {
                name: name.into(),
                value: pct(agree, of),
                unit: Unit::Percent,
                detail: format!("{agree}/{of} swings"),
                target: Some(Target::AtLeast(SEPARATION_TARGET_PCT)),
            });
        }
    }
    reliability_figures(classes, figures);
}

/// The Brier score of the side's and the height's confidences over the classes that state
/// one (docs/analysis.md, "Confidence"): whether the analyser knew when it was right. No
/// target: reported beside the agreement it qualifies.
fn reliability_figures(classes: &[(&String, &ClassTally)], figures: &mut Vec<Figure>) {
    let mut side = Bin::default();
    let mut height = Bin::default();
    for (_, t) in classes {
        side.absorb(t.side_reliability);
        height.absorb(t.height_reliability);
    }
    for (name, r) in [
        ("side: confidence Brier", side),
        ("height: confidence Brier", height),
    ] {
        if r.n > 0 {
            figures.push(Figure {
                name: name.into(),
                value: r.brier(),
                unit: Unit::Brier,
                detail: format!("{} swings, mean confidence {:.2}", r.n, r.mean_confidence()),
                target: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swing(t: f64, side: Side, speed: f64) -> Detected {
        Detected {
            t_impact: t,
            side,
            height: Height::Sidearm,
            racket_speed_kmh: Some(speed),
            side_confidence: Some(0.9),
            height_confidence: None,
        }
    }

    fn value(r: &SourceReport, name: &str) -> Option<f64> {
        r.figure(name).unwrap_or_else(|| panic!("no {name}")).value
    }

    #[test]
    fn strokes_are_found_once_twice_or_not_and_outside_swings_are_false() {
        let spans = (0..4)
            .map(|k| Span {
                t_start: k as f64 * 2000.0,
                t_end: k as f64 * 2000.0 + 1000.0,
            })
            .collect();
        let outcome = FileOutcome {
            file: "drive.csv".into(),
            class: "drive".into(),
            label: Label::parse("forehand").expect("valid"),
            truth: Truth::Strokes {
                spans,
                idle_ms: 60_000.0,
                one_each: true,
            },
            swings: vec![
                swing(500.0, Side::Forehand, 80.0),
                swing(2500.0, Side::Forehand, 90.0),
                swing(2700.0, Side::Backhand, 100.0),
                // Inside the slack after span 3.
                swing(7200.0, Side::Forehand, 70.0),
                // Far from every span: a false swing.
                swing(9500.0, Side::Forehand, 70.0),
            ],
        };
        let r = score("t", "t", "test", &[outcome], &[]);
        assert_eq!(value(&r, "found: drive"), Some(75.0));
        assert_eq!(value(&r, "twice: drive"), Some(100.0 / 3.0));
        assert_eq!(value(&r, "false swings per minute"), Some(1.0));
        assert_eq!(value(&r, "side: drive"), Some(75.0));
        assert_eq!(value(&r, "median speed: drive"), Some(85.0));
        // Four swings in the spans said forehand at 0.9; three were: (3 × 0.1² + 0.9²) / 4.
        let brier = value(&r, "side: confidence Brier").expect("scored");
        assert!((brier - 0.21).abs() < 1e-9, "{brier}");
        assert!(
            r.figure("height: confidence Brier").is_none(),
            "no height label, no height confidence"
        );
    }

    /// A labelled run is an activity window: two swings in one are two strokes, not one
    /// counted twice, and nothing can say which they are.
    #[test]
    fn activity_windows_are_found_but_not_scored_for_double_counts() {
        let outcome = FileOutcome {
            file: "backhand.csv".into(),
            class: "backhand".into(),
            label: Label::parse("backhand").expect("valid"),
            truth: Truth::Strokes {
                spans: vec![
                    Span {
                        t_start: 0.0,
                        t_end: 10_000.0,
                    },
                    Span {
                        t_start: 20_000.0,
                        t_end: 21_000.0,
                    },
                ],
                idle_ms: 0.0,
                one_each: false,
            },
            swings: vec![
                swing(1000.0, Side::Backhand, 60.0),
                swing(4000.0, Side::Backhand, 60.0),
            ],
        };
        let r = score("t", "t", "test", &[outcome], &[]);
        assert_eq!(value(&r, "found: backhand"), Some(50.0));
        assert!(r.figure("twice: backhand").is_none(), "not measurable");
        assert_eq!(value(&r, "side: backhand"), Some(100.0));
    }

    #[test]
    fn a_fed_session_counts_balls_as_an_upper_bound_and_close_pairs_as_doubles() {
        let times = [0.0, 1200.0, 1500.0, 2400.0];
        let outcome = FileOutcome {
            file: "topspin.csv".into(),
            class: "topspin".into(),
            label: Label::default(),
            truth: Truth::Fed {
                interval_ms: 1200.0,
                recorded_ms: 6000.0,
            },
            swings: times
                .iter()
                .map(|t| swing(*t, Side::Forehand, 50.0))
                .collect(),
        };
        let block = FileOutcome {
            class: "block".into(),
            swings: vec![swing(0.0, Side::Forehand, 25.0)],
            ..outcome.clone()
        };
        let order = [("topspin".to_string(), "block".to_string())];
        let r = score("t", "t", "test", &[outcome, block], &order);
        // 5 balls, 4 swings of which one 300 ms after another: 3 balls returned.
        assert_eq!(value(&r, "found: topspin"), Some(60.0));
        assert_eq!(value(&r, "twice: topspin"), Some(100.0 / 3.0));
        assert_eq!(value(&r, "speed order: topspin > block"), Some(2.0));
        assert_eq!(
            r.figure("speed order: topspin > block")
                .and_then(Figure::met),
            Some(true)
        );
        assert!(
            r.figure("side: topspin").is_none(),
            "the label states no side"
        );
    }

    #[test]
    fn idle_files_give_false_swings_per_minute_and_no_stroke_class() {
        let outcome = FileOutcome {
            file: "rest.csv".into(),
            class: "rest".into(),
            label: Label::parse("idle").expect("valid"),
            truth: Truth::Idle {
                recorded_ms: 120_000.0,
            },
            swings: vec![swing(10.0, Side::Forehand, 30.0); 3],
        };
        let r = score("t", "t", "test", &[outcome], &[]);
        assert_eq!(value(&r, "false swings per minute"), Some(1.5));
        assert!(r.figure("found: rest").is_none());
    }
}
