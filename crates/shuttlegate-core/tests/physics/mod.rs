//! Racket and forearm swings from rigid-body kinematics, written out here independently of the
//! analyser (it imports nothing from it and shares none of its constants), for the tests of
//! the real sensors' traps.
//!
//! A stroke is a rotation about an axis fixed in the body and in the world (a planar swing):
//! - angular rate `Ω(t) = Ω_peak · sin²(π (t − t₀) / W)` over `[t₀, t₀ + W]` (a smooth pulse
//!   from rest to rest, peaking at `t₀ + W/2`, where the shuttle is met);
//! - gravity in the body frame turns against the body: `u̇ = −ω × u`, i.e. `u(t)` is `u(t_c)`
//!   turned about the axis by `−(Φ(t) − Φ(t_c))`, `Φ` the angle swept;
//! - the accelerometer (specific force, g) reads gravity's "up" plus the node's own
//!   acceleration: centripetal `−Ω² r` towards the rotation centre and tangential `α × r`;
//! - contact adds a damped ring of the frame along the face normal: `A e^{−τ/8 ms}
//!   sin(2π·150 Hz·τ)`, `τ = t − t_c`;
//! - the head, `L` from the centre along the shaft, moves at `|ω × L x̂_shaft|` (the truth).
//!
//! Sensor faults are applied to the readings afterwards: a sign wrap past full scale, clipping,
//! gain/offset/bias. Noise is a fixed pseudo-random sequence (0.01 g, 0.5 °/s), so runs repeat.

#![allow(dead_code)]

pub type V3 = [f64; 3];

pub const G: f64 = 9.806_65;

pub fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub fn scale(a: V3, k: f64) -> V3 {
    [a[0] * k, a[1] * k, a[2] * k]
}
pub fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
pub fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}
pub fn unit(a: V3) -> V3 {
    scale(a, 1.0 / norm(a))
}
/// `v` turned by `angle` (rad) about the unit `axis` (Rodrigues).
pub fn rotate(v: V3, axis: V3, angle: f64) -> V3 {
    let (s, c) = angle.sin_cos();
    add(
        add(scale(v, c), scale(cross(axis, v), s)),
        scale(axis, dot(axis, v) * (1.0 - c)),
    )
}

/// One reading: time (ms), specific force (g), angular rate (°/s), in the node's axes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub t_ms: f64,
    pub acc: V3,
    pub gyro: V3,
}

/// One stroke, in the frame the node is read in (racket: x along the shaft to the head, z the
/// forehand face's normal; forearm: x along the forearm to the hand, z out of the palm).
#[derive(Debug, Clone, Copy)]
pub struct Stroke {
    /// Peak angular rate, °/s.
    pub peak_dps: f64,
    /// Pulse length W, ms (half-maximum width W/2).
    pub width_ms: f64,
    /// Unit rotation axis (racket forehand: −y, the head moving along +z).
    pub axis: V3,
    /// "Up" in the node's axes at contact.
    pub up_at_contact: V3,
    /// Node's position from the rotation centre, m (centripetal reading).
    pub node_offset: V3,
    /// Sweet spot from the rotation centre, m (truth speed).
    pub head_offset: V3,
    /// Contact ring amplitude along z, g (0: air swing).
    pub ring_g: f64,
}

impl Stroke {
    /// A racket stroke: forehand (about −y) or backhand (about +y), with the shaft at
    /// `elevation_deg` above horizontal and the head moving at `pitch_deg` at contact.
    pub fn racket(peak_dps: f64, forehand: bool, elevation_deg: f64, pitch_deg: f64) -> Stroke {
        let (e, p) = (
            elevation_deg.to_radians().sin(),
            pitch_deg.to_radians().sin(),
        );
        let side = (1.0 - e * e - p * p).max(0.0).sqrt();
        // The head moves along +z on a forehand (ω × x̂ with ω along −y), −z on a backhand.
        let face = if forehand { 1.0 } else { -1.0 };
        Stroke {
            peak_dps,
            width_ms: 160.0,
            // The forearm's pronation rolls the racket about its shaft as it swings.
            axis: unit([0.35, -face, 0.0]),
            up_at_contact: [e, side, face * p],
            node_offset: [0.03, 0.0, 0.0],
            head_offset: [0.55, 0.0, 0.0],
            ring_g: 6.0,
        }
    }

    /// A forearm stroke, read by a wrist node: x along the forearm to the hand, z out of the
    /// palm. The racket leaves the fist on the thumb's side (−y) at 80° to the forearm, its
    /// sweet spot 0.55 m from the wrist; a forehand pronates (turns about −x) with some elbow
    /// turn about −z; the shaft is `elevation_deg` above horizontal at contact.
    pub fn forearm(peak_dps: f64, elevation_deg: f64) -> Stroke {
        let grip = 80f64.to_radians();
        let shaft = [grip.cos(), -grip.sin(), 0.0];
        let e = elevation_deg.to_radians().sin();
        let across = unit(cross(shaft, [0.0, 0.0, 1.0]));
        let rest = (1.0 - e * e).sqrt();
        let up = add(
            scale(shaft, e),
            add(scale(across, rest * 0.9), [0.0, 0.0, rest * 0.436]),
        );
        Stroke {
            peak_dps,
            width_ms: 140.0,
            axis: unit([-1.0, 0.0, -0.25]),
            up_at_contact: up,
            node_offset: [-0.02, 0.0, 0.0],
            head_offset: scale(shaft, 0.55),
            ring_g: 3.0,
        }
    }

    /// Truth: head speed at contact, km/h.
    pub fn head_speed_kmh(&self) -> f64 {
        let omega = scale(self.axis, self.peak_dps.to_radians());
        norm(cross(omega, self.head_offset)) * 3.6
    }
}

/// A session: still spells and strokes, sampled at a rate that may change.
pub struct Session {
    /// Readings so far.
    pub readings: Vec<Reading>,
    /// Contact times, ms, of the strokes added.
    pub contacts: Vec<f64>,
    t: f64,
    rate_hz: f64,
    up: V3,
    noise: u64,
}

impl Session {
    pub fn new(rate_hz: f64, up: V3) -> Session {
        Session {
            readings: Vec::new(),
            contacts: Vec::new(),
            t: 1_000_000.0,
            rate_hz,
            up: unit(up),
            noise: 0x2545_f491_4f6c_dd1d,
        }
    }

    pub fn set_rate(&mut self, rate_hz: f64) {
        self.rate_hz = rate_hz;
    }

    /// Uniform in [−1, 1) (xorshift).
    fn noise(&mut self) -> f64 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 7;
        self.noise ^= self.noise << 17;
        (self.noise >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn push(&mut self, acc: V3, gyro: V3) {
        let n = [0, 1, 2].map(|_| 0.01 * self.noise());
        let m = [0, 1, 2].map(|_| 0.5 * self.noise());
        self.readings.push(Reading {
            t_ms: self.t,
            acc: add(acc, n),
            gyro: add(gyro, m),
        });
        self.t += 1000.0 / self.rate_hz;
    }

    /// Holds still (gravity only) for `ms`.
    pub fn still(&mut self, ms: f64) {
        let end = self.t + ms;
        while self.t < end {
            self.push(self.up, [0.0; 3]);
        }
    }

    /// Moves about without a stroke for `ms`: a slow wobble (≤ 100 °/s) with steps (±0.4 g),
    /// never still for long — a player walking to position.
    pub fn fidget(&mut self, ms: f64) {
        let end = self.t + ms;
        let start = self.t;
        while self.t < end {
            let k = (self.t - start) / 1000.0;
            let w = [
                60.0 * (7.0 * k).sin(),
                80.0 * (5.0 * k).cos(),
                40.0 * (11.0 * k).sin(),
            ];
            let dt = 1.0 / self.rate_hz;
            let turned = rotate(self.up, unit(w), -norm(w).to_radians() * dt);
            self.up = unit(turned);
            let step = 0.4 * (13.0 * k).sin();
            self.push(add(self.up, [0.0, 0.0, step]), w);
        }
    }

    /// Turns the node smoothly (about one axis, at a constant rate) until "up" reads `target`
    /// in its axes, over `ms`.
    pub fn turn_to(&mut self, target: V3, ms: f64) {
        let target = unit(target);
        let c = dot(self.up, target).clamp(-1.0, 1.0);
        let n = cross(self.up, target);
        if norm(n) < 1e-9 {
            return self.still(ms);
        }
        let (n, angle) = (unit(n), c.acos());
        let start = self.up;
        let t0 = self.t;
        // u(t) = Rot(n, θ(t)) u₀ with u̇ = −ω × u: ω = −θ̇ n.
        let rate = angle / (ms / 1000.0);
        while self.t < t0 + ms {
            let theta = rate * (self.t - t0) / 1000.0;
            self.up = rotate(start, n, theta);
            self.push(self.up, scale(n, -rate.to_degrees()));
        }
        self.up = target;
    }

    /// Turns the node at 90 °/s (about one axis) until "up" reads `target`, while the player
    /// moves in bounding strides of 240 ms: 160 ms rising off the floor at 0.6 g, 80 ms landing
    /// at 1.8 g (vertical, averaging 1 g as a stride must), so ‖a‖ is never within 0.4 g of
    /// 1 g and no sample is quasi-static — a player who never stands still between strokes.
    pub fn bound_to(&mut self, target: V3) {
        let target = unit(target);
        let c = dot(self.up, target).clamp(-1.0, 1.0);
        let n = cross(self.up, target);
        let (n, angle) = if norm(n) < 1e-9 {
            ([1.0, 0.0, 0.0], 0.0)
        } else {
            (unit(n), c.acos())
        };
        let rate = 90f64.to_radians();
        let ms = (angle / rate * 1000.0).max(120.0);
        let (start, t0) = (self.up, self.t);
        while self.t < t0 + ms {
            let theta = (rate * (self.t - t0) / 1000.0).min(angle);
            self.up = rotate(start, n, theta);
            let turning = if theta < angle { rate } else { 0.0 };
            let bound = if (self.t - t0) % 240.0 < 160.0 {
                0.6
            } else {
                1.8
            };
            self.push(scale(self.up, bound), scale(n, -turning.to_degrees()));
        }
        self.up = rotate(start, n, angle);
    }

    /// "Up" in the node's axes when `s` starts.
    pub fn start_of(s: &Stroke) -> V3 {
        let peak = s.peak_dps.to_radians();
        // Φ(t_c) = Ω W/4 for the sin² pulse (half its area).
        rotate(
            unit(s.up_at_contact),
            s.axis,
            peak * s.width_ms / 1000.0 / 4.0,
        )
    }

    /// A walk to the shuttle, the racket brought into the stroke's starting attitude, a short
    /// still spell (so the stroke is no serve, and has gravity to anchor it).
    pub fn ready(&mut self, stroke: &Stroke) {
        self.fidget(900.0);
        self.turn_to(Session::start_of(stroke), 250.0);
        self.still(500.0);
    }

    /// Each of `strokes` from the ready position ([`Session::ready`]), the node then held
    /// still `still_ms`.
    pub fn play<'a>(&mut self, strokes: impl IntoIterator<Item = &'a Stroke>, still_ms: f64) {
        for stroke in strokes {
            self.ready(stroke);
            self.stroke(stroke);
            self.still(still_ms);
        }
    }

    /// A stroke starting now; the node is left at its final attitude.
    pub fn stroke(&mut self, s: &Stroke) {
        let w = s.width_ms;
        let t0 = self.t;
        let tc = t0 + w / 2.0;
        let peak = s.peak_dps.to_radians();
        // Angle swept since t0: ∫ Ω sin²(πτ/W) = Ω (τ/2 − W sin(2πτ/W) / 4π), τ in s.
        let swept = |tau_ms: f64| {
            let (tau, ws) = (tau_ms / 1000.0, w / 1000.0);
            peak * (tau / 2.0
                - ws * (2.0 * std::f64::consts::PI * tau / ws).sin() / (4.0 * std::f64::consts::PI))
        };
        let up_c = unit(s.up_at_contact);
        let phi_c = swept(w / 2.0);
        // The attitude before the stroke: "up" at contact turned back.
        self.up = rotate(up_c, s.axis, phi_c);
        self.contacts.push(tc);
        while self.t < t0 + w {
            let tau = self.t - t0;
            let x = std::f64::consts::PI * tau / w;
            let rate = peak * x.sin().powi(2);
            let accel = peak * (2.0 * x).sin() * std::f64::consts::PI / (w / 1000.0);
            let up = rotate(up_c, s.axis, -(swept(tau) - phi_c));
            let omega = scale(s.axis, rate);
            let centripetal = cross(omega, cross(omega, s.node_offset));
            let tangential = cross(scale(s.axis, accel), s.node_offset);
            let mut f = add(up, scale(add(centripetal, tangential), 1.0 / G));
            let since = self.t - tc;
            if since >= 0.0 && s.ring_g > 0.0 {
                let ring = s.ring_g
                    * (-since / 8.0).exp()
                    * (2.0 * std::f64::consts::PI * 0.150 * since).sin();
                f[2] += ring;
            }
            self.push(f, scale(omega, 1.0f64.to_degrees()));
        }
        self.up = rotate(up_c, s.axis, -(swept(w) - phi_c));
    }
}

/// A WitMotion-type sensor of ±`fs`: values past full scale come out from the other end.
pub fn wrap(v: f64, fs: f64) -> f64 {
    (v + fs).rem_euclid(2.0 * fs) - fs
}

/// A sensor of ±`fs` that pins on the rail and then wraps (WitMotion BWT61: its MPU-6050
/// saturates, the module's output overflows): a value past full scale reads just inside the
/// opposite rail, unchanging, whatever the true value.
pub fn pin_then_wrap(v: f64, fs: f64) -> f64 {
    let rail = fs * (1.0 - 1.0 / 1024.0);
    if v > fs {
        -rail
    } else if v < -fs {
        rail
    } else {
        v
    }
}

/// A saturating sensor of ±`fs`.
pub fn clip(v: f64, fs: f64) -> f64 {
    v.clamp(-fs, fs)
}

/// Each reading through `f` per axis (gyro when `gyro`, else acceleration).
pub fn map_axis(readings: &mut [Reading], gyro: bool, f: impl Fn(f64) -> f64) {
    for r in readings {
        let v = if gyro { &mut r.gyro } else { &mut r.acc };
        *v = v.map(&f);
    }
}

/// Readings of a node whose axes are `node_of(analyser axes)`: each vector re-expressed.
pub fn remount(readings: &mut [Reading], node_of: impl Fn(V3) -> V3) {
    for r in readings {
        r.acc = node_of(r.acc);
        r.gyro = node_of(r.gyro);
    }
}
