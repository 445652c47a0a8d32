//! An independent badminton swing simulator: the truth shuttlegate's swing analysis is scored
//! against, made without it.
//!
//! **Independence.** This crate depends on no shuttlegate crate (see its Cargo.toml): it
//! cannot import the analysis, its types, its signal models or its constants, and the crate
//! boundary is the proof. It shares none of the analyser's numbers either — no height
//! cut-offs, no smash pitch, no checked-swing ratio, no net-speed bound, no shuttle/racket
//! ratio, no swing width limit, no detection thresholds, no rally gap. Every label
//! (stroke, side, overhead/underarm) is the stroke the simulated player *meant*, drawn
//! before any signal exists; no threshold is ever applied to generated values to label them.
//!
//! **What it models** (module by module):
//!
//! ```text
//! literature.rs  every range drawn, each with its source or marked as an assumption
//! swing.rs       players (novice / club / expert) and stroke plans; the racket's angular-
//!                speed profile in four families (skewed Gaussian, gamma-like, two-lobe,
//!                flat-top), with or without backswing and follow-through
//! motion.rs      each body part's attitude as rotations about body-fixed axes on a 2 kHz
//!                grid (gyro and gravity always agree)
//! session.rs     the session: an opening still spell, then rallies — the player's strokes
//!                in each (a serve opens the rallies the player serves), with or without
//!                footwork or a jump, and the pause before the next (walking, racket
//!                twirls, scoops) — and the device: 4 nodes (waist, shoulder, wrist,
//!                racket), racket-only, wrist-only or forearm
//! sensor.rs      mount rotation, bias, scale, uncalibrated accelerometers (~1.3 g at rest),
//!                anti-alias filter, clipping or WitMotion-style sign wrap, noise, int16
//!                quantisation, 50–1000 Hz and a rate change mid-session
//! wire.rs        the V3.3 seed form (HHMMSSmmm stamps, 30 interleaved frames) and the
//!                compact form, as JSON text
//! truth.rs       per swing: contact time, stroke, side, impact, racket-head speed, chain
//!                peaks and times; rest windows
//! ```
//!
//! **Sources** (read through this project's search tool; ranges without a source are marked
//! `[assumption]` in [`literature`]):
//! - Phomsoupha M., Jeuvrey J., Laffaye G. (2020). Radio-ulnar pronation vs forearm extension:
//!   which the best to reach the maximal badminton racket velocity? *Human. Sport. Medicine*
//!   20(2). doi:10.14529/hsm200212 — racket-head speed by level; pronation's share.
//! - Towler H. et al. (2020). A correlational analysis of shuttlecock speed kinematic
//!   determinants in the badminton jump smash. *Appl. Sci.* 10(4) 1248 — proximal segments
//!   drive distal speed; shorter acceleration phases go with faster smashes; the hand's speed.
//! - Intra-individual variation in the jump smash for elite Malaysian male badminton players
//!   (2025). *Appl. Sci.* 15(2) 844 — swing-to-swing speed spread.
//! - Landlinger J. et al. (2010). Key factors and timing patterns in the tennis forehand of
//!   different skill levels. *J Sports Sci Med* 9:643 — pelvis and trunk peak timing before
//!   impact (tennis; no badminton timing was found).
//! - Rusdiana A. (2021). Movement mechanism differences of badminton overhead forehand and
//!   backhand smash stroke techniques. doi:10.26773/smj.211018 — backhand
//!   overheads slower than forehand ones (record speeds quoted there).
//! - *Badminton: Steps to Success*, drop-shot chapter (123dok.com copy) — a drop differs from a
//!   clear "primarily in racket speed".
//! - Iizuka T. et al. (2020). Changes in duration and intensity of the world's top-level
//!   badminton matches. *Sports* 8(2) 19. doi:10.3390/sports8020019 — shots per rally.
//! - Hoffmann D., Vogt T. (2023). Does a decade of the rally-point scoring system impact the
//!   characteristics of elite badminton matches? *Int. J. Perform. Anal. Sport*.
//!   doi:10.1080/24748668.2023.2272121 — rally and rest times.
//! - The project's SEED-SYSTEM notes — WitMotion sign wrap, ~1.3 g uncalibrated rest reading,
//!   V3.3 wire forms and node ids.
//!
//! Deterministic: a session is a function of its seed.

pub mod literature;
pub mod motion;
pub mod sensor;
pub mod session;
pub mod swing;
pub mod truth;
pub mod wire;

pub use sensor::{Overflow, RateSchedule, SensorModel};
pub use session::{DeviceSetup, NodeSetup, Placement, Segment, Session, SessionOptions, generate};
pub use truth::{
    ChainTruth, HeightClass, Level, RestActivity, RestSpan, RestWindow, Shape, Side, StrokeClass,
    SwingTruth,
};
pub use wire::{WireForm, WireMessage};
