//! The journal: the durable, compressed, crash-safe store-and-forward log under `state_dir`.
//!
//! (Design document to be written with the implementation: on-disk format, invariants, commit
//! protocol, deletion, recovery.)

mod record;

pub use record::{Document, Record, RecordBody, RecordKind};
