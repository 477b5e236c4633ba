//! Dose records over HTTP, for staff: the paper upload (`/api/paper/import`) and the
//! review of held records (`/api/records`).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use vrs_domain::ClientRecordId;
use vrs_domain::wire::Outcome;

use super::audit::logged;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, Caller, blocking};
use super::register::UploadParams;
use super::state::AppState;
use crate::store::{Amendment, HeldRecord, ImportReport, today_jst};

/// `/api/paper`, `/api/records`.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/paper/import",
            post(import_paper).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/records/held", get(held))
        .route("/api/records/{id}/void", post(void))
        .route("/api/records/{id}/amend", post(amend))
        .route("/api/records/{id}/release", post(release))
}

/// Upload paper dose records (the ledger CSV layout).
#[utoipa::path(post, path = "/api/paper/import", params(UploadParams),
    request_body(content = String, content_type = "text/csv",
        description = "登録日時,接種日,券番号,接種会場市町村コード,接種会場名,医師名,ワクチンメーカー,ロット番号[,接種回数]"),
    responses(
        (status = 200, description = "The file was read: see `outcome`", body = ImportReport),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn import_paper(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(params): ApiQuery<UploadParams>,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    super::register::upload(
        state,
        actor,
        params,
        body,
        "paper.import",
        move |store, actor, input, opts| store.import_paper(actor, m, input, opts),
    )
    .await
}

/// Records held for the municipality's review.
#[utoipa::path(get, path = "/api/records/held",
    responses((status = 200, body = [HeldRecord]),
        (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn held(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<Vec<HeldRecord>>, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let store = state.store.clone();
    let by = actor.clone();
    let list = blocking(move || store.held(&by, m)).await;
    let list = logged(
        &state,
        &actor,
        "records.held",
        |l: &Vec<HeldRecord>| format!("{} held records", l.len()),
        String::new(),
        list,
    )
    .await?;
    Ok(Json(list))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// Why: kept with the record's history.
    reason: String,
}

/// Void a record: it stays, with its history, but leaves the ledger.
#[utoipa::path(post, path = "/api/records/{id}/void", request_body = VoidRequest,
    params(("id" = String, Path, description = "The record's client record id")),
    responses((status = 204, description = "Voided"),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn void(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<VoidRequest>,
) -> Result<StatusCode, ApiError> {
    review(state, actor, &id, "record.void", move |store, by, m, id| {
        store.void(by, m, id, &req.reason)
    })
    .await
}

/// A review step on one of the caller's municipality's records, logged.
async fn review(
    state: AppState,
    actor: crate::principal::Principal,
    id: &str,
    action: &str,
    step: impl FnOnce(
        &dyn crate::store::Store,
        &crate::principal::Principal,
        vrs_domain::MunicipalityCode,
        ClientRecordId,
    ) -> Result<(), crate::error::StoreError>
    + Send
    + 'static,
) -> Result<StatusCode, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let id = record_id(id)?;
    let store = state.store.clone();
    let by = actor.clone();
    let r = blocking(move || step(store.as_ref(), &by, m, id)).await;
    let object = format!("record {}", id.0);
    logged(
        &state,
        &actor,
        action,
        |_| object.clone(),
        object.clone(),
        r,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn record_id(s: &str) -> Result<ClientRecordId, ApiError> {
    s.parse()
        .map(ClientRecordId)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such record"))
}

/// Release a held record: the clerk checked it and accepts it as it is.
#[utoipa::path(post, path = "/api/records/{id}/release", request_body = VoidRequest,
    params(("id" = String, Path, description = "The record's client record id")),
    responses((status = 204, description = "Accepted into the ledger"),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn release(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<VoidRequest>,
) -> Result<StatusCode, ApiError> {
    review(
        state,
        actor,
        &id,
        "record.release",
        move |store, by, m, id| store.release(by, m, id, &req.reason),
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    /// The 券番号 (10 digits), when it was misread or mistyped.
    #[schema(value_type = Option<String>)]
    voucher: Option<vrs_domain::VoucherNumber>,
    #[schema(value_type = Option<String>, format = Date)]
    vaccinated_on: Option<NaiveDate>,
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 9)]
    dose_number: Option<vrs_domain::DoseNumber>,
    vaccine: Option<vrs_domain::Vaccine>,
    #[schema(value_type = Option<String>)]
    lot: Option<vrs_domain::Lot>,
    /// Why: kept with the record's history.
    reason: String,
}

/// Amend a record; it is checked again and may be accepted or held.
#[utoipa::path(post, path = "/api/records/{id}/amend", request_body = AmendRequest,
    params(("id" = String, Path, description = "The record's client record id")),
    responses((status = 200, body = vrs_domain::wire::Outcome),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn amend(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AmendRequest>,
) -> Result<Json<Outcome>, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let id = record_id(&id)?;
    let change = Amendment {
        voucher: req.voucher,
        vaccinated_on: req.vaccinated_on,
        dose_number: req.dose_number,
        vaccine: req.vaccine,
        lot: req.lot,
    };
    let store = state.store.clone();
    let by = actor.clone();
    let out = blocking(move || store.amend(&by, m, id, &change, &req.reason, today_jst())).await;
    let object = format!("record {}", id.0);
    let out = logged(
        &state,
        &actor,
        "record.amend",
        |_| object.clone(),
        object.clone(),
        out,
    )
    .await?;
    Ok(Json(out))
}
