//! Any bytes into the ledger / paper-record CSV reader: it must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrs_domain::csv::Encoding;
use vrs_domain::csv::ledger::{LedgerReader, ReadOptions};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Auto, Encoding::Cp932] {
        let opts = ReadOptions { encoding, today: None };
        if let Ok(reader) = LedgerReader::new(data, opts) {
            for _ in reader {}
        }
    }
});
