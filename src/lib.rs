//! shuttlegate: the edge gateway beside a badminton court.
//!
//! This crate is the daemon: every piece with IO in it, over the pure core in
//! `shuttlegate_core` (protocol codecs, court state machine, analysis, journal record format).

pub mod config;
pub mod court;
pub mod daemon;
pub mod demo;
pub mod ingest;
pub mod journal;
pub mod live;
pub mod pipeline;
pub mod replay;
pub mod service;
pub mod supervise;
pub mod transport;
pub mod uplink;
