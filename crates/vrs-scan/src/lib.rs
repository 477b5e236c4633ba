//! vrs-scan turns an image, or a stream of camera frames, into validated reads:
//! the voucher's QR or NW-7 barcode, its 18-digit OCR line, and the GS1 barcodes on
//! vaccine packaging.
//!
//! Start at [`scanner::Scanner`]: one frame in, a [`scanner::FrameReport`] out. It asks
//! [`barcode`] for symbols, [`line`] for candidate OCR lines (found, then rectified
//! into level strips), and reads each strip twice: [`ocr`] (tesseract) and [`ocrb`]
//! (OCR-B templates). A voucher is reported only when it is sure: a wrong number
//! accepted is far worse than a number not read. [`consensus`] confirms a voucher
//! across camera frames; [`eval`] scores the scanner against a folder's [`truth`].
//! The `synth` feature adds the fixture generator.

pub mod barcode;
pub mod consensus;
pub mod eval;
pub mod line;
pub mod ocr;
pub mod ocrb;
pub mod scanner;
pub mod truth;

#[cfg(feature = "synth")]
pub mod synth;

pub use scanner::{FrameReport, Options, Scanner, ScannerError, Source, VoucherRead};
