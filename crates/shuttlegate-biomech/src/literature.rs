//! Every range the simulator draws from, with where it comes from.
//!
//! Three kinds of source, marked on each constant:
//! - **[cited]**: a figure read in the source named (the `search` tool's stored pages; each
//!   source is listed in the crate docs and in docs/analysis.md);
//! - **[derived]**: computed from cited figures, the computation given;
//! - **[assumption]**: this project's choice where no figure was found; it says so.
//!
//! None of these is one of the analyser's constants, and none was chosen by looking at what
//! the analyser does with it: the simulator scores the analyser, it is not fitted to it.

/// Racket-head speed a player reaches at most, m/s, as (mean, sd) by level.
///
/// [cited] Phomsoupha, Jeuvrey & Laffaye 2020 (Human. Sport. Medicine 20(2), doi
/// 10.14529/hsm200212), 250 Hz Vicon, 22 players: maximal racket velocity of novices 20.9 ±
/// 4.8 m/s, of experts 33.9 ± 5.8 m/s. [assumption] club players half way between.
pub const TOP_HEAD_SPEED_MS: [(f64, f64); 3] = [(20.9, 4.8), (27.4, 5.3), (33.9, 5.8)];

/// Share of the top speed a stroke class is hit with, (min, max), in
/// [smash, clear, drop, drive, net, lift, serve] order (the serve row is the forehand, high
/// serve; the low serve is [`LOW_SERVE_EFFORT`]).
///
/// [assumption] No per-stroke racket speeds were found. Only the order is from sources:
/// the smash is the fastest stroke ([cited] Towler's Loughborough data, sportmintoo.com
/// "Smashing fast: what the science says": racket-head speed is the main predictor of smash
/// speed), and a drop is prepared like a clear and differs "primarily in racket speed"
/// ([cited] *Badminton: Steps to Success*, drop-shot chapter, as stored on 123dok.com; author
/// not shown there). The ranges overlap on
/// purpose (a soft clear is as fast as a hard drop).
pub const EFFORT: [(f64, f64); 7] = [
    (0.80, 1.04),
    (0.62, 0.95),
    (0.30, 0.68),
    (0.50, 0.88),
    (0.10, 0.34),
    (0.38, 0.75),
    (0.40, 0.80),
];

/// The low (backhand) serve's share of the top speed: a push. [assumption]
pub const LOW_SERVE_EFFORT: (f64, f64) = (0.08, 0.30);

/// Backhand overhead strokes relative to forehand ones, (min, max).
///
/// [cited] Rusdiana 2021 (doi 10.26773/smj.211018, 24 university players; and the same author's
/// study of 18 elite players, on proquest.com):
/// forehand smashes are faster than backhand ones; the records it quotes are 332 km/h
/// (forehand) and 206 km/h (backhand), [derived] a ratio of 0.62. [assumption] players
/// range from that ratio to 0.92.
pub const BACKHAND_OVERHEAD_FACTOR: (f64, f64) = (0.62, 0.92);

/// Swing-to-swing spread of one player's speed for the same stroke (sd of a factor around 1).
///
/// [derived] from the intra-individual study of 19 elite players' jump smashes (Appl. Sci.
/// 2025, 15(2) 844): their three fastest and three slowest of 25 averaged 95.0 and 85.8 m/s
/// shuttle speed, ±5 % around the middle; an sd of 0.05 spans that.
pub const SPEED_JITTER_SD: f64 = 0.05;

/// Peak-time of the pelvis/trunk before contact in a racket stroke, ms.
///
/// [cited] Landlinger et al. 2010 (J Sports Sci Med 9:643, tennis forehand, 400 Hz Vicon):
/// maximum pelvis angular velocity 75 ± 8 ms (elite) and 93 ± 12 ms (high performance)
/// before impact, trunk 57 ± 4 and 75 ± 11 ms. A tennis figure: no badminton timing was
/// found. It bounds the waist node's peak (pelvis to trunk) at 45–120 ms before the
/// shoulder's for good players; [assumption] novices from 0 ms (no separation) to 140 ms.
pub const WAIST_TO_SHOULDER_MS: [(f64, f64); 3] = [(0.0, 140.0), (35.0, 120.0), (45.0, 100.0)];

/// Upper arm to forearm peak delay, ms, by level.
///
/// [assumption] around the 30–70 ms of the "textbook" chain (issue 14), wider for
/// lower levels; novices may fire nearly together.
pub const SHOULDER_TO_WRIST_MS: [(f64, f64); 3] = [(5.0, 90.0), (20.0, 75.0), (25.0, 60.0)];

/// Forearm (wrist node) peak before contact, ms. [assumption]
pub const WRIST_BEFORE_CONTACT_MS: (f64, f64) = (5.0, 35.0);

/// Segment angular-speed peaks at full effort, °/s, [waist, shoulder, wrist] × level
/// (min, max).
///
/// [assumption] No badminton segment rates were found in readable form. The order
/// (forearm > upper arm > trunk) is the proximal-to-distal sequence ([cited] Towler et al.
/// 2020, Appl. Sci. 10(4) 1248: proximal segment motions develop the distal linear
/// velocities); the forearm's share from pronation is cited in [`PRONATION_SHARE`]. The
/// forearm ranges reach past ±2000 °/s for strong players, which is what makes a wrist node
/// clip or wrap (SEED-SYSTEM.md: "most smashes and clears reach [±16 g / ±2000 °/s] on a
/// forearm").
pub const SEGMENT_PEAK_DPS: [[(f64, f64); 3]; 3] = [
    [(250.0, 450.0), (350.0, 650.0), (450.0, 900.0)],
    [(500.0, 1000.0), (700.0, 1400.0), (900.0, 1800.0)],
    [(700.0, 1400.0), (1000.0, 2000.0), (1300.0, 2800.0)],
];

/// Width (σ) of each segment's angular-speed pulse, ms, [waist, shoulder, wrist]; the rise
/// and fall widths are drawn around it (`swing::SegmentPulse`). [assumption]
pub const SEGMENT_SIGMA_MS: [(f64, f64); 3] = [(35.0, 80.0), (22.0, 50.0), (10.0, 28.0)];

/// Rotation about the forearm's long axis (pronation) relative to its perpendicular
/// rotation, (min, max).
///
/// [cited] Phomsoupha et al. 2020: racket-head velocity with radio-ulnar pronation was 16 %
/// higher than with forearm extension, and experts reached their best velocity with
/// pronation (33.9 m/s). [assumption] the long-axis rate is 0.3–1.2 times the perpendicular
/// rate on the forearm, 0–0.6 on the racket (the grip turns the racket about its shaft less).
pub const PRONATION_SHARE: (f64, f64) = (0.3, 1.2);
pub const RACKET_SHAFT_SPIN_SHARE: (f64, f64) = (0.0, 0.6);

/// Wrist-to-sweet-spot distance, m. [assumption] 0.48–0.62 m: the sweet spot near the head's
/// centre, the hand on the grip, within a racket of at most 680 mm (the limit usually quoted
/// from the BWF Laws; not re-read here).
pub const WRIST_TO_SWEET_SPOT_M: (f64, f64) = (0.48, 0.62);

/// Hand's own speed along the head's path at contact, share of head speed. [assumption]
/// ([cited] Towler et al. 2020: peak wrist joint centre velocity correlates with shuttle
/// speed, r = 0.767 — the hand's speed is a real part of the head's.)
pub const HAND_SHARE: (f64, f64) = (0.08, 0.30);

/// Shaft elevation at contact, degrees above horizontal, (min, max) per stroke class,
/// [smash, clear, drop, drive, net, lift, serve(forehand), serve(backhand)]. [assumption]
/// ([cited] for the overhead strokes: contact "high above the head, almost at full
/// extension", biomechanicsofbadminton.blogspot.com after Yap 2012.) Overlapping on purpose.
pub const ELEVATION_DEG: [(f64, f64); 8] = [
    (15.0, 78.0),
    (20.0, 80.0),
    (15.0, 80.0),
    (-35.0, 40.0),
    (-50.0, 35.0),
    (-80.0, -5.0),
    (-85.0, -30.0),
    (-70.0, -5.0),
];

/// Head path pitch at contact, degrees above horizontal, same order. [assumption]
pub const PATH_PITCH_DEG: [(f64, f64); 8] = [
    (-40.0, 0.0),
    (-5.0, 40.0),
    (-30.0, 15.0),
    (-20.0, 15.0),
    (-15.0, 45.0),
    (10.0, 65.0),
    (15.0, 60.0),
    (0.0, 40.0),
];

/// Full width at half maximum of the racket's forward angular-speed pulse, ms, for full
/// strokes and for pushes (net shots, low serves). [assumption] ([cited] Towler et al. 2020:
/// shorter acceleration phases go with faster smashes, r = −0.543.) Pushes reach 300 ms.
pub const FORWARD_FWHM_MS: (f64, f64) = (40.0, 120.0);
pub const PUSH_FWHM_MS: (f64, f64) = (80.0, 300.0);

/// Peak of the contact transient on the racket node, g per m/s of head speed, and its
/// duration, ms. [assumption] ([derived] order of magnitude: a 5 g shuttle leaving at ~60
/// m/s gives the racket's ~90 g effective mass a Δv of ~3 m/s within 1–2 ms: 150–300 g. The
/// shuttle's mass, 4.74–5.50 g, is as docs/analysis.md quotes BWF Law 2.)
pub const CONTACT_G_PER_MS: (f64, f64) = (1.0, 4.0);
pub const CONTACT_MS: (f64, f64) = (1.0, 2.5);

/// Frame ring after contact: frequency Hz, decay ms, amplitude g. [assumption]
pub const RING_HZ: (f64, f64) = (90.0, 250.0);
pub const RING_DECAY_MS: (f64, f64) = (5.0, 15.0);
pub const RING_G: (f64, f64) = (1.0, 8.0);

/// Uncalibrated accelerometer: scale and offset so a still node reads about 1.3 g.
/// [cited] SEED-SYSTEM.md: "an uncalibrated accelerometer reads about 1.3 g at rest"
/// (WitMotion/MPU-6050 recordings). [assumption] scale 1.22–1.36, offsets ±0.06 g.
pub const UNCALIBRATED_SCALE: (f64, f64) = (1.22, 1.36);

/// Anti-alias filter bandwidth by output rate, Hz. [assumption] the MPU-6050's digital
/// low-pass settings (260, 184, 94, 44, 21 Hz), the highest below half the output rate.
pub const DLPF_HZ: [f64; 5] = [260.0, 184.0, 94.0, 44.0, 21.0];

/// The rally: how many strokes one player plays in it (inclusive range), and the pause
/// between rallies, ms. [derived] from elite singles: 8.7–10.4 shots per rally, shared by the
/// two players (Iizuka et al. 2020, *Sports* 8(2) 19, doi:10.3390/sports8020019): 4–5 each;
/// [assumption] club rallies are often shorter and doubles partners share the shots, so 1–8.
/// [cited] rest between rallies in elite men's singles 20.4 ± 0.9 s (2006) to 29.7 ± 3.3 s
/// (2017) (Hoffmann & Vogt 2023, *Int. J. Perform. Anal. Sport*, doi:10.1080/
/// 24748668.2023.2272121); [assumption] recreational play also pauses less, so 10–30 s.
pub const PLAYER_STROKES_PER_RALLY: (u32, u32) = (1, 8);
pub const PAUSE_BETWEEN_RALLIES_MS: (f64, f64) = (10_000.0, 30_000.0);
/// One player's consecutive strokes within a rally, ms apart. [derived] a rally's shots
/// come about one a second in elite singles (the sources above: 8.7–10.4 shots per rally in
/// women's singles, rallies of 7.5–12.3 s in men's singles), so a
/// player strikes every ~2 s; [assumption] up to 4.5 s for high clears and lifts and for a
/// doubles player whose partner takes a shot.
pub const STROKE_GAP_MS: (f64, f64) = (1_700.0, 4_500.0);
/// Share of rallies the player serves. [assumption] the winner of a rally serves the next
/// (the Laws of Badminton); between evenly matched players about half.
pub const SERVING_SHARE: f64 = 0.5;
