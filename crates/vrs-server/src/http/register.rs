//! The register over HTTP: the register upload (`/api/register/import`), an upload's
//! error CSV (`/api/imports`), and the municipality's sites (`/api/sites`). The
//! upload body (spooled, then imported) serves the paper upload too.

use std::io::{self};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::TryStreamExt;
use serde::Deserialize;
use tokio_util::io::{StreamReader, SyncIoBridge};
use vrs_domain::csv::Encoding;

use super::audit::{logged, staff_op};
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, Caller, blocking};
use super::progress::{Counting, Counts};
use super::state::AppState;
use crate::error::Result;
use crate::principal::Principal;
use crate::spool::SpoolError;
use crate::store::{ImportMode, ImportOptions, ImportReport, Site, Store, today_jst};

/// `/api/register`, `/api/imports`, `/api/sites`.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/register/import",
            // Registers run to millions of rows: the spool's limit (MAX_UPLOAD) applies.
            post(import_register).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/imports/{id}/errors.csv", get(import_errors))
        .route(
            "/api/imports/progress/{id}",
            get(super::progress::upload_progress),
        )
        .route("/api/sites", get(sites).post(put_site))
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
    /// An id of the caller's choosing (1 to 64 letters, digits, `-`, `_`): how far
    /// the upload has got is then at `/api/imports/progress/{id}` while it runs.
    progress: Option<String>,
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
        (status = 200, description = "The file was read: see `outcome`", body = ImportReport),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])))]
pub async fn import_register(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(params): ApiQuery<UploadParams>,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    upload(
        state,
        actor,
        params,
        body,
        "register.import",
        move |store, actor, input, opts| store.import_register(actor, m, input, opts),
    )
    .await
}

/// The largest upload accepted: a register of about 25 million rows.
const MAX_UPLOAD: u64 = 2 << 30;

/// The body of an upload handler: a file, spooled, then imported. The caller has
/// checked that `actor` may upload it.
pub(super) async fn upload(
    state: AppState,
    actor: Principal,
    params: UploadParams,
    body: Body,
    action: &'static str,
    import: impl FnOnce(
        &dyn Store,
        &Principal,
        &mut dyn io::Read,
        &ImportOptions,
    ) -> Result<ImportReport>
    + Send
    + 'static,
) -> Result<Json<ImportReport>, ApiError> {
    let opts = params.options()?;
    // Followed by the page when it names the upload; let go when this returns.
    let followed = params
        .progress
        .as_deref()
        .map(|id| state.uploads.start(&actor, id))
        .transpose()?;
    let tracker = followed.as_ref().map(|f| f.tracker.clone());
    let mut reader = Counting::new(body_reader(body), tracker.clone(), Counts::Received);
    let store = state.store.clone();
    // The whole file first (encrypted, in a temporary file), then the import: a slow
    // upload must not hold the import's write lock.
    let spooled = tokio::task::spawn_blocking(move || {
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
    if let Some(t) = &tracker {
        t.received_all();
    }
    let mut spooled = Counting::new(spooled, tracker, Counts::Checked);
    let who = actor.clone();
    let report = blocking(move || import(store.as_ref(), &who, &mut spooled, &opts)).await;
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
pub async fn import_errors(
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

/// The municipality's sites and clinics.
#[utoipa::path(get, path = "/api/sites",
    responses((status = 200, body = [Site]), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn sites(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Json<Vec<Site>>, ApiError> {
    staff_op(
        &state,
        &actor,
        "site.list",
        String::new(),
        |_| String::new(),
        |s, a, m| s.sites(a, m),
    )
    .await
    .map(Json)
}

/// Add a mass-vaccination site (or rename one).
#[utoipa::path(post, path = "/api/sites", request_body = Site,
    responses((status = 204, description = "Saved"), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = []), ("session" = [])))]
pub async fn put_site(
    State(state): State<AppState>,
    Caller(actor): Caller,
    ApiJson(site): ApiJson<Site>,
) -> Result<StatusCode, ApiError> {
    let code: vrs_domain::SiteCode = site.code.parse().map_err(|e: vrs_domain::IdError| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("code: {}: {}", e.detail(), e.fix()),
        )
    })?;
    let name = site.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name: give the site's name as the ledger should show it (at most 200 characters)",
        ));
    }
    let object = format!("site {code}");
    let o = object.clone();
    staff_op(
        &state,
        &actor,
        "site.put",
        object,
        move |_| o,
        move |s, a, m| s.add_site(a, m, code.as_str(), &name),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn csv_response(body: impl Into<Body>, filename: &str) -> Response {
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
