//! What the analysis needs to know about a device and the `[analysis]` config section.
//!
//! [`AnalysisSettings`] is embedded as-is by the config module under `[analysis]`, so every
//! field has a default and an explanation; [`DeviceProfile`] is built by the daemon from a
//! `[[devices]]` entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::condition::AxisMap;
use crate::batch::BodyPosition;

/// The `[analysis]` section. Every constant the analyser uses that a venue might reasonably
/// change lives here; the defaults are explained field by field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisSettings {
    /// Ideal waist→shoulder and shoulder→wrist peak delays, ms. The seed backend's ideals
    /// (`ideal_delays = [0.08, 0.05]` s in `wxapp/analysis.py`); used only for scoring.
    pub ideal_delay_ms: [f64; 2],
    /// Moment of inertia of the trunk about its long axis, kg·m², for the waist's rotational
    /// energy (the seed backend's `I_waist = 1.2`).
    pub waist_inertia_kg_m2: f64,
    /// Racket mass, kg, for the racket's kinetic energy (the seed backend's `m_racket = 0.1`;
    /// real rackets weigh 0.075–0.1 kg).
    pub racket_mass_kg: f64,
    /// Ideal ranges of motion, ° (the seed report's ideals: waist 45, shoulder 120, wrist 45).
    pub ideal_rom_deg: RomIdeals,
    /// Energy ratio at or above which the energy score is 100 (the seed report's 0.65).
    pub ideal_energy_ratio: f64,
    /// How far (in sample time) a late sample may trail the newest one and still be put in
    /// order, ms. A batch arriving later than this behind its successors is counted and
    /// dropped. 500 ms covers a few V3.3 batches (30 frames ≈ 150 ms at 200 Hz) being resent
    /// or reordered over Wi-Fi; the cost is that a swing followed by a gap waits this long.
    pub reorder_window_ms: f64,
    /// Longest pause between two impacts of one rally, ms. A clear or lift flies 1.2–2 s;
    /// 3 s leaves room for a slow high serve and ends the rally well before the next serve
    /// (players take 5–20 s between rallies).
    pub rally_max_gap_ms: f64,
    /// Racket angular speed (perpendicular to the shaft) that starts a swing, °/s. Ready-stance
    /// and footwork motion stays under ~150 °/s; the slowest net shot (≈ 8 km/h at 0.55 m
    /// → ≈ 230 °/s) is just above.
    pub swing_start_dps: f64,
    /// Angular speed below which a swing is over (after `swing_end_hold_ms`), °/s.
    pub swing_end_dps: f64,
    /// How long the angular speed must stay below `swing_end_dps` to end a swing, ms
    /// (long enough not to split a swing at a wobble, short enough to keep latency low).
    pub swing_end_hold_ms: f64,
    /// Shortest acceleration transient (second difference, g) that counts as shuttle contact.
    /// A smooth swing's second difference stays below ~0.5 g at 200 Hz; the lightest net-shot
    /// contact rings the frame with several g.
    pub impact_threshold_g: f64,
    /// Racket-head speed under which a non-overhead stroke is a net shot, km/h. Net shots and
    /// low serves are pushed at 10–35 km/h; a club player's lifts and drives reach 40 km/h and
    /// more (half to three quarters of a top speed of 20–34 m/s, Phomsoupha et al. 2020), and
    /// the speed read through a clipped gyro comes out low (docs/analysis.md), so the cut sits
    /// at 30 km/h. The prior only: once a device has measured a few swings, a net shot is one
    /// under a share of that device's own full-swing speed (measure/classify.rs).
    pub net_speed_kmh: f64,
    /// Stillness before a swing (no footwork, no rotation) that makes an underarm stroke a
    /// serve, ms: a server stands still before serving, a receiver steps in before hitting.
    pub serve_quiet_ms: f64,
    /// Initial shuttle speed over racket-head speed at contact (see docs/analysis.md: the
    /// shuttle's 5 g against the head's effective mass with a restitution near 0.65 gives
    /// ≈ 1.5).
    pub shuttle_speed_ratio: f64,
    /// Confidence (0–1: the probability the stroke class is right under the model in
    /// docs/analysis.md, "Confidence") below which the stroke is reported as `unknown`,
    /// flagged `low_confidence`, with the guess in `null_reasons.stroke`. 0 never withholds a
    /// guess; 0.5 withholds every guess likelier wrong than right. 0.3: withhold a guess only
    /// when another class is at least twice as likely (for two classes in play).
    pub min_stroke_confidence: f64,
}

/// Ideal ranges of motion per joint, °.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RomIdeals {
    pub waist: f64,
    pub shoulder: f64,
    pub wrist: f64,
}

impl Default for RomIdeals {
    fn default() -> Self {
        RomIdeals {
            waist: 45.0,
            shoulder: 120.0,
            wrist: 45.0,
        }
    }
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            ideal_delay_ms: [80.0, 50.0],
            waist_inertia_kg_m2: 1.2,
            racket_mass_kg: 0.1,
            ideal_rom_deg: RomIdeals::default(),
            ideal_energy_ratio: 0.65,
            reorder_window_ms: 500.0,
            rally_max_gap_ms: 3000.0,
            swing_start_dps: 220.0,
            swing_end_dps: 150.0,
            swing_end_hold_ms: 80.0,
            impact_threshold_g: 1.0,
            net_speed_kmh: 30.0,
            serve_quiet_ms: 700.0,
            shuttle_speed_ratio: 1.5,
            min_stroke_confidence: 0.3,
        }
    }
}

/// One device as the analyser needs it (built from a `[[devices]]` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceProfile {
    /// Device code.
    pub device: String,
    /// Bound user, copied into every swing.
    pub user: Option<String>,
    /// Distance from the swing's centre of rotation (the wrist) to the racket's sweet spot,
    /// m: racket-head speed = angular rate × this (+ the hand's own speed). The same on a
    /// wrist-only device, whose forearm is read as a virtual racket (condition/).
    pub mount_radius_m: f64,
    /// Accelerometer full scale, g (the seed nodes run at ±16 g).
    pub acc_full_scale_g: f64,
    /// Gyroscope full scale, °/s (±2000 °/s is the most an MPU-6050-class part offers).
    pub gyro_full_scale_dps: f64,
    /// Body positions the device carries. Empty means "whatever arrives".
    pub positions: Vec<BodyPosition>,
    /// Configured axes per node (`[[devices]] axes`): the node's axes onto the analyser's
    /// convention. A racket node without an entry has its axes inferred from its swings; a
    /// body node without one is assumed to follow the convention. Either way its swings are
    /// flagged `placement_inferred`.
    #[serde(default)]
    pub axes: BTreeMap<BodyPosition, AxisMap>,
    /// On a device without a racket node, its wrist node read as a virtual racket held at this
    /// angle to the forearm, ° (`[[devices]] wrist_grip_deg`; a handshake grip is about 75°).
    /// `None`: the wrist node is read as it is. Either way its swings are flagged
    /// `wrist_estimate`.
    #[serde(default)]
    pub wrist_grip_deg: Option<f64>,
    /// What the nodes report past full scale (`[[devices]] overflow`): by default a
    /// wrap-shaped jump is undone on its evidence ([`Overflow`]).
    #[serde(default)]
    pub overflow: Overflow,
    /// A racket node without configured `axes` has them inferred from its swings (the
    /// default); with `[[devices]] infer_axes = false` it is read in the convention.
    #[serde(default = "infer_axes_by_default")]
    pub infer_axes: bool,
}

/// `infer_axes` when a profile does not say: a racket node without `axes` is inferred.
fn infer_axes_by_default() -> bool {
    true
}

/// What a device's nodes report past full scale (`[[devices]] overflow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Not configured (`"auto"`): a sign wrap is undone where the readings show one (a jump of
    /// most of the range between readings near opposite rails, following the trend; see
    /// `condition/wrap.rs`) and the sensor's range is wide enough that no real motion jumps as
    /// far between two samples; otherwise only flagged `wrapped`.
    #[default]
    Auto,
    /// `"wrap"`: the nodes wrap (WitMotion-type): every wrap the readings show is undone,
    /// whatever the range and rate.
    Wrap,
    /// `"clip"`: the nodes hold the rail. A wrap-shaped jump is only flagged `wrapped`, the
    /// readings left as read (for a sensor known to clip, such a jump is a glitch).
    Clip,
}

impl DeviceProfile {
    /// A profile with the defaults: 0.55 m, ±16 g, ±2000 °/s, all four positions.
    pub fn new(device: impl Into<String>) -> Self {
        DeviceProfile {
            device: device.into(),
            user: None,
            mount_radius_m: 0.55,
            acc_full_scale_g: 16.0,
            gyro_full_scale_dps: 2000.0,
            positions: BodyPosition::ALL.to_vec(),
            axes: BTreeMap::new(),
            wrist_grip_deg: None,
            overflow: Overflow::Auto,
            infer_axes: true,
        }
    }

    /// Operator warnings about this profile (shown at start-up by the daemon): full scales
    /// that clip every real swing.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.gyro_full_scale_dps < 1000.0 {
            out.push(format!(
                "device {}: gyroscope full scale ±{} °/s clips every real swing (racket rates reach \
                 3000–5000 °/s); set the node to ±2000 °/s",
                self.device, self.gyro_full_scale_dps
            ));
        }
        if self.acc_full_scale_g < 8.0 {
            out.push(format!(
                "device {}: accelerometer full scale ±{} g clips swings and every impact; set the \
                 node to ±16 g",
                self.device, self.acc_full_scale_g
            ));
        }
        out
    }

    /// True when the device carries `position` (or declares none, i.e. takes what comes).
    pub fn carries(&self, position: BodyPosition) -> bool {
        self.positions.is_empty() || self.positions.contains(&position)
    }
}
