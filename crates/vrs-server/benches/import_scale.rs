//! The register import at the largest municipalities' sizes, beside a raw load of
//! the same file, printed (not asserted).
//!
//! `cargo bench -p vrs-server --bench import_scale`
//!
//! For each size in VRS_BENCH_SIZES (rows, comma-separated; default
//! 1000000,3700000,10000000) a register file is made (`vrs fixtures register`'s
//! generator, UTF-8), then timed:
//! - raw: the file loaded by the `sqlite3` shell (`.import`) into a table of ten
//!   text columns with a primary key, in a new database (no encryption, no checks);
//! - first load: `import_register` in strict mode into a new embedded store;
//! - again: the same file imported a second time (everyone unchanged).
//!
//! Each line gives rows a second, the ratio to the raw load, and the peak resident
//! memory of the import (reset before each). Files and stores go to TMPDIR (10M rows
//! need about 10 GB there).
//!
//! With VRS_BENCH_DATABASE=postgres://… (an empty database; `scripts/bench-pg
//! import_scale` starts one) the store is PostgreSQL, made anew for each size, and
//! the raw load is `COPY` of the same file into a plain table of ten text columns
//! with a primary key.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::NaiveDate;
use vrs_domain::MunicipalityCode;
use vrs_domain::csv::OutputEncoding;
use vrs_domain::synth::{RegisterSpec, write_register};
use vrs_server::store::{ImportOptions, ImportOutcome};
use vrs_server::{Keys, Principal, SqliteStore, Store};

mod support;
use support::{peak_rss_mb, reset_peak};

/// PostgreSQL made empty again: the store's schemas and the raw table dropped.
fn pg_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect")
}

fn pg_empty(url: &str) {
    pg_client(url)
        .batch_execute(
            "DROP SCHEMA IF EXISTS vrs CASCADE; DROP SCHEMA IF EXISTS vrs_vault CASCADE;
             DROP TABLE IF EXISTS bench_raw;",
        )
        .expect("empty the database");
}

/// The raw load on PostgreSQL: `COPY` into ten text columns with a primary key.
fn pg_copy(url: &str, file: &Path) -> f64 {
    let mut c = pg_client(url);
    c.batch_execute(
        "CREATE TABLE bench_raw (c1 text PRIMARY KEY, c2 text, c3 text, c4 text, c5 text,
             c6 text, c7 text, c8 text, c9 text, c10 text)",
    )
    .expect("raw table");
    let t = Instant::now();
    let mut w = c
        .copy_in("COPY bench_raw FROM STDIN (FORMAT csv, HEADER true)")
        .expect("copy");
    std::io::copy(&mut std::fs::File::open(file).expect("open"), &mut w).expect("copy data");
    w.finish().expect("copy end");
    let s = t.elapsed().as_secs_f64();
    c.batch_execute("DROP TABLE bench_raw").expect("drop raw");
    s
}

/// The raw load's time in seconds, or None without a `sqlite3` shell.
fn raw_load(file: &Path, dir: &Path) -> Option<f64> {
    let db = dir.join("raw.db");
    let script = format!(
        "CREATE TABLE raw (c1 TEXT PRIMARY KEY, c2 TEXT, c3 TEXT, c4 TEXT, c5 TEXT, \
         c6 TEXT, c7 TEXT, c8 TEXT, c9 TEXT, c10 TEXT);\n.mode csv\n.import --skip 1 {} raw\n",
        file.display()
    );
    let t = Instant::now();
    let mut child = Command::new("sqlite3")
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(script.as_bytes()).ok()?;
    let ok = child.wait().ok()?.success();
    let s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&db);
    ok.then_some(s)
}

fn main() {
    let sizes: Vec<u64> = std::env::var("VRS_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000,3700000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let code: MunicipalityCode = "141003".parse().expect("code"); // 横浜市
    let staff = Principal::Staff {
        municipality: code,
        user: "bench@city.lg.jp".into(),
    };
    let opts = ImportOptions {
        today: NaiveDate::from_ymd_opt(2021, 12, 31).expect("date"),
        ..Default::default()
    };
    let database = std::env::var("VRS_BENCH_DATABASE").ok();
    match &database {
        Some(_) => println!("PostgreSQL, register import in strict mode"),
        None => println!("embedded store (SQLite), register import in strict mode"),
    }
    for rows in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("register.csv");
        let spec = RegisterSpec {
            rows,
            seed: 37,
            first_voucher: 1_410_030_001,
            encoding: OutputEncoding::Utf8,
            ..Default::default()
        };
        write_register(
            std::io::BufWriter::new(std::fs::File::create(&file).expect("create")),
            &spec,
        )
        .expect("generate");
        let mb = std::fs::metadata(&file).map_or(0, |m| m.len()) as f64 / 1e6;
        let keys = Keys::generate().expect("keys");
        let (raw, raw_how, store): (Option<f64>, &str, Box<dyn Store>) = match &database {
            Some(url) => {
                pg_empty(url);
                let raw = pg_copy(url, &file);
                let store = vrs_server::postgres::PgStore::open(url, url, &keys).expect("store");
                (Some(raw), "COPY", Box::new(store))
            }
            None => {
                let raw = raw_load(&file, dir.path());
                let store_dir = dir.path().join("store");
                std::fs::create_dir(&store_dir).expect("store dir");
                let store = SqliteStore::open(&store_dir, keys).expect("store");
                (raw, "sqlite3 .import", Box::new(store))
            }
        };
        let line = |label: &str| {
            reset_peak();
            let t = Instant::now();
            let r = store
                .import_register(
                    &staff,
                    code,
                    &mut std::io::BufReader::new(std::fs::File::open(&file).expect("open")),
                    &opts,
                )
                .expect("import");
            assert_eq!(r.outcome, ImportOutcome::Applied, "{:?}", r.summary);
            let s = t.elapsed().as_secs_f64();
            let ratio = raw.map_or("no sqlite3 shell".to_owned(), |raw| {
                format!("{:.2}× raw", s / raw)
            });
            println!(
                "  {label:>10}: {s:7.2} s {:>9.0} rows/s  {ratio}  peak RSS {:.0} MB",
                rows as f64 / s,
                peak_rss_mb()
            );
        };
        println!("{rows} rows ({mb:.0} MB)");
        if let Some(raw) = raw {
            println!(
                "  {:>10}: {raw:7.2} s {:>9.0} rows/s  ({raw_how})",
                "raw",
                rows as f64 / raw
            );
        }
        line("first load");
        line("again");
    }
}
