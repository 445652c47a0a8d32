//! Who plays, and with what: a player's style (speeds, timing, ranges drawn per player from
//! published ranges) and the device's mount. Both are what a swing model is asked with
//! (`swing.rs`), whatever the model.

use rand::Rng;
use rand::rngs::SmallRng;

/// How a player plays: speeds, timing and ranges. Drawn per player from published ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerStyle {
    /// Racket-head speed of the player's hardest smash, km/h.
    pub max_racket_kmh: f64,
    /// Share of the head speed from the hand's own translation.
    pub hand_fraction: f64,
    /// Racket pulse rise and fall σ, ms.
    pub rise_ms: f64,
    pub fall_ms: f64,
    /// Waist→shoulder, shoulder→wrist peak delays, ms.
    pub delay_ws_ms: f64,
    pub delay_sw_ms: f64,
    /// Wrist peak before contact, ms.
    pub wrist_lead_ms: f64,
    /// Full-effort segment peaks (waist, shoulder, wrist), °/s.
    pub peak_dps: [f64; 3],
    /// Full-effort ranges of motion, °.
    pub rom_deg: [f64; 3],
    /// Swing-to-swing variation (relative σ).
    pub jitter: f64,
}

impl PlayerStyle {
    /// A player between club level and elite (`strength` 0..1 sets the top speed).
    pub fn random(rng: &mut SmallRng, strength: f64) -> Self {
        let s = strength.clamp(0.0, 1.0);
        PlayerStyle {
            // Club players' smashes leave the racket at ~110–150 km/h, elite at ~200–270
            // (shuttle 1.5× that: 165–225 and 300–400 km/h).
            max_racket_kmh: 110.0 + 160.0 * s + uniform(rng, -10.0, 10.0),
            hand_fraction: uniform(rng, 0.12, 0.2),
            rise_ms: uniform(rng, 25.0, 45.0),
            fall_ms: uniform(rng, 14.0, 28.0),
            delay_ws_ms: uniform(rng, 55.0, 115.0),
            delay_sw_ms: uniform(rng, 30.0, 75.0),
            wrist_lead_ms: uniform(rng, 5.0, 25.0),
            peak_dps: [
                uniform(rng, 180.0, 420.0),
                uniform(rng, 350.0, 750.0),
                uniform(rng, 700.0, 1500.0),
            ],
            rom_deg: [
                uniform(rng, 25.0, 55.0),
                uniform(rng, 60.0, 130.0),
                uniform(rng, 25.0, 60.0),
            ],
            jitter: uniform(rng, 0.03, 0.08),
        }
    }
}

/// Parameters fixed per device that the plan needs.
#[derive(Debug, Clone, Copy)]
pub struct Mount {
    pub radius_m: f64,
    pub gyro_fs_dps: f64,
    pub acc_fs_g: f64,
}

/// A uniform draw in `lo..hi`.
pub(crate) fn uniform(rng: &mut SmallRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}
