//! Crash test against a real process: `shuttlegate-tools journal torture` appends from 8 tasks and
//! prints `<id> <device> <seq>` for every acknowledged append; we SIGKILL it at a random moment,
//! reopen the journal, and check that every printed id is readable, exactly once, in order,
//! with the device and seq it was acknowledged for. 50 kills.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shuttlegate::journal::{Journal, JournalOptions, RecordBody};

const KILLS: usize = 50;

#[test]
fn every_acknowledged_append_survives_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let started = Instant::now();
    let mut rng = SmallRng::seed_from_u64(50);
    // id → (device, seq), for everything acknowledged by any run.
    let mut acked: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    for kill in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shuttlegate-tools"))
            .args([
                "journal",
                "torture",
                "--appenders",
                "8",
                "--segment-bytes",
                "32768",
                "--dir",
            ])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let wanted = rng.random_range(1..300);
        let mut lines = Vec::new();
        let mut line = String::new();
        while lines.len() < wanted {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                panic!("kill {kill}: torture exited early: {:?}", child.wait());
            }
            lines.push(line.clone());
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines printed before the kill landed are acknowledged too; a torn last line is not.
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        lines.extend(rest.split_inclusive('\n').map(str::to_owned));
        for l in lines.iter().filter(|l| l.ends_with('\n')) {
            let mut parts = l.split_whitespace();
            let id: u64 = parts.next().unwrap().parse().unwrap();
            let device = parts.next().unwrap().to_owned();
            let seq: u64 = parts.next().unwrap().parse().unwrap();
            assert!(
                acked.insert(id, (device, seq)).is_none(),
                "kill {kill}: id {id} acknowledged twice"
            );
        }
        check(&dir, &acked, kill);
    }
    assert!(
        acked.len() > KILLS * 50,
        "load was applied: {} acks",
        acked.len()
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "bounded: {:?}",
        started.elapsed()
    );
}

fn check(dir: &std::path::Path, acked: &BTreeMap<u64, (String, u64)>, kill: usize) {
    let mut o = JournalOptions::new(dir);
    o.segment_bytes = 32768;
    o.max_bytes = 32768 * 1024;
    let (j, _) = Journal::open(o).unwrap_or_else(|e| panic!("kill {kill}: reopen: {e}"));
    let all = j.read_after(0, usize::MAX, None).unwrap();
    let mut seen = HashSet::new();
    let mut stored: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    let mut last = 0;
    for r in &all {
        assert!(r.id > last, "kill {kill}: ids out of order");
        last = r.id;
        let RecordBody::Batch(b) = r.decode().unwrap().body else {
            panic!("not a batch")
        };
        assert!(
            seen.insert((b.device.clone(), b.seq)),
            "kill {kill}: {} seq {:?} stored twice",
            b.device,
            b.seq
        );
        stored.insert(r.id, (b.device, b.seq.unwrap()));
    }
    for (id, want) in acked {
        assert_eq!(
            stored.get(id),
            Some(want),
            "kill {kill}: acknowledged id {id} lost or changed"
        );
    }
    drop(j);
}
