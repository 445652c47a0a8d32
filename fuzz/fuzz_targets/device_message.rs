//! Fuzz target: the device message parser. Any bytes, read as text the way the transport hands
//! it over (valid UTF-8 only; invalid UTF-8 closes the connection with 1007 before parsing), must
//! give a typed message or a named error, never a panic; the compact fast path must agree with the
//! reference parser on every input; and an accepted message must render and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shuttlegate_core::protocol::inbound::parse_device_message_reference;
use shuttlegate_core::protocol::{parse_device_message, render_device_message};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_device_message(text, "fuzz-01");
    assert_eq!(parsed, parse_device_message_reference(text, "fuzz-01"));
    match parsed {
        Ok(msg) => {
            let again = render_device_message(&msg, "fuzz-01");
            assert_eq!(parse_device_message(&again, "fuzz-01"), Ok(msg));
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
});
