//! What the register says about a person besides identifiers: sex, and the
//! moved-out/deceased flag with the registration status it leads to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{IdError, trim_blank};

/// 性別, coded as in ISO 5218 (which Japanese resident systems follow: 1 男, 2 女).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    NotKnown,
    Male,
    Female,
    NotApplicable,
}

impl Sex {
    pub fn code(self) -> u8 {
        match self {
            Sex::NotKnown => 0,
            Sex::Male => 1,
            Sex::Female => 2,
            Sex::NotApplicable => 9,
        }
    }
}

impl FromStr for Sex {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match trim_blank(s) {
            "1" | "１" | "男" | "男性" => Ok(Sex::Male),
            "2" | "２" | "女" | "女性" => Ok(Sex::Female),
            "0" | "０" => Ok(Sex::NotKnown),
            "9" | "９" => Ok(Sex::NotApplicable),
            "" => Err(IdError::Empty {
                what: "性別 (sex)"
            }),
            other => Err(IdError::Invalid {
                what: "性別 (sex)",
                detail: format!("{other:?} is not 1 (男), 2 (女), 0 or 9"),
            }),
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// ⑩ 転出/死亡フラグ: what the municipality says happened to a registered person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// 1: 転出, moved out.
    MovedOut,
    /// 2: 死亡, died.
    Deceased,
    /// 3: その他削除, removed from the resident register for another reason.
    OtherRemoval,
    /// 9: cancels an earlier 1, 2 or 3.
    Cancel,
}

impl Flag {
    pub fn code(self) -> u8 {
        match self {
            Flag::MovedOut => 1,
            Flag::Deceased => 2,
            Flag::OtherRemoval => 3,
            Flag::Cancel => 9,
        }
    }
}

impl FromStr for Flag {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match trim_blank(s) {
            "1" | "１" => Ok(Flag::MovedOut),
            "2" | "２" => Ok(Flag::Deceased),
            "3" | "３" => Ok(Flag::OtherRemoval),
            "9" | "９" => Ok(Flag::Cancel),
            "" => Err(IdError::Empty {
                what: "転出/死亡フラグ (flag)",
            }),
            other => Err(IdError::Invalid {
                what: "転出/死亡フラグ (flag)",
                detail: format!(
                    "{other:?} is not 1 (転出), 2 (死亡), 3 (その他削除) or 9 (取り消し)"
                ),
            }),
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// Why a person is no longer an active resident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    MovedOut,
    Deceased,
    Other,
}

/// Whether a registered person can still be vaccinated on this municipality's voucher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum RegistrationStatus {
    #[default]
    Active,
    Removed(RemovalReason),
}

impl RegistrationStatus {
    /// The status after a flag arrives: 1–3 remove (the latest wins), 9 restores.
    pub fn apply(self, flag: Flag) -> Self {
        match flag {
            Flag::MovedOut => RegistrationStatus::Removed(RemovalReason::MovedOut),
            Flag::Deceased => RegistrationStatus::Removed(RemovalReason::Deceased),
            Flag::OtherRemoval => RegistrationStatus::Removed(RemovalReason::Other),
            Flag::Cancel => RegistrationStatus::Active,
        }
    }

    pub fn is_active(self) -> bool {
        self == RegistrationStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_9_cancels_earlier_moved_out() {
        let s = RegistrationStatus::Active.apply(Flag::MovedOut);
        assert_eq!(s, RegistrationStatus::Removed(RemovalReason::MovedOut));
        assert_eq!(s.apply(Flag::Cancel), RegistrationStatus::Active);
    }

    #[test]
    fn later_flag_replaces_earlier_one() {
        let s = RegistrationStatus::Active
            .apply(Flag::MovedOut)
            .apply(Flag::Deceased);
        assert_eq!(s, RegistrationStatus::Removed(RemovalReason::Deceased));
    }

    #[test]
    fn flag_outside_1_2_3_9_is_rejected_with_the_allowed_codes() {
        for bad in ["4", "0", "x", "10"] {
            let err = bad.parse::<Flag>().unwrap_err().to_string();
            assert!(err.contains("9 (取り消し)"), "{err}");
        }
        assert_eq!("９".parse::<Flag>().unwrap(), Flag::Cancel);
    }

    #[test]
    fn sex_accepts_codes_and_kanji() {
        assert_eq!("1".parse::<Sex>().unwrap(), Sex::Male);
        assert_eq!("女".parse::<Sex>().unwrap(), Sex::Female);
        assert!("3".parse::<Sex>().is_err());
    }
}
