//! Durability of the real daemon under crashes and load: every batch a device saw acknowledged
//! is in `journal export`, exactly once, with the samples it sent.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use shuttlegate_sim::client::{Acked, Firmware};
use shuttlegate_sim::fleet::{self, FleetOptions, FleetProgress, Motion};
use tokio::sync::mpsc;

fn devices(n: usize) -> Vec<(String, String)> {
    (1..=n)
        .map(|i| (format!("hub-{i:02}"), format!("token-hub-{i:02}")))
        .collect()
}

fn court_config(dir: &std::path::Path, port: u16, n: usize) -> String {
    let owned = devices(n);
    let list: Vec<(&str, Option<&str>)> = owned
        .iter()
        .map(|(c, t)| (c.as_str(), Some(t.as_str())))
        .collect();
    // Every simulated hub connects from 127.0.0.1, at once: lift the per-address cap and the
    // handshake budget, which a court's hubs (one address each) never share.
    let caps = "[limits]\nmax_connections_per_address = 512\nmax_handshaking = 512\n";
    config(dir, &list, caps).replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn fleet_options(port: u16, n: usize, duration: Duration) -> FleetOptions {
    FleetOptions {
        url: format!("ws://127.0.0.1:{port}"),
        devices: n,
        firmware: Firmware::Compact,
        rate_hz: 200.0,
        duration,
        code_prefix: "hub-".into(),
        token_prefix: Some("token-hub-".into()),
        batch_samples: 20,
        utc_offset_s: 8 * 3600,
        seed: 7,
        motion: Motion::Still,
    }
}

/// Every acknowledged batch appears exactly once in the export, with the same samples (as f32).
fn check_export(dir: &std::path::Path, acked: &[Acked]) {
    let exported = export(dir, &[]);
    let mut stored: HashMap<(String, String, u64), Vec<&Value>> = HashMap::new();
    for r in exported.iter().filter(|r| r["kind"] == "batch") {
        let key = (
            r["device"].as_str().unwrap().to_owned(),
            r["session_id"].as_str().unwrap().to_owned(),
            r["seq"].as_u64().unwrap(),
        );
        stored.entry(key).or_default().push(r);
    }
    for (key, copies) in &stored {
        assert_eq!(copies.len(), 1, "{key:?} stored {} times", copies.len());
    }
    for a in acked {
        let key = (a.device.clone(), a.session_id.clone(), a.seq);
        let copy = stored
            .get(&key)
            .unwrap_or_else(|| panic!("acknowledged batch {key:?} is not in the journal"))[0];
        assert_eq!(copy["t0"], a.sent["t0"], "{key:?}");
        let as_f32 = |v: &Value| -> Vec<Vec<f32>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    row.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap() as f32)
                        .collect()
                })
                .collect()
        };
        assert_eq!(
            as_f32(&copy["samples"]),
            as_f32(&a.sent["samples"]),
            "{key:?}"
        );
    }
}

async fn collect(mut rx: mpsc::UnboundedReceiver<Acked>) -> Vec<Acked> {
    let mut all = Vec::new();
    while let Some(a) = rx.recv().await {
        all.push(a);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_thirty_sigkills() {
    const KILLS: usize = 30;
    const HUBS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config_path = dir.path().join("court.toml");
    std::fs::write(&config_path, court_config(dir.path(), port, HUBS)).unwrap();
    let mut gw = Some(Gateway::start_with(dir.path(), &config_path));

    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(rx));
    let progress = Arc::new(FleetProgress::default());
    let options = fleet_options(port, HUBS, Duration::from_secs(20));
    let hubs = tokio::spawn(fleet::run(options, progress, Some(tx)));

    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    let started = Instant::now();
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..600))).await;
        gw.take().unwrap().kill();
        gw = Some(Gateway::start_with(dir.path(), &config_path));
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "kill {kill}: too slow"
        );
    }
    let reports = tokio::time::timeout(Duration::from_secs(90), hubs)
        .await
        .expect("hubs finish")
        .unwrap();
    let mut reconnects = 0;
    for (code, report) in &reports {
        let r = report.as_ref().unwrap_or_else(|e| panic!("{code}: {e}"));
        assert!(
            r.upload_complete,
            "{code}: session completed after the last restart"
        );
        reconnects += r.reconnects;
    }
    // The kills cut live streams (a hub still reconnecting after one kill may ride out the
    // next without a new connection, so not every kill counts for every hub).
    assert!(
        reconnects >= (KILLS * HUBS / 2) as u64,
        "only {reconnects} reconnects"
    );
    let acked = collector.await.unwrap();
    assert!(acked.len() > 100, "only {} acks", acked.len());
    let status = gw.take().unwrap().terminate();
    assert!(status.success());
    check_export(dir.path(), &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_devices_are_all_answered_and_exported_intact() {
    const HUBS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &court_config(dir.path(), 0, HUBS));
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(rx));
    let progress = Arc::new(FleetProgress::default());
    let mut options = fleet_options(gw.addr.port(), HUBS, Duration::from_secs(4));
    options.batch_samples = 50;
    let reports = tokio::time::timeout(
        Duration::from_secs(90),
        fleet::run(options, progress, Some(tx)),
    )
    .await
    .expect("fleet finishes");
    let mut sent = 0;
    for (code, report) in &reports {
        let r = report.as_ref().unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(
            r.batches_acked, r.batches_sent,
            "{code}: every batch answered"
        );
        assert!(r.upload_complete, "{code}");
        sent += r.batches_sent;
    }
    let acked = collector.await.unwrap();
    assert_eq!(acked.len() as u64, sent);
    let status = gw.terminate();
    assert!(status.success());
    check_export(dir.path(), &acked);
}
