//! `shuttlegate-tools bench phones`: what the fan-out to players' phones and courtside screens
//! costs, through the real daemon (a `shuttlegate run` child) on loopback.
//!
//! The load is `bench swings`'s: court-simulated players streaming in real time (optionally
//! beside unpaced ingest devices), plus a few paced probe devices whose send → durable ack
//! latency this process measures. Each scenario runs twice on a fresh daemon: **quiet**, with
//! no client watching, and **watched**, with `phones` phones (each with a JWT signed here as the
//! cloud would, for the user bound to one of the players, spread evenly: a player's friends
//! watching them) and `screens` public screens (every swing of the court) connected before play
//! starts. It reports:
//! - swing → phone latency: from the instant the daemon received the batch that completed the
//!   swing to the instant it finished writing the swing to the phone's socket, on the daemon's
//!   monotonic clock (`swing_push_latency_*{role="phone"}` on its `/metrics`; the daemon is
//!   the only party that saw both instants). What follows — loopback delivery and the phone's
//!   read — is not in it; the phones here count what they receive, so a push written but not
//!   received would show as `received < pushed`.
//! - the probe devices' ack latency p50/p99 (this process's clock, send → durable reply), the
//!   daemon's CPU (share of one core) and peak RSS, quiet versus watched;
//! - pushes dropped (`client_pushes_dropped_total`, and the `lagged` notices the clients got).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::device::{self, Latency, Pacing, Phases};
use super::ingest::{BenchError, process_usage, start_daemon_with};
use super::swings::{self, SwingBench};
use shuttlegate_sim::fleet::{self, FleetProgress};

/// The phones' tokens are signed with this (HS256), as the cloud's would be.
const JWT_SECRET: &str = "bench-cloud-signing-secret";
/// Samples per probe batch and their declared rate.
const PROBE_BATCH_SAMPLES: usize = 100;
const PROBE_RATE_HZ: f64 = 1000.0;
/// The targets (issue 13): p99 swing → phone, and the acks unchanged by the clients.
pub const TARGET_P99: Duration = Duration::from_millis(20);
/// How long the clients keep reading after the analysis has drained.
const SETTLE: Duration = Duration::from_secs(1);

/// One benchmark scenario.
#[derive(Debug, Clone)]
pub struct PhoneBench {
    /// The players, their rate and batches, unpaced load, duration, commit window, seed.
    pub load: SwingBench,
    pub phones: usize,
    pub screens: usize,
    /// Paced devices whose ack latency is measured.
    pub probes: usize,
    /// Each probe's interval between batches.
    pub probe_interval: Duration,
}

/// One run of the daemon (quiet or watched).
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    pub acks: Latency,
    pub daemon_cpu_cores: f64,
    pub daemon_peak_rss_mib: f64,
    pub swings: u64,
    /// The daemon's own batch receipt → journaled and live, p50 / p99 / max (ms).
    pub swing_live_ms: [f64; 3],
    pub errors: u64,
}

/// What the clients of the watched run saw.
#[derive(Debug, Clone, Default)]
pub struct ClientFigures {
    /// Swings written to phones and their latency p50 / p99 / max (ms), from the daemon.
    pub phone_pushes: u64,
    pub phone_ms: [f64; 3],
    pub screen_pushes: u64,
    pub screen_ms: [f64; 3],
    /// Swings the phones and screens read.
    pub phone_swings_received: u64,
    pub screen_swings_received: u64,
    /// `client_pushes_dropped_total` by role, and the `lagged` totals the clients were told.
    pub dropped_phone: u64,
    pub dropped_screen: u64,
    pub lagged_told: u64,
    /// Clients that could not connect or were cut off.
    pub client_errors: u64,
}

/// Both runs of a scenario.
#[derive(Debug, Clone, Default)]
pub struct PhoneReport {
    pub quiet: RunFigures,
    pub watched: RunFigures,
    pub clients: ClientFigures,
}

impl PhoneReport {
    pub fn meets_latency_target(&self) -> bool {
        self.clients.phone_pushes > 0 && self.clients.phone_ms[1] <= TARGET_P99.as_secs_f64() * 1e3
    }
}

impl std::fmt::Display for PhoneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.clients;
        let verdict = if self.meets_latency_target() {
            "met"
        } else {
            "NOT met"
        };
        let ms = |m: &[f64; 3]| format!("p50 {:.2} p99 {:.2} max {:.2} ms", m[0], m[1], m[2]);
        writeln!(
            f,
            "swing -> phone (completing batch received -> written to the phone's socket): {} over {} pushes | target p99 <= {} ms: {verdict}",
            ms(&c.phone_ms),
            c.phone_pushes,
            TARGET_P99.as_millis()
        )?;
        writeln!(
            f,
            "  swing -> screen: {} over {} pushes | daemon's batch -> journaled + live: {}",
            ms(&c.screen_ms),
            c.screen_pushes,
            ms(&self.watched.swing_live_ms)
        )?;
        writeln!(
            f,
            "  received: phones {} swings, screens {} | dropped pushes: phones {}, screens {} (lagged told {}) | client errors {}",
            c.phone_swings_received,
            c.screen_swings_received,
            c.dropped_phone,
            c.dropped_screen,
            c.lagged_told,
            c.client_errors
        )?;
        for (name, run) in [("quiet  ", &self.quiet), ("watched", &self.watched)] {
            writeln!(
                f,
                "  {name}: probe acks {} | daemon CPU {:.2} cores, peak RSS {:.1} MiB | {} swings | errors {}",
                run.acks, run.daemon_cpu_cores, run.daemon_peak_rss_mib, run.swings, run.errors
            )?;
        }
        Ok(())
    }
}

/// Runs the scenario quiet, then watched, each on a fresh daemon started from `exe`.
pub async fn run(exe: &Path, bench: PhoneBench) -> Result<PhoneReport, BenchError> {
    let (quiet, _) = run_once(exe, &bench, false).await?;
    let (watched, clients) = run_once(exe, &bench, true).await?;
    Ok(PhoneReport {
        quiet,
        watched,
        clients,
    })
}

/// The daemon's configuration: `bench swings`'s, each player bound to a user of its own, room
/// for the clients, and the cloud's JWT secret.
fn config(dir: &Path, bench: &PhoneBench) -> String {
    let mut swing_bench = bench.load.clone();
    swing_bench.load_devices += bench.probes;
    let mut config = swings::config(dir, &swing_bench);
    for code in player_codes(bench) {
        let line = format!("code = \"{code}\"\n");
        config = config.replace(&line, &format!("{line}user = \"{}\"\n", user_of(&code)));
    }
    let caps = device::CONNECTION_CAPS;
    config.replacen(
        caps,
        &format!(
            "{caps}max_phones = {}\nmax_screens = {}\n\n[auth]\njwt_secret = \"{JWT_SECRET}\"\n",
            bench.phones.max(1),
            bench.screens.max(1)
        ),
        1,
    )
}

fn player_codes(bench: &PhoneBench) -> Vec<String> {
    swings::court_fleets("", &bench.load)
        .iter()
        .flat_map(|f| (0..f.devices).map(move |i| f.code(i)))
        .collect()
}

fn user_of(code: &str) -> String {
    format!("u-{code}")
}

/// An HS256 token for `user`, valid for an hour.
fn token(user: &str) -> Result<String, BenchError> {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": user, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .map_err(|e| BenchError::Daemon(format!("signing a phone's token: {e}")))
}

/// What the clients count as they read.
#[derive(Debug, Default)]
struct Seen {
    phone_swings: AtomicU64,
    screen_swings: AtomicU64,
    lagged: AtomicU64,
    errors: AtomicU64,
}

async fn run_once(
    exe: &Path,
    bench: &PhoneBench,
    watched: bool,
) -> Result<(RunFigures, ClientFigures), BenchError> {
    let dir = crate::children::scratch_dir()?;
    let daemon = start_daemon_with(exe, dir.path(), &config(dir.path(), bench))?;
    let pid = daemon.child.id();
    let addr = daemon.addr.clone();
    let seen = Arc::new(Seen::default());
    let stop_clients = CancellationToken::new();
    let clients = if watched {
        connect_clients(&addr, bench, &seen, &stop_clients).await?
    } else {
        Vec::new()
    };
    let (cpu_before, _, _) = process_usage(pid).unwrap_or_default();
    let started = Instant::now();
    let phases = Arc::new(Phases::new(1));
    phases.set(0);
    let stop_devices = CancellationToken::new();
    let probes = start_devices(&addr, bench, &phases, stop_devices.clone()).await?;
    let progress = Arc::new(FleetProgress::default());
    let courts: Vec<_> = swings::court_fleets(&addr, &bench.load)
        .into_iter()
        .map(|options| tokio::spawn(fleet::run(options, progress.clone(), None)))
        .collect();
    let mut errors = 0;
    for court in courts {
        match court.await {
            Ok(reports) => errors += reports.iter().filter(|(_, r)| r.is_err()).count() as u64,
            Err(e) => {
                log::warn!("court task: {e}");
                errors += 1;
            }
        }
    }
    stop_devices.cancel();
    let (_, device_errors) = device::join(probes).await;
    let figures = swings::drained_metrics(&addr).await?;
    let elapsed = started.elapsed();
    let (cpu_after, _, peak) = process_usage(pid).unwrap_or_default();
    tokio::time::sleep(SETTLE).await;
    stop_clients.cancel();
    for client in clients {
        if client.await.is_err() {
            seen.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    // The pushes counted after the clients have read all they will.
    let after = swings::drained_metrics(&addr).await?;
    drop(daemon);
    let ms = |scrape: &swings::Scrape, name: &str, role: Option<&str>| -> [f64; 3] {
        ["p50", "p99", "max"].map(|q| {
            let sample = match role {
                Some(role) => format!("shuttlegate_{name}_{q}_seconds{{role=\"{role}\"}}"),
                None => format!("shuttlegate_{name}_{q}_seconds"),
            };
            scrape.value(&sample) * 1e3
        })
    };
    let count = |name: &str, role: &str| {
        after.value(&format!("shuttlegate_{name}_total{{role=\"{role}\"}}")) as u64
    };
    let run = RunFigures {
        acks: phases.latency(0),
        daemon_cpu_cores: (cpu_after - cpu_before) / elapsed.as_secs_f64(),
        daemon_peak_rss_mib: peak,
        swings: figures.value("shuttlegate_swings_published_total") as u64,
        swing_live_ms: ms(&figures, "swing_latency", None),
        errors: errors + device_errors,
    };
    let clients = ClientFigures {
        phone_pushes: count("swing_pushes", "phone"),
        phone_ms: ms(&after, "swing_push_latency", Some("phone")),
        screen_pushes: count("swing_pushes", "screen"),
        screen_ms: ms(&after, "swing_push_latency", Some("screen")),
        phone_swings_received: seen.phone_swings.load(Ordering::Relaxed),
        screen_swings_received: seen.screen_swings.load(Ordering::Relaxed),
        dropped_phone: count("client_pushes_dropped", "phone"),
        dropped_screen: count("client_pushes_dropped", "screen"),
        lagged_told: seen.lagged.load(Ordering::Relaxed),
        client_errors: seen.errors.load(Ordering::Relaxed),
    };
    Ok((run, clients))
}

/// The paced probes (their acks timed in `phases`) and the unpaced load devices, sending
/// until `stop`. Probes come first in the load devices' codes.
async fn start_devices(
    addr: &str,
    bench: &PhoneBench,
    phases: &Arc<Phases>,
    stop: CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<Result<u64, device::DeviceError>>>, BenchError> {
    let blocks = Arc::new(device::sample_blocks(PROBE_BATCH_SAMPLES));
    let unmeasured = Arc::new(Phases::new(0));
    let mut tasks = Vec::new();
    for i in 0..bench.probes + bench.load.load_devices {
        let probe = i < bench.probes;
        let pacing = Pacing {
            batches: None,
            interval: probe.then_some(bench.probe_interval),
            window: if probe {
                8
            } else {
                bench.load.load_window.max(1)
            },
            batch_samples: PROBE_BATCH_SAMPLES,
            rate_hz: PROBE_RATE_HZ,
            stop: stop.clone(),
        };
        let code = swings::load_code(i);
        let ws = device::connect(addr, &code, &swings::load_token(i)).await?;
        let phases = if probe { phases } else { &unmeasured };
        tasks.push(tokio::spawn(device::drive(
            code,
            ws,
            pacing,
            blocks.clone(),
            phases.clone(),
        )));
    }
    Ok(tasks)
}

/// Connects every phone (spread over the players' users) and screen, each past its welcome,
/// and starts them reading until `stop`.
async fn connect_clients(
    addr: &str,
    bench: &PhoneBench,
    seen: &Arc<Seen>,
    stop: &CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, BenchError> {
    let users: Vec<String> = player_codes(bench).iter().map(|c| user_of(c)).collect();
    let mut urls = Vec::new();
    for j in 0..bench.phones {
        let user = &users[j % users.len()];
        let url = format!("ws://{addr}/ws/miniprogram/{user}/?token={}", token(user)?);
        urls.push((url, true));
    }
    for _ in 0..bench.screens {
        urls.push((format!("ws://{addr}/ws/dashboard/"), false));
    }
    let connecting = urls.into_iter().map(|(url, phone)| async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .map_err(|e| BenchError::Daemon(format!("connecting a client: {e}")))?;
        // Past the welcome (and a screen's first court_state): connected and subscribed.
        let _welcome = ws.next().await;
        Ok::<_, BenchError>((ws, phone))
    });
    let connected = futures_util::future::join_all(connecting).await;
    let mut tasks = Vec::new();
    for client in connected {
        let (ws, phone) = client?;
        tasks.push(tokio::spawn(read(ws, phone, seen.clone(), stop.clone())));
    }
    Ok(tasks)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads one client's messages until `stop`, counting swings and `lagged` notices.
async fn read(mut ws: Ws, phone: bool, seen: Arc<Seen>, stop: CancellationToken) {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return,
            m = ws.next() => m,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                seen.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
            continue;
        };
        match value["type"].as_str() {
            Some("swing") if phone => seen.phone_swings.fetch_add(1, Ordering::Relaxed),
            Some("swing") => seen.screen_swings.fetch_add(1, Ordering::Relaxed),
            Some("lagged") => seen
                .lagged
                .fetch_add(value["dropped"].as_u64().unwrap_or(0), Ordering::Relaxed),
            _ => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench() -> PhoneBench {
        PhoneBench {
            load: SwingBench {
                players: 3,
                rate_hz: 200.0,
                batch_samples: 40,
                load_devices: 1,
                load_window: 8,
                duration: Duration::from_secs(1),
                commit_interval: Duration::from_millis(2),
                seed: 7,
            },
            phones: 5,
            screens: 2,
            probes: 2,
            probe_interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn every_player_is_bound_to_a_user_and_the_clients_have_room_and_a_jwt_secret() {
        let b = bench();
        let config = config(Path::new("/tmp/x"), &b);
        let settings =
            shuttlegate::config::load_str(Path::new("bench.toml"), &config).expect("valid");
        // 3 players, 2 probes and 1 load device.
        assert_eq!(settings.devices.len(), 6);
        let bound: Vec<_> = settings
            .devices
            .iter()
            .filter_map(|d| d.user.clone())
            .collect();
        assert_eq!(bound, ["u-court00-p01", "u-court00-p02", "u-court01-p01"]);
        assert_eq!(
            (settings.limits.max_phones, settings.limits.max_screens),
            (5, 2)
        );
        assert!(settings.auth.jwt.is_some(), "phones can be verified");
    }

    #[test]
    fn a_signed_token_names_its_user() {
        let token = token("u-court00-p01").expect("signed");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = true;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(JWT_SECRET.as_bytes()),
            &validation,
        )
        .expect("valid");
        assert_eq!(claims.claims["sub"], "u-court00-p01");
    }
}
