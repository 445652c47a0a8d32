//! The MQTT sink against a real Mosquitto broker started by the test.

mod uplink_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shuttlegate::uplink::command::CommandOutcome;
use shuttlegate::uplink::envelope::decode_raw;
use shuttlegate::uplink::{CloudCommand, MemoryOutbox, MqttOptions, Outbox, mqtt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uplink_support::*;

const WAIT: Duration = Duration::from_secs(20);

fn options(url: &str) -> MqttOptions {
    let mut o = MqttOptions::new(url, "sg", "venue1", "court1");
    o.devices = vec!["racket-01".into(), "racket-02".into()];
    o.backoff_initial = Duration::from_millis(100);
    o.backoff_max = Duration::from_millis(500);
    o.status_interval = Duration::from_millis(200);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_kind_arrives_on_its_topic_with_its_retain_flag_and_payload() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let mut sub = Subscriber::start(broker.port, "test-all", "sg/venue1/court1/#").await;

    let outbox = Arc::new(MemoryOutbox::new());
    let swing_rec = swing("racket-01", 1);
    let batch_rec = batch("racket-01", 7, 3000);
    let ids = [
        outbox.append(swing_rec.clone()),
        outbox.append(summary("racket-01")),
        outbox.append(device_status("racket-01", 87)),
        outbox.append(event("racket-01")),
        outbox.append(batch_rec.clone()),
    ];
    let (tx, _rx) = mpsc::channel::<CloudCommand>(8);
    let stop = CancellationToken::new();
    let mut sink = mqtt::spawn(
        options(&broker.url()),
        Arc::clone(&outbox),
        tx,
        stop.clone(),
    )
    .unwrap();

    // Five records plus the gateway's own status.
    let got = sub.wait_for(6, WAIT).await;
    let by_id: BTreeMap<u64, &Received> = got
        .iter()
        .filter(|r| !r.topic.ends_with("/status") || r.topic.contains("/devices/"))
        .map(|r| (payload_id(&r.payload), r))
        .collect();
    let topic = |id| by_id[&id].topic.as_str();
    assert_eq!(topic(ids[0]), "sg/venue1/court1/swings");
    assert_eq!(topic(ids[1]), "sg/venue1/court1/sessions");
    assert_eq!(topic(ids[2]), "sg/venue1/court1/devices/racket-01/status");
    assert_eq!(topic(ids[3]), "sg/venue1/court1/events");
    assert_eq!(topic(ids[4]), "sg/venue1/court1/raw/racket-01");

    // JSON envelope: id, kind and the message verbatim.
    let swing_env: serde_json::Value = serde_json::from_slice(&by_id[&ids[0]].payload).unwrap();
    assert_eq!(swing_env["kind"], "swing");
    let original: serde_json::Value =
        serde_json::from_str(swing_rec.json.as_ref().unwrap()).unwrap();
    assert_eq!(swing_env["message"], original);
    // Binary envelope: header and the stored body byte for byte.
    let (header, body) = decode_raw(&by_id[&ids[4]].payload).unwrap();
    assert_eq!(
        (header.id, header.seq, header.body.as_str()),
        (ids[4], Some(7), "journal-batch-v1")
    );
    assert_eq!(body, batch_rec.raw.as_deref().unwrap());

    // The cursor follows the PubAcks to the end.
    let snap = wait_snapshot(&mut sink.snapshot, WAIT, "cursor at the end", |s| {
        s.saved_cursor == ids[4]
    })
    .await;
    assert!(snap.connected);
    assert_eq!(outbox.cursor("mqtt"), ids[4]);

    // Retained: the device status and the gateway status; not the swing.
    let mut late = Subscriber::start(broker.port, "test-late", "sg/venue1/court1/#").await;
    let retained = late.wait_for(2, WAIT).await;
    let mut topics: Vec<_> = retained
        .iter()
        .map(|r| (r.topic.as_str(), r.retain))
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        vec![
            ("sg/venue1/court1/devices/racket-01/status", true),
            ("sg/venue1/court1/status", true)
        ]
    );
    let status: serde_json::Value = serde_json::from_slice(
        &retained
            .iter()
            .find(|r| r.topic.ends_with("court1/status"))
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(status["state"], "online");

    // A clean stop leaves `offline` retained.
    stop.cancel();
    sink.task.await.unwrap();
    let mut after = Subscriber::start(broker.port, "test-after", "sg/venue1/court1/status").await;
    let got = after.wait_for(1, WAIT).await;
    let status: serde_json::Value = serde_json::from_slice(&got[0].payload).unwrap();
    assert_eq!(status["state"], "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_load_loses_nothing_and_keeps_order_per_device() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    let sub = Subscriber::start(broker.port, "test-restart", "sg/venue1/court1/#").await;
    let outbox = Arc::new(MemoryOutbox::new());
    let (tx, _rx) = mpsc::channel::<CloudCommand>(8);
    let stop = CancellationToken::new();
    let mut opts = options(&broker.url());
    opts.inflight = 16;
    opts.raw_in_flight = 8;
    let mut sink = mqtt::spawn(opts, Arc::clone(&outbox), tx, stop.clone()).unwrap();

    let producer = produce(Arc::clone(&outbox), 1500);
    // Stop the broker once deliveries are under way, keep it down, start it again.
    wait_snapshot(&mut sink.snapshot, WAIT, "first acks", |s| s.cursor > 200).await;
    broker.stop();
    wait_snapshot(&mut sink.snapshot, WAIT, "sink notices", |s| !s.connected).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // an outage, by design of the test
    broker.restart();
    producer.await.unwrap();
    let last = outbox.durable_id();
    let snap = wait_snapshot(
        &mut sink.snapshot,
        Duration::from_secs(60),
        "all acked",
        |s| s.cursor == last,
    )
    .await;
    assert!(snap.connects >= 2, "{snap:?}");

    // Everything the sink had acknowledged reached the subscriber: collect until every id is in.
    let by_stream = wait_all_ids(&[&sub], last).await;
    let duplicates: usize = by_stream.iter().map(check_order).sum();
    println!("delivered {last} ids, {duplicates} duplicate deliveries across the restart");
    stop.cancel();
    sink.task.await.unwrap();
}

/// Waits (bounded) until the subscribers together got every id in `1..=last`; returns each
/// subscriber's ids per stream.
async fn wait_all_ids(subs: &[&Subscriber], last: u64) -> Vec<BTreeMap<String, Vec<u64>>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let streams: Vec<_> = subs.iter().map(|s| ids_by_stream(&s.snapshot())).collect();
        let all: std::collections::BTreeSet<u64> = streams
            .iter()
            .flat_map(|b| b.values().flatten().copied())
            .collect();
        if all.len() as u64 == last {
            return streams;
        }
        if tokio::time::Instant::now() > deadline {
            let missing: Vec<u64> = (1..=last).filter(|id| !all.contains(id)).collect();
            panic!(
                "{} ids never delivered, first {:?}",
                missing.len(),
                missing.first()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Appends swings and batches for two devices, about 1000 records/s.
fn produce(outbox: Arc<MemoryOutbox>, n: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..n {
            let device = if i % 2 == 0 { "racket-01" } else { "racket-02" };
            if i % 5 == 0 {
                outbox.append(swing(device, i));
            } else {
                outbox.append(batch(device, i, 400));
            }
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
}

/// The rumqttc trap: on a fresh session (`session_present = false`) rumqttc drops the publishes
/// it had not got acked. A proxy cuts the link mid-stream and reconnects the sink to a second,
/// empty broker: everything not acknowledged by the first must reach the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_session_after_an_outage_gets_every_unacknowledged_record() {
    init_logs();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (broker_a, broker_b) = (Broker::start(dir_a.path()), Broker::start(dir_b.path()));
    let sub_a = Subscriber::start(broker_a.port, "test-a", "sg/venue1/court1/#").await;
    let sub_b = Subscriber::start(broker_b.port, "test-b", "sg/venue1/court1/#").await;
    let proxy = Proxy::start(broker_a.port).await;
    let outbox = Arc::new(MemoryOutbox::new());
    let (tx, _rx) = mpsc::channel::<CloudCommand>(8);
    let stop = CancellationToken::new();
    let mut opts = options(&format!("mqtt://127.0.0.1:{}", proxy.port));
    opts.inflight = 16;
    opts.raw_in_flight = 8;
    let mut sink = mqtt::spawn(opts, Arc::clone(&outbox), tx, stop.clone()).unwrap();
    let producer = produce(Arc::clone(&outbox), 1500);

    wait_snapshot(&mut sink.snapshot, WAIT, "first acks", |s| s.cursor > 200).await;
    proxy.cut();
    let cut = wait_snapshot(&mut sink.snapshot, WAIT, "sink notices", |s| !s.connected).await;
    proxy.reopen(broker_b.port);
    producer.await.unwrap();
    let last = outbox.durable_id();
    wait_snapshot(
        &mut sink.snapshot,
        Duration::from_secs(60),
        "all acked",
        |s| s.cursor == last,
    )
    .await;

    let streams = wait_all_ids(&[&sub_a, &sub_b], last).await;
    let duplicates: usize = streams.iter().map(check_order).sum();
    // Every id is on A or B (checked above). What A never got, B got: the records unacknowledged
    // at the cut, which rumqttc alone would have dropped on the new session, included.
    let on_a: std::collections::BTreeSet<u64> = streams[0].values().flatten().copied().collect();
    let on_b: std::collections::BTreeSet<u64> = streams[1].values().flatten().copied().collect();
    let only_b: Vec<u64> = (1..=cut.cursor)
        .filter(|id| on_b.contains(id) && !on_a.contains(id))
        .collect();
    assert!(
        only_b.is_empty(),
        "ids acked before the cut must be on A: {only_b:?}"
    );
    assert!(((cut.cursor + 1)..=last).all(|id| on_a.contains(&id) || on_b.contains(&id)));
    assert!(on_b.contains(&last));
    println!(
        "fresh session: cursor {} at the cut, {last} ids, {duplicates} duplicates",
        cut.cursor
    );
    stop.cancel();
    sink.task.await.unwrap();
}

/// The uplink's half of "SIGKILL the gateway": the sink task is aborted mid-stream (no clean
/// disconnect, no last cursor write), the broker publishes its last will, and a new sink on
/// the same journal resumes from the saved cursor: every id arrives, in order per stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_killed_mid_stream_resumes_from_its_saved_cursor() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let sub = Subscriber::start(broker.port, "test-kill", "sg/venue1/court1/#").await;
    let outbox = Arc::new(MemoryOutbox::new());
    let producer = produce(Arc::clone(&outbox), 1000);
    let (tx, _rx) = mpsc::channel::<CloudCommand>(8);
    let first = mqtt::spawn(
        options(&broker.url()),
        Arc::clone(&outbox),
        tx.clone(),
        CancellationToken::new(),
    )
    .unwrap();
    let mut snapshot = first.snapshot.clone();
    wait_snapshot(&mut snapshot, WAIT, "first acks", |s| s.saved_cursor > 200).await;
    first.task.abort();
    assert!(first.task.await.unwrap_err().is_cancelled());
    let saved = outbox.cursor("mqtt");

    // The broker saw the connection die without DISCONNECT: the will says offline.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !sub.snapshot().iter().any(|r| {
        r.topic.ends_with("court1/status") && r.payload.windows(9).any(|w| w == b"\"offline\"")
    }) {
        assert!(tokio::time::Instant::now() < deadline, "no last will");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stop = CancellationToken::new();
    let mut second = mqtt::spawn(
        options(&broker.url()),
        Arc::clone(&outbox),
        tx,
        stop.clone(),
    )
    .unwrap();
    producer.await.unwrap();
    let last = outbox.durable_id();
    wait_snapshot(
        &mut second.snapshot,
        Duration::from_secs(60),
        "all acked",
        |s| s.cursor == last,
    )
    .await;
    let streams = wait_all_ids(&[&sub], last).await;
    let duplicates: usize = streams.iter().map(check_order).sum();
    println!("killed at saved cursor {saved}: {last} ids, {duplicates} duplicates");
    stop.cancel();
    second.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_command_reaches_the_daemon_and_its_ack_comes_back() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let results = Subscriber::start(
        broker.port,
        "test-results",
        "sg/venue1/court1/commands/results",
    )
    .await;
    let outbox = Arc::new(MemoryOutbox::new());
    let (tx, mut rx) = mpsc::channel::<CloudCommand>(8);
    let stop = CancellationToken::new();
    let mut sink = mqtt::spawn(
        options(&broker.url()),
        Arc::clone(&outbox),
        tx,
        stop.clone(),
    )
    .unwrap();
    wait_snapshot(&mut sink.snapshot, WAIT, "connected", |s| s.connected).await;
    // A simulated daemon: pushes every command to its "device" and says so.
    let daemon = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(cmd) = rx.recv().await {
            seen.push((cmd.device.clone(), cmd.command.clone(), cmd.params.clone()));
            let _ = cmd.reply.send(CommandOutcome::Pushed);
        }
        seen
    });

    let cloud = Subscriber::start(broker.port, "test-cloud", "sg/unused").await;
    let topic = "sg/venue1/court1/commands";
    // "Connected" is the ConnAck; the sink's SUBSCRIBE goes out after it, and a command
    // published before the broker holds that subscription is dropped. So probe with a command
    // for no device (refused, never reaching the daemon) until its error comes back.
    let probe = r#"{"device":"nobody","command":"sync","command_id":"probe"}"#;
    let deadline = tokio::time::Instant::now() + WAIT;
    while results.snapshot().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no command result within {WAIT:?}: the sink never subscribed"
        );
        cloud
            .client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, probe)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let good = r#"{"device":"racket-01","command":"set_batch","params":{"batch_size":50},"command_id":"c-1"}"#;
    let bad = r#"{"device":"nobody","command":"sync","command_id":"c-2"}"#;
    cloud
        .client
        .publish(topic, rumqttc::QoS::AtLeastOnce, false, good)
        .await
        .unwrap();
    cloud
        .client
        .publish(topic, rumqttc::QoS::AtLeastOnce, false, bad)
        .await
        .unwrap();
    let results = wait_for_results(&results, &["c-1", "c-2"]).await;
    let ack = results
        .iter()
        .find(|r| r["command_id"] == "c-1")
        .expect("ack for c-1");
    assert_eq!(ack["type"], "command_ack");
    assert_eq!(ack["delivery"], "pushed");
    let err = results
        .iter()
        .find(|r| r["command_id"] == "c-2")
        .expect("error for c-2");
    assert_eq!(err["type"], "command_error");
    assert_eq!(err["code"], "unknown_device");

    stop.cancel();
    sink.task.await.unwrap();
    let seen = daemon.await.unwrap();
    assert_eq!(
        seen.len(),
        1,
        "only the valid command reaches the daemon: {seen:?}"
    );
    assert_eq!(seen[0].2["batch_size"], 50);
}

/// The command results received until one for each of `ids` is among them (bounded by `WAIT`).
async fn wait_for_results(results: &Subscriber, ids: &[&str]) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got: Vec<serde_json::Value> = results
            .snapshot()
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).unwrap())
            .collect();
        if ids
            .iter()
            .all(|id| got.iter().any(|r| r["command_id"] == *id))
        {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "results for {ids:?} within {WAIT:?}; got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sent_and_a_refusal_is_explained() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwords");
    let made = std::process::Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwords)
        .args(["gateway", "s3cret"])
        .status()
        .unwrap();
    assert!(made.success());
    let extra = format!(
        "allow_anonymous false\npassword_file {}\n",
        passwords.display()
    );
    let broker = Broker::start_with(dir.path(), free_port(), &extra);
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.append(swing("racket-01", 1));

    let (tx, _rx) = mpsc::channel::<CloudCommand>(4);
    let stop = CancellationToken::new();
    let mut wrong = options(&broker.url());
    wrong.username = Some("gateway".into());
    wrong.password = Some("wrong".into());
    let mut sink = mqtt::spawn(wrong, Arc::clone(&outbox), tx.clone(), stop.clone()).unwrap();
    let snap = wait_snapshot(&mut sink.snapshot, WAIT, "a refusal", |s| s.errors >= 1).await;
    let error = snap.last_error.unwrap();
    assert!(error.contains("check uplink.mqtt username"), "{error}");
    assert!(
        !error.contains("wrong"),
        "the password must not be logged: {error}"
    );
    stop.cancel();
    sink.task.await.unwrap();

    let stop = CancellationToken::new();
    let mut right = options(&broker.url());
    right.username = Some("gateway".into());
    right.password = Some("s3cret".into());
    let mut sink = mqtt::spawn(right, Arc::clone(&outbox), tx, stop.clone()).unwrap();
    wait_snapshot(&mut sink.snapshot, WAIT, "delivered", |s| s.cursor == 1).await;
    stop.cancel();
    sink.task.await.unwrap();
}
