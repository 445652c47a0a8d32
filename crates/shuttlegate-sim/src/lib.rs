//! Simulated ESP32 hubs: a kinematic swing model with ground truth, court-level rally
//! structure, both wire forms, the evaluation that scores the analyser against the truth, and
//! WebSocket clients that speak like the deployed firmware (V3.3) or the compact form.

pub mod admin;
pub mod client;
pub mod court;
pub mod fleet;
pub mod model;
pub mod truth;
pub mod wire;

pub use court::{CourtConfig, CourtSim, Impairments, SimDevice, SimPlayer, WireForm};
pub use model::PlayerStyle;
pub use truth::{RallyTruth, SwingTruth};
pub use wire::SeedClock;
