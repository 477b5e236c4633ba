//! The register import's merge, as a plain function: what one row does to what is
//! stored. Field by field, an empty field keeps the stored value; a flag moves the
//! registration status (1–3 remove, 9 restores).

use chrono::NaiveDate;
use vrs_domain::csv::register::{RegisterField, RegisterRow};
use vrs_domain::{RegistrationStatus, Sex, VoucherNumber};

/// A registered person as stored (without the マイナンバー, which is in the vault).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonFields {
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub family_kana: Option<String>,
    pub given_kana: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<Sex>,
    pub voucher: Option<VoucherNumber>,
    pub status: RegistrationStatus,
}

/// What a row did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    New,
    /// The fields that changed, in register order.
    Updated(Vec<RegisterField>),
    Unchanged,
}

/// Applies one row to the stored person (if any). `my_number_changed` says whether
/// the row carries a マイナンバー different from the vault's (the vault decides).
pub fn merge(
    existing: Option<&PersonFields>,
    row: &RegisterRow,
    my_number_changed: bool,
) -> (PersonFields, Change) {
    let mut p = existing.cloned().unwrap_or_default();
    let mut changed = Vec::new();
    if my_number_changed {
        changed.push(RegisterField::MyNumber);
    }
    fn set<T: PartialEq + Clone>(
        slot: &mut Option<T>,
        v: &Option<T>,
        f: RegisterField,
        changed: &mut Vec<RegisterField>,
    ) {
        if let Some(v) = v
            && slot.as_ref() != Some(v)
        {
            *slot = Some(v.clone());
            changed.push(f);
        }
    }
    set(
        &mut p.family_name,
        &row.family_name,
        RegisterField::FamilyName,
        &mut changed,
    );
    set(
        &mut p.given_name,
        &row.given_name,
        RegisterField::GivenName,
        &mut changed,
    );
    set(
        &mut p.family_kana,
        &row.family_kana,
        RegisterField::FamilyKana,
        &mut changed,
    );
    set(
        &mut p.given_kana,
        &row.given_kana,
        RegisterField::GivenKana,
        &mut changed,
    );
    set(
        &mut p.birth_date,
        &row.birth_date,
        RegisterField::BirthDate,
        &mut changed,
    );
    set(&mut p.sex, &row.sex, RegisterField::Sex, &mut changed);
    set(
        &mut p.voucher,
        &row.voucher,
        RegisterField::Voucher,
        &mut changed,
    );
    if let Some(flag) = row.flag {
        let next = p.status.apply(flag);
        if next != p.status {
            p.status = next;
            changed.push(RegisterField::Flag);
        }
    }
    let change = match (existing, changed.is_empty()) {
        (None, _) => Change::New,
        (Some(_), true) => Change::Unchanged,
        (Some(_), false) => Change::Updated(changed),
    };
    (p, change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrs_domain::{Flag, RemovalReason};

    fn row(f: impl FnOnce(&mut RegisterRow)) -> RegisterRow {
        let mut r = RegisterRow {
            line: 1,
            person_id: "1001".parse().unwrap(),
            my_number: None,
            family_name: None,
            given_name: None,
            family_kana: None,
            given_kana: None,
            birth_date: None,
            sex: None,
            voucher: None,
            flag: None,
        };
        f(&mut r);
        r
    }

    fn stored() -> PersonFields {
        PersonFields {
            family_name: Some("山田".into()),
            given_name: Some("太郎".into()),
            voucher: VoucherNumber::new(1234567890),
            ..Default::default()
        }
    }

    #[test]
    fn merge_table() {
        struct Case {
            name: &'static str,
            existing: Option<PersonFields>,
            row: RegisterRow,
            my_changed: bool,
            change: Change,
            check: fn(&PersonFields) -> bool,
        }
        let cases = [
            Case {
                name: "a new person takes the row's fields",
                existing: None,
                row: row(|r| r.family_name = Some("佐藤".into())),
                my_changed: false,
                change: Change::New,
                check: |p| p.family_name.as_deref() == Some("佐藤"),
            },
            Case {
                name: "empty fields keep what is stored",
                existing: Some(stored()),
                row: row(|r| r.given_kana = Some("タロウ".into())),
                my_changed: false,
                change: Change::Updated(vec![RegisterField::GivenKana]),
                check: |p| {
                    p.family_name.as_deref() == Some("山田")
                        && p.given_kana.as_deref() == Some("タロウ")
                },
            },
            Case {
                name: "the same values again change nothing",
                existing: Some(stored()),
                row: row(|r| {
                    r.family_name = Some("山田".into());
                    r.voucher = VoucherNumber::new(1234567890);
                }),
                my_changed: false,
                change: Change::Unchanged,
                check: |p| *p == stored(),
            },
            Case {
                name: "flag 1 removes as moved out",
                existing: Some(stored()),
                row: row(|r| r.flag = Some(Flag::MovedOut)),
                my_changed: false,
                change: Change::Updated(vec![RegisterField::Flag]),
                check: |p| p.status == RegistrationStatus::Removed(RemovalReason::MovedOut),
            },
            Case {
                name: "flag 9 on an active person changes nothing",
                existing: Some(stored()),
                row: row(|r| r.flag = Some(Flag::Cancel)),
                my_changed: false,
                change: Change::Unchanged,
                check: |p| p.status.is_active(),
            },
            Case {
                name: "flag_9_cancels_earlier_moved_out",
                existing: Some(PersonFields {
                    status: RegistrationStatus::Removed(RemovalReason::MovedOut),
                    ..stored()
                }),
                row: row(|r| r.flag = Some(Flag::Cancel)),
                my_changed: false,
                change: Change::Updated(vec![RegisterField::Flag]),
                check: |p| p.status.is_active(),
            },
            Case {
                name: "a new マイナンバー alone is an update",
                existing: Some(stored()),
                row: row(|_| {}),
                my_changed: true,
                change: Change::Updated(vec![RegisterField::MyNumber]),
                check: |p| *p == stored(),
            },
        ];
        for c in cases {
            let (p, change) = merge(c.existing.as_ref(), &c.row, c.my_changed);
            assert_eq!(change, c.change, "{}", c.name);
            assert!((c.check)(&p), "{}: {p:?}", c.name);
        }
    }
}
