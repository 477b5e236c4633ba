//! The two faces every scene uses: Noto Sans CJK JP for the Japanese print and OCR-B
//! for the voucher's OCR line. Loaded once per process.

use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};

use super::SynthError;

pub(crate) const NOTO_CJK: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
pub(crate) const OCR_B: &str = "/usr/share/fonts/opentype/ocr-b/OCRB.otf";

/// The face index of "Noto Sans CJK JP" inside the collection (`fc-query` lists JP,
/// KR, SC, TC, HK, then the Mono faces in that order). The JP face matters: it draws
/// the Japanese forms of kanji shared with Chinese.
const NOTO_JP_INDEX: u32 = 0;

#[derive(Debug)]
pub(crate) struct Fonts {
    pub jp: FontVec,
    pub ocrb: FontVec,
    /// The height of an OCR-B digit ('0' to '9' share it) per unit of [`PxScale`].
    pub ocr_digit_ratio: f64,
    /// The top of an OCR-B digit below the text origin's top, per unit of PxScale.
    pub ocr_digit_top_ratio: f64,
    /// OCR-B's fixed advance per unit of PxScale.
    pub ocr_advance_ratio: f64,
}

static FONTS: OnceLock<Result<Fonts, (String, String)>> = OnceLock::new();

/// The fonts, or why they cannot be loaded (the path and the reason).
pub(crate) fn fonts() -> Result<&'static Fonts, SynthError> {
    FONTS
        .get_or_init(load)
        .as_ref()
        .map_err(|(path, detail)| SynthError::Font {
            path: path.clone(),
            detail: detail.clone(),
        })
}

fn load_face(path: &str, index: u32) -> Result<FontVec, (String, String)> {
    let bytes = std::fs::read(path).map_err(|e| (path.to_owned(), e.to_string()))?;
    FontVec::try_from_vec_and_index(bytes, index).map_err(|e| (path.to_owned(), e.to_string()))
}

fn load() -> Result<Fonts, (String, String)> {
    let jp = load_face(NOTO_CJK, NOTO_JP_INDEX)?;
    let ocrb = load_face(OCR_B, 0)?;
    let bad = |what: &str| (OCR_B.to_owned(), format!("the face has no {what}"));
    // Measure the digits once at a large scale: the scene layout works in millimetres
    // and needs to know how tall a digit is for a given font size.
    let probe = 1000.0f32;
    let scaled = ocrb.as_scaled(PxScale::from(probe));
    let glyph = scaled.scaled_glyph('0');
    let advance = f64::from(scaled.h_advance(glyph.id));
    let outline = ocrb
        .outline_glyph(glyph)
        .ok_or_else(|| bad("outline for '0'"))?;
    let bounds = outline.px_bounds();
    // draw_text puts the ascent at the top of the text box; px_bounds are relative to
    // the baseline.
    let ascent = f64::from(scaled.ascent());
    Ok(Fonts {
        jp,
        ocrb,
        ocr_digit_ratio: f64::from(bounds.height()) / f64::from(probe),
        ocr_digit_top_ratio: (ascent + f64::from(bounds.min.y)) / f64::from(probe),
        ocr_advance_ratio: advance / f64::from(probe),
    })
}
