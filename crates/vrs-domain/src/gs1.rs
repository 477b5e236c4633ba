//! GS1 element strings, as read from the GS1-128, GS1 DataMatrix and GS1 DataBar
//! barcodes on vaccine packaging: (01) GTIN, (17) expiry, (10) lot, (21) serial.
//!
//! [`parse`] takes what a decoder gives: the raw string with GS (0x1D) as the FNC1
//! separator, optionally behind a symbology identifier (`]C1`, `]d2`, `]e0`, `]Q3`),
//! or the human-readable form `(01)04987…(17)231231(10)FA4597`. Other AIs are
//! stepped over using their lengths from the GS1 General Specifications.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, string_serde};
use crate::lot::Lot;

const GS: char = '\u{1d}';

/// Why an element string could not be read. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("empty GS1 element string")]
    Empty,
    #[error("unknown GS1 application identifier at position {position}")]
    UnknownAi { position: usize },
    #[error("AI ({ai}): expected {expected} characters, got {got}")]
    Length {
        ai: String,
        expected: String,
        got: usize,
    },
    #[error("AI ({ai}): must be digits")]
    NotNumeric { ai: String },
    #[error("AI ({ai}): {value} is not a date (YYMMDD)")]
    BadDate { ai: String, value: String },
    #[error("AI ({ai}) appears twice with different values")]
    Conflict { ai: String },
    #[error("GTIN: {0}")]
    Gtin(IdError),
    #[error("lot: {0}")]
    Lot(IdError),
    #[error("unbalanced parentheses in the human-readable form")]
    Parentheses,
}

/// A 14-digit GTIN (shorter GTINs are padded with leading zeros), check digit verified.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gtin([u8; 14]);

impl Gtin {
    /// GS1 mod-10 check digit: weights 3 and 1 alternating from the right.
    pub fn check_digit(first_13: &[u8; 13]) -> u8 {
        let sum: u32 = first_13
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| u32::from(d) * if i % 2 == 0 { 3 } else { 1 })
            .sum();
        ((10 - sum % 10) % 10) as u8
    }
}

impl FromStr for Gtin {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "GTIN";
        let s = s.trim();
        if ![8, 12, 13, 14].contains(&s.len()) {
            return Err(IdError::Length {
                what: WHAT,
                expected: "8, 12, 13 or 14",
                got: s.chars().count(),
            });
        }
        let mut d = [0u8; 14];
        let pad = 14 - s.len();
        for (i, c) in s.chars().enumerate() {
            let v = c.to_digit(10).ok_or(IdError::NotDigit {
                what: WHAT,
                found: c,
                position: i + 1,
            })?;
            d[pad + i] = v as u8;
        }
        let mut first = [0u8; 13];
        first.copy_from_slice(&d[..13]);
        let expected = Self::check_digit(&first);
        if d[13] != expected {
            return Err(IdError::CheckDigit {
                what: WHAT,
                got: d[13],
                expected,
            });
        }
        Ok(Gtin(d))
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Gtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gtin({self})")
    }
}
string_serde!(Gtin);

/// What a GS1 element string says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElementString {
    pub gtin: Option<Gtin>,
    /// (17) expiry; a day of 00 means the last day of that month.
    pub expiry: Option<NaiveDate>,
    pub lot: Option<Lot>,
    pub serial: Option<String>,
    /// Every other AI, in order, as (AI, value).
    pub others: Vec<(String, String)>,
}

/// A vaccine label: what the dose record needs from the package barcode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaccineLabel {
    pub gtin: Gtin,
    pub lot: Lot,
    pub expiry: NaiveDate,
}

impl ElementString {
    /// The label, when GTIN, lot and expiry are all present.
    pub fn label(&self) -> Option<VaccineLabel> {
        Some(VaccineLabel {
            gtin: self.gtin?,
            lot: self.lot.clone()?,
            expiry: self.expiry?,
        })
    }
}

#[derive(Clone, Copy)]
enum Len {
    Fixed(usize),
    Var(usize),
}

/// The AI at the start of `s` and its data length, per the GS1 General Specifications.
fn ai_spec(s: &str) -> Option<(usize, Len)> {
    use Len::*;
    let b = s.as_bytes();
    if b.len() < 2 || !b[..2].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let two = &s[..2];
    let spec2 = match two {
        "00" => Some(Fixed(18)),
        "01" | "02" => Some(Fixed(14)),
        "10" | "21" | "22" => Some(Var(20)),
        "11" | "12" | "13" | "15" | "16" | "17" => Some(Fixed(6)),
        "20" => Some(Fixed(2)),
        "30" | "37" => Some(Var(8)),
        "90" => Some(Var(30)),
        "91" | "92" | "93" | "94" | "95" | "96" | "97" | "98" | "99" => Some(Var(90)),
        _ => None,
    };
    if let Some(l) = spec2 {
        return Some((2, l));
    }
    if b.len() < 3 || !b[2].is_ascii_digit() {
        return None;
    }
    let three = &s[..3];
    let spec3 = match three {
        "235" => Some(Var(28)),
        "240" | "241" | "250" | "251" | "253" | "400" | "401" | "403" => Some(Var(30)),
        "242" => Some(Var(6)),
        "243" | "254" | "420" => Some(Var(20)),
        "255" => Some(Var(25)),
        "402" => Some(Fixed(17)),
        "410" | "411" | "412" | "413" | "414" | "415" | "416" | "417" => Some(Fixed(13)),
        "421" => Some(Var(12)),
        "422" | "424" | "426" => Some(Fixed(3)),
        "423" | "425" => Some(Var(15)),
        "427" => Some(Var(3)),
        _ => None,
    };
    if let Some(l) = spec3 {
        return Some((3, l));
    }
    if b.len() < 4 || !b[3].is_ascii_digit() {
        return None;
    }
    match two {
        // Trade measures: 4-digit AI, six digits of data.
        "31" | "32" | "33" | "34" | "35" | "36" => Some((4, Fixed(6))),
        "70" | "71" | "72" | "80" | "81" | "82" => Some((4, Var(90))),
        _ => None,
    }
}

fn expiry_date(ai: &str, v: &str) -> Result<NaiveDate, Gs1Error> {
    let bad = || Gs1Error::BadDate {
        ai: ai.to_owned(),
        value: v.to_owned(),
    };
    let n: u32 = v.parse().map_err(|_| bad())?;
    // Vaccines expire within this century; GS1's sliding window gives the same answer
    // for any year from 2000 to 2049.
    let year = 2000 + (n / 10_000) as i32;
    let month = (n / 100) % 100;
    let day = n % 100;
    if day == 0 {
        let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .ok_or_else(bad)?;
        return next.pred_opt().ok_or_else(bad);
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(bad)
}

fn set_once<T: PartialEq>(slot: &mut Option<T>, v: T, ai: &str) -> Result<(), Gs1Error> {
    match slot {
        Some(old) if *old != v => Err(Gs1Error::Conflict { ai: ai.to_owned() }),
        _ => {
            *slot = Some(v);
            Ok(())
        }
    }
}

fn store(out: &mut ElementString, ai: &str, len: Len, v: &str) -> Result<(), Gs1Error> {
    let got = v.chars().count();
    match len {
        Len::Fixed(n) if got != n => {
            return Err(Gs1Error::Length {
                ai: ai.to_owned(),
                expected: n.to_string(),
                got,
            });
        }
        Len::Var(max) if got == 0 || got > max => {
            return Err(Gs1Error::Length {
                ai: ai.to_owned(),
                expected: format!("1 to {max}"),
                got,
            });
        }
        Len::Fixed(_) if !v.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(Gs1Error::NotNumeric { ai: ai.to_owned() });
        }
        _ => {}
    }
    match ai {
        "01" => set_once(&mut out.gtin, v.parse().map_err(Gs1Error::Gtin)?, ai),
        "17" => set_once(&mut out.expiry, expiry_date(ai, v)?, ai),
        "10" => set_once(&mut out.lot, v.parse().map_err(Gs1Error::Lot)?, ai),
        "21" => set_once(&mut out.serial, v.to_owned(), ai),
        _ => {
            out.others.push((ai.to_owned(), v.to_owned()));
            Ok(())
        }
    }
}

/// Reads a GS1 element string in any of the forms in the module docs.
pub fn parse(input: &str) -> Result<ElementString, Gs1Error> {
    let mut s = input.trim_matches(|c: char| c.is_whitespace() && c != GS);
    for sym in ["]C1", "]d2", "]e0", "]Q3", "]J1"] {
        if let Some(rest) = s.strip_prefix(sym) {
            s = rest;
            break;
        }
    }
    let s = s.trim_start_matches(GS);
    if s.is_empty() {
        return Err(Gs1Error::Empty);
    }
    let mut out = ElementString::default();
    if s.starts_with('(') {
        parse_human_readable(s, &mut out)?;
    } else {
        parse_raw(s, &mut out)?;
    }
    Ok(out)
}

fn parse_raw(s: &str, out: &mut ElementString) -> Result<(), Gs1Error> {
    let total = s.chars().count();
    let mut rest = s;
    while !rest.is_empty() {
        let position = total - rest.chars().count() + 1;
        let (ai_len, len) = ai_spec(rest).ok_or(Gs1Error::UnknownAi { position })?;
        let ai = &rest[..ai_len];
        let data = &rest[ai_len..];
        let (value, next) = match len {
            Len::Fixed(n) => {
                let end = data.char_indices().nth(n).map_or(data.len(), |(i, _)| i);
                let next = &data[end..];
                (&data[..end], next.strip_prefix(GS).unwrap_or(next))
            }
            Len::Var(_) => match data.find(GS) {
                Some(i) => (&data[..i], &data[i + 1..]),
                None => (data, ""),
            },
        };
        store(out, ai, len, value)?;
        rest = next.trim_start_matches(GS);
    }
    Ok(())
}

fn parse_human_readable(s: &str, out: &mut ElementString) -> Result<(), Gs1Error> {
    let total = s.chars().count();
    let mut rest = s;
    while !rest.is_empty() {
        let position = total - rest.chars().count() + 1;
        let inner = rest.strip_prefix('(').ok_or(Gs1Error::Parentheses)?;
        let close = inner.find(')').ok_or(Gs1Error::Parentheses)?;
        let ai = &inner[..close];
        let (_, len) = ai_spec(ai)
            .filter(|(l, _)| *l == ai.len())
            .ok_or(Gs1Error::UnknownAi { position })?;
        let data = &inner[close + 1..];
        let end = data.find('(').unwrap_or(data.len());
        let value = data[..end].trim();
        store(out, ai, len, value)?;
        rest = data[end..].trim_start();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A GTIN as a vaccine pack prints it: 14 digits, check digit last.
    const SAMPLE_GTIN: &str = "04987222637138";

    fn gtin13(prefix12: &str) -> String {
        let mut d = [0u8; 13];
        for (i, c) in format!("0{prefix12}").bytes().enumerate() {
            d[i] = c - b'0';
        }
        format!("0{prefix12}{}", Gtin::check_digit(&d))
    }

    #[test]
    fn human_readable_form_with_gtin_expiry_lot() {
        let g = SAMPLE_GTIN;
        let e = parse(&format!("(01){g}(17)231231(10)FA4597")).unwrap();
        assert_eq!(e.gtin.unwrap().to_string(), g);
        assert_eq!(e.expiry, NaiveDate::from_ymd_opt(2023, 12, 31));
        assert_eq!(e.lot.as_ref().unwrap().as_str(), "FA4597");
        assert!(e.label().is_some());
    }

    #[test]
    fn raw_form_with_gs_separators_and_symbology_id() {
        let g = SAMPLE_GTIN;
        let raw = format!("]d2\u{1d}01{g}17240600103004667\u{1d}21SER123");
        let e = parse(&raw).unwrap();
        assert_eq!(e.gtin.unwrap().to_string(), g);
        // Day 00 means the last day of the month.
        assert_eq!(e.expiry, NaiveDate::from_ymd_opt(2024, 6, 30));
        assert_eq!(e.lot.unwrap().as_str(), "3004667");
        assert_eq!(e.serial.as_deref(), Some("SER123"));
    }

    #[test]
    fn other_ais_are_stepped_over() {
        let g = SAMPLE_GTIN;
        let raw = format!("01{g}3103000250\u{1d}10AB12\u{1d}240XYZ");
        let e = parse(&raw).unwrap();
        assert_eq!(e.lot.unwrap().as_str(), "AB12");
        assert_eq!(
            e.others,
            vec![
                ("3103".into(), "000250".into()),
                ("240".into(), "XYZ".into())
            ]
        );
    }

    #[test]
    fn bad_gtin_check_digit_bad_date_and_unknown_ai_are_errors() {
        let g = SAMPLE_GTIN;
        let mut wrong = g.as_bytes().to_vec();
        wrong[13] = b'0' + (wrong[13] - b'0' + 1) % 10;
        let wrong = String::from_utf8(wrong).unwrap();
        assert!(matches!(
            parse(&format!("01{wrong}")),
            Err(Gs1Error::Gtin(IdError::CheckDigit { .. }))
        ));
        assert!(matches!(
            parse(&format!("01{g}17231301")),
            Err(Gs1Error::BadDate { .. })
        ));
        assert!(matches!(
            parse("05123"),
            Err(Gs1Error::UnknownAi { position: 1 })
        ));
        assert!(matches!(
            parse(&format!("01{g}1712")),
            Err(Gs1Error::Length { .. })
        ));
        assert!(matches!(parse("(01"), Err(Gs1Error::Parentheses)));
        assert!(matches!(parse(""), Err(Gs1Error::Empty)));
    }

    proptest! {
        #[test]
        fn raw_and_human_readable_round_trip(
            body in "[0-9]{12}", yy in 21u32..50, mm in 1u32..13, dd in 1u32..29,
            lot in "[A-Z0-9]{1,20}", serial in "[A-Z0-9]{1,20}"
        ) {
            let g = gtin13(&body);
            let date = format!("{yy:02}{mm:02}{dd:02}");
            let raw = format!("01{g}17{date}10{lot}\u{1d}21{serial}");
            let hri = format!("(01){g}(17){date}(10){lot}(21){serial}");
            let a = parse(&raw).unwrap();
            let b = parse(&hri).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.lot.as_ref().map(Lot::as_str), Some(lot.as_str()));
            prop_assert_eq!(a.serial.unwrap(), serial);
            prop_assert_eq!(a.expiry, NaiveDate::from_ymd_opt(2000 + yy as i32, mm, dd));
        }

        #[test]
        fn gtin_check_digit_catches_every_single_digit_change(body in "[0-9]{12}", pos in 0usize..14, delta in 1u8..10) {
            let g = gtin13(&body);
            let mut b = g.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(changed.parse::<Gtin>().is_err());
        }

        #[test]
        fn parser_never_panics(s in "[\\x1d()0-9A-Z\\]a-z]{0,60}") {
            let _ = parse(&s);
        }

        #[test]
        fn parser_never_panics_on_any_text(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }
    }
}
