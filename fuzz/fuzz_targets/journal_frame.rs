//! Fuzzes the journal's record decoder: frame parsing, the stored-record decode (zstd + column
//! transform) and the raw batch body decoder. None may panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shuttlegate::journal::{Parse, StoredRecord, decode_batch_body, parse_frame};

fuzz_target!(|data: &[u8]| {
    if let Parse::Frame(f) = parse_frame(data) {
        let r = StoredRecord::from_encoded(f.bytes).expect("a parsed frame re-parses");
        let _ = r.decode();
    }
    let _ = decode_batch_body(data);
});
