//! vrs-tests holds end-to-end tests that cross crates: fixture image → client →
//! server → export. Tests that belong to one crate stay in that crate.
//!
//! The cross-crate flows arrive with the server and client issues; until then the
//! command-line checks live in `crates/vrs-cli/tests`.
