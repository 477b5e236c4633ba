//! vrs-scan turns an image, or a stream of camera frames, into validated reads:
//! the voucher's QR or NW-7 barcode, its 18-digit OCR line, and the GS1 barcodes on
//! vaccine packaging.
//!
//! The public surface is small: one entry point, [`Scanner`] (one frame in, a
//! [`FrameReport`] out, tuned by [`Options`]), and the [`Consensus`] that confirms a
//! voucher across camera frames. Inside, in the order a frame goes through them:
//! `barcode` asks rxing for symbols; `line` finds candidate OCR lines and rectifies
//! each into a level strip; each strip is read twice, by `ocr` (tesseract) and
//! `ocrb` (OCR-B templates); `scanner` decides. A voucher is reported only when it
//! is sure: a wrong number accepted is far worse than a number not read. The
//! fixture generator and the scoring against a truth folder are in `vrs-synth`.

mod barcode;
mod consensus;
mod line;
mod ocr;
mod ocrb;
mod scanner;

pub use barcode::{Symbol, decode as decode_barcodes};
pub use consensus::{Consensus, DEFAULT_FORGET_AFTER, DEFAULT_NEED, Event};
pub use ocr::{LineReader, ONE_THREAD_ENV, OcrError, Prep, Tesseract};
#[cfg(feature = "templates")]
pub use ocrb::render_sheet;
pub use ocrb::{CellMatch, TemplateError};
pub use scanner::{
    FrameReport, LineAttempt, Options, Scanner, ScannerError, Source, Stages, VoucherRead,
};
