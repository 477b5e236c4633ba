//! vrs-scan turns an image, or a stream of camera frames, into validated reads:
//! the voucher's QR or NW-7 barcode, its 18-digit OCR line, and the GS1 barcodes on
//! vaccine packaging.
//!
//! Not built yet: the scanner issue fills this crate. Until then it only compiles, so
//! that the workspace has the shape `../shared/docs/architecture.md` describes. The
//! validation it will rely on already lives in `vrs_domain` (`OcrLine`, `gs1`).
