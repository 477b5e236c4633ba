//! The municipality's users (`/api/users`, 様式1) and contacts (`/api/contacts`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::audit::staff_op;
use super::error::ApiError;
use super::extract::{ApiJson, Caller};
use super::state::AppState;
use crate::rules::access::{Contact, User};

/// `/api/users`, `/api/contacts`.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users", get(users).post(put_user))
        .route("/api/users/remove", post(remove_user))
        .route("/api/contacts", get(contacts).post(put_contact))
}

/// The municipality's users (様式1).
#[utoipa::path(get, path = "/api/users",
    responses((status = 200, body = [User]), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn users(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    let describe = |l: &Vec<User>| format!("{} users", l.len());
    staff_op(
        &state,
        &actor,
        "user.list",
        String::new(),
        describe,
        |s, a, m| s.users(a, m),
    )
    .await
    .map(Json)
}

/// Add or change a user: lg.jp only, at most ten, exactly one transfer contact
/// (marking a new one moves the mark).
#[utoipa::path(post, path = "/api/users", request_body = User,
    responses((status = 200, body = [User]), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn put_user(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(user): ApiJson<User>,
) -> Result<Json<Vec<User>>, ApiError> {
    let object = format!("user {}", user.email.trim().to_lowercase());
    let o = object.clone();
    staff_op(
        &state,
        &actor,
        "user.put",
        object,
        move |_| o,
        move |s, a, m| s.put_user(a, m, &user),
    )
    .await
    .map(Json)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveUser {
    email: String,
}

/// Remove a user; their sessions end.
#[utoipa::path(post, path = "/api/users/remove", request_body = RemoveUser,
    responses((status = 200, body = [User]), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn remove_user(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(req): ApiJson<RemoveUser>,
) -> Result<Json<Vec<User>>, ApiError> {
    let object = format!("user {}", req.email.trim().to_lowercase());
    let o = object.clone();
    staff_op(
        &state,
        &actor,
        "user.remove",
        object,
        move |_| o,
        move |s, a, m| s.remove_user(a, m, &req.email),
    )
    .await
    .map(Json)
}

/// The municipality's contacts (様式2).
#[utoipa::path(get, path = "/api/contacts",
    responses((status = 200, body = [Contact]), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn contacts(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<Vec<Contact>>, ApiError> {
    staff_op(
        &state,
        &actor,
        "contact.list",
        String::new(),
        |_| String::new(),
        |s, a, m| s.contacts(a, m),
    )
    .await
    .map(Json)
}

/// Set the system or the vaccination contact.
#[utoipa::path(post, path = "/api/contacts", request_body = Contact,
    responses((status = 204, description = "Saved"), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn put_contact(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(c): ApiJson<Contact>,
) -> Result<StatusCode, ApiError> {
    let object = format!("contact {}", c.kind.as_str());
    let o = object.clone();
    staff_op(
        &state,
        &actor,
        "contact.put",
        object,
        move |_| o,
        move |s, a, m| s.put_contact(a, m, &c),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
