//! CSV codecs for what municipalities upload and download: the target-person
//! register ([`register`]) and dose records for the ledger and paper uploads
//! ([`ledger`]).
//!
//! Both read UTF-8 (with or without a BOM) and CP932/Shift_JIS, with or without a
//! header row, one record at a time: memory stays flat however long the file. A
//! bad row becomes a [`RowError`] that names the line, the field, the value (never
//! a マイナンバー's digits) and the fix; reading goes on with the next row. Only an
//! unreadable file or header stops the reader ([`FileError`]).

pub mod ledger;
pub mod lots;
pub mod register;

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::date::DateError;
use crate::ids::{IdError, digit_value, trim_blank};

/// The text encoding of an input file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 when the file starts with a BOM or its first 64 KiB are valid UTF-8,
    /// CP932 otherwise.
    #[default]
    Auto,
    Utf8,
    /// CP932 (Windows-31J), the Shift_JIS that Japanese office systems write.
    Cp932,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "UTF-8",
            Encoding::Cp932 => "CP932 (Shift_JIS)",
        }
    }
}

impl FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "auto" => Ok(Encoding::Auto),
            "utf8" => Ok(Encoding::Utf8),
            "cp932" | "sjis" | "shiftjis" | "windows31j" | "ms932" => Ok(Encoding::Cp932),
            _ => Err(format!(
                "unknown encoding {s:?}: use auto, utf-8 or cp932 (Shift_JIS)"
            )),
        }
    }
}

/// The text encoding of an output file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputEncoding {
    Utf8,
    /// UTF-8 with a BOM, which Excel needs to show Japanese text correctly.
    #[default]
    Utf8Bom,
    Cp932,
}

impl FromStr for OutputEncoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "utf8" => Ok(OutputEncoding::Utf8),
            "utf8bom" => Ok(OutputEncoding::Utf8Bom),
            "cp932" | "sjis" | "shiftjis" | "windows31j" | "ms932" => Ok(OutputEncoding::Cp932),
            _ => Err(format!(
                "unknown output encoding {s:?}: use utf-8, utf-8-bom or cp932"
            )),
        }
    }
}

/// What is wrong with a field, as a category for summaries.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A required field is empty.
    Missing,
    /// Wrong length, or characters that do not belong.
    Format,
    /// The check digit does not match.
    CheckDigit,
    /// A date that does not exist or cannot be.
    BadDate,
    /// A code outside its list (flag, sex, vaccine maker).
    UnknownCode,
    /// Kana field with characters that are not kana.
    NotKana,
    /// Longer than the field allows.
    TooLong,
    /// Bytes that are not text in the file's encoding.
    Encoding,
    /// The row has more or fewer fields than the file's columns.
    FieldCount,
}

impl ProblemKind {
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Format => "wrong format",
            ProblemKind::CheckDigit => "wrong check digit",
            ProblemKind::BadDate => "impossible date",
            ProblemKind::UnknownCode => "code not in its list",
            ProblemKind::NotKana => "not kana",
            ProblemKind::TooLong => "too long",
            ProblemKind::Encoding => "not valid text",
            ProblemKind::FieldCount => "wrong number of fields (shifted column)",
        }
    }
}

/// One thing wrong with one field of a row.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The column's position in the file, from 1; `None` for the row as a whole.
    pub column: Option<usize>,
    /// The field's name, Japanese first (`マイナンバー`, `生年月日`, …).
    pub field: &'static str,
    pub kind: ProblemKind,
    /// What is wrong, with the bad value unless the field is a secret.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    /// The summary key: field and kind, e.g. "マイナンバー: wrong check digit".
    pub fn reason(&self) -> String {
        format!("{}: {}", self.field, self.kind.label())
    }

    /// A problem from an identifier's parse error. `value` is the text as read; pass
    /// `None` for a secret (the マイナンバー), whose value is never repeated.
    pub(crate) fn from_id(
        column: usize,
        field: &'static str,
        value: Option<&str>,
        e: &IdError,
    ) -> Self {
        let kind = match e {
            IdError::Empty { .. } => ProblemKind::Missing,
            IdError::CheckDigit { .. } => ProblemKind::CheckDigit,
            IdError::Length { .. } | IdError::NotDigit { .. } | IdError::BadChar { .. } => {
                ProblemKind::Format
            }
            IdError::Invalid { .. } => ProblemKind::UnknownCode,
        };
        Problem {
            column: Some(column),
            field,
            kind,
            message: match value {
                Some(v) if !matches!(e, IdError::Invalid { .. }) => {
                    format!("{v:?} {}", e.detail())
                }
                _ => e.detail(),
            },
            fix: e.fix().to_owned(),
        }
    }

    pub(crate) fn from_date(column: usize, field: &'static str, e: &DateError) -> Self {
        Problem {
            column: Some(column),
            field,
            kind: match e {
                DateError::Unrecognised(_) => ProblemKind::Format,
                _ => ProblemKind::BadDate,
            },
            message: e.to_string(),
            fix: e.fix().to_owned(),
        }
    }

    pub(crate) fn with_fix(mut self, fix: &str) -> Self {
        self.fix = fix.to_owned();
        self
    }

    /// A row with more or fewer fields than the file's columns.
    pub(crate) fn shifted(got: usize, expected: usize, fix: String) -> Self {
        Problem {
            column: None,
            field: "row",
            kind: ProblemKind::FieldCount,
            message: format!("{got} fields, expected {expected}: a column is shifted"),
            fix,
        }
    }

    pub(crate) fn missing(column: usize, field: &'static str, why: &str) -> Self {
        Problem {
            column: Some(column),
            field,
            kind: ProblemKind::Missing,
            message: format!("{field} is empty"),
            fix: why.to_owned(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "field {c} ({}): {}", self.field, self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        write!(f, " → {}", self.fix)
    }
}

/// `s` masked when it is (or parses as) a valid マイナンバー, else `s` as it is.
pub fn mask_if_my_number(s: &str) -> String {
    if s.parse::<crate::MyNumber>().is_ok() {
        "*".repeat(s.chars().count())
    } else {
        s.to_owned()
    }
}

/// Masks every run of 11 or more digits (ASCII or full-width) in a message: a
/// マイナンバー in the wrong column must not be repeated back in an error.
pub fn redact_long_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 11 {
            out.extend(std::iter::repeat_n('*', run.chars().count()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if digit_value(c).is_some() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Everything wrong with one row. The row is not used; the rows around it are.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The line the row starts on, counting from 1 (a header is line 1).
    pub line: u64,
    /// The row's key (a register row's 個別宛名番号) when it could be read.
    pub key: Option<String>,
    pub problems: Vec<Problem>,
}

impl RowError {
    /// A row error; every message is passed through [`redact_long_numbers`].
    pub fn new(line: u64, mut problems: Vec<Problem>) -> Self {
        for p in &mut problems {
            if p.message.len() >= 11 {
                p.message = redact_long_numbers(&p.message);
            }
        }
        RowError {
            line,
            key: None,
            problems,
        }
    }

    /// Sets the row's key for the report. A key that is a valid マイナンバー (a file
    /// whose first two columns are swapped) is masked like one.
    pub fn with_key(mut self, key: Option<String>) -> Self {
        self.key = key.map(|k| mask_if_my_number(&k));
        self
    }

    /// Several bad fields, or a wrong field count, usually mean a shifted column.
    pub fn looks_shifted(&self) -> bool {
        self.problems.len() >= 3
            || self
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::FieldCount)
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RowError {}

/// A problem that stops reading the whole file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    #[error("line {line}: header: {message} → {fix}")]
    Header {
        line: u64,
        message: String,
        fix: String,
    },
    #[error("line {line}: {message} → {fix}")]
    Record {
        line: u64,
        message: String,
        fix: String,
    },
}

/// What a reader yields for a row it cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// This row is bad; the reader goes on with the next.
    #[error(transparent)]
    Row(#[from] RowError),
    /// The file cannot be read further; the reader stops.
    #[error(transparent)]
    File(#[from] FileError),
}

/// Could not write a CSV row.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write: {0}")]
    Io(#[from] io::Error),
    #[error(
        "field {field}: {value:?} has a character that CP932 (Shift_JIS) cannot hold → export as UTF-8 instead"
    )]
    Unmappable { field: &'static str, value: String },
}

const SNIFF: usize = 64 * 1024;

fn sniff_utf8(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // A character cut off by the end of the sniffed block is still UTF-8; at the
        // end of a short file it is not.
        Err(e) => e.error_len().is_none() && head.len() == SNIFF,
    }
}

/// One CSV record: its fields' bytes, end to end.
#[derive(Debug, Default)]
pub(crate) struct Record {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
}

impl Record {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.bytes[start..self.ends[i]])
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        (0..self.len).filter_map(|i| self.get(i))
    }
}

/// A CSV record source over decoded text, shared by the readers. It counts physical
/// lines itself (csv_core underneath), so that a row's line number is right with
/// CRLF endings, blank lines and newlines inside quoted fields.
pub(crate) struct Source<'r> {
    input: io::BufReader<Box<dyn Read + 'r>>,
    core: csv_core::Reader,
    rec: Record,
    /// The physical line the read position is on, from 1.
    line: u64,
    /// The last byte read was a CR (so an LF right after it is the same break).
    prev_cr: bool,
    /// Fields in the header row, with any empty ones at its end; 0 without a header.
    header_len: usize,
    encoding: Encoding,
    /// The current record was pushed back and is the next one again.
    pushed_back: Option<u64>,
    done: bool,
}

impl<'r> Source<'r> {
    pub(crate) fn open(mut input: impl Read + 'r, encoding: Encoding) -> io::Result<Self> {
        let mut head = Vec::with_capacity(SNIFF);
        (&mut input).take(SNIFF as u64).read_to_end(&mut head)?;
        let bom = head.starts_with(b"\xEF\xBB\xBF");
        let resolved = match encoding {
            _ if bom => Encoding::Utf8,
            Encoding::Auto if sniff_utf8(&head) => Encoding::Utf8,
            Encoding::Auto => Encoding::Cp932,
            other => other,
        };
        if bom {
            head.drain(..3);
        }
        let joined = io::Cursor::new(head).chain(input);
        let text: Box<dyn Read + 'r> = match resolved {
            Encoding::Cp932 => Box::new(
                encoding_rs_io::DecodeReaderBytesBuilder::new()
                    .encoding(Some(encoding_rs::SHIFT_JIS))
                    .bom_override(false)
                    .build(joined),
            ),
            _ => Box::new(joined),
        };
        Ok(Source {
            input: io::BufReader::with_capacity(256 * 1024, text),
            core: csv_core::Reader::new(),
            rec: Record {
                bytes: vec![0; 1024],
                ends: vec![0; 16],
                len: 0,
            },
            line: 1,
            prev_cr: false,
            header_len: 0,
            encoding: resolved,
            pushed_back: None,
            done: false,
        })
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Reads the next record; returns the line it starts on. After the end or an
    /// error it returns `Ok(None)` for good.
    pub(crate) fn next(&mut self) -> Result<Option<u64>, FileError> {
        if let Some(line) = self.pushed_back.take() {
            return Ok(Some(line));
        }
        if self.done {
            return Ok(None);
        }
        let r = self.read_record();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    /// Reads records until one that is not blank (a line of blanks or a stray
    /// end-of-file mark, Ctrl-Z, is not a row).
    fn read_record(&mut self) -> Result<Option<u64>, FileError> {
        loop {
            let Some(line) = self.read_one()? else {
                return Ok(None);
            };
            let blank = self.rec.len == 1
                && self
                    .rec
                    .get(0)
                    .and_then(|f| std::str::from_utf8(f).ok())
                    .is_some_and(|f| trim_blank(f).trim_matches('\u{1a}').is_empty());
            if !blank {
                return Ok(Some(line));
            }
        }
    }

    fn read_one(&mut self) -> Result<Option<u64>, FileError> {
        use csv_core::ReadRecordResult as R;
        let (mut out, mut nends) = (0usize, 0usize);
        let mut start_line = None;
        loop {
            let buf = self.input.fill_buf()?;
            let (res, nin, nout, nend) =
                self.core
                    .read_record(buf, &mut self.rec.bytes[out..], &mut self.rec.ends[nends..]);
            // Line breaks before the record's first byte are blank lines or the end
            // of the previous record; the record starts on the line after them.
            let mut rest = &buf[..nin];
            if start_line.is_none() {
                match rest.iter().position(|&b| b != b'\n' && b != b'\r') {
                    Some(i) => {
                        self.line += count_breaks(&rest[..i], &mut self.prev_cr);
                        start_line = Some(self.line);
                        rest = &rest[i..];
                    }
                    None => {
                        self.line += count_breaks(rest, &mut self.prev_cr);
                        rest = &[];
                    }
                }
            }
            self.line += count_breaks(rest, &mut self.prev_cr);
            self.input.consume(nin);
            out += nout;
            nends += nend;
            let first = start_line.unwrap_or(self.line);
            // A quote that is never closed would swallow the rest of the file into
            // one record: stop at a size no real row reaches.
            if out > MAX_RECORD_BYTES || self.line - first > MAX_RECORD_LINES {
                return Err(FileError::Record {
                    line: first,
                    message: "a quoted field that starts on this line is never closed".into(),
                    fix: "close the quote (\"…\"), or remove the stray \" character".into(),
                });
            }
            match res {
                R::InputEmpty => {}
                R::OutputFull => {
                    let n = self.rec.bytes.len() * 2;
                    self.rec.bytes.resize(n, 0);
                }
                R::OutputEndsFull => {
                    let n = self.rec.ends.len() * 2;
                    self.rec.ends.resize(n, 0);
                }
                R::Record => {
                    self.rec.len = nends;
                    return Ok(Some(first));
                }
                R::End => return Ok(None),
            }
        }
    }

    /// Makes the current record (which started on `line`) the next one again.
    pub(crate) fn push_back(&mut self, line: u64) {
        self.pushed_back = Some(line);
    }

    /// Reads the first record and, when it is a header, maps it with `map`; a
    /// first record that is data is pushed back. `None` means no header.
    pub(crate) fn header<F>(
        &mut self,
        is_column: impl Fn(&str) -> bool,
        map: impl FnOnce(&Record, u64) -> Result<Vec<F>, FileError>,
    ) -> Result<Option<Vec<F>>, FileError> {
        let Some(line) = self.next()? else {
            return Ok(None);
        };
        if looks_like_header(&self.rec, is_column) {
            self.header_len = self.rec.len;
            return map(&self.rec, line).map(Some);
        }
        self.push_back(line);
        Ok(None)
    }

    /// The next record as a row, for a reader's `Iterator::next`.
    pub(crate) fn next_row<T>(
        &mut self,
        row: impl FnOnce(&Self, u64) -> Result<T, RowError>,
    ) -> Option<Result<T, ReadError>> {
        match self.next() {
            Ok(Some(line)) => Some(row(self, line).map_err(ReadError::Row)),
            Ok(None) => None,
            Err(e) => Some(Err(e.into())),
        }
    }

    pub(crate) fn record(&self) -> &Record {
        &self.rec
    }

    /// Whether the current record has `columns` fields, or more up to the header's
    /// trailing empty columns with those fields empty.
    pub(crate) fn fits(&self, columns: usize) -> bool {
        let n = self.rec.len;
        n == columns
            || (n > columns
                && n <= self.header_len
                && (columns..n).all(|i| {
                    self.rec
                        .get(i)
                        .and_then(|f| std::str::from_utf8(f).ok())
                        .is_some_and(|f| trim_blank(f).is_empty())
                }))
    }
}

/// The longest record accepted, in bytes and in physical lines.
const MAX_RECORD_BYTES: usize = 64 * 1024;
const MAX_RECORD_LINES: u64 = 100;

/// Counts line breaks: LF, CRLF and a lone CR each count once. `prev_cr` carries a
/// CR at the end of one chunk over to the next.
fn count_breaks(b: &[u8], prev_cr: &mut bool) -> u64 {
    if b.is_empty() {
        return 0;
    }
    if !b.contains(&b'\r') {
        let mut n = b.iter().filter(|&&c| c == b'\n').count() as u64;
        if *prev_cr && b[0] == b'\n' {
            n -= 1;
        }
        *prev_cr = false;
        return n;
    }
    let mut n = 0;
    for &c in b {
        match c {
            b'\n' if *prev_cr => *prev_cr = false,
            b'\n' => n += 1,
            b'\r' => {
                n += 1;
                *prev_cr = true;
            }
            _ => *prev_cr = false,
        }
    }
    n
}

/// A field's text, trimmed, or the problem with its bytes.
/// A lot number that is not its maker's shape (checked once both are read), at the
/// lot's column.
pub(crate) fn lot_shape<F: Copy + PartialEq>(
    vaccine: Option<crate::lot::Vaccine>,
    lot: Option<&crate::lot::Lot>,
    columns: &[F],
    lot_field: F,
    name: &'static str,
) -> Option<Problem> {
    let e = vaccine?.check_lot(lot?).err()?;
    let column = columns.iter().position(|f| *f == lot_field).unwrap_or(0) + 1;
    Some(Problem::from_id(column, name, None, &e))
}

/// A bad row's error, its problems in the order of the columns (as a person reads
/// the row).
pub(crate) fn row_error(line: u64, mut problems: Vec<Problem>) -> RowError {
    problems.sort_by_key(|p| p.column);
    RowError::new(line, problems)
}

/// A row's non-empty fields as text, each with its column (from 1) and field; a
/// field that is not text in the file's encoding, or a required one left empty,
/// goes to `problems` instead. A row with more or fewer fields than `columns` is
/// an error at once (`order` names the columns for the fix).
pub(crate) fn row_texts<'a, F: Copy + PartialEq>(
    src: &'a Source<'_>,
    line: u64,
    columns: &[F],
    (name, required, order): (impl Fn(F) -> &'static str, &[F], &str),
    problems: &mut Vec<Problem>,
) -> Result<Vec<(usize, F, &'a str)>, RowError> {
    if !src.fits(columns.len()) {
        return Err(RowError::new(
            line,
            vec![Problem::shifted(
                src.record().len(),
                columns.len(),
                format!("quote fields that contain commas; the columns are {order}"),
            )],
        ));
    }
    let mut out = Vec::with_capacity(columns.len());
    for (i, (&field, raw)) in columns.iter().zip(src.record().iter()).enumerate() {
        let column = i + 1;
        match field_text(raw, src.encoding(), column, name(field)) {
            Err(p) => problems.push(p),
            Ok("") if required.contains(&field) => {
                problems.push(Problem::missing(column, name(field), "fill in the field"));
            }
            Ok("") => {}
            Ok(text) => out.push((column, field, text)),
        }
    }
    Ok(out)
}

pub(crate) fn field_text<'a>(
    raw: &'a [u8],
    encoding: Encoding,
    column: usize,
    field: &'static str,
) -> Result<&'a str, Problem> {
    let bad = || Problem {
        column: Some(column),
        field,
        kind: ProblemKind::Encoding,
        message: format!("bytes that are not valid {} text", encoding.name()),
        fix: match encoding {
            Encoding::Utf8 => {
                "save the file as UTF-8, or if it is Shift_JIS say so (--encoding cp932)".into()
            }
            _ => "save the file as CP932 (Shift_JIS) or UTF-8; check for damaged characters".into(),
        },
    };
    let s = std::str::from_utf8(raw).map_err(|_| bad())?;
    // The CP932 decoder turns undecodable bytes into U+FFFD.
    if encoding == Encoding::Cp932 && s.contains('\u{FFFD}') {
        return Err(bad());
    }
    Ok(trim_blank(s))
}

/// Whether the first record is a header: its first field has no digit in it (a data
/// row's first field is a number, or empty when it is missing) and one of its fields
/// is a known column name. A first row like `A123,…` is then a bad data row, and a
/// header with one unknown name is still a header, whose unknown name is reported.
fn looks_like_header(rec: &Record, is_column: impl Fn(&str) -> bool) -> bool {
    fn text(f: &[u8]) -> Option<&str> {
        std::str::from_utf8(f).ok().map(trim_blank)
    }
    let Some(first) = rec.get(0).and_then(text) else {
        return false;
    };
    !first.chars().any(|c| digit_value(c).is_some())
        && rec
            .iter()
            .filter_map(text)
            .any(|f| is_column(&header_key(f)))
}

/// Normalises a header name for matching: no blanks, ASCII parentheses and slash,
/// lower case.
pub(crate) fn header_key(name: &str) -> String {
    trim_blank(name)
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{3000}' | '\t'))
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '／' => '/',
            '・' => '/',
            _ => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Maps a header record to columns. Every column must be known and appear once, and
/// every one of `required` must be among them. Empty names at the end (spreadsheets
/// write them) are dropped; rows may then carry those empty fields too.
pub(crate) fn map_header<F: Copy + PartialEq>(
    rec: &Record,
    line: u64,
    lookup: impl Fn(&str) -> Option<F>,
    name_of: impl Fn(F) -> &'static str,
    required: &[F],
    known: &str,
) -> Result<Vec<F>, FileError> {
    let mut cols = Vec::with_capacity(rec.len());
    let named = rec.len()
        - rec
            .iter()
            .rev()
            .take_while(|f| std::str::from_utf8(f).is_ok_and(|s| trim_blank(s).is_empty()))
            .count();
    for (i, raw) in rec.iter().take(named).enumerate() {
        let name = String::from_utf8_lossy(raw);
        let Some(f) = lookup(&header_key(&name)) else {
            return Err(FileError::Header {
                line,
                message: redact_long_numbers(&format!(
                    "column {} is named {:?}, which is not a known column",
                    i + 1,
                    trim_blank(&name)
                )),
                fix: format!(
                    "name the columns {known}, or remove the header row to use the standard order"
                ),
            });
        };
        if cols.contains(&f) {
            return Err(FileError::Header {
                line,
                message: format!("column {} ({}) appears twice", i + 1, name_of(f)),
                fix: "keep one column of each".into(),
            });
        }
        cols.push(f);
    }
    if let Some(&missing) = required.iter().find(|f| !cols.contains(f)) {
        return Err(FileError::Header {
            line,
            message: format!("there is no {} column", name_of(missing)),
            fix: format!("every file needs the {} column", name_of(missing)),
        });
    }
    Ok(cols)
}

/// Writes CSV rows in the chosen encoding, CRLF-terminated as Windows tools expect.
pub(crate) struct EncodedWriter<W: Write> {
    out: W,
    line: String,
    encoding: OutputEncoding,
}

impl<W: Write> EncodedWriter<W> {
    pub(crate) fn new(mut out: W, encoding: OutputEncoding) -> Result<Self, WriteError> {
        if encoding == OutputEncoding::Utf8Bom {
            out.write_all(b"\xEF\xBB\xBF")?;
        }
        Ok(EncodedWriter {
            out,
            line: String::with_capacity(256),
            encoding,
        })
    }

    /// Writes one record; `names` labels the fields for error messages.
    pub(crate) fn write(
        &mut self,
        fields: &[&str],
        names: &[&'static str],
    ) -> Result<(), WriteError> {
        self.line.clear();
        for (i, value) in fields.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            // Quote what the reader would otherwise split or trim.
            if value.contains([',', '"', '\r', '\n'])
                || value.starts_with([' ', '\t', '\u{3000}'])
                || value.ends_with([' ', '\t', '\u{3000}'])
            {
                self.line.push('"');
                self.line.push_str(&value.replace('"', "\"\""));
                self.line.push('"');
            } else {
                self.line.push_str(value);
            }
        }
        self.line.push_str("\r\n");
        match self.encoding {
            OutputEncoding::Cp932 => {
                let (encoded, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&self.line);
                if unmappable {
                    let (value, field) = fields
                        .iter()
                        .zip(names.iter().chain(std::iter::repeat(&"?")))
                        .find(|(v, _)| encoding_rs::SHIFT_JIS.encode(v).2)
                        .map_or(("", "?"), |(v, n)| (*v, *n));
                    return Err(WriteError::Unmappable {
                        field,
                        value: value.to_owned(),
                    });
                }
                self.out.write_all(&encoded)?;
            }
            _ => self.out.write_all(self.line.as_bytes())?,
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<W, WriteError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_names_parse() {
        assert_eq!("Shift_JIS".parse::<Encoding>(), Ok(Encoding::Cp932));
        assert_eq!("utf-8".parse::<Encoding>(), Ok(Encoding::Utf8));
        assert!("latin1".parse::<Encoding>().is_err());
        assert_eq!(
            "utf-8-bom".parse::<OutputEncoding>(),
            Ok(OutputEncoding::Utf8Bom)
        );
    }

    #[test]
    fn utf8_cut_at_the_sniff_boundary_is_still_utf8_but_not_at_a_short_end() {
        let mut head = vec![b'a'; SNIFF - 4];
        head.extend_from_slice("山田".as_bytes());
        assert!(sniff_utf8(&head[..SNIFF]));
        assert!(!sniff_utf8(&"山田".as_bytes()[..4]));
        assert!(!sniff_utf8(b"\x8e\x52\x93\x63")); // 山田 in CP932
    }

    #[test]
    fn line_breaks_lf_crlf_and_lone_cr_count_once_even_across_chunks() {
        let mut cr = false;
        assert_eq!(count_breaks(b"a\nb\r\nc\rd", &mut cr), 3);
        assert!(!cr);
        assert_eq!(count_breaks(b"x\r", &mut cr), 1);
        assert!(cr);
        assert_eq!(count_breaks(b"\ny\n", &mut cr), 1);
    }

    #[test]
    fn long_digit_runs_are_masked() {
        // Twelve digits, ASCII and full width, made rather than written out.
        let ascii: String = (0..12).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
        let wide: String = ascii
            .chars()
            .map(|c| char::from_u32(u32::from(c) - u32::from('0') + 0xFF10).unwrap())
            .collect();
        assert_eq!(
            redact_long_numbers(&format!("\"{ascii}\" is not a date; 1980 ok; {wide}")),
            "\"************\" is not a date; 1980 ok; ************"
        );
    }
}
