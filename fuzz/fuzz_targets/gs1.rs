//! Any text into the GS1 element-string parser: it must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = vrs_domain::gs1::parse(s);
    }
});
