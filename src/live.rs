//! Bounded fan-out of live results (swings, summaries, device status) to phones, the admin view,
//! the dashboard and the uplink.
