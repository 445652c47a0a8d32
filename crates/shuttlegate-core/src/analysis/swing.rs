//! The swing as it leaves the analyser: SPEC §3's swing JSON, field for field.
//!
//! Unmeasurable values are `null` and their reason is in `null_reasons` (keyed by the JSON
//! path of the missing value), so a consumer can tell "not measured" from "zero".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::confidence::{Confidences, Evidence};
use super::quality::{Flags, unversioned};

/// Stroke type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stroke {
    Smash,
    Clear,
    Drop,
    Drive,
    Net,
    Lift,
    Serve,
    Unknown,
}

impl Stroke {
    pub const ALL: [Stroke; 8] = [
        Stroke::Smash,
        Stroke::Clear,
        Stroke::Drop,
        Stroke::Drive,
        Stroke::Net,
        Stroke::Lift,
        Stroke::Serve,
        Stroke::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stroke::Smash => "smash",
            Stroke::Clear => "clear",
            Stroke::Drop => "drop",
            Stroke::Drive => "drive",
            Stroke::Net => "net",
            Stroke::Lift => "lift",
            Stroke::Serve => "serve",
            Stroke::Unknown => "unknown",
        }
    }
}

/// Which face met the shuttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Forehand,
    Backhand,
}

impl Side {
    pub const ALL: [Side; 2] = [Side::Forehand, Side::Backhand];

    /// The name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Forehand => "forehand",
            Side::Backhand => "backhand",
        }
    }
}

/// Where the racket head was relative to the hand at contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Height {
    Overhead,
    Sidearm,
    Underarm,
}

impl Height {
    pub const ALL: [Height; 3] = [Height::Overhead, Height::Sidearm, Height::Underarm];

    /// The name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Height::Overhead => "overhead",
            Height::Sidearm => "sidearm",
            Height::Underarm => "underarm",
        }
    }
}

/// Kinetic-chain measurements of one swing (waist, shoulder, wrist nodes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    pub peak_dps: Segments,
    pub delay_ms: Delays,
    pub rom_deg: Segments,
    pub energy_ratio: Option<f64>,
}

/// One value per body segment; `None` when not measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Segments {
    pub waist: Option<f64>,
    pub shoulder: Option<f64>,
    pub wrist: Option<f64>,
}

/// Peak-to-peak delays along the chain, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Delays {
    pub waist_to_shoulder: Option<f64>,
    pub shoulder_to_wrist: Option<f64>,
}

/// One swing (SPEC §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "swing")]
pub struct Swing {
    /// Journal id, filled in by the daemon once the swing is journaled.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<u64>,
    pub device: String,
    pub user: Option<String>,
    pub session_id: String,
    /// 1-based number of the swing within the device's session.
    pub swing_no: u64,
    /// Unix ms (sample time).
    pub t_start: f64,
    pub t_impact: f64,
    pub t_end: f64,
    /// Shuttle contact (the acceleration transient) rather than an air swing.
    pub impact: bool,
    pub stroke: Stroke,
    /// `null` (with a reason) when no racket rule measured the swing: a `chain_only` swing.
    pub side: Option<Side>,
    /// `null` (with a reason) as `side`.
    pub height: Option<Height>,
    pub racket_speed_kmh: Option<f64>,
    pub shuttle_speed_kmh: Option<f64>,
    /// A gyroscope or accelerometer axis hit its full scale during the swing; the speed was
    /// estimated from the unsaturated part.
    pub saturated: bool,
    /// How sure the stroke classification is, 0–1; `null` when not assessed. The same as
    /// `confidences.stroke` (kept for the consumers of analysis versions before 11).
    #[serde(default)]
    pub confidence: Option<f64>,
    /// How sure each classification is, 0–1: the stroke, the side and the height; `null`
    /// when not assessed (a `chain_only` swing, a swing without a gravity anchor).
    #[serde(default)]
    pub confidences: Option<Confidences>,
    /// What limits this result (a clipped or wrapped sensor, a wrist estimate, …).
    #[serde(default)]
    pub flags: Flags,
    /// The analysis method's version ([`super::ANALYSIS_VERSION`]).
    #[serde(default = "unversioned")]
    pub analysis_version: String,
    /// `None` when the device has no body node.
    pub chain: Option<Chain>,
    /// Why a `null` above is null, by field path (`"chain.delay_ms.waist_to_shoulder"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub null_reasons: BTreeMap<String, String>,
    /// What the classifier read at contact, for the evaluation's breakdowns (`eval
    /// --verbose`, in process): not sent anywhere.
    #[serde(skip)]
    pub contact: ContactReading,
}

/// The contact figures a swing's stroke was decided on (`None`: not assessed, or a swing
/// read back from the journal). A diagnostic, not a result: it is not serialised, and two
/// swings that agree on every field of the wire are equal whatever it holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContactReading(pub Option<Evidence>);

impl PartialEq for ContactReading {
    fn eq(&self, _: &ContactReading) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_and_height_names_are_their_serialised_names() {
        for side in Side::ALL {
            assert_eq!(serde_json::to_value(side).unwrap(), side.as_str());
        }
        for height in Height::ALL {
            assert_eq!(serde_json::to_value(height).unwrap(), height.as_str());
        }
    }

    #[test]
    fn swing_serialises_with_the_spec_field_names() {
        let swing = Swing {
            id: Some(81234),
            device: "racket-01".into(),
            user: Some("u-42".into()),
            session_id: "s-0017".into(),
            swing_no: 37,
            t_start: 1732400012001.0,
            t_impact: 1732400012190.0,
            t_end: 1732400012260.0,
            impact: true,
            stroke: Stroke::Smash,
            side: Some(Side::Forehand),
            height: Some(Height::Overhead),
            racket_speed_kmh: Some(182.4),
            shuttle_speed_kmh: Some(301.0),
            saturated: false,
            confidence: Some(0.93),
            confidences: Some(Confidences {
                stroke: 0.93,
                side: 0.99,
                height: 0.97,
            }),
            flags: [super::super::quality::Flag::Clipped].into(),
            analysis_version: "2".into(),
            chain: Some(Chain {
                peak_dps: Segments {
                    waist: Some(265.7),
                    shoulder: Some(442.8),
                    wrist: None,
                },
                delay_ms: Delays {
                    waist_to_shoulder: Some(82.0),
                    shoulder_to_wrist: None,
                },
                rom_deg: Segments::default(),
                energy_ratio: Some(0.71),
            }),
            null_reasons: BTreeMap::from([(
                "chain.peak_dps.wrist".to_string(),
                "no wrist node".to_string(),
            )]),
            contact: ContactReading::default(),
        };
        let v = serde_json::to_value(&swing).expect("serialises");
        assert_eq!(v["type"], "swing");
        assert_eq!(v["id"], 81234);
        assert_eq!(v["stroke"], "smash");
        assert_eq!(v["side"], "forehand");
        assert_eq!(v["height"], "overhead");
        assert_eq!(v["chain"]["delay_ms"]["waist_to_shoulder"], 82.0);
        assert!(v["chain"]["peak_dps"]["wrist"].is_null());
        assert_eq!(v["null_reasons"]["chain.peak_dps.wrist"], "no wrist node");
        assert_eq!(v["confidence"], 0.93);
        assert_eq!(
            v["confidences"],
            serde_json::json!({"stroke": 0.93, "side": 0.99, "height": 0.97})
        );
        assert_eq!(v["flags"], serde_json::json!(["clipped"]));
        assert_eq!(v["analysis_version"], "2");
        let back: Swing = serde_json::from_value(v).expect("deserialises");
        assert_eq!(back, swing);
    }
}

#[cfg(test)]
mod compatibility {
    use super::*;

    /// Swings journaled before results carried a version read back as version 1, unflagged.
    #[test]
    fn a_swing_journaled_without_quality_fields_reads_as_version_1() {
        let old = r#"{"type":"swing","device":"d","user":null,"session_id":"s","swing_no":1,
            "t_start":1.0,"t_impact":2.0,"t_end":3.0,"impact":true,"stroke":"drive",
            "side":"forehand","height":"sidearm","racket_speed_kmh":100.0,
            "shuttle_speed_kmh":150.0,"saturated":false,"chain":null}"#;
        let swing: Swing = serde_json::from_str(old).expect("old swings still parse");
        assert_eq!(swing.analysis_version, "1");
        assert!(swing.flags.is_empty());
        assert_eq!(swing.confidence, None);
        assert_eq!(swing.confidences, None);
    }
}
