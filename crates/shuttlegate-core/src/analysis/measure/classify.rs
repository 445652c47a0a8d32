//! Stroke and height from what the racket did at contact: the pure decision, apart from the
//! signal work that measures its inputs (mod.rs), and the device's own speed reference it
//! reads racket speed against.
//!
//! The model (docs/analysis.md, "Classification"):
//! - **Height** from the shaft's elevation at contact: overhead above [`OVERHEAD_ELEV_DEG`],
//!   underarm below [`UNDERARM_ELEV_DEG`] — or below overhead with the head path rising
//!   steeper than [`UNDERARM_PATH_PITCH_DEG`] (an upward swing: a lift or serve met with the
//!   shaft only a little below level) — sidearm between.
//! - **Serve**: the player stood still before the swing *and* the shaft pointed down at
//!   contact. The Laws of Badminton require the shuttle to be struck below the server's waist
//!   (Law 9.1.6; before 2018 it read "the shaft of the racket shall be pointing in a downward
//!   direction"). Stillness alone is not a serve: a drive or net shot played without a step
//!   is still a drive or a net shot. And a serve opens a rally (the Laws of Badminton start
//!   every rally with a service, once the previous one has ended and the server stands in
//!   the service court), so a swing played soon after the same device's previous swing is
//!   no serve however still and low ([`opens_rally`]).
//! - **Overhead**: a swing checked before contact (rate at contact well under the swing's peak)
//!   or slow is a drop; a drop is prepared like a clear and differs "primarily in racket speed"
//!   (Badminton: Steps to Success, drop-shot chapter). Otherwise the head path's pitch decides:
//!   going down, smash; level or up, clear.
//! - **Otherwise**: a push is a net shot; faster, a drive (sidearm) or a lift (underarm).
//!
//! **Slow is relative to the player.** Players differ in top racket speed by a factor of 1.6
//! (novices 20.9 ± 4.8 m/s, experts 33.9 ± 5.8 m/s: Phomsoupha et al. 2020), so one player's
//! drop is as fast as another's clear. Once a device has [`REFERENCE_SETTLED_SWINGS`] measured
//! swings, a speed is read against its [`SpeedReference`] (an upper percentile of its recent
//! swings: the player's full swings); before that, against the absolute cut-offs
//! ([`DROP_MAX_SPEED_KMH`], `net_speed_kmh`), which stay the prior. A per-device bias of the
//! speed measurement (a node's mount, its reach) cancels in the ratio too.
//!
//! The cut-offs were chosen on the independent simulator's tuning seeds (0–199, 100 and
//! 200 Hz) within the physical ranges given at each constant; held-out figures are in
//! docs/analysis.md.

use std::collections::VecDeque;

use crate::analysis::{AnalysisSettings, Height, Stroke};

/// Shaft elevation (°) above which contact is overhead. An overhead stroke meets the shuttle
/// "high above the head, almost at full extension" (Yap 2012, as summarised by the
/// biomechanics-of-badminton notes), so the shaft points well above the horizontal; 15° leaves
/// room for a late, low overhead contact and for 5–10° of attitude error.
pub const OVERHEAD_ELEV_DEG: f64 = 15.0;
/// Shaft elevation (°) below which contact is underarm (lifts, low and high serves: the head
/// hangs below the hand).
pub const UNDERARM_ELEV_DEG: f64 = -20.0;
/// Head path pitch (°) above which a contact below overhead is underarm: the head swings up
/// from below the hand (a lift or serve sends the shuttle up from under it), while a drive's
/// path is flat — it is struck level to send the shuttle flat over the net. 20° leaves a
/// drive 5–10° of attitude error above level; chosen on the tuning seeds from 10–30° in 5°
/// steps (lower raised height and lowered stroke type, higher the reverse).
pub const UNDERARM_PATH_PITCH_DEG: f64 = 20.0;
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
/// Overhead contact slower than this (km/h of racket head) is a drop, while the device has no
/// settled reference: clears and smashes are full swings (a club player's clear moves the
/// head at 70–100 km/h; Phomsoupha et al. 2020 measured maximal racket velocities of 75 km/h
/// for novices and 122 km/h for experts).
pub const DROP_MAX_SPEED_KMH: f64 = 50.0;
/// Overhead contact slower than this share of the device's reference is a drop: a drop is a
/// full preparation with the speed taken off ("primarily in racket speed"); a clear or smash
/// is played near the player's top speed. 0.75 was chosen on the tuning seeds from 0.5–1.0.
pub const DROP_MAX_SHARE: f64 = 0.75;
/// A contact below overhead slower than this share of the reference is a net shot: a push or
/// a tap with the arm nearly still, against a drive or lift swung from the shoulder. Chosen
/// on the tuning seeds from 0.15–0.8 (0.4 beside the 0.75 above).
pub const NET_MAX_SHARE: f64 = 0.4;
/// Swings a device must have measured before its speed reference is believed: fewer do not
/// yet hold a full swing at their upper percentile (a session opens with any mix).
pub const REFERENCE_SETTLED_SWINGS: usize = 8;
/// The reference is this percentile of the device's recent measured speeds: its full swings'
/// speed, with the odd over-read swing (a clipped peak rebuilt too high) above it.
const REFERENCE_PERCENTILE: f64 = 0.9;
/// Recent swings the reference is taken over: a few minutes of play, so it follows a player
/// tiring or warming up, and a device handed to another player within a rally or two.
const REFERENCE_SWINGS: usize = 40;

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
    /// The device's speed reference when settled ([`SpeedReference::settled`]), km/h.
    pub reference_kmh: Option<f64>,
    /// No footwork before the swing (see `AnalysisSettings::serve_quiet_ms`).
    pub quiet_before: bool,
    /// Long enough after the device's previous swing to open a rally ([`opens_rally`]).
    pub opens_rally: bool,
}

/// The racket speed a device's player reaches in a full swing: the upper percentile of its
/// recent measured swings. Per device (a device is one player's racket), fed each measured
/// swing in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpeedReference {
    recent: VecDeque<f64>,
    seen: usize,
}

impl SpeedReference {
    /// Takes in a measured swing's racket speed (non-finite or non-positive ones are not
    /// measurements and are skipped).
    pub fn add(&mut self, speed_kmh: f64) {
        if !(speed_kmh.is_finite() && speed_kmh > 0.0) {
            return;
        }
        self.recent.push_back(speed_kmh);
        self.seen += 1;
        while self.recent.len() > REFERENCE_SWINGS {
            self.recent.pop_front();
        }
    }

    /// The reference, km/h, once [`REFERENCE_SETTLED_SWINGS`] swings were measured.
    pub fn settled(&self) -> Option<f64> {
        if self.seen < REFERENCE_SETTLED_SWINGS {
            return None;
        }
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let k = ((REFERENCE_PERCENTILE * v.len() as f64) as usize).min(v.len() - 1);
        Some(v[k])
    }
}

/// The speed cut-offs a contact is read against: relative to the device's settled reference,
/// or the absolute prior.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedBounds {
    /// Overhead contact slower than this is a drop, km/h.
    pub drop_max_kmh: f64,
    /// Contact below overhead slower than this is a net shot, km/h.
    pub net_max_kmh: f64,
}

impl SpeedBounds {
    pub fn of(reference_kmh: Option<f64>, settings: &AnalysisSettings) -> SpeedBounds {
        match reference_kmh {
            Some(r) => SpeedBounds {
                drop_max_kmh: DROP_MAX_SHARE * r,
                net_max_kmh: NET_MAX_SHARE * r,
            },
            None => SpeedBounds {
                drop_max_kmh: DROP_MAX_SPEED_KMH,
                net_max_kmh: settings.net_speed_kmh,
            },
        }
    }
}

/// Height from the shaft's elevation and the head path's pitch at contact.
pub fn height_of(elev_deg: f64, pitch_deg: f64) -> Height {
    if elev_deg > OVERHEAD_ELEV_DEG {
        Height::Overhead
    } else if elev_deg < UNDERARM_ELEV_DEG || pitch_deg > UNDERARM_PATH_PITCH_DEG {
        Height::Underarm
    } else {
        Height::Sidearm
    }
}

/// The stroke of a swing with these contact figures.
pub fn classify(c: &Contact, settings: &AnalysisSettings) -> Stroke {
    let height = height_of(c.elevation_deg, c.pitch_deg);
    if is_serve(c) {
        return Stroke::Serve;
    }
    let bounds = SpeedBounds::of(c.reference_kmh, settings);
    match height {
        Height::Overhead if c.rate_share < CHECKED_RATIO || c.speed_kmh < bounds.drop_max_kmh => {
            Stroke::Drop
        }
        Height::Overhead if c.pitch_deg < SMASH_PITCH_DEG => Stroke::Smash,
        Height::Overhead => Stroke::Clear,
        _ if c.speed_kmh < bounds.net_max_kmh => Stroke::Net,
        Height::Sidearm => Stroke::Drive,
        Height::Underarm => Stroke::Lift,
    }
}

/// Still before, opening a rally, and the shaft down: the Laws' serve (module docs).
fn is_serve(c: &Contact) -> bool {
    c.opens_rally && c.quiet_before && c.elevation_deg < SERVE_MAX_ELEV_DEG
}

/// Whether a swing whose contact is at `t_impact` (ms) can open a rally, given the contact of
/// the same device's previous swing. Within a rally one player's strokes are two flights
/// apart at most — the player's own shot crossing the net and the opponent's reply — and a
/// flight lasts at most `rally_max_gap_ms` (the court's own bound on the pause between two
/// impacts of a rally, settings.rs). A serve comes after the previous rally has ended: the
/// shuttle has landed and been picked up, and the server has taken position; elite singles
/// players rest 20–30 s between rallies (Hoffmann & Vogt 2023, Int. J. Perform. Anal. Sport,
/// doi 10.1080/24748668.2023.2272121: 20.4 ± 0.9 s in 2006, 29.7 ± 3.3 s in 2017). So a
/// swing within two flights of the player's previous one is still in that rally. A
/// swing whose contact the analyser did not find counts (at 100 Hz the search misses the
/// shuttle's transient on a third of racket swings), and so does a practice swing just
/// before a serve, which then hides it. A device's first swing may open a rally.
pub fn opens_rally(
    previous_swing_ms: Option<f64>,
    t_impact: f64,
    settings: &AnalysisSettings,
) -> bool {
    previous_swing_ms.is_none_or(|prev| t_impact - prev > 2.0 * settings.rally_max_gap_ms)
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
            reference_kmh: None,
            quiet_before: false,
            opens_rally: true,
        }
    }

    /// The same contact on a device whose reference has settled at `reference_kmh`.
    fn against(reference_kmh: f64, c: Contact) -> Contact {
        Contact {
            reference_kmh: Some(reference_kmh),
            ..c
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

    /// A still, low swing soon after the player's previous one is in the same rally: a lift
    /// or net shot, not a serve.
    #[test]
    fn a_serve_opens_a_rally() {
        let mid_rally = Contact {
            quiet_before: true,
            opens_rally: false,
            ..contact(-50.0, 30.0, 60.0)
        };
        assert_eq!(class(mid_rally), Stroke::Lift);
        let pushed = Contact {
            speed_kmh: 20.0,
            ..mid_rally
        };
        assert_eq!(class(pushed), Stroke::Net);
    }

    #[test]
    fn a_rally_opens_after_more_than_two_flights_without_a_swing() {
        let settings = AnalysisSettings::default();
        let two_flights = 2.0 * settings.rally_max_gap_ms;
        assert!(opens_rally(None, 1_000.0, &settings));
        assert!(!opens_rally(Some(0.0), 2_000.0, &settings));
        assert!(!opens_rally(Some(0.0), two_flights, &settings));
        assert!(opens_rally(Some(0.0), two_flights + 1.0, &settings));
    }

    #[test]
    fn height_has_a_sidearm_band_between_the_cut_offs() {
        assert_eq!(height_of(40.0, 0.0), Height::Overhead);
        assert_eq!(height_of(0.0, 0.0), Height::Sidearm);
        assert_eq!(height_of(-40.0, 0.0), Height::Underarm);
    }

    /// A lift met with the shaft a little below level is underarm by its rising head path,
    /// and a lift, not a drive; a level drive stays sidearm, and overhead stays overhead
    /// whatever the path.
    #[test]
    fn a_rising_head_path_below_overhead_is_underarm() {
        assert_eq!(height_of(-10.0, 35.0), Height::Underarm);
        assert_eq!(height_of(10.0, 25.0), Height::Underarm);
        assert_eq!(height_of(-10.0, 10.0), Height::Sidearm);
        assert_eq!(height_of(40.0, 35.0), Height::Overhead);
        assert_eq!(class(contact(-10.0, 35.0, 70.0)), Stroke::Lift);
        assert_eq!(class(contact(-10.0, 5.0, 70.0)), Stroke::Drive);
    }

    /// Once the device's reference has settled, slow is the player's own slow: a novice's
    /// 45 km/h clear is a clear against their 55 km/h top, an expert's 80 km/h drop is a drop
    /// against their 130 km/h top; before that the absolute prior decides.
    #[test]
    fn speed_is_read_against_the_devices_reference_once_settled() {
        let novice_clear = contact(50.0, 20.0, 45.0);
        assert_eq!(class(novice_clear), Stroke::Drop);
        assert_eq!(class(against(55.0, novice_clear)), Stroke::Clear);
        let expert_drop = contact(50.0, -10.0, 80.0);
        assert_eq!(class(expert_drop), Stroke::Smash);
        assert_eq!(class(against(130.0, expert_drop)), Stroke::Drop);
        // A push below overhead: a net shot for an expert at 40 km/h, a drive for a novice.
        let push = contact(0.0, 5.0, 40.0);
        assert_eq!(class(push), Stroke::Drive);
        assert_eq!(class(against(130.0, push)), Stroke::Net);
        assert_eq!(class(against(55.0, push)), Stroke::Drive);
    }

    #[test]
    fn the_reference_settles_on_the_upper_percentile_of_recent_swings() {
        let mut r = SpeedReference::default();
        for v in 1..REFERENCE_SETTLED_SWINGS {
            r.add(10.0 * v as f64);
            assert_eq!(r.settled(), None);
        }
        r.add(f64::NAN);
        r.add(0.0);
        assert_eq!(r.settled(), None, "non-measurements do not count");
        r.add(80.0);
        // 10…80 km/h: the 90th percentile of eight is the eighth.
        assert_eq!(r.settled(), Some(80.0));
        // It follows the player: forty slow swings later the fast ones are forgotten.
        for _ in 0..REFERENCE_SWINGS {
            r.add(30.0);
        }
        assert_eq!(r.settled(), Some(30.0));
    }
}
