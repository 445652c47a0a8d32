//! Model-based property test: random sequences of append / read / ack / clean restart / power
//! cut against the journal on the simulated disk ([`SimFs`]), checked after every step against
//! an in-memory model of what must be there.
//!
//! The model: every acknowledged record, by id. Records at or below the lowest consumer ack may
//! have been released (that is allowed, not required); everything above must be readable with
//! exactly the body appended; the idempotence index must equal the seqs actually readable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use shuttlegate::journal::{Document, Journal, JournalOptions, RecordBody, SimFs, StoredRecord};
use shuttlegate_core::journal::synth::{Motion, SeedStyle, compact_batch, seed_batch};

#[derive(Debug, Clone)]
enum Op {
    /// A device-numbered batch of session `session` with `seq`.
    Batch {
        session: u8,
        seq: u8,
    },
    /// A gateway-numbered (V3.3) batch.
    SeedBatch,
    Event,
    Read {
        after_pct: u8,
        max: u8,
    },
    Ack {
        consumer: u8,
        pct: u8,
    },
    Restart,
    PowerCut {
        seed: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..2, 0u8..24).prop_map(|(session, seq)| Op::Batch { session, seq }),
        2 => Just(Op::SeedBatch),
        2 => Just(Op::Event),
        2 => (0u8..=100, 1u8..20).prop_map(|(after_pct, max)| Op::Read { after_pct, max }),
        2 => (0u8..2, 0u8..=100).prop_map(|(consumer, pct)| Op::Ack { consumer, pct }),
        1 => Just(Op::Restart),
        1 => any::<u64>().prop_map(|seed| Op::PowerCut { seed }),
    ]
}

const CONSUMERS: [&str; 2] = ["mqtt", "hub"];

fn opts() -> JournalOptions {
    let mut o = JournalOptions::new(Path::new("/state/journal"));
    o.commit_interval = Duration::ZERO;
    o.segment_bytes = 4096;
    o.max_bytes = 1 << 30;
    o.consumers = CONSUMERS.iter().map(|c| c.to_string()).collect();
    o
}

#[derive(Default)]
struct Model {
    records: BTreeMap<u64, RecordBody>,
    acked: [u64; 2],
    last_id: u64,
}

impl Model {
    fn release_bound(&self) -> u64 {
        self.acked.iter().copied().min().unwrap_or(0)
    }
}

fn session_of(b: &RecordBody) -> Option<(String, String, u64)> {
    match b {
        RecordBody::Batch(b) => Some((b.device.clone(), b.session_id.clone(), b.seq?)),
        _ => None,
    }
}

fn check(j: &Journal, m: &Model) -> Result<Vec<StoredRecord>, TestCaseError> {
    let all = j.read_after(0, usize::MAX, None).unwrap();
    prop_assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "ids strictly increase"
    );
    let bound = m.release_bound();
    let present: BTreeSet<u64> = all.iter().map(|r| r.id).collect();
    for (id, body) in m.records.range(bound + 1..) {
        prop_assert!(
            present.contains(id),
            "acked record {} (above release bound {}) missing",
            id,
            bound
        );
        let _ = body;
    }
    for r in &all {
        let want = m.records.get(&r.id);
        prop_assert!(want.is_some(), "record {} was never acknowledged", r.id);
        prop_assert_eq!(&r.decode().unwrap().body, want.unwrap());
    }
    prop_assert!(j.durable_id() >= m.last_id);
    let mut seqs: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for r in &all {
        if let Some((d, s, q)) = session_of(&r.decode().unwrap().body) {
            seqs.entry((d, s)).or_default().push(q);
        }
    }
    for ((d, s), mut qs) in seqs {
        qs.sort_unstable();
        prop_assert_eq!(j.stored_seqs(&d, &s), qs, "index of {}/{}", d, s);
    }
    for (i, c) in CONSUMERS.iter().enumerate() {
        prop_assert!(j.cursor(c) <= m.acked[i]);
    }
    Ok(all)
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let sim = SimFs::new();
    let open = |sim: &SimFs| {
        Journal::open_with_fs(opts(), Arc::new(sim.boot()))
            .unwrap()
            .0
    };
    let mut j = open(&sim);
    let mut m = Model::default();
    let mut rng = SmallRng::seed_from_u64(7);
    for op in ops {
        match op {
            Op::Batch { session, seq } => {
                let b = compact_batch(
                    &mut rng,
                    "dev",
                    &format!("s{session}"),
                    Some(u64::from(seq)),
                    0,
                    30,
                    Motion::Swing,
                );
                let key = ("dev".to_owned(), format!("s{session}"), u64::from(seq));
                let a = j.append(RecordBody::Batch(b.clone())).await.unwrap();
                let original = m
                    .records
                    .iter()
                    .rev()
                    .find(|(_, r)| session_of(r).as_ref() == Some(&key))
                    .map(|(&id, _)| id);
                match original {
                    Some(orig) if orig > m.release_bound() => {
                        prop_assert!(a.duplicate, "resend of a held batch must be a duplicate");
                        prop_assert_eq!(a.id, orig);
                    }
                    _ if a.duplicate => {
                        prop_assert_eq!(Some(a.id), original, "duplicate of what?");
                    }
                    _ => {
                        prop_assert!(a.id > m.last_id);
                        m.records.insert(a.id, RecordBody::Batch(b));
                        m.last_id = a.id;
                    }
                }
            }
            Op::SeedBatch => {
                let mut b = seed_batch(&mut rng, "v33", "123", 36_000_000, 30, SeedStyle::Fused);
                let a = j.append(RecordBody::Batch(b.clone())).await.unwrap();
                prop_assert!(!a.duplicate && a.id > m.last_id);
                let q = a.seq.unwrap();
                let held_max = m
                    .records
                    .range(m.release_bound() + 1..)
                    .filter_map(|(_, r)| session_of(r))
                    .filter(|k| k.1 == "123")
                    .map(|k| k.2)
                    .max();
                prop_assert!(
                    held_max.is_none_or(|h| q > h),
                    "gateway seq {} not above held {:?}",
                    q,
                    held_max
                );
                b.seq = Some(q);
                m.records.insert(a.id, RecordBody::Batch(b));
                m.last_id = a.id;
            }
            Op::Event => {
                let body = RecordBody::Event(Document {
                    device: Some("dev".into()),
                    session_id: None,
                    json: format!("{{\"type\":\"device_online\",\"n\":{}}}", m.last_id),
                });
                let a = j.append(body.clone()).await.unwrap();
                prop_assert!(a.id > m.last_id);
                m.records.insert(a.id, body);
                m.last_id = a.id;
            }
            Op::Read { after_pct, max } => {
                let all = check(&j, &m)?;
                let after = m.last_id * u64::from(after_pct) / 100;
                let got: Vec<u64> = j
                    .read_after(after, usize::from(max), None)
                    .unwrap()
                    .iter()
                    .map(|r| r.id)
                    .collect();
                let want: Vec<u64> = all
                    .iter()
                    .map(|r| r.id)
                    .filter(|&id| id > after)
                    .take(usize::from(max))
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::Ack { consumer, pct } => {
                let id = m.last_id * u64::from(pct) / 100;
                j.ack(CONSUMERS[usize::from(consumer)], id).unwrap();
                let c = &mut m.acked[usize::from(consumer)];
                *c = (*c).max(id);
                j.sync_cursors().await.unwrap();
            }
            Op::Restart => {
                j.close().await.unwrap();
                j = open(&sim);
                for (i, c) in CONSUMERS.iter().enumerate() {
                    prop_assert_eq!(j.cursor(c), m.acked[i], "a clean close persists acks");
                }
            }
            Op::PowerCut { seed } => {
                sim.power_cut(&mut SmallRng::seed_from_u64(seed));
                drop(j);
                j = open(&sim);
                for (i, c) in CONSUMERS.iter().enumerate() {
                    // An ack not yet persisted at the cut is lost (re-delivered): at-least-once.
                    let survived = j.cursor(c);
                    prop_assert!(survived <= m.acked[i]);
                    m.acked[i] = survived;
                }
            }
        }
        check(&j, &m)?;
    }
    j.close().await.unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(
            "proptest-regressions/journal_model.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_journal_agrees_with_its_model(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
