//! The HTTP API (axum), one file per URL area, each with its own `router()`, merged
//! in [`router`]: `/api/register` and `/api/imports` and `/api/sites` in
//! [`register`], `/api/paper` and `/api/records` in [`records`], `/api/ledger.csv` in
//! [`ledger`], `/api/transfer` in [`transfer`], `/api/tablet` in [`tablet`],
//! `/api/devices` in [`devices`], `/api/signin` and `/api/me` in [`signin`],
//! `/api/users` and `/api/contacts` in [`access`], `/api/audit` in [`audit`], the
//! document and health in [`openapi`]. The error type is in [`error`], the extractors
//! in [`extract`].
//!
//! Handlers are thin: they authenticate, parse, and call the store on a blocking
//! thread. Bad input gets a 4xx with a JSON `{"error": …}` body, never a 5xx;
//! uploads and the ledger export stream. The staff pages are merged beside this by
//! the serving code ([`crate::serve`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

pub mod access;
pub mod audit;
pub mod devices;
pub mod error;
pub mod extract;
pub mod ledger;
pub mod openapi;
pub mod records;
pub mod register;
pub mod signin;
pub mod tablet;
pub mod transfer;

pub use error::ApiError;
pub use openapi::{ApiDoc, openapi_json};

use crate::ratelimit::NameLimits;
use crate::store::Store;

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Per-tablet limits on the name look-up.
    pub names: Arc<NameLimits>,
    /// Where sign-in passcodes are sent.
    pub mailer: Arc<crate::mail::Mailer>,
    /// Session cookies carry `Secure` (the service speaks TLS).
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, mailer: crate::mail::Mailer) -> Self {
        AppState {
            store,
            names: Arc::new(NameLimits::default()),
            mailer: Arc::new(mailer),
            secure_cookies: false,
        }
    }
}

/// Every route of the API, with its state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(openapi::router())
        .merge(register::router())
        .merge(records::router())
        .merge(ledger::router())
        .merge(transfer::router())
        .merge(tablet::router(state.clone()))
        .merge(devices::router())
        .merge(signin::router())
        .merge(access::router())
        .merge(audit::router())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint: see /api/openapi.json",
            )
        })
        .with_state(state)
}

pub(crate) fn csv_response(body: impl Into<Body>, filename: &str) -> Response {
    let mut r = Response::new(body.into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
