//! Any text into the OCR-line parser: it must not panic, and whatever it accepts
//! must print back as the same 18 digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrs_domain::OcrLine;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(line) = s.parse::<OcrLine>() {
            let printed = line.to_string();
            assert_eq!(printed.len(), 18);
            assert_eq!(printed.parse::<OcrLine>().ok(), Some(line));
        }
    }
});
