//! Dose records as CSV: the export for the municipal vaccination ledger
//! (予防接種台帳) and the upload of paper records.
//!
//! Columns, in this order: 登録日時 (YYYYMMDDHHMMSS) · 接種日 (YYYYMMDD) · 券番号 ·
//! 接種会場市町村コード · 接種会場名 · 医師名 · ワクチンメーカー · ロット番号 · 接種回数.
//! The first eight are the ledger's columns from domain.md; the export adds 接種回数
//! at the end because ledger systems file a dose by its number. On upload a file may
//! have the eight columns only (then the server takes the person's next dose), and
//! the 登録日時 and 医師名 may be empty (the server stamps the time).

use std::fmt;
use std::io::{Read, Write};

use chrono::{NaiveDate, NaiveDateTime};

use super::{
    EncodedWriter, Encoding, FileError, OutputEncoding, Problem, ProblemKind, ReadError, RowError,
    Source, WriteError, lot_shape, map_header, row_error, row_texts,
};
use crate::date::{format_date, format_timestamp, parse_date, parse_timestamp};
use crate::ids::{DoseNumber, MunicipalityCode, VoucherNumber};
use crate::lot::{Lot, Vaccine};

/// The ledger's columns, in their standard order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LedgerField {
    RegisteredAt,
    VaccinatedOn,
    Voucher,
    SiteMunicipality,
    SiteName,
    DoctorName,
    Vaccine,
    Lot,
    DoseNumber,
}

impl LedgerField {
    pub const ALL: [LedgerField; 9] = [
        LedgerField::RegisteredAt,
        LedgerField::VaccinatedOn,
        LedgerField::Voucher,
        LedgerField::SiteMunicipality,
        LedgerField::SiteName,
        LedgerField::DoctorName,
        LedgerField::Vaccine,
        LedgerField::Lot,
        LedgerField::DoseNumber,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LedgerField::RegisteredAt => "登録日時",
            LedgerField::VaccinatedOn => "接種日",
            LedgerField::Voucher => "券番号",
            LedgerField::SiteMunicipality => "接種会場市町村コード",
            LedgerField::SiteName => "接種会場名",
            LedgerField::DoctorName => "医師名",
            LedgerField::Vaccine => "ワクチンメーカー",
            LedgerField::Lot => "ロット番号",
            LedgerField::DoseNumber => "接種回数",
        }
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            LedgerField::RegisteredAt => &["登録日時", "registered_at"],
            LedgerField::VaccinatedOn => &["接種日", "接種年月日", "vaccinated_on"],
            LedgerField::Voucher => &["券番号", "接種券番号", "voucher"],
            LedgerField::SiteMunicipality => &[
                "接種会場市町村コード",
                "接種会場の市町村コード",
                "市町村コード",
                "site_municipality",
            ],
            LedgerField::SiteName => &["接種会場名", "接種会場", "site_name"],
            LedgerField::DoctorName => &["医師名", "doctor_name"],
            LedgerField::Vaccine => &["ワクチンメーカー", "メーカー", "vaccine"],
            LedgerField::Lot => &["ロット番号", "ロット", "lot"],
            LedgerField::DoseNumber => &["接種回数", "回数", "dose_number"],
        }
    }

    fn from_header(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.aliases().contains(&key))
    }

    /// Columns an uploaded file must have.
    const REQUIRED: [LedgerField; 6] = [
        LedgerField::VaccinatedOn,
        LedgerField::Voucher,
        LedgerField::SiteMunicipality,
        LedgerField::SiteName,
        LedgerField::Vaccine,
        LedgerField::Lot,
    ];
}

impl fmt::Display for LedgerField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const STANDARD_ORDER: &str = "登録日時, 接種日, 券番号, 接種会場市町村コード, 接種会場名, 医師名, ワクチンメーカー, ロット番号, 接種回数";

/// One dose as the ledger has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    /// The line the row starts on when read from a file; 0 when made in memory.
    pub line: u64,
    /// When the record reached the system; empty on a paper upload.
    pub registered_at: Option<NaiveDateTime>,
    pub vaccinated_on: NaiveDate,
    pub voucher: VoucherNumber,
    pub site_municipality: MunicipalityCode,
    pub site_name: String,
    pub doctor_name: Option<String>,
    pub vaccine: Vaccine,
    pub lot: Lot,
    /// Absent in an eight-column upload: the person's next dose.
    pub dose_number: Option<DoseNumber>,
}

/// How to read a dose-record file.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    pub encoding: Encoding,
    /// Vaccination dates after this day are rejected. `None` skips the check.
    pub today: Option<NaiveDate>,
}

/// Streams [`LedgerRow`]s out of a paper-record (or exported ledger) CSV.
pub struct LedgerReader<'r> {
    src: Source<'r>,
    columns: Vec<LedgerField>,
    header: bool,
    today: Option<NaiveDate>,
}

impl fmt::Debug for LedgerReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerReader")
            .field("encoding", &self.src.encoding())
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl<'r> LedgerReader<'r> {
    pub fn new(input: impl Read + 'r, opts: ReadOptions) -> Result<Self, FileError> {
        let mut src = Source::open(input, opts.encoding)?;
        let header = src.header(
            |k| LedgerField::from_header(k).is_some(),
            |rec, line| {
                map_header(
                    rec,
                    line,
                    LedgerField::from_header,
                    LedgerField::name,
                    &LedgerField::REQUIRED,
                    STANDARD_ORDER,
                )
            },
        )?;
        Ok(LedgerReader {
            src,
            header: header.is_some(),
            columns: header.unwrap_or_else(|| LedgerField::ALL.to_vec()),
            today: opts.today,
        })
    }

    pub fn encoding(&self) -> Encoding {
        self.src.encoding()
    }

    fn row(
        src: &Source<'_>,
        line: u64,
        columns: &[LedgerField],
        header: bool,
        today: Option<NaiveDate>,
    ) -> Result<LedgerRow, RowError> {
        let rec = src.record();
        // Without a header, the domain.md layout (eight columns) is accepted too.
        let columns = if !header && rec.len() == 8 {
            &columns[..8]
        } else {
            columns
        };
        let mut problems = Vec::new();
        let mut registered_at = None;
        let mut vaccinated_on = None;
        let mut voucher = None;
        let mut site_municipality = None;
        let mut site_name = None;
        let mut doctor_name = None;
        let mut vaccine = None;
        let mut lot = None;
        let mut dose_number = None;
        for (column, field, text) in row_texts(
            src,
            line,
            columns,
            (LedgerField::name, &LedgerField::REQUIRED, STANDARD_ORDER),
            &mut problems,
        )? {
            let name = field.name();
            let id = |e| Problem::from_id(column, name, Some(text), &e);
            let r = match field {
                LedgerField::RegisteredAt => parse_timestamp(text)
                    .map(|t| registered_at = Some(t))
                    .ok_or_else(|| Problem {
                        column: Some(column),
                        field: name,
                        kind: ProblemKind::Format,
                        message: format!("{text:?} is not a time in the form YYYYMMDDHHMMSS"),
                        fix: "write e.g. 20210601093000, or leave it empty".into(),
                    }),
                LedgerField::VaccinatedOn => match parse_date(text) {
                    Ok(d) if today.is_some_and(|t| d > t) => Err(Problem {
                        column: Some(column),
                        field: name,
                        kind: ProblemKind::BadDate,
                        message: format!("{d} is in the future"),
                        fix: "check the date of vaccination".into(),
                    }),
                    Ok(d) => {
                        vaccinated_on = Some(d);
                        Ok(())
                    }
                    Err(e) => Err(Problem::from_date(column, name, &e)),
                },
                LedgerField::Voucher => text.parse().map(|v| voucher = Some(v)).map_err(id),
                LedgerField::SiteMunicipality => text
                    .parse()
                    .map(|v| site_municipality = Some(v))
                    .map_err(id),
                LedgerField::SiteName => {
                    site_name = Some(text.to_owned());
                    Ok(())
                }
                LedgerField::DoctorName => {
                    doctor_name = Some(text.to_owned());
                    Ok(())
                }
                LedgerField::Vaccine => text
                    .parse::<Vaccine>()
                    .map(|v| vaccine = Some(v))
                    .map_err(id),
                LedgerField::Lot => text.parse().map(|v| lot = Some(v)).map_err(id),
                LedgerField::DoseNumber => text
                    .parse::<DoseNumber>()
                    .map(|v| dose_number = Some(v))
                    .map_err(id),
            };
            if let Err(p) = r {
                problems.push(p);
            }
        }
        // The lot's shape depends on the maker, so it is checked once both are read.
        problems.extend(lot_shape(
            vaccine,
            lot.as_ref(),
            columns,
            LedgerField::Lot,
            LedgerField::Lot.name(),
        ));
        match (
            vaccinated_on,
            voucher,
            site_municipality,
            site_name,
            vaccine,
            lot,
            dose_number,
        ) {
            (
                Some(vaccinated_on),
                Some(voucher),
                Some(site_municipality),
                Some(site_name),
                Some(vaccine),
                Some(lot),
                dose_number,
            ) if problems.is_empty() => Ok(LedgerRow {
                line,
                registered_at,
                vaccinated_on,
                voucher,
                site_municipality,
                site_name,
                doctor_name,
                vaccine,
                lot,
                dose_number,
            }),
            _ => Err(row_error(line, problems)),
        }
    }
}

impl Iterator for LedgerReader<'_> {
    type Item = Result<LedgerRow, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Self {
            src,
            columns,
            header,
            today,
        } = self;
        src.next_row(|src, line| Self::row(src, line, columns, *header, *today))
    }
}

/// Writes the ledger export: a header row, then one row per dose.
pub struct LedgerWriter<W: Write> {
    inner: EncodedWriter<W>,
}

impl<W: Write> fmt::Debug for LedgerWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LedgerWriter")
    }
}

impl<W: Write> LedgerWriter<W> {
    pub fn new(out: W, encoding: OutputEncoding) -> Result<Self, WriteError> {
        let mut inner = EncodedWriter::new(out, encoding)?;
        let names = LedgerField::ALL.map(LedgerField::name);
        inner.write(&names, &names)?;
        Ok(LedgerWriter { inner })
    }

    pub fn write(&mut self, row: &LedgerRow) -> Result<(), WriteError> {
        let registered = row.registered_at.map(format_timestamp).unwrap_or_default();
        let date = format_date(row.vaccinated_on);
        let voucher = row.voucher.to_string();
        let site = row.site_municipality.to_string();
        let dose = row.dose_number.map(|d| d.to_string()).unwrap_or_default();
        let fields = [
            registered.as_str(),
            date.as_str(),
            voucher.as_str(),
            site.as_str(),
            row.site_name.as_str(),
            row.doctor_name.as_deref().unwrap_or(""),
            row.vaccine.maker_ja(),
            row.lot.as_str(),
            dose.as_str(),
        ];
        self.inner
            .write(&fields, &LedgerField::ALL.map(LedgerField::name))
    }

    pub fn finish(self) -> Result<W, WriteError> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(bytes: &[u8]) -> Vec<Result<LedgerRow, RowError>> {
        LedgerReader::new(bytes, ReadOptions::default())
            .unwrap()
            .map(|r| match r {
                Ok(row) => Ok(row),
                Err(ReadError::Row(e)) => Err(e),
                Err(ReadError::File(e)) => panic!("{e}"),
            })
            .collect()
    }

    #[test]
    fn a_paper_record_without_registration_time_or_doctor_reads() {
        // Seven fields: a column is missing.
        let rows =
            read_all("20210601,1234567890,131016,千代田区役所,ファイザー,FA4597,1\n".as_bytes());
        assert_eq!(
            rows[0].as_ref().unwrap_err().problems[0].kind,
            ProblemKind::FieldCount
        );
        // The eight columns of domain.md: no dose number, which the server infers.
        let rows = read_all(
            "20210601093000,20210601,1234567890,131016,千代田区役所,山田 太郎,ファイザー,FA4597\n"
                .as_bytes(),
        );
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.dose_number, None);
        assert_eq!(r.doctor_name.as_deref(), Some("山田 太郎"));
        let rows =
            read_all(",20210601,1234567890,131016,千代田区役所,,ファイザー,FA4597,1\n".as_bytes());
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.registered_at, None);
        assert_eq!(r.doctor_name, None);
        assert_eq!(r.vaccine, Vaccine::Pfizer);
        assert_eq!(r.dose_number, DoseNumber::new(1));
    }

    #[test]
    fn lot_that_does_not_fit_the_maker_is_named() {
        let rows = read_all(",20210601,1234567890,131016,会場,,ファイザー,3004667,1\n".as_bytes());
        let e = rows[0].as_ref().unwrap_err();
        assert_eq!(e.problems[0].column, Some(8));
        assert!(e.to_string().contains("FA4597"), "{e}");
    }

    #[test]
    fn missing_required_fields_and_future_date() {
        let opts = ReadOptions {
            today: NaiveDate::from_ymd_opt(2021, 6, 1),
            ..Default::default()
        };
        let mut r = LedgerReader::new(
            ",20210602,,131016,会場,,モデルナ,3004667,2\n".as_bytes(),
            opts,
        )
        .unwrap();
        let Some(Err(ReadError::Row(e))) = r.next() else {
            panic!("expected a row error")
        };
        let kinds: Vec<_> = e.problems.iter().map(|p| (p.column, p.kind)).collect();
        assert_eq!(
            kinds,
            [
                (Some(2), ProblemKind::BadDate),
                (Some(3), ProblemKind::Missing)
            ]
        );
    }

    #[test]
    fn header_may_reorder_and_omit_optional_columns() {
        let csv = "接種回数,接種日,券番号,接種会場市町村コード,接種会場名,ワクチンメーカー,ロット番号\n2,2021/06/22,1234567890,131016,会場,武田/モデルナ,3004667\n";
        let rows = read_all(csv.as_bytes());
        let r = rows[0].as_ref().unwrap();
        assert_eq!(r.dose_number, DoseNumber::new(2));
        assert_eq!(r.vaccine, Vaccine::Moderna);
        let e =
            LedgerReader::new("接種日,券番号\n".as_bytes(), ReadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("接種会場市町村コード"), "{e}");
    }

    #[test]
    fn cp932_export_refuses_a_character_it_cannot_hold() {
        let mut w = LedgerWriter::new(Vec::new(), OutputEncoding::Cp932).unwrap();
        let row = LedgerRow {
            line: 0,
            registered_at: None,
            vaccinated_on: NaiveDate::from_ymd_opt(2021, 6, 1).unwrap(),
            voucher: VoucherNumber::new(1).unwrap(),
            site_municipality: "131016".parse().unwrap(),
            site_name: "𠮷野会場".into(),
            doctor_name: None,
            vaccine: Vaccine::Pfizer,
            lot: "FA4597".parse().unwrap(),
            dose_number: Some(DoseNumber::FIRST),
        };
        let e = w.write(&row).unwrap_err();
        assert!(e.to_string().contains("接種会場名"), "{e}");
    }

    prop_compose! {
        fn any_row()(
            secs in 1_600_000_000i64..1_900_000_000,
            days in 0i64..3000,
            voucher in 0u64..10_000_000_000,
            prefix in 1000u32..48_000,
            site in prop::sample::select(vec!["千代田区役所", "集団接種会場A", "山田クリニック, 本院", "\"中央\"会場"]),
            doctor in prop::option::of(prop::sample::select(vec!["山田 太郎", "佐藤花子"])),
            pfizer in any::<bool>(),
            lot_n in 0u32..10_000,
            dose in prop::option::of(1u8..10),
        ) -> LedgerRow {
            let (vaccine, lot) = if pfizer {
                (Vaccine::Pfizer, format!("FA{lot_n:04}"))
            } else {
                (Vaccine::Moderna, format!("300{lot_n:04}"))
            };
            LedgerRow {
                line: 0,
                registered_at: chrono::DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc()),
                vaccinated_on: NaiveDate::from_ymd_opt(2021, 2, 17).unwrap() + chrono::Duration::days(days),
                voucher: VoucherNumber::new(voucher).unwrap(),
                site_municipality: MunicipalityCode::from_prefix(prefix).unwrap(),
                site_name: site.into(),
                doctor_name: doctor.map(Into::into),
                vaccine,
                lot: lot.parse().unwrap(),
                dose_number: dose.and_then(DoseNumber::new),
            }
        }
    }

    proptest! {
        #[test]
        fn ledger_rows_round_trip(
            rows in prop::collection::vec(any_row(), 1..20),
            enc in prop::sample::select(vec![OutputEncoding::Utf8, OutputEncoding::Utf8Bom, OutputEncoding::Cp932]),
        ) {
            let mut w = LedgerWriter::new(Vec::new(), enc).unwrap();
            for r in &rows { w.write(r).unwrap(); }
            let bytes = w.finish().unwrap();
            let back = read_all(&bytes);
            prop_assert_eq!(back.len(), rows.len());
            for (i, (a, b)) in rows.iter().zip(back).enumerate() {
                let b = b.unwrap();
                prop_assert_eq!(b.line, i as u64 + 2);
                prop_assert_eq!(&LedgerRow { line: b.line, ..a.clone() }, &b);
            }
        }

        #[test]
        fn reader_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(r) = LedgerReader::new(&bytes[..], ReadOptions::default()) {
                for _ in r {}
            }
        }
    }
}
