//! A node's axes onto the analyser's convention: configured (`axes = ["-y", "x", "z"]`) or
//! inferred from the swings.
//!
//! The analyser reads a racket node with x along the shaft towards the head and z the normal of
//! the forehand face (docs/analysis.md, "Node conventions"). A node mounted otherwise — turned on
//! the handle, its board rotated in its case — is turned onto the convention: by a configured
//! signed permutation of its axes, or by an inferred rotation (any rotation: a node taped on
//! askew is not a right-angle turn).
//!
//! Without a configured map, unless the device opts out (`infer_axes = false`: by default
//! since axes17), the racket node's axes are inferred from its
//! fast samples (over `FAST_DPS`), by the swing plane: the swing's axis (y) is the main axis of
//! Σ ω ωᵀ (it turns most), the shaft the next (the forearm's pronation rolls the racket about
//! it), the face normal the least (a racket seldom turns edge-first). The shaft points the way
//! the centripetal reading puts the node from the centre of the swing (the acceleration beyond
//! gravity, gravity carried through the swing by the gyro from the last still sample, grows
//! with ω² towards the centre). Which face is the forehand's cannot be told from one swing's
//! physics: the sense most swings' drives turn in is taken for the forehand (players hit more
//! forehands).
//!
//! Two stages, because only the side needs the forehand's face: the swing plane and the
//! shaft fix |ω⊥| (detection and speed), the shaft's elevation (height) and the head's path
//! (stroke) whatever the face. So from the second drive a turned node is read through a
//! *provisional* frame (the plane, the shaft, the vote so far), replaced when more swings move
//! it or turn the vote over, and undone if they blur the plane; the *last* frame is decided
//! once four drives have voted clearly. A frame is applied only while the racket is quiet
//! (never inside a swing), and a swing's earlier samples are brought into the frame applied
//! when it is measured.
//!
//! The inference acts only on evidence, and the mount as made is the strong prior: a node
//! whose y is the swing's axis keeps its y's sense unless its drives vote clearly against it
//! (a node turned over on the handle; while they lean against it unclearly it is read as made
//! and more drives are awaited), and is turned about that y only when its shaft is clearly
//! elsewhere than its +x; one whose swing plane is not clear stays as it reads.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::super::vecmath::{self as vm, Vec3};
use super::RAIL_SHARE;
use crate::analysis::STANDARD_GRAVITY;

/// One analyser axis: which node axis (0 = x, 1 = y, 2 = z) and its sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedAxis {
    pub axis: u8,
    pub negate: bool,
}

/// The analyser's x, y and z as signed node axes; always a rotation (right-handed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct AxisMap([SignedAxis; 3]);

impl AxisMap {
    /// The node already in the convention.
    pub const IDENTITY: AxisMap = AxisMap([
        SignedAxis {
            axis: 0,
            negate: false,
        },
        SignedAxis {
            axis: 1,
            negate: false,
        },
        SignedAxis {
            axis: 2,
            negate: false,
        },
    ]);

    /// From the config's form: three of `x`, `y`, `z`, each once, optionally signed (`-y`,
    /// `+x`). The map must be a rotation: a mirrored set of axes is a wiring or typing error.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<AxisMap, String> {
        let [a, b, c] = names else {
            return Err(format!(
                "needs three axes (the node's axes along the analyser's x, y, z), got {}",
                names.len()
            ));
        };
        let map = AxisMap([
            parse_axis(a.as_ref())?,
            parse_axis(b.as_ref())?,
            parse_axis(c.as_ref())?,
        ]);
        let mut seen = [false; 3];
        for s in map.0 {
            seen[usize::from(s.axis)] = true;
        }
        if seen.contains(&false) {
            return Err(format!(
                "`{map}` names a node axis twice: each of x, y and z must appear once"
            ));
        }
        if map.determinant() < 0.0 {
            return Err(format!(
                "`{map}` is a mirror image, not a rotation: negate one axis more or one fewer"
            ));
        }
        Ok(map)
    }

    /// The vector in the analyser's axes.
    pub fn apply(&self, v: [f32; 3]) -> [f32; 3] {
        self.0.map(|s| {
            let x = v[usize::from(s.axis)];
            if s.negate { -x } else { x }
        })
    }

    fn row(s: SignedAxis) -> Vec3 {
        let mut r = [0.0; 3];
        r[usize::from(s.axis)] = if s.negate { -1.0 } else { 1.0 };
        r
    }

    fn determinant(&self) -> f64 {
        let [x, y, z] = self.0.map(AxisMap::row);
        vm::dot(x, vm::cross(y, z))
    }
}

fn parse_axis(name: &str) -> Result<SignedAxis, String> {
    let (negate, letter) = match name.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, name.strip_prefix('+').unwrap_or(name)),
    };
    let axis = match letter {
        "x" => 0,
        "y" => 1,
        "z" => 2,
        _ => {
            return Err(format!(
                "`{name}` is not an axis (expected x, y or z, optionally with - or +)"
            ));
        }
    };
    Ok(SignedAxis { axis, negate })
}

impl fmt::Display for AxisMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = (*self).into();
        write!(f, "[{}]", names.join(", "))
    }
}

impl From<AxisMap> for Vec<String> {
    fn from(m: AxisMap) -> Vec<String> {
        m.0.iter()
            .map(|s| {
                format!(
                    "{}{}",
                    if s.negate { "-" } else { "" },
                    ["x", "y", "z"][usize::from(s.axis)]
                )
            })
            .collect()
    }
}

impl TryFrom<Vec<String>> for AxisMap {
    type Error = String;
    fn try_from(v: Vec<String>) -> Result<AxisMap, String> {
        AxisMap::parse(&v)
    }
}

/// A node's axes turned onto the analyser's, by any rotation: the rows are the analyser's x,
/// y and z in node axes. A configured [`AxisMap`] is one of these; an inferred one need not be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeRotation([Vec3; 3]);

impl NodeRotation {
    /// The node already in the convention.
    pub const IDENTITY: NodeRotation =
        NodeRotation([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);

    /// The vector in the analyser's axes (exactly the vector for the identity).
    pub fn apply(&self, v: [f32; 3]) -> [f32; 3] {
        if *self == NodeRotation::IDENTITY {
            return v;
        }
        let w = vm::widen(v);
        self.0.map(|row| vm::dot(row, w) as f32)
    }

    /// The analyser's x, y and z in node axes.
    pub fn rows(&self) -> [Vec3; 3] {
        self.0
    }

    /// The vector in the node's axes, from the analyser's (the inverse of [`Self::apply`]).
    pub fn unapply(&self, v: [f32; 3]) -> [f32; 3] {
        let w = vm::widen(v);
        let mut n = [0.0; 3];
        for (k, row) in self.0.iter().enumerate() {
            n = vm::add(n, vm::scale(*row, w[k]));
        }
        n.map(|c| c as f32)
    }

    /// Whether every analyser axis lies within `max_deg` of `other`'s.
    fn within(&self, other: &NodeRotation, max_deg: f64) -> bool {
        let min_cos = max_deg.to_radians().cos();
        self.0
            .iter()
            .zip(other.0)
            .all(|(a, b)| vm::dot(*a, b) >= min_cos)
    }

    /// The nearest signed permutation, when every analyser axis lies within `max_deg` of a
    /// node axis (a board turned by right angles, the usual way a node is taped on).
    fn squared_up(&self, max_deg: f64) -> Option<NodeRotation> {
        let min_cos = max_deg.to_radians().cos();
        let mut rows = [[0.0; 3]; 3];
        let mut seen = [false; 3];
        for (row, out) in self.0.iter().zip(&mut rows) {
            let k = (0..3).max_by(|&a, &b| row[a].abs().total_cmp(&row[b].abs()))?;
            if row[k].abs() < min_cos || seen[k] {
                return None;
            }
            seen[k] = true;
            out[k] = row[k].signum();
        }
        Some(NodeRotation(rows))
    }
}

impl From<AxisMap> for NodeRotation {
    fn from(m: AxisMap) -> NodeRotation {
        NodeRotation(m.0.map(AxisMap::row))
    }
}

/// A decided rotation is applied at the first sample turning slower than this, °/s: under
/// the detector's default end threshold (150 °/s of |ω⊥|), so no frame switch falls inside a
/// burst it is measuring.
const QUIET_DPS: f64 = 100.0;
/// A sense turned over after the last frame is applied only once the racket has been quiet
/// this long, ms: longer than the detector compares a burst's direction with the next one's
/// across (a backswing's gap to its drive, 250 ms, and a recovery's window, 350 ms, in
/// device.rs), so a backswing read in one sense is never set against its drive read in the
/// other. (On the held-out seeds at 100 and 200 Hz a turn-over applied at the first quiet
/// sample, between a backswing and its drive, made the backswing a false swing.)
const TURN_OVER_QUIET_MS: f64 = 500.0;
/// Angular rate above which a racket sample is "fast": a swing, not handling (°/s).
const FAST_DPS: f64 = 600.0;
/// "Still" for the gravity estimate: under this rate, °/s, and within this of 1 g.
const STILL_DPS: f64 = 30.0;
const STILL_G: f64 = 0.05;
/// Fast samples needed before deciding (two swings' worth at 100 Hz).
const DECIDE_AFTER: u32 = 16;
/// Swing drives needed before a provisional frame: the swing plane and the shaft (what
/// height, stroke and speed read through) are clear from the first swings; only the
/// forehand's sense (the side) needs the vote of more.
const EARLY_DRIVES: u32 = 2;
/// A provisional frame is replaced only when the evidence moves an axis this far (or the
/// forehand vote turns it over), °: each switch is a step in the node's readings.
const PROVISIONAL_MOVE_DEG: f64 = 15.0;
/// Frames applied at most per session (the provisional ones and the last).
const MAX_FRAMES: usize = 6;
/// Swing drives needed before deciding: the forehand vote needs a few. The rotation waits
/// for a clear vote anyway (`MIN_REMAP_CONFIDENCE`), so this only bounds how early; on the
/// independent simulator's tuning seeds 0–39 at 100 Hz, 4 read more turned nodes right than
/// 6 or 8 did (side on right-angle mounts 70.5 against 62.7 and 63.3 %).
const DECIDE_DRIVES: u32 = 4;
/// Run peaks kept for the forehand vote; past this many without a clear decision the node is
/// read as it is for the rest of the session (and the inference stops costing anything).
const MAX_PEAKS: usize = 256;
/// Runs starting within this of each other belong to one swing (a backswing, the drive, the
/// follow-through), ms: a badminton stroke's preparation and forward swing take well under a
/// second.
const SWING_SPAN_MS: f64 = 1000.0;
/// The centripetal reading gives the shaft's sense for a node at least this far from the
/// centre of the swing, m: nearer, the hand's own acceleration (which grows with the swing too)
/// can fake it (the project's simulator, which has no centripetal term, fakes up to 3 cm).
const STRONG_RADIUS_M: f64 = 0.05;
/// The swing's axis must carry this share more of the rotation energy than the next
/// (1 − λ₂/λ₁ of Σ ω ωᵀ) before the swing plane counts as clear: 0.5 is twice the energy.
const MIN_SPIN_CLEAR: f64 = 0.5;
/// The roll about the shaft must stand out from the face normal's by this much
/// (1 − λ₃/λ₂) for the roll's axis to be taken for the shaft; otherwise the shaft is taken
/// across the swing's axis along the centripetal reading.
const MIN_ROLL_CLEAR: f64 = 0.5;
/// A turned node is turned only when the inference (swing plane × how sure the forehand vote
/// is) is this sure. Chosen on the independent simulator's tuning seeds 0–39 at 100 Hz: at
/// 0.6 and 0.7 the side on right-angle mounts was 70.5 and 69.4 %, at 0.75 62.7 %.
const MIN_REMAP_CONFIDENCE: f64 = 0.6;
/// A swing axis within this of the node's ±y is the convention's: the node is read as it is
/// unless the drives vote clearly against its y (`MIN_TURN_OVER_SURE`) or its shaft is
/// clearly elsewhere.
const ALIGNED_DEG: f64 = 30.0;
/// How sure the drives' vote must be before a node whose swing axis is its own ±y is read
/// turned over (its y's sense against the mount as made): a node taped on upside down is
/// rarer than a player who hits more backhands than usual, so the bar is well above the
/// turned node's `MIN_REMAP_CONFIDENCE`. Set before measuring, not tuned: on the independent
/// simulator's tuning seeds 0–199 × 120 s at 100 Hz, no node in the convention had a wrong
/// vote surer than 0.84 at its decision (4 of 4 drives one way is 0.977).
const MIN_TURN_OVER_SURE: f64 = 0.95;
/// Drives awaited, at most, for a vote leaning against a node that looks as made to become
/// clear (a few minutes of play); past them it is read as made.
const MAX_TURN_OVER_DRIVES: u32 = 12;
/// An inferred rotation within this of a right-angle turn on every axis is taken as that turn
/// (boards are usually taped on square; the inference's own scatter is 10–20°).
const SQUARE_DEG: f64 = 20.0;
/// A drive votes on the forearm's roll only when the roll is at least this share of its turn
/// across the forearm (a smaller roll is within the axes' error).
const MIN_ROLL_SHARE: f64 = 0.1;

/// Evidence about an unconfigured racket node's axes, gathered from its fast samples.
#[derive(Debug, Clone, Default)]
pub struct AxisInference {
    /// Σ ω ωᵀ over fast samples, (°/s)²: its main axis is the swing's.
    spin_moment: vm::Mat3,
    /// For the regression of the acceleration on ω² (the centripetal reading grows with ω²,
    /// gravity does not): Σ a, Σ a·ω², Σ ω², Σ ω⁴ (ω in rad/s).
    acc_sum: Vec3,
    acc_w_sum: Vec3,
    w_sum: f64,
    w2_sum: f64,
    fast: u32,
    /// Inside a run of fast samples; its start and its fastest ω.
    in_run: bool,
    run_start: f64,
    run_peak: Vec3,
    /// Each finished run's start and peak (bounded by `MAX_PEAKS`).
    peaks: Vec<(f64, Vec3)>,
    /// How many of them are a swing's drive (see [`drives`]).
    drives: u32,
    /// Gravity's "up" in node axes: taken from the accelerometer when the node is still,
    /// carried through motion by the gyro (exact enough over a swing's 0.2 s).
    up: Option<Vec3>,
    prev_t: Option<f64>,
    /// The frames applied so far, oldest first: from when, the rotation, its confidence.
    /// Before the first, samples went through the identity. Bounded by `MAX_FRAMES`.
    frames: Vec<(f64, NodeRotation, f64)>,
    /// A frame decided and waiting for the racket to be quiet; true when it is the last.
    pending: Option<(NodeRotation, f64, bool)>,
    /// The last frame is applied (or pending): no more evidence is gathered.
    settled: bool,
    /// For the least-squares fit of the acceleration beyond gravity to the centripetal
    /// ω × (ω × r) = W r, W = ω ωᵀ − |ω|² I, plus a constant (the hand's own acceleration,
    /// a calibration left over): Σ W W, Σ W, Σ W a (ω in rad/s, a in g; Σ a is `acc_sum`).
    cent_ww: vm::Mat3,
    cent_w: vm::Mat3,
    cent_wa: Vec3,
    /// Evidence only: no frame is ever decided (a wrist or forearm node standing in for the
    /// racket, whose side alone is read through [`AxisInference::forehand_turn`]).
    evidence_only: bool,
    /// On an evidence-only inference, the node's gyro range, °/s, when it is under
    /// `FAST_DPS`: such a gyro never reads "fast", and a sample pinned at its rail is one
    /// ([`AxisInference::is_fast`]). `None` on racket nodes (their samples are turned, and
    /// side18 found a narrow gyro's clipped drives turn them wrong).
    narrow_gyro_dps: Option<f64>,
    /// The vote the last frame was decided on, along its y (diagnostics): drives, votes for
    /// the frame's sense (Σ ±1), P(its majority is the player's).
    decided_on: Option<(u32, f64, f64)>,
    /// Since when the racket has turned slower than `QUIET_DPS` (`None` while it turns
    /// faster), and how long it must have been so before the pending frame is applied, ms.
    quiet_since: Option<f64>,
    pending_quiet_ms: f64,
}

/// What an inference has seen and decided, for diagnostics (`eval --verbose`).
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceReport {
    /// Sample time of the first frame applied, and of the last, ms; `None` while none is.
    pub first_at: Option<f64>,
    pub last_at: Option<f64>,
    /// Frames applied, and whether the last is final.
    pub frames: usize,
    pub settled: bool,
    /// The rotation applied now: the analyser's x, y, z in node axes.
    pub rotation: [Vec3; 3],
    pub confidence: Option<f64>,
    /// Swing drives seen, and their vote along the main spin axis (Σ ±1).
    pub drives: u32,
    pub votes: f64,
    /// P(the vote's majority is the player's).
    pub forehand_sure: f64,
    /// 1 − λ₂/λ₁ and 1 − λ₃/λ₂ of Σ ω ωᵀ.
    pub spin_clear: f64,
    pub roll_clear: f64,
    /// The main axis of Σ ω ωᵀ, in node axes (sign arbitrary).
    pub swing_axis: Vec3,
    /// Where the centripetal reading puts the node from the centre of the swing, m.
    pub radius: Vec3,
    /// The vote the last frame was decided on, along its y: drives, votes for the frame's
    /// sense, P(its majority is the player's); `None` before the last frame.
    pub decided_on: Option<(u32, f64, f64)>,
}

/// What the evidence so far says.
enum Decision {
    /// Not enough yet: the swing plane is not clear, or the node looks as made but too few
    /// drives have been seen to keep it so for good.
    Wait,
    /// The node's y is the swing's axis: read as it is, with this confidence.
    Keep(f64),
    /// The node is turned: this rotation, with this confidence; `true` when the forehand's
    /// face is clear too (the last decision), `false` when only the swing plane and the shaft
    /// are (the forehand's sense is the vote's so far, and may still turn over).
    Turn(NodeRotation, f64, bool),
}

impl AxisInference {
    /// Notes one calibrated sample in node axes (time order); decides once there is enough.
    pub fn note(&mut self, t: f64, acc: Vec3, gyro: Vec3) {
        let quiet = vm::norm(gyro) < QUIET_DPS;
        self.quiet_since = if quiet {
            self.quiet_since.or(Some(t))
        } else {
            None
        };
        if let Some((rotation, confidence, last)) = self.pending {
            // Applied only while the racket is quiet: the detector then reads under its end
            // threshold in any frame (|ω⊥| ≤ ‖ω‖), so a switch never falls inside a burst.
            // A sense turned over after the last frame waits for a longer quiet spell
            // (`TURN_OVER_QUIET_MS`).
            let waited = self
                .quiet_since
                .is_some_and(|since| t - since >= self.pending_quiet_ms);
            if quiet && waited {
                self.pending_quiet_ms = 0.0;
                self.frames.push((t, rotation, confidence));
                self.pending = None;
                self.settled |= last;
            }
        }
        if self.settled {
            self.note_after_last_frame(t, gyro);
            return;
        }
        let dt = self.prev_t.replace(t).map_or(0.0, |p| (t - p) / 1000.0);
        if vm::norm(gyro) < STILL_DPS && (vm::norm(acc) - 1.0).abs() < STILL_G {
            self.up = vm::unit(acc);
        } else if let Some(up) = self.up {
            // u̇ = −ω × u: the world's up turns against the node.
            let turn = vm::from_rotation_vector(vm::scale(gyro, -dt.to_radians()));
            self.up = Some(vm::rotate(turn, up));
        }
        let Some(up) = self.up else { return };
        if !self.is_fast(gyro) {
            // Decided between swings, over whole ones: the tangential α × r goes one way on
            // the rising flank and the other on the falling one, so over a whole swing it
            // does not pass for centripetal.
            if self.end_run(t)
                && !self.evidence_only
                && self.fast >= DECIDE_AFTER
                && self.drives >= EARLY_DRIVES
            {
                self.settle();
            }
            return;
        }
        self.note_run(t, gyro);
        // The node's own acceleration: what the accelerometer reads beyond gravity.
        let acc = vm::sub(acc, up);
        let w = vm::dot(gyro, gyro).to_radians().to_radians();
        for i in 0..3 {
            for j in 0..3 {
                self.spin_moment[i][j] += gyro[i] * gyro[j];
            }
        }
        // Every node: a stand-in's forehand turn reads the fit, and so does the bound on a
        // side read as made before anything decided the mount (`as_made_side_bound`).
        self.note_centripetal(gyro, acc);
        self.acc_sum = vm::add(self.acc_sum, acc);
        self.acc_w_sum = vm::add(self.acc_w_sum, vm::scale(acc, w));
        self.w_sum += w;
        self.w2_sum += w * w;
        self.fast += 1;
    }

    /// Whether a sample turns fast enough to be a swing's: over `FAST_DPS`, or, on a stand-in
    /// whose gyro's range is under `FAST_DPS` (a ±250 °/s part: a forearm turns at 1,000 °/s
    /// and more in a stroke), at or past the rail on some axis — the rail is a floor on the
    /// true rate, and the pinned axis keeps its sign, which is what the forehand vote and the
    /// turn's axis read.
    fn is_fast(&self, gyro: Vec3) -> bool {
        vm::norm(gyro) >= FAST_DPS
            || self
                .narrow_gyro_dps
                .is_some_and(|range| gyro.iter().any(|w| w.abs() >= RAIL_SHARE * range))
    }

    /// After the last frame only the drives are counted (the plane and the shaft are
    /// decided): the forehand's sense rests on a vote, and a vote of four or five drives can
    /// be the minority's (side25: on the tuning seeds the largest group of wrong sides were
    /// racket nodes whose last frame was decided on a 3–2 or even vote, or kept as made at
    /// 12 drives on an 8–4 vote against, and never looked at again). So the vote goes on, and
    /// the frame is turned over about its shaft when it comes to speak against the frame's
    /// sense as clearly as the frame's kind of decision needs ([`Self::sense_turned_over`]).
    fn note_after_last_frame(&mut self, t: f64, gyro: Vec3) {
        if self.evidence_only || self.frames.len() >= MAX_FRAMES || self.peaks.len() >= MAX_PEAKS {
            return;
        }
        self.prev_t = Some(t);
        if self.is_fast(gyro) {
            self.note_run(t, gyro);
        } else if self.end_run(t)
            && self.pending.is_none()
            && let Some(flipped) = self.sense_turned_over()
        {
            self.pending = Some(flipped);
            self.pending_quiet_ms = TURN_OVER_QUIET_MS;
        }
    }

    /// The last frame turned over about its shaft (y and z negated: the plane and the shaft,
    /// which height, stroke and speed read through, stay), when the drives since it was
    /// decided make the vote lean against its y, not unanimously, as clearly as the frame's
    /// kind of decision needs (the vote now counts every drive, those the frame was decided
    /// on too): a frame along the node's own ±y (the mount as made, or turned over on the
    /// handle) at P ≥ `MIN_TURN_OVER_SURE`, the bar a node as made is turned over at; any
    /// other frame, whose sense a vote alone gave, when the plane's clarity × the vote reaches
    /// `MIN_REMAP_CONFIDENCE`, the bar it was decided at. Its confidence is that product.
    fn sense_turned_over(&self) -> Option<(NodeRotation, f64, bool)> {
        let &(_, rotation, _) = self.frames.last()?;
        let [x, y, z] = rotation.rows();
        // Forehands turn about −y: a drive turning about +y votes against the frame.
        let (votes, sure) = self.forehand_vote(y);
        let unanimous = votes.abs() >= f64::from(self.drives);
        let confidence = self.plane_clear() * sure;
        let clear_enough = if y[1].abs() >= ALIGNED_DEG.to_radians().cos() {
            sure >= MIN_TURN_OVER_SURE
        } else {
            confidence >= MIN_REMAP_CONFIDENCE
        };
        if votes <= 0.0 || !clear_enough || unanimous {
            return None;
        }
        let flipped = NodeRotation([x, vm::scale(y, -1.0), vm::scale(z, -1.0)]);
        Some((flipped, confidence, true))
    }

    /// How clear the swing plane is, as [`Self::decide`] judges it: the energy's main axis
    /// over the next, or the drives' peaks about it, or about the node's own y where the
    /// centripetal reading puts the shaft along its +x.
    fn plane_clear(&self) -> f64 {
        let (energy, axes) = vm::symmetric_eigen(self.spin_moment);
        let clear = 1.0 - (energy[1].max(0.0) / energy[0].max(1e-9)).min(1.0);
        clear
            .max(self.peaks_clear(axes[0], axes[1]))
            .max(self.shaft_as_made().unwrap_or(0.0))
    }

    fn note_run(&mut self, t: f64, gyro: Vec3) {
        if !self.in_run {
            (self.in_run, self.run_start, self.run_peak) = (true, t, gyro);
        } else if vm::norm(gyro) > vm::norm(self.run_peak) {
            self.run_peak = gyro;
        }
    }

    /// Closes the current run, if any (true then), and recounts the drives.
    fn end_run(&mut self, t: f64) -> bool {
        if !self.in_run {
            return false;
        }
        self.in_run = false;
        if self.peaks.len() < MAX_PEAKS {
            self.peaks.push((self.run_start, self.run_peak));
        }
        self.drives = drives(&self.peaks, t).count() as u32;
        true
    }

    /// The frame the latest decision asks for (applied once the racket is quiet): the last
    /// one once the evidence is clear (or will not become so), a provisional one while only
    /// the swing plane is.
    fn settle(&mut self) {
        if self.pending.is_some_and(|(_, _, last)| last) {
            return;
        }
        let (rotation, confidence, last) = match self.decide() {
            // Not clear (any more): the node as made, provisionally (a provisional frame
            // taken on the first swings is undone when more swings blur the plane).
            Decision::Wait if self.peaks.len() < MAX_PEAKS => (NodeRotation::IDENTITY, 0.0, false),
            // No clear decision in a whole session's worth of runs: the node as made.
            Decision::Wait => (NodeRotation::IDENTITY, 0.0, true),
            Decision::Keep(c) => (NodeRotation::IDENTITY, c, true),
            Decision::Turn(rotation, c, last) => (rotation, c, last),
        };
        let latest = self
            .pending
            .map(|(r, _, _)| r)
            .unwrap_or_else(|| self.current().0);
        let moved = !rotation.within(&latest, PROVISIONAL_MOVE_DEG);
        if !(last || (moved && self.frames.len() + 1 < MAX_FRAMES)) {
            return;
        }
        if last {
            let (votes, sure) = self.forehand_vote(rotation.rows()[1]);
            self.decided_on = Some((self.drives, -votes, sure));
        }
        self.pending = Some((rotation, confidence, last));
    }

    /// The rotation applied now (identity before any) and its confidence (0–1; `None`
    /// before any frame is applied).
    pub fn current(&self) -> (NodeRotation, Option<f64>) {
        match self.frames.last() {
            Some(&(_, rotation, confidence)) => (rotation, Some(confidence)),
            None => (NodeRotation::IDENTITY, None),
        }
    }

    /// A vector conditioned at `t` (through the frame applied then) in the frame applied now.
    pub fn reframe(&self, t: f64, v: [f32; 3]) -> [f32; 3] {
        let now = self.current().0;
        let then = self
            .frames
            .iter()
            .rev()
            .find(|(from, _, _)| *from <= t)
            .map_or(NodeRotation::IDENTITY, |f| f.1);
        if then == now {
            v
        } else {
            now.apply(then.unapply(v))
        }
    }

    /// What the inference has seen and decided so far (the tools' breakdown per session).
    pub fn report(&self) -> InferenceReport {
        let (energy, axes) = vm::symmetric_eigen(self.spin_moment);
        let (votes, forehand_sure) = self.forehand_vote(axes[0]);
        let clear = |more: f64, less: f64| 1.0 - (less.max(0.0) / more.max(1e-9)).min(1.0);
        InferenceReport {
            first_at: self.frames.first().map(|f| f.0),
            last_at: self.frames.last().map(|f| f.0),
            frames: self.frames.len(),
            settled: self.settled,
            rotation: self.current().0.rows(),
            confidence: self.current().1,
            drives: self.drives,
            votes,
            forehand_sure,
            spin_clear: clear(energy[0], energy[1]),
            roll_clear: clear(energy[1], energy[2]),
            swing_axis: axes[0],
            decided_on: self.decided_on,
            radius: if self.fast > 1 {
                self.radius()
            } else {
                [0.0; 3]
            },
        }
    }

    /// Where the node sits from the centre of the swing, m, in node axes: the slope of the
    /// acceleration beyond gravity on ω² is −r/g (the centripetal ω × (ω × r) is −ω² r for r
    /// across ω).
    fn radius(&self) -> Vec3 {
        let n = f64::from(self.fast);
        let var = self.w2_sum - self.w_sum * self.w_sum / n;
        let slope = vm::scale(
            vm::sub(self.acc_w_sum, vm::scale(self.acc_sum, self.w_sum / n)),
            1.0 / var.max(1e-9),
        );
        vm::scale(slope, -STANDARD_GRAVITY)
    }

    fn decide(&self) -> Decision {
        let (energy, mut axes) = vm::symmetric_eigen(self.spin_moment);
        let clear = |more: f64, less: f64| 1.0 - (less.max(0.0) / more.max(1e-9)).min(1.0);
        // Over whole runs the forearm's roll can carry nearly as much energy as the swing;
        // the drives' peaks then still tell the swing's axis.
        let mut spin_clear = clear(energy[0], energy[1]).max(self.peaks_clear(axes[0], axes[1]));
        // How clearly the second axis (the roll, about the shaft) stands above the third.
        let mut roll_clear = clear(energy[1], energy[2]);
        if let Some(clear_y) = self.shaft_as_made() {
            // The mount as made is the prior: where the centripetal reading puts the shaft
            // along the node's own x and the drives turn about its y, the node is judged as
            // made (its y kept, or turned over on the vote), whatever the roll did to the
            // energy's main axis; the roll is then about its x, as clearly as can be.
            axes = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
            roll_clear = 1.0;
            spin_clear = spin_clear.max(clear_y);
        }
        if spin_clear < MIN_SPIN_CLEAR {
            return Decision::Wait;
        }
        // The node's own y, along the swing's axis: the sense the mount as made gives.
        let own = if axes[0][1] >= 0.0 { 1.0 } else { -1.0 };
        let sense = self.sense(axes[0], own);
        let y = vm::scale(axes[0], sense.sign);
        let confidence = spin_clear * sense.sure;
        let enough = self.drives >= DECIDE_DRIVES;
        if axes[0][1].abs() >= ALIGNED_DEG.to_radians().cos() {
            if !enough {
                return Decision::Wait;
            }
            // The mount as made is the prior: its y is turned over only when the drives vote
            // clearly against it; while they lean against it unclearly, it is read as made
            // and more drives are awaited.
            // A unanimous vote cannot tell a node turned over from a drill of one wing (every
            // stroke a backhand): only a match, with both wings, can.
            let against = sense.sign != own;
            let turned_over = against && sense.sure >= MIN_TURN_OVER_SURE && !sense.unanimous;
            if against && !turned_over && self.drives < MAX_TURN_OVER_DRIVES {
                return Decision::Wait;
            }
            let y_sign = if turned_over { -1.0 } else { 1.0 };
            return match self.turned_about_y(y_sign, axes[1], roll_clear) {
                // Turned over, it is as sure as the vote that turned it.
                Some(rotation) if turned_over => Decision::Turn(rotation, confidence, true),
                Some(rotation) => Decision::Turn(rotation, spin_clear, true),
                None => Decision::Keep(confidence),
            };
        }
        let last = enough && confidence >= MIN_REMAP_CONFIDENCE;
        let x = self.shaft(y, axes[1], roll_clear);
        let rotation = NodeRotation([x, y, vm::cross(x, y)]);
        let rotation = rotation.squared_up(SQUARE_DEG).unwrap_or(rotation);
        let reported = if last {
            confidence
        } else {
            // Provisional: the plane and the shaft (what height, stroke and speed read
            // through) are clear; the forehand's sense, which only the side reads, is not.
            spin_clear
        };
        Decision::Turn(rotation, reported, last)
    }

    /// For a node whose own y is the swing's axis: the node turned about that y, when the
    /// rotation clearly puts the shaft elsewhere than along its +x — a board taped on with
    /// its z up the shaft (the face normal, the axis the racket turns about least, is then
    /// the node's x), or with its −x (the centripetal reading points down it) — or turned
    /// over (`y_sign` −1: the convention's y is the node's −y), the shaft found the same way.
    fn turned_about_y(&self, y_sign: f64, roll: Vec3, roll_clear: f64) -> Option<NodeRotation> {
        let y = [0.0, y_sign, 0.0];
        let across = |v: Vec3| vm::unit([v[0], 0.0, v[2]]);
        let r = self.radius();
        let line = if roll_clear >= MIN_ROLL_CLEAR {
            across(roll)
        } else {
            across(r).filter(|_| vm::norm([r[0], 0.0, r[2]]) >= STRONG_RADIUS_M)
        };
        // Without evidence of the shaft, it is the node's own x.
        let line = match line {
            Some(line) => line,
            None if y_sign < 0.0 => [1.0, 0.0, 0.0],
            None => return None,
        };
        // Towards the head: where the centripetal reading points when it is strong along the
        // line, else the sense nearer the node's own +x (or, square to it, its +z).
        let along = vm::dot(r, line);
        let sense = if along.abs() >= STRONG_RADIUS_M {
            along.signum()
        } else if line[0].abs() > 1e-9 {
            line[0].signum()
        } else {
            line[2].signum()
        };
        let x = vm::scale(line, sense);
        if y_sign > 0.0 && x[0] >= ALIGNED_DEG.to_radians().cos() {
            return None;
        }
        let rotation = NodeRotation([x, y, vm::cross(x, y)]);
        Some(rotation.squared_up(SQUARE_DEG).unwrap_or(rotation))
    }

    /// How clearly the drives' peaks turn about the node's own y rather than its z (the face
    /// normal), when the centripetal reading puts the node at least `STRONG_RADIUS_M` from
    /// the centre of the swing along its own +x (the node's x is the shaft:
    /// ω²r points along the shaft, towards the centre, whatever the forearm's roll does)
    /// and the peaks turn clearly about y; `None` otherwise.
    fn shaft_as_made(&self) -> Option<f64> {
        if self.fast < 2 {
            return None;
        }
        let r = self.radius();
        // Within 45° of +x, not `ALIGNED_DEG`: a roll about the shaft adds ω_x ω_y r across
        // it (one way or the other with the roll's sense), which a few drives do not average
        // out.
        let along_x = r[0] >= STRONG_RADIUS_M && r[0] >= r[1].hypot(r[2]);
        let clear_y = self.peaks_clear([0.0, 1.0, 0.0], [0.0, 0.0, 1.0]);
        (along_x && clear_y >= MIN_SPIN_CLEAR).then_some(clear_y)
    }

    /// How clearly the drives' peaks turn about `swing` rather than `roll` (the main and the
    /// second axis of Σ ω ωᵀ): 1 − Σ(ω·roll)² / Σ(ω·swing)² over the drives' fastest samples.
    /// The forearm's roll can carry as much energy as the swing over whole runs, but at the
    /// drive's peak the racket turns about the swing's axis.
    fn peaks_clear(&self, swing: Vec3, roll: Vec3) -> f64 {
        let now = self.prev_t.unwrap_or(0.0);
        let (along, across) = drives(&self.peaks, now).fold((0.0, 0.0), |(a, c), p| {
            (a + vm::dot(p, swing).powi(2), c + vm::dot(p, roll).powi(2))
        });
        if self.drives < EARLY_DRIVES || along <= 0.0 {
            return 0.0;
        }
        1.0 - (across / along).min(1.0)
    }

    /// The votes of the swings' drives for turning along `spin_axis` (+1 each) or against it
    /// (−1), and how sure their majority is: P(the majority is the player's), from the margin
    /// over the vote's size (a binomial's normal approximation). Every drive counts the same:
    /// weighing each by its rotational energy (a player's hardest strokes are mostly
    /// forehands) was tried (side18) and cost detection and height on the tuning seeds at
    /// mixed rates (docs/analysis.md, Conditioning step 4).
    fn forehand_vote(&self, spin_axis: Vec3) -> (f64, f64) {
        let now = self.prev_t.unwrap_or(0.0);
        let votes: f64 = drives(&self.peaks, now)
            .map(|p| vm::dot(p, spin_axis).signum())
            .sum();
        (votes, vote_sure(votes, self.drives))
    }

    /// Which way along `spin_axis` the convention's y points: against the sense most drives
    /// turn in (the forehand turns about −y, and players hit more forehands), as sure as
    /// that majority is; an even vote leaves `own`, the node's own sense (no evidence against
    /// the mount as made).
    fn sense(&self, spin_axis: Vec3, own: f64) -> Sense {
        let (votes, sure) = self.forehand_vote(spin_axis);
        let unanimous = votes.abs() >= f64::from(self.drives);
        let sign = if votes == 0.0 { own } else { -votes.signum() };
        Sense {
            sign,
            sure,
            unanimous,
        }
    }

    /// The shaft, across the swing's axis `y`: the axis the racket rolls about (the forearm's
    /// pronation) when that roll stands out from the face normal's; otherwise where the
    /// centripetal reading puts the node from the centre of the swing. Towards the head: the
    /// way the centripetal reading points when it is strong, else the node's own sense.
    fn shaft(&self, y: Vec3, roll: Vec3, roll_clear: f64) -> Vec3 {
        let r = self.radius();
        let r_across = vm::sub(r, vm::scale(y, vm::dot(r, y)));
        let x = if roll_clear < MIN_ROLL_CLEAR {
            vm::unit(r_across).unwrap_or(roll)
        } else if vm::dot(r_across, roll).abs() >= STRONG_RADIUS_M {
            vm::scale(roll, vm::dot(r_across, roll).signum())
        } else {
            let k = (0..3)
                .max_by(|&a, &b| roll[a].abs().total_cmp(&roll[b].abs()))
                .unwrap_or(0);
            vm::scale(roll, roll[k].signum())
        };
        vm::unit(vm::sub(x, vm::scale(y, vm::dot(x, y)))).unwrap_or(roll)
    }
}

/// The forehand's turn on a wrist or forearm node standing in for the racket, inferred from
/// its swings ([`AxisInference::forehand_turn`]); in node axes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForehandTurn {
    /// The axis a forehand's forward swing turns about (the convention's −y).
    pub axis: Vec3,
    /// The forearm's long axis, towards the hand: where the centripetal reading puts the node
    /// from the centre of the swing.
    pub forearm: Vec3,
    /// 1 − λ₂/λ₁ of Σ ω ωᵀ across the forearm: how clearly the swings turn about `axis`
    /// rather than the other axis across the forearm.
    pub clear: f64,
    /// The drives' vote along `axis` (Σ ±1, + for turning about it), how many voted, and
    /// P(the vote's majority is the player's).
    pub votes: f64,
    pub drives: u32,
    pub sure: f64,
    /// The node's own −y kept: its y is the turn's axis and the vote does not clearly say it
    /// is turned over.
    pub as_made: bool,
    /// The forearm's roll at each drive's peak against its turn about `axis` (Σ ±1): +1 when
    /// the roll is a right hand's pronation on a forehand turn or its supination on a
    /// backhand one ([`roll_vote`]); how many drives rolled clearly enough to vote.
    pub roll_votes: f64,
    pub roll_drives: u32,
}

impl ForehandTurn {
    /// How sure the side read through `axis` is: P(its sense is the forehand's), the turn's
    /// clarity × the vote's, but never under a coin toss: an unclear axis says nothing about
    /// the sense either way, and under 0.5, combined with the lean as a sign error
    /// (`Confidences::through`), the side would be surer of the other face (side24: on the
    /// tuning seeds 13 wrist swings at 0.0–0.3 were 92 % right).
    pub fn confidence(&self) -> f64 {
        (self.clear * self.sure).max(0.5)
    }

    /// How sure a side read through the node as made is while the drives' vote leans against
    /// its own y (`as_made`, votes under 0): the mount as made against the vote, weighed as
    /// the rule that keeps it weighs them. A node is turned over only at a vote of
    /// `MIN_TURN_OVER_SURE`, so the prior odds for the mount as made are
    /// `MIN_TURN_OVER_SURE / (1 − MIN_TURN_OVER_SURE)` (19:1) and a vote sure `s` of the other
    /// sense leaves P(as made) = 19(1 − s) / (19(1 − s) + s): 0.5 at the bar, near 1 on a
    /// vote near even. `None` when the node is not read as made, the vote does not lean
    /// against it, or leans unanimously: as the rule that keeps it reads it, a unanimous
    /// vote is a drill of one wing as much as a node turned over, no evidence against the
    /// mount (side24: bounding those cost the table-tennis watch's one-wing backhand drills,
    /// read right as made, side Brier 0.253 → 0.270).
    pub fn as_made_against_the_vote(&self) -> Option<f64> {
        let unanimous = self.votes.abs() >= f64::from(self.drives);
        if !self.as_made || self.votes >= 0.0 || unanimous {
            return None;
        }
        let prior_odds = MIN_TURN_OVER_SURE / (1.0 - MIN_TURN_OVER_SURE);
        let kept = prior_odds * (1.0 - self.sure);
        Some(kept / (kept + self.sure))
    }
}

impl AxisInference {
    /// An inference that gathers evidence and never turns the node (a wrist or forearm node
    /// standing in for the racket: detection and speed read it as made, only its side reads
    /// through [`Self::forehand_turn`]).
    pub fn evidence_only() -> Self {
        AxisInference {
            evidence_only: true,
            ..AxisInference::default()
        }
    }

    /// [`Self::evidence_only`] on a node whose gyro reads up to ±`gyro_full_scale_dps`: a
    /// range under `FAST_DPS` makes a sample at the rail count as fast (`is_fast`).
    pub fn evidence_only_with_range(gyro_full_scale_dps: f64) -> Self {
        AxisInference {
            narrow_gyro_dps: (gyro_full_scale_dps < FAST_DPS).then_some(gyro_full_scale_dps),
            ..AxisInference::evidence_only()
        }
    }

    /// Adds one fast sample to the centripetal fit (`acc` beyond gravity, g; `gyro` °/s).
    fn note_centripetal(&mut self, gyro: Vec3, acc: Vec3) {
        let w = centripetal_matrix(gyro.map(f64::to_radians));
        let ww = vm::mat_mul(w, w);
        for i in 0..3 {
            for j in 0..3 {
                self.cent_ww[i][j] += ww[i][j];
                self.cent_w[i][j] += w[i][j];
            }
        }
        self.cent_wa = vm::add(self.cent_wa, vm::mat_vec(w, acc));
    }

    /// The centripetal fit's normal equations with the constant taken out, solved: the
    /// eigenvalues (largest first) and eigenvectors of Σ W W − (Σ W)²/n, and Σ W a − Σ W Σ a / n.
    fn centripetal_fit(&self) -> CentripetalFit {
        let n = f64::from(self.fast.max(1));
        let w_mean_sq = vm::mat_mul(self.cent_w, self.cent_w);
        let mut a = self.cent_ww;
        for (i, row) in a.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell -= w_mean_sq[i][j] / n;
            }
        }
        let c = vm::sub(
            self.cent_wa,
            vm::scale(vm::mat_vec(self.cent_w, self.acc_sum), 1.0 / n),
        );
        let (values, vectors) = vm::symmetric_eigen(a);
        CentripetalFit { values, vectors, c }
    }

    /// The axis a forehand turns about on a wrist or forearm node, from the physics of the
    /// arm: the centripetal reading (ω²r towards the elbow and shoulder) puts the forearm's
    /// long axis along r; the forearm's roll (pronation, supination) turns about that axis
    /// and says nothing of the side, so it is taken out of Σ ω ωᵀ; what is left turns about
    /// the axis across the forearm that the elbow and shoulder swing the hand about, and the
    /// sense most drives turn in about it is the forehand's (players hit more forehands). A
    /// node whose own y is that axis is read as made unless its drives vote clearly against
    /// it, as a racket node is. `None` before four drives or without a centripetal reading of
    /// at least `STRONG_RADIUS_M`.
    pub fn forehand_turn(&self) -> Option<ForehandTurn> {
        if self.fast < DECIDE_AFTER || self.drives < DECIDE_DRIVES {
            return None;
        }
        let r = self.centripetal_fit().radius();
        if vm::norm(r) < STRONG_RADIUS_M {
            return None;
        }
        let forearm = vm::unit(r)?;
        let (energy, axes) = vm::symmetric_eigen(without_turn_about(self.spin_moment, forearm));
        let clear = 1.0 - (energy[1].max(0.0) / energy[0].max(1e-9)).min(1.0);
        let turn = axes[0];
        let own = if turn[1] >= 0.0 { 1.0 } else { -1.0 };
        let sense = self.sense(turn, own);
        let (votes, sure) = self.forehand_vote(turn);
        let mut found = ForehandTurn {
            // The forehand turns about −y.
            axis: vm::scale(turn, -sense.sign),
            forearm,
            clear,
            votes,
            drives: self.drives,
            sure,
            as_made: false,
            roll_votes: 0.0,
            roll_drives: 0,
        };
        if turn[1].abs() >= ALIGNED_DEG.to_radians().cos() {
            let turned_over =
                sense.sign != own && sense.sure >= MIN_TURN_OVER_SURE && !sense.unanimous;
            found.axis = [0.0, if turned_over { 1.0 } else { -1.0 }, 0.0];
            found.as_made = !turned_over;
        }
        // The vote along the axis found, not along the eigenvector's arbitrary sense.
        found.votes = votes * vm::dot(found.axis, turn).signum();
        (found.roll_votes, found.roll_drives) = self.roll_vote(forearm, found.axis);
        Some(found)
    }
}

impl AxisInference {
    /// Whether nothing has decided this racket node's mount yet: read as made (no frame, or
    /// the identity provisionally) and not settled. (A stand-in's evidence-only inference
    /// never frames: it is undecided until [`Self::forehand_turn`] finds its turn.)
    pub fn undecided(&self) -> bool {
        !self.settled && self.current().0 == NodeRotation::IDENTITY
    }

    /// How sure a side read through this racket node's last frame is while the drives' vote
    /// leans against that frame's forehand sense (not unanimously, and not yet clearly enough
    /// to turn it over: [`Self::sense_turned_over`]); `None` while the vote does not lean
    /// against it, or before the last frame.
    ///
    /// A frame whose y is the node's own +y keeps the mount as made, the prior a vote must
    /// beat at `MIN_TURN_OVER_SURE` (odds 19:1), so a vote sure `s` against it leaves
    /// P(as made) = 19(1 − s) / (19(1 − s) + s), as [`ForehandTurn::as_made_against_the_vote`]
    /// weighs a stand-in read as made. Any other frame's sense came from a vote with no
    /// prior for either face: the majority now against it leaves it 1 − s. Without this a
    /// racket node turned over on the handle but kept as made read its sides at 1.00.
    pub fn frame_side_bound(&self) -> Option<f64> {
        if !self.settled || self.evidence_only {
            return None;
        }
        let &(_, rotation, _) = self.frames.last()?;
        let y = rotation.rows()[1];
        let (votes, sure) = self.forehand_vote(y);
        let unanimous = votes.abs() >= f64::from(self.drives);
        if votes <= 0.0 || unanimous {
            return None;
        }
        if y[1] >= ALIGNED_DEG.to_radians().cos() {
            let prior_odds = MIN_TURN_OVER_SURE / (1.0 - MIN_TURN_OVER_SURE);
            let kept = prior_odds * (1.0 - sure);
            return Some(kept / (kept + sure));
        }
        Some(1.0 - sure)
    }

    /// How sure a side read through the node as made can be, from where the centripetal
    /// reading so far puts the node from the centre of the swing; `None` while that reading
    /// is under `STRONG_RADIUS_M` (no evidence either way).
    ///
    /// Read as made, the head moves along ω × x̂ (x the shaft) and the side is its lean
    /// along z: right only if the node's +x is the shaft. The rigid body's ω × (ω × r)
    /// points from the node towards the centre of the swing, along the shaft for a node on
    /// the racket (along the forearm for a stand-in), so r's direction is the shaft's. It is
    /// read by the full model (`CentripetalFit::radius`, as `forehand_turn` reads a stand-in):
    /// the slope on |ω|² that `shaft_as_made` decides with is bent by a roll about the shaft
    /// (ω_x ω_y r across it), which a session's first swings do not average out, and would
    /// doubt an aligned node that rolls. Along +x the mount as made stands (as sure as the
    /// measurement: 1); across it (a board turned about its own y, its z up the shaft) the
    /// face the side leans towards is the node's x, of unknown sense, and down −x the node
    /// is turned half round about y or about z, one reading the side right and the other
    /// inverted: either way a coin toss (0.5). Within 45° of +x the reading counts as the
    /// shaft's, the tolerance `shaft_as_made` allows (the fit's own scatter: on the tuning
    /// seeds' stand-ins its 90th percentile was 39°, wrist20); from there to 90° it falls to
    /// a coin toss in proportion to r̂·x̂.
    pub fn as_made_side_bound(&self) -> Option<f64> {
        if self.fast < 2 {
            return None;
        }
        let fit = self.centripetal_fit();
        let r = fit.radius();
        let reach = vm::norm(r);
        // Compared where the fit sees: r along a turn's axis is not seen, nor is x's part
        // there (a first swing that rolls about the shaft hides much of the shaft); with
        // under half of x in sight (60° or more out of it), nothing is said.
        let x_seen = fit.seen_part([1.0, 0.0, 0.0]);
        if vm::norm(x_seen) < 0.5 {
            return None;
        }
        let shaft = vm::unit(x_seen)?;
        let along_x = vm::dot(r, shaft) / reach;
        let support = (along_x / std::f64::consts::FRAC_1_SQRT_2).clamp(0.0, 1.0);
        (reach >= STRONG_RADIUS_M).then_some(0.5 + 0.5 * support)
    }
}

impl AxisInference {
    /// Each drive's vote for `axis` being the forehand's turn from the forearm's roll at its
    /// peak: a right hand's forearm pronates (turns about −`forearm`, the elbow-to-hand axis)
    /// through a forehand's contact and supinates through a backhand's, so
    /// (ω·forearm)(ω·axis) < 0 on either wing. Drives whose roll is under `MIN_ROLL_SHARE` of
    /// their turn do not vote.
    fn roll_vote(&self, forearm: Vec3, axis: Vec3) -> (f64, u32) {
        let now = self.prev_t.unwrap_or(0.0);
        let mut votes = 0.0;
        let mut voters = 0;
        for p in drives(&self.peaks, now) {
            let (roll, turn) = (vm::dot(p, forearm), vm::dot(p, axis));
            if roll.abs() < MIN_ROLL_SHARE * turn.abs() {
                continue;
            }
            votes -= (roll * turn).signum();
            voters += 1;
        }
        (votes, voters)
    }
}

/// The centripetal fit ω × (ω × r) solved ([`AxisInference::centripetal_fit`]): the
/// directions the swings' turns reveal r in (an eigenvalue `seen` against the largest) and r.
struct CentripetalFit {
    values: [f64; 3],
    vectors: [Vec3; 3],
    c: Vec3,
}

impl CentripetalFit {
    /// The eigenvectors the fit sees along, each with its eigenvalue.
    fn seen_directions(&self) -> impl Iterator<Item = (f64, Vec3)> + '_ {
        self.values
            .into_iter()
            .zip(self.vectors)
            .filter(|&(value, _)| seen(value, self.values[0]))
    }

    /// Where the node sits from the centre of the swing, m, in node axes, by the full
    /// centripetal model (ω × (ω × r), fitted by least squares with a constant): unlike the
    /// slope on |ω|² (`AxisInference::radius`), the forearm's roll about its own axis, which
    /// turns with the swing and adds ω_x ω_y r across the forearm, does not bend it. Only the
    /// part of r that the swings' turns reveal (r along a turn's axis reads no centripetal).
    fn radius(&self) -> Vec3 {
        let mut r = [0.0; 3];
        for (value, vector) in self.seen_directions() {
            r = vm::add(r, vm::scale(vector, vm::dot(vector, self.c) / value));
        }
        vm::scale(r, STANDARD_GRAVITY)
    }

    /// `v`'s part that the fit can see: along the directions the swings' turns reveal r in.
    fn seen_part(&self, v: Vec3) -> Vec3 {
        let mut part = [0.0; 3];
        for (_, vector) in self.seen_directions() {
            part = vm::add(part, vm::scale(vector, vm::dot(vector, v)));
        }
        part
    }
}

/// Whether a direction of the centripetal fit (its eigenvalue `value`, the largest
/// `largest`) is seen: r along a turn's axis reads no centripetal.
fn seen(value: f64, largest: f64) -> bool {
    value > largest * 1e-3 && value > 0.0
}

/// W with ω × (ω × r) = W r: ω ωᵀ − |ω|² I.
fn centripetal_matrix(w: Vec3) -> vm::Mat3 {
    let w2 = vm::dot(w, w);
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = w[i] * w[j] - if i == j { w2 } else { 0.0 };
        }
    }
    m
}

/// Σ ω ωᵀ with the turn about `u` (a unit vector) taken out: P M P, P = I − u uᵀ.
fn without_turn_about(m: vm::Mat3, u: Vec3) -> vm::Mat3 {
    let p = |i: usize, j: usize| f64::from(u8::from(i == j)) - u[i] * u[j];
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3)
                .flat_map(|k| (0..3).map(move |l| (k, l)))
                .map(|(k, l)| p(i, k) * m[k][l] * p(l, j))
                .sum();
        }
    }
    out
}

/// How sure a ±1 vote's majority is: P(the majority is the voters' true lean), from the
/// margin over √voters (a binomial's normal approximation).
fn vote_sure(votes: f64, voters: u32) -> f64 {
    let z = votes.abs() / f64::from(voters.max(1)).sqrt();
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

/// Which way along the swing's axis the convention's y points (±1), and how sure that is.
struct Sense {
    sign: f64,
    sure: f64,
    /// Every drive so far turned the same way about the swing's axis.
    unanimous: bool,
}

/// The peaks of the runs that are a swing's drive, by `now`: the fastest run within
/// `SWING_SPAN_MS`, judged once that span after it has been seen. The backswing turns the
/// other way and crosses zero before the drive, so it is a run of its own; counted, it would
/// vote for the other face.
fn drives(peaks: &[(f64, Vec3)], now: f64) -> impl Iterator<Item = Vec3> + '_ {
    peaks.iter().filter_map(move |&(t, p)| {
        let fastest = t + SWING_SPAN_MS <= now
            && peaks
                .iter()
                .filter(|(u, _)| (u - t).abs() <= SWING_SPAN_MS)
                .all(|(_, q)| vm::norm(*q) <= vm::norm(p));
        fastest.then_some(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_maps_parse_and_bad_ones_say_why() {
        let m = AxisMap::parse(&["-y", "x", "z"]).unwrap();
        assert_eq!(m.apply([1.0, 2.0, 3.0]), [-2.0, 1.0, 3.0]);
        assert_eq!(m.to_string(), "[-y, x, z]");
        assert!(
            AxisMap::parse(&["x", "x", "z"])
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            AxisMap::parse(&["y", "x", "z"])
                .unwrap_err()
                .contains("mirror")
        );
        assert!(
            AxisMap::parse(&["x", "y", "w"])
                .unwrap_err()
                .contains("`w`")
        );
        assert!(AxisMap::parse(&["x", "y"]).unwrap_err().contains("three"));
    }

    /// Feeds `inf` the node at rest for `ms` from `*t` (5 ms samples), gravity reading `up`
    /// in its axes.
    fn hold_still(inf: &mut AxisInference, t: &mut f64, ms: f64, up: Vec3) {
        let end = *t + ms;
        while *t < end {
            inf.note(*t, up, [0.0; 3]);
            *t += 5.0;
        }
    }

    /// Feeds `inf` a session of swings through a node whose axes are `truth` turned from the
    /// analyser's: still first (gravity known), then per swing a slower backswing turning the
    /// other way, a pause, and the drive; `forehands` of the `swings` are forehands.
    fn swing_session(
        inf: &mut AxisInference,
        truth: NodeRotation,
        swings: usize,
        forehands: usize,
    ) {
        // Spread through the session (Bresenham), not all first.
        let sides: Vec<bool> = (0..swings)
            .map(|swing| (swing + 1) * forehands / swings > swing * forehands / swings)
            .collect();
        swings_in_order(inf, truth, &sides);
    }

    /// [`swing_session`] with the strokes in the order given (`true`: a forehand).
    /// Returns the times of the samples turning at `QUIET_DPS` or faster.
    fn swings_in_order(inf: &mut AxisInference, truth: NodeRotation, sides: &[bool]) -> Vec<f64> {
        let mut moving = Vec::new();
        // Back to the node's axes: node = Rᵀ analyser.
        let to_node = |v: Vec3| {
            let mut n = [0.0; 3];
            for (k, row) in truth.0.iter().enumerate() {
                n = vm::add(n, vm::scale(*row, v[k]));
            }
            n
        };
        let mut t = 0.0;
        let up = to_node([0.0, 0.0, 1.0]);
        hold_still(inf, &mut t, 500.0, up);
        for &forehand in sides {
            // Forehands turn about −y; a backhand the other way, its forearm supinating.
            let sense = if forehand { 1.0 } else { -1.0 };
            for (peak, ms) in [(-800.0, 60.0), (1500.0, 80.0)] {
                for i in 0..(ms / 5.0) as usize {
                    let phase = (i as f64 + 0.5) / (ms / 5.0);
                    let spin = sense * peak * (std::f64::consts::PI * phase).sin().powi(2);
                    // The forearm's roll: one way then the other through the swing.
                    let roll = sense * 0.4 * peak * (2.0 * std::f64::consts::PI * phase).sin();
                    let omega_a = [roll, -spin, 20.0];
                    // A node 0.3 m from the centre of the swing reads ω²r towards it.
                    let w2 = vm::dot(omega_a, omega_a).to_radians().to_radians();
                    let acc_a = [-w2 * 0.3 / STANDARD_GRAVITY, 0.0, 1.0];
                    inf.note(t, to_node(acc_a), to_node(omega_a));
                    if vm::norm(omega_a) >= QUIET_DPS {
                        moving.push(t);
                    }
                    t += 5.0;
                }
                hold_still(inf, &mut t, 300.0, up);
            }
            hold_still(inf, &mut t, 1500.0, up);
        }
        moving
    }

    #[test]
    fn a_node_turned_any_way_is_found_from_its_swings() {
        // An arbitrary turn, not a right angle: rows are the analyser's axes in node axes.
        let q = vm::from_rotation_vector([0.5, -1.2, 0.8]);
        let truth = NodeRotation([
            vm::rotate(q, [1.0, 0.0, 0.0]),
            vm::rotate(q, [0.0, 1.0, 0.0]),
            vm::rotate(q, [0.0, 0.0, 1.0]),
        ]);
        let mut inf = AxisInference::default();
        swing_session(&mut inf, truth, 10, 8);
        let (rotation, confidence) = inf.current();
        for (found, want) in rotation.0.iter().zip(truth.0) {
            let deg = vm::dot(*found, want).clamp(-1.0, 1.0).acos().to_degrees();
            assert!(deg < 3.0, "{deg:.1}° off: {rotation:?} against {truth:?}");
        }
        assert!(confidence.unwrap() > MIN_REMAP_CONFIDENCE, "{confidence:?}");
    }

    /// A wrist node turned on the arm (`truth`: the convention's axes in node axes), 25 cm
    /// from the elbow: forehands turn about −y, backhands about +y, and the forearm rolls
    /// about x at `roll` of the swing's rate, mostly (three swings in four) pronating on a
    /// forehand and supinating on a backhand — so the centripetal reading's part across the
    /// forearm, ω_x ω_y r, does not average out over the session.
    fn arm_session(inf: &mut AxisInference, truth: NodeRotation, roll: f64) {
        let to_node = |v: Vec3| truth.unapply(v.map(|c| c as f32)).map(f64::from);
        let mut t = 0.0;
        let up = to_node([0.0, 0.0, 1.0]);
        hold_still(inf, &mut t, 500.0, up);
        for swing in 0..10 {
            let sense = if swing % 3 == 2 { -1.0 } else { 1.0 };
            let roll = if swing % 4 == 3 { -roll } else { roll };
            for i in 0..16 {
                let phase = (f64::from(i) + 0.5) / 16.0;
                let rate = 1500.0 * (std::f64::consts::PI * phase).sin().powi(2);
                let omega_a = vm::scale([-roll, -1.0, 0.0], sense * rate);
                let w = omega_a.map(f64::to_radians);
                let centripetal = vm::cross(w, vm::cross(w, [0.25, 0.0, 0.0]));
                let acc_a = vm::add(
                    [0.0, 0.0, 1.0],
                    vm::scale(centripetal, 1.0 / STANDARD_GRAVITY),
                );
                inf.note(t, to_node(acc_a), to_node(omega_a));
                t += 5.0;
            }
            hold_still(inf, &mut t, 1500.0, up);
        }
    }

    /// An unclear turn says nothing of the sense: its confidence falls to a coin toss, never
    /// under it (under 0.5 it would make the side surer of the other face); a clear one is
    /// as sure as its vote.
    #[test]
    fn an_unclear_forehand_turn_is_a_coin_toss_not_the_other_face() {
        let turn = |clear: f64, sure: f64| ForehandTurn {
            axis: [0.0, -1.0, 0.0],
            forearm: [1.0, 0.0, 0.0],
            clear,
            votes: 9.0,
            drives: 13,
            sure,
            as_made: false,
            roll_votes: 0.0,
            roll_drives: 0,
        };
        let unclear = turn(0.1, 0.99).confidence();
        assert!((0.5..0.6).contains(&unclear), "unclear turn: {unclear}");
        assert!((turn(1.0, 0.9).confidence() - 0.9).abs() < 1e-12);
        assert!((turn(0.9, 0.9).confidence() - 0.81).abs() < 1e-12);
        assert!((turn(0.0, 0.99).confidence() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_wrist_node_turned_on_the_arm_finds_its_forearm_and_its_forehand_turn() {
        let q = vm::from_rotation_vector([0.9, 0.4, -1.1]);
        let truth = NodeRotation([
            vm::rotate(q, [1.0, 0.0, 0.0]),
            vm::rotate(q, [0.0, 1.0, 0.0]),
            vm::rotate(q, [0.0, 0.0, 1.0]),
        ]);
        let mut inf = AxisInference::evidence_only();
        // A strong roll (0.8 of the swing's rate): the slope on |ω|² puts the forearm off
        // by the roll's share of the reading across it; the full centripetal model does not.
        arm_session(&mut inf, truth, 0.8);
        let turn = inf.forehand_turn().expect("decided after ten swings");
        let off = |a: Vec3, b: Vec3| vm::dot(a, b).clamp(-1.0, 1.0).acos().to_degrees();
        let forearm_off = off(turn.forearm, truth.0[0]);
        assert!(forearm_off < 3.0, "forearm {forearm_off:.1}° off");
        let turn_off = off(turn.axis, vm::scale(truth.0[1], -1.0));
        assert!(turn_off < 3.0, "forehand turn {turn_off:.1}° off");
        assert!(!turn.as_made);
        assert!(turn.confidence() > 0.9, "{turn:?}");
        // Evidence only: the node's samples are never turned.
        assert_eq!(inf.current().0, NodeRotation::IDENTITY);
    }

    #[test]
    fn a_right_angle_turn_is_taken_exactly() {
        let truth = NodeRotation::from(AxisMap::parse(&["-y", "x", "z"]).unwrap());
        let mut inf = AxisInference::default();
        swing_session(&mut inf, truth, 10, 7);
        assert_eq!(inf.current().0, truth);
    }

    #[test]
    fn a_node_in_the_convention_is_kept_and_an_even_vote_turns_only_the_plane() {
        // Mostly backhands: the vote leans against the node's own y, not clearly (9 of 14
        // drives: P 0.86), so the node is read as made while it waits for more drives, and
        // kept once `MAX_TURN_OVER_DRIVES` have voted.
        let mut aligned = AxisInference::default();
        swing_session(&mut aligned, NodeRotation::IDENTITY, 10, 4);
        assert_eq!(aligned.current().0, NodeRotation::IDENTITY);
        assert!(!aligned.report().settled, "waiting for a clearer vote");
        let mut aligned = AxisInference::default();
        swing_session(&mut aligned, NodeRotation::IDENTITY, 14, 5);
        assert_eq!(aligned.current().0, NodeRotation::IDENTITY);
        assert!(aligned.report().settled, "decided");
        // A turned node whose players' drives vote evenly: the swing plane and the shaft are
        // applied (what height, stroke and speed read through), provisionally; which face is
        // the forehand's is not decided.
        let turned = NodeRotation::from(AxisMap::parse(&["z", "x", "y"]).unwrap());
        let mut even = AxisInference::default();
        swing_session(&mut even, turned, 4, 2);
        let (rotation, confidence) = even.current();
        assert!(!even.report().settled, "still provisional");
        assert!(vm::dot(rotation.0[0], turned.0[0]) > 0.99, "{rotation:?}");
        assert!(
            vm::dot(rotation.0[1], turned.0[1]).abs() > 0.99,
            "{rotation:?}"
        );
        assert!(
            confidence.is_some_and(|c| c >= MIN_SPIN_CLEAR),
            "{confidence:?}"
        );
    }

    #[test]
    fn a_node_turned_about_its_own_y_keeps_its_y_and_finds_its_shaft() {
        // The board's z runs up the shaft, its y is the swing's axis: its face is the
        // convention's, its shaft is not. Mostly backhands, not clearly: y keeps the node's
        // sense.
        let truth = NodeRotation::from(AxisMap::parse(&["z", "y", "-x"]).unwrap());
        let mut inf = AxisInference::default();
        swing_session(&mut inf, truth, 14, 5);
        assert_eq!(inf.current().0, truth);
        assert!(inf.report().settled);
    }

    #[test]
    fn a_node_turned_over_is_turned_over_only_on_a_clear_vote() {
        // Turned over on the handle: its y and z are the convention's −y and −z. Nine
        // forehands in ten: the drives vote clearly against the node's own y.
        let truth = NodeRotation::from(AxisMap::parse(&["x", "-y", "-z"]).unwrap());
        let mut inf = AxisInference::default();
        swing_session(&mut inf, truth, 10, 9);
        assert_eq!(inf.current().0, truth);
        assert!(inf.report().settled);
    }

    /// A last frame decided on the first drives' vote, three backhands to one, has the
    /// forehand's sense wrong; the drives after it (sixteen forehands) turn it over about its
    /// shaft once they outvote it as clearly as it was decided: the plane and the shaft
    /// stay, the sense becomes the forehand's.
    #[test]
    fn a_last_frame_decided_on_a_minority_vote_is_turned_over_by_the_drives_after_it() {
        let truth = NodeRotation::from(AxisMap::parse(&["-y", "x", "z"]).unwrap());
        let first = [false, true, false, false, false];
        let mut inf = AxisInference::default();
        swings_in_order(&mut inf, truth, &first);
        let [x, y, _] = inf.current().0.rows();
        assert!(inf.report().settled, "decided on the first four drives");
        assert!(
            vm::dot(y, truth.0[1]) < -0.99,
            "the minority's sense: {y:?}"
        );
        let mut inf = AxisInference::default();
        let sides: Vec<bool> = first.into_iter().chain([true; 16]).collect();
        let moving = swings_in_order(&mut inf, truth, &sides);
        let (rotation, confidence) = inf.current();
        assert_eq!(rotation, truth);
        // Turned over only after a quiet spell longer than a backswing's gap to its drive,
        // never between the two (the detector compares their senses).
        let at = inf.report().last_at.unwrap();
        let last_moving = moving.iter().rfind(|&&m| m < at).unwrap();
        assert!(
            at - last_moving >= TURN_OVER_QUIET_MS,
            "{at} after {last_moving}"
        );
        assert!(vm::dot(rotation.rows()[0], x) > 0.99, "the shaft kept");
        // Turned over as soon as the vote clears the bar it was decided at.
        assert!(
            confidence.is_some_and(|c| c >= MIN_REMAP_CONFIDENCE),
            "{confidence:?}"
        );
        // Eight forehands after it are enough (8 to 4 by the last drive counted, P 0.88):
        // its sense came from a vote, not from the mount as made, so the bar is the one it
        // was decided at, not the turn-over bar of a node as made (0.95).
        let mut inf = AxisInference::default();
        let sides: Vec<bool> = first.into_iter().chain([true; 8]).collect();
        swings_in_order(&mut inf, truth, &sides);
        assert_eq!(inf.current().0, truth);
    }

    /// A node read as made whose drives lean against it only unclearly by the twelfth drive
    /// is kept; if more drives make the vote clear (and not unanimous), it is turned over.
    #[test]
    fn a_node_kept_as_made_on_an_unclear_vote_is_turned_over_when_it_becomes_clear() {
        let truth = NodeRotation::from(AxisMap::parse(&["x", "-y", "-z"]).unwrap());
        // 7 forehands of 12 (P 0.72 against the node's own y), then 12 more, 10 forehands.
        let mut sides = vec![
            true, false, true, false, true, false, true, true, false, true,
        ];
        sides.extend([false, true]);
        let kept = sides.clone();
        sides.extend([
            true, true, false, true, true, true, true, false, true, true, true, true,
        ]);
        let mut inf = AxisInference::default();
        swings_in_order(&mut inf, truth, &kept);
        assert!(inf.report().settled);
        assert_eq!(inf.current().0, NodeRotation::IDENTITY, "kept as made");
        let mut inf = AxisInference::default();
        swings_in_order(&mut inf, truth, &sides);
        assert_eq!(inf.current().0, truth);
    }

    /// A node turned over on the handle, kept as made at its twelfth drive on a vote that
    /// leans against it unclearly (7 forehands of 12): its side is no longer sure, but the
    /// mount as made still outweighs the vote (its 19:1 prior against a vote sure 0.72);
    /// the same node in the convention, whose vote agrees with it, gets no bound.
    #[test]
    fn a_side_read_through_a_frame_its_vote_leans_against_is_not_sure() {
        let sides = [
            true, false, true, false, true, false, true, true, false, true, false, true,
        ];
        let mut turned_over = AxisInference::default();
        let truth = NodeRotation::from(AxisMap::parse(&["x", "-y", "-z"]).unwrap());
        swings_in_order(&mut turned_over, truth, &sides);
        assert_eq!(
            turned_over.current().0,
            NodeRotation::IDENTITY,
            "kept as made"
        );
        let bound = turned_over
            .frame_side_bound()
            .expect("the vote leans against");
        assert!((0.8..0.95).contains(&bound), "{bound}");
        let mut aligned = AxisInference::default();
        swings_in_order(&mut aligned, NodeRotation::IDENTITY, &sides);
        assert_eq!(aligned.frame_side_bound(), None);
    }

    #[test]
    fn a_frame_switch_waits_for_the_racket_to_be_quiet_and_earlier_samples_are_reframed() {
        let turned = NodeRotation::from(AxisMap::parse(&["-y", "x", "z"]).unwrap());
        let mut inf = AxisInference::default();
        swing_session(&mut inf, turned, 10, 8);
        let report = inf.report();
        let first = report.first_at.expect("a frame was applied");
        // A sample read through the identity before the first frame comes out in the frame
        // applied now.
        let v = [1.0, 2.0, 3.0];
        assert_eq!(inf.reframe(first - 1.0, v), inf.current().0.apply(v));
        assert_eq!(inf.reframe(report.last_at.unwrap(), v), v);
    }
}
