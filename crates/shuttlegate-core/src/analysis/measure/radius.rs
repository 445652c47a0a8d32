//! Which way a stand-in node points out from the swing's centre, from its own centripetal
//! acceleration: the direction the racket's height is read along when the node is on the
//! wrist or forearm rather than on the racket.
//!
//! Why: a racket node's x axis is the shaft (configured, or inferred by condition/axes.rs),
//! so its elevation at contact is the shaft's. A wrist or forearm node has no shaft: its x
//! is the forearm only if the band sits in the convention, and nothing infers it when the
//! band is turned on the arm — its elevation said little (on the independent simulator's
//! tuning seeds 0–199 at 100 Hz, 54 % of overhead and 65 % of underarm swings right on
//! stand-in nodes, against 84 % and 91 % on aligned racket nodes).
//!
//! Rigid-body kinematics give the node's place on the turning arm without knowing its axes:
//! a point at r from the centre of a segment turning at ω and speeding up at α feels
//! (\[α\]× + \[ω\]×²) r beyond the centre's own acceleration — the centripetal part
//! pointing from the node to the centre. At stroke rates (1000–2000 °/s, ‖ω‖² = 300–1200
//! rad²/s²) a node 0.3–0.6 m from the shoulder (forearm and upper arm 0.146 and 0.186 of body
//! height, Winter 2009, *Biomechanics and Motor Control of Human Movement*, table 4.1) feels
//! 9–70 g of it, far above the shoulder's own few g, so a least-squares fit of the reading
//! beyond gravity (gravity carried along the integrated attitude) over the swing's fastest
//! samples gives r in the node's axes whichever way the band is turned. Its direction is the
//! arm's, from the shoulder and elbow out through the hand: above the shoulder in an overhead
//! stroke (contact "high above the head, almost at full extension"), below it in an
//! underarm one, level in a drive — the height the classifier asks of the shaft, read on the
//! arm that holds it.
//!
//! The node as made stays the prior ([`height_axis`]): the fit takes in the shoulder's own
//! acceleration and wanders tens of degrees, so a node whose arm direction lies nearer its x
//! than any other signed axis keeps its x. Read along the fit always, the bands worn the
//! usual way lost (independent simulator, tuning seeds 0–49 at 100 Hz: aligned wrist bands'
//! overhead swings 27 → 17 of 36 right; with the prior 22), while turned ones gained
//! (docs/analysis.md, Pipeline section 3, "Height").

use crate::analysis::STANDARD_GRAVITY as G;
use crate::analysis::vecmath::{self as vm, Vec3};

/// Samples turning at least this share of the swing's fastest ‖ω‖ enter the fit: their
/// centripetal term is at least 0.36 of its peak, 3 g and more at stroke rates, while the
/// slower flanks carry the hand's push and gravity at a larger share.
const MIN_RATE_SHARE: f64 = 0.6;
/// A stand-in's forearm that stood higher than this above the horizontal on the approach to
/// contact met the shuttle overhead, °. Twice the classifier's overhead boundary for the
/// shaft (`classify::OVERHEAD_ELEV_DEG`, 15°): a forearm reaching up "almost at full
/// extension" stands well above it, while a drive's forearm, carried near shoulder height,
/// can pass 15° on its approach (at 15° the independent simulator's tuning seeds 0–49 lost
/// 4 drives to overhead strokes at 100 Hz and 4 at mixed rates; at 30° none at 100 Hz).
const APPROACH_OVERHEAD_DEG: f64 = 30.0;
/// Fewer samples than this give no fit worth trusting (three unknowns).
const MIN_SAMPLES: usize = 3;
/// The fitted radius must lie in this range, m, to be the arm's: a forearm band sits 0.1–0.3 m
/// from the elbow and up to 0.6 m from the shoulder (Winter 2009, above); shorter, the node
/// turns about its own segment (pronation alone); longer, the fit took in something else
/// (the trunk's or the legs' acceleration).
const MIN_RADIUS_M: f64 = 0.05;
const MAX_RADIUS_M: f64 = 1.2;
/// Ridge added to the normal equations, as a share of their trace: the component of r along
/// a turn axis that hardly moves is unobservable (the centripetal term does not see it), and
/// is held near zero instead of fitted to noise.
const RIDGE_SHARE: f64 = 1e-3;

/// What the fit reads for each sample: the accelerometer (g), the gyro (°/s), the sample
/// times (ms) and gravity's direction in the node's axes where the attitude knows it.
pub struct Readings<'a> {
    pub acc: &'a [Vec3],
    pub gyro: &'a [Vec3],
    pub t_ms: &'a [f64],
    /// Gravity's reading at rest (unit "up", times the rest magnitude, g) at sample i.
    pub gravity: &'a dyn Fn(usize) -> Option<Vec3>,
}

/// The unit vector from the swing's centre out to the node, in the node's axes, from the
/// samples `picked` (the swing's, clean: no axis at its rail). The full rigid-body model is
/// fitted, a − g = (\[α\]× + \[ω\]×²) r: the centripetal term and the tangential α × r
/// (large on the pulse's flanks), gravity taken out along the integrated attitude; what is
/// left is the centre's own acceleration (the shoulder's, a few g). `None` with too few fast
/// samples or a radius no arm has.
pub fn outward_direction(readings: &Readings, picked: impl Iterator<Item = usize>) -> Option<Vec3> {
    let (acc, gyro, t) = (readings.acc, readings.gyro, readings.t_ms);
    let picked: Vec<usize> = picked
        .filter(|&i| i > 0 && i + 1 < gyro.len() && t[i + 1] > t[i - 1])
        .collect();
    let fastest = picked
        .iter()
        .map(|&i| vm::norm(gyro[i]))
        .fold(0.0, f64::max);
    let fast: Vec<usize> = picked
        .into_iter()
        .filter(|&i| vm::norm(gyro[i]) >= MIN_RATE_SHARE * fastest)
        .collect();
    if fast.len() < MIN_SAMPLES || fastest <= 0.0 {
        return None;
    }
    // Per sample: the columns of M = [α]× + [ω]×² and the reading beyond gravity, m/s².
    let rows: Vec<([Vec3; 3], Vec3)> = fast
        .iter()
        .filter_map(|&i| {
            let g = (readings.gravity)(i)?;
            let w = vm::scale(gyro[i], 1f64.to_radians());
            let dt = (t[i + 1] - t[i - 1]) / 1000.0;
            let alpha = vm::scale(vm::sub(gyro[i + 1], gyro[i - 1]), 1f64.to_radians() / dt);
            Some((
                rigid_turn_columns(w, alpha),
                vm::scale(vm::sub(acc[i], g), G),
            ))
        })
        .collect();
    if rows.len() < MIN_SAMPLES {
        return None;
    }
    let r = fit_lever(&rows)?;
    (MIN_RADIUS_M..=MAX_RADIUS_M)
        .contains(&vm::norm(r))
        .then(|| vm::unit(r))
        .flatten()
}

/// The columns of [α]× + [ω]×² (ω in rad/s, α in rad/s²): a rigid turn's load at a point r
/// from its centre is their sum weighted by r's components, so the fits here are linear in r.
pub(super) fn rigid_turn_columns(w: Vec3, alpha: Vec3) -> [Vec3; 3] {
    let col = |e: Vec3| vm::add(vm::cross(alpha, e), vm::cross(w, vm::cross(w, e)));
    [
        col([1.0, 0.0, 0.0]),
        col([0.0, 1.0, 0.0]),
        col([0.0, 0.0, 1.0]),
    ]
}

/// The lever r minimising Σ ‖y − Σₖ rₖ cₖ‖² over `rows` of (columns c, reading y), with a
/// ridge of [`RIDGE_SHARE`] of the normal equations' trace. `None` when singular.
pub(super) fn fit_lever(rows: &[([Vec3; 3], Vec3)]) -> Option<Vec3> {
    let mut ata = vec![vec![0.0; 3]; 3];
    let mut atb = vec![0.0; 3];
    for (m_cols, y) in rows {
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += vm::dot(m_cols[r], m_cols[c]);
            }
            atb[r] += vm::dot(m_cols[r], *y);
        }
    }
    let ridge = RIDGE_SHARE * (ata[0][0] + ata[1][1] + ata[2][2]);
    for (k, row) in ata.iter_mut().enumerate() {
        row[k] += ridge;
    }
    let r = crate::analysis::signal::solve_small(ata, atb)?;
    Some([r[0], r[1], r[2]])
}

/// The axis a node's height is read along: its own x when nothing says otherwise (a racket
/// node, whose x is the shaft, or a stand-in without a fit) or when the arm's direction
/// `out` lies nearer x than any other of its six signed axes — the node as made is the
/// prior, as for a racket node's axes (condition/axes.rs): a band strapped on the forearm
/// the usual way has its x along it, and the fit, which takes in the shoulder's own
/// acceleration, wanders tens of degrees about it —; otherwise along the arm.
pub fn height_axis(out: Option<Vec3>) -> Vec3 {
    const X: Vec3 = [1.0, 0.0, 0.0];
    match out {
        Some(o) if !(o[0] > 0.0 && o[0] >= o[1].abs() && o[0] >= o[2].abs()) => o,
        _ => X,
    }
}

/// A stand-in's elevation for its height (°): its highest over the approach to contact
/// (`approach`: the samples of the last [`super::course::APPROACH_MS`] before it) when that
/// stood above [`APPROACH_OVERHEAD_DEG`], else its elevation at contact.
///
/// Why: the node measures the forearm, and its contact is read on the forearm's pulse, not
/// the racket's (a stand-in feels no clean shuttle transient), so the forearm's attitude at
/// that instant is not the racket's at contact. In an overhead stroke the arm reaches up to
/// meet the shuttle "high above the head, almost at full extension" (quoted in the module
/// docs) and then swings forward and down through the forearm's fastest turn — on the
/// ChoongGao armband the node's x rises from a median −59° at the ready position to +20…+46°
/// 50–100 ms before the gyro's peak and is falling through the horizontal at it (the raw
/// gyro integrated from the accelerometer's gravity at the last calm sample; the sensor's own
/// fused angles are no truth there, docs/analysis.md "height24"; the rule was chosen looking
/// at that set, so it is not independent of it). A forearm that stood clearly overhead
/// within the approach met the shuttle overhead. Only upwards, and only across that bar: an
/// underarm stroke's forearm often falls to meet a low shuttle, so its highest point says
/// nothing about contact (read at its highest always, the independent simulator's stand-ins
/// lost 12 of 153 underarm swings on the tuning seeds).
pub fn stand_in_elevation(
    axis: Vec3,
    attitude: &[vm::Quat],
    up_anchor: Vec3,
    approach: impl Iterator<Item = usize>,
    at_contact_deg: f64,
) -> f64 {
    let highest = approach
        .map(|i| vm::elevation_deg(vm::rotate(attitude[i], axis), up_anchor))
        .fold(at_contact_deg, f64::max);
    if highest > APPROACH_OVERHEAD_DEG {
        highest
    } else {
        at_contact_deg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attitudes (node → anchor frame, up = +z) that put the node's x at these elevations.
    fn raised(elevations_deg: &[f64]) -> Vec<vm::Quat> {
        elevations_deg
            .iter()
            .map(|e| vm::from_rotation_vector([0.0, -e.to_radians(), 0.0]))
            .collect()
    }

    fn elevation_of(elevations_deg: &[f64]) -> f64 {
        let attitude = raised(elevations_deg);
        let at_contact = *elevations_deg.last().unwrap();
        stand_in_elevation(
            [1.0, 0.0, 0.0],
            &attitude,
            [0.0, 0.0, 1.0],
            0..attitude.len(),
            at_contact,
        )
    }

    /// The ChoongGao armband's overhead course: the forearm up at 45° on the approach and
    /// falling through the horizontal by the contact read on its fastest turn.
    #[test]
    fn a_forearm_that_stood_overhead_on_the_approach_reads_overhead() {
        let e = elevation_of(&[-10.0, 10.0, 30.0, 45.0, 20.0, -5.0]);
        assert!((e - 45.0).abs() < 1e-6, "{e}");
    }

    /// A drive's forearm that passes a little above the shaft's overhead boundary on its
    /// approach is not taken for an overhead stroke: its contact elevation stands.
    #[test]
    fn a_forearm_a_little_above_level_on_the_approach_keeps_its_contact_elevation() {
        let e = elevation_of(&[0.0, 12.0, 22.0, 10.0, -2.0]);
        assert!((e + 2.0).abs() < 1e-6, "{e}");
    }

    /// An underarm stroke whose forearm falls to a low shuttle from nearly level keeps its
    /// contact elevation: the approach's highest point is not overhead.
    #[test]
    fn a_forearm_falling_to_a_low_contact_keeps_its_contact_elevation() {
        let e = elevation_of(&[10.0, 0.0, -15.0, -30.0]);
        assert!((e + 30.0).abs() < 1e-6, "{e}");
    }

    /// A node at `r` (m, node axes) turning at `omega` (°/s) and speeding up at `alpha`
    /// (°/s²), with gravity's reading `up` (g) on top.
    fn reading(r: Vec3, omega: Vec3, alpha: Vec3, up: Vec3) -> Vec3 {
        let w = vm::scale(omega, 1f64.to_radians());
        let a = vm::scale(alpha, 1f64.to_radians());
        let rigid = vm::add(vm::cross(a, r), vm::cross(w, vm::cross(w, r)));
        vm::add(vm::scale(rigid, 1.0 / G), up)
    }

    fn fit(acc: &[Vec3], gyro: &[Vec3], t: &[f64], up: Vec3) -> Option<Vec3> {
        let gravity = |_: usize| Some(up);
        let readings = Readings {
            acc,
            gyro,
            t_ms: t,
            gravity: &gravity,
        };
        outward_direction(&readings, 0..acc.len())
    }

    #[test]
    fn a_band_turned_on_the_arm_points_out_along_the_arm() {
        // The arm runs along the node's −z (a band turned over on the forearm), the swing
        // turns about the node's x, speeding up then slowing, and a little about the arm.
        let r = [0.0, 0.05, -0.45];
        let up = [0.3, -0.8, 0.5];
        let t: Vec<f64> = (0..11).map(|k| 10.0 * k as f64).collect();
        let omega = |tm: f64| {
            let s = (tm - 50.0) / 40.0;
            [1500.0 * (1.0 - 0.5 * s * s), 40.0 * s, 300.0]
        };
        let alpha = |tm: f64| {
            let s = (tm - 50.0) / 40.0;
            [-1500.0 * s / 0.04, 40.0 / 0.04, 0.0]
        };
        let gyro: Vec<Vec3> = t.iter().map(|&tm| omega(tm)).collect();
        let acc: Vec<Vec3> = t
            .iter()
            .map(|&tm| reading(r, omega(tm), alpha(tm), up))
            .collect();
        let out = fit(&acc, &gyro, &t, up).expect("a fit");
        let want = vm::unit(r).unwrap();
        assert!(vm::dot(out, want) > 0.999, "{out:?} against {want:?}");
    }

    #[test]
    fn a_node_whose_arm_lies_nearest_its_x_keeps_its_x() {
        let near_x = vm::unit([0.8, 0.5, -0.3]).unwrap();
        assert_eq!(height_axis(Some(near_x)), [1.0, 0.0, 0.0]);
        assert_eq!(height_axis(None), [1.0, 0.0, 0.0]);
        let reversed = vm::unit([-0.9, 0.3, 0.1]).unwrap();
        assert_eq!(height_axis(Some(reversed)), reversed);
        let across = vm::unit([0.4, 0.1, -0.9]).unwrap();
        assert_eq!(height_axis(Some(across)), across);
    }

    #[test]
    fn a_node_turning_about_itself_has_no_arm_to_point_along() {
        // Pronation alone: the node sits on the turn's axis and feels only gravity (read
        // 0.1 g off, as an uncalibrated part might).
        let t: Vec<f64> = (0..9).map(|k| 10.0 * k as f64).collect();
        let gyro: Vec<Vec3> = (0..9).map(|_| [1200.0, 0.0, 0.0]).collect();
        let acc: Vec<Vec3> = (0..9).map(|_| [0.0, 0.66, 0.88]).collect();
        assert_eq!(fit(&acc, &gyro, &t, [0.0, 0.6, 0.8]), None);
    }
}
