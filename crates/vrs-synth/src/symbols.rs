//! The barcodes, encoded by rxing's writers and reduced to bare module grids (no
//! quiet zone: the layout leaves its own white margin around each symbol).

use rxing::datamatrix::encoder::SymbolShapeHint;
use rxing::{BarcodeFormat, EncodeHintValue, EncodeHints, MultiFormatWriter, Writer};

use super::SynthError;

/// Code 128's FNC1 as rxing's Code128Writer expects it in the contents; leading, it
/// makes the symbol GS1-128.
const FNC1_128: char = '\u{00f1}';
/// The separator after a variable-length AI in a GS1 DataMatrix (the writer turns it
/// into an FNC1 codeword when the GS1 hint is set).
const GS: char = '\u{1d}';

/// A symbol as modules: `bits` row by row, `cols` per row. 1-D codes have one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Modules {
    pub cols: usize,
    pub bits: Vec<bool>,
}

impl Modules {
    pub fn rows(&self) -> usize {
        self.bits.len() / self.cols.max(1)
    }
}

fn encode(
    contents: &str,
    format: BarcodeFormat,
    hints: EncodeHints,
    what: &'static str,
) -> Result<Modules, SynthError> {
    let bad = |detail: String| SynthError::Barcode { what, detail };
    // Width and height 0/1 ask the writers for one pixel per module.
    let m = MultiFormatWriter
        .encode_with_hints(contents, &format, 0, 1, &hints)
        .map_err(|e| bad(e.to_string()))?;
    let (w, h) = (m.width(), m.height());
    // Crop to the dark modules; the writers' quiet zones differ by symbology.
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if m.get(x, y) {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
        }
    }
    if x0 > x1 || y0 > y1 {
        return Err(bad("the writer produced an empty symbol".into()));
    }
    // A 1-D writer repeats its one row up to the requested height; keep one.
    let one_d = matches!(format, BarcodeFormat::CODABAR | BarcodeFormat::CODE_128);
    if one_d {
        y1 = y0;
    }
    let cols = (x1 - x0 + 1) as usize;
    let mut bits = Vec::with_capacity(cols * (y1 - y0 + 1) as usize);
    for y in y0..=y1 {
        for x in x0..=x1 {
            bits.push(m.get(x, y));
        }
    }
    Ok(Modules { cols, bits })
}

/// The voucher's QR code (Model 2, level M): the 18 digits of the OCR line.
pub(crate) fn qr(digits: &str) -> Result<Modules, SynthError> {
    let hints = EncodeHints::default()
        .with(EncodeHintValue::ErrorCorrection("M".into()))
        .with(EncodeHintValue::Margin("0".into()));
    encode(digits, BarcodeFormat::QR_CODE, hints, "QR code")
}

/// The voucher's NW-7 (Codabar): the 10-digit 券番号 between start/stop `guard`
/// characters (A to D). rxing's writer draws wide elements two modules wide; printers
/// of vouchers use ratios up to 3:1, so with `wide3` each wide element becomes three.
pub(crate) fn nw7(number: &str, guard: char, wide3: bool) -> Result<Modules, SynthError> {
    let contents = format!("{guard}{number}{guard}");
    let m = encode(
        &contents,
        BarcodeFormat::CODABAR,
        EncodeHints::default(),
        "NW-7 barcode",
    )?;
    if !wide3 {
        return Ok(m);
    }
    let mut bits = Vec::with_capacity(m.bits.len() * 5 / 4);
    for run in m.bits.chunk_by(|a, b| a == b) {
        let n = if run.len() == 2 { 3 } else { run.len() };
        bits.extend(std::iter::repeat_n(run[0], n));
    }
    Ok(Modules {
        cols: bits.len(),
        bits,
    })
}

/// The element string of a vaccine label, AIs (01) (17) (10) in that order; the lot is
/// last, so it needs no separator after it.
pub(crate) fn gs1_elements(gtin: &str, expiry_yymmdd: &str, lot: &str) -> String {
    format!("01{gtin}17{expiry_yymmdd}10{lot}")
}

pub(crate) fn gs1_128(elements: &str) -> Result<Modules, SynthError> {
    let contents = format!("{FNC1_128}{elements}");
    encode(
        &contents,
        BarcodeFormat::CODE_128,
        EncodeHints::default(),
        "GS1-128 barcode",
    )
}

pub(crate) fn gs1_datamatrix(elements: &str) -> Result<Modules, SynthError> {
    debug_assert!(
        !elements.contains(GS),
        "the lot is last: no separator needed"
    );
    // The compact (minimal) encoder is the one that honours the GS1 hint: it writes
    // the leading FNC1 and turns GS into FNC1.
    let hints = EncodeHints::default()
        .with(EncodeHintValue::Gs1Format(true))
        .with(EncodeHintValue::DataMatrixCompact(true))
        .with(EncodeHintValue::DataMatrixShape(
            SymbolShapeHint::FORCE_SQUARE,
        ))
        .with(EncodeHintValue::Margin("0".into()));
    encode(
        elements,
        BarcodeFormat::DATA_MATRIX,
        hints,
        "GS1 DataMatrix",
    )
}
