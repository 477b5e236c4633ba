//! OCR-B digit templates: the second reader of the OCR line.
//!
//! Tesseract reads a rectified line as a whole; this module reads it again cell by
//! cell, by normalised cross-correlation against the ten OCR-B digits. The two readers
//! fail differently (tesseract's language model against plain template shapes), so a
//! line is reported only when every cell's best template wins clearly and tesseract
//! reads the same digits wherever the templates could confuse two (1↔4, 3↔8): that is
//! what keeps those confusions out.
//!
//! The templates are `models/ocrb-digits.png`: ten cells side by side, each one digit
//! drawn in OCR-B with its digit height [`DIGIT_H`] starting at row [`DIGIT_TOP`], in a
//! cell as wide as the font's advance. `vrs fixtures ocrb-templates` renders it from the
//! OCR-B font (models/README.md has its provenance).

use image::GrayImage;

/// Height of a template cell, and of the rectified line strip.
pub const CELL_H: u32 = 48;
/// Height of a digit inside a cell (and inside the strip).
pub const DIGIT_H: u32 = 32;
/// Row of a digit's top inside a cell (and inside the strip).
pub const DIGIT_TOP: u32 = 8;

/// The committed templates.
pub const TEMPLATES_PNG: &[u8] = include_bytes!("../../../models/ocrb-digits.png");

/// Why templates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("OCR-B templates: {0}")]
    Bad(String),
}

/// Templates and cells are compared on a grid of half the strip's resolution
/// ([`GRID_H`] rows): a digit 16 px tall still tells every OCR-B digit from the others,
/// and matching costs a quarter.
const GRID_H: usize = (CELL_H / 2) as usize;

/// One digit's template, ready for matching.
#[derive(Clone, Debug)]
struct Template {
    /// Zero-mean, unit-norm pixel values of the cell, row-major.
    norm: Vec<f32>,
    /// The first and last ink columns within the cell.
    ink_left: f32,
    ink_right: f32,
}

/// The ten OCR-B digits.
#[derive(Clone, Debug)]
pub struct Templates {
    cell_w: u32,
    /// Grid columns per cell.
    grid_w: usize,
    digits: Vec<Template>,
}

/// What a cell matched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellMatch {
    pub digit: u8,
    /// Correlation with the best template (−1..1).
    pub score: f32,
    /// Best minus second best.
    pub margin: f32,
    /// Where the cell was found (its left edge, in strip columns).
    pub left: f32,
}

impl Templates {
    /// The committed templates.
    pub fn builtin() -> Result<Self, TemplateError> {
        let img = image::load_from_memory_with_format(TEMPLATES_PNG, image::ImageFormat::Png)
            .map_err(|e| TemplateError::Bad(e.to_string()))?
            .to_luma8();
        Self::from_sheet(&img)
    }

    /// Templates from a sheet of ten cells side by side (digits 0 to 9).
    pub fn from_sheet(sheet: &GrayImage) -> Result<Self, TemplateError> {
        if sheet.height() != CELL_H || sheet.width() % 10 != 0 || sheet.width() == 0 {
            return Err(TemplateError::Bad(format!(
                "sheet is {}x{}, expected 10 cells of height {CELL_H}",
                sheet.width(),
                sheet.height()
            )));
        }
        let cell_w = sheet.width() / 10;
        let grid_w = (cell_w as usize).div_ceil(2);
        let blurred = Plane::blurred(sheet);
        let mut digits = Vec::with_capacity(10);
        for d in 0..10 {
            let x0 = d * cell_w;
            let (mut left, mut right) = (cell_w, 0);
            for y in 0..CELL_H {
                for x in 0..cell_w {
                    if sheet.get_pixel(x0 + x, y).0[0] < 128 {
                        left = left.min(x);
                        right = right.max(x);
                    }
                }
            }
            if left > right {
                return Err(TemplateError::Bad(format!("digit {d} has no ink")));
            }
            let mut px = vec![0f32; grid_w * GRID_H];
            blurred.sample_cell(x0 as f32, 1, cell_w as f32, grid_w, &mut px);
            digits.push(Template {
                norm: normalise(&px)
                    .ok_or_else(|| TemplateError::Bad(format!("digit {d} is a flat image")))?,
                ink_left: left as f32,
                ink_right: right as f32 + 1.0,
            });
        }
        Ok(Templates {
            cell_w,
            grid_w,
            digits,
        })
    }

    /// The advance width of a digit at [`DIGIT_H`], in pixels.
    pub fn cell_w(&self) -> u32 {
        self.cell_w
    }

    /// The mean width of a digit's ink, in pixels.
    pub fn mean_ink_width(&self) -> f32 {
        self.digits
            .iter()
            .map(|t| t.ink_right - t.ink_left)
            .sum::<f32>()
            / 10.0
    }

    /// Reads `n` equally spaced cells from a rectified strip (height [`CELL_H`]), the
    /// first starting near `left` and the pitch near `pitch`. Each cell is searched a few
    /// pixels either side of where the pitch puts it, then the pitch is refitted to
    /// where the cells were found and the cells read again, so that a small error in
    /// the line's ends does not shift every cell.
    pub fn read_cells(&self, plane: &Plane, left: f32, pitch: f32, n: usize) -> Vec<CellMatch> {
        let mut left = left;
        let mut pitch = pitch;
        let mut cells = Vec::new();
        // First whole-pixel steps over ±3 px, then half-pixel steps over ±1 px around
        // the refitted positions.
        for (pass, (reach, step)) in [(3, 1.0f32), (2, 0.5)].into_iter().enumerate() {
            cells = (0..n)
                .map(|i| self.best_near(plane, left + i as f32 * pitch, pitch, reach, step))
                .collect();
            // Most cells far from any digit after the coarse pass: not a line of OCR-B
            // digits, and the fine pass would not make it one.
            if pass == 0 && cells.iter().filter(|c| c.score >= 0.45).count() * 3 < n * 2 {
                break;
            }
            // Least-squares line through the found positions.
            let (l, p) = fit_line(cells.iter().enumerate().map(|(i, c)| (i as f32, c.left)));
            if p.is_finite() && (p / pitch - 1.0).abs() < 0.1 {
                left = l;
                pitch = p;
            }
        }
        cells
    }

    /// Reads `n` cells walking along the strip: each cell is looked for a pitch after
    /// where the one before it was found, and the pitch follows the spacing found
    /// (within 15% of `pitch`). Where a line's pitch changes along it (a perspective
    /// the rectification did not fully undo), the equally spaced cells of
    /// [`Templates::read_cells`] drift off the digits towards one end; the walk keeps
    /// to them. A cell that matches poorly does not move the walk.
    pub fn read_cells_walking(
        &self,
        plane: &Plane,
        left: f32,
        pitch: f32,
        n: usize,
    ) -> Vec<CellMatch> {
        let (mut x, mut p) = (left, pitch);
        let mut last: Option<f32> = None;
        let mut cells = Vec::with_capacity(n);
        for _ in 0..n {
            let c = self.best_near(plane, x, p, 3, 1.0);
            let c = self.best_near(plane, c.left, p, 2, 0.5);
            let at = if c.score >= 0.5 {
                if let Some(prev) = last {
                    p = (0.7 * p + 0.3 * (c.left - prev)).clamp(0.85 * pitch, 1.15 * pitch);
                }
                last = Some(c.left);
                c.left
            } else {
                last = None;
                x
            };
            cells.push(c);
            x = at + p;
        }
        cells
    }

    /// The best digit for a cell expected to start at `left`, trying `reach` steps of
    /// `step` pixels either way and one row up or down.
    fn best_near(&self, plane: &Plane, left: f32, pitch: f32, reach: i32, step: f32) -> CellMatch {
        // Each digit's best score over every placement tried: the margin is the winner's
        // against the best any other digit reached anywhere, not only where the winner
        // sat (another digit a pixel away scoring just below it is no clear win).
        let mut per_digit = [(-1.0f32, left); 10];
        let mut sample = vec![0f32; self.grid_w * GRID_H];
        // The coarse pass keeps to the row found; the fine pass tries one row up and
        // down as well.
        let rows = if step >= 1.0 { 1..2 } else { 0..3 };
        for k in -reach..=reach {
            let x = left + k as f32 * step;
            for dy in rows.clone() {
                plane.sample_cell(x, dy, pitch, self.grid_w, &mut sample);
                let Some(s) = normalise(&sample) else {
                    continue;
                };
                for (d, t) in self.digits.iter().enumerate() {
                    let score = dot(&t.norm, &s);
                    if score > per_digit[d].0 {
                        per_digit[d] = (score, x);
                    }
                }
            }
        }
        let (digit, &(score, at)) = per_digit
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
            .unwrap_or((0, &(-1.0, left)));
        let second = per_digit
            .iter()
            .enumerate()
            .filter(|(d, _)| *d != digit)
            .map(|(_, p)| p.0)
            .fold(-1.0f32, f32::max);
        CellMatch {
            digit: digit as u8,
            score,
            margin: if score > -1.0 { score - second } else { 0.0 },
            left: at,
        }
    }
}

/// A grey image as floats, blurred once so that sampling it at half resolution
/// averages rather than aliases, and kept as the rows a cell grid samples: grid row
/// `gy` shifted `dy − 1` strip rows, for dy in 0..3 (the vertical position never
/// changes, so only the horizontal one is interpolated per sample).
pub struct Plane {
    w: usize,
    /// [dy][gy][x]
    rows: Vec<f32>,
}

impl Plane {
    pub fn blurred(img: &GrayImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw: Vec<f32> = img.as_raw().iter().map(|&v| f32::from(v)).collect();
        let px = blur3(&raw, w, h);
        let sy = CELL_H as f32 / GRID_H as f32;
        let mut rows = vec![255f32; 3 * GRID_H * w];
        for dy in 0..3 {
            for gy in 0..GRID_H {
                let y = (gy as f32 + 0.5) * sy - 0.5 + dy as f32 - 1.0;
                let y0 = y.floor();
                let fy = y - y0;
                let get = |yy: isize, x: usize| -> f32 {
                    if yy < 0 || yy >= h as isize {
                        255.0
                    } else {
                        px[yy as usize * w + x]
                    }
                };
                let out = &mut rows[(dy * GRID_H + gy) * w..(dy * GRID_H + gy + 1) * w];
                for (x, o) in out.iter_mut().enumerate() {
                    *o = get(y0 as isize, x) * (1.0 - fy) + get(y0 as isize + 1, x) * fy;
                }
            }
        }
        Plane { w, rows }
    }

    /// Samples columns `left .. left + width` (grid rows shifted `dy − 1` strip rows)
    /// onto a cell grid of `grid_w` × [`GRID_H`].
    fn sample_cell(&self, left: f32, dy: usize, width: f32, grid_w: usize, out: &mut [f32]) {
        let sx = width / grid_w as f32;
        // The columns are the same for every row: their index and weight once.
        let mut cols = [(0usize, 0f32, false); 64];
        let gw = grid_w.min(cols.len());
        for (gx, c) in cols.iter_mut().enumerate().take(gw) {
            let x = left + (gx as f32 + 0.5) * sx - 0.5;
            let x0 = x.floor();
            let inside = x0 >= 0.0 && (x0 as usize) + 1 < self.w;
            *c = (if inside { x0 as usize } else { 0 }, x - x0, inside);
        }
        for gy in 0..GRID_H {
            let row = &self.rows[(dy * GRID_H + gy) * self.w..(dy * GRID_H + gy + 1) * self.w];
            for (gx, &(x0, fx, inside)) in cols.iter().enumerate().take(gw) {
                out[gy * grid_w + gx] = if inside {
                    row[x0] * (1.0 - fx) + row[x0 + 1] * fx
                } else {
                    255.0
                };
            }
        }
    }
}

/// Bilinear sample, white outside the image.
pub(crate) fn bilinear(img: &GrayImage, x: f32, y: f32) -> f32 {
    let (w, h) = (img.width() as i64, img.height() as i64);
    // Inside the image (nearly always): no floor call, no per-pixel bounds test.
    if x >= 0.0 && y >= 0.0 {
        let (x0, y0) = (x as i64, y as i64);
        if x0 + 1 < w && y0 + 1 < h {
            let (fx, fy) = (x - x0 as f32, y - y0 as f32);
            let raw = img.as_raw();
            let i = (y0 * w + x0) as usize;
            let wu = w as usize;
            let (a, b) = (f32::from(raw[i]), f32::from(raw[i + 1]));
            let (c, d) = (f32::from(raw[i + wu]), f32::from(raw[i + wu + 1]));
            let top = a + (b - a) * fx;
            let bottom = c + (d - c) * fx;
            return top + (bottom - top) * fy;
        }
    }
    let x0 = x.floor();
    let y0 = y.floor();
    let fx = x - x0;
    let fy = y - y0;
    let (x0, y0) = (x0 as i64, y0 as i64);
    let raw = img.as_raw();
    let at = |xx: i64, yy: i64| -> f32 {
        if xx < 0 || yy < 0 || xx >= w || yy >= h {
            255.0
        } else {
            f32::from(raw[(yy * w + xx) as usize])
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
    let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// A dot product in eight lanes (the compiler keeps a plain sum in one, to keep its
/// rounding order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Zero mean, unit norm; None for a flat patch (nothing to correlate).
fn normalise(px: &[f32]) -> Option<Vec<f32>> {
    let n = px.len() as f32;
    let mean = px.iter().sum::<f32>() / n;
    let norm = px
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum::<f32>()
        .sqrt();
    if norm < 1e-3 * n {
        return None;
    }
    Some(px.iter().map(|v| (v - mean) / norm).collect())
}

/// A 3×3 binomial blur (σ ≈ 0.85 px), edges clamped.
fn blur3(px: &[f32], w: usize, h: usize) -> Vec<f32> {
    let get = |x: isize, y: isize| -> f32 {
        let x = x.clamp(0, w as isize - 1) as usize;
        let y = y.clamp(0, h as isize - 1) as usize;
        px[y * w + x]
    };
    let k = [1.0f32, 2.0, 1.0];
    let mut out = vec![0f32; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let mut s = 0.0;
            for (j, kj) in k.iter().enumerate() {
                for (i, ki) in k.iter().enumerate() {
                    s += kj * ki * get(x + i as isize - 1, y + j as isize - 1);
                }
            }
            out[y as usize * w + x as usize] = s / 16.0;
        }
    }
    out
}

/// Least squares y = a + b·x; (a, b).
pub(crate) fn fit_line(points: impl Iterator<Item = (f32, f32)>) -> (f32, f32) {
    let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0f32, 0f32, 0f32, 0f32, 0f32);
    for (x, y) in points {
        n += 1.0;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    let den = n * sxx - sx * sx;
    if n < 2.0 || den.abs() < 1e-9 {
        return (if n > 0.0 { sy / n } else { 0.0 }, f32::NAN);
    }
    let b = (n * sxy - sx * sy) / den;
    ((sy - b * sx) / n, b)
}

/// Renders the template sheet from an OCR-B font file (the "training" of this model).
#[cfg(feature = "templates")]
pub fn render_sheet(font_bytes: &[u8]) -> Result<GrayImage, TemplateError> {
    use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
    let font =
        FontRef::try_from_slice(font_bytes).map_err(|e| TemplateError::Bad(e.to_string()))?;
    // Find the pixel scale at which a digit's outline is DIGIT_H tall.
    let probe = font.glyph_id('0').with_scale(PxScale::from(100.0));
    let bounds = font
        .outline_glyph(probe)
        .ok_or_else(|| TemplateError::Bad("the font has no digit 0".into()))?
        .px_bounds();
    let scale = PxScale::from(100.0 * DIGIT_H as f32 / bounds.height());
    let scaled = font.as_scaled(scale);
    let advance = scaled.h_advance(font.glyph_id('0'));
    let cell_w = advance.round().max(1.0) as u32;
    let mut sheet = GrayImage::from_pixel(cell_w * 10, CELL_H, image::Luma([255]));
    for d in 0..10u32 {
        let c = char::from_digit(d, 10).unwrap_or('0');
        let glyph = font
            .glyph_id(c)
            .with_scale_and_position(scale, ab_glyph::point(0.0, 0.0));
        let Some(outline) = font.outline_glyph(glyph) else {
            return Err(TemplateError::Bad(format!("the font has no digit {d}")));
        };
        let b = outline.px_bounds();
        // Digits sit on the baseline; put the baseline DIGIT_H below DIGIT_TOP, and keep
        // the glyph where the font puts it inside its advance.
        let ox = d * cell_w;
        let baseline = (DIGIT_TOP + DIGIT_H) as f32;
        outline.draw(|x, y, cov| {
            let px = ox as i64 + (b.min.x + x as f32).round() as i64;
            let py = (baseline + b.min.y + y as f32).round() as i64;
            if px >= i64::from(ox)
                && px < i64::from(ox + cell_w)
                && py >= 0
                && py < i64::from(CELL_H)
            {
                let v = (255.0 * (1.0 - cov.clamp(0.0, 1.0))) as u8;
                let p = sheet.get_pixel_mut(px as u32, py as u32);
                p.0[0] = p.0[0].min(v);
            }
        });
    }
    Ok(sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_load_and_read_themselves() {
        let t = Templates::builtin().expect("templates");
        let img = image::load_from_memory(TEMPLATES_PNG)
            .expect("png")
            .to_luma8();
        let cells = t.read_cells(&Plane::blurred(&img), 0.0, t.cell_w() as f32, 10);
        let digits: Vec<u8> = cells.iter().map(|c| c.digit).collect();
        assert_eq!(digits, (0..10).collect::<Vec<u8>>());
        assert!(
            cells.iter().all(|c| c.score > 0.95 && c.margin > 0.1),
            "{cells:?}"
        );
    }

    #[test]
    fn a_walk_keeps_to_digits_whose_pitch_grows_along_the_line() {
        let t = Templates::builtin().expect("templates");
        let sheet = image::load_from_memory(TEMPLATES_PNG)
            .expect("png")
            .to_luma8();
        let cw = t.cell_w();
        // 18 digits, each cell 1.2% wider than the one before (the far end of a line
        // seen at an angle): 22% wider at the end.
        let digits: Vec<u32> = (0..18).map(|i| (i * 7 + 3) % 10).collect();
        let lefts: Vec<f32> = (0..18)
            .scan(4.0f32, |x, i| {
                let at = *x;
                *x += cw as f32 * 1.012f32.powi(i);
                Some(at)
            })
            .collect();
        let width = (lefts[17] + 2.0 * cw as f32) as u32;
        let mut strip = GrayImage::from_pixel(width, CELL_H, image::Luma([255]));
        for (&d, &x) in digits.iter().zip(&lefts) {
            let cell = image::imageops::crop_imm(&sheet, d * cw, 0, cw, CELL_H).to_image();
            image::imageops::replace(&mut strip, &cell, x.round() as i64, 0);
        }
        let read =
            |cells: &[CellMatch]| cells.iter().map(|c| u32::from(c.digit)).collect::<Vec<_>>();
        let mean = (lefts[17] - lefts[0]) / 17.0;
        let plane = Plane::blurred(&strip);
        let grid = t.read_cells(&plane, lefts[0], mean, 18);
        let walked = t.read_cells_walking(&plane, lefts[0], cw as f32, 18);
        assert_ne!(read(&grid), digits, "equal spacing should drift here");
        assert_eq!(read(&walked), digits);
        assert!(walked.iter().all(|c| c.score > 0.9), "{walked:?}");
    }

    #[test]
    fn fit_line_recovers_slope() {
        let (a, b) = fit_line((0..5).map(|i| (i as f32, 3.0 + 2.0 * i as f32)));
        assert!((a - 3.0).abs() < 1e-4 && (b - 2.0).abs() < 1e-4);
    }
}
