//! Barcodes by rxing, restricted to the symbologies vouchers and vaccine packs carry.
//!
//! The 2D formats are asked for one at a time (a voucher may carry a QR and an NW-7
//! at once, a pack a GS1-128 and a DataMatrix, and rxing's reader returns one symbol
//! per call); restricting the formats is what keeps an empty frame fast. The 1D
//! formats are read by our own row scan instead of rxing's "try harder": it reads every
//! 6th row in both directions (a symbol tilted up to ±15° crosses many), where rxing
//! reads every 2nd and then the whole frame again turned 90°, ~8× the work for
//! orientations a voucher under a tablet never has. NW-7 has no check character, so
//! two rows must read the same text before it counts.

use std::collections::HashSet;

use image::GrayImage;
use rxing::common::HybridBinarizer;
use rxing::oned::rss::RSS14Reader;
use rxing::oned::rss::expanded::RSSExpandedReader;
use rxing::oned::{CodaBarReader, Code128Reader, OneDReader};
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, Luma8Source, MultiFormatReader, Reader};
use serde::Serialize;

/// One decoded symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Symbol {
    /// "qr", "nw7", "gs1-128", "gs1-datamatrix", "gs1-databar", "gs1-databar-expanded".
    pub format: &'static str,
    /// The text as decoded; GS1 symbols keep their FNC1 separators as GS (0x1D).
    pub text: String,
}

/// Rows between two 1D scan lines: a symbol a tenth of the frame tall, tilted 15°,
/// is still crossed end to end by several.
const ROW_STEP: usize = 6;

/// One frame's symbols, asked for by what they are for. The frame is binarised once
/// for both.
pub struct Symbols<'a> {
    bitmap: Option<BinaryBitmap<HybridBinarizer<Luma8Source<'a>>>>,
    reader: MultiFormatReader,
}

impl std::fmt::Debug for Symbols<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbols").finish_non_exhaustive()
    }
}

impl<'a> Symbols<'a> {
    pub fn new(gray: &'a GrayImage) -> Self {
        let bitmap = (gray.width() > 0 && gray.height() > 0)
            .then(|| Luma8Source::new_with_slice(gray.as_raw(), gray.width(), gray.height()).ok())
            .flatten()
            .map(|source| BinaryBitmap::new(HybridBinarizer::new(source)));
        Symbols {
            bitmap,
            reader: MultiFormatReader::default(),
        }
    }

    /// A voucher's symbols: QR and NW-7.
    pub fn voucher(&mut self) -> Vec<Symbol> {
        let mut out = Vec::new();
        self.matrix(BarcodeFormat::QR_CODE, &mut out);
        if let Some(b) = &self.bitmap {
            scan_rows(b, Rows::Codabar, &mut out);
        }
        out
    }

    /// A vaccine pack's symbols: GS1 DataMatrix, GS1-128 and DataBar.
    pub fn label(&mut self) -> Vec<Symbol> {
        let mut out = Vec::new();
        self.matrix(BarcodeFormat::DATA_MATRIX, &mut out);
        if let Some(b) = &mut self.bitmap {
            scan_rows(b, Rows::Gs1, &mut out);
            // A GS1-128 is long and low: tilted more than a few degrees, no row crosses
            // it end to end. Lines at ±5° and ±10° do.
            if !out.iter().any(|s| s.format != "gs1-datamatrix") {
                scan_slanted(b, &mut out);
            }
        }
        out
    }

    fn matrix(&mut self, format: BarcodeFormat, out: &mut Vec<Symbol>) {
        let Some(bitmap) = &mut self.bitmap else {
            return;
        };
        let hints = DecodeHints {
            PossibleFormats: Some(HashSet::from([format])),
            TryHarder: Some(true),
            ..Default::default()
        };
        let reader = &mut self.reader;
        if let Some(found) = guarded(|| reader.decode_with_hints(bitmap, &hints)) {
            push(out, &found);
        }
    }
}

/// Every symbol of the formats we use that rxing finds in a frame.
pub fn decode(gray: &GrayImage) -> Vec<Symbol> {
    let mut symbols = Symbols::new(gray);
    let mut out = symbols.voucher();
    out.extend(symbols.label());
    out
}

/// rxing has panicked on some images before (index errors in its detectors): a
/// decoder that panics has found nothing, and the frame goes on.
fn guarded<T, E>(decode: impl FnOnce() -> Result<T, E>) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .ok()
        .and_then(Result::ok)
}

fn name(format: &BarcodeFormat) -> &'static str {
    match format {
        BarcodeFormat::QR_CODE => "qr",
        BarcodeFormat::CODABAR => "nw7",
        BarcodeFormat::CODE_128 => "gs1-128",
        BarcodeFormat::DATA_MATRIX => "gs1-datamatrix",
        BarcodeFormat::RSS_14 => "gs1-databar",
        BarcodeFormat::RSS_EXPANDED => "gs1-databar-expanded",
        _ => "other",
    }
}

fn push(out: &mut Vec<Symbol>, found: &rxing::RXingResult) {
    let format = name(found.getBarcodeFormat());
    // A Code 128 symbol is GS1-128 only when it starts with FNC1: rxing reports that in
    // the symbology identifier (]C1).
    if matches!(found.getBarcodeFormat(), BarcodeFormat::CODE_128)
        && symbology(found).is_none_or(|s| s != "]C1")
    {
        return;
    }
    // rxing gives a DataBar (Omnidirectional, Stacked) as its 14 digits alone: the
    // symbol holds nothing but a GTIN, AI 01 implied.
    let text = if matches!(found.getBarcodeFormat(), BarcodeFormat::RSS_14) {
        format!("(01){}", found.getText())
    } else {
        found.getText().to_owned()
    };
    // A GS1 symbol must hold GS1 data with a GTIN (whose check digit is then checked
    // too): a checksum that came right by chance on a dark or noisy frame rarely also
    // parses as element strings.
    if format.starts_with("gs1") && !is_gs1_with_gtin(&text, format) {
        return;
    }
    if !out.iter().any(|s| s.format == format && s.text == text) {
        out.push(Symbol { format, text });
    }
}

/// Whether a GS1 symbol's text parses as element strings that name a GTIN.
fn is_gs1_with_gtin(text: &str, format: &str) -> bool {
    let prefix = if format == "gs1-datamatrix" {
        "]d2"
    } else {
        "]C1"
    };
    vrs_domain::gs1::parse(text)
        .or_else(|_| vrs_domain::gs1::parse(&format!("{prefix}{text}")))
        .is_ok_and(|e| e.gtin.is_some())
}

/// DataBar Expanded along one line, on its own: rxing's reader keeps the rows it has
/// seen and tries to assemble stacked symbols from them, and over a frame's many rows
/// of a dark or noisy picture that assembly found symbols that were not there.
fn expanded_row(
    reader: &mut RSSExpandedReader,
    y: u32,
    row: &rxing::common::BitArray,
) -> Option<rxing::RXingResult> {
    reader.reset();
    guarded(|| reader.decode_row(y, row, &DecodeHints::default()))
}

/// Results that must be seen on two lines before they count (no check character, or
/// a weak one): the first sighting is remembered, the second returns the result.
#[derive(Default)]
struct Twice(Vec<String>);

impl Twice {
    fn confirm(&mut self, r: rxing::RXingResult) -> Option<rxing::RXingResult> {
        let text = r.getText().to_owned();
        if self.0.contains(&text) {
            Some(r)
        } else {
            self.0.push(text);
            None
        }
    }
}

/// GS1 1D symbols along slanted lines through the binarised frame.
fn scan_slanted<B: rxing::Binarizer>(bitmap: &mut BinaryBitmap<B>, out: &mut Vec<Symbol>) {
    let hints = DecodeHints::default();
    let mut code128 = Code128Reader;
    let mut rss_expanded = RSSExpandedReader::default();
    let mut expanded_seen = Twice::default();
    let (w, h) = (bitmap.get_width(), bitmap.get_height());
    let matrix = bitmap.get_black_matrix();
    for degrees in [5.0f32, -5.0, 10.0, -10.0] {
        let slope = degrees.to_radians().tan();
        let reach = (slope.abs() * w as f32).ceil() as i64;
        let (from, to) = if slope > 0.0 {
            (-reach, h as i64)
        } else {
            (0, h as i64 + reach)
        };
        // Twice the row step: a pack's symbol is far taller than a voucher's NW-7.
        for y0 in (from..to).step_by(2 * ROW_STEP) {
            let mut row = rxing::common::BitArray::with_size(w);
            for x in 0..w {
                let y = y0 + (slope * x as f32).round() as i64;
                if (0..h as i64).contains(&y) && matrix.get(x as u32, y as u32) {
                    row.set(x);
                }
            }
            let mid = y0.clamp(0, h as i64 - 1) as u32;
            for _direction in 0..2 {
                let found = guarded(|| code128.decode_row(mid, &row, &hints))
                    .filter(|r| symbology(r).is_some_and(|s| s == "]C1"))
                    .or_else(|| {
                        expanded_row(&mut rss_expanded, mid, &row)
                            .and_then(|r| expanded_seen.confirm(r))
                    });
                if let Some(r) = found {
                    push(out, &r);
                    return;
                }
                row.reverse();
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    Codabar,
    Gs1,
}

/// The 1D formats, row by row.
fn scan_rows<B: rxing::Binarizer>(bitmap: &BinaryBitmap<B>, which: Rows, out: &mut Vec<Symbol>) {
    let hints = DecodeHints::default();
    let mut codabar = CodaBarReader::default();
    let mut code128 = Code128Reader;
    let mut rss14 = RSS14Reader::default();
    let mut rss_expanded = RSSExpandedReader::default();
    let mut codabar_seen = Twice::default();
    let mut expanded_seen = Twice::default();
    let (mut have_codabar, mut have_gs1) = (which != Rows::Codabar, which != Rows::Gs1);
    // GS1 rows three times as close as a voucher's: a stacked DataBar's rows are a few pixels
    // tall, and rxing pairs its halves only when each is seen on two lines. Labels are
    // looked for only in frames without a voucher (the lot, at a session's set-up).
    let step = if which == Rows::Gs1 {
        ROW_STEP / 3
    } else {
        ROW_STEP
    };
    for y in (step / 2..bitmap.get_height()).step_by(step) {
        if have_codabar && have_gs1 {
            break;
        }
        let Ok(row) = bitmap.get_black_row(y) else {
            continue;
        };
        let mut row = row.into_owned();
        for _direction in 0..2 {
            if !have_codabar {
                if let Some(r) = guarded(|| codabar.decode_row(y as u32, &row, &hints))
                    .and_then(|r| codabar_seen.confirm(r))
                {
                    push(out, &r);
                    have_codabar = true;
                }
            }
            if !have_gs1 {
                let found = guarded(|| code128.decode_row(y as u32, &row, &hints))
                    .filter(|r| symbology(r).is_some_and(|s| s == "]C1"))
                    .or_else(|| guarded(|| rss14.decode_row(y as u32, &row, &hints)))
                    .or_else(|| {
                        expanded_row(&mut rss_expanded, y as u32, &row)
                            .and_then(|r| expanded_seen.confirm(r))
                    });
                if let Some(r) = found {
                    push(out, &r);
                    have_gs1 = true;
                }
            }
            // The same row read right to left: a symbol upside down.
            row.reverse();
        }
    }
}

fn symbology(r: &rxing::RXingResult) -> Option<String> {
    match r
        .getRXingResultMetadata()
        .get(&rxing::RXingResultMetadataType::SYMBOLOGY_IDENTIFIER)
    {
        Some(rxing::RXingResultMetadataValue::SymbologyIdentifier(s)) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gs1_symbol_counts_only_with_gs1_data_naming_a_gtin() {
        let human = "(01)04987222637138(17)250331(10)FA4597";
        let raw = "0104987222637138\u{1d}17250331\u{1d}10FA4597";
        assert!(is_gs1_with_gtin(human, "gs1-databar-expanded"));
        assert!(is_gs1_with_gtin(raw, "gs1-128"));
        assert!(is_gs1_with_gtin(raw, "gs1-datamatrix"));
        // Noise that came through a checksum: not element strings, or no GTIN, or a
        // GTIN whose check digit is wrong.
        assert!(!is_gs1_with_gtin("12345", "gs1-databar-expanded"));
        assert!(!is_gs1_with_gtin("(10)FA4597", "gs1-databar-expanded"));
        assert!(!is_gs1_with_gtin(
            "(01)04987222637139",
            "gs1-databar-expanded"
        ));
        // A DataBar's GTIN, as push() gives it.
        assert!(is_gs1_with_gtin("(01)04987222637138", "gs1-databar"));
        assert!(!is_gs1_with_gtin("04987222637138", "gs1-databar"));
    }
}
