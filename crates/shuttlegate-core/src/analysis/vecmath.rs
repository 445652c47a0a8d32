//! Small 3-vector and unit-quaternion arithmetic for attitude estimation and the simulator.
//!
//! Exists so the analysis stays dependency-free and allocation-free in its hot loops: only the
//! handful of operations the attitude integrator and the kinematic model need (cross/dot,
//! rotate, compose, exponential map). Quaternions are `[w, x, y, z]`, Hamilton convention,
//! and rotate body-frame vectors into the reference frame (`q ⊗ v ⊗ q*`).

// Index loops over parallel arrays read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

/// A 3-vector in f64 (analysis works in f64 even though samples arrive as f32, so that
/// integration over thousands of samples does not accumulate rounding).
pub type Vec3 = [f64; 3];

pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn scale(a: Vec3, k: f64) -> Vec3 {
    [a[0] * k, a[1] * k, a[2] * k]
}

pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// `a / |a|`, or `None` for a (near-)zero or non-finite vector.
pub fn unit(a: Vec3) -> Option<Vec3> {
    let n = norm(a);
    (n.is_finite() && n > 1e-12).then(|| scale(a, 1.0 / n))
}

/// Widens an f32 triple (as samples carry them).
pub fn widen(a: [f32; 3]) -> Vec3 {
    [f64::from(a[0]), f64::from(a[1]), f64::from(a[2])]
}

/// A unit quaternion `[w, x, y, z]`.
pub type Quat = [f64; 4];

pub const IDENTITY: Quat = [1.0, 0.0, 0.0, 0.0];

/// Hamilton product `a ⊗ b` (apply `b` first, then `a`, when rotating vectors).
pub fn mul(a: Quat, b: Quat) -> Quat {
    [
        a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
        a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
        a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
        a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0],
    ]
}

pub fn conj(q: Quat) -> Quat {
    [q[0], -q[1], -q[2], -q[3]]
}

/// Renormalises (integration drifts the norm slowly).
pub fn normalise(q: Quat) -> Quat {
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    if n.is_finite() && n > 1e-12 {
        [q[0] / n, q[1] / n, q[2] / n, q[3] / n]
    } else {
        IDENTITY
    }
}

/// Rotates `v` by `q` (`q ⊗ v ⊗ q*`).
pub fn rotate(q: Quat, v: Vec3) -> Vec3 {
    let u = [q[1], q[2], q[3]];
    let t = scale(cross(u, v), 2.0);
    add(add(v, scale(t, q[0])), cross(u, t))
}

/// How far the unit vector `v` stands above the plane normal to the unit vector `up`, °
/// (negative below it).
pub fn elevation_deg(v: Vec3, up: Vec3) -> f64 {
    dot(v, up).clamp(-1.0, 1.0).asin().to_degrees()
}

/// The rotation by angle `|r|` (rad) about `r` (the exponential map of a rotation vector).
pub fn from_rotation_vector(r: Vec3) -> Quat {
    let angle = norm(r);
    if angle < 1e-12 {
        return normalise([1.0, r[0] * 0.5, r[1] * 0.5, r[2] * 0.5]);
    }
    let (s, c) = (angle * 0.5).sin_cos();
    let k = s / angle;
    [c, r[0] * k, r[1] * k, r[2] * k]
}

/// The rotation vector of `q` (the logarithm map; inverse of [`from_rotation_vector`]).
pub fn to_rotation_vector(q: Quat) -> Vec3 {
    let q = if q[0] < 0.0 { scale4(q, -1.0) } else { q };
    let v = [q[1], q[2], q[3]];
    let s = norm(v);
    if s < 1e-12 {
        return scale(v, 2.0);
    }
    let angle = 2.0 * s.atan2(q[0]);
    scale(v, angle / s)
}

fn scale4(q: Quat, k: f64) -> Quat {
    [q[0] * k, q[1] * k, q[2] * k, q[3] * k]
}

/// Spherical interpolation from `a` (at 0) to `b` (at 1).
pub fn slerp(a: Quat, b: Quat, t: f64) -> Quat {
    let rel = mul(conj(a), b);
    normalise(mul(
        a,
        from_rotation_vector(scale(to_rotation_vector(rel), t)),
    ))
}

/// The quaternion of a rotation matrix given by its columns (body axes in the reference frame).
pub fn from_axes(x: Vec3, y: Vec3, z: Vec3) -> Quat {
    // Shepperd's method: pick the largest diagonal term for numerical stability.
    let (m00, m11, m22) = (x[0], y[1], z[2]);
    let trace = m00 + m11 + m22;
    let q = if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        [
            0.25 * s,
            (y[2] - z[1]) / s,
            (z[0] - x[2]) / s,
            (x[1] - y[0]) / s,
        ]
    } else if m00 > m11 && m00 > m22 {
        let s = (1.0 + m00 - m11 - m22).sqrt() * 2.0;
        [
            (y[2] - z[1]) / s,
            0.25 * s,
            (y[0] + x[1]) / s,
            (z[0] + x[2]) / s,
        ]
    } else if m11 > m22 {
        let s = (1.0 + m11 - m00 - m22).sqrt() * 2.0;
        [
            (z[0] - x[2]) / s,
            (y[0] + x[1]) / s,
            0.25 * s,
            (z[1] + y[2]) / s,
        ]
    } else {
        let s = (1.0 + m22 - m00 - m11).sqrt() * 2.0;
        [
            (x[1] - y[0]) / s,
            (z[0] + x[2]) / s,
            (z[1] + y[2]) / s,
            0.25 * s,
        ]
    };
    normalise(q)
}

/// Roll, pitch, yaw (°, ZYX convention) of a body→reference rotation, as fusing IMU nodes
/// report their attitude.
pub fn euler_deg(q: Quat) -> Vec3 {
    let [w, x, y, z] = q;
    let roll = (2.0 * (w * x + y * z)).atan2(1.0 - 2.0 * (x * x + y * y));
    let pitch = (2.0 * (w * y - z * x)).clamp(-1.0, 1.0).asin();
    let yaw = (2.0 * (w * z + x * y)).atan2(1.0 - 2.0 * (y * y + z * z));
    [roll.to_degrees(), pitch.to_degrees(), yaw.to_degrees()]
}

/// A 3×3 matrix, row by row.
pub type Mat3 = [Vec3; 3];

/// The product `a b` of two 3×3 matrices.
pub fn mat_mul(a: Mat3, b: Mat3) -> Mat3 {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// The product `a v` of a 3×3 matrix and a vector.
pub fn mat_vec(a: Mat3, v: Vec3) -> Vec3 {
    a.map(|row| dot(row, v))
}

/// Eigenvalues (largest first) and unit eigenvectors of a symmetric 3×3 matrix, by cyclic
/// Jacobi rotations: each sweep zeroes the off-diagonal entries in turn; a 3×3 converges in a
/// few sweeps to machine precision (Golub & Van Loan, *Matrix Computations*, §8.5). Written
/// here rather than taken from a linear-algebra crate: this is the only decomposition the
/// analyser needs.
pub fn symmetric_eigen(m: Mat3) -> ([f64; 3], [Vec3; 3]) {
    let mut a = m;
    // Columns of v are the eigenvectors.
    let mut v: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _sweep in 0..32 {
        let off = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        if off <= 1e-30 * (a[0][0].powi(2) + a[1][1].powi(2) + a[2][2].powi(2)).max(1e-300) {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q] == 0.0 {
                continue;
            }
            // The rotation in the (p, q) plane that zeroes a[p][q].
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for k in 0..3 {
                let (vkp, vkq) = (v[k][p], v[k][q]);
                v[k][p] = c * vkp - s * vkq;
                v[k][q] = s * vkp + c * vkq;
            }
        }
    }
    let mut order = [0usize, 1, 2];
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    (
        order.map(|i| a[i][i]),
        order.map(|i| [v[0][i], v[1][i], v[2][i]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Vec3, b: Vec3) -> bool {
        norm(sub(a, b)) < 1e-9
    }

    #[test]
    fn a_symmetric_matrix_is_taken_apart_into_its_axes() {
        // Σ λ_k u_k u_kᵀ with the axes of a turned frame: the decomposition gives them back.
        let q = from_rotation_vector([0.4, -0.7, 1.1]);
        let axes = [
            rotate(q, [1.0, 0.0, 0.0]),
            rotate(q, [0.0, 1.0, 0.0]),
            rotate(q, [0.0, 0.0, 1.0]),
        ];
        let lambda = [2.0, 9.0, 0.5];
        let mut m = [[0.0; 3]; 3];
        for (l, u) in lambda.iter().zip(axes) {
            for i in 0..3 {
                for j in 0..3 {
                    m[i][j] += l * u[i] * u[j];
                }
            }
        }
        let (values, vectors) = symmetric_eigen(m);
        assert!(close(values, [9.0, 2.0, 0.5]), "{values:?}");
        for (v, u) in vectors.iter().zip([axes[1], axes[0], axes[2]]) {
            assert!((dot(*v, u).abs() - 1.0).abs() < 1e-9, "{v:?} against {u:?}");
        }
    }

    #[test]
    fn quarter_turn_about_z_takes_x_to_y() {
        let q = from_rotation_vector([0.0, 0.0, std::f64::consts::FRAC_PI_2]);
        assert!(close(rotate(q, [1.0, 0.0, 0.0]), [0.0, 1.0, 0.0]));
    }

    #[test]
    fn rotation_vector_round_trips() {
        let r = [0.3, -1.1, 0.7];
        assert!(close(to_rotation_vector(from_rotation_vector(r)), r));
    }

    #[test]
    fn axes_round_trip_through_a_quaternion() {
        let q = from_rotation_vector([0.4, 0.2, -0.9]);
        let (x, y, z) = (
            rotate(q, [1.0, 0.0, 0.0]),
            rotate(q, [0.0, 1.0, 0.0]),
            rotate(q, [0.0, 0.0, 1.0]),
        );
        let p = from_axes(x, y, z);
        assert!(close(
            rotate(p, [0.3, 0.5, 0.7]),
            rotate(q, [0.3, 0.5, 0.7])
        ));
    }
}
