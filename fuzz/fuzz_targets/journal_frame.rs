//! Fuzzes the journal's record decoder: frame parsing (both layouts), the stored-record decode
//! (zstd + column transform) and the raw batch body decoder. None may panic on any input, and
//! a v2 frame that parses has exactly one encoding: re-encoding gives back its bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shuttlegate_core::journal::{
    Parse, StoredRecord, decode_batch_body, encode_frame, frame_len, parse_frame,
};

fuzz_target!(|data: &[u8]| {
    if let Parse::Frame(f) = parse_frame(data) {
        let r = StoredRecord::from_encoded(f.bytes).expect("a parsed frame re-parses");
        let _ = r.decode();
        // Bit 31 of the little-endian length: a v2 frame.
        if f.bytes[3] & 0x80 != 0 {
            let mut again = Vec::new();
            encode_frame(&f.meta, f.body, &mut again);
            assert_eq!(again, f.bytes, "a v2 frame re-encodes to its own bytes");
            assert_eq!(frame_len(&f.meta, f.body.len()), f.bytes.len());
        }
    }
    let _ = decode_batch_body(data);
});
