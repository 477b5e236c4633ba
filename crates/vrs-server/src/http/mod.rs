//! The HTTP API (axum), one file per URL area, each with its own `router()`, merged
//! in [`router`]: `/api/register` and `/api/imports` and `/api/sites` in
//! [`register`], `/api/paper` and `/api/records` in [`records`], `/api/ledger.csv` in
//! [`ledger`], `/api/lots` in [`lots`], `/api/transfer` in [`transfer`], `/api/tablet` in [`tablet`],
//! `/api/devices` in [`devices`], `/api/signin` and `/api/me` in [`signin`],
//! `/api/users` and `/api/contacts` in [`access`], `/api/audit` in [`audit`], the
//! document and health in [`openapi`]. The error type is in [`error`], the extractors
//! in [`extract`].
//!
//! Handlers are thin: they authenticate, parse, and call the store on a blocking
//! thread. Bad input gets a 4xx with a JSON `{"error": …}` body, never a 5xx;
//! uploads and the ledger export stream. The staff pages are merged beside this by
//! the serving code ([`crate::serve`]).

use axum::Router;
use axum::http::StatusCode;

pub mod access;
pub mod audit;
pub mod devices;
pub mod error;
pub mod extract;
pub mod ledger;
pub mod lots;
pub mod openapi;
pub mod progress;
pub mod records;
pub mod register;
pub mod signin;
pub mod state;
pub mod tablet;
pub mod transfer;

pub use error::ApiError;
pub use openapi::{ApiDoc, openapi_json};
pub use state::AppState;

/// Every route of the API, with its state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(openapi::router())
        .merge(register::router())
        .merge(records::router())
        .merge(ledger::router())
        .merge(lots::router())
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
