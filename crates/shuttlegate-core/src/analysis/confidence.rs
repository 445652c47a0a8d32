//! How sure each classification of a swing is: a probability, 0–1, from the margins of the
//! measured quantities to the classifier's decision boundaries and the errors those
//! measurements carry.
//!
//! The model: every quantity a decision reads — shaft elevation (height), head-path pitch
//! (smash or clear), rate at contact over the swing's peak (a checked drop), racket speed
//! (net shot or stroke), the head path's lean towards the face normal (side) — is measured with
//! a Gaussian error of a known σ. A class's confidence is the probability that the true value
//! lies in that class's interval given the measured one, `Φ((x − boundary)/σ)` for one
//! boundary. The stroke's confidence is the product of its height's and its within-height
//! decision's (a smash is overhead *and* its path goes down *and* it was not checked). The
//! σs come from what limits each measurement, not from fitting: the attitude from gravity is
//! good to a few degrees; contact time is known to a sample interval, over which the racket
//! turns `ω·dt`; a clipped peak is an estimate; a wrist node stands in for the racket with an
//! assumed geometry. So the same swing is less certain at 100 Hz than at 1 kHz, and less
//! certain when the sensor clipped — which is what the confidence is for.
//!
//! Pure functions; the thresholds are the classifier's (`measure::boundaries`), passed in. All
//! three go on the wire (`Swing::confidences`; `Swing::confidence` is the stroke's), bounded by
//! the placement they were read through ([`Confidences::through`]).

use serde::{Deserialize, Serialize};

use super::measure::Course;
use super::quality::{Flag, Flags};
use super::{Height, Stroke};

/// Attitude error from the gravity anchors and integration, σ, degrees (two anchors, each a
/// mean of quasi-static samples, give the shaft's elevation to 2–4°; the head path adds the
/// rate direction's error).
const ATTITUDE_SIGMA_DEG: f64 = 4.0;
/// Drift of gravity carried by the gyro alone (condition/attitude.rs), °/s of carrying: a
/// calibrated MEMS gyro's zero-rate offset is within about ±1 °/s (calibrate.rs), and the
/// carried "up" turns with it.
const CARRIED_DRIFT_DPS: f64 = 1.0;
/// Error of the side's angle (head path lean towards the face normal), σ, degrees: the rate
/// vector's direction at contact, noise and the node's mounting tolerance.
const SIDE_SIGMA_DEG: f64 = 8.0;
/// Error of the contact-over-peak rate ratio, σ (the rate at contact is extrapolated from
/// samples up to a sample interval before contact).
const RATIO_SIGMA: f64 = 0.04;
/// Relative error of the racket speed, σ (mount radius and hand-speed integration), and a
/// floor, km/h.
const SPEED_SIGMA_SHARE: f64 = 0.12;
const SPEED_SIGMA_FLOOR_KMH: f64 = 3.0;
/// What a flag does to the errors: clipping makes the rate at contact and the speed an
/// estimate; a wrist stand-in, an inferred placement or an uncalibrated sensor make the
/// attitude and the speed less sure.
const CLIPPED_FACTOR: f64 = 2.0;
const ASSUMED_GEOMETRY_FACTOR: f64 = 1.8;

/// The measured quantities the classifier read, and how well they are known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// Shaft elevation at contact, °.
    pub elevation_deg: f64,
    /// Head path pitch at contact, °.
    pub pitch_deg: f64,
    /// Rate at contact over the swing's peak.
    pub rate_ratio: f64,
    /// Racket-head speed, km/h.
    pub speed_kmh: f64,
    /// The head path's lean towards the face normal, ° (positive: forehand).
    pub side_lean_deg: f64,
    /// |ω⊥| at contact, °/s.
    pub rate_dps: f64,
    /// The primary node's sample interval around contact, ms.
    pub sample_interval_ms: f64,
    /// The device's settled speed reference, km/h (`measure::SpeedReference`): the speed
    /// boundaries are its shares when present, the absolute priors otherwise.
    pub reference_kmh: Option<f64>,
    /// No footwork before the swing (observed): a serve if the shaft points down.
    pub quiet_before: bool,
    /// Long enough after the device's previous swing to open a rally (observed,
    /// `measure::classify::opens_rally`): only then can it be a serve.
    pub opens_rally: bool,
    /// How long the gyro alone carried the gravity anchor up to contact, s: 0 for a
    /// quasi-static anchor in the swing's window.
    pub anchor_carried_s: f64,
    /// The swing's course up to contact (`measure::Course`): measured for the evaluation's
    /// breakdowns (`eval --verbose`); no decision reads it yet (docs/analysis-history.md,
    /// "What the swing's course separates").
    pub course: Course,
}

/// The decision boundaries the classifier uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Boundaries {
    pub overhead_elev_deg: f64,
    pub underarm_elev_deg: f64,
    /// Below overhead, a head path rising steeper than this is underarm.
    pub underarm_path_pitch_deg: f64,
    /// A still player's stroke is a serve when the shaft points below this.
    pub serve_max_elev_deg: f64,
    pub smash_pitch_deg: f64,
    pub checked_ratio: f64,
    /// Overhead contact slower than this is a drop (before the device's reference settles).
    pub drop_max_speed_kmh: f64,
    pub net_speed_kmh: f64,
    /// With a settled reference: overhead contact under this share of it is a drop, other
    /// contact under `net_max_share` a net shot.
    pub drop_max_share: f64,
    pub net_max_share: f64,
}

impl Boundaries {
    /// The drop and net speed boundaries, km/h, for a swing on a device with this reference.
    fn speeds(&self, reference_kmh: Option<f64>) -> (f64, f64) {
        match reference_kmh {
            Some(r) => (self.drop_max_share * r, self.net_max_share * r),
            None => (self.drop_max_speed_kmh, self.net_speed_kmh),
        }
    }
}

/// The probability that each classification is right, 0–1 (a swing's `confidences`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confidences {
    pub stroke: f64,
    pub side: f64,
    pub height: f64,
}

impl Confidences {
    /// These confidences for a swing read through an inferred placement: no classification
    /// is surer than the axes it was read through (`placement`, the inference's confidence
    /// when it turned the node), and the side no surer than the sense of the forehand's turn
    /// it was read about (`side_sense`: a stand-in node's inferred turn, or the centripetal
    /// reading's word on an undecided node read as made). `None`: as made or configured,
    /// taken as sure.
    ///
    /// The side comes out right when the lean and the sense are both read right or both
    /// wrong (two independent sign errors cancel): `s·p + (1 − s)(1 − p)`. A product would
    /// make a coin-toss sense on a coin-toss lean surer of the *other* side (0.25) than of a
    /// coin toss.
    pub fn through(self, placement: Option<f64>, side_sense: Option<f64>) -> Confidences {
        let axes = placement.unwrap_or(1.0);
        let side = match side_sense {
            Some(p) => self.side * p + (1.0 - self.side) * (1.0 - p),
            None => self.side,
        };
        Confidences {
            stroke: self.stroke * axes,
            side: side * axes,
            height: self.height * axes,
        }
    }
}

/// Errors (σ) of the decision quantities for this swing.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sigmas {
    angle_deg: f64,
    side_deg: f64,
    ratio: f64,
    speed_kmh: f64,
}

fn sigmas(e: &Evidence, flags: &Flags) -> Sigmas {
    // Contact is known to a sample interval (uniform: σ = dt/√12); the racket turns ω·dt.
    let timing_deg = e.rate_dps.abs() * e.sample_interval_ms / 1000.0 / 12f64.sqrt();
    let assumed = [
        Flag::WristEstimate,
        Flag::PlacementInferred,
        Flag::Uncalibrated,
    ]
    .iter()
    .any(|f| flags.contains(f));
    let geometry = if assumed {
        ASSUMED_GEOMETRY_FACTOR
    } else {
        1.0
    };
    let clipped = if flags.contains(&Flag::Clipped) || flags.contains(&Flag::Wrapped) {
        CLIPPED_FACTOR
    } else {
        1.0
    };
    Sigmas {
        angle_deg: geometry
            * ATTITUDE_SIGMA_DEG
                .hypot(timing_deg)
                .hypot(CARRIED_DRIFT_DPS * e.anchor_carried_s),
        side_deg: geometry * SIDE_SIGMA_DEG,
        ratio: clipped * RATIO_SIGMA,
        speed_kmh: geometry
            * clipped
            * (SPEED_SIGMA_SHARE * e.speed_kmh.abs()).max(SPEED_SIGMA_FLOOR_KMH),
    }
}

/// Standard normal CDF, through `libm`'s erf.
pub fn phi(z: f64) -> f64 {
    if z.is_nan() {
        return 0.5;
    }
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

/// P(true value > boundary) for a measurement `x` with error `sigma`.
fn above(x: f64, boundary: f64, sigma: f64) -> f64 {
    phi((x - boundary) / sigma.max(1e-9))
}

/// The probability of the height class the classifier chose: overhead above the overhead
/// elevation; underarm below the underarm elevation, or between the two with the head path
/// rising past its bound (the two errors taken as independent); sidearm the rest.
fn height_confidence(height: Height, e: &Evidence, b: &Boundaries, s: &Sigmas) -> f64 {
    let over = above(e.elevation_deg, b.overhead_elev_deg, s.angle_deg);
    let low = 1.0 - above(e.elevation_deg, b.underarm_elev_deg, s.angle_deg);
    let between = (1.0 - over - low).max(0.0);
    let rising = above(e.pitch_deg, b.underarm_path_pitch_deg, s.angle_deg);
    match height {
        Height::Overhead => over,
        Height::Underarm => low + between * rising,
        Height::Sidearm => between * (1.0 - rising),
    }
}

/// Confidences of a classified swing. `stroke` is the class chosen (before any low-confidence
/// rule). A serve is the observed stillness at a rally's opening and the shaft pointing down:
/// its confidence is the probability the shaft pointed below the serve bound; for a still
/// player's other strokes opening a rally, that the shaft did not.
pub fn assess(
    stroke: Stroke,
    height: Height,
    e: &Evidence,
    b: &Boundaries,
    flags: &Flags,
) -> Confidences {
    let s = sigmas(e, flags);
    let height_p = height_confidence(height, e, b, &s);
    // The classifier's decisions (measure/classify.rs): a still player opening a rally with
    // the shaft down serves; overhead, checked or slow is a drop, else the path's pitch splits smash and
    // clear; otherwise slow is a net shot, else a drive or lift by height.
    let serve = if e.quiet_before && e.opens_rally {
        1.0 - above(e.elevation_deg, b.serve_max_elev_deg, s.angle_deg)
    } else {
        0.0
    };
    let (drop_max_kmh, net_max_kmh) = b.speeds(e.reference_kmh);
    let checked = 1.0 - above(e.rate_ratio, b.checked_ratio, s.ratio);
    let slow_overhead = 1.0 - above(e.speed_kmh, drop_max_kmh, s.speed_kmh);
    let full_swing = (1.0 - checked) * (1.0 - slow_overhead);
    let down = 1.0 - above(e.pitch_deg, b.smash_pitch_deg, s.angle_deg);
    let slow = 1.0 - above(e.speed_kmh, net_max_kmh, s.speed_kmh);
    let within = match stroke {
        Stroke::Drop => 1.0 - full_swing,
        Stroke::Smash => full_swing * down,
        Stroke::Clear => full_swing * (1.0 - down),
        Stroke::Net => slow,
        Stroke::Drive | Stroke::Lift => 1.0 - slow,
        Stroke::Serve | Stroke::Unknown => 0.0,
    };
    let stroke_p = match stroke {
        Stroke::Serve => serve,
        _ => (1.0 - serve) * height_p * within,
    };
    Confidences {
        stroke: round3(stroke_p),
        side: round3(above(e.side_lean_deg.abs(), 0.0, s.side_deg)),
        height: round3(height_p),
    }
}

fn round3(v: f64) -> f64 {
    (v.clamp(0.0, 1.0) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A side whose lean is a coin toss, read about a sense that is a coin toss, is a coin
    /// toss (a product would say 0.25: surer of the other side); a sure lean keeps the
    /// sense's confidence.
    #[test]
    fn a_side_sense_and_its_lean_combine_as_independent_sign_errors() {
        let c = |side: f64| Confidences {
            stroke: 0.9,
            side,
            height: 0.8,
        };
        let tossed = c(0.5).through(None, Some(0.5));
        assert!((tossed.side - 0.5).abs() < 1e-12, "{tossed:?}");
        let sure = c(1.0).through(None, Some(0.7));
        assert!((sure.side - 0.7).abs() < 1e-12, "{sure:?}");
        assert_eq!((sure.stroke, sure.height), (0.9, 0.8));
    }

    const B: Boundaries = Boundaries {
        overhead_elev_deg: 15.0,
        underarm_elev_deg: -20.0,
        underarm_path_pitch_deg: 20.0,
        serve_max_elev_deg: -20.0,
        smash_pitch_deg: -4.0,
        checked_ratio: 0.78,
        drop_max_speed_kmh: 50.0,
        net_speed_kmh: 30.0,
        drop_max_share: 0.75,
        net_max_share: 0.4,
    };

    fn evidence() -> Evidence {
        Evidence {
            elevation_deg: 60.0,
            pitch_deg: -30.0,
            rate_ratio: 0.97,
            speed_kmh: 200.0,
            side_lean_deg: 50.0,
            rate_dps: 3000.0,
            sample_interval_ms: 5.0,
            reference_kmh: None,
            quiet_before: false,
            opens_rally: true,
            anchor_carried_s: 0.0,
            course: Course::default(),
        }
    }

    #[test]
    fn phi_matches_the_normal_table() {
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((phi(-1.96) - 0.024_997_9).abs() < 1e-6);
        assert!((phi(3.0) - 0.998_650_1).abs() < 1e-6);
    }

    #[test]
    fn a_smash_far_from_every_boundary_is_nearly_certain() {
        let c = assess(
            Stroke::Smash,
            Height::Overhead,
            &evidence(),
            &B,
            &Flags::new(),
        );
        assert!(c.stroke > 0.99 && c.side > 0.99 && c.height > 0.99, "{c:?}");
    }

    #[test]
    fn a_pitch_on_the_smash_clear_boundary_is_a_coin_toss() {
        let e = Evidence {
            pitch_deg: -4.0,
            ..evidence()
        };
        let c = assess(Stroke::Smash, Height::Overhead, &e, &B, &Flags::new());
        assert!((c.stroke - 0.5).abs() < 0.01, "{c:?}");
    }

    /// Gravity carried by the gyro for seconds is less sure than a still spell's.
    #[test]
    fn a_long_carried_anchor_makes_the_same_margin_less_sure() {
        let e = Evidence {
            elevation_deg: 25.0,
            ..evidence()
        };
        let carried = Evidence {
            anchor_carried_s: 8.0,
            ..e
        };
        let sure = assess(Stroke::Smash, Height::Overhead, &e, &B, &Flags::new());
        let unsure = assess(Stroke::Smash, Height::Overhead, &carried, &B, &Flags::new());
        assert!(unsure.height < sure.height, "{sure:?} {unsure:?}");
    }

    #[test]
    fn a_sparser_sample_rate_makes_the_same_margin_less_sure() {
        let e = Evidence {
            pitch_deg: -12.0,
            ..evidence()
        };
        let at_1khz = Evidence {
            sample_interval_ms: 1.0,
            ..e
        };
        let at_50hz = Evidence {
            sample_interval_ms: 20.0,
            ..e
        };
        let sure = assess(Stroke::Smash, Height::Overhead, &at_1khz, &B, &Flags::new());
        let unsure = assess(Stroke::Smash, Height::Overhead, &at_50hz, &B, &Flags::new());
        assert!(
            sure.stroke > 0.9 && unsure.stroke < 0.8,
            "{sure:?} {unsure:?}"
        );
    }

    #[test]
    fn clipping_makes_a_checked_swing_less_sure() {
        let e = Evidence {
            rate_ratio: 0.72,
            ..evidence()
        };
        let clean = assess(Stroke::Drop, Height::Overhead, &e, &B, &Flags::new());
        let clipped = assess(
            Stroke::Drop,
            Height::Overhead,
            &e,
            &B,
            &[Flag::Clipped].into(),
        );
        assert!(clean.stroke > clipped.stroke, "{clean:?} {clipped:?}");
    }

    #[test]
    fn sidearm_is_the_probability_between_both_boundaries() {
        let e = Evidence {
            elevation_deg: -2.5,
            speed_kmh: 120.0,
            ..evidence()
        };
        let c = assess(Stroke::Drive, Height::Sidearm, &e, &B, &Flags::new());
        // 17.5° from each boundary, σ = hypot(4, 3000·5/1000/√12 = 4.33) = 5.9°: 3.0 σ, so
        // 0.13 % beyond each.
        assert!((c.height - 0.997).abs() < 0.001 && c.stroke > 0.99, "{c:?}");
        let near_net = Evidence {
            speed_kmh: 31.0,
            ..e
        };
        let c = assess(Stroke::Drive, Height::Sidearm, &near_net, &B, &Flags::new());
        assert!(c.stroke < 0.65, "{c:?}");
    }

    #[test]
    fn a_side_lean_of_nothing_is_a_coin_toss() {
        let e = Evidence {
            side_lean_deg: 0.0,
            ..evidence()
        };
        let c = assess(Stroke::Smash, Height::Overhead, &e, &B, &Flags::new());
        assert_eq!(c.side, 0.5);
    }

    #[test]
    fn a_still_players_swing_is_a_serve_as_surely_as_the_shaft_points_down() {
        let still = |elevation_deg| Evidence {
            elevation_deg,
            quiet_before: true,
            opens_rally: true,
            speed_kmh: 40.0,
            ..evidence()
        };
        let down = assess(
            Stroke::Serve,
            Height::Underarm,
            &still(-50.0),
            &B,
            &Flags::new(),
        );
        assert!(down.stroke > 0.99, "{down:?}");
        let level = assess(
            Stroke::Serve,
            Height::Sidearm,
            &still(-20.0),
            &B,
            &Flags::new(),
        );
        assert!((level.stroke - 0.5).abs() < 0.01, "{level:?}");
        // The same still swing called a lift carries the serve's doubt the other way.
        let lift = assess(
            Stroke::Lift,
            Height::Underarm,
            &still(-21.0),
            &B,
            &Flags::new(),
        );
        assert!(lift.stroke < 0.6, "{lift:?}");
    }

    /// With a settled reference the speed boundaries are its shares: an expert's 80 km/h
    /// overhead is surely a drop against a 130 km/h reference, and surely not one against the
    /// absolute 50 km/h prior.
    #[test]
    fn speed_margins_are_taken_to_the_references_shares_once_settled() {
        let e = Evidence {
            speed_kmh: 80.0,
            ..evidence()
        };
        let referenced = Evidence {
            reference_kmh: Some(130.0),
            ..e
        };
        let drop = assess(
            Stroke::Drop,
            Height::Overhead,
            &referenced,
            &B,
            &Flags::new(),
        );
        let prior = assess(Stroke::Drop, Height::Overhead, &e, &B, &Flags::new());
        assert!(
            drop.stroke > 0.9 && prior.stroke < 0.1,
            "{drop:?} {prior:?}"
        );
    }

    /// Below overhead a rising head path makes the contact underarm, as surely as the path
    /// rises past its bound.
    #[test]
    fn a_rising_path_between_the_elevation_bounds_is_underarm_as_surely_as_it_rises() {
        let e = |pitch_deg| Evidence {
            elevation_deg: -5.0,
            pitch_deg,
            ..evidence()
        };
        let steep = assess(Stroke::Lift, Height::Underarm, &e(45.0), &B, &Flags::new());
        let on_bound = assess(Stroke::Lift, Height::Underarm, &e(20.0), &B, &Flags::new());
        assert!(steep.height > 0.99, "{steep:?}");
        assert!((on_bound.height - 0.5).abs() < 0.02, "{on_bound:?}");
    }
}
