//! shuttlegate: the edge gateway beside a badminton court — the daemon.
//!
//! This crate holds every piece with IO in it; what the gateway decides lives in the pure core,
//! `shuttlegate_core` (protocol codecs, the court state machine, the analysis, the journal's
//! record format). The data path, in the order a byte from an ESP32 hub travels it:
//!
//! ```text
//! transport   WebSocket listener and one task per device socket (UDP, serial later):
//!   │         handshake auth, limits, parse into DeviceMessage, ordered typed replies
//!   └─> ingest      what each message does
//!        ├─> court       the court driver: the one owner of the court state; journals its
//!        │               events in order, pushes commands, publishes its changes
//!        ├─> journal     durable, compressed, group-committed log (fsync before any ack)
//!        └─> pipeline    the analysis task: fed durable batches, journals then shows swings,
//!             │          rallies and summaries; tells the court when a session is analysed
//!             └─> live   bounded broadcast to phones, admin, dashboard
//! journal ──> uplink     readers with cursors → MQTT, notification hub (cloud commands back in)
//! ```
//!
//! Around them: `config` (TOML + environment → validated `Settings`, one reloadable
//! `SettingsHandle`), `daemon` (wiring, start-up and shutdown order), `supervise` (task
//! registry, restarts, fatal stops), `service` (signals, two-phase shutdown), `replay` (re-run
//! the analysis from the journal), `demo` (gateway + simulated players). `main.rs` is only the
//! command line; docs/architecture.md walks the same map.

pub mod config;
pub mod court;
pub mod daemon;
pub mod demo;
pub mod device_watch;
pub mod health;
pub mod histogram;
pub mod ingest;
pub mod journal;
pub mod live;
pub mod notices;
pub mod pipeline;
pub mod replay;
pub mod service;
pub mod supervise;
pub mod time_sync;
pub mod transport;
pub mod uplink;
