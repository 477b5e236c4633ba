//! Start-up: the API and the staff pages merged into one service, their security
//! headers, plain HTTP or TLS, and a graceful stop on Ctrl-C or SIGTERM.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use crate::{http, web};

/// The whole service: the API and the staff pages, with security headers on every
/// response.
pub fn app(state: http::AppState) -> Router {
    http::router(state)
        .merge(web::router())
        .layer(axum::middleware::from_fn(security_headers))
}

/// Serves the API on `listener` until Ctrl-C or SIGTERM: plain HTTP, for loopback
/// or behind a TLS-terminating proxy; [`serve_tls`] otherwise.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: http::AppState,
) -> std::io::Result<()> {
    let app = app(state);
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
    let app = app(state).layer(axum::middleware::from_fn(strict_transport));
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

/// Under TLS: browsers keep to HTTPS for this host for a year.
pub async fn strict_transport(req: Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    r.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

/// Security headers on every response.
pub async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    // The pages load only their own script and style; nothing may frame them.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    r
}
