//! Tesseract, behind a trait so that the pipeline's tests can use a fake.
//!
//! One engine is kept for the scanner's life (initialising one takes ~100 ms). It reads
//! a rectified strip as a single line (PSM 7), digits only, with the LSTM engine.
//! Debian's libtesseract spins OpenMP threads unless `OMP_THREAD_LIMIT=1` is in the
//! environment when the process starts, which makes every line ~10× slower
//! (measured here: 140 ms → 12 ms per line). Setting it, or calling `omp_set_num_threads`,
//! from inside the process is too late (tried: no change), so the `vrs` command
//! restarts itself with it ([`ONE_THREAD_ENV`]) and `.cargo/config.toml` sets it for
//! tests and benchmarks.

use std::path::{Path, PathBuf};

use image::GrayImage;

/// The environment variable that keeps OpenMP to one thread, and its value.
pub const ONE_THREAD_ENV: (&str, &str) = ("OMP_THREAD_LIMIT", "1");

/// How a strip is handed to the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prep {
    /// Binarised against the local mean, at 3/4 size, with a white border.
    Binarised,
    /// As it is.
    Grey,
}

/// Reads one line of digits from a strip: the digits read, anything else dropped.
/// (The reader's own confidence is not asked for: a read counts only when it equals
/// the templates' digits.)
pub trait LineReader {
    fn read_line(&mut self, strip: &GrayImage, prep: Prep) -> Option<String>;
}

/// Why the OCR engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error(
        "no tesseract model (eng.traineddata) found in {searched}: set VRS_TESSDATA to the folder holding it, or install tesseract-ocr-eng"
    )]
    NoModel { searched: String },
    #[error("tesseract would not start with the model in {dir}: {detail}")]
    Init { dir: String, detail: String },
}

/// Where the model is looked for: `VRS_TESSDATA`, the repository's `models/tessdata`,
/// then Debian's folder.
pub fn tessdata_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("VRS_TESSDATA") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/tessdata"));
    dirs.push(PathBuf::from("/usr/share/tesseract-ocr/5/tessdata"));
    dirs
}

/// Stock tesseract, reading digits.
pub struct Tesseract {
    engine: Option<tesseract::Tesseract>,
    dir: PathBuf,
    /// White border added around a strip: tesseract finds a line better with room.
    pad: u32,
}

impl std::fmt::Debug for Tesseract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tesseract")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Tesseract {
    /// Starts an engine from the first folder in [`tessdata_dirs`] that holds the model.
    pub fn new() -> Result<Self, OcrError> {
        let dirs = tessdata_dirs();
        let dir = dirs
            .iter()
            .find(|d| d.join("eng.traineddata").is_file())
            .cloned()
            .ok_or_else(|| OcrError::NoModel {
                searched: dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let engine = Self::start(&dir)?;
        Ok(Tesseract {
            engine: Some(engine),
            dir,
            pad: 12,
        })
    }

    fn start(dir: &Path) -> Result<tesseract::Tesseract, OcrError> {
        let err = |detail: String| OcrError::Init {
            dir: dir.display().to_string(),
            detail,
        };
        let path = dir
            .to_str()
            .ok_or_else(|| err("the path is not UTF-8".into()))?;
        let mut t = tesseract::Tesseract::new_with_oem(
            Some(path),
            Some("eng"),
            tesseract::OcrEngineMode::LstmOnly,
        )
        .map_err(|e| err(e.to_string()))?
        .set_variable("tessedit_char_whitelist", "0123456789")
        .map_err(|e| err(e.to_string()))?
        // No dictionary: the line is a number, not a word.
        .set_variable("load_system_dawg", "0")
        .map_err(|e| err(e.to_string()))?
        .set_variable("load_freq_dawg", "0")
        .map_err(|e| err(e.to_string()))?;
        t.set_page_seg_mode(tesseract::PageSegMode::PsmSingleLine);
        Ok(t)
    }
}

impl LineReader for Tesseract {
    fn read_line(&mut self, strip: &GrayImage, prep: Prep) -> Option<String> {
        match prep {
            // As it is, with no border: a white border around a grey strip made
            // tesseract add and drop digits at the ends (measured on the fixtures).
            Prep::Grey => self.recognise(strip),
            Prep::Binarised => {
                // Against the local mean, as the frame was binarised: a global threshold
                // lost the digits at the dark end of a strip under a shadow or glare.
                let small = image::imageops::resize(
                    strip,
                    (strip.width() * 3 / 4).max(1),
                    (strip.height() * 3 / 4).max(1),
                    image::imageops::FilterType::Triangle,
                );
                // A strip from a dim, noisy frame (stretched to full contrast, its
                // grain with it) is smoothed first, or the specks read as digits.
                let small = if crate::scanner::is_noisy(&small) {
                    imageproc::filter::box_filter(&small, 1, 1)
                } else {
                    small
                };
                let ink = crate::line::binarise(&small);
                let pad = self.pad;
                let (w, h) = (small.width() + 2 * pad, small.height() + 2 * pad);
                let mut padded = GrayImage::from_pixel(w, h, image::Luma([255]));
                for (i, &is_ink) in ink.iter().enumerate() {
                    if is_ink {
                        let (x, y) = (i as u32 % small.width(), i as u32 / small.width());
                        padded.put_pixel(x + pad, y + pad, image::Luma([0]));
                    }
                }
                self.recognise(&padded)
            }
        }
    }
}

impl Tesseract {
    fn recognise(&mut self, img: &GrayImage) -> Option<String> {
        let (w, h) = img.dimensions();
        let engine = self.engine.take().or_else(|| Self::start(&self.dir).ok())?;
        let engine = engine.set_frame(img.as_raw(), w as i32, h as i32, 1, w as i32);
        // A failed frame consumes the engine; the next call starts another.
        let mut engine = engine.ok()?;
        let text = engine.get_text().ok();
        self.engine = Some(engine);
        Some(text?.chars().filter(char::is_ascii_digit).collect())
    }
}
