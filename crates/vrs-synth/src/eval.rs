//! Scoring the scanner against a fixture folder's truth: `vrs scan --eval` and
//! `vrs scan --stream`, and the tests that replay the committed fixtures.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::truth::{self, TruthEntry, TruthError};
use vrs_scan::{Consensus, Event, FrameReport, LineReader, Scanner, Stages};

/// Why a folder could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Truth(#[from] TruthError),
    #[error("{path}: {detail}")]
    Image { path: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Reads an image file.
pub fn load(path: &Path) -> Result<image::DynamicImage, EvalError> {
    image::open(path).map_err(|e| EvalError::Image {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Single-frame scores.
#[derive(Clone, Debug, Default)]
pub struct EvalReport {
    pub images: usize,
    /// Images holding a valid voucher, and how many of them were read right.
    pub vouchers: usize,
    pub read: usize,
    /// A voucher reported with other digits than the truth's.
    pub misreads: usize,
    /// Images with no valid voucher (empty, check digit wrong, labels), and how many of
    /// them got a voucher anyway.
    pub no_voucher: usize,
    pub false_positives: usize,
    pub labels: usize,
    pub labels_read: usize,
    pub label_misreads: usize,
    /// A label reported where the truth has none.
    pub label_false_positives: usize,
    /// Per scene kind: (images, right).
    pub scenes: BTreeMap<String, (usize, usize)>,
    /// Milliseconds per frame, in file order.
    pub ms: Vec<f64>,
    /// Milliseconds per frame by stage (barcodes, finding the line, reading it).
    pub stages: Vec<Stages>,
    /// One line per image that was not right.
    pub failures: Vec<String>,
}

impl EvalReport {
    pub fn read_rate(&self) -> f64 {
        if self.vouchers == 0 {
            return 1.0;
        }
        self.read as f64 / self.vouchers as f64
    }

    /// The `q` quantile of the frame times (0.5 median, 0.95 p95).
    pub fn ms_quantile(&self, q: f64) -> f64 {
        quantile(&self.ms, q)
    }

    fn add(&mut self, entry: &TruthEntry, report: &FrameReport) {
        self.images += 1;
        self.ms.push(report.ms);
        self.stages.push(report.stages);
        let got = report.voucher.as_ref().map(|v| v.line.to_string());
        let mut right = true;
        match (&entry.voucher, &got) {
            (Some(want), Some(g)) if want == g => self.read += 1,
            (Some(want), Some(g)) => {
                self.misreads += 1;
                right = false;
                self.failures.push(format!(
                    "{}: MISREAD {g}, truth {want} ({})",
                    entry.file, entry.note
                ));
            }
            (Some(want), None) => {
                right = false;
                self.failures.push(format!(
                    "{}: not read, truth {want} ({})",
                    entry.file, entry.note
                ));
            }
            (None, Some(g)) => {
                self.false_positives += 1;
                right = false;
                self.failures.push(format!(
                    "{}: FALSE POSITIVE {g} ({})",
                    entry.file, entry.note
                ));
            }
            (None, None) => {}
        }
        if entry.voucher.is_some() {
            self.vouchers += 1;
        } else {
            self.no_voucher += 1;
        }
        if entry.lot.is_none() && report.lot.is_some() {
            self.label_false_positives += 1;
            right = false;
            self.failures.push(format!(
                "{}: LABEL FALSE POSITIVE {:?}",
                entry.file, report.lot
            ));
        }
        if let Some(want) = &entry.lot {
            self.labels += 1;
            match &report.lot {
                Some(l)
                    if l.gtin.to_string() == want.gtin
                        && l.lot.as_str() == want.lot
                        && l.expiry.to_string() == want.expiry =>
                {
                    self.labels_read += 1
                }
                Some(l) => {
                    self.label_misreads += 1;
                    right = false;
                    self.failures.push(format!(
                        "{}: LABEL MISREAD {l:?}, truth {want:?}",
                        entry.file
                    ));
                }
                None => {
                    right = false;
                    self.failures
                        .push(format!("{}: label not read ({})", entry.file, entry.note));
                }
            }
        }
        let scene = self.scenes.entry(entry.scene.clone()).or_default();
        scene.0 += 1;
        if right {
            scene.1 += 1;
        }
    }
}

fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "vouchers read {}/{} ({:.1}%), misreads {}, false positives {} of {} images with no valid voucher",
            self.read,
            self.vouchers,
            100.0 * self.read_rate(),
            self.misreads,
            self.false_positives,
            self.no_voucher
        )?;
        writeln!(
            f,
            "labels read {}/{}, label misreads {}, label false positives {}",
            self.labels_read, self.labels, self.label_misreads, self.label_false_positives
        )?;
        writeln!(
            f,
            "ms per frame: median {:.1}, p95 {:.1}, max {:.1} ({} images)",
            self.ms_quantile(0.5),
            self.ms_quantile(0.95),
            self.ms_quantile(1.0),
            self.images
        )?;
        let stage = |f: fn(&Stages) -> f64| {
            let v: Vec<f64> = self.stages.iter().map(f).collect();
            (quantile(&v, 0.5), quantile(&v, 0.95))
        };
        let (b, fi, r) = (stage(|s| s.barcodes), stage(|s| s.find), stage(|s| s.read));
        writeln!(
            f,
            "ms by stage (median / p95): barcodes {:.1} / {:.1}, finding the line {:.1} / {:.1}, reading it {:.1} / {:.1}",
            b.0, b.1, fi.0, fi.1, r.0, r.1
        )?;
        for (scene, (n, ok)) in &self.scenes {
            writeln!(f, "  {scene}: {ok}/{n}")?;
        }
        Ok(())
    }
}

/// Scores every image of `dir` against `dir/truth.json`; `each` sees every result.
pub fn evaluate<R: LineReader>(
    scanner: &mut Scanner<R>,
    dir: &Path,
    mut each: impl FnMut(&TruthEntry, &FrameReport),
) -> Result<EvalReport, EvalError> {
    let entries = truth::read_truth(dir)?;
    let mut report = EvalReport::default();
    for entry in &entries {
        let img = load(&dir.join(&entry.file))?;
        let r = scanner.scan(&img);
        each(entry, &r);
        report.add(entry, &r);
    }
    Ok(report)
}

/// Stream scores.
#[derive(Clone, Debug, Default)]
pub struct StreamReport {
    pub streams: usize,
    /// Runs of frames showing one valid voucher.
    pub sequences: usize,
    /// …confirmed within `window` frames of coming into view.
    pub within_window: usize,
    pub window: usize,
    /// …confirmed at all while in view.
    pub confirmed: usize,
    /// Confirmations of a voucher other than the one in view.
    pub wrong: usize,
    /// Frames to confirmation, per confirmed sequence.
    pub frames_to_confirm: Vec<usize>,
    pub frame_ms: Vec<f64>,
    pub failures: Vec<String>,
}

impl fmt::Display for StreamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: usize| {
            if self.sequences == 0 {
                100.0
            } else {
                100.0 * n as f64 / self.sequences as f64
            }
        };
        let ftc: Vec<f64> = self.frames_to_confirm.iter().map(|&n| n as f64).collect();
        writeln!(
            f,
            "sequences confirmed within {} frames: {}/{} ({:.1}%); confirmed at all {}/{}; wrong confirmations {}",
            self.window,
            self.within_window,
            self.sequences,
            pct(self.within_window),
            self.confirmed,
            self.sequences,
            self.wrong
        )?;
        writeln!(
            f,
            "frames to confirm: median {:.0}, p95 {:.0}; ms per frame: median {:.1}, p95 {:.1} ({} streams)",
            quantile(&ftc, 0.5),
            quantile(&ftc, 0.95),
            quantile(&self.frame_ms, 0.5),
            quantile(&self.frame_ms, 0.95),
            self.streams
        )
    }
}

/// The frames of a stream folder, in name order.
pub fn frames(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let io = |source| EvalError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Replays every stream of `dir/streams.json` through a consensus needing `need`
/// agreeing frames, and scores when each voucher was confirmed.
pub fn replay_streams<R: LineReader>(
    scanner: &mut Scanner<R>,
    dir: &Path,
    need: usize,
    window: usize,
) -> Result<StreamReport, EvalError> {
    let streams = truth::read_streams(dir)?;
    let mut report = StreamReport {
        window,
        ..Default::default()
    };
    for s in &streams {
        report.streams += 1;
        let paths = frames(&dir.join(&s.dir))?;
        let mut consensus = Consensus::new(need, vrs_scan::DEFAULT_FORGET_AFTER);
        let mut events = Vec::with_capacity(paths.len());
        for p in &paths {
            let r = scanner.scan(&load(p)?);
            report.frame_ms.push(r.ms);
            events.push(consensus.push(r.voucher.map(|v| v.line)));
        }
        if s.segments
            .iter()
            .any(|seg| seg.first_frame.saturating_add(seg.frames) > events.len())
        {
            return Err(EvalError::Image {
                path: dir.join(&s.dir).display().to_string(),
                detail: format!(
                    "the truth names more frames than the {} on disk",
                    events.len()
                ),
            });
        }
        // Every confirmation, in a segment or not, must be of the voucher in view.
        for (i, e) in events.iter().enumerate() {
            let Event::Confirmed(l) = e else { continue };
            let in_view = s
                .segments
                .iter()
                .find(|seg| (seg.first_frame..seg.first_frame + seg.frames).contains(&i))
                .and_then(|seg| seg.voucher.as_deref());
            if in_view != Some(l.to_string().as_str()) {
                report.wrong += 1;
                report.failures.push(format!(
                    "{}: frame {i}: WRONG {l}, in view {in_view:?}",
                    s.dir
                ));
            }
        }
        for seg in &s.segments {
            let in_view = seg.first_frame..seg.first_frame + seg.frames;
            let confirmed_at = in_view.clone().find_map(|i| match events[i] {
                Event::Confirmed(l) => Some((i, l.to_string())),
                _ => None,
            });
            let Some(want) = &seg.voucher else { continue };
            report.sequences += 1;
            match confirmed_at {
                Some((i, l)) if &l == want => {
                    report.confirmed += 1;
                    let n = i - seg.first_frame + 1;
                    report.frames_to_confirm.push(n);
                    if n <= window {
                        report.within_window += 1;
                    } else {
                        report
                            .failures
                            .push(format!("{}: {want} confirmed after {n} frames", s.dir));
                    }
                }
                _ => report.failures.push(format!(
                    "{}: {want} never confirmed in frames {in_view:?}",
                    s.dir
                )),
            }
        }
    }
    Ok(report)
}
