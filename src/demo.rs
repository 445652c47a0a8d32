//! `shuttlegate demo`: the gateway on `config/demo.toml` with a temporary state directory and
//! simulated hubs, in one process, narrated on the terminal until Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::Settings;
use crate::court::system_clock;
use crate::daemon::{self, DaemonError};
use crate::live::LiveEvent;
use shuttlegate_sim::client::Firmware;
use shuttlegate_sim::fleet::{self, FleetOptions, FleetProgress, Motion};

/// The demo configuration, built in so `demo` works from any directory.
pub const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

/// [`DEMO_CONFIG`], loaded: what `demo` runs without `--config`.
pub fn builtin_settings() -> Result<Settings, crate::config::ConfigError> {
    crate::config::load_str(
        std::path::Path::new("config/demo.toml (built in)"),
        DEMO_CONFIG,
    )
}

/// Runs the demo until `stop` resolves.
pub async fn run(
    mut settings: Settings,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    let state = tempfile::tempdir().map_err(DaemonError::Http)?;
    settings.gateway.state_dir = state.path().to_path_buf();
    let running = daemon::start(&settings, system_clock()).await?;
    let url = format!("ws://{}", running.http_addr);
    println!(
        "shuttlegate demo: gateway listening on http://{}",
        running.http_addr
    );
    println!("  journal in {} (deleted on exit)", state.path().display());
    println!("  devices connect at {url}/ws/esp32/<code>/");

    let compact = FleetOptions {
        url: url.clone(),
        devices: 4,
        firmware: Firmware::Compact,
        rate_hz: 200.0,
        duration: Duration::from_secs(3600),
        code_prefix: "demo-".into(),
        token_prefix: Some("demo-token-".into()),
        batch_samples: 50,
        utc_offset_s: utc_offset_s(settings.gateway.timezone),
        seed: 1,
        motion: Motion::Court,
    };
    let progress = Arc::new(FleetProgress::default());
    // The V3.3 hub waits to be told to start, as in the field.
    let v33 = FleetOptions {
        devices: 1,
        firmware: Firmware::V33,
        code_prefix: "v33-".into(),
        token_prefix: None,
        batch_samples: 30,
        seed: 2,
        ..compact.clone()
    };
    let fleet = tokio::spawn(fleet::run(compact, progress.clone(), None));
    let v33_fleet = tokio::spawn(fleet::run(v33, progress.clone(), None));
    tokio::time::sleep(Duration::from_millis(500)).await;
    match running.court.start_session("v33-01", None).await {
        Ok(id) => {
            println!("  started session {id} on v33-01 (V3.3 firmware waits for start_collection)")
        }
        Err(e) => println!("  could not start a session on v33-01: {e}"),
    }

    tokio::spawn(narrate(running.live.subscribe()));
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut last = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let batches = progress.acked_batches.load(Ordering::Relaxed);
                let samples = progress.acked_samples.load(Ordering::Relaxed);
                let online = running
                    .court
                    .read(|c| c.devices().filter(|(_, d)| d.online).count())
                    .await
                    .unwrap_or_default();
                println!(
                    "  devices online {online} | durable acks {batches} batches ({}/s), {samples} samples ({}/s)",
                    (batches - last.0) / 2, (samples - last.1) / 2
                );
                last = (batches, samples);
            }
        }
    }
    println!("shuttlegate demo: stopping (draining connections, closing the journal)");
    fleet.abort();
    v33_fleet.abort();
    running.stop().await?;
    println!("shuttlegate demo: stopped cleanly");
    Ok(())
}

/// The court's current UTC offset, for the simulated V3.3 hubs' local-time stamps.
fn utc_offset_s(tz: chrono_tz::Tz) -> i32 {
    use chrono::Offset;
    chrono::Utc::now()
        .with_timezone(&tz)
        .offset()
        .fix()
        .local_minus_utc()
}

/// Prints each swing and session summary as the analysis publishes it.
async fn narrate(mut live: tokio::sync::broadcast::Receiver<LiveEvent>) {
    loop {
        match live.recv().await {
            Ok(LiveEvent::Swing { json, .. }) => {
                let Ok(s) = serde_json::from_str::<serde_json::Value>(&json) else {
                    continue;
                };
                let kmh = |v: &serde_json::Value| {
                    v.as_f64().map_or("–".to_owned(), |x| format!("{x:.0}"))
                };
                println!(
                    "  swing {} #{}: {} {} {} {} racket {} km/h, shuttle {} km/h",
                    s["device"].as_str().unwrap_or("?"),
                    s["swing_no"],
                    if s["impact"] == true {
                        "hit"
                    } else {
                        "air swing"
                    },
                    s["stroke"].as_str().unwrap_or("?"),
                    s["side"].as_str().unwrap_or("?"),
                    s["height"].as_str().unwrap_or("?"),
                    kmh(&s["racket_speed_kmh"]),
                    kmh(&s["shuttle_speed_kmh"]),
                );
            }
            Ok(LiveEvent::Summary { device, .. }) => {
                println!("  session summary of {device} journaled")
            }
            Ok(LiveEvent::DeviceStatus { .. } | LiveEvent::Rally { .. }) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                println!("  ({n} live events skipped)")
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
