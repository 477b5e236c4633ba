//! Flat printed sheets (voucher card, 予診票, vaccine box and its sticker) described in
//! millimetres, and their rasterisation at whatever resolution the camera needs.
//!
//! A sheet is a list of [`Mark`]s rather than a bitmap so that it can be drawn at
//! the resolution a given view calls for, and only over the part the camera sees
//! (an A4 form seen close up would otherwise be tens of megapixels).

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_text_mut;

use super::fonts::Fonts;
use super::geom::{Homography, Rect};
use super::noise::{hash2, value_noise};

pub(crate) type Rgb8 = [u8; 3];

pub(crate) const INK: Rgb8 = [28, 28, 30];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Face {
    Jp,
    OcrB,
}

/// One printed thing on a sheet. Coordinates are millimetres from the sheet's top
/// left corner.
#[derive(Clone, Debug)]
pub(crate) enum Mark {
    Fill {
        rect: Rect,
        color: Rgb8,
    },
    /// A rectangle outline; `dash` is the dash length for cut lines (切り取り線).
    Frame {
        rect: Rect,
        width: f64,
        color: Rgb8,
        dash: Option<f64>,
    },
    /// Text whose top-left is at `at`; `size` is the font's pixel scale in mm (for
    /// Noto CJK about the em square). `width` is measured when the mark is made.
    Text {
        at: (f64, f64),
        size: f64,
        text: String,
        color: Rgb8,
        face: Face,
        bold: bool,
        width: f64,
    },
    /// A ring, for the municipality's seal (公印).
    Ring {
        center: (f64, f64),
        radius: f64,
        width: f64,
        color: Rgb8,
    },
    /// A pen stroke through `points` (a ballpoint tick or circle), drawn over what is
    /// printed: opaque ink `width` mm wide.
    Stroke {
        points: Vec<(f64, f64)>,
        width: f64,
        color: Rgb8,
    },
    /// A rubber stamp (a ring with 済 inside): ink that darkens what is under it
    /// (multiplied), so the print below stays as dark as it was, with a patchy
    /// coverage `density` (0..1) as a hand-pressed stamp has.
    Stamp {
        center: (f64, f64),
        radius: f64,
        color: Rgb8,
        density: f32,
        seed: u32,
    },
    /// A barcode's modules: `bits` row by row, `cols` wide; each module `module.0` by
    /// `module.1` mm (1-D codes have one row, stretched to the bar height).
    Modules {
        origin: (f64, f64),
        module: (f64, f64),
        cols: usize,
        bits: Vec<bool>,
        color: Rgb8,
    },
}

impl Mark {
    pub fn bounds(&self) -> Rect {
        match self {
            Mark::Fill { rect, .. } => *rect,
            Mark::Frame { rect, width, .. } => rect.grow(*width),
            Mark::Text {
                at, size, width, ..
            } => Rect::new(at.0, at.1, *width, *size * 1.2),
            Mark::Ring {
                center,
                radius,
                width,
                ..
            } => Rect::new(
                center.0 - radius,
                center.1 - radius,
                2.0 * radius,
                2.0 * radius,
            )
            .grow(*width),
            Mark::Stroke { points, width, .. } => Rect::bounding(points)
                .unwrap_or(Rect::new(0.0, 0.0, 0.0, 0.0))
                .grow(*width),
            Mark::Stamp { center, radius, .. } => Rect::new(
                center.0 - radius,
                center.1 - radius,
                2.0 * radius,
                2.0 * radius,
            )
            .grow(0.5),
            Mark::Modules {
                origin,
                module,
                cols,
                bits,
                ..
            } => {
                let rows = bits.len() / (*cols).max(1);
                Rect::new(
                    origin.0,
                    origin.1,
                    *cols as f64 * module.0,
                    rows as f64 * module.1,
                )
            }
        }
    }
}

fn face(fonts: &Fonts, f: Face) -> &FontVec {
    match f {
        Face::Jp => &fonts.jp,
        Face::OcrB => &fonts.ocrb,
    }
}

/// The advance width of `text` at font scale `size` (same unit out as in).
pub(crate) fn text_width(fonts: &Fonts, f: Face, size: f64, text: &str) -> f64 {
    let probe = 100.0f32;
    let font = face(fonts, f).as_scaled(PxScale::from(probe));
    let units: f32 = text.chars().map(|c| font.h_advance(font.glyph_id(c))).sum();
    f64::from(units) / f64::from(probe) * size
}

/// Builds a text mark, measuring it.
pub(crate) fn text(
    fonts: &Fonts,
    at: (f64, f64),
    size: f64,
    s: impl Into<String>,
    color: Rgb8,
    face: Face,
) -> Mark {
    let text = s.into();
    let width = text_width(fonts, face, size, &text);
    Mark::Text {
        at,
        size,
        text,
        color,
        face,
        bold: false,
        width,
    }
}

/// A flat printed sheet and where it lies on the desk.
#[derive(Clone, Debug)]
pub(crate) struct Sheet {
    pub size: (f64, f64),
    pub paper: Rgb8,
    pub marks: Vec<Mark>,
    /// Sheet millimetres → desk millimetres.
    pub place: Homography,
    /// How far the drop shadow falls (mm); 0 for a sheet lying flat with no edge
    /// to speak of.
    pub lift: f64,
    /// Strength of the paper's fibre texture (0 smooth coated stock, 1 recycled).
    pub grain: f32,
    /// Seeds the paper texture so two sheets do not share fibres.
    pub seed: u64,
}

impl Sheet {
    pub fn rect(&self) -> Rect {
        Rect::new(0.0, 0.0, self.size.0, self.size.1)
    }

    /// Draws the part `window` (sheet mm) at `ppmm` pixels per millimetre.
    pub fn render(&self, fonts: &Fonts, window: Rect, ppmm: f64) -> Canvas {
        let mut c = Canvas::new(window, ppmm);
        c.paper(self.paper, self.grain, self.seed);
        for m in &self.marks {
            if m.bounds().intersect(&window).is_some() {
                c.mark(fonts, m);
            }
        }
        c
    }
}

/// A raster of part of a sheet: pixel (0, 0) is `origin` mm, `ppmm` pixels per mm.
#[derive(Debug)]
pub(crate) struct Canvas {
    pub img: RgbImage,
    pub origin: (f64, f64),
    pub ppmm: f64,
}

impl Canvas {
    pub fn new(window: Rect, ppmm: f64) -> Canvas {
        let w = ((window.x1 - window.x0) * ppmm).ceil().max(1.0) as u32;
        let h = ((window.y1 - window.y0) * ppmm).ceil().max(1.0) as u32;
        Canvas {
            img: RgbImage::new(w, h),
            origin: (window.x0, window.y0),
            ppmm,
        }
    }

    fn px(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (
            (x - self.origin.0) * self.ppmm,
            (y - self.origin.1) * self.ppmm,
        )
    }

    /// Paper: the base colour, a faint cloudiness and fibre speckle. The cloud is
    /// computed from sheet millimetres (every resolution shows the same paper), once
    /// per 4×4 block: it varies over centimetres, so the blocks cannot be seen.
    fn paper(&mut self, base: Rgb8, grain: f32, seed: u64) {
        const BLOCK: u32 = 4;
        let (ox, oy, s) = (self.origin.0, self.origin.1, self.ppmm);
        let seed32 = (seed ^ (seed >> 32)) as u32;
        let (w, h) = self.img.dimensions();
        let bw = w.div_ceil(BLOCK);
        let cloud: Vec<f32> = (0..h.div_ceil(BLOCK))
            .flat_map(|by| (0..bw).map(move |bx| (bx, by)))
            .map(|(bx, by)| {
                let mx = ox + (f64::from(bx * BLOCK) + 2.0) / s;
                let my = oy + (f64::from(by * BLOCK) + 2.0) / s;
                value_noise(mx as f32 / 9.0, my as f32 / 9.0, seed32) - 0.5
            })
            .collect();
        for (x, y, p) in self.img.enumerate_pixels_mut() {
            let c = cloud[((y / BLOCK) * bw + x / BLOCK) as usize];
            let fibre = hash2(x as i32, y as i32, seed32 ^ 0x9e37) - 0.5;
            let d = grain * (c * 7.0 + fibre * 5.0);
            *p = Rgb(base.map(|v| (f32::from(v) + d).clamp(0.0, 255.0) as u8));
        }
    }

    /// Fills `r` (mm) with `color`, with exact area coverage at the edges so thin bars
    /// keep their width at any resolution.
    fn fill(&mut self, r: Rect, color: Rgb8, alpha: f32) {
        let (x0, y0) = self.px((r.x0, r.y0));
        let (x1, y1) = self.px((r.x1, r.y1));
        let (w, h) = (f64::from(self.img.width()), f64::from(self.img.height()));
        let (cx0, cy0) = (x0.max(0.0).floor() as u32, y0.max(0.0).floor() as u32);
        let (cx1, cy1) = (x1.min(w).ceil() as u32, y1.min(h).ceil() as u32);
        for py in cy0..cy1 {
            let fy = f64::from(py);
            let cov_y = ((fy + 1.0).min(y1) - fy.max(y0)).clamp(0.0, 1.0);
            for px in cx0..cx1 {
                let fx = f64::from(px);
                let cov_x = ((fx + 1.0).min(x1) - fx.max(x0)).clamp(0.0, 1.0);
                let a = (cov_x * cov_y) as f32 * alpha;
                if a > 0.0 {
                    let p = self.img.get_pixel_mut(px, py);
                    for (c, &v) in p.0.iter_mut().zip(&color) {
                        *c = (f32::from(*c) * (1.0 - a) + f32::from(v) * a).round() as u8;
                    }
                }
            }
        }
    }

    fn mark(&mut self, fonts: &Fonts, m: &Mark) {
        match m {
            Mark::Fill { rect, color } => self.fill(*rect, *color, 1.0),
            Mark::Frame {
                rect,
                width,
                color,
                dash,
            } => self.frame(*rect, *width, *color, *dash),
            Mark::Text {
                at,
                size,
                text,
                color,
                face: f,
                bold,
                ..
            } => self.text(fonts, *at, *size, text, *color, *f, *bold),
            Mark::Ring {
                center,
                radius,
                width,
                color,
            } => self.ring(*center, *radius, *width, *color),
            Mark::Stroke {
                points,
                width,
                color,
            } => self.stroke(points, *width, *color),
            Mark::Stamp {
                center,
                radius,
                color,
                density,
                seed,
            } => self.stamp(fonts, *center, *radius, *color, *density, *seed),
            Mark::Modules {
                origin,
                module,
                cols,
                bits,
                color,
            } => {
                for (i, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
                    let (c, r) = (i % cols, i / cols);
                    // Neighbouring dark modules are merged along the row, so no
                    // hairline of paper shows between them after resampling.
                    if c > 0 && bits[i - 1] {
                        continue;
                    }
                    let run = bits[i..(r + 1) * cols].iter().take_while(|b| **b).count();
                    let x = origin.0 + c as f64 * module.0;
                    let y = origin.1 + r as f64 * module.1;
                    self.fill(
                        Rect::new(x, y, run as f64 * module.0, module.1),
                        *color,
                        1.0,
                    );
                }
            }
        }
    }

    fn frame(&mut self, r: Rect, width: f64, color: Rgb8, dash: Option<f64>) {
        let hw = width / 2.0;
        let edges = [
            Rect {
                x0: r.x0 - hw,
                y0: r.y0 - hw,
                x1: r.x1 + hw,
                y1: r.y0 + hw,
            },
            Rect {
                x0: r.x0 - hw,
                y0: r.y1 - hw,
                x1: r.x1 + hw,
                y1: r.y1 + hw,
            },
            Rect {
                x0: r.x0 - hw,
                y0: r.y0 - hw,
                x1: r.x0 + hw,
                y1: r.y1 + hw,
            },
            Rect {
                x0: r.x1 - hw,
                y0: r.y0 - hw,
                x1: r.x1 + hw,
                y1: r.y1 + hw,
            },
        ];
        for e in edges {
            match dash {
                None => self.fill(e, color, 1.0),
                Some(d) => {
                    let horizontal = e.x1 - e.x0 > e.y1 - e.y0;
                    let len = if horizontal { e.x1 - e.x0 } else { e.y1 - e.y0 };
                    let mut t = 0.0;
                    while t < len {
                        let t1 = (t + d).min(len);
                        let piece = if horizontal {
                            Rect {
                                x0: e.x0 + t,
                                x1: e.x0 + t1,
                                ..e
                            }
                        } else {
                            Rect {
                                y0: e.y0 + t,
                                y1: e.y0 + t1,
                                ..e
                            }
                        };
                        self.fill(piece, color, 1.0);
                        t += 2.0 * d;
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        fonts: &Fonts,
        at: (f64, f64),
        size: f64,
        s: &str,
        color: Rgb8,
        f: Face,
        bold: bool,
    ) {
        let (x, y) = self.px(at);
        let scale = PxScale::from((size * self.ppmm) as f32);
        let font = face(fonts, f);
        draw_text_mut(
            &mut self.img,
            Rgb(color),
            x.round() as i32,
            y.round() as i32,
            scale,
            font,
            s,
        );
        if bold {
            // A second pass a hair to the right thickens the strokes the way a bold
            // weight would, without loading another 20 MB face.
            let dx = (size * self.ppmm * 0.045).max(1.0);
            draw_text_mut(
                &mut self.img,
                Rgb(color),
                (x + dx).round() as i32,
                y.round() as i32,
                scale,
                font,
                s,
            );
        }
    }

    /// A polyline of round-capped segments, anti-aliased by distance.
    fn stroke(&mut self, points: &[(f64, f64)], width: f64, color: Rgb8) {
        let pts: Vec<(f64, f64)> = points.iter().map(|p| self.px(*p)).collect();
        let hw = width * self.ppmm / 2.0;
        let (w, h) = (self.img.width() as i64, self.img.height() as i64);
        for seg in pts.windows(2) {
            let (a, b) = (seg[0], seg[1]);
            let x0 = ((a.0.min(b.0) - hw - 1.0).floor() as i64).clamp(0, w);
            let x1 = ((a.0.max(b.0) + hw + 1.0).ceil() as i64).clamp(0, w);
            let y0 = ((a.1.min(b.1) - hw - 1.0).floor() as i64).clamp(0, h);
            let y1 = ((a.1.max(b.1) + hw + 1.0).ceil() as i64).clamp(0, h);
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len2 = (dx * dx + dy * dy).max(1e-9);
            for py in y0..y1 {
                for px in x0..x1 {
                    let (qx, qy) = (px as f64 + 0.5, py as f64 + 0.5);
                    let t = (((qx - a.0) * dx + (qy - a.1) * dy) / len2).clamp(0.0, 1.0);
                    let d = (qx - a.0 - t * dx).hypot(qy - a.1 - t * dy);
                    let cov = (hw + 0.5 - d).clamp(0.0, 1.0) as f32;
                    if cov > 0.0 {
                        let p = self.img.get_pixel_mut(px as u32, py as u32);
                        for (c, &v) in p.0.iter_mut().zip(&color) {
                            let old = f32::from(*c);
                            // Overlapping segments must not darken twice.
                            let new = old * (1.0 - cov) + f32::from(v) * cov;
                            *c = new.min(old).round() as u8;
                        }
                    }
                }
            }
        }
    }

    /// The stamp: a ring and 済, multiplied into the sheet with patchy coverage.
    fn stamp(
        &mut self,
        fonts: &Fonts,
        center: (f64, f64),
        radius: f64,
        color: Rgb8,
        density: f32,
        seed: u32,
    ) {
        let (cx, cy) = self.px(center);
        let r = radius * self.ppmm;
        let (w, h) = (i64::from(self.img.width()), i64::from(self.img.height()));
        let bx0 = ((cx - r - 2.0).floor() as i64).clamp(0, w);
        let bx1 = ((cx + r + 2.0).ceil() as i64).clamp(0, w);
        let by0 = ((cy - r - 2.0).floor() as i64).clamp(0, h);
        let by1 = ((cy + r + 2.0).ceil() as i64).clamp(0, h);
        let bw = (bx1 - bx0).max(0) as usize;
        let bh = (by1 - by0).max(0) as usize;
        if bw == 0 || bh == 0 {
            return;
        }
        let mut cover = vec![0f32; bw * bh];
        // The ring.
        let hw = 0.07 * r;
        for y in 0..bh {
            for x in 0..bw {
                let (px, py) = ((bx0 + x as i64) as f64 + 0.5, (by0 + y as i64) as f64 + 0.5);
                let d = ((px - cx).hypot(py - cy) - r * 0.9).abs();
                cover[y * bw + x] = (hw + 0.5 - d).clamp(0.0, 1.0) as f32;
            }
        }
        // 済, filling most of the ring.
        let font = &fonts.jp;
        let glyph = font
            .glyph_id('済')
            .with_scale_and_position(PxScale::from((r * 1.2) as f32), ab_glyph::point(0.0, 0.0));
        if let Some(outline) = font.outline_glyph(glyph) {
            let b = outline.px_bounds();
            let ox = (cx - f64::from(b.width()) / 2.0) as i64 - bx0;
            let oy = (cy - f64::from(b.height()) / 2.0) as i64 - by0;
            outline.draw(|x, y, c| {
                let (px, py) = (ox + i64::from(x), oy + i64::from(y));
                if px >= 0 && py >= 0 && (px as usize) < bw && (py as usize) < bh {
                    let i = py as usize * bw + px as usize;
                    cover[i] = cover[i].max(c);
                }
            });
        }
        let blot_scale = (r as f32 * 0.15).max(1.0);
        for y in 0..bh {
            for x in 0..bw {
                let c = cover[y * bw + x];
                if c <= 0.0 {
                    continue;
                }
                // Ink pressed unevenly: coverage falls off in blotches.
                let blot = value_noise(x as f32 / blot_scale, y as f32 / blot_scale, seed);
                let a = c * (density * (0.6 + 0.6 * blot)).clamp(0.0, 1.0);
                let p = self
                    .img
                    .get_pixel_mut((bx0 + x as i64) as u32, (by0 + y as i64) as u32);
                for (ch, &v) in p.0.iter_mut().zip(&color) {
                    let ink = f32::from(v) / 255.0;
                    *ch = (f32::from(*ch) * (1.0 - a + a * ink)).round() as u8;
                }
            }
        }
    }

    fn ring(&mut self, center: (f64, f64), radius: f64, width: f64, color: Rgb8) {
        let (cx, cy) = self.px(center);
        let (r, hw) = (radius * self.ppmm, width * self.ppmm / 2.0);
        let (w, h) = (self.img.width() as i64, self.img.height() as i64);
        let x0 = ((cx - r - hw).floor() as i64).clamp(0, w);
        let x1 = ((cx + r + hw).ceil() as i64).clamp(0, w);
        let y0 = ((cy - r - hw).floor() as i64).clamp(0, h);
        let y1 = ((cy + r + hw).ceil() as i64).clamp(0, h);
        for py in y0..y1 {
            for px in x0..x1 {
                let d = ((px as f64 + 0.5 - cx).hypot(py as f64 + 0.5 - cy) - r).abs();
                let a = (hw + 0.5 - d).clamp(0.0, 1.0) as f32 * 0.85;
                if a > 0.0 {
                    let p = self.img.get_pixel_mut(px as u32, py as u32);
                    for (c, &v) in p.0.iter_mut().zip(&color) {
                        *c = (f32::from(*c) * (1.0 - a) + f32::from(v) * a).round() as u8;
                    }
                }
            }
        }
    }

    /// The colour at sheet point `p` (mm), bilinear; None outside the raster.
    #[inline]
    pub fn sample(&self, p: (f64, f64)) -> Option<[f32; 3]> {
        let (x, y) = self.px(p);
        let (x, y) = (x - 0.5, y - 0.5);
        let (w, h) = (self.img.width() as i64, self.img.height() as i64);
        let (ix, iy) = (x.floor() as i64, y.floor() as i64);
        if ix < -1 || iy < -1 || ix >= w || iy >= h {
            return None;
        }
        let (fx, fy) = ((x - ix as f64) as f32, (y - iy as f64) as f32);
        let get = |xx: i64, yy: i64| {
            let p = self
                .img
                .get_pixel(xx.clamp(0, w - 1) as u32, yy.clamp(0, h - 1) as u32);
            p.0.map(f32::from)
        };
        let (a, b, c, d) = (
            get(ix, iy),
            get(ix + 1, iy),
            get(ix, iy + 1),
            get(ix + 1, iy + 1),
        );
        let mut out = [0.0f32; 3];
        for k in 0..3 {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bottom = c[k] + (d[k] - c[k]) * fx;
            out[k] = top + (bottom - top) * fy;
        }
        Some(out)
    }
}
