//! Court rules, and the promise that journaled events rebuild the same state.

use super::*;

fn court() -> Court {
    Court::new(["d1".to_owned(), "d2".to_owned()], CourtOptions::default())
}

/// Applies `f` and keeps the events it produced, as the daemon journals them.
fn run(journal: &mut Vec<CourtEvent>, out: Outcome) -> Outcome {
    journal.extend(out.events.iter().cloned());
    out
}

#[test]
fn a_started_session_pushes_start_collection_and_data_moves_it_to_collecting() {
    let mut c = court();
    let out = c.start_session("d1", "s1".into(), 10).unwrap();
    assert_eq!(out.pushes.len(), 1);
    assert!(matches!(
        &out.pushes[0].1.command,
        DeviceCommand::StartCollection { session_id } if session_id == "s1"
    ));
    assert_eq!(
        c.device("d1").unwrap().session("s1").unwrap().state,
        SessionState::Calibrating
    );
    let out = c.data_arrived("d1", "s1", 20).unwrap();
    assert_eq!(
        c.device("d1").unwrap().session("s1").unwrap().state,
        SessionState::Collecting
    );
    // The data proves the start ran: the command is settled.
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, CourtEvent::CommandDone { .. }))
    );
    assert!(c.pending_commands("d1").is_empty());
}

#[test]
fn data_for_an_unknown_session_opens_it_instead_of_being_refused() {
    let mut c = court();
    let out = c.data_arrived("d2", "fw-123", 5).unwrap();
    let session = c.device("d2").unwrap().session("fw-123").unwrap();
    assert_eq!(session.state, SessionState::Collecting);
    assert_eq!(session.source, SessionSource::Device);
    assert_eq!(out.events.len(), 1);
}

#[test]
fn a_second_start_while_a_session_is_open_is_refused_with_its_name() {
    let mut c = court();
    c.start_session("d1", "s1".into(), 1).unwrap();
    let err = c.start_session("d1", "s2".into(), 2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "device `d1` already has session `s1` open (calibrating); end it first"
    );
}

#[test]
fn upload_complete_with_gaps_keeps_the_session_and_without_them_completes_it() {
    let mut c = court();
    c.data_arrived("d1", "s1", 1).unwrap();
    let (out, finalize) = c.upload_complete("d1", "s1", true, &[3, 4], 2).unwrap();
    assert_eq!(finalize, UploadVerdict::Wait);
    assert!(out.events.is_empty());
    let (_, finalize) = c.upload_complete("d1", "s1", true, &[], 3).unwrap();
    assert_eq!(finalize, UploadVerdict::Analyse);
    assert_eq!(
        c.device("d1").unwrap().session("s1").unwrap().state,
        SessionState::Analyzing
    );
    c.analysis_done("d1", "s1", 4);
    let s = c.device("d1").unwrap().session("s1").unwrap();
    assert_eq!((s.state, s.end_ms), (SessionState::Completed, Some(4)));
}

#[test]
fn unacked_commands_are_pushed_again_on_reconnect_until_acked() {
    let mut c = court();
    let id = c.enqueue("d1", DeviceCommand::GetStatus, 1).unwrap().pushes[0]
        .1
        .command_id;
    let again = c.connect("d1", 2).unwrap();
    assert_eq!(again.pushes.len(), 1);
    assert_eq!(c.command_ack("d1", id, true, 3).events.len(), 1);
    assert!(c.connect("d1", 4).unwrap().pushes.is_empty());
    // A second ack of the same id changes nothing.
    assert!(c.command_ack("d1", id, true, 5).events.is_empty());
}

#[test]
fn a_status_response_settles_its_get_status_and_nothing_else() {
    let mut c = court();
    let get_status = c.enqueue("d1", DeviceCommand::GetStatus, 1).unwrap().pushes[0]
        .1
        .command_id;
    let sync = c.enqueue("d1", DeviceCommand::Sync, 1).unwrap().pushes[0]
        .1
        .command_id;
    // A report naming another command, or none, is kept but settles nothing.
    assert!(
        c.status_response("d1", "{}".into(), Some(sync), 2)
            .events
            .is_empty()
    );
    assert!(
        c.status_response("d1", "{}".into(), None, 2)
            .events
            .is_empty()
    );
    let done = c.status_response("d1", r#"{"stats":{}}"#.into(), Some(get_status), 3);
    assert!(
        matches!(&done.events[..], [CourtEvent::CommandDone { command_id, success: true, .. }] if *command_id == get_status),
        "{done:?}"
    );
    assert_eq!(
        c.device("d1").unwrap().last_status_response.as_deref(),
        Some(r#"{"stats":{}}"#)
    );
    let pending: Vec<u64> = c
        .pending_commands("d1")
        .iter()
        .map(|p| p.command_id)
        .collect();
    assert_eq!(pending, [sync]);
}

#[test]
fn the_command_queue_is_bounded_per_device() {
    let mut c = Court::new(
        ["d1".to_owned()],
        CourtOptions {
            command_queue_capacity: 2,
            ..CourtOptions::default()
        },
    );
    c.enqueue("d1", DeviceCommand::Sync, 1).unwrap();
    c.enqueue("d1", DeviceCommand::Sync, 1).unwrap();
    let err = c.enqueue("d1", DeviceCommand::Sync, 1).unwrap_err();
    assert!(matches!(err, CourtError::Queue { .. }), "{err}");
}

#[test]
fn unknown_devices_are_refused_by_name() {
    let mut c = court();
    assert_eq!(
        c.enqueue("nope", DeviceCommand::Sync, 1).unwrap_err(),
        CourtError::UnknownDevice("nope".into())
    );
}

#[test]
fn journaled_events_rebuild_sessions_and_pending_commands_after_a_restart() {
    let mut journal = Vec::new();
    let mut c = court();
    run(&mut journal, c.connect("d1", 1).unwrap());
    run(&mut journal, c.start_session("d1", "s1".into(), 2).unwrap());
    run(&mut journal, c.data_arrived("d1", "s1", 3).unwrap());
    run(
        &mut journal,
        c.enqueue("d1", DeviceCommand::GetStatus, 4).unwrap(),
    );
    run(&mut journal, c.data_arrived("d2", "x", 5).unwrap());
    run(&mut journal, c.end_session("d2", 6).unwrap());

    let mut restored = court();
    restored.restore(journal.iter().cloned());
    for code in ["d1", "d2"] {
        let (a, b) = (c.device(code).unwrap(), restored.device(code).unwrap());
        assert_eq!(
            a.sessions().collect::<Vec<_>>(),
            b.sessions().collect::<Vec<_>>()
        );
        assert_eq!(c.pending_commands(code), restored.pending_commands(code));
        assert!(!b.online, "nothing is online before it reconnects");
    }
    // Command ids continue past the restored ones.
    let next = restored.enqueue("d1", DeviceCommand::Sync, 7).unwrap();
    let max_before = c
        .pending_commands("d1")
        .iter()
        .map(|p| p.command_id)
        .max()
        .unwrap();
    assert!(next.pushes[0].1.command_id > max_before);
}

#[test]
fn a_snapshot_alone_rebuilds_the_open_state() {
    let mut c = court();
    c.start_session("d1", "s1".into(), 2).unwrap();
    c.enqueue("d2", DeviceCommand::Sync, 3).unwrap();
    let snapshot = c.snapshot(4);
    let mut restored = court();
    restored.restore([snapshot]);
    assert_eq!(
        restored
            .device("d1")
            .unwrap()
            .open_session()
            .map(|s| s.id.as_str()),
        Some("s1")
    );
    assert_eq!(restored.pending_commands("d2"), c.pending_commands("d2"));
    assert_eq!(restored.pending_commands("d1"), c.pending_commands("d1"));
}

/// A snapshot taken just after a command was queued can reach the journal before the command's
/// own event (seen in the real daemon under load): the command is restored once, not twice.
#[test]
fn a_command_named_by_a_snapshot_and_its_own_event_is_restored_once() {
    let mut c = court();
    let mut events = Vec::new();
    let started = c.start_session("d1", "s1".into(), 2).unwrap();
    let snapshot = c.snapshot(3);
    let (state, queued): (Vec<CourtEvent>, Vec<CourtEvent>) = started
        .events
        .into_iter()
        .partition(|e| matches!(e, CourtEvent::SessionState { .. }));
    events.extend(state);
    events.push(snapshot);
    events.extend(queued);
    let mut restored = court();
    restored.restore(events);
    assert_eq!(restored.pending_commands("d1"), c.pending_commands("d1"));
    assert_eq!(restored.pending_commands("d1").len(), 1);
}

#[test]
fn ended_sessions_are_forgotten_past_the_bound() {
    let mut c = Court::new(
        ["d1".to_owned()],
        CourtOptions {
            ended_sessions_kept: 2,
            ..CourtOptions::default()
        },
    );
    for i in 0..5 {
        let id = format!("s{i}");
        c.data_arrived("d1", &id, i).unwrap();
        c.upload_complete("d1", &id, true, &[], i).unwrap();
        c.analysis_done("d1", &id, i);
    }
    let kept: Vec<_> = c
        .device("d1")
        .unwrap()
        .sessions()
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(kept, ["s3", "s4"]);
}

#[test]
fn court_events_round_trip_through_their_journaled_json() {
    let mut c = court();
    let mut journal = Vec::new();
    run(&mut journal, c.start_session("d1", "s1".into(), 2).unwrap());
    run(
        &mut journal,
        c.enqueue("d1", DeviceCommand::SetBatch { batch_size: 60 }, 3)
            .unwrap(),
    );
    journal.push(c.snapshot(4));
    for event in journal {
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            serde_json::from_str::<CourtEvent>(&json).unwrap(),
            event,
            "{json}"
        );
    }
}

#[test]
fn a_reload_adds_devices_and_keeps_the_state_of_those_already_there() {
    let mut court = Court::new(["a".to_owned()], CourtOptions::default());
    court.start_session("a", "s1".into(), 1).unwrap();
    assert!(court.start_session("b", "s2".into(), 2).is_err());
    court.add_devices(["a".to_owned(), "b".to_owned()]);
    court.start_session("b", "s2".into(), 3).unwrap();
    assert!(court.device("a").and_then(|d| d.open_session()).is_some());
}

fn open_ids(c: &Court, device: &str) -> Vec<String> {
    let mut ids: Vec<String> = c
        .device(device)
        .unwrap()
        .open_sessions()
        .map(|s| s.id.clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_new_session_past_the_cap_stops_the_oldest_and_journals_the_stop() {
    let mut c = court();
    c.data_arrived("d1", "a", 1).unwrap();
    c.data_arrived("d1", "b", 2).unwrap();
    let out = c.data_arrived("d1", "c", 3).unwrap();
    assert_eq!(open_ids(&c, "d1"), ["b", "c"]);
    assert!(
        matches!(&out.events[0], CourtEvent::SessionState { session_id, state: SessionState::Stopped, .. } if session_id == "a"),
        "{out:?}"
    );
    let stopped = c.device("d1").unwrap().session("a").unwrap();
    assert_eq!(
        (stopped.state, stopped.end_ms),
        (SessionState::Stopped, Some(3))
    );
}

#[test]
fn session_starts_past_the_per_minute_limit_are_refused_by_name_until_the_minute_passes() {
    let mut c = Court::new(
        ["d1".to_owned()],
        CourtOptions {
            session_starts_per_minute: 3,
            ..CourtOptions::default()
        },
    );
    for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
        c.status_update("d1", "START_COLLECTION_CONFIRMED", Some(id), i as i64)
            .unwrap();
    }
    let err = c
        .status_update("d1", "START_COLLECTION_CONFIRMED", Some("d"), 59_000)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "device `d1` opened 3 sessions in the last minute ([limits] session_starts_per_minute): session `d` refused; send it again later"
    );
    assert!(c.device("d1").unwrap().session("d").is_none());
    // Data for a session already open is not a start: it is never refused.
    c.data_arrived("d1", "c", 59_001).unwrap();
    // A minute after the first start, one more is admitted.
    c.data_arrived("d1", "d", 60_000).unwrap();
    assert!(c.device("d1").unwrap().session("d").is_some());
}

#[test]
fn upload_complete_without_data_creates_nothing_and_stops_an_open_session_without_a_summary() {
    let mut c = court();
    let (out, verdict) = c.upload_complete("d1", "ghost", false, &[], 1).unwrap();
    assert_eq!(verdict, UploadVerdict::NoData);
    assert!(out.events.is_empty());
    assert!(c.device("d1").unwrap().session("ghost").is_none());

    c.status_update("d1", "START_COLLECTION_CONFIRMED", Some("s1"), 2)
        .unwrap();
    let (out, verdict) = c.upload_complete("d1", "s1", false, &[], 3).unwrap();
    assert_eq!(verdict, UploadVerdict::NoData);
    assert!(
        matches!(
            &out.events[..],
            [CourtEvent::SessionState {
                state: SessionState::Stopped,
                ..
            }]
        ),
        "{out:?}"
    );
}

/// The flood of issue #12: 3,000 `START_COLLECTION_CONFIRMED` with fresh ids and 1,000
/// `upload_complete` for sessions that never existed, from one device.
#[test]
fn a_session_flood_leaves_at_most_the_cap_open_and_the_snapshot_bounded() {
    let mut c = court();
    let mut journal = Vec::new();
    let mut refused = 0;
    for i in 0..3_000i64 {
        // Two starts a second: most are refused by the per-minute limit.
        match c.status_update(
            "d1",
            "START_COLLECTION_CONFIRMED",
            Some(&format!("f{i}")),
            i * 500,
        ) {
            Ok(out) => {
                run(&mut journal, out);
            }
            Err(CourtError::TooManySessionStarts { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
        if i % 3 == 0 {
            let (out, verdict) = c
                .upload_complete("d1", &format!("ghost{i}"), false, &[], i * 500)
                .unwrap();
            assert_eq!(verdict, UploadVerdict::NoData);
            assert!(out.events.is_empty(), "a ghost journals nothing");
        }
    }
    let dev = c.device("d1").unwrap();
    assert!(dev.open_sessions().count() <= 2);
    assert!(dev.sessions().count() <= 2 + CourtOptions::default().ended_sessions_kept);
    // 1,500 s at 10 starts a minute: 250 admitted.
    assert_eq!(3_000 - refused, 250);
    let snapshot = serde_json::to_string(&c.snapshot(2_000_000)).unwrap();
    assert!(
        snapshot.len() < 1_024,
        "{} bytes: {snapshot}",
        snapshot.len()
    );
    // The journaled events rebuild the same open sessions.
    let mut restored = court();
    restored.restore(journal);
    assert_eq!(open_ids(&restored, "d1"), open_ids(&c, "d1"));
}

#[test]
fn a_repeated_command_id_is_queued_once_and_answered_with_the_first_outcome_across_a_restart() {
    let mut c = court();
    let mut journal = Vec::new();
    let (out, first) = c
        .enqueue_once("d1", DeviceCommand::Sync, Some("c-1"), 1)
        .unwrap();
    run(&mut journal, out);
    let Enqueued::New { command_id } = first else {
        panic!("{first:?}")
    };
    let (out, again) = c
        .enqueue_once("d1", DeviceCommand::Sync, Some("c-1"), 2)
        .unwrap();
    assert!(out.events.is_empty() && out.pushes.is_empty());
    assert!(matches!(
        again,
        Enqueued::Duplicate(RecentCommand { success: None, .. })
    ));
    run(&mut journal, c.command_ack("d1", command_id, true, 3));
    assert_eq!(c.pending_commands("d1").len(), 1 - 1);

    // After a restart (events only, then a snapshot alone) the id is still known, with its answer.
    for events in [journal.clone(), vec![c.snapshot(4)]] {
        let mut restored = court();
        restored.restore(events);
        let (out, again) = restored
            .enqueue_once("d1", DeviceCommand::Sync, Some("c-1"), 5)
            .unwrap();
        assert!(out.events.is_empty());
        assert_eq!(
            again,
            Enqueued::Duplicate(RecentCommand {
                request_id: "c-1".into(),
                device: "d1".into(),
                command_id,
                success: Some(true),
            })
        );
    }
}

#[test]
fn the_command_id_window_is_bounded() {
    let mut c = Court::new(
        ["d1".to_owned()],
        CourtOptions {
            commands_remembered: 4,
            ..CourtOptions::default()
        },
    );
    for i in 0..10 {
        let (out, _) = c
            .enqueue_once("d1", DeviceCommand::Sync, Some(&format!("c-{i}")), i)
            .unwrap();
        c.command_ack("d1", out.pushes[0].1.command_id, true, i);
    }
    assert_eq!(c.recent_commands().len(), 4);
    let CourtEvent::Snapshot {
        recent_commands, ..
    } = c.snapshot(11)
    else {
        unreachable!()
    };
    assert_eq!(recent_commands.len(), 4);
}

#[test]
fn a_snapshot_with_bad_entries_is_restored_without_them_and_says_what_it_dropped() {
    let json = serde_json::json!({
        "type": "snapshot", "next_command_id": 9, "ts": 5,
        "sessions": [
            {"id": "good", "device": "d1", "state": "collecting", "source": "device", "start_ms": 1, "end_ms": null},
            {"id": "bad\u{7}id", "device": "d2", "state": "collecting", "source": "device", "start_ms": 2, "end_ms": null},
            {"id": "half"}
        ],
        "commands": [
            ["d1", {"command_id": 3, "command": {"name": "sync", "params": {}}, "queued_ms": 1}],
            ["d2", {"command_id": 4, "command": {"name": "start_collection", "params": {"session_id": "x\ny"}}, "queued_ms": 1}]
        ]
    })
    .to_string();
    assert!(
        serde_json::from_str::<CourtEvent>(&json).is_err(),
        "the strict reading refuses it whole"
    );
    let (event, dropped) = CourtEvent::from_journal(&json).unwrap();
    assert_eq!(dropped.len(), 3, "{dropped:?}");
    assert!(
        dropped.iter().any(|d| d.contains("session_id")),
        "{dropped:?}"
    );
    let mut restored = court();
    restored.restore([event]);
    assert_eq!(open_ids(&restored, "d1"), ["good"]);
    assert!(open_ids(&restored, "d2").is_empty());
    assert_eq!(restored.pending_commands("d1").len(), 1);
    // Other events read as before.
    let status = serde_json::to_string(&CourtEvent::DeviceStatus {
        device: "d1".into(),
        online: true,
        ts: 1,
        reason: None,
    })
    .unwrap();
    assert!(CourtEvent::from_journal(&status).unwrap().1.is_empty());
    let bad_state = CourtEvent::SessionState {
        device: "d1".into(),
        session_id: "x\u{1b}y".into(),
        state: SessionState::Collecting,
        source: SessionSource::Device,
        ts: 1,
    };
    let err = CourtEvent::from_journal(&serde_json::to_string(&bad_state).unwrap()).unwrap_err();
    assert!(err.to_string().contains("`session_id`"), "{err}");
    assert!(CourtEvent::from_journal("{\"type\":\"nope\"}").is_err());
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Data(u8),
        Confirm(u8),
        Upload(u8, bool),
        Analysed(u8),
        Wait(u32),
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..60).prop_map(Op::Data),
            (0u8..60).prop_map(Op::Confirm),
            (0u8..60, any::<bool>()).prop_map(|(s, d)| Op::Upload(s, d)),
            (0u8..60).prop_map(Op::Analysed),
            (0u32..40_000).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Whatever a device sends, its open sessions stay within the cap, its sessions within
        /// the court's bounds, and the journaled events rebuild the same sessions.
        #[test]
        fn the_court_stays_bounded_and_its_events_rebuild_it(ops in proptest::collection::vec(any_op(), 1..400)) {
            let options = CourtOptions::default();
            let mut c = court();
            let mut journal = Vec::new();
            let mut now = 0i64;
            for op in ops {
                now += 1;
                let out = match op {
                    Op::Data(s) => c.data_arrived("d1", &format!("s{s}"), now).unwrap_or_default(),
                    Op::Confirm(s) => c
                        .status_update("d1", "START_COLLECTION_CONFIRMED", Some(&format!("s{s}")), now)
                        .unwrap_or_default(),
                    Op::Upload(s, had_data) => c.upload_complete("d1", &format!("s{s}"), had_data, &[], now).map(|(out, _)| out).unwrap_or_default(),
                    Op::Analysed(s) => c.analysis_done("d1", &format!("s{s}"), now),
                    Op::Wait(ms) => {
                        now += i64::from(ms);
                        Outcome::default()
                    }
                };
                run(&mut journal, out);
                let dev = c.device("d1").unwrap();
                prop_assert!(dev.open_sessions().count() <= options.max_open_sessions_per_device);
                let settled = dev.sessions().filter(|s| s.state != SessionState::Analyzing).count();
                prop_assert!(settled <= options.max_open_sessions_per_device + options.ended_sessions_kept);
            }
            let mut restored = court();
            restored.restore(journal);
            let sessions = |c: &Court| c.device("d1").unwrap().sessions().map(|s| (s.id.clone(), s.state)).collect::<Vec<_>>();
            prop_assert_eq!(sessions(&restored), sessions(&c));
        }
    }
}

#[test]
fn every_court_event_type_is_known_as_one() {
    let mut c = court();
    let mut events = Vec::new();
    events.extend(c.connect("d1", 1).unwrap().events);
    events.extend(c.start_session("d1", "s1".into(), 2).unwrap().events);
    let id = c.pending_commands("d1")[0].command_id;
    events.extend(c.command_ack("d1", id, true, 3).events);
    events.extend(c.bind_user("d1", "u-1".into(), None, 3).unwrap().events);
    events.push(c.snapshot(4));
    let mut types: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    types.dedup();
    let mut known: Vec<&str> = COURT_EVENT_TYPES.to_vec();
    known.sort_unstable();
    assert_eq!(types, known);
    for event in &events {
        assert!(CourtEvent::is_court_event(
            &serde_json::to_string(event).unwrap()
        ));
    }
    assert!(!CourtEvent::is_court_event(r#"{"type":"journal_full"}"#));
}

#[test]
fn a_bound_user_is_journaled_snapshotted_restored_and_yields_to_a_new_configured_user() {
    let mut c = court();
    assert_eq!(c.device("d1").unwrap().user(Some("cfg")), Some("cfg"));
    let out = c
        .bind_user("d1", "u-7".into(), Some("cfg".into()), 5)
        .unwrap();
    assert_eq!(
        out.events,
        vec![CourtEvent::UserBound {
            device: "d1".into(),
            user: "u-7".into(),
            configured: Some("cfg".into()),
            ts: 5
        }]
    );
    assert!(matches!(
        c.bind_user("nobody", "u-7".into(), None, 6),
        Err(CourtError::UnknownDevice(_))
    ));
    let dev = c.device("d1").unwrap();
    assert_eq!(dev.user(Some("cfg")), Some("u-7"));
    assert_eq!(dev.user(Some("changed")), Some("changed"));
    assert_eq!(dev.user(None), None);
    assert_eq!(c.device("d2").unwrap().user(None), None);

    // From the event alone, and from a snapshot alone (through their journaled JSON).
    let through_json = |e: &CourtEvent| {
        CourtEvent::from_journal(&serde_json::to_string(e).unwrap())
            .unwrap()
            .0
    };
    for journaled in [out.events[0].clone(), c.snapshot(7)] {
        let mut restored = court();
        restored.restore([through_json(&journaled)]);
        assert_eq!(
            restored.device("d1").unwrap().user(Some("cfg")),
            Some("u-7"),
            "{journaled:?}"
        );
    }
}
