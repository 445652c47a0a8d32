//! What the admin console is shown: `system_status` and `device_list`, read from the parts'
//! own state at the moment of asking (the court, the journal's stats, the uplink sinks'
//! snapshots, the supervisor's registry), never kept twice.
//!
//! A field the gateway does not know is `null`, never a made-up zero: battery, rssi and
//! firmware are `null` until the device's first heartbeat carries them; a node's rate is
//! `null` until a batch tells it; `load` is `null` where `/proc/loadavg` cannot be read. The
//! nodes seen, batches and swings today come from the device watch ([`crate::device_watch`]),
//! rejects by reason from the clients' counters; all of them are counted since the gateway
//! started (`counted_since_ms` in `device_list`): the journal, not memory, is the record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use shuttlegate_core::court::{Court, DeviceState};

use super::connections::Connections;
use super::metrics::ClientMetrics;
use crate::config::Settings;
use crate::device_watch::Watch;
use crate::journal::{Journal, JournalStats};
use crate::supervise::Supervisor;
use crate::time_sync::TimeSync;
use crate::uplink::SinkBoard;

/// The parts the views read.
#[derive(Clone)]
pub struct Sources {
    pub journal: Journal,
    pub supervisor: Supervisor,
    pub sinks: SinkBoard,
    pub connections: std::sync::Arc<Connections>,
    /// When the daemon started (for `uptime_s`).
    pub started: Instant,
    /// Nodes seen, batches and swings today.
    pub watch: Watch,
    /// Rejects per device.
    pub clients: Arc<ClientMetrics>,
    /// Whether the gateway's clock is synchronised.
    pub time_sync: TimeSync,
}

/// What the court holds that the views show, copied out under its lock.
pub struct CourtView {
    devices: Vec<(String, DeviceState)>,
}

impl CourtView {
    pub fn of(court: &Court) -> CourtView {
        CourtView {
            devices: court
                .devices()
                .map(|(code, state)| (code.clone(), state.clone()))
                .collect(),
        }
    }

    /// Each device the court knows, with its state.
    pub fn devices(&self) -> &[(String, DeviceState)] {
        &self.devices
    }
}

/// `system_status`.
pub fn system_status(
    sources: &Sources,
    court: &CourtView,
    load: Option<[f64; 3]>,
    now_ms: i64,
) -> Value {
    let stats = sources.journal.stats();
    let online = court.devices.iter().filter(|(_, d)| d.online).count();
    let mut sessions: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, device) in &court.devices {
        for session in device.sessions() {
            *sessions.entry(session.state.as_str()).or_default() += 1;
        }
    }
    let tasks: Vec<Value> = sources
        .supervisor
        .snapshot()
        .into_iter()
        .map(|t| json!({"name": t.name, "state": t.state.as_str(), "restarts": t.restarts, "last_failure": t.last_failure}))
        .collect();
    json!({
        "type": "system_status",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": sources.started.elapsed().as_secs(),
        "ts": now_ms,
        "devices": {"configured": court.devices.len(), "online": online},
        "sessions": sessions,
        "journal": journal(&stats),
        "uplinks": uplinks(&sources.sinks, &stats),
        "tasks": tasks,
        "load": load,
        "clock_synchronised": sources.time_sync.synchronised(),
    })
}

pub(super) fn journal(stats: &JournalStats) -> Value {
    json!({
        "bytes": stats.bytes,
        "max_bytes": stats.max_bytes,
        "segments": stats.segments,
        "records": stats.records,
        "oldest_record_ts": stats.oldest_ts_ms,
        "full": stats.full,
        "failed": stats.failed,
    })
}

/// Each enabled sink: its connection and what it has yet to deliver.
pub(super) fn uplinks(sinks: &SinkBoard, stats: &JournalStats) -> Vec<Value> {
    sinks
        .snapshots()
        .into_iter()
        .map(|(name, s)| {
            let backlog_bytes = stats
                .consumers
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.backlog_bytes);
            json!({
                "sink": name,
                "connected": s.connected,
                "backlog_records": s.backlog_records,
                "backlog_bytes": backlog_bytes,
                "in_flight": s.in_flight,
                "last_ack_ms": s.last_ack_ms,
                "last_error": s.last_error,
            })
        })
        .collect()
}

/// `device_list`: every configured device, in the configuration's order.
pub fn device_list(
    settings: &Settings,
    sources: &Sources,
    court: &CourtView,
    now_ms: i64,
) -> Value {
    let devices: Vec<Value> = settings
        .devices
        .iter()
        .map(|d| {
            let state = court.devices.iter().find(|(code, _)| *code == d.code);
            let state = state.map(|(_, s)| s);
            // The player the console bound, while the configuration still names the one it
            // was bound over (as phones, the screen and the analysis see it).
            let configured = d.user.as_deref();
            let user = state.map_or(configured, |s| s.user(configured));
            device(&d.code, user, state, sources, now_ms)
        })
        .collect();
    let uptime_ms = i64::try_from(sources.started.elapsed().as_millis()).unwrap_or(i64::MAX);
    json!({
        "type": "device_list",
        "devices": devices,
        "ts": now_ms,
        "counted_since_ms": now_ms.saturating_sub(uptime_ms),
    })
}

pub(super) fn device(
    code: &str,
    user: Option<&str>,
    state: Option<&DeviceState>,
    sources: &Sources,
    now_ms: i64,
) -> Value {
    let default = DeviceState::default();
    let state = state.unwrap_or(&default);
    let session = state
        .open_session()
        .map(|s| json!({"session_id": s.id, "status": s.state.as_str(), "start_ms": s.start_ms}));
    // Nothing seen of it since start: no nodes, nothing today (counted since start).
    let figures = sources.watch.figures(code, now_ms);
    json!({
        "device_code": code,
        "user": user,
        "online": state.online,
        "peer": sources.connections.peer(code).map(|ip| ip.to_string()),
        "last_seen_ms": state.last_seen_ms,
        "battery": state.telemetry.battery,
        "rssi": state.telemetry.rssi,
        "firmware": state.telemetry.fw,
        "session": session,
        "pending_commands": state.commands.len(),
        "nodes": figures.as_ref().map_or_else(Vec::new, |f| f.nodes.clone()),
        "batches_today": figures.as_ref().map_or(0, |f| f.batches_today),
        "swings_today": figures.as_ref().map_or(0, |f| f.swings_today),
        "clock_offset_ms": figures.as_ref().and_then(|f| f.clock_offset_ms),
        "rejects": sources.clients.device_rejects(code),
    })
}

/// `/proc/loadavg`'s three averages, if it reads.
pub async fn load_average() -> Option<[f64; 3]> {
    let text = tokio::fs::read_to_string("/proc/loadavg").await.ok()?;
    parse_loadavg(&text)
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_reads_its_first_three_fields() {
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 1/467 12345\n"),
            Some([0.52, 0.58, 0.59])
        );
        assert_eq!(parse_loadavg("0.5 x"), None);
        assert_eq!(parse_loadavg(""), None);
    }
}
