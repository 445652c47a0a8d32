//! What a courtside screen is shown (`/ws/dashboard/`, SPEC §5): the `court_state` snapshot,
//! and the [`Scoreboard`] of live results it includes. Pure: the caller reads the court, the
//! journal and the sinks, and hands in the time.
//!
//! A snapshot is built from admin_view's building blocks (the same device, journal and uplink
//! objects as `device_list` and `system_status`), then cut to what its [`View`] may show. The
//! public view — a TV facing the spectators, a page anyone on the venue Wi-Fi can open — takes
//! a whitelist of fields, so a field added to the admin's objects later stays staff-only until
//! someone decides otherwise: no peer address, firmware, error text (which may name hosts or
//! paths), or pending commands. The staff view (behind the admin token) is the admin's objects
//! whole.
//!
//! The scoreboard folds the live swings and rallies the screens are pushed: per player, the
//! swings of the session being played and the latest one (with its kinetic chain, for the
//! page's chart); for the court, the rallies since the gateway started. It counts what was
//! published live while it ran; the journal, not this, is the record.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use shuttlegate_core::court::DeviceState;

use super::admin_view::{self, CourtView, Sources};
use crate::config::Settings;

/// Who a snapshot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Anyone: no addresses, no error texts, no commands.
    Public,
    /// Staff, with the admin token.
    Staff,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Public => "public",
            View::Staff => "staff",
        }
    }
}

/// The fields of a device (admin_view's `device_list` entry) a public screen shows.
const PUBLIC_DEVICE: &[&str] = &[
    "device_code",
    "user",
    "online",
    "last_seen_ms",
    "battery",
    "rssi",
    "session",
];
/// The fields of an uplink (admin_view's `system_status` entry) a public screen shows.
const PUBLIC_UPLINK: &[&str] = &["sink", "connected", "backlog_records"];
/// The fields of the journal a public screen shows (its `failing` flag is derived).
const PUBLIC_JOURNAL: &[&str] = &["bytes", "max_bytes", "full"];

/// Players remembered by the scoreboard; a court has a handful, a venue gateway a few dozen.
/// Past it, results of new devices are not tallied (they are still pushed).
const MAX_PLAYERS: usize = 256;

/// One player's session as the screens saw it live.
#[derive(Debug, Clone, Default, PartialEq)]
struct PlayerTally {
    /// The session the counts are of; a swing of another session starts them again.
    session_id: String,
    swings: u64,
    hits: u64,
    top_shuttle_speed_kmh: Option<f64>,
    /// The latest swing, as pushed (with `chain` when body nodes are worn).
    last_swing: Option<Value>,
}

/// The rally in progress.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CurrentRally {
    rally_no: u64,
    shots: u64,
}

/// The court's rallies since the gateway started.
#[derive(Debug, Clone, Default, PartialEq)]
struct RallyTally {
    rallies: u64,
    shots: u64,
    longest_rally: u64,
    current: Option<CurrentRally>,
}

/// Live results folded for the screens' snapshots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scoreboard {
    players: BTreeMap<String, PlayerTally>,
    rallies: RallyTally,
}

impl Scoreboard {
    /// A `swing` message as published.
    pub fn handle_swing(&mut self, swing: &Value) {
        let (Some(device), Some(session)) =
            (swing["device"].as_str(), swing["session_id"].as_str())
        else {
            return;
        };
        if !self.players.contains_key(device) && self.players.len() >= MAX_PLAYERS {
            return;
        }
        let tally = self.players.entry(device.to_owned()).or_default();
        if tally.session_id != session {
            *tally = PlayerTally {
                session_id: session.to_owned(),
                ..PlayerTally::default()
            };
        }
        tally.swings += 1;
        if swing["impact"].as_bool() == Some(true) {
            tally.hits += 1;
        }
        if let Some(speed) = swing["shuttle_speed_kmh"].as_f64() {
            let top = tally.top_shuttle_speed_kmh.get_or_insert(speed);
            *top = top.max(speed);
        }
        tally.last_swing = Some(swing.clone());
    }

    /// A `rally_update` message as published.
    pub fn handle_rally(&mut self, update: &Value) {
        let rally_no = update["rally_no"].as_u64().unwrap_or(0);
        match update["event"].as_str() {
            Some("rally_shot") => {
                self.rallies.current = Some(CurrentRally {
                    rally_no,
                    shots: update["shot_no"].as_u64().unwrap_or(0),
                });
            }
            Some("rally_end") => {
                let shots = update["shots"].as_u64().unwrap_or(0);
                let r = &mut self.rallies;
                r.rallies += 1;
                r.shots += shots;
                r.longest_rally = r.longest_rally.max(shots);
                if r.current.is_some_and(|c| c.rally_no == rally_no) {
                    r.current = None;
                }
            }
            _ => {}
        }
    }

    /// A player's tally, `null` before their first swing.
    fn player(&self, device: &str) -> Value {
        self.players.get(device).map_or(Value::Null, |t| {
            json!({
                "session_id": t.session_id,
                "swings": t.swings,
                "hits": t.hits,
                "top_shuttle_speed_kmh": t.top_shuttle_speed_kmh,
                "last_swing": t.last_swing,
            })
        })
    }

    fn rallies(&self) -> Value {
        let r = &self.rallies;
        let mean = (r.rallies > 0).then(|| r.shots as f64 / r.rallies as f64);
        json!({
            "rallies": r.rallies,
            "shots": r.shots,
            "longest_rally": r.longest_rally,
            "mean_shots_per_rally": mean,
            "current": r.current.map(|c| json!({"rally_no": c.rally_no, "shots": c.shots})),
        })
    }
}

/// `court_state`: the court now, for `view`.
pub fn court_state(
    view: View,
    settings: &Settings,
    sources: &Sources,
    court: &CourtView,
    board: &Scoreboard,
    now_ms: i64,
) -> Value {
    let players: Vec<Value> = settings
        .devices
        .iter()
        .map(|d| {
            let state = court.devices().iter().find(|(code, _)| *code == d.code);
            player(
                view,
                &d.code,
                d.user.as_deref(),
                state.map(|(_, s)| s),
                sources,
                board,
            )
        })
        .collect();
    let stats = sources.journal.stats();
    let mut journal = admin_view::journal(&stats);
    let mut uplinks = admin_view::uplinks(&sources.sinks, &stats);
    if view == View::Public {
        let failing = !journal["failed"].is_null();
        journal = pick(&journal, PUBLIC_JOURNAL);
        journal["failing"] = json!(failing);
        uplinks = uplinks.iter().map(|u| pick(u, PUBLIC_UPLINK)).collect();
    }
    let used = stats.bytes as f64 / (stats.max_bytes.max(1)) as f64;
    journal["cap_used"] = json!((used * 1000.0).round() / 1000.0);
    json!({
        "type": "court_state",
        "view": view.as_str(),
        "venue": settings.gateway.venue,
        "court": settings.gateway.court,
        "ts": now_ms,
        "players": players,
        "sessions": sessions_by_state(court),
        "rallies": board.rallies(),
        "uplinks": uplinks,
        "journal": journal,
    })
}

/// One configured device as a screen shows it: admin_view's entry with the player bound to it
/// now (the admin's binding, else `[[devices]] user`) and its live tally.
fn player(
    view: View,
    code: &str,
    configured: Option<&str>,
    state: Option<&DeviceState>,
    sources: &Sources,
    board: &Scoreboard,
) -> Value {
    let user = state.map_or(configured, |s| s.user(configured));
    let mut entry = admin_view::device(code, user, state, sources);
    if view == View::Public {
        entry = pick(&entry, PUBLIC_DEVICE);
    }
    entry["stats"] = board.player(code);
    entry
}

/// Sessions the court holds (open and recently ended), by state.
fn sessions_by_state(court: &CourtView) -> BTreeMap<&'static str, usize> {
    let mut sessions = BTreeMap::new();
    for (_, device) in court.devices() {
        for session in device.sessions() {
            *sessions.entry(session.state.as_str()).or_default() += 1;
        }
    }
    sessions
}

/// The named fields of an object (a missing one as `null`).
fn pick(object: &Value, fields: &[&str]) -> Value {
    let picked: Map<String, Value> = fields
        .iter()
        .map(|f| ((*f).to_owned(), object[*f].clone()))
        .collect();
    Value::Object(picked)
}

/// The snapshot without its timestamp: what tells whether the court changed.
pub fn without_ts(state: &Value) -> Value {
    let mut state = state.clone();
    if let Some(fields) = state.as_object_mut() {
        fields.remove("ts");
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swing(device: &str, session: &str, impact: bool, speed: Option<f64>) -> Value {
        json!({"type": "swing", "device": device, "session_id": session, "impact": impact,
               "shuttle_speed_kmh": speed, "chain": {"peak_dps": {"wrist": 1450.0}}})
    }

    #[test]
    fn a_players_tally_counts_the_session_being_played_and_keeps_the_latest_swing() {
        let mut board = Scoreboard::default();
        board.handle_swing(&swing("r1", "s-1", true, Some(150.0)));
        board.handle_swing(&swing("r1", "s-1", false, Some(90.0)));
        let tally = board.player("r1");
        assert_eq!(tally["swings"], 2);
        assert_eq!(tally["hits"], 1);
        assert_eq!(tally["top_shuttle_speed_kmh"], 150.0);
        assert_eq!(tally["last_swing"]["shuttle_speed_kmh"], 90.0);
        assert_eq!(tally["last_swing"]["chain"]["peak_dps"]["wrist"], 1450.0);
        board.handle_swing(&swing("r1", "s-2", false, None));
        let tally = board.player("r1");
        assert_eq!(
            (tally["session_id"].as_str(), tally["swings"].as_u64()),
            (Some("s-2"), Some(1))
        );
        assert_eq!(tally["top_shuttle_speed_kmh"], Value::Null);
        assert_eq!(board.player("r2"), Value::Null);
    }

    #[test]
    fn rallies_count_ended_ones_and_show_the_one_in_progress() {
        let mut board = Scoreboard::default();
        let shot = |no, shot| json!({"type": "rally_update", "event": "rally_shot", "rally_no": no, "shot_no": shot});
        board.handle_rally(&shot(1, 1));
        board.handle_rally(&shot(1, 2));
        assert_eq!(
            board.rallies()["current"],
            json!({"rally_no": 1, "shots": 2})
        );
        assert_eq!(board.rallies()["mean_shots_per_rally"], Value::Null);
        board.handle_rally(&json!({"event": "rally_end", "rally_no": 1, "shots": 2}));
        board.handle_rally(&shot(2, 1));
        board.handle_rally(&json!({"event": "rally_end", "rally_no": 2, "shots": 5}));
        let r = board.rallies();
        assert_eq!(
            (r["rallies"].as_u64(), r["shots"].as_u64()),
            (Some(2), Some(7))
        );
        assert_eq!(r["longest_rally"], 5);
        assert_eq!(r["mean_shots_per_rally"], 3.5);
        assert_eq!(r["current"], Value::Null);
    }

    #[test]
    fn a_swing_without_device_or_session_is_not_tallied() {
        let mut board = Scoreboard::default();
        board.handle_swing(&json!({"type": "swing", "device": "r1"}));
        board.handle_swing(&json!("not an object"));
        assert_eq!(board, Scoreboard::default());
    }

    #[test]
    fn the_scoreboard_remembers_a_bounded_number_of_players() {
        let mut board = Scoreboard::default();
        for i in 0..MAX_PLAYERS + 10 {
            board.handle_swing(&swing(&format!("d{i}"), "s", true, None));
        }
        assert_eq!(board.players.len(), MAX_PLAYERS);
    }

    #[test]
    fn the_public_cut_keeps_only_whitelisted_fields() {
        let device = json!({"device_code": "r1", "peer": "192.168.1.23", "firmware": "V3.3",
                            "battery": 80.0, "pending_commands": 2});
        let public = pick(&device, PUBLIC_DEVICE);
        assert_eq!(public["device_code"], "r1");
        assert_eq!(public["battery"], 80.0);
        for secret in ["peer", "firmware", "pending_commands"] {
            assert!(public.get(secret).is_none(), "{public}");
        }
    }

    #[test]
    fn the_timestamp_alone_does_not_make_a_change() {
        let a = json!({"type": "court_state", "ts": 1, "players": []});
        let b = json!({"type": "court_state", "ts": 2, "players": []});
        assert_eq!(without_ts(&a), without_ts(&b));
    }
}
