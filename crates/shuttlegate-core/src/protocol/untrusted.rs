//! Quoting text a client chose (a device code from a URL, an unknown message `type`) in an error
//! or a log line. Such text is clipped and its control characters replaced, so it can neither
//! flood a log nor forge a line of it (`%0A` decoded to a newline, an escape sequence, a bidi
//! override that reorders what an operator reads). The one place this is done.

/// Characters of untrusted text kept when it is quoted.
pub const CLIP_CHARS: usize = 40;

/// At most [`CLIP_CHARS`] characters of `text`, each character that could change how the line
/// reads replaced by `?`, and `…` when something was cut.
pub fn clip(text: &str) -> String {
    let mut clipped: String = text
        .chars()
        .take(CLIP_CHARS)
        .map(|c| if is_disruptive(c) { '?' } else { c })
        .collect();
    if text.chars().nth(CLIP_CHARS).is_some() {
        clipped.push('…');
    }
    clipped
}

/// Control characters (newlines, escapes), line and paragraph separators and other non-space
/// whitespace, and the bidirectional overrides and isolates.
fn is_disruptive(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_newline_cannot_start_a_forged_line() {
        assert_eq!(
            clip("racket\n[INFO] device admin connected"),
            "racket?[INFO] device admin connected"
        );
        assert_eq!(clip("a\u{2028}b\u{202E}c\td"), "a?b?c?d");
    }

    #[test]
    fn long_text_is_cut_with_a_mark() {
        let long = "x".repeat(100);
        assert_eq!(clip(&long), format!("{}…", "x".repeat(CLIP_CHARS)));
        assert_eq!(clip(&"y".repeat(CLIP_CHARS)), "y".repeat(CLIP_CHARS));
    }

    proptest! {
        #[test]
        fn quoted_text_is_one_short_line_and_keeps_printable_text(text in any::<String>()) {
            let quoted = clip(&text);
            prop_assert!(quoted.chars().count() <= CLIP_CHARS + 1);
            prop_assert!(!quoted.chars().any(is_disruptive));
            prop_assert!(!quoted.contains('\n') && !quoted.contains('\r'));
            if text.chars().count() <= CLIP_CHARS && !text.chars().any(is_disruptive) {
                prop_assert_eq!(quoted, text);
            }
        }
    }
}
