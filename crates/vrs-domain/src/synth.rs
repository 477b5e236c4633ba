//! Deterministic synthetic registers: fixtures, benchmarks and the demo municipality.
//! The same seed gives the same file, byte for byte. Every マイナンバー here is made
//! up (valid check digit, random digits).

use std::io::Write;

use crate::MyNumber;
use crate::csv::register::RegisterField;
use crate::csv::{EncodedWriter, OutputEncoding, WriteError};

const FAMILY: [(&str, &str); 20] = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
];

const GIVEN_MALE: [(&str, &str); 8] = [
    ("太郎", "タロウ"),
    ("健", "ケン"),
    ("翔太", "ショウタ"),
    ("大輔", "ダイスケ"),
    ("誠", "マコト"),
    ("浩", "ヒロシ"),
    ("蓮", "レン"),
    ("悠真", "ユウマ"),
];

const GIVEN_FEMALE: [(&str, &str); 8] = [
    ("花子", "ハナコ"),
    ("陽子", "ヨウコ"),
    ("美咲", "ミサキ"),
    ("愛", "アイ"),
    ("結衣", "ユイ"),
    ("恵子", "ケイコ"),
    ("さくら", "サクラ"),
    ("葵", "アオイ"),
];

/// The kinds of bad row the generator can plant, in the order it plants them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    MyNumberCheckDigit,
    MissingPersonId,
    ImpossibleDate,
    FlagOutOfList,
    ShiftedColumn,
    KanjiInKana,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::MyNumberCheckDigit,
        Fault::MissingPersonId,
        Fault::ImpossibleDate,
        Fault::FlagOutOfList,
        Fault::ShiftedColumn,
        Fault::KanjiInKana,
    ];
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct RegisterSpec {
    pub seed: u64,
    pub rows: u64,
    /// The first 個別宛名番号; the rest follow in order.
    pub first_person_id: u64,
    /// The first 券番号; the rest follow in order, so they are unique.
    pub first_voucher: u64,
    /// Every n-th row is bad (cycling through [`Fault::ALL`]); 0 for none.
    pub bad_every: u64,
    pub header: bool,
    pub encoding: OutputEncoding,
}

impl Default for RegisterSpec {
    fn default() -> Self {
        RegisterSpec {
            seed: 1,
            rows: 1000,
            first_person_id: 100_000_001,
            first_voucher: 1_000_000_001,
            bad_every: 0,
            header: true,
            encoding: OutputEncoding::Utf8,
        }
    }
}

/// What was written: how many rows, and which lines hold which fault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub faults: Vec<(u64, Fault)>,
}

/// Writes a synthetic register CSV.
pub fn write_register<W: Write>(out: W, spec: &RegisterSpec) -> Result<Written, WriteError> {
    let names = RegisterField::ALL.map(RegisterField::name);
    let mut w = EncodedWriter::new(out, spec.encoding)?;
    if spec.header {
        w.write(&names, &names)?;
    }
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let mut written = Written::default();
    let mut fault_no = 0usize;
    let mut names11: Vec<&'static str> = names.to_vec();
    names11.push("extra");
    for i in 0..spec.rows {
        let line = i + 1 + u64::from(spec.header);
        let male = rng.bool();
        let (fam, fam_kana) = FAMILY[rng.usize(..FAMILY.len())];
        let given = if male { GIVEN_MALE } else { GIVEN_FEMALE };
        let (giv, giv_kana) = given[rng.usize(..given.len())];
        let mut digits = [0u8; 11];
        for d in &mut digits {
            *d = rng.u8(0..10);
        }
        let my = MyNumber::from_first_eleven(digits)
            .map(|m| String::from_utf8_lossy(m.expose_for_vault()).into_owned())
            .unwrap_or_default();
        let birth = format!(
            "{:04}{:02}{:02}",
            rng.i32(1920..2021),
            rng.u32(1..13),
            rng.u32(1..29)
        );
        let flag = match rng.u32(0..1000) {
            0..=4 => "1",
            5 => "2",
            _ => "",
        };
        let mut fields: Vec<String> = vec![
            (spec.first_person_id + i).to_string(),
            my,
            fam.into(),
            giv.into(),
            fam_kana.into(),
            giv_kana.into(),
            birth,
            if male { "1" } else { "2" }.into(),
            format!("{:010}", (spec.first_voucher + i) % 10_000_000_000),
            flag.into(),
        ];
        if spec.bad_every > 0 && (i + 1) % spec.bad_every == 0 {
            let fault = Fault::ALL[fault_no % Fault::ALL.len()];
            fault_no += 1;
            match fault {
                Fault::MyNumberCheckDigit => {
                    let mut b = fields[1].clone().into_bytes();
                    b[11] = b'0' + (b[11] - b'0' + 1) % 10;
                    // A check digit of 0 also stands for remainder 1; bump past it.
                    fields[1] = String::from_utf8_lossy(&b).into_owned();
                    if fields[1].parse::<MyNumber>().is_ok() {
                        b[11] = b'0' + (b[11] - b'0' + 1) % 10;
                        fields[1] = String::from_utf8_lossy(&b).into_owned();
                    }
                }
                Fault::MissingPersonId => fields[0].clear(),
                Fault::ImpossibleDate => fields[6] = format!("{}0230", &fields[6][..4]),
                Fault::FlagOutOfList => fields[9] = "4".into(),
                Fault::ShiftedColumn => {
                    // A comma inside the name field, as a careless export writes it.
                    let given = fields.remove(3);
                    fields.insert(3, given.clone());
                    fields.insert(3, "・".into());
                }
                Fault::KanjiInKana => fields[4] = fam.into(),
            }
            written.faults.push((line, fault));
        }
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let labels: &[&'static str] = if refs.len() == 10 { &names } else { &names11 };
        w.write(&refs, labels)?;
        written.rows += 1;
    }
    w.finish()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::register::{ReadOptions, RegisterReader};
    use crate::csv::{ProblemKind, ReadError};

    #[test]
    fn same_seed_same_bytes() {
        let spec = RegisterSpec {
            rows: 200,
            ..Default::default()
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_register(&mut a, &spec).unwrap();
        write_register(&mut b, &spec).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn good_rows_all_validate_and_each_planted_fault_is_caught_on_its_line() {
        for encoding in [OutputEncoding::Utf8Bom, OutputEncoding::Cp932] {
            let spec = RegisterSpec {
                rows: 600,
                bad_every: 50,
                encoding,
                ..Default::default()
            };
            let mut bytes = Vec::new();
            let written = write_register(&mut bytes, &spec).unwrap();
            assert_eq!(written.faults.len(), 12);
            let mut bad_lines = Vec::new();
            for item in RegisterReader::new(&bytes[..], ReadOptions::default()).unwrap() {
                match item {
                    Ok(_) => {}
                    Err(ReadError::Row(e)) => {
                        let (_, fault) = written.faults.iter().find(|(l, _)| *l == e.line).unwrap();
                        let kind = e.problems[0].kind;
                        let expected = match fault {
                            Fault::MyNumberCheckDigit => ProblemKind::CheckDigit,
                            Fault::MissingPersonId => ProblemKind::Missing,
                            Fault::ImpossibleDate => ProblemKind::BadDate,
                            Fault::FlagOutOfList => ProblemKind::UnknownCode,
                            Fault::ShiftedColumn => ProblemKind::FieldCount,
                            Fault::KanjiInKana => ProblemKind::NotKana,
                        };
                        assert_eq!(kind, expected, "{e}");
                        bad_lines.push(e.line);
                    }
                    Err(ReadError::File(e)) => panic!("{e}"),
                }
            }
            let planted: Vec<u64> = written.faults.iter().map(|(l, _)| *l).collect();
            assert_eq!(bad_lines, planted);
        }
    }
}
