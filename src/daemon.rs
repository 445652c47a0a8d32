//! The daemon: wires configuration, journal, court driver, ingest, analysis pipeline, uplinks
//! and transport into one process, and takes it down again in order.
//!
//! Start-up order matters: the journal is opened (lock, recovery; on a blocking thread) before
//! anything listens, the court is rebuilt from the journal's events (from the newest court
//! snapshot on, so the time to ready does not grow with the journal), and only then is the
//! listener bound and the bound address announced — so "ready" means devices can be
//! acknowledged. Shutdown runs the other way: stop accepting, drain connections (in-flight
//! appends reach fsync and their acks go out), drain the analysis, stop the court driver (its
//! queued changes are journaled), close the journal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{Settings, SettingsHandle};
use crate::court::{Clock, CourtDriver, CourtHandle, Delivered};
use crate::device_watch::Watch;
use crate::health::HealthSources;
use crate::ingest::Ingest;
use crate::journal::{Fs, Journal, JournalError, JournalHealth, JournalOptions, StdFs, WhenFull};
use crate::live::Live;
use crate::notices::{self, Notices};
use crate::pipeline::{AnalysisFeed, AnalysisTask, ResumePoint};
use crate::service::Shutdown;
use crate::supervise::{self, Supervisor};
use crate::time_sync::TimeSync;
use crate::transport::admin::{self, AdminApi};
use crate::transport::admin_view;
use crate::transport::admin_ws::{self, AdminConsole};
use crate::transport::auth::AuthGuard;
use crate::transport::connections::Connections;
use crate::transport::http::{self, DeviceEndpoint, MetricsSources};
use crate::transport::listener::{self, Bound, Gate};
use crate::transport::metrics::ClientMetrics;
use crate::transport::phone::{self, PhoneEndpoint};
use crate::transport::screen::{self, ScreenEndpoint};
use crate::uplink::status::SinkBoard;
use crate::uplink::tls::TlsFiles;
use crate::uplink::{CloudCommand, CommandOutcome, HubOptions, MqttCounters, MqttOptions};
use shuttlegate_core::court::{Court, CourtOptions};
use shuttlegate_core::protocol::{CommandRequest, FrameClock};

/// How long shutdown waits for connections to drain before giving up on them.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How often the court's open state is re-journaled as a snapshot.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(600);
/// Longest wait between uplink reconnect attempts. After a long outage the backoff sits here,
/// and it is time lost before the backlog drains: 10 s keeps a court-hour's drain under a minute
/// while still sparing a broker that is down.
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// Why the daemon could not start or stopped uncleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("journal record: {0}")]
    Codec(#[from] crate::journal::CodecError),
    /// A start-up step on a blocking thread panicked (a bug): the daemon cannot start.
    #[error("{step} failed: {why}")]
    Blocking { step: &'static str, why: String },
    #[error("http server: {0}")]
    Http(std::io::Error),
    #[error("http.tls_listen: {0}")]
    Tls(#[from] crate::uplink::tls::TlsError),
    #[error("{0}")]
    Uplink(#[from] crate::uplink::UplinkError),
}

/// A running gateway, as a test or the `demo` holds it.
pub struct Running {
    pub http_addr: SocketAddr,
    /// The TLS listener's bound address, when `http.tls_listen` is set.
    pub tls_addr: Option<SocketAddr>,
    /// The court's settings, reloadable (SIGHUP calls `reload_file` on it).
    pub settings: SettingsHandle,
    /// The court: sessions, commands, its change stream.
    pub court: CourtHandle,
    pub journal: Journal,
    /// Live results (swings, summaries, device status) as they happen.
    pub live: Live,
    pub shutdown: Shutdown,
    driver: CourtDriver,
    /// The supervised tasks; [`Supervisor::fatal`] says whether one stopped the daemon.
    pub supervisor: Supervisor,
}

impl Running {
    /// Two-phase shutdown; returns once the journal is closed.
    pub async fn stop(self) -> Result<(), DaemonError> {
        self.shutdown.token.cancel();
        let drained = self.shutdown.drain(DRAIN_DEADLINE).await;
        if !drained {
            log::warn!("shutdown: connections still open after {DRAIN_DEADLINE:?}; closing anyway");
        }
        // Connections and the analysis are done reporting to the court: its queued changes go to
        // the journal, then the journal closes (flushing and fsyncing them).
        self.driver.stop().await;
        self.journal.close().await?;
        Ok(())
    }
}

/// Starts every part of the gateway and returns once it is ready to acknowledge data.
pub async fn start(settings: &Settings, clock: Clock) -> Result<Running, DaemonError> {
    start_on(settings, clock, Arc::new(StdFs)).await
}

/// [`start`] with the journal on `fs`: the filesystem seam, for tests that inject disk faults
/// into a whole gateway (the binary always runs on [`StdFs`]).
pub async fn start_on(
    settings: &Settings,
    clock: Clock,
    fs: Arc<dyn Fs>,
) -> Result<Running, DaemonError> {
    let seams = Seams {
        fs,
        time_sync: TimeSync::configured(settings.gateway.clock_check),
    };
    start_with(settings, clock, seams).await
}

/// What a test may replace in a whole gateway (the binary runs on the real ones).
pub struct Seams {
    /// The journal's filesystem ([`StdFs`]).
    pub fs: Arc<dyn Fs>,
    /// Whether the clock is synchronised (`TimeSync::configured`: the kernel's verdict).
    pub time_sync: TimeSync,
}

/// [`start`] on `seams`.
pub async fn start_with(
    settings: &Settings,
    clock: Clock,
    seams: Seams,
) -> Result<Running, DaemonError> {
    let Seams { fs, time_sync } = seams;
    let (journal, court) = blocking("opening the journal", {
        let settings = settings.clone();
        move || -> Result<(Journal, Court), DaemonError> {
            let journal = open_journal(&settings, fs)?;
            let court = restore_court(&settings, &journal)?;
            Ok((journal, court))
        }
    })
    .await??;
    let started = std::time::Instant::now();
    let resume_point = ResumePoint::of(&court, journal.durable_id());
    let shutdown = Shutdown::new();
    // What the connection handshakes and the admin API read: the one reloadable copy.
    let settings_handle = SettingsHandle::new(settings.clone());
    let supervisor = Supervisor::new(shutdown.clone());
    supervisor.spawn_critical(
        "journal",
        journal_stops(journal.health(), shutdown.token.clone()),
    );
    let connections = Arc::new(Connections::default());
    let live = Live::new(1024);
    let frames = FrameClock::new(settings.gateway.timezone);
    let (court, driver) = crate::court::spawn(
        court,
        journal.clone(),
        connections.clone(),
        frames,
        clock,
        live.clone(),
    );
    supervisor.spawn_critical(
        "court-backlog",
        court_backlog_ends(driver.ended(), shutdown.token.clone()),
    );
    let (feed, analysis_rx) = AnalysisFeed::new(4096);
    let analysis_metrics = feed.metrics();
    let watch = Watch::new(settings_handle.clone(), frames);
    let ingest = Arc::new(Ingest::new(
        court.clone(),
        journal.clone(),
        frames,
        feed,
        watch.clone(),
        shutdown.tasks.clone(),
    ));
    // Critical: without it nothing is analysed or published; the daemon stops and systemd
    // restarts it (the resume picks the open sessions up from the journal).
    supervisor.spawn_critical(
        "analysis",
        crate::pipeline::run(AnalysisTask {
            inputs: analysis_rx,
            shutdown: shutdown.token.clone(),
            court: court.clone(),
            journal: journal.clone(),
            live: live.clone(),
            settings: settings.clone(),
            resume_point,
            reloads: settings_handle.subscribe(),
            metrics: analysis_metrics.clone(),
            watch: watch.clone(),
        }),
    );
    spawn_snapshots(&court, &shutdown, &supervisor);
    follow_reloads(&settings_handle, &court, &shutdown, &supervisor);
    let sinks = SinkBoard::default();
    let mqtt_counters = start_uplinks(settings, &journal, &court, &shutdown, &supervisor, &sinks)?;

    warn_tokenless(settings);
    for warning in &settings.warnings {
        log::warn!("config: {warning}");
    }
    let guard = Arc::new(AuthGuard::default());
    let clients = Arc::new(ClientMetrics::default());
    listener::warn_if_descriptors_short(settings.limits.max_connections);
    let device_connections = connections.clone();
    let endpoint = Arc::new(DeviceEndpoint {
        settings: settings_handle.clone(),
        connections,
        handler: ingest,
        shutdown: shutdown.clone(),
        guard: guard.clone(),
        metrics: clients.clone(),
    });
    let plain = bind(settings.http.listen).await?;
    let http_addr = plain.local_addr().map_err(DaemonError::Http)?;
    let mut listeners = vec![Bound {
        listener: plain,
        tls: None,
    }];
    let mut tls_addr = None;
    if let Some(tls) = &settings.http.tls {
        let acceptor = crate::transport::tls::acceptor(&tls.cert_file, &tls.key_file)?;
        let listener = bind(tls.listen).await?;
        tls_addr = Some(listener.local_addr().map_err(DaemonError::Http)?);
        listeners.push(Bound {
            listener,
            tls: Some(acceptor),
        });
    }
    let gate = Gate::new(listener_limits(settings), settings_handle.clone());
    let metrics = MetricsSources {
        analysis: analysis_metrics,
        supervisor: Some(supervisor.clone()),
        journal: Some(journal.clone()),
        auth: Some(guard.clone()),
        mqtt: mqtt_counters,
        listener: Some(gate.clone()),
        clients: Some(clients.clone()),
        sinks: Some(sinks.clone()),
        time_sync: Some(time_sync.clone()),
        watch: Some(watch.clone()),
        reloads: Some(settings_handle.reload_counts()),
    };
    let health = HealthSources {
        supervisor: supervisor.clone(),
        journal: journal.clone(),
        sinks: sinks.clone(),
        time_sync: time_sync.clone(),
    };
    let phones = Arc::new(PhoneEndpoint {
        settings: settings_handle.clone(),
        court: court.clone(),
        live: live.clone(),
        journal: journal.clone(),
        guard: guard.clone(),
        shutdown: shutdown.clone(),
        connected: Arc::default(),
        metrics: clients.clone(),
    });
    let sources = admin_view::Sources {
        journal: journal.clone(),
        supervisor: supervisor.clone(),
        sinks,
        connections: device_connections,
        started,
        watch,
        clients: clients.clone(),
        time_sync,
    };
    let screens = Arc::new(ScreenEndpoint {
        settings: settings_handle.clone(),
        court: court.clone(),
        sources: sources.clone(),
        feed: Arc::default(),
        live: live.clone(),
        guard: guard.clone(),
        shutdown: shutdown.clone(),
        connected: Arc::default(),
        metrics: clients.clone(),
    });
    let (feeding, token) = (screens.clone(), shutdown.token.clone());
    supervisor.spawn_restarting("screen-feed", supervise::restart_backoff(), move || {
        screen::run_feed(feeding.clone(), token.clone())
    });
    let mut router = http::router(endpoint)
        .merge(phone::routes(phones))
        .merge(screen::routes(screens))
        .merge(http::metrics_routes(metrics))
        .merge(crate::health::routes(health));
    if settings.auth.admin_token.is_some() {
        router = router.merge(admin::routes(Arc::new(AdminApi {
            settings: settings_handle.clone(),
            court: court.clone(),
            guard: guard.clone(),
            shutdown: shutdown.clone(),
        })));
        let console = staff_console(
            &settings_handle,
            &court,
            sources,
            guard,
            clients,
            &shutdown,
            &supervisor,
        );
        router = router.merge(admin_ws::routes(console));
    }
    // The accept loops end only at shutdown: one that ends (or panics) earlier leaves a daemon
    // nobody can reach, so it stops the daemon like any critical task.
    let serve = listener::serve(listeners, router, gate, shutdown.clone());
    supervisor.spawn_critical("http", async move {
        serve.await;
        Ok::<(), std::convert::Infallible>(())
    });
    Ok(Running {
        http_addr,
        tls_addr,
        settings: settings_handle,
        court,
        journal,
        live,
        shutdown,
        driver,
        supervisor,
    })
}

/// The staff's console (`/ws/admin/`) and the task that raises its system notifications
/// (restarted if it dies: a new run starts from what it samples).
fn staff_console(
    settings: &SettingsHandle,
    court: &CourtHandle,
    sources: admin_view::Sources,
    guard: Arc<AuthGuard>,
    metrics: Arc<ClientMetrics>,
    shutdown: &Shutdown,
    supervisor: &Supervisor,
) -> Arc<AdminConsole> {
    let notices = Notices::default();
    let watched = notices::Watched {
        court: court.clone(),
        journal: sources.journal.clone(),
        supervisor: supervisor.clone(),
        sinks: sources.sinks.clone(),
        time_sync: sources.time_sync.clone(),
        watch: sources.watch.clone(),
    };
    let (running, token) = (notices.clone(), shutdown.token.clone());
    supervisor.spawn_restarting("admin-notices", supervise::restart_backoff(), move || {
        notices::run(running.clone(), watched.clone(), token.clone())
    });
    Arc::new(AdminConsole {
        settings: settings.clone(),
        court: court.clone(),
        sources,
        notices,
        guard,
        shutdown: shutdown.clone(),
        connected: Default::default(),
        metrics,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// The listeners' timeouts, from `[http]`.
fn listener_limits(settings: &Settings) -> listener::ListenerLimits {
    listener::ListenerLimits {
        header_read: settings.http.header_read_timeout,
        timeouts: crate::transport::admission::Timeouts {
            handshake: settings.http.handshake_timeout,
            keep_alive: settings.http.keep_alive_timeout,
        },
    }
}

/// Runs blocking start-up work (disk reads) on a blocking thread, off the runtime's workers.
async fn blocking<T: Send + 'static>(
    step: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DaemonError::Blocking {
            step,
            why: e.to_string(),
        })
}

/// The journal's options for this court: under `state_dir`, with one consumer per enabled
/// uplink sink (the daemon and `replay --journal` open it alike).
pub fn journal_options(settings: &Settings) -> JournalOptions {
    JournalOptions {
        dir: journal_dir(settings),
        max_bytes: settings.journal.max_bytes,
        when_full: match settings.journal.when_full {
            crate::config::WhenFull::DropOldestRaw => WhenFull::DropOldestRaw,
            crate::config::WhenFull::Refuse => WhenFull::Refuse,
        },
        commit_interval: settings.journal.commit_interval,
        segment_bytes: settings.journal.segment_bytes,
        consumers: journal_consumers(settings),
        failure_grace: settings.journal.failure_grace,
        device_share: device_share(settings),
    }
}

/// A share only means something between devices: a court with one device gives it the whole
/// journal (read at start, like the journal's other options).
fn device_share(settings: &Settings) -> f64 {
    if settings.devices.len() > 1 {
        settings.journal.device_share
    } else {
        1.0
    }
}

/// Where the court's journal lives.
pub fn journal_dir(settings: &Settings) -> std::path::PathBuf {
    settings.gateway.state_dir.join("journal")
}

fn open_journal(settings: &Settings, fs: Arc<dyn Fs>) -> Result<Journal, DaemonError> {
    let options = journal_options(settings);
    let (journal, report) = Journal::open_with_fs(options, fs)?;
    log::info!("journal recovered: {report:?}");
    Ok(journal)
}

/// The journal's writer is a thread of its own, outside the supervisor: this task stands for it.
/// It dies — and the daemon stops, exits non-zero, and systemd restarts it — when the journal
/// stops for good (a failed fsync, a failed roll or write that outlasted `failure_grace`, a
/// panic in the writer) or its writer thread ends. A failure being retried is the journal's to
/// ride out (it logs it; devices are answered `success:false` meanwhile).
async fn journal_stops(
    mut health: tokio::sync::watch::Receiver<JournalHealth>,
    token: tokio_util::sync::CancellationToken,
) -> Result<(), String> {
    let stopped = tokio::select! {
        biased;
        () = token.cancelled() => return Ok(()),
        stopped = health.wait_for(|h| matches!(h, JournalHealth::Stopped(_))) => {
            stopped.map(|h| h.clone())
        }
    };
    match stopped {
        Ok(JournalHealth::Stopped(why)) => Err(format!("the journal stopped: {why}")),
        _ => Err("the journal's writer thread ended".to_owned()),
    }
}

/// The court's backlog task (it hands events to the journal when it has no room) runs until
/// the court driver is stopped, after shutdown began; ended before, court events would wait for
/// ever. Critical: its end stops the daemon.
async fn court_backlog_ends(
    mut ended: tokio::sync::watch::Receiver<Option<String>>,
    token: tokio_util::sync::CancellationToken,
) -> Result<(), String> {
    tokio::select! {
        biased;
        () = token.cancelled() => Ok(()),
        why = ended.wait_for(Option::is_some) => {
            let why = why.map_or_else(|_| "ended".to_owned(), |w| w.clone().unwrap_or_default());
            Err(format!("the court's backlog task {why}"))
        }
    }
}

/// Rebuilds sessions and command queues from the journal's events: the newest court snapshot
/// and the events after it (see `court`'s module doc), so a restart reads the journal's newest
/// segments, not all of it.
fn restore_court(settings: &Settings, journal: &Journal) -> Result<Court, DaemonError> {
    let codes = settings.devices.iter().map(|d| d.code.clone());
    let options = CourtOptions {
        max_open_sessions_per_device: settings.limits.max_open_sessions_per_device,
        session_starts_per_minute: settings.limits.session_starts_per_minute,
        ..CourtOptions::default()
    };
    let mut court = Court::new(codes, options);
    let events = crate::court::restore::court_events_since_snapshot(journal)?;
    let restored = events.len();
    court.restore(events);
    log::info!("court restored from {restored} journaled events");
    Ok(court)
}

/// Starts the enabled uplink sinks as readers of the journal, and the task that carries cloud
/// commands to devices. They stop when shutdown begins; their cursors say where to resume.
///
/// A sink that dies is rebuilt from its options and restarted by the supervisor (it resumes at
/// its cursor, at least once); the commands task holds the channel's receiver and cannot be
/// rebuilt, so its death stops the daemon. A sink's first start happens here, so a setting it
/// refuses stops the daemon's start. Gives back the MQTT sink's counters, for `/metrics`.
fn start_uplinks(
    settings: &Settings,
    journal: &Journal,
    court_handle: &CourtHandle,
    shutdown: &Shutdown,
    supervisor: &Supervisor,
    board: &SinkBoard,
) -> Result<Option<MqttCounters>, DaemonError> {
    let mut mqtt_counters = None;
    let outbox = Arc::new(journal.clone());
    let (venue, court) = (&settings.gateway.venue, &settings.gateway.court);
    if let Some(m) = &settings.uplink.mqtt {
        let url = m.endpoint.url.expose();
        let mut options = MqttOptions::new(url, &m.topic_prefix, venue, court);
        options.client_id = Some(m.client_id.clone());
        options.username = m.username.clone();
        options.password = m.password.clone();
        options.tls = TlsFiles {
            ca_file: m.ca_file.clone(),
            client_cert: m.client_cert_file.clone(),
            client_key: m.client_key_file.clone(),
        };
        options.keep_alive = m.keep_alive;
        options.inflight = m.inflight;
        options.max_packet_bytes = m.max_packet_bytes;
        options.replay_rate = (m.replay_rate > 0).then_some(f64::from(m.replay_rate));
        // Raw batches may take three quarters of the in-flight window: swings, summaries and
        // events always find a free slot, even while a backlog drains.
        options.raw_in_flight = (usize::from(m.inflight) * 3 / 4).max(1);
        options.backoff_max = RECONNECT_MAX;
        options.devices = settings.devices.iter().map(|d| d.code.clone()).collect();
        mqtt_counters = Some(options.counters.clone());
        let (commands, rx) = mpsc::channel(64);
        let (outbox, token, board) = (outbox.clone(), shutdown.token.clone(), board.clone());
        let spawn = move || {
            // Each start gets a clone of the sender: the receiver (`cloud_commands`) outlives
            // restarts, and closes only when the supervisor drops this closure at shutdown.
            crate::uplink::mqtt::spawn(
                options.clone(),
                outbox.clone(),
                commands.clone(),
                token.clone(),
            )
            .map(|sink| {
                board.follow("mqtt", sink.snapshot);
                sink.task
            })
        };
        supervise_sink(supervisor, "uplink-mqtt", spawn)?;
        let court_handle = court_handle.clone();
        supervisor.spawn_critical("cloud-commands", async move {
            cloud_commands(rx, court_handle).await;
            Ok::<(), std::convert::Infallible>(())
        });
        log::info!("uplink: MQTT to {} as `{}`", m.endpoint.url, m.client_id);
    }
    if let Some(h) = &settings.uplink.hub {
        let url = h.endpoint.url.expose();
        let mut options = HubOptions::new(url, h.token.expose(), venue, court);
        options.acks = h.acks;
        options.ping_interval = h.ping_interval;
        options.replay_rate = (h.replay_rate > 0).then_some(f64::from(h.replay_rate));
        options.backoff_max = RECONNECT_MAX;
        let (token, board) = (shutdown.token.clone(), board.clone());
        let spawn = move || {
            crate::uplink::hub::spawn(options.clone(), outbox.clone(), token.clone()).map(|sink| {
                board.follow("hub", sink.snapshot);
                sink.task
            })
        };
        supervise_sink(supervisor, "uplink-hub", spawn)?;
        let mode = if h.acks { "acked" } else { "fire-and-forget" };
        log::info!("uplink: notification hub at {} ({mode})", h.endpoint.url);
    }
    Ok(mqtt_counters)
}

/// Starts a sink now (a setting it refuses stops the daemon's start) and hands it to the
/// supervisor, which rebuilds it with `spawn` whenever it dies.
fn supervise_sink(
    supervisor: &Supervisor,
    name: &'static str,
    spawn: impl Fn() -> Result<tokio::task::JoinHandle<()>, crate::uplink::UplinkError> + Send + 'static,
) -> Result<(), DaemonError> {
    let mut first = Some(spawn()?);
    supervisor.spawn_restarting(name, supervise::restart_backoff(), move || {
        sink_run(first.take().map_or_else(&spawn, Ok))
    });
    Ok(())
}

/// One run of a sink as the supervisor sees it: the end of the sink's task. A panic in the sink
/// is passed on as a panic of this run, so the supervisor reports the sink's own message.
async fn sink_run(
    started: Result<tokio::task::JoinHandle<()>, crate::uplink::UplinkError>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match started?.await {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(e.into()),
    }
}

/// Carries validated cloud commands to devices and answers what became of each.
async fn cloud_commands(mut rx: mpsc::Receiver<CloudCommand>, court: CourtHandle) {
    while let Some(cmd) = rx.recv().await {
        let request = CommandRequest::parse(
            "device",
            &cmd.device,
            &cmd.command,
            &cmd.params,
            Some(&cmd.command_id),
        );
        let outcome = match request {
            Err(e) => CommandOutcome::Rejected {
                reason: e.to_string(),
            },
            Ok(request) => match court.send_command(request).await {
                Ok(Delivered::Pushed { .. }) => CommandOutcome::Pushed,
                Ok(Delivered::Queued { .. }) => CommandOutcome::Queued,
                // A redelivery (the broker after a reconnect, or the cloud's retry).
                Ok(Delivered::Duplicate(first)) => CommandOutcome::duplicate(&first),
                Err(e) => CommandOutcome::Rejected {
                    reason: e.to_string(),
                },
            },
        };
        log::info!(
            "cloud command {} `{}` for {}: {outcome:?}",
            cmd.command_id,
            cmd.command,
            cmd.device
        );
        let _ = cmd.reply.send(outcome);
    }
}

/// Devices a reload adds join the court (their handshake already reads the new settings).
/// Restarted if it dies: each run first applies the settings as they are now.
fn follow_reloads(
    settings: &SettingsHandle,
    court: &CourtHandle,
    shutdown: &Shutdown,
    supervisor: &Supervisor,
) {
    let (settings, court, token) = (settings.clone(), court.clone(), shutdown.token.clone());
    supervisor.spawn_restarting("court-reloads", supervise::restart_backoff(), move || {
        let mut reloads = settings.subscribe();
        reloads.mark_changed();
        apply_reloads(reloads, court.clone(), token.clone())
    });
}

async fn apply_reloads(
    mut reloads: tokio::sync::watch::Receiver<Arc<Settings>>,
    court: CourtHandle,
    token: tokio_util::sync::CancellationToken,
) -> Result<(), std::convert::Infallible> {
    loop {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            changed = reloads.changed() => if changed.is_err() { return Ok(()) },
        }
        let codes: Vec<String> = reloads
            .borrow_and_update()
            .devices
            .iter()
            .map(|d| d.code.clone())
            .collect();
        let added = court
            .request(move |c, _| {
                c.add_devices(codes);
                Ok((shuttlegate_core::court::Outcome::default(), ()))
            })
            .await;
        if let Err(e) = added {
            log::error!("applying a configuration reload to the court: {e}");
        }
    }
}

/// Journals the court's open state at start and every [`SNAPSHOT_EVERY`]. Restarted if it
/// dies (a restart journals a snapshot at once).
fn spawn_snapshots(court: &CourtHandle, shutdown: &Shutdown, supervisor: &Supervisor) {
    let (court, token) = (court.clone(), shutdown.token.clone());
    supervisor.spawn_restarting("court-snapshots", supervise::restart_backoff(), move || {
        snapshots(court.clone(), token.clone())
    });
}

async fn snapshots(
    court: CourtHandle,
    token: tokio_util::sync::CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let mut every = tokio::time::interval(SNAPSHOT_EVERY);
    loop {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        // The driver journals it in order with every other change, so no change made after
        // it can be undone by it on restore.
        if let Err(e) = court.snapshot().await {
            log::error!("journaling the court snapshot: {e}");
        }
    }
}

/// The journal's consumers: one cursor per enabled uplink sink. Segments are deleted only once
/// every one of them has acknowledged past them.
fn journal_consumers(settings: &Settings) -> Vec<String> {
    let mut consumers = Vec::new();
    if settings.uplink.mqtt.is_some() {
        consumers.push("mqtt".to_owned());
    }
    if settings.uplink.hub.is_some() {
        consumers.push("hub".to_owned());
    }
    consumers
}

/// Says once at start which devices anyone on the court LAN can send as.
fn warn_tokenless(settings: &Settings) {
    for device in settings.devices.iter().filter(|d| d.is_tokenless()) {
        log::warn!(
            "device `{}` is accepted without a token (allow_tokenless): anyone on the court LAN can send as it",
            device.code
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::pipeline::AnalysisMetrics;
    use crate::supervise::TaskState;

    /// Issue 11: a sink whose task panics is reported — logged with its own message, counted on
    /// `/metrics` — and restarted (it resumes at its cursor), while the daemon runs on.
    #[tokio::test(start_paused = true)]
    async fn an_uplink_sink_that_panics_is_counted_on_metrics_and_restarted() {
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        supervisor.spawn_restarting("uplink-mqtt", supervise::restart_backoff(), move || {
            // The first run's sink task panics (a bug in the sink); the next one runs on.
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            let sink = tokio::spawn(async move {
                if first {
                    panic!("sink bug: unexpected record");
                }
                std::future::pending::<()>().await;
            });
            sink_run(Ok(sink))
        });
        for _ in 0..100 {
            if starts.load(Ordering::SeqCst) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::task::yield_now().await;
        let status = supervisor
            .snapshot()
            .into_iter()
            .find(|s| s.name == "uplink-mqtt")
            .expect("registered");
        assert_eq!(status.restarts, 1);
        assert_eq!(status.state, TaskState::Running);
        let failure = status.last_failure.unwrap_or_default();
        assert!(failure.contains("sink bug: unexpected record"), "{failure}");
        let metrics = http::render_metrics(MetricsSources {
            analysis: Arc::new(AnalysisMetrics::default()),
            supervisor: Some(supervisor.clone()),
            journal: None,
            auth: None,
            mqtt: None,
            listener: None,
            clients: None,
            sinks: None,
            time_sync: None,
            watch: None,
            reloads: None,
        });
        assert!(
            metrics.contains("shuttlegate_task_restarts_total{task=\"uplink-mqtt\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("shuttlegate_task_up{task=\"uplink-mqtt\"} 1"),
            "{metrics}"
        );
        assert!(
            supervisor.fatal().is_none(),
            "a sink's death does not stop the daemon"
        );
        shutdown.token.cancel();
    }

    /// Issue 12: the court's backlog task ending before shutdown (a panic) stops the daemon
    /// with its reason; ending after shutdown began is the normal stop.
    #[tokio::test]
    async fn the_court_backlog_task_ending_early_is_fatal_and_at_shutdown_is_not() {
        let (tx, ended) = tokio::sync::watch::channel(None);
        let token = tokio_util::sync::CancellationToken::new();
        let watcher = tokio::spawn(court_backlog_ends(ended.clone(), token.clone()));
        tx.send_replace(Some("panicked: index out of bounds".to_owned()));
        let why = watcher.await.unwrap().expect_err("fatal");
        assert!(
            why.contains("backlog task panicked: index out of bounds"),
            "{why}"
        );

        // At shutdown: cancelled first, then the driver's stop ends the task.
        let (tx, ended) = tokio::sync::watch::channel(None);
        let watcher = tokio::spawn(court_backlog_ends(ended, token.clone()));
        token.cancel();
        tx.send_replace(Some("ended".to_owned()));
        assert_eq!(watcher.await.unwrap(), Ok(()));
    }

    fn court_config(dir: &std::path::Path, devices: &str) -> Settings {
        let text = format!(
            "[gateway]\nvenue = \"v\"\ncourt = \"c\"\nstate_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n{devices}",
            dir.display()
        );
        crate::config::load_str(std::path::Path::new("court.toml"), &text).expect("valid")
    }

    /// The status of a device handshake: 101 when accepted.
    async fn handshake(addr: SocketAddr, device: &str, token: &str) -> u16 {
        let url = format!("ws://{addr}/ws/esp32/{device}/?token={token}");
        match tokio_tungstenite::connect_async(url).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            Err(e) => panic!("handshake: {e}"),
        }
    }

    /// What SIGHUP does, in process: a reload applies to the next handshake (tokens, devices) and
    /// the court adopts the devices it adds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_applies_to_the_next_handshake_and_the_court_adopts_new_devices() {
        let dir = tempfile::tempdir().unwrap();
        let before = "[[devices]]\ncode = \"a1\"\ntoken = \"old-token-a1\"\n";
        let running = start(
            &court_config(dir.path(), before),
            crate::court::system_clock(),
        )
        .await
        .expect("starts");
        let addr = running.http_addr;
        assert_eq!(handshake(addr, "a1", "old-token-a1").await, 101);
        assert_eq!(handshake(addr, "a2", "token-a2").await, 401);

        let after = "[[devices]]\ncode = \"a1\"\ntoken = \"new-token-a1\"\n\n[[devices]]\ncode = \"a2\"\ntoken = \"token-a2\"\n";
        let reloaded = running
            .settings
            .reload(court_config(dir.path(), after))
            .expect("only devices changed");
        assert!(!reloaded.is_empty());
        assert_eq!(handshake(addr, "a1", "old-token-a1").await, 401);
        assert_eq!(handshake(addr, "a1", "new-token-a1").await, 101);
        assert_eq!(handshake(addr, "a2", "token-a2").await, 101);
        let mut adopted = false;
        for _ in 0..100 {
            adopted = running
                .court
                .read(|c| c.device("a2").is_some())
                .await
                .unwrap();
            if adopted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(adopted, "the court knows the device the reload added");
        running.stop().await.expect("stops");
    }
}
