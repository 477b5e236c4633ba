//! Parse speed of the register CSV reader, UTF-8 and CP932.
//!
//! `cargo bench -p vrs-domain --features synth --bench register_csv`
//! Rows per file: `VRS_BENCH_ROWS` (default 1,000,000, the target size).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vrs_domain::csv::OutputEncoding;
use vrs_domain::csv::register::{ReadOptions, RegisterReader};
use vrs_domain::synth::{RegisterSpec, write_register};

fn rows() -> u64 {
    std::env::var("VRS_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn parse(bytes: &[u8]) -> (u64, u64) {
    let mut ok = 0;
    let mut bad = 0;
    for item in RegisterReader::new(bytes, ReadOptions::default()).expect("opens") {
        match item {
            Ok(row) => {
                black_box(&row);
                ok += 1
            }
            Err(_) => bad += 1,
        }
    }
    (ok, bad)
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let mut group = c.benchmark_group("register_csv");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n));
    for (name, encoding) in [
        ("utf8", OutputEncoding::Utf8),
        ("cp932", OutputEncoding::Cp932),
    ] {
        let mut bytes = Vec::new();
        write_register(
            &mut bytes,
            &RegisterSpec {
                rows: n,
                encoding,
                ..Default::default()
            },
        )
        .expect("generates");
        let (ok, bad) = parse(&bytes);
        assert_eq!((ok, bad), (n, 0));
        eprintln!("{name}: {n} rows, {:.1} MB", bytes.len() as f64 / 1e6);
        group.bench_function(format!("{name}/{n}_rows"), |b| b.iter(|| parse(&bytes)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
