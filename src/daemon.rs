//! The daemon: wires config, journal, court, transport, analysis and uplink into one process.
