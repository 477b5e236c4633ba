//! `vrs scan --json` keeps the contract in ../shared/docs/architecture.md.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scan")
}

/// The first fixture of each scene kind, from the truth file.
fn first_of(scene: &str) -> (PathBuf, Value) {
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("truth.json")).expect("truth"),
    )
    .expect("json");
    let entry = truth
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["scene"] == scene)
        .unwrap_or_else(|| panic!("no {scene} fixture"))
        .clone();
    (
        fixtures().join(entry["file"].as_str().expect("file")),
        entry,
    )
}

#[test]
fn json_prints_one_object_per_file_in_order_per_the_contract() {
    let (qr, qr_truth) = first_of("voucher-qr");
    let (empty, _) = first_of("empty");
    let (label, label_truth) = first_of("label-datamatrix");
    let out = Command::new(env!("CARGO_BIN_EXE_vrs"))
        .args(["scan", "--json"])
        .args([&qr, &empty, &label])
        .output()
        .expect("run vrs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["file"], qr.display().to_string());
    let v = &lines[0]["voucher"];
    let want = qr_truth["voucher"].as_str().expect("truth voucher");
    assert_eq!(v["ocr_line"], want);
    assert_eq!(v["kind"], &want[0..1]);
    assert_eq!(v["dose"], want[1..2].parse::<u64>().expect("dose"));
    assert_eq!(v["municipality"], &want[2..8]);
    assert_eq!(v["number"], &want[8..18]);
    assert_eq!(v["source"], "qr");
    assert!(
        lines[0]["symbols"]
            .as_array()
            .expect("symbols")
            .iter()
            .any(|s| s["format"] == "qr")
    );
    assert!(lines[0]["ms"].as_f64().expect("ms") > 0.0);
    // Nothing in view: null, never a guess.
    assert_eq!(lines[1]["voucher"], Value::Null);
    assert_eq!(lines[1]["lot"], Value::Null);
    let lot = &lines[2]["lot"];
    assert_eq!(lot["gtin"], label_truth["lot"]["gtin"]);
    assert_eq!(lot["lot"], label_truth["lot"]["lot"]);
    assert_eq!(lot["expiry"], label_truth["lot"]["expiry"]);
}

#[test]
fn an_unreadable_file_is_reported_and_the_rest_still_scanned() {
    let (empty, _) = first_of("empty");
    let out = Command::new(env!("CARGO_BIN_EXE_vrs"))
        .args(["scan", "--json", "/nonexistent/frame.png"])
        .arg(&empty)
        .output()
        .expect("run vrs");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["error"]
            .as_str()
            .expect("error")
            .contains("/nonexistent/frame.png")
    );
    assert_eq!(lines[1]["voucher"], Value::Null);
}

#[test]
fn eval_scores_the_committed_set_and_exits_0_with_no_misread() {
    let out = Command::new(env!("CARGO_BIN_EXE_vrs"))
        .args(["scan", "--eval"])
        .arg(fixtures())
        .output()
        .expect("run vrs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("misreads 0"), "{text}");
    assert!(text.contains("ms per frame: median"), "{text}");
}
