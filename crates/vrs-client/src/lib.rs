//! vrs-client holds everything a tablet does, without Tauri and without a display:
//! frame sources, the scan session, the encrypted outbox and sync with the server.
//!
//! Not built yet: the tablet-core issue fills this crate. The wire types it will send
//! (`vrs_domain::wire`) are already defined.
