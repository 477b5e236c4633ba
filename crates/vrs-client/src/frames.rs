//! Frame sources: where the scanner's frames come from. A replay of image files (a
//! folder, or an ordered list) at a chosen rate stands in for the camera wherever
//! there is none: in tests, in the demo, on a build machine. The camera itself
//! (nokhwa) is behind the `camera` feature, which the tablet app turns on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::DynamicImage;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("no camera found{0}: connect one, or replay images instead (--frames DIR)")]
    NoCamera(String),
    #[error("the camera failed: {0}")]
    Camera(String),
    #[error("{path}: {detail}")]
    Image { path: String, detail: String },
    #[error("{0}: no PNG or JPEG images in the folder")]
    Empty(String),
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
}

/// Something that gives frames, one after another; `None` when it has no more.
pub trait FrameSource {
    fn next_frame(&mut self) -> Result<Option<DynamicImage>, FrameError>;
}

/// Image files replayed as a camera would give them.
#[derive(Debug)]
pub struct Replay {
    files: Vec<PathBuf>,
    next: usize,
    interval: Option<Duration>,
    due: Option<Instant>,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

impl Replay {
    /// The images of a folder in name order, at `fps` frames a second (`None`: as
    /// fast as they are asked for).
    pub fn folder(dir: &Path, fps: Option<f64>) -> Result<Replay, FrameError> {
        let entries = std::fs::read_dir(dir).map_err(|e| FrameError::Io {
            path: dir.display().to_string(),
            detail: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_image(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(FrameError::Empty(dir.display().to_string()));
        }
        Ok(Replay::files(files, fps))
    }

    /// These files, in this order.
    pub fn files(files: Vec<PathBuf>, fps: Option<f64>) -> Replay {
        Replay {
            files,
            next: 0,
            interval: fps
                .filter(|f| *f > 0.0 && f.is_finite())
                .map(|f| Duration::from_secs_f64(1.0 / f)),
            due: None,
        }
    }

    /// The files, in replay order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FrameSource for Replay {
    fn next_frame(&mut self) -> Result<Option<DynamicImage>, FrameError> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        if let Some(interval) = self.interval {
            let now = Instant::now();
            if let Some(due) = self.due
                && due > now
            {
                std::thread::sleep(due - now);
            }
            self.due = Some(self.due.unwrap_or(now).max(now - interval) + interval);
        }
        image::open(path).map(Some).map_err(|e| FrameError::Image {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }
}

/// The camera (nokhwa: V4L2 on Linux, AVFoundation, Media Foundation).
#[cfg(feature = "camera")]
pub struct Camera(nokhwa::Camera);

#[cfg(feature = "camera")]
impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera").finish_non_exhaustive()
    }
}

#[cfg(feature = "camera")]
impl Camera {
    /// The cameras there are, by name.
    pub fn list() -> Result<Vec<String>, FrameError> {
        nokhwa::query(nokhwa::utils::ApiBackend::Auto)
            .map(|found| found.iter().map(|c| c.human_name()).collect())
            .map_err(|e| FrameError::NoCamera(format!(" ({e})")))
    }

    /// Opens camera `index` at its highest resolution and starts its stream.
    pub fn open(index: u32) -> Result<Camera, FrameError> {
        use nokhwa::pixel_format::RgbFormat;
        use nokhwa::utils::{CameraIndex, RequestedFormat, RequestedFormatType};
        if Camera::list()?.is_empty() {
            return Err(FrameError::NoCamera(String::new()));
        }
        let format =
            RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestResolution);
        let mut cam = nokhwa::Camera::new(CameraIndex::Index(index), format)
            .map_err(|e| FrameError::NoCamera(format!(" at index {index} ({e})")))?;
        cam.open_stream()
            .map_err(|e| FrameError::Camera(e.to_string()))?;
        Ok(Camera(cam))
    }
}

#[cfg(feature = "camera")]
impl FrameSource for Camera {
    fn next_frame(&mut self) -> Result<Option<DynamicImage>, FrameError> {
        let buffer = self
            .0
            .frame()
            .map_err(|e| FrameError::Camera(e.to_string()))?;
        let rgb = buffer
            .decode_image::<nokhwa::pixel_format::RgbFormat>()
            .map_err(|e| FrameError::Camera(e.to_string()))?;
        Ok(Some(DynamicImage::ImageRgb8(rgb)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..n {
            image::GrayImage::from_pixel(4, 4, image::Luma([i as u8 * 40]))
                .save(dir.path().join(format!("frame-{i:03}.png")))
                .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a frame").unwrap();
        dir
    }

    #[test]
    fn a_folder_replays_in_name_order_then_ends() {
        let dir = folder(3);
        let mut r = Replay::folder(dir.path(), None).unwrap();
        assert_eq!(r.len(), 3);
        let mut shades = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            shades.push(f.to_luma8().get_pixel(0, 0).0[0]);
        }
        assert_eq!(shades, [0, 40, 80]);
    }

    #[test]
    fn a_rate_spaces_the_frames() {
        let dir = folder(4);
        let mut r = Replay::folder(dir.path(), Some(50.0)).unwrap();
        let t = Instant::now();
        while r.next_frame().unwrap().is_some() {}
        // Three intervals of 20 ms between four frames.
        assert!(
            t.elapsed() >= Duration::from_millis(55),
            "{:?}",
            t.elapsed()
        );
    }

    /// On a machine with no camera (this one, CI): an error that says what to do.
    #[cfg(feature = "camera")]
    #[test]
    fn no_camera_is_a_clear_error_not_a_crash() {
        if Camera::list().is_ok_and(|l| !l.is_empty()) {
            return; // a machine with a camera: nothing to prove here
        }
        let e = Camera::open(0).unwrap_err();
        assert!(matches!(e, FrameError::NoCamera(_)), "{e}");
        assert!(e.to_string().contains("replay images instead"), "{e}");
    }

    #[test]
    fn an_empty_folder_or_a_bad_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Replay::folder(dir.path(), None),
            Err(FrameError::Empty(_))
        ));
        std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
        let mut r = Replay::folder(dir.path(), None).unwrap();
        let e = r.next_frame().unwrap_err();
        assert!(e.to_string().contains("broken.png"), "{e}");
        assert!(Replay::folder(&dir.path().join("missing"), None).is_err());
    }
}
