//! The real tablet app, end to end: `vrs serve --demo` on loopback, the app under
//! Xvfb, driven through tauri-driver and WebKitWebDriver (Debian's webkit2gtk-driver),
//! with photos of the demo residents' vouchers replayed as its camera.
//!
//! Enrol with the code, sign in with the mailed passcode, set the session up, scan
//! and confirm, lose the network (the server killed), record more, regain it (the
//! server back on its port), sync, and find every record in the ledger export; a
//! rejected voucher is not recorded, a batch is, and a typed voucher the server does
//! not know is held and corrected on the outbox screen. Screenshots of the main
//! screens are kept in `target/tmp/tablet-screenshots/`.
//!
//! Needs Xvfb, WebKitWebDriver and tauri-driver (`scripts/test` installs them; the
//! tauri-driver it installs is found in `target/tools/bin`, or give
//! `VRS_TAURI_DRIVER`).
#![allow(clippy::unwrap_used)]

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use vrs_testkit::serve::{Server, free_port, sqlite};

const FIRST_VOUCHER: u64 = 1_310_160_001;
const TABLET_EMAIL: &str = "tablet1@clinic.example.jp";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // tauri-driver runs in a process group of its own with its WebKitWebDriver
        // and the app: all of them go.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tablet_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vrs-tablet"))
}

/// The `vrs` command, built beside the app by the same `cargo test --workspace`.
fn vrs() -> PathBuf {
    let exe = tablet_exe().with_file_name("vrs");
    assert!(
        exe.exists(),
        "{} is missing: build it with `cargo build -p vrs-cli` (or run the whole suite, scripts/test)",
        exe.display()
    );
    exe
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("VRS_TAURI_DRIVER") {
        return p.into();
    }
    let local = workspace().join("target/tools/bin/tauri-driver");
    if local.exists() {
        return local;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tauri-driver"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "tauri-driver not found: `cargo install --locked --root target/tools tauri-driver --version ^2` \
             (scripts/test does it), or set VRS_TAURI_DRIVER"
        )
    })
}

/// Xvfb on a display of its own.
fn xvfb() -> (Killed, String) {
    for n in 90..160 {
        if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
            continue;
        }
        let display = format!(":{n}");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x1280x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian's xvfb) must be installed: scripts/test installs it");
        let mut killed = Killed(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return (killed, display);
            }
            if let Ok(Some(_)) = killed.0.try_wait() {
                break; // someone else took it: the next one
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no free X display for Xvfb");
}

struct Screens {
    dir: PathBuf,
}

impl Screens {
    fn new() -> Screens {
        let dir = workspace().join("target/tmp/tablet-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        Screens { dir }
    }

    async fn shot(&self, c: &Client, name: &str) {
        eprintln!("e2e: screenshot {name}");
        let small = c
            .execute(
                "return [...document.querySelectorAll('button, input:not([type=radio]), select, label.choice')]
                   .filter((e) => e.offsetParent !== null)
                   .filter((e) => { const r = e.getBoundingClientRect();
                                    return r.height < 48 || (e.tagName === 'BUTTON' && r.width < 48); })
                   .map((e) => e.id || e.textContent.trim() || e.outerHTML.slice(0, 60))",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            small,
            serde_json::json!([]),
            "{name}: touch targets under 48 px"
        );
        let png = tokio::time::timeout(Duration::from_secs(30), c.screenshot())
            .await
            .unwrap_or_else(|_| panic!("{name}: the screenshot took over 30 s"))
            .unwrap();
        assert!(png.len() > 1000, "{name}: an empty screenshot");
        std::fs::write(self.dir.join(format!("{name}.png")), png).unwrap();
    }
}

async fn wait_for<F, Fut, T>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eprintln!("e2e: waiting for {what}");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// An element's text as shown (empty when it is hidden or missing).
async fn text(c: &Client, id: &str) -> String {
    c.execute(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : ''",
        vec![id.into()],
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(str::to_owned))
    .unwrap_or_default()
}

async fn screen(c: &Client) -> String {
    c.execute("return document.body.dataset.screen || ''", vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn on_screen(c: &Client, name: &str, secs: u64) {
    wait_for(&format!("the {name} screen"), secs, || async {
        (screen(c).await == name).then_some(())
    })
    .await;
}

/// Presses a button as a finger does, from the page (WebDriver's own click waits for a
/// repaint, which an idle WebKit page under Xvfb may not make).
async fn click(c: &Client, id: &str) {
    press(c, &format!("#{id}")).await;
}

async fn press(c: &Client, css: &str) {
    eprintln!("e2e: press {css}");
    let ok = c
        .execute(
            "const e = document.querySelector(arguments[0]);
             if (!e || e.offsetParent === null || e.disabled) return false;
             e.click(); return true",
            vec![css.into()],
        )
        .await
        .unwrap();
    assert_eq!(ok, serde_json::json!(true), "{css}: not there to press");
}

async fn fill(c: &Client, id: &str, value: &str) {
    let e = c.find(Locator::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// Sets an input's value as the date picker would.
async fn set_value(c: &Client, id: &str, value: &str) {
    c.execute(
        "document.getElementById(arguments[0]).value = arguments[1]",
        vec![id.into(), value.into()],
    )
    .await
    .unwrap();
}

/// Waits for the confirmation screen showing `number`, with the name in state
/// `name` (found, unknown or offline).
async fn confirming(c: &Client, number: u64, name: &str) {
    let want = serde_json::json!([number.to_string(), format!("name name-{name}")]);
    wait_for(
        &format!("voucher {number} to confirm ({name})"),
        60,
        || async {
            let seen = c
                .execute(
                    "return document.body.dataset.screen !== 'confirm' ? null
                   : [document.getElementById('confirm-number').textContent,
                      document.getElementById('confirm-name').className]",
                    vec![],
                )
                .await
                .ok()?;
            eprintln!("e2e: confirm screen shows {seen}");
            (seen == want).then_some(())
        },
    )
    .await;
}

async fn count(c: &Client, id: &str) -> u64 {
    text(c, id).await.trim().parse().unwrap_or(u64::MAX)
}

fn ledger(server: &Server) -> String {
    let day = vrs_domain::date::today_jst();
    let r = ureq::get(format!(
        "{}/api/ledger.csv?from={day}&to={day}&encoding=utf-8",
        server.base
    ))
    .header("Authorization", format!("Bearer {}", server.staff()))
    .call()
    .unwrap();
    r.into_body().read_to_string().unwrap()
}

fn line(number: u64) -> String {
    format!("11131016{number}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tablet_app_records_doses_offline_and_online_into_the_ledger() {
    let backend = sqlite();
    let mut server = Server::start(&vrs(), &backend, 50);
    let work = tempfile::tempdir().unwrap();
    let replay = work.path().join("replay");
    // Nine residents' vouchers, in this order under the camera.
    let out = Command::new(vrs())
        .args(["fixtures", "demo-vouchers", "--count", "9", "-o"])
        .arg(&replay)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Before them (in name order), the enrolment code's QR code as the tablets page shows it.
    let qr = vrs_synth::qr_image(&server.enrolment_code(), 8).unwrap();
    let mut page = image::GrayImage::from_pixel(1280, 720, image::Luma([225]));
    image::imageops::overlay(&mut page, &qr, 500, 200);
    page.save(replay.join("0-a-enrolment.png")).unwrap();
    // Then a vaccine box's label (GS1 DataMatrix): lot EU7814, expired 2023-01-02.
    std::fs::copy(
        workspace().join("fixtures/scan/0025.jpg"),
        replay.join("0-b-label.jpg"),
    )
    .unwrap();

    let (_x, display) = xvfb();
    let port = free_port();
    let native = free_port();
    let _driver = Killed(
        Command::new(tauri_driver())
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("DISPLAY", &display)
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("VRS_TABLET_DIR", work.path().join("tablet"))
            .env("VRS_TABLET_SERVER", &server.base)
            .env("VRS_TABLET_REPLAY", &replay)
            // Each voucher 2 s under the camera: read in two frames, then the test has
            // over a second to move on before the next one can be read.
            .env("VRS_TABLET_HOLD", "8")
            .env("VRS_TABLET_FPS", "4")
            .env("VRS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    // tauri-driver listens before the WebKitWebDriver it starts on the native port does;
    // a session asked for in between is dropped without an answer (seen once on CI), so
    // wait for both, and ask again if the first answer is a dropped connection.
    let deadline = Instant::now() + Duration::from_secs(30);
    for p in [port, native] {
        while TcpStream::connect(("127.0.0.1", p)).is_err() {
            assert!(Instant::now() < deadline, "tauri-driver did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "tauri:options".into(),
        serde_json::json!({ "application": tablet_exe() }),
    );
    let mut attempt = 0;
    let c = loop {
        attempt += 1;
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if attempt < 4 => {
                eprintln!("a WebDriver session, attempt {attempt}: {e:?}; asking again");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => panic!("a WebDriver session with the app: {e:?}"),
        }
    };
    let shots = Screens::new();

    // Enrolment, with the server offered and the code typed.
    wait_for("the app to start", 60, || async {
        let ready = c
            .execute("return document.body.dataset.ready || ''", vec![])
            .await
            .ok()?;
        (ready.as_str() == Some("1")).then_some(())
    })
    .await;
    on_screen(&c, "enrol", 10).await;
    let offered = c
        .find(Locator::Id("enrol-server"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(offered.as_deref(), Some(server.base.as_str()));
    fill(&c, "enrol-code", "0000-0000-0000-0000").await;
    click(&c, "enrol-go").await;
    wait_for("the refusal of a wrong code", 20, || async {
        (!text(&c, "enrol-error").await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(screen(&c).await, "enrol", "a wrong code enrols nothing");
    // The right code, read from its QR code with the camera.
    // The right code, read from its QR code with the camera.
    click(&c, "enrol-qr").await;
    let code = server.enrolment_code();
    wait_for("the code read from its QR code", 30, || async {
        let v = c
            .find(Locator::Id("enrol-code"))
            .await
            .ok()?
            .prop("value")
            .await
            .ok()??;
        (v == code).then_some(())
    })
    .await;
    shots.shot(&c, "01-enrol").await;
    click(&c, "enrol-go").await;

    // Sign-in with the passcode mailed to the tablet's address.
    on_screen(&c, "signin", 20).await;
    click(&c, "signin-send").await;
    let passcode = server.mailed_passcode(TABLET_EMAIL);
    fill(&c, "signin-code", &passcode).await;
    shots.shot(&c, "02-signin").await;
    click(&c, "signin-go").await;

    // Set-up: the lot from the box's label, refused as expired; then one typed.
    on_screen(&c, "setup", 20).await;
    click(&c, "setup-label").await;
    wait_for("the label's lot and expiry", 30, || async {
        let lot = c
            .find(Locator::Id("setup-lot"))
            .await
            .ok()?
            .prop("value")
            .await
            .ok()??;
        let expiry = c
            .find(Locator::Id("setup-expiry"))
            .await
            .ok()?
            .prop("value")
            .await
            .ok()??;
        (lot == "EU7814" && expiry == "2023-01-02").then_some(())
    })
    .await;
    click(&c, "setup-go").await;
    wait_for("the expired lot refused", 10, || async {
        text(&c, "setup-error")
            .await
            .contains("expired")
            .then_some(())
    })
    .await;
    fill(&c, "setup-lot", "FA4597").await;
    set_value(&c, "setup-expiry", "2030-12-31").await;
    shots.shot(&c, "03-setup").await;
    click(&c, "setup-go").await;
    on_screen(&c, "scan", 10).await;
    wait_for("the live view", 30, || async {
        let src = c
            .find(Locator::Css("#scan-view img"))
            .await
            .ok()?
            .attr("src")
            .await
            .ok()??;
        src.starts_with("data:image/jpeg").then_some(())
    })
    .await;
    shots.shot(&c, "04-scan").await;

    // Two vouchers online: the name is shown, then confirmed.
    confirming(&c, FIRST_VOUCHER, "found").await;
    assert!(!text(&c, "confirm-name").await.trim().is_empty());
    assert_eq!(text(&c, "confirm-lot").await, "FA4597");
    shots.shot(&c, "05-confirm").await;
    click(&c, "confirm-yes").await;
    confirming(&c, FIRST_VOUCHER + 1, "found").await;
    click(&c, "confirm-yes").await;
    // The third is on screen with its name when the network goes.
    confirming(&c, FIRST_VOUCHER + 2, "found").await;
    server.kill9();
    click(&c, "confirm-yes").await;
    // The fourth is read offline: no name, saved all the same.
    confirming(&c, FIRST_VOUCHER + 3, "offline").await;
    shots.shot(&c, "06-confirm-offline").await;
    click(&c, "confirm-yes").await;
    // The fifth is the wrong person: rejected, never recorded.
    confirming(&c, FIRST_VOUCHER + 4, "offline").await;
    click(&c, "confirm-no").await;
    on_screen(&c, "scan", 10).await;

    // Nothing lost while offline: the outbox holds what the server has not.
    click(&c, "nav-outbox").await;
    on_screen(&c, "outbox", 10).await;
    wait_for("two records queued", 30, || async {
        (count(&c, "st-queued").await + count(&c, "st-sent").await == 2).then_some(())
    })
    .await;
    assert_eq!(count(&c, "st-confirmed").await, 2);
    shots.shot(&c, "07-outbox-offline").await;

    // The network is back: sync, and all four are accepted.
    server = Server::start_on(&vrs(), &backend, 50, server.port);
    click(&c, "st-sync").await;
    wait_for("four records accepted", 60, || async {
        (count(&c, "st-confirmed").await == 4 && count(&c, "st-queued").await == 0).then_some(())
    })
    .await;
    shots.shot(&c, "08-outbox-synced").await;

    // Batch mode: the rest of the stack saved as it is read, no confirmation.
    click(&c, "nav-scan").await;
    on_screen(&c, "scan", 10).await;
    click(&c, "scan-change").await;
    on_screen(&c, "setup", 10).await;
    press(&c, "input[name=mode][value=batch]").await;
    click(&c, "setup-go").await;
    on_screen(&c, "scan", 10).await;
    wait_for("the batch of four", 60, || async {
        (count(&c, "batch-count").await == 4).then_some(())
    })
    .await;
    assert_eq!(screen(&c).await, "scan", "batch mode asks no confirmation");
    shots.shot(&c, "09-batch").await;
    // A typed voucher that no one holds: saved, then held by the server.
    fill(&c, "scan-digits", &line(FIRST_VOUCHER + 900)).await;
    click(&c, "scan-typed").await;
    wait_for("the typed voucher in the batch", 20, || async {
        (count(&c, "batch-count").await == 5).then_some(())
    })
    .await;
    click(&c, "batch-end").await;
    on_screen(&c, "setup", 10).await;

    click(&c, "nav-outbox").await;
    on_screen(&c, "outbox", 10).await;
    let held = wait_for("the unknown voucher held", 60, || async {
        let item = c.find(Locator::Css("#held-list .held-item")).await.ok()?;
        (count(&c, "st-confirmed").await == 8).then_some(item)
    })
    .await;
    assert!(
        held.text().await.unwrap().contains("対象者"),
        "the hold's reason shown in Japanese"
    );
    shots.shot(&c, "10-held").await;
    // Corrected to the right voucher (the nurse misread it): sent again, accepted.
    let voucher = held
        .find(Locator::Css("input[name=voucher]"))
        .await
        .unwrap();
    voucher.send_keys(&line(FIRST_VOUCHER + 20)).await.unwrap();
    press(&c, "#held-list .held-item button").await;
    wait_for("the correction accepted", 60, || async {
        (count(&c, "st-confirmed").await == 9
            && count(&c, "st-superseded").await == 1
            && count(&c, "st-held").await == 0)
            .then_some(())
    })
    .await;

    // English, and the portrait tablet.
    click(&c, "nav-settings").await;
    on_screen(&c, "settings", 10).await;
    click(&c, "lang-en").await;
    wait_for("the English screens", 10, || async {
        (text(&c, "nav-outbox").await == "Outbox").then_some(())
    })
    .await;
    shots.shot(&c, "11-settings-en").await;
    c.set_window_size(800, 1280).await.unwrap();
    click(&c, "nav-outbox").await;
    on_screen(&c, "outbox", 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    shots.shot(&c, "12-outbox-portrait-en").await;
    c.close().await.unwrap();

    // The ledger has every dose recorded, once; the rejected voucher is not there.
    let ledger = ledger(&server);
    let rows: Vec<&str> = ledger.lines().skip(1).collect();
    let has = |n: u64| {
        rows.iter()
            .filter(|r| r.contains(&format!(",{n},")))
            .count()
    };
    for n in [0, 1, 2, 3, 5, 6, 7, 8, 20] {
        assert_eq!(
            has(FIRST_VOUCHER + n),
            1,
            "voucher {} in {ledger}",
            FIRST_VOUCHER + n
        );
    }
    assert_eq!(
        has(FIRST_VOUCHER + 4),
        0,
        "the rejected voucher was recorded"
    );
    assert_eq!(rows.len(), 9, "{ledger}");
}
