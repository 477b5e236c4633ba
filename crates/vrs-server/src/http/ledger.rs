//! The ledger export over HTTP (`/api/ledger.csv`), streamed.

use std::io::{self, Write};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use chrono::NaiveDate;
use serde::Deserialize;
use vrs_domain::csv::OutputEncoding;

use super::audit::{chain_of, log_in};
use super::error::ApiError;
use super::extract::{ApiQuery, Caller};
use super::register::csv_response;
use super::state::AppState;
use crate::error::StoreError;

/// `/api/ledger.csv`.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/ledger.csv", get(ledger))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LedgerParams {
    /// First day of vaccination, YYYY-MM-DD.
    from: NaiveDate,
    /// Last day of vaccination, YYYY-MM-DD.
    to: NaiveDate,
    /// `utf-8-bom` (default, for Excel), `utf-8` or `cp932`.
    encoding: Option<String>,
}

/// The ledger export (予防接種台帳) for a date range, as CSV, streamed.
#[utoipa::path(get, path = "/api/ledger.csv", params(LedgerParams),
    responses((status = 200, body = String, content_type = "text/csv"),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn ledger(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(params): ApiQuery<LedgerParams>,
) -> Result<Response, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let encoding = match &params.encoding {
        Some(e) => e
            .parse::<OutputEncoding>()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?,
        None => OutputEncoding::Utf8Bom,
    };
    if params.to < params.from {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`to` is before `from`: give the first day, then the last",
        ));
    }
    // Logged as it starts: the rows go out while the export runs.
    log_in(
        &state,
        chain_of(&actor),
        &actor,
        "ledger.export",
        format!("{} to {}", params.from, params.to),
        "started".into(),
    )
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(8);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter::new(tx.clone());
        let r = store
            .export_ledger(&actor, m, params.from, params.to, encoding, &mut out)
            .and_then(|_| out.flush().map_err(StoreError::Io));
        if let Err(e) = r {
            tracing::error!(error = %e, "ledger export stopped");
            // The status is sent already: cut the body so the client sees a failure.
            let _ = tx.blocking_send(Err(io::Error::other("export failed")));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let charset = if encoding == OutputEncoding::Cp932 {
        "text/csv; charset=shift_jis"
    } else {
        "text/csv; charset=utf-8"
    };
    let mut r = csv_response(Body::from_stream(stream), "ledger.csv");
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(charset));
    Ok(r)
}

/// A `Write` that sends 64 KiB chunks down a channel to a streaming response.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn new(tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(64 * 1024),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}
