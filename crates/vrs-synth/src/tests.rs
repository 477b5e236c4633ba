//! Tests of the generator: the symbols decode back to their truth, the OCR lines
//! validate (or, for invalid-check scenes, do not), the mix is as asked, and the same
//! seed gives the same bytes.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use image::GrayImage;
use rxing::{BarcodeFormat, DecodeHints, RXingResultMetadataType, RXingResultMetadataValue};
use vrs_domain::ids::OcrLine;

use super::*;

fn decode(luma: &GrayImage, format: BarcodeFormat) -> Option<String> {
    decode_with_symbology(luma, format).map(|(t, _)| t)
}

/// The text and the symbology identifier (`]C1` for GS1-128, `]d2` for GS1
/// DataMatrix) of the first symbol of `format` found.
fn decode_with_symbology(luma: &GrayImage, format: BarcodeFormat) -> Option<(String, String)> {
    let mut hints = DecodeHints {
        PossibleFormats: Some(HashSet::from([format])),
        TryHarder: Some(true),
        ..Default::default()
    };
    rxing::helpers::detect_in_luma_with_hints(
        luma.as_raw().clone(),
        luma.width(),
        luma.height(),
        None,
        &mut hints,
    )
    .ok()
    .map(|r| {
        let sym = match r
            .getRXingResultMetadata()
            .get(&RXingResultMetadataType::SYMBOLOGY_IDENTIFIER)
        {
            Some(RXingResultMetadataValue::SymbologyIdentifier(s)) => s.clone(),
            _ => String::new(),
        };
        (r.getText().to_owned(), sym)
    })
}

/// A symbol drawn plainly: `px` pixels per module, a 10-module quiet zone, 1-D codes
/// 60 px tall.
fn plain(m: &symbols::Modules, px: u32) -> GrayImage {
    let rows = if m.rows() == 1 {
        60 / px
    } else {
        m.rows() as u32
    };
    let q = 10;
    let (w, h) = ((m.cols as u32 + 2 * q) * px, (rows + 2 * q) * px);
    GrayImage::from_fn(w, h, |x, y| {
        let (c, r) = (x / px, y / px);
        let dark = c >= q && r >= q && c < q + m.cols as u32 && r < q + rows && {
            let r = if m.rows() == 1 { 0 } else { r - q };
            m.bits[r as usize * m.cols + (c - q) as usize]
        };
        image::Luma([if dark { 0 } else { 255 }])
    })
}

/// The label a GS1 read means, as (gtin, lot, expiry).
fn label_of(text: &str) -> Option<(String, String, String)> {
    let l = vrs_domain::gs1::parse(text).ok()?.label()?;
    Some((
        l.gtin.to_string(),
        l.lot.as_str().to_owned(),
        l.expiry.to_string(),
    ))
}

#[test]
fn every_symbol_decodes_back_to_what_was_encoded() {
    let line = "131310161234567890";
    let qr = symbols::qr(line).unwrap();
    assert_eq!(qr.cols, 21, "18 digits fit a version 1 QR at level M");
    assert_eq!(
        decode(&plain(&qr, 4), BarcodeFormat::QR_CODE).as_deref(),
        Some(line)
    );

    for wide3 in [false, true] {
        let nw7 = symbols::nw7("0123456789", 'A', wide3).unwrap();
        assert_eq!(
            decode(&plain(&nw7, 2), BarcodeFormat::CODABAR).as_deref(),
            Some("0123456789")
        );
    }

    let elements = symbols::gs1_elements("04987123456784", "230131", "FA4597");
    let want = Some((
        "04987123456784".to_owned(),
        "FA4597".to_owned(),
        "2023-01-31".to_owned(),
    ));
    let bars = symbols::gs1_128(&elements).unwrap();
    let (text, sym) = decode_with_symbology(&plain(&bars, 2), BarcodeFormat::CODE_128).unwrap();
    assert_eq!(label_of(&text), want, "GS1-128 read {text:?}");
    assert_eq!(sym, "]C1", "a leading FNC1 makes it GS1-128");
    let dm = symbols::gs1_datamatrix(&elements).unwrap();
    let (text, sym) = decode_with_symbology(&plain(&dm, 5), BarcodeFormat::DATA_MATRIX).unwrap();
    assert_eq!(label_of(&text), want, "DataMatrix read {text:?}");
    assert_eq!(sym, "]d2", "a leading FNC1 makes it GS1 DataMatrix");
}

#[test]
fn made_lines_validate_and_broken_ones_fail_on_the_check_digit() {
    let mut rng = Rng::with_seed(7);
    for dose in 1..=9 {
        let mut v = content::voucher(&mut rng, dose).unwrap();
        let line: OcrLine = v.line.parse().unwrap();
        assert_eq!(line.dose.get(), dose);
        assert_eq!(line.kind.get(), 1);
        assert_eq!(line.number.to_string(), v.number);
        content::break_check_digit(&mut rng, &mut v).unwrap();
        assert!(matches!(
            v.line.parse::<OcrLine>(),
            Err(vrs_domain::IdError::CheckDigit { .. })
        ));
    }
}

#[test]
fn made_labels_parse_from_their_human_readable_form() {
    let mut rng = Rng::with_seed(3);
    for _ in 0..20 {
        let d = content::label(&mut rng).unwrap();
        let (gtin, lot, expiry) = label_of(&d.human_readable()).unwrap();
        assert_eq!(
            (gtin, lot, expiry),
            (d.gtin.clone(), d.lot.clone(), d.expiry_iso())
        );
    }
}

#[test]
fn the_mix_deals_each_kind_its_weight_per_block_and_labels_alternate() {
    let mix = SceneMix::default();
    let kinds: Vec<SceneKind> = (0..40).map(|i| mix.kind(9, i).unwrap()).collect();
    for block in kinds.chunks(20) {
        let count = |k| block.iter().filter(|x| **x == k).count();
        assert_eq!(count(SceneKind::VoucherOcr), 11);
        assert_eq!(count(SceneKind::VoucherQr), 3);
        assert_eq!(count(SceneKind::VoucherNw7), 3);
        assert_eq!(count(SceneKind::Empty), 1);
        assert_eq!(count(SceneKind::InvalidCheck), 1);
    }
    let labels: Vec<SceneKind> = kinds
        .into_iter()
        .filter(|k| matches!(k, SceneKind::LabelGs1_128 | SceneKind::LabelDataMatrix))
        .collect();
    assert_eq!(
        labels,
        [SceneKind::LabelGs1_128, SceneKind::LabelDataMatrix]
    );
    let none = SceneMix {
        voucher_ocr: 0,
        voucher_qr: 0,
        voucher_nw7: 0,
        empty: 0,
        invalid_check: 0,
        label: 0,
        conditions: 0,
        two_vouchers: 0,
    };
    assert!(matches!(none.kind(1, 0), Err(SynthError::Spec { .. })));
}

/// The first index of each kind in a default set with `seed`.
fn first_of(seed: u64, kind: SceneKind) -> usize {
    let mix = SceneMix::default();
    (0..200)
        .find(|&i| mix.kind(seed, i).unwrap() == kind)
        .unwrap()
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let spec = SinglesSpec {
        seed: 5,
        ..SinglesSpec::default()
    };
    let i = first_of(5, SceneKind::VoucherQr);
    let (a, ta) = render_jpeg(&spec, i, "x.jpg").unwrap();
    let (b, tb) = render_jpeg(&spec, i, "x.jpg").unwrap();
    assert_eq!(ta, tb);
    assert!(a == b, "two renders of the same image differ");
    let (c, _) = render_jpeg(&SinglesSpec { seed: 6, ..spec }, i, "x.jpg").unwrap();
    assert!(a != c, "another seed gives another image");
}

/// The first `n` indices of `kind` in a default set with `seed`.
fn firsts_of(seed: u64, kind: SceneKind, n: usize) -> Vec<usize> {
    let mix = SceneMix::default();
    (0..400)
        .filter(|&i| mix.kind(seed, i).unwrap() == kind)
        .take(n)
        .collect()
}

/// Renders the first two images of each symbol kind and reads their symbols back
/// from the photo with rxing, as a scanner would: whatever decodes must equal the
/// truth, and at least one photo of each kind must decode (a plain decoder gives up
/// on some blur and skew the scanner is meant to handle).
#[test]
fn symbols_in_rendered_photos_decode_to_their_truth() {
    let seed = 1;
    let cases = [
        (SceneKind::VoucherQr, BarcodeFormat::QR_CODE),
        (SceneKind::VoucherNw7, BarcodeFormat::CODABAR),
        (SceneKind::LabelGs1_128, BarcodeFormat::CODE_128),
        (SceneKind::LabelDataMatrix, BarcodeFormat::DATA_MATRIX),
    ];
    for (kind, format) in cases {
        let mut decoded = 0;
        for i in firsts_of(seed, kind, 2) {
            let (img, truth) = render_single(seed, i);
            assert_eq!(truth.scene, kind.name());
            let luma = image::DynamicImage::ImageRgb8(img).to_luma8();
            let Some(got) = decode(&luma, format) else {
                continue;
            };
            // Codabar has no check character and rxing's reader returns fragments
            // of a skewed symbol ("66603" of "3410266603"); a 券番号 is 10 digits,
            // so a scanner drops anything else, and so does this test.
            if format == BarcodeFormat::CODABAR && got.len() != 10 {
                continue;
            }
            decoded += 1;
            match kind {
                SceneKind::VoucherQr => assert_eq!(Some(got.as_str()), truth.voucher.as_deref()),
                SceneKind::VoucherNw7 => assert_eq!(
                    Some(got.as_str()),
                    truth.voucher.as_deref().map(|v| &v[8..])
                ),
                _ => {
                    let lot = truth.lot.clone().unwrap();
                    assert_eq!(label_of(&got), Some((lot.gtin, lot.lot, lot.expiry)));
                }
            }
        }
        assert!(decoded > 0, "no {} photo decoded", kind.name());
    }
}

#[test]
fn a_stream_shows_no_voucher_then_the_first_then_the_second() {
    let dir = std::env::temp_dir().join(format!("vrs-synth-stream-{}", std::process::id()));
    let spec = StreamSpec {
        count: 1,
        frames: 20,
        seed: 2,
        sizes: vec![(640, 360)],
        swap_share: 1.0,
        invalid_second_share: 0.0,
    };
    let streams = write_streams(&dir, &spec).unwrap();
    assert_eq!(streams, crate::truth::read_streams(&dir).unwrap());
    let segs = &streams[0].segments;
    let frames: Vec<_> = std::fs::read_dir(dir.join("stream-000")).unwrap().collect();
    assert_eq!(frames.len(), 20);
    std::fs::remove_dir_all(&dir).ok();

    // Contiguous runs over every frame, the first pointed away from any voucher.
    let mut next = 0;
    for s in segs {
        assert_eq!(s.first_frame, next);
        next += s.frames;
    }
    assert_eq!(next, 20);
    assert_eq!(segs[0].voucher, None);
    let shown: Vec<&String> = segs.iter().filter_map(|s| s.voucher.as_ref()).collect();
    assert_eq!(shown.len(), 2, "{segs:?}");
    assert_ne!(shown[0], shown[1]);
    for v in shown {
        v.parse::<OcrLine>().unwrap();
    }
    // The two vouchers are apart: at least one frame shows neither.
    let gap = segs
        .windows(3)
        .any(|w| w[0].voucher.is_some() && w[1].voucher.is_none() && w[2].voucher.is_some());
    assert!(gap, "{segs:?}");
}

/// Writes a sample folder for a person to look at:
/// `VRS_SYNTH_SAMPLE=/tmp/x cargo test -p vrs-scan --features synth -- --ignored sample`.
#[test]
#[ignore]
fn write_a_sample_folder() {
    let Ok(dir) = std::env::var("VRS_SYNTH_SAMPLE") else {
        return;
    };
    let count = std::env::var("VRS_SYNTH_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let dir = std::path::PathBuf::from(dir);
    let t = std::time::Instant::now();
    let entries = write_singles(
        &dir.join("singles"),
        &SinglesSpec {
            count,
            ..SinglesSpec::default()
        },
    )
    .unwrap();
    eprintln!("{} singles in {:?}", entries.len(), t.elapsed());
    let t = std::time::Instant::now();
    let streams = write_streams(
        &dir.join("streams"),
        &StreamSpec {
            count: 2,
            ..StreamSpec::default()
        },
    )
    .unwrap();
    eprintln!("{} streams in {:?}", streams.len(), t.elapsed());
}

/// Converts the JPEGs of `VRS_SYNTH_CONVERT` (a folder) to PNG beside them, for
/// viewers that read only PNG.
#[test]
#[ignore]
fn convert_a_folder_to_png() {
    let Ok(dir) = std::env::var("VRS_SYNTH_CONVERT") else {
        return;
    };
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jpg") {
            let mut img = image::open(&p).unwrap();
            // VRS_SYNTH_CROP=x,y,w,h cuts out a part at full resolution.
            if let Ok(c) = std::env::var("VRS_SYNTH_CROP") {
                let v: Vec<u32> = c.split(',').map(|s| s.parse().unwrap()).collect();
                img = img.crop_imm(v[0], v[1], v[2], v[3]);
            }
            img.save(p.with_extension("png")).unwrap();
        }
    }
}

/// Draws a few voucher cards flat (no camera) into `VRS_SYNTH_CARDS`, to check the
/// layouts by eye.
#[test]
#[ignore]
fn draw_flat_cards() {
    let Ok(dir) = std::env::var("VRS_SYNTH_CARDS") else {
        return;
    };
    let fonts = fonts::fonts().unwrap();
    for i in 0..12u64 {
        let mut rng = Rng::with_seed(i);
        let v = content::voucher(&mut rng, 3).unwrap();
        let sym = [VoucherSymbol::None, VoucherSymbol::Qr, VoucherSymbol::Nw7][i as usize % 3];
        let card = layout::voucher_card(fonts, &mut rng, &v, sym).unwrap();
        let c = card.sheet.render(fonts, card.sheet.rect(), 10.0);
        c.img.save(format!("{dir}/card{i}.png")).unwrap();
    }
}

/// Reads every symbol scene of the folder `VRS_SYNTH_EVAL` with plain rxing and
/// prints how many decode to their truth: a gauge of how hard the set is.
#[test]
#[ignore]
fn rxing_pass_rates_of_a_folder() {
    let Ok(dir) = std::env::var("VRS_SYNTH_EVAL") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let entries = crate::truth::read_truth(&dir).unwrap();
    let mut tally: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for e in entries {
        let format = match e.scene.as_str() {
            "voucher-qr" => BarcodeFormat::QR_CODE,
            "voucher-nw7" => BarcodeFormat::CODABAR,
            "label-gs1-128" => BarcodeFormat::CODE_128,
            "label-datamatrix" => BarcodeFormat::DATA_MATRIX,
            _ => continue,
        };
        let luma = image::open(dir.join(&e.file)).unwrap().to_luma8();
        let got = decode(&luma, format);
        let ok = match (&e.voucher, &e.lot, &got) {
            (Some(v), _, Some(g)) if e.scene == "voucher-qr" => g == v,
            (Some(v), _, Some(g)) => g == &v[8..],
            (_, Some(l), Some(g)) => {
                label_of(g) == Some((l.gtin.clone(), l.lot.clone(), l.expiry.clone()))
            }
            _ => false,
        };
        if !ok {
            eprintln!("{} {} miss: {}", e.file, e.scene, e.note);
        }
        let t = tally.entry(e.scene.clone()).or_default();
        t.0 += usize::from(ok);
        t.1 += 1;
    }
    for (k, (ok, n)) in tally {
        eprintln!("{k}: {ok}/{n}");
    }
}

#[test]
fn written_singles_match_their_truth_file() {
    let dir = std::env::temp_dir().join(format!("vrs-synth-singles-{}", std::process::id()));
    let spec = SinglesSpec {
        count: 3,
        seed: 11,
        sizes: vec![(1280, 720)],
        ..SinglesSpec::default()
    };
    let entries = write_singles(&dir, &spec).unwrap();
    assert_eq!(entries, crate::truth::read_truth(&dir).unwrap());
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.file, format!("{i:04}.jpg"));
        let img = image::open(dir.join(&e.file)).unwrap();
        assert_eq!((img.width(), img.height()), (1280, 720));
        assert!(e.note.starts_with("1280x720 "), "{}", e.note);
        if let Some(v) = &e.voucher {
            v.parse::<OcrLine>().unwrap();
            let h: f64 = e
                .note
                .split("digit_h=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!((12.0..=40.0).contains(&h), "{}", e.note);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
