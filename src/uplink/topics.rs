//! MQTT topic names: one place that knows the layout `{prefix}/{venue}/{court}/…`.
//!
//! Thousands of gateways share one broker cluster (SPEC §8), so every topic a gateway writes
//! lives under its own `{prefix}/{venue}/{court}/` subtree: ACLs can grant a gateway exactly its
//! subtree, and a consumer subscribes with wildcards (`{prefix}/+/+/swings`). Names are checked
//! once, when [`Topics`] is built: a segment may not be empty or contain `/`, `+`, `#` or NUL,
//! so no device code or venue name can escape its subtree or turn into a wildcard.

/// A name that cannot be used as a topic segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("{what} is empty; give it a value (it names an MQTT topic level)")]
    Empty { what: &'static str },
    #[error("{what} {value:?} contains {bad:?}, which MQTT reserves; rename it")]
    Reserved {
        what: &'static str,
        value: String,
        bad: char,
    },
}

/// The topics of one court's gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `{prefix}/{venue}/{court}` without a trailing slash.
    base: String,
}

/// Checks one topic level (or a `/`-separated prefix when `allow_slash`).
fn check_segment(what: &'static str, value: &str, allow_slash: bool) -> Result<(), TopicError> {
    if value.is_empty() {
        return Err(TopicError::Empty { what });
    }
    let reserved = |c: char| c == '+' || c == '#' || c == '\0' || (!allow_slash && c == '/');
    if let Some(bad) = value.chars().find(|&c| reserved(c)) {
        return Err(TopicError::Reserved {
            what,
            value: value.to_owned(),
            bad,
        });
    }
    if allow_slash && value.split('/').any(str::is_empty) {
        return Err(TopicError::Empty { what });
    }
    Ok(())
}

/// Checks a device code before it becomes a topic level.
pub fn check_device(device: &str) -> Result<(), TopicError> {
    check_segment("device code", device, false)
}

impl Topics {
    /// `prefix` may have several levels (`acme/prod`); venue and court are one level each.
    pub fn new(prefix: &str, venue: &str, court: &str) -> Result<Self, TopicError> {
        check_segment("topic_prefix", prefix, true)?;
        check_segment("venue", venue, false)?;
        check_segment("court", court, false)?;
        Ok(Self {
            base: format!("{prefix}/{venue}/{court}"),
        })
    }

    /// The court's subtree, `{prefix}/{venue}/{court}`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Analysed swings.
    pub fn swings(&self) -> String {
        format!("{}/swings", self.base)
    }

    /// Session summaries and session state changes.
    pub fn sessions(&self) -> String {
        format!("{}/sessions", self.base)
    }

    /// Other gateway and device events (commands and their acks, journal full …).
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }

    /// Raw sensor batches of one device, compressed as stored.
    pub fn raw(&self, device: &str) -> Result<String, TopicError> {
        check_device(device)?;
        Ok(format!("{}/raw/{device}", self.base))
    }

    /// A device's last known status (retained).
    pub fn device_status(&self, device: &str) -> Result<String, TopicError> {
        check_device(device)?;
        Ok(format!("{}/devices/{device}/status", self.base))
    }

    /// The gateway's status (retained; the last will sets it to `offline`).
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// Commands from the cloud (the gateway subscribes, QoS 1).
    pub fn commands(&self) -> String {
        format!("{}/commands", self.base)
    }

    /// Results of commands (`command_ack` or `command_error`), published by the gateway.
    pub fn command_results(&self) -> String {
        format!("{}/commands/results", self.base)
    }
}

/// A stable MQTT client id for this court: the broker keeps the persistent session under it, so
/// it must be the same across restarts and unique across the fleet. MQTT 3.1.1 brokers must
/// accept 23 characters of `[0-9a-zA-Z]`; most accept far more, so the readable form is kept and
/// other characters become `-`.
pub fn client_id(venue: &str, court: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    format!("shuttlegate-{}-{}", clean(venue), clean(court))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topics_live_under_the_court_subtree() {
        let t = Topics::new("sg/prod", "v1", "c3").unwrap();
        assert_eq!(t.swings(), "sg/prod/v1/c3/swings");
        assert_eq!(t.raw("racket-01").unwrap(), "sg/prod/v1/c3/raw/racket-01");
        assert_eq!(
            t.device_status("d").unwrap(),
            "sg/prod/v1/c3/devices/d/status"
        );
        assert_eq!(t.command_results(), "sg/prod/v1/c3/commands/results");
    }

    #[test]
    fn wildcards_and_separators_are_refused_with_the_key_named() {
        let err = Topics::new("sg", "v+1", "c").unwrap_err();
        assert!(err.to_string().contains("venue"), "{err}");
        assert!(Topics::new("sg//x", "v", "c").is_err());
        assert!(Topics::new("sg", "v", "").is_err());
        let t = Topics::new("sg", "v", "c").unwrap();
        assert!(t.raw("a/b").is_err());
        assert!(t.device_status("#").is_err());
    }

    #[test]
    fn client_id_is_stable_and_plain() {
        assert_eq!(client_id("Hall A", "court/3"), "shuttlegate-Hall-A-court-3");
        assert_eq!(client_id("v", "c"), client_id("v", "c"));
    }

    proptest! {
        #[test]
        fn an_accepted_device_adds_exactly_one_level(device in "\\PC{0,12}") {
            let t = Topics::new("p", "v", "c").unwrap();
            if let Ok(topic) = t.raw(&device) {
                prop_assert_eq!(topic.split('/').count(), 5);
                prop_assert!(!topic.contains('+') && !topic.contains('#'));
            }
        }
    }
}
