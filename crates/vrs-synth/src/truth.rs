//! What a fixture image holds, as written by the generator and read by `vrs scan --eval`.
//!
//! A fixture folder holds images and one `truth.json`: a list of [`TruthEntry`], one
//! per image, in file order. A stream folder (frames replayed as a camera) holds
//! `stream-NNN/` subfolders of numbered frames and a `streams.json` of [`StreamTruth`].

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The truth of one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthEntry {
    /// The file name, relative to the folder.
    pub file: String,
    /// The 18 digits the scanner must report, or None when it must report no voucher
    /// (no voucher in the picture, or a voucher whose OCR line does not validate).
    pub voucher: Option<String>,
    /// The vaccine label the scanner must report, when the image holds one.
    pub lot: Option<LotTruth>,
    /// What kind of scene this is ("voucher-ocr", "voucher-qr", "voucher-nw7",
    /// "empty", "invalid-check", "label-gs1-128", "label-datamatrix", …): for the
    /// evaluation's breakdown only.
    pub scene: String,
    /// The distortions applied, for a reader of the failures ("rot=7.2 blur=1.1 …").
    #[serde(default)]
    pub note: String,
}

/// A vaccine label's expected read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LotTruth {
    pub gtin: String,
    pub lot: String,
    /// YYYY-MM-DD
    pub expiry: String,
}

/// The truth of one replayed stream: which voucher is in view from which frame on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTruth {
    /// The subfolder holding the frames (`000.jpg`, `001.jpg`, …, in order).
    pub dir: String,
    /// The vouchers shown, in order.
    pub segments: Vec<StreamSegment>,
}

/// A run of frames showing one voucher (or none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSegment {
    /// The first frame of the run (0-based index into the sorted frames).
    pub first_frame: usize,
    /// The number of frames in the run.
    pub frames: usize,
    /// The voucher in view, None for frames with no (valid) voucher.
    pub voucher: Option<String>,
}

/// Why a truth file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a truth file ({source}); make one with `vrs fixtures vouchers`")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, TruthError> {
    let text = std::fs::read_to_string(path).map_err(|source| TruthError::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| TruthError::Json {
        path: path.display().to_string(),
        source,
    })
}

/// Reads `DIR/truth.json`.
pub fn read_truth(dir: &Path) -> Result<Vec<TruthEntry>, TruthError> {
    read_json(&dir.join("truth.json"))
}

/// Reads `DIR/streams.json`.
pub fn read_streams(dir: &Path) -> Result<Vec<StreamTruth>, TruthError> {
    read_json(&dir.join("streams.json"))
}
