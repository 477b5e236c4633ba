//! vrs-server: the central service.
//!
//! Municipalities upload their target-person register and paper records, review
//! held records, download the ledger and look up a newcomer's earlier doses by
//! マイナンバー; tablets look up a name and upload dose records.
//!
//! Where to start: [`store::SqliteStore`] holds every operation (each takes the
//! acting [`Principal`]); the decisions inside them are plain functions in
//! [`merge`] (register rows) and [`checks`] (dose records). [`vault`] keeps the
//! マイナンバー apart, encrypted; [`keys`] says where keys come from.

pub mod checks;
mod db;
pub mod error;
pub mod keys;
pub mod merge;
pub mod principal;
pub mod store;
pub mod vault;

pub use error::StoreError;
pub use keys::Keys;
pub use principal::Principal;
pub use store::SqliteStore;
