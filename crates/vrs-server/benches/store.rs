//! Store figures, printed (not asserted): register import and re-import, dose
//! ingest in batches of 500, ledger export, transfer look-up latency.
//!
//! `cargo bench -p vrs-server --bench store`
//! Sizes: VRS_BENCH_ROWS (register rows, default 1,000,000), VRS_BENCH_DOSES
//! (default 100,000), VRS_BENCH_LOOKUPS (default 2,000); VRS_BENCH_REIMPORT=0 skips
//! the re-import; VRS_BENCH_MUNICIPALITIES=10 fills the vault with 10 municipalities
//! of VRS_BENCH_ROWS people before the transfer look-ups. The embedded SQLite store
//! by default; VRS_BENCH_DATABASE=postgres://… measures PostgreSQL instead (an empty
//! database: the bench creates its schemas there).

use std::time::Instant;

use chrono::NaiveDate;
use vrs_domain::csv::OutputEncoding;
use vrs_domain::synth::{RegisterSpec, write_register};
use vrs_domain::wire::UploadBatch;
use vrs_domain::{
    ClientRecordId, DoseNumber, DoseRecord, MunicipalityCode, MyNumber, SiteRef, Vaccine,
    VoucherKind, VoucherNumber,
};
use vrs_server::store::{ImportOptions, ImportOutcome};
use vrs_server::{Keys, Principal, SqliteStore, Store};

mod support;
use support::peak_rss_mb;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rows = env("VRS_BENCH_ROWS", 1_000_000);
    let doses = env("VRS_BENCH_DOSES", 100_000);
    let lookups = env("VRS_BENCH_LOOKUPS", 2_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = Keys::generate().expect("keys");
    let store: Box<dyn Store> = match std::env::var("VRS_BENCH_DATABASE") {
        Ok(url) => {
            println!("backend: PostgreSQL");
            Box::new(vrs_server::postgres::PgStore::open(&url, &url, &keys).expect("store"))
        }
        Err(_) => {
            println!("backend: SQLite");
            Box::new(SqliteStore::open(dir.path(), keys).expect("store"))
        }
    };
    let code: MunicipalityCode = "131016".parse().expect("code");
    let staff = Principal::Staff {
        municipality: code,
        user: "bench@city.lg.jp".into(),
    };
    let today = NaiveDate::from_ymd_opt(2021, 12, 31).expect("date");
    let opts = ImportOptions {
        today,
        ..Default::default()
    };

    let spec = RegisterSpec {
        rows,
        seed: 11,
        first_voucher: 1_310_160_001,
        encoding: OutputEncoding::Cp932,
        ..Default::default()
    };
    let path = dir.path().join("register.csv");
    write_register(
        std::io::BufWriter::new(std::fs::File::create(&path).expect("create")),
        &spec,
    )
    .expect("generate");
    println!(
        "register: {rows} rows, CP932, {:.1} MB",
        std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6
    );

    // VRS_BENCH_REIMPORT=0 skips the second import (for very large vault sizes).
    let passes = if env("VRS_BENCH_REIMPORT", 1) == 0 {
        1
    } else {
        2
    };
    for label in ["import", "re-import"].into_iter().take(passes) {
        let t = Instant::now();
        let r = store
            .import_register(
                &staff,
                code,
                &mut std::io::BufReader::new(std::fs::File::open(&path).expect("open")),
                &opts,
            )
            .expect("import");
        assert_eq!(r.outcome, ImportOutcome::Applied);
        let s = t.elapsed().as_secs_f64();
        println!(
            "{label:>10}: {s:.2} s ({:.0} rows/s; new {}, updated {}, unchanged {}), peak RSS {:.0} MB",
            rows as f64 / s,
            r.new,
            r.updated,
            r.unchanged,
            peak_rss_mb()
        );
    }

    // The lot the doses use, in the lot master; the tablet, registered for its clinic.
    store
        .import_lots(
            &Principal::System,
            &mut "pfizer,FA4597,2030-12-31\n".as_bytes(),
            &ImportOptions::default(),
        )
        .expect("lots");
    let device = store
        .register_device(
            &staff,
            code,
            &vrs_server::rules::devices::DeviceRegistration {
                site: SiteRef::Clinic("0110113719".parse().expect("clinic")),
                site_name: "bench clinic".into(),
                address: String::new(),
                email: "bench-tablet@clinic.example.jp".into(),
                delivery: String::new(),
                contact: String::new(),
                notes: String::new(),
                doses_per_day: None,
            },
        )
        .expect("tablet")
        .device_id;
    let tablet = Principal::Device {
        municipality: code,
        device,
    };
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < doses {
        let n = (doses - sent).min(500);
        let records = (0..n)
            .map(|i| DoseRecord {
                client_record_id: ClientRecordId::new(),
                municipality: code,
                voucher: VoucherNumber::new(1_310_160_001 + (sent + i) % rows.max(1))
                    .expect("voucher"),
                voucher_kind: VoucherKind::new(1).expect("kind"),
                dose_number: DoseNumber::FIRST,
                vaccinated_on: NaiveDate::from_ymd_opt(2021, 6, 1).expect("date")
                    + chrono::Duration::days(((sent + i) % 180) as i64),
                vaccine: Vaccine::Pfizer,
                lot: "FA4597".parse().expect("lot"),
                site: SiteRef::Clinic("0110113719".parse().expect("clinic")),
                device_id: device,
                supersedes: None,
            })
            .collect();
        store
            .ingest(&tablet, &UploadBatch { records }, today)
            .expect("ingest");
        sent += n;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "    ingest: {doses} records in batches of 500: {s:.2} s ({:.0} records/s)",
        doses as f64 / s
    );

    let t = Instant::now();
    let n = store
        .export_ledger(
            &staff,
            code,
            NaiveDate::from_ymd_opt(2021, 1, 1).expect("date"),
            today,
            OutputEncoding::Utf8Bom,
            &mut std::io::sink(),
        )
        .expect("export");
    let s = t.elapsed().as_secs_f64();
    println!(
        "    export: {n} rows in {s:.2} s ({:.0} rows/s)",
        n as f64 / s
    );

    // VRS_BENCH_MUNICIPALITIES=N fills the vault with N-1 more municipalities of
    // `rows` people each (their own registers, their own numbers), imported as
    // municipalities would: 10 × 1,000,000 puts 10,000,000 numbers in the vault.
    let more = env("VRS_BENCH_MUNICIPALITIES", 1).saturating_sub(1);
    if more > 0 {
        let t = Instant::now();
        let mut prefix = 13102u32; // 東京都中央区 onwards; 131016 is the bench's own
        for k in 0..more {
            let (other, code6) = loop {
                let p = prefix;
                prefix += 1;
                if let Some(c) =
                    (0..10).find_map(|d| format!("{p}{d}").parse::<MunicipalityCode>().ok())
                {
                    break (c, c.to_string());
                }
            };
            let clerk = Principal::Staff {
                municipality: other,
                user: "bench@city.lg.jp".into(),
            };
            store
                .upsert_municipality(&clerk, other, &format!("bench {code6}"), "")
                .expect("municipality");
            let file = dir.path().join(format!("register-{code6}.csv"));
            write_register(
                std::io::BufWriter::new(std::fs::File::create(&file).expect("create")),
                &RegisterSpec {
                    rows,
                    seed: 1000 + k,
                    first_voucher: 1_000_000_001,
                    encoding: OutputEncoding::Utf8,
                    ..Default::default()
                },
            )
            .expect("generate");
            let r = store
                .import_register(
                    &clerk,
                    other,
                    &mut std::io::BufReader::new(std::fs::File::open(&file).expect("open")),
                    &opts,
                )
                .expect("import");
            assert_eq!(r.outcome, ImportOutcome::Applied, "{r:?}");
            std::fs::remove_file(&file).expect("remove");
        }
        println!(
            "      fill: {more} more municipalities of {rows} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }

    // Transfer look-ups, asked by a municipality the people moved to: numbers of
    // people in the bench's register (found; some have doses), and random numbers
    // (almost all unknown).
    let asker = Principal::Staff {
        municipality: "011002".parse().expect("code"),
        user: "bench@city.lg.jp".into(),
    };
    let step = (rows / lookups.max(1)).max(1);
    let known: Vec<MyNumber> = vrs_domain::csv::register::RegisterReader::new(
        std::io::BufReader::new(std::fs::File::open(&path).expect("open")),
        Default::default(),
    )
    .expect("read")
    .step_by(step as usize)
    .filter_map(|r| r.ok()?.my_number)
    .take(lookups as usize)
    .collect();
    let mut rng = fastrand_like(11);
    let unknown: Vec<MyNumber> = (0..lookups)
        .map(|_| {
            let mut digits = [0u8; 11];
            for d in &mut digits {
                *d = (rng() % 10) as u8;
            }
            MyNumber::from_first_eleven(digits).expect("number")
        })
        .collect();
    let in_vault = store.vault_count().expect("count");
    for (label, numbers) in [("found", &known), ("unknown", &unknown)] {
        let mut times = Vec::with_capacity(numbers.len());
        let mut matched = 0usize;
        for n in numbers {
            let t = Instant::now();
            let found = store.transfer_lookup(&asker, n).expect("lookup");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            matched += usize::from(!found.is_empty());
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        println!(
            "  transfer: {} {label} numbers ({matched} matched) with {in_vault} numbers in the vault: p50 {:.2} ms, p99 {:.2} ms",
            numbers.len(),
            pct(0.5),
            pct(0.99)
        );
    }
    println!("peak RSS {:.0} MB", peak_rss_mb());
}

/// A tiny deterministic generator (the numbers need not match the register's).
fn fastrand_like(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
