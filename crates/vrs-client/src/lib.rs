//! vrs-client holds everything a tablet does, without Tauri and without a display:
//! frame sources, the scan session, the encrypted outbox and sync with the server.
//!
//! Where to start: [`tablet::Tablet`] is the tablet as one object (the app and
//! `vrs client` both drive it). Under it:
//! - [`session`]: the scan session as a pure state machine (set-up, voucher, name
//!   confirmation, save; batch mode), table-tested;
//! - [`frames`]: where frames come from (a replay of images; the camera behind the
//!   `camera` feature);
//! - [`outbox`]: the SQLCipher database of records and their receipts;
//! - [`device`]: the Ed25519 key pair and request signing;
//! - [`api`]: the server's tablet endpoints, errors sorted into retry or stop;
//! - [`sync`]: batches, backoff with jitter and receipts; the decisions are plain
//!   functions, table-tested.

pub mod api;
pub mod device;
pub mod frames;
pub mod outbox;
pub mod session;
pub mod sync;
pub mod tablet;
