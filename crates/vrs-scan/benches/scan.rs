//! Per-frame cost of the scanner on generated 1280×720 frames: barcodes only, the OCR
//! line only, and the whole pipeline. Frames are rendered once, before timing.
//!
//! `cargo bench -p vrs-scan --bench scan`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use image::GrayImage;
use vrs_scan::{Options, Scanner, decode_barcodes};
use vrs_synth as synth;

/// A fixed mix of the generator's scenes, as grey frames of 1280×720.
fn frames() -> Vec<(String, GrayImage)> {
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < 24 && i < 400 {
        let (img, truth) = synth::render_single(7, i);
        i += 1;
        if img.width() == 1280 {
            out.push((truth.scene, image::DynamicImage::ImageRgb8(img).to_luma8()));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let mut group = c.benchmark_group("frame_1280x720");
    group.sample_size(20);
    group.bench_function(BenchmarkId::new("barcodes", frames.len()), |b| {
        b.iter(|| {
            for (_, f) in &frames {
                std::hint::black_box(decode_barcodes(f));
            }
        })
    });
    let mut ocr_only = Scanner::new().expect("scanner");
    ocr_only.options = Options {
        barcodes: false,
        ..Options::default()
    };
    group.bench_function(BenchmarkId::new("ocr_line", frames.len()), |b| {
        b.iter(|| {
            for (_, f) in &frames {
                std::hint::black_box(ocr_only.scan_gray(f));
            }
        })
    });
    let mut full = Scanner::new().expect("scanner");
    group.bench_function(BenchmarkId::new("full_pipeline", frames.len()), |b| {
        b.iter(|| {
            for (_, f) in &frames {
                std::hint::black_box(full.scan_gray(f));
            }
        })
    });
    group.finish();
    // Criterion times the whole set; per-frame figures for the note.
    let mut ms: Vec<f64> = frames.iter().map(|(_, f)| full.scan_gray(f).ms).collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "full pipeline per frame over {} frames: median {:.1} ms, p95 {:.1} ms",
        ms.len(),
        ms[ms.len() / 2],
        ms[(ms.len() * 95 / 100).min(ms.len() - 1)]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
