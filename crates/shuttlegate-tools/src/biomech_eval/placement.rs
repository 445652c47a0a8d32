//! What the axis inference made of each simulated racket node, against the simulator's mount
//! (`eval --verbose`): when it decided, what it turned the node to, how far that is from the
//! truth, and the evidence it had (drives, their vote, how clear the swing plane was), with
//! the session's side figure (which sessions lose side, and why). The same for the forehand's
//! turn inferred on a wrist or forearm node standing in for the racket (`arm …` lines and
//! `side arm …` groups).
//!
//! The analyser's own pipeline does not expose its conditioning state, so the racket node's
//! samples are decoded from the session's wire text and run through a fresh
//! [`NodeConditioner`] with the device's profile: the same conditioning the device's analyser
//! applies (wrap, calibration, axes), in time order. Only a breakdown: no figure is scored
//! from it.

use shuttlegate_biomech::{NodeSetup, Segment, Session};
use shuttlegate_core::analysis::{
    DeviceProfile, ForehandTurn, InferenceReport, NodeConditioner, NodeSample, samples_of,
};
use shuttlegate_core::batch::BodyPosition;
use shuttlegate_core::protocol::{DeviceMessage, FrameClock, parse_device_message};

/// One line about the racket node of `session` under `profile` (`None` without a racket node
/// or without inference), ending with the session's side figure, `side` = (found, side
/// right). The "sense" field says which way along the inferred swing axis the simulator's y
/// points (truth) and the drives' vote puts it (0: an even vote).
pub fn inference_line(
    seed: u64,
    session: &Session,
    profile: &DeviceProfile,
    side: (usize, usize),
) -> Option<String> {
    let (report, truth) = inference(session, profile)?;
    let line = describe(seed, session, &report, truth);
    Some(format!("{line} | side {} of {}", side.1, side.0))
}

/// The inference's state at the session's end on its racket node, and the simulator's mount
/// (rows: the analyser's axes in node axes); `None` without a racket node or inference.
fn inference(
    session: &Session,
    profile: &DeviceProfile,
) -> Option<(InferenceReport, [[f64; 3]; 3])> {
    let node = session
        .device
        .nodes
        .iter()
        .find(|n| n.segment == Segment::Racket)?;
    let racket_id = Segment::Racket.sensor_id();
    let mut samples = node_samples(session, racket_id, BodyPosition::Racket);
    let mut conditioner = NodeConditioner::new(profile, BodyPosition::Racket, false);
    for s in &mut samples {
        conditioner.condition(s);
    }
    let report = conditioner.inference_report()?;
    Some((report, super::mount_rotation(node)))
}

/// Side breakdown groups for each played swing the analyser found (`eval --verbose`), as
/// (played swing's index, group name): why a swing's side was read as it was — the node's
/// gyro range, its placement and mount, and when the swing fell against the inference's
/// frames (before any, while provisional, after the last) and whether the last frame's y
/// points the simulator's way.
pub fn side_groups(session: &Session, profile: &DeviceProfile) -> Vec<(usize, String)> {
    let Some((report, truth)) = inference(session, profile) else {
        return Vec::new();
    };
    let y_right = dot(report.rotation[1], truth[1]) > 0.0;
    let mount = super::racket_mount(session).unwrap_or("none");
    let head = format!(
        "side gyro {} dps {} racket mount {mount}",
        session.device.nodes[0].sensor.gyro_full_scale_dps,
        session.device.placement.name(),
    );
    let outcome = if report.first_at.is_none() {
        "never framed"
    } else if report.settled {
        if y_right {
            "final y right"
        } else {
            "final y wrong"
        }
    } else if y_right {
        "provisional y right"
    } else {
        "provisional y wrong"
    };
    session
        .swings
        .iter()
        .enumerate()
        .flat_map(|(k, t)| {
            let phase = match (report.first_at, report.last_at) {
                (None, _) => "no frame",
                (Some(first), _) if t.t_contact_ms < first => "before first frame",
                (_, Some(last)) if report.settled && t.t_contact_ms >= last => "after last frame",
                _ => "between frames",
            };
            [
                (k, head.clone()),
                (k, format!("side racket mount {mount}: {outcome}, {phase}")),
                (k, format!("side session {outcome}")),
            ]
        })
        .collect()
}

/// How a node sits on its segment: in the convention, turned by right angles (a signed
/// permutation of its axes), or by an arbitrary rotation.
pub fn mount_class(node: &NodeSetup) -> &'static str {
    // The rotation matrix's entries: all 0 or ±1 for a board turned by right angles.
    let rotation = super::mount_rotation(node);
    let m = rotation.as_flattened();
    let square = m
        .iter()
        .all(|v| v.abs() < 1e-6 || (v.abs() - 1.0).abs() < 1e-6);
    if !node.sensor.mount_rotated || (m[0] > 0.999_999 && m[4] > 0.999_999) {
        "aligned"
    } else if square {
        "right-angle"
    } else {
        "arbitrary"
    }
}

/// The node of a wrist-only or forearm device (sent as the wrist node), which stands in for
/// the racket; `None` on a device with a racket node.
fn arm_node(session: &Session) -> Option<&NodeSetup> {
    if has_racket_node(session) {
        return None;
    }
    session
        .device
        .nodes
        .iter()
        .find(|n| matches!(n.segment, Segment::Wrist | Segment::Forearm))
}

/// What the forehand-turn inference said on a wrist or forearm device standing in for the
/// racket, when each played swing was measured (half a second after its contact), and at the
/// session's end; with the simulator's forehand axis (its −y in node axes).
struct ArmTrace {
    at_swing: Vec<Option<ForehandTurn>>,
    last: Option<ForehandTurn>,
    truth_turn: [f64; 3],
    mount: &'static str,
}

fn arm_trace(session: &Session, profile: &DeviceProfile) -> Option<ArmTrace> {
    let node = arm_node(session)?;
    let mut samples = node_samples(session, Segment::Wrist.sensor_id(), BodyPosition::Wrist);
    let mut conditioner = NodeConditioner::new(profile, BodyPosition::Wrist, true);
    let mut at_swing = Vec::with_capacity(session.swings.len());
    for s in &mut samples {
        while let Some(t) = session.swings.get(at_swing.len())
            && s.t_ms >= t.t_contact_ms + 500.0
        {
            at_swing.push(conditioner.forehand_turn());
        }
        conditioner.condition(s);
    }
    let last = conditioner.forehand_turn();
    at_swing.resize(session.swings.len(), last);
    let truth = super::mount_rotation(node);
    Some(ArmTrace {
        at_swing,
        last,
        truth_turn: truth[1].map(|v| -v),
        mount: mount_class(node),
    })
}

/// Side breakdown groups for a wrist-only or forearm device (`eval --verbose`), as (played
/// swing's index, group name): the node's mount on the arm, and what the forehand-turn
/// inference said when the swing was measured — nothing yet, the node as made, or an
/// inferred axis on the simulator's side of the turn or not.
pub fn arm_side_groups(session: &Session, profile: &DeviceProfile) -> Vec<(usize, String)> {
    let Some(trace) = arm_trace(session, profile) else {
        return Vec::new();
    };
    let placement = session.device.placement.name();
    trace
        .at_swing
        .iter()
        .enumerate()
        .map(|(k, turn)| {
            let state = match turn {
                None => "no turn yet",
                Some(t) if t.as_made => "as made",
                Some(t) if dot(t.axis, trace.truth_turn) > 0.0 => "inferred, axis right",
                Some(_) => "inferred, axis wrong",
            };
            (
                k,
                format!("side arm {placement} mount {}: {state}", trace.mount),
            )
        })
        .collect()
}

/// One line about a wrist-only or forearm device's forehand-turn inference at the session's
/// end against the simulator's mount, with the session's side figure `side` = (found, side
/// right); `None` on a device with a racket node.
pub fn arm_line(
    seed: u64,
    session: &Session,
    profile: &DeviceProfile,
    side: (usize, usize),
) -> Option<String> {
    let trace = arm_trace(session, profile)?;
    let truth_x = super::mount_rotation(arm_node(session)?)[0];
    let head = format!(
        "arm seed {seed:>5}: {} mount {} truth turn=({:+.2},{:+.2},{:+.2})",
        session.device.placement.name(),
        trace.mount,
        trace.truth_turn[0],
        trace.truth_turn[1],
        trace.truth_turn[2],
    );
    let body = match trace.last {
        None => "no turn".to_owned(),
        Some(t) => format!(
            "{} turn off {:>5.1}° forearm off {:>5.1}° | clear {:.2} drives {:>3} votes {:>+4} sure {:.2} conf {:.2} roll {:>+4} of {:>3}",
            if t.as_made { "as made" } else { "inferred" },
            angle_deg(t.axis, trace.truth_turn),
            angle_deg(t.forearm, truth_x),
            t.clear,
            t.drives,
            t.votes,
            t.sure,
            t.confidence(),
            t.roll_votes,
            t.roll_drives,
        ),
    };
    Some(format!("{head} | {body} | side {} of {}", side.1, side.0))
}

/// The samples of the node with sensor id `id`, decoded from the session's wire text as the
/// daemon decodes them, as `position`'s; in time order, one per time stamp (as the analyser's
/// ordering stage releases them to the conditioning stage).
pub(crate) fn node_samples(session: &Session, id: u32, position: BodyPosition) -> Vec<NodeSample> {
    let mut out: Vec<NodeSample> =
        decoded_batches(session, |sensor| (sensor == id).then_some(position))
            .flatten()
            .collect();
    out.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    out.dedup_by(|a, b| a.t_ms == b.t_ms);
    out
}

/// The primary node's samples ([`node_samples`]) run in time order through a fresh
/// [`NodeConditioner`] with the device's `profile`, as the device's analyser conditions them
/// (a wrist node is the primary one only when the device has no racket node).
pub(crate) fn conditioned_primary_samples(
    session: &Session,
    id: u32,
    position: BodyPosition,
    profile: &DeviceProfile,
) -> Vec<NodeSample> {
    let mut samples = node_samples(session, id, position);
    let mut conditioner = NodeConditioner::new(profile, position, position == BodyPosition::Wrist);
    for s in &mut samples {
        conditioner.condition(s);
    }
    samples
}

/// Each batch message of the session decoded as the daemon decodes it (its parser, the
/// frame clock, each sensor id placed by `position_of`), in the order the gateway receives
/// them; other messages are skipped.
pub(crate) fn decoded_batches<'a>(
    session: &'a Session,
    position_of: impl Fn(u32) -> Option<BodyPosition> + 'a,
) -> impl Iterator<Item = Vec<NodeSample>> + 'a {
    let code = &session.device.device_code;
    let clock = FrameClock::new(chrono_tz::Asia::Shanghai);
    session.messages.iter().filter_map(move |m| {
        let Ok(DeviceMessage::Batch(batch)) = parse_device_message(&m.text, code) else {
            return None;
        };
        Some(samples_of(&batch, &position_of, |raw| {
            clock
                .to_unix_ms(raw, m.received_ms)
                .map(|t| t as f64)
                .or(Some(raw as f64))
        }))
    })
}

/// Whether the simulated device carries a racket node.
pub(crate) fn has_racket_node(session: &Session) -> bool {
    session
        .device
        .nodes
        .iter()
        .any(|n| n.segment == Segment::Racket)
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn angle_deg(a: [f64; 3], b: [f64; 3]) -> f64 {
    dot(a, b).clamp(-1.0, 1.0).acos().to_degrees()
}

/// −1, 0 or +1 (0 for an even vote, where `f64::signum` would say +1).
fn sign(v: f64) -> i32 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

fn describe(seed: u64, session: &Session, r: &InferenceReport, truth: [[f64; 3]; 3]) -> String {
    let before = |t: Option<f64>| {
        session
            .swings
            .iter()
            .filter(|s| t.is_none_or(|t| s.t_contact_ms < t))
            .count()
    };
    let [ex, ey, ez] = [0, 1, 2].map(|k| angle_deg(r.rotation[k], truth[k]));
    let plane = dot(r.swing_axis, truth[1])
        .abs()
        .clamp(0.0, 1.0)
        .acos()
        .to_degrees();
    let radius = dot(r.radius, r.radius).sqrt();
    let identity = r.rotation == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let at = |t: Option<f64>| {
        t.map_or("-".into(), |t| {
            format!("{:.0} s", (t - session.start_ms) / 1000.0)
        })
    };
    format!(
        "axes seed {:>5}: truth y=({:+.2},{:+.2},{:+.2}) | {} {} first {} ({} of {} swings before) last {} ({} before) frames {} | err x {:>5.1}° y {:>5.1}° z {:>5.1}° | plane off {:>4.1}° clear {:.2} roll {:.2} | r {:.3} m {:>5.1}° off x | drives {:>3} votes {:>+4} sure {:.2} conf {} | sense truth {:+} vote {:+} | decided on {}",
        seed,
        truth[1][0],
        truth[1][1],
        truth[1][2],
        if r.first_at.is_none() {
            "waiting"
        } else if identity {
            "kept"
        } else {
            "turned"
        },
        if r.settled { "final" } else { "provisional" },
        at(r.first_at),
        before(r.first_at),
        session.swings.len(),
        at(r.last_at),
        before(r.last_at),
        r.frames,
        ex,
        ey,
        ez,
        plane,
        r.spin_clear,
        r.roll_clear,
        radius,
        if radius > 0.0 {
            (dot(r.radius, truth[0]) / radius)
                .clamp(-1.0, 1.0)
                .acos()
                .to_degrees()
        } else {
            0.0
        },
        r.drives,
        r.votes,
        r.forehand_sure,
        r.confidence.map_or("-".into(), |c| format!("{c:.2}")),
        sign(dot(truth[1], r.swing_axis)),
        -sign(r.votes),
        r.decided_on
            .map_or("-".into(), |(drives, votes, sure)| format!(
                "{drives} drives votes {votes:+} sure {sure:.2}"
            )),
    )
}
