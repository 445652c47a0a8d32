//! Tests of the device message parser: the SPEC's wire examples, every message type, every
//! class of bad input, and property tests (never a panic; render → parse round-trips).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const DEVICE: &str = "2025001";

fn parse(value: &Value) -> Result<DeviceMessage, ProtocolError> {
    parse_device_message(&value.to_string(), DEVICE)
}

fn v33_frame(i: u32) -> Value {
    json!({"acc":[0.01,-0.02,0.99],"gyro":[1.2,-3.4,0.5],"angle":[2.1,-0.4,87.0],
           "sensor_id": i % 4 + 1, "timestamp": 93_015_123 + i64::from(i) * 10})
}

fn v33_batch() -> Value {
    json!({"type":"batch_sensor_data","device_code":DEVICE,"sensor_type":"waist","timestamp":123456,
           "session_id":"123","data":(0..30).map(v33_frame).collect::<Vec<_>>()})
}

fn error_of(value: &Value) -> ProtocolError {
    parse(value).expect_err("the message is invalid")
}

#[test]
fn the_spec_v33_batch_parses_into_a_seed_batch_of_30_frames() {
    let DeviceMessage::Batch(batch) = parse(&v33_batch()).expect("valid") else {
        panic!("not a batch");
    };
    assert_eq!(batch.device, DEVICE);
    assert_eq!(batch.session_id, "123");
    assert_eq!(batch.seq, None);
    let BatchForm::Seed(seed) = &batch.form else {
        panic!("not seed form");
    };
    assert_eq!(seed.sensor_type.as_deref(), Some("waist"));
    assert_eq!(seed.timestamp, Some(123_456));
    assert_eq!(seed.frames.len(), 30);
    assert_eq!(
        seed.frames[0],
        SeedFrame {
            sensor_id: Some(1),
            timestamp: Some(93_015_123),
            acc: [0.01, -0.02, 0.99],
            gyro: [1.2, -3.4, 0.5],
            angle: Some([2.1, -0.4, 87.0]),
        }
    );
}

#[test]
fn the_spec_compact_batch_parses_with_its_seq_and_rows() {
    let msg = json!({"type":"batch_sensor_data","session_id":"s-0017","seq":42,"sensor_id":4,
                     "t0":1_732_400_000_123_i64,"rate_hz":1000,
                     "samples":[[0.02,-0.98,0.11,1.5,-0.4,0.2],[0.03,-0.97,0.12,1.6,-0.5,0.3]]});
    let DeviceMessage::Batch(batch) = parse(&msg).expect("valid") else {
        panic!("not a batch");
    };
    assert_eq!(batch.seq, Some(42));
    assert_eq!(batch.session_id, "s-0017");
    let BatchForm::Compact(c) = &batch.form else {
        panic!("not compact");
    };
    assert_eq!(
        (c.sensor_id, c.t0, c.rate_hz, c.channels),
        (4, 1_732_400_000_123, 1000.0, 6)
    );
    assert_eq!(c.len(), 2);
    assert_eq!(c.row(1), &[0.03, -0.97, 0.12, 1.6, -0.5, 0.3]);
}

#[test]
fn the_seed_backends_data_list_and_integer_session_ids_are_accepted() {
    let mut msg = v33_batch();
    let data = msg["data"].take();
    let obj = msg.as_object_mut().expect("object");
    obj.remove("data");
    obj.insert("data_list".into(), data);
    obj.insert("session_id".into(), json!(124));
    let DeviceMessage::Batch(batch) = parse(&msg).expect("valid") else {
        panic!("not a batch");
    };
    assert_eq!(batch.session_id, "124");
    assert_eq!(batch.sample_count(), 30);
}

#[test]
fn a_negative_seq_gets_the_spec_error_text() {
    let mut msg = v33_batch();
    msg["seq"] = json!(-1);
    let err = error_of(&msg);
    assert_eq!(err.code, ErrorCode::InvalidField);
    assert_eq!(err.field.as_deref(), Some("seq"));
    assert_eq!(
        err.message,
        "batch_sensor_data: `seq` must be a non-negative integer"
    );
    msg["seq"] = json!(1.5);
    assert_eq!(error_of(&msg).field.as_deref(), Some("seq"));
}

#[test]
fn the_shared_validator_bounds_seq_rate_and_session_ids() {
    let base = json!({"type":"batch_sensor_data","session_id":"s","seq":0,"sensor_id":1,"t0":0,
        "rate_hz":100,"samples":[[0,0,0,0,0,0]]});
    let with = |key: &str, value: Value| {
        let mut m = base.clone();
        m[key] = value;
        error_of(&m)
    };
    let err = with("seq", json!(1u64 << 53));
    assert_eq!(err.field.as_deref(), Some("seq"));
    assert_eq!(
        err.message,
        "batch_sensor_data: `seq` must be an integer from 0 to 2^53 - 1"
    );
    assert_eq!(with("seq", json!(u64::MAX)).field.as_deref(), Some("seq"));
    let err = with("rate_hz", json!(0.5));
    assert_eq!(
        err.message,
        "batch_sensor_data: `rate_hz` must be a number from 1 to 10000"
    );
    for bad in ["s\n1", "s 1", "s\u{1b}[2J", "=cmd()"] {
        let err = with("session_id", json!(bad));
        assert_eq!(err.field.as_deref(), Some("session_id"), "{bad}");
        assert_eq!(err.code, ErrorCode::InvalidField);
    }
    let mut ok = base.clone();
    ok["seq"] = json!((1u64 << 53) - 1);
    assert!(parse(&ok).is_ok());
}

#[test]
fn an_error_after_the_seq_names_the_batch() {
    let msg = json!({"type":"batch_sensor_data","session_id":"s","seq":9,"sensor_id":1,"t0":1,
                     "rate_hz":100,"samples":[[0,0,0,0,0,0],[0,0,0,0,0]]});
    let err = error_of(&msg);
    assert_eq!(err.seq, Some(9));
    assert_eq!(err.field.as_deref(), Some("samples[1]"));
    assert!(
        err.message.starts_with("batch_sensor_data: `samples[1]`"),
        "{}",
        err.message
    );
}

#[test]
fn bad_values_are_named_by_their_path() {
    let cases = [
        ("data[2].acc", {
            let mut m = v33_batch();
            m["data"][2]["acc"] = json!([1, 2]);
            m
        }),
        ("data[0].gyro[1]", {
            let mut m = v33_batch();
            m["data"][0]["gyro"][1] = json!("x");
            m
        }),
        ("data[1].angle[0]", {
            let mut m = v33_batch();
            m["data"][1]["angle"][0] = json!(1e39);
            m
        }),
        ("data[5].sensor_id", {
            let mut m = v33_batch();
            m["data"][5]["sensor_id"] = json!(256);
            m
        }),
        ("data[3].timestamp", {
            let mut m = v33_batch();
            m["data"][3]["timestamp"] = json!(-5);
            m
        }),
        ("session_id", {
            let mut m = v33_batch();
            m["session_id"] = json!("");
            m
        }),
        ("session_id", {
            let mut m = v33_batch();
            m["session_id"] = json!(true);
            m
        }),
        ("data", {
            let mut m = v33_batch();
            m["data"] = json!([]);
            m
        }),
        ("sensor_type", {
            let mut m = v33_batch();
            m["sensor_type"] = json!(3);
            m
        }),
    ];
    for (field, msg) in cases {
        let err = error_of(&msg);
        assert_eq!(err.field.as_deref(), Some(field), "{}", err.message);
        assert_eq!(err.code, ErrorCode::InvalidField, "{}", err.message);
        assert!(
            err.message.contains(&format!("`{field}`")),
            "{}",
            err.message
        );
    }
}

#[test]
fn compact_form_limits_are_enforced() {
    let base = json!({"type":"batch_sensor_data","session_id":"s","seq":0,"sensor_id":1,"t0":0,
                      "rate_hz":100,"samples":[[0,0,0,0,0,0]]});
    assert!(parse(&base).is_ok());
    for (key, bad) in [
        ("rate_hz", json!(0)),
        ("rate_hz", json!(-100)),
        ("rate_hz", json!(1e6)),
        ("rate_hz", json!("100")),
        ("t0", json!(-1)),
        ("t0", json!(1.5)),
        ("sensor_id", json!(300)),
        ("samples", json!([[0, 0, 0, 0, 0, 0, 0]])),
        ("samples", json!([])),
        ("samples", json!("rows")),
        ("samples", json!(vec![[0; 6]; MAX_ROWS + 1])),
    ] {
        let mut msg = base.clone();
        msg[key] = bad.clone();
        let err = error_of(&msg);
        assert_eq!(
            err.code,
            ErrorCode::InvalidField,
            "{key}={bad}: {}",
            err.message
        );
        assert!(
            err.field.as_deref().is_some_and(|f| f.starts_with(key)),
            "{key}={bad}: {err:?}"
        );
    }
    let mut nine = base.clone();
    nine["samples"] = json!([[1, 2, 3, 4, 5, 6, 7, 8, 9]]);
    let Ok(DeviceMessage::Batch(SensorBatch {
        form: BatchForm::Compact(c),
        ..
    })) = parse(&nine)
    else {
        panic!("nine channels are valid");
    };
    assert_eq!(c.channels, 9);
}

/// Found by the fuzzer: the fast path took a row of no values for a valid batch of 0 channels.
#[test]
fn empty_rows_are_refused_by_both_paths() {
    let text = r#"{"type":"batch_sensor_data","session_id":"s-017","seq":42,"sensor_id":4,"t0":1732400000123,"rate_hz":10,"samples":[[]]}"#;
    assert_eq!(fast::parse_compact_batch(text, DEVICE), None);
    let err = parse_device_message(text, DEVICE).expect_err("no channels");
    assert_eq!(err.field.as_deref(), Some("samples[0]"));
    let text = text.replace("[[]]", "[[1,2,3,4,5,6],[]]");
    assert_eq!(fast::parse_compact_batch(&text, DEVICE), None);
    assert_eq!(
        parse_device_message(&text, DEVICE)
            .expect_err("uneven")
            .field
            .as_deref(),
        Some("samples[1]")
    );
}

#[test]
fn missing_fields_are_reported_as_missing() {
    for (msg, field) in [
        (json!({"type":"batch_sensor_data","data":[]}), "session_id"),
        (json!({"type":"batch_sensor_data","session_id":"s"}), "data"),
        (
            json!({"type":"batch_sensor_data","session_id":"s","samples":[[0,0,0,0,0,0]]}),
            "sensor_id",
        ),
        (json!({"type":"sensor_data","session_id":"s"}), "data"),
        (
            json!({"type":"sensor_data","session_id":"s","data":{"acc":[0,0,0]}}),
            "data.gyro",
        ),
        (json!({"type":"upload_complete"}), "session_id"),
        (json!({"type":"status_update","session_id":"s"}), "status"),
        (json!({"type":"ack","success":true}), "command_id"),
        (
            json!({"type":"ack","command_id":"c","success":null}),
            "success",
        ),
        (json!({"session_id":"s"}), "type"),
    ] {
        let err = error_of(&msg);
        assert_eq!(err.code, ErrorCode::MissingField, "{msg}: {err:?}");
        assert_eq!(err.field.as_deref(), Some(field), "{msg}: {err:?}");
    }
}

#[test]
fn non_json_non_objects_and_unknown_types_are_named() {
    assert_eq!(
        parse_device_message("{not json", DEVICE).unwrap_err().code,
        ErrorCode::InvalidJson
    );
    assert_eq!(
        parse_device_message("[1,2]", DEVICE).unwrap_err().code,
        ErrorCode::InvalidJson
    );
    assert_eq!(
        parse_device_message("", DEVICE).unwrap_err().code,
        ErrorCode::InvalidJson
    );
    let err = error_of(&json!({"type":"session_start"}));
    assert_eq!(err.code, ErrorCode::UnknownType);
    assert_eq!(err.message, "unknown message type `session_start`");
    assert_eq!(error_of(&json!({"type": 7})).code, ErrorCode::InvalidField);
    let long = format!("evil\n{}", "x".repeat(100));
    assert_eq!(
        error_of(&json!({ "type": long })).message,
        format!("unknown message type `evil?{}…`", "x".repeat(35))
    );
}

#[test]
fn every_small_message_type_parses_with_its_fields_and_ignores_unknown_ones() {
    let hb = parse(
        &json!({"type":"heartbeat","device_code":DEVICE,"timestamp":456789,"battery":87,
                            "rssi":-61,"fw":"V3.3","extra":{"x":1}}),
    )
    .expect("valid");
    assert_eq!(
        hb,
        DeviceMessage::Heartbeat(Heartbeat {
            timestamp: Some(456_789),
            battery: Some(87),
            rssi: Some(-61),
            fw: Some("V3.3".into()),
            ..Heartbeat::default()
        })
    );
    assert_eq!(
        error_of(&json!({"type":"heartbeat","battery":101}))
            .field
            .as_deref(),
        Some("battery")
    );

    let sd = parse(
        &json!({"type":"sensor_data","session_id":"s-0017","data":{"acc":[0.02,-0.98,0.11],
        "gyro":[1.5,-0.4,0.2],"sensor_id":4,"timestamp":1_732_400_000_123_i64}}),
    )
    .expect("valid");
    let DeviceMessage::SensorData(batch) = sd else {
        panic!("not sensor_data")
    };
    assert_eq!(batch.sample_count(), 1);
    assert_eq!(batch.seq, None);

    assert_eq!(
        parse(
            &json!({"type":"status_update","status":"START_COLLECTION_CONFIRMED","session_id":124})
        ),
        Ok(DeviceMessage::StatusUpdate(StatusUpdate {
            status: "START_COLLECTION_CONFIRMED".into(),
            session_id: Some("124".into())
        }))
    );
    assert_eq!(
        parse(&json!({"type":"upload_complete","session_id":"s-0017","batches":120})),
        Ok(DeviceMessage::UploadComplete(UploadComplete {
            session_id: "s-0017".into(),
            timestamp: None,
            batches: Some(120)
        }))
    );
    assert_eq!(
        parse(&json!({"type":"poll_commands","current_session":"","status":"idle"})),
        Ok(DeviceMessage::PollCommands(PollCommands {
            current_session: None,
            status: Some("idle".into())
        }))
    );
    assert_eq!(
        parse(&json!({"type":"ack","command_id":"c-7","success":true,"timestamp":99})),
        Ok(DeviceMessage::Ack(CommandAck {
            command_id: "c-7".into(),
            success: true,
            timestamp: Some(99)
        }))
    );
    let status = parse(&json!({"type":"status_response","command_id":"c-8","timestamp":5,
        "connection":{"wifi_connected":true},"device":{"device_code":DEVICE,"firmware_version":"V3.3"},
        "stats":{"total_blocks_sent":3},"system":{"free_heap":1000}}))
    .expect("valid");
    let DeviceMessage::StatusResponse(report) = status else {
        panic!("not status_response")
    };
    assert_eq!(report.firmware_version(), Some("V3.3"));
    assert_eq!(
        parse(&json!({"type":"ping"})),
        Ok(DeviceMessage::Ping(Ping::default()))
    );
}

// --- property tests -----------------------------------------------------------------------------

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "heartbeat",
            "batch_sensor_data",
            "sensor_data",
            "status_update",
            "upload_complete",
            "poll_commands",
            "ack",
            "status_response",
            "ping",
            "type",
            "data",
            "samples",
            "seq",
            "session_id",
            "acc",
            "gyro",
            "angle",
            "sensor_id",
            "timestamp",
            "t0",
            "rate_hz",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "type",
                        "data",
                        "data_list",
                        "samples",
                        "seq",
                        "session_id",
                        "acc",
                        "gyro",
                        "angle",
                        "sensor_id",
                        "timestamp",
                        "t0",
                        "rate_hz",
                        "command_id",
                        "success",
                        "status",
                        "batches",
                        "battery",
                        "rssi",
                        "device",
                        "other",
                    ]),
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn triple() -> impl Strategy<Value = [f32; 3]> {
    [-1e6f32..1e6, -1e6f32..1e6, -1e6f32..1e6]
}

fn any_frame() -> impl Strategy<Value = SeedFrame> {
    (
        proptest::option::of(0u32..=255),
        proptest::option::of(0i64..i64::MAX),
        triple(),
        triple(),
        proptest::option::of(triple()),
    )
        .prop_map(|(sensor_id, timestamp, acc, gyro, angle)| SeedFrame {
            sensor_id,
            timestamp,
            acc,
            gyro,
            angle,
        })
}

fn any_session() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.:-]{1,64}"
}

fn any_batch() -> impl Strategy<Value = SensorBatch> {
    let compact = (
        0u32..=255,
        0i64..i64::MAX,
        1.0f64..=MAX_RATE_HZ,
        prop::bool::ANY,
        1usize..50,
    )
        .prop_flat_map(|(sensor_id, t0, rate_hz, nine, rows)| {
            let channels: u8 = if nine { 9 } else { 6 };
            prop::collection::vec(
                any::<f32>().prop_filter("finite", |x| x.is_finite()),
                rows * usize::from(channels),
            )
            .prop_map(move |samples| {
                BatchForm::Compact(CompactBatch {
                    sensor_id,
                    t0,
                    rate_hz,
                    channels,
                    samples,
                })
            })
        });
    let seed = (
        proptest::option::of("[a-z]{1,10}"),
        proptest::option::of(0i64..i64::MAX),
        prop::collection::vec(any_frame(), 1..40),
    )
        .prop_map(|(sensor_type, timestamp, frames)| {
            BatchForm::Seed(SeedBatch {
                sensor_type,
                timestamp,
                frames,
            })
        });
    (
        any_session(),
        proptest::option::of(0..crate::protocol::validate::SEQ_LIMIT),
        prop_oneof![compact, seed],
    )
        .prop_map(|(session_id, seq, form)| SensorBatch {
            device: DEVICE.into(),
            session_id,
            seq,
            form,
        })
}

fn any_message() -> impl Strategy<Value = DeviceMessage> {
    let opt_ts = || proptest::option::of(0i64..i64::MAX);
    let opt_text = || proptest::option::of("[ -~]{0,40}");
    prop_oneof![
        any_batch().prop_map(DeviceMessage::Batch),
        (
            any_session(),
            proptest::option::of("[a-z]{1,10}"),
            opt_ts(),
            any_frame()
        )
            .prop_map(|(session_id, sensor_type, timestamp, frame)| {
                DeviceMessage::SensorData(SensorBatch {
                    device: DEVICE.into(),
                    session_id,
                    seq: None,
                    form: BatchForm::Seed(SeedBatch {
                        sensor_type,
                        timestamp,
                        frames: vec![frame],
                    }),
                })
            }),
        (
            opt_ts(),
            proptest::option::of(any_session()),
            opt_text(),
            proptest::option::of(0u8..=100),
            proptest::option::of(-200i32..=50),
            opt_text()
        )
            .prop_map(|(timestamp, session_id, status, battery, rssi, fw)| {
                DeviceMessage::Heartbeat(Heartbeat {
                    timestamp,
                    session_id,
                    status,
                    battery,
                    rssi,
                    fw,
                })
            }),
        ("[ -~]{0,40}", proptest::option::of(any_session())).prop_map(|(status, session_id)| {
            DeviceMessage::StatusUpdate(StatusUpdate { status, session_id })
        }),
        (
            any_session(),
            opt_ts(),
            proptest::option::of(0u64..=u64::from(u32::MAX))
        )
            .prop_map(
                |(session_id, timestamp, batches)| DeviceMessage::UploadComplete(UploadComplete {
                    session_id,
                    timestamp,
                    batches
                })
            ),
        (proptest::option::of(any_session()), opt_text()).prop_map(|(current_session, status)| {
            DeviceMessage::PollCommands(PollCommands {
                current_session,
                status,
            })
        }),
        ("[a-z0-9-]{1,40}", any::<bool>(), opt_ts()).prop_map(
            |(command_id, success, timestamp)| {
                DeviceMessage::Ack(CommandAck {
                    command_id,
                    success,
                    timestamp,
                })
            }
        ),
        opt_ts().prop_map(|timestamp| DeviceMessage::Ping(Ping { timestamp })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_json_value_gives_a_message_or_a_named_error(value in any_json()) {
        prop_assert_eq!(parse(&value), parse_general(&value.to_string(), DEVICE));
        match parse(&value) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }

    #[test]
    fn any_json_value_under_a_known_type_gives_a_message_or_a_named_error(
        kind in prop::sample::select(vec!["heartbeat", "batch_sensor_data", "sensor_data", "status_update",
            "upload_complete", "poll_commands", "ack", "status_response", "ping"]),
        value in any_json(),
    ) {
        let mut obj = match value { Value::Object(obj) => obj, other => {
            let mut m = Map::new();
            m.insert("data".into(), other);
            m
        }};
        obj.insert("type".into(), kind.into());
        obj.entry("session_id").or_insert_with(|| "s".into());
        if let Err(e) = parse(&Value::Object(obj)) {
            prop_assert!(e.message.starts_with(kind), "{}", e.message);
            prop_assert!(e.field.is_some());
        }
    }

    #[test]
    fn any_string_gives_a_message_or_a_named_error(text in ".{0,200}") {
        prop_assert_eq!(parse_device_message(&text, DEVICE), parse_general(&text, DEVICE));
    }

    #[test]
    fn the_fast_path_takes_every_valid_compact_batch_and_agrees_with_the_general_parser(batch in any_batch()) {
        let text = render_device_message(&DeviceMessage::Batch(batch.clone()), DEVICE);
        let fast = fast::parse_compact_batch(&text, DEVICE);
        match &batch.form {
            BatchForm::Compact(_) => prop_assert_eq!(fast, Some(batch.clone())),
            BatchForm::Seed(_) => prop_assert_eq!(fast, None),
        }
        prop_assert_eq!(parse_general(&text, DEVICE), Ok(DeviceMessage::Batch(batch)));
    }

    #[test]
    fn where_the_fast_path_answers_the_general_parser_gives_the_same_batch(
        fields in prop::collection::vec((prop::sample::select(vec![
            "seq", "session_id", "sensor_id", "t0", "rate_hz", "samples", "type", "other"]), any_json()), 0..6),
        rows in prop::collection::vec(prop::sample::select(vec![0usize, 1, 5, 6, 6, 6, 9, 9, 10]).prop_flat_map(|n| {
            prop::collection::vec(prop_oneof![
                8 => any::<f64>().prop_map(Value::from), 4 => any::<i64>().prop_map(Value::from),
                1 => Just(Value::Null), 1 => Just(Value::from("1"))], n)
        }), 0..4),
    ) {
        let mut obj = Map::new();
        for (key, value) in [("type", json!("batch_sensor_data")), ("session_id", json!("s")),
                             ("sensor_id", json!(1)), ("t0", json!(0)), ("rate_hz", json!(100))] {
            obj.insert(key.into(), value);
        }
        obj.insert("samples".into(), Value::from(rows.into_iter().map(Value::from).collect::<Vec<_>>()));
        for (key, value) in fields {
            obj.insert(key.into(), value);
        }
        let text = Value::Object(obj).to_string();
        if let Some(batch) = fast::parse_compact_batch(&text, DEVICE) {
            prop_assert_eq!(parse_general(&text, DEVICE), Ok(DeviceMessage::Batch(batch)));
        }
    }

    #[test]
    fn rendered_messages_parse_back_to_themselves(msg in any_message()) {
        let text = render_device_message(&msg, DEVICE);
        prop_assert_eq!(parse_device_message(&text, DEVICE), Ok(msg));
    }
}

/// Parser throughput on the bench's batch shape (100 six-channel samples, compact form) and on
/// V3.3's (30 seed frames). Run: `cargo test --release --lib parse_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run by hand in release mode"]
// A manual throughput probe (ignored): timing it is its whole point.
#[allow(clippy::disallowed_methods)]
fn parse_throughput() {
    // Samples as a device renders f32 readings (shortest form), not as f64 with 17 digits.
    let samples: Vec<f32> = (0..600)
        .map(|i| {
            let x = i as f32 * 0.013;
            [
                x.sin(),
                x.cos() - 0.98,
                0.11 + x,
                150.0 * x.sin(),
                -0.4 * x,
                0.2 + x * 3.0,
            ][i % 6]
        })
        .collect();
    let batch = SensorBatch {
        device: DEVICE.into(),
        session_id: "s-0017".into(),
        seq: Some(42),
        form: BatchForm::Compact(CompactBatch {
            sensor_id: 4,
            t0: 1_732_400_000_123,
            rate_hz: 1000.0,
            channels: 6,
            samples,
        }),
    };
    let compact = render_device_message(&DeviceMessage::Batch(batch), DEVICE);
    let seed = v33_batch().to_string();
    for (name, text, samples) in [
        ("compact 100x6", &compact, 100),
        ("v3.3 seed 30 frames", &seed, 30),
    ] {
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let msg = parse_device_message(std::hint::black_box(text), DEVICE).expect("valid");
            std::hint::black_box(msg);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {} bytes/msg, {:.0} msgs/s, {:.0} samples/s, {:.1} MB/s",
            text.len(),
            f64::from(n) / secs,
            f64::from(n * samples) / secs,
            (text.len() as f64 * f64::from(n)) / secs / 1e6
        );
    }
}
