//! The tablet's two targets, measured against a real `vrs serve` on loopback:
//! saving a record (the encrypted outbox write included) and syncing 10,000 queued
//! records. `cargo bench -p vrs-cli --bench tablet` prints the figures.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use vrs_client::session::Mode;
use vrs_client::sync::{RealClock, SyncOptions};
use vrs_client::tablet::{Connection, SessionSetup, Tablet, today_jst};
use vrs_domain::OcrLine;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once, small.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: u64 = if quick { 200 } else { 10_000 };
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_vrs"));
    let backend = vrs_testkit::serve::sqlite();
    let server = vrs_testkit::serve::Server::start(exe, &backend, n);
    let dir = tempfile::tempdir().unwrap();
    let mut tablet = Tablet::open(dir.path(), Connection::default()).unwrap();
    tablet
        .enrol(&server.base, &server.enrolment_code())
        .unwrap();
    let setup = tablet
        .set_up(&SessionSetup {
            date: today_jst(),
            vaccine: vrs_domain::Vaccine::Pfizer,
            lot: "FA4597".parse().unwrap(),
            expiry: None,
            batch: true,
        })
        .unwrap();
    let (_, mode) = tablet.setup().unwrap();
    assert_eq!(mode, Mode::Batch);

    let mut saves = Vec::with_capacity(n as usize);
    for i in 0..n {
        let line: OcrLine = format!("11131016{:010}", 1_310_160_001 + i)
            .parse()
            .unwrap();
        let t = Instant::now();
        tablet.save(&setup, line, false).unwrap();
        saves.push(t.elapsed());
    }
    saves.sort();
    println!(
        "save a record (encrypted outbox, WAL, synchronous=FULL): median {:.2} ms, p95 {:.2} ms, max {:.2} ms over {n}",
        percentile(&saves, 0.5),
        percentile(&saves, 0.95),
        percentile(&saves, 1.0)
    );

    let t = Instant::now();
    let report = tablet
        .sync(&SyncOptions::default(), &mut RealClock)
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(report.status.complete(), "{report:?}");
    assert_eq!(report.records_sent, n);
    println!(
        "sync {n} queued records to a local server (batches of 500): {secs:.2} s ({:.0} records/s; {} accepted, {} held, {} retries)",
        n as f64 / secs,
        report.accepted,
        report.held,
        report.retries
    );
}
