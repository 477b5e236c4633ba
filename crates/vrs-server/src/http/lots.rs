//! The lot master over HTTP (`/api/lots`): anyone signed in reads it, the operator
//! (a token from `vrs admin token --operator`) adds lots or uploads a lot file.
//! Tablets read it with a signed request at `/api/tablet/lots` (in [`super::tablet`]).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use vrs_domain::wire::LotEntry;

use super::audit::logged;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, Caller, blocking};
use super::register::UploadParams;
use super::state::AppState;
use crate::store::ImportReport;
use crate::store::lots::may_change;

/// `/api/lots`.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/lots", get(list).post(add)).route(
        "/api/lots/import",
        post(import).layer(DefaultBodyLimit::disable()),
    )
}

/// The lot master: vaccine, lot, expiry and GTIN of every lot.
#[utoipa::path(get, path = "/api/lots",
    responses((status = 200, body = [LotEntry]), (status = 401, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<Vec<LotEntry>>, ApiError> {
    Ok(Json(read(&state, actor).await?))
}

/// The master for any caller, logged.
pub(super) async fn read(
    state: &AppState,
    actor: crate::principal::Principal,
) -> Result<Vec<LotEntry>, ApiError> {
    let store = state.store.clone();
    let by = actor.clone();
    let r = blocking(move || store.lots(&by)).await;
    logged(
        state,
        &actor,
        "lots.list",
        |l: &Vec<LotEntry>| format!("{} lots", l.len()),
        String::new(),
        r,
    )
    .await
}

/// Add a lot to the master, or change its expiry or GTIN (the operator only).
#[utoipa::path(post, path = "/api/lots", request_body = LotEntry,
    responses((status = 204, description = "Stored"),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(lot): ApiJson<LotEntry>,
) -> Result<axum::http::StatusCode, ApiError> {
    let object = format!("{} {} {}", lot.vaccine.code(), lot.lot, lot.expiry);
    if let Err(e) = lot.vaccine.check_lot(&lot.lot) {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("ロット番号 (lot): {} → {}", e.detail(), e.fix()),
        ));
    }
    let store = state.store.clone();
    let by = actor.clone();
    let r = blocking(move || store.add_lot(&by, &lot)).await;
    logged(
        &state,
        &actor,
        "lots.add",
        |_| object.clone(),
        object.clone(),
        r,
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Upload a lot file (the operator only): vaccine, lot, expiry, GTIN; header
/// optional; UTF-8 or CP932; a per-line report.
#[utoipa::path(post, path = "/api/lots/import", params(UploadParams),
    request_body(content = String, content_type = "text/csv",
        description = "ワクチンメーカー,ロット番号,有効期限[,GTIN]"),
    responses(
        (status = 200, description = "The file was read: see `outcome`", body = ImportReport),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(params): ApiQuery<UploadParams>,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    may_change(&actor).map_err(ApiError::from)?;
    super::register::upload(
        state,
        actor,
        params,
        body,
        "lots.import",
        |store, actor, input, opts| store.import_lots(actor, input, opts),
    )
    .await
}
