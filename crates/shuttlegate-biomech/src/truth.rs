//! What really happened in a simulated session, kept beside the wire messages.
//!
//! The stroke, side and height class of a swing are the scenario's: what the simulated player
//! meant to play. Nothing here is computed by a threshold on the generated signals; speeds,
//! peaks and times are the simulated motion's own values before any sensor touches them.

/// Stroke the player meant to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StrokeClass {
    Smash,
    Clear,
    Drop,
    Drive,
    Net,
    Lift,
    Serve,
}

impl StrokeClass {
    pub const ALL: [StrokeClass; 7] = [
        StrokeClass::Smash,
        StrokeClass::Clear,
        StrokeClass::Drop,
        StrokeClass::Drive,
        StrokeClass::Net,
        StrokeClass::Lift,
        StrokeClass::Serve,
    ];

    /// The stroke's name as the SPEC's swing JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            StrokeClass::Smash => "smash",
            StrokeClass::Clear => "clear",
            StrokeClass::Drop => "drop",
            StrokeClass::Drive => "drive",
            StrokeClass::Net => "net",
            StrokeClass::Lift => "lift",
            StrokeClass::Serve => "serve",
        }
    }

    /// Index into the per-class tables of [`crate::literature`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Where the stroke is played, by definition of the stroke (not measured): smashes,
    /// clears and drops overhead; lifts and serves underarm; drives and net shots neither
    /// for certain (a net shot is played at or below the tape, a drive at any height near the
    /// body), so they are not scored on height.
    pub fn height_class(self) -> Option<HeightClass> {
        match self {
            StrokeClass::Smash | StrokeClass::Clear | StrokeClass::Drop => {
                Some(HeightClass::Overhead)
            }
            StrokeClass::Lift | StrokeClass::Serve => Some(HeightClass::Underarm),
            StrokeClass::Drive | StrokeClass::Net => None,
        }
    }
}

/// Which face the player meant to hit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Forehand,
    Backhand,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Forehand => "forehand",
            Side::Backhand => "backhand",
        }
    }
}

/// Overhead or underarm, from the stroke class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeightClass {
    Overhead,
    Underarm,
}

impl HeightClass {
    pub fn name(self) -> &'static str {
        match self {
            HeightClass::Overhead => "overhead",
            HeightClass::Underarm => "underarm",
        }
    }
}

/// A player's level: sets speed capacity, timing spread, pulse widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Novice,
    Club,
    Expert,
}

impl Level {
    pub(crate) fn index(self) -> usize {
        self as usize
    }
    pub fn name(self) -> &'static str {
        match self {
            Level::Novice => "novice",
            Level::Club => "club",
            Level::Expert => "expert",
        }
    }
}

/// Family of the racket's forward angular-speed profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Gaussian rise and fall of different widths.
    SkewedGaussian,
    /// A gamma-like pulse: fast rise, long tail.
    Gamma,
    /// An upper-arm lobe before the forearm's: two peaks in |ω|.
    TwoLobe,
    /// Raised-cosine rise, plateau, fall: a push.
    FlatTop,
}

/// Kinetic-chain truth: the segments' true peak ‖ω‖ and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainTruth {
    /// Peak ‖ω‖ of waist, shoulder (upper arm) and wrist (forearm) nodes, °/s.
    pub peak_dps: [f64; 3],
    /// Time of each peak, unix ms.
    pub peak_t_ms: [f64; 3],
    /// Waist → shoulder and shoulder → wrist peak delays, ms.
    pub delay_ms: [f64; 2],
}

/// One swing as the player meant and made it.
#[derive(Debug, Clone, PartialEq)]
pub struct SwingTruth {
    /// Contact (or, for an air swing, the instant it was meant for), unix ms.
    pub t_contact_ms: f64,
    pub stroke: StrokeClass,
    pub side: Side,
    /// The racket met a shuttle (false: a shadow swing).
    pub impact: bool,
    /// Racket-head (sweet spot) speed at contact, km/h.
    pub racket_speed_kmh: f64,
    /// Peak angular speed of the racket perpendicular to its shaft, °/s.
    pub racket_peak_dps: f64,
    /// The hand's (the turn's pivot's) own speed along the head's path at contact, km/h:
    /// the part of the head speed the turn does not give (for breakdowns, not a label).
    pub hand_speed_kmh: f64,
    /// The device carried waist, shoulder and wrist nodes.
    pub chain: Option<ChainTruth>,
    pub footwork: bool,
    pub jump: bool,
    pub backswing: bool,
    pub shape: Shape,
    /// The racket shaft's elevation above the horizontal at contact, ° (the attitude the
    /// swing was rendered with; for breakdowns of the analyser's height, not a label).
    pub elevation_deg: f64,
    /// The racket head path's pitch above the horizontal at contact, °.
    pub pitch_deg: f64,
}

/// A stretch of non-stroke motion (walking, fetching the shuttle, twirling the racket,
/// standing): any swing found in it is a false one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestWindow {
    pub start_ms: f64,
    pub end_ms: f64,
}

impl RestWindow {
    pub fn duration_ms(&self) -> f64 {
        self.end_ms - self.start_ms
    }
    pub fn contains(&self, t_ms: f64) -> bool {
        (self.start_ms..self.end_ms).contains(&t_ms)
    }
}

/// What the simulated player was doing in a stretch of a rest window: for breaking the false
/// swings down by the motion that made them (`eval --verbose`); the analyser never sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RestActivity {
    /// Held still (the opening spell, and a block's remainder).
    Still,
    /// The racket moved slowly to another attitude and held there.
    Wander,
    /// The racket spun about its shaft in the fingers.
    Twirl,
    /// The head dipped to the floor to pick up the shuttle, tapped it, and came back.
    Scoop,
    /// Walking: the body's steps, the racket carried.
    Walk,
}

impl RestActivity {
    pub fn name(self) -> &'static str {
        match self {
            RestActivity::Still => "still",
            RestActivity::Wander => "wander",
            RestActivity::Twirl => "twirl",
            RestActivity::Scoop => "scoop",
            RestActivity::Walk => "walk",
        }
    }
}

/// One activity within a rest window, unix ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestSpan {
    pub activity: RestActivity,
    pub start_ms: f64,
    pub end_ms: f64,
}
