//! Issue 12: a per-device share of the journal (`device_share`), so that one device cannot fill
//! it for the others. The journal's API on real files: under `refuse` the flooding device's
//! batches are refused past its share while another's are stored; under `drop_oldest_raw` the
//! flooding device's own oldest batches go first and the other's stay. And the real daemon with
//! its default share: two devices, one floods, the other's batches still get durable acks.

mod common;

use std::time::Duration;

use common::{Gateway, Ws, config, connect, recv_type, send};
use serde_json::{Value, json};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use shuttlegate::journal::{AppendError, Journal, JournalOptions, RecordBody, WhenFull};
use shuttlegate_core::journal::synth::{Motion, compact_batch};

const MAX_BYTES: u64 = 256 << 10;

fn opts(dir: &std::path::Path, when_full: WhenFull) -> JournalOptions {
    sized(dir, when_full, MAX_BYTES)
}

/// A journal of `max_bytes` in segments of a sixteenth of it.
fn sized(dir: &std::path::Path, when_full: WhenFull, max_bytes: u64) -> JournalOptions {
    let mut o = JournalOptions::new(dir.join("journal"));
    o.commit_interval = Duration::from_millis(1);
    o.segment_bytes = max_bytes / 16;
    o.max_bytes = max_bytes;
    o.when_full = when_full;
    o.device_share = 0.5;
    o
}

fn batch(device: &str, seq: u64, rng: &mut SmallRng) -> RecordBody {
    RecordBody::Batch(compact_batch(
        rng,
        device,
        "s1",
        Some(seq),
        1_732_400_000_000,
        100,
        Motion::Swing,
    ))
}

/// Seqs of `device`'s batches in the journal.
fn stored(j: &Journal, device: &str) -> Vec<u64> {
    j.stored_seqs(device, "s1")
}

#[tokio::test]
async fn under_refuse_a_flooding_device_is_refused_at_its_share_and_another_is_still_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    let (j, _) = Journal::open(opts(tmp.path(), WhenFull::Refuse)).unwrap();
    let mut refused = None;
    for seq in 0..10_000 {
        if let Err(e) = j.append(batch("flood", seq, &mut rng)).await {
            refused = Some(e);
            break;
        }
    }
    match refused.expect("the flood reaches its share") {
        AppendError::DeviceFull {
            device,
            used,
            share,
        } => {
            assert_eq!(device, "flood");
            assert_eq!(share, MAX_BYTES / 2);
            assert!(used <= share, "{used} > {share}");
        }
        other => panic!("refused for its share, not {other:?}"),
    }
    let stats = j.stats();
    assert!(!stats.full, "the journal itself is not full");
    // The other device: every batch stored while the flood goes on being refused.
    for seq in 0..50 {
        j.append(batch("quiet", seq, &mut rng))
            .await
            .expect("the quiet device is stored");
        let flood = j.append(batch("flood", 10_000 + seq, &mut rng)).await;
        assert!(
            matches!(flood, Err(AppendError::DeviceFull { .. })),
            "{flood:?}"
        );
    }
    assert_eq!(stored(&j, "quiet"), (0..50).collect::<Vec<_>>());
}

#[tokio::test]
async fn under_drop_oldest_raw_a_flooding_device_loses_its_own_oldest_batches_not_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(2);
    let (j, _) = Journal::open(opts(tmp.path(), WhenFull::DropOldestRaw)).unwrap();
    for seq in 0..20 {
        j.append(batch("quiet", seq, &mut rng))
            .await
            .expect("stored");
    }
    // Twice the whole journal from one device, 64 batches in flight at a time: every batch is
    // acknowledged (its own oldest make room).
    let (mut seq, mut first_drop) = (0, None);
    while first_drop.is_none_or(|at| seq < 2 * at) {
        let pipelined: Vec<_> = (seq..seq + 64)
            .map(|q| j.submit(batch("flood", q, &mut rng)).expect("submitted"))
            .collect();
        for appended in futures_util::future::join_all(pipelined).await {
            appended.expect("acknowledged: its own oldest batches make room");
        }
        seq += 64;
        if first_drop.is_none() && j.stats().dropped_records > 0 {
            first_drop = Some(seq);
        }
        assert!(seq < 100_000, "no drop in 100,000 batches");
    }
    assert_eq!(
        stored(&j, "quiet"),
        (0..20).collect::<Vec<_>>(),
        "the quiet device keeps every batch"
    );
    let flood = stored(&j, "flood");
    assert!(
        flood.first() > Some(&0) && flood.last() == Some(&(seq - 1)),
        "the flood lost its oldest, kept its newest"
    );
    assert!(j.stats().bytes <= MAX_BYTES);
    // Still the case after a restart (the sidecars carry the per-device counts).
    drop(j);
    let (j, _) = Journal::open(opts(tmp.path(), WhenFull::DropOldestRaw)).unwrap();
    assert_eq!(stored(&j, "quiet"), (0..20).collect::<Vec<_>>());
    j.append(batch("flood", seq, &mut rng))
        .await
        .expect("stored");
    assert_eq!(stored(&j, "quiet"), (0..20).collect::<Vec<_>>());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Any interleaving of a flooding device and a device that stays under its share: the
    /// latter is never refused and never loses a batch, under either policy.
    #[test]
    fn a_device_under_its_share_is_never_refused_nor_loses_a_batch(
        order in proptest::collection::vec(0u8..8, 150..300),
        refuse in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let tmp = tempfile::tempdir().unwrap();
            let mut rng = SmallRng::seed_from_u64(seed);
            let policy = if refuse { WhenFull::Refuse } else { WhenFull::DropOldestRaw };
            let (j, _) = Journal::open(sized(tmp.path(), policy, 64 << 10)).unwrap();
            let (mut quiet, mut flood) = (0u64, 0u64);
            for pick in order {
                // One quiet batch in eight: ~1/8 of the flood's bytes, well under its share.
                if pick == 0 && quiet < 20 {
                    let r = j.append(batch("quiet", quiet, &mut rng)).await;
                    prop_assert!(r.is_ok(), "quiet refused: {:?}", r);
                    quiet += 1;
                } else {
                    let r = j.append(batch("flood", flood, &mut rng)).await;
                    prop_assert!(
                        r.is_ok() || matches!(r, Err(AppendError::DeviceFull { .. })),
                        "{:?}", r
                    );
                    flood += 1;
                }
            }
            prop_assert_eq!(stored(&j, "quiet"), (0..quiet).collect::<Vec<_>>());
            Ok(())
        })?;
    }
}

/// ~10 KB journaled per batch (300 six-channel samples that do not compress).
fn incompressible(session: &str, seq: u64) -> Value {
    let mut state = seq.wrapping_mul(6364136223846793005) | 1;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0
    };
    let samples: Vec<Value> = (0..300)
        .map(|_| json!([next(), next(), next(), next(), next(), next()]))
        .collect();
    json!({"type": "batch_sensor_data", "session_id": session, "seq": seq, "sensor_id": 4,
           "t0": 1732400000123i64 + seq as i64 * 100, "rate_hz": 1000, "samples": samples})
}

async fn device(gw: &Gateway, code: &str) -> Ws {
    let mut ws = connect(&format!("{}?token=tok-{code}", gw.ws_url(code))).await;
    recv_type(&mut ws, "connection_established").await;
    ws
}

async fn stored_reply(ws: &mut Ws, batch: &Value) -> Value {
    send(ws, batch).await;
    recv_type(ws, "batch_sensor_data_response").await
}

#[tokio::test]
async fn two_devices_one_floods_and_the_others_batches_still_get_durable_acks() {
    let dir = tempfile::tempdir().unwrap();
    let devices = [("flood", Some("tok-flood")), ("quiet", Some("tok-quiet"))];
    // The default device_share (0.5); refuse, so that a full journal would refuse everyone.
    let extra =
        "[journal]\nmax_bytes = \"4MiB\"\nsegment_bytes = \"1MiB\"\nwhen_full = \"refuse\"\n";
    let gw = Gateway::start(dir.path(), &config(dir.path(), &devices, extra));
    let mut flood = device(&gw, "flood").await;
    let mut quiet = device(&gw, "quiet").await;
    let mut refused = None;
    for seq in 0..1000 {
        let reply = stored_reply(&mut flood, &incompressible("f", seq)).await;
        if reply["success"] == false {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the flood reaches its share of 4 MiB within 1000 batches");
    let why = refused["message"].as_str().unwrap_or_default();
    assert!(
        why.contains("journal.device_share") && why.contains("`flood`"),
        "{refused}"
    );
    for seq in 0..30 {
        let reply = stored_reply(&mut quiet, &incompressible("q", seq)).await;
        assert_eq!(reply["success"], true, "{reply}");
        assert_eq!(reply["durable"], true, "{reply}");
        // The flood keeps trying and keeps being refused.
        let again = stored_reply(&mut flood, &incompressible("f", 1000 + seq)).await;
        assert_eq!(again["success"], false, "{again}");
    }
}
