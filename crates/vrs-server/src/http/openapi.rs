//! The OpenAPI document (`/api/openapi.json`), made from the handlers' annotations and
//! the real types, and the health check.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;

use super::error::ApiError;
use super::state::AppState;
use super::{
    access, audit, devices, ledger, lots, progress, records, register, signin, tablet, transfer,
};
use crate::rules::access::{Contact, User};
use crate::rules::devices::{DeviceInfo, DeviceRegistration, Enrolment};
use crate::store::audit::AuditEntry;
use crate::store::{HeldRecord, ImportMode, ImportReport, Site, TransferMatch};
use utoipa::OpenApi;

/// `/api/health`, `/api/openapi.json`.
pub(super) fn router() -> Router<AppState> {
    let doc = Arc::new(openapi_json());
    Router::new().route("/api/health", get(health)).route(
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
}

/// Liveness: answers when the service and its database are up.
#[utoipa::path(get, path = "/api/health", responses((status = 200, body = String)))]
pub async fn health() -> &'static str {
    "ok"
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
                super::extract::SESSION_COOKIE,
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
    paths(health, register::import_register, records::import_paper, register::import_errors,
        tablet::tablet_name, tablet::tablet_records, records::held, records::void, records::amend, records::release,
        ledger::ledger, transfer::transfer_lookup, transfer::transfer_lookup_batch,
        audit::audit_search, tablet::enrol, devices::register, devices::list, devices::revoke,
        devices::reissue, tablet::tablet_signin_start, tablet::tablet_signin_verify,
        signin::start, signin::verify, signin::signout, signin::me, access::users,
        access::put_user, access::remove_user, access::contacts, access::put_contact,
        register::sites, register::put_site, lots::list, lots::add, lots::import,
        tablet::tablet_lots, progress::upload_progress),
    components(schemas(ApiError, ImportReport, crate::store::Texts, crate::store::ImportOutcome, TransferMatch,
        crate::store::TransferDose, HeldRecord, transfer::TransferBatchResult, AuditEntry,
        ImportMode, DeviceRegistration, DeviceInfo, Enrolment, User, Contact,
        crate::rules::access::ContactKind, Site, vrs_domain::wire::LotEntry,
        progress::UploadProgress, progress::UploadStage)),
    modifiers(&BearerAuth, &BodyErrors)
)]
pub struct ApiDoc;

/// The OpenAPI document, as served at `/api/openapi.json`.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}
