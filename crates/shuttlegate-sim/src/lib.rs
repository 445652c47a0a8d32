//! Simulated ESP32 hubs: court-level rally structure with ground truth, a kinematic swing model
//! behind a replaceable seam, both wire forms, and WebSocket clients that speak like the
//! deployed firmware (V3.3) or the compact form.
//!
//! - [`court`]: [`CourtSim`] plans rallies and renders every device's batches, with the truth.
//! - [`swing`]: the [`SwingModel`] seam: the court asks it for each swing and renders the
//!   [`PlannedSwing`] it returns. [`CourtSim::with_swing_model`] plugs in another model (the
//!   analysis is to be scored on one that shares nothing with the default).
//! - [`model`]: the default, [`KinematicModel`], and the player styles.
//! - [`truth`], [`wire`], [`client`], [`fleet`], [`admin`]: the truth records, the wire forms,
//!   the WebSocket clients and the fleets that feed a gateway in real time.

pub mod admin;
pub mod client;
pub mod court;
pub mod fleet;
pub mod model;
pub mod player;
pub mod swing;
pub mod truth;
pub mod wire;

pub use court::{CourtConfig, CourtSim, Impairments, SimDevice, SimPlayer, WireForm};
pub use model::KinematicModel;
pub use player::{Mount, PlayerStyle};
pub use swing::{PlannedSwing, SwingModel, SwingRequest};
pub use truth::{RallyTruth, SwingTruth};
pub use wire::SeedClock;
