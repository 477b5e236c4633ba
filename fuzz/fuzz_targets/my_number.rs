//! Any text into the マイナンバー parser: no panic, and no error message that repeats
//! a run of 11 or more digits from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrs_domain::MyNumber;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Err(e) = s.parse::<MyNumber>() {
            let msg = e.to_string();
            let longest = msg
                .split(|c: char| !c.is_ascii_digit())
                .map(str::len)
                .max()
                .unwrap_or(0);
            assert!(longest < 11, "{msg}");
        }
    }
});
