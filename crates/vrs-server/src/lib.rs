//! vrs-server is the central service: register import, dose records, ledger export,
//! the transfer look-up, the マイナンバー vault, sign-in and audit.
//!
//! Not built yet: the central-service issue fills this crate. The CSV codecs and wire
//! types it will use live in `vrs_domain`.
