//! vrs-client holds everything a tablet does, without Tauri and without a display:
//! frame sources, the scan session, the encrypted outbox and sync with the server.
//!
//! Start at [`session`]: the scan session as a pure state machine (set-up, voucher,
//! name confirmation, save; batch mode). The frame sources, the outbox and sync are
//! still to come (the tablet-core issue); the wire types they will send
//! (`vrs_domain::wire`) are defined.

pub mod api;
pub mod device;
pub mod frames;
pub mod outbox;
pub mod session;
pub mod sync;
pub mod tablet;
