//! Journal benchmark (`cargo bench --bench journal`): bytes per sample on realistic data,
//! durable appends/s and samples/s with 1, 8 and 64 concurrent appenders at a 2 ms commit
//! window with ack latency p50/p99, the floor (a plain write + fdatasync loop of the same
//! records, in the same run), and READY time after opening a 1 GiB journal.
//!
//! Env: `JOURNAL_BENCH_SECS` (per throughput run, default 4; 0 measures sizes only), `JOURNAL_BENCH_GIB` (size of the
//! recovery journal, default 1; 0 skips), `JOURNAL_BENCH_DIR` (where to write; default a temp
//! dir under /tmp, i.e. the machine's disk).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use shuttlegate::journal::{Journal, JournalOptions, RecordBody, RecordKind};
use shuttlegate_core::batch::SensorBatch;
use shuttlegate_core::journal::synth::{
    CompactStyle, Motion, SeedStyle, compact_batch, compact_batch_as, seed_batch,
};
use shuttlegate_core::journal::{FrameMeta, encode_batch_body, encode_frame, segment_file_bytes};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var("JOURNAL_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir_in("/tmp").unwrap(),
    }
}

fn opts(dir: &std::path::Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.commit_interval = Duration::from_millis(2);
    o.max_bytes = 64 << 30;
    o
}

/// Realistic 1 kHz swing-heavy batches of 100 samples from 64 devices.
fn compact_pool(n: usize) -> Vec<SensorBatch> {
    let mut rng = SmallRng::seed_from_u64(1);
    (0..n)
        .map(|i| {
            let m = if i % 3 == 0 {
                Motion::Swing
            } else {
                Motion::Idle
            };
            compact_batch(
                &mut rng,
                &format!("dev{}", i % 64),
                "s1",
                None,
                1_732_400_000_000 + i as i64 * 100,
                100,
                m,
            )
        })
        .collect()
}

fn bytes_per_sample(rt: &tokio::runtime::Runtime, name: &str, batches: Vec<SensorBatch>) {
    let tmp = bench_dir();
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    let samples_in: usize = batches.iter().map(|b| b.sample_count()).sum();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for chunk in batches.chunks(batches.len().div_ceil(64)) {
            let j = j.clone();
            let chunk = chunk.to_vec();
            tasks.push(tokio::spawn(async move {
                for b in chunk {
                    j.append(RecordBody::Batch(b)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let st = j.stats();
    assert_eq!(st.samples as usize, samples_in);
    println!(
        "bytes/sample  {name:<34} {:>6.2} B  (frames incl. headers; {} samples, zstd ratio {:.2})",
        st.bytes_per_sample().unwrap(),
        st.samples,
        st.raw_body_bytes as f64 / st.stored_body_bytes as f64
    );
    rt.block_on(j.close()).unwrap();
}

/// Real recorded strokes (tests/fixtures/padel_mdpg22: a BMI270 on a padel racket at ≈104 Hz,
/// printed by its sketch with 3 decimals), cut into compact batches of 100 rows: what low-rate
/// firmware printing decimals sends during play.
fn padel_batches(device: &str, session: &str) -> Vec<SensorBatch> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/padel_mdpg22");
    let mut rows: Vec<f32> = Vec::new();
    for file in ["drive.csv", "reves.csv", "smash.csv", "ruido.csv"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("padel fixture");
        for line in text.lines().skip(1) {
            let values: Vec<f32> = line
                .trim()
                .split(',')
                .filter_map(|v| v.parse().ok())
                .collect();
            if values.len() == 6 {
                rows.extend(values);
            }
        }
    }
    rows.chunks_exact(600)
        .enumerate()
        .map(|(i, samples)| SensorBatch {
            device: device.to_owned(),
            session_id: session.to_owned(),
            seq: Some(i as u64),
            form: shuttlegate_core::batch::BatchForm::Compact(
                shuttlegate_core::batch::CompactBatch {
                    sensor_id: 4,
                    t0: 1_732_400_000_000 + i as i64 * 962,
                    rate_hz: 104.0,
                    channels: 6,
                    samples: samples.to_vec(),
                },
            ),
        })
        .collect()
}

struct RunResult {
    appends: u64,
    samples: u64,
    secs: f64,
    hist: Histogram<u64>,
}

/// `appenders` tasks append for `secs`: back to back (closed loop: the queue is as long as the
/// machine is slow, so the latency is saturation's), or each at `per_appender_hz` batches per
/// second (open loop, the way devices send).
fn throughput(
    rt: &tokio::runtime::Runtime,
    appenders: usize,
    secs: u64,
    pool: &Arc<Vec<SensorBatch>>,
    per_appender_hz: Option<f64>,
) -> RunResult {
    let tmp = bench_dir();
    let (j, _) = Journal::open(opts(tmp.path())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let (appends, samples, hist) = rt.block_on(async {
        let mut tasks = Vec::new();
        for a in 0..appenders {
            let j = j.clone();
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).unwrap();
                let (mut n, mut samples) = (0u64, 0u64);
                let mut i = a;
                let mut pace = per_appender_hz.map(|hz| {
                    let period = Duration::from_secs_f64(1.0 / hz);
                    // Staggered starts, as independent devices are.
                    let start = tokio::time::Instant::now() + period * a as u32 / appenders as u32;
                    tokio::time::interval_at(start, period)
                });
                while Instant::now() < deadline {
                    if let Some(p) = pace.as_mut() {
                        p.tick().await;
                    }
                    let mut b = pool[i % pool.len()].clone();
                    b.device = format!("bench{a}");
                    i += appenders;
                    samples += b.sample_count() as u64;
                    let t = Instant::now();
                    j.append(RecordBody::Batch(b)).await.unwrap();
                    hist.record(t.elapsed().as_micros() as u64).unwrap();
                    n += 1;
                }
                (n, samples, hist)
            }));
        }
        let mut total = (0, 0, Histogram::<u64>::new(3).unwrap());
        for t in tasks {
            let (n, s, h) = t.await.unwrap();
            total.0 += n;
            total.1 += s;
            total.2.add(h).unwrap();
        }
        total
    });
    let secs = started.elapsed().as_secs_f64();
    rt.block_on(j.close()).unwrap();
    RunResult {
        appends,
        samples,
        secs,
        hist,
    }
}

/// The floor: each record written and fdatasynced on its own, one after another.
/// The floor: one `write + fdatasync` per record. Returns records/s, samples/s and the
/// latency of each write + fdatasync (µs): the disk's own tail, which no commit protocol
/// can beat.
fn floor(records: &[Vec<u8>], samples_per_record: u64, secs: u64) -> (f64, f64, Histogram<u64>) {
    let tmp = bench_dir();
    let mut f = std::fs::File::create(tmp.path().join("floor")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut sync = Histogram::<u64>::new(3).unwrap();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let t = Instant::now();
        f.write_all(&records[n as usize % records.len()]).unwrap();
        f.sync_data().unwrap();
        sync.saturating_record(t.elapsed().as_micros() as u64);
        n += 1;
    }
    let s = started.elapsed().as_secs_f64();
    (n as f64 / s, (n * samples_per_record) as f64 / s, sync)
}

fn encoded_frames(pool: &[SensorBatch]) -> Vec<Vec<u8>> {
    pool.iter()
        .enumerate()
        .map(|(i, b)| {
            let body = encode_batch_body(b);
            let mut out = Vec::new();
            let meta = FrameMeta {
                id: i as u64 + 1,
                // A real clock reading: v2 frames store it as a varint, 0 would be too cheap.
                ts_ms: 1_764_000_000_000 + i as i64,
                kind: RecordKind::Batch,
                codec: body.codec,
                seq: Some(i as u64),
                samples: body.samples,
                raw_len: body.raw_len,
                device: Some(&b.device),
                session_id: Some(&b.session_id),
            };
            encode_frame(&meta, &body.bytes, &mut out);
            out
        })
        .collect()
}

/// Writes a journal of `gib` GiB as the writer would have (sealed segments of 64 MiB with
/// sidecars after a first open), then times a fresh open to READY.
fn recovery(rt: &tokio::runtime::Runtime, gib: u64, pool: &[SensorBatch]) {
    let tmp = bench_dir();
    let dir = tmp.path().join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let bodies: Vec<_> = pool.iter().map(encode_batch_body).collect();
    let seg_bytes: u64 = 64 << 20;
    let target = gib << 30;
    let t = Instant::now();
    let (mut id, mut written, mut records) = (1u64, 0u64, 0u64);
    while written < target {
        let first = id;
        let mut buf = Vec::with_capacity(seg_bytes as usize);
        while (buf.len() as u64) < seg_bytes - 4096 {
            let i = (id as usize) % bodies.len();
            let (b, body) = (&pool[i], &bodies[i]);
            let meta = FrameMeta {
                id,
                ts_ms: 1_732_400_000_000 + id as i64,
                kind: RecordKind::Batch,
                codec: body.codec,
                // Devices number their batches 0, 1, 2, …: device = id % 64, so seq = id / 64.
                seq: Some(id / 64),
                samples: body.samples,
                raw_len: body.raw_len,
                device: Some(&b.device),
                session_id: Some(&b.session_id),
            };
            encode_frame(&meta, &body.bytes, &mut buf);
            id += 1;
            records += 1;
        }
        let file = segment_file_bytes(first, &buf);
        written += file.len() as u64;
        std::fs::write(dir.join(format!("{first:020}.seg")), file).unwrap();
    }
    println!(
        "recovery      wrote {:.2} GiB, {records} records in {:.1?}",
        written as f64 / (1u64 << 30) as f64,
        t.elapsed()
    );
    let mut o = opts(&dir);
    o.segment_bytes = seg_bytes;
    let t = Instant::now();
    let (j, report) = Journal::open(o.clone()).unwrap();
    println!(
        "recovery      first open (no sidecars: every segment scanned, sidecars written): {:.0?}",
        t.elapsed()
    );
    assert_eq!(report.records, records);
    rt.block_on(j.close()).unwrap();
    let t = Instant::now();
    let (j, report) = Journal::open(o).unwrap();
    let ready = t.elapsed();
    println!(
        "recovery      READY after open of {:.2} GiB ({} segments, {} records, open segment deep-verified): {:.0?}  [target ≤ 1 s; page cache warm]",
        report.bytes as f64 / (1u64 << 30) as f64,
        report.segments,
        report.records,
        ready
    );
    rt.block_on(j.close()).unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`. Test runners (`cargo test --all-targets`, nextest's
    // `--list`) run this binary too: without `--bench` it lists nothing and exits.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs = env_u64("JOURNAL_BENCH_SECS", 4);
    let gib = env_u64("JOURNAL_BENCH_GIB", 1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "journal benchmark: commit_interval 2 ms, batches of 100 6-axis samples (1 kHz MPU-class data, 1/3 swings)"
    );

    let mut rng = SmallRng::seed_from_u64(9);
    // Names as in SPEC §1.1's examples: they are stored in every record's frame.
    let (device, session) = ("2025001", "s-0017");
    let compact = |rng: &mut SmallRng, i: u64, motion, style| {
        compact_batch_as(rng, (device, session, Some(i), 0), 100, motion, style)
    };
    // A rally: each player hits about once a second, so one 100 ms batch in ten holds a swing.
    let rally_motion = |i: u64| {
        if i.is_multiple_of(10) {
            Motion::Swing
        } else {
            Motion::Idle
        }
    };
    for (style, label) in [
        (CompactStyle::Counts, "counts"),
        (CompactStyle::Decimals, "printed decimals"),
    ] {
        for (what, motion_of) in [
            ("swing", (|_| Motion::Swing) as fn(u64) -> Motion),
            ("idle", |_| Motion::Idle),
            ("rally (1 batch in 10 swings)", rally_motion),
        ] {
            bytes_per_sample(
                &rt,
                &format!("compact 6-axis, {label}, {what}"),
                (0..2000)
                    .map(|i| compact(&mut rng, i, motion_of(i), style))
                    .collect(),
            );
        }
    }
    bytes_per_sample(
        &rt,
        "compact 6-axis, real padel strokes, 104 Hz",
        padel_batches(device, session),
    );
    for (name, style) in [
        ("seed 9-ch, int16 counts (WT901)", SeedStyle::Counts),
        ("seed 9-ch, printed decimals", SeedStyle::Decimals),
        ("seed 9-ch, fused floats (worst)", SeedStyle::Fused),
    ] {
        bytes_per_sample(
            &rt,
            name,
            (0..2000)
                .map(|i| seed_batch(&mut rng, device, session, 36_000_000 + i * 80, 30, style))
                .collect(),
        );
    }

    // JOURNAL_BENCH_SECS=0: sizes only.
    if secs == 0 {
        return;
    }
    let pool = Arc::new(compact_pool(512));
    let runs: [(usize, Option<f64>, &str); 5] = [
        (1, None, "back to back"),
        (8, None, "back to back"),
        (64, None, "back to back"),
        (64, Some(10.0), "10 batches/s each: 64 devices at 1 kHz"),
        (64, Some(78.0), "78 batches/s each: 0.5 M samples/s"),
    ];
    for (appenders, hz, how) in runs {
        let r = throughput(&rt, appenders, secs, &pool, hz);
        println!(
            "append        {appenders:>2} appenders: {:>8.0} appends/s {:>10.0} samples/s  ack p50 {:>5.2} ms  p99 {:>5.2} ms  max {:>6.2} ms  ({how})",
            r.appends as f64 / r.secs,
            r.samples as f64 / r.secs,
            r.hist.value_at_quantile(0.5) as f64 / 1000.0,
            r.hist.value_at_quantile(0.99) as f64 / 1000.0,
            r.hist.max() as f64 / 1000.0,
        );
    }
    let frames = encoded_frames(&pool);
    let (rps, sps, sync) = floor(&frames, 100, secs.min(3));
    println!(
        "floor         write + fdatasync per record (same frames): {rps:>8.0} records/s {sps:>10.0} samples/s  each p50 {:>5.2} ms  p99 {:>5.2} ms  max {:>6.2} ms  mean {:>5.2} ms",
        sync.value_at_quantile(0.5) as f64 / 1000.0,
        sync.value_at_quantile(0.99) as f64 / 1000.0,
        sync.max() as f64 / 1000.0,
        sync.mean() / 1000.0,
    );

    if gib > 0 {
        recovery(&rt, gib, &pool);
    }
}
