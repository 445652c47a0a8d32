//! One input validator for every source: device messages (`inbound`), the admin HTTP API, cloud
//! commands, and the admin and phone WebSockets to come.
//!
//! Exists so that a value is held to the same rule whichever door it came in by: before it, an
//! admin `session_id` skipped the device-side checks and a bad one was written into every court
//! snapshot. The rules are defined once here; each parser calls them and turns an [`Invalid`]
//! into its own error type, which keeps the field's name and the rule's words.
//!
//! - Ids (device code, session id, command id, user id): 1 to [`IdKind::max_chars`] characters,
//!   each of [`ID_CHARS`]. What the deployed V3.3 firmware sends stays valid: session ids are the
//!   seed backend's integers (`"124"`), device codes are like `2025001` or `racket-01`, WeChat
//!   open ids are letters, digits, `-` and `_`.
//! - `seq`: within 0..2^53, so it survives a JSON double (JavaScript, the cloud) and `seq + 1`
//!   never overflows.
//! - `rate_hz`: within 1..=10,000 Hz.
//! - Measured numbers: finite.

use std::fmt;

/// The characters an id may hold, in words (for error texts and docs).
pub const ID_CHARS: &str = "A–Z a–z 0–9 - _ . :";
/// Highest `seq` + 1: 2^53, the largest integer a JSON double holds exactly.
pub const SEQ_LIMIT: u64 = 1 << 53;
/// Lowest `rate_hz`.
pub const MIN_RATE_HZ: f64 = 1.0;
/// Highest `rate_hz`.
pub const MAX_RATE_HZ: f64 = 10_000.0;

/// Which id a value is: each has its own length bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A hub's code, as in `/ws/esp32/{code}/` and `[[devices]] code`.
    DeviceCode,
    /// A session id. V3.3 parses pushes into a 512-byte JSON document, so ids much longer than
    /// 64 characters would make its `start_collection` unreadable to it.
    SessionId,
    /// A command's id (the firmware's `ack`, the cloud's and the admin's `command_id`).
    CommandId,
    /// A player (phones, device bindings).
    UserId,
}

impl IdKind {
    /// Longest id of this kind, in characters.
    pub const fn max_chars(self) -> usize {
        match self {
            IdKind::DeviceCode => 32,
            IdKind::SessionId => 64,
            IdKind::CommandId | IdKind::UserId => 128,
        }
    }
}

/// The rule a value broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Empty,
    TooLong { max_chars: usize },
    BadCharacter { at: usize },
    SeqOutOfRange,
    RateOutOfRange,
    NotFinite,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Empty => write!(f, "must not be empty"),
            Rule::TooLong { max_chars } => write!(f, "must be at most {max_chars} characters"),
            Rule::BadCharacter { at } => write!(
                f,
                "may hold only the characters {ID_CHARS} (character {} is not one)",
                at + 1
            ),
            Rule::SeqOutOfRange => write!(f, "must be an integer from 0 to 2^53 - 1"),
            Rule::RateOutOfRange => {
                write!(f, "must be a number from {MIN_RATE_HZ} to {MAX_RATE_HZ}")
            }
            Rule::NotFinite => write!(f, "must be a finite number"),
        }
    }
}

/// A value that broke a rule: the field (as a path, `session_id`, `samples[3][2]`) and the rule.
/// Displayed as "`session_id` must not be empty".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {rule}")]
pub struct Invalid {
    pub field: String,
    pub rule: Rule,
}

impl Invalid {
    fn new(field: &str, rule: Rule) -> Invalid {
        Invalid {
            field: field.to_owned(),
            rule,
        }
    }
}

/// Whether `c` may appear in an id.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

/// Checks an id of `kind` held in `field`.
pub fn id(kind: IdKind, field: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err(Invalid::new(field, Rule::Empty));
    }
    let max_chars = kind.max_chars();
    if value.chars().nth(max_chars).is_some() {
        return Err(Invalid::new(field, Rule::TooLong { max_chars }));
    }
    match value.chars().position(|c| !is_id_char(c)) {
        Some(at) => Err(Invalid::new(field, Rule::BadCharacter { at })),
        None => Ok(()),
    }
}

/// Checks a batch's `seq`.
pub fn seq(field: &str, value: u64) -> Result<u64, Invalid> {
    if value < SEQ_LIMIT {
        Ok(value)
    } else {
        Err(Invalid::new(field, Rule::SeqOutOfRange))
    }
}

/// Checks a sampling rate.
pub fn rate_hz(field: &str, value: f64) -> Result<f64, Invalid> {
    if (MIN_RATE_HZ..=MAX_RATE_HZ).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::new(field, Rule::RateOutOfRange))
    }
}

/// Checks a measured number.
pub fn finite(field: &str, value: f64) -> Result<f64, Invalid> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Invalid::new(field, Rule::NotFinite))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KINDS: [IdKind; 4] = [
        IdKind::DeviceCode,
        IdKind::SessionId,
        IdKind::CommandId,
        IdKind::UserId,
    ];

    #[test]
    fn what_the_deployed_firmware_and_the_seed_backend_send_is_valid() {
        for (kind, value) in [
            (IdKind::DeviceCode, "2025001"),
            (IdKind::DeviceCode, "racket-01"),
            (IdKind::SessionId, "124"),
            (IdKind::SessionId, "s-0017"),
            (IdKind::SessionId, "racket-01-1732400000123"),
            (IdKind::CommandId, "c-7"),
            (IdKind::UserId, "u-42"),
            (IdKind::UserId, "oXk3e5Bq_2vW-9dYpLmN0aRtUz1c"),
        ] {
            assert_eq!(id(kind, "id", value), Ok(()), "{kind:?} {value}");
        }
    }

    #[test]
    fn errors_name_the_field_and_the_rule() {
        let err = id(IdKind::SessionId, "session_id", "s\n1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`session_id` may hold only the characters A–Z a–z 0–9 - _ . : (character 2 is not one)"
        );
        assert_eq!(
            id(IdKind::SessionId, "session_id", "")
                .unwrap_err()
                .to_string(),
            "`session_id` must not be empty"
        );
        assert_eq!(
            seq("seq", u64::MAX).unwrap_err().to_string(),
            "`seq` must be an integer from 0 to 2^53 - 1"
        );
        assert_eq!(
            rate_hz("rate_hz", 0.5).unwrap_err().to_string(),
            "`rate_hz` must be a number from 1 to 10000"
        );
    }

    #[test]
    fn the_bounds_themselves() {
        assert_eq!(seq("seq", SEQ_LIMIT - 1), Ok(SEQ_LIMIT - 1));
        assert!(seq("seq", SEQ_LIMIT).is_err());
        assert_eq!(rate_hz("r", 1.0), Ok(1.0));
        assert_eq!(rate_hz("r", 10_000.0), Ok(10_000.0));
        assert!(rate_hz("r", f64::NAN).is_err());
        assert!(finite("x", f64::INFINITY).is_err());
        let longest = "s".repeat(64);
        assert_eq!(id(IdKind::SessionId, "s", &longest), Ok(()));
        assert!(id(IdKind::SessionId, "s", &format!("{longest}s")).is_err());
    }

    proptest! {
        /// The validator's verdict is exactly the rule: length within bounds and every
        /// character from the set.
        #[test]
        fn an_id_is_valid_exactly_when_its_length_and_characters_are(value in ".{0,140}", k in 0..4usize) {
            let kind = KINDS[k];
            let n = value.chars().count();
            let expected = n >= 1 && n <= kind.max_chars() && value.chars().all(is_id_char);
            let verdict = id(kind, "f", &value);
            prop_assert_eq!(verdict.is_ok(), expected);
            if let Err(e) = verdict {
                prop_assert_eq!(e.field, "f");
            }
        }

        #[test]
        fn ids_from_the_allowed_set_within_length_pass(value in "[A-Za-z0-9._:-]{1,32}", k in 0..4usize) {
            prop_assert_eq!(id(KINDS[k], "f", &value), Ok(()));
        }

        #[test]
        fn a_control_character_anywhere_is_refused(prefix in "[a-z0-9]{0,20}", c in proptest::char::range('\0', '\u{1f}'), suffix in "[a-z0-9]{0,20}") {
            let value = format!("{prefix}{c}{suffix}");
            prop_assert!(id(IdKind::SessionId, "session_id", &value).is_err());
        }

        #[test]
        fn seq_and_rate_checks_match_their_ranges(s in any::<u64>(), r in any::<f64>()) {
            prop_assert_eq!(seq("seq", s).is_ok(), s < SEQ_LIMIT);
            prop_assert_eq!(rate_hz("rate_hz", r).is_ok(), (1.0..=10_000.0).contains(&r));
            prop_assert_eq!(finite("x", r).is_ok(), r.is_finite());
        }
    }
}
