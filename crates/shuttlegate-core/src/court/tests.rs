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
    let out = c.data_arrived("d1", "s1", 20);
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
    let out = c.data_arrived("d2", "fw-123", 5);
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
    c.data_arrived("d1", "s1", 1);
    let (out, finalize) = c.upload_complete("d1", "s1", &[3, 4], 2);
    assert!(!finalize);
    assert!(out.events.is_empty());
    let (_, finalize) = c.upload_complete("d1", "s1", &[], 3);
    assert!(finalize);
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
    run(&mut journal, c.data_arrived("d1", "s1", 3));
    run(
        &mut journal,
        c.enqueue("d1", DeviceCommand::GetStatus, 4).unwrap(),
    );
    run(&mut journal, c.data_arrived("d2", "x", 5));
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
        c.data_arrived("d1", &id, i);
        c.upload_complete("d1", &id, &[], i);
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
