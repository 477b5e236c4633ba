//! The lot master as CSV: the operator's list of vaccine lots for the whole country
//! (in 2021 it came from the national distribution system, V-SYS).
//!
//! Columns, in this order: ワクチンメーカー (vaccine) · ロット番号 (lot) · 有効期限
//! (expiry) · GTIN. The header is optional; the GTIN may be empty. UTF-8 or CP932.

use std::fmt;
use std::io::Read;

use chrono::NaiveDate;

use super::{
    Encoding, FileError, Problem, ReadError, RowError, Source, lot_shape, map_header, row_error,
    row_texts,
};
use crate::date::parse_date;
use crate::gs1::Gtin;
use crate::lot::{Lot, Vaccine};

/// The lot file's columns, in their standard order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LotField {
    Vaccine,
    Lot,
    Expiry,
    Gtin,
}

impl LotField {
    pub const ALL: [LotField; 4] = [
        LotField::Vaccine,
        LotField::Lot,
        LotField::Expiry,
        LotField::Gtin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LotField::Vaccine => "ワクチンメーカー",
            LotField::Lot => "ロット番号",
            LotField::Expiry => "有効期限",
            LotField::Gtin => "GTIN",
        }
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            LotField::Vaccine => &["ワクチンメーカー", "メーカー", "ワクチン", "vaccine"],
            LotField::Lot => &["ロット番号", "ロット", "lot"],
            LotField::Expiry => &["有効期限", "使用期限", "期限", "expiry"],
            LotField::Gtin => &["gtin", "商品コード"],
        }
    }

    fn from_header(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.aliases().contains(&key))
    }

    const REQUIRED: [LotField; 3] = [LotField::Vaccine, LotField::Lot, LotField::Expiry];
}

impl fmt::Display for LotField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const STANDARD_ORDER: &str =
    "ワクチンメーカー (vaccine), ロット番号 (lot), 有効期限 (expiry), GTIN";

/// One lot of the master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LotRow {
    /// The line the row starts on.
    pub line: u64,
    pub vaccine: Vaccine,
    pub lot: Lot,
    pub expiry: NaiveDate,
    pub gtin: Option<Gtin>,
}

/// Streams [`LotRow`]s out of a lot-master CSV.
pub struct LotReader<'r> {
    src: Source<'r>,
    columns: Vec<LotField>,
}

impl fmt::Debug for LotReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LotReader")
            .field("encoding", &self.src.encoding())
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl<'r> LotReader<'r> {
    pub fn new(input: impl Read + 'r, encoding: Encoding) -> Result<Self, FileError> {
        let mut src = Source::open(input, encoding)?;
        let header = src.header(
            |k| LotField::from_header(k).is_some(),
            |rec, line| {
                map_header(
                    rec,
                    line,
                    LotField::from_header,
                    LotField::name,
                    &LotField::REQUIRED,
                    STANDARD_ORDER,
                )
            },
        )?;
        Ok(LotReader {
            src,
            columns: header.unwrap_or_else(|| LotField::ALL.to_vec()),
        })
    }

    pub fn encoding(&self) -> Encoding {
        self.src.encoding()
    }

    fn row(src: &Source<'_>, line: u64, columns: &[LotField]) -> Result<LotRow, RowError> {
        let rec = src.record();
        // Without a header, a file of three columns (no GTIN) is accepted too.
        let columns = if rec.len() == 3 && columns.len() == 4 {
            &columns[..3]
        } else {
            columns
        };
        let mut problems = Vec::new();
        let (mut vaccine, mut lot, mut expiry, mut gtin) = (None, None, None, None);
        for (column, field, text) in row_texts(
            src,
            line,
            columns,
            (LotField::name, &LotField::REQUIRED, STANDARD_ORDER),
            &mut problems,
        )? {
            let name = field.name();
            let id = |e| Problem::from_id(column, name, Some(text), &e);
            let r = match field {
                LotField::Vaccine => text.parse().map(|v| vaccine = Some(v)).map_err(id),
                LotField::Lot => text.parse().map(|v| lot = Some(v)).map_err(id),
                LotField::Expiry => parse_date(text)
                    .map(|d| expiry = Some(d))
                    .map_err(|e| Problem::from_date(column, name, &e)),
                LotField::Gtin => text.parse().map(|g| gtin = Some(g)).map_err(id),
            };
            if let Err(p) = r {
                problems.push(p);
            }
        }
        problems.extend(lot_shape(
            vaccine,
            lot.as_ref(),
            columns,
            LotField::Lot,
            LotField::Lot.name(),
        ));
        match (vaccine, lot, expiry) {
            (Some(vaccine), Some(lot), Some(expiry)) if problems.is_empty() => Ok(LotRow {
                line,
                vaccine,
                lot,
                expiry,
                gtin,
            }),
            _ => Err(row_error(line, problems)),
        }
    }
}

impl Iterator for LotReader<'_> {
    type Item = Result<LotRow, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Self { src, columns } = self;
        src.next_row(|src, line| Self::row(src, line, columns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Vec<Result<LotRow, String>> {
        LotReader::new(bytes, Encoding::Auto)
            .unwrap()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn reads_with_and_without_header_gtin_optional() {
        let rows = read(
            "ワクチンメーカー,ロット番号,有効期限,GTIN\r\nファイザー,FA4597,2021-08-31,04987222637817\r\nモデルナ,3000012A,20211130,\r\n"
                .as_bytes(),
        );
        let r0 = rows[0].as_ref().unwrap();
        assert_eq!(
            (r0.line, r0.vaccine, r0.lot.as_str()),
            (2, Vaccine::Pfizer, "FA4597")
        );
        assert_eq!(r0.expiry.to_string(), "2021-08-31");
        assert_eq!(r0.gtin.unwrap().to_string(), "04987222637817");
        // Moderna's lot is six digits and a letter or digit: 3000012A is not one.
        assert!(rows[1].as_ref().unwrap_err().contains("line 3"), "{rows:?}");

        let rows = read(b"pfizer,FA4597,2021/08/31\n");
        let r = rows[0].as_ref().unwrap();
        assert_eq!((r.line, r.gtin), (1, None));
    }

    #[test]
    fn a_bad_row_names_its_line_field_and_fix_and_the_rest_are_read() {
        let rows =
            read(b"vaccine,lot,expiry\npfizer,FA4597,2021-02-30\npfizer,FA4598,2021-08-31\n");
        let e = rows[0].as_ref().unwrap_err();
        assert!(e.contains("line 2") && e.contains("有効期限"), "{e}");
        assert!(rows[1].is_ok());
        let rows = read(b"pfizer,FA4597,2021-08-31,04987222637818\n");
        assert!(rows[0].as_ref().unwrap_err().contains("GTIN"), "{rows:?}");
    }

    #[test]
    fn reads_cp932() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("ファイザー,FA4597,令和3年8月31日\r\n");
        let rows = read(&bytes);
        assert_eq!(rows[0].as_ref().unwrap().expiry.to_string(), "2021-08-31");
    }
}
