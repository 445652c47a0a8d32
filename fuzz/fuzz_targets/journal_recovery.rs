//! Fuzzes recovery: the scanner over arbitrary segment bytes, and a whole journal open (on the
//! simulated disk) of a segment whose record area is the input, under a version-2 header (inputs
//! of even length) or a version-1 header as earlier builds wrote (odd length: the open segment is
//! then retired). Must never panic; every record read back must have a valid checksum and
//! increasing ids.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use shuttlegate::journal::{Fs, Journal, JournalOptions, SimFs};
use shuttlegate_core::journal::{scan_all, segment_file_bytes, segment_file_bytes_v1};

fuzz_target!(|data: &[u8]| {
    let mut last = 0;
    let summary = scan_all(data, |_, f| {
        assert!(f.meta.id > last);
        last = f.meta.id;
    });
    assert!(summary.valid_len <= data.len());

    let sim = SimFs::new();
    let dir = Path::new("/j");
    let seg = dir.join("00000000000000000001.seg");
    let file = if data.len() % 2 == 1 {
        segment_file_bytes_v1(1, data)
    } else {
        segment_file_bytes(1, data)
    };
    sim.write_synced(&seg, &file).unwrap();
    sim.sync_dir(dir).unwrap();
    let mut opts = JournalOptions::new(dir);
    opts.segment_bytes = 1 << 20;
    opts.max_bytes = 1 << 30;
    let (j, _) = Journal::open_with_fs(opts, Arc::new(sim.boot())).expect("the journal always opens");
    let all = j.read_after(0, usize::MAX, None).expect("reads work");
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
});
