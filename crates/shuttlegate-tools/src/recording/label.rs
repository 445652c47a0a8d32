//! What a recording is known to hold, as written on the command line: `smash`,
//! `backhand`, `smash+overhead`, `forehand+underarm`, `any` (strokes of no stated kind) or
//! `idle` (no strokes at all: every swing found is a false detection). Public recordings label what their
//! sport calls a stroke; only some of that maps onto the analyser's badminton strokes, while
//! the side (forehand/backhand) and the height (overhead/underarm) carry across sports.

use shuttlegate_core::analysis::{Height, Side, Stroke};

/// The facts a label states; `None` where it says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Label {
    pub stroke: Option<Stroke>,
    pub side: Option<Side>,
    pub height: Option<Height>,
    /// The file holds no strokes.
    pub idle: bool,
}

impl Label {
    /// Parses `fact+fact…` where a fact is a stroke name, `forehand`, `backhand`,
    /// `overhead`, `sidearm` or `underarm`, each kind at most once; or `any`, or `idle`, alone.
    pub fn parse(text: &str) -> Result<Label, String> {
        match text.trim() {
            "any" => return Ok(Label::default()),
            "idle" => {
                return Ok(Label {
                    idle: true,
                    ..Label::default()
                });
            }
            _ => {}
        }
        let mut label = Label::default();
        for fact in text.split('+').map(str::trim) {
            let duplicate = || format!("label `{text}`: `{fact}` repeats a kind of fact");
            if let Some(stroke) = Stroke::ALL.into_iter().find(|s| s.as_str() == fact) {
                label
                    .stroke
                    .replace(stroke)
                    .map_or(Ok(()), |_| Err(duplicate()))?;
            } else if let Some(side) = Side::ALL.into_iter().find(|s| s.as_str() == fact) {
                label
                    .side
                    .replace(side)
                    .map_or(Ok(()), |_| Err(duplicate()))?;
            } else if let Some(height) = Height::ALL.into_iter().find(|h| h.as_str() == fact) {
                label
                    .height
                    .replace(height)
                    .map_or(Ok(()), |_| Err(duplicate()))?;
            } else {
                return Err(format!(
                    "label `{text}`: `{fact}` is not a stroke (smash, clear, drop, drive, net, \
                     lift, serve), a side (forehand, backhand) or a height (overhead, sidearm, \
                     underarm); `any` and `idle` stand alone"
                ));
            }
        }
        Ok(label)
    }

    /// The label as written (`smash+overhead`, `idle`, `any`).
    pub fn render(&self) -> String {
        if self.idle {
            return "idle".into();
        }
        let facts: Vec<&str> = [
            self.stroke.map(Stroke::as_str),
            self.side.map(Side::as_str),
            self.height.map(Height::as_str),
        ]
        .into_iter()
        .flatten()
        .collect();
        if facts.is_empty() {
            "any".into()
        } else {
            facts.join("+")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panicking(text in "[a-z+ ]{0,40}") {
            let _ = Label::parse(&text);
        }

        #[test]
        fn a_rendered_label_parses_back_to_itself(
            stroke in prop::option::of(0..7usize),
            side in prop::option::of(prop::bool::ANY),
            height in prop::option::of(0..3usize),
        ) {
            let label = Label {
                stroke: stroke.map(|i| Stroke::ALL[i]),
                side: side.map(|f| if f { Side::Forehand } else { Side::Backhand }),
                height: height.map(|i| Height::ALL[i]),
                idle: false,
            };
            prop_assert_eq!(Label::parse(&label.render()), Ok(label));
        }
    }

    #[test]
    fn labels_combine_a_stroke_a_side_and_a_height() {
        let l = Label::parse("smash+overhead").expect("valid");
        assert_eq!(
            (l.stroke, l.side, l.height),
            (Some(Stroke::Smash), None, Some(Height::Overhead))
        );
        assert_eq!(
            Label::parse("backhand").expect("valid").side,
            Some(Side::Backhand)
        );
        assert_eq!(
            Label::parse("drive+forehand").expect("valid").render(),
            "drive+forehand"
        );
        assert!(Label::parse("forehand+backhand").is_err());
        assert!(
            Label::parse("topspin")
                .expect_err("unknown")
                .contains("topspin")
        );
        assert!(Label::parse("").is_err());
        assert!(Label::parse("idle").expect("valid").idle);
        assert_eq!(Label::parse("any").expect("valid"), Label::default());
        assert!(Label::parse("idle+forehand").is_err());
    }
}
