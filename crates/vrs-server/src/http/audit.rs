//! The access log over HTTP: the glue every handler logs through (one entry per
//! request, in the actor's chain) and the municipality's search of its own log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiError;
use super::extract::{ApiQuery, Caller, blocking};
use super::state::AppState;
use crate::error::Result;
use crate::principal::Principal;
use crate::store::Store;
use crate::store::audit::{AuditEntry, AuditEvent, AuditQuery};

/// `/api/audit`.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/audit", get(audit_search))
}

/// The chain a principal's actions are logged in: its municipality's (0: the service).
pub(crate) fn chain_of(p: &Principal) -> i64 {
    match p {
        Principal::Staff { municipality, .. } | Principal::Device { municipality, .. } => {
            i64::from(municipality.get())
        }
        Principal::Operator { .. } | Principal::System => 0,
    }
}

/// How a request ended, in the access log's words.
pub(crate) fn outcome_of<T>(r: &Result<T, ApiError>) -> String {
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
pub(crate) async fn log_in(
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
pub(crate) async fn staff_op<T: Send + 'static>(
    state: &AppState,
    actor: &Principal,
    action: &str,
    attempt: String,
    describe: impl FnOnce(&T) -> String,
    op: impl FnOnce(&dyn Store, &Principal, vrs_domain::MunicipalityCode) -> Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let m = actor.staff_of().map_err(ApiError::from)?;
    let store = state.store.clone();
    let by = actor.clone();
    let r = blocking(move || op(store.as_ref(), &by, m)).await;
    logged(state, actor, action, describe, attempt, r).await
}

/// Logs a request in its actor's chain, then hands its result back.
pub(crate) async fn logged<T>(
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

/// The municipality's access log, newest first: who read or changed what, when.
#[utoipa::path(get, path = "/api/audit", params(AuditQuery),
    responses((status = 200, body = [AuditEntry]),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn audit_search(
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
