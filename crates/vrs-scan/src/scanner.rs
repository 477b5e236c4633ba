//! One frame in, one report out: the voucher (when sure), the vaccine label, the raw
//! symbols and the time taken.
//!
//! How a voucher is decided:
//! - a QR holding 18 digits that validate as an OCR line is the voucher (QR carries its
//!   own error correction);
//! - otherwise the OCR line is found and read by the OCR-B templates cell by cell; it
//!   counts only when every cell's template wins by a clear margin, the digits
//!   validate (municipality check digit, dose 1..9), and tesseract reads the same
//!   digits in the cells the templates could confuse (at least three; the whole line
//!   when a few cells alone do not agree);
//! - an NW-7 symbol holds only the 券番号: it confirms an OCR read that agrees with it,
//!   and a read that disagrees is thrown away (two readings of one voucher that differ
//!   mean one of them is wrong, and we cannot tell which).

use std::time::Instant;

use image::{DynamicImage, GrayImage};
use serde::Serialize;
use vrs_domain::gs1::{self, VaccineLabel};
use vrs_domain::ids::OcrLine;

use crate::barcode::{self, Symbol};
use crate::line::{self, Candidate, Pyramid};
use crate::ocr::{LineReader, OcrError, Prep, Tesseract};
use crate::ocrb::{CellMatch, Plane, TemplateError, Templates};

/// Where a voucher read came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    #[serde(rename = "ocr")]
    Ocr,
    #[serde(rename = "qr")]
    Qr,
    #[serde(rename = "nw7+ocr")]
    Nw7Ocr,
}

/// A voucher the scanner is sure of.
#[derive(Clone, Debug, PartialEq)]
pub struct VoucherRead {
    pub line: OcrLine,
    pub source: Source,
    /// 1.0 for a QR; for an OCR read, the smallest margin by which a cell's template
    /// beat the runner-up, scaled so that the acceptance threshold is 0.5 (0.5..1.0).
    pub confidence: f32,
    /// Where the OCR line is in the frame (corners clockwise from top-left), when it was
    /// read by OCR.
    pub quad: Option<[(f32, f32); 4]>,
}

/// What one frame gave.
#[derive(Clone, Debug, Default)]
pub struct FrameReport {
    pub voucher: Option<VoucherRead>,
    pub lot: Option<VaccineLabel>,
    pub symbols: Vec<Symbol>,
    /// Milliseconds spent on the frame (decoding the file not included).
    pub ms: f64,
    /// The same, by stage.
    pub stages: Stages,
}

/// Thresholds, chosen from the fixture measurements (see the crate's README figures).
#[derive(Clone, Debug)]
pub struct Options {
    /// Look for barcodes.
    pub barcodes: bool,
    /// Look for vouchers (QR, NW-7, the OCR line).
    pub vouchers: bool,
    /// Look for vaccine labels (GS1), in frames without a voucher.
    pub labels: bool,
    /// Look for the OCR line.
    pub ocr: bool,
    /// At most this many candidate lines are read per frame.
    pub max_candidates: usize,
    /// A cell's best template must correlate at least this well…
    pub min_score: f32,
    /// …and beat the second best by this much.
    pub min_margin: f32,
    /// A cell whose best template correlates at least this well and beats every other
    /// digit by [`Options::plain_margin`] is one the templates cannot confuse: the
    /// second reader is asked only about the others (see [`Scanner::read_candidate`]).
    pub plain_score: f32,
    pub plain_margin: f32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            barcodes: true,
            vouchers: true,
            labels: true,
            ocr: true,
            max_candidates: 4,
            min_score: 0.55,
            min_margin: 0.06,
            plain_score: 0.8,
            plain_margin: 0.2,
        }
    }
}

/// Why a scanner could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScannerError {
    #[error(transparent)]
    Ocr(#[from] OcrError),
    #[error(transparent)]
    Templates(#[from] TemplateError),
}

/// The scanner: keep one per thread (the OCR engine is costly to start).
#[derive(Debug)]
pub struct Scanner<R: LineReader = Tesseract> {
    reader: R,
    templates: Templates,
    pub options: Options,
}

impl Scanner<Tesseract> {
    /// A scanner with stock tesseract and the built-in templates.
    pub fn new() -> Result<Self, ScannerError> {
        Ok(Scanner::with_reader(Tesseract::new()?)?)
    }
}

/// The templates' reading of a candidate's 18 cells.
struct Cells {
    cells: Vec<CellMatch>,
    pitch: f32,
    /// Placed by the walk ([`Templates::read_cells_walking`]) rather than equally
    /// spaced: then only tesseract's reading of the whole strip may confirm them, never
    /// a strip cut from the cells' own places (a walk that strayed onto the stem of a
    /// 7 reads it as a 1, and so does tesseract given only that stem).
    walked: bool,
}

/// The OCR reading of one candidate, kept for diagnostics.
#[derive(Clone, Debug)]
pub struct LineAttempt {
    pub template_digits: String,
    pub cells: Vec<CellMatch>,
    pub tesseract: Option<String>,
    pub accepted: bool,
}

impl<R: LineReader> Scanner<R> {
    pub fn with_reader(reader: R) -> Result<Self, TemplateError> {
        Ok(Scanner {
            reader,
            templates: Templates::builtin()?,
            options: Options::default(),
        })
    }

    /// Scans a decoded image.
    pub fn scan(&mut self, img: &DynamicImage) -> FrameReport {
        let start = Instant::now();
        // Barcodes are read in luminance (a label's bars against a coloured box read
        // worse in the brightest channel: measured), the OCR line in ink grey.
        let (luma, ink) = planes(img);
        let mut report = self.scan_planes(&luma, &ink);
        report.ms = start.elapsed().as_secs_f64() * 1e3;
        report
    }

    /// Scans a grey frame.
    pub fn scan_gray(&mut self, gray: &GrayImage) -> FrameReport {
        self.scan_planes(gray, gray)
    }

    /// Scans a frame given as the grey its barcodes are read in and the grey its
    /// OCR line is read in (the same size).
    fn scan_planes(&mut self, bars: &GrayImage, gray: &GrayImage) -> FrameReport {
        let start = Instant::now();
        // A frame far larger than a camera's (a photo from a phone, say) is read at
        // 4096 px on its long side: memory stays bounded.
        let long = gray.width().max(gray.height());
        let full = if long > MAX_SIDE {
            let f = MAX_SIDE as f32 / long as f32;
            image::imageops::resize(
                gray,
                ((gray.width() as f32 * f) as u32).max(1),
                ((gray.height() as f32 * f) as u32).max(1),
                image::imageops::FilterType::Triangle,
            )
        } else {
            gray.clone()
        };
        let mut stages = Stages::default();
        // Sensor noise in a dim room breaks the ink into specks and the strips into
        // grain: a noisy frame (against its brightness) is smoothed once, before
        // anything is found or read in it.
        let full = if is_noisy(&full) {
            imageproc::filter::box_filter(&full, 1, 1)
        } else {
            full
        };
        let pyr_full = Pyramid::new(full, 480);
        let t = Instant::now();
        // Barcodes are read halved to no more than BARCODE_SIDE: a 4K frame's symbols
        // are large, and rxing's cost grows with the pixels.
        let mut bars = std::borrow::Cow::Borrowed(bars);
        while bars.width().max(bars.height()) > BARCODE_SIDE {
            bars = std::borrow::Cow::Owned(line::halve(&bars));
        }
        let mut found = barcode::Symbols::new(&bars);
        let mut symbols = if self.options.barcodes && self.options.vouchers {
            found.voucher()
        } else {
            Vec::new()
        };
        stages.barcodes += t.elapsed().as_secs_f64() * 1e3;
        let qr = symbols
            .iter()
            .filter(|s| s.format == "qr")
            .find_map(|s| qr_line(&s.text));
        let nw7 = symbols.iter().any(|s| s.format == "nw7");
        let voucher = if let Some(line) = qr {
            Some(VoucherRead {
                line,
                source: Source::Qr,
                confidence: 1.0,
                quad: None,
            })
        } else if self.options.ocr && self.options.vouchers {
            self.read_ocr(&pyr_full, &mut stages).map(|read| {
                if nw7 {
                    VoucherRead {
                        source: Source::Nw7Ocr,
                        ..read
                    }
                } else {
                    read
                }
            })
        } else {
            None
        };
        // Every voucher symbol in the frame must agree with the line chosen: a QR or an
        // NW-7 of another voucher (two on the desk), or a QR whose digits do not
        // validate, means we cannot tell which voucher is meant.
        let voucher = voucher.filter(|v| symbols_agree(&symbols, &v.line));
        // Labels are looked for only in frames without a voucher: a nurse scans the lot
        // at the session's set-up and vouchers after it, and DataMatrix with rxing's
        // "try harder" (needed for tilted symbols) costs ~4 ms a frame.
        let t = Instant::now();
        if self.options.barcodes && self.options.labels && voucher.is_none() {
            symbols.extend(found.label());
        }
        stages.barcodes += t.elapsed().as_secs_f64() * 1e3;
        let lot = label(&symbols);
        FrameReport {
            voucher,
            lot,
            symbols,
            ms: start.elapsed().as_secs_f64() * 1e3,
            stages,
        }
    }

    /// The OCR line: found on a reduced image where that is enough, at every
    /// orientation, each candidate read both ways up.
    fn read_ocr(&mut self, pyr: &Pyramid, stages: &mut Stages) -> Option<VoucherRead> {
        let t = Instant::now();
        // The finder works on the finest level no larger than FINDER_SIDE (digits of
        // 9 to 64 px there) and on the level below it (twice that).
        let first = pyr
            .levels
            .iter()
            .position(|l| l.width().max(l.height()) <= FINDER_SIDE)
            .unwrap_or(pyr.levels.len() - 1);
        stages.find += t.elapsed().as_secs_f64() * 1e3;
        // Coarse first: most lines are found there, at a quarter of the cost; small
        // digits (under 18 frame pixels) need the finer one.
        let coarse = (first + 1).min(pyr.levels.len() - 1);
        let order = if coarse > first {
            vec![coarse, first]
        } else {
            vec![first]
        };
        let mut found: Option<VoucherRead> = None;
        for level in order {
            let t = Instant::now();
            // After a read on the coarse level, the fine one is searched only for
            // lines too small to have been seen there.
            let max_digit_h = if found.is_some() {
                line::MIN_DIGIT_H as f32 * 1.5 * (1 << coarse) as f32
            } else {
                f32::MAX
            };
            let candidates = line::find_in(pyr, level, self.options.max_candidates, max_digit_h);
            stages.find += t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            if let Some(v) = &found {
                // A line read on the coarse level: the fine one is still looked at, for
                // a second voucher whose digits are too small to be seen there.
                let veto = self.vetoed(&candidates, v);
                stages.read += t.elapsed().as_secs_f64() * 1e3;
                return (!veto).then(|| v.clone());
            }
            let decision = self.decide(&candidates);
            stages.read += t.elapsed().as_secs_f64() * 1e3;
            match decision {
                Decision::Read(v) => found = Some(v),
                Decision::Veto => return None,
                Decision::Nothing => {}
            }
        }
        found
    }

    /// Whether any candidate elsewhere than `found`'s line looks like another
    /// voucher's line.
    fn vetoed(&self, candidates: &[Candidate], found: &VoucherRead) -> bool {
        let want = found.line.to_string();
        let Some(q) = found.quad else {
            return false;
        };
        let h = (q[3].0 - q[0].0).hypot(q[3].1 - q[0].1);
        candidates
            .iter()
            .filter(|c| !same_place(&q, h, &c.quad, c.digit_h))
            .any(|c| {
                let squeezed = self.unforeshortened(c);
                self.another_line(squeezed.as_ref().unwrap_or(c), &want)
            })
    }

    /// Whether a candidate is a line of other digits than `want`, read either way up.
    /// A candidate that reads as `want` one way is that voucher again (a copy beside
    /// it), whatever its other way up looks like.
    fn another_line(&self, c: &Candidate, want: &str) -> bool {
        let readings: Vec<Vec<CellMatch>> = [c.clone(), upside_down(c)]
            .iter()
            .map(|w| self.template_cells(w).cells)
            .collect();
        !readings.iter().any(|r| cell_digits(r) == want)
            && readings
                .iter()
                .any(|r| self.looks_like_another_line(r, want))
    }

    /// A line seen from a steep angle (a tablet tilted 30–45° over the desk) is
    /// foreshortened across it: in the strip, which is scaled to the digits' height,
    /// its digits and their spacing come out wider than OCR-B's (pitch up to 1.5× the
    /// templates'), and the templates and tesseract both read it badly. Such a strip
    /// is squeezed along the line until its pitch is the templates' again; a strip
    /// whose pitch is already near theirs is left as it is (None).
    fn unforeshortened(&self, c: &Candidate) -> Option<Candidate> {
        let t = &self.templates;
        let (ink_w, cell_w) = (t.mean_ink_width(), t.cell_w() as f32);
        let ratio = (c.ink_right - c.ink_left - ink_w) / 17.0 / cell_w;
        if !(FORESHORTENED_FROM..=FORESHORTENED_TO).contains(&ratio) {
            return None;
        }
        let span = c.ink_right - c.ink_left;
        // The squeeze that gives 17 pitches of the templates' and one digit's ink.
        let f = (17.0 * cell_w + ink_w) / span;
        let w = ((c.strip.width() as f32 * f).round() as u32).max(1);
        let strip = image::imageops::resize(
            &c.strip,
            w,
            c.strip.height(),
            image::imageops::FilterType::Triangle,
        );
        Some(Candidate {
            strip,
            ink_left: c.ink_left * f,
            ink_right: c.ink_right * f,
            ..c.clone()
        })
    }

    /// One voucher from a frame's candidate lines, or a veto when two lines with
    /// different digits are in view.
    fn decide(&mut self, candidates: &[Candidate]) -> Decision {
        let mut found: Option<(VoucherRead, &Candidate)> = None;
        for c in candidates {
            let squeezed = self.unforeshortened(c);
            let strip_of = squeezed.as_ref().unwrap_or(c);
            if let Some((f, fc)) = &found {
                // The same line seen again (a shorter or longer chain of it) says
                // nothing new.
                if same_place(&fc.quad, fc.digit_h, &c.quad, c.digit_h) {
                    continue;
                }
                // Another line the templates are sure of, or nearly, with other digits
                // (either way up): two vouchers in view, and we cannot tell which one
                // is meant.
                if self.another_line(strip_of, &f.line.to_string()) {
                    return Decision::Veto;
                }
                continue;
            }
            // Which way up: the one whose cells the templates are sure of, upright
            // looked at first (the usual way a voucher lies).
            let ways = [strip_of.clone(), upside_down(strip_of)];
            let Some((cand, cells)) = ways.iter().find_map(|w| {
                let cells = self.template_cells(w);
                self.sure_digits(&cells.cells)
                    .is_some()
                    .then_some((w, cells))
            }) else {
                continue;
            };
            let attempt = self.read_with_cells(cand, cells);
            if !attempt.accepted {
                continue;
            }
            let min_margin = attempt
                .cells
                .iter()
                .map(|c| c.margin)
                .fold(f32::MAX, f32::min);
            if let Ok(line) = attempt.template_digits.parse() {
                found = Some((
                    VoucherRead {
                        line,
                        source: Source::Ocr,
                        confidence: (0.5 * min_margin / self.options.min_margin).min(1.0),
                        quad: Some(cand.quad),
                    },
                    c,
                ));
            }
        }
        match found {
            Some((v, _)) => Decision::Read(v),
            None => Decision::Nothing,
        }
    }

    /// A second line that is an OCR line of other digits, by the templates: most of its
    /// cells a clear win, the municipality's check digit right, the dose 1..9. Looser
    /// than a read (the read is vetoed, not made, on it).
    fn looks_like_another_line(&self, cells: &[CellMatch], found: &str) -> bool {
        if cells.len() != 18 {
            return false;
        }
        let clear = cells
            .iter()
            .filter(|m| {
                m.score >= self.options.min_score && m.margin >= self.options.min_margin / 2.0
            })
            .count();
        let digits = cell_digits(cells);
        clear >= 15 && digits != found && digits.parse::<OcrLine>().is_ok()
    }

    /// The templates' reading of a candidate's 18 cells (empty when the line's length
    /// cannot be 18 OCR-B digits), and the pitch used.
    fn template_cells(&self, c: &Candidate) -> Cells {
        let t = &self.templates;
        // 18 cells between the ink's ends: the first digit's ink starts a little into its
        // cell, the last one's ends a little before its cell's end.
        let ink_w = t.mean_ink_width();
        let lead = (t.cell_w() as f32 - ink_w) / 2.0;
        let pitch = (c.ink_right - c.ink_left - ink_w) / 17.0;
        let ratio = pitch / t.cell_w() as f32;
        let found = |cells, walked| Cells {
            cells,
            pitch,
            walked,
        };
        if !(0.75..=1.3).contains(&ratio) {
            return found(Vec::new(), false);
        }
        let left = c.ink_left - lead * ratio;
        // The strip blurred once, for both readings below.
        let plane = Plane::blurred(&c.strip);
        let cells = t.read_cells(&plane, left, pitch, 18);
        if self.sure_digits(&cells).is_some() {
            return found(cells, false);
        }
        // Equally spaced cells that are not all sure, but enough of them to be OCR-B
        // digits (the near end of a line whose pitch changes along it): walk the line
        // cell by cell. Other text (most candidates) is not walked.
        let o = &self.options;
        let clear = cells
            .iter()
            .filter(|m| m.score >= o.min_score && m.margin >= o.min_margin)
            .count();
        if clear < cells.len() / 6 {
            return found(cells, false);
        }
        let walked = t.read_cells_walking(&plane, left, pitch, 18);
        if self.sure_digits(&walked).is_some() {
            return found(walked, true);
        }
        found(cells, false)
    }

    /// The digits, when every cell is a clear win and they validate as an OCR line.
    /// A cell that matches far worse than its neighbours and only narrowly beats
    /// another digit is not a clear win, however well it scores alone: neighbouring
    /// digits are the same print at nearly the same scale (perspective changes the
    /// score along a line only gradually), so that cell is distorted (a crease, glare,
    /// a stroke) and both readers can be led to the same wrong digit by it (seen: the
    /// last 3 of a creased line under glare read as 5 by the templates and by
    /// tesseract).
    fn sure_digits(&self, cells: &[CellMatch]) -> Option<String> {
        let o = &self.options;
        let sure = cells.len() == 18
            && cells.iter().enumerate().all(|(i, m)| {
                m.score >= o.min_score
                    && m.margin >= o.min_margin
                    && !(m.margin < o.plain_margin / 2.0
                        && m.score < neighbours_score(cells, i) - OUTLIER_SCORE)
            });
        let digits = cell_digits(cells);
        (sure && digits.parse::<OcrLine>().is_ok()).then_some(digits)
    }

    /// The cells tesseract must confirm: those the templates could confuse (below
    /// [`Options::plain_score`] or [`Options::plain_margin`]), or the least certain one
    /// when there is none (the second reader always has its say), with their
    /// neighbours added until there are at least [`MIN_GROUP`] (tesseract reads one or
    /// two lone digits less well than a few), in line order.
    fn cells_to_confirm(&self, cells: &[CellMatch]) -> Vec<usize> {
        let o = &self.options;
        let mut weak: Vec<usize> = (0..cells.len())
            .filter(|&i| cells[i].score < o.plain_score || cells[i].margin < o.plain_margin)
            .collect();
        if weak.is_empty() {
            weak.extend(
                (0..cells.len()).min_by(|&a, &b| cells[a].margin.total_cmp(&cells[b].margin)),
            );
        }
        let mut pick = vec![false; cells.len()];
        let mut reach = 0;
        while pick.iter().filter(|&&p| p).count() < MIN_GROUP.min(cells.len()) {
            for &i in &weak {
                pick[i.saturating_sub(reach)] = true;
                pick[(i + reach).min(cells.len() - 1)] = true;
            }
            reach += 1;
        }
        (0..cells.len()).filter(|&i| pick[i]).collect()
    }

    /// Reads one candidate line both ways.
    pub fn read_candidate(&mut self, c: &Candidate) -> LineAttempt {
        let cells = self.template_cells(c);
        self.read_with_cells(c, cells)
    }

    /// [`Scanner::read_candidate`] with the templates' cells already read.
    fn read_with_cells(
        &mut self,
        c: &Candidate,
        Cells {
            cells,
            pitch,
            walked,
        }: Cells,
    ) -> LineAttempt {
        let sure = self.sure_digits(&cells);
        let mut attempt = LineAttempt {
            template_digits: cell_digits(&cells),
            cells,
            tesseract: None,
            accepted: false,
        };
        // Tesseract runs only on a line the templates are sure of and that validates:
        // it is the costly reader, and it can only confirm.
        if sure.is_none() {
            return attempt;
        }
        // First only the cells the templates could confuse (OCR-B's 3, 8, 9, 6, 0 and
        // 1, 4, 7 are near one another; a cell crossed by a stroke or blurred scores
        // low): tesseract reads them as a short spaced strip, which costs a fraction
        // of the whole line (its LSTM's time grows with the strip's width). A cell
        // that correlates well with its template and is far from every other digit
        // needs no second opinion (a line with no such cell still has its least
        // certain cells confirmed). When the short strip does not agree, the whole
        // line is read below as before.
        let confirm = self.cells_to_confirm(&attempt.cells);
        if !walked && confirm.len() < attempt.cells.len() / 2 {
            let group: Vec<CellMatch> = confirm.iter().map(|&i| attempt.cells[i]).collect();
            let expect = cell_digits(&group);
            let strip = spaced_cells(&c.strip, &group, pitch);
            let read = [Prep::Grey, Prep::Binarised]
                .into_iter()
                .filter_map(|prep| self.reader.read_line(&strip, prep))
                .find(|t| *t == expect);
            if read.is_some() {
                attempt.accepted = true;
                attempt.tesseract = read;
                return attempt;
            }
        }
        // Tesseract's failures on one preparation of a strip are not its failures on
        // another (binarised: a small 1 read as 4; grey: a blurred 1 read as two
        // digits; blur running digits together: some dropped), so it is given the
        // strip up to four ways, stopping at the first that agrees. Each must
        // reproduce all 18 template digits by itself; nothing is mixed.
        let agrees = |t: &Option<String>| t.as_deref() == Some(attempt.template_digits.as_str());
        let mut text = None;
        // The spaced strip is made only when the strip as it is failed both ways.
        let mut spaced = None;
        for (is_spaced, prep) in [
            (false, Prep::Grey),
            (false, Prep::Binarised),
            (true, Prep::Grey),
            (true, Prep::Binarised),
        ] {
            if is_spaced && walked {
                break;
            }
            let strip = if is_spaced {
                &*spaced.get_or_insert_with(|| spaced_cells(&c.strip, &attempt.cells, pitch))
            } else {
                &c.strip
            };
            let t = self.reader.read_line(strip, prep);
            let done = agrees(&t);
            if t.is_some() {
                text = t;
            }
            if done {
                break;
            }
        }
        // Last, a few cells at a time (six, then three): tesseract drops and doubles
        // digits most in long runs of narrow ones (111…), and a short line leaves it
        // less to get wrong. Every group must give exactly its own template digits,
        // grey or binarised; one group that does not fails the whole line.
        for size in [6, 3] {
            if agrees(&text) || walked {
                break;
            }
            let want: Vec<char> = attempt.template_digits.chars().collect();
            let mut all = String::new();
            let mut ok = true;
            for (g, group) in attempt.cells.chunks(size).enumerate() {
                let expect: String = want[g * size..g * size + group.len()].iter().collect();
                let strip = spaced_cells(&c.strip, group, pitch);
                let read = [Prep::Grey, Prep::Binarised]
                    .into_iter()
                    .filter_map(|prep| self.reader.read_line(&strip, prep))
                    .find(|t| *t == expect);
                match read {
                    Some(t) => all.push_str(&t),
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                text = Some(all);
            }
        }
        attempt.accepted = agrees(&text);
        attempt.tesseract = text;
        attempt
    }
}

/// The strip again with a gap of half a pitch between the cells the templates found:
/// digits that blur ran together come apart for tesseract.
fn spaced_cells(strip: &GrayImage, cells: &[CellMatch], pitch: f32) -> GrayImage {
    let p = pitch.round().max(1.0) as u32;
    let gap = p / 2;
    let w = cells.len() as u32 * (p + gap) + gap;
    // Gaps the colour of the paper: a white gap on grey paper is an edge to tesseract.
    let mut levels: Vec<u8> = strip.as_raw().clone();
    levels.sort_unstable();
    let paper = levels[levels.len() * 3 / 4];
    let mut out = GrayImage::from_pixel(w, strip.height(), image::Luma([paper]));
    for (i, cell) in cells.iter().enumerate() {
        let x0 = gap + i as u32 * (p + gap);
        let src = cell.left.round() as i64;
        for x in 0..p {
            let sx = src + i64::from(x);
            if sx < 0 || sx >= i64::from(strip.width()) {
                continue;
            }
            for y in 0..strip.height() {
                out.put_pixel(x0 + x, y, *strip.get_pixel(sx as u32, y));
            }
        }
    }
    out
}

/// The fewest cells tesseract is given to confirm at once.
const MIN_GROUP: usize = 3;

/// How far below its neighbours' median template score a narrowly won cell may fall
/// and still be read ([`Scanner::sure_digits`]).
const OUTLIER_SCORE: f32 = 0.12;

/// The median template score of the cells up to three either side of cell `i`.
fn neighbours_score(cells: &[CellMatch], i: usize) -> f32 {
    let mut near: Vec<f32> = (i.saturating_sub(3)..(i + 4).min(cells.len()))
        .filter(|&j| j != i)
        .map(|j| cells[j].score)
        .collect();
    near.sort_by(f32::total_cmp);
    near.get(near.len() / 2).copied().unwrap_or(0.0)
}

/// Frames larger than this on their long side are scaled down before reading.
pub const MAX_SIDE: u32 = 4096;

/// The finder starts on the pyramid level no larger than this on its long side.
const FINDER_SIDE: u32 = 1920;

/// A strip's pitch against the templates' beyond which its line is taken to be
/// foreshortened by a steep view (a flat view gives 0.9–1.1), and the most a view
/// of 45° and some slack give.
const FORESHORTENED_FROM: f32 = 1.2;
const FORESHORTENED_TO: f32 = 1.75;

/// Barcodes are read on the pyramid level no larger than this on its long side.
const BARCODE_SIDE: u32 = 1920;

/// The digits the templates read, cell by cell.
fn cell_digits(cells: &[CellMatch]) -> String {
    cells.iter().map(|m| char::from(b'0' + m.digit)).collect()
}

/// What the candidates of one level gave.
enum Decision {
    Read(VoucherRead),
    Veto,
    Nothing,
}

/// A frame's two greys: its luminance (Rec. 709, as `image` weighs it, in integers:
/// `image`'s own conversion goes through floats and took a tenth of a frame's time),
/// in which barcodes are read, and its ink grey, in which the OCR line is.
///
/// The ink grey is each pixel's brightest channel: print is black, nearly grey
/// whatever the light's cast, and stays dark; a red stamp or a red pen over the digits
/// is bright in its own channel and comes out nearly as light as the paper. A blue
/// ballpoint is dark navy, its brightest channel far below the paper, but strongly
/// saturated: a pixel whose brightest channel is not red is lifted by three times its
/// saturation (max − min) above [`SAT_FLOOR`]. (Black print under a red stamp is dark
/// red, and must not be lifted.) The floor keeps a warm cast, chroma noise and a screen's faint
/// moiré from lifting print; a screen whose sub-pixels show ([`sub_pixels`]) is not
/// lifted at all.
fn planes(img: &DynamicImage) -> (GrayImage, GrayImage) {
    let converted;
    let rgb = match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageLuma8(g) => return (g.clone(), g.clone()),
        _ => {
            converted = img.to_rgb8();
            &converted
        }
    };
    let (w, h) = rgb.dimensions();
    let n = rgb.as_raw().len() / 3;
    let (mut luma, mut ink) = (vec![0u8; n], vec![0u8; n]);
    let lift = if sub_pixels(rgb) { 0 } else { 3 };
    for ((c, l), k) in rgb.as_raw().chunks_exact(3).zip(&mut luma).zip(&mut ink) {
        let (r, g, b) = (u16::from(c[0]), u16::from(c[1]), u16::from(c[2]));
        // 54 + 183 + 19 = 256: the sum fits 16 bits (255 · 256 + 128 < 65536).
        *l = ((54 * r + 183 * g + 19 * b + 128) >> 8) as u8;
        let (hi, lo) = (c[0].max(c[1]).max(c[2]), c[0].min(c[1]).min(c[2]));
        // Red (a stamp, a red pen) is bright in its own channel already, and black
        // print under a red stamp is dark red: only bluish and greenish ink is lifted.
        let sat = if c[0] < hi {
            (hi - lo).saturating_sub(SAT_FLOOR)
        } else {
            0
        };
        *k = (u16::from(hi) + lift * u16::from(sat)).min(255) as u8;
    }
    (
        GrayImage::from_raw(w, h, luma).unwrap_or_default(),
        GrayImage::from_raw(w, h, ink).unwrap_or_default(),
    )
}

/// Saturation below which a pixel's colour does not lift its ink grey (measured on
/// the desk set: 48 kept pen strokes lifted and screens' moiré not).
const SAT_FLOOR: u8 = 48;

/// Whether a frame's colour is mostly a display's red, green and blue sub-pixels (a
/// voucher shown on a phone): each pixel saturated, the mean of a 4×4 block of them
/// far less so. On paper a colour is the ink's or the light's, the same over a few
/// pixels. Measured on every 4th block each way.
fn sub_pixels(rgb: &image::RgbImage) -> bool {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let raw = rgb.as_raw();
    let (mut pixel_sat, mut block_sat, mut blocks) = (0u64, 0u64, 0u64);
    for by in (0..h / 4).step_by(4) {
        for bx in (0..w / 4).step_by(4) {
            let mut sum = [0u32; 3];
            for y in 4 * by..4 * by + 4 {
                for x in 4 * bx..4 * bx + 4 {
                    let c = &raw[3 * (y * w + x)..3 * (y * w + x) + 3];
                    pixel_sat += u64::from(c[0].max(c[1]).max(c[2]) - c[0].min(c[1]).min(c[2]));
                    for (acc, &v) in sum.iter_mut().zip(c) {
                        *acc += u32::from(v);
                    }
                }
            }
            let (hi, lo) = (sum.iter().max(), sum.iter().min());
            block_sat += hi.zip(lo).map_or(0, |(hi, lo)| u64::from(hi - lo));
            blocks += 1;
        }
    }
    // Means per pixel (block_sat is over sums of 16): more than twice the block's,
    // and clearly more than sensor noise gives a grey frame.
    blocks > 0 && pixel_sat > 2 * block_sat + 10 * 16 * blocks
}

/// Whether a frame's pixel-to-pixel noise is large against its brightness (a dim room,
/// a small sensor at high gain).
pub(crate) fn is_noisy(img: &GrayImage) -> bool {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 8 || h < 8 {
        return false;
    }
    let raw = img.as_raw();
    let mut diffs = [0u32; 256];
    let mut levels = [0u32; 256];
    for y in (1..h - 1).step_by(7) {
        for x in (1..w - 1).step_by(3) {
            let p = raw[y * w + x];
            diffs[usize::from(p.abs_diff(raw[y * w + x + 1]))] += 1;
            levels[usize::from(p)] += 1;
        }
    }
    let median = |hist: &[u32; 256]| {
        let total: u32 = hist.iter().sum();
        let mut acc = 0;
        for (v, n) in hist.iter().enumerate() {
            acc += n;
            if acc * 2 >= total {
                return v as f32;
            }
        }
        255.0
    };
    median(&diffs) > 0.05 * median(&levels) + 2.0
}

/// The candidate turned 180°: its strip rotated, its ends and corners swapped.
fn upside_down(c: &Candidate) -> Candidate {
    let w = c.strip.width() as f32;
    let [tl, tr, br, bl] = c.quad;
    Candidate {
        strip: image::imageops::rotate180(&c.strip),
        ink_left: w - c.ink_right,
        ink_right: w - c.ink_left,
        quad: [br, bl, tl, tr],
        ..c.clone()
    }
}

/// Whether two lines (corners clockwise from top-left, digit heights) are the same
/// stretch of the frame: one line found twice.
fn same_place(a: &[(f32, f32); 4], ha: f32, b: &[(f32, f32); 4], hb: f32) -> bool {
    let mid = |q: &[(f32, f32); 4]| {
        (
            q.iter().map(|p| p.0).sum::<f32>() / 4.0,
            q.iter().map(|p| p.1).sum::<f32>() / 4.0,
        )
    };
    let (ma, mb) = (mid(a), mid(b));
    let len = |q: &[(f32, f32); 4]| (q[1].0 - q[0].0).hypot(q[1].1 - q[0].1);
    let h = ha.max(hb);
    // Middles within half a line's length along it and a digit height across: one line.
    let (dx, dy) = (mb.0 - ma.0, mb.1 - ma.1);
    let la = len(a).max(1.0);
    let dir = ((a[1].0 - a[0].0) / la, (a[1].1 - a[0].1) / la);
    let along = (dx * dir.0 + dy * dir.1).abs();
    let across = (-dx * dir.1 + dy * dir.0).abs();
    along < 0.5 * la.max(len(b)) && across < h
}

/// Milliseconds per stage of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stages {
    /// rxing and our row scans.
    pub barcodes: f64,
    /// Binarising, components, chains, rectifying.
    pub find: f64,
    /// Templates and tesseract.
    pub read: f64,
}

/// Whether every QR and NW-7 symbol of a frame says the same as `line`. A QR must hold
/// exactly its 18 digits (one that holds anything else is another voucher, or a
/// misprint); an NW-7 must hold its 10-digit 券番号 (rxing's Codabar reader returns
/// fragments of a tilted symbol, so an NW-7 of another length says nothing).
fn symbols_agree(symbols: &[Symbol], line: &OcrLine) -> bool {
    let (full, number) = (line.to_string(), line.number.to_string());
    symbols.iter().all(|s| match s.format {
        "qr" => s.text.trim() == full,
        "nw7" => nw7_number(&s.text).is_none_or(|n| n == number),
        _ => true,
    })
}

/// A QR's text as an OCR line: exactly 18 digits that validate.
fn qr_line(text: &str) -> Option<OcrLine> {
    let t = text.trim();
    (t.len() == 18 && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// An NW-7 symbol's 券番号: its 10 digits, start and stop characters dropped.
fn nw7_number(text: &str) -> Option<String> {
    let t = text
        .trim()
        .trim_matches(|c: char| matches!(c, 'A'..='D' | 'a'..='d'));
    (t.len() == 10 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.to_owned())
}

/// The vaccine label from the GS1 symbols: the one complete label, or none when two
/// symbols disagree.
fn label(symbols: &[Symbol]) -> Option<VaccineLabel> {
    let mut found: Option<VaccineLabel> = None;
    for s in symbols.iter().filter(|s| s.format.starts_with("gs1")) {
        let prefix = match s.format {
            "gs1-datamatrix" => "]d2",
            _ => "]C1",
        };
        let parsed = gs1::parse(&s.text).or_else(|_| gs1::parse(&format!("{prefix}{}", s.text)));
        let Some(l) = parsed.ok().and_then(|e| e.label()) else {
            continue;
        };
        match &found {
            Some(f) if *f != l => return None,
            _ => found = Some(l),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_text_must_be_exactly_a_valid_line() {
        assert!(qr_line("111310160123456789").is_some());
        assert!(qr_line(" 111310160123456789\n").is_some());
        // municipality check digit wrong (131015)
        assert!(qr_line("111310150123456789").is_none());
        // dose 0
        assert!(qr_line("101310160123456789").is_none());
        assert!(qr_line("11131016012345678").is_none());
        assert!(qr_line("1113101601234567890").is_none());
    }

    #[test]
    fn a_voucher_symbol_that_disagrees_vetoes_the_read() {
        let line: OcrLine = "111310160123456789".parse().expect("line");
        let sym = |format, text: &str| Symbol {
            format,
            text: text.into(),
        };
        assert!(symbols_agree(&[], &line));
        assert!(symbols_agree(&[sym("nw7", "A0123456789A")], &line));
        assert!(!symbols_agree(&[sym("nw7", "A0123456788A")], &line));
        // a fragment of a tilted NW-7 says nothing either way
        assert!(symbols_agree(&[sym("nw7", "A66603A")], &line));
        assert!(symbols_agree(&[sym("qr", "111310160123456789")], &line));
        // another voucher's QR, or a QR that is not a valid line
        assert!(!symbols_agree(&[sym("qr", "121310160000000002")], &line));
        assert!(!symbols_agree(&[sym("qr", "111310150123456789")], &line));
        assert!(!symbols_agree(&[sym("qr", "hello")], &line));
    }

    #[test]
    fn degenerate_frames_give_nothing_and_never_panic() {
        let mut scanner = Scanner::with_reader(Fake).expect("templates");
        let mut rng = 12345u32;
        let mut noise = GrayImage::new(640, 360);
        for p in noise.pixels_mut() {
            rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            p.0[0] = (rng >> 24) as u8;
        }
        let frames = [
            GrayImage::new(0, 0),
            GrayImage::new(1, 1),
            GrayImage::new(1, 5000),
            GrayImage::new(5000, 1),
            GrayImage::from_pixel(640, 360, image::Luma([0])),
            GrayImage::from_pixel(640, 360, image::Luma([255])),
            GrayImage::from_pixel(5000, 3000, image::Luma([255])),
            noise,
        ];
        for f in &frames {
            let r = scanner.scan_gray(f);
            assert!(
                r.voucher.is_none() && r.lot.is_none(),
                "{}x{}",
                f.width(),
                f.height()
            );
        }
    }

    /// A reader that always reads the same digits.
    struct Always(&'static str);
    impl LineReader for Always {
        fn read_line(&mut self, _: &GrayImage, _: Prep) -> Option<String> {
            Some(self.0.into())
        }
    }

    /// A white frame with OCR-B lines drawn at (x, y).
    fn frame_with_lines(lines: &[(&str, i32, i32)]) -> GrayImage {
        let bytes = std::fs::read("/usr/share/fonts/opentype/ocr-b/OCRB.otf").expect("fonts-ocr-b");
        let font = ab_glyph::FontRef::try_from_slice(&bytes).expect("font");
        let mut img = GrayImage::from_pixel(1280, 720, image::Luma([235]));
        for (text, x, y) in lines {
            imageproc::drawing::draw_text_mut(
                &mut img,
                image::Luma([30]),
                *x,
                *y,
                ab_glyph::PxScale::from(34.0),
                &font,
                text,
            );
        }
        img
    }

    #[test]
    fn two_different_sure_lines_in_one_frame_give_no_voucher() {
        const A: &str = "111310160123456789";
        const B: &str = "121310160000000002";
        let mut scanner = Scanner::with_reader(Always(A)).expect("templates");
        let one = scanner.scan_gray(&frame_with_lines(&[(A, 200, 200)]));
        assert_eq!(one.voucher.map(|v| v.line.to_string()).as_deref(), Some(A));
        let two = scanner.scan_gray(&frame_with_lines(&[(A, 200, 200), (B, 200, 400)]));
        assert!(two.voucher.is_none(), "{:?}", two.voucher);
        // The same line twice (a photocopy beside the voucher) is still one voucher.
        let same = scanner.scan_gray(&frame_with_lines(&[(A, 200, 200), (A, 200, 400)]));
        assert_eq!(same.voucher.map(|v| v.line.to_string()).as_deref(), Some(A));
        // And a reader that disagrees with the templates vetoes a clear line.
        let mut doubting = Scanner::with_reader(Always(B)).expect("templates");
        assert!(
            doubting
                .scan_gray(&frame_with_lines(&[(A, 200, 200)]))
                .voucher
                .is_none()
        );
    }

    #[test]
    fn a_line_foreshortened_by_a_steep_view_is_read() {
        const A: &str = "111310160123456789";
        let flat = frame_with_lines(&[(A, 200, 300)]);
        // The tablet tilted about 45° over the desk: heights × 0.7, widths unchanged.
        let steep =
            image::imageops::resize(&flat, 1280, 504, image::imageops::FilterType::Triangle);
        let mut scanner = Scanner::with_reader(Always(A)).expect("templates");
        let r = scanner.scan_gray(&steep);
        assert_eq!(r.voucher.map(|v| v.line.to_string()).as_deref(), Some(A));
    }

    #[test]
    fn tesseract_is_asked_about_the_cells_the_templates_could_confuse() {
        let scanner = Scanner::with_reader(Fake).expect("templates");
        let cell = |score: f32, margin: f32| CellMatch {
            digit: 1,
            score,
            margin,
            left: 0.0,
        };
        let mut cells = vec![cell(0.95, 0.3); 18];
        // None doubtful: the least certain cell and its neighbours.
        cells[7].margin = 0.25;
        assert_eq!(scanner.cells_to_confirm(&cells), vec![6, 7, 8]);
        // A low margin and a low score, each with a neighbour either side.
        cells[0].margin = 0.1;
        cells[12].score = 0.7;
        assert_eq!(
            scanner.cells_to_confirm(&cells),
            vec![0, 12]
                .into_iter()
                .chain([1, 11, 13])
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        // Three doubtful cells are enough on their own.
        cells[5].margin = 0.1;
        assert_eq!(scanner.cells_to_confirm(&cells), vec![0, 5, 12]);
    }

    #[test]
    fn a_narrow_win_far_below_its_neighbours_is_not_sure() {
        const A: &str = "111310160123456789";
        let scanner = Scanner::with_reader(Fake).expect("templates");
        let mut cells: Vec<CellMatch> = A
            .bytes()
            .map(|d| CellMatch {
                digit: d - b'0',
                score: 0.88,
                margin: 0.15,
                left: 0.0,
            })
            .collect();
        assert_eq!(scanner.sure_digits(&cells).as_deref(), Some(A));
        // A score falling gradually along the line (perspective) still reads.
        for (i, c) in cells.iter_mut().enumerate() {
            c.score = 0.95 - 0.015 * i as f32;
        }
        assert_eq!(scanner.sure_digits(&cells).as_deref(), Some(A));
        for c in &mut cells {
            c.score = 0.88;
        }
        // The last cell distorted (a crease under glare): a narrow win at a score
        // well below its neighbours' is no reading.
        cells[17].score = 0.71;
        cells[17].margin = 0.09;
        assert_eq!(scanner.sure_digits(&cells), None);
        // The same low score with a wide margin is still a clear digit, and so is a
        // narrow win scoring like the rest of the line.
        cells[17].margin = 0.3;
        assert_eq!(scanner.sure_digits(&cells).as_deref(), Some(A));
        cells[17].score = 0.85;
        cells[17].margin = 0.09;
        assert_eq!(scanner.sure_digits(&cells).as_deref(), Some(A));
    }

    #[test]
    fn an_rgb_frame_gives_its_luminance_and_an_ink_grey_that_fades_coloured_ink() {
        let rgb = image::RgbImage::from_fn(64, 3, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 100) as u8, 255 - (x * 3) as u8])
        });
        let img = DynamicImage::ImageRgb8(rgb);
        let (luma, _) = planes(&img);
        for (ours, theirs) in luma.pixels().zip(img.to_luma8().pixels()) {
            assert!(ours.0[0].abs_diff(theirs.0[0]) <= 1);
        }
        // Paper, black print under a warm light, a navy ballpoint, a red stamp, black
        // print under the stamp: print stays dark, the pen and the stamp come out as
        // light as the paper.
        let colours = [
            [225, 215, 200],
            [60, 50, 40],
            [30, 40, 120],
            [235, 60, 70],
            [90, 20, 25],
        ];
        let rgb = image::RgbImage::from_fn(80, 16, |x, _| image::Rgb(colours[x as usize / 16]));
        let (_, ink) = planes(&DynamicImage::ImageRgb8(rgb));
        let at: Vec<u8> = (0..5).map(|i| ink.get_pixel(i * 16 + 8, 8).0[0]).collect();
        assert_eq!((at[1], at[4]), (60, 90));
        assert!(at[0] >= 225 && at[2] >= 225 && at[3] >= 225, "{at:?}");
        // A screen's sub-pixels side by side: each saturated, their mean grey. Not
        // lifted: print on a phone stays as dark as it is shown.
        let screen = image::RgbImage::from_fn(64, 64, |x, y| {
            let on = if (x / 4 + y / 4) % 2 == 0 { 40 } else { 230 };
            let mut c = [on / 3; 3];
            c[x as usize % 3] = on;
            image::Rgb(c)
        });
        assert!(sub_pixels(&screen));
        let (_, ink) = planes(&DynamicImage::ImageRgb8(screen));
        assert_eq!(ink.get_pixel(1, 1).0[0], 40);
    }

    /// A reader that agrees with nothing: the scanner's own checks are under test.
    struct Fake;
    impl LineReader for Fake {
        fn read_line(&mut self, _: &GrayImage, _: Prep) -> Option<String> {
            None
        }
    }

    #[test]
    fn nw7_start_stop_characters_are_dropped() {
        assert_eq!(nw7_number("A0123456789A").as_deref(), Some("0123456789"));
        assert_eq!(nw7_number("0123456789").as_deref(), Some("0123456789"));
        assert_eq!(nw7_number("A012345678A"), None);
    }

    #[test]
    fn two_gs1_symbols_that_disagree_give_no_label() {
        let a = Symbol {
            format: "gs1-128",
            text: "0104987123456784\u{1d}17250331\u{1d}10FA4597".into(),
        };
        let mut b = a.clone();
        assert!(label(std::slice::from_ref(&a)).is_some());
        assert!(label(&[a.clone(), b.clone()]).is_some());
        b.text = "0104987123456784\u{1d}17250331\u{1d}10FA4598".into();
        assert!(label(&[a, b]).is_none());
    }
}
