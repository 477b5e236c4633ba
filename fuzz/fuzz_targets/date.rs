//! Any text into the date reader (western, 和暦, 7-digit era form): no panic, and an
//! accepted YYYYMMDD prints back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrs_domain::date::{format_date, parse_date};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(d) = parse_date(s) {
            assert_eq!(parse_date(&format_date(d)), Ok(d));
        }
    }
});
