//! shuttlegate: the edge gateway beside a badminton court.
//!
//! The data path, in the order a byte from an ESP32 hub travels it:
//!
//! ```text
//! transport (WebSocket today; UDP, serial later)
//!   └─> protocol   (wire messages ⇄ typed messages; pure codecs)
//!        └─> court  (sans-IO state: devices, sessions, command queues)
//!             └─> journal (durable, compressed, group-committed log)
//!                  ├─> uplink   (MQTT, notification hub: readers with cursors)
//!                  └─> analysis (swings, kinetic chain, rallies; pure) ─> live fan-out
//! ```
//!
//! Everything with IO in it (`transport`, `uplink`, `daemon`, `service`) is a thin async
//! driver over a pure core (`protocol`, `court`, `journal`'s record format, `analysis`), so the
//! cores are testable without sockets or clocks. `main.rs` is only the command line.

pub mod analysis;
pub mod batch;
pub mod bench;
pub mod config;
pub mod court;
pub mod daemon;
pub mod demo;
pub mod ingest;
pub mod journal;
pub mod live;
pub mod protocol;
pub mod publish;
pub mod replay;
pub mod restore;
pub mod resume;
pub mod service;
pub mod sim;
pub mod swings;
pub mod transport;
pub mod uplink;
