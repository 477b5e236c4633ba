//! The camera thread: frames from the camera, or from a replay of images when there
//! is none (or when asked), through the scanner and its consensus; each frame goes to
//! the web view as a small JPEG with the region read outlined. The thread pauses
//! while a voucher waits for the nurse's confirmation, and whenever no screen needs
//! the camera.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use image::DynamicImage;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager};
use vrs_client::frames::{FrameSource, Replay};
use vrs_client::session::{Input, State};
use vrs_scan::{Consensus, Event};

use crate::app::{Look, Shared, SourceInfo, cue};
use crate::options::Options;

/// The live view's width in the web view (frames are scaled down to it).
const PREVIEW_WIDTH: u32 = 640;

#[derive(Clone, Debug, Serialize)]
struct Preview {
    /// `data:image/jpeg;base64,…`
    src: String,
    width: u32,
    height: u32,
    /// The region read (the OCR line), corners clockwise from top-left, in preview
    /// pixels.
    outline: Option<[(f32, f32); 4]>,
    /// Something was read in this frame.
    read: bool,
}

pub fn start(app: AppHandle, options: Options) {
    std::thread::spawn(move || run(&app, &options));
}

/// The images of the replay folder, each repeated `hold` times: one voucher held
/// under the camera for a moment, then the next.
fn replay(dir: &Path, options: &Options) -> Result<Replay, String> {
    let folder = Replay::folder(dir, None).map_err(|e| e.to_string())?;
    let files = folder
        .paths()
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), options.hold))
        .collect();
    Ok(Replay::files(files, Some(options.fps)))
}

fn open_source(options: &Options) -> (Option<Box<dyn FrameSource>>, SourceInfo) {
    #[cfg(feature = "camera")]
    if options.camera || options.replay.is_none() {
        match vrs_client::frames::Camera::open(0) {
            Ok(c) => {
                return (
                    Some(Box::new(c)),
                    SourceInfo {
                        kind: "camera".into(),
                        // nokhwa exposes no torch control on any platform it serves.
                        torch: false,
                        ended: false,
                        detail: String::new(),
                    },
                );
            }
            Err(e) if options.replay.is_none() => {
                return (
                    None,
                    SourceInfo {
                        kind: "none".into(),
                        detail: e.to_string(),
                        ..SourceInfo::default()
                    },
                );
            }
            Err(_) => {}
        }
    }
    match &options.replay {
        Some(dir) => match replay(dir, options) {
            Ok(r) => (
                Some(Box::new(r)),
                SourceInfo {
                    kind: "replay".into(),
                    torch: false,
                    ended: false,
                    detail: dir.display().to_string(),
                },
            ),
            Err(e) => (
                None,
                SourceInfo {
                    kind: "none".into(),
                    detail: e,
                    ..SourceInfo::default()
                },
            ),
        },
        None => (
            None,
            SourceInfo {
                kind: "none".into(),
                detail: "no camera in this build: start the app with --replay DIR to replay images, or type the 18 digits".into(),
                ..SourceInfo::default()
            },
        ),
    }
}

fn preview(frame: &DynamicImage, quad: Option<[(f32, f32); 4]>, read: bool) -> Option<Preview> {
    let scale = PREVIEW_WIDTH as f32 / frame.width().max(1) as f32;
    let small = frame.thumbnail(PREVIEW_WIDTH, u32::MAX).to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
        .encode_image(&small)
        .ok()?;
    Some(Preview {
        src: format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&jpeg)
        ),
        width: small.width(),
        height: small.height(),
        outline: quad.map(|q| q.map(|(x, y)| (x * scale, y * scale))),
        read,
    })
}

fn set_source(app: &AppHandle, info: &SourceInfo) {
    if let Some(shared) = app.try_state::<Shared>() {
        shared.lock().source = info.clone();
    }
    let _ = app.emit("camera", info);
}

fn run(app: &AppHandle, options: &Options) {
    // The app's state is managed right after this thread starts.
    let shared = loop {
        if let Some(s) = app.try_state::<Shared>() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut source, mut info) = open_source(options);
    set_source(app, &info);
    let mut scanner = match vrs_scan::Scanner::new() {
        Ok(s) => Some(s),
        Err(e) => {
            info.detail = format!("the scanner could not start ({e}): type the 18 digits");
            set_source(app, &info);
            None
        }
    };
    let mut consensus = Consensus::default();
    let mut last_look = Look::Off;
    loop {
        let (look, again) = {
            let mut inner = shared.lock();
            let confirming = matches!(
                inner.session.as_ref().map(|s| s.state()),
                Some(State::Confirming { .. })
            );
            let again = std::mem::take(&mut inner.replay_again);
            (if confirming { Look::Off } else { inner.look }, again)
        };
        if again {
            (source, info) = open_source(options);
            consensus = Consensus::default();
            set_source(app, &info);
        }
        if look != last_look {
            consensus.reset();
            last_look = look;
        }
        let (Some(src), Some(scanner), false) =
            (source.as_mut(), scanner.as_mut(), look == Look::Off)
        else {
            std::thread::sleep(Duration::from_millis(80));
            continue;
        };
        let frame = match src.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => {
                if !info.ended {
                    info.ended = true;
                    set_source(app, &info);
                }
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            Err(e) => {
                info.detail = e.to_string();
                set_source(app, &info);
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        match look {
            Look::Voucher => {
                scanner.options.vouchers = true;
                scanner.options.labels = false;
                let read = scanner.scan(&frame).voucher;
                if let Some(p) = preview(&frame, read.as_ref().and_then(|r| r.quad), read.is_some())
                {
                    let _ = app.emit("frame", p);
                }
                if let Event::Confirmed(line) = consensus.push(read.map(|r| r.line)) {
                    let looking = shared.lock().look == Look::Voucher;
                    if looking && let Err(e) = shared.drive(Input::Read(line)) {
                        cue(app, "fail", "error", &e);
                    }
                }
            }
            Look::Label => {
                scanner.options.vouchers = false;
                scanner.options.labels = true;
                let label = scanner.scan(&frame).lot;
                if let Some(p) = preview(&frame, None, label.is_some()) {
                    let _ = app.emit("frame", p);
                }
                if let Some(l) = label {
                    shared.lock().look = Look::Off;
                    let _ = app.emit(
                        "label",
                        serde_json::json!({
                            "gtin": l.gtin.to_string(),
                            "lot": l.lot.to_string(),
                            "expiry": l.expiry,
                        }),
                    );
                    cue(app, "ok", "label_read", &l.lot.to_string());
                }
            }
            Look::Enrol => {
                let code = vrs_client::tablet::enrolment_code_in(&frame);
                if let Some(p) = preview(&frame, None, code.is_some()) {
                    let _ = app.emit("frame", p);
                }
                if let Some(code) = code {
                    shared.lock().look = Look::Off;
                    let _ = app.emit("enrol-code", code);
                    cue(app, "ok", "code_read", "");
                }
            }
            Look::Off => {}
        }
    }
}
