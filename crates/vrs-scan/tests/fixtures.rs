//! Replays the committed fixtures (fixtures/scan, made by `vrs fixtures vouchers`):
//! the scanner must never accept a wrong number, never report a voucher where there is
//! none, and read nearly all of the rest.

use std::path::PathBuf;

use vrs_scan::Scanner;
use vrs_synth::eval::{evaluate, replay_streams};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scan")
}

#[test]
fn committed_photos_give_no_misread_no_false_positive_and_nearly_all_reads() {
    let mut scanner = Scanner::new().expect("scanner (tesseract-ocr-eng installed?)");
    let mut json_lines = 0;
    let report = evaluate(&mut scanner, &fixtures(), |entry, r| {
        // What the tablet would be told must always be a valid line when present.
        if let Some(v) = &r.voucher {
            assert_eq!(v.line.to_string().len(), 18, "{}", entry.file);
            assert!(v.confidence > 0.0, "{}", entry.file);
        }
        json_lines += 1;
    })
    .expect("evaluate");
    println!("{report}");
    for f in &report.failures {
        println!("  {f}");
    }
    assert_eq!(json_lines, report.images);
    assert!(
        report.images >= 50,
        "the committed set has {} images",
        report.images
    );
    assert_eq!(
        report.misreads, 0,
        "a wrong number was accepted: {:?}",
        report.failures
    );
    assert_eq!(report.false_positives, 0, "{:?}", report.failures);
    assert_eq!(report.label_misreads, 0, "{:?}", report.failures);
    assert_eq!(report.label_false_positives, 0, "{:?}", report.failures);
    assert!(
        report.vouchers >= 40,
        "the committed set has {} vouchers",
        report.vouchers
    );
    // The committed set reads 40 of 42 (95%); the target is measured on the
    // larger generated sets in the note. A drop below 90% here is a regression.
    assert!(
        report.read_rate() >= 0.90,
        "read rate {:.3}",
        report.read_rate()
    );
    assert!(
        report.labels_read >= 2,
        "labels read {}",
        report.labels_read
    );
    // Every kind of scene that must stay silent is in the set.
    for kind in ["empty", "invalid-check"] {
        assert!(
            report.scenes.contains_key(kind),
            "no {kind} scene in the committed set"
        );
    }
}

#[test]
fn committed_streams_confirm_each_voucher_within_ten_frames_and_never_a_wrong_one() {
    let mut scanner = Scanner::new().expect("scanner");
    let report = replay_streams(
        &mut scanner,
        &fixtures().join("streams"),
        vrs_scan::DEFAULT_NEED,
        10,
    )
    .expect("replay");
    println!("{report}");
    assert_eq!(report.wrong, 0, "{:?}", report.failures);
    assert!(report.sequences >= 3);
    assert_eq!(
        report.within_window, report.sequences,
        "{:?}",
        report.failures
    );
}

#[test]
fn with_a_consensus_of_one_the_committed_streams_still_confirm_nothing_wrong() {
    // With a consensus of one, a stream is only as good as its single frames; the
    // committed streams hold no misread frame, so even then nothing wrong is confirmed.
    let mut scanner = Scanner::new().expect("scanner");
    let report = replay_streams(&mut scanner, &fixtures().join("streams"), 1, 10).expect("replay");
    assert_eq!(report.wrong, 0, "{:?}", report.failures);
}

/// Each desk condition of the committed desk set (fixtures/scan/desk, made by
/// `vrs fixtures vouchers --desk --count 54 --seed 5`), with the number of its three
/// photos that must be read: what the scanner reads today, so a drop is a regression.
/// A pen stroke through the digits is read one time in three here: far from the
/// issue's 90%.
const DESK_FLOORS: &[(&str, usize)] = &[
    ("voucher-ocr", 3),
    ("voucher-rotated", 3),
    ("voucher-upside-down", 3),
    ("voucher-sideways", 2),
    ("voucher-portrait", 3),
    ("voucher-close-up", 3),
    ("voucher-4k", 3),
    ("voucher-curved", 3),
    ("voucher-creased", 3),
    ("voucher-stamp", 3),
    ("voucher-small", 2),
    ("voucher-perspective", 2),
    ("voucher-low-light", 3),
    ("voucher-pen", 1),
    ("voucher-screen", 2),
];

#[test]
fn desk_conditions_read_at_least_their_floor_and_never_a_wrong_number() {
    let mut scanner = Scanner::new().expect("scanner");
    let report = evaluate(&mut scanner, &fixtures().join("desk"), |_, _| {}).expect("evaluate");
    println!("{report}");
    for f in &report.failures {
        println!("  {f}");
    }
    assert_eq!(report.misreads, 0, "{:?}", report.failures);
    for &(scene, floor) in DESK_FLOORS {
        let (n, ok) = report.scenes.get(scene).copied().unwrap_or_default();
        assert!(n >= 3, "the desk set has {n} photos of {scene}");
        assert!(
            ok >= floor,
            "{scene}: {ok} of {n} read, at least {floor} expected"
        );
    }
}

#[test]
fn frames_with_no_single_valid_voucher_stay_silent() {
    // Two vouchers in view (side by side, stacked, overlapping, at different sizes),
    // a desk with forms and slips but no voucher, a wrong municipality check digit:
    // every such photo of the desk set must give no voucher at all.
    let mut scanner = Scanner::new().expect("scanner");
    let report = evaluate(&mut scanner, &fixtures().join("desk"), |_, _| {}).expect("evaluate");
    assert_eq!(report.false_positives, 0, "{:?}", report.failures);
    for kind in ["two-vouchers", "empty", "invalid-check"] {
        let (n, ok) = report.scenes.get(kind).copied().unwrap_or_default();
        assert!(n >= 3, "the desk set has {n} photos of {kind}");
        assert_eq!(ok, n, "{kind}: {} of {n} gave a voucher", n - ok);
    }
}

/// GS1 DataBar photos drawn by another encoder than ours (fixtures/scan/databar, made
/// by `scripts/databar-fixtures.py` with zxing-cpp's writer): Omnidirectional, Stacked,
/// Stacked Omnidirectional and Expanded, three scales each. What is reported must be
/// exactly the symbol's text; how many are read is a floor (7 of 12 today, where
/// zxing-cpp reads 10: the smallest, thinnest-barred symbols are missed).
#[test]
fn databar_photos_give_their_gtin_and_never_another() {
    #[derive(serde::Deserialize)]
    struct Entry {
        file: String,
        format: String,
        text: String,
    }
    let dir = fixtures().join("databar");
    let truth: Vec<Entry> =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).expect("truth.json"))
            .expect("truth");
    assert!(truth.len() >= 12, "{} photos", truth.len());
    let mut scanner = Scanner::new().expect("scanner");
    let mut read = Vec::new();
    for e in &truth {
        let img = image::open(dir.join(&e.file)).expect("photo");
        let report = scanner.scan(&img);
        assert!(report.voucher.is_none(), "{}", e.file);
        for s in report
            .symbols
            .iter()
            .filter(|s| s.format.starts_with("gs1"))
        {
            assert_eq!(
                (s.format, s.text.as_str()),
                (e.format.as_str(), e.text.as_str()),
                "{}",
                e.file
            );
            read.push(e.file.as_str());
        }
        // An Expanded symbol carries the lot and expiry: the label is complete.
        if e.format == "gs1-databar-expanded" && !report.symbols.is_empty() {
            let lot = report.lot.expect("label");
            assert!(e.text.ends_with(&format!("(10){}", lot.lot)), "{}", e.file);
        }
    }
    println!(
        "DataBar photos read: {} of {}: {read:?}",
        read.len(),
        truth.len()
    );
    assert!(
        read.len() >= 7,
        "{} of {} read: {read:?}",
        read.len(),
        truth.len()
    );
    for kind in ["omni", "stacked-omni", "expanded"] {
        assert!(
            read.iter().any(|f| f.starts_with(&format!("{kind}-"))),
            "no {kind} symbol read: {read:?}"
        );
    }
}
