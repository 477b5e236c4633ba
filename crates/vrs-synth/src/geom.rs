//! Plane homographies: how a sheet's millimetres land on the desk, and how the desk
//! lands on the camera's pixels.

/// A 3×3 projective transform, row major, acting on column vectors (x, y, 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Homography(pub [f64; 9]);

impl Homography {
    pub const IDENTITY: Homography = Homography([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);

    pub fn translate(tx: f64, ty: f64) -> Self {
        Homography([1.0, 0.0, tx, 0.0, 1.0, ty, 0.0, 0.0, 1.0])
    }

    pub fn scale(s: f64) -> Self {
        Homography([s, 0.0, 0.0, 0.0, s, 0.0, 0.0, 0.0, 1.0])
    }

    /// Rotation by `deg` degrees (counter-clockwise on screen, where y points down,
    /// this turns clockwise).
    pub fn rotate_deg(deg: f64) -> Self {
        let (s, c) = deg.to_radians().sin_cos();
        Homography([c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0])
    }

    /// A rigid placement: rotate about the origin, then move the origin to (tx, ty).
    pub fn place(deg: f64, tx: f64, ty: f64) -> Self {
        Self::translate(tx, ty).then_after(Self::rotate_deg(deg))
    }

    /// `self ∘ inner`: apply `inner` first, then `self`.
    pub fn then_after(self, inner: Homography) -> Homography {
        let a = self.0;
        let b = inner.0;
        let mut m = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                m[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
            }
        }
        Homography(m)
    }

    pub fn apply(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let m = &self.0;
        let w = m[6] * x + m[7] * y + m[8];
        (
            (m[0] * x + m[1] * y + m[2]) / w,
            (m[3] * x + m[4] * y + m[5]) / w,
        )
    }

    /// The inverse, by the adjugate. Every transform built here is a product of
    /// invertible pieces, so a zero determinant means a bug upstream; the identity is
    /// returned rather than NaNs spreading through an image.
    pub fn inverse(&self) -> Homography {
        let m = &self.0;
        let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
            + m[2] * (m[3] * m[7] - m[4] * m[6]);
        if det.abs() < 1e-12 {
            return Homography::IDENTITY;
        }
        let inv = [
            m[4] * m[8] - m[5] * m[7],
            m[2] * m[7] - m[1] * m[8],
            m[1] * m[5] - m[2] * m[4],
            m[5] * m[6] - m[3] * m[8],
            m[0] * m[8] - m[2] * m[6],
            m[2] * m[3] - m[0] * m[5],
            m[3] * m[7] - m[4] * m[6],
            m[1] * m[6] - m[0] * m[7],
            m[0] * m[4] - m[1] * m[3],
        ];
        Homography(inv.map(|v| v / det))
    }

    /// The transform taking each `from[i]` to `to[i]` (four points, no three on a line).
    pub fn from_quad(from: [(f64, f64); 4], to: [(f64, f64); 4]) -> Option<Homography> {
        // The classic 8×8 system with h33 = 1.
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let (x, y) = from[i];
            let (u, v) = to[i];
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        let h = solve8(a)?;
        Some(Homography([
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0,
        ]))
    }

    /// How many output units one input unit becomes near `p` (the square root of the
    /// local area ratio), for choosing render resolutions and measuring digit heights.
    pub fn local_scale(&self, p: (f64, f64)) -> f64 {
        let o = self.apply(p);
        let dx = self.apply((p.0 + 1.0, p.1));
        let dy = self.apply((p.0, p.1 + 1.0));
        let (ax, ay) = (dx.0 - o.0, dx.1 - o.1);
        let (bx, by) = (dy.0 - o.0, dy.1 - o.1);
        (ax * by - ay * bx).abs().sqrt()
    }
}

/// Gaussian elimination with partial pivoting on an augmented 8×9 matrix.
fn solve8(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let f = a[row][col] / a[col][col];
                let pivot_row = a[col];
                for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut x = [0.0; 8];
    for (i, xi) in x.iter_mut().enumerate() {
        *xi = a[i][8] / a[i][i];
    }
    Some(x)
}

/// An axis-aligned rectangle, in whatever unit its owner uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    pub fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        Rect {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        }
    }

    pub fn corners(&self) -> [(f64, f64); 4] {
        [
            (self.x0, self.y0),
            (self.x1, self.y0),
            (self.x1, self.y1),
            (self.x0, self.y1),
        ]
    }

    pub fn center(&self) -> (f64, f64) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }

    pub fn grow(&self, d: f64) -> Rect {
        Rect {
            x0: self.x0 - d,
            y0: self.y0 - d,
            x1: self.x1 + d,
            y1: self.y1 + d,
        }
    }

    pub fn intersect(&self, o: &Rect) -> Option<Rect> {
        let r = Rect {
            x0: self.x0.max(o.x0),
            y0: self.y0.max(o.y0),
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
        };
        (r.x1 > r.x0 && r.y1 > r.y0).then_some(r)
    }

    pub fn union(&self, o: &Rect) -> Rect {
        Rect {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }

    /// The bounding box of points.
    pub fn bounding(points: &[(f64, f64)]) -> Option<Rect> {
        let (&first, rest) = points.split_first()?;
        let mut r = Rect {
            x0: first.0,
            y0: first.1,
            x1: first.0,
            y1: first.1,
        };
        for &(x, y) in rest {
            r.x0 = r.x0.min(x);
            r.y0 = r.y0.min(y);
            r.x1 = r.x1.max(x);
            r.y1 = r.y1.max(y);
        }
        Some(r)
    }

    /// The bounding box of this rectangle's corners under `h`.
    pub fn mapped(&self, h: &Homography) -> Rect {
        let c = self.corners().map(|p| h.apply(p));
        Rect::bounding(&c).unwrap_or(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_quad_maps_the_corners_and_inverse_undoes_it() {
        let from = [(0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0)];
        let to = [(3.0, 1.0), (40.0, 4.0), (38.0, 30.0), (1.0, 25.0)];
        let h = Homography::from_quad(from, to).expect("solvable");
        for (f, t) in from.iter().zip(to) {
            let p = h.apply(*f);
            assert!((p.0 - t.0).abs() < 1e-9 && (p.1 - t.1).abs() < 1e-9);
            let back = h.inverse().apply(p);
            assert!((back.0 - f.0).abs() < 1e-9 && (back.1 - f.1).abs() < 1e-9);
        }
    }

    #[test]
    fn local_scale_of_a_similarity_is_its_scale() {
        let h = Homography::scale(3.0).then_after(Homography::rotate_deg(30.0));
        assert!((h.local_scale((5.0, 7.0)) - 3.0).abs() < 1e-9);
    }
}
