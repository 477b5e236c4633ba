//! Staff sign-in by a one-time passcode sent by e-mail, and the session cookie it
//! leads to (`/api/signin`, `/api/signout`, `/api/me`).
//!
//! The start of a sign-in answers the same whether or not the address is a user's
//! (nobody learns who the users are); a passcode is six digits, good for ten minutes
//! and once; five wrong ones lock the account for fifteen minutes. A session is a
//! random token in an HttpOnly, SameSite=Strict cookie (Secure under TLS); a
//! request that changes anything with it must also carry the session's CSRF token in
//! `x-csrf-token`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::audit::log_in;
use super::error::ApiError;
use super::extract::{ApiJson, Caller, SESSION_COOKIE, blocking, session_token};
use super::state::AppState;
use crate::principal::Principal;
use crate::rules::access::{self, Session, Start, Verify};
use crate::store::jst_now;

/// `/api/signin`, `/api/signout`, `/api/me`.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/signin/start", post(start))
        .route("/api/signin/verify", post(verify))
        .route("/api/signout", post(signout))
        .route("/api/me", get(me))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The user's lg.jp address.
    email: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StartResponse {
    message: String,
}

/// Ask for a passcode by e-mail. The answer is the same whether or not the address
/// belongs to a user.
#[utoipa::path(post, path = "/api/signin/start", request_body = StartRequest,
    responses((status = 202, body = StartResponse),
        (status = 400, body = ApiError), (status = 422, body = ApiError)))]
pub async fn start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<(StatusCode, Json<StartResponse>), ApiError> {
    let email = access::lg_jp_email(&req.email)?;
    let store = state.store.clone();
    let who = email.clone();
    let found = blocking(move || store.signin_state(&who)).await?;
    let answer = StartResponse {
        message:
            "if this address belongs to a user, a passcode is on its way: it is good for 10 minutes"
                .into(),
    };
    let Some((m, _)) = found else {
        tracing::info!("passcode asked for an address that is no user's");
        return Ok((StatusCode::ACCEPTED, Json(answer)));
    };
    let actor = Principal::Staff {
        municipality: m,
        user: email.clone(),
    };
    let (store, who) = (state.store.clone(), email.clone());
    let load = move || Ok(store.signin_state(&who)?.map(|(_, s)| s));
    let (store, who) = (state.store.clone(), email.clone());
    let save = move |old: &access::SignIn, new: &access::SignIn| store.save_signin(&who, old, new);
    send_passcode(&state, &actor, m, &email, load, save).await?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

fn wrong_passcode() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "wrong or expired passcode: check the latest mail, or ask for a new passcode",
    )
}

/// Sends a new passcode to `email` unless the sign-in state says to keep quiet
/// (locked, or one just sent). The state is read with `load` and replaced with
/// `save` only if it is unchanged meanwhile (compare and set; a race is retried).
/// The mail goes out in the background: the answer neither waits for the SMTP
/// server nor tells, by the time it takes, that the address is a user's. Logged as
/// `signin.start` in the municipality's chain.
pub(super) async fn send_passcode(
    state: &AppState,
    actor: &Principal,
    m: vrs_domain::MunicipalityCode,
    email: &str,
    load: impl Fn() -> Result<Option<access::SignIn>, crate::StoreError> + Send + Clone + 'static,
    save: impl Fn(&access::SignIn, &access::SignIn) -> Result<bool, crate::StoreError>
    + Send
    + Clone
    + 'static,
) -> Result<(), ApiError> {
    let chain = i64::from(m.get());
    for _ in 0..5 {
        let l = load.clone();
        let Some(old) = blocking(l).await? else {
            return Ok(());
        };
        let now = jst_now();
        if access::start(&old, now) == Start::Quiet {
            log_in(
                state,
                chain,
                actor,
                "signin.start",
                String::new(),
                "limited".into(),
            )
            .await?;
            return Ok(());
        }
        let passcode = access::new_passcode()?;
        let mut new = old.clone();
        new.passcode_hash = Some(access::passcode_hash(email, &passcode));
        new.passcode_expires = Some(now + access::PASSCODE_VALID);
        new.passcode_sent = Some(now);
        let sv = save.clone();
        if !blocking(move || sv(&old, &new)).await? {
            continue;
        }
        let (state, actor, to) = (state.clone(), actor.clone(), email.to_owned());
        tokio::spawn(async move {
            let mailer = state.mailer.clone();
            let sent = tokio::task::spawn_blocking(move || {
                mailer.send_passcode(&to, &passcode, access::PASSCODE_VALID.num_minutes())
            })
            .await;
            let outcome = match sent {
                Ok(Ok(())) => "ok".to_owned(),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "passcode mail not sent");
                    "failed: mail not sent".to_owned()
                }
                Err(_) => "failed: mail not sent".to_owned(),
            };
            if log_in(
                &state,
                chain,
                &actor,
                "signin.start",
                String::new(),
                outcome,
            )
            .await
            .is_err()
            {
                tracing::error!("the access log refused a signin.start entry");
            }
        });
        return Ok(());
    }
    Ok(())
}

/// Checks an entered passcode against the sign-in state (`load`) and stores what
/// follows with `save`, compare and set: two requests racing cannot both use one
/// passcode, nor lose a miss. On success a new session for `email` in `m` (a
/// tablet user's when `device` is given): its token and CSRF token. Logged as
/// `signin.verify`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn take_passcode(
    state: &AppState,
    actor: &Principal,
    m: vrs_domain::MunicipalityCode,
    email: &str,
    entered: &str,
    device: Option<vrs_domain::DeviceId>,
    load: impl Fn() -> Result<Option<access::SignIn>, crate::StoreError> + Send + Clone + 'static,
    save: impl Fn(&access::SignIn, &access::SignIn) -> Result<bool, crate::StoreError>
    + Send
    + Clone
    + 'static,
) -> Result<(String, String), ApiError> {
    let chain = i64::from(m.get());
    let entered = access::passcode_hash(email, entered);
    for _ in 0..5 {
        let l = load.clone();
        let Some(old) = blocking(l).await? else {
            return Err(wrong_passcode());
        };
        let now = jst_now();
        let mut new = old.clone();
        match access::verify(&old, &entered, now) {
            Verify::Locked(until) => {
                log_in(
                    state,
                    chain,
                    actor,
                    "signin.verify",
                    String::new(),
                    "locked".into(),
                )
                .await?;
                let wait = (until - now).num_seconds().max(1) as u64;
                return Err(ApiError::too_many(
                    "wrong passcodes",
                    std::time::Duration::from_secs(wait),
                ));
            }
            Verify::Wrong {
                failures,
                locked_until,
            } => {
                new.failures = failures;
                if locked_until.is_some() {
                    new.locked_until = locked_until;
                    new.passcode_hash = None;
                    new.passcode_expires = None;
                }
                let sv = save.clone();
                if !blocking(move || sv(&old, &new)).await? {
                    continue;
                }
                let outcome = if locked_until.is_some() {
                    "locked"
                } else {
                    "denied"
                };
                log_in(
                    state,
                    chain,
                    actor,
                    "signin.verify",
                    String::new(),
                    outcome.into(),
                )
                .await?;
                if locked_until.is_some() {
                    return Err(ApiError::too_many(
                        "wrong passcodes",
                        std::time::Duration::from_secs(access::LOCKOUT.num_seconds() as u64),
                    ));
                }
                return Err(wrong_passcode());
            }
            Verify::Ok => {
                new.failures = 0;
                new.passcode_hash = None;
                new.passcode_expires = None;
                new.locked_until = None;
                let sv = save.clone();
                if !blocking(move || sv(&old, &new)).await? {
                    continue;
                }
                let (token, hash, csrf) = access::new_session()?;
                let store = state.store.clone();
                let now = jst_now();
                let session = Session {
                    municipality: m,
                    email: email.to_owned(),
                    csrf: csrf.clone(),
                    started: now,
                    last_seen: now,
                    device,
                };
                blocking(move || store.create_session(&hash, &session)).await?;
                log_in(
                    state,
                    chain,
                    actor,
                    "signin.verify",
                    String::new(),
                    "ok".into(),
                )
                .await?;
                return Ok((token, csrf));
            }
        }
    }
    Err(wrong_passcode())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    email: String,
    /// The six digits from the mail.
    passcode: String,
}

impl std::fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("email", &self.email)
            .field("passcode", &"<redacted>")
            .finish()
    }
}

/// Who is signed in, and the token to send in `x-csrf-token` with changes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    municipality: vrs_domain::MunicipalityCode,
    email: String,
    csrf: String,
}

fn cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("vrs_session=; Path=/; Max-Age=0"))
}

/// Sign in with the passcode: a session cookie.
#[utoipa::path(post, path = "/api/signin/verify", request_body = VerifyRequest,
    responses((status = 200, body = Me),
        (status = 400, body = ApiError),
        (status = 401, description = "Wrong or expired passcode", body = ApiError),
        (status = 422, body = ApiError),
        (status = 429, description = "Locked after too many wrong passcodes: see Retry-After", body = ApiError)))]
pub async fn verify(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    let email = access::lg_jp_email(&req.email)?;
    let store = state.store.clone();
    let who = email.clone();
    let found = blocking(move || store.signin_state(&who)).await?;
    let Some((m, _)) = found else {
        return Err(wrong_passcode());
    };
    let actor = Principal::Staff {
        municipality: m,
        user: email.clone(),
    };
    let (store, who) = (state.store.clone(), email.clone());
    let load = move || Ok(store.signin_state(&who)?.map(|(_, s)| s));
    let (store, who) = (state.store.clone(), email.clone());
    let save = move |old: &access::SignIn, new: &access::SignIn| store.save_signin(&who, old, new);
    let (token, csrf) =
        take_passcode(&state, &actor, m, &email, &req.passcode, None, load, save).await?;
    let mut r = Json(Me {
        municipality: m,
        email,
        csrf,
    })
    .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&state, &token, access::SESSION_MAX.num_seconds()),
    );
    Ok(r)
}

/// Sign out: the session ends.
#[utoipa::path(post, path = "/api/signout",
    responses((status = 204, description = "Signed out")))]
pub async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_token(&headers) {
        let store = state.store.clone();
        blocking(move || store.end_session(&access::session_hash(&token))).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0));
    Ok(r)
}

/// Who is signed in (and the CSRF token the pages send with changes).
#[utoipa::path(get, path = "/api/me",
    responses((status = 200, body = Me), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn me(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let Principal::Staff { user, .. } = &actor else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "staff only"));
    };
    let csrf = match session_token(&headers) {
        Some(t) => {
            let store = state.store.clone();
            blocking(move || store.session(&access::session_hash(&t)))
                .await?
                .map(|s| s.csrf)
                .unwrap_or_default()
        }
        None => String::new(),
    };
    Ok(Json(Me {
        municipality: m,
        email: user.clone(),
        csrf,
    }))
}
