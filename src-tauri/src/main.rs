//! vrs-tablet: the Tauri 2 app. Thin commands over `vrs_client::tablet::Tablet`
//! (`app.rs`), a camera thread that feeds the scanner and shows the live view
//! (`camera.rs`), and events to the web view in `ui/`.
//!
//! ```text
//! vrs-tablet [--dir DIR] [--server URL] [--code CODE] [--replay DIR] [--hold N]
//!            [--fps F] [--camera] [--lang ja|en] [--window WxH] [--ca-cert PEM]
//! ```
//! Every option can also be given as `VRS_TABLET_<NAME>` in the environment.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod app;
mod camera;
mod options;

use tauri::Manager;

/// Tesseract reads OpenMP's thread limit only when the process starts: without it,
/// this process becomes itself again with it set (one thread is ~10× faster a line).
fn with_one_omp_thread() {
    let (name, value) = vrs_scan::ONE_THREAD_ENV;
    if std::env::var_os(name).is_some() {
        return;
    }
    #[cfg(unix)]
    if let Ok(exe) = std::env::current_exe() {
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(name, value)
            .exec();
        eprintln!("vrs-tablet: could not restart with {name}={value} ({err}): scanning is slower");
    }
}

fn main() {
    with_one_omp_thread();
    let options = match options::Options::from_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vrs-tablet: {e}\n\n{}", options::USAGE);
            std::process::exit(2);
        }
    };
    let result = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![
            app::state,
            app::enrol,
            app::sign_in_start,
            app::sign_in,
            app::sign_out,
            app::set_up,
            app::camera,
            app::replay_again,
            app::typed,
            app::confirm,
            app::reject,
            app::end_batch,
            app::status,
            app::sync_now,
            app::correct,
            app::settings,
        ])
        .setup(move |tauri_app| {
            let dir = match &options.dir {
                Some(d) => d.clone(),
                None => tauri_app.path().app_data_dir()?,
            };
            if let Some((w, h)) = options.window
                && let Some(win) = tauri_app.get_webview_window("main")
            {
                win.set_size(tauri::LogicalSize::new(f64::from(w), f64::from(h)))?;
            }
            let shared = app::Shared::open(&dir, options.clone(), tauri_app.handle().clone())?;
            tauri_app.manage(shared);
            camera::start(tauri_app.handle().clone(), options.clone());
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("vrs-tablet: {e}");
        std::process::exit(1);
    }
}
