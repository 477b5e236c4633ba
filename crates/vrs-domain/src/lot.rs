//! Vaccines and their lot numbers (ロット番号).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{IdError, string_serde, trim_blank};

/// The vaccine products used in Japan's programme, by maker.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vaccine {
    /// ファイザー (コミナティ)
    Pfizer,
    /// 武田/モデルナ (スパイクバックス)
    Moderna,
    /// アストラゼネカ (バキスゼブリア)
    AstraZeneca,
    /// 武田 (ヌバキソビッド, Novavax)
    Novavax,
    /// 第一三共 (ダイチロナ)
    DaiichiSankyo,
    /// Meiji Seika ファルマ (コスタイベ)
    MeijiSeika,
}

impl Vaccine {
    pub const ALL: [Vaccine; 6] = [
        Vaccine::Pfizer,
        Vaccine::Moderna,
        Vaccine::AstraZeneca,
        Vaccine::Novavax,
        Vaccine::DaiichiSankyo,
        Vaccine::MeijiSeika,
    ];

    /// The name in the wire format and the API (`pfizer`, `astra_zeneca`, …).
    pub fn code(self) -> &'static str {
        match self {
            Vaccine::Pfizer => "pfizer",
            Vaccine::Moderna => "moderna",
            Vaccine::AstraZeneca => "astra_zeneca",
            Vaccine::Novavax => "novavax",
            Vaccine::DaiichiSankyo => "daiichi_sankyo",
            Vaccine::MeijiSeika => "meiji_seika",
        }
    }

    /// The maker's name as the ledger CSV writes it.
    pub fn maker_ja(self) -> &'static str {
        match self {
            Vaccine::Pfizer => "ファイザー",
            Vaccine::Moderna => "武田/モデルナ",
            Vaccine::AstraZeneca => "アストラゼネカ",
            Vaccine::Novavax => "武田/ノババックス",
            Vaccine::DaiichiSankyo => "第一三共",
            Vaccine::MeijiSeika => "Meiji Seika ファルマ",
        }
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            Vaccine::Pfizer => &["ファイザー", "pfizer", "コミナティ", "comirnaty"],
            Vaccine::Moderna => &[
                "武田/モデルナ",
                "モデルナ",
                "moderna",
                "スパイクバックス",
                "spikevax",
            ],
            Vaccine::AstraZeneca => &[
                "アストラゼネカ",
                "astrazeneca",
                "バキスゼブリア",
                "vaxzevria",
            ],
            Vaccine::Novavax => &[
                "武田/ノババックス",
                "ノババックス",
                "novavax",
                "ヌバキソビッド",
                "nuvaxovid",
                "武田",
            ],
            Vaccine::DaiichiSankyo => &[
                "第一三共",
                "daiichi sankyo",
                "daiichisankyo",
                "ダイチロナ",
                "daichirona",
            ],
            Vaccine::MeijiSeika => &[
                "meiji seika ファルマ",
                "meiji seika",
                "meijiseika",
                "明治",
                "コスタイベ",
                "kostaive",
            ],
        }
    }

    /// Whether a lot number has this maker's shape: Pfizer two letters and four
    /// digits (FA4597); Moderna seven characters, six digits then a digit or letter
    /// (3004667, 000091A). Other makers: any valid [`Lot`].
    pub fn check_lot(self, lot: &Lot) -> Result<(), IdError> {
        let b = lot.0.as_bytes();
        let ok = match self {
            Vaccine::Pfizer => {
                b.len() == 6
                    && b[..2].iter().all(u8::is_ascii_uppercase)
                    && b[2..].iter().all(u8::is_ascii_digit)
            }
            Vaccine::Moderna => {
                b.len() == 7
                    && b[..6].iter().all(u8::is_ascii_digit)
                    && b[6].is_ascii_alphanumeric()
            }
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(IdError::Invalid {
                what: "ロット番号 (lot)",
                detail: format!(
                    "{} is not a {} lot ({})",
                    lot,
                    self.maker_ja(),
                    match self {
                        Vaccine::Pfizer => "two letters and four digits, e.g. FA4597",
                        _ => "seven characters, e.g. 3004667",
                    }
                ),
            })
        }
    }
}

impl FromStr for Vaccine {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let t = trim_blank(s).replace('／', "/").to_lowercase();
        let t = t.trim();
        Vaccine::ALL
            .into_iter()
            .find(|v| v.aliases().contains(&t))
            .or_else(|| Vaccine::ALL.into_iter().find(|v| v.code() == t))
            .ok_or_else(|| IdError::Invalid {
                what: "ワクチンメーカー (vaccine)",
                detail: format!(
                    "{:?} is not a known maker; use one of {}",
                    trim_blank(s),
                    Vaccine::ALL.map(Vaccine::maker_ja).join(", ")
                ),
            })
    }
}

impl fmt::Display for Vaccine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.maker_ja())
    }
}

/// A lot number: 1 to 20 characters of A–Z, 0–9 and '-'. Lower-case letters and
/// full-width characters are folded, as labels and hand-typed values vary.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lot(Box<str>);

impl Lot {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Lot {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "ロット番号 (lot)";
        let s = trim_blank(s);
        if s.is_empty() {
            return Err(IdError::Empty { what: WHAT });
        }
        let mut out = String::with_capacity(s.len());
        for (i, c) in s.chars().enumerate() {
            // Full-width ASCII (U+FF01..U+FF5E) folds to ASCII.
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            };
            let c = c.to_ascii_uppercase();
            if !(c.is_ascii_alphanumeric() || c == '-') {
                return Err(IdError::BadChar {
                    what: WHAT,
                    allowed: "A–Z, 0–9 and '-'",
                    found: c,
                    position: i + 1,
                });
            }
            out.push(c);
        }
        if out.len() > 20 {
            return Err(IdError::Length {
                what: WHAT,
                expected: "1 to 20",
                got: out.len(),
            });
        }
        Ok(Lot(out.into_boxed_str()))
    }
}

impl fmt::Display for Lot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Lot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lot({})", self.0)
    }
}
string_serde!(Lot);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lot_examples_from_domain_md_fit_their_makers() {
        let pfizer: Lot = "FA4597".parse().unwrap();
        let moderna: Lot = "3004667".parse().unwrap();
        assert!(Vaccine::Pfizer.check_lot(&pfizer).is_ok());
        assert!(Vaccine::Moderna.check_lot(&moderna).is_ok());
        assert!(Vaccine::Pfizer.check_lot(&moderna).is_err());
        assert!(Vaccine::Moderna.check_lot(&pfizer).is_err());
    }

    #[test]
    fn lot_folds_case_and_full_width() {
        let lot: Lot = " ｆａ４５９７ ".parse().unwrap();
        assert_eq!(lot.as_str(), "FA4597");
        assert!("FA 4597".parse::<Lot>().is_err());
        assert!("A".repeat(21).parse::<Lot>().is_err());
    }

    #[test]
    fn vaccine_reads_japanese_and_english_names() {
        assert_eq!("ファイザー".parse::<Vaccine>().unwrap(), Vaccine::Pfizer);
        assert_eq!("Moderna".parse::<Vaccine>().unwrap(), Vaccine::Moderna);
        assert_eq!(
            "武田／モデルナ".parse::<Vaccine>().unwrap(),
            Vaccine::Moderna
        );
        assert_eq!(
            "daiichi_sankyo".parse::<Vaccine>().unwrap(),
            Vaccine::DaiichiSankyo
        );
        for v in Vaccine::ALL {
            assert_eq!(v.maker_ja().parse::<Vaccine>().unwrap(), v);
        }
        assert!("ワクチン".parse::<Vaccine>().is_err());
    }
}
