//! A cloud command redelivered after a restart of the gateway (the broker's at-least-once, or
//! the cloud's own retry) runs once: the real daemon against a real Mosquitto, the command
//! window restored from the journal. (Retained commands are the MQTT uplink's own concern.)

mod common;
mod uplink_support;

use std::time::{Duration, Instant};

use common::{Gateway, config, connect, export, recv, recv_type, send};
use serde_json::{Value, json};
use uplink_support::{Broker, Subscriber};

const TOPIC: &str = "sg/test-venue/court-1/commands";

fn uplinked_config(dir: &std::path::Path, broker: &Broker) -> String {
    let extra = format!(
        "[uplink.mqtt]\nenabled = true\nurl = \"{}\"\ntopic_prefix = \"sg\"\n",
        broker.url()
    );
    config(dir, &[("racket-01", Some("token-racket-01"))], &extra)
}

/// The results published so far for `command_id`, parsed.
fn results_for(results: &Subscriber, command_id: &str) -> Vec<Value> {
    results
        .snapshot()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.payload).ok())
        .filter(|v| v["command_id"] == command_id)
        .collect()
}

/// Publishes `command` every 2 s until a result for it satisfies `done` (the gateway subscribes
/// to its command topic only once connected); panics after 60 s.
async fn publish_until(
    cloud: &Subscriber,
    results: &Subscriber,
    command: &Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        cloud
            .client
            .publish(TOPIC, rumqttc::QoS::AtLeastOnce, false, command.to_string())
            .await
            .unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if let Some(found) = results_for(results, command["command_id"].as_str().unwrap())
                .into_iter()
                .find(&done)
            {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(Instant::now() < deadline, "no such result within 60 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_command_redelivered_after_a_gateway_restart_is_executed_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let results = Subscriber::start(broker.port, "test-results", "sg/+/+/commands/results").await;
    let cloud = Subscriber::start(broker.port, "test-cloud", "sg/unused").await;
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let gw = Gateway::start(&state, &uplinked_config(&state, &broker));
    let url = |gw: &Gateway| format!("{}?token=token-racket-01", gw.ws_url("racket-01"));
    let mut device = connect(&url(&gw)).await;
    assert_eq!(recv(&mut device).await["type"], "connection_established");

    let command = json!({"device": "racket-01", "command": "set_batch",
                         "params": {"batch_size": 60}, "command_id": "cloud-42"});
    let first = publish_until(&cloud, &results, &command, |r| r["delivery"] == "pushed").await;
    assert_eq!(first["type"], "command_ack");
    let push = recv_type(&mut device, "set_batch").await;
    send(
        &mut device,
        &json!({"type": "ack", "command_id": push["command_id"], "success": true}),
    )
    .await;
    drop(device);
    assert!(gw.terminate().success());

    // The same command again, to a restarted gateway: answered as a duplicate of a command the
    // device acknowledged, and not pushed.
    // (On a new port: the listener binds port 0.)
    let gw = Gateway::start_with(&state, &state.join("court.toml"));
    let mut device = connect(&url(&gw)).await;
    let again = publish_until(&cloud, &results, &command, |r| {
        r["delivery"] == "duplicate" && r["first"] == "succeeded"
    })
    .await;
    assert_eq!(again["type"], "command_ack");
    send(&mut device, &json!({"type": "heartbeat"})).await;
    loop {
        let v = recv(&mut device).await;
        assert_ne!(v["type"], "set_batch", "pushed again: {v}");
        if v["type"] == "heartbeat_response" {
            break;
        }
    }
    drop(device);
    assert!(gw.terminate().success());
    let queued: Vec<Value> = export(&state, &[])
        .into_iter()
        .filter(|r| r["kind"] == "event" && r["type"] == "command_queued")
        .collect();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["request_id"], "cloud-42");
}
