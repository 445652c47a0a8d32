//! Swing analysis: attitude, swing detection, stroke classification, speeds, kinetic chain,
//! rallies and session summaries. Pure: no IO, no tokio, no wall clock (time comes from samples).
