//! The HTTP API (axum). Handlers are thin: they authenticate, parse, and call the
//! store on a blocking thread. Bad input gets a 4xx with a JSON `{"error": …}` body,
//! never a 5xx; uploads and the ledger export stream.

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::NaiveDate;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::OpenApi;
use vrs_domain::csv::{Encoding, OutputEncoding};
use vrs_domain::wire::{
    NameLookupRequest, NameLookupResponse, Outcome, UploadBatch, UploadResponse,
};
use vrs_domain::{ClientRecordId, MyNumber};

mod devices;
pub mod signin;

use crate::error::StoreError;
use crate::principal::Principal;
use crate::ratelimit::NameLimits;
use crate::spool::SpoolError;
use crate::store::Store;
use crate::store::audit::{AuditEntry, AuditEvent, AuditQuery};
use crate::store::{
    Amendment, HeldRecord, ImportMode, ImportOptions, ImportReport, TransferMatch, today_jst,
};

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Per-tablet limits on the name look-up.
    pub names: Arc<NameLimits>,
    /// Where sign-in passcodes are sent.
    pub mailer: Arc<crate::mail::Mailer>,
    /// Session cookies carry `Secure` (the service speaks TLS).
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, mailer: crate::mail::Mailer) -> Self {
        AppState {
            store,
            names: Arc::new(NameLimits::default()),
            mailer: Arc::new(mailer),
            secure_cookies: false,
        }
    }
}

/// An error response: a status and a message for a person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// What went wrong and what to do.
    error: String,
    /// Seconds to wait (a 429's Retry-After).
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            retry_after: None,
        }
    }

    fn too_many(what: &str, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: format!("too many {what} from this device: try again in {secs} s"),
            retry_after: Some(secs),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_after;
        let mut r = (self.status, Json(self)).into_response();
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Invalid(_) | StoreError::File(_) => StatusCode::UNPROCESSABLE_ENTITY,
            // A broken upload stream is the client's connection, not the service.
            StoreError::Io(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
            return ApiError::new(status, "the service failed; the operator has the details");
        }
        ApiError::new(status, e.to_string())
    }
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
        if let Some(token) = signin::session_token(&parts.headers) {
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
                .get(signin::CSRF_HEADER)
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

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
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
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the service failed"))?
        .map_err(ApiError::from)
}

/// The chain a principal's actions are logged in: its municipality's (0: the service).
fn chain_of(p: &Principal) -> i64 {
    match p {
        Principal::Staff { municipality, .. } | Principal::Device { municipality, .. } => {
            i64::from(municipality.get())
        }
        Principal::System => 0,
    }
}

/// How a request ended, in the access log's words.
fn outcome_of<T>(r: &Result<T, ApiError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => match e.status {
            StatusCode::FORBIDDEN => "denied".into(),
            StatusCode::NOT_FOUND => "not_found".into(),
            StatusCode::TOO_MANY_REQUESTS => "limited".into(),
            s if s.is_client_error() => format!("refused {}", s.as_u16()),
            s => format!("failed {}", s.as_u16()),
        },
    }
}

/// Writes an access-log entry in `chain`. A request whose entry cannot be written
/// fails: there is no unlogged access to personal data.
async fn log_in(
    state: &AppState,
    chain: i64,
    actor: &Principal,
    action: &str,
    object: String,
    outcome: String,
) -> Result<(), ApiError> {
    let event = AuditEvent {
        chain,
        at: crate::store::jst_now(),
        actor: actor.to_string(),
        action: action.to_owned(),
        object,
        outcome,
    };
    let store = state.store.clone();
    blocking(move || store.audit().append(&event).map(|_| ())).await
}

/// A staff operation on the caller's own municipality: run on a blocking thread and
/// logged, its object named from the result (`describe`) or as attempted.
async fn staff_op<T: Send + 'static>(
    state: &AppState,
    actor: &Principal,
    action: &str,
    attempt: String,
    describe: impl FnOnce(&T) -> String,
    op: impl FnOnce(&dyn Store, &Principal, vrs_domain::MunicipalityCode) -> Result<T, StoreError>
    + Send
    + 'static,
) -> Result<T, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let store = state.store.clone();
    let by = actor.clone();
    let r = blocking(move || op(store.as_ref(), &by, m)).await;
    logged(state, actor, action, describe, attempt, r).await
}

/// Logs a request in its actor's chain, then hands its result back.
async fn logged<T>(
    state: &AppState,
    actor: &Principal,
    action: &str,
    object: impl FnOnce(&T) -> String,
    attempt: String,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = outcome_of(&result);
    let object = match &result {
        Ok(v) => object(v),
        Err(_) => attempt,
    };
    log_in(state, chain_of(actor), actor, action, object, outcome).await?;
    result
}

/// The request body as a blocking reader, for the CSV readers.
fn body_reader(body: Body) -> impl io::Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadParams {
    /// `strict` (default): a file with any bad row changes nothing. `partial`: the
    /// good rows are applied and the bad ones listed.
    mode: Option<ImportMode>,
    /// Report what would change, change nothing.
    #[serde(default)]
    dry_run: bool,
    /// `auto` (default), `utf-8` or `cp932`.
    encoding: Option<String>,
}

impl UploadParams {
    fn options(&self) -> Result<ImportOptions, ApiError> {
        let encoding = match &self.encoding {
            Some(e) => e
                .parse::<Encoding>()
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?,
            None => Encoding::Auto,
        };
        Ok(ImportOptions {
            mode: self.mode.unwrap_or_default(),
            dry_run: self.dry_run,
            encoding,
            today: today_jst(),
        })
    }
}

/// Upload a target-person register CSV (接種対象者).
#[utoipa::path(post, path = "/api/register/import", params(UploadParams),
    request_body(content = String, content_type = "text/csv",
        description = "The register CSV: UTF-8 (with or without BOM) or CP932, with or without a header row"),
    responses(
        (status = 200, description = "The file was read: see `outcome`", body = ImportReportSchema),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
async fn import_register(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(params): ApiQuery<UploadParams>,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    upload(
        state,
        actor,
        params,
        body,
        "register.import",
        |store, actor, m, input, opts| store.import_register(actor, m, input, opts),
    )
    .await
}

/// Upload paper dose records (the ledger CSV layout).
#[utoipa::path(post, path = "/api/paper/import", params(UploadParams),
    request_body(content = String, content_type = "text/csv",
        description = "登録日時,接種日,券番号,接種会場市町村コード,接種会場名,医師名,ワクチンメーカー,ロット番号[,接種回数]"),
    responses(
        (status = 200, description = "The file was read: see `outcome`", body = ImportReportSchema),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
async fn import_paper(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(params): ApiQuery<UploadParams>,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    upload(
        state,
        actor,
        params,
        body,
        "paper.import",
        |store, actor, m, input, opts| store.import_paper(actor, m, input, opts),
    )
    .await
}

/// The largest upload accepted: a register of about 25 million rows.
const MAX_UPLOAD: u64 = 2 << 30;

/// The body of an upload handler: a staff member's file, spooled, then imported.
async fn upload(
    state: AppState,
    actor: Principal,
    params: UploadParams,
    body: Body,
    action: &'static str,
    import: impl FnOnce(
        &dyn Store,
        &Principal,
        vrs_domain::MunicipalityCode,
        &mut dyn io::Read,
        &ImportOptions,
    ) -> Result<ImportReport, StoreError>
    + Send
    + 'static,
) -> Result<Json<ImportReport>, ApiError> {
    let municipality = actor.staff_of().map_err(ApiError::from)?;
    let opts = params.options()?;
    let mut reader = body_reader(body);
    let store = state.store.clone();
    // The whole file first (encrypted, in a temporary file), then the import: a slow
    // upload must not hold the import's write lock.
    let mut spooled = tokio::task::spawn_blocking(move || {
        crate::spool::spool(&mut reader, &std::env::temp_dir(), MAX_UPLOAD)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the service failed"))?
    .map_err(|e| match e {
        SpoolError::Input(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "the upload broke off before the end of the file: send it again",
        ),
        SpoolError::TooLarge(max) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the file is larger than {} MiB: split it into several files (each is applied on its own)", max >> 20),
        ),
        SpoolError::Local(e) => {
            tracing::error!("spooling an upload failed: {e}");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the upload could not be received")
        }
    })?;
    let who = actor.clone();
    let report =
        blocking(move || import(store.as_ref(), &who, municipality, &mut spooled, &opts)).await;
    let report = logged(
        &state,
        &actor,
        action,
        |r: &ImportReport| {
            format!(
                "import {}: {} rows, {} new, {} updated, {} rejected, {:?}",
                r.import_id, r.rows, r.new, r.updated, r.rejected, r.outcome
            )
        },
        String::new(),
        report,
    )
    .await?;
    Ok(Json(report))
}

/// The error CSV of an upload: line, 個別宛名番号, field, problem, fix.
#[utoipa::path(get, path = "/api/imports/{id}/errors.csv",
    params(("id" = i64, Path, description = "The upload's `import_id`")),
    responses((status = 200, body = String, content_type = "text/csv"),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
async fn import_errors(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such upload"))?;
    let store = state.store.clone();
    let who = actor.clone();
    let csv = blocking(move || store.import_errors_csv(&who, id)).await;
    let csv = logged(
        &state,
        &actor,
        "import.errors",
        |_: &String| format!("import {id}"),
        format!("import {id}"),
        csv,
    )
    .await?;
    Ok(csv_response(format!("\u{FEFF}{csv}"), "errors.csv"))
}

fn csv_response(body: impl Into<Body>, filename: &str) -> Response {
    let mut r = Response::new(body.into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// A tablet asks for the name that belongs to a scanned voucher.
#[utoipa::path(post, path = "/api/tablet/name", request_body = NameLookupRequest,
    responses((status = 200, body = NameLookupResponse),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, description = "No one is registered with this voucher", body = ApiError),
        (status = 422, body = ApiError),
        (status = 429, description = "Too many look-ups (or misses) from this device: see Retry-After", body = ApiError)),
    security(("tablet" = [])))]
async fn tablet_name(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<NameLookupRequest>,
) -> Result<Json<NameLookupResponse>, ApiError> {
    devices::tablet_user(&state, &headers, &actor).await?;
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
async fn tablet_records(
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

/// Records held for the municipality's review.
#[utoipa::path(get, path = "/api/records/held",
    responses((status = 200, body = [HeldRecordSchema]),
        (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
async fn held(
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
async fn void(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<VoidRequest>,
) -> Result<StatusCode, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let id = record_id(&id)?;
    let store = state.store.clone();
    let by = actor.clone();
    let r = blocking(move || store.void(&by, m, id, &req.reason)).await;
    let object = format!("record {}", id.0);
    logged(
        &state,
        &actor,
        "record.void",
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
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
async fn amend(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AmendRequest>,
) -> Result<Json<Outcome>, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let id = record_id(&id)?;
    let change = Amendment {
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
async fn ledger(
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
    responses((status = 200, body = [TransferMatchSchema]),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
async fn transfer_lookup(
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
    #[schema(value_type = Vec<TransferMatchSchema>)]
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
async fn transfer_lookup_batch(
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

/// The municipality's access log, newest first: who read or changed what, when.
#[utoipa::path(get, path = "/api/audit", params(AuditQuery),
    responses((status = 200, body = [AuditEntry]),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
async fn audit_search(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from);
    let store = state.store.clone();
    let found = match m {
        Ok(m) => blocking(move || store.audit().search(i64::from(m.get()), &q)).await,
        Err(e) => Err(e),
    };
    let found = logged(
        &state,
        &actor,
        "audit.search",
        |l: &Vec<AuditEntry>| format!("{} entries", l.len()),
        String::new(),
        found,
    )
    .await?;
    Ok(Json(found))
}

/// Liveness: answers when the service and its database are up.
#[utoipa::path(get, path = "/api/health", responses((status = 200, body = String)))]
async fn health() -> &'static str {
    "ok"
}

// Schemas of the server's own response types, described for the document.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = ImportReport)]
struct ImportReportSchema {
    import_id: i64,
    /// applied | rejected | dry_run
    outcome: String,
    encoding: String,
    rows: u64,
    new: u64,
    updated: u64,
    unchanged: u64,
    flagged: u64,
    rejected: u64,
    warnings: Vec<String>,
    errors: Vec<vrs_domain::csv::RowError>,
    errors_truncated: bool,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = TransferDose)]
struct TransferDoseSchema {
    dose_number: Option<u8>,
    #[schema(format = Date)]
    vaccinated_on: String,
    vaccine: vrs_domain::Vaccine,
    lot: vrs_domain::Lot,
    site_municipality: vrs_domain::MunicipalityCode,
    site_name: String,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = TransferMatch)]
struct TransferMatchSchema {
    municipality: vrs_domain::MunicipalityCode,
    municipality_name: String,
    transfer_contact: String,
    doses: Vec<TransferDoseSchema>,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = HeldRecord)]
struct HeldRecordSchema {
    client_record_id: vrs_domain::ClientRecordId,
    voucher: vrs_domain::VoucherNumber,
    dose_number: Option<u8>,
    #[schema(format = Date)]
    vaccinated_on: String,
    vaccine: vrs_domain::Vaccine,
    lot: vrs_domain::Lot,
    reason: vrs_domain::wire::HoldReason,
    detail: String,
    registered_at: String,
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // A signed-in staff member's browser: the session cookie (and x-csrf-token on changes).
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                signin::SESSION_COOKIE,
                "the session cookie from /api/signin/verify; changes also need x-csrf-token",
            ))),
        );
        // An enrolled tablet signs each request: x-vrs-device, x-vrs-time, x-vrs-nonce
        // and x-vrs-signature (Ed25519 over vrs_domain::wire::signing::message).
        components.add_security_scheme(
            "tablet",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                vrs_domain::wire::signing::SIGNATURE,
                "Ed25519 signature of the request by the enrolled tablet; with x-vrs-device, x-vrs-time and x-vrs-nonce",
            ))),
        );
    }
}

/// Every operation that takes a JSON body may answer 415 (a body sent without
/// `Content-Type: application/json`), and every upload 413 (over the size limit).
struct BodyErrors;

impl utoipa::Modify for BodyErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
        let error = || {
            ResponseBuilder::new()
                .description("The body cannot be taken: see `error`")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ApiError",
                        ))))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.post, &mut item.put, &mut item.patch]
                .into_iter()
                .flatten()
            {
                let Some(body) = &op.request_body else {
                    continue;
                };
                let code = if body.content.contains_key("application/json") {
                    "415"
                } else {
                    "413"
                };
                op.responses
                    .responses
                    .entry(code.to_owned())
                    .or_insert_with(|| RefOr::T(error()));
            }
        }
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "vrs: ワクチン接種記録システム", description = "The central service's API."),
    paths(health, import_register, import_paper, import_errors, tablet_name, tablet_records,
        held, void, amend, ledger, transfer_lookup, transfer_lookup_batch, audit_search,
        devices::enrol, devices::register, devices::list, devices::revoke, devices::reissue,
        devices::tablet_signin_start, devices::tablet_signin_verify,
        signin::start, signin::verify, signin::signout, signin::me, signin::users, signin::put_user,
        signin::remove_user, signin::contacts, signin::put_contact, signin::sites, signin::put_site),
    components(schemas(ApiError, ImportReportSchema, TransferMatchSchema, TransferDoseSchema,
        HeldRecordSchema, TransferBatchResult, AuditEntry, crate::store::ImportMode,
        crate::rules::devices::DeviceRegistration, crate::rules::devices::DeviceInfo, crate::rules::devices::Enrolment,
        crate::rules::access::User, crate::rules::access::Contact, crate::rules::access::ContactKind,
        crate::store::Site)),
    modifiers(&BearerAuth, &BodyErrors)
)]
pub struct ApiDoc;

/// The OpenAPI document, as served at `/api/openapi.json`.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    let doc = Arc::new(openapi_json());
    let uploads = Router::new()
        .route("/api/register/import", post(import_register))
        .route("/api/paper/import", post(import_paper))
        // Registers run to millions of rows: the spool's limit (MAX_UPLOAD) applies.
        .layer(DefaultBodyLimit::disable());
    let tablet = Router::new()
        .route("/api/tablet/name", post(tablet_name))
        .route("/api/tablet/records", post(tablet_records))
        .route(
            "/api/tablet/signin/start",
            post(devices::tablet_signin_start),
        )
        .route(
            "/api/tablet/signin/verify",
            post(devices::tablet_signin_verify),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            devices::signed_tablet,
        ));
    Router::new()
        .route("/api/health", get(health))
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.as_str().to_owned(),
                    )
                }
            }),
        )
        .route("/api/imports/{id}/errors.csv", get(import_errors))
        .route("/api/tablet/enrol", post(devices::enrol))
        .route("/api/signin/start", post(signin::start))
        .route("/api/signin/verify", post(signin::verify))
        .route("/api/signout", post(signin::signout))
        .route("/api/me", get(signin::me))
        .route("/api/users", get(signin::users).post(signin::put_user))
        .route("/api/users/remove", post(signin::remove_user))
        .route(
            "/api/contacts",
            get(signin::contacts).post(signin::put_contact),
        )
        .route("/api/sites", get(signin::sites).post(signin::put_site))
        .route("/api/devices", get(devices::list).post(devices::register))
        .route("/api/devices/{id}/revoke", post(devices::revoke))
        .route("/api/devices/{id}/enrolment", post(devices::reissue))
        .route("/api/records/held", get(held))
        .route("/api/records/{id}/void", post(void))
        .route("/api/records/{id}/amend", post(amend))
        .route("/api/ledger.csv", get(ledger))
        .route("/api/transfer/lookup", post(transfer_lookup))
        .route("/api/transfer/lookup-batch", post(transfer_lookup_batch))
        .route("/api/audit", get(audit_search))
        .merge(uploads)
        .merge(tablet)
        .merge(crate::web::router())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint: see /api/openapi.json",
            )
        })
        .with_state(state)
}

/// Security headers on every response.
/// Under TLS: browsers keep to HTTPS for this host for a year.
pub async fn strict_transport(req: Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    r.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

pub async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    // The pages load only their own script and style; nothing may frame them.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    r
}
