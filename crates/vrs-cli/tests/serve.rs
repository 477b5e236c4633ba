//! `vrs serve` as a real process on loopback: the API end to end, bad input that
//! must never get a 5xx, and kill -9 in the middle of an import and of an ingest.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose when the set-up fails

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use vrs_testkit::serve::{Backend, postgres, sqlite};

fn vrs() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_vrs"))
}

struct Server(vrs_testkit::serve::Server);

impl std::ops::Deref for Server {
    type Target = vrs_testkit::serve::Server;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Server {
    fn start(backend: &Backend, residents: u64) -> Server {
        Server(vrs_testkit::serve::Server::start(vrs(), backend, residents))
    }

    /// The demo's staff token, and its tablet enrolled with the demo's one-time code,
    /// its user signed in.
    fn tokens(&self) -> (String, Who) {
        let who = enrol(&self.base, &self.enrolment_code());
        sign_in(self, &who, "tablet1@clinic.example.jp");
        (self.staff(), who)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build(),
    )
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// An enrolled tablet, which signs its requests.
#[derive(Clone, Debug)]
struct Who(Arc<Signer>);

#[derive(Debug)]
struct Signer {
    device: vrs_domain::DeviceId,
    key: vrs_client::device::DeviceKey,
    /// The tablet user's session (the name look-up needs it).
    session: std::sync::Mutex<Option<String>>,
}

/// Enrols a new tablet key with a one-time code.
fn enrol(base: &str, code: &str) -> Who {
    let key = vrs_client::device::DeviceKey::generate().unwrap();
    let api = vrs_client::api::Api::new(base, None, Duration::from_secs(60)).unwrap();
    let e = api.enrol(code, &key).unwrap();
    Who(Arc::new(Signer {
        device: e.device_id,
        key,
        session: std::sync::Mutex::new(None),
    }))
}

/// Signs the tablet's user in with the passcode the server mailed to its folder.
fn sign_in(server: &vrs_testkit::serve::Server, who: &Who, email: &str) {
    let (s, v) = post_json(&server.base, "/api/tablet/signin/start", who, &json!({}));
    assert_eq!(s, 202, "{v}");
    let code = server.mailed_passcode(email);
    let (s, v) = post_json(
        &server.base,
        "/api/tablet/signin/verify",
        who,
        &json!({"passcode": code}),
    );
    assert_eq!(s, 200, "{v}");
    *who.0.session.lock().unwrap() = Some(v["session"].as_str().unwrap().to_owned());
}

impl Who {
    /// The device id the tablet's records carry.
    fn device(&self) -> String {
        self.0.device.to_string()
    }
}

/// Credentials on a request: a staff bearer token (or a made-up one), or a tablet's
/// signature over the request.
trait Creds {
    fn on<B>(
        &self,
        req: ureq::RequestBuilder<B>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> ureq::RequestBuilder<B>;
}

impl Creds for str {
    fn on<B>(
        &self,
        req: ureq::RequestBuilder<B>,
        _: &str,
        _: &str,
        _: &[u8],
    ) -> ureq::RequestBuilder<B> {
        req.header("Authorization", bearer(self))
    }
}

impl Creds for String {
    fn on<B>(
        &self,
        req: ureq::RequestBuilder<B>,
        m: &str,
        p: &str,
        b: &[u8],
    ) -> ureq::RequestBuilder<B> {
        self.as_str().on(req, m, p, b)
    }
}

impl Creds for Who {
    fn on<B>(
        &self,
        req: ureq::RequestBuilder<B>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> ureq::RequestBuilder<B> {
        let h = self
            .0
            .key
            .sign(
                self.0.device,
                method,
                path,
                body,
                chrono::Utc::now().timestamp(),
            )
            .unwrap();
        let req = match self.0.session.lock().unwrap().as_deref() {
            Some(s) => req.header("x-vrs-session", s),
            None => req,
        };
        h.pairs()
            .into_iter()
            .fold(req, |r, (name, value)| r.header(name, value))
    }
}

fn post_raw<C: Creds + ?Sized>(
    base: &str,
    path: &str,
    who: &C,
    body: &[u8],
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    who.on(agent().post(format!("{base}{path}")), "POST", path, body)
        .content_type("application/json")
        .send(body)
}

fn post_json<C: Creds + ?Sized>(base: &str, path: &str, who: &C, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut r = post_raw(base, path, who, &bytes).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn record(device: &str, id: u128, voucher: u64, dose: u8, date: &str) -> Value {
    dose_at(
        device,
        id,
        ("131016", voucher, dose, date, "FA4597"),
        json!({"clinic": "1312345679"}),
    )
}

/// A tablet's record: (the voucher's municipality, voucher, dose, date, lot) at `site`.
fn dose_at(
    device: &str,
    id: u128,
    (municipality, voucher, dose, date, lot): (&str, u64, u8, &str, &str),
    site: Value,
) -> Value {
    json!({
        "client_record_id": uuid::Uuid::from_u128(id).to_string(),
        "municipality": municipality,
        "voucher": format!("{voucher:010}"),
        "voucher_kind": 1,
        "dose_number": dose,
        "vaccinated_on": date,
        "vaccine": "pfizer",
        "lot": lot,
        "site": site,
        "device_id": device,
    })
}

fn ledger(base: &str, staff: &str) -> String {
    let mut r = agent()
        .get(format!(
            "{base}/api/ledger.csv?from=2021-01-01&to=2021-12-31&encoding=utf-8"
        ))
        .header("Authorization", bearer(staff))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap()
}

fn upload(base: &str, staff: &str, path: &str, query: &str, body: Vec<u8>) -> (u16, Value) {
    let mut r = agent()
        .post(format!("{base}{path}?{query}"))
        .header("Authorization", bearer(staff))
        .content_type("text/csv")
        .send(&body[..])
        .unwrap();
    let status = r.status().as_u16();
    let text = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn generated_register(rows: u64, first_person: u64, first_voucher: u64) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_vrs"))
        .args(["fixtures", "register", "--encoding", "cp932", "--seed", "5"])
        .args(["--rows", &rows.to_string()])
        .args(["--first-person-id", &first_person.to_string()])
        .args(["--first-voucher", &first_voucher.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn the_api_end_to_end_on_a_running_server(backend: Backend) {
    let server = Server::start(&backend, 300);
    let (staff, tablet) = server.tokens();
    let dev = tablet.device();
    let base = &server.base;

    // The tablet asks for a name, then uploads a dose twice.
    let (s, name) = post_json(
        base,
        "/api/tablet/name",
        &tablet,
        &json!({"municipality": "131016", "voucher": "1310160001"}),
    );
    assert_eq!(s, 200, "{name}");
    assert!(name["family_name"].is_string());
    assert_eq!(
        name.as_object().unwrap().len(),
        4,
        "a name and nothing else: {name}"
    );
    let batch = json!({"records": [record(&dev, 1, 1310160001, 1, "2021-06-01"), record(&dev, 1, 1310160001, 1, "2021-06-01"), record(&dev, 2, 1310169999, 1, "2021-06-01")]});
    let (s, r) = post_json(base, "/api/tablet/records", &tablet, &batch);
    assert_eq!(s, 200, "{r}");
    let outcomes: Vec<&str> = r["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["accepted", "duplicate", "held"]);
    assert_eq!(r["receipts"][2]["reason"], "unknown_voucher");
    // Sent again (the first answer lost): stored once, and the held one says so again.
    let (s, r) = post_json(base, "/api/tablet/records", &tablet, &batch);
    assert_eq!(s, 200, "{r}");
    let again: Vec<&str> = r["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(again, ["duplicate", "duplicate", "held"]);
    assert_eq!(r["receipts"][2]["reason"], "unknown_voucher");

    // Staff see the held record and the accepted one in the ledger.
    let mut held = agent()
        .get(format!("{base}/api/records/held"))
        .header("Authorization", bearer(&staff))
        .call()
        .unwrap();
    let held: Value = serde_json::from_str(&held.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(held.as_array().unwrap().len(), 1);
    let csv = ledger(base, &staff);
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .contains(",20210601,1310160001,131016,千代田デモクリニック,,ファイザー,FA4597,1")
    );

    // Who may do what.
    let (s, _) = post_json(base, "/api/tablet/records", &staff, &json!({"records": []}));
    assert_eq!(s, 401, "the tablet endpoints take only signed requests");
    let (s, _) = post_json(
        base,
        "/api/transfer/lookup",
        &tablet,
        &json!({"my_number": "123456789018"}),
    );
    assert_eq!(
        s, 401,
        "a tablet's signature counts only on the tablet endpoints"
    );
    let (s, _) = post_json(
        base,
        "/api/tablet/name",
        "vrs_nope",
        &json!({"municipality": "131016", "voucher": "1310160001"}),
    );
    assert_eq!(s, 401);

    // The OpenAPI document lists every endpoint.
    let mut doc = agent()
        .get(format!("{base}/api/openapi.json"))
        .call()
        .unwrap();
    let doc: Value = serde_json::from_str(&doc.body_mut().read_to_string().unwrap()).unwrap();
    for p in [
        "/api/register/import",
        "/api/paper/import",
        "/api/tablet/name",
        "/api/tablet/records",
        "/api/ledger.csv",
        "/api/transfer/lookup",
        "/api/transfer/lookup-batch",
        "/api/records/held",
        "/api/records/{id}/void",
        "/api/records/{id}/amend",
        "/api/imports/{id}/errors.csv",
    ] {
        assert!(
            doc["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
}

fn malformed_csv_or_json_never_gets_a_5xx(backend: Backend) {
    let server = Server::start(&backend, 10);
    let (staff, tablet) = server.tokens();
    let base = &server.base;
    // Without credentials the answer is 401, whatever else is wrong: the caller is
    // checked before the request is read.
    let r = agent()
        .get(format!("{base}/api/ledger.csv?from=yesterday"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = agent()
        .post(format!("{base}/api/tablet/name"))
        .header("Authorization", "Bearer vrs_not_a_token")
        .content_type("application/json")
        .send("{")
        .unwrap();
    assert_eq!(r.status(), 401);
    let jsons = [
        "",
        "{",
        "[]",
        "null",
        "{\"records\": 5}",
        "{\"records\": [{}]}",
        "{\"municipality\": \"131017\", \"voucher\": \"1310160001\"}",
        "{\"municipality\": 131016, \"voucher\": 1310160001}",
        "{\"my_number\": 123456789018}",
        "\u{0}\u{1}garbage",
    ];
    for path in [
        "/api/tablet/name",
        "/api/tablet/records",
        "/api/transfer/lookup",
    ] {
        for body in jsons {
            for as_tablet in [false, true] {
                let mut r = if as_tablet {
                    post_raw(base, path, &tablet, body.as_bytes())
                } else {
                    post_raw(base, path, &staff, body.as_bytes())
                }
                .unwrap();
                let status = r.status().as_u16();
                let text = r.body_mut().read_to_string().unwrap();
                assert!(
                    (400..500).contains(&status),
                    "{path} {body:?}: {status} {text}"
                );
                assert!(
                    !text.contains("12345678901"),
                    "a マイナンバー echoed: {text}"
                );
            }
        }
    }
    let csvs: [&[u8]; 5] = [
        b"",
        b"\xff\xfe\x00garbage",
        b"\"unclosed,,,\n1,2",
        b"a,b,c\n",
        b"1001,,,,,,,,,,,,\n",
    ];
    for path in [
        "/api/register/import",
        "/api/paper/import",
        "/api/transfer/lookup-batch",
        "/api/lots/import?dry_run=true",
    ] {
        for body in csvs {
            let (status, v) = upload(base, &staff, path, "", body.to_vec());
            assert!(status < 500, "{path}: {status} {v}");
        }
    }
    for q in [
        "from=x&to=y",
        "from=2021-02-01&to=2021-01-01",
        "from=2021-01-01&to=2021-02-01&encoding=latin1",
        "",
    ] {
        let r = agent()
            .get(format!("{base}/api/ledger.csv?{q}"))
            .header("Authorization", bearer(&staff))
            .call()
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
    }
}

fn kill_9_during_an_import_leaves_no_half_applied_file(backend: Backend) {
    let mut server = Server::start(&backend, 10);
    let staff = server.staff();
    let rows = 300_000;
    let file = generated_register(rows, 200_000_001, 2_000_000_001);
    let base = server.base.clone();
    let body = file.clone();
    let st = staff.clone();
    let upload_thread = std::thread::spawn(move || {
        agent()
            .post(format!("{base}/api/register/import"))
            .header("Authorization", bearer(&st))
            .content_type("text/csv")
            .send(&body[..])
            .map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    let killed = upload_thread.join().unwrap();
    assert!(
        killed.is_err() || killed.as_ref().is_ok_and(|s| *s != 200),
        "the upload finished before the kill: make the file larger"
    );

    let server = Server::start(&backend, 10);
    let staff = server.staff();
    let (s, report) = upload(
        &server.base,
        &staff,
        "/api/register/import",
        "dry_run=true",
        file,
    );
    assert_eq!(s, 200, "{report}");
    let (new, unchanged) = (
        report["new"].as_u64().unwrap(),
        report["unchanged"].as_u64().unwrap(),
    );
    assert!(
        (new, unchanged) == (rows, 0) || (new, unchanged) == (0, rows),
        "half-applied: {new} new, {unchanged} unchanged"
    );
}

/// A register upload on a slow line: while half the file is still to come, a
/// tablet's records go through (the upload is received whole before the import
/// takes its write lock), and then the upload completes.
fn a_slow_upload_does_not_hold_up_the_tablets(backend: Backend) {
    use std::io::{BufRead, Write};
    let server = Server::start(&backend, 300);
    let (staff, tablet) = server.tokens();
    let dev = tablet.device();
    let file = generated_register(20_000, 300_000_001, 3_000_000_001);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        conn,
        "POST /api/register/import HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {staff}\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        file.len()
    )
    .unwrap();
    let half = file.len() / 2;
    conn.write_all(&file[..half]).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let batch = json!({"records": [record(&dev, 77, 1310160001, 1, "2021-06-01")]});
    let (s, r) = post_json(&server.base, "/api/tablet/records", &tablet, &batch);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["receipts"][0]["outcome"], "accepted", "{r}");

    conn.write_all(&file[half..]).unwrap();
    let mut reader = std::io::BufReader::new(conn);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("\"outcome\":\"applied\""), "{rest}");
    assert!(rest.contains("\"new\":20000"), "{rest}");
}

/// Nobody harvests names by trying voucher numbers: a tablet that keeps missing is
/// stopped (429 with Retry-After), even for a voucher that exists, while another
/// tablet goes on.
fn a_tablet_guessing_vouchers_is_stopped(backend: Backend) {
    let server = Server::start(&backend, 300);
    let (_, tablet) = server.tokens();
    let base = &server.base;
    let ask = |who: &Who, voucher: u64| {
        let body = json!({"municipality": "131016", "voucher": format!("{voucher:010}")});
        let r = post_raw(base, "/api/tablet/name", who, body.to_string().as_bytes()).unwrap();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), retry)
    };
    let mut statuses = Vec::new();
    for guess in 0..25u64 {
        statuses.push(ask(&tablet, 1_310_190_000 + guess).0);
    }
    assert_eq!(statuses[..20], [404; 20]);
    assert_eq!(statuses[20..], [429; 5]);
    let (status, retry) = ask(&tablet, 1_310_160_001);
    assert_eq!(status, 429, "a real voucher too, once the misses are spent");
    assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
    // Another device (a second enrolled tablet) is not held back.
    let (code, out) = vrs_admin(
        &backend,
        &[
            "device",
            "register",
            "--municipality",
            "131016",
            "--clinic",
            "1312345679",
            "--site-name",
            "千代田デモクリニック",
            "--email",
            "tablet2@clinic.example.jp",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("enrolment code "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let other = enrol(base, &code);
    sign_in(&server, &other, "tablet2@clinic.example.jp");
    assert_eq!(ask(&other, 1_310_160_001).0, 200);
}

fn vrs_admin(backend: &Backend, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vrs"))
        .arg("admin")
        .args(args)
        .arg("--data")
        .arg(&backend.data)
        .args(
            backend
                .database
                .iter()
                .flat_map(|d| ["--database", d.as_str()]),
        )
        .env_remove("VRS_VAULT_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Reads and writes of personal data land in the municipality's access log, which
/// staff can search; `vrs admin audit verify` passes, then names the entry someone
/// edited behind the service's back.
fn the_access_log_records_each_access_and_shows_an_edit(backend: Backend) {
    let server = Server::start(&backend, 300);
    let (staff, tablet) = server.tokens();
    let dev = tablet.device();
    let base = &server.base;
    let (s, _) = post_json(
        base,
        "/api/tablet/name",
        &tablet,
        &json!({"municipality": "131016", "voucher": "1310160001"}),
    );
    assert_eq!(s, 200);
    let batch = json!({"records": [record(&dev, 5, 1310160001, 1, "2021-06-01")]});
    assert_eq!(
        post_json(base, "/api/tablet/records", &tablet, &batch).0,
        200
    );
    let file = generated_register(50, 400_000_001, 4_000_000_001);
    let (s, report) = upload(base, &staff, "/api/register/import", "", file);
    assert_eq!(s, 200, "{report}");
    let (s, _) = post_json(
        base,
        "/api/transfer/lookup",
        &staff,
        &json!({"my_number": "123456789018"}),
    );
    assert_eq!(s, 200);

    let mut r = agent()
        .get(format!("{base}/api/audit?limit=50"))
        .header("Authorization", bearer(&staff))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let log: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in [
        "name.lookup",
        "records.upload",
        "transfer.lookup",
        "register.import",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} missing from {actions:?}"
        );
    }
    let lookup = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "name.lookup")
        .unwrap();
    assert_eq!(lookup["object"], "131016 1310160001");
    assert!(
        lookup["actor"]
            .as_str()
            .unwrap()
            .starts_with("device:131016:")
    );
    // The log never holds the number a transfer look-up was asked for.
    assert!(!log.to_string().contains("123456789018"));
    // A tablet cannot read the log.
    let r = tablet
        .on(
            agent().get(format!("{base}/api/audit")),
            "GET",
            "/api/audit",
            b"",
        )
        .call()
        .unwrap();
    assert_eq!(r.status(), 401);

    let (code, out) = vrs_admin(&backend, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
    let (code, heads) = vrs_admin(&backend, &["audit", "head"]);
    assert_eq!(code, 0, "{heads}");
    let head = heads
        .lines()
        .find(|l| l.starts_with("131016:"))
        .unwrap()
        .to_owned();

    // Someone with the database (not the keys) rewrites entry 2 of Chiyoda's chain.
    let edit = "UPDATE audit_log SET object = '131016 1310169999' WHERE chain = 131016 AND seq = 2";
    match &backend.database {
        None => {
            let keys = std::fs::read_to_string(backend.data.join("keys")).unwrap();
            let key = keys
                .lines()
                .find_map(|l| l.strip_prefix("database = "))
                .unwrap()
                .trim()
                .to_owned();
            let conn = rusqlite::Connection::open(backend.data.join("audit.db")).unwrap();
            conn.execute_batch(&format!("PRAGMA key = \"x'{key}'\";"))
                .unwrap();
            assert!(conn.execute_batch(edit).is_err(), "the log refuses edits");
            conn.execute_batch(&format!("DROP TRIGGER audit_log_no_update; {edit};"))
                .unwrap();
        }
        Some(url) => {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            let plain = edit.replace("audit_log", "vrs.audit_log");
            assert!(c.batch_execute(&plain).is_err(), "the log refuses edits");
            c.batch_execute(&format!(
                "ALTER TABLE vrs.audit_log DISABLE TRIGGER USER; {plain};"
            ))
            .unwrap();
        }
    }
    let (code, out) = vrs_admin(&backend, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("chain 131016, entry 2: was changed after it was written"),
        "{out}"
    );
    // And a kept head that is no longer there is reported.
    let (code, out) = vrs_admin(&backend, &["audit", "verify", "--head", &head]);
    assert_eq!(code, 1, "{out}");
}

fn kill_9_during_ingest_loses_nothing_and_doubles_nothing(backend: Backend) {
    let residents = 3000u64;
    let mut server = Server::start(&backend, residents);
    let (_, tablet) = server.tokens();
    let dev = tablet.device();
    let batches: Vec<Value> = (0..residents / 200)
        .map(|b| {
            let records: Vec<Value> = (0..200)
                .map(|i| {
                    let n = b * 200 + i;
                    record(&dev, 1000 + n as u128, 1_310_160_001 + n, 1, "2021-06-01")
                })
                .collect();
            json!({"records": records})
        })
        .collect();
    let batches = Arc::new(batches);
    let done = Arc::new(AtomicUsize::new(0));
    let (b, d, base, t) = (
        batches.clone(),
        done.clone(),
        server.base.clone(),
        tablet.clone(),
    );
    let sender = std::thread::spawn(move || {
        for batch in b.iter() {
            if post_json_result(&base, &t, batch).is_err() {
                return;
            }
            d.fetch_add(1, Ordering::SeqCst);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    sender.join().unwrap();
    let before = done.load(Ordering::SeqCst);
    assert!(
        before < batches.len(),
        "every batch went through before the kill"
    );

    // The tablet resends everything it holds no receipt for (here: all of it).
    let server = Server::start(&backend, residents);
    let staff = server.staff();
    for batch in batches.iter() {
        let (s, r) = post_json(&server.base, "/api/tablet/records", &tablet, batch);
        assert_eq!(s, 200, "{r}");
        for receipt in r["receipts"].as_array().unwrap() {
            let o = receipt["outcome"].as_str().unwrap();
            // The synthetic register has a few people flagged moved out or deceased.
            let flagged = o == "held" && receipt["reason"] == "person_removed";
            assert!(o == "accepted" || o == "duplicate" || flagged, "{receipt}");
        }
    }
    // Every record is stored exactly once: in the ledger, or held for review.
    let csv = ledger(&server.base, &staff);
    let vouchers: std::collections::HashSet<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    let in_ledger = csv.lines().count() as u64 - 1;
    assert_eq!(
        vouchers.len() as u64,
        in_ledger,
        "a voucher twice in the ledger"
    );
    let mut held = agent()
        .get(format!("{}/api/records/held", server.base))
        .header("Authorization", bearer(&staff))
        .call()
        .unwrap();
    let held: Value = serde_json::from_str(&held.body_mut().read_to_string().unwrap()).unwrap();
    let held = held.as_array().unwrap().len() as u64;
    assert!(held < residents / 50, "{held} held");
    assert_eq!(in_ledger + held, residents, "one row per record");
}

fn post_json_result(base: &str, who: &Who, body: &Value) -> Result<u16, ureq::Error> {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut r = post_raw(base, "/api/tablet/records", who, &bytes)?;
    let mut sink = Vec::new();
    r.body_mut().as_reader().read_to_end(&mut sink)?;
    Ok(r.status().as_u16())
}

/// With a certificate and key, `vrs serve` speaks HTTPS only, and says so in
/// Strict-Transport-Security; a bad key file is a clear error at start.
#[test]
fn the_server_speaks_tls_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    // A municipality and its first user, to sign in over HTTPS.
    let data = dir.path().join("data");
    for args in [
        &[
            "municipality",
            "--code",
            "131016",
            "--name",
            "東京都千代田区",
        ][..],
        &[
            "user",
            "add",
            "--municipality",
            "131016",
            "--email",
            "tls@city.chiyoda.lg.jp",
            "--person",
            "暗号 太郎",
        ][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_vrs"))
            .arg("admin")
            .args(args)
            .arg("--data")
            .arg(&data)
            .env_remove("VRS_VAULT_KEY")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = |key_file: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_vrs"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(dir.path().join("data"))
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(key_file)
            .env_remove("VRS_VAULT_KEY")
            .env("VRS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // A key file that is not a key: refused at start, naming the file.
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, "not a key").unwrap();
    let out = serve(&wrong).wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TLS key") && err.contains("wrong.pem"),
        "{err}"
    );

    let mut child = serve(&key);
    let base = format!("https://localhost:{port}");
    let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![
        ureq::tls::Certificate::from_pem(made.cert.pem().as_bytes()).unwrap(),
    ]));
    let https = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = loop {
        match https.get(format!("{base}/api/health")).call() {
            Ok(r) => break r,
            Err(e) => {
                assert!(Instant::now() < deadline, "no HTTPS answer: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    // Under TLS the session cookie is Secure.
    let email = "tls@city.chiyoda.lg.jp";
    let r = https
        .post(format!("{base}/api/signin/start"))
        .send_json(json!({"email": email}))
        .unwrap();
    assert_eq!(r.status(), 202);
    // The mail goes out in the background: wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let found = std::fs::read_dir(data.join("mail"))
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|e| e == "eml"))
            })
            .and_then(|p| std::fs::read_to_string(p).ok());
        if let Some(t) = found.filter(|t| t.contains("passcode")) {
            break t;
        }
        assert!(Instant::now() < deadline, "no passcode mail");
        std::thread::sleep(Duration::from_millis(50));
    };
    let code = text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap();
    let r = https
        .post(format!("{base}/api/signin/verify"))
        .send_json(json!({"email": email, "passcode": code}))
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Plain HTTP on the same port gets no answer from the API.
    let plain = agent()
        .get(format!("http://127.0.0.1:{port}/api/health"))
        .call();
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A tablet enrols once with its code, signs every request (a replayed, altered or
/// far-off-clock request is refused), and once its municipality revokes it, nothing
/// it sends is taken.
fn a_tablet_enrols_once_signs_every_request_and_is_refused_once_revoked(backend: Backend) {
    let server = Server::start(&backend, 300);
    let (staff, tablet) = server.tokens();
    let base = &server.base;
    let used = server.enrolment_code();
    let key = vrs_client::device::DeviceKey::generate().unwrap();
    let api = vrs_client::api::Api::new(base, None, Duration::from_secs(60)).unwrap();
    let e = api.enrol(&used, &key).unwrap_err();
    assert!(
        matches!(&e, vrs_client::api::ApiError::Refused { status: 403, .. }),
        "a used code: {e}"
    );

    // Staff register a second tablet through the API and get its code once.
    let (s, reg) = post_json(
        base,
        "/api/devices",
        &staff,
        &json!({"site": {"clinic": "1312345679"}, "site_name": "千代田デモクリニック",
                "email": "Tablet3@Clinic.Example.JP", "doses_per_day": 40}),
    );
    assert_eq!(s, 201, "{reg}");
    let code = reg["code"].as_str().unwrap().to_owned();
    let (s, again) = post_json(
        base,
        "/api/devices",
        &staff,
        &json!({"site": {"clinic": "1312345679"}, "site_name": "x", "email": "tablet3@clinic.example.jp"}),
    );
    assert_eq!(s, 422, "one e-mail per tablet: {again}");
    let third = enrol(base, &code.to_lowercase().replace('-', " "));
    sign_in(&server, &third, "tablet3@clinic.example.jp");
    let session = third.0.session.lock().unwrap().clone().unwrap();
    assert_eq!(third.device(), reg["device_id"].as_str().unwrap());

    // One signed request, sent twice: the second is a replay.
    let body = br#"{"municipality":"131016","voucher":"1310160001"}"#;
    let path = "/api/tablet/name";
    let h = third
        .0
        .key
        .sign(
            third.0.device,
            "POST",
            path,
            body,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    let send = |h: &vrs_client::device::SignedHeaders, body: &[u8]| {
        let req = h.pairs().into_iter().fold(
            agent()
                .post(format!("{base}{path}"))
                .header("x-vrs-session", &session),
            |r, (n, v)| r.header(n, v),
        );
        let mut r = req.content_type("application/json").send(body).unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    assert_eq!(send(&h, body).0, 200);
    let (s, why) = send(&h, body);
    assert_eq!(s, 401);
    assert!(why.contains("sent before"), "{why}");
    // An altered body under a fresh nonce's signature of the original.
    let h2 = third
        .0
        .key
        .sign(
            third.0.device,
            "POST",
            path,
            body,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    let (s, why) = send(&h2, br#"{"municipality":"131016","voucher":"1310160002"}"#);
    assert_eq!(s, 401);
    assert!(why.contains("signature does not match"), "{why}");
    let stale = third
        .0
        .key
        .sign(
            third.0.device,
            "POST",
            path,
            body,
            chrono::Utc::now().timestamp() - 3600,
        )
        .unwrap();
    let (s, why) = send(&stale, body);
    assert_eq!(s, 401);
    assert!(why.contains("clock"), "{why}");
    // Another key claiming this device's id.
    let impostor = vrs_client::device::DeviceKey::generate()
        .unwrap()
        .sign(
            third.0.device,
            "POST",
            path,
            body,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    assert_eq!(send(&impostor, body).0, 401);

    // Revoked: refused from then on; the demo tablet goes on.
    let r = agent()
        .post(format!("{base}/api/devices/{}/revoke", third.device()))
        .header("Authorization", bearer(&staff))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, why) = post_json(
        base,
        path,
        &third,
        &json!({"municipality": "131016", "voucher": "1310160001"}),
    );
    assert_eq!(s, 401);
    assert!(why["error"].as_str().unwrap().contains("revoked"), "{why}");
    let (s, _) = post_json(
        base,
        path,
        &tablet,
        &json!({"municipality": "131016", "voucher": "1310160001"}),
    );
    assert_eq!(s, 200);
    let mut r = agent()
        .get(format!("{base}/api/devices"))
        .header("Authorization", bearer(&staff))
        .call()
        .unwrap();
    let list: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let states: std::collections::BTreeMap<String, String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["email"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states["tablet3@clinic.example.jp"], "revoked");
    assert_eq!(states["tablet1@clinic.example.jp"], "enrolled");
    // A revoked tablet gets no new code; the log has the enrolment and the refusals.
    let r = agent()
        .post(format!("{base}/api/devices/{}/enrolment", third.device()))
        .header("Authorization", bearer(&staff))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 404);
    let mut r = agent()
        .get(format!("{base}/api/audit?limit=200"))
        .header("Authorization", bearer(&staff))
        .call()
        .unwrap();
    let log = r.body_mut().read_to_string().unwrap();
    for action in [
        "device.register",
        "device.enrol",
        "device.request",
        "device.revoke",
    ] {
        assert!(log.contains(action), "{action} not logged");
    }
}

/// The six-digit passcode in a mail (its own line, quoted-printable keeps it as is).
fn passcode_in(mail: &vrs_testkit::smtp::Mail) -> String {
    mail.data
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no passcode in {}", mail.data))
        .to_owned()
}

fn json_post(
    base: &str,
    path: &str,
    body: &Value,
    cookie: Option<&str>,
    csrf: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut req = agent().post(format!("{base}{path}"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    let mut r = req.send_json(body).unwrap();
    let set = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        set,
    )
}

/// Staff sign in with a passcode mailed through a real SMTP server on loopback: the
/// start says the same for anyone, a passcode works once, five wrong ones lock, the
/// session cookie is HttpOnly and SameSite, a change needs the CSRF token, and the
/// users keep to 様式1.
fn staff_sign_in_by_a_passcode_mailed_over_smtp(backend: Backend) {
    let sink = vrs_testkit::smtp::Sink::start();
    let port = vrs_testkit::serve::free_port();
    let smtp_port = sink.port.to_string();
    let server = Server(vrs_testkit::serve::Server::start_with(
        vrs(),
        &backend,
        20,
        port,
        &[
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &smtp_port,
            "--smtp-tls",
            "none",
            "--mail-from",
            "VRS <vrs@vrs.example.jp>",
        ],
    ));
    let base = &server.base;
    let me = "demo@city.chiyoda.lg.jp";
    let wait = Duration::from_secs(20);

    let (s, a, _) = json_post(
        base,
        "/api/signin/start",
        &json!({"email": "Demo@City.Chiyoda.LG.JP"}),
        None,
        None,
    );
    assert_eq!(s, 202, "{a}");
    let (s, b, _) = json_post(
        base,
        "/api/signin/start",
        &json!({"email": "nobody@city.chiyoda.lg.jp"}),
        None,
        None,
    );
    assert_eq!((s, &a), (202, &b), "the same answer for a stranger");
    let (s, _, _) = json_post(
        base,
        "/api/signin/start",
        &json!({"email": "demo@gmail.com"}),
        None,
        None,
    );
    assert_eq!(s, 422, "lg.jp only");
    let mail = sink.nth_to(me, 1, wait).expect("the passcode mail");
    let code = passcode_in(&mail);
    assert!(mail.data.contains("within 10 minutes"), "{}", mail.data);

    let (s, _, _) = json_post(
        base,
        "/api/signin/verify",
        &json!({"email": me, "passcode": "000000"}),
        None,
        None,
    );
    assert_eq!(s, 401);
    let (s, who, cookie) = json_post(
        base,
        "/api/signin/verify",
        &json!({"email": me, "passcode": code}),
        None,
        None,
    );
    assert_eq!(s, 200, "{who}");
    let cookie = cookie.unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure on plain HTTP: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let csrf = who["csrf"].as_str().unwrap().to_owned();
    assert_eq!(who["municipality"], "131016");
    let (s, _, _) = json_post(
        base,
        "/api/signin/verify",
        &json!({"email": me, "passcode": code}),
        None,
        None,
    );
    assert_eq!(s, 401, "a passcode works once");
    assert!(
        sink.mails()
            .iter()
            .all(|m| !m.to.iter().any(|t| t.starts_with("nobody"))),
        "no mail to a stranger"
    );

    // The session reads; a change needs its CSRF token too.
    let mut r = agent()
        .get(format!("{base}/api/records/held"))
        .header("cookie", &session)
        .call()
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "{}",
        r.body_mut().read_to_string().unwrap()
    );
    let second = json!({"email": "second@city.chiyoda.lg.jp", "person": "二番 花子", "team": "保健所", "phone": "03-0000-0002"});
    let (s, _, _) = json_post(base, "/api/users", &second, Some(&session), None);
    assert_eq!(s, 403, "no CSRF token");
    let (s, _, _) = json_post(base, "/api/users", &second, Some(&session), Some("0123"));
    assert_eq!(s, 403, "a wrong CSRF token");
    let (s, users, _) = json_post(base, "/api/users", &second, Some(&session), Some(&csrf));
    assert_eq!(s, 200, "{users}");
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert_eq!(
        users[0]["transfer_contact"], true,
        "the first user stays the contact"
    );
    let (s, v, _) = json_post(
        base,
        "/api/users",
        &json!({"email": "x@example.com", "person": "x"}),
        Some(&session),
        Some(&csrf),
    );
    assert_eq!(s, 422, "{v}");
    let (s, v, _) = json_post(
        base,
        "/api/users/remove",
        &json!({"email": me}),
        Some(&session),
        Some(&csrf),
    );
    assert_eq!(s, 422, "the only transfer contact cannot go: {v}");
    for i in 3..=10 {
        let u = json!({"email": format!("u{i}@city.chiyoda.lg.jp"), "person": format!("職員 {i}")});
        assert_eq!(
            json_post(base, "/api/users", &u, Some(&session), Some(&csrf)).0,
            200
        );
    }
    let (s, v, _) = json_post(
        base,
        "/api/users",
        &json!({"email": "u11@city.chiyoda.lg.jp", "person": "十一"}),
        Some(&session),
        Some(&csrf),
    );
    assert_eq!(s, 422, "at most ten: {v}");

    // One passcode, sent four times at once: one session, not four.
    let racer = "u3@city.chiyoda.lg.jp";
    assert_eq!(
        json_post(
            base,
            "/api/signin/start",
            &json!({"email": racer}),
            None,
            None
        )
        .0,
        202
    );
    let code = passcode_in(&sink.nth_to(racer, 1, wait).unwrap());
    let wins: usize = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let code = code.clone();
                scope.spawn(move || {
                    json_post(
                        base,
                        "/api/signin/verify",
                        &json!({"email": racer, "passcode": code}),
                        None,
                        None,
                    )
                    .0
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| usize::from(r.join().unwrap() == 200))
            .sum()
    });
    assert_eq!(
        wins, 1,
        "a passcode works once, however fast it is sent again"
    );

    // Five wrong passcodes lock the second user, even against the right one.
    let other = "second@city.chiyoda.lg.jp";
    assert_eq!(
        json_post(
            base,
            "/api/signin/start",
            &json!({"email": other}),
            None,
            None
        )
        .0,
        202
    );
    let right = passcode_in(&sink.nth_to(other, 1, wait).unwrap());
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            json_post(
                base,
                "/api/signin/verify",
                &json!({"email": other, "passcode": wrong}),
                None,
                None,
            )
            .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429]);
    let (s, _, _) = json_post(
        base,
        "/api/signin/verify",
        &json!({"email": other, "passcode": right}),
        None,
        None,
    );
    assert_eq!(s, 429, "locked");

    // Signed out: the cookie is cleared and the session gone.
    let (s, _, cleared) = json_post(base, "/api/signout", &json!({}), Some(&session), None);
    assert_eq!(s, 204);
    assert!(cleared.unwrap().contains("Max-Age=0"));
    let r = agent()
        .get(format!("{base}/api/me"))
        .header("cookie", &session)
        .call()
        .unwrap();
    assert_eq!(r.status(), 401);

    let staff = server.staff();
    let mut r = agent()
        .get(format!("{base}/api/audit?action=signin.verify&limit=50"))
        .header("Authorization", bearer(&staff))
        .call()
        .unwrap();
    let log: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let outcomes: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    for o in ["ok", "denied", "locked"] {
        assert!(outcomes.contains(&o), "{o} not in {outcomes:?}");
    }
    assert!(!log.to_string().contains(&right), "no passcode in the log");
}

/// Who a matrix row's request goes as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    /// Staff of Chiyoda, whose data the requests name.
    Own,
    /// Staff of Osaka: another municipality.
    Other,
    /// Chiyoda's enrolled tablet.
    Tablet,
    /// No credentials.
    Nobody,
}

/// Every endpoint × every role × own or other municipality's data: staff reach only
/// their own municipality, tablets only the name look-up and the upload, nobody
/// anything but sign-in, enrolment and the public documents.
fn every_endpoint_by_every_role_reaches_only_what_it_may(backend: Backend) {
    let server = Server::start(&backend, 50);
    let (own, tablet) = server.tokens();
    let base = &server.base;
    let (code, out) = vrs_admin(
        &backend,
        &["municipality", "--code", "271004", "--name", "大阪府大阪市"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = vrs_admin(
        &backend,
        &[
            "token",
            "--municipality",
            "271004",
            "--staff",
            "clerk@city.osaka.lg.jp",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let other = out.lines().last().unwrap().trim().to_owned();
    let dev = tablet.device();

    // Chiyoda's data: a held record, an import with a bad row, its tablet.
    let batch = json!({"records": [record(&dev, 900, 1310169999, 1, "2021-06-01")]});
    let (s, r) = post_json(base, "/api/tablet/records", &tablet, &batch);
    assert_eq!(
        (s, r["receipts"][0]["outcome"].as_str()),
        (200, Some("held")),
        "{r}"
    );
    let held_id = uuid::Uuid::from_u128(900).to_string();
    let (s, report) = upload(
        base,
        &own,
        "/api/register/import",
        "mode=partial",
        b"900001,,a,b,,,19600401,9,1310169000,\n".to_vec(),
    );
    assert_eq!(s, 200, "{report}");
    let import = report["import_id"].as_i64().unwrap();
    let device = dev.clone();

    let send = |role: Role, method: &str, path: &str, body: Option<&Value>| -> (u16, String) {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let url = format!("{base}{path}");
        let path_only = path.to_owned();
        let mut r = match method {
            "GET" => {
                let req = agent().get(&url);
                match role {
                    Role::Own => req.header("Authorization", bearer(&own)).call(),
                    Role::Other => req.header("Authorization", bearer(&other)).call(),
                    Role::Tablet => tablet.on(req, "GET", &path_only, b"").call(),
                    Role::Nobody => req.call(),
                }
            }
            _ => {
                let req = agent().post(&url).content_type("application/json");
                match role {
                    Role::Own => req.header("Authorization", bearer(&own)).send(&bytes[..]),
                    Role::Other => req.header("Authorization", bearer(&other)).send(&bytes[..]),
                    Role::Tablet => tablet.on(req, "POST", &path_only, &bytes).send(&bytes[..]),
                    Role::Nobody => req.send(&bytes[..]),
                }
            }
        }
        .unwrap();
        let status = r.status().as_u16();
        (
            status,
            r.body_mut()
                .with_config()
                .limit(1 << 26)
                .read_to_string()
                .unwrap(),
        )
    };

    let name = json!({"municipality": "131016", "voucher": "1310160001"});
    let upload_one = json!({"records": [record(&dev, 901, 1310160002, 1, "2021-06-01")]});
    let amend = json!({"reason": "matrix", "lot": "FA4597"});
    let void = json!({"reason": "matrix"});
    let lookup = json!({"my_number": "123456789018"});
    let user = json!({"email": "matrix@city.example.lg.jp", "person": "マトリクス"});
    let contact = json!({"kind": "system", "person": "担当", "email": "sys@city.example.lg.jp"});
    let site = json!({"code": "SITE-1", "name": "会場"});
    let remove = json!({"email": "demo@city.chiyoda.lg.jp"});
    let reg = json!({"site": {"site": "SITE-9"}, "site_name": "会場9", "email": format!("t-{}@example.jp", uuid::Uuid::new_v4())});
    let bad_code = json!({"code": "0000-0000-0000-0000", "public_key": "00".repeat(32)});
    let stranger = json!({"email": "nobody@city.example.lg.jp"});
    let new_lot = json!({"vaccine": "pfizer", "lot": "FZ0001", "expiry": "2031-01-01"});
    let errors = format!("/api/imports/{import}/errors.csv");
    let held_void = format!("/api/records/{held_id}/void");
    let held_amend = format!("/api/records/{held_id}/amend");
    let held_release = format!("/api/records/{held_id}/release");
    let dev_revoke = format!("/api/devices/{device}/revoke");
    let dev_code = format!("/api/devices/{device}/enrolment");
    use Role::*;
    // (method, path, body, [Own, Other, Tablet, Nobody]); 0 = any 2xx.
    let rows: Vec<(&str, &str, Option<&Value>, [u16; 4])> = vec![
        ("GET", "/api/health", None, [0, 0, 0, 0]),
        ("GET", "/api/openapi.json", None, [0, 0, 0, 0]),
        ("GET", "/api/me", None, [0, 0, 401, 401]),
        ("GET", "/api/records/held", None, [0, 0, 401, 401]),
        ("POST", &held_amend, Some(&amend), [0, 404, 401, 401]),
        // Held for an unknown voucher: not released while no one holds it.
        ("POST", &held_release, Some(&void), [422, 404, 401, 401]),
        ("GET", &errors, None, [0, 404, 401, 401]),
        // Only one's own upload, while it runs: there is none here.
        (
            "GET",
            "/api/imports/progress/none-here",
            None,
            [404, 404, 401, 401],
        ),
        (
            "GET",
            "/api/ledger.csv?from=2021-01-01&to=2021-12-31",
            None,
            [0, 0, 401, 401],
        ),
        (
            "POST",
            "/api/transfer/lookup",
            Some(&lookup),
            [0, 0, 401, 401],
        ),
        ("GET", "/api/audit?limit=500", None, [0, 0, 401, 401]),
        ("GET", "/api/devices", None, [0, 0, 401, 401]),
        // The same tablet e-mail again, from Osaka: one address per tablet.
        ("POST", "/api/devices", Some(&reg), [201, 422, 401, 401]),
        ("POST", &dev_code, None, [201, 404, 401, 401]),
        ("POST", &dev_revoke, None, [0, 404, 401, 401]),
        ("GET", "/api/users", None, [0, 0, 401, 401]),
        ("POST", "/api/users", Some(&user), [0, 422, 401, 401]),
        (
            "POST",
            "/api/users/remove",
            Some(&remove),
            [422, 404, 401, 401],
        ),
        ("GET", "/api/contacts", None, [0, 0, 401, 401]),
        ("POST", "/api/contacts", Some(&contact), [0, 0, 401, 401]),
        ("GET", "/api/sites", None, [0, 0, 401, 401]),
        ("POST", "/api/sites", Some(&site), [0, 0, 401, 401]),
        (
            "POST",
            "/api/tablet/enrol",
            Some(&bad_code),
            [403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/signin/start",
            Some(&stranger),
            [202, 202, 202, 202],
        ),
        ("POST", "/api/signout", None, [0, 0, 0, 0]),
        ("GET", "/api/lots", None, [0, 0, 401, 401]),
        ("POST", "/api/lots", Some(&new_lot), [403, 403, 401, 401]),
        ("GET", "/api/tablet/lots", None, [401, 401, 0, 401]),
    ];
    let mut bodies = std::collections::HashMap::new();
    for (method, path, body, expected) in &rows {
        for (role, want) in [Own, Other, Tablet, Nobody].into_iter().zip(expected) {
            if *path == dev_revoke && role == Own {
                continue; // revoked last, below: the tablet is needed until then
            }
            let (got, text) = send(role, method, path, *body);
            let ok = if *want == 0 {
                (200..300).contains(&got)
            } else {
                got == *want
            };
            assert!(
                ok,
                "{method} {path} as {role:?}: {got}, expected {want}: {text}"
            );
            bodies.insert((method.to_string(), path.to_string(), role), text);
        }
    }
    // The tablet's own two endpoints, and nothing of them for staff.
    for (path, body) in [
        ("/api/tablet/name", &name),
        ("/api/tablet/records", &upload_one),
    ] {
        for (role, want) in [(Own, 401), (Other, 401), (Tablet, 200), (Nobody, 401)] {
            let (got, text) = send(role, "POST", path, Some(body));
            assert_eq!(got, want, "POST {path} as {role:?}: {text}");
        }
    }
    // A tablet user's session is no staff session: not as a cookie either.
    let token = tablet.0.session.lock().unwrap().clone().unwrap();
    let r = agent()
        .get(format!("{base}/api/records/held"))
        .header("cookie", format!("vrs_session={token}"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 401, "a tablet's session on the staff API");
    // A tablet whose user is not signed in uploads, but sees no name.
    let session = tablet.0.session.lock().unwrap().take();
    assert_eq!(send(Tablet, "POST", "/api/tablet/name", Some(&name)).0, 401);
    let another = json!({"records": [record(&dev, 902, 1310160003, 1, "2021-06-01")]});
    assert_eq!(
        send(Tablet, "POST", "/api/tablet/records", Some(&another)).0,
        200
    );
    *tablet.0.session.lock().unwrap() = session;
    // The CSV uploads: staff of either municipality (into their own), nobody else.
    for path in [
        "/api/register/import?dry_run=true",
        "/api/paper/import?dry_run=true",
        "/api/transfer/lookup-batch",
        "/api/lots/import?dry_run=true",
    ] {
        for role in [Own, Other, Tablet, Nobody] {
            let req = agent()
                .post(format!("{base}{path}"))
                .content_type("text/csv");
            let csv = b"123456789018\n";
            let mut r = match role {
                Own => req.header("Authorization", bearer(&own)).send(&csv[..]),
                Other => req.header("Authorization", bearer(&other)).send(&csv[..]),
                Tablet => tablet.on(req, "POST", path, csv).send(&csv[..]),
                Nobody => req.send(&csv[..]),
            }
            .unwrap();
            let got = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap();
            let ok = match role {
                // The lot master is the operator's alone.
                Own | Other if path.starts_with("/api/lots") => got == 403,
                Own | Other => got < 500 && got != 401 && got != 403,
                Tablet | Nobody => got == 401,
            };
            assert!(ok, "POST {path} as {role:?}: {got}: {text}");
        }
    }
    // What a 2xx showed the other municipality: none of Chiyoda's data.
    let seen = |path: &str| bodies[&("GET".to_owned(), path.to_owned(), Other)].clone();
    assert_eq!(seen("/api/records/held"), "[]");
    assert_eq!(
        seen("/api/ledger.csv?from=2021-01-01&to=2021-12-31")
            .lines()
            .count(),
        1,
        "header only"
    );
    assert_eq!(seen("/api/devices"), "[]");
    assert!(
        !seen("/api/users").contains("chiyoda"),
        "{}",
        seen("/api/users")
    );
    assert!(
        !seen("/api/audit?limit=500").contains("131016"),
        "{}",
        seen("/api/audit?limit=500")
    );
    assert!(!seen("/api/sites").contains("デモクリニック"));
    assert!(bodies[&("GET".to_owned(), "/api/records/held".to_owned(), Own)].contains(&held_id));
    // Chiyoda's staff revoke their tablet; it is refused from then on.
    assert_eq!(send(Own, "POST", &dev_revoke, None).0, 204);
    assert_eq!(send(Tablet, "POST", "/api/tablet/name", Some(&name)).0, 401);
    assert_eq!(send(Own, "POST", &held_void, Some(&void)).0, 204);
    assert_eq!(send(Other, "POST", &held_void, Some(&void)).0, 404);
}

/// The operator keeps the lot master, on the command line and through the API with
/// an operator token; staff and tablets read it, a tablet with a signed request; the
/// operator's token reaches no municipality's data.
fn the_operator_keeps_the_lot_master_and_tablets_download_it(backend: Backend) {
    let server = Server::start(&backend, 20);
    let (staff, tablet) = server.tokens();
    let base = &server.base;
    // The command line: one lot, a file with a bad line (nothing changes), then
    // --partial.
    let (code, out) = vrs_admin(
        &backend,
        &[
            "lot",
            "add",
            "--vaccine",
            "pfizer",
            "--lot",
            "FF1234",
            "--expiry",
            "2031-03-31",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let file = backend.data.join("lots.csv");
    std::fs::write(
        &file,
        "vaccine,lot,expiry,gtin\nモデルナ,3009999,20310101,\nファイザー,F1,2031-01-01,\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, out) = vrs_admin(&backend, &["lot", "import", path]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("line 3") && out.contains("ロット番号"),
        "{out}"
    );
    assert!(
        out.contains("Nothing was stored") && out.contains("new 1") && out.contains("新規 1件"),
        "{out}"
    );
    let (code, out) = vrs_admin(&backend, &["lot", "import", "--partial", path]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = vrs_admin(&backend, &["lot", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("FF1234\t2031/03/31") && out.contains("3009999"),
        "{out}"
    );

    // The API: staff cannot change the master; the operator's token can.
    let lot = json!({"vaccine": "pfizer", "lot": "FG0001", "expiry": "2032-01-31", "gtin": "04987123456784"});
    assert_eq!(post_json(base, "/api/lots", &staff, &lot).0, 403);
    let (code, out) = vrs_admin(&backend, &["token", "--operator", "ops"]);
    assert_eq!(code, 0, "{out}");
    let operator = out.lines().last().unwrap().trim().to_owned();
    assert_eq!(post_json(base, "/api/lots", &operator, &lot).0, 204);
    let (s, report) = upload(
        base,
        &operator,
        "/api/lots/import",
        "",
        "ファイザー,FG0002,2032-02-29\n".as_bytes().to_vec(),
    );
    assert_eq!((s, report["new"].as_u64()), (200, Some(1)), "{report}");
    let (s, refused) = upload(
        base,
        &staff,
        "/api/lots/import",
        "",
        b"pfizer,FG0003,2032-01-01\n".to_vec(),
    );
    assert_eq!(s, 403, "{refused}");
    // The operator reaches no municipality's data.
    let r = agent()
        .get(format!("{base}/api/records/held"))
        .header("Authorization", bearer(&operator))
        .call()
        .unwrap();
    assert_eq!(r.status(), 403);

    // A tablet downloads the master with a signed request.
    let path = "/api/tablet/lots";
    let mut r = tablet
        .on(agent().get(format!("{base}{path}")), "GET", path, b"")
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let lots: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let names: Vec<&str> = lots
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lot"].as_str().unwrap())
        .collect();
    for want in ["FA4597", "FF1234", "3009999", "FG0001", "FG0002"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    // Unsigned, or by staff on the tablet's path: refused.
    assert_eq!(
        agent()
            .get(format!("{base}{path}"))
            .call()
            .unwrap()
            .status(),
        401
    );
}

/// A server stopped by SIGTERM after serving the store ends cleanly: on PostgreSQL
/// the store's connections were once dropped inside the async runtime ("Cannot
/// start a runtime from within a runtime", then an abort by signal 6).
fn sigterm_stops_the_server_cleanly(backend: Backend) {
    let mut server = Server::start(&backend, 20);
    let staff = server.staff();
    // Touch the store, so that connections are open and pooled.
    ledger(&server.base, &staff);
    let status = server.terminate();
    assert!(status.success(), "vrs serve ended with {status} on SIGTERM");
}

/// SIGTERM while a register upload is half sent: the upload in flight finishes and
/// is applied, then the server ends cleanly.
fn sigterm_lets_an_upload_in_flight_finish(backend: Backend) {
    use std::io::{BufRead, Write};
    let mut server = Server::start(&backend, 20);
    let staff = server.staff();
    let file = generated_register(20_000, 300_000_001, 3_000_000_001);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        conn,
        "POST /api/register/import HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {staff}\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        file.len()
    )
    .unwrap();
    let half = file.len() / 2;
    conn.write_all(&file[..half]).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.send_term();
    std::thread::sleep(Duration::from_millis(300));
    conn.write_all(&file[half..]).unwrap();
    let mut reader = std::io::BufReader::new(conn);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("\"outcome\":\"applied\""), "{rest}");
    assert!(rest.contains("\"new\":20000"), "{rest}");
    let ended = server.wait_exit();
    assert!(ended.success(), "vrs serve ended with {ended} on SIGTERM");
}

/// SIGTERM while a tablet's batch is half sent: the batch finishes and is stored,
/// the tablet gets its receipts, and the server ends cleanly.
fn sigterm_lets_an_ingest_in_flight_finish(backend: Backend) {
    use std::io::{BufRead, Write};
    let mut server = Server::start(&backend, 20);
    let (_, tablet) = server.tokens();
    let dev = tablet.device();
    let records: Vec<Value> = (0..1000u64)
        .map(|i| {
            record(
                &dev,
                70_000 + u128::from(i),
                1_310_160_001 + i % 20,
                1,
                "2021-06-01",
            )
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "records": records })).unwrap();
    let path = "/api/tablet/records";
    let signed = tablet
        .0
        .key
        .sign(
            tablet.0.device,
            "POST",
            path,
            &body,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in signed.pairs() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    let half = body.len() / 2;
    conn.write_all(&body[..half]).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.send_term();
    std::thread::sleep(Duration::from_millis(300));
    conn.write_all(&body[half..]).unwrap();
    let mut reader = std::io::BufReader::new(conn);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let receipts = rest.matches("\"outcome\"").count();
    assert_eq!(receipts, 1000, "{rest}");
    let ended = server.wait_exit();
    assert!(ended.success(), "vrs serve ended with {ended} on SIGTERM");
    // Stored: the same server data, started again, has the first doses in its ledger.
    let again = Server::start(&backend, 20);
    let ledger = ledger(&again.base, &again.staff());
    assert_eq!(ledger.lines().count(), 1 + 20, "{ledger}");
}

/// Registers a tablet of the caller's municipality for `site`, enrols it with its
/// one-time code and signs its user in.
fn new_tablet(server: &Server, staff: &str, site: Value, site_name: &str, email: &str) -> Who {
    let (s, reg) = post_json(
        &server.base,
        "/api/devices",
        staff,
        &json!({"site": site, "site_name": site_name, "email": email}),
    );
    assert_eq!(s, 201, "{reg}");
    let who = enrol(&server.base, reg["code"].as_str().unwrap());
    sign_in(server, &who, email);
    who
}

/// The outcomes of a tablet's batch, in order.
fn sent(base: &str, tablet: &Who, records: Vec<Value>) -> Vec<String> {
    let (s, r) = post_json(
        base,
        "/api/tablet/records",
        tablet,
        &json!({ "records": records }),
    );
    assert_eq!(s, 200, "{r}");
    r["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r["reason"].as_str() {
            Some(reason) => format!("{}:{reason}", r["outcome"].as_str().unwrap()),
            None => r["outcome"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// A ledger's rows as (券番号, 回数, 接種日, 会場名, ロット), sorted.
fn ledger_rows(csv: &str) -> Vec<(String, String, String, String, String)> {
    let mut rows: Vec<_> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[2].into(),
                f[8].into(),
                f[1].into(),
                f[4].into(),
                f[7].into(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Records from several sources, end to end against a running server: a CP932
/// register with names, flags and a reissued voucher; a newcomer whose first doses
/// were given in another municipality; the operator's lot master; three tablets at
/// three sites; paper records; the review queue. Every right record reaches its
/// municipality's ledger exactly once, every wrong one is held with its reason (or
/// refused), and the ledgers and queue are compared record by record.
fn records_from_every_source_reach_the_ledger_or_the_queue_as_they_should(backend: Backend) {
    let server = Server::start(&backend, 20);
    let (chiyoda, tablet_a) = server.tokens();
    let base = &server.base;
    let id = |n: u128| uuid::Uuid::from_u128(n).to_string();

    // The operator adds a lot that expires at the end of June 2021.
    let (_, out) = vrs_admin(&backend, &["token", "--operator", "ops"]);
    let operator = out.lines().last().unwrap().trim().to_owned();
    let (s, r) = upload(
        base,
        &operator,
        "/api/lots/import",
        "",
        "ファイザー,FB1234,2021-06-30\n".as_bytes().to_vec(),
    );
    assert_eq!((s, r["outcome"].as_str()), (200, Some("applied")), "{r}");

    // Osaka: the newcomer's first two doses, on Osaka's voucher and tablet.
    let (code, out) = vrs_admin(
        &backend,
        &[
            "municipality",
            "--code",
            "271004",
            "--name",
            "大阪府大阪市",
            "--transfer-contact",
            "大阪市 06-0000-0000",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (_, out) = vrs_admin(
        &backend,
        &[
            "token",
            "--municipality",
            "271004",
            "--staff",
            "clerk@city.osaka.lg.jp",
        ],
    );
    let osaka = out.lines().last().unwrap().trim().to_owned();
    let (s, r) = upload(
        base,
        &osaka,
        "/api/register/import",
        "",
        "700001,123456789018,転入,太郎,テンニュウ,タロウ,19600401,1,2710040001,\n"
            .as_bytes()
            .to_vec(),
    );
    assert_eq!((s, r["new"].as_u64()), (200, Some(1)), "{r}");
    let tablet_c = new_tablet(
        &server,
        &osaka,
        json!({"site": "OSAKA-1"}),
        "大阪市集団接種会場",
        "tablet-c@osaka.example.jp",
    );
    let dev_c = tablet_c.device();
    let at_osaka = || json!({"site": "OSAKA-1"});
    assert_eq!(
        sent(
            base,
            &tablet_c,
            vec![
                dose_at(
                    &dev_c,
                    1,
                    ("271004", 2710040001, 1, "2021-06-01", "FA4597"),
                    at_osaka()
                ),
                dose_at(
                    &dev_c,
                    2,
                    ("271004", 2710040001, 2, "2021-06-22", "FA4597"),
                    at_osaka()
                ),
            ]
        ),
        ["accepted", "accepted"]
    );

    // Chiyoda's register in CP932, then flags and a reissued voucher.
    let register = "800001,123456789018,転入,太郎,テンニュウ,タロウ,19600401,1,1310168001,\r\n\
                    800002,,山田,花子,ヤマダ,ハナコ,19700101,2,1310168002,\r\n\
                    800003,,鈴木,一郎,スズキ,イチロウ,19500505,1,1310168003,\r\n\
                    800004,,佐藤,次郎,サトウ,ジロウ,19400404,1,1310168004,\r\n\
                    800005,,髙橋,三郎,タカハシ,サブロウ,19300303,1,1310168005,\r\n\
                    800006,,田中,四郎,タナカ,シロウ,19800808,1,1310168006,\r\n";
    let (cp932, _, lossy) = encoding_rs::SHIFT_JIS.encode(register);
    assert!(!lossy);
    let (s, r) = upload(
        base,
        &chiyoda,
        "/api/register/import",
        "",
        cp932.into_owned(),
    );
    assert_eq!(
        (s, r["new"].as_u64(), r["encoding"].as_str()),
        (200, Some(6), Some("CP932 (Shift_JIS)")),
        "{r}"
    );
    let changes = "800003,,,,,,,,1310168013,\n800004,,,,,,,,,1\n800005,,,,,,,,,2\n";
    let (s, r) = upload(
        base,
        &chiyoda,
        "/api/register/import",
        "",
        changes.as_bytes().to_vec(),
    );
    assert_eq!(
        (s, r["outcome"].as_str(), r["updated"].as_u64()),
        (200, Some("applied"), Some(3)),
        "{r}"
    );

    // Tablet A at the demo clinic; tablet B at a mass-vaccination site.
    let dev_a = tablet_a.device();
    let at_a = || json!({"clinic": "1312345679"});
    let a = |n, d| dose_at(&dev_a, n, d, at_a());
    assert_eq!(
        sent(
            base,
            &tablet_a,
            vec![
                a(11, ("131016", 1310168001, 3, "2021-07-13", "FA4597")), // the newcomer's third
                a(12, ("131016", 1310168002, 1, "2021-06-05", "FA4597")),
                a(13, ("131016", 1310168003, 1, "2021-06-05", "FA4597")), // the old voucher
                a(14, ("131016", 1310168013, 1, "2021-06-06", "FA4597")), // the new one
                a(15, ("131016", 1310168004, 1, "2021-06-07", "FA4597")), // moved out
                a(16, ("131016", 1310168005, 1, "2021-06-07", "FA4597")), // deceased
                a(17, ("131016", 1310160001, 1, "2021-09-10", "EY0572")), // expired lot
                a(12, ("131016", 1310168002, 1, "2021-06-05", "FA4597")), // sent twice
            ]
        ),
        [
            "accepted",
            "accepted",
            "held:unknown_voucher",
            "accepted",
            "held:person_removed",
            "held:person_removed",
            "held:lot_expired",
            "duplicate",
        ]
    );
    let tablet_b = new_tablet(
        &server,
        &chiyoda,
        json!({"site": "SITE-2"}),
        "千代田集団接種会場",
        "tablet-b@chiyoda.example.jp",
    );
    let dev_b = tablet_b.device();
    assert_eq!(
        sent(
            base,
            &tablet_b,
            vec![
                dose_at(
                    &dev_b,
                    21,
                    ("131016", 1310168002, 2, "2021-06-26", "FA4597"),
                    json!({"site": "SITE-2"})
                ),
                // Naming tablet A's clinic: refused, not credited there.
                dose_at(
                    &dev_b,
                    22,
                    ("131016", 1310160002, 1, "2021-06-26", "FA4597"),
                    at_a()
                ),
            ]
        ),
        ["accepted", "refused"]
    );

    // Paper records: one right, one with a lot no list has, one on a lot that
    // was still good that day.
    let paper = ",20210610,1310168006,131016,千代田区役所,医師,ファイザー,FA4597,1\n\
                 ,20210611,1310160003,131016,千代田区役所,医師,ファイザー,ZZ9999,1\n\
                 ,20210612,1310160004,131016,千代田区役所,医師,ファイザー,FB1234,1\n";
    let (s, r) = upload(
        base,
        &chiyoda,
        "/api/paper/import",
        "",
        paper.as_bytes().to_vec(),
    );
    assert_eq!(
        (s, r["new"].as_u64(), r["flagged"].as_u64()),
        (200, Some(3), Some(1)),
        "{r}"
    );

    // The review: the paper lot corrected, the old voucher's record voided.
    let held = |token: &str| -> Vec<Value> {
        let mut r = agent()
            .get(format!("{base}/api/records/held"))
            .header("Authorization", bearer(token))
            .call()
            .unwrap();
        serde_json::from_str::<Value>(&r.body_mut().read_to_string().unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let queue = held(&chiyoda);
    let paper_zz = queue.iter().find(|h| h["lot"] == "ZZ9999").unwrap()["client_record_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, r) = post_json(
        base,
        &format!("/api/records/{paper_zz}/amend"),
        &chiyoda,
        &json!({"lot": "FA4597", "reason": "lot copied wrong from the vial"}),
    );
    assert_eq!((s, r["outcome"].as_str()), (200, Some("accepted")), "{r}");
    let (s, r) = post_json(
        base,
        &format!("/api/records/{}/void", id(13)),
        &chiyoda,
        &json!({"reason": "voucher reissued; recorded with the new one"}),
    );
    assert_eq!(s, 204, "{r}");

    // What each municipality now has, record by record.
    let row = |v: &str, n: &str, d: &str, site: &str, lot: &str| {
        (
            v.to_owned(),
            n.to_owned(),
            d.to_owned(),
            site.to_owned(),
            lot.to_owned(),
        )
    };
    assert_eq!(
        ledger_rows(&ledger(base, &chiyoda)),
        vec![
            row("1310160003", "1", "20210611", "千代田区役所", "FA4597"),
            row("1310160004", "1", "20210612", "千代田区役所", "FB1234"),
            row(
                "1310168001",
                "3",
                "20210713",
                "千代田デモクリニック",
                "FA4597"
            ),
            row(
                "1310168002",
                "1",
                "20210605",
                "千代田デモクリニック",
                "FA4597"
            ),
            row(
                "1310168002",
                "2",
                "20210626",
                "千代田集団接種会場",
                "FA4597"
            ),
            row("1310168006", "1", "20210610", "千代田区役所", "FA4597"),
            row(
                "1310168013",
                "1",
                "20210606",
                "千代田デモクリニック",
                "FA4597"
            ),
        ]
    );
    assert_eq!(
        ledger_rows(&ledger(base, &osaka)),
        vec![
            row(
                "2710040001",
                "1",
                "20210601",
                "大阪市集団接種会場",
                "FA4597"
            ),
            row(
                "2710040001",
                "2",
                "20210622",
                "大阪市集団接種会場",
                "FA4597"
            ),
        ]
    );
    let mut queue: Vec<(String, String)> = held(&chiyoda)
        .iter()
        .map(|h| {
            (
                h["voucher"].as_str().unwrap().to_owned(),
                h["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    queue.sort();
    assert_eq!(
        queue,
        [
            ("1310160001".to_owned(), "lot_expired".to_owned()),
            ("1310168004".to_owned(), "person_moved_out".to_owned()),
            ("1310168005".to_owned(), "person_deceased".to_owned()),
        ]
    );
    assert!(held(&osaka).is_empty());
}

/// A long upload named by the page says how far it has got, as the upload page
/// shows it: received, its rows being checked (a growing share of the file), then
/// stored; and nothing once it has answered.
fn a_long_upload_says_how_far_it_has_got(backend: Backend) {
    let server = Server::start(&backend, 10);
    let staff = server.staff();
    let rows = 150_000;
    let file = generated_register(rows, 400_000_001, 4_000_000_001);
    let size = file.len() as u64;
    let (base, st) = (server.base.clone(), staff.clone());
    let sent = std::thread::spawn(move || {
        upload(&base, &st, "/api/register/import", "progress=clerk-1", file)
    });
    let ask = |id: &str| {
        let mut r = agent()
            .get(format!("{}/api/imports/progress/{id}", server.base))
            .header("Authorization", bearer(&staff))
            .call()
            .unwrap();
        let status = r.status().as_u16();
        let v: Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null);
        (status, v)
    };
    let mut seen: Vec<(String, u64, u64)> = Vec::new();
    while !sent.is_finished() {
        let (status, v) = ask("clerk-1");
        if status == 200 {
            seen.push((
                v["stage"].as_str().unwrap().to_owned(),
                v["checked"].as_u64().unwrap(),
                v["total"].as_u64().unwrap(),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (s, report) = sent.join().unwrap();
    assert_eq!(s, 200, "{report}");
    // What was seen, briefly: each stage with its first and last counts.
    let mut brief: Vec<(String, usize, u64, u64)> = Vec::new();
    for (stage, c, _) in &seen {
        match brief.last_mut() {
            Some(b) if &b.0 == stage => (b.1, b.3) = (b.1 + 1, *c),
            _ => brief.push((stage.clone(), 1, *c, *c)),
        }
    }
    assert_eq!(report["new"].as_u64(), Some(rows), "{report}");
    // Stages only go forward.
    let order = |s: &str| match s {
        "receiving" => 0,
        "checking" => 1,
        "storing" => 2,
        other => panic!("stage {other}"),
    };
    assert!(
        seen.windows(2).all(|w| order(&w[0].0) <= order(&w[1].0)),
        "{brief:?}"
    );
    // While checking, the whole file's size is known and the share read grows.
    let checked: Vec<u64> = seen
        .iter()
        .filter(|(stage, ..)| stage == "checking")
        .map(|&(_, c, total)| {
            assert_eq!(total, size, "{brief:?}");
            c
        })
        .collect();
    assert!(checked.windows(2).all(|w| w[0] <= w[1]), "{brief:?}");
    assert!(
        checked.iter().any(|&c| c > 0 && c < size),
        "never seen part way: {brief:?}"
    );
    // Answered: forgotten. An id that could not be one: refused.
    assert_eq!(ask("clerk-1").0, 404);
    assert_eq!(ask("a%20b").0, 400);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { super::$name(super::sqlite()) } )*
        }
        mod on_postgres {
            $( #[test] fn $name() { super::$name(super::postgres()) } )*
        }
    };
}

on_both_backends!(
    the_api_end_to_end_on_a_running_server,
    malformed_csv_or_json_never_gets_a_5xx,
    kill_9_during_an_import_leaves_no_half_applied_file,
    kill_9_during_ingest_loses_nothing_and_doubles_nothing,
    a_slow_upload_does_not_hold_up_the_tablets,
    a_tablet_guessing_vouchers_is_stopped,
    the_access_log_records_each_access_and_shows_an_edit,
    a_tablet_enrols_once_signs_every_request_and_is_refused_once_revoked,
    staff_sign_in_by_a_passcode_mailed_over_smtp,
    every_endpoint_by_every_role_reaches_only_what_it_may,
    sigterm_stops_the_server_cleanly,
    sigterm_lets_an_upload_in_flight_finish,
    sigterm_lets_an_ingest_in_flight_finish,
    records_from_every_source_reach_the_ledger_or_the_queue_as_they_should,
    the_operator_keeps_the_lot_master_and_tablets_download_it,
    a_long_upload_says_how_far_it_has_got
);
