//! Identifiers that can only be built by validation: municipality code, 券番号,
//! the voucher's OCR line, 個別宛名番号 and the clinic code.
//!
//! Every parser accepts ASCII digits and the full-width digits (０–９) that Japanese
//! office software likes to write, and trims surrounding blanks; nothing else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier. Messages name the identifier and what is
/// wrong; they never repeat a マイナンバー's digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} must be {expected} digits, got {got}")]
    Length {
        what: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{what} must be digits only, found {found:?} at position {position}")]
    NotDigit {
        what: &'static str,
        found: char,
        position: usize,
    },
    #[error("{what} may hold only {allowed}, found {found:?} at position {position}")]
    BadChar {
        what: &'static str,
        allowed: &'static str,
        found: char,
        position: usize,
    },
    #[error("{what}: check digit is {got}, expected {expected}")]
    CheckDigit {
        what: &'static str,
        got: u8,
        expected: u8,
    },
    #[error("{what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

impl IdError {
    /// What is wrong, without naming the identifier (for reports that name the field
    /// already).
    pub fn detail(&self) -> String {
        match self {
            IdError::Empty { .. } => "empty".into(),
            IdError::Length { expected, got, .. } => {
                format!("must be {expected} digits, got {got}")
            }
            IdError::NotDigit {
                found, position, ..
            } => format!("must be digits only, found {found:?} at position {position}"),
            IdError::BadChar {
                allowed,
                found,
                position,
                ..
            } => format!("may hold only {allowed}, found {found:?} at position {position}"),
            IdError::CheckDigit { got, expected, .. } => {
                format!("check digit is {got}, expected {expected}")
            }
            IdError::Invalid { detail, .. } => detail.clone(),
        }
    }

    /// A short hint a person can act on.
    pub fn fix(&self) -> &'static str {
        match self {
            IdError::Empty { .. } => "fill in the field",
            IdError::Length { .. } => {
                "check for a missing or extra digit, or a column shifted by one"
            }
            IdError::NotDigit { .. } => "use digits only, with no spaces, hyphens or letters",
            IdError::BadChar { .. } => "remove the other characters (spaces, symbols)",
            IdError::CheckDigit { .. } => {
                "the number is mistyped or misread: check it against the source document"
            }
            IdError::Invalid { .. } => "check the value against the source document",
        }
    }
}

/// Trims ASCII blanks and the ideographic space (U+3000) from both ends.
pub(crate) fn trim_blank(s: &str) -> &str {
    s.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\u{3000}')
}

/// Maps '0'–'9' and '０'–'９' to their value.
pub(crate) fn digit_value(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '０'..='９' => Some((c as u32 - '０' as u32) as u8),
        _ => None,
    }
}

/// Parses exactly `N` digits (after trimming) into their values.
pub(crate) fn fixed_digits<const N: usize>(
    s: &str,
    what: &'static str,
) -> Result<[u8; N], IdError> {
    let s = trim_blank(s);
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    let mut out = [0u8; N];
    let mut n = 0usize;
    for (position, c) in s.chars().enumerate() {
        let Some(d) = digit_value(c) else {
            return Err(IdError::NotDigit {
                what,
                found: c,
                position: position + 1,
            });
        };
        if n < N {
            out[n] = d;
        }
        n += 1;
    }
    if n != N {
        return Err(IdError::Length {
            what,
            expected: digits_word(N),
            got: n,
        });
    }
    Ok(out)
}

fn digits_word(n: usize) -> &'static str {
    match n {
        1 => "1",
        6 => "6",
        10 => "10",
        12 => "12",
        14 => "14",
        18 => "18",
        _ => "the right number of",
    }
}

fn number_of(digits: &[u8]) -> u64 {
    digits.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d))
}

macro_rules! string_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_serde;

/// 市町村コード: a 6-digit JIS X 0402 code whose last digit is a check digit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MunicipalityCode(u32);

impl MunicipalityCode {
    const WHAT: &'static str = "市町村コード (municipality code)";

    /// The check digit for the first five digits: the last digit of
    /// `11 - (d1*6 + d2*5 + d3*4 + d4*3 + d5*2) mod 11`.
    pub fn check_digit(first_five: [u8; 5]) -> u8 {
        let sum: u32 = first_five
            .iter()
            .zip([6u32, 5, 4, 3, 2])
            .map(|(&d, w)| u32::from(d) * w)
            .sum();
        ((11 - sum % 11) % 10) as u8
    }

    /// Builds the code from its first five digits, adding the check digit. The first
    /// two are the prefecture, so `prefix` must be in 01000..=47999.
    pub fn from_prefix(prefix: u32) -> Option<Self> {
        if !(1_000..=47_999).contains(&prefix) {
            return None;
        }
        let mut d = [0u8; 5];
        let mut p = prefix;
        for slot in d.iter_mut().rev() {
            *slot = (p % 10) as u8;
            p /= 10;
        }
        Some(MunicipalityCode(
            prefix * 10 + u32::from(Self::check_digit(d)),
        ))
    }

    fn from_digits(d: [u8; 6]) -> Result<Self, IdError> {
        let expected = Self::check_digit([d[0], d[1], d[2], d[3], d[4]]);
        if d[5] != expected {
            return Err(IdError::CheckDigit {
                what: Self::WHAT,
                got: d[5],
                expected,
            });
        }
        // The first two digits are the prefecture, 01..=47.
        let pref = d[0] * 10 + d[1];
        if !(1..=47).contains(&pref) {
            return Err(IdError::Invalid {
                what: Self::WHAT,
                detail: format!("prefecture part {pref:02} is not 01 to 47"),
            });
        }
        Ok(MunicipalityCode(number_of(&d) as u32))
    }

    /// The prefecture number, 1..=47.
    pub fn prefecture(self) -> u8 {
        (self.0 / 10_000) as u8
    }

    /// The code as a number (0..=999999).
    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for MunicipalityCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::from_digits(fixed_digits::<6>(s, Self::WHAT)?)
    }
}

impl fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Debug for MunicipalityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MunicipalityCode({:06})", self.0)
    }
}
string_serde!(MunicipalityCode);

/// 券番号: the 10-digit voucher number, unique within a municipality. It has no check
/// digit, so only its shape can be validated.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VoucherNumber(u64);

impl VoucherNumber {
    const WHAT: &'static str = "券番号 (voucher number)";

    /// Builds a voucher number from a value below 10^10.
    pub fn new(n: u64) -> Option<Self> {
        (n < 10_000_000_000).then_some(VoucherNumber(n))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl FromStr for VoucherNumber {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Ok(VoucherNumber(number_of(&fixed_digits::<10>(
            s,
            Self::WHAT,
        )?)))
    }
}

impl fmt::Display for VoucherNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010}", self.0)
    }
}

impl fmt::Debug for VoucherNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoucherNumber({:010})", self.0)
    }
}
string_serde!(VoucherNumber);

/// 券種: the voucher kind, the first digit of the OCR line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct VoucherKind(u8);

impl VoucherKind {
    pub fn new(d: u8) -> Option<Self> {
        (d <= 9).then_some(VoucherKind(d))
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for VoucherKind {
    type Error = String;
    fn try_from(d: u8) -> Result<Self, String> {
        Self::new(d).ok_or_else(|| format!("券種 must be one digit, got {d}"))
    }
}

impl From<VoucherKind> for u8 {
    fn from(k: VoucherKind) -> u8 {
        k.0
    }
}

/// 接種回数: which dose this is, 1..=9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct DoseNumber(u8);

impl DoseNumber {
    pub const FIRST: DoseNumber = DoseNumber(1);

    pub fn new(n: u8) -> Option<Self> {
        (1..=9).contains(&n).then_some(DoseNumber(n))
    }
    pub fn get(self) -> u8 {
        self.0
    }
    /// The dose before this one, if any.
    pub fn previous(self) -> Option<Self> {
        Self::new(self.0.wrapping_sub(1))
    }
}

impl TryFrom<u8> for DoseNumber {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        Self::new(n).ok_or_else(|| format!("接種回数 (dose number) must be 1 to 9, got {n}"))
    }
}

impl From<DoseNumber> for u8 {
    fn from(n: DoseNumber) -> u8 {
        n.0
    }
}

impl FromStr for DoseNumber {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "接種回数 (dose number)";
        let [d] = fixed_digits::<1>(s, WHAT)?;
        DoseNumber::new(d).ok_or(IdError::Invalid {
            what: WHAT,
            detail: "must be 1 to 9, got 0".into(),
        })
    }
}

impl fmt::Display for DoseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The voucher's 18-digit OCR line: 券種 (1) + 回数 (1) + 市町村コード (6) + 券番号 (10).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OcrLine {
    pub kind: VoucherKind,
    pub dose: DoseNumber,
    pub municipality: MunicipalityCode,
    pub number: VoucherNumber,
}

impl OcrLine {
    const WHAT: &'static str = "OCR line";
}

impl FromStr for OcrLine {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let d = fixed_digits::<18>(s, Self::WHAT)?;
        let kind = VoucherKind(d[0]);
        let dose = DoseNumber::new(d[1]).ok_or(IdError::Invalid {
            what: Self::WHAT,
            detail: "dose number (digit 2) must be 1 to 9, got 0".into(),
        })?;
        let mut m = [0u8; 6];
        m.copy_from_slice(&d[2..8]);
        let municipality = MunicipalityCode::from_digits(m)?;
        let number = VoucherNumber(number_of(&d[8..18]));
        Ok(OcrLine {
            kind,
            dose,
            municipality,
            number,
        })
    }
}

impl fmt::Display for OcrLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}{}",
            self.kind.0, self.dose.0, self.municipality, self.number
        )
    }
}

impl fmt::Debug for OcrLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OcrLine({self})")
    }
}
string_serde!(OcrLine);

/// 個別宛名番号: the person's id inside a municipality's systems, 1 to 15 digits,
/// opaque (leading zeros are kept as written).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonId(Box<str>);

impl PersonId {
    const WHAT: &'static str = "個別宛名番号 (person id)";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PersonId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let s = trim_blank(s);
        if s.is_empty() {
            return Err(IdError::Empty { what: Self::WHAT });
        }
        let mut out = String::with_capacity(15);
        for (position, c) in s.chars().enumerate() {
            let Some(d) = digit_value(c) else {
                return Err(IdError::NotDigit {
                    what: Self::WHAT,
                    found: c,
                    position: position + 1,
                });
            };
            out.push(char::from(b'0' + d));
        }
        if out.len() > 15 {
            return Err(IdError::Length {
                what: Self::WHAT,
                expected: "1 to 15",
                got: out.len(),
            });
        }
        Ok(PersonId(out.into_boxed_str()))
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonId({})", self.0)
    }
}
string_serde!(PersonId);

/// 医療機関コード: prefecture (2) + table (1: medical, 3: dental, 4: pharmacy,
/// 6: home nursing) + 6 digits + a Luhn check digit over the nine before it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClinicCode(u64);

/// What kind of institution a clinic code names (its third digit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClinicTable {
    Medical,
    Dental,
    Pharmacy,
    HomeNursing,
}

impl ClinicCode {
    const WHAT: &'static str = "医療機関コード (clinic code)";

    /// Luhn (mod 10, weights 2 and 1 from the right, two-digit products summed by
    /// their digits) over the first nine digits.
    pub fn check_digit(first_nine: [u8; 9]) -> u8 {
        let sum: u32 = first_nine
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                let p = u32::from(d) * if i % 2 == 0 { 2 } else { 1 };
                p / 10 + p % 10
            })
            .sum();
        ((10 - sum % 10) % 10) as u8
    }

    pub fn table(self) -> ClinicTable {
        match (self.0 / 10_000_000) % 10 {
            1 => ClinicTable::Medical,
            3 => ClinicTable::Dental,
            4 => ClinicTable::Pharmacy,
            _ => ClinicTable::HomeNursing,
        }
    }

    pub fn prefecture(self) -> u8 {
        (self.0 / 100_000_000) as u8
    }
}

impl FromStr for ClinicCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let d = fixed_digits::<10>(s, Self::WHAT)?;
        let pref = d[0] * 10 + d[1];
        if !(1..=47).contains(&pref) {
            return Err(IdError::Invalid {
                what: Self::WHAT,
                detail: format!("prefecture part {pref:02} is not 01 to 47"),
            });
        }
        if ![1, 3, 4, 6].contains(&d[2]) {
            return Err(IdError::Invalid {
                what: Self::WHAT,
                detail: format!(
                    "table digit (digit 3) is {}, expected 1 (medical), 3 (dental), 4 (pharmacy) or 6 (home nursing)",
                    d[2]
                ),
            });
        }
        let mut nine = [0u8; 9];
        nine.copy_from_slice(&d[..9]);
        let expected = Self::check_digit(nine);
        if d[9] != expected {
            return Err(IdError::CheckDigit {
                what: Self::WHAT,
                got: d[9],
                expected,
            });
        }
        Ok(ClinicCode(number_of(&d)))
    }
}

impl fmt::Display for ClinicCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010}", self.0)
    }
}

impl fmt::Debug for ClinicCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClinicCode({:010})", self.0)
    }
}
string_serde!(ClinicCode);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn municipality_examples_from_domain_md_are_valid() {
        for code in ["131016", "011002", "271004", "131041", "131130"] {
            let m: MunicipalityCode = code.parse().unwrap();
            assert_eq!(m.to_string(), code);
        }
    }

    #[test]
    fn municipality_wrong_check_digit_names_expected_digit() {
        let err = "131017".parse::<MunicipalityCode>().unwrap_err();
        assert_eq!(
            err,
            IdError::CheckDigit {
                what: MunicipalityCode::WHAT,
                got: 7,
                expected: 6
            }
        );
        assert!(err.to_string().contains("check digit is 7, expected 6"));
    }

    #[test]
    fn municipality_remainders_zero_and_one_give_one_and_zero() {
        // 0*6 + 1*5 + 0*4 + 0*3 + 3*2 = 11, remainder 0 → 11 → 1.
        assert_eq!(MunicipalityCode::check_digit([0, 1, 0, 0, 3]), 1);
        // 4*3 = 12, remainder 1 → 10 → 0.
        assert_eq!(MunicipalityCode::check_digit([0, 0, 0, 4, 0]), 0);
    }

    #[test]
    fn municipality_accepts_full_width_digits_and_blanks() {
        let m: MunicipalityCode = " １３１０１６\u{3000}".parse().unwrap();
        assert_eq!(m.to_string(), "131016");
    }

    #[test]
    fn municipality_rejects_prefecture_48() {
        assert!(MunicipalityCode::from_prefix(48_000).is_none());
        // A 48xxxx code with a right check digit is still refused.
        let d = MunicipalityCode::check_digit([4, 8, 0, 0, 0]);
        assert!(MunicipalityCode::from_prefix(999).is_none());
        assert!(matches!(
            format!("48000{d}").parse::<MunicipalityCode>(),
            Err(IdError::Invalid { .. })
        ));
    }

    #[test]
    fn ocr_line_splits_into_its_four_parts() {
        let line: OcrLine = "121310161234567890".parse().unwrap();
        assert_eq!(line.kind.get(), 1);
        assert_eq!(line.dose.get(), 2);
        assert_eq!(line.municipality.to_string(), "131016");
        assert_eq!(line.number.to_string(), "1234567890");
        assert_eq!(line.to_string(), "121310161234567890");
    }

    #[test]
    fn ocr_line_rejects_dose_zero_bad_check_digit_and_17_digits() {
        assert!("101310161234567890".parse::<OcrLine>().is_err());
        assert!(matches!(
            "121310171234567890".parse::<OcrLine>(),
            Err(IdError::CheckDigit { .. })
        ));
        assert!(matches!(
            "12131016123456789".parse::<OcrLine>(),
            Err(IdError::Length { got: 17, .. })
        ));
    }

    #[test]
    fn clinic_examples_from_domain_md_are_valid() {
        let c: ClinicCode = "0110113719".parse().unwrap();
        assert_eq!(c.table(), ClinicTable::Medical);
        assert_eq!(c.prefecture(), 1);
        let c: ClinicCode = "3618010015".parse().unwrap();
        assert_eq!(c.table(), ClinicTable::Medical);
        assert_eq!(c.prefecture(), 36);
        assert!(matches!(
            "0110113718".parse::<ClinicCode>(),
            Err(IdError::CheckDigit { expected: 9, .. })
        ));
        assert!(matches!(
            "0120113719".parse::<ClinicCode>(),
            Err(IdError::Invalid { .. })
        ));
    }

    #[test]
    fn person_id_keeps_leading_zeros_and_caps_at_15_digits() {
        let p: PersonId = "000123".parse().unwrap();
        assert_eq!(p.as_str(), "000123");
        assert!("1234567890123456".parse::<PersonId>().is_err());
        assert!("".parse::<PersonId>().is_err());
        assert!("12a".parse::<PersonId>().is_err());
    }

    #[test]
    fn serde_uses_the_printed_form() {
        let m: MunicipalityCode = "011002".parse().unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"011002\"");
        let back: MunicipalityCode = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<MunicipalityCode>("\"011003\"").is_err());
    }

    proptest! {
        #[test]
        fn municipality_round_trips_and_detects_every_single_digit_change(prefix in 1000u32..48_000, pos in 0usize..6, delta in 1u8..10) {
            let m = MunicipalityCode::from_prefix(prefix).unwrap();
            let s = m.to_string();
            prop_assert_eq!(s.parse::<MunicipalityCode>().unwrap(), m);
            let mut b = s.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            // A changed digit among the first five always changes the weighted sum
            // mod 11 (11 is prime); the only remainders that share a check digit are
            // 0 and 10 (both give 1), so only such a change can slip through.
            if let Ok(other) = changed.parse::<MunicipalityCode>() {
                prop_assert_ne!(other, m);
                let r = |d: &[u8]| d[..5].iter().zip([6u32, 5, 4, 3, 2]).map(|(&x, w)| u32::from(x - b'0') * w).sum::<u32>() % 11;
                let mut pair = [r(m.to_string().as_bytes()), r(changed.as_bytes())];
                pair.sort();
                prop_assert!(pos < 5 && pair == [0, 10]);
            }
        }

        #[test]
        fn clinic_luhn_detects_every_single_digit_change(body in 0u32..10_000_000, pref in 1u8..=47, table in prop::sample::select(vec![1u8,3,4,6]), pos in 0usize..10, delta in 1u8..10) {
            let s9 = format!("{pref:02}{table}{body:06}");
            let s9 = &s9[..9];
            let mut nine = [0u8; 9];
            for (i, b) in s9.bytes().enumerate() { nine[i] = b - b'0'; }
            let full = format!("{s9}{}", ClinicCode::check_digit(nine));
            let c: ClinicCode = full.parse().unwrap();
            prop_assert_eq!(c.to_string(), full.clone());
            let mut b = full.into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            prop_assert!(changed.parse::<ClinicCode>().is_err());
        }

        #[test]
        fn ocr_line_round_trips(kind in 0u8..10, dose in 1u8..10, prefix in 1000u32..48_000, number in 0u64..10_000_000_000) {
            let line = OcrLine {
                kind: VoucherKind::new(kind).unwrap(),
                dose: DoseNumber::new(dose).unwrap(),
                municipality: MunicipalityCode::from_prefix(prefix).unwrap(),
                number: VoucherNumber::new(number).unwrap(),
            };
            let s = line.to_string();
            prop_assert_eq!(s.len(), 18);
            prop_assert_eq!(s.parse::<OcrLine>().unwrap(), line);
        }

        #[test]
        fn id_parsers_never_panic(s in "\\PC{0,24}") {
            let _ = s.parse::<MunicipalityCode>();
            let _ = s.parse::<VoucherNumber>();
            let _ = s.parse::<OcrLine>();
            let _ = s.parse::<PersonId>();
            let _ = s.parse::<ClinicCode>();
            let _ = s.parse::<DoseNumber>();
        }
    }
}
