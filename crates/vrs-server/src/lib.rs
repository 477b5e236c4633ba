//! vrs-server: the central service.
//!
//! Municipalities upload their target-person register and paper records, review
//! held records, download the ledger and look up a newcomer's earlier doses by
//! マイナンバー; tablets look up a name and upload dose records.
//!
//! Where to start: [`backend::Store`] lists every operation (each takes the acting
//! [`Principal`]); [`SqliteStore`] and [`pg::PgStore`] implement it. The rules live
//! once, above the backends: [`import`] (register and paper uploads) and [`ingest`]
//! (tablet batches) are engines over small backend "sinks", and the decisions inside
//! them are plain functions in [`merge`] (register rows) and [`checks`] (dose
//! records). [`vault`] keeps the マイナンバー apart, encrypted; [`keys`] says where keys
//! come from; [`http`] is the axum API over a `dyn Store`.

pub mod audit;
pub mod backend;
pub mod checks;
mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod import;
pub mod ingest;
pub mod keys;
pub mod merge;
pub mod pg;
pub mod principal;
pub mod ratelimit;
pub mod spool;
pub mod store;
pub mod vault;

pub use backend::Store;
pub use error::StoreError;
pub use keys::Keys;
pub use principal::Principal;
pub use store::SqliteStore;

/// Serves the API on `listener` until Ctrl-C or SIGTERM.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: std::sync::Arc<dyn Store>,
) -> std::io::Result<()> {
    let app = http::router(http::AppState::new(store))
        .layer(axum::middleware::from_fn(http::security_headers));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            let term = async {
                if let Ok(mut s) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    s.recv().await;
                }
            };
            #[cfg(not(unix))]
            let term = std::future::pending::<()>();
            tokio::select! {
                _ = ctrl_c => {}
                _ = term => {}
            }
        })
        .await
}
