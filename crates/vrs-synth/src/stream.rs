//! Streams: a tablet brought over a voucher, held with a shaking hand, and sometimes
//! moved on to the next person's voucher.

use fastrand::Rng;

use super::camera::{self, Keystone, Pose, Severity};
use super::content::{self, Voucher};
use super::fonts::Fonts;
use super::layout::{LINE_DIGIT_MM, VoucherSymbol, range};
use super::noise::derive_seed;
use super::scene::{self, World};
use super::{DIGIT_HEIGHT_PX, SALT_FRAME, SALT_STREAM, StreamSegment, StreamSpec, SynthError};

/// One frame's plan: which voucher's world, how far the camera is panned away (as a
/// fraction of the distance that takes the voucher out of view), and the shake.
#[derive(Clone, Copy, Debug)]
struct Step {
    world: usize,
    /// Pan direction (unit) times fraction.
    pan: (f64, f64),
    rot: f64,
    zoom: f64,
    shift: (f64, f64),
    /// Hand tremor blur, px.
    motion: f32,
    /// Pan blur, as a fraction of the pan distance (known only once the scene is).
    pan_blur: f64,
    motion_angle: f32,
    blur_add: f32,
}

fn unit(rng: &mut Rng) -> (f64, f64) {
    let a = range(rng, 0.0, std::f64::consts::TAU);
    (a.cos(), a.sin())
}

/// A fast pan between two pan positions; the blur runs along the movement, its
/// length the distance covered while the shutter is open.
fn pan_step(world: usize, from: (f64, f64), to: (f64, f64), shutter: f64) -> Step {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    Step {
        world,
        pan: to,
        rot: 0.0,
        zoom: 1.0,
        shift: (0.0, 0.0),
        motion: 0.0,
        pan_blur: dx.hypot(dy) * shutter,
        motion_angle: dy.atan2(dx) as f32,
        blur_add: 0.0,
    }
}

/// Held frames: a slow random walk of a few pixels and tenths of a degree, with a
/// tremor blur now and then.
fn held(rng: &mut Rng, world: usize, n: usize, out: &mut Vec<Step>) {
    let (mut x, mut y, mut r) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..n {
        x = (x + range(rng, -2.5, 2.5)).clamp(-8.0, 8.0);
        y = (y + range(rng, -2.5, 2.5)).clamp(-8.0, 8.0);
        r = (r + range(rng, -0.25, 0.25)).clamp(-0.8, 0.8);
        let motion = match rng.u8(0..10) {
            0 => range(rng, 4.0, 9.0),
            1..=6 => range(rng, 0.0, 2.5),
            _ => 0.0,
        };
        out.push(Step {
            world,
            pan: (0.0, 0.0),
            rot: r,
            zoom: 1.0 + range(rng, -0.012, 0.012),
            shift: (x, y),
            motion: motion as f32,
            pan_blur: 0.0,
            motion_angle: range(rng, 0.0, std::f64::consts::PI) as f32,
            blur_add: range(rng, -0.15, 0.3) as f32,
        });
    }
}

/// The frame plan: intro (pointed away), arrival, held; if `swap`, leaving, a gap,
/// the second arrival and held again.
fn plan(rng: &mut Rng, frames: usize, swap: bool, far_dir: [(f64, f64); 2]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(frames);
    let [u, v] = far_dir;
    let at = |d: (f64, f64), f: f64| (d.0 * f, d.1 * f);
    let shutter = range(rng, 0.3, 0.5);
    let intro = if frames >= 8 { rng.usize(1..=3) } else { 1 };
    let arrive = if frames >= 8 { rng.usize(2..=3) } else { 1 };
    let away = |rng: &mut Rng, world: usize, d: (f64, f64)| Step {
        world,
        pan: at(d, 1.0 + range(rng, 0.0, 0.1)),
        rot: 0.0,
        zoom: 1.0,
        shift: (0.0, 0.0),
        motion: range(rng, 0.0, 4.0) as f32,
        pan_blur: 0.0,
        motion_angle: range(rng, 0.0, 3.0) as f32,
        blur_add: 0.0,
    };
    let fractions = |n: usize| -> Vec<f64> {
        match n {
            1 => vec![0.3],
            2 => vec![0.45, 0.12],
            _ => vec![0.6, 0.3, 0.08],
        }
    };
    for _ in 0..intro {
        steps.push(away(rng, 0, u));
    }
    let mut last = at(u, 1.0);
    for f in fractions(arrive) {
        let to = at(u, f);
        steps.push(pan_step(0, last, to, shutter));
        last = to;
    }
    if !swap {
        held(rng, 0, frames.saturating_sub(steps.len()), &mut steps);
        steps.truncate(frames);
        return steps;
    }
    let gap = rng.usize(1..=2);
    let arrive2 = rng.usize(2..=3);
    let tail = 2 + gap + arrive2;
    let rest = frames.saturating_sub(steps.len() + tail);
    let held1 = (rest as f64 * range(rng, 0.35, 0.55)).round() as usize;
    held(rng, 0, held1, &mut steps);
    let mut last = (0.0, 0.0);
    for f in [0.25, 0.7] {
        let to = at(v, f);
        steps.push(pan_step(0, last, to, shutter));
        last = to;
    }
    for _ in 0..gap {
        steps.push(away(rng, 1, v));
    }
    let mut last = at(v, 1.0);
    for f in fractions(arrive2) {
        let to = at(v, f);
        steps.push(pan_step(1, last, to, shutter));
        last = to;
    }
    held(rng, 1, frames.saturating_sub(steps.len()), &mut steps);
    steps.truncate(frames);
    steps
}

/// How far (frame px) the camera must pan for the subject sheet to leave the frame:
/// the sheet's furthest corner from the frame's middle plus the frame's half
/// diagonal, with room to spare.
fn far_distance(world: &World, cam: &super::geom::Homography, w: u32, h: u32) -> f64 {
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let reach = world
        .subject
        .and_then(|i| world.sheets.get(i))
        .map_or(0.0, |s| {
            s.rect()
                .grow(s.lift * 4.0 + 2.0)
                .corners()
                .iter()
                .map(|p| {
                    let q = cam.apply(s.place.apply(*p));
                    (q.0 - cx).hypot(q.1 - cy)
                })
                .fold(0.0, f64::max)
        });
    (reach + cx.hypot(cy)) * 1.1 + 40.0
}

/// Renders stream `index` of `spec`, handing each frame's JPEG to `sink`; returns
/// the segments.
pub(crate) fn render_stream(
    fonts: &Fonts,
    spec: &StreamSpec,
    index: usize,
    mut sink: impl FnMut(usize, &[u8]) -> Result<(), SynthError>,
) -> Result<Vec<StreamSegment>, SynthError> {
    let mut rng = Rng::with_seed(derive_seed(spec.seed, SALT_STREAM, index as u64));
    let (w, h) = spec.sizes[rng.usize(..spec.sizes.len())];
    let symbol = match rng.u8(0..10) {
        0..=5 => VoucherSymbol::None,
        6..=7 => VoucherSymbol::Qr,
        _ => VoucherSymbol::Nw7,
    };
    let dose = match symbol {
        VoucherSymbol::Qr => rng.u8(3..=7),
        VoucherSymbol::Nw7 => rng.u8(1..=2),
        VoucherSymbol::None => rng.u8(1..=5),
    };
    let swap = spec.frames >= 20 && rng.f64() < spec.swap_share;
    let a = content::voucher(&mut rng, dose)?;
    let design_seed = rng.u64(..);
    let scene_seed = rng.u64(..);
    let same_design = rng.u8(0..10) < 7;
    let mut vouchers: Vec<Voucher> = vec![a];
    if swap {
        let mut b = if same_design {
            content::neighbour(&mut rng, &vouchers[0], dose)?
        } else {
            content::voucher(&mut rng, dose)?
        };
        if rng.f64() < spec.invalid_second_share {
            content::break_check_digit(&mut rng, &mut b)?;
        }
        vouchers.push(b);
    }
    // The same desk (and form) for both vouchers: the scene generator restarts
    // from the same seed. The same design too, when the second voucher comes from
    // the same municipality.
    let mut worlds = Vec::new();
    for (i, v) in vouchers.iter().enumerate() {
        let d = if i == 0 || same_design {
            design_seed
        } else {
            rng.u64(..)
        };
        let sym = if i == 0 || same_design {
            symbol
        } else {
            VoucherSymbol::None
        };
        let world = scene::voucher_world(
            fonts,
            &mut Rng::with_seed(scene_seed),
            &mut Rng::with_seed(d),
            v,
            sym,
            None,
        )?;
        worlds.push(world);
    }

    // The held pose, milder than a single's: a nurse aims the tablet on purpose.
    let lo = if symbol == VoucherSymbol::Nw7 {
        15.0
    } else {
        14.0
    };
    let base = Pose {
        scale: range(&mut rng, lo, 34.0) / LINE_DIGIT_MM,
        rot_deg: range(&mut rng, -10.0, 10.0) - worlds[0].subject_rot,
        keystone: Keystone::sample(&mut rng, 0.05),
        at: (0.0, 0.0),
        pan: (0.0, 0.0),
    };
    // The second voucher is laid where the first was, so the tablet stays where it
    // was held, unless the other design puts its line out of view.
    let mut poses: Vec<Pose> = Vec::new();
    for world in &worlds {
        let p = match poses.first() {
            Some(first) if camera::pose_fits(world, first, w, h, DIGIT_HEIGHT_PX) => *first,
            _ => camera::fit_pose(&mut rng, world, w, h, base, DIGIT_HEIGHT_PX),
        };
        poses.push(p);
    }
    let far_dir = [unit(&mut rng), unit(&mut rng)];
    let steps = plan(&mut rng, spec.frames, swap, far_dir);
    let fars: Vec<f64> = worlds
        .iter()
        .zip(&poses)
        .map(|(wd, p)| far_distance(wd, &p.cam(wd.focus, w, h), w, h))
        .collect();

    // Per-frame cameras, then each world's rasters covering all its frames.
    let cams: Vec<_> = steps
        .iter()
        .map(|s| {
            let mut p = poses[s.world];
            let far = fars[s.world];
            p.pan = (s.pan.0 * far + s.shift.0, s.pan.1 * far + s.shift.1);
            p.rot_deg += s.rot;
            p.scale *= s.zoom;
            p.cam(worlds[s.world].focus, w, h)
        })
        .collect();
    let canvases: Vec<_> = worlds
        .iter()
        .enumerate()
        .map(|(i, wd)| {
            let mine: Vec<_> = steps
                .iter()
                .zip(&cams)
                .filter(|(s, _)| s.world == i)
                .map(|(_, c)| *c)
                .collect();
            camera::rasterise(fonts, wd, &mine, w, h)
        })
        .collect();

    // One lighting and exposure for the whole stream; blur and noise per frame.
    let base_cam = poses[0].cam(worlds[0].focus, w, h);
    let digit_h = worlds[0]
        .line
        .as_ref()
        .map_or(20.0, |l| camera::digit_heights(&base_cam, l)[1]);
    let target = camera::target_box(&worlds[0], &base_cam, w, h);
    let mut spoil = camera::sample_spoil(&mut rng, Severity::Full, digit_h, target, w);
    let base_blur = spoil.blur.min(0.4 + 0.035 * digit_h as f32);

    let mut labels = Vec::with_capacity(steps.len());
    for (i, (step, cam)) in steps.iter().zip(&cams).enumerate() {
        let far = fars[step.world];
        spoil.blur = (base_blur + step.blur_add).max(0.0);
        spoil.motion = step.motion + (step.pan_blur * far).min(160.0) as f32;
        spoil.motion_angle = step.motion_angle;
        let mut noise_rng = Rng::with_seed(derive_seed(
            spec.seed,
            SALT_FRAME,
            (index as u64) << 20 | i as u64,
        ));
        let world = &worlds[step.world];
        let (frame, seen) = camera::shoot(
            world,
            &canvases[step.world],
            cam,
            &spoil,
            w,
            h,
            &mut noise_rng,
        );
        let v = &vouchers[step.world];
        labels.push((seen > 0 && v.valid).then(|| v.line.clone()));
        let jpeg = super::encode_jpeg(&frame.to_image(), spoil.jpeg, &format!("{i:03}.jpg"))?;
        sink(i, &jpeg)?;
    }
    Ok(segments(&labels))
}

/// Runs of equal labels.
fn segments(labels: &[Option<String>]) -> Vec<StreamSegment> {
    let mut out: Vec<StreamSegment> = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        match out.last_mut() {
            Some(s) if s.voucher == *l => s.frames += 1,
            _ => out.push(StreamSegment {
                first_frame: i,
                frames: 1,
                voucher: l.clone(),
            }),
        }
    }
    out
}
