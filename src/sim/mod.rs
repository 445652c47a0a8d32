//! Simulated ESP32 hubs: a kinematic swing model with ground truth, and WebSocket clients that
//! speak like the deployed firmware (V3.3) or the compact form.

pub mod admin;
pub mod client;
pub mod fleet;
