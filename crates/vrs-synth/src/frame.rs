//! The camera frame: a float RGB buffer the desk is painted into, sheets are projected
//! onto, and the camera's faults are applied to, before it becomes a JPEG.

use image::{Rgb, RgbImage};

use super::geom::{Homography, Rect};
use super::noise::{gauss, hash2, value_noise};
use super::paper::{Canvas, Sheet};

/// Interleaved RGB, 0–255 floats, row major.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    pub w: u32,
    pub h: u32,
    pub px: Vec<f32>,
}

impl Frame {
    pub fn new(w: u32, h: u32) -> Frame {
        Frame {
            w,
            h,
            px: vec![0.0; w as usize * h as usize * 3],
        }
    }

    pub fn rect(&self) -> Rect {
        Rect::new(0.0, 0.0, f64::from(self.w), f64::from(self.h))
    }

    pub fn to_image(&self) -> RgbImage {
        let mut img = RgbImage::new(self.w, self.h);
        for (p, c) in img.pixels_mut().zip(self.px.chunks_exact(3)) {
            *p = Rgb([0, 1, 2].map(|k| c[k].round().clamp(0.0, 255.0) as u8));
        }
        img
    }
}

/// What the cards lie on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Desk {
    /// Wood grain running along `angle`, planks `plank` mm wide.
    Wood {
        light: [f32; 3],
        dark: [f32; 3],
        period: f32,
        angle: f32,
        plank: f32,
        seed: u32,
    },
    /// Grey laminate with a fine speckle.
    Laminate { base: [f32; 3], seed: u32 },
    /// A plain painted or plastic top.
    Solid { base: [f32; 3], seed: u32 },
}

impl Desk {
    /// The desk's colour at desk point (x, y) mm.
    #[inline]
    fn color(&self, x: f32, y: f32) -> [f32; 3] {
        match *self {
            Desk::Wood {
                light,
                dark,
                period,
                angle,
                plank,
                seed,
            } => {
                let (s, c) = angle.sin_cos();
                let (u, v) = (x * c + y * s, -x * s + y * c);
                let plank_no = (v / plank).floor();
                let pseed = seed ^ (plank_no as i32 as u32).wrapping_mul(0x5bd1_e995);
                let warp = value_noise(u / 45.0, v / 8.0, pseed) * 9.0
                    + value_noise(u / 12.0, v / 2.0, pseed ^ 7) * 1.2;
                let ring = ((v + warp) / period * std::f32::consts::TAU).sin() * 0.5 + 0.5;
                let t = (ring.powf(2.5) * 0.7 + value_noise(u / 3.0, v / 0.7, pseed ^ 3) * 0.3)
                    .clamp(0.0, 1.0);
                let tone = 0.92 + hash2(plank_no as i32, 0, seed) * 0.16;
                // A dark seam between planks.
                let seam = ((v / plank).fract() * plank).min((1.0 - (v / plank).fract()) * plank);
                let seam = if seam < 0.35 { 0.7 } else { 1.0 };
                [0, 1, 2].map(|k| (light[k] + (dark[k] - light[k]) * t) * tone * seam)
            }
            Desk::Laminate { base, seed } => {
                let n = value_noise(x / 0.6, y / 0.6, seed) - 0.5;
                let cloud = value_noise(x / 40.0, y / 40.0, seed ^ 11) - 0.5;
                base.map(|b| b + n * 14.0 + cloud * 10.0)
            }
            Desk::Solid { base, seed } => {
                let n = value_noise(x / 1.5, y / 1.5, seed) - 0.5;
                base.map(|b| b + n * 4.0)
            }
        }
    }
}

/// Paints every pixel with the desk seen through `cam` (desk mm → frame px). The
/// texture is evaluated every other pixel and interpolated: it is background, and
/// evaluating it everywhere was the costliest step of a frame.
pub(crate) fn paint_desk(frame: &mut Frame, desk: &Desk, cam: &Homography) {
    const STEP: usize = 2;
    let inv = cam.inverse();
    let (w, h) = (frame.w as usize, frame.h as usize);
    let (gw, gh) = (w / STEP + 2, h / STEP + 2);
    let mut grid = Vec::with_capacity(gw * gh);
    for gy in 0..gh {
        for gx in 0..gw {
            let (x, y) = ((gx * STEP) as f64 + 0.5, (gy * STEP) as f64 + 0.5);
            let (wx, wy) = inv.apply((x, y));
            grid.push(desk.color(wx as f32, wy as f32));
        }
    }
    for y in 0..h {
        let (gy, fy) = (y / STEP, (y % STEP) as f32 / STEP as f32);
        for x in 0..w {
            let (gx, fx) = (x / STEP, (x % STEP) as f32 / STEP as f32);
            let a = grid[gy * gw + gx];
            let b = grid[gy * gw + gx + 1];
            let c = grid[(gy + 1) * gw + gx];
            let d = grid[(gy + 1) * gw + gx + 1];
            let i = (y * w + x) * 3;
            for k in 0..3 {
                let top = a[k] + (b[k] - a[k]) * fx;
                let bottom = c[k] + (d[k] - c[k]) * fx;
                frame.px[i + k] = top + (bottom - top) * fy;
            }
        }
    }
}

/// Signed distance (mm) from p to the rectangle's edge, positive inside. Outside
/// near a corner it is the larger of the two axis distances: close enough for edge
/// antialiasing and a soft shadow.
#[inline]
fn inside_distance(r: &Rect, (x, y): (f64, f64)) -> f64 {
    (x - r.x0).min(r.x1 - x).min(y - r.y0).min(r.y1 - y)
}

/// Projects `sheet` (rasterised as `canvas`) onto the frame through `to_frame`
/// (sheet mm → frame px), with a soft drop shadow below it when it has a lift.
/// Returns how many pixels the sheet covers: zero means it is out of view.
pub(crate) fn composite(
    frame: &mut Frame,
    sheet: &Sheet,
    canvas: &Canvas,
    to_frame: &Homography,
    light_dir: (f64, f64),
) -> usize {
    let rect = sheet.rect();
    let shadow_reach = sheet.lift * 4.0;
    let Some(area) = rect
        .grow(shadow_reach + 0.5)
        .mapped(to_frame)
        .intersect(&frame.rect())
    else {
        return 0;
    };
    let inv = to_frame.inverse();
    // Pixels per mm near the sheet's middle: for antialiasing the edge by about a pixel.
    let scale = to_frame.local_scale(rect.center()).max(1e-6);
    let shadow_off = (light_dir.0 * sheet.lift, light_dir.1 * sheet.lift);
    let shadow_soft = (sheet.lift * 1.8).max(0.2);
    let paper = sheet.paper.map(f32::from);
    let (x0, y0) = (area.x0.floor() as u32, area.y0.floor() as u32);
    let (x1, y1) = (
        (area.x1.ceil() as u32).min(frame.w),
        (area.y1.ceil() as u32).min(frame.h),
    );
    let mut covered = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = inv.apply((f64::from(x) + 0.5, f64::from(y) + 0.5));
            let inside = inside_distance(&rect, p);
            let alpha = ((inside * scale + 0.5).clamp(0.0, 1.0)) as f32;
            let i = (y as usize * frame.w as usize + x as usize) * 3;
            let px = &mut frame.px[i..i + 3];
            if sheet.lift > 0.0 && alpha < 1.0 {
                let ps = (p.0 - shadow_off.0, p.1 - shadow_off.1);
                let d = inside_distance(&rect, ps);
                let t = ((d / shadow_soft) * 0.5 + 0.5).clamp(0.0, 1.0) as f32;
                let dark = 1.0 - 0.28 * t * t * (3.0 - 2.0 * t);
                for c in px.iter_mut() {
                    *c *= dark;
                }
            }
            if alpha > 0.0 {
                covered += 1;
                let col = canvas.sample(p).unwrap_or(paper);
                for (c, v) in px.iter_mut().zip(col) {
                    *c = *c * (1.0 - alpha) + v * alpha;
                }
            }
        }
    }
    covered
}

/// A soft-edged shadow over part of the frame (a hand or the tablet itself between
/// the lamp and the desk): the half-plane beyond a line, darkened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shadow {
    pub point: (f32, f32),
    pub normal: (f32, f32),
    pub soft: f32,
    pub depth: f32,
}

/// A reflection of a ceiling lamp: an elliptical wash towards white.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Glare {
    pub center: (f32, f32),
    pub radii: (f32, f32),
    pub angle: f32,
    pub strength: f32,
}

/// The lighting and exposure of one frame.
#[derive(Clone, Debug)]
pub(crate) struct Light {
    /// Uneven light: brightness falls by up to this fraction along `gradient_dir`.
    pub gradient: f32,
    pub gradient_dir: (f32, f32),
    pub vignette: f32,
    pub shadow: Option<Shadow>,
    pub glare: Option<Glare>,
    /// 1 for full contrast; lower squeezes the range towards a lifted grey.
    pub contrast: f32,
    pub white_balance: [f32; 3],
    pub exposure: f32,
}

fn smooth(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

pub(crate) fn apply_light(frame: &mut Frame, l: &Light) {
    let (w, h) = (frame.w as f32, frame.h as f32);
    let (ga, gb) = l.gradient_dir;
    let (gs, gc) = l.glare.map(|g| g.angle.sin_cos()).unwrap_or((0.0, 1.0));
    let mid = 128.0 + (1.0 - l.contrast) * 40.0;
    for (i, c) in frame.px.chunks_exact_mut(3).enumerate() {
        let x = (i % frame.w as usize) as f32 + 0.5;
        let y = (i / frame.w as usize) as f32 + 0.5;
        let (nx, ny) = (x / w - 0.5, y / h - 0.5);
        let mut gain = l.exposure;
        gain *= 1.0 - l.gradient * (0.5 + ga * nx + gb * ny).clamp(0.0, 1.0);
        gain *= 1.0 - l.vignette * (nx * nx + ny * ny) * 2.0;
        if let Some(s) = l.shadow {
            let d = (x - s.point.0) * s.normal.0 + (y - s.point.1) * s.normal.1;
            gain *= 1.0 - s.depth * smooth(d / s.soft * 0.5 + 0.5);
        }
        let mut wash = 0.0;
        if let Some(g) = l.glare {
            let (dx, dy) = (x - g.center.0, y - g.center.1);
            let (u, v) = (dx * gc + dy * gs, -dx * gs + dy * gc);
            let r2 = (u / g.radii.0).powi(2) + (v / g.radii.1).powi(2);
            wash = g.strength * (-r2 * 2.0).exp();
        }
        for (k, v) in c.iter_mut().enumerate() {
            let lit = *v * gain * l.white_balance[k];
            let lit = lit + (255.0 - lit).max(0.0) * wash;
            *v = mid + (lit - mid) * l.contrast;
        }
    }
}

/// Separable gaussian blur (defocus), edges clamped.
pub(crate) fn gaussian_blur(frame: &mut Frame, sigma: f32) {
    if sigma < 0.25 {
        return;
    }
    let r = (sigma * 3.0).ceil() as i32;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    let (w, h) = (frame.w as i32, frame.h as i32);
    let mut tmp = vec![0.0f32; frame.px.len()];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f32; 3];
            for (j, kv) in k.iter().enumerate() {
                let xx = (x + j as i32 - r).clamp(0, w - 1);
                let s = ((y * w + xx) * 3) as usize;
                for (a, v) in acc.iter_mut().zip(&frame.px[s..s + 3]) {
                    *a += v * kv;
                }
            }
            let d = ((y * w + x) * 3) as usize;
            tmp[d..d + 3].copy_from_slice(&acc);
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f32; 3];
            for (j, kv) in k.iter().enumerate() {
                let yy = (y + j as i32 - r).clamp(0, h - 1);
                let s = ((yy * w + x) * 3) as usize;
                for (a, v) in acc.iter_mut().zip(&tmp[s..s + 3]) {
                    *a += v * kv;
                }
            }
            let d = ((y * w + x) * 3) as usize;
            frame.px[d..d + 3].copy_from_slice(&acc);
        }
    }
}

/// Linear motion blur: the average along a segment `len` px long at `angle`.
pub(crate) fn motion_blur(frame: &mut Frame, len: f32, angle: f32) {
    if len < 1.0 {
        return;
    }
    let n = len.ceil() as i32 + 1;
    let (s, c) = angle.sin_cos();
    // Whole-pixel taps (rounded points along the segment) keep this to one read
    // per tap; at these lengths the rounding is invisible.
    let taps: Vec<(i32, i32)> = (0..n)
        .map(|i| {
            let t = (i as f32 / (n - 1) as f32 - 0.5) * len;
            ((t * c).round() as i32, (t * s).round() as i32)
        })
        .collect();
    let (w, h) = (frame.w as i32, frame.h as i32);
    let src = frame.px.clone();
    let inv = 1.0 / taps.len() as f32;
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f32; 3];
            for &(dx, dy) in &taps {
                let xx = (x + dx).clamp(0, w - 1);
                let yy = (y + dy).clamp(0, h - 1);
                let i = ((yy * w + xx) * 3) as usize;
                acc[0] += src[i];
                acc[1] += src[i + 1];
                acc[2] += src[i + 2];
            }
            let d = ((y * w + x) * 3) as usize;
            for (o, a) in frame.px[d..d + 3].iter_mut().zip(acc) {
                *o = a * inv;
            }
        }
    }
}

/// Sensor noise: luminance noise stronger in the shadows (as a small sensor's is),
/// plus a little colour noise. Normal samples come from a table drawn afresh for
/// each frame, three per random number, to keep this cheap.
pub(crate) fn sensor_noise(frame: &mut Frame, sigma: f32, rng: &mut fastrand::Rng) {
    if sigma <= 0.0 {
        return;
    }
    const BITS: u32 = 10;
    const MASK: u32 = (1 << BITS) - 1;
    let table: Vec<f32> = (0..1 << BITS).map(|_| gauss(rng)).collect();
    for c in frame.px.chunks_exact_mut(3) {
        let r = rng.u32(..);
        let (n, cr, cb) = (
            table[(r & MASK) as usize],
            table[((r >> BITS) & MASK) as usize],
            table[((r >> (2 * BITS)) & MASK) as usize],
        );
        let luma = (c[0] + c[1] + c[2]) / 3.0;
        let s = sigma * (1.3 - 0.6 * (luma / 255.0).clamp(0.0, 1.0));
        c[0] += (n + cr * 0.3) * s;
        c[1] += n * s;
        c[2] += (n + cb * 0.3) * s;
    }
}

/// How a voucher's paper is not flat where the line is printed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bend {
    /// A sticker on a curved surface: the line bows by `sag` px at its middle.
    Curve { sag: f32 },
    /// A crease across the line at `at` (0..1 along it): beyond it the line turns
    /// by `angle` radians.
    Crease { at: f32, angle: f32 },
}

/// A bend laid along the OCR line as the frame shows it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Warp {
    /// The line's left end (middle of its height), in frame pixels.
    pub origin: (f32, f32),
    /// Unit vector along the line.
    pub dir: (f32, f32),
    /// The line's length in frame pixels.
    pub len: f32,
    pub bend: Bend,
}

impl Warp {
    /// How far a point at `s` (0..1 along the line) is pushed across it.
    fn offset(&self, s: f32) -> f32 {
        // Beyond the ends the bend goes on a little, then stops (the card is flat there).
        let s = s.clamp(-0.3, 1.3);
        match self.bend {
            Bend::Curve { sag } => sag * (1.0 - (2.0 * s - 1.0).powi(2)),
            Bend::Crease { at, angle } => angle.tan() * (s - at).max(0.0) * self.len,
        }
    }
}

/// Bends the frame's content across the line (backward mapping, bilinear).
pub(crate) fn warp(frame: &mut Frame, w: &Warp) {
    let src = frame.px.clone();
    let (fw, fh) = (frame.w as usize, frame.h as usize);
    let normal = (-w.dir.1, w.dir.0);
    let sample = |x: f32, y: f32, k: usize| -> f32 {
        let x = x.clamp(0.0, (fw - 1) as f32);
        let y = y.clamp(0.0, (fh - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(fw - 1), (y0 + 1).min(fh - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let at = |xx: usize, yy: usize| src[(yy * fw + xx) * 3 + k];
        let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
        let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
        top * (1.0 - fy) + bottom * fy
    };
    for y in 0..fh {
        for x in 0..fw {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let s = ((px - w.origin.0) * w.dir.0 + (py - w.origin.1) * w.dir.1) / w.len;
            let d = w.offset(s);
            let (sx, sy) = (px - normal.0 * d - 0.5, py - normal.1 * d - 0.5);
            let o = (y * fw + x) * 3;
            for k in 0..3 {
                frame.px[o + k] = sample(sx, sy, k);
            }
        }
    }
}

/// The voucher shown on a phone's screen: RGB sub-pixel stripes of `pitch` frame
/// pixels, turned by `angle`, with dark gaps between pixel rows. Averaged over each
/// camera pixel, the grid beats against the sensor's and shows moiré.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Screen {
    pub pitch: f32,
    pub angle: f32,
}

pub(crate) fn screen(frame: &mut Frame, s: &Screen) {
    let (sn, cs) = s.angle.sin_cos();
    const SUB: usize = 3;
    for (i, c) in frame.px.chunks_exact_mut(3).enumerate() {
        let (x, y) = ((i % frame.w as usize) as f32, (i / frame.w as usize) as f32);
        let mut gain = [0f32; 3];
        for j in 0..SUB * SUB {
            let px = x + ((j % SUB) as f32 + 0.5) / SUB as f32;
            let py = y + ((j / SUB) as f32 + 0.5) / SUB as f32;
            let u = (px * cs + py * sn) / s.pitch;
            let v = (-px * sn + py * cs) / s.pitch;
            let lit = ((u - u.floor()) * 3.0) as usize;
            let row = if v - v.floor() < 0.2 { 0.3 } else { 1.0 };
            for (k, g) in gain.iter_mut().enumerate() {
                *g += row * if k == lit.min(2) { 2.4 } else { 0.25 };
            }
        }
        for (v, g) in c.iter_mut().zip(gain) {
            *v *= g / (SUB * SUB) as f32;
        }
    }
}
