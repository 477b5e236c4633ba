//! A scene: the desk, the sheets lying on it (bottom to top) and what the camera must
//! keep in view. Coordinates are desk millimetres.

use fastrand::Rng;

use super::SynthError;
use super::content::{LabelData, Voucher};
use super::fonts::Fonts;
use super::frame::Desk;
use super::geom::{Homography, Rect};
use super::layout::{self, LabelSymbol, Placed, VoucherSymbol, range};
use super::paper::{Mark, Rgb8, Sheet};

pub(crate) type Quad = [(f64, f64); 4];

#[derive(Clone, Debug)]
pub(crate) struct World {
    pub desk: Desk,
    pub sheets: Vec<Sheet>,
    /// Desk-mm quads that must be inside the frame (OCR line, barcodes).
    pub key: Vec<Quad>,
    /// The OCR digits' box (top-left, top-right, bottom-right, bottom-left).
    pub line: Option<Quad>,
    /// Where the camera aims.
    pub focus: (f64, f64),
    /// The sheet whose visibility decides whether "the voucher is in view".
    pub subject: Option<usize>,
    /// A word for the note: what the subject lies on.
    pub setting: &'static str,
    /// How the subject is turned on the desk (degrees): the camera turns by the
    /// rest, so the subject's rotation in the frame is what was drawn for it.
    pub subject_rot: f64,
}

fn quad(place: &Homography, r: &Rect) -> Quad {
    r.corners().map(|p| place.apply(p))
}

pub(crate) fn desk(rng: &mut Rng) -> Desk {
    let seed = rng.u32(..);
    match rng.u8(0..10) {
        0..=3 => {
            let woods = [
                [196.0, 160.0, 118.0],
                [222.0, 196.0, 156.0],
                [170.0, 118.0, 80.0],
            ];
            let light = woods[rng.usize(..woods.len())];
            Desk::Wood {
                light,
                dark: light.map(|c| c * 0.8),
                period: range(rng, 2.5, 7.0) as f32,
                angle: range(rng, -0.3, 0.3) as f32
                    + if rng.bool() {
                        std::f32::consts::FRAC_PI_2
                    } else {
                        0.0
                    },
                plank: range(rng, 90.0, 160.0) as f32,
                seed,
            }
        }
        4..=6 => {
            let g = range(rng, 110.0, 185.0) as f32;
            Desk::Laminate {
                base: [g, g + 2.0, g + 5.0],
                seed,
            }
        }
        _ => {
            let bases = [
                [235.0, 235.0, 230.0],
                [60.0, 95.0, 70.0],
                [70.0, 80.0, 110.0],
                [205.0, 190.0, 165.0],
                [45.0, 45.0, 48.0],
            ];
            Desk::Solid {
                base: bases[rng.usize(..bases.len())],
                seed,
            }
        }
    }
}

/// Puts `p` on the desk with `place` and records its key regions and line.
fn lay(world: &mut World, mut p: Placed, place: Homography, subject: bool) {
    p.sheet.place = place;
    world.key.extend(p.key.iter().map(|r| quad(&place, r)));
    if let Some(l) = &p.line {
        world.line = Some(quad(&place, l));
    }
    if subject {
        world.subject = Some(world.sheets.len());
        world.subject_rot = place.0[3].atan2(place.0[0]).to_degrees();
    }
    world.sheets.push(p.sheet);
}

fn empty_world(rng: &mut Rng) -> World {
    World {
        desk: desk(rng),
        sheets: Vec::new(),
        key: Vec::new(),
        line: None,
        focus: (0.0, 0.0),
        subject: None,
        setting: "desk",
        subject_rot: 0.0,
    }
}

/// The focus: the middle of the key regions, or of the subject sheet.
fn aim_at_keys(world: &mut World) {
    let pts: Vec<(f64, f64)> = world.key.iter().flatten().copied().collect();
    if let Some(r) = Rect::bounding(&pts) {
        world.focus = r.center();
    }
}

/// What a hand or a desk did to the printed line before the photo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deface {
    /// A ballpoint tick, circle or stroke through the digits (blue or black).
    Pen,
    /// A red 済 stamp pressed over the line.
    Stamp,
}

const PEN_BLUE: Rgb8 = [35, 55, 165];
const PEN_BLACK: Rgb8 = [30, 30, 36];
const STAMP_RED: Rgb8 = [205, 45, 50];

/// Marks over the line `l` (card mm): legible digits with ink across them.
fn deface_marks(rng: &mut Rng, l: &Rect, how: Deface) -> Vec<Mark> {
    let h = l.y1 - l.y0;
    let x = range(rng, l.x0 + 2.0 * h, l.x1 - 2.0 * h);
    let mid = (l.y0 + l.y1) / 2.0;
    match how {
        Deface::Pen => {
            let color = if rng.bool() { PEN_BLUE } else { PEN_BLACK };
            let width = range(rng, 0.3, 0.5);
            let points = match rng.u8(0..3) {
                // A tick: down through the line, then up and away.
                0 => vec![
                    (x - 1.2 * h, mid - 0.2 * h),
                    (x, l.y1 + 0.3 * h),
                    (x + 2.5 * h, l.y0 - 1.2 * h),
                ],
                // A ring drawn around part of the number, crossing digits at its ends.
                1 => {
                    let (rx, ry) = (range(rng, 2.5, 6.0) * h, range(rng, 0.6, 1.1) * h);
                    let tilt = range(rng, -0.15, 0.15);
                    (0..=40)
                        .map(|i| {
                            let a = f64::from(i) / 40.0 * std::f64::consts::TAU * 1.05;
                            let (ex, ey) = (rx * a.cos(), ry * a.sin());
                            (
                                x + ex * tilt.cos() - ey * tilt.sin(),
                                mid + ex * tilt.sin() + ey * tilt.cos(),
                            )
                        })
                        .collect()
                }
                // A quick slanted stroke across two or three digits.
                _ => vec![(x - 1.5 * h, l.y1 + 0.2 * h), (x + 1.5 * h, l.y0 - 0.2 * h)],
            };
            vec![Mark::Stroke {
                points,
                width,
                color,
            }]
        }
        Deface::Stamp => vec![Mark::Stamp {
            center: (x, mid + range(rng, -0.8, 0.8) * h),
            radius: range(rng, 2.6, 4.0) * h,
            color: STAMP_RED,
            density: range(rng, 0.55, 0.9) as f32,
            seed: rng.u32(..),
        }],
    }
}

/// A voucher card on a desk, on a 予診票, or on a 予診票 near its edge with the
/// desk showing; sometimes a reservation slip lies beside it.
pub(crate) fn voucher_world(
    fonts: &Fonts,
    rng: &mut Rng,
    design: &mut Rng,
    v: &Voucher,
    symbol: VoucherSymbol,
    deface: Option<Deface>,
) -> Result<World, SynthError> {
    let mut card = layout::voucher_card(fonts, design, v, symbol)?;
    if let (Some(how), Some(l)) = (deface, card.line) {
        let marks = deface_marks(rng, &l, how);
        card.sheet.marks.extend(marks);
    }
    let mut world = empty_world(rng);
    let (cw, ch) = card.sheet.size;
    let card_rot = range(rng, -8.0, 8.0);
    let setting = rng.u8(0..20);
    if setting >= 8 {
        let form = layout::form(fonts, rng);
        let slot = form.slot;
        let form_place = Homography::place(range(rng, -4.0, 4.0), 0.0, 0.0);
        // Card centre in form mm: on the slot, anywhere on the form, or hanging
        // over its right or left edge.
        let (fx, fy, setting_name) = match (setting, slot) {
            (8..=11, Some(s)) => {
                let c = s.center();
                (
                    c.0 + range(rng, -6.0, 6.0),
                    c.1 + range(rng, -4.0, 4.0),
                    "form",
                )
            }
            (12..=15, _) => (range(rng, 60.0, 150.0), range(rng, 70.0, 240.0), "form"),
            _ => {
                let x = if rng.bool() {
                    210.0 - range(rng, 0.0, 25.0)
                } else {
                    range(rng, 0.0, 25.0)
                };
                (x, range(rng, 60.0, 240.0), "form+desk")
            }
        };
        let (wx, wy) = form_place.apply((fx, fy));
        lay(&mut world, form, form_place, false);
        let place = Homography::place(card_rot, wx, wy)
            .then_after(Homography::translate(-cw / 2.0, -ch / 2.0));
        lay(&mut world, card, place, true);
        world.setting = setting_name;
    } else {
        let place = Homography::place(card_rot, 0.0, 0.0)
            .then_after(Homography::translate(-cw / 2.0, -ch / 2.0));
        if rng.u8(0..4) == 0 {
            let s = layout::slip(fonts, rng);
            let (sw, sh) = s.sheet.size;
            let side = if rng.bool() { 1.0 } else { -1.0 };
            let sp = Homography::place(
                range(rng, -20.0, 20.0),
                side * (cw / 2.0 + sw / 2.0 + range(rng, 5.0, 30.0)),
                range(rng, -30.0, 30.0),
            )
            .then_after(Homography::translate(-sw / 2.0, -sh / 2.0));
            lay(&mut world, s, sp, false);
        }
        lay(&mut world, card, place, true);
        world.setting = "desk";
    }
    aim_at_keys(&mut world);
    Ok(world)
}

/// Two valid vouchers in view: side by side, one above the other, overlapping (both
/// lines still showing), or one nearer the camera than the other. Nobody can tell
/// which one the nurse means, so the frame must give no voucher.
pub(crate) fn two_voucher_world(
    fonts: &Fonts,
    rng: &mut Rng,
    a: &Voucher,
    b: &Voucher,
) -> Result<(World, &'static str), SynthError> {
    let mut design = Rng::with_seed(rng.u64(..));
    let first = layout::voucher_card(fonts, &mut design, a, VoucherSymbol::None)?;
    let mut design = Rng::with_seed(rng.u64(..));
    let second = layout::voucher_card(fonts, &mut design, b, VoucherSymbol::None)?;
    let mut world = empty_world(rng);
    let (w1, h1) = first.sheet.size;
    let (w2, h2) = second.sheet.size;
    let (how, (dx, dy), size): (&'static str, (f64, f64), f64) = match rng.u8(0..4) {
        0 => (
            "side-by-side",
            (
                w1 / 2.0 + w2 / 2.0 + range(rng, 3.0, 25.0),
                range(rng, -15.0, 15.0),
            ),
            1.0,
        ),
        1 => (
            "stacked",
            (
                range(rng, -15.0, 15.0),
                h1 / 2.0 + h2 / 2.0 + range(rng, 3.0, 20.0),
            ),
            1.0,
        ),
        2 => (
            "overlapping",
            (range(rng, 0.2, 0.45) * w1, range(rng, 0.55, 0.8) * h1),
            1.0,
        ),
        _ => (
            "sizes",
            (
                w1 / 2.0 + w2 / 2.0 * 0.8 + range(rng, 3.0, 20.0),
                range(rng, -10.0, 10.0),
            ),
            range(rng, 0.65, 0.85),
        ),
    };
    let rot = range(rng, -8.0, 8.0);
    let rot_b = rot + range(rng, -10.0, 10.0);
    let place_a =
        Homography::place(rot, 0.0, 0.0).then_after(Homography::translate(-w1 / 2.0, -h1 / 2.0));
    let place_b = |dx: f64, dy: f64| {
        Homography::place(rot_b, dx, dy)
            .then_after(Homography::scale(size))
            .then_after(Homography::translate(-w2 / 2.0, -h2 / 2.0))
    };
    // An overlapping card must leave the first one's line in view: try it below the
    // line, then above, then beside.
    let covers = |place: &Homography| {
        first.line.is_some_and(|l| {
            let back = place.inverse();
            quad(&place_a, &l.grow(1.0)).iter().any(|p| {
                let (x, y) = back.apply(*p);
                (0.0..=w2).contains(&x) && (0.0..=h2).contains(&y)
            })
        })
    };
    let mut how = how;
    let mut place = place_b(dx, dy);
    if covers(&place) {
        place = place_b(dx, -dy);
    }
    if covers(&place) {
        how = "side-by-side";
        place = place_b(w1 / 2.0 + w2 / 2.0 + 5.0, 0.0);
    }
    let place_b = place;
    lay(&mut world, first, place_a, true);
    let line_a = world.line;
    lay(&mut world, second, place_b, false);
    // The digit heights are measured on the first card's line.
    world.line = line_a;
    world.setting = how;
    aim_at_keys(&mut world);
    Ok((world, how))
}

/// No voucher: a 予診票 and/or a reservation slip on a desk, full of other digits.
pub(crate) fn no_voucher_world(fonts: &Fonts, rng: &mut Rng) -> World {
    let mut world = empty_world(rng);
    let choice = rng.u8(0..10);
    if choice < 7 {
        let form = layout::form(fonts, rng);
        let place = Homography::place(range(rng, -6.0, 6.0), 0.0, 0.0);
        lay(&mut world, form, place, false);
        world.focus = (range(rng, 40.0, 170.0), range(rng, 30.0, 260.0));
        world.setting = "form";
    }
    if choice >= 4 {
        let s = layout::slip(fonts, rng);
        let (sw, sh) = s.sheet.size;
        let at = if choice < 7 {
            (world.focus.0 + range(rng, -20.0, 20.0), world.focus.1)
        } else {
            (0.0, 0.0)
        };
        let place = Homography::place(range(rng, -15.0, 15.0), at.0, at.1)
            .then_after(Homography::translate(-sw / 2.0, -sh / 2.0));
        lay(&mut world, s, place, false);
        world.focus = at;
        world.setting = if choice < 7 { "form+slip" } else { "slip" };
    }
    world
}

/// A vaccine box face lying on the desk with its barcode sticker. Returns the world
/// and the symbol's module size in mm.
pub(crate) fn label_world(
    fonts: &Fonts,
    rng: &mut Rng,
    data: &LabelData,
    kind: LabelSymbol,
) -> Result<(World, f64), SynthError> {
    let (boxed, sticker, module) = layout::label(fonts, rng, data, kind)?;
    let mut world = empty_world(rng);
    let (bw, bh) = boxed.sheet.size;
    let (sw, sh) = sticker.sheet.size;
    let box_place = Homography::place(range(rng, -10.0, 10.0), 0.0, 0.0)
        .then_after(Homography::translate(-bw / 2.0, -bh / 2.0));
    // The sticker sits in the box's lower half, a little askew.
    let sx = range(rng, 3.0, (bw - sw - 3.0).max(3.0));
    let sy = range(rng, 26.0, (bh - sh - 8.0).max(26.0));
    let sticker_place = box_place
        .then_after(Homography::translate(sx + sw / 2.0, sy + sh / 2.0))
        .then_after(Homography::rotate_deg(range(rng, -3.0, 3.0)))
        .then_after(Homography::translate(-sw / 2.0, -sh / 2.0));
    lay(&mut world, boxed, box_place, false);
    lay(&mut world, sticker, sticker_place, true);
    world.setting = "box";
    aim_at_keys(&mut world);
    Ok((world, module))
}
