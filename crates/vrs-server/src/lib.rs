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
//! functions in [`rules`]. [`http`] is the axum API over a `dyn Store`; [`web`] the
//! staff pages; [`keys`] says where keys come from.
//!
//! The walk of a dose from a tablet to the ledger: `http` (the tablet's signed
//! upload) → [`store::ingest::run`] → [`rules::checks`] → `sqlite|postgres/records.rs`;
//! the export: `http` → `sqlite|postgres/ledger.rs` → `vrs_domain::csv::ledger`.

pub mod demo;
pub mod error;
pub mod http;
pub mod keys;
pub mod mail;
pub mod postgres;
pub mod principal;
pub mod ratelimit;
pub mod rules;
pub mod spool;
pub mod sqlite;
pub mod store;
pub mod web;

pub use error::StoreError;
pub use keys::Keys;
pub use principal::Principal;
pub use sqlite::SqliteStore;
pub use store::Store;

/// Serves the API on `listener` until Ctrl-C or SIGTERM: plain HTTP, for loopback
/// or behind a TLS-terminating proxy; [`serve_tls`] otherwise.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: http::AppState,
) -> std::io::Result<()> {
    let app = http::router(state).layer(axum::middleware::from_fn(http::security_headers));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

/// Serves the API over TLS (rustls with ring; TLS 1.2 and 1.3) with the certificate
/// chain and private key in PEM files, until Ctrl-C or SIGTERM. Responses also
/// carry Strict-Transport-Security.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    mut state: http::AppState,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<()> {
    let config = tls_config(cert, key)?;
    state.secure_cookies = true;
    let app = http::router(state)
        .layer(axum::middleware::from_fn(http::security_headers))
        .layer(axum::middleware::from_fn(http::strict_transport));
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stopping.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(config)),
    )?
    .handle(handle)
    .serve(app.into_make_service())
    .await
}

/// The server's TLS configuration from PEM files, with errors that name the file.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} {}: {e}", path.display()),
        )
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("TLS certificate", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("TLS certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(bad(
            "TLS certificate",
            cert,
            &"no CERTIFICATE block in the file",
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("TLS key", key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS", cert, &e))?
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .map_err(|e| bad("TLS certificate and key", cert, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
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
}
