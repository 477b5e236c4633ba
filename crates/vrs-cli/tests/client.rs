//! `vrs client` (the tablet, headless) against `vrs serve`, both real processes on
//! loopback: a voucher photo to the municipal ledger; kill -9 during saves and
//! during a sync; the server down for a while; a proxy that fails, stalls and drops
//! connections at random; a held record corrected and sent again; a revoked tablet.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose when the set-up fails

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use vrs_testkit::serve::{Server, sqlite};

fn vrs() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vrs"))
}

/// The tablet's data folder.
struct Tablet {
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Tablet {
    fn new() -> Tablet {
        let dir = tempfile::tempdir().unwrap();
        Tablet {
            dir: dir.path().join("tablet"),
            _dir: dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(vrs());
        c.arg("client")
            .arg("--dir")
            .arg(&self.dir)
            .args(["--timeout", "3"])
            .args(args)
            .env("VRS_LOG", "warn");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and requires success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vrs client {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn enrol(&self, base: &str, code: &str) {
        self.ok(&["enrol", "--server", base, "--code", code]);
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build(),
    )
}

fn get(base: &str, staff: &str, path: &str) -> String {
    let mut r = agent()
        .get(format!("{base}{path}"))
        .header("Authorization", format!("Bearer {staff}"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap()
}

/// Today in Japan, as the tablet dates its records.
fn today() -> String {
    vrs_client::tablet::today_jst().to_string()
}

/// `n` OCR lines of Chiyoda's demo residents (dose 1).
fn lines(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| format!("11131016{:010}", 1_310_160_001 + i))
        .collect()
}

/// Queues `lines` as a batch session does (no name look-up).
fn queue(tablet: &Tablet, lines: &[String]) {
    tablet.ok(&["setup", "--vaccine", "pfizer", "--lot", "FA4597", "--batch"]);
    let mut args = vec!["record"];
    for l in lines {
        args.extend(["--manual", l.as_str()]);
    }
    tablet.ok(&args);
}

/// What the server holds for Chiyoda from today: the ledger's vouchers (each must be
/// there once) and the number of held records.
fn stored(server: &Server) -> (HashSet<String>, usize) {
    let staff = server.staff();
    let day = today();
    let csv = get(
        &server.base,
        &staff,
        &format!("/api/ledger.csv?from={day}&to={day}&encoding=utf-8"),
    );
    let rows: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().to_owned())
        .collect();
    let vouchers: HashSet<String> = rows.iter().cloned().collect();
    assert_eq!(vouchers.len(), rows.len(), "a voucher twice in the ledger");
    let held: Value =
        serde_json::from_str(&get(&server.base, &staff, "/api/records/held")).unwrap();
    (vouchers, held.as_array().unwrap().len())
}

/// Every one of `lines` is on the server exactly once, and the tablet holds a receipt
/// for each.
fn all_arrived_once(server: &Server, tablet: &Tablet, lines: &[String]) {
    let (vouchers, held) = stored(server);
    assert_eq!(
        vouchers.len() + held,
        lines.len(),
        "{} in the ledger + {held} held, for {} saved",
        vouchers.len(),
        lines.len()
    );
    let s = &tablet.status()["status"];
    assert_eq!(s["saved"], lines.len());
    assert_eq!(s["queued"], 0, "{s}");
    assert_eq!(s["sent"], 0, "{s}");
    assert_eq!(
        s["confirmed"].as_u64().unwrap() + s["held"].as_u64().unwrap(),
        lines.len() as u64
    );
}

#[test]
fn a_voucher_photo_goes_from_the_tablet_to_its_municipalitys_ledger() {
    let backend = sqlite();
    let server = Server::start(vrs(), &backend, 50);
    // The person lives in Osaka (271004), whose register holds their voucher; the dose
    // is given at the Chiyoda demo clinic (a vaccination outside one's home town).
    let admin = |args: &[&str]| {
        let out = Command::new(vrs())
            .arg("admin")
            .args(args)
            .args(backend.args())
            .env_remove("VRS_VAULT_KEY")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    admin(&["municipality", "--code", "271004", "--name", "大阪府大阪市"]);
    let osaka = admin(&[
        "token",
        "--municipality",
        "271004",
        "--staff",
        "clerk@city.osaka.lg.jp",
    ])
    .lines()
    .last()
    .unwrap()
    .to_owned();
    let register = "900001,,大阪,花子,オオサカ,ハナコ,19600401,2,3024746053,\n";
    let r = agent()
        .post(format!("{}/api/register/import", server.base))
        .header("Authorization", format!("Bearer {osaka}"))
        .content_type("text/csv")
        .send(register.as_bytes())
        .unwrap();
    assert_eq!(r.status(), 200);

    let tablet = Tablet::new();
    tablet.enrol(&server.base, &server.enrolment_code());
    tablet.ok(&[
        "setup",
        "--vaccine",
        "pfizer",
        "--lot",
        "FA4597",
        "--expiry",
        "2030-12-31",
    ]);
    // The name look-up needs the nurse signed in: a passcode to the tablet's e-mail.
    let out = tablet.run(&["record", "--yes", "--manual", "112710043024746053"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("vrs client signin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        tablet.status()["status"]["saved"],
        0,
        "nothing saved without the name"
    );
    tablet.ok(&["signin"]);
    let code = server.mailed_passcode("tablet1@clinic.example.jp");
    tablet.ok(&["signin", "--passcode", &code]);
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scan/0008.jpg");
    let out = tablet.ok(&["record", "--yes", "--image", photo.to_str().unwrap()]);
    assert!(
        out.contains("大阪 花子"),
        "the name shown for confirmation: {out}"
    );
    assert!(out.contains("saved "), "{out}");
    // Nothing has left the tablet yet.
    assert_eq!(tablet.status()["status"]["queued"], 1);
    let out = tablet.ok(&["sync"]);
    assert!(out.contains("1 accepted"), "{out}");

    let day = today();
    let ledger = get(
        &server.base,
        &osaka,
        &format!("/api/ledger.csv?from={day}&to={day}&encoding=utf-8"),
    );
    let row = ledger.lines().nth(1).unwrap();
    assert!(
        row.contains(",3024746053,131016,千代田デモクリニック,"),
        "{row}"
    );
    assert!(row.contains("FA4597"), "{row}");
    assert_eq!(tablet.status()["status"]["confirmed"], 1);
}

#[test]
fn a_held_record_stays_visible_and_is_corrected_and_sent_again() {
    let backend = sqlite();
    let server = Server::start(vrs(), &backend, 50);
    let tablet = Tablet::new();
    // Enrolled from a photo of the enrolment QR code.
    let photo = tablet._dir.path().join("enrolment-qr.png");
    vrs_synth::qr_image(&server.enrolment_code(), 8)
        .unwrap()
        .save(&photo)
        .unwrap();
    let out = tablet.ok(&[
        "enrol",
        "--server",
        &server.base,
        "--qr",
        photo.to_str().unwrap(),
    ]);
    assert!(out.contains("enrolled: device"), "{out}");
    // A misread voucher number: no one has it; saved unconfirmed and held.
    queue(&tablet, &["111310169999999999".to_owned()]);
    tablet.ok(&["sync"]);
    let v = tablet.status();
    assert_eq!(v["status"]["held"], 1, "{v}");
    let held = &v["held"][0];
    assert_eq!(held["reason"], "unknown_voucher");
    assert_eq!(
        held["reason_ja"],
        "この券番号の接種対象者が登録されていません"
    );
    let text = tablet.ok(&["status"]);
    assert!(
        text.contains("held ") && text.contains("131016 9999999999"),
        "{text}"
    );

    let id = held["record"]["client_record_id"].as_str().unwrap();
    let out = tablet.ok(&["correct", id, "--voucher", "111310161310160001"]);
    assert!(out.contains("queued the correction"), "{out}");
    let out = tablet.ok(&["sync"]);
    assert!(out.contains("1 accepted"), "{out}");
    let s = &tablet.status()["status"];
    assert_eq!(
        (
            s["saved"].as_u64(),
            s["confirmed"].as_u64(),
            s["held"].as_u64(),
            s["superseded"].as_u64()
        ),
        (Some(2), Some(1), Some(0), Some(1))
    );
    let (vouchers, held) = stored(&server);
    assert!(vouchers.contains("1310160001"));
    assert_eq!(
        held, 0,
        "the misread leaves the municipality's queue, superseded by its correction"
    );
}

#[test]
fn kill_9_during_saves_loses_no_record_that_was_saved() {
    let backend = sqlite();
    let server = Server::start(vrs(), &backend, 50);
    let tablet = Tablet::new();
    tablet.enrol(&server.base, &server.enrolment_code());
    tablet.ok(&["setup", "--vaccine", "pfizer", "--lot", "FA4597", "--batch"]);
    let all = lines(3000);
    let mut args = vec!["record"];
    for l in &all {
        args.extend(["--manual", l.as_str()]);
    }
    let mut child = tablet
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read what it reports saved, and kill it in the middle.
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while seen.iter().filter(|&&b| b == b'\n').count() < 600 {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "the client ended before the kill");
        seen.extend_from_slice(&buf[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let reported = String::from_utf8_lossy(&seen)
        .lines()
        .filter(|l| l.trim_start().starts_with("saved ") && !l.contains("in this run"))
        .count() as u64;
    let saved = tablet.status()["status"]["saved"].as_u64().unwrap();
    assert!(
        saved >= reported && saved <= reported + 2,
        "{reported} reported saved, {saved} in the outbox"
    );
    assert!(saved < all.len() as u64, "the kill came too late");
    // What was saved goes out whole.
    tablet.ok(&["sync"]);
    let (vouchers, held) = stored(&server);
    assert_eq!(vouchers.len() + held, saved as usize);
}

#[test]
fn kill_9_during_a_sync_then_a_new_sync_stores_each_record_once() {
    let backend = sqlite();
    let server = Server::start(vrs(), &backend, 4000);
    let tablet = Tablet::new();
    tablet.enrol(&server.base, &server.enrolment_code());
    let all = lines(4000);
    queue(&tablet, &all);
    let mut child = tablet
        .command(&["sync", "--batch", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once the server has some of it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (v, h) = stored(&server);
        if v.len() + h >= 300 {
            break;
        }
        assert!(Instant::now() < deadline, "the sync never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (v, h) = stored(&server);
    assert!(v.len() + h < all.len(), "the kill came too late");
    let s = &tablet.status()["status"];
    assert!(
        s["queued"].as_u64().unwrap() + s["sent"].as_u64().unwrap() > 0,
        "{s}"
    );
    tablet.ok(&["sync"]);
    all_arrived_once(&server, &tablet, &all);
}

#[test]
fn the_server_down_for_a_while_then_everything_arrives() {
    let backend = sqlite();
    let mut server = Server::start(vrs(), &backend, 500);
    let port = server.port;
    let tablet = Tablet::new();
    tablet.enrol(&server.base, &server.enrolment_code());
    let all = lines(500);
    queue(&tablet, &all);
    server.kill9();
    // Offline, set-up still checks the lot against the lot master fetched at
    // enrolment: a lot it does not list, or one that has expired, is refused.
    for lot in ["ZZ9999", "EY0572"] {
        let out = tablet.run(&["setup", "--vaccine", "pfizer", "--lot", lot]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{lot} taken offline");
        assert!(
            err.contains("not in the lot master") || err.contains("expired"),
            "{lot}: {err}"
        );
    }
    tablet.ok(&["setup", "--vaccine", "pfizer", "--lot", "FA4597", "--batch"]);
    // Nothing answers: sync keeps trying with backoff...
    let child = tablet
        .command(&["sync", "--for", "60", "--batch", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let s = &tablet.status()["status"];
    assert_eq!(s["confirmed"], 0);
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{s}"
    );
    // ...until the server is back where it was.
    let server = Server::start_on(vrs(), &backend, 500, port);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(" 0 retries"), "it had to retry: {text}");
    all_arrived_once(&server, &tablet, &all);
}

#[test]
fn a_revoked_tablet_stops_syncing_and_says_why_and_keeps_its_records() {
    let backend = sqlite();
    let server = Server::start(vrs(), &backend, 50);
    let tablet = Tablet::new();
    tablet.enrol(&server.base, &server.enrolment_code());
    queue(&tablet, &lines(5));
    let device = tablet.ok(&["status", "--json"]);
    assert!(device.contains("\"queued\":5"), "{device}");
    let listed: Value =
        serde_json::from_str(&get(&server.base, &server.staff(), "/api/devices")).unwrap();
    let id = listed[0]["device_id"].as_str().unwrap().to_owned();
    let r = agent()
        .post(format!("{}/api/devices/{id}/revoke", server.base))
        .header("Authorization", format!("Bearer {}", server.staff()))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 204);
    let out = tablet.run(&["sync"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("revoked"), "{err}");
    let s = &tablet.status()["status"];
    assert_eq!(s["saved"], 5);
    assert_eq!(s["confirmed"], 0);
}

/// Between the tablet and the server: for each connection, at random, pass the
/// request on and the answer back; answer 500; stall past the client's timeout;
/// pass the request on but drop the answer (the server has stored it; the tablet
/// does not know); or hang up at once.
struct FlakyProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    passed: Arc<AtomicUsize>,
}

fn read_message(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl FlakyProxy {
    fn start(upstream: u16, seed: u64) -> FlakyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let passed = Arc::new(AtomicUsize::new(0));
        let (stop2, passed2) = (stop.clone(), passed.clone());
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut first = true;
            while !stop2.load(Ordering::SeqCst) {
                let Ok((mut client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                // The first connection (the enrolment) always passes: a code is
                // single-use, so a lost enrolment answer needs a new code.
                let roll = if first { 99 } else { rng.u32(0..100) };
                first = false;
                let passed = passed2.clone();
                std::thread::spawn(move || {
                    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
                    if roll < 10 {
                        return; // hang up at once
                    }
                    let Some(request) = read_message(&mut client) else {
                        return;
                    };
                    if roll < 30 {
                        let body = r#"{"error":"upstream failed"}"#;
                        let _ = write!(
                            client,
                            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        return;
                    }
                    if roll < 40 {
                        std::thread::sleep(Duration::from_secs(5)); // past the 3 s timeout
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        return;
                    };
                    if server.write_all(&request).is_err() {
                        return;
                    }
                    let Some(answer) = read_message(&mut server) else {
                        return;
                    };
                    if roll < 55 {
                        return; // the server did the work; the answer is lost
                    }
                    passed.fetch_add(1, Ordering::SeqCst);
                    let _ = client.write_all(&answer);
                });
            }
        });
        FlakyProxy { port, stop, passed }
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_proxy_that_fails_stalls_and_drops_at_random_loses_and_doubles_nothing() {
    let backend = sqlite();
    let server = Server::start(vrs(), &backend, 1500);
    let proxy = FlakyProxy::start(server.port, 7);
    let tablet = Tablet::new();
    let via = format!("http://127.0.0.1:{}", proxy.port);
    tablet.enrol(&via, &server.enrolment_code());
    let all = lines(1500);
    queue(&tablet, &all);
    let out = tablet.run(&["sync", "--for", "300", "--batch", "100"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(" 0 retries"),
        "the proxy did fail some: {text}"
    );
    assert!(proxy.passed.load(Ordering::SeqCst) > 0);
    all_arrived_once(&server, &tablet, &all);
}

#[test]
fn camera_frames_replayed_confirm_each_voucher_once_in_a_batch() {
    let backend = sqlite();
    let server = Server::start(vrs(), &backend, 20);
    let tablet = Tablet::new();
    tablet.enrol(&server.base, &server.enrolment_code());
    tablet.ok(&["setup", "--vaccine", "pfizer", "--lot", "FA4597", "--batch"]);
    let streams = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scan/streams");
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(streams.join("streams.json")).unwrap())
            .unwrap();
    let stream = &truth[0];
    let wanted: Vec<String> = stream["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["voucher"].as_str())
        .map(|v| v[8..].to_owned())
        .collect();
    let dir = streams.join(stream["dir"].as_str().unwrap());
    let out = tablet.ok(&["record", "--frames", dir.to_str().unwrap(), "--fps", "30"]);
    let saved: Vec<String> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("saved ") && !l.contains("in this run"))
        .map(|l| l.split_whitespace().nth(3).unwrap().to_owned())
        .collect();
    assert_eq!(saved, wanted, "{out}");
}

#[test]
fn background_sync_sends_the_outbox_once_the_network_is_back() {
    let backend = sqlite();
    let mut server = Server::start(vrs(), &backend, 200);
    let port = server.port;
    let tablet = Tablet::new();
    tablet.enrol(&server.base, &server.enrolment_code());
    let all = lines(200);
    queue(&tablet, &all);
    server.kill9();
    let (tx, rx) = std::sync::mpsc::channel();
    let sync = vrs_client::tablet::BackgroundSync::start(
        &tablet.dir,
        vrs_client::tablet::Connection {
            ca_pem: None,
            timeout: Duration::from_secs(3),
        },
        vrs_client::sync::SyncOptions {
            give_up_after: Duration::from_secs(1),
            ..Default::default()
        },
        Duration::from_millis(300),
        move |r| {
            let _ = tx.send(r);
        },
    )
    .unwrap();
    // Offline: each attempt stops with records left, and says why.
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    assert!(first.stopped.is_some(), "{first:?}");
    assert_eq!(first.status.confirmed, 0);
    let server = Server::start_on(vrs(), &backend, 200, port);
    sync.now();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
        if r.status.complete() {
            break;
        }
        assert!(Instant::now() < deadline, "never complete: {r:?}");
    }
    drop(sync);
    all_arrived_once(&server, &tablet, &all);
}
