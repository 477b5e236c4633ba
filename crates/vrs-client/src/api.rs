//! The server's tablet API over HTTPS (ureq with rustls; blocking, because the
//! outbox is, and sync runs on its own thread). Errors are sorted into those worth
//! retrying (no network, a stall, a 5xx, a 429) and those that need a person.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use vrs_domain::DeviceId;
use vrs_domain::wire::{
    EnrolRequest, EnrolResponse, LotEntry, NameLookupRequest, NameLookupResponse, TabletSession,
    TabletSignIn, UploadBatch, UploadResponse,
};

use crate::device::DeviceKey;

/// What went wrong talking to the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No answer: no network, refused, reset, timed out. Try again later.
    #[error("the server cannot be reached: {0}")]
    Unreachable(String),
    /// The server failed or is busy (5xx, 429). Try again later.
    #[error("the server is unavailable ({status}): {message}")]
    Unavailable {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The server refused the request (4xx): retrying will not help.
    #[error("the server refused ({status}): {message}")]
    Refused { status: u16, message: String },
    /// An answer that is not what the API promises.
    #[error("the server's answer cannot be read: {0}")]
    BadAnswer(String),
    #[error("device key: {0}")]
    Key(String),
}

impl ApiError {
    /// Whether trying again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Unreachable(_) | ApiError::Unavailable { .. } | ApiError::BadAnswer(_)
        )
    }
}

/// A server, as a tablet talks to it.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    agent: ureq::Agent,
}

/// An enrolled tablet's credentials for signing.
#[derive(Debug, Clone, Copy)]
pub struct Tablet<'a> {
    pub device: DeviceId,
    pub key: &'a DeviceKey,
}

impl Api {
    /// `base` like `https://vrs.example.jp`; `ca_pem`, a CA certificate to trust
    /// besides the public roots (a private deployment, the tests); `timeout`, for a
    /// whole request (a stalled server is given up on and retried).
    pub fn new(base: &str, ca_pem: Option<&[u8]>, timeout: Duration) -> Result<Api, ApiError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent("vrs-tablet");
        if let Some(pem) = ca_pem {
            let cert = ureq::tls::Certificate::from_pem(pem)
                .map_err(|e| ApiError::BadAnswer(format!("CA certificate: {e}")))?
                .to_owned();
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                    .build(),
            );
        }
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            agent: config.build().into(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        tablet: Option<Tablet<'_>>,
        session: Option<&str>,
    ) -> Result<Option<T>, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::BadAnswer(e.to_string()))?;
        self.send("POST", path, bytes, tablet, session)
    }

    /// A request (a `GET` has an empty body), signed when `tablet` is given.
    fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        bytes: Vec<u8>,
        tablet: Option<Tablet<'_>>,
        session: Option<&str>,
    ) -> Result<Option<T>, ApiError> {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(t) = tablet {
            let now = chrono::Utc::now().timestamp();
            let h = t
                .key
                .sign(t.device, method, path, &bytes, now)
                .map_err(|e| ApiError::Key(e.to_string()))?;
            for (name, value) in h.pairs() {
                headers.push((name, value.to_string()));
            }
        }
        if let Some(token) = session {
            headers.push((vrs_domain::wire::signing::SESSION, token.to_owned()));
        }
        let url = format!("{}{path}", self.base);
        let sent = if method == "GET" {
            let mut req = self.agent.get(url);
            for (name, value) in &headers {
                req = req.header(*name, value);
            }
            req.call()
        } else {
            let mut req = self
                .agent
                .post(url)
                .header("content-type", "application/json");
            for (name, value) in &headers {
                req = req.header(*name, value);
            }
            req.send(&bytes[..])
        };
        let mut resp = sent.map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| ApiError::Unreachable(format!("reading the answer: {e}")))?;
        let message = || {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect())
        };
        match status {
            // An empty answer (202, 204) reads as null.
            200..=299 if text.trim().is_empty() => serde_json::from_str("null")
                .map(Some)
                .map_err(|e| ApiError::BadAnswer(e.to_string())),
            200..=299 => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ApiError::BadAnswer(e.to_string())),
            404 => Ok(None),
            429 | 500..=599 => Err(ApiError::Unavailable {
                status,
                message: message(),
                retry_after,
            }),
            // A 408 or a proxy's 4xx without our body is the way, not the request.
            408 => Err(ApiError::Unavailable {
                status,
                message: message(),
                retry_after,
            }),
            _ => Err(ApiError::Refused {
                status,
                message: message(),
            }),
        }
    }

    /// Enrols with the one-time code; the key's public half is registered.
    pub fn enrol(&self, code: &str, key: &DeviceKey) -> Result<EnrolResponse, ApiError> {
        self.post(
            "/api/tablet/enrol",
            &EnrolRequest {
                code: code.to_owned(),
                public_key: key.public_hex(),
            },
            None,
            None,
        )?
        .ok_or_else(|| ApiError::Refused {
            status: 404,
            message: "this server has no tablet enrolment: check the server address".into(),
        })
    }

    /// The name for a voucher (`None`: no one is registered with it); needs the
    /// tablet user's session.
    pub fn name(
        &self,
        tablet: Tablet<'_>,
        session: &str,
        req: &NameLookupRequest,
    ) -> Result<Option<NameLookupResponse>, ApiError> {
        self.post("/api/tablet/name", req, Some(tablet), Some(session))
    }

    /// Asks for a sign-in passcode, mailed to the tablet's registered e-mail.
    pub fn sign_in_start(&self, tablet: Tablet<'_>) -> Result<(), ApiError> {
        self.post::<_, serde_json::Value>(
            "/api/tablet/signin/start",
            &serde_json::json!({}),
            Some(tablet),
            None,
        )
        .map(|_| ())
    }

    /// Signs the tablet's user in with the passcode from the mail.
    pub fn sign_in(&self, tablet: Tablet<'_>, passcode: &str) -> Result<TabletSession, ApiError> {
        self.post(
            "/api/tablet/signin/verify",
            &TabletSignIn {
                passcode: passcode.trim().to_owned(),
            },
            Some(tablet),
            None,
        )?
        .ok_or_else(|| ApiError::Refused {
            status: 404,
            message: "this server has no tablet sign-in: check the server address".into(),
        })
    }

    /// The lot master (vaccine, lot, expiry, GTIN of every lot).
    pub fn lots(&self, tablet: Tablet<'_>) -> Result<Vec<LotEntry>, ApiError> {
        Ok(self
            .send("GET", "/api/tablet/lots", Vec::new(), Some(tablet), None)?
            .unwrap_or_default())
    }

    /// Uploads a batch; one receipt per record, in order.
    pub fn upload(
        &self,
        tablet: Tablet<'_>,
        batch: &UploadBatch,
    ) -> Result<UploadResponse, ApiError> {
        self.post("/api/tablet/records", batch, Some(tablet), None)?
            .ok_or_else(|| ApiError::Refused {
                status: 404,
                message: "this server has no record upload: check the server address".into(),
            })
    }
}
