//! vrs-server: the central service.
//!
//! Municipalities upload their target-person register and paper records, review
//! held records, download the ledger and look up a newcomer's earlier doses by
//! マイナンバー; tablets look up a name and upload dose records.
//!
//! Where to start: [`store`] lists every operation as a few traits, one per feature
//! (register, lots, records, ledger, transfer, vault, access, devices), each taking
//! the acting [`Principal`]; [`sqlite::SqliteStore`] (the embedded default) and
//! [`postgres::PgStore`] implement them, one file per feature, and nothing outside
//! those two folders speaks SQL. The rules live once, above the backends: the engines
//! [`store::import`] (register and paper uploads) and [`store::ingest`] (tablet
//! batches) run over small backend "sinks", and the decisions inside them are plain
//! functions in [`rules`]. [`http`] is the axum API over a `dyn Store`, one file per
//! URL area; [`web`] the staff pages; [`serve`] merges the two and starts the
//! service; [`keys`] says where keys come from.
//!
//! The walk of a dose from a tablet to the ledger: [`http::tablet`] →
//! [`store::ingest::run`] → [`rules::checks`] → `sqlite|postgres/records.rs`; the
//! export: [`http::ledger`] → `sqlite|postgres/ledger.rs` → `vrs_domain::csv::ledger`.

pub mod demo;
pub mod error;
pub mod http;
pub mod keys;
pub mod mail;
pub mod postgres;
pub mod principal;
pub mod ratelimit;
pub mod rules;
pub mod serve;
pub mod spool;
pub mod sqlite;
pub mod store;
pub mod web;

pub use error::StoreError;
pub use keys::Keys;
pub use principal::Principal;
pub use serve::{serve, serve_tls, tls_config};
pub use sqlite::SqliteStore;
pub use store::Store;
