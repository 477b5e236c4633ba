//! Deterministic synthetic fixtures for the scanner: photos of Japanese vaccination
//! vouchers (接種券) and vaccine labels "the way a tablet camera takes them", with
//! their truth.
//!
//! Start at [`write_singles`] (a folder of JPEGs and `truth.json`) and
//! [`write_streams`] (folders of frames replayed as a camera, and `streams.json`).
//! [`render_single`] gives one frame in memory for benchmarks.
//!
//! How a picture is made, in reading order:
//! - `content`: what is printed (valid OCR lines, names, addresses, distractor
//!   digit strings; GTINs, lots and expiry dates for labels);
//! - `layout`: the designs of the voucher card, the 予診票, a reservation slip and
//!   a vaccine box with its sticker, as lists of marks in millimetres (`paper`);
//! - `scene`: the desk and the sheets lying on it;
//! - `camera`: the pose (rotation, viewing angle, distance chosen so the OCR
//!   digits are 12 to 40 px tall), the lighting and the optics; `frame` does the
//!   pixel work.
//!
//! [`eval`] scores the scanner against a folder's [`truth`] (`vrs scan --eval`).
//!
//! Everything follows from (seed, index): each image has its own generator, derived
//! from both, and no global randomness is used, so the same seed gives byte-identical
//! files on the same build.

mod camera;
mod content;
pub mod eval;
mod fonts;
mod frame;
mod geom;
mod layout;
mod noise;
mod paper;
mod scene;
mod stream;
mod symbols;
#[cfg(test)]
mod tests;
pub mod truth;

use std::io::Cursor;
use std::path::Path;

use fastrand::Rng;
use image::RgbImage;

pub use crate::truth::{LotTruth, StreamSegment, StreamTruth, TruthEntry};

use camera::{Keystone, Pose, Severity, Spoil};
use layout::{LINE_DIGIT_MM, LabelSymbol, VoucherSymbol, range};
use noise::derive_seed;

/// The OCR digits' height in the frame is kept within this range (pixels).
pub const DIGIT_HEIGHT_PX: (f64, f64) = (12.0, 40.0);

/// Frame sizes of the tablets' cameras.
pub const FRAME_SIZES: [(u32, u32); 2] = [(1280, 720), (1920, 1080)];

// Salts keep the generators of singles, streams and their parts apart.
const SALT_SINGLE: u64 = 1;
/// For [`render_voucher`]'s photos of a given voucher.
const SALT_GIVEN: u64 = 5;
const SALT_BLOCK: u64 = 2;
pub(crate) const SALT_STREAM: u64 = 3;
pub(crate) const SALT_FRAME: u64 = 4;

/// Why fixtures could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "font {path} could not be loaded ({detail}); install the fonts-ocr-b and fonts-noto-cjk packages (apt-get install fonts-ocr-b fonts-noto-cjk)"
    )]
    Font { path: String, detail: String },
    #[error("{path}: could not encode the image: {source}")]
    Encode {
        path: String,
        source: image::ImageError,
    },
    #[error("{path}: could not write the truth: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("could not encode the {what}: {detail}")]
    Barcode { what: &'static str, detail: String },
    #[error("bad fixture spec: {detail}")]
    Spec { detail: String },
    #[error("fixture generator bug: {detail}")]
    Internal { detail: String },
}

/// The kinds of single image, as written in [`TruthEntry::scene`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SceneKind {
    /// A voucher with only its OCR line.
    VoucherOcr,
    /// A voucher with a QR code holding the 18 digits (third dose on).
    VoucherQr,
    /// A voucher with an NW-7 barcode holding the 券番号 (2021 vouchers).
    VoucherNw7,
    /// No voucher: a 予診票 and/or a reservation slip, full of other digits.
    Empty,
    /// A voucher whose municipality check digit is wrong: must not be reported.
    InvalidCheck,
    /// A vaccine box sticker with a GS1-128 barcode.
    LabelGs1_128,
    /// A vaccine box sticker with a GS1 DataMatrix.
    LabelDataMatrix,
    /// A voucher (OCR line only) photographed under one everyday desk condition.
    Desk(Condition),
    /// Two valid vouchers in view: must not be reported.
    TwoVouchers,
}

/// What happens to a voucher photo at a real vaccination desk, each condition a scene
/// kind of its own (`voucher-<name>`), so that `vrs scan --eval` breaks the read rate
/// down by condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// Turned by any angle on the desk (0–360°).
    Rotated,
    /// Upside down (180° ± 12°).
    UpsideDown,
    /// Sideways (90° or 270° ± 12°).
    Sideways,
    /// A tablet held upright: a portrait frame, the voucher at any quarter turn.
    Portrait,
    /// The tablet tilted 30–45° over the desk: one end of the line far smaller.
    Perspective,
    /// Held close: digits 64–150 px tall.
    CloseUp,
    /// Held far: digits 9.5–12.5 px tall.
    Small,
    /// A 3840×2160 frame, digits 20–150 px.
    Uhd,
    /// A dim room: dark, a warm cast, heavy sensor noise.
    LowLight,
    /// A ballpoint tick, ring or stroke through the digits.
    Pen,
    /// A red 済 stamp over the line.
    Stamp,
    /// A sticker on a curved surface: the line bows.
    Curved,
    /// A crease across the line: it kinks a few degrees.
    Creased,
    /// The voucher shown on a phone's screen (sub-pixels, moiré).
    Screen,
}

impl Condition {
    pub const ALL: [Condition; 14] = [
        Condition::Rotated,
        Condition::UpsideDown,
        Condition::Sideways,
        Condition::Portrait,
        Condition::Perspective,
        Condition::CloseUp,
        Condition::Small,
        Condition::Uhd,
        Condition::LowLight,
        Condition::Pen,
        Condition::Stamp,
        Condition::Curved,
        Condition::Creased,
        Condition::Screen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Condition::Rotated => "voucher-rotated",
            Condition::UpsideDown => "voucher-upside-down",
            Condition::Sideways => "voucher-sideways",
            Condition::Portrait => "voucher-portrait",
            Condition::Perspective => "voucher-perspective",
            Condition::CloseUp => "voucher-close-up",
            Condition::Small => "voucher-small",
            Condition::Uhd => "voucher-4k",
            Condition::LowLight => "voucher-low-light",
            Condition::Pen => "voucher-pen",
            Condition::Stamp => "voucher-stamp",
            Condition::Curved => "voucher-curved",
            Condition::Creased => "voucher-creased",
            Condition::Screen => "voucher-screen",
        }
    }

    /// The frame size for this condition, given the one drawn for the set.
    fn frame_size(self, rng: &mut Rng, (w, h): (u32, u32)) -> (u32, u32) {
        match self {
            Condition::Portrait => (w.min(h), w.max(h)),
            Condition::Uhd => (3840, 2160),
            Condition::CloseUp => {
                if rng.bool() {
                    (3840, 2160)
                } else {
                    (1920, 1080)
                }
            }
            _ => (w, h),
        }
    }
}

impl SceneKind {
    pub fn name(self) -> &'static str {
        match self {
            SceneKind::VoucherOcr => "voucher-ocr",
            SceneKind::VoucherQr => "voucher-qr",
            SceneKind::VoucherNw7 => "voucher-nw7",
            SceneKind::Empty => "empty",
            SceneKind::InvalidCheck => "invalid-check",
            SceneKind::LabelGs1_128 => "label-gs1-128",
            SceneKind::LabelDataMatrix => "label-datamatrix",
            SceneKind::Desk(c) => c.name(),
            SceneKind::TwoVouchers => "two-vouchers",
        }
    }
}

/// The share of each scene kind, as weights. Images are dealt in blocks of
/// (sum of weights) with each kind appearing exactly its weight's times per block in
/// a shuffled order, so even a small set has the intended mix. Labels alternate
/// between GS1-128 and DataMatrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SceneMix {
    pub voucher_ocr: u32,
    pub voucher_qr: u32,
    pub voucher_nw7: u32,
    pub empty: u32,
    pub invalid_check: u32,
    pub label: u32,
    /// Each desk [`Condition`] this many times a block.
    pub conditions: u32,
    pub two_vouchers: u32,
}

impl Default for SceneMix {
    /// 55% OCR only, 15% QR, 15% NW-7, 5% empty, 5% invalid check digit, 5% labels.
    fn default() -> Self {
        SceneMix {
            voucher_ocr: 11,
            voucher_qr: 3,
            voucher_nw7: 3,
            empty: 1,
            invalid_check: 1,
            label: 1,
            conditions: 0,
            two_vouchers: 0,
        }
    }
}

impl SceneMix {
    /// The desk set: every [`Condition`] once a block, with an ordinary voucher, two
    /// vouchers in view, an empty desk and a wrong check digit beside them.
    pub fn desk() -> Self {
        SceneMix {
            voucher_ocr: 1,
            voucher_qr: 0,
            voucher_nw7: 0,
            empty: 1,
            invalid_check: 1,
            label: 0,
            conditions: 1,
            two_vouchers: 1,
        }
    }

    fn block(&self) -> Vec<Option<SceneKind>> {
        // None stands for a label; which symbol it carries is decided by its rank.
        let mut v = Vec::new();
        let parts = [
            (self.voucher_ocr, Some(SceneKind::VoucherOcr)),
            (self.voucher_qr, Some(SceneKind::VoucherQr)),
            (self.voucher_nw7, Some(SceneKind::VoucherNw7)),
            (self.empty, Some(SceneKind::Empty)),
            (self.invalid_check, Some(SceneKind::InvalidCheck)),
            (self.label, None),
        ];
        for (n, k) in parts {
            v.extend(std::iter::repeat_n(k, n as usize));
        }
        for c in Condition::ALL {
            v.extend(std::iter::repeat_n(
                Some(SceneKind::Desk(c)),
                self.conditions as usize,
            ));
        }
        v.extend(std::iter::repeat_n(
            Some(SceneKind::TwoVouchers),
            self.two_vouchers as usize,
        ));
        v
    }

    /// The kind of image `index` of a set made with `seed`.
    pub fn kind(&self, seed: u64, index: usize) -> Result<SceneKind, SynthError> {
        let mut block = self.block();
        if block.is_empty() {
            return Err(SynthError::Spec {
                detail: "every scene weight is 0; give at least one kind a weight".into(),
            });
        }
        let n = block.len();
        let (b, pos) = (index / n, index % n);
        Rng::with_seed(derive_seed(seed, SALT_BLOCK, b as u64)).shuffle(&mut block);
        Ok(match block[pos] {
            Some(k) => k,
            None => {
                let before = block[..pos].iter().filter(|k| k.is_none()).count();
                let rank = b * self.label as usize + before;
                if rank % 2 == 0 {
                    SceneKind::LabelGs1_128
                } else {
                    SceneKind::LabelDataMatrix
                }
            }
        })
    }
}

/// What [`write_singles`] makes.
#[derive(Clone, Debug, PartialEq)]
pub struct SinglesSpec {
    pub count: usize,
    pub seed: u64,
    pub mix: SceneMix,
    /// Frame sizes to choose from, uniformly.
    pub sizes: Vec<(u32, u32)>,
}

impl Default for SinglesSpec {
    fn default() -> Self {
        SinglesSpec {
            count: 100,
            seed: 1,
            mix: SceneMix::default(),
            sizes: FRAME_SIZES.to_vec(),
        }
    }
}

fn check_sizes(sizes: &[(u32, u32)]) -> Result<(), SynthError> {
    if sizes.is_empty() {
        return Err(SynthError::Spec {
            detail: "no frame sizes; give at least one, e.g. 1280x720".into(),
        });
    }
    if let Some((w, h)) = sizes.iter().find(|(w, h)| *w < 640 || *h < 360) {
        return Err(SynthError::Spec {
            detail: format!(
                "frame size {w}x{h} is below 640x360, too small to hold a voucher's 18 digits at 12 px"
            ),
        });
    }
    Ok(())
}

/// Any text as a QR code on white, `module` pixels a module with a four-module quiet
/// zone: the enrolment code's QR as the municipality's page shows it, for tests.
pub fn qr_image(text: &str, module: u32) -> Result<image::GrayImage, SynthError> {
    let m = symbols::qr(text)?;
    let module = module.max(1);
    let quiet = 4 * module;
    let side = |n: usize| n as u32 * module + 2 * quiet;
    let mut img = image::GrayImage::from_pixel(side(m.cols), side(m.rows()), image::Luma([255]));
    for (i, &dark) in m.bits.iter().enumerate() {
        if !dark {
            continue;
        }
        let (x, y) = ((i % m.cols) as u32, (i / m.cols) as u32);
        for dy in 0..module {
            for dx in 0..module {
                img.put_pixel(
                    quiet + x * module + dx,
                    quiet + y * module + dy,
                    image::Luma([0]),
                );
            }
        }
    }
    Ok(img)
}

/// Writes `count` images (`0000.jpg`, `0001.jpg`, …) and `DIR/truth.json`; returns
/// the entries. The folder is created if missing; existing files of the same names
/// are overwritten.
pub fn write_singles(dir: &Path, spec: &SinglesSpec) -> Result<Vec<TruthEntry>, SynthError> {
    check_sizes(&spec.sizes)?;
    create_dir(dir)?;
    let mut entries = Vec::with_capacity(spec.count);
    for index in 0..spec.count {
        let file = format!("{index:04}.jpg");
        let (jpeg, entry) = render_jpeg(spec, index, &file)?;
        write_file(&dir.join(&file), &jpeg)?;
        entries.push(entry);
    }
    write_json(&dir.join("truth.json"), &entries)?;
    Ok(entries)
}

/// One frame in memory, for benchmarks: image `index` of the set [`write_singles`]
/// makes with `seed` and the default spec, decoded from the same JPEG bytes the file
/// would hold (so a benchmark sees exactly what a test of the folder sees).
///
/// # Panics
/// When the fonts are not installed (install fonts-ocr-b and fonts-noto-cjk), the
/// one failure possible without a file system.
pub fn render_single(seed: u64, index: usize) -> (RgbImage, TruthEntry) {
    match try_render_single(seed, index) {
        Ok(v) => v,
        Err(e) => panic!("render_single({seed}, {index}): {e}"),
    }
}

/// [`render_single`], with the error returned.
pub fn try_render_single(seed: u64, index: usize) -> Result<(RgbImage, TruthEntry), SynthError> {
    let spec = SinglesSpec {
        seed,
        count: index + 1,
        ..SinglesSpec::default()
    };
    let file = format!("{index:04}.jpg");
    let (jpeg, entry) = render_jpeg(&spec, index, &file)?;
    let img = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .map_err(|source| SynthError::Encode {
            path: file.clone(),
            source,
        })?
        .to_rgb8();
    Ok((img, entry))
}

/// Renders image `index` of `spec` as JPEG bytes, with its truth.
fn render_jpeg(
    spec: &SinglesSpec,
    index: usize,
    file: &str,
) -> Result<(Vec<u8>, TruthEntry), SynthError> {
    check_sizes(&spec.sizes)?;
    let fonts = fonts::fonts()?;
    let kind = spec.mix.kind(spec.seed, index)?;
    let mut rng = Rng::with_seed(derive_seed(spec.seed, SALT_SINGLE, index as u64));
    let (w, h) = spec.sizes[rng.usize(..spec.sizes.len())];
    let (w, h) = match kind {
        SceneKind::Desk(c) => c.frame_size(&mut rng, (w, h)),
        _ => (w, h),
    };
    let shot = match kind {
        SceneKind::VoucherOcr
        | SceneKind::VoucherQr
        | SceneKind::VoucherNw7
        | SceneKind::InvalidCheck => voucher_shot(fonts, &mut rng, kind, w, h)?,
        SceneKind::Desk(c) => desk_shot(fonts, &mut rng, c, w, h)?,
        SceneKind::TwoVouchers => two_voucher_shot(fonts, &mut rng, w, h)?,
        SceneKind::Empty => empty_shot(fonts, &mut rng, w, h),
        SceneKind::LabelGs1_128 | SceneKind::LabelDataMatrix => {
            label_shot(fonts, &mut rng, kind, w, h)?
        }
    };
    let frame = photograph(fonts, &shot, &mut rng, w, h);
    let jpeg = encode_jpeg(&frame, shot.spoil.jpeg, file)?;
    let entry = TruthEntry {
        file: file.to_owned(),
        voucher: shot.voucher,
        lot: shot.lot,
        scene: kind.name().to_owned(),
        note: format!("{w}x{h} {}", shot.note),
    };
    Ok((jpeg, entry))
}

/// A scene with its camera, its faults and its truth.
struct Shot {
    world: scene::World,
    cam: geom::Homography,
    spoil: Spoil,
    voucher: Option<String>,
    lot: Option<LotTruth>,
    note: String,
}

fn voucher_shot(
    fonts: &fonts::Fonts,
    rng: &mut Rng,
    kind: SceneKind,
    w: u32,
    h: u32,
) -> Result<Shot, SynthError> {
    // QR codes came with the third dose; NW-7 with the 2021 (first two) vouchers.
    let (symbol, dose) = match kind {
        SceneKind::VoucherQr => (VoucherSymbol::Qr, rng.u8(3..=7)),
        SceneKind::VoucherNw7 => (VoucherSymbol::Nw7, rng.u8(1..=2)),
        _ => (VoucherSymbol::None, rng.u8(1..=5)),
    };
    let mut v = content::voucher(rng, dose)?;
    if kind == SceneKind::InvalidCheck {
        content::break_check_digit(rng, &mut v)?;
    }
    shoot_voucher(fonts, rng, &v, symbol, Look::of(Severity::Full), w, h)
}

/// A voucher with its OCR line only, under one desk condition.
fn desk_shot(
    fonts: &fonts::Fonts,
    rng: &mut Rng,
    cond: Condition,
    w: u32,
    h: u32,
) -> Result<Shot, SynthError> {
    let dose = rng.u8(1..=5);
    let v = content::voucher(rng, dose)?;
    let mut look = Look::of(Severity::Full);
    // How many digit heights the line spans (18 OCR-B digits), with room to spare.
    let fits = |side: u32| 0.9 * f64::from(side) / 16.0;
    match cond {
        Condition::Rotated => look.rot = (-180.0, 180.0),
        Condition::UpsideDown => look.rot = (168.0, 192.0),
        Condition::Sideways => {
            let side = if rng.bool() { 90.0 } else { -90.0 };
            look.rot = (side - 12.0, side + 12.0);
        }
        Condition::Portrait => {
            let quarter = f64::from(rng.u8(0..4)) * 90.0;
            look.rot = (quarter - 12.0, quarter + 12.0);
            // Sideways in a portrait frame the line runs along its long side.
            let along = if quarter as u32 % 180 == 0 { w } else { h };
            look.digits.1 = look.digits.1.min(fits(along));
        }
        Condition::Perspective => look.keystone = (0.25, 0.45),
        Condition::CloseUp => look.digits = (64.0, 150.0f64.min(fits(w))),
        Condition::Small => look.digits = (9.5, 12.5),
        Condition::Uhd => look.digits = (20.0, 150.0f64.min(fits(w))),
        Condition::Pen => look.deface = Some(scene::Deface::Pen),
        Condition::Stamp => look.deface = Some(scene::Deface::Stamp),
        Condition::LowLight | Condition::Curved | Condition::Creased | Condition::Screen => {}
    }
    look.condition = Some(cond);
    shoot_voucher(fonts, rng, &v, VoucherSymbol::None, look, w, h)
}

/// Two valid vouchers from one municipality in view.
fn two_voucher_shot(
    fonts: &fonts::Fonts,
    rng: &mut Rng,
    w: u32,
    h: u32,
) -> Result<Shot, SynthError> {
    let (da, db) = (rng.u8(1..=5), rng.u8(1..=5));
    let a = content::voucher(rng, da)?;
    let b = content::voucher(rng, db)?;
    let (world, how) = scene::two_voucher_world(fonts, rng, &a, &b)?;
    let pose = Pose {
        scale: range(rng, 13.0, 30.0) / LINE_DIGIT_MM,
        rot_deg: range(rng, -15.0, 15.0) - world.subject_rot,
        keystone: Keystone::sample(rng, 0.08),
        at: (0.0, 0.0),
        pan: (0.0, 0.0),
    };
    let pose = camera::fit_pose(rng, &world, w, h, pose, (10.0, 30.0));
    let cam = pose.cam(world.focus, w, h);
    let digit_h = world
        .line
        .as_ref()
        .map_or(0.0, |l| camera::digit_heights(&cam, l)[1]);
    let target = camera::target_box(&world, &cam, w, h);
    let spoil = camera::sample_spoil(rng, Severity::Mild, digit_h, target, w);
    let note = format!(
        "digit_h={digit_h:.0} {} {} two={how} lines={},{}",
        pose_note(&pose, world.subject_rot),
        spoil_note(&spoil),
        a.line,
        b.line
    );
    Ok(Shot {
        world,
        cam,
        spoil,
        voucher: None,
        lot: None,
        note,
    })
}

/// How a voucher is shot: the ranges the pose is drawn from, and what a condition adds.
#[derive(Clone, Copy, Debug)]
struct Look {
    severity: Severity,
    /// Digit height in the frame (px).
    digits: (f64, f64),
    /// The voucher's rotation in the frame (degrees).
    rot: (f64, f64),
    /// Keystone amount: (0, max) sometimes, (min, max) with min > 0 always.
    keystone: (f64, f64),
    deface: Option<scene::Deface>,
    condition: Option<Condition>,
}

impl Look {
    fn of(severity: Severity) -> Look {
        let full = Look {
            severity,
            digits: (12.5, 39.5),
            rot: (-15.0, 15.0),
            keystone: (0.0, 0.08),
            deface: None,
            condition: None,
        };
        match severity {
            Severity::Full => full,
            // A given voucher (a demo's, a test's) is held square and close, as a nurse does.
            Severity::Mild => Look {
                digits: (22.0, 34.0),
                rot: (-6.0, 6.0),
                ..full
            },
        }
    }
}

/// A photo of the voucher with `line` (say a register's resident, for a demo or a
/// test), printed by `municipality` of `prefecture`, with the OCR line only and mild
/// camera faults: a 1280×720 frame the scanner reads. The same seed gives the same
/// photo.
pub fn render_voucher(
    seed: u64,
    line: &vrs_domain::OcrLine,
    prefecture: &str,
    municipality: &str,
) -> Result<RgbImage, SynthError> {
    let fonts = fonts::fonts()?;
    let mut rng = Rng::with_seed(derive_seed(seed, SALT_GIVEN, 0));
    let v = content::voucher_of(&mut rng, line, prefecture.into(), municipality.into())?;
    let (w, h) = (1280, 720);
    let shot = shoot_voucher(
        fonts,
        &mut rng,
        &v,
        VoucherSymbol::None,
        Look::of(Severity::Mild),
        w,
        h,
    )?;
    Ok(photograph(fonts, &shot, &mut rng, w, h))
}

/// The shot's frame, as the camera takes it (its noise drawn from `rng`).
fn photograph(fonts: &fonts::Fonts, shot: &Shot, rng: &mut Rng, w: u32, h: u32) -> RgbImage {
    let canvases = camera::rasterise(fonts, &shot.world, &[shot.cam], w, h);
    let mut noise_rng = Rng::with_seed(rng.u64(..));
    let (frame, _) = camera::shoot(
        &shot.world,
        &canvases,
        &shot.cam,
        &shot.spoil,
        w,
        h,
        &mut noise_rng,
    );
    frame.to_image()
}

fn shoot_voucher(
    fonts: &fonts::Fonts,
    rng: &mut Rng,
    v: &content::Voucher,
    symbol: VoucherSymbol,
    look: Look,
    w: u32,
    h: u32,
) -> Result<Shot, SynthError> {
    let mut design = Rng::with_seed(rng.u64(..));
    let world = scene::voucher_world(fonts, rng, &mut design, v, symbol, look.deface)?;
    // NW-7's narrow bars are 0.3 mm: from 15 px digits up they are 2 px or wider.
    let lo = if symbol == VoucherSymbol::Nw7 {
        look.digits.0.max(15.0)
    } else {
        look.digits.0
    };
    let hi = look.digits.1;
    // Drawn in this order (scale, turn, keystone) so that the ordinary sets come out
    // as they did before the desk conditions were added.
    let scale = range(rng, lo, hi) / LINE_DIGIT_MM;
    let rot_deg = range(rng, look.rot.0, look.rot.1) - world.subject_rot;
    let keystone = if look.keystone.0 > 0.0 {
        Keystone {
            amount: range(rng, look.keystone.0, look.keystone.1),
            ..Keystone::sample(rng, 0.0)
        }
    } else {
        Keystone::sample(rng, look.keystone.1)
    };
    let pose = Pose {
        scale,
        rot_deg,
        keystone,
        at: (0.0, 0.0),
        pan: (0.0, 0.0),
    };
    let pose = camera::fit_pose(rng, &world, w, h, pose, (lo, hi));
    let cam = pose.cam(world.focus, w, h);
    let digit_h = world
        .line
        .as_ref()
        .map_or(0.0, |l| camera::digit_heights(&cam, l)[1]);
    let target = camera::target_box(&world, &cam, w, h);
    let mut spoil = camera::sample_spoil(rng, look.severity, digit_h, target, w);
    if let Some(c) = look.condition {
        condition_spoil(rng, c, &world, &cam, digit_h, &mut spoil);
    }
    let mut note = format!(
        "digit_h={digit_h:.0} {} {}",
        pose_note(&pose, world.subject_rot),
        spoil_note(&spoil)
    );
    match symbol {
        VoucherSymbol::Qr => note.push_str(" qr"),
        VoucherSymbol::Nw7 => note.push_str(" nw7"),
        VoucherSymbol::None => {}
    }
    note.push_str(&format!(" on={}", world.setting));
    if !v.valid {
        note.push_str(&format!(" printed={}", v.line));
    }
    Ok(Shot {
        world,
        cam,
        spoil,
        voucher: v.valid.then(|| v.line.clone()),
        lot: None,
        note,
    })
}

/// What a condition does to the light, the paper's shape or the medium.
fn condition_spoil(
    rng: &mut Rng,
    c: Condition,
    world: &scene::World,
    cam: &geom::Homography,
    digit_h: f64,
    spoil: &mut Spoil,
) {
    match c {
        Condition::LowLight => {
            let l = &mut spoil.light;
            l.exposure = range(rng, 0.2, 0.42) as f32;
            l.white_balance = [
                range(rng, 1.05, 1.2) as f32,
                1.0,
                range(rng, 0.6, 0.85) as f32,
            ];
            l.glare = None;
            spoil.noise = range(rng, 6.0, 14.0) as f32;
            spoil.jpeg = rng.u8(60..=85);
        }
        Condition::Curved | Condition::Creased => {
            let Some(line) = &world.line else { return };
            let [tl, tr, br, bl] = line.map(|p| cam.apply(p));
            let a = ((tl.0 + bl.0) / 2.0, (tl.1 + bl.1) / 2.0);
            let b = ((tr.0 + br.0) / 2.0, (tr.1 + br.1) / 2.0);
            let len = (b.0 - a.0).hypot(b.1 - a.1).max(1.0);
            let bend = if c == Condition::Curved {
                let sign = if rng.bool() { 1.0 } else { -1.0 };
                frame::Bend::Curve {
                    sag: (sign * range(rng, 0.35, 0.9) * digit_h) as f32,
                }
            } else {
                let sign = if rng.bool() { 1.0 } else { -1.0 };
                frame::Bend::Crease {
                    at: range(rng, 0.25, 0.75) as f32,
                    angle: (sign * range(rng, 3.0, 8.0)).to_radians() as f32,
                }
            };
            spoil.warp = Some(frame::Warp {
                origin: (a.0 as f32, a.1 as f32),
                dir: (((b.0 - a.0) / len) as f32, ((b.1 - a.1) / len) as f32),
                len: len as f32,
                bend,
            });
        }
        Condition::Screen => {
            spoil.screen = Some(frame::Screen {
                pitch: range(rng, 1.15, 2.6) as f32,
                angle: range(rng, -0.12, 0.12) as f32,
            });
            // A screen is its own light: bluish white, a little flat.
            let l = &mut spoil.light;
            l.white_balance = [0.92, 1.0, 1.1];
            l.contrast = l.contrast.min(range(rng, 0.7, 0.95) as f32);
            l.shadow = None;
        }
        _ => {}
    }
}

fn empty_shot(fonts: &fonts::Fonts, rng: &mut Rng, w: u32, h: u32) -> Shot {
    let world = scene::no_voucher_world(fonts, rng);
    let pose = Pose {
        scale: range(rng, 13.0, 38.0) / LINE_DIGIT_MM,
        rot_deg: range(rng, -15.0, 15.0),
        keystone: Keystone::sample(rng, 0.08),
        at: (f64::from(w) / 2.0, f64::from(h) / 2.0),
        pan: (0.0, 0.0),
    };
    let cam = pose.cam(world.focus, w, h);
    let target = camera::target_box(&world, &cam, w, h);
    let spoil = camera::sample_spoil(rng, Severity::Full, 20.0, target, w);
    let note = format!(
        "{} {} on={}",
        pose_note(&pose, 0.0),
        spoil_note(&spoil),
        world.setting
    );
    Shot {
        world,
        cam,
        spoil,
        voucher: None,
        lot: None,
        note,
    }
}

fn label_shot(
    fonts: &fonts::Fonts,
    rng: &mut Rng,
    kind: SceneKind,
    w: u32,
    h: u32,
) -> Result<Shot, SynthError> {
    let data = content::label(rng)?;
    let symbol = if kind == SceneKind::LabelGs1_128 {
        LabelSymbol::Gs1_128
    } else {
        LabelSymbol::DataMatrix
    };
    let (world, module_mm) = scene::label_world(fonts, rng, &data, symbol)?;
    // Sized by the barcode's module, which is what a decoder needs to resolve.
    let module_px = match symbol {
        LabelSymbol::Gs1_128 => range(rng, 1.9, 3.2),
        LabelSymbol::DataMatrix => range(rng, 3.5, 7.0),
    };
    let pose = Pose {
        scale: module_px / module_mm,
        rot_deg: range(rng, -10.0, 10.0) - world.subject_rot,
        keystone: Keystone::sample(rng, 0.04),
        at: (0.0, 0.0),
        pan: (0.0, 0.0),
    };
    let pose = camera::fit_pose(rng, &world, w, h, pose, DIGIT_HEIGHT_PX);
    let cam = pose.cam(world.focus, w, h);
    let target = camera::target_box(&world, &cam, w, h);
    let module_px = world.key.first().map_or(module_px, |q| {
        let c = geom::Rect::bounding(q).map_or((0.0, 0.0), |r| r.center());
        cam.local_scale(c) * module_mm
    });
    let spoil = camera::sample_spoil(rng, Severity::Mild, module_px * 5.0, target, w);
    let note = format!(
        "module={module_px:.1} {} {} {}",
        pose_note(&pose, world.subject_rot),
        spoil_note(&spoil),
        if symbol == LabelSymbol::Gs1_128 {
            "gs1-128"
        } else {
            "datamatrix"
        }
    );
    Ok(Shot {
        world,
        cam,
        spoil,
        voucher: None,
        lot: Some(LotTruth {
            gtin: data.gtin.clone(),
            lot: data.lot.clone(),
            expiry: data.expiry_iso(),
        }),
        note,
    })
}

/// `rot` is the subject's rotation in the frame: the camera's plus the subject's on
/// the desk.
fn pose_note(p: &Pose, subject_rot: f64) -> String {
    format!(
        "rot={:.1} persp={:.2}",
        p.rot_deg + subject_rot,
        p.keystone.amount
    )
}

fn spoil_note(s: &Spoil) -> String {
    let mut n = format!(
        "blur={:.1} motion={:.0} noise={:.0} jpeg={}",
        s.blur, s.motion, s.noise, s.jpeg
    );
    let l = &s.light;
    if l.shadow.is_some() {
        n.push_str(" shadow");
    }
    if l.glare.is_some() {
        n.push_str(" glare");
    }
    if l.contrast < 1.0 {
        n.push_str(&format!(" contrast={:.2}", l.contrast));
    }
    if l.gradient > 0.0 {
        n.push_str(&format!(" light={:.2}", l.gradient));
    }
    n
}

pub(crate) fn encode_jpeg(img: &RgbImage, quality: u8, path: &str) -> Result<Vec<u8>, SynthError> {
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|source| SynthError::Encode {
            path: path.to_owned(),
            source,
        })?;
    Ok(out.into_inner())
}

fn create_dir(dir: &Path) -> Result<(), SynthError> {
    std::fs::create_dir_all(dir).map_err(|source| SynthError::Io {
        path: dir.display().to_string(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    std::fs::write(path, bytes).map_err(|source| SynthError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), SynthError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| SynthError::Json {
        path: path.display().to_string(),
        source,
    })?;
    text.push('\n');
    write_file(path, text.as_bytes())
}

/// What [`write_streams`] makes.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSpec {
    pub count: usize,
    /// Frames per stream.
    pub frames: usize,
    pub seed: u64,
    pub sizes: Vec<(u32, u32)>,
    /// The share of streams (of 20 frames or more) in which the voucher is swapped
    /// for a second one.
    pub swap_share: f64,
    /// The share of second vouchers whose check digit is wrong (their frames' truth
    /// is None: a scanner still showing the first voucher then is wrong).
    pub invalid_second_share: f64,
}

impl Default for StreamSpec {
    fn default() -> Self {
        StreamSpec {
            count: 10,
            frames: 30,
            seed: 1,
            sizes: FRAME_SIZES.to_vec(),
            swap_share: 0.5,
            invalid_second_share: 0.2,
        }
    }
}

/// Writes `DIR/stream-000/000.jpg` … and `DIR/streams.json`.
///
/// Each stream: the tablet pointed away from the voucher (frames with no voucher),
/// brought over it (a few frames with heavy motion blur), held (small hand shake:
/// rotation, position, scale and blur change slightly from frame to frame), and in
/// some streams moved away and back over a second, different voucher. A segment
/// starts at the first frame showing any part of its voucher, blurred arrival frames
/// included, and ends at the last; frames showing no voucher (or one whose check
/// digit is wrong) have voucher None.
pub fn write_streams(dir: &Path, spec: &StreamSpec) -> Result<Vec<StreamTruth>, SynthError> {
    check_sizes(&spec.sizes)?;
    if spec.frames == 0 {
        return Err(SynthError::Spec {
            detail: "frames per stream is 0; 30 is usual".into(),
        });
    }
    let fonts = fonts::fonts()?;
    create_dir(dir)?;
    let mut all = Vec::with_capacity(spec.count);
    for s in 0..spec.count {
        let name = format!("stream-{s:03}");
        let sub = dir.join(&name);
        create_dir(&sub)?;
        let segments = stream::render_stream(fonts, spec, s, |i, bytes| {
            write_file(&sub.join(format!("{i:03}.jpg")), bytes)
        })?;
        all.push(StreamTruth {
            dir: name,
            segments,
        });
    }
    write_json(&dir.join("streams.json"), &all)?;
    Ok(all)
}
