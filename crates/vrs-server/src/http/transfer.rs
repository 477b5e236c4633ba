//! The transfer (転入) look-up over HTTP (`/api/transfer`): one number, or a CSV of
//! many; each municipality whose person is found logs the disclosure in its chain.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use vrs_domain::MyNumber;

use super::audit::{log_in, logged};
use super::error::ApiError;
use super::extract::{ApiJson, Caller, blocking};
use super::state::AppState;
use crate::principal::Principal;
use crate::store::TransferMatch;

/// `/api/transfer`.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/transfer/lookup", post(transfer_lookup))
        .route("/api/transfer/lookup-batch", post(transfer_lookup_batch))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The newcomer's マイナンバー. In the body, never in a URL.
    my_number: MyNumber,
}

impl std::fmt::Debug for TransferRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransferRequest(..)")
    }
}

/// The transfer look-up (転入): a newcomer's earlier doses held by other municipalities.
#[utoipa::path(post, path = "/api/transfer/lookup", request_body = TransferRequest,
    responses((status = 200, body = [TransferMatch]),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn transfer_lookup(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(req): ApiJson<TransferRequest>,
) -> Result<Json<Vec<TransferMatch>>, ApiError> {
    let store = state.store.clone();
    let by = actor.clone();
    let found = blocking(move || store.transfer_lookup(&by, &req.my_number)).await;
    let found = logged(
        &state,
        &actor,
        "transfer.lookup",
        |m: &Vec<TransferMatch>| format!("1 number: {} matches", m.len()),
        "1 number".into(),
        found,
    )
    .await?;
    disclosed(&state, &actor, &found).await?;
    Ok(Json(found))
}

/// Each municipality whose person a transfer look-up found logs it in its own chain.
async fn disclosed(
    state: &AppState,
    actor: &Principal,
    found: &[TransferMatch],
) -> Result<(), ApiError> {
    for m in found {
        log_in(
            state,
            i64::from(m.municipality.get()),
            actor,
            "transfer.disclosed",
            format!("{} doses", m.doses.len()),
            "ok".into(),
        )
        .await?;
    }
    Ok(())
}

/// One line of a batch transfer look-up.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransferBatchResult {
    line: u64,
    /// The caller's own 個別宛名番号 from the line, to match results to people.
    person_id: String,
    /// Set when the line could not be read; then `matches` is empty.
    error: Option<String>,
    matches: Vec<TransferMatch>,
}

/// The transfer look-up for many newcomers at once: a CSV of
/// `個別宛名番号,マイナンバー` lines (header optional).
#[utoipa::path(post, path = "/api/transfer/lookup-batch",
    request_body(content = String, content_type = "text/csv",
        description = "個別宛名番号,マイナンバー per line, UTF-8 or CP932"),
    responses((status = 200, body = [TransferBatchResult]),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 413, body = ApiError)),
    security(("bearer" = [])))]
pub async fn transfer_lookup_batch(
    State(state): State<AppState>,
    Caller(actor): Caller,
    body: Bytes,
) -> Result<Json<Vec<TransferBatchResult>>, ApiError> {
    actor.staff_of().map_err(ApiError::from)?;
    let store = state.store.clone();
    let by = actor.clone();
    let actor_for_batch = actor.clone();
    let out = blocking(move || {
        let actor = actor_for_batch;
        let text = decode(&body);
        let mut results = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i as u64 + 1;
            let mut fields = line.split(',').map(|f| f.trim().trim_matches('"'));
            let (pid, num) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            if line.trim().is_empty() || (line_no == 1 && !pid.chars().any(|c| c.is_ascii_digit()))
            {
                continue; // blank line, or a header
            }
            let result = match num.parse::<MyNumber>() {
                Ok(n) => TransferBatchResult {
                    line: line_no,
                    person_id: vrs_domain::csv::mask_if_my_number(pid),
                    error: None,
                    matches: store.transfer_lookup(&actor, &n)?,
                },
                Err(e) => TransferBatchResult {
                    line: line_no,
                    person_id: vrs_domain::csv::mask_if_my_number(pid),
                    error: Some(format!("マイナンバー: {}", e.detail())),
                    matches: Vec::new(),
                },
            };
            results.push(result);
        }
        Ok(results)
    })
    .await;
    let out = logged(
        &state,
        &by,
        "transfer.lookup_batch",
        |r: &Vec<TransferBatchResult>| {
            format!(
                "{} numbers: {} with matches",
                r.len(),
                r.iter().filter(|x| !x.matches.is_empty()).count()
            )
        },
        String::new(),
        out,
    )
    .await?;
    for line in &out {
        disclosed(&state, &by, &line.matches).await?;
    }
    Ok(Json(out))
}

/// UTF-8 (with or without BOM), else CP932.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::SHIFT_JIS.decode(bytes).0.into_owned(),
    }
}
