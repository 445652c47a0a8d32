//! The daemon's swing latency figures (`/metrics`) against what it journaled: simulated players
//! swing over real WebSocket connections, and every swing the daemon journals and publishes is
//! one latency sample — no more, no fewer. No timing is asserted (it depends on the machine);
//! `shuttlegate-tools bench swings` measures it.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, config, export};

const PLAYERS: usize = 4;

/// `/metrics`, as (sample name, value) pairs of its unlabelled samples.
fn metrics(gw: &Gateway) -> Vec<(String, f64)> {
    let mut response = ureq::get(&gw.http_url("/metrics"))
        .call()
        .expect("GET /metrics");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = response.body_mut().read_to_string().expect("body");
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.split_once(' ').expect("`name value`");
            (name.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

fn value(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no `{name}` in {samples:?}"))
        .1
}

/// Polls `f` until it returns `Some`, at most `timeout` (the daemon is another process: there
/// is no event to await).
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_swing_is_one_latency_sample_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let codes: Vec<(String, String)> = (1..=PLAYERS)
        .map(|i| (format!("player-{i:02}"), format!("token-player-{i:02}")))
        .collect();
    let devices: Vec<(&str, Option<&str>)> = codes
        .iter()
        .map(|(c, t)| (c.as_str(), Some(t.as_str())))
        .collect();
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices, ""));

    // Before any data: the figures exist and are zero.
    let before = metrics(&gw);
    assert_eq!(value(&before, "shuttlegate_swings_published_total"), 0.0);
    assert_eq!(value(&before, "shuttlegate_analysis_pending"), 0.0);

    common::play_court(&gw, PLAYERS, Duration::from_secs(15), 1003).await;

    // Each session's summary is the analysis's last output for it: once all are journaled and
    // nothing is pending, every swing has been published.
    let records = poll(Duration::from_secs(20), || {
        let records = export(dir.path(), &[]);
        let summaries = records.iter().filter(|r| r["kind"] == "summary").count();
        (summaries == PLAYERS).then_some(records)
    });
    let after = poll(Duration::from_secs(10), || {
        let m = metrics(&gw);
        (value(&m, "shuttlegate_analysis_pending") == 0.0).then_some(m)
    });
    let journaled = records.iter().filter(|r| r["kind"] == "swing").count();
    assert!(journaled > 0, "15 s of doubles gave no swing");
    assert_eq!(
        value(&after, "shuttlegate_swings_published_total"),
        journaled as f64,
        "one latency sample per journaled swing"
    );
    assert_eq!(
        value(&after, "shuttlegate_analysis_batches_skipped_total"),
        0.0
    );
    let p50 = value(&after, "shuttlegate_swing_latency_p50_seconds");
    let p99 = value(&after, "shuttlegate_swing_latency_p99_seconds");
    let max = value(&after, "shuttlegate_swing_latency_max_seconds");
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= max && max.is_finite(),
        "p50 {p50} p99 {p99} max {max}"
    );
    assert!(gw.terminate().success());
}
