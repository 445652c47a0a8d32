//! One simulated player's session: the timeline (swings, rest, footwork), the four body
//! parts' motion, the device's nodes rendered through their sensors, and the wire messages.

use glam::{DQuat, DVec3, EulerRot};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::literature as lit;
use crate::motion::{TICK_MS, Track};
use crate::sensor::{G, NodeSampler, RateSchedule, Reading, SensorHabits, SensorModel};
use crate::swing::{self, Player, RacketProfile, StrokePlan, pick, uniform};
use crate::truth::{
    ChainTruth, Level, RestActivity, RestSpan, RestWindow, Side, StrokeClass, SwingTruth,
};
use crate::wire::{self, WireForm, WireMessage};

/// Where a device's nodes are worn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Waist, shoulder (upper arm), wrist and racket: the V3.3 hub.
    FourNode,
    /// One node on the racket.
    RacketOnly,
    /// One node on the wrist (the distal forearm).
    WristOnly,
    /// One node half way up the forearm, sent as the wrist node.
    Forearm,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::FourNode => "4-node",
            Placement::RacketOnly => "racket-only",
            Placement::WristOnly => "wrist-only",
            Placement::Forearm => "forearm",
        }
    }
}

/// A body segment a node can sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    Waist,
    Shoulder,
    Wrist,
    Forearm,
    Racket,
}

impl Segment {
    /// The V3.3 firmware's node id for the segment (a forearm node is sent as the wrist).
    pub fn sensor_id(self) -> u32 {
        match self {
            Segment::Waist => 1,
            Segment::Shoulder => 2,
            Segment::Wrist | Segment::Forearm => 3,
            Segment::Racket => 4,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub seed: u64,
    pub duration_s: f64,
    /// Every node at this rate, no change; `None`: a rate drawn from 50–1000 Hz, changed
    /// mid-session on some devices.
    pub rate_hz: Option<f64>,
    /// `None`: drawn.
    pub placement: Option<Placement>,
}

/// One node as set up on the device.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    pub segment: Segment,
    pub sensor: SensorModel,
}

/// The device and its player.
#[derive(Debug, Clone)]
pub struct DeviceSetup {
    pub device_code: String,
    pub session_id: String,
    pub placement: Placement,
    pub form: WireForm,
    pub level: Level,
    pub nodes: Vec<NodeSetup>,
    pub rates: RateSchedule,
    /// Wrist to sweet spot, m (what a venue would measure and configure).
    pub reach_m: f64,
}

/// A reading whose int16 count wrapped: its time (the node's clock, as sent) and its wraps per
/// channel ([`Reading::wraps`]).
pub type WrappedReading = (f64, [i8; 6]);

/// A simulated session: what the device sent, and what really happened.
#[derive(Debug, Clone)]
pub struct Session {
    pub device: DeviceSetup,
    pub start_ms: f64,
    pub end_ms: f64,
    /// In the order the gateway receives them; the last is `upload_complete`.
    pub messages: Vec<WireMessage>,
    pub swings: Vec<SwingTruth>,
    pub rests: Vec<RestWindow>,
    /// What the player did within the rest windows, in time order.
    pub rest_activities: Vec<RestSpan>,
    /// Per node (`sensor_id`), the readings whose int16 count wrapped: each one's time (the
    /// node's clock, as sent) and its wraps per channel ([`Reading::wraps`]); readings not
    /// listed did not wrap. Truth for the evaluation's wrap breakdown.
    pub wrap_truth: Vec<(u32, Vec<WrappedReading>)>,
}

/// The body parts' motion tracks and the world-frame linear accelerations on the grid.
struct Body {
    waist: Track,
    shoulder: Track,
    forearm: Track,
    racket: Track,
    /// Whole-body linear acceleration (footwork, jumps), m/s², world.
    body_lin: Vec<DVec3>,
    /// The hand's own acceleration along the stroke, m/s², world.
    hand_lin: Vec<DVec3>,
    /// Contact transients and taps on the racket, m/s², world.
    racket_extra: Vec<DVec3>,
    rest_pose: DQuat,
    /// Each rest activity and its ticks (start, end), as played.
    activities: Vec<(RestActivity, usize, usize)>,
}

const SWING_PRE_MS: f64 = 600.0;
const SWING_POST_MS: f64 = 450.0;
const BODY_PRE_MS: f64 = 700.0;
const BODY_POST_MS: f64 = 400.0;

fn ticks(ms: f64) -> usize {
    (ms / TICK_MS).round().max(0.0) as usize
}

/// Simulates one session, deterministically from `options.seed`.
pub fn generate(options: &SessionOptions) -> Session {
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let mut noise_rng = SmallRng::seed_from_u64(options.seed ^ 0x9e37_79b9_7f4a_7c15);
    let level = pick(
        &mut rng,
        &[Level::Novice, Level::Club, Level::Expert],
        &[0.3, 0.4, 0.3],
    );
    let player = Player::draw(&mut rng, level);
    let placement = options.placement.unwrap_or_else(|| {
        pick(
            &mut rng,
            &[
                Placement::FourNode,
                Placement::RacketOnly,
                Placement::WristOnly,
                Placement::Forearm,
            ],
            &[0.4, 0.3, 0.15, 0.15],
        )
    });
    let form = if rng.random_bool(if placement == Placement::FourNode {
        0.7
    } else {
        0.3
    }) {
        WireForm::SeedV33
    } else {
        WireForm::Compact
    };
    let duration_ms = options.duration_s * 1000.0;
    let rates = rate_schedule(&mut rng, options.rate_hz, duration_ms);
    let habits = SensorHabits::draw(&mut rng);
    let segments: Vec<Segment> = match placement {
        Placement::FourNode => vec![
            Segment::Waist,
            Segment::Shoulder,
            Segment::Wrist,
            Segment::Racket,
        ],
        Placement::RacketOnly => vec![Segment::Racket],
        Placement::WristOnly => vec![Segment::Wrist],
        Placement::Forearm => vec![Segment::Forearm],
    };
    let nodes: Vec<NodeSetup> = segments
        .iter()
        .map(|&segment| NodeSetup {
            segment,
            sensor: SensorModel::draw(&mut rng, &habits),
        })
        .collect();
    // A time of day that moves with the seed (V3.3 stamps are times of day).
    let start_ms = 1_795_000_000_000.0 + (options.seed % 997) as f64 * 3_600_000.0 / 7.0;
    let n_ticks = ticks(duration_ms);
    let mut body = Body::new(&mut rng, n_ticks);
    let (swings, rests) = body.play(&mut rng, &player, placement, n_ticks, start_ms);
    let device = DeviceSetup {
        device_code: format!("bm-{}", options.seed),
        session_id: format!("bm-{}-1", options.seed),
        placement,
        form,
        level,
        nodes,
        rates,
        reach_m: player.reach_m,
    };
    let readings = render(&mut rng, &mut noise_rng, &body, &device, start_ms, n_ticks);
    let wrap_truth = wrapped_readings(&readings);
    let messages = encode(&mut noise_rng, &device, readings, start_ms + duration_ms);
    let rest_activities = body
        .activities
        .iter()
        .map(|&(activity, from, to)| RestSpan {
            activity,
            start_ms: start_ms + from as f64 * TICK_MS,
            end_ms: start_ms + to as f64 * TICK_MS,
        })
        .collect();
    Session {
        device,
        start_ms,
        end_ms: start_ms + duration_ms,
        messages,
        swings,
        rests,
        rest_activities,
        wrap_truth,
    }
}

/// Per node, the readings whose count wrapped ([`Session::wrap_truth`]).
fn wrapped_readings(readings: &[(u32, Vec<Reading>)]) -> Vec<(u32, Vec<WrappedReading>)> {
    readings
        .iter()
        .map(|(id, node)| {
            let wrapped = node
                .iter()
                .filter(|r| r.wraps != [0; 6])
                .map(|r| (r.t_ms, r.wraps))
                .collect();
            (*id, wrapped)
        })
        .collect()
}

fn rate_schedule(rng: &mut SmallRng, fixed: Option<f64>, duration_ms: f64) -> RateSchedule {
    if let Some(rate) = fixed {
        return RateSchedule(vec![(0.0, rate)]);
    }
    let choices = [50.0, 100.0, 200.0, 500.0, 1000.0];
    let weights = [0.15, 0.3, 0.3, 0.15, 0.1];
    let first = pick(rng, &choices, &weights);
    let mut schedule = vec![(0.0, first)];
    if rng.random_bool(0.25) {
        let second = loop {
            let r = pick(rng, &choices, &weights);
            if r != first {
                break r;
            }
        };
        schedule.push((duration_ms * rng.random_range(0.4..0.6), second));
    }
    RateSchedule(schedule)
}

/// The racket's attitude at contact: shaft at `elevation`, head moving along a path at
/// `pitch`, the side's face leading. Body frame: x along the shaft, z the forehand face normal.
fn contact_attitude(plan: &StrokePlan) -> (DQuat, DVec3) {
    let (e, h) = (plan.elevation_deg.to_radians(), plan.heading_rad);
    let shaft = DVec3::new(e.cos() * h.cos(), e.cos() * h.sin(), e.sin());
    let across = DVec3::new(-h.sin(), h.cos(), 0.0);
    let up = (DVec3::Z - shaft * shaft.z).normalize_or(across.cross(shaft));
    let sin_beta = (plan.pitch_deg.to_radians().sin() / e.cos().max(1e-3)).clamp(-0.95, 0.95);
    let path = (across * (1.0 - sin_beta * sin_beta).sqrt() + up * sin_beta).normalize();
    let face = match plan.side {
        Side::Forehand => path,
        Side::Backhand => -path,
    };
    let y = face.cross(shaft);
    let q = DQuat::from_mat3(&glam::DMat3::from_cols(shaft, y, face)).normalize();
    (q, path)
}

/// The shaft's elevation above the horizontal at contact, °, from the racket's attitude:
/// recorded in the truth for breakdowns, not used to render anything.
fn shaft_elevation_deg(r_contact: DQuat) -> f64 {
    (r_contact * DVec3::X)
        .z
        .clamp(-1.0, 1.0)
        .asin()
        .to_degrees()
}

impl Body {
    fn new(rng: &mut SmallRng, n: usize) -> Body {
        let pose = |rng: &mut SmallRng| {
            DQuat::from_euler(
                EulerRot::ZYX,
                rng.random_range(-3.1..3.1),
                rng.random_range(-0.6..0.6),
                rng.random_range(-3.1..3.1),
            )
        };
        let rest_pose = pose(rng);
        Body {
            waist: Track::new(DQuat::from_rotation_z(rng.random_range(-3.1..3.1))),
            shoulder: Track::new(pose(rng)),
            forearm: Track::new(pose(rng)),
            racket: Track::new(rest_pose),
            body_lin: vec![DVec3::ZERO; n],
            hand_lin: vec![DVec3::ZERO; n],
            racket_extra: vec![DVec3::ZERO; n],
            rest_pose,
            activities: Vec::new(),
        }
    }

    /// The whole session's timeline: an opening still spell, then rallies and the pauses
    /// between them.
    fn play(
        &mut self,
        rng: &mut SmallRng,
        player: &Player,
        placement: Placement,
        n: usize,
        start_ms: f64,
    ) -> (Vec<SwingTruth>, Vec<RestWindow>) {
        let mut swings = Vec::new();
        let mut rests = Vec::new();
        let opening = ticks(rng.random_range(3000.0..5000.0));
        self.hold_all(opening);
        self.activities.push((RestActivity::Still, 0, opening));
        rests.push(RestWindow {
            start_ms,
            end_ms: start_ms + opening as f64 * TICK_MS,
        });
        let end_margin = ticks(2500.0);
        // Rallies, each the player's strokes in it, then the pause before the next serve.
        'session: loop {
            let serving = rng.random_bool(lit::SERVING_SHARE);
            let (fewest, most) = lit::PLAYER_STROKES_PER_RALLY;
            for k in 0..rng.random_range(fewest..=most) {
                let now = self.end_tick();
                let gap = ticks(uniform(rng, lit::STROKE_GAP_MS));
                let contact = now + gap.max(ticks(BODY_PRE_MS + 500.0));
                if contact + ticks(SWING_POST_MS) + end_margin >= n {
                    break 'session;
                }
                let class = if serving && k == 0 {
                    StrokeClass::Serve
                } else {
                    swing::rally_stroke(rng)
                };
                let plan = swing::plan(rng, player, class, true);
                swings.push(self.stroke(rng, player, placement, &plan, contact, start_ms));
            }
            let now = self.end_tick();
            if now + end_margin >= n {
                break;
            }
            let pause =
                ticks(uniform(rng, lit::PAUSE_BETWEEN_RALLIES_MS)).min(n - end_margin - now);
            self.rest_block(rng, now + pause);
            rests.push(RestWindow {
                start_ms: start_ms + now as f64 * TICK_MS,
                end_ms: start_ms + (now + pause) as f64 * TICK_MS,
            });
        }
        let end = n;
        self.hold_all(end);
        (swings, rests)
    }

    fn end_tick(&self) -> usize {
        [
            self.waist.end_tick(),
            self.shoulder.end_tick(),
            self.forearm.end_tick(),
            self.racket.end_tick(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    fn hold_all(&mut self, until: usize) {
        for t in [
            &mut self.waist,
            &mut self.shoulder,
            &mut self.forearm,
            &mut self.racket,
        ] {
            t.hold_until(until);
        }
    }

    /// Renders one stroke around `contact` (a tick) and returns its truth.
    fn stroke(
        &mut self,
        rng: &mut SmallRng,
        player: &Player,
        placement: Placement,
        plan: &StrokePlan,
        contact: usize,
        start_ms: f64,
    ) -> SwingTruth {
        let t_contact_ms = start_ms + contact as f64 * TICK_MS;
        let (r_contact, path) = contact_attitude(plan);
        let perp = match plan.side {
            Side::Forehand => -DVec3::Y,
            Side::Backhand => DVec3::Y,
        };
        // The racket.
        let profile = RacketProfile::draw(rng, plan);
        let first = contact - ticks(SWING_PRE_MS);
        let n = ticks(SWING_PRE_MS + SWING_POST_MS);
        let i_contact = contact - first;
        let mut contact_from_peak = plan.contact_from_peak_ms;
        if profile.value(contact_from_peak) < 0.3 {
            contact_from_peak = 0.0;
        }
        let mut shape: Vec<f64> = (0..n)
            .map(|i| profile.value((i as f64 - i_contact as f64) * TICK_MS + contact_from_peak))
            .collect();
        swing::taper(&mut shape, 60.0);
        let spin = plan.shaft_spin;
        let axis = (DVec3::X * spin + perp).normalize();
        let hand_sigma: f64 = rng.random_range(40.0..90.0);
        let hand_lead: f64 = rng.random_range(0.0..25.0);
        let hand_peak = plan.hand_share * plan.head_speed_ms;
        let hand_at_contact =
            hand_peak * (-(hand_lead * hand_lead) / (2.0 * hand_sigma * hand_sigma)).exp();
        let perp_rate_needed = (plan.head_speed_ms - hand_at_contact) / player.reach_m;
        let peak = perp_rate_needed * (1.0 + spin * spin).sqrt() / shape[i_contact];
        let rates: Vec<f64> = shape.iter().map(|g| g * peak).collect();
        let racket_peak_dps = swing::peak_of(&rates).0.to_degrees() / (1.0 + spin * spin).sqrt();
        land(
            &mut self.racket,
            rng,
            r_contact,
            axis,
            rates,
            first,
            i_contact,
        );
        // The hand's own speed along the path: a Gaussian pulse; its acceleration.
        let hand_centre = contact as f64 * TICK_MS - hand_lead;
        let span = ticks(4.0 * hand_sigma);
        for k in contact.saturating_sub(span)..(contact + span).min(self.hand_lin.len()) {
            let dt = k as f64 * TICK_MS - hand_centre;
            let g = (-(dt * dt) / (2.0 * hand_sigma * hand_sigma)).exp();
            let dv_dt = -hand_peak * dt / (hand_sigma * hand_sigma) * g * 1000.0;
            self.hand_lin[k] += path * dv_dt;
        }
        if plan.impact {
            self.contact_transient(rng, contact, path, r_contact * DVec3::Z, plan.head_speed_ms);
        }
        if plan.footwork {
            self.footwork(rng, contact);
        }
        if plan.jump {
            self.jump(rng, contact);
        }
        // The forearm (wrist node), upper arm (shoulder node), trunk (waist node).
        let swing_axis_world = r_contact * perp;
        let r_forearm = DQuat::from_axis_angle(swing_axis_world, -plan.cock_rad) * r_contact;
        let r_upper = DQuat::from_axis_angle(
            swing_axis_world,
            -plan.cock_rad - rng.random_range(0.4..1.2),
        ) * r_contact;
        let turn = if plan.side == Side::Forehand {
            1.0
        } else {
            -1.0
        };
        let r_waist = DQuat::from_rotation_z(plan.heading_rad + std::f64::consts::FRAC_PI_2)
            * DQuat::from_rotation_x(rng.random_range(-0.25..0.25));
        let waist_tilt = DVec3::new(
            rng.random_range(-0.4..0.4),
            rng.random_range(-0.4..0.4),
            0.0,
        );
        let axes = [
            (DVec3::Z + waist_tilt).normalize() * turn,
            (DVec3::X * rng.random_range(0.4..1.2) + perp).normalize(),
            (DVec3::X * plan.pronation + perp).normalize(),
        ];
        let attitudes = [r_waist, r_upper, r_forearm];
        let b_first = contact - ticks(BODY_PRE_MS);
        let b_n = ticks(BODY_PRE_MS + BODY_POST_MS);
        let t0_rel = -BODY_PRE_MS;
        let mut chain = ChainTruth {
            peak_dps: [0.0; 3],
            peak_t_ms: [0.0; 3],
            delay_ms: [0.0; 2],
        };
        for s in 0..3 {
            let pulse = swing::SegmentPulse::draw(
                rng,
                plan.segment_t_ms[s],
                plan.segment_sigma_ms[s],
                plan.segment_peak_dps[s],
            );
            let mut rates = pulse.rates(b_n, t0_rel);
            swing::taper(&mut rates, 80.0);
            let (peak_rad, at_ms) = swing::peak_of(&rates);
            chain.peak_dps[s] = peak_rad.to_degrees();
            chain.peak_t_ms[s] = start_ms + b_first as f64 * TICK_MS + at_ms;
            let track = match s {
                0 => &mut self.waist,
                1 => &mut self.shoulder,
                _ => &mut self.forearm,
            };
            land(
                track,
                rng,
                attitudes[s],
                axes[s],
                rates,
                b_first,
                contact - b_first,
            );
        }
        chain.delay_ms = [
            chain.peak_t_ms[1] - chain.peak_t_ms[0],
            chain.peak_t_ms[2] - chain.peak_t_ms[1],
        ];
        SwingTruth {
            t_contact_ms,
            stroke: plan.class,
            side: plan.side,
            impact: plan.impact,
            racket_speed_kmh: plan.head_speed_ms * 3.6,
            racket_peak_dps,
            hand_speed_kmh: hand_at_contact * 3.6,
            chain: (placement == Placement::FourNode).then_some(chain),
            footwork: plan.footwork,
            jump: plan.jump,
            backswing: plan.backswing,
            shape: plan.shape,
            elevation_deg: shaft_elevation_deg(r_contact),
            pitch_deg: path.z.clamp(-1.0, 1.0).asin().to_degrees(),
        }
    }

    fn contact_transient(
        &mut self,
        rng: &mut SmallRng,
        contact: usize,
        path: DVec3,
        face_normal: DVec3,
        speed: f64,
    ) {
        let peak = speed * uniform(rng, crate::literature::CONTACT_G_PER_MS) * G;
        let dur = uniform(rng, crate::literature::CONTACT_MS);
        let ring = uniform(rng, crate::literature::RING_G) * G;
        let hz = uniform(rng, crate::literature::RING_HZ);
        let decay = uniform(rng, crate::literature::RING_DECAY_MS);
        for k in contact..(contact + ticks(80.0)).min(self.racket_extra.len()) {
            let t = (k - contact) as f64 * TICK_MS;
            let mut a = DVec3::ZERO;
            if t <= dur {
                a -= path * peak * (std::f64::consts::PI * t / dur).sin();
            }
            a += face_normal
                * ring
                * (-t / decay).exp()
                * (2.0 * std::f64::consts::PI * hz * t / 1000.0).sin();
            self.racket_extra[k] += a;
        }
    }

    /// Two to four steps (or a lunge) ending shortly before contact.
    fn footwork(&mut self, rng: &mut SmallRng, contact: usize) {
        let steps = rng.random_range(2..=4);
        let mut end = contact.saturating_sub(ticks(rng.random_range(150.0..500.0)));
        for _ in 0..steps {
            let len = ticks(rng.random_range(150.0..250.0));
            let amp = rng.random_range(0.3..1.2) * G;
            let start = end.saturating_sub(len);
            let side = DVec3::new(
                rng.random_range(-0.3..0.3),
                rng.random_range(-0.3..0.3),
                1.0,
            );
            self.add_sine(start, len, side * amp);
            end = start.saturating_sub(ticks(rng.random_range(30.0..120.0)));
        }
    }

    /// A jump smash: push-off, flight (free fall: the nodes feel no gravity), landing.
    fn jump(&mut self, rng: &mut SmallRng, contact: usize) {
        let push_ms: f64 = rng.random_range(150.0..250.0);
        let push_g: f64 = rng.random_range(1.2..2.2);
        let v_up = 2.0 / std::f64::consts::PI * push_g * G * push_ms / 1000.0;
        let flight_ms = 2.0 * v_up / G * 1000.0;
        let takeoff = contact.saturating_sub(ticks(flight_ms / 2.0));
        let push_start = takeoff.saturating_sub(ticks(push_ms));
        self.add_half_sine(push_start, ticks(push_ms), DVec3::Z * push_g * G);
        for k in takeoff..(takeoff + ticks(flight_ms)).min(self.body_lin.len()) {
            self.body_lin[k] += DVec3::Z * -G;
        }
        let land_ms: f64 = rng.random_range(100.0..150.0);
        let land_g = v_up / (2.0 / std::f64::consts::PI * G * land_ms / 1000.0);
        self.add_half_sine(
            takeoff + ticks(flight_ms),
            ticks(land_ms),
            DVec3::Z * land_g * G,
        );
    }

    fn add_sine(&mut self, start: usize, len: usize, amp: DVec3) {
        for i in 0..len {
            if let Some(a) = self.body_lin.get_mut(start + i) {
                *a += amp * (2.0 * std::f64::consts::PI * i as f64 / len as f64).sin();
            }
        }
    }

    fn add_half_sine(&mut self, start: usize, len: usize, amp: DVec3) {
        for i in 0..len {
            if let Some(a) = self.body_lin.get_mut(start + i) {
                *a += amp * (std::f64::consts::PI * i as f64 / len as f64).sin();
            }
        }
    }

    /// Non-stroke motion until `until`: wandering the racket, twirls, scoops to pick up the
    /// shuttle, walking.
    fn rest_block(&mut self, rng: &mut SmallRng, until: usize) {
        // Activities last at most ~10 s; the block's remainder is held still.
        while self.racket.end_tick() + ticks(11_000.0) < until {
            let now = self.racket.end_tick();
            let kind = pick(rng, &[0u8, 1, 2, 3], &[0.4, 0.2, 0.2, 0.2]);
            match kind {
                0 => {
                    let target = self.rest_pose
                        * DQuat::from_scaled_axis(
                            swing::random_unit(rng) * rng.random_range(0.0..1.2),
                        );
                    let move_ticks = ticks(rng.random_range(800.0..2500.0));
                    let hold = ticks(rng.random_range(500.0..3000.0));
                    self.racket
                        .slerp_to(target, move_ticks, now + move_ticks + hold);
                }
                1 => {
                    let turns = rng.random_range(1.0..3.0) * std::f64::consts::TAU;
                    let len = ticks(rng.random_range(1000.0..2500.0));
                    let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                    let rates = (0..len)
                        .map(|i| {
                            let s = (i as f64 + 0.5) / len as f64;
                            sign * turns * 6.0 * s * (1.0 - s) / (len as f64 * TICK_MS / 1000.0)
                        })
                        .collect();
                    self.racket.rotate(DVec3::X, rates);
                }
                2 => {
                    let back = self.racket.orientation();
                    let axis = if rng.random_bool(0.5) {
                        DVec3::Y
                    } else {
                        DVec3::Z
                    };
                    let angle = rng.random_range(30f64..70.0).to_radians();
                    let down = ticks(rng.random_range(150.0..300.0));
                    let target = back * DQuat::from_axis_angle(axis, angle);
                    self.racket.slerp_to(target, down, now + down);
                    let tap = self.racket.end_tick();
                    let dir = swing::random_unit(rng);
                    let g = rng.random_range(2.0..6.0) * G;
                    for k in tap..(tap + ticks(4.0)).min(self.racket_extra.len()) {
                        self.racket_extra[k] += dir * g;
                    }
                    let up = ticks(rng.random_range(400.0..800.0));
                    self.racket.slerp_to(back, up, tap + up + ticks(300.0));
                }
                _ => {
                    let len = ticks(rng.random_range(3000.0..10_000.0));
                    let step = ticks(1000.0 / rng.random_range(1.7..2.2));
                    let amp = rng.random_range(0.15..0.35) * G;
                    let mut k = now;
                    while k + step < now + len {
                        self.add_sine(k, step, DVec3::Z * amp);
                        k += step;
                    }
                    let target = self.rest_pose
                        * DQuat::from_scaled_axis(
                            swing::random_unit(rng) * rng.random_range(0.0..0.6),
                        );
                    self.racket.slerp_to(target, len / 2, now + len);
                }
            }
            let activity = [
                RestActivity::Wander,
                RestActivity::Twirl,
                RestActivity::Scoop,
                RestActivity::Walk,
            ][usize::from(kind)];
            self.activities
                .push((activity, now, self.racket.end_tick()));
        }
        let held_from = self.racket.end_tick();
        self.racket.hold_until(until);
        self.activities
            .push((RestActivity::Still, held_from, until));
        for t in [&mut self.waist, &mut self.shoulder, &mut self.forearm] {
            let now = t.end_tick();
            if now < until {
                let q = t.orientation()
                    * DQuat::from_scaled_axis(swing::random_unit(rng) * rng.random_range(0.0..0.5));
                t.slerp_to(q, ticks(rng.random_range(1000.0..3000.0)), until);
            }
        }
    }
}

/// Brings `track` to the attitude that makes `rates` end up at `attitude` at index
/// `at_index` of the piece starting at `first`, then rotates.
fn land(
    track: &mut Track,
    rng: &mut SmallRng,
    attitude: DQuat,
    axis: DVec3,
    rates: Vec<f64>,
    first: usize,
    at_index: usize,
) {
    let axis = axis.normalize();
    let mut angle = 0.0;
    for i in 0..at_index {
        let next = rates.get(i + 1).copied().unwrap_or(0.0);
        angle += 0.5 * (rates[i] + next) * crate::motion::TICK_S;
    }
    let start = (attitude * DQuat::from_scaled_axis(axis * -angle)).normalize();
    let now = track.end_tick();
    let available = first.saturating_sub(now);
    let move_ticks = ticks(rng.random_range(500.0..1200.0)).min(available.max(1));
    track.slerp_to(start, move_ticks, first);
    track.rotate_from(start, axis, rates);
}

/// Each placed node's readings through its sensor.
fn render(
    rng: &mut SmallRng,
    noise_rng: &mut SmallRng,
    body: &Body,
    device: &DeviceSetup,
    start_ms: f64,
    n: usize,
) -> Vec<(u32, Vec<Reading>)> {
    device
        .nodes
        .iter()
        .map(|node| {
            let (track, lever, hand_gain, extra) = match node.segment {
                Segment::Racket => (
                    &body.racket,
                    DVec3::X * rng.random_range(0.05..0.25),
                    1.0,
                    true,
                ),
                Segment::Wrist => (
                    &body.forearm,
                    DVec3::X * rng.random_range(0.22..0.27),
                    0.9,
                    false,
                ),
                Segment::Forearm => (
                    &body.forearm,
                    DVec3::X * rng.random_range(0.10..0.15),
                    0.6,
                    false,
                ),
                Segment::Shoulder => (
                    &body.shoulder,
                    DVec3::X * rng.random_range(0.10..0.18),
                    0.3,
                    false,
                ),
                Segment::Waist => (
                    &body.waist,
                    DVec3::Y * rng.random_range(0.10..0.15),
                    0.0,
                    false,
                ),
            };
            let phase = if device.form == WireForm::Compact {
                0.0
            } else {
                rng.random_range(0.0..1000.0 / device.rates.rate_at(0.0))
                    .floor()
            };
            let mut sampler =
                NodeSampler::new(node.sensor.clone(), device.rates.clone(), start_ms, phase);
            let mut reader = track.reader();
            let mut out = Vec::new();
            for k in 0..n {
                let s = reader.at(k);
                let w = s.q * s.omega_body;
                let alpha = s.q * s.alpha_body;
                let r = s.q * lever;
                let mut f = body.body_lin[k]
                    + body.hand_lin[k] * hand_gain
                    + alpha.cross(r)
                    + w.cross(w.cross(r))
                    + DVec3::Z * G;
                if extra {
                    f += body.racket_extra[k];
                }
                if let Some(reading) =
                    sampler.tick(noise_rng, k, s.q.inverse() * f, s.omega_body, s.q)
                {
                    out.push(reading);
                }
            }
            (node.segment.sensor_id(), out)
        })
        .collect()
}

fn encode(
    rng: &mut SmallRng,
    device: &DeviceSetup,
    readings: Vec<(u32, Vec<Reading>)>,
    end_ms: f64,
) -> Vec<WireMessage> {
    let mut latency = || rng.random_range(5..40);
    let mut messages = match device.form {
        WireForm::SeedV33 => wire::seed_batches(
            &device.device_code,
            &device.session_id,
            &readings,
            (readings[0].1.first().map_or(end_ms, |r| r.t_ms) - 3_600_000.0) as i64,
            &mut latency,
        ),
        WireForm::Compact => {
            let mut seq = 0;
            let mut all = Vec::new();
            for (id, node) in &readings {
                let start = device_start(node);
                all.extend(wire::compact_batches(
                    &device.session_id,
                    *id,
                    node,
                    |t| device.rates.rate_at(t - start),
                    device.placement == Placement::FourNode,
                    250.0,
                    &mut seq,
                    &mut latency,
                ));
            }
            all
        }
    };
    messages.sort_by_key(|m| m.received_ms);
    messages.push(wire::upload_complete(
        &device.device_code,
        &device.session_id,
        end_ms as i64 + 500,
    ));
    messages
}

/// The session start as seen in a node's readings (its first sample, phase 0 for compact).
fn device_start(node: &[Reading]) -> f64 {
    node.first().map_or(0.0, |r| r.t_ms)
}

impl Session {
    /// The device's text frames, one per line, exactly as sent.
    pub fn wire_lines(&self) -> String {
        let mut out = String::new();
        for m in &self.messages {
            out.push_str(&m.text);
            out.push('\n');
        }
        out
    }

    /// What really happened, as JSON: the device, each message's receipt time (in the order of
    /// [`Session::wire_lines`]), the swings and the rest windows.
    pub fn truth_json(&self) -> serde_json::Value {
        let d = &self.device;
        let nodes: Vec<serde_json::Value> = d
            .nodes
            .iter()
            .map(|n| {
                let s = &n.sensor;
                serde_json::json!({
                    "segment": format!("{:?}", n.segment).to_lowercase(),
                    "sensor_id": n.segment.sensor_id(),
                    "acc_full_scale_g": s.acc_full_scale_g,
                    "gyro_full_scale_dps": s.gyro_full_scale_dps,
                    "overflow": format!("{:?}", s.overflow).to_lowercase(),
                    "uncalibrated": s.uncalibrated,
                    "mount_rotated": s.mount_rotated,
                })
            })
            .collect();
        let swings: Vec<serde_json::Value> = self
            .swings
            .iter()
            .map(|t| {
                serde_json::json!({
                    "t_contact_ms": t.t_contact_ms,
                    "stroke": t.stroke.name(),
                    "side": t.side.name(),
                    "height": t.stroke.height_class().map(|h| h.name()),
                    "impact": t.impact,
                    "racket_speed_kmh": t.racket_speed_kmh,
                    "racket_peak_dps": t.racket_peak_dps,
                    "chain": t.chain.map(|c| serde_json::json!({
                        "peak_dps": c.peak_dps,
                        "peak_t_ms": c.peak_t_ms,
                        "delay_ms": c.delay_ms,
                    })),
                    "footwork": t.footwork,
                    "jump": t.jump,
                    "backswing": t.backswing,
                    "shape": format!("{:?}", t.shape),
                })
            })
            .collect();
        serde_json::json!({
            "device_code": d.device_code,
            "session_id": d.session_id,
            "placement": d.placement.name(),
            "wire_form": format!("{:?}", d.form),
            "level": d.level.name(),
            "reach_m": d.reach_m,
            "rates": d.rates.0,
            "nodes": nodes,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "received_ms": self.messages.iter().map(|m| m.received_ms).collect::<Vec<_>>(),
            "swings": swings,
            "rests": self.rests.iter().map(|r| [r.start_ms, r.end_ms]).collect::<Vec<_>>(),
            "rest_activities": self
                .rest_activities
                .iter()
                .map(|a| serde_json::json!([a.activity.name(), a.start_ms, a.end_ms]))
                .collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(seed: u64) -> SessionOptions {
        SessionOptions {
            seed,
            duration_s: 40.0,
            rate_hz: Some(200.0),
            placement: Some(Placement::FourNode),
        }
    }

    #[test]
    fn a_session_is_a_function_of_its_seed() {
        let a = generate(&options(5));
        let b = generate(&options(5));
        let c = generate(&options(6));
        assert_eq!(a.messages, b.messages);
        assert_eq!(a.swings, b.swings);
        assert_ne!(a.messages, c.messages);
        assert!(!a.swings.is_empty());
        assert!(
            a.messages
                .iter()
                .all(|m| serde_json::from_str::<serde_json::Value>(&m.text).is_ok())
        );
        assert!(a.messages.last().unwrap().text.contains("upload_complete"));
        assert_eq!(a.wire_lines().lines().count(), a.messages.len());
        let truth = a.truth_json();
        assert_eq!(truth["swings"].as_array().unwrap().len(), a.swings.len());
        assert_eq!(
            truth["received_ms"].as_array().unwrap().len(),
            a.messages.len()
        );
    }

    #[test]
    fn the_rendered_racket_meets_the_planned_head_speed_at_contact() {
        let mut rng = SmallRng::seed_from_u64(11);
        let player = Player::draw(&mut rng, Level::Club);
        let n = ticks(120_000.0);
        let mut body = Body::new(&mut rng, n);
        let (swings, _) = body.play(&mut rng, &player, Placement::RacketOnly, n, 0.0);
        assert!(swings.len() > 5);
        for truth in &swings {
            let contact = ticks(truth.t_contact_ms);
            let s = body.racket.reader().at(contact);
            let perp = DVec3::new(0.0, s.omega_body.y, s.omega_body.z).length();
            // The hand's speed: its acceleration integrated up to contact, along the path.
            let hand: DVec3 = body.hand_lin[contact.saturating_sub(ticks(500.0))..contact]
                .iter()
                .map(|a| *a * crate::motion::TICK_S)
                .sum();
            let head = perp * player.reach_m + hand.length();
            let planned = truth.racket_speed_kmh / 3.6;
            assert!((head / planned - 1.0).abs() < 0.03, "{head} vs {planned}");
        }
    }

    #[test]
    fn labels_and_speeds_overlap_between_classes_as_real_players_do() {
        // Across many sessions a soft clear is slower than a hard drop somewhere: the classes
        // are not separable by speed alone (no threshold made them).
        let swings: Vec<SwingTruth> = (0..6)
            .flat_map(|seed| {
                generate(&SessionOptions {
                    seed,
                    duration_s: 120.0,
                    rate_hz: Some(100.0),
                    placement: Some(Placement::RacketOnly),
                })
                .swings
            })
            .collect();
        let speeds = |class| {
            swings
                .iter()
                .filter(|s| s.stroke == class)
                .map(|s| s.racket_speed_kmh)
                .collect::<Vec<_>>()
        };
        let slowest_clear = speeds(crate::StrokeClass::Clear)
            .into_iter()
            .fold(f64::MAX, f64::min);
        let fastest_drop = speeds(crate::StrokeClass::Drop)
            .into_iter()
            .fold(0.0, f64::max);
        assert!(
            fastest_drop > slowest_clear,
            "{fastest_drop} vs {slowest_clear}"
        );
    }
}
