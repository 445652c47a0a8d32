//! Benchmarks that need the whole daemon (`shuttlegate-tools bench …`). Figures of the pure parts
//! (journal, analysis) are `cargo bench` targets under `benches/`.

pub mod device;
pub mod ingest;
pub mod phones;
pub mod swings;
pub mod uplink;
