//! How far a long upload has got, for the upload page: a clerk of a large city
//! sends a file of millions of rows and sees it received, its rows being checked
//! (the share of the file read so far), then stored.
//!
//! The page names its upload with an id of its own (`?progress=ID`) and asks
//! `GET /api/imports/progress/{id}` while it waits. Only the one who sent the
//! upload can ask about it; it is forgotten when the upload's answer is sent.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::extract::Caller;
use super::state::AppState;
use crate::principal::Principal;

/// Where an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadStage {
    /// The file is coming in (`received` bytes so far).
    Receiving,
    /// The file is whole (`total` bytes) and its rows are being checked
    /// (`checked` bytes of it read).
    Checking,
    /// Every row is checked; the result is being stored.
    Storing,
}

/// An upload's progress, as the page sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UploadProgress {
    pub stage: UploadStage,
    pub received: u64,
    pub checked: u64,
    /// The file's size, once it is whole (0 before).
    pub total: u64,
}

const RECEIVING: u8 = 0;
const CHECKING: u8 = 1;
const STORING: u8 = 2;

/// One upload's counters, shared by the readers that move them.
#[derive(Debug, Default)]
pub struct Tracker {
    stage: AtomicU8,
    received: AtomicU64,
    checked: AtomicU64,
    total: AtomicU64,
}

impl Tracker {
    fn progress(&self) -> UploadProgress {
        UploadProgress {
            stage: match self.stage.load(Ordering::Relaxed) {
                RECEIVING => UploadStage::Receiving,
                CHECKING => UploadStage::Checking,
                _ => UploadStage::Storing,
            },
            received: self.received.load(Ordering::Relaxed),
            checked: self.checked.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
        }
    }

    /// The file is whole: its rows are checked next.
    pub fn received_all(&self) {
        self.total
            .store(self.received.load(Ordering::Relaxed), Ordering::Relaxed);
        self.stage.store(CHECKING, Ordering::Relaxed);
    }
}

/// The uploads in progress, by who sent them and the page's id.
#[derive(Debug, Default)]
pub struct Uploads {
    live: Mutex<HashMap<(String, String), Arc<Tracker>>>,
}

/// An upload's place in [`Uploads`], given up when dropped (the upload answered,
/// or failed).
#[derive(Debug)]
pub struct Registered {
    uploads: Arc<Uploads>,
    key: (String, String),
    pub tracker: Arc<Tracker>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut live) = self.uploads.live.lock() {
            live.remove(&self.key);
        }
    }
}

/// An id the page may choose: 1 to 64 letters, digits, `-` or `_`.
fn checked_id(id: &str) -> Result<&str, ApiError> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "progress: an id is 1 to 64 letters, digits, '-' or '_'",
        )
    })
}

impl Uploads {
    /// Starts following an upload of `actor`'s named `id`.
    pub fn start(self: &Arc<Self>, actor: &Principal, id: &str) -> Result<Registered, ApiError> {
        let key = (actor.to_string(), checked_id(id)?.to_owned());
        let tracker = Arc::new(Tracker::default());
        self.live
            .lock()
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the service failed"))?
            .insert(key.clone(), tracker.clone());
        Ok(Registered {
            uploads: self.clone(),
            key,
            tracker,
        })
    }

    fn get(&self, actor: &Principal, id: &str) -> Option<UploadProgress> {
        let live = self.live.lock().ok()?;
        live.get(&(actor.to_string(), id.to_owned()))
            .map(|t| t.progress())
    }
}

/// What a counting reader counts.
#[derive(Debug, Clone, Copy)]
pub enum Counts {
    /// Bytes received.
    Received,
    /// Bytes checked; the end of the file means storing.
    Checked,
}

/// A reader that moves an upload's counters (or nothing, for an upload nobody
/// follows).
#[derive(Debug)]
pub struct Counting<R> {
    inner: R,
    tracker: Option<Arc<Tracker>>,
    counts: Counts,
}

impl<R> Counting<R> {
    pub fn new(inner: R, tracker: Option<Arc<Tracker>>, counts: Counts) -> Self {
        Counting {
            inner,
            tracker,
            counts,
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(t) = &self.tracker {
            match (self.counts, n) {
                (Counts::Received, n) => {
                    t.received.fetch_add(n as u64, Ordering::Relaxed);
                }
                (Counts::Checked, 0) if !buf.is_empty() => {
                    t.stage.store(STORING, Ordering::Relaxed)
                }
                (Counts::Checked, n) => {
                    t.checked.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        Ok(n)
    }
}

/// How far one's own upload has got.
#[utoipa::path(get, path = "/api/imports/progress/{id}",
    params(("id" = String, Path, description = "The id the upload was sent with (`?progress=`)")),
    responses((status = 200, body = UploadProgress),
        (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 404, description = "No upload of yours with this id is in progress", body = ApiError)),
    security(("bearer" = [])))]
pub async fn upload_progress(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<UploadProgress>, ApiError> {
    // Uploads are staff's. Not in the access log: it tells its caller only about
    // their own upload, which is logged, and a page asks every half second.
    actor.staff_of().map_err(ApiError::from)?;
    let id = checked_id(&id)?;
    state.uploads.get(&actor, id).map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no upload of yours with this id is in progress",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_the_file_received_checked_and_stored() {
        let uploads = Arc::new(Uploads::default());
        let who = Principal::System;
        let reg = uploads.start(&who, "a-1").unwrap();
        let file = vec![b'x'; 10_000];
        let mut received = Vec::new();
        Counting::new(&file[..], Some(reg.tracker.clone()), Counts::Received)
            .read_to_end(&mut received)
            .unwrap();
        let p = uploads.get(&who, "a-1").unwrap();
        assert_eq!(
            (p.stage, p.received, p.total),
            (UploadStage::Receiving, 10_000, 0)
        );
        reg.tracker.received_all();
        let mut checking = Counting::new(&received[..], Some(reg.tracker.clone()), Counts::Checked);
        let mut part = [0u8; 4_000];
        checking.read_exact(&mut part).unwrap();
        let p = uploads.get(&who, "a-1").unwrap();
        assert_eq!(
            (p.stage, p.checked, p.total),
            (UploadStage::Checking, 4_000, 10_000)
        );
        std::io::copy(&mut checking, &mut std::io::sink()).unwrap();
        assert_eq!(
            uploads.get(&who, "a-1").unwrap().stage,
            UploadStage::Storing
        );
        // Someone else's id, a bad id, and the upload once answered: nothing.
        assert!(uploads.get(&who, "a-2").is_none());
        assert!(uploads.start(&who, "../etc").is_err());
        drop(reg);
        assert!(uploads.get(&who, "a-1").is_none());
    }
}
