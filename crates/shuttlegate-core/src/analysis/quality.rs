//! How far a result can be trusted: the analyser's version, a confidence, and flags naming what
//! about the input or the method limits it.
//!
//! Results from different analyser versions differ (a `replay` re-analyses stored sessions with
//! the current one), so every swing and summary names the version that made it; the cloud
//! compares results only within one version. Flags say what a real sensor did to the data (a
//! wrap past full scale, clipping, no calibration) or what the analyser had to assume (a wrist
//! node read in place of a racket node, a node placement inferred rather than configured), so a
//! consumer can weigh or filter results without knowing the analyser's internals.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The analysis method's version, carried by every swing and summary. Bump it whenever a change
/// can change a result for the same input (a threshold, a model, a new rule), not for
/// refactors; docs/analysis.md lists what each version changed.
///
/// Version 1 is the analyser before results carried a version: records journaled without the
/// field deserialise as version 1.
pub const ANALYSIS_VERSION: &str = "17";

/// What the version of a result journaled without one was.
pub fn unversioned() -> String {
    "1".to_string()
}

/// Something that limits a result, named on the swing (`flags`) and counted in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// A gyroscope or accelerometer axis sat at full scale; the peak was estimated from the
    /// unclipped flanks.
    Clipped,
    /// An axis wrapped to the opposite sign past full scale (WitMotion-type sensors) and was
    /// unwrapped.
    Wrapped,
    /// No rest was seen to calibrate the accelerometer's offset and scale or the gyroscope's
    /// bias; raw readings were used.
    Uncalibrated,
    /// The device has no racket node: racket-head figures are estimated from a wrist (or
    /// forearm) node.
    WristEstimate,
    /// The node's placement or axes were inferred from the data, not configured.
    PlacementInferred,
    /// The node's sample rate changed during the swing's data.
    RateChanged,
    /// The classification's confidence was below the threshold: the stroke is `unknown`.
    LowConfidence,
    /// Found from the body nodes' kinetic chain alone: the racket (or wrist) rule did not fire.
    ChainOnly,
    /// A body node's gyroscope sat at full scale around the swing, or wrapped past it and was
    /// left so: that segment's chain peak and its time are estimated from the clean flanks
    /// either side (chain.rs), or, where no estimate fits, the peak is the rail's reading, a
    /// lower bound on the turn.
    ChainClipped,
}

impl Flag {
    /// The name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Clipped => "clipped",
            Flag::Wrapped => "wrapped",
            Flag::Uncalibrated => "uncalibrated",
            Flag::WristEstimate => "wrist_estimate",
            Flag::PlacementInferred => "placement_inferred",
            Flag::RateChanged => "rate_changed",
            Flag::LowConfidence => "low_confidence",
            Flag::ChainOnly => "chain_only",
            Flag::ChainClipped => "chain_clipped",
        }
    }
}

/// A swing's flags: a set, serialised as a sorted array of names.
pub type Flags = BTreeSet<Flag>;

/// How many swings of a session carried each flag (the summary's `flags`).
pub type FlagCounts = BTreeMap<Flag, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_are_their_serialised_names() {
        for flag in [
            Flag::Clipped,
            Flag::Wrapped,
            Flag::Uncalibrated,
            Flag::WristEstimate,
            Flag::PlacementInferred,
            Flag::RateChanged,
            Flag::LowConfidence,
            Flag::ChainOnly,
            Flag::ChainClipped,
        ] {
            assert_eq!(serde_json::to_value(flag).unwrap(), flag.as_str());
        }
    }

    #[test]
    fn flags_serialise_as_a_sorted_array_and_counts_as_a_map() {
        let flags: Flags = [Flag::Wrapped, Flag::Clipped].into();
        assert_eq!(
            serde_json::to_string(&flags).unwrap(),
            r#"["clipped","wrapped"]"#
        );
        let counts: FlagCounts = [(Flag::Clipped, 3)].into();
        assert_eq!(serde_json::to_string(&counts).unwrap(), r#"{"clipped":3}"#);
    }
}
