//! Everything about one racket swing that the racket (or wrist) node alone can tell: impact
//! versus air swing, the angular-rate pulse seen through saturation, the racket's attitude at
//! contact, racket-head and shuttle speed, and the stroke, side and height.
//!
//! Conventions (docs/analysis.md): the node's x axis runs along the shaft towards the head,
//! z is the normal of the forehand face. The head moves along `ω × x̂`; its z component tells
//! which face met the shuttle.

// Index loops over parallel arrays read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

mod classify;
mod contact;
mod course;
mod fastest;
mod flanks;
mod hand;
mod handling;
mod lever;
mod radius;
mod side;

pub use classify::{Contact, SpeedReference, classify, height_of, opens_rally};
use contact::find_impact;
pub use course::Course;
use fastest::swing_peak_index;
pub(crate) use flanks::{Bell, cap_over_rail};
pub use handling::centre_acceleration_rms_g;

use super::condition::Carried;
use super::condition::WrapsLeft;
use super::confidence::{Boundaries, Evidence};
use super::signal::{Pulse, refine_peak};
use super::vecmath::{self as vm, Quat, Vec3};
use super::{AnalysisSettings, DeviceProfile, Height, NodeSample, Side, Stroke};
use crate::batch::BodyPosition;

/// A full-scale reading within this fraction of the limit counts as clipped (sensors report
/// a few LSB under the rail).
const CLIP_FRACTION: f64 = 0.98;
/// The shuttle's ring corrupts the gyro for a few ms after contact; the pulse fit skips it.
const IMPACT_RING_MS: f64 = 25.0;

/// When the shuttle's ring after the contact at `impact_i` has died down, ms (no contact
/// found: no ring, every sample is past it).
fn ring_end_ms(s: &[NodeSample], impact_i: Option<usize>) -> f64 {
    impact_i.map_or(f64::NEG_INFINITY, |i| s[i].t_ms + IMPACT_RING_MS)
}
/// Pulse samples below this fraction of the peak are left out of the fit (noise and the
/// follow-through dominate there).
const FIT_FLOOR: f64 = 0.08;
/// On the falling side the follow-through and the racket's recovery bend the pulse early, so
/// only its top part is used.
const FIT_FLOOR_FALLING: f64 = 0.08;
/// Gravity's component across the swing's axis below which a hidden turn cannot be read from
/// gravity (sin 25°: the axis is within 25° of vertical).
const MIN_AXIS_TILT: f64 = 0.42;
/// Integration step of the cap's missed area, ms (a tenth of the 200 Hz interval: the cap is
/// 20–100 ms wide).
const CAP_STEP_MS: f64 = 0.5;
/// Halvings of ln(peak) over ln 30: 30 give a relative precision of 1e-8.
const CAP_BISECTIONS: usize = 30;
/// A cap whose missed area cannot come within this share of the hidden turn is rejected.
const CAP_AREA_TOLERANCE: f64 = 0.05;
/// Quasi-static samples (for the gravity anchors and the hidden turn's): |‖a‖ − the rest
/// reading| below this.
const STILL_ACC_G: f64 = 0.1;
/// A badminton forward swing keeps above half its peak rate for 40–120 ms; a pulse held above
/// half speed for longer than this is either a long stroke (a drive or groundstroke swept
/// with the whole arm: padel drives and tennis strokes at the wrist stay 200–450 ms above
/// half speed) or the player repositioning the racket (recovery, getting ready, picking up a
/// shuttle). [`WIDE_STROKE_MIN_DPS`] tells them apart; the width alone does not.
pub const MAX_SWING_FWHM_MS: f64 = 200.0;
/// A pulse wider than [`MAX_SWING_FWHM_MS`] is a stroke when its peak reaches this, °/s, and
/// the hand is driven ([`WIDE_STROKE_MIN_HAND_G`]). Physics: a minimum-jerk turn that wide
/// (T ≈ 370 ms) peaking at 600 °/s sweeps ≈ 120°, a stroke's arc, and moves the head at
/// ≈ 21 km/h at the 0.55 m sweet-spot radius — a net push's speed; repositioning moves the
/// racket through less, slower (a recovery runs under 60 % of its stroke's peak).
/// Chosen without the table-tennis recordings (leave-one-source-out, docs/analysis.md "Held-out
/// figures for fitted parameters"): the lowest of 400–1000 °/s in 100 °/s steps that lowered
/// no figure on padel, tennis, the two WitMotion badminton sets or the simulator's tuning seeds
/// 0–19 (500 and under counted more ChoongGao smashes twice); it was 700 until det15.
pub const WIDE_STROKE_MIN_DPS: f64 = 600.0;
/// [`WIDE_STROKE_MIN_DPS`] for a wrist (or forearm) node standing in for the racket, °/s. The
/// bound is a head speed (a net push's ≈ 21 km/h) read through the node's reach to the racket
/// head. A racket node turns with the racket about the wrist, 0.55 m from the sweet spot; a
/// node on the forearm turns with the forearm, whose turn carries the hand and racket about
/// the elbow, ≈ 0.8 m from the sweet spot (forearm 0.146 of body height, 0.25 m at 1.75 m:
/// Winter 2009, Biomechanics and Motor Control of Human Movement, fig. 4.1; plus the
/// racket's 0.55 m), so the same head speed turns it slower: 600 × 0.55 / 0.8 ≈ 410 °/s.
/// A wide tennis backhand or overhead at the wrist peaks at 440–600 °/s with the hand driven
/// 1–3.6 g (`eval` swing trace: turned away by the racket's bound). Scanned over 300–600 °/s
/// (docs/analysis.md, "The wide-pulse rule's bound on the arm"): below 450 the ChoongGao
/// armband's slow return after a drop (439 °/s, 36 % of the drop's peak, 1.4 s after it)
/// becomes a second detection, so 450 (the same 21–23 km/h head speed at 0.74–0.8 m); chosen
/// with ChoongGao and the independent simulator in view, tennis and table tennis held out in
/// turn (each alone gives the same value).
const WIDE_STROKE_MIN_DPS_ON_ARM: f64 = 450.0;

/// The wide-pulse rule's peak bound for the primary node, °/s: the racket's own, or a node on
/// the arm's (a longer reach to the head: [`WIDE_STROKE_MIN_DPS_ON_ARM`]).
fn wide_stroke_min_dps(on_racket: bool) -> f64 {
    if on_racket {
        WIDE_STROKE_MIN_DPS
    } else {
        WIDE_STROKE_MIN_DPS_ON_ARM
    }
}
/// A wide, fast turn is a stroke only if the node's acceleration departs from gravity's 1 g
/// by this much during it, g: a stroke drives the hand (taking it to even 3 m/s in 0.3 s
/// takes 1 g on average, and the handle adds its centripetal ω²r), while turning the racket
/// in the fingers or twirling it leaves the hand where it is. Wide fast strokes in the real
/// recordings reach 2.1 g and more.
const WIDE_STROKE_MIN_HAND_G: f64 = 1.0;
/// The rising-flank fit through clipping uses samples above this share of the clip level: the
/// flank's foot carries the tails of neighbouring motion (backswing, recovery) that bend it.
const RISING_FLOOR: f64 = 0.2;
/// Accelerometer integration for the hand's own speed starts this long before the trigger: the
/// arm's push builds over ~±200 ms around contact and the trigger comes 50–100 ms before it,
/// so 300 ms starts where the hand is near rest; longer would integrate more drift.
const HAND_INTEGRATION_LEAD_MS: f64 = 300.0;

/// What [`measure`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub t_impact: f64,
    pub impact: bool,
    pub stroke: Stroke,
    pub side: Side,
    pub height: Height,
    pub racket_speed_kmh: Option<f64>,
    pub saturated: bool,
    /// The swing's peak |ω⊥| (through clipping), °/s.
    pub peak_dps: f64,
    /// What the stroke and height were decided on (for their confidence); `None` when the
    /// stroke could not be assessed (no attitude anchor).
    pub evidence: Option<Evidence>,
    pub reasons: Vec<(&'static str, String)>,
}

/// Inputs of one swing: the primary node's samples from well before the trigger to the end.
pub struct SwingWindow<'a> {
    pub samples: &'a [NodeSample],
    pub trigger_t: f64,
    pub end_t: f64,
    /// No footwork before the swing (see `AnalysisSettings::serve_quiet_ms`).
    pub quiet_before: bool,
    /// What the node reads at rest, g: the conditioning stage's reading (`condition/`),
    /// which an uncalibrated part read before its first rest puts near 1.3 g; `None`
    /// (nothing known yet) is taken as 1 g.
    pub rest_g: Option<f64>,
    /// The wraps the conditioning stage found in the window and left in place.
    pub wraps_left: &'a WrapsLeft,
    /// The device's settled racket-speed reference (`SpeedReference::settled`), km/h: the
    /// classifier reads speed against it once it is there.
    pub speed_reference_kmh: Option<f64>,
    /// The contact instant of the device's previous swing, ms: whether this swing can open a
    /// rally, and so be a serve (`classify::opens_rally`).
    pub previous_swing_ms: Option<f64>,
    /// Gravity carried by the conditioning stage's filter up to the newest believed sample
    /// before the trigger (`condition/attitude.rs`), in the node's axes: the anchor when the
    /// window has no quasi-static samples before the swing.
    pub carried_up: Option<Carried>,
    /// On a wrist or forearm node turned on the arm, the axis its forehands turn about
    /// (the conditioning stage's inference, `SpanQuality::forehand_turn`); `None` reads the
    /// convention's −y.
    pub forehand_turn: Option<Vec3>,
}

/// Why a burst was not measured as a swing: which of the stroke rules turned it away (read
/// by the detection breakdowns, `eval`'s swing trace).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoStroke {
    /// Wider than a forward swing at half its peak, and too slow or with the hand not driven
    /// (the wide-pulse rule, [`WIDE_STROKE_MIN_DPS`]): its width at half peak, ms, and the
    /// hand's largest departure from the node's rest reading, g.
    WidePulse { width_ms: f64, hand_g: f64 },
    /// A racket burst that met nothing and did not drive the racket (handling.rs).
    Handling,
}

/// Measures a detected swing; the rule that turned it away when the burst does not have a
/// stroke's shape. The stages, in order: the readings as the rails left them, the stroke
/// test, the crest and contact instant, the attitude at contact, then side, speed, and the
/// stroke and height read at contact.
pub fn measure(
    w: &SwingWindow,
    profile: &DeviceProfile,
    settings: &AnalysisSettings,
) -> Result<Measured, NoStroke> {
    let r = Readings::of(w, profile, settings);
    let peak_i = r.peak_index();
    let burst = r.burst(peak_i);
    let impact_i = find_impact(&burst, profile.acc_full_scale_g, w.trigger_t, settings);
    // A racket node feels the shuttle ring the frame; a wrist node standing in for it feels
    // the ring damped through the hand, among the arm's own jolts.
    let on_racket = burst.on_racket();
    is_a_stroke(&r, &burst, impact_i, profile)?;
    let crest = Crest::read(&r, peak_i, impact_i);
    let pose = Pose::at_contact(&r, &crest);
    let side = side::read(&side::SideEvidence {
        head_z: pose.head_dir_b[2],
        omega_at_contact: pose.omega_b,
        forehand_turn: w.forehand_turn,
        wraps_left: w.wraps_left.gyro(),
        full_scale_dps: profile.gyro_full_scale_dps,
        gyro: &r.gyro,
        from: r.swing_indices().next().unwrap_or(0),
        contact: crest.pre_i,
    });

    let mut reasons = Vec::new();
    let speed = racket_speed(&r, &crest, &pose, on_racket, profile);
    let racket_speed_kmh = speed.kmh;
    if racket_speed_kmh.is_none() {
        reasons.push((
            "racket_speed_kmh",
            "angular rate not measurable".to_string(),
        ));
    }
    let (stroke, height, evidence) = match pose.up_b {
        None => {
            reasons.push((
                "stroke",
                "no quasi-static samples before the swing to anchor the attitude".to_string(),
            ));
            (Stroke::Unknown, Height::Sidearm, None)
        }
        Some(up_b) => {
            let at = AtContact {
                r: &r,
                crest: &crest,
                pose: &pose,
                up_b,
                on_racket,
                speed: &speed,
            };
            let evidence = at.evidence(profile, settings);
            let contact = at.contact(&evidence);
            (
                classify(&contact, settings),
                height_of(evidence.elevation_deg, evidence.pitch_deg),
                Some(evidence),
            )
        }
    };
    Ok(Measured {
        t_impact: crest.t_impact,
        impact: impact_i.is_some(),
        stroke,
        side,
        height,
        racket_speed_kmh,
        saturated: r.swing_indices().any(|i| r.at_rail(i)),
        peak_dps: crest.swing_peak_dps,
        evidence,
        reasons,
    })
}

/// The swing window's readings as the measurement works on them: widened to `f64`, with the
/// samples the rails hide marked, and the window's spans as predicates.
struct Readings<'a> {
    w: &'a SwingWindow<'a>,
    s: &'a [NodeSample],
    gyro: Vec<Vec3>,
    acc: Vec<Vec3>,
    /// Readings within [`CLIP_FRACTION`] of full scale count as at the rail, °/s and g.
    g_clip: f64,
    a_clip: f64,
    /// Samples whose rate across the shaft is at the gyro's rail. Only the axes across the
    /// shaft: a rate about the shaft itself (the forearm's pronation, which pins the x axis
    /// of the ChoongGao armband after its smashes) leaves |ω⊥| as read; counted as clipped,
    /// it stretched the plateau over clean samples at a fifth of the rail and no cap could be
    /// rebuilt.
    gyro_clipped: Vec<bool>,
    /// |ω⊥| per sample, °/s.
    perp: Vec<f64>,
    /// What the node reads at rest, g: gravity alone on the accelerometer, which an
    /// uncalibrated part puts near 1.3 g rather than 1 g (its direction, all the attitude
    /// needs, is still gravity's).
    rest_g: f64,
    /// Below this |ω⊥| the node is calm: no turn to speak of, °/s.
    calm_dps: f64,
}

impl<'a> Readings<'a> {
    fn of(w: &'a SwingWindow<'a>, profile: &DeviceProfile, settings: &AnalysisSettings) -> Self {
        let s = w.samples;
        let gyro: Vec<Vec3> = s.iter().map(|x| vm::widen(x.gyro)).collect();
        let acc: Vec<Vec3> = s.iter().map(|x| vm::widen(x.acc)).collect();
        let g_clip = profile.gyro_full_scale_dps * CLIP_FRACTION;
        let gyro_clipped = gyro
            .iter()
            .map(|g| g[1].abs() >= g_clip || g[2].abs() >= g_clip)
            .collect();
        let perp = gyro.iter().map(|g| g[1].hypot(g[2])).collect();
        Readings {
            w,
            s,
            gyro,
            acc,
            g_clip,
            a_clip: profile.acc_full_scale_g * CLIP_FRACTION,
            gyro_clipped,
            perp,
            rest_g: w.rest_g.unwrap_or(1.0),
            calm_dps: 0.5 * settings.swing_start_dps,
        }
    }

    fn in_swing(&self, i: usize) -> bool {
        let t = self.s[i].t_ms;
        t >= self.w.trigger_t && t <= self.w.end_t
    }

    /// The samples from the trigger to the swing's end.
    fn swing_indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.s.len()).filter(|&i| self.in_swing(i))
    }

    /// Any axis of either sensor at its rail.
    fn at_rail(&self, i: usize) -> bool {
        self.gyro[i].iter().any(|v| v.abs() >= self.g_clip)
            || self.acc[i].iter().any(|v| v.abs() >= self.a_clip)
    }

    /// At rest: gravity alone on the accelerometer, and no turn to speak of.
    fn still(&self, i: usize) -> bool {
        (vm::norm(self.acc[i]) - self.rest_g).abs() < STILL_ACC_G && self.perp[i] < self.calm_dps
    }

    fn peak_index(&self) -> usize {
        let load: Vec<f64> = self.acc.iter().map(|&a| vm::norm(a)).collect();
        let across: Vec<[f64; 2]> = self.gyro.iter().map(|g| [g[1], g[2]]).collect();
        swing_peak_index(
            &self.perp,
            &self.gyro_clipped,
            &across,
            &load,
            self.w.wraps_left.gyro(),
            &|i| self.in_swing(i),
        )
    }

    fn burst(&self, peak_i: usize) -> Burst<'_> {
        Burst {
            samples: self.s,
            acc: &self.acc,
            perp: &self.perp,
            clipped: &self.gyro_clipped,
            peak_i,
            rest_g: self.rest_g,
            wraps_left: self.w.wraps_left,
        }
    }
}

/// The stroke test: a pulse with a stroke's shape ([`strokes_pulse`]), and on a racket node
/// one that met the shuttle or drove the racket (handling.rs: racket handling turns the
/// racket without driving it). A wrist node standing in for the racket does not see the
/// racket turned in the fingers: when it turns this fast, the forearm did.
fn is_a_stroke(
    r: &Readings,
    burst: &Burst,
    impact_i: Option<usize>,
    profile: &DeviceProfile,
) -> Result<(), NoStroke> {
    let on_racket = burst.on_racket();
    let swing_span = (r.w.trigger_t, r.w.end_t);
    // A wide racket burst thrown as a stroke is (handling.rs); racket nodes only, as the
    // handling rule: a wrist standing in moves with the arm's every step.
    let thrown = || {
        on_racket && handling::wide_burst_thrown(r.s, &r.perp, swing_span, profile.acc_full_scale_g)
    };
    strokes_pulse(
        burst,
        &|i| r.in_swing(i),
        impact_i.is_some() && on_racket,
        &thrown,
    )?;
    if on_racket
        && impact_i.is_none()
        && !handling::drove_the_racket(r.s, &r.perp, swing_span, profile.acc_full_scale_g)
    {
        return Err(NoStroke::Handling);
    }
    Ok(())
}

/// The swing's crest and contact as the gyro reads them through its rail.
struct Crest {
    /// The samples past the rail and |ω⊥| with the rail's level on them.
    rail: PastRail,
    /// The fastest sample of the swing.
    peak_i: usize,
    /// The pulse rebuilt over the samples past the rail, where there are any.
    pulse: Option<Pulse>,
    /// The crest's instant between samples (no pulse rebuilt), ms.
    refined_t: f64,
    t_impact: f64,
    /// The last sample before contact: its gyro is clean (the ring comes after).
    pre_i: usize,
    /// The swing's peak |ω⊥| through the rail, °/s.
    swing_peak_dps: f64,
    /// |ω⊥| at contact, °/s.
    omega_impact_dps: f64,
}

impl Crest {
    fn read(r: &Readings, peak_i: usize, impact_i: Option<usize>) -> Crest {
        let s = r.s;
        // The crest is rebuilt over every sample whose rate passed the rail: clipped, or
        // read through a wrap left in place (condition/wrap.rs), which is a fold of the rate.
        let rail = PastRail::read(s, &r.perp, &r.gyro_clipped, r.w.wraps_left, r.g_clip);
        let crest_i = if r.w.wraps_left.gyro() {
            fastest::nearest_past_rail(&rail.past, peak_i, &|i| r.in_swing(i))
        } else {
            peak_i
        };
        let pulse = rebuilt_pulse(r, &rail, peak_i, crest_i, impact_i);
        let (refined_off, refined_peak) = refine_peak(&r.perp, peak_i);
        let next_t = s[(peak_i + 1).min(s.len() - 1)].t_ms;
        let refined_t = s[peak_i].t_ms + refined_off * (next_t - s[peak_i].t_ms);
        let t_impact = match (impact_i, pulse) {
            (Some(i), _) => 0.5 * (s[i - 1].t_ms + s[i].t_ms),
            (None, Some(p)) => p.t0,
            (None, None) => refined_t,
        };
        let pre_i = s.iter().rposition(|x| x.t_ms <= t_impact).unwrap_or(0);
        let swing_peak_dps = pulse.map_or(refined_peak, |p| p.peak.max(rail.perp[crest_i]));
        let omega_impact_dps = match (impact_i, pulse) {
            (None, _) => swing_peak_dps,
            (Some(_), _) if !rail.past[pre_i] => {
                extrapolate(s, &rail.perp, &rail.past, pre_i, t_impact)
            }
            // A clipped sample's reading is a lower bound on the rate (the rail).
            (Some(_), Some(p)) => p.at(t_impact).max(rail.perp[pre_i]),
            (Some(_), None) => rail.perp[pre_i],
        };
        Crest {
            rail,
            peak_i,
            pulse,
            refined_t,
            t_impact,
            pre_i,
            swing_peak_dps,
            omega_impact_dps,
        }
    }
}

/// The |ω⊥| pulse rebuilt over the samples past the rail, if the swing has any: the cap
/// gravity's hidden turn says the plateau hid, else one from the flanks either side, else a
/// fit of the rising flank, else of the whole clean pulse.
fn rebuilt_pulse(
    r: &Readings,
    rail: &PastRail,
    peak_i: usize,
    crest_i: usize,
    impact_i: Option<usize>,
) -> Option<Pulse> {
    if !r.swing_indices().any(|i| rail.past[i]) {
        return None;
    }
    let (s, w) = (r.s, r.w);
    // Gravity's hidden turn integrates the readings as they are: a fold's are not the rate,
    // so it speaks only where nothing was left wrapped.
    let cap = Plateau::around(&r.gyro_clipped, peak_i)
        .filter(|_| !w.wraps_left.gyro())
        .and_then(|plateau| {
            let still = |i: usize| r.still(i);
            let hidden = hidden_turn(s, &r.gyro, &r.acc, &r.gyro_clipped, plateau, &still, w)?;
            cap_through_plateau(s, &r.perp, plateau, hidden, impact_i)
        });
    let from_flanks = || {
        let plateau = Plateau::around(&rail.past, crest_i)?;
        flanks::cap_from_flanks(s, &rail.perp, &rail.past, plateau, impact_i)
    };
    cap.or_else(from_flanks)
        .or_else(|| rising_fit(s, &rail.perp, &rail.past, crest_i))
        .or_else(|| fit_pulse(s, &rail.perp, &rail.past, crest_i, impact_i))
}

/// The racket's attitude through the window and at contact, and gravity's direction there.
struct Pose {
    /// The gyro with the rebuilt pulse over its clipped samples.
    gyro_fixed: Vec<Vec3>,
    /// The node's attitude per sample, from the window's first.
    attitude: Vec<Quat>,
    /// Gravity from the quasi-static spell before the swing, in the first sample's frame.
    still_before: Option<Vec3>,
    /// Gravity before the swing: the quasi-static spell's, else the one carried in.
    up_before: Option<Vec3>,
    /// Gravity from the quasi-static spell after the swing.
    up_after: Option<Vec3>,
    /// The attitude at the contact instant.
    q_imp: Quat,
    /// Gravity's direction at contact in the node's axes; `None` without an anchor.
    up_b: Option<Vec3>,
    /// The rate at the last sample before contact, in the node's axes, °/s.
    omega_b: Vec3,
    /// The head's direction of travel at contact, `ω × x̂`, in the node's axes.
    head_dir_b: Vec3,
}

impl Pose {
    fn at_contact(r: &Readings, crest: &Crest) -> Pose {
        let (s, w) = (r.s, r.w);
        let gyro_fixed = desaturate(&r.gyro, &r.gyro_clipped, s, crest.pulse);
        let attitude = integrate(s, &gyro_fixed);
        let still = |i: usize| r.still(i);
        let still_before = mean_up(&r.acc, &attitude, |i| s[i].t_ms <= w.trigger_t && still(i));
        let carried_before = w.carried_up.and_then(|c| carried_anchor(s, &attitude, c));
        // The quasi-static spell's gravity when the window has one (on the independent
        // simulator's tuning seeds the carried one does no better there: the two agree within
        // a few degrees); otherwise gravity carried by the conditioning stage's filter.
        let up_before = still_before.or(carried_before);
        let up_after = mean_up(&r.acc, &attitude, |i| s[i].t_ms > w.end_t && still(i));
        let pre_i = crest.pre_i;
        let q_imp = advance_to(
            attitude[pre_i],
            gyro_fixed[pre_i],
            crest.omega_impact_dps,
            crest.t_impact - s[pre_i].t_ms,
        );
        let up_b = gravity_at_contact(r, crest, q_imp, up_before, up_after);
        let omega_b = gyro_fixed[pre_i];
        let head_dir_b = vm::unit(vm::cross(omega_b, [1.0, 0.0, 0.0])).unwrap_or([0.0, 0.0, 1.0]);
        Pose {
            gyro_fixed,
            attitude,
            still_before,
            up_before,
            up_after,
            q_imp,
            up_b,
            omega_b,
            head_dir_b,
        }
    }

    /// Gravity's direction at contact, in the world frame the attitude is integrated in.
    fn up_contact(&self, up_b: Vec3) -> Vec3 {
        vm::rotate(self.q_imp, up_b)
    }
}

/// Gravity's direction at contact in the node's axes, from the anchors before and after the
/// swing. Each anchor's attitude error grows with the rotation hidden by clipping between it
/// and contact; they are weighted by the inverse of that hidden rotation (degrees, +1 for the
/// unclipped error floor).
fn gravity_at_contact(
    r: &Readings,
    crest: &Crest,
    q_imp: Quat,
    before: Option<Vec3>,
    after: Option<Vec3>,
) -> Option<Vec3> {
    let s = r.s;
    let hidden = |before: bool| -> f64 {
        crest.pulse.map_or(0.0, |p| {
            (1..s.len())
                .filter(|&i| r.gyro_clipped[i] && ((s[i].t_ms < crest.t_impact) == before))
                .map(|i| {
                    (p.at(s[i].t_ms) - r.perp[i]).max(0.0) * (s[i].t_ms - s[i - 1].t_ms) / 1000.0
                })
                .sum()
        })
    };
    let to_body = |up: Vec3| vm::rotate(vm::conj(q_imp), up);
    match (before, after) {
        (Some(a), Some(b)) => {
            let (wa, wb) = (1.0 / (hidden(true) + 1.0), 1.0 / (hidden(false) + 1.0));
            vm::unit(vm::add(
                vm::scale(to_body(a), wa),
                vm::scale(to_body(b), wb),
            ))
        }
        (Some(a), None) | (None, Some(a)) => Some(to_body(a)),
        (None, None) => None,
    }
}

/// The racket head's speed at contact and its parts.
struct RacketSpeed {
    /// The turn's rate times the mount radius plus the hand's own speed along the head's
    /// path, km/h; `None` when the rate is not measurable.
    kmh: Option<f64>,
    /// The node's fitted distance up the shaft from the turn's pivot (lever.rs), m.
    node_offset_m: f64,
    /// The hand's own speed along the head's path at contact (hand.rs), m/s.
    hand_speed_ms: f64,
}

fn racket_speed(
    r: &Readings,
    crest: &Crest,
    pose: &Pose,
    on_racket: bool,
    profile: &DeviceProfile,
) -> RacketSpeed {
    let s = r.s;
    let pre_i = crest.pre_i;
    let rot_speed = turn_rate_for_speed(on_racket, crest.omega_impact_dps, crest.swing_peak_dps)
        .to_radians()
        * profile.mount_radius_m;
    // The node sits up the shaft from the hand and moves with the racket's turn too
    // (lever.rs); hand.rs takes that turn out of each sample before integrating.
    let acc_clean = |i: usize| !crest.rail.past[i] && r.acc[i].iter().all(|v| v.abs() < r.a_clip);
    // Gravity comes out of the shaft's reading before the fit (lever.rs): any anchor will
    // do for a 1 g term, the quasi-static one first.
    let shaft_ms2 = lever::shaft_beyond_gravity_ms2(
        &r.acc,
        &pose.attitude,
        pose.up_before.or(pose.up_after),
        r.rest_g,
    );
    let node_offset = lever::node_offset_m(
        &shaft_ms2,
        &r.perp,
        &acc_clean,
        (0..=pre_i).filter(|&i| r.in_swing(i)),
        crest.swing_peak_dps,
        profile.mount_radius_m,
    )
    .unwrap_or(0.0);
    let start = s
        .iter()
        .position(|x| x.t_ms >= r.w.trigger_t - HAND_INTEGRATION_LEAD_MS);
    // The hand's gravity stays the quasi-static one (a carried anchor is for the attitude).
    // speed18 tried the carried one for the hand where no quasi-static spell exists: 2 of
    // 1429 swings on the independent simulator's tuning seeds at 100 Hz took it, while on
    // real sets it lifted the ChoongGao armband's smash > clear (1.00 → 1.24, not an
    // independent set) but turned deadpoolcnn's smash > lift at 10 Hz (1.15 → 0.91) and
    // lowered the table-tennis wrist's topspin forehand > block at 50 Hz (3.78 → 2.65,
    // topspin forehands 34 → 18 km/h): gravity carried through continuous play is not good
    // enough to integrate the hand from. Left out.
    let hand_speed = match (pose.still_before, start) {
        (Some(up), Some(start)) => {
            let strapdown = hand::Strapdown {
                s,
                acc: &r.acc,
                gyro: &pose.gyro_fixed,
                attitude: &pose.attitude,
                gravity: vm::scale(up, r.rest_g),
                acc_rail_g: r.a_clip,
                node_offset_m: node_offset,
            };
            let head_dir = vm::rotate(pose.q_imp, pose.head_dir_b);
            hand::pivot_speed_along(&strapdown, head_dir, start, pre_i)
        }
        _ => 0.0,
    };
    let kmh = (rot_speed + hand_speed).max(0.0) * 3.6;
    RacketSpeed {
        kmh: kmh.is_finite().then_some(kmh),
        node_offset_m: node_offset,
        hand_speed_ms: hand_speed,
    }
}

/// A swing read at its contact, with gravity's direction there known: what the stroke and
/// height are decided on.
struct AtContact<'x, 'a> {
    r: &'x Readings<'a>,
    crest: &'x Crest,
    pose: &'x Pose,
    /// Gravity's direction at contact, in the node's axes.
    up_b: Vec3,
    on_racket: bool,
    speed: &'x RacketSpeed,
}

impl AtContact<'_, '_> {
    /// The figures the classifier and the confidence model read.
    fn evidence(&self, profile: &DeviceProfile, settings: &AnalysisSettings) -> Evidence {
        let (r, crest, pose, w) = (self.r, self.crest, self.pose, self.r.w);
        let shaft_b = radius::height_axis(self.stand_in_out(profile));
        let path_b = vm::unit(vm::cross(pose.omega_b, shaft_b)).unwrap_or(pose.head_dir_b);
        let elevation_deg = self.elevation_deg(shaft_b, profile);
        let mut course = course::Approach {
            samples: r.s,
            gyro: &pose.gyro_fixed,
            attitude: &pose.attitude,
            up_anchor: pose.up_contact(self.up_b),
        }
        .course(
            crest.pre_i,
            pose.q_imp,
            crest.t_impact,
            half_width_ms(r.s, &r.perp, &r.gyro_clipped, crest.peak_i),
            crest.pulse.map_or(crest.refined_t, |p| p.t0),
        );
        course.node_offset_m = self.speed.node_offset_m;
        course.hand_speed_ms = self.speed.hand_speed_ms;
        Evidence {
            elevation_deg,
            pitch_deg: vm::elevation_deg(path_b, self.up_b),
            rate_ratio: crest.omega_impact_dps / crest.swing_peak_dps.max(1e-9),
            speed_kmh: self.speed.kmh.unwrap_or(0.0),
            side_lean_deg: pose.head_dir_b[2].clamp(-1.0, 1.0).asin().to_degrees(),
            rate_dps: crest.omega_impact_dps,
            sample_interval_ms: sample_interval_at(r.s, crest.pre_i),
            reference_kmh: w.speed_reference_kmh,
            quiet_before: w.quiet_before,
            opens_rally: classify::opens_rally(w.previous_swing_ms, crest.t_impact, settings),
            anchor_carried_s: match (pose.still_before, pose.up_after, w.carried_up) {
                (None, None, Some(c)) => (c.carried_ms + crest.t_impact - c.t_ms).max(0.0) / 1000.0,
                _ => 0.0,
            },
            course,
        }
    }

    /// What the classifier reads of the evidence.
    fn contact(&self, e: &Evidence) -> Contact {
        Contact {
            elevation_deg: e.elevation_deg,
            pitch_deg: e.pitch_deg,
            rate_share: self.crest.omega_impact_dps / self.crest.swing_peak_dps,
            speed_kmh: e.speed_kmh,
            reference_kmh: e.reference_kmh,
            quiet_before: e.quiet_before,
            opens_rally: e.opens_rally,
        }
    }

    /// A stand-in read without a configured grip: whether its x need not be the shaft.
    fn stand_in(&self, profile: &DeviceProfile) -> bool {
        !self.on_racket && profile.wrist_grip_deg.is_none()
    }

    /// Out from the swing's centre along the arm, for a stand-in clearly turned on it
    /// (radius.rs). A racket node's x is the shaft, and so is a stand-in's read as a virtual
    /// racket through a configured grip; any other stand-in's x need not be. Not through a
    /// clipped gyro: the fit's premise is the centripetal term at the fastest samples, and
    /// those are the ones clipped (left out, the fit runs on the flanks, where the push and
    /// the rail's finite differences of α weigh more; on the ChoongGao armband it lost 4 of
    /// 12 heights).
    fn stand_in_out(&self, profile: &DeviceProfile) -> Option<Vec3> {
        let (r, pose) = (self.r, self.pose);
        let clipped_any = r.swing_indices().any(|i| r.gyro_clipped[i]);
        if !self.stand_in(profile) || clipped_any {
            return None;
        }
        let t_ms: Vec<f64> = r.s.iter().map(|x| x.t_ms).collect();
        let up_contact = pose.up_contact(self.up_b);
        let gravity = |i: usize| {
            Some(vm::scale(
                vm::rotate(vm::conj(pose.attitude[i]), up_contact),
                r.rest_g,
            ))
        };
        let readings = radius::Readings {
            acc: &r.acc,
            gyro: &r.gyro,
            t_ms: &t_ms,
            gravity: &gravity,
        };
        let clean = |i: usize| r.in_swing(i) && !r.at_rail(i);
        radius::outward_direction(&readings, (0..r.s.len()).filter(|&i| clean(i)))
    }

    /// The height axis's elevation at contact, °. A stand-in reads the forearm, not the
    /// shaft: see radius.rs's `stand_in_elevation` for why its highest over the approach can
    /// speak for an overhead contact.
    fn elevation_deg(&self, shaft_b: Vec3, profile: &DeviceProfile) -> f64 {
        let at_contact = vm::elevation_deg(shaft_b, self.up_b);
        if !self.stand_in(profile) {
            return at_contact;
        }
        let (s, crest) = (self.r.s, self.crest);
        let from = crest.t_impact - course::APPROACH_MS;
        radius::stand_in_elevation(
            shaft_b,
            &self.pose.attitude,
            self.pose.up_contact(self.up_b),
            (0..=crest.pre_i).filter(|&i| s[i].t_ms >= from),
            at_contact,
        )
    }
}

/// The rate that turns the racket head in the speed model, °/s. On the racket node, its rate
/// at contact. A wrist or forearm node standing in for the racket reads the forearm, a
/// proximal segment: in a striking chain each proximal segment peaks before contact and
/// slows as the distal ones speed up (Putnam 1993, J Biomech 26 Suppl 1: 125–135), so the
/// forearm's rate at contact is already falling while the racket's is at its peak. The
/// forearm's own peak is the nearer stand-in for the racket's turn there.
fn turn_rate_for_speed(on_racket: bool, at_contact_dps: f64, swing_peak_dps: f64) -> f64 {
    if on_racket {
        at_contact_dps
    } else {
        swing_peak_dps.max(at_contact_dps)
    }
}

/// A detected burst as the stroke test and the contact search see it: the primary node's
/// window, its |ω⊥|, which samples clipped, the peak, and what the node reads at rest.
struct Burst<'a> {
    samples: &'a [NodeSample],
    acc: &'a [Vec3],
    /// |ω⊥| per sample, °/s.
    perp: &'a [f64],
    /// Samples with a gyro axis at full scale (turning at least the clip level).
    clipped: &'a [bool],
    peak_i: usize,
    /// The accelerometer's rest magnitude, g (1 when calibrated; ~1.3 on an uncalibrated
    /// part): the hand is driven when the reading departs from *this*, not from 1 g, or an
    /// uncalibrated node held still already reads 0.3 g of "drive".
    rest_g: f64,
    /// Where the conditioning stage left wraps in place: on the gyro, |ω⊥| does not say how
    /// fast the racket turns (the contact search's rate condition is not applied); on an
    /// accelerometer axis, its readings there are a full range off.
    wraps_left: &'a WrapsLeft,
}

impl Burst<'_> {
    /// Whether the window is a racket node's (the primary node is the racket node whenever
    /// the device carries one, device.rs), rather than a wrist node standing in for it.
    fn on_racket(&self) -> bool {
        self.samples
            .first()
            .is_some_and(|x| x.position == BodyPosition::Racket)
    }
}

/// Whether the burst is a stroke's: a short |ω⊥| pulse, one in which the racket met the
/// shuttle (`contact`: repositioning the racket meets nothing, while a net push or a low
/// serve is as wide as repositioning and as slow), or a wide one that is fast (a clipped peak
/// is at least the clip level) and drives the hand (see [`WIDE_STROKE_MIN_DPS`]), or a wide
/// one that was `thrown` (its load changed sharply while it turned: handling.rs). Otherwise
/// the wide pulse's width and hand drive, as the test read them.
fn strokes_pulse(
    b: &Burst,
    in_swing: &dyn Fn(usize) -> bool,
    contact: bool,
    thrown: &dyn Fn() -> bool,
) -> Result<(), NoStroke> {
    if contact {
        return Ok(());
    }
    let width_ms = half_width_ms(b.samples, b.perp, b.clipped, b.peak_i);
    if width_ms <= MAX_SWING_FWHM_MS {
        return Ok(());
    }
    let fast = b.clipped[b.peak_i] || b.perp[b.peak_i] >= wide_stroke_min_dps(b.on_racket());
    let hand_g = hand_departure_g(b, in_swing);
    if (fast && hand_g >= WIDE_STROKE_MIN_HAND_G) || thrown() {
        Ok(())
    } else {
        Err(NoStroke::WidePulse { width_ms, hand_g })
    }
}

/// The largest departure of the node's acceleration from its rest reading during the swing,
/// g: how hard the arm drove the hand.
fn hand_departure_g(b: &Burst, in_swing: &dyn Fn(usize) -> bool) -> f64 {
    (0..b.samples.len())
        .filter(|&i| in_swing(i))
        .map(|i| (vm::norm(b.acc[i]) - b.rest_g).abs())
        .fold(0.0, f64::max)
}

/// How long |ω⊥| stays above half its peak around the peak, ms (clipped samples count as
/// above).
fn half_width_ms(s: &[NodeSample], perp: &[f64], clipped: &[bool], peak_i: usize) -> f64 {
    let half = 0.5 * perp[peak_i];
    let above = |i: usize| clipped[i] || perp[i] >= half;
    let mut lo = peak_i;
    while lo > 0 && above(lo - 1) {
        lo -= 1;
    }
    let mut hi = peak_i;
    while hi + 1 < perp.len() && above(hi + 1) {
        hi += 1;
    }
    s[hi].t_ms - s[lo].t_ms
}

/// The classifier's decision boundaries, for the confidence model.
pub fn boundaries(settings: &AnalysisSettings) -> Boundaries {
    Boundaries {
        overhead_elev_deg: classify::OVERHEAD_ELEV_DEG,
        underarm_elev_deg: classify::UNDERARM_ELEV_DEG,
        underarm_path_pitch_deg: classify::UNDERARM_PATH_PITCH_DEG,
        serve_max_elev_deg: classify::SERVE_MAX_ELEV_DEG,
        smash_pitch_deg: classify::SMASH_PITCH_DEG,
        checked_ratio: classify::CHECKED_RATIO,
        drop_max_speed_kmh: classify::DROP_MAX_SPEED_KMH,
        net_speed_kmh: settings.net_speed_kmh,
        drop_max_share: classify::DROP_MAX_SHARE,
        net_max_share: classify::NET_MAX_SHARE,
    }
}

/// The sample interval around sample `i`, ms (the one after it, else the one before).
fn sample_interval_at(s: &[NodeSample], i: usize) -> f64 {
    match (
        s.get(i),
        s.get(i + 1),
        i.checked_sub(1).and_then(|k| s.get(k)),
    ) {
        (Some(a), Some(b), _) => b.t_ms - a.t_ms,
        (Some(a), None, Some(p)) => a.t_ms - p.t_ms,
        _ => 0.0,
    }
}

/// The main pulse of |ω⊥| through the clean samples (not clipped, not ringing), if it has the
/// shape for it.
fn fit_pulse(
    s: &[NodeSample],
    perp: &[f64],
    clipped: &[bool],
    peak_i: usize,
    impact_i: Option<usize>,
) -> Option<Pulse> {
    let peak = perp[peak_i];
    let ring = impact_i.map(|i| (s[i].t_ms, s[i].t_ms + IMPACT_RING_MS));
    let ringing = |i: usize| ring.is_some_and(|(a, b)| s[i].t_ms >= a && s[i].t_ms <= b);
    // Walk out from the peak while the pulse keeps falling (stops at the follow-through's
    // second hump) and stays above the floor.
    let mut lo = peak_i;
    while lo > 0 && perp[lo - 1] > FIT_FLOOR * peak && (perp[lo - 1] <= perp[lo] || clipped[lo]) {
        lo -= 1;
    }
    let mut hi = peak_i;
    while hi + 1 < perp.len()
        && perp[hi + 1] > FIT_FLOOR_FALLING * peak
        && (perp[hi + 1] <= perp[hi] || clipped[hi] || ringing(hi + 1) || ringing(hi))
    {
        hi += 1;
    }
    let points: Vec<(f64, f64)> = (lo..=hi)
        .filter(|&i| !clipped[i] && !ringing(i))
        .map(|i| (s[i].t_ms, perp[i]))
        .collect();
    let clipped_span = (lo..=hi).filter(|&i| clipped[i]).map(|i| s[i].t_ms);
    let (t_lo, t_hi) = clipped_span.fold(
        (s[peak_i].t_ms - 10.0, s[peak_i].t_ms + 10.0),
        |(a, b), t| (a.min(t), b.max(t)),
    );
    let pulse = Pulse::fit(&points, t_lo, t_hi)?;
    // A fit wildly above what the clean samples show is not trusted unless the sensor clipped;
    // through clipping, a fit below the rail's reading is not the pulse: the rail is a lower
    // bound on the rate (on the ChoongGao armband's pinned smashes such fits read contact
    // at half the rail).
    let any_clipped = (lo..=hi).any(|i| clipped[i]);
    let fits = if any_clipped {
        pulse.peak >= peak
    } else {
        pulse.peak < 1.3 * peak
    };
    fits.then_some(pulse)
}

/// Gyro with clipped samples rebuilt: the perpendicular part scaled to the fitted pulse.
fn desaturate(
    gyro: &[Vec3],
    clipped: &[bool],
    s: &[NodeSample],
    pulse: Option<Pulse>,
) -> Vec<Vec3> {
    let Some(p) = pulse else {
        return gyro.to_vec();
    };
    gyro.iter()
        .zip(clipped)
        .zip(s)
        .map(|((g, &c), x)| {
            let perp = g[1].hypot(g[2]);
            if !c || perp < 1e-9 {
                return *g;
            }
            let k = (p.at(x.t_ms) / perp).max(1.0);
            [g[0], g[1] * k, g[2] * k]
        })
        .collect()
}

/// Body→anchor attitude at each sample, integrating the gyro from the window's first sample
/// (midpoint rule over each interval).
fn integrate(s: &[NodeSample], gyro: &[Vec3]) -> Vec<Quat> {
    let mut q = vm::IDENTITY;
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if i > 0 {
            let dt = (s[i].t_ms - s[i - 1].t_ms) / 1000.0;
            let w = vm::scale(vm::add(gyro[i], gyro[i - 1]), 0.5f64.to_radians() * dt);
            q = vm::normalise(vm::mul(q, vm::from_rotation_vector(w)));
        }
        out.push(q);
    }
    out
}

/// The attitude `dt_ms` after a sample with attitude `q` and rate `omega` (°/s), turning
/// about the same body axis while |ω⊥| goes from the sample's value to `omega_end_dps`
/// (trapezoid). The last sample before contact can lie a whole interval before it: at 100 Hz
/// and 4000 °/s that is up to 40° of turn, which moves the head path's pitch by as much.
fn advance_to(q: Quat, omega: Vec3, omega_end_dps: f64, dt_ms: f64) -> Quat {
    let perp = omega[1].hypot(omega[2]);
    if perp < 1e-9 || !omega_end_dps.is_finite() || !(0.0..=100.0).contains(&dt_ms) {
        return q;
    }
    let mean_scale = 0.5 * (1.0 + omega_end_dps / perp);
    let turn = vm::scale(omega, mean_scale * dt_ms / 1000.0 * 1f64.to_radians());
    vm::normalise(vm::mul(q, vm::from_rotation_vector(turn)))
}

/// "Up" in the anchor frame: the mean of the quasi-static accelerations selected by `pick`,
/// each rotated into the anchor frame (so a racket turning slowly still contributes).
fn mean_up(acc: &[Vec3], attitude: &[Quat], pick: impl Fn(usize) -> bool) -> Option<Vec3> {
    let mut sum = [0.0; 3];
    let mut n = 0usize;
    for i in 0..acc.len() {
        if pick(i)
            && let Some(a) = vm::unit(acc[i])
        {
            sum = vm::add(sum, vm::rotate(attitude[i], a));
            n += 1;
        }
    }
    if n < 3 {
        return None;
    }
    vm::unit(sum)
}

/// Gravity carried by the conditioning stage's filter (`c`, in the node's axes at one sample)
/// in the integration's anchor frame.
fn carried_anchor(s: &[NodeSample], attitude: &[Quat], c: Carried) -> Option<Vec3> {
    let i = s.iter().rposition(|x| x.t_ms <= c.t_ms)?;
    (s[i].t_ms == c.t_ms).then(|| vm::rotate(attitude[i], c.up))
}

/// |ω⊥| at `t` (just after sample `i`) from the clean samples up to `i`: the parabola
/// through the last three, or the sample itself.
fn extrapolate(s: &[NodeSample], perp: &[f64], clipped: &[bool], i: usize, t: f64) -> f64 {
    if i >= 2 && !clipped[i - 1] && !clipped[i - 2] {
        let (t0, t1, t2) = (s[i - 2].t_ms, s[i - 1].t_ms, s[i].t_ms);
        let (y0, y1, y2) = (perp[i - 2], perp[i - 1], perp[i]);
        // Lagrange form.
        let l0 = (t - t1) * (t - t2) / ((t0 - t1) * (t0 - t2));
        let l1 = (t - t0) * (t - t2) / ((t1 - t0) * (t1 - t2));
        let l2 = (t - t0) * (t - t1) / ((t2 - t0) * (t2 - t1));
        let v = y0 * l0 + y1 * l1 + y2 * l2;
        if v.is_finite() {
            return v.clamp(0.0, 1.3 * y2.max(y1));
        }
    }
    perp[i]
}

/// Gaussian through the clean rising flank before a clipped plateau: ln|ω⊥| is a parabola
/// in t; its vertex gives the hidden peak and its time. The fall σ comes from where the
/// plateau ends. `None` with fewer than three usable rising samples or no concave shape.
fn rising_fit(s: &[NodeSample], perp: &[f64], clipped: &[bool], peak_i: usize) -> Option<Pulse> {
    if !clipped[peak_i] {
        return None;
    }
    let plateau = Plateau::run(clipped, peak_i);
    let (ca, cb) = (plateau.first, plateau.last);
    if ca == 0 {
        return None;
    }
    let level = plateau.level(perp);
    // Prefer the flank's upper part; at low rates it may hold too few samples, then go lower.
    let flank = |floor: f64| -> Vec<(f64, f64)> {
        let mut lo = ca - 1;
        while lo > 0 && !clipped[lo - 1] && perp[lo - 1] < perp[lo] && perp[lo - 1] > floor * level
        {
            lo -= 1;
        }
        (lo..ca)
            .filter(|&i| perp[i] > 0.0)
            .map(|i| (s[i].t_ms - s[ca].t_ms, perp[i].ln()))
            .collect()
    };
    let mut pts = flank(RISING_FLOOR);
    if pts.len() < 3 {
        pts = flank(FIT_FLOOR);
    }
    if pts.len() < 3 {
        return None;
    }
    let mut ata = vec![vec![0.0; 3]; 3];
    let mut atb = vec![0.0; 3];
    for &(t, y) in &pts {
        let row = [1.0, t, t * t];
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += row[r] * row[c];
            }
            atb[r] += row[r] * y;
        }
    }
    let x = super::signal::solve_small(ata, atb)?;
    if x[2] >= -1e-9 {
        return None;
    }
    let t0_rel = -x[1] / (2.0 * x[2]);
    let peak = (x[0] - x[1] * x[1] / (4.0 * x[2])).exp();
    let rise = (-1.0 / (2.0 * x[2])).sqrt();
    let plausible = peak.is_finite()
        && peak >= level
        && t0_rel >= s[ca - 1].t_ms - s[ca].t_ms
        && t0_rel < 400.0;
    if !plausible {
        return None;
    }
    let t0 = s[ca].t_ms + t0_rel;
    let fall = match s.get(cb + 1) {
        Some(n) if n.t_ms > t0 && perp[cb + 1] < peak && perp[cb + 1] > 0.0 => {
            (n.t_ms - t0) / (2.0 * (peak / perp[cb + 1]).ln()).sqrt()
        }
        _ => rise,
    };
    Some(Pulse {
        peak,
        t0,
        rise_ms: rise,
        fall_ms: fall.clamp(1.0, 200.0),
    })
}

/// Which samples turned past the gyro's rail, and |ω⊥| as the crest's rebuild reads it.
struct PastRail {
    /// Clipped, or read through a gyro wrap the conditioning stage left in place.
    past: Vec<bool>,
    /// |ω⊥| as read, but the rail's level on a wrapped sample: a fold of a rate past full
    /// scale says only that the rate passed it, as a clipped sample does.
    perp: Vec<f64>,
}

impl PastRail {
    fn read(
        s: &[NodeSample],
        perp: &[f64],
        clipped: &[bool],
        wraps_left: &WrapsLeft,
        rail_dps: f64,
    ) -> PastRail {
        let wrapped = |i: usize| wraps_left.gyro_wrapped_at(s[i].t_ms);
        let past = (0..s.len()).map(|i| clipped[i] || wrapped(i)).collect();
        let perp = (0..s.len())
            .map(|i| {
                if wrapped(i) && !clipped[i] {
                    rail_dps
                } else {
                    perp[i]
                }
            })
            .collect();
        PastRail { past, perp }
    }
}

/// The run of clipped samples `first..=last` around a swing's peak, with clean samples on
/// both sides.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plateau {
    first: usize,
    last: usize,
}

impl Plateau {
    /// The plateau around `peak_i` when it has at least two clean samples before it and one
    /// after it.
    fn around(clipped: &[bool], peak_i: usize) -> Option<Plateau> {
        if !clipped.get(peak_i).copied().unwrap_or(false) {
            return None;
        }
        let plateau = Plateau::run(clipped, peak_i);
        (plateau.first >= 2 && plateau.last + 1 < clipped.len()).then_some(plateau)
    }

    /// The run of clipped samples through `i` (itself clipped), however close to the edges.
    fn run(clipped: &[bool], i: usize) -> Plateau {
        let mut first = i;
        while first > 0 && clipped[first - 1] {
            first -= 1;
        }
        let mut last = i;
        while last + 1 < clipped.len() && clipped[last + 1] {
            last += 1;
        }
        Plateau { first, last }
    }

    /// The lowest |ω⊥| on the plateau: what the gyro clipped at.
    fn level(self, perp: &[f64]) -> f64 {
        perp[self.first..=self.last]
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }
}

/// The turn (°, of |ω⊥|) that clipping hid, from gravity: integrating the clipped gyro,
/// gravity after the swing comes out turned about the swing's axis by exactly the hidden
/// rotation, relative to gravity before it. `None` when either anchor is missing, other
/// samples clip too, or the axis is within 25° of vertical (a turn about the vertical does
/// not move gravity).
fn hidden_turn(
    s: &[NodeSample],
    gyro: &[Vec3],
    acc: &[Vec3],
    clipped: &[bool],
    plateau: Plateau,
    still: &dyn Fn(usize) -> bool,
    w: &SwingWindow,
) -> Option<f64> {
    let outside = |i: usize| i < plateau.first || i > plateau.last;
    if (0..s.len()).any(|i| clipped[i] && outside(i)) {
        return None;
    }
    let attitude = integrate(s, gyro);
    let before = mean_up(acc, &attitude, |i| s[i].t_ms <= w.trigger_t && still(i))?;
    let after = mean_up(acc, &attitude, |i| s[i].t_ms > w.end_t && still(i))?;
    let edge = plateau.first - 1;
    let axis_body = vm::unit(gyro[edge])?;
    let perp_share = gyro[edge][1].hypot(gyro[edge][2]) / vm::norm(gyro[edge]);
    let n = vm::rotate(attitude[edge], axis_body);
    let flat = |v: Vec3| vm::sub(v, vm::scale(n, vm::dot(v, n)));
    let (pb, pa) = (flat(before), flat(after));
    if vm::norm(pb) < MIN_AXIS_TILT || vm::norm(pa) < MIN_AXIS_TILT {
        return None;
    }
    let turn = vm::dot(n, vm::cross(pa, pb))
        .atan2(vm::dot(pa, pb))
        .to_degrees();
    Some(turn * perp_share)
}

/// The pulse's cap above a clipped plateau: a Gaussian rise through the two clean samples
/// before the plateau, a Gaussian fall through the first clean one after it, and the peak
/// whose area above the measured samples equals the `hidden` turn (°). Only the cap is
/// modelled, so the flanks' feet (where the backswing and recovery bend the pulse) do not
/// enter.
fn cap_through_plateau(
    s: &[NodeSample],
    perp: &[f64],
    plateau: Plateau,
    hidden: f64,
    impact_i: Option<usize>,
) -> Option<Pulse> {
    let (r1, r2) = (plateau.first - 2, plateau.first - 1);
    let ring_end = ring_end_ms(s, impact_i);
    let f = (plateau.last + 1..s.len()).find(|&i| s[i].t_ms > ring_end)?;
    let level = plateau.level(perp);
    let ok = perp[r1] > 0.0 && perp[r2] > perp[r1] && perp[f] > 0.0 && perp[f] < level;
    let hidden_ok = hidden.is_finite() && hidden > 0.0;
    if !ok || !hidden_ok {
        return None;
    }
    let cap = |peak: f64| -> Option<Pulse> {
        let a = |y: f64| (2.0 * (peak / y).ln()).sqrt();
        let rise = (s[r2].t_ms - s[r1].t_ms) / (a(perp[r1]) - a(perp[r2]));
        let t0 = s[r2].t_ms + a(perp[r2]) * rise;
        let fall = (s[f].t_ms - t0) / a(perp[f]);
        (rise > 0.0 && fall > 0.0 && t0 < s[f].t_ms).then_some(Pulse {
            peak,
            t0,
            rise_ms: rise,
            fall_ms: fall,
        })
    };
    // What the integration of the measured samples missed under this cap.
    let missed = |p: &Pulse| -> f64 {
        let (t_a, t_b) = (s[r2].t_ms, s[f].t_ms);
        let steps = ((t_b - t_a) / CAP_STEP_MS).ceil().max(1.0) as usize;
        let dt = (t_b - t_a) / steps as f64;
        let mut j = r2;
        (0..steps)
            .map(|k| {
                let t = t_a + (k as f64 + 0.5) * dt;
                while s[j + 1].t_ms < t {
                    j += 1;
                }
                let u = (t - s[j].t_ms) / (s[j + 1].t_ms - s[j].t_ms);
                let measured = perp[j] + u * (perp[j + 1] - perp[j]);
                (p.at(t) - measured).max(0.0) * dt / 1000.0
            })
            .sum()
    };
    // The missed area grows with the peak: bisect on ln(peak) between the clip level and
    // 30× it (no racket turns at 60 000 °/s). A peak so high that the cap through the rising
    // samples would crest after the falling one is too high.
    let (mut lo, mut hi) = (level.ln(), (30.0 * level).ln());
    for _ in 0..CAP_BISECTIONS {
        let mid = 0.5 * (lo + hi);
        match cap(mid.exp()) {
            Some(p) if missed(&p) < hidden => lo = mid,
            _ => hi = mid,
        }
    }
    let pulse = cap(hi.exp())?;
    // No cap through these samples hides that much turn: the pulse is not this shape.
    ((missed(&pulse) / hidden - 1.0).abs() < CAP_AREA_TOLERANCE).then_some(pulse)
}

#[cfg(test)]
mod tests;
