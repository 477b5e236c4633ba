//! Tablets over HTTP (`/api/tablet`): a tablet enrols with its one-time code; every
//! other tablet request passes [`signed_tablet`], which turns a valid signature into
//! `Principal::Device`; a signed-in tablet user looks up a name and uploads records.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use vrs_domain::DeviceId;
use vrs_domain::wire::{
    EnrolRequest, EnrolResponse, NameLookupRequest, NameLookupResponse, Outcome, TabletSession,
    TabletSignIn, UploadBatch, UploadResponse, signing,
};

use super::audit::{log_in, logged};
use super::error::ApiError;
use super::extract::{ApiJson, Caller, blocking};
use super::state::AppState;
use crate::principal::Principal;
use crate::rules::devices::{self, SignatureError, Signed};
use crate::store::today_jst;

/// `/api/tablet`: the enrolment, and the signed requests.
pub(super) fn router(state: AppState) -> Router<AppState> {
    let signed = Router::new()
        .route("/api/tablet/name", post(tablet_name))
        .route("/api/tablet/records", post(tablet_records))
        .route("/api/tablet/lots", get(tablet_lots))
        .route("/api/tablet/signin/start", post(tablet_signin_start))
        .route("/api/tablet/signin/verify", post(tablet_signin_verify))
        .route_layer(axum::middleware::from_fn_with_state(state, signed_tablet));
    Router::new()
        .route("/api/tablet/enrol", post(enrol))
        .merge(signed)
}

/// The largest body a tablet sends: a full batch of records is about 350 KB.
const TABLET_BODY_LIMIT: usize = 2 << 20;

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn refused(e: &SignatureError) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, e.to_string())
}

/// Checks a tablet request's signature, clock and nonce, and hands it on as the
/// device. Refusals of a known device go to its municipality's access log (and the
/// service log, for intrusion alerts).
pub async fn signed_tablet(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let signed = Signed::parse(
        header(signing::DEVICE),
        header(signing::TIME),
        header(signing::NONCE),
        header(signing::SIGNATURE),
    )
    .map_err(|e| refused(&e))?;
    let bytes = axum::body::to_bytes(body, TABLET_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is over 2 MiB: send fewer records per batch",
            )
        })?;
    let store = state.store.clone();
    let device = signed.device;
    let Some(key) = blocking(move || store.device_key(device)).await? else {
        tracing::warn!(%device, "signed request from an unknown device");
        return Err(refused(&SignatureError::UnknownDevice));
    };
    let who = Principal::Device {
        municipality: key.municipality,
        device,
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str())
        .to_owned();
    let now = unix_now();
    let mut check = signed.verify(&key, parts.method.as_str(), &path, &bytes, now);
    if check.is_ok() {
        let store = state.store.clone();
        let nonce = signed.nonce.clone();
        if !blocking(move || store.use_nonce(device, &nonce, now)).await? {
            check = Err(SignatureError::Replayed);
        }
    }
    if let Err(e) = check {
        tracing::warn!(principal = %who, error = %e, "tablet request refused");
        log_in(
            &state,
            i64::from(key.municipality.get()),
            &who,
            "device.request",
            path,
            format!("refused 401: {e}"),
        )
        .await?;
        return Err(refused(&e));
    }
    parts.extensions.insert(who);
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

/// A tablet enrols: it sends the one-time code from its municipality and its new
/// public key, and learns its device id and site.
#[utoipa::path(post, path = "/api/tablet/enrol", request_body = EnrolRequest,
    responses((status = 200, body = EnrolResponse),
        (status = 400, body = ApiError),
        (status = 403, description = "Unknown, used or expired code", body = ApiError),
        (status = 422, body = ApiError)))]
pub async fn enrol(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> Result<Json<EnrolResponse>, ApiError> {
    let key = devices::parse_public_key(&req.public_key)?;
    let store = state.store.clone();
    let code = req.code;
    let r = blocking(move || store.enrol_device(&code, &key)).await;
    match &r {
        Ok(e) => {
            let who = Principal::Device {
                municipality: e.municipality,
                device: e.device_id,
            };
            log_in(
                &state,
                i64::from(e.municipality.get()),
                &who,
                "device.enrol",
                format!("device {}", e.device_id),
                "ok".into(),
            )
            .await?;
        }
        Err(e) => {
            tracing::warn!(error = %e.error, "enrolment refused");
            log_in(
                &state,
                0,
                &Principal::System,
                "device.enrol",
                "unknown code".into(),
                "denied".into(),
            )
            .await?;
        }
    }
    Ok(Json(r?))
}

/// The lot master, for a tablet's set-up: it offers these lots, takes their expiry,
/// and refuses an unknown or expired lot while offline. Nothing personal.
#[utoipa::path(get, path = "/api/tablet/lots",
    responses((status = 200, body = [vrs_domain::wire::LotEntry]), (status = 401, body = ApiError)),
    security(("tablet" = [])))]
pub async fn tablet_lots(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<Vec<vrs_domain::wire::LotEntry>>, ApiError> {
    Ok(Json(super::lots::read(&state, actor).await?))
}

/// A tablet asks for the name that belongs to a scanned voucher.
#[utoipa::path(post, path = "/api/tablet/name", request_body = NameLookupRequest,
    responses((status = 200, body = NameLookupResponse),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, description = "No one is registered with this voucher", body = ApiError),
        (status = 422, body = ApiError),
        (status = 429, description = "Too many look-ups (or misses) from this device: see Retry-After", body = ApiError)),
    security(("tablet" = [])))]
pub async fn tablet_name(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<NameLookupRequest>,
) -> Result<Json<NameLookupResponse>, ApiError> {
    tablet_user(&state, &headers, &actor).await?;
    let who = actor.to_string();
    if let Err(wait) = state.names.take(&who, std::time::Instant::now()) {
        tracing::warn!(principal = %who, "name look-ups refused: over the limit");
        let refused: Result<(), ApiError> = Err(ApiError::too_many("name look-ups", wait));
        let object = format!("{} {}", req.municipality, req.voucher);
        logged(
            &state,
            &actor,
            "name.lookup",
            |_| String::new(),
            object,
            refused,
        )
        .await?;
    }
    let store = state.store.clone();
    let object = format!("{} {}", req.municipality, req.voucher);
    let by = actor.clone();
    let found = blocking(move || store.lookup_name(&by, &req))
        .await
        .and_then(|found| {
            found.ok_or_else(|| {
                state.names.missed(&who);
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no one is registered with this voucher",
                )
            })
        });
    let name = logged(
        &state,
        &actor,
        "name.lookup",
        |_| object.clone(),
        object.clone(),
        found,
    )
    .await?;
    Ok(Json(name))
}

/// A tablet uploads a batch of dose records; one receipt per record, in order.
#[utoipa::path(post, path = "/api/tablet/records", request_body = UploadBatch,
    responses((status = 200, body = UploadResponse),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("tablet" = [])))]
pub async fn tablet_records(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(batch): ApiJson<UploadBatch>,
) -> Result<Json<UploadResponse>, ApiError> {
    let store = state.store.clone();
    let by = actor.clone();
    let n = batch.records.len();
    let receipts = blocking(move || store.ingest(&by, &batch, today_jst())).await;
    let receipts = logged(
        &state,
        &actor,
        "records.upload",
        |r: &Vec<vrs_domain::wire::Receipt>| {
            let count = |f: fn(&Outcome) -> bool| r.iter().filter(|x| f(&x.outcome)).count();
            format!(
                "{n} records: {} accepted, {} duplicate, {} held",
                count(|o| matches!(o, Outcome::Accepted)),
                count(|o| matches!(o, Outcome::Duplicate)),
                count(|o| matches!(o, Outcome::Held { .. })),
            )
        },
        format!("{n} records"),
        receipts,
    )
    .await?;
    Ok(Json(UploadResponse { receipts }))
}

fn not_signed_in(why: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, why.to_owned())
}

/// The tablet's user must be signed in (by a passcode to the tablet's e-mail) for
/// what shows personal data: the name look-up. A session of the tablet's e-mail,
/// sent in `x-vrs-session`.
pub(super) async fn tablet_user(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    actor: &Principal,
) -> Result<(), ApiError> {
    let (m, device) = actor.device().map_err(ApiError::from)?;
    let token = headers
        .get(signing::SESSION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or_else(|| {
            not_signed_in(
                "sign in on the tablet first: a passcode goes to the tablet's e-mail (vrs client signin)",
            )
        })?
        .to_owned();
    let store = state.store.clone();
    let (session, signin) = blocking(move || {
        Ok((
            store.session(&crate::rules::access::session_hash(&token))?,
            store.device_signin(device)?,
        ))
    })
    .await?;
    match (session, signin) {
        (Some(s), Some((email, _)))
            if s.device == Some(device) && s.email == email && s.municipality == m =>
        {
            Ok(())
        }
        _ => Err(not_signed_in(
            "the tablet's sign-in has ended: sign in again with a new passcode",
        )),
    }
}

/// How a tablet's sign-in state is read and (compare and set) written.
#[allow(clippy::type_complexity)]
fn device_signin_io(
    state: &AppState,
    device: DeviceId,
) -> (
    impl Fn() -> Result<Option<crate::rules::access::SignIn>, crate::StoreError>
    + Send
    + Clone
    + 'static,
    impl Fn(
        &crate::rules::access::SignIn,
        &crate::rules::access::SignIn,
    ) -> Result<bool, crate::StoreError>
    + Send
    + Clone
    + 'static,
) {
    let store = state.store.clone();
    let load = move || Ok(store.device_signin(device)?.map(|(_, s)| s));
    let store = state.store.clone();
    let save = move |old: &crate::rules::access::SignIn, new: &crate::rules::access::SignIn| {
        store.save_device_signin(device, old, new)
    };
    (load, save)
}

/// The tablet's user asks for a passcode, sent to the tablet's registered e-mail.
#[utoipa::path(post, path = "/api/tablet/signin/start",
    responses((status = 202, description = "A passcode is on its way (unless one was just sent, or the tablet is locked)"),
        (status = 401, body = ApiError), (status = 503, body = ApiError)),
    security(("tablet" = [])))]
pub async fn tablet_signin_start(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<StatusCode, ApiError> {
    let (m, device) = actor.device().map_err(ApiError::from)?;
    let store = state.store.clone();
    let (email, _) = blocking(move || store.device_signin(device))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown tablet"))?;
    let (load, save) = device_signin_io(&state, device);
    super::signin::send_passcode(&state, &actor, m, &email, load, save).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The tablet's user signs in with the passcode: a session for the name look-up.
#[utoipa::path(post, path = "/api/tablet/signin/verify", request_body = TabletSignIn,
    responses((status = 200, body = TabletSession),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 422, body = ApiError),
        (status = 429, description = "Locked after too many wrong passcodes: see Retry-After", body = ApiError)),
    security(("tablet" = [])))]
pub async fn tablet_signin_verify(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(req): ApiJson<TabletSignIn>,
) -> Result<Json<TabletSession>, ApiError> {
    let (m, device) = actor.device().map_err(ApiError::from)?;
    let store = state.store.clone();
    let (email, _) = blocking(move || store.device_signin(device))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown tablet"))?;
    let (load, save) = device_signin_io(&state, device);
    let (token, _csrf) = super::signin::take_passcode(
        &state,
        &actor,
        m,
        &email,
        &req.passcode,
        Some(device),
        load,
        save,
    )
    .await?;
    Ok(Json(TabletSession {
        session: token,
        expires_in: crate::rules::access::SESSION_MAX.num_seconds().max(0) as u64,
    }))
}
