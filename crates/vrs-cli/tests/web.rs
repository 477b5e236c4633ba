//! The staff web pages end to end: `vrs serve` with its passcode mail going to a
//! real SMTP server on loopback, Debian's chromium driven headless through
//! chromedriver (WebDriver, fantoccini). Every page is visited and used; a
//! screenshot of each is kept in target/tmp/web-screenshots/.
#![allow(clippy::unwrap_used)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use vrs_testkit::serve::{Server, free_port, sqlite};

fn vrs() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vrs"))
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> (Driver, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver; scripts/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Driver(child), port)
}

async fn browser(port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--lang=ja"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.len() > 1000, "an empty screenshot of {name}");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Waits until `css` matches an element whose text contains `text`.
async fn wait_text(c: &Client, css: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && t.contains(text)
        {
            return t;
        }
        if Instant::now() > deadline {
            let html = c.source().await.unwrap_or_default();
            panic!("{css} never showed {text:?}; the page:\n{html}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

fn passcode_in(mail: &vrs_testkit::smtp::Mail) -> String {
    mail.data
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_staff_page_works_in_headless_chromium() {
    let sink = vrs_testkit::smtp::Sink::start();
    let backend = sqlite();
    let smtp = sink.port.to_string();
    let server = Server::start_with(
        vrs(),
        &backend,
        50,
        free_port(),
        &[
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &smtp,
            "--smtp-tls",
            "none",
        ],
    );
    let base = server.base.clone();
    // A held record for the review queue: the demo tablet uploads an unknown voucher.
    let key = vrs_client::device::DeviceKey::generate().unwrap();
    let api = vrs_client::api::Api::new(&base, None, Duration::from_secs(30)).unwrap();
    let code = server.enrolment_code();
    let (api, key) = tokio::task::spawn_blocking(move || {
        let e = api.enrol(&code, &key).unwrap();
        let record = vrs_domain::DoseRecord::from_voucher(
            vrs_domain::ClientRecordId::new(),
            "111310169999999999".parse().unwrap(),
            "2021-06-01".parse().unwrap(),
            vrs_domain::Vaccine::Pfizer,
            "FA4597".parse().unwrap(),
            e.site.clone(),
            e.device_id,
        );
        let r = api
            .upload(
                vrs_client::api::Tablet {
                    device: e.device_id,
                    key: &key,
                },
                &vrs_domain::wire::UploadBatch {
                    records: vec![record],
                },
            )
            .unwrap();
        assert!(matches!(
            r.receipts[0].outcome,
            vrs_domain::wire::Outcome::Held { .. }
        ));
        (api, key)
    })
    .await
    .unwrap();
    drop((api, key));

    let (_driver, port) = chromedriver();
    let c = browser(port).await;

    // Sign in: the address, then the passcode from the mail.
    c.goto(&format!("{base}/signin")).await.unwrap();
    wait_text(&c, "h2.page-title", "サインイン").await;
    fill(&c, "#start input[name=email]", "demo@city.chiyoda.lg.jp").await;
    click(&c, "#start button").await;
    wait_text(&c, "#sent", "パスコード").await;
    let mail = tokio::task::spawn_blocking({
        let sink = sink.clone();
        move || sink.nth_to("demo@city.chiyoda.lg.jp", 1, Duration::from_secs(20))
    })
    .await
    .unwrap()
    .expect("the passcode mail");
    shot(&c, "01-signin").await;
    fill(&c, "#verify input[name=passcode]", &passcode_in(&mail)).await;
    click(&c, "#verify button").await;
    wait_text(&c, "#who", "demo@city.chiyoda.lg.jp").await;
    shot(&c, "02-home").await;

    // Upload a register with a bad row: the progress bar, then the per-line report.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("register.csv");
    std::fs::write(
        &csv,
        "900001,,千代田,一郎,チヨダ,イチロウ,19600401,1,1310169001,\n900002,,千代田,二郎,チヨダ,ジロウ,19610230,1,1310169002,\n",
    )
    .unwrap();
    c.goto(&format!("{base}/upload")).await.unwrap();
    wait_text(&c, "h2.page-title", "アップロード").await;
    c.find(Locator::Css("#upload input[type=file]"))
        .await
        .unwrap()
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    click(&c, "#upload input[name=partial]").await;
    click(&c, "#upload button").await;
    let errors = wait_text(&c, "#errors tbody", "生年月日").await;
    assert!(errors.contains('2'), "the bad row's line: {errors}");
    let counts = wait_text(&c, "#counts", "1").await;
    assert!(counts.starts_with('2'), "2 rows: {counts}");
    let progress = c
        .execute("return document.getElementById('progress').value", vec![])
        .await
        .unwrap();
    assert_eq!(progress.as_f64(), Some(100.0));
    shot(&c, "03-upload").await;
    // The same file, strict: refused whole, and its counts say what would have been.
    c.goto(&format!("{base}/upload")).await.unwrap();
    wait_text(&c, "h2.page-title", "アップロード").await;
    c.find(Locator::Css("#upload input[type=file]"))
        .await
        .unwrap()
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    click(&c, "#upload button").await;
    wait_text(&c, "#message", "取り込みませんでした").await;
    wait_text(&c, "#count-heads", "新規になる予定").await;
    // Paper records: one dose, through the same page.
    let paper = dir.path().join("paper.csv");
    std::fs::write(
        &paper,
        ",20210601,1310160003,131016,千代田デモクリニック,,ファイザー,FA4597,1\n",
    )
    .unwrap();
    c.goto(&format!("{base}/upload")).await.unwrap();
    wait_text(&c, "h2.page-title", "アップロード").await;
    click(&c, "#upload input[value=paper]").await;
    c.find(Locator::Css("#upload input[type=file]"))
        .await
        .unwrap()
        .send_keys(paper.to_str().unwrap())
        .await
        .unwrap();
    click(&c, "#upload button").await;
    wait_text(&c, "#message", "取り込みました").await;
    wait_text(&c, "#counts", "1").await;

    // The review queue: the held record, voided.
    c.goto(&format!("{base}/review")).await.unwrap();
    wait_text(&c, "#held tbody", "9999999999").await;
    shot(&c, "04-review").await;
    click(&c, "#held tbody button").await;
    c.accept_alert().await.unwrap();
    wait_text(&c, "#message", "保存").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c
        .find(Locator::Css("#held tbody"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the voided record is still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Export: the ledger comes with the session (fetched as the download link would).
    c.goto(&format!("{base}/export")).await.unwrap();
    wait_text(&c, "h2.page-title", "台帳出力").await;
    shot(&c, "05-export").await;
    let ledger = c
        .execute_async(
            "const done = arguments[0]; fetch('/api/ledger.csv?from=2021-01-01&to=2030-12-31&encoding=utf-8').then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        ledger.as_str().unwrap().starts_with('\u{feff}')
            || ledger.as_str().unwrap().contains("接種日"),
        "{ledger}"
    );

    // Transfer look-up, single: nobody elsewhere holds this number.
    c.goto(&format!("{base}/transfer")).await.unwrap();
    wait_text(&c, "h2.page-title", "転入者の照会").await;
    fill(&c, "#lookup input[name=my_number]", "123456789018").await;
    click(&c, "#lookup button").await;
    wait_text(&c, "#matches", "").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .find(Locator::Css("#matches"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no look-up result shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = c.current_url().await.unwrap();
    assert!(
        !url.as_str().contains("123456789018"),
        "the number in a URL: {url}"
    );
    // The batch look-up: a CSV of 個別宛名番号,マイナンバー lines.
    let batch = dir.path().join("newcomers.csv");
    std::fs::write(&batch, "100000001,123456789018\n100000002,12345\n").unwrap();
    c.find(Locator::Css("#lookup-batch input[type=file]"))
        .await
        .unwrap()
        .send_keys(batch.to_str().unwrap())
        .await
        .unwrap();
    click(&c, "#lookup-batch button").await;
    wait_text(&c, "#batch tbody", "100000001").await;
    wait_text(&c, "#batch tbody", "100000002").await;
    shot(&c, "06-transfer").await;

    // Users: one added; the ten-user rule is the API's.
    c.goto(&format!("{base}/users")).await.unwrap();
    wait_text(&c, "#users tbody", "demo@city.chiyoda.lg.jp").await;
    fill(&c, "#user input[name=email]", "web@city.chiyoda.lg.jp").await;
    fill(&c, "#user input[name=person]", "画面 花子").await;
    click(&c, "#user button").await;
    wait_text(&c, "#users tbody", "web@city.chiyoda.lg.jp").await;
    fill(&c, "#user input[name=email]", "someone@gmail.com").await;
    fill(&c, "#user input[name=person]", "外部").await;
    click(&c, "#user button").await;
    wait_text(&c, "#message", "lg.jp").await;
    shot(&c, "07-users").await;

    // Tablets: one registered; its code and QR code shown.
    c.goto(&format!("{base}/tablets")).await.unwrap();
    wait_text(&c, "#tablets tbody", "tablet1@clinic.example.jp").await;
    fill(&c, "#tablet input[name=code]", "0110113719").await;
    fill(&c, "#tablet input[name=site_name]", "画面クリニック").await;
    fill(
        &c,
        "#tablet input[name=email]",
        "web-tablet@clinic.example.jp",
    )
    .await;
    click(&c, "#tablet button").await;
    let code = wait_text(&c, "#code", "-").await;
    assert_eq!(code.len(), 19, "{code}");
    let qr = c.find(Locator::Css("#qr svg")).await.unwrap();
    assert!(qr.is_displayed().await.unwrap());
    wait_text(&c, "#tablets tbody", "web-tablet@clinic.example.jp").await;
    shot(&c, "08-tablets").await;

    // Sites and contacts.
    c.goto(&format!("{base}/sites")).await.unwrap();
    wait_text(&c, "#sites tbody", "1312345679").await;
    fill(&c, "#site input[name=code]", "HALL-1").await;
    fill(&c, "#site input[name=name]", "区民会館").await;
    click(&c, "#site button").await;
    wait_text(&c, "#sites tbody", "区民会館").await;
    shot(&c, "09-sites").await;
    c.goto(&format!("{base}/contacts")).await.unwrap();
    wait_text(&c, "h2.page-title", "連絡先").await;
    fill(
        &c,
        "form[data-kind=system] input[name=person]",
        "システム 担当",
    )
    .await;
    fill(
        &c,
        "form[data-kind=system] input[name=email]",
        "sys@city.chiyoda.lg.jp",
    )
    .await;
    click(&c, "form[data-kind=system] button").await;
    wait_text(&c, "#message", "保存").await;
    shot(&c, "10-contacts").await;

    // English, and it stays English on the next page.
    c.goto(&format!("{base}/users?lang=en")).await.unwrap();
    wait_text(&c, "h2.page-title", "Users").await;
    wait_text(&c, "#users tbody", "web@city.chiyoda.lg.jp").await;
    shot(&c, "11-users-en").await;
    c.goto(&format!("{base}/review")).await.unwrap();
    wait_text(&c, "h2.page-title", "Review queue").await;

    // Sign out: the pages send you back to sign in.
    click(&c, "#signout").await;
    wait_text(&c, "h2.page-title", "Sign in").await;
    c.goto(&format!("{base}/users")).await.unwrap();
    wait_text(&c, "h2.page-title", "Sign in").await;
    c.close().await.unwrap();
}
