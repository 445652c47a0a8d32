//! Stroke and height from what the racket did at contact: the pure decision, apart from the
//! signal work that measures its inputs (mod.rs).
//!
//! The model (docs/analysis.md, "Classification"):
//! - **Height** from the shaft's elevation at contact: overhead above [`OVERHEAD_ELEV_DEG`],
//!   underarm below [`UNDERARM_ELEV_DEG`], sidearm between.
//! - **Serve**: the player stood still before the swing *and* the shaft pointed down at
//!   contact. The Laws of Badminton require the shuttle to be struck below the server's waist
//!   (Law 9.1.6; before 2018 it read "the shaft of the racket shall be pointing in a downward
//!   direction"). Stillness alone is not a serve: a drive or net shot played without a step
//!   is still a drive or a net shot.
//! - **Overhead**: a swing checked before contact (rate at contact well under the swing's peak)
//!   or slow is a drop; a drop is prepared like a clear and differs "primarily in racket speed"
//!   (Badminton: Steps to Success, drop-shot chapter). Otherwise the head path's pitch decides:
//!   going down, smash; level or up, clear.
//! - **Otherwise**: a push under `net_speed_kmh` is a net shot; faster, a drive (sidearm) or a
//!   lift (underarm).
//!
//! The cut-offs were chosen on the independent simulator's tuning seeds (0–139, 100 and
//! 200 Hz) within the physical ranges given at each constant; held-out figures are in
//! docs/analysis.md.

use crate::analysis::{AnalysisSettings, Height, Stroke};

/// Shaft elevation (°) above which contact is overhead. An overhead stroke meets the shuttle
/// "high above the head, almost at full extension" (Yap 2012, as summarised by the
/// biomechanics-of-badminton notes), so the shaft points well above the horizontal; 15° leaves
/// room for a late, low overhead contact and for 5–10° of attitude error.
pub const OVERHEAD_ELEV_DEG: f64 = 15.0;
/// Shaft elevation (°) below which contact is underarm (lifts, low and high serves: the head
/// hangs below the hand).
pub const UNDERARM_ELEV_DEG: f64 = -20.0;
/// A serve's shaft points down (Law 9.1.6, see the module docs) by at least this much (°),
/// which keeps a level drive played without a step out of the serves.
pub const SERVE_MAX_ELEV_DEG: f64 = -20.0;
/// Head path pitch (°) below which an overhead hit goes down (smash) rather than up (clear).
/// A smash is hit down from in front of the body; a clear's path at contact is level or
/// rising. A few degrees under level leaves flat, ambiguous contacts to the clear.
pub const SMASH_PITCH_DEG: f64 = -4.0;
/// Angular rate at contact over the swing's peak under which the swing was checked before
/// contact: the signature of a drop (a smash or clear is struck at full speed).
pub const CHECKED_RATIO: f64 = 0.78;
/// Overhead contact slower than this (km/h of racket head) is a drop: clears and smashes are
/// full swings (a club player's clear moves the head at 70–100 km/h; Phomsoupha et al. 2020
/// measured maximal racket velocities of 75 km/h for novices and 122 km/h for experts).
pub const DROP_MAX_SPEED_KMH: f64 = 50.0;

/// What the classifier looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contact {
    /// Shaft elevation above the horizontal, °.
    pub elevation_deg: f64,
    /// Head path's pitch above the horizontal, °.
    pub pitch_deg: f64,
    /// Angular rate at contact over the swing's peak (1 when struck at the peak).
    pub rate_share: f64,
    pub speed_kmh: f64,
    /// No footwork before the swing (see `AnalysisSettings::serve_quiet_ms`).
    pub quiet_before: bool,
}

pub fn height_of(elev_deg: f64) -> Height {
    if elev_deg > OVERHEAD_ELEV_DEG {
        Height::Overhead
    } else if elev_deg < UNDERARM_ELEV_DEG {
        Height::Underarm
    } else {
        Height::Sidearm
    }
}

/// The stroke of a swing with these contact figures.
pub fn classify(c: &Contact, settings: &AnalysisSettings) -> Stroke {
    let height = height_of(c.elevation_deg);
    if is_serve(c) {
        return Stroke::Serve;
    }
    match height {
        Height::Overhead if c.rate_share < CHECKED_RATIO || c.speed_kmh < DROP_MAX_SPEED_KMH => {
            Stroke::Drop
        }
        Height::Overhead if c.pitch_deg < SMASH_PITCH_DEG => Stroke::Smash,
        Height::Overhead => Stroke::Clear,
        _ if c.speed_kmh < settings.net_speed_kmh => Stroke::Net,
        Height::Sidearm => Stroke::Drive,
        Height::Underarm => Stroke::Lift,
    }
}

/// Still before and the shaft down: the Laws' serve (module docs).
fn is_serve(c: &Contact) -> bool {
    c.quiet_before && c.elevation_deg < SERVE_MAX_ELEV_DEG
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(elevation_deg: f64, pitch_deg: f64, speed_kmh: f64) -> Contact {
        Contact {
            elevation_deg,
            pitch_deg,
            rate_share: 1.0,
            speed_kmh,
            quiet_before: false,
        }
    }

    fn class(c: Contact) -> Stroke {
        classify(&c, &AnalysisSettings::default())
    }

    #[test]
    fn overhead_strokes_split_on_path_pitch_checking_and_speed() {
        assert_eq!(class(contact(50.0, -20.0, 110.0)), Stroke::Smash);
        assert_eq!(class(contact(50.0, 20.0, 90.0)), Stroke::Clear);
        assert_eq!(class(contact(50.0, -5.0, 40.0)), Stroke::Drop);
        let checked = Contact {
            rate_share: 0.5,
            ..contact(50.0, -20.0, 80.0)
        };
        assert_eq!(class(checked), Stroke::Drop);
    }

    #[test]
    fn low_strokes_split_on_speed_and_height() {
        assert_eq!(class(contact(0.0, 0.0, 70.0)), Stroke::Drive);
        assert_eq!(class(contact(-50.0, 30.0, 70.0)), Stroke::Lift);
        assert_eq!(class(contact(0.0, 10.0, 20.0)), Stroke::Net);
        assert_eq!(class(contact(0.0, 10.0, 35.0)), Stroke::Drive);
        assert_eq!(class(contact(-50.0, 30.0, 20.0)), Stroke::Net);
    }

    /// A serve needs the stillness and the shaft down; stillness alone leaves a drive a
    /// drive.
    #[test]
    fn a_serve_is_still_and_shaft_down() {
        let still = |c: Contact| Contact {
            quiet_before: true,
            ..c
        };
        assert_eq!(class(still(contact(-50.0, 30.0, 60.0))), Stroke::Serve);
        assert_eq!(class(still(contact(-50.0, 20.0, 20.0))), Stroke::Serve);
        assert_eq!(class(still(contact(0.0, 0.0, 70.0))), Stroke::Drive);
        assert_eq!(class(contact(-50.0, 30.0, 60.0)), Stroke::Lift);
        assert_eq!(class(still(contact(50.0, -20.0, 110.0))), Stroke::Smash);
    }

    #[test]
    fn height_has_a_sidearm_band_between_the_cut_offs() {
        assert_eq!(height_of(40.0), Height::Overhead);
        assert_eq!(height_of(0.0), Height::Sidearm);
        assert_eq!(height_of(-40.0), Height::Underarm);
    }
}
