//! Extractors: JSON bodies and queries whose rejections speak the API's error, the
//! caller (a bearer token, or a staff session with its CSRF token), and the
//! blocking thread store work runs on.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};

use super::error::ApiError;
use super::state::AppState;
use crate::error::Result;
use crate::principal::Principal;

pub const SESSION_COOKIE: &str = "vrs_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session token from the request's cookie, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// JSON bodies whose rejections are 4xx with our error body. serde's message can
/// quote the input back, so the body is not repeated: only where it broke.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
{
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => {
                let status = r.status();
                let msg = match &r {
                    JsonRejection::JsonDataError(e) => {
                        // "… at line L column C": keep the position, drop the value.
                        let text = e.body_text();
                        let at = text
                            .rfind(" at line ")
                            .map(|i| &text[i + 1..])
                            .unwrap_or("");
                        format!(
                            "the JSON does not match the expected shape {at}; see /api/openapi.json"
                        )
                    }
                    JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".into(),
                    JsonRejection::MissingJsonContentType(_) => {
                        "send the body with Content-Type: application/json".into()
                    }
                    _ => "the body could not be read".into(),
                };
                Err(ApiError::new(status, msg))
            }
        }
    }
}

/// Query strings, with 400 and our error body on a bad one.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T> FromRequestParts<S> for ApiQuery<T>
where
    axum::extract::Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, r.body_text()))
    }
}

/// The caller: the tablet whose signature [`devices::signed_tablet`] checked, or
/// else whoever `Authorization: Bearer` names. It is extracted before anything else
/// in the request, so a request without valid credentials gets 401 whatever else is
/// wrong with it.
#[derive(Debug)]
pub struct Caller(pub Principal);

impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        if let Some(device) = parts.extensions.get::<Principal>() {
            return Ok(Caller(device.clone()));
        }
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return principal(state, &parts.headers).await.map(Caller);
        }
        if let Some(token) = session_token(&parts.headers) {
            let store = state.store.clone();
            let hash = crate::rules::access::session_hash(&token);
            let session = blocking(move || store.session(&hash))
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "the session has ended: sign in again",
                    )
                })?;
            // A tablet user's session serves that tablet's name look-up, nothing here.
            if session.device.is_some() {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "a tablet's session does not sign in to the staff pages: sign in with your lg.jp address",
                ));
            }
            // A change made with the cookie must also carry the page's token: another
            // site can make the browser send the cookie, not the token.
            let safe = matches!(
                parts.method,
                axum::http::Method::GET | axum::http::Method::HEAD
            );
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // Compared as digests, so the time taken says nothing of the token.
            let same = crate::rules::access::session_hash(sent)
                == crate::rules::access::session_hash(&session.csrf);
            if !safe && !same {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "the request lacks this session's x-csrf-token: reload the page and try again",
                ));
            }
            return Ok(Caller(Principal::Staff {
                municipality: session.municipality,
                user: session.email,
            }));
        }
        principal(state, &parts.headers).await.map(Caller)
    }
}

pub(crate) async fn principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "sign in first: send Authorization: Bearer <token>",
            )
        })?
        .to_owned();
    let store = state.store.clone();
    let found = blocking(move || store.principal_for_token(&token)).await?;
    found.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked token"))
}

/// Runs store work on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the service failed"))?
        .map_err(ApiError::from)
}
