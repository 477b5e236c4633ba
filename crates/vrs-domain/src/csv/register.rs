//! The target-person register (接種対象者) CSV.
//!
//! Ten fields in this order, keyed by the 個別宛名番号: ① 個別宛名番号 ② マイナンバー
//! ③ 氏名(姓) ④ 氏名(名) ⑤ 氏名(セイ) ⑥ 氏名(メイ) ⑦ 生年月日 ⑧ 性別 ⑨ 券番号
//! ⑩ 転出/死亡フラグ. Every field but the key may be empty, which means "keep what is
//! stored". A file with a header row may carry only some columns, in any order
//! (names in one file, numbers in another); a file without one has all ten.
//!
//! Start with [`RegisterReader`].

use std::fmt;
use std::io::Read;

use chrono::NaiveDate;

use super::{
    Encoding, FileError, Problem, ProblemKind, ReadError, RowError, Source, field_text, map_header,
};
use crate::date::parse_date;
use crate::ids::{PersonId, VoucherNumber};
use crate::my_number::MyNumber;
use crate::person::{Flag, Sex};

/// The register's columns, in their standard order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegisterField {
    PersonId,
    MyNumber,
    FamilyName,
    GivenName,
    FamilyKana,
    GivenKana,
    BirthDate,
    Sex,
    Voucher,
    Flag,
}

impl RegisterField {
    pub const ALL: [RegisterField; 10] = [
        RegisterField::PersonId,
        RegisterField::MyNumber,
        RegisterField::FamilyName,
        RegisterField::GivenName,
        RegisterField::FamilyKana,
        RegisterField::GivenKana,
        RegisterField::BirthDate,
        RegisterField::Sex,
        RegisterField::Voucher,
        RegisterField::Flag,
    ];

    /// The field's name as the brief writes it.
    pub fn name(self) -> &'static str {
        match self {
            RegisterField::PersonId => "個別宛名番号",
            RegisterField::MyNumber => "マイナンバー",
            RegisterField::FamilyName => "氏名(姓)",
            RegisterField::GivenName => "氏名(名)",
            RegisterField::FamilyKana => "氏名(セイ)",
            RegisterField::GivenKana => "氏名(メイ)",
            RegisterField::BirthDate => "生年月日",
            RegisterField::Sex => "性別",
            RegisterField::Voucher => "券番号",
            RegisterField::Flag => "転出/死亡フラグ",
        }
    }

    /// Header names accepted for the column (after `header_key` normalisation).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            RegisterField::PersonId => &["個別宛名番号", "宛名番号", "person_id"],
            RegisterField::MyNumber => &["マイナンバー", "個人番号", "my_number", "mynumber"],
            RegisterField::FamilyName => &["氏名(姓)", "姓", "family_name"],
            RegisterField::GivenName => &["氏名(名)", "名", "given_name"],
            RegisterField::FamilyKana => &["氏名(セイ)", "セイ", "姓カナ", "family_kana"],
            RegisterField::GivenKana => &["氏名(メイ)", "メイ", "名カナ", "given_kana"],
            RegisterField::BirthDate => &["生年月日", "birth_date"],
            RegisterField::Sex => &["性別", "sex"],
            RegisterField::Voucher => &["券番号", "接種券番号", "voucher"],
            RegisterField::Flag => &["転出/死亡フラグ", "転出死亡フラグ", "フラグ", "flag"],
        }
    }

    fn from_header(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.aliases().contains(&key))
    }
}

impl fmt::Display for RegisterField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One valid register row. `None` means the field was empty: keep what is stored.
#[derive(Debug, PartialEq, Eq)]
pub struct RegisterRow {
    /// The line the row starts on.
    pub line: u64,
    pub person_id: PersonId,
    pub my_number: Option<MyNumber>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub family_kana: Option<String>,
    pub given_kana: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub voucher: Option<VoucherNumber>,
    pub flag: Option<Flag>,
}

/// How to read a register file.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    pub encoding: Encoding,
    /// Birth dates after this day are rejected. `None` skips the check.
    pub today: Option<NaiveDate>,
}

/// Streams [`RegisterRow`]s out of a register CSV.
///
/// ```
/// use vrs_domain::csv::register::{RegisterReader, ReadOptions};
/// // マイナンバー (field 2) left empty: an empty field keeps what is stored.
/// let csv = "1001,,山田,太郎,ヤマダ,タロウ,19800401,1,1234567890,\n";
/// let mut rows = RegisterReader::new(csv.as_bytes(), ReadOptions::default()).unwrap();
/// let row = rows.next().unwrap().unwrap();
/// assert_eq!(row.family_name.as_deref(), Some("山田"));
/// assert!(row.flag.is_none());
/// ```
pub struct RegisterReader<'r> {
    src: Source<'r>,
    columns: Vec<RegisterField>,
    header: bool,
    today: Option<NaiveDate>,
}

impl fmt::Debug for RegisterReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterReader")
            .field("encoding", &self.src.encoding())
            .field("columns", &self.columns)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<'r> RegisterReader<'r> {
    /// Opens a register file: detects the encoding and a header row.
    pub fn new(input: impl Read + 'r, opts: ReadOptions) -> Result<Self, FileError> {
        let mut src = Source::open(input, opts.encoding)?;
        let header = src.header(
            |k| RegisterField::from_header(k).is_some(),
            |rec, line| {
                map_header(
                    rec,
                    line,
                    RegisterField::from_header,
                    RegisterField::name,
                    &[RegisterField::PersonId],
                    STANDARD_ORDER,
                )
            },
        )?;
        Ok(RegisterReader {
            src,
            header: header.is_some(),
            columns: header.unwrap_or_else(|| RegisterField::ALL.to_vec()),
            today: opts.today,
        })
    }

    /// The encoding the file was read in.
    pub fn encoding(&self) -> Encoding {
        self.src.encoding()
    }

    pub fn has_header(&self) -> bool {
        self.header
    }

    /// The file's columns, in file order.
    pub fn columns(&self) -> &[RegisterField] {
        &self.columns
    }

    fn row(
        src: &Source<'_>,
        line: u64,
        columns: &[RegisterField],
        today: Option<NaiveDate>,
    ) -> Result<RegisterRow, RowError> {
        let rec = src.record();
        let enc = src.encoding();
        let mut problems = Vec::new();
        if !src.fits(columns.len()) {
            problems.push(Problem::shifted(
                rec.len(),
                columns.len(),
                "a comma inside a name splits it in two: quote the field (\"…\") or remove the comma; check the file has one column per field".into(),
            ));
            return Err(RowError::new(line, problems));
        }

        let mut person_id: Option<PersonId> = None;
        let mut row = Partial::default();
        for (i, (&field, raw)) in columns.iter().zip(rec.iter()).enumerate() {
            let column = i + 1;
            let name = field.name();
            let text = match field_text(raw, enc, column, name) {
                Ok(t) => t,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            if text.is_empty() {
                if field == RegisterField::PersonId {
                    problems.push(Problem::missing(
                        column,
                        name,
                        "every row needs its 個別宛名番号: fill it in, or delete the row",
                    ));
                }
                continue;
            }
            let result: Result<(), Problem> = match field {
                RegisterField::PersonId => text
                    .parse()
                    .map(|v| person_id = Some(v))
                    .map_err(|e| Problem::from_id(column, name, Some(text), &e)),
                // A マイナンバー's digits are never repeated in a message.
                RegisterField::MyNumber => text
                    .parse()
                    .map(|v| row.my_number = Some(v))
                    .map_err(|e| Problem::from_id(column, name, None, &e)),
                RegisterField::FamilyName => {
                    name_field(text, column, name).map(|v| row.family_name = Some(v))
                }
                RegisterField::GivenName => {
                    name_field(text, column, name).map(|v| row.given_name = Some(v))
                }
                RegisterField::FamilyKana => {
                    kana_field(text, column, name).map(|v| row.family_kana = Some(v))
                }
                RegisterField::GivenKana => {
                    kana_field(text, column, name).map(|v| row.given_kana = Some(v))
                }
                RegisterField::BirthDate => {
                    birth_date(text, column, today).map(|v| row.birth_date = Some(v))
                }
                RegisterField::Sex => text.parse().map(|v| row.sex = Some(v)).map_err(|e| {
                    Problem::from_id(column, name, Some(text), &e)
                        .with_fix("use 1 (男) or 2 (女), or leave the field empty")
                }),
                RegisterField::Voucher => text
                    .parse()
                    .map(|v| row.voucher = Some(v))
                    .map_err(|e| Problem::from_id(column, name, Some(text), &e)),
                RegisterField::Flag => text.parse().map(|v| row.flag = Some(v)).map_err(|e| {
                    Problem::from_id(column, name, Some(text), &e).with_fix(
                        "use 1 (転出), 2 (死亡), 3 (その他削除) or 9 (取り消し), or leave the field empty",
                    )
                }),
            };
            if let Err(p) = result {
                problems.push(p);
            }
        }
        if let (Some(id), Some(my)) = (&person_id, &row.my_number)
            && id.as_str().as_bytes() == my.expose_for_vault()
        {
            problems.push(Problem {
                column: columns
                    .iter()
                    .position(|f| *f == RegisterField::PersonId)
                    .map(|i| i + 1),
                field: RegisterField::PersonId.name(),
                kind: ProblemKind::Format,
                message: "is the same number as the マイナンバー".into(),
                fix: "the 個別宛名番号 column holds the マイナンバー: check the column order"
                    .into(),
            });
        }
        match person_id {
            Some(person_id) if problems.is_empty() => Ok(RegisterRow {
                line,
                person_id,
                my_number: row.my_number,
                family_name: row.family_name,
                given_name: row.given_name,
                family_kana: row.family_kana,
                given_kana: row.given_kana,
                birth_date: row.birth_date,
                sex: row.sex,
                voucher: row.voucher,
                flag: row.flag,
            }),
            _ => Err(RowError::new(line, problems).with_key(person_id.map(|p| p.to_string()))),
        }
    }
}

/// The fields of a row while it is being read.
#[derive(Default)]
struct Partial {
    my_number: Option<MyNumber>,
    family_name: Option<String>,
    given_name: Option<String>,
    family_kana: Option<String>,
    given_kana: Option<String>,
    birth_date: Option<NaiveDate>,
    sex: Option<Sex>,
    voucher: Option<VoucherNumber>,
    flag: Option<Flag>,
}

impl Iterator for RegisterReader<'_> {
    type Item = Result<RegisterRow, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Self {
            src,
            columns,
            today,
            ..
        } = self;
        src.next_row(|src, line| Self::row(src, line, columns, *today))
    }
}

const STANDARD_ORDER: &str = "個別宛名番号, マイナンバー, 氏名(姓), 氏名(名), 氏名(セイ), 氏名(メイ), 生年月日, 性別, 券番号, 転出/死亡フラグ";

const MAX_NAME_CHARS: usize = 50;

fn name_field(text: &str, column: usize, field: &'static str) -> Result<String, Problem> {
    // A character is at most four bytes: count characters only when it could matter.
    let n = if text.len() > MAX_NAME_CHARS {
        text.chars().count()
    } else {
        0
    };
    if n > MAX_NAME_CHARS {
        return Err(Problem {
            column: Some(column),
            field,
            kind: ProblemKind::TooLong,
            message: format!("{n} characters, at most {MAX_NAME_CHARS}"),
            fix: "check that two fields were not merged".into(),
        });
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(Problem {
            column: Some(column),
            field,
            kind: ProblemKind::Format,
            message: format!("contains the control character U+{:04X}", c as u32),
            fix: "remove it".into(),
        });
    }
    if text
        .chars()
        .all(|c| c.is_ascii_digit() || ('０'..='９').contains(&c) || "/-.".contains(c))
    {
        return Err(Problem {
            column: Some(column),
            field,
            kind: ProblemKind::Format,
            message: format!("{text:?} is a number, not a name"),
            fix: "the columns look shifted: check they are in the standard order".into(),
        });
    }
    Ok(text.to_owned())
}

/// Half-width katakana (U+FF66–U+FF9D) to full-width, in code-point order.
const HALF_TO_FULL: &str = "ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";

fn kana_field(text: &str, column: usize, field: &'static str) -> Result<String, Problem> {
    // Most readings are already full-width katakana: take them as they are.
    if text.len() <= MAX_NAME_CHARS * 3
        && text
            .chars()
            .all(|c| ('\u{30A1}'..='\u{30FE}').contains(&c) || c == '\u{3000}')
    {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let k = match c {
            // Hiragana folds to katakana.
            '\u{3041}'..='\u{3096}' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            '\u{FF66}'..='\u{FF9D}' => HALF_TO_FULL
                .chars()
                .nth((c as u32 - 0xFF66) as usize)
                .unwrap_or(c),
            // Half-width voiced marks combine with the kana before them.
            '\u{FF9E}' | '\u{FF9F}' => {
                let Some(prev) = out.pop() else {
                    return Err(not_kana(text, c, column, field));
                };
                let plus = if c == '\u{FF9E}' { 1 } else { 2 };
                let voiced = match (prev, plus) {
                    ('ウ', 1) => 'ヴ',
                    // Voiced kana follow their base: カ→ガ is +1, ハ→パ is +2.
                    (p, 1) if "カキクケコサシスセソタチツテトハヒフヘホ".contains(p) => {
                        char::from_u32(p as u32 + 1).unwrap_or(p)
                    }
                    (p, 2) if "ハヒフヘホ".contains(p) => {
                        char::from_u32(p as u32 + 2).unwrap_or(p)
                    }
                    _ => return Err(not_kana(text, c, column, field)),
                };
                out.push(voiced);
                continue;
            }
            ' ' | '\u{3000}' => '\u{3000}',
            _ => c,
        };
        if !(('\u{30A1}'..='\u{30FE}').contains(&k) || k == '\u{3000}') {
            return Err(not_kana(text, c, column, field));
        }
        out.push(k);
    }
    let n = out.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(Problem {
            column: Some(column),
            field,
            kind: ProblemKind::TooLong,
            message: format!("{n} characters, at most {MAX_NAME_CHARS}"),
            fix: "check that two fields were not merged".into(),
        });
    }
    Ok(out)
}

fn not_kana(text: &str, c: char, column: usize, field: &'static str) -> Problem {
    Problem {
        column: Some(column),
        field,
        kind: ProblemKind::NotKana,
        message: format!("{text:?} has {c:?}, which is not katakana"),
        fix: "write the reading in katakana; if this is a kanji name, the columns are shifted"
            .into(),
    }
}

fn birth_date(text: &str, column: usize, today: Option<NaiveDate>) -> Result<NaiveDate, Problem> {
    const FIELD: &str = "生年月日";
    let d = parse_date(text).map_err(|e| Problem::from_date(column, FIELD, &e))?;
    let earliest = NaiveDate::from_ymd_opt(1868, 1, 1).unwrap_or(NaiveDate::MIN);
    if d < earliest || today.is_some_and(|t| d > t) {
        return Err(Problem {
            column: Some(column),
            field: FIELD,
            kind: ProblemKind::BadDate,
            message: format!("{d} cannot be a living person's date of birth"),
            fix: "check the year and the era".into(),
        });
    }
    Ok(d)
}

/// Writes typed rows back out, for the round-trip tests. It is not compiled into any
/// build, so nothing can write a stored マイナンバー out through it.
#[cfg(test)]
mod write {
    use std::io::Write;

    use super::{RegisterField, RegisterRow};
    use crate::csv::{EncodedWriter, OutputEncoding, WriteError};
    use crate::date::format_date;

    pub struct RegisterWriter<W: Write> {
        inner: EncodedWriter<W>,
    }

    impl<W: Write> std::fmt::Debug for RegisterWriter<W> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("RegisterWriter")
        }
    }

    impl<W: Write> RegisterWriter<W> {
        pub fn new(out: W, encoding: OutputEncoding, header: bool) -> Result<Self, WriteError> {
            let mut inner = EncodedWriter::new(out, encoding)?;
            if header {
                let names = RegisterField::ALL.map(RegisterField::name);
                inner.write(&names, &names)?;
            }
            Ok(RegisterWriter { inner })
        }

        pub fn write(&mut self, row: &RegisterRow) -> Result<(), WriteError> {
            let my_number = row
                .my_number
                .as_ref()
                .map(|m| String::from_utf8_lossy(m.expose_for_vault()).into_owned())
                .unwrap_or_default();
            let fields = [
                row.person_id.as_str().to_owned(),
                my_number,
                row.family_name.clone().unwrap_or_default(),
                row.given_name.clone().unwrap_or_default(),
                row.family_kana.clone().unwrap_or_default(),
                row.given_kana.clone().unwrap_or_default(),
                row.birth_date.map(format_date).unwrap_or_default(),
                row.sex.map(|s| s.to_string()).unwrap_or_default(),
                row.voucher.map(|v| v.to_string()).unwrap_or_default(),
                row.flag.map(|f| f.to_string()).unwrap_or_default(),
            ];
            let refs: [&str; 10] = std::array::from_fn(|i| fields[i].as_str());
            self.inner
                .write(&refs, &RegisterField::ALL.map(RegisterField::name))
        }

        pub fn finish(self) -> Result<W, WriteError> {
            self.inner.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::write::RegisterWriter;
    use super::*;
    use crate::csv::FileError;
    use crate::csv::OutputEncoding;
    use proptest::prelude::*;

    fn read_all(bytes: &[u8]) -> Vec<Result<RegisterRow, RowError>> {
        RegisterReader::new(bytes, ReadOptions::default())
            .unwrap()
            .map(|r| match r {
                Ok(row) => Ok(row),
                Err(ReadError::Row(e)) => Err(e),
                Err(ReadError::File(e)) => panic!("{e}"),
            })
            .collect()
    }

    /// The sample マイナンバー of the tests (1234567890 1 with its check digit), made
    /// here rather than written out.
    fn sample_number() -> String {
        let n = MyNumber::from_first_eleven([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]).unwrap();
        String::from_utf8(n.expose_for_vault().to_vec()).unwrap()
    }

    fn good() -> String {
        format!(
            "1001,{},山田,太郎,ヤマダ,タロウ,19800401,1,1234567890,\r\n",
            sample_number()
        )
    }

    #[test]
    fn a_full_row_reads_every_field() {
        let rows = read_all(good().as_bytes());
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.line, 1);
        assert_eq!(row.person_id.as_str(), "1001");
        assert_eq!(
            row.my_number.as_ref().unwrap().expose_for_vault(),
            sample_number().as_bytes()
        );
        assert_eq!(row.given_kana.as_deref(), Some("タロウ"));
        assert_eq!(row.birth_date, NaiveDate::from_ymd_opt(1980, 4, 1));
        assert_eq!(row.sex, Some(Sex::Male));
        assert_eq!(row.voucher.unwrap().to_string(), "1234567890");
        assert_eq!(row.flag, None);
    }

    #[test]
    fn empty_fields_mean_keep() {
        let rows = read_all(b"1001,,,,,,,,,2\n");
        let row = rows[0].as_ref().unwrap();
        assert!(row.my_number.is_none() && row.family_name.is_none() && row.voucher.is_none());
        assert_eq!(row.flag, Some(Flag::Deceased));
    }

    #[test]
    fn bom_header_and_cp932_all_read_the_same_row() {
        let header = "個別宛名番号,マイナンバー,氏名(姓),氏名(名),氏名(セイ),氏名(メイ),生年月日,性別,券番号,転出/死亡フラグ\r\n";
        let good = good();
        let plain = read_all(good.as_bytes());
        let with_bom = read_all(format!("\u{FEFF}{good}").as_bytes());
        let with_header = read_all(format!("{header}{good}").as_bytes());
        let text = format!("{header}{good}");
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
        let cp932 = read_all(&sjis);
        let strip = |v: &Vec<Result<RegisterRow, RowError>>| {
            let r = v[0].as_ref().unwrap();
            (
                r.person_id.clone(),
                r.family_name.clone(),
                r.family_kana.clone(),
                r.birth_date,
            )
        };
        assert_eq!(strip(&plain), strip(&with_bom));
        assert_eq!(strip(&plain), strip(&with_header));
        assert_eq!(strip(&plain), strip(&cp932));
        // With a header the data row is on line 2.
        assert_eq!(with_header[0].as_ref().unwrap().line, 2);
        let r = RegisterReader::new(&sjis[..], ReadOptions::default()).unwrap();
        assert_eq!(r.encoding(), Encoding::Cp932);
        assert!(r.has_header());
    }

    #[test]
    fn a_header_with_some_columns_maps_them_by_name() {
        let csv = "券番号,個別宛名番号\n1234567890,1001\n";
        let rows = read_all(csv.as_bytes());
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.person_id.as_str(), "1001");
        assert_eq!(row.voucher.unwrap().to_string(), "1234567890");
        assert!(row.family_name.is_none());
    }

    #[test]
    fn a_header_without_the_key_or_with_an_unknown_column_is_refused() {
        let e = RegisterReader::new("券番号,氏名(姓)\n".as_bytes(), ReadOptions::default())
            .unwrap_err();
        assert!(e.to_string().contains("no 個別宛名番号 column"), "{e}");
        let e = RegisterReader::new("個別宛名番号,住所\n".as_bytes(), ReadOptions::default())
            .unwrap_err();
        assert!(e.to_string().contains("\"住所\""), "{e}");
    }

    #[test]
    fn wrong_my_number_check_digit_names_line_field_and_fix_without_the_digits() {
        // The sample number with its check digit (8) turned into a wrong one (3).
        let wrong = format!("{}3", &sample_number()[..11]);
        let csv = format!("{}1002,{wrong},,,,,,,,\n", good());
        let rows = read_all(csv.as_bytes());
        let e = rows[1].as_ref().unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.problems[0].column, Some(2));
        assert_eq!(e.problems[0].kind, ProblemKind::CheckDigit);
        let msg = e.to_string();
        assert!(
            msg.starts_with("line 2: field 2 (マイナンバー): check digit is 3, expected 8"),
            "{msg}"
        );
        assert!(!msg.contains("12345678901"));
    }

    #[test]
    fn missing_person_id_is_reported() {
        let rows = read_all(b",,,,,,,,,\n");
        let e = rows[0].as_ref().unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::Missing);
        assert_eq!(e.problems[0].field, "個別宛名番号");
    }

    #[test]
    fn impossible_date_and_flag_outside_list_are_reported() {
        let rows = read_all("1001,,,,,,20210230,,,\n1002,,,,,,,,,4\n".as_bytes());
        let e = rows[0].as_ref().unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::BadDate);
        assert!(e.to_string().contains("2021-02-30 does not exist"));
        let e = rows[1].as_ref().unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::UnknownCode);
        assert_eq!(e.problems[0].column, Some(10));
    }

    #[test]
    fn future_birth_date_is_rejected_when_today_is_given() {
        let opts = ReadOptions {
            today: NaiveDate::from_ymd_opt(2021, 4, 1),
            ..Default::default()
        };
        let mut r = RegisterReader::new("1001,,,,,,20210402,,,\n".as_bytes(), opts).unwrap();
        assert!(matches!(r.next(), Some(Err(ReadError::Row(_)))));
    }

    #[test]
    fn shifted_column_is_reported_as_a_field_count() {
        // A comma inside the family name pushes every field one to the right.
        let rows = read_all(
            format!(
                "1001,{},山田,太,郎,ヤマダ,タロウ,19800401,1,1234567890,\n",
                sample_number()
            )
            .as_bytes(),
        );
        let e = rows[0].as_ref().unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::FieldCount);
        assert!(e.looks_shifted());
        assert!(e.to_string().contains("11 fields, expected 10"));
    }

    #[test]
    fn shifted_by_a_missing_column_is_caught_by_field_checks_too() {
        // The マイナンバー column is missing, and an empty field fills the end.
        let rows = read_all("1001,山田,太郎,ヤマダ,タロウ,19800401,1,1234567890,,\n".as_bytes());
        let e = rows[0].as_ref().unwrap_err();
        assert!(e.looks_shifted(), "{e}");
    }

    #[test]
    fn kana_is_normalised_and_kanji_in_a_kana_field_is_refused() {
        let rows = read_all("1001,,,,ﾔﾏﾀﾞ,たろう,,,,\n1002,,,,山田,,,,,\n".as_bytes());
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.family_kana.as_deref(), Some("ヤマダ"));
        assert_eq!(r.given_kana.as_deref(), Some("タロウ"));
        let e = rows[1].as_ref().unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::NotKana);
    }

    #[test]
    fn invalid_utf8_after_the_sniffed_block_is_a_row_error_not_a_panic() {
        let mut bytes = Vec::new();
        for i in 0..7000 {
            bytes.extend_from_slice(format!("{},,,,,,,,,\n", 1000 + i).as_bytes());
        }
        bytes.extend_from_slice(b"9999,,\x8e\x52,,,,,,,\n");
        let rows = read_all(&bytes);
        let e = rows.last().unwrap().as_ref().unwrap_err();
        assert_eq!(e.problems[0].kind, ProblemKind::Encoding);
        assert!(e.problems[0].fix.contains("cp932"));
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_counted() {
        let rows = read_all(b"1001,,,,,,,,,\n\n1002,,,,,,,,,\n");
        assert_eq!(rows[1].as_ref().unwrap().line, 3);
    }

    #[test]
    fn line_numbers_count_crlf_blank_lines_and_quoted_newlines() {
        let csv = "1001,,,,,,,,,\r\n\r\n1002,,\"山\n田\",,,,,,,\r\n1003,,,,,,,,,\r\n";
        let rows = read_all(csv.as_bytes());
        assert_eq!(rows[0].as_ref().unwrap().line, 1);
        // The quoted newline is a name with a control character in it: still line 3.
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
        assert_eq!(rows[2].as_ref().unwrap().line, 5);
    }

    #[test]
    fn a_my_number_in_any_other_column_is_never_repeated_in_the_error() {
        let my = sample_number();
        let my = my.as_str();
        for col in [0usize, 2, 3, 4, 5, 6, 7, 8, 9] {
            let mut fields = [""; 10];
            fields[0] = "1001";
            fields[col] = my;
            let rows = read_all(format!("{}\n", fields.join(",")).as_bytes());
            if let Err(e) = &rows[0] {
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains("12345678901"), "column {col}: {shown}");
            }
        }
        // The same number as key and マイナンバー: the key column holds the wrong thing,
        // and the key would store a マイナンバー outside the vault.
        let rows = read_all(format!("{my},{my},,,,,,,,\n").as_bytes());
        let e = rows[0].as_ref().unwrap_err();
        assert_eq!(e.problems[0].field, "個別宛名番号");
        assert!(!e.to_string().contains(my), "{e}");
    }

    #[test]
    fn a_my_number_in_the_key_column_is_masked_in_the_report() {
        // Columns swapped: the key column holds the number, the number column a name.
        let rows = read_all(format!("{},山田,,,,,,,,\n", sample_number()).as_bytes());
        let e = rows[0].as_ref().unwrap_err();
        assert_eq!(e.key.as_deref(), Some("************"));
    }

    #[test]
    fn an_unclosed_quote_stops_the_file_at_the_line_it_opens() {
        let mut csv = String::from("1001,,,,,,,,,\n1002,,\"山田,,,,,,,\n");
        for i in 0..200 {
            csv.push_str(&format!("{},,,,,,,,,\n", 2000 + i));
        }
        let mut r = RegisterReader::new(csv.as_bytes(), ReadOptions::default()).unwrap();
        assert!(matches!(r.next(), Some(Ok(_))));
        match r.next() {
            Some(Err(ReadError::File(FileError::Record { line, message, .. }))) => {
                assert_eq!(line, 2);
                assert!(message.contains("never closed"));
            }
            other => panic!("{other:?}"),
        }
        assert!(r.next().is_none());
    }

    #[test]
    fn blank_lines_ctrl_z_and_lone_cr_endings_are_handled() {
        let rows = read_all(b"1001,,,,,,,,,\r   \r1002,,,,,,,,,\r\x1a");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].as_ref().unwrap().line, 3);
    }

    #[test]
    fn a_first_row_with_a_bad_key_is_a_bad_row_not_a_header() {
        let rows = read_all(b"A123,,,,,,,,,\n1002,,,,,,,,,\n");
        assert_eq!(
            rows[0].as_ref().unwrap_err().problems[0].kind,
            ProblemKind::Format
        );
        assert!(rows[1].is_ok());
    }

    #[test]
    fn spreadsheet_trailing_empty_columns_are_accepted_with_a_header() {
        let csv = "個別宛名番号,券番号,,\n1001,1234567890,,\n1002,1234567891\n1003,1234567892,x,\n";
        let rows = read_all(csv.as_bytes());
        assert!(rows[0].is_ok() && rows[1].is_ok());
        assert_eq!(
            rows[2].as_ref().unwrap_err().problems[0].kind,
            ProblemKind::FieldCount
        );
    }

    #[test]
    fn an_empty_file_has_no_rows() {
        assert!(read_all(b"").is_empty());
        assert!(read_all(b"\xEF\xBB\xBF").is_empty());
    }

    fn kana() -> impl Strategy<Value = String> {
        "[ア-ン]{1,8}"
    }
    fn kanji() -> impl Strategy<Value = String> {
        // Common kanji that CP932 holds (not every CJK ideograph does).
        prop::collection::vec(
            prop::sample::select(
                "山田佐藤鈴木高橋田中伊渡辺小林加中村太郎花子健一美和"
                    .chars()
                    .collect::<Vec<_>>(),
            ),
            1..5,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    prop_compose! {
        fn any_row()(
            id in "[0-9]{1,15}",
            my in prop::option::of(prop::array::uniform11(0u8..10)),
            fam in prop::option::of(kanji()), giv in prop::option::of(kanji()),
            fk in prop::option::of(kana()), gk in prop::option::of(kana()),
            days in prop::option::of(0i64..50_000),
            sex in prop::option::of(prop::sample::select(vec![Sex::Male, Sex::Female, Sex::NotKnown, Sex::NotApplicable])),
            voucher in prop::option::of(0u64..10_000_000_000),
            flag in prop::option::of(prop::sample::select(vec![Flag::MovedOut, Flag::Deceased, Flag::OtherRemoval, Flag::Cancel])),
        ) -> RegisterRow {
            RegisterRow {
                line: 0,
                person_id: id.parse().unwrap(),
                my_number: my.and_then(MyNumber::from_first_eleven),
                family_name: fam, given_name: giv, family_kana: fk, given_kana: gk,
                birth_date: days.map(|d| NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(d)),
                sex,
                voucher: voucher.and_then(VoucherNumber::new),
                flag,
            }
        }
    }

    proptest! {
        #[test]
        fn rows_round_trip_through_every_encoding(
            rows in prop::collection::vec(any_row(), 1..20),
            enc in prop::sample::select(vec![OutputEncoding::Utf8, OutputEncoding::Utf8Bom, OutputEncoding::Cp932]),
            header in any::<bool>(),
        ) {
            let mut w = RegisterWriter::new(Vec::new(), enc, header).unwrap();
            for r in &rows { w.write(r).unwrap(); }
            let bytes = w.finish().unwrap();
            let back = read_all(&bytes);
            prop_assert_eq!(back.len(), rows.len());
            for (i, (a, b)) in rows.iter().zip(back).enumerate() {
                let b = b.unwrap();
                prop_assert_eq!(b.line, i as u64 + 1 + u64::from(header));
                prop_assert_eq!(&RegisterRow { line: b.line, ..clone_row(a) }, &b);
            }
        }

        #[test]
        fn reader_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(r) = RegisterReader::new(&bytes[..], ReadOptions::default()) {
                for _ in r {}
            }
        }

        #[test]
        fn reader_never_panics_on_csv_like_text(s in "([0-9,\"\\n]|[ア-ン]|[一-龠]|\\PC){0,200}") {
            if let Ok(r) = RegisterReader::new(s.as_bytes(), ReadOptions::default()) {
                for _ in r {}
            }
        }
    }

    fn clone_row(r: &RegisterRow) -> RegisterRow {
        RegisterRow {
            line: r.line,
            person_id: r.person_id.clone(),
            my_number: r.my_number.as_ref().map(|m| {
                std::str::from_utf8(m.expose_for_vault())
                    .unwrap()
                    .parse()
                    .unwrap()
            }),
            family_name: r.family_name.clone(),
            given_name: r.given_name.clone(),
            family_kana: r.family_kana.clone(),
            given_kana: r.given_kana.clone(),
            birth_date: r.birth_date,
            sex: r.sex,
            voucher: r.voucher,
            flag: r.flag,
        }
    }
}
