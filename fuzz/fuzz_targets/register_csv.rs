//! Any bytes into the register CSV reader, in every encoding mode: it must not panic,
//! and every row error must name a line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrs_domain::csv::register::{ReadOptions, RegisterReader};
use vrs_domain::csv::{Encoding, ReadError};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Auto, Encoding::Utf8, Encoding::Cp932] {
        let opts = ReadOptions { encoding, today: None };
        if let Ok(reader) = RegisterReader::new(data, opts) {
            for item in reader {
                if let Err(ReadError::Row(e)) = item {
                    assert!(e.line >= 1);
                    assert!(!e.problems.is_empty());
                }
            }
        }
    }
});
