//! Tablets as the municipality manages them (`/api/devices`): registered, listed,
//! revoked, or given a new enrolment code.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use vrs_domain::DeviceId;

use super::audit::staff_op;
use super::error::ApiError;
use super::extract::{ApiJson, Caller};
use super::state::AppState;
use crate::rules::devices::{DeviceInfo, DeviceRegistration, Enrolment};

/// `/api/devices`.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/devices", get(list).post(register))
        .route("/api/devices/{id}/revoke", post(revoke))
        .route("/api/devices/{id}/enrolment", post(reissue))
}

/// Register a tablet of the staff member's municipality; the answer carries its
/// one-time enrolment code, shown only this once.
#[utoipa::path(post, path = "/api/devices", request_body = DeviceRegistration,
    responses((status = 201, body = Enrolment),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(reg): ApiJson<DeviceRegistration>,
) -> Result<(StatusCode, Json<Enrolment>), ApiError> {
    let describe = |e: &Enrolment| format!("device {}", e.device_id);
    let e = staff_op(
        &state,
        &actor,
        "device.register",
        String::new(),
        describe,
        move |s, a, m| s.register_device(a, m, &reg),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// The municipality's tablets, newest first.
#[utoipa::path(get, path = "/api/devices",
    responses((status = 200, body = [DeviceInfo]),
        (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<Vec<DeviceInfo>>, ApiError> {
    let describe = |l: &Vec<DeviceInfo>| format!("{} tablets", l.len());
    let l = staff_op(
        &state,
        &actor,
        "device.list",
        String::new(),
        describe,
        |s, a, m| s.devices(a, m),
    )
    .await?;
    Ok(Json(l))
}

fn device_id(s: &str) -> Result<DeviceId, ApiError> {
    s.parse()
        .map(DeviceId)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such tablet"))
}

/// Revoke a tablet: every request it makes from now on is refused.
#[utoipa::path(post, path = "/api/devices/{id}/revoke",
    params(("id" = String, Path, description = "The tablet's device id")),
    responses((status = 204, description = "Revoked"),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    actor.staff_of().map_err(ApiError::from)?;
    let id = device_id(&id)?;
    let object = format!("device {id}");
    let o = object.clone();
    staff_op(
        &state,
        &actor,
        "device.revoke",
        object,
        move |_| o,
        move |s, a, m| s.revoke_device(a, m, id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new enrolment code for a tablet (a lost slip, a reset tablet); the tablet that
/// enrols with it replaces the key registered before.
#[utoipa::path(post, path = "/api/devices/{id}/enrolment",
    params(("id" = String, Path, description = "The tablet's device id")),
    responses((status = 201, body = Enrolment),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn reissue(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Enrolment>), ApiError> {
    actor.staff_of().map_err(ApiError::from)?;
    let id = device_id(&id)?;
    let object = format!("device {id}");
    let o = object.clone();
    let e = staff_op(
        &state,
        &actor,
        "device.reissue",
        object,
        move |_| o,
        move |s, a, m| s.reissue_enrolment(a, m, id),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(e)))
}
