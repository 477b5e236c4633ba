//! マイナンバー (Individual Number): 12 digits, the last a check digit.
//!
//! A `MyNumber` is a secret. It cannot be cloned, printed (`Debug` and `Display`
//! show a mask) or serialised; its digits are zeroed when it is dropped. The only
//! way to read the digits is [`MyNumber::expose_for_vault`], which the vault uses to
//! encrypt and to compute the keyed look-up hash.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ids::{IdError, fixed_digits};

/// A validated マイナンバー. See the module docs for the rules it keeps.
#[derive(PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MyNumber([u8; 12]);

const WHAT: &str = "マイナンバー";
const NOT_A_STRING: &str = "マイナンバー must be a string of 12 digits, not a number";

impl MyNumber {
    /// The check digit for the first eleven digits: `11 - (Σ Pn*Qn mod 11)`, where Pn
    /// is the n-th digit from the right and Qn is n+1 for n ≤ 6, n-5 for n ≥ 7; 0 when
    /// the remainder is 0 or 1.
    pub fn check_digit(first_eleven: &[u8; 11]) -> u8 {
        let sum: u32 = first_eleven
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &p)| {
                let n = i as u32 + 1;
                let q = if n <= 6 { n + 1 } else { n - 5 };
                u32::from(p) * q
            })
            .sum();
        let r = sum % 11;
        if r <= 1 { 0 } else { (11 - r) as u8 }
    }

    /// The twelve ASCII digits, for the vault's encryption and keyed hash only.
    /// Anything else that needs a マイナンバー should hold this type, not its digits.
    pub fn expose_for_vault(&self) -> &[u8; 12] {
        &self.0
    }

    /// Builds a マイナンバー from the first eleven digit values, adding the check digit.
    /// For synthetic data and tests.
    pub fn from_first_eleven(digits: [u8; 11]) -> Option<Self> {
        if digits.iter().any(|&d| d > 9) {
            return None;
        }
        let check = Self::check_digit(&digits);
        let mut out = [0u8; 12];
        for (o, d) in out
            .iter_mut()
            .zip(digits.iter().chain(std::iter::once(&check)))
        {
            *o = b'0' + d;
        }
        Some(MyNumber(out))
    }
}

impl FromStr for MyNumber {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let mut d = fixed_digits::<12>(s, WHAT)?;
        let mut first = [0u8; 11];
        first.copy_from_slice(&d[..11]);
        let expected = Self::check_digit(&first);
        let got = d[11];
        first.zeroize();
        if got != expected {
            d.zeroize();
            return Err(IdError::CheckDigit {
                what: WHAT,
                got,
                expected,
            });
        }
        let mut out = [0u8; 12];
        for (o, v) in out.iter_mut().zip(d.iter()) {
            *o = b'0' + v;
        }
        d.zeroize();
        Ok(MyNumber(out))
    }
}

impl fmt::Debug for MyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MyNumber(************)")
    }
}

impl fmt::Display for MyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("************")
    }
}

/// Requests to the transfer look-up carry a マイナンバー in their body, so it can be
/// deserialised; it can never be serialised back.
impl<'de> Deserialize<'de> for MyNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = MyNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 12-digit マイナンバー as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MyNumber, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_string<E: serde::de::Error>(self, mut v: String) -> Result<MyNumber, E> {
                let r = v.parse().map_err(E::custom);
                v.zeroize();
                r
            }
            // serde's own message for a wrong type repeats the value: refuse numbers
            // with a message of our own.
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<MyNumber, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<MyNumber, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<MyNumber, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<MyNumber, E> {
                Err(E::custom(NOT_A_STRING))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<MyNumber, E> {
                Err(E::custom(NOT_A_STRING))
            }
        }
        // deserialize_any, so that a number reaches visit_u64 (and our message), not
        // serde_json's, which would repeat it.
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The first eleven digits of domain.md's example; its check digit is 8.
    const EXAMPLE_ELEVEN: &str = "12345678901";

    #[test]
    fn example_from_domain_md_is_valid() {
        let example = format!("{EXAMPLE_ELEVEN}8");
        let n: MyNumber = example.parse().unwrap();
        assert_eq!(n.expose_for_vault(), example.as_bytes());
    }

    #[test]
    fn wrong_check_digit_names_both_digits_but_not_the_number() {
        let err = format!("{EXAMPLE_ELEVEN}3")
            .parse::<MyNumber>()
            .unwrap_err();
        let msg = err.to_string();
        assert_eq!(msg, "マイナンバー: check digit is 3, expected 8");
        assert!(!msg.contains("12345678901"));
    }

    #[test]
    fn debug_and_display_never_show_digits() {
        let n: MyNumber = format!("{EXAMPLE_ELEVEN}8").parse().unwrap();
        let shown = format!("{n} {n:?} {:?}", Some(&n));
        assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{shown}");
    }

    #[test]
    fn remainder_zero_or_one_gives_check_digit_zero() {
        // All zeros: sum 0, remainder 0 → 0.
        assert_eq!(MyNumber::check_digit(&[0; 11]), 0);
        // P2 = 4 with Q2 = 3: sum 12, remainder 1 → 0.
        let mut d = [0u8; 11];
        d[9] = 4;
        assert_eq!(MyNumber::check_digit(&d), 0);
    }

    #[test]
    fn deserialises_from_a_json_string_and_rejects_a_bad_one() {
        let n: MyNumber = serde_json::from_str(&format!("\"{EXAMPLE_ELEVEN}8\"")).unwrap();
        assert_eq!(
            n.expose_for_vault(),
            format!("{EXAMPLE_ELEVEN}8").as_bytes()
        );
        let err = serde_json::from_str::<MyNumber>(&format!("\"{EXAMPLE_ELEVEN}0\"")).unwrap_err();
        assert!(!err.to_string().contains("12345678901"));
    }

    #[test]
    fn a_json_number_is_refused_without_repeating_it() {
        let err = serde_json::from_str::<MyNumber>(&format!("{EXAMPLE_ELEVEN}8")).unwrap_err();
        assert!(!err.to_string().contains("12345678901"), "{err}");
        assert!(err.to_string().contains("not a number"), "{err}");
    }

    proptest! {
        #[test]
        fn generated_numbers_validate_and_single_digit_changes_are_caught(
            digits in prop::array::uniform11(0u8..10), pos in 0usize..12, delta in 1u8..10
        ) {
            let n = MyNumber::from_first_eleven(digits).unwrap();
            let s = std::str::from_utf8(n.expose_for_vault()).unwrap().to_owned();
            prop_assert!(s.parse::<MyNumber>().is_ok());
            let mut b = s.clone().into_bytes();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            // Weights 2..7 are below 11, so a changed digit always changes the sum mod
            // 11; it slips through only when the remainders map to the same check
            // digit, which happens only for remainders 0 and 1 (both give 0).
            if changed.parse::<MyNumber>().is_ok() {
                let r = |s: &str| {
                    let mut e = [0u8; 11];
                    for (i, c) in s.bytes().take(11).enumerate() { e[i] = c - b'0'; }
                    let sum: u32 = e.iter().rev().enumerate().map(|(i, &p)| {
                        let n = i as u32 + 1;
                        u32::from(p) * if n <= 6 { n + 1 } else { n - 5 }
                    }).sum();
                    sum % 11
                };
                let mut pair = [r(&s), r(&changed)];
                pair.sort();
                prop_assert!(pos < 11 && pair == [0, 1]);
            }
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<MyNumber>();
        }
    }
}
