//! Each body part's orientation over the session, as a chain of rotations about body-fixed
//! axes, on an internal 2 kHz grid.
//!
//! A piece is `q(t) = start · Exp(axis · angle(t))`: its angular velocity is `axis · angle'(t)`
//! in the body frame, exactly, so the gyroscope and the gravity the accelerometer sees always
//! agree (a sensor integrating the rate recovers the attitude). Pieces follow each other
//! without a jump: each starts where the last ended. The sensors sample this grid through
//! their own filter ([`crate::sensor`]).

use glam::{DQuat, DVec3};

/// Internal simulation rate, Hz: ten times the highest anti-alias bandwidth a node uses, so
/// the filter, not the grid, shapes what a sensor sees.
pub const INTERNAL_HZ: f64 = 2000.0;
/// One internal tick, s.
pub const TICK_S: f64 = 1.0 / INTERNAL_HZ;
/// One internal tick, ms.
pub const TICK_MS: f64 = 1000.0 / INTERNAL_HZ;

/// A rotation about one body-fixed axis over a run of ticks.
#[derive(Debug, Clone)]
struct Piece {
    first_tick: usize,
    start: DQuat,
    /// Unit axis in the body frame.
    axis: DVec3,
    /// Rate about `axis` at each tick, rad/s.
    rates: Vec<f64>,
    /// Angle turned at each tick (one more entry than `rates`: the end).
    angles: Vec<f64>,
}

impl Piece {
    fn new(first_tick: usize, start: DQuat, axis: DVec3, rates: Vec<f64>) -> Piece {
        let mut angles = Vec::with_capacity(rates.len() + 1);
        let mut angle = 0.0;
        angles.push(angle);
        for i in 0..rates.len() {
            let next = rates.get(i + 1).copied().unwrap_or(0.0);
            angle += 0.5 * (rates[i] + next) * TICK_S;
            angles.push(angle);
        }
        Piece {
            first_tick,
            start,
            axis,
            rates,
            angles,
        }
    }

    fn end(&self) -> DQuat {
        (self.start * DQuat::from_scaled_axis(self.axis * self.angles[self.rates.len()]))
            .normalize()
    }
}

/// A body part's motion at one tick.
#[derive(Debug, Clone, Copy)]
pub struct MotionState {
    /// Body → world.
    pub q: DQuat,
    /// Angular velocity in the body frame, rad/s.
    pub omega_body: DVec3,
    /// Angular acceleration in the body frame, rad/s².
    pub alpha_body: DVec3,
}

/// One body part's orientation over the whole session.
#[derive(Debug, Clone)]
pub struct Track {
    pieces: Vec<Piece>,
    end_tick: usize,
    q_end: DQuat,
}

impl Track {
    pub fn new(q0: DQuat) -> Track {
        Track {
            pieces: Vec::new(),
            end_tick: 0,
            q_end: q0,
        }
    }

    /// The first tick not yet covered.
    pub fn end_tick(&self) -> usize {
        self.end_tick
    }

    /// Orientation at [`Track::end_tick`].
    pub fn orientation(&self) -> DQuat {
        self.q_end
    }

    /// Turn about `axis` (body frame) at these rates from the current orientation.
    pub fn rotate(&mut self, axis: DVec3, rates: Vec<f64>) {
        self.rotate_from(self.q_end, axis, rates);
    }

    /// As [`Track::rotate`], from `start` — which must be the current orientation up to the
    /// rounding of a slerp that just led there (used to land exactly on a planned contact
    /// attitude).
    pub fn rotate_from(&mut self, start: DQuat, axis: DVec3, rates: Vec<f64>) {
        if rates.is_empty() {
            return;
        }
        let piece = Piece::new(self.end_tick, start, axis.normalize(), rates);
        self.end_tick += piece.rates.len();
        self.q_end = piece.end();
        self.pieces.push(piece);
    }

    /// Stay still until `tick`.
    pub fn hold_until(&mut self, tick: usize) {
        if tick > self.end_tick {
            let n = tick - self.end_tick;
            self.rotate(DVec3::X, vec![0.0; n]);
        }
    }

    /// Turn to `target` along the shortest rotation in `ticks`, easing in and out
    /// (smoothstep), then hold until `until_tick`.
    pub fn slerp_to(&mut self, target: DQuat, ticks: usize, until_tick: usize) {
        let ticks = ticks.min(until_tick.saturating_sub(self.end_tick)).max(1);
        let mut delta = (self.q_end.inverse() * target).normalize();
        if delta.w < 0.0 {
            delta = -delta;
        }
        let v = delta.to_scaled_axis();
        let angle = v.length();
        if angle < 1e-9 {
            self.hold_until(until_tick);
            return;
        }
        let duration = ticks as f64 * TICK_S;
        let rates = (0..ticks)
            .map(|i| {
                let s = (i as f64 + 0.5) / ticks as f64;
                angle * 6.0 * s * (1.0 - s) / duration
            })
            .collect();
        self.rotate(v / angle, rates);
        // The trapezoid sum lands within a hair of `target`; snap to it so the next planned
        // attitude is met exactly (the rate error this hides is below 0.01 °/s).
        self.q_end = target;
        self.hold_until(until_tick);
    }

    /// A cursor for reading the track in tick order.
    pub fn reader(&self) -> TrackReader<'_> {
        TrackReader {
            track: self,
            piece: 0,
        }
    }
}

/// Reads a [`Track`] tick by tick, in order.
pub struct TrackReader<'a> {
    track: &'a Track,
    piece: usize,
}

impl TrackReader<'_> {
    /// The state at `tick`; ticks past the end hold the last orientation.
    pub fn at(&mut self, tick: usize) -> MotionState {
        let pieces = &self.track.pieces;
        while self.piece < pieces.len()
            && tick >= pieces[self.piece].first_tick + pieces[self.piece].rates.len()
        {
            self.piece += 1;
        }
        let Some(p) = pieces.get(self.piece).filter(|p| tick >= p.first_tick) else {
            return MotionState {
                q: self.track.q_end,
                omega_body: DVec3::ZERO,
                alpha_body: DVec3::ZERO,
            };
        };
        let i = tick - p.first_tick;
        let rate = p.rates[i];
        let prev = if i > 0 { p.rates[i - 1] } else { 0.0 };
        let next = p.rates.get(i + 1).copied().unwrap_or(0.0);
        MotionState {
            q: (p.start * DQuat::from_scaled_axis(p.axis * p.angles[i])).normalize(),
            omega_body: p.axis * rate,
            alpha_body: p.axis * ((next - prev) / (2.0 * TICK_S)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrating_the_rates_reaches_the_recorded_orientation() {
        let mut track = Track::new(DQuat::IDENTITY);
        let target = DQuat::from_euler(glam::EulerRot::ZYX, 1.0, 0.4, -0.7);
        track.slerp_to(target, 1500, 2000);
        let mut reader = track.reader();
        let mut q = DQuat::IDENTITY;
        for tick in 0..2000 {
            let s = reader.at(tick);
            q = (q * DQuat::from_scaled_axis(s.omega_body * TICK_S)).normalize();
        }
        assert!(
            q.angle_between(target) < 0.01,
            "{}",
            q.angle_between(target)
        );
    }
}
