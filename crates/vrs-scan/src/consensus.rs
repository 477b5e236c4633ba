//! Multi-frame consensus for a camera stream: a voucher is confirmed only when enough
//! frames agree on it.
//!
//! A pure state machine over frame reads, so that the rules are table-tested:
//! - `need` frames must give the same line before it is confirmed; frames with no read
//!   (blur, a hand in the way) neither count nor break the run;
//! - a frame that reads a different line starts a new run from one: a new voucher
//!   never inherits an earlier voucher's frames, and a voucher already confirmed is
//!   forgotten the moment a different one is read;
//! - a confirmed voucher is reported once, however long it stays in view;
//! - after `forget_after` frames with no read the view counts as empty, and
//!   [`Consensus::reset`] says the user moved on; either way the last voucher confirmed
//!   is remembered, so that the previous person's voucher still (or again) under the
//!   camera is never shown as the next person's. Only a different voucher read, or
//!   [`Consensus::forget_last`] (the user asked to scan the same one again), lets it be
//!   confirmed anew.

use vrs_domain::ids::OcrLine;

/// How many agreeing frames confirm a voucher. Chosen from `vrs scan --stream`
/// measurements: with two, every stream of the fixture set confirmed within 10 frames
/// and no single-frame misread could ever be confirmed alone.
pub const DEFAULT_NEED: usize = 2;

/// Frames with no read after which the view counts as empty (about half a second at
/// 30 frames a second).
pub const DEFAULT_FORGET_AFTER: usize = 15;

/// What a frame changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing to tell the user.
    None,
    /// A voucher is confirmed: show it.
    Confirmed(OcrLine),
    /// The confirmed voucher left the view (or another came in): clear the screen.
    Cleared,
}

/// The consensus over a stream.
#[derive(Clone, Debug)]
pub struct Consensus {
    need: usize,
    forget_after: usize,
    run: Option<(OcrLine, usize)>,
    confirmed: Option<OcrLine>,
    /// The last voucher confirmed, kept after it left the view.
    last: Option<OcrLine>,
    empty_frames: usize,
}

impl Default for Consensus {
    fn default() -> Self {
        Self::new(DEFAULT_NEED, DEFAULT_FORGET_AFTER)
    }
}

impl Consensus {
    pub fn new(need: usize, forget_after: usize) -> Self {
        Consensus {
            need: need.max(1),
            forget_after: forget_after.max(1),
            run: None,
            confirmed: None,
            last: None,
            empty_frames: 0,
        }
    }

    /// The voucher confirmed and still in view, if any.
    pub fn confirmed(&self) -> Option<OcrLine> {
        self.confirmed
    }

    /// Starts over for the next person. The voucher just confirmed is remembered: if
    /// it is still under the camera it is not confirmed again.
    pub fn reset(&mut self) {
        self.run = None;
        self.confirmed = None;
        self.empty_frames = 0;
    }

    /// Lets the last voucher be confirmed again (the user asked to re-scan it).
    pub fn forget_last(&mut self) {
        self.reset();
        self.last = None;
    }

    /// Feeds one frame's read.
    pub fn push(&mut self, read: Option<OcrLine>) -> Event {
        let Some(line) = read else {
            self.empty_frames += 1;
            if self.empty_frames >= self.forget_after {
                let had = self.confirmed.is_some();
                self.reset();
                if had {
                    return Event::Cleared;
                }
            }
            return Event::None;
        };
        self.empty_frames = 0;
        if self.confirmed == Some(line) {
            return Event::None;
        }
        if self.last == Some(line) && self.confirmed.is_none() {
            // The previous voucher back in view: never the next person's.
            self.run = None;
            return Event::None;
        }
        // Any other voucher read means the last one is out of the way.
        self.last = None;
        let cleared = self.confirmed.take().is_some();
        let count = match self.run {
            Some((l, n)) if l == line => n + 1,
            _ => 1,
        };
        if count >= self.need {
            self.run = None;
            self.confirmed = Some(line);
            self.last = Some(line);
            return Event::Confirmed(line);
        }
        self.run = Some((line, count));
        if cleared { Event::Cleared } else { Event::None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Option<OcrLine> {
        Some(s.parse().expect("valid line"))
    }
    const A: &str = "111310160000000001";
    const B: &str = "121310160000000002";

    /// Runs frames through a fresh consensus and returns the events.
    fn run(need: usize, forget: usize, frames: &[Option<OcrLine>]) -> Vec<Event> {
        let mut c = Consensus::new(need, forget);
        frames.iter().map(|f| c.push(*f)).collect()
    }

    /// (what it shows, agreeing frames needed, frame reads, events expected)
    type Case = (&'static str, usize, Vec<Option<OcrLine>>, Vec<Event>);

    #[test]
    fn table() {
        use Event::*;
        let a = l(A);
        let b = l(B);
        let (ea, eb) = (Confirmed(a.expect("a")), Confirmed(b.expect("b")));
        let cases: Vec<Case> = vec![
            ("two agreeing frames confirm", 2, vec![a, a], vec![None, ea]),
            (
                "empty frames neither count nor break",
                2,
                vec![a, Option::None, a],
                vec![None, None, ea],
            ),
            (
                "one read never confirms with need 2",
                2,
                vec![a, Option::None, Option::None],
                vec![None; 3],
            ),
            (
                "a different read restarts the run",
                2,
                vec![a, b, a],
                vec![None, None, None],
            ),
            (
                "confirmed once however long it stays",
                2,
                vec![a, a, a, a],
                vec![None, ea, None, None],
            ),
            (
                "a new voucher does not inherit the old one's frames",
                2,
                vec![a, a, b, b],
                vec![None, ea, Cleared, eb],
            ),
            (
                "one stray read of another voucher clears, then the first is confirmed afresh",
                2,
                vec![a, a, b, a, a],
                vec![None, ea, Cleared, None, ea],
            ),
            ("need 1 confirms at once", 1, vec![a], vec![ea]),
            (
                "need 3",
                3,
                vec![a, a, Option::None, a],
                vec![None, None, None, ea],
            ),
        ];
        for (name, need, frames, want) in cases {
            assert_eq!(run(need, 15, &frames), want, "{name}");
        }
    }

    #[test]
    fn the_previous_voucher_back_in_view_is_never_confirmed_again() {
        use Event::*;
        let (a, b) = (l(A), l(B));
        let (ea, eb) = (Confirmed(a.expect("a")), Confirmed(b.expect("b")));
        // A leaves the view (3 empty frames forget it) and comes back: not again.
        let frames = [a, a, Option::None, Option::None, Option::None, a, a];
        assert_eq!(
            run(2, 3, &frames),
            vec![None, ea, None, None, Cleared, None, None]
        );
        // The user moved on while A is still under the camera: not again either.
        let mut c = Consensus::new(2, 15);
        assert_eq!([c.push(a), c.push(a)], [None, ea]);
        c.reset();
        assert_eq!([c.push(a), c.push(a), c.push(a)], [None, None, None]);
        // A different voucher is confirmed, and then A may be again.
        assert_eq!([c.push(b), c.push(b)], [None, eb]);
        assert_eq!([c.push(a), c.push(a)], [Cleared, ea]);
        // Asked to re-scan: A is confirmed anew.
        c.forget_last();
        assert_eq!([c.push(a), c.push(a)], [None, ea]);
    }

    #[test]
    fn a_short_gap_does_not_report_the_same_voucher_twice() {
        let a = l(A);
        let frames = [a, a, Option::None, Option::None, a, a];
        let confirmations = run(2, 3, &frames)
            .into_iter()
            .filter(|e| matches!(e, Event::Confirmed(_)))
            .count();
        assert_eq!(confirmations, 1);
    }
}
