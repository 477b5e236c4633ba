//! Any bytes as a tablet's upload body: no panic, and what is accepted serialises
//! back to an equal batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrs_domain::wire::UploadBatch;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<UploadBatch>(data) {
        let again = serde_json::to_vec(&batch).expect("serialises");
        let back: UploadBatch = serde_json::from_slice(&again).expect("reads back");
        assert_eq!(back, batch);
    }
});
