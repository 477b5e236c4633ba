//! vrs-client holds everything a tablet does, without Tauri and without a display:
//! frame sources, the scan session, the encrypted outbox and sync with the server.
//!
//! Where to start: [`tablet::Tablet`] is the tablet as one object (the app and
//! `vrs client` both drive it), with its typed settings. A voucher goes: a frame
//! ([`frames`]) → `vrs_scan::Scanner` → `vrs_scan::Consensus` → [`session`] → the
//! [`outbox`] → [`sync`] → the server's receipts back into the outbox. Under it:
//! - [`session`]: the scan session as a pure state machine (set-up, voucher, name
//!   confirmation, save; batch mode), table-tested, and [`session::drive`], the one
//!   loop that carries out its effects through a [`session::Host`] (the app's and
//!   `vrs client`'s);
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
