//! Finding the 18-digit OCR line in a full frame, and rectifying it.
//!
//! A frame is binarised against its local mean (so shadows and uneven light do not
//! matter), cut into connected components, and components of digit size are chained
//! left to right when they are alike in height and sit on one slanted line. A chain
//! long enough to be 18 digits is a candidate: it is resampled into a straight strip
//! [`CELL_H`] tall with its digits exactly [`DIGIT_H`] tall, the top and bottom of the
//! ink measured at both ends so that a line seen in perspective comes out level too.

use image::GrayImage;

use crate::ocrb::{CELL_H, DIGIT_H, DIGIT_TOP, bilinear, fit_line};

/// Digit heights the finder looks for, in frame pixels.
pub const MIN_DIGIT_H: u32 = 9;
pub const MAX_DIGIT_H: u32 = 64;

/// A connected component's box and ink.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Component {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
    pub area: u32,
}

impl Component {
    fn w(&self) -> f32 {
        (self.x1 - self.x0 + 1) as f32
    }
    fn h(&self) -> f32 {
        (self.y1 - self.y0 + 1) as f32
    }
    fn cx(&self) -> f32 {
        (self.x0 + self.x1) as f32 / 2.0
    }
    fn cy(&self) -> f32 {
        (self.y0 + self.y1) as f32 / 2.0
    }
}

/// A candidate line, rectified.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The strip: [`CELL_H`] rows, digits [`DIGIT_H`] tall from row [`DIGIT_TOP`].
    pub strip: GrayImage,
    /// Strip columns of the first and last ink.
    pub ink_left: f32,
    pub ink_right: f32,
    /// How many components the chain had.
    pub components: usize,
    /// The line's corners in the frame (top-left, top-right, bottom-right,
    /// bottom-left), for the UI's outline.
    pub quad: [(f32, f32); 4],
    /// Digit height in frame pixels.
    pub digit_h: f32,
}

/// Pixels darker than their neighbourhood's mean by a margin: ink.
pub fn binarise(gray: &GrayImage) -> Vec<bool> {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let raw = gray.as_raw();
    let mut out = vec![false; w * h];
    if w == 0 || h == 0 {
        return out;
    }
    // A window a little larger than the tallest digit's stroke gaps: large enough that
    // the inside of a thick stroke is not called paper, small enough to follow a shadow.
    let r = 15usize;
    // Running box sums: each column's sum over the window's rows, slid down a row at a
    // time, and along each row the sum of the window's columns, slid across.
    let mut cols = vec![0u32; w];
    for row in raw.chunks_exact(w).take((r + 1).min(h)) {
        for (c, &p) in cols.iter_mut().zip(row) {
            *c += u32::from(p);
        }
    }
    // The row's prefix sums of the column sums: a window's sum is one difference.
    let mut prefix = vec![0u32; w + 1];
    for y in 0..h {
        let rows = ((y + r + 1).min(h) - y.saturating_sub(r)) as u32;
        let row = &raw[y * w..(y + 1) * w];
        let dst = &mut out[y * w..(y + 1) * w];
        for (i, &c) in cols.iter().enumerate() {
            prefix[i + 1] = prefix[i] + c;
        }
        // ink when p < mean·(1 − 0.12) − 4: relative, so that dim and bright parts
        // of the frame are treated alike; the constant keeps flat noise out.
        let ink = |x: usize, lo: usize, hi: usize| {
            let n = rows * (hi - lo) as u32;
            (u32::from(row[x]) + 4) * n * 100 < (prefix[hi] - prefix[lo]) * 88
        };
        let (a, b) = (r.min(w), w.saturating_sub(r + 1).max(r.min(w)));
        for x in (0..a).chain(b..w) {
            dst[x] = ink(x, x.saturating_sub(r), (x + r + 1).min(w));
        }
        // Away from the sides the window is whole: one shape of loop the compiler
        // can vectorise.
        let n = rows * (2 * r + 1) as u32 * 100;
        for x in a..b {
            dst[x] = (u32::from(row[x]) + 4) * n < (prefix[x + r + 1] - prefix[x - r]) * 88;
        }
        if y + r + 1 < h {
            for (c, &p) in cols.iter_mut().zip(&raw[(y + r + 1) * w..(y + r + 2) * w]) {
                *c += u32::from(p);
            }
        }
        if y >= r {
            for (c, &p) in cols.iter_mut().zip(&raw[(y - r) * w..(y - r + 1) * w]) {
                *c -= u32::from(p);
            }
        }
    }
    out
}

/// One horizontal run of ink.
#[derive(Clone, Copy, Debug)]
struct Run {
    y: u32,
    x0: u32,
    x1: u32,
}

/// The ink's runs, each labelled with its connected component (8-connected).
#[derive(Debug)]
pub struct Labelled {
    runs: Vec<Run>,
    label: Vec<u32>,
    count: usize,
}

/// Labels the ink's connected components (8-connected), by runs.
pub fn label(ink: &[bool], w: usize, h: usize) -> Labelled {
    let mut runs: Vec<Run> = Vec::new();
    let mut row_start = Vec::with_capacity(h + 1);
    for y in 0..h {
        row_start.push(runs.len());
        let row = &ink[y * w..(y + 1) * w];
        let mut x = 0;
        while x < w {
            if row[x] {
                let s = x;
                while x < w && row[x] {
                    x += 1;
                }
                runs.push(Run {
                    y: y as u32,
                    x0: s as u32,
                    x1: (x - 1) as u32,
                });
            } else {
                x += 1;
            }
        }
    }
    row_start.push(runs.len());
    let mut parent: Vec<u32> = (0..runs.len() as u32).collect();
    fn find(parent: &mut [u32], mut a: u32) -> u32 {
        while parent[a as usize] != a {
            let p = parent[parent[a as usize] as usize];
            parent[a as usize] = p;
            a = p;
        }
        a
    }
    for y in 1..h {
        let (prev_a, prev_b) = (row_start[y - 1], row_start[y]);
        let (cur_a, cur_b) = (row_start[y], row_start[y + 1]);
        let mut j = prev_a;
        for i in cur_a..cur_b {
            let r = runs[i];
            // Previous-row runs that touch r, diagonals included.
            while j < prev_b && runs[j].x1 + 1 < r.x0 {
                j += 1;
            }
            let mut k = j;
            while k < prev_b && runs[k].x0 <= r.x1 + 1 {
                let a = find(&mut parent, i as u32);
                let b = find(&mut parent, k as u32);
                if a != b {
                    parent[a.max(b) as usize] = a.min(b);
                }
                k += 1;
            }
        }
    }
    let mut index = vec![u32::MAX; runs.len()];
    let mut label = vec![0u32; runs.len()];
    let mut count = 0usize;
    for (i, l) in label.iter_mut().enumerate() {
        let root = find(&mut parent, i as u32) as usize;
        if index[root] == u32::MAX {
            index[root] = count as u32;
            count += 1;
        }
        *l = index[root];
    }
    Labelled { runs, label, count }
}

/// Connected components (8-connected) of the ink, by runs.
#[cfg(test)]
fn components(ink: &[bool], w: usize, h: usize) -> Vec<Component> {
    let l = label(ink, w, h);
    let (cw, ch) = (w as f32, h as f32);
    turned_components(&l, &Turn::new(0.0, cw, ch, 1.0))
}

/// The components' boxes as seen turned by `turn`: the box of each component's ink in
/// the turned coordinates, so that a line running at the turn's angle is level there.
pub fn turned_components(l: &Labelled, turn: &Turn) -> Vec<Component> {
    let mut ext = vec![(f32::MAX, f32::MIN, f32::MAX, f32::MIN, 0u32); l.count];
    let level = turn.sin == 0.0 && turn.cos == 1.0;
    for (r, &c) in l.runs.iter().zip(&l.label) {
        let e = &mut ext[c as usize];
        e.4 += r.x1 - r.x0 + 1;
        if level {
            e.0 = e.0.min(r.x0 as f32);
            e.1 = e.1.max(r.x1 as f32);
            e.2 = e.2.min(r.y as f32);
            e.3 = e.3.max(r.y as f32);
            continue;
        }
        for x in [r.x0, r.x1] {
            let (u, v) = turn.turned(x as f32, r.y as f32);
            e.0 = e.0.min(u);
            e.1 = e.1.max(u);
            e.2 = e.2.min(v);
            e.3 = e.3.max(v);
        }
    }
    ext.into_iter()
        .map(|(u0, u1, v0, v1, area)| Component {
            x0: u0.round().max(0.0) as u32,
            x1: u1.round().max(0.0) as u32,
            y0: v0.round().max(0.0) as u32,
            y1: v1.round().max(0.0) as u32,
            area,
        })
        .collect()
}

/// A frame seen turned by an angle (and scaled): the finder works in turned
/// coordinates, where the line it looks for runs level, and samples the frame back
/// through [`Turn::to_frame`]. Turned coordinates are kept non-negative by an offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Turn {
    cos: f32,
    sin: f32,
    off: f32,
    /// Frame pixels per turned pixel (the finder may work on a reduced image).
    scale: f32,
}

impl Turn {
    /// Turned by `degrees` about the origin of an image `w`×`h`, whose pixels are
    /// `scale` frame pixels each.
    pub fn new(degrees: f32, w: f32, h: f32, scale: f32) -> Turn {
        let (sin, cos) = if degrees == 0.0 {
            (0.0, 1.0)
        } else {
            degrees.to_radians().sin_cos()
        };
        Turn {
            cos,
            sin,
            off: if degrees == 0.0 { 0.0 } else { w.hypot(h) },
            scale,
        }
    }

    /// Image pixel → turned coordinates.
    fn turned(self, x: f32, y: f32) -> (f32, f32) {
        (
            x * self.cos + y * self.sin + self.off,
            -x * self.sin + y * self.cos + self.off,
        )
    }

    /// Turned coordinates → frame pixel (at full resolution).
    pub fn to_frame(self, u: f32, v: f32) -> (f32, f32) {
        let (u, v) = (u - self.off, v - self.off);
        (
            (u * self.cos - v * self.sin) * self.scale,
            (u * self.sin + v * self.cos) * self.scale,
        )
    }
}

/// Components that could be one digit, or several run together by blur: motion blur
/// can merge a whole line into one component, which still has the line's height.
fn digit_like(c: &Component) -> bool {
    let (w, h) = (c.w(), c.h());
    let fill = c.area as f32 / (w * h);
    h >= MIN_DIGIT_H as f32
        && h <= MAX_DIGIT_H as f32 * 1.2
        && w >= 0.15 * h
        && w <= 24.0 * h
        && (0.12..=0.9).contains(&fill)
}

/// An 18-digit OCR-B line is about 16 digit heights long (pitch 0.9 of the height);
/// a chain much shorter or longer is some other text.
pub const LINE_SPAN_IN_HEIGHTS: std::ops::RangeInclusive<f32> = 12.0..=21.0;

/// A chain of exactly 18 components (the digits apart) may be up to this long: a
/// steep view foreshortens a line's height (a tablet tilted 45° over the desk:
/// heights × 0.7), so its span in heights grows to about 23.
const FORESHORTENED_SPAN: f32 = 25.0;

/// A chain's span in digit heights.
fn span_in_heights(chain: &[Component]) -> f32 {
    let mut hs: Vec<f32> = chain.iter().map(Component::h).collect();
    hs.sort_by(f32::total_cmp);
    let h = hs[hs.len() / 2];
    let x0 = chain.iter().map(|c| c.x0).min().unwrap_or(0);
    let x1 = chain.iter().map(|c| c.x1).max().unwrap_or(0);
    (x1 - x0 + 1) as f32 / h
}

/// Joins pieces of one glyph stacked one above the other: blur along the vertical
/// washes out the middle of a 3, 8 or 0 and cuts it in two halves that are each too
/// short to chain with their neighbours. Pieces join when they share most of their
/// columns and the gap between them is small against their heights.
pub fn join_stacked(comps: &[Component]) -> Vec<Component> {
    let mut cs: Vec<Component> = comps
        .iter()
        .copied()
        .filter(|c| {
            c.h() >= MIN_DIGIT_H as f32 / 2.0
                && c.h() <= MAX_DIGIT_H as f32
                && c.w() <= 2.0 * MAX_DIGIT_H as f32
        })
        .collect();
    cs.sort_by_key(|c| c.x0);
    let mut gone = vec![false; cs.len()];
    for i in 0..cs.len() {
        if gone[i] {
            continue;
        }
        let mut j = i + 1;
        while j < cs.len() && cs[j].x0 <= cs[i].x1 {
            if !gone[j] {
                let (a, b) = (cs[i], cs[j]);
                let overlap = (a.x1.min(b.x1) as f32 - a.x0.max(b.x0) as f32 + 1.0).max(0.0);
                let (upper, lower) = if a.y0 <= b.y0 { (a, b) } else { (b, a) };
                let gap = lower.y0 as f32 - upper.y1 as f32 - 1.0;
                let joined_h = (a.y1.max(b.y1) - a.y0.min(b.y0) + 1) as f32;
                if overlap >= 0.6 * a.w().min(b.w())
                    && gap >= -0.5 * a.h().min(b.h())
                    && gap <= 0.6 * a.h().min(b.h())
                    && joined_h <= 2.6 * a.h().max(b.h())
                    && joined_h <= MAX_DIGIT_H as f32
                {
                    cs[i] = Component {
                        x0: a.x0.min(b.x0),
                        y0: a.y0.min(b.y0),
                        x1: a.x1.max(b.x1),
                        y1: a.y1.max(b.y1),
                        area: a.area + b.area,
                    };
                    gone[j] = true;
                    // The joined box is wider: look again from the next piece.
                    j = i;
                }
            }
            j += 1;
        }
    }
    cs.into_iter()
        .zip(gone)
        .filter_map(|(c, g)| (!g).then_some(c))
        .collect()
}

/// Chains of digit-like components, left to right, as long as an OCR line.
///
/// Components link across gaps of up to two digit heights, so that a line keeps
/// together when glare or a crease loses a digit or two; a chain is then cut where its
/// gaps are wider than a digit (between words), and every run of its pieces as long
/// as an OCR line is a candidate.
pub fn chains(comps: &[Component]) -> Vec<Vec<Component>> {
    let mut out = Vec::new();
    for chain in all_chains(comps) {
        let mut pieces: Vec<&[Component]> = Vec::new();
        let mut start = 0;
        for i in 1..chain.len() {
            let (a, b) = (chain[i - 1], chain[i]);
            if b.x0 as f32 - a.x1 as f32 > a.h().max(b.h()) {
                pieces.push(&chain[start..i]);
                start = i;
            }
        }
        pieces.push(&chain[start..]);
        for i in 0..pieces.len() {
            let mut run: Vec<Component> = Vec::new();
            for piece in &pieces[i..] {
                run.extend_from_slice(piece);
                let span = span_in_heights(&run);
                if LINE_SPAN_IN_HEIGHTS.contains(&span)
                    || (run.len() == 18
                        && (*LINE_SPAN_IN_HEIGHTS.start()..=FORESHORTENED_SPAN).contains(&span))
                {
                    out.push(run.clone());
                }
                if span > FORESHORTENED_SPAN {
                    break;
                }
            }
        }
    }
    out
}

fn all_chains(comps: &[Component]) -> Vec<Vec<Component>> {
    let mut cs: Vec<Component> = comps.iter().copied().filter(digit_like).collect();
    cs.sort_by(|a, b| a.cx().total_cmp(&b.cx()));
    let n = cs.len();
    // Each component's best right-hand neighbour.
    let mut right: Vec<Option<usize>> = vec![None; n];
    let mut left_best: Vec<Option<(usize, f32)>> = vec![None; n];
    for i in 0..n {
        let a = cs[i];
        let ha = a.h();
        let mut best: Option<(usize, f32)> = None;
        for (j, b) in cs.iter().enumerate().skip(i + 1) {
            let dx = b.cx() - a.cx();
            if dx > 3.0 * ha + a.w() {
                break;
            }
            // Gap between the boxes, not the centres: a run-together pair is wide.
            let gap = b.x0 as f32 - a.x1 as f32;
            if gap > 2.0 * ha || gap < -0.3 * ha {
                continue;
            }
            let hr = b.h() / ha;
            if !(0.72..=1.39).contains(&hr) {
                continue;
            }
            let dy = b.cy() - a.cy();
            // ±17° of slant, plus slack for the boxes of slanted glyphs.
            if dy.abs() > 0.31 * dx + 0.25 * ha {
                continue;
            }
            let cost = gap.max(0.0) + 2.0 * dy.abs() + 3.0 * (hr - 1.0).abs() * ha;
            if best.is_none_or(|(_, c)| cost < c) {
                best = Some((j, cost));
            }
        }
        if let Some((j, cost)) = best {
            right[i] = Some(j);
            if left_best[j].is_none_or(|(_, c)| cost < c) {
                left_best[j] = Some((i, cost));
            }
        }
    }
    // Keep mutual links only, so that a chain never forks.
    let mut has_left = vec![false; n];
    for (i, link) in right.iter_mut().enumerate() {
        if let Some(j) = *link {
            if left_best[j].map(|(l, _)| l) == Some(i) {
                has_left[j] = true;
            } else {
                *link = None;
            }
        }
    }
    let mut out = Vec::new();
    for start in 0..n {
        if has_left[start] {
            continue;
        }
        let mut chain = vec![cs[start]];
        let mut at = start;
        while let Some(j) = right[at] {
            chain.push(cs[j]);
            at = j;
        }
        out.push(chain);
    }
    out
}

/// Orientations the finder looks along, in degrees. The chainer takes ±17° of slant
/// (see [`all_chains`]), so six directions 30° apart cover every direction a line can
/// run modulo 180°; which way up it is gets settled when it is read.
pub const ANGLES: [f32; 6] = [0.0, 30.0, 60.0, 90.0, 120.0, 150.0];

/// A frame and its reductions by 2, 4, …: the finder works on a reduced image when the
/// digits are large, and each line is sampled from the level that holds its digits
/// at no less than the strip's own resolution.
#[derive(Debug)]
pub struct Pyramid {
    pub levels: Vec<GrayImage>,
}

impl Pyramid {
    /// Halves `full` while its long side stays at least `min_long`.
    pub fn new(full: GrayImage, min_long: u32) -> Pyramid {
        let mut levels = vec![full];
        loop {
            let last = &levels[levels.len() - 1];
            if last.width().max(last.height()) / 2 < min_long
                || last.width() < 4
                || last.height() < 4
            {
                break;
            }
            let half = halve(last);
            levels.push(half);
        }
        Pyramid { levels }
    }

    /// The level to sample digits `digit_h` frame pixels tall from: the coarsest that
    /// still gives them at least the strip's [`DIGIT_H`].
    fn level_for(&self, digit_h: f32) -> usize {
        let mut level = 0;
        while level + 1 < self.levels.len() && digit_h / (1 << (level + 1)) as f32 >= DIGIT_H as f32
        {
            level += 1;
        }
        level
    }

    /// A bilinear sample at frame pixel (x, y) from `level`.
    fn sample(&self, level: usize, x: f32, y: f32) -> f32 {
        let k = (1 << level) as f32;
        bilinear(
            &self.levels[level],
            (x + 0.5) / k - 0.5,
            (y + 0.5) / k - 0.5,
        )
    }
}

/// A 2×2 box reduction.
pub fn halve(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width() / 2, img.height() / 2);
    let src = img.as_raw();
    let sw = img.width() as usize;
    let mut out = vec![0u8; (w * h) as usize];
    for y in 0..h as usize {
        let (r0, r1) = (2 * y * sw, (2 * y + 1) * sw);
        for x in 0..w as usize {
            let s = u16::from(src[r0 + 2 * x])
                + u16::from(src[r0 + 2 * x + 1])
                + u16::from(src[r1 + 2 * x])
                + u16::from(src[r1 + 2 * x + 1]);
            out[y * w as usize + x] = ((s + 2) / 4) as u8;
        }
    }
    GrayImage::from_raw(w, h, out).unwrap_or_default()
}

/// Finds candidate lines at every orientation on pyramid level `level`, best first,
/// with digits under `max_digit_h` frame pixels, and rectifies each from the level
/// that suits its digits.
pub fn find_in(pyr: &Pyramid, level: usize, max: usize, max_digit_h: f32) -> Vec<Candidate> {
    let finder = &pyr.levels[level];
    let (w, h) = (finder.width() as usize, finder.height() as usize);
    let scale = (1 << level) as f32;
    let ink = binarise(finder);
    let labelled = label(&ink, w, h);
    let mut found: Vec<(Vec<Component>, Turn)> = Vec::new();
    for degrees in ANGLES {
        let turn = Turn::new(degrees, w as f32, h as f32, scale);
        let comps = join_stacked(&turned_components(&labelled, &turn));
        found.extend(chains(&comps).into_iter().map(|c| (c, turn)));
    }
    // Chains of 18 components first (the line with its digits apart), the one seen
    // from the direction nearest its own first (two directions 30° apart can both
    // chain a line; the one it slants less in measures its digits best), then the
    // others by how close their length is to the line's.
    // An 18-chain longer than a flat line's (foreshortened, or other text) comes
    // after the flat ones: candidates are few, and most frames are seen flat.
    let key = |c: &[Component]| {
        let span = span_in_heights(c);
        if c.len() == 18 {
            let long = span > *LINE_SPAN_IN_HEIGHTS.end();
            (u8::from(long), chain_slant(c).abs())
        } else {
            (2, (span - 16.0).abs())
        }
    };
    let mut found: Vec<_> = found.into_iter().map(|(c, t)| (key(&c), c, t)).collect();
    found.sort_by(|(ka, ..), (kb, ..)| ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)));
    let mut out: Vec<Candidate> = Vec::new();
    let mut seen: Vec<((f32, f32), f32, f32)> = Vec::new();
    for (_, chain, turn) in found {
        if out.len() >= max {
            break;
        }
        // The same line seen from two neighbouring angles: keep the first.
        let (centre, len, hh) = chain_in_frame(&chain, &turn);
        if hh >= max_digit_h {
            continue;
        }
        let dup = seen.iter().any(|&(c, l, sh)| {
            (c.0 - centre.0).hypot(c.1 - centre.1) < 0.8 * sh.min(hh)
                && (l - len).abs() < 2.0 * sh.min(hh)
        });
        if dup {
            continue;
        }
        if let Some(c) = rectify_in(pyr, &chain, &turn) {
            seen.push((centre, len, hh));
            out.push(c);
        }
    }
    out
}

/// A chain's middle, length and digit height in frame pixels.
fn chain_in_frame(chain: &[Component], turn: &Turn) -> ((f32, f32), f32, f32) {
    let x0 = chain.iter().map(|c| c.x0).min().unwrap_or(0) as f32;
    let x1 = chain.iter().map(|c| c.x1).max().unwrap_or(0) as f32;
    let y: f32 = chain.iter().map(Component::cy).sum::<f32>() / chain.len().max(1) as f32;
    let mut hs: Vec<f32> = chain.iter().map(Component::h).collect();
    hs.sort_by(f32::total_cmp);
    let h = hs.get(hs.len() / 2).copied().unwrap_or(1.0);
    (
        turn.to_frame((x0 + x1) / 2.0, y),
        (x1 - x0) * turn.scale,
        h * turn.scale,
    )
}

/// The digit height of a chain whose line slants by `theta` in its turned image: a
/// slanted glyph's box is taller and wider than the glyph (h' = h·cos + w·sin,
/// w' = w·cos + h·sin), so each box is turned back to its glyph's height and the
/// median taken (a blob of digits run together gives a low value and falls out).
fn slanted_height(chain: &[Component], theta: f32) -> f32 {
    // The chainer takes about ±25° in a turned image; beyond 30° the inversion
    // amplifies noise more than the slant adds.
    let theta = theta.abs().min(30f32.to_radians());
    let (sin, cos) = theta.sin_cos();
    let mut heights: Vec<f32> = chain
        .iter()
        .map(|c| (c.h() * cos - c.w().min(c.h()) * sin) / (cos * cos - sin * sin))
        .collect();
    heights.sort_by(f32::total_cmp);
    heights
        .get(heights.len() / 2)
        .copied()
        .unwrap_or(4.0)
        .max(4.0)
}

/// The slant of a chain's line in its turned image, in radians.
fn chain_slant(chain: &[Component]) -> f32 {
    let (_, slope) = fit_line(chain.iter().map(|c| (c.cx(), c.cy())));
    if slope.is_finite() { slope.atan() } else { 0.0 }
}

/// Least squares v = a + b·t + c·t² (t in units of `unit`, for conditioning).
fn fit_quadratic(points: &[(f32, f32)], unit: f32) -> Option<[f64; 3]> {
    if points.len() < 5 {
        return None;
    }
    let mut m = [[0f64; 4]; 3];
    for &(t, v) in points {
        let t = f64::from(t / unit);
        let row = [1.0, t, t * t];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += row[i] * row[j];
            }
            m[i][3] += row[i] * f64::from(v);
        }
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        m.swap(col, pivot);
        if m[col][col].abs() < 1e-9 {
            return None;
        }
        for r in 0..3 {
            if r != col {
                let f = m[r][col] / m[col][col];
                let pivot_row = m[col];
                for (x, p) in m[r].iter_mut().zip(pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    Some([m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]])
}

/// Resamples a chain into a level strip, following the digits: the centre line is a
/// curve fitted through the components (a curved sticker), the ink's top and bottom
/// are measured piece by piece along it (perspective, a crease), and the strip's
/// horizontal scale follows the local digit height, so that digits far from the lens
/// come out as wide as near ones. `turn` maps the chain's coordinates to the frame;
/// samples come from the pyramid level that suits the digits.
fn rectify_in(pyr: &Pyramid, chain: &[Component], turn: &Turn) -> Option<Candidate> {
    if chain.is_empty() {
        return None;
    }
    // The line through the centres gives the slant.
    let theta = chain_slant(chain);
    let (cos, sin) = (theta.cos(), theta.sin());
    let h_est = slanted_height(chain, theta);
    // Turned → line coordinates: t along the line, v across, origin at the first centre.
    let (ox, oy) = (chain[0].cx(), chain[0].cy());
    let to_line = |x: f32, y: f32| {
        (
            (x - ox) * cos + (y - oy) * sin,
            -(x - ox) * sin + (y - oy) * cos,
        )
    };
    let mut t_min = f32::MAX;
    let mut t_max = f32::MIN;
    let mut centres = Vec::with_capacity(chain.len());
    for c in chain {
        let (t, v) = to_line(c.cx(), c.cy());
        let half = c.w() / 2.0;
        t_min = t_min.min(t - half);
        t_max = t_max.max(t + half);
        centres.push((t, v));
    }
    let v_mean = centres.iter().map(|p| p.1).sum::<f32>() / centres.len() as f32;
    // The centre line: a curve through the centres, refitted without the ones far off
    // it (a blob of two digits run together, a piece of a neighbour).
    let unit = h_est * 8.0;
    let mut curve = fit_quadratic(&centres, unit);
    if let Some(q) = curve {
        let near: Vec<(f32, f32)> = centres
            .iter()
            .copied()
            .filter(|&(t, v)| {
                let tt = f64::from(t / unit);
                (f64::from(v) - (q[0] + q[1] * tt + q[2] * tt * tt)).abs() < f64::from(0.35 * h_est)
            })
            .collect();
        curve = fit_quadratic(&near, unit).or(curve);
    }
    // A bow of more than a digit height is not a line of one voucher.
    let curve = curve.filter(|q| {
        let end = f64::from((t_max - t_min) / unit / 2.0);
        (q[2] * end * end).abs() < f64::from(1.2 * h_est)
    });
    let centre = |t: f32| -> (f32, f32) {
        // (v, dv/dt)
        match curve {
            Some(q) => {
                let tt = f64::from(t / unit);
                (
                    (q[0] + q[1] * tt + q[2] * tt * tt) as f32,
                    ((q[1] + 2.0 * q[2] * tt) / f64::from(unit)) as f32,
                )
            }
            None => (v_mean, 0.0),
        }
    };
    let margin = 0.6 * h_est;
    let (t0, t1) = (t_min - margin, t_max + margin);
    let level = pyr.level_for(h_est * turn.scale);
    // A point `off` across the curve from its point at t, in frame pixels.
    let point = |t: f32, off: f32| -> (f32, f32) {
        let (v, dv) = centre(t);
        let n = (1.0 + dv * dv).sqrt();
        let (lt, lv) = (t - dv * off / n, v + off / n);
        turn.to_frame(ox + lt * cos - lv * sin, oy + lt * sin + lv * cos)
    };
    // Across the curve, frame points are linear in `off`: a column's base and step.
    let column = |t: f32| -> ((f32, f32), (f32, f32)) {
        let p0 = point(t, 0.0);
        let p1 = point(t, 1.0);
        (p0, (p1.0 - p0.0, p1.1 - p0.1))
    };
    let sample_at = |(p0, n): ((f32, f32), (f32, f32)), off: f32| -> u8 {
        pyr.sample(level, p0.0 + n.0 * off, p0.1 + n.1 * off) as u8
    };

    // First pass: a loose strip, 2.4 digit heights tall, to measure the ink.
    let s = DIGIT_H as f32 / h_est;
    let loose_h = (2.4 * DIGIT_H as f32) as u32;
    let width = ((t1 - t0) * s).round() as u32;
    if !(40..=4000).contains(&width) {
        return None;
    }
    let top_off = -1.2 * h_est;
    let mut loose = GrayImage::new(width, loose_h);
    for x in 0..width {
        let col = column(t0 + x as f32 / s);
        for y in 0..loose_h {
            loose.put_pixel(x, y, image::Luma([sample_at(col, top_off + y as f32 / s)]));
        }
    }
    // The ink's top and bottom, piece by piece (about two digits a piece), on the strip
    // binarised against its local mean as the frame was.
    let loose_ink = binarise(&loose);
    // A band far from the components' own height is a neighbour's ink, not ours.
    let sane = |b: (f32, f32)| {
        let r = (b.1 - b.0) / DIGIT_H as f32;
        (0.75..=1.3).contains(&r)
    };
    let pieces = (width / (2 * DIGIT_H)).clamp(3, 12);
    let mut bands: Vec<(f32, f32, f32)> = (0..pieces)
        .filter_map(|i| {
            let (a, b) = (i * width / pieces, (i + 1) * width / pieces);
            ink_band(&loose_ink, width, loose_h, a, b)
                .filter(|b| sane(*b))
                .map(|(top, bottom)| ((a + b) as f32 / 2.0, top, bottom))
        })
        .collect();
    if bands.len() < 2 {
        let half = DIGIT_H as f32 / 2.0;
        let mid = 1.2 * DIGIT_H as f32;
        bands = vec![
            (0.0, mid - half, mid + half),
            (width as f32, mid - half, mid + half),
        ];
    }
    // A pen stroke or a stamp can stretch one piece's band: each piece's top and
    // bottom are the median of it and its neighbours.
    let median3 = |vals: Vec<f32>| -> Vec<f32> {
        (0..vals.len())
            .map(|i| {
                let mut w: Vec<f32> = vals[i.saturating_sub(1)..(i + 2).min(vals.len())].to_vec();
                w.sort_by(f32::total_cmp);
                w[w.len() / 2]
            })
            .collect()
    };
    let tops = median3(bands.iter().map(|b| b.1).collect());
    let bottoms = median3(bands.iter().map(|b| b.2).collect());
    let xs: Vec<f32> = bands.iter().map(|b| b.0).collect();
    let interp = |vals: &[f32], x: f32| -> f32 {
        if x <= xs[0] {
            return vals[0];
        }
        for i in 1..xs.len() {
            if x <= xs[i] {
                let f = (x - xs[i - 1]) / (xs[i] - xs[i - 1]).max(1e-3);
                return vals[i - 1] + (vals[i] - vals[i - 1]) * f;
            }
        }
        vals[vals.len() - 1]
    };
    let band_at = |lx: f32| (interp(&tops, lx), interp(&bottoms, lx));
    // Measured digit height, in frame pixels.
    let mean_band = bands.iter().map(|b| b.2 - b.1).sum::<f32>() / bands.len() as f32;
    let h_meas = mean_band / s;
    if h_meas * turn.scale < MIN_DIGIT_H as f32 * 0.8 {
        return None;
    }
    // Strip columns: each loose column is stretched so that the local digit height
    // becomes DIGIT_H wide per DIGIT_H tall, as the templates are drawn.
    let mut cum = Vec::with_capacity(width as usize + 1);
    let mut acc = 0f32;
    cum.push(0.0);
    for x in 0..width {
        let (top, bottom) = band_at(x as f32 + 0.5);
        let (_, dv) = centre(t0 + (x as f32 + 0.5) / s);
        acc += DIGIT_H as f32 / (bottom - top).max(1.0) * (1.0 + dv * dv).sqrt();
        cum.push(acc);
    }
    let out_w = acc.round() as u32;
    if !(40..=4000).contains(&out_w) {
        return None;
    }
    // Output column → loose column (cum is increasing).
    let mut loose_x = Vec::with_capacity(out_w as usize);
    let mut j = 0usize;
    for x in 0..out_w {
        let want = x as f32 + 0.5;
        while j + 1 < cum.len() - 1 && cum[j + 1] < want {
            j += 1;
        }
        let f = (want - cum[j]) / (cum[j + 1] - cum[j]).max(1e-6);
        loose_x.push(j as f32 + f.clamp(0.0, 1.0));
    }
    let map = |x: f32, y: f32| -> (f32, f32) {
        let xi = (x.max(0.0) as usize).min(loose_x.len() - 1);
        let lx = loose_x[xi];
        let (top, bottom) = band_at(lx);
        let ly = top + (y - DIGIT_TOP as f32) * (bottom - top) / DIGIT_H as f32;
        (t0 + lx / s, top_off + ly / s)
    };
    let mut strip = GrayImage::new(out_w, CELL_H);
    for x in 0..out_w {
        let (t, off0) = map(x as f32, 0.0);
        let (_, off1) = map(x as f32, 1.0);
        let col = column(t);
        for y in 0..CELL_H {
            let off = off0 + (off1 - off0) * y as f32;
            strip.put_pixel(x, y, image::Luma([sample_at(col, off)]));
        }
    }
    stretch(&mut strip);
    let (ink_left, ink_right) = ink_columns(&strip)?;
    let corner = |x: f32, y: f32| {
        let (t, off) = map(x, y);
        point(t, off)
    };
    let (top_y, bottom_y) = (DIGIT_TOP as f32, (DIGIT_TOP + DIGIT_H) as f32);
    Some(Candidate {
        quad: [
            corner(ink_left, top_y),
            corner(ink_right - 1.0, top_y),
            corner(ink_right - 1.0, bottom_y),
            corner(ink_left, bottom_y),
        ],
        strip,
        ink_left,
        ink_right,
        components: chain.len(),
        digit_h: h_meas * turn.scale,
    })
}

/// Stretches a strip's levels so that its ink is near black and its paper near white:
/// a line read in a dim room reaches the readers with the contrast of a lit one.
fn stretch(strip: &mut GrayImage) {
    let mut hist = [0u32; 256];
    for p in strip.as_raw() {
        hist[usize::from(*p)] += 1;
    }
    let n: u32 = hist.iter().sum();
    let level_at = |q: u32| {
        let mut acc = 0;
        for (v, c) in hist.iter().enumerate() {
            acc += c;
            if acc * 100 >= q * n {
                return v as f32;
            }
        }
        255.0
    };
    let (lo, hi) = (level_at(2), level_at(90));
    if hi - lo < 8.0 {
        return;
    }
    for p in strip.iter_mut() {
        *p = ((f32::from(*p) - lo) * 240.0 / (hi - lo) + 8.0).clamp(0.0, 255.0) as u8;
    }
}

/// The band of rows around the strip's middle where ink is, between columns.
fn ink_band(ink: &[bool], w: u32, h: u32, x_from: u32, x_to: u32) -> Option<(f32, f32)> {
    let (w, h) = (w as usize, h as usize);
    let profile: Vec<u32> = (0..h)
        .map(|y| {
            (x_from as usize..x_to as usize)
                .filter(|&x| ink[y * w + x])
                .count() as u32
        })
        .collect();
    let peak = *profile.iter().max()?;
    if peak == 0 {
        return None;
    }
    // Rows with at least an eighth of the peak's ink, grown out from the middle: a
    // neighbouring line of text above or below stays outside the band.
    let floor = (peak / 8).max(1);
    let mid = h / 2;
    let start = (mid.saturating_sub(h / 6)..(mid + h / 6).min(h)).max_by_key(|&y| profile[y])?;
    if profile[start] < floor {
        return None;
    }
    let mut top = start;
    while top > 0 && profile[top - 1] >= floor {
        top -= 1;
    }
    let mut bottom = start;
    while bottom + 1 < h && profile[bottom + 1] >= floor {
        bottom += 1;
    }
    Some((top as f32, bottom as f32 + 1.0))
}

/// The first and last ink columns within the digit rows.
fn ink_columns(strip: &GrayImage) -> Option<(f32, f32)> {
    // Smoothed first: in a dim, noisy frame the stretched strip's paper is grain, and
    // single dark pixels in the margin would stand for ink (a 3×3 box takes them out
    // and moves a stroke's edge by less than a pixel).
    let ink = binarise(&imageproc::filter::box_filter(strip, 1, 1));
    let w = strip.width() as usize;
    let rows = (DIGIT_TOP + 2) as usize..(DIGIT_TOP + DIGIT_H - 2) as usize;
    let count: Vec<usize> = (0..w)
        .map(|x| rows.clone().filter(|&y| ink[y * w + x]).count())
        .collect();
    // A digit's stroke is several columns wide and several rows tall; a speck of
    // sensor noise in the margin is neither, and must not move the line's ends. So a
    // line ends where ink holds over a stroke's width (five columns, inward), above the
    // noise: the count in the emptiest tenth of the columns (margins and gaps between
    // digits), which a noisy strip fills with specks.
    let mut sorted = count.clone();
    sorted.sort_unstable();
    let noise = sorted.get(sorted.len() / 10).copied().unwrap_or(0);
    const STROKE: usize = 5;
    let enough = |cols: &[usize], first: usize| {
        cols[first] >= 3 + 2 * noise && cols.iter().sum::<usize>() >= STROKE * (4 + 2 * noise)
    };
    let inward = |x: usize| &count[x..(x + STROKE).min(w)];
    let outward = |x: usize| &count[(x + 1).saturating_sub(STROKE)..=x];
    let has_ink_left = |x: usize| enough(inward(x), 0);
    let has_ink_right = |x: usize| {
        let cols = outward(x);
        enough(cols, cols.len() - 1)
    };
    let left = (0..w).find(|&x| has_ink_left(x))?;
    let right = (0..w).rev().find(|&x| has_ink_right(x))?;
    (right > left).then_some((left as f32, right as f32 + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binarise_is_ink_against_the_mean_of_the_window_around_each_pixel() {
        // Against the plain definition, on noise with a gradient, at sizes smaller
        // and larger than the window.
        for (w, h) in [(1, 1), (7, 40), (31, 31), (33, 5), (120, 70)] {
            let mut rng = 99u32;
            let img = GrayImage::from_fn(w, h, |x, y| {
                rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                image::Luma([((rng >> 25) + x + y) as u8])
            });
            let r = 15i64;
            let want: Vec<bool> = (0..h as i64)
                .flat_map(|y| (0..w as i64).map(move |x| (x, y)))
                .map(|(x, y)| {
                    let (mut sum, mut n) = (0u32, 0u32);
                    for yy in (y - r).max(0)..=(y + r).min(h as i64 - 1) {
                        for xx in (x - r).max(0)..=(x + r).min(w as i64 - 1) {
                            sum += u32::from(img.get_pixel(xx as u32, yy as u32).0[0]);
                            n += 1;
                        }
                    }
                    let p = u32::from(img.get_pixel(x as u32, y as u32).0[0]);
                    (p + 4) * n * 100 < sum * 88
                })
                .collect();
            assert_eq!(binarise(&img), want, "{w}x{h}");
        }
    }

    fn image_of(rows: &[&str]) -> Vec<bool> {
        rows.iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect()
    }

    #[test]
    fn the_line_ends_where_strokes_are_not_at_specks_of_noise_in_the_margin() {
        // Digits as blocks 16 columns wide with gaps of 8, from column 40 to 224; the
        // margin before them grainy, a few dark pixels a column, as a dim frame gives.
        let mut strip = GrayImage::from_pixel(260, CELL_H, image::Luma([220]));
        for x in 0..32u32 {
            let specks = [5, 4, 1, 2, 2, 0][x as usize % 6];
            for k in 0..specks {
                let y = DIGIT_TOP + 3 + (k * 7 + x * 5) % (DIGIT_H - 6);
                strip.put_pixel(x, y, image::Luma([40]));
            }
        }
        for d in 0..8u32 {
            for x in 40 + 24 * d..56 + 24 * d {
                for y in DIGIT_TOP..DIGIT_TOP + DIGIT_H {
                    strip.put_pixel(x, y, image::Luma([30]));
                }
            }
        }
        let (left, right) = ink_columns(&strip).expect("ink");
        assert!((left - 40.0).abs() <= 1.0, "left {left}");
        assert!((right - 224.0).abs() <= 1.0, "right {right}");
    }

    #[test]
    fn components_join_diagonals_and_keep_apart_what_does_not_touch() {
        let ink = image_of(&["#..#", ".#.#", "...#", "#..."]);
        let mut cs = components(&ink, 4, 4);
        cs.sort_by_key(|c| (c.x0, c.y0));
        assert_eq!(cs.len(), 3);
        assert_eq!(
            (cs[0].x0, cs[0].y0, cs[0].x1, cs[0].y1, cs[0].area),
            (0, 0, 1, 1, 2)
        );
        assert_eq!((cs[1].x0, cs[1].y0, cs[1].area), (0, 3, 1));
        assert_eq!(
            (cs[2].x0, cs[2].y0, cs[2].x1, cs[2].y1, cs[2].area),
            (3, 0, 3, 2, 3)
        );
    }

    #[test]
    fn a_row_of_boxes_makes_one_chain_and_a_lone_box_none() {
        let mut comps: Vec<Component> = (0..18)
            .map(|i| Component {
                x0: 10 + i * 14,
                y0: 50 + i / 3,
                x1: 10 + i * 14 + 9,
                y1: 50 + i / 3 + 19,
                area: 80,
            })
            .collect();
        comps.push(Component {
            x0: 400,
            y0: 200,
            x1: 409,
            y1: 219,
            area: 80,
        });
        let found = chains(&comps);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].len(), 18);
    }

    #[test]
    fn a_slanted_line_s_digit_height_is_its_glyphs_not_their_boxes() {
        // Glyphs 16 px tall, 10 wide (a 1: 3 wide), along a line slanting 23° in the
        // turned image: their boxes are taller and wider than the glyphs. A digit
        // height measured 25% short puts the digits outside the strip (seen: the
        // second voucher of a stacked pair read from the wrong direction was never
        // read, and the frame was not vetoed).
        let theta = 23f32.to_radians();
        let (sin, cos) = theta.sin_cos();
        let chain: Vec<Component> = (0..18)
            .map(|i| {
                let w = if i % 4 == 0 { 3.0 } else { 10.0 };
                let (cx, cy) = (100.0 + i as f32 * 14.0 * cos, 100.0 + i as f32 * 14.0 * sin);
                let (bw, bh) = (w * cos + 16.0 * sin, 16.0 * cos + w * sin);
                Component {
                    x0: (cx - bw / 2.0).round() as u32,
                    y0: (cy - bh / 2.0).round() as u32,
                    x1: (cx + bw / 2.0).round() as u32 - 1,
                    y1: (cy + bh / 2.0).round() as u32 - 1,
                    area: 60,
                }
            })
            .collect();
        let slant = chain_slant(&chain);
        assert!((slant - theta).abs() < 0.02, "slant {slant}");
        let h = slanted_height(&chain, slant);
        assert!((h - 16.0).abs() <= 1.0, "height {h}");
        // Level, the boxes are the glyphs.
        assert_eq!(slanted_height(&chain[..1], 0.0), chain[0].h());
    }
}
