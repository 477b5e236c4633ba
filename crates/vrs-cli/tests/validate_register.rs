//! `vrs validate-register` on the committed samples in fixtures/register.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/register")
        .join(name)
}

fn vrs(args: &[&str], files: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vrs"))
        .args(args)
        .args(files.iter().map(|f| fixture(f)))
        .args(["--today", "2021-04-01"])
        .output()
        .expect("runs vrs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

#[test]
fn valid_files_exit_zero_with_a_clean_summary() {
    let o = vrs(
        &["validate-register"],
        &["valid-utf8.csv", "flags-cp932.csv"],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("valid-utf8.csv: UTF-8, header row"), "{out}");
    assert!(
        out.contains("flags-cp932.csv: CP932 (Shift_JIS), header row"),
        "{out}"
    );
    assert!(out.contains("rows 14, valid 14, invalid 0"), "{out}");
}

const EXPECTED_BAD: [(&str, &str); 7] = [
    (
        "field 2 (マイナンバー): check digit is",
        "マイナンバー: wrong check digit",
    ),
    (
        "field 1 (個別宛名番号): 個別宛名番号 is empty",
        "個別宛名番号: missing",
    ),
    (
        "field 7 (生年月日): 1979-02-30 does not exist",
        "生年月日: impossible date",
    ),
    (
        "field 10 (転出/死亡フラグ): \"5\" is not 1",
        "転出/死亡フラグ: code not in its list",
    ),
    (
        "11 fields, expected 10: a column is shifted",
        "row: wrong number of fields",
    ),
    (
        "field 5 (氏名(セイ)): \"松本\" has '松', which is not katakana",
        "氏名(セイ): not kana",
    ),
    (
        "field 9 (券番号): \"131016001\" must be 10 digits, got 9",
        "券番号: wrong format",
    ),
];

fn check_mixed(file: &str, first_bad_line: u64) {
    let o = vrs(&["validate-register"], &[file]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("rows 17, valid 10, invalid 7"), "{out}");
    for (i, (problem, reason)) in EXPECTED_BAD.iter().enumerate() {
        let line = format!("  line {}: {problem}", first_bad_line + i as u64);
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with("1  ") && l.contains(reason)),
            "missing reason {reason:?} in\n{out}"
        );
    }
    // Exactly the seven bad lines are reported.
    assert_eq!(out.lines().filter(|l| l.starts_with("  line ")).count(), 7);
}

#[test]
fn utf8_bom_sample_reports_each_bad_row_by_line_field_and_reason() {
    check_mixed("mixed-utf8-bom.csv", 5);
}

#[test]
fn cp932_sample_without_header_reports_the_same_rows() {
    check_mixed("mixed-cp932.csv", 4);
}

#[test]
fn report_never_prints_a_my_number() {
    let o = vrs(
        &["validate-register"],
        &[
            "mixed-utf8-bom.csv",
            "mixed-cp932.csv",
            "valid-utf8.csv",
            "swapped-columns-utf8.csv",
        ],
    );
    let out = stdout(&o) + &String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("swapped-columns-utf8.csv"), "{out}");
    assert!(out.contains("rows 2, valid 0, invalid 2"), "{out}");
    let twelve_digits = out
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() == 12);
    assert!(!twelve_digits, "{out}");
}

#[test]
fn forced_wrong_encoding_is_reported_per_field_not_as_a_crash() {
    let o = vrs(
        &["validate-register", "--encoding", "utf-8"],
        &["mixed-cp932.csv"],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("not valid UTF-8 text"), "{out}");
}

#[test]
fn a_missing_file_exits_two() {
    let o = vrs(&["validate-register"], &["no-such-file.csv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("cannot open"));
}

#[test]
fn generated_register_with_planted_faults_is_counted_exactly() {
    let dir = std::env::temp_dir().join(format!("vrs-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gen.csv");
    let made = Command::new(env!("CARGO_BIN_EXE_vrs"))
        .args([
            "fixtures",
            "register",
            "--rows",
            "3000",
            "--encoding",
            "cp932",
        ])
        .args(["--bad-every", "100", "--seed", "42", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(made.status.success());
    let o = Command::new(env!("CARGO_BIN_EXE_vrs"))
        .args(["validate-register", "--summary-only"])
        .arg(&file)
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("rows 3000, valid 2970, invalid 30"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
