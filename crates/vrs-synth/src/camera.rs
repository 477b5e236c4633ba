//! The tablet's camera: where it looks from (a homography from desk mm to frame
//! pixels), what its optics and sensor do to the picture, and the rendering of a
//! world through it.

use fastrand::Rng;

use super::fonts::Fonts;
use super::frame::{self, Frame, Glare, Light, Shadow};
use super::geom::{Homography, Rect};
use super::layout::range;
use super::paper::Canvas;
use super::scene::{Quad, World};

/// Sheets are rasterised this much finer than they appear in the frame, so the
/// projection resamples downwards (sharper, no stair-stepping on thin bars).
const SUPERSAMPLE: f64 = 1.3;

/// The most pixels one sheet's raster may hold; beyond that its resolution is
/// lowered (only a far-away, mostly off-frame form gets near it).
const MAX_CANVAS_PX: f64 = 16.0e6;

/// A viewing angle: one frame edge is further from the lens than the opposite one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Keystone {
    /// How much the far edge shrinks, as a fraction of its length (0 = square on).
    pub amount: f64,
    /// Which edge is far: 0 top, 1 right, 2 bottom, 3 left.
    pub edge: u8,
    /// Shifts the far edge sideways (−1..1 of `amount`), for a view from a corner.
    pub skew: f64,
}

impl Keystone {
    pub fn sample(rng: &mut Rng, max: f64) -> Keystone {
        Keystone {
            amount: if rng.u8(0..10) < 6 {
                range(rng, 0.0, max)
            } else {
                0.0
            },
            edge: rng.u8(0..4),
            skew: range(rng, -0.6, 0.6),
        }
    }

    fn homography(&self, w: f64, h: f64) -> Homography {
        if self.amount <= 0.0 {
            return Homography::IDENTITY;
        }
        let mut to = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
        let (a, s) = (self.amount, self.skew * self.amount);
        // Corners of the far edge move inwards (and sideways by the skew).
        let (i, j, len) = match self.edge {
            0 => (0, 1, w),
            1 => (1, 2, h),
            2 => (2, 3, w),
            _ => (3, 0, h),
        };
        let horizontal = self.edge % 2 == 0;
        let sign = if self.edge < 2 { 1.0 } else { -1.0 };
        let shrink = a * len / 2.0;
        let shift = s * len / 2.0;
        for (k, dir) in [(i, 1.0), (j, -1.0)] {
            let (x, y) = to[k];
            to[k] = if horizontal {
                (x + sign * dir * shrink + shift, y)
            } else {
                (x, y + sign * dir * shrink + shift)
            };
        }
        let from = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
        Homography::from_quad(from, to).unwrap_or(Homography::IDENTITY)
    }
}

/// The camera pose before lens effects.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pose {
    /// Frame pixels per desk millimetre, before the keystone.
    pub scale: f64,
    pub rot_deg: f64,
    pub keystone: Keystone,
    /// Where in the frame (pixels) the world's focus lands.
    pub at: (f64, f64),
    /// An extra shift in frame pixels (panning in streams).
    pub pan: (f64, f64),
}

impl Pose {
    pub fn cam(&self, focus: (f64, f64), w: u32, h: u32) -> Homography {
        let a = Homography::translate(self.at.0 + self.pan.0, self.at.1 + self.pan.1)
            .then_after(Homography::rotate_deg(self.rot_deg))
            .then_after(Homography::scale(self.scale))
            .then_after(Homography::translate(-focus.0, -focus.1));
        self.keystone
            .homography(f64::from(w), f64::from(h))
            .then_after(a)
    }
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// The OCR digits' height in the frame at the line's left end, middle and right end.
pub(crate) fn digit_heights(cam: &Homography, line: &Quad) -> [f64; 3] {
    let [tl, tr, br, bl] = line.map(|p| cam.apply(p));
    let mid = |a: (f64, f64), b: (f64, f64)| ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
    [dist(tl, bl), dist(mid(tl, tr), mid(bl, br)), dist(tr, br)]
}

fn keys_in_view(cam: &Homography, keys: &[Quad], w: u32, h: u32) -> bool {
    let m = f64::from(w) * 0.02;
    let view = Rect::new(m, m, f64::from(w) - 2.0 * m, f64::from(h) - 2.0 * m);
    keys.iter()
        .flatten()
        .map(|p| cam.apply(*p))
        .all(|(x, y)| x >= view.x0 && x <= view.x1 && y >= view.y0 && y <= view.y1)
}

/// Whether `pose` keeps the key regions in view and the digits within `digit_range`.
pub(crate) fn pose_fits(
    world: &World,
    pose: &Pose,
    w: u32,
    h: u32,
    digit_range: (f64, f64),
) -> bool {
    let cam = pose.cam(world.focus, w, h);
    let digits_ok = world.line.as_ref().is_none_or(|l| {
        digit_heights(&cam, l)
            .iter()
            .all(|d| (digit_range.0..=digit_range.1).contains(d))
    });
    digits_ok && keys_in_view(&cam, &world.key, w, h)
}

/// Aims the camera: tries positions of the focus in the frame until the key regions
/// are in view, and rescales until the OCR digits are `digit_range` pixels tall.
pub(crate) fn fit_pose(
    rng: &mut Rng,
    world: &World,
    w: u32,
    h: u32,
    mut pose: Pose,
    digit_range: (f64, f64),
) -> Pose {
    let (fw, fh) = (f64::from(w), f64::from(h));
    for attempt in 0..40 {
        let jitter = if attempt < 20 { 0.18 } else { 0.05 };
        pose.at = (
            fw * (0.5 + range(rng, -jitter, jitter)),
            fh * (0.5 + range(rng, -jitter, jitter)),
        );
        if attempt >= 30 {
            // Last resort: squarer on, nearer the centre, zooming out step by step.
            pose.keystone.amount *= 0.5;
        }
        let cam = pose.cam(world.focus, w, h);
        if let Some(line) = &world.line {
            let hs = digit_heights(&cam, line);
            let (lo, hi) = (
                hs.iter().copied().fold(f64::MAX, f64::min),
                hs.iter().copied().fold(0.0, f64::max),
            );
            if hi > digit_range.1 {
                pose.scale *= (digit_range.1 - 0.3) / hi;
                continue;
            }
            if lo < digit_range.0 {
                pose.scale *= (digit_range.0 + 0.3) / lo;
                continue;
            }
        }
        if keys_in_view(&cam, &world.key, w, h) {
            return pose;
        }
        if attempt >= 12 {
            pose.scale *= 0.96;
        }
    }
    pose
}

/// How one frame is spoiled on its way from the desk to the file.
#[derive(Clone, Debug)]
pub(crate) struct Spoil {
    pub light: Light,
    pub blur: f32,
    pub motion: f32,
    pub motion_angle: f32,
    pub noise: f32,
    pub jpeg: u8,
    /// Paper that is not flat along the line (a curved or creased sticker).
    pub warp: Option<frame::Warp>,
    /// Seen on a phone's screen rather than on paper.
    pub screen: Option<frame::Screen>,
}

/// How hard to spoil: vouchers get the full range, labels (held close, printed
/// small) a milder one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Full,
    Mild,
}

/// Draws the lighting, each fault present with some probability and, when present,
/// with a random strength. `detail` is the size in pixels of what must stay legible
/// (the digit height, or a few barcode modules); `target` is where in the frame the
/// subject is, so shadows and glare can fall across it.
pub(crate) fn sample_spoil(
    rng: &mut Rng,
    sev: Severity,
    detail: f64,
    target: Rect,
    w: u32,
) -> Spoil {
    let mild = sev == Severity::Mild;
    let fw = f64::from(w);
    let shadow = (rng.u8(0..10) < if mild { 2 } else { 3 }).then(|| {
        let a = range(rng, 0.0, std::f64::consts::TAU);
        let (cx, cy) = target.center();
        let (tw, th) = (target.x1 - target.x0, target.y1 - target.y0);
        Shadow {
            point: (
                (cx + range(rng, -0.35, 0.35) * tw) as f32,
                (cy + range(rng, -0.35, 0.35) * th) as f32,
            ),
            normal: (a.cos() as f32, a.sin() as f32),
            soft: range(rng, 10.0, 140.0) as f32,
            depth: range(rng, 0.25, if mild { 0.4 } else { 0.5 }) as f32,
        }
    });
    let glare = (rng.u8(0..20) < if mild { 3 } else { 5 }).then(|| {
        let r = range(rng, 0.04, 0.13) * fw;
        Glare {
            center: (
                range(rng, target.x0, target.x1) as f32,
                range(rng, target.y0, target.y1) as f32,
            ),
            radii: (r as f32, (r * range(rng, 0.4, 1.0)) as f32),
            angle: range(rng, 0.0, std::f64::consts::PI) as f32,
            strength: range(rng, 0.3, if mild { 0.5 } else { 0.7 }) as f32,
        }
    });
    let wb = range(rng, -0.05, 0.05) as f32;
    let light = Light {
        gradient: if rng.u8(0..10) < 4 {
            range(rng, 0.1, 0.4) as f32
        } else {
            0.0
        },
        gradient_dir: {
            let a = range(rng, 0.0, std::f64::consts::TAU);
            (a.cos() as f32, a.sin() as f32)
        },
        vignette: range(rng, 0.0, 0.2) as f32,
        shadow,
        glare,
        contrast: if rng.u8(0..10) < 3 {
            range(rng, if mild { 0.65 } else { 0.5 }, 0.9) as f32
        } else {
            1.0
        },
        white_balance: [1.0 + wb, 1.0, 1.0 - wb],
        exposure: range(rng, 0.9, 1.06) as f32,
    };
    // Labels: `detail` is five modules; blur stays under a third of a module, so
    // the narrowest bars survive it.
    let (max_blur, max_motion) = if mild {
        (0.3 * detail / 5.0, 0.6 * detail / 5.0)
    } else {
        (0.4 + 0.05 * detail, 0.3 * detail)
    };
    Spoil {
        light,
        blur: if rng.u8(0..10) < 6 {
            range(rng, 0.3, max_blur.max(0.4)) as f32
        } else {
            0.0
        },
        motion: if rng.u8(0..10) < 3 {
            range(rng, 1.0, max_motion.max(1.5)) as f32
        } else {
            0.0
        },
        motion_angle: range(rng, 0.0, std::f64::consts::PI) as f32,
        noise: if rng.u8(0..10) < 8 {
            range(rng, 1.0, if mild { 5.0 } else { 8.0 }) as f32
        } else {
            0.0
        },
        jpeg: if mild {
            rng.u8(70..=95)
        } else {
            rng.u8(60..=95)
        },
        warp: None,
        screen: None,
    }
}

/// The rasters of a world's sheets, each covering what any of `cams` sees of it.
pub(crate) fn rasterise(
    fonts: &Fonts,
    world: &World,
    cams: &[Homography],
    w: u32,
    h: u32,
) -> Vec<Canvas> {
    let frame = Rect::new(0.0, 0.0, f64::from(w), f64::from(h)).grow(16.0);
    world
        .sheets
        .iter()
        .map(|sheet| {
            let sheet_rect = sheet.rect().grow(1.0);
            let mut window: Option<Rect> = None;
            let mut ppmm: f64 = 0.0;
            for cam in cams {
                let to_frame = cam.then_after(sheet.place);
                let seen = frame.mapped(&to_frame.inverse());
                if let Some(win) = seen.intersect(&sheet_rect) {
                    window = Some(window.map_or(win, |u| u.union(&win)));
                    for p in win.corners().iter().chain(std::iter::once(&win.center())) {
                        ppmm = ppmm.max(to_frame.local_scale(*p));
                    }
                }
            }
            let Some(window) = window else {
                return Canvas::new(Rect::new(0.0, 0.0, 0.1, 0.1), 10.0);
            };
            let mut ppmm = (ppmm * SUPERSAMPLE).clamp(1.0, 60.0);
            let area = (window.x1 - window.x0) * (window.y1 - window.y0) * ppmm * ppmm;
            if area > MAX_CANVAS_PX {
                ppmm *= (MAX_CANVAS_PX / area).sqrt();
            }
            sheet.render(fonts, window, ppmm)
        })
        .collect()
}

/// Renders one frame: desk, sheets, light, optics, sensor. Returns the frame and
/// how many pixels of the subject sheet it shows.
pub(crate) fn shoot(
    world: &World,
    canvases: &[Canvas],
    cam: &Homography,
    spoil: &Spoil,
    w: u32,
    h: u32,
    noise_rng: &mut Rng,
) -> (Frame, usize) {
    let mut f = Frame::new(w, h);
    frame::paint_desk(&mut f, &world.desk, cam);
    // The lamp is above and a little behind the viewer: shadows fall down-right on
    // the desk, whatever way the camera is turned.
    let light_dir = (0.6, 0.8);
    let mut subject_px = 0;
    for (i, (sheet, canvas)) in world.sheets.iter().zip(canvases).enumerate() {
        let to_frame = cam.then_after(sheet.place);
        let n = frame::composite(&mut f, sheet, canvas, &to_frame, light_dir);
        if world.subject == Some(i) {
            subject_px = n;
        }
    }
    if let Some(w) = &spoil.warp {
        frame::warp(&mut f, w);
    }
    if let Some(s) = &spoil.screen {
        frame::screen(&mut f, s);
    }
    frame::apply_light(&mut f, &spoil.light);
    frame::gaussian_blur(&mut f, spoil.blur);
    frame::motion_blur(&mut f, spoil.motion, spoil.motion_angle);
    frame::sensor_noise(&mut f, spoil.noise, noise_rng);
    (f, subject_px)
}

/// The frame-pixel box of the world's key regions (or the frame's middle).
pub(crate) fn target_box(world: &World, cam: &Homography, w: u32, h: u32) -> Rect {
    let pts: Vec<(f64, f64)> = world.key.iter().flatten().map(|p| cam.apply(*p)).collect();
    let frame = Rect::new(0.0, 0.0, f64::from(w), f64::from(h));
    Rect::bounding(&pts)
        .and_then(|r| r.intersect(&frame))
        .unwrap_or(Rect::new(
            f64::from(w) * 0.25,
            f64::from(h) * 0.25,
            f64::from(w) * 0.5,
            f64::from(h) * 0.5,
        ))
}
