//! A node's axes onto the analyser's convention: configured (`axes = ["-y", "x", "z"]`) or
//! inferred from the swings.
//!
//! The analyser reads a racket node with x along the shaft towards the head and z the normal of
//! the forehand face (docs/analysis.md, "Node conventions"). A node mounted otherwise — turned on
//! the handle, its board rotated in its case — is mapped by a signed permutation of its axes.
//!
//! Without a configured map, on a device with `infer_axes = true`, the racket node's axes are
//! inferred from its fast samples (over
//! `FAST_DPS`), by the swing plane: the swing's axis (y) turns most, the shaft next (the
//! forearm's pronation rolls the racket about it), the face normal least (a racket seldom turns
//! edge-first). The shaft's sign comes from the centripetal reading (the acceleration beyond
//! gravity, gravity carried through the swing by the gyro from the last still sample, grows with
//! ω² towards the wrist) only when it is strong; otherwise the node's own sign is kept. Which
//! face is the forehand's cannot be told from a swing's physics: the side most swings turn to is
//! taken for the forehand (players hit more forehands).
//!
//! The inference acts only on evidence: a node whose y turns most (the convention's swing axis)
//! is read as it is, and so is one whose swing plane is not clear; only a node that clearly
//! swings about another axis is remapped.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::super::vecmath::{self as vm, Vec3};

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

/// Angular rate above which a racket sample is "fast": a swing, not handling (°/s).
const FAST_DPS: f64 = 600.0;
/// "Still" for the gravity estimate: under this rate, °/s, and within this of 1 g.
const STILL_DPS: f64 = 30.0;
const STILL_G: f64 = 0.05;
/// m/s² per g.
const STANDARD_GRAVITY: f64 = 9.806_65;
/// Fast samples needed before deciding (two swings' worth at 100 Hz).
const DECIDE_AFTER: u32 = 16;
/// The centripetal reading gives the shaft's sign only for a node at least this far from the
/// wrist, m: nearer, the hand's own acceleration (which grows with the swing too) can fake it
/// (the project's simulator, which has no centripetal term, fakes up to 3 cm).
const STRONG_RADIUS_M: f64 = 0.05;
/// The shaft must out-turn the face normal by this much (1 − √(E_face/E_shaft)) to be told
/// apart from it: 0.5 is four times the rotation energy.
const MIN_ROLL_CLEAR: f64 = 0.5;
/// The swing's axis must out-turn the next by this much (1 − √(E_next/E_spin)) before a node
/// is read as turned: 0.5 is four times the rotation energy. At 0.3 (twice) the independent
/// simulator's tuning seeds 0–7 at 100 Hz remapped nodes it should not have: side 69.7 → 63.3 %
/// (the forehand face is only a majority guess); at 0.5 those seeds are read as on main.
const MIN_SPIN_CLEAR: f64 = 0.5;
/// A turned node is remapped only when the whole inference (swing plane × the forehand
/// majority) is this sure: below it the remap's side is a coin toss. On the independent
/// simulator's tuning seeds 0–7 at 100 Hz every remap had less.
const MIN_REMAP_CONFIDENCE: f64 = 0.4;

/// Evidence about an unconfigured racket node's axes, gathered from its fast samples.
#[derive(Debug, Clone, Default)]
pub struct AxisInference {
    /// Σ ω_k² per node axis over fast samples.
    energy: Vec3,
    /// Σ ω_k (signed) per node axis: which way most swings turn.
    turn: Vec3,
    /// For the regression of each axis's acceleration on ω² (the centripetal reading grows
    /// with ω², gravity does not): Σ a_k, Σ a_k·ω², Σ ω², Σ ω⁴ (ω in rad/s).
    acc_sum: Vec3,
    acc_w_sum: Vec3,
    w_sum: f64,
    w2_sum: f64,
    fast: u32,
    /// Gravity's "up" in node axes: taken from the accelerometer when the node is still,
    /// carried through motion by the gyro (exact enough over a swing's 0.2 s).
    up: Option<Vec3>,
    prev_t: Option<f64>,
    decided: Option<(AxisMap, f64)>,
    decided_at: Option<f64>,
}

impl AxisInference {
    /// Notes one calibrated sample in node axes (time order); decides once there is enough.
    pub fn note(&mut self, t: f64, acc: Vec3, gyro: Vec3) {
        if self.decided.is_some() {
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
        if vm::norm(gyro) < FAST_DPS {
            // Decided between swings, over whole ones: the tangential α × r goes one way on
            // the rising flank and the other on the falling one, so over a whole swing it
            // does not pass for centripetal.
            if self.fast >= DECIDE_AFTER {
                self.decided = Some(self.decide());
                self.decided_at = Some(t);
            }
            return;
        }
        // The node's own acceleration: what the accelerometer reads beyond gravity.
        let acc = vm::sub(acc, up);
        let w = vm::dot(gyro, gyro).to_radians().to_radians();
        self.energy = vm::add(self.energy, gyro.map(|g| g * g));
        self.turn = vm::add(self.turn, gyro);
        self.acc_sum = vm::add(self.acc_sum, acc);
        self.acc_w_sum = vm::add(self.acc_w_sum, vm::scale(acc, w));
        self.w_sum += w;
        self.w2_sum += w * w;
        self.fast += 1;
    }

    /// The map to apply now (identity until decided) and its confidence (0–1; `None` before
    /// a decision).
    pub fn current(&self) -> (AxisMap, Option<f64>) {
        match self.decided {
            Some((map, confidence)) => (map, Some(confidence)),
            None => (AxisMap::IDENTITY, None),
        }
    }

    /// When the map was decided: samples released before it went through the identity.
    pub fn decided_at(&self) -> Option<f64> {
        self.decided_at
    }

    fn decide(&self) -> (AxisMap, f64) {
        let n = f64::from(self.fast);
        // Rotation energy orders the axes: the swing's axis (y) turns most; the shaft next (the
        // forearm's pronation rolls the racket about it); the face normal least (a racket
        // seldom turns edge-first).
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| self.energy[b].total_cmp(&self.energy[a]));
        let [spin, shaft, face] = order;
        let clear = |more: usize, less: usize| {
            (1.0 - (self.energy[less] / self.energy[more].max(1e-9)).sqrt()).max(0.0)
        };
        let (spin_clear, roll_clear) = (clear(spin, shaft), clear(shaft, face));
        // The shaft's sign only from a strong centripetal reading: the slope of the
        // acceleration beyond gravity along it on ω² is −r/g for a node r up the shaft from
        // the wrist.
        let var = self.w2_sum - self.w_sum * self.w_sum / n;
        let slope = (self.acc_w_sum[shaft] - self.acc_sum[shaft] * self.w_sum / n) / var.max(1e-9);
        let radius = -slope * STANDARD_GRAVITY;
        let shaft_negated = radius <= -STRONG_RADIUS_M;
        let evidence = spin_clear * roll_clear;
        // The node's y turning most is the convention's swing axis: nothing says the node is
        // turned, and it is read as it is. Otherwise the swing plane must be clear (the
        // swing's axis well ahead of the next, the shaft's roll well ahead of the face's).
        if spin == 1 || spin_clear < MIN_SPIN_CLEAR || roll_clear < MIN_ROLL_CLEAR {
            return (AxisMap::IDENTITY, evidence);
        }
        let x = SignedAxis {
            axis: shaft as u8,
            negate: shaft_negated,
        };
        // The forehand (turning about −y: the head moves along ω × x = +z) is the side most
        // swings turn to.
        let majority = (self.turn[spin].abs() / (self.energy[spin] * n).sqrt().max(1e-9)).min(1.0);
        let y = SignedAxis {
            axis: spin as u8,
            negate: self.turn[spin] > 0.0,
        };
        let z_row = vm::cross(AxisMap::row(x), AxisMap::row(y));
        let z = SignedAxis {
            axis: face as u8,
            negate: z_row[face] < 0.0,
        };
        let confidence = evidence * majority;
        if confidence < MIN_REMAP_CONFIDENCE {
            return (AxisMap::IDENTITY, confidence);
        }
        (AxisMap([x, y, z]), confidence)
    }
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

    #[test]
    fn a_turned_node_is_found_from_its_fast_samples() {
        // The node's x points along the analyser's −y... i.e. the analyser's x (shaft) is the
        // node's −y; forehand swings turn about the analyser's −y (the node's −x).
        let truth = AxisMap::parse(&["-y", "x", "z"]).unwrap();
        let mut inf = AxisInference::default();
        // Still first: gravity (the node's z up) is known.
        inf.note(-1.0, [0.0, 0.0, 1.0], [0.0; 3]);
        for i in 0..40 {
            // In the analyser's axes: ω = (roll 0.4 Ω, −Ω, 20); the node 8 cm up the shaft
            // reads ω²r towards the hand, plus gravity.
            let spin = 700.0 + 50.0 * (i % 20) as f64;
            let omega_a = [0.4 * spin, -spin, 20.0];
            let w2 = (spin.to_radians().powi(2) * (1.0 + 0.16)) * 0.08;
            let acc_a = [-w2 / STANDARD_GRAVITY, 0.0, 1.0];
            // Back to the node's axes: node = Mᵀ analyser.
            let to_node = |v: Vec3| {
                let mut n = [0.0; 3];
                for (k, s) in truth.0.iter().enumerate() {
                    n[usize::from(s.axis)] = if s.negate { -v[k] } else { v[k] };
                }
                n
            };
            inf.note(i as f64, to_node(acc_a), to_node(omega_a));
        }
        // The swing ends.
        inf.note(40.0, [0.0, 0.0, 1.0], [0.0; 3]);
        let (map, confidence) = inf.current();
        assert_eq!(map, truth);
        assert!(confidence.unwrap() > 0.5, "{confidence:?}");
    }
}
