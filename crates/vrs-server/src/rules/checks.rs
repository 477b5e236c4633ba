//! The checks a dose record passes before it is accepted, as a plain function. A
//! record that fails one is held for the municipality's review, never dropped.

use chrono::NaiveDate;
use vrs_domain::wire::{HoldReason, Outcome};
use vrs_domain::{DoseNumber, RegistrationStatus, RemovalReason};

/// An accepted dose already on record for the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriorDose {
    pub dose_number: u8,
    pub vaccinated_on: NaiveDate,
}

/// What the checks need to know about one record.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub dose_number: DoseNumber,
    pub vaccinated_on: NaiveDate,
    /// The lot's expiry in the lot master; `None` when the master does not have the
    /// lot (the record is held: a wrong lot is never stored silently).
    pub lot_expiry: Option<NaiveDate>,
}

/// A hold's detail for staff: Japanese first, then English.
fn both(ja: &str, en: &str) -> String {
    format!("{ja} / {en}")
}

/// A date as a person reads it.
fn d(day: NaiveDate) -> String {
    vrs_domain::date::format_slash(day)
}

/// `Ok` to accept, or why to hold. `person` is `None` when no registered person has
/// the voucher; `prior` are the person's accepted doses.
pub fn check(
    person: Option<RegistrationStatus>,
    prior: &[PriorDose],
    c: &Candidate,
    today: NaiveDate,
) -> Result<(), (HoldReason, String)> {
    let Some(status) = person else {
        return Err((
            HoldReason::UnknownVoucher,
            both(
                "この券番号の対象者が登録されていません。住民記録を取り込んでから「確認済みとして登録」してください",
                "no registered person has this voucher; register them, then release the record",
            ),
        ));
    };
    match status {
        RegistrationStatus::Active => {}
        RegistrationStatus::Removed(r) => {
            let reason = match r {
                RemovalReason::MovedOut => HoldReason::PersonMovedOut,
                RemovalReason::Deceased => HoldReason::PersonDeceased,
                RemovalReason::Other => HoldReason::PersonRemoved,
            };
            return Err((reason, reason.describe_ja().into()));
        }
    }
    if c.vaccinated_on > today {
        return Err((
            HoldReason::DateInFuture,
            both(
                &format!(
                    "接種日 {} が今日 ({}) より後です",
                    d(c.vaccinated_on),
                    d(today)
                ),
                &format!("{} is after today ({today})", c.vaccinated_on),
            ),
        ));
    }
    match c.lot_expiry {
        None => {
            return Err((
                HoldReason::LotUnknown,
                both(
                    "ロット番号がロット一覧にありません。バイアルのロット番号を確かめて修正してください (または運用者がロットを追加してから登録してください)",
                    "the lot is not in the lot master: check the lot number against the vial, then amend the record (or have the operator add the lot and release it)",
                ),
            ));
        }
        Some(expiry) if c.vaccinated_on > expiry => {
            return Err((
                HoldReason::LotExpired,
                both(
                    &format!(
                        "ロットの有効期限 {} は接種日 {} より前です",
                        d(expiry),
                        d(c.vaccinated_on)
                    ),
                    &format!("the lot expired on {expiry}, before {}", c.vaccinated_on),
                ),
            ));
        }
        Some(_) => {}
    }
    let n = c.dose_number.get();
    if prior.iter().any(|p| p.dose_number == n) {
        return Err((
            HoldReason::DoseAlreadyRecorded,
            both(
                &format!("{n}回目の接種記録が既にあります"),
                &format!("dose {n} is already on record"),
            ),
        ));
    }
    if n > 1 && !prior.iter().any(|p| p.dose_number == n - 1) {
        return Err((
            HoldReason::MissingEarlierDose,
            both(
                &format!("{n}回目ですが、{}回目の接種記録がありません", n - 1),
                &format!("dose {n} with no dose {} on record", n - 1),
            ),
        ));
    }
    if let Some(p) = prior
        .iter()
        .filter(|p| p.dose_number < n && p.vaccinated_on > c.vaccinated_on)
        .max_by_key(|p| p.vaccinated_on)
    {
        return Err((
            HoldReason::BeforePreviousDose,
            both(
                &format!(
                    "接種日 {} は{}回目の接種日 {} より前です",
                    d(c.vaccinated_on),
                    p.dose_number,
                    d(p.vaccinated_on)
                ),
                &format!(
                    "dated {}, before dose {} on {}",
                    c.vaccinated_on, p.dose_number, p.vaccinated_on
                ),
            ),
        ));
    }
    Ok(())
}

/// What a tablet may learn from a receipt: that a record was held and, for a
/// problem with the record itself, which one; never a person's status (moved out,
/// deceased) or dose history. Staff see the full reason in the review queue.
pub fn for_tablet(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Held { reason, .. } => {
            let reason = match reason {
                HoldReason::PersonMovedOut
                | HoldReason::PersonDeceased
                | HoldReason::PersonRemoved => HoldReason::PersonRemoved,
                other => other,
            };
            Outcome::Held {
                reason,
                detail: match reason {
                    HoldReason::PersonRemoved => "自治体が登録状況を確認します".into(),
                    other => other.describe_ja().into(),
                },
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    type Case = (
        &'static str,
        Option<RegistrationStatus>,
        Vec<PriorDose>,
        Candidate,
        Option<HoldReason>,
    );

    #[test]
    fn tablets_learn_that_a_record_is_held_not_why_a_person_is_removed() {
        let held = |reason| Outcome::Held {
            reason,
            detail: "dose 1 on 2021-06-01".into(),
        };
        for r in [HoldReason::PersonMovedOut, HoldReason::PersonDeceased] {
            assert_eq!(
                for_tablet(held(r)),
                Outcome::Held {
                    reason: HoldReason::PersonRemoved,
                    detail: "自治体が登録状況を確認します".into()
                }
            );
        }
        let Outcome::Held { reason, detail } = for_tablet(held(HoldReason::BeforePreviousDose))
        else {
            panic!()
        };
        assert_eq!(reason, HoldReason::BeforePreviousDose);
        assert!(!detail.contains("2021"), "no dose dates: {detail}");
        assert_eq!(for_tablet(Outcome::Accepted), Outcome::Accepted);
    }

    #[test]
    fn check_table() {
        let today = d("2021-07-01");
        let first = PriorDose {
            dose_number: 1,
            vaccinated_on: d("2021-06-01"),
        };
        let cand = |n: u8, date: &str, expiry: Option<&str>| Candidate {
            dose_number: DoseNumber::new(n).unwrap(),
            vaccinated_on: d(date),
            lot_expiry: Some(d(expiry.unwrap_or("2021-12-31"))),
        };
        let active = Some(RegistrationStatus::Active);
        let cases: Vec<Case> = vec![
            (
                "first dose, known person",
                active,
                vec![],
                cand(1, "2021-06-01", None),
                None,
            ),
            (
                "second dose after the first",
                active,
                vec![first],
                cand(2, "2021-06-22", Some("2021-08-31")),
                None,
            ),
            (
                "unknown voucher",
                None,
                vec![],
                cand(1, "2021-06-01", None),
                Some(HoldReason::UnknownVoucher),
            ),
            (
                "moved out",
                Some(RegistrationStatus::Removed(RemovalReason::MovedOut)),
                vec![],
                cand(1, "2021-06-01", None),
                Some(HoldReason::PersonMovedOut),
            ),
            (
                "deceased",
                Some(RegistrationStatus::Removed(RemovalReason::Deceased)),
                vec![],
                cand(1, "2021-06-01", None),
                Some(HoldReason::PersonDeceased),
            ),
            (
                "date in the future",
                active,
                vec![],
                cand(1, "2021-07-02", None),
                Some(HoldReason::DateInFuture),
            ),
            (
                "no dose 2 without dose 1",
                active,
                vec![],
                cand(2, "2021-06-22", None),
                Some(HoldReason::MissingEarlierDose),
            ),
            (
                "dose 2 dated before dose 1",
                active,
                vec![first],
                cand(2, "2021-05-20", None),
                Some(HoldReason::BeforePreviousDose),
            ),
            (
                "lot past its expiry",
                active,
                vec![],
                cand(1, "2021-06-01", Some("2021-05-31")),
                Some(HoldReason::LotExpired),
            ),
            (
                "lot on its expiry day is fine",
                active,
                vec![],
                cand(1, "2021-05-31", Some("2021-05-31")),
                None,
            ),
            (
                "lot not in the lot master",
                active,
                vec![],
                Candidate {
                    lot_expiry: None,
                    ..cand(1, "2021-06-01", None)
                },
                Some(HoldReason::LotUnknown),
            ),
            (
                "the same dose twice",
                active,
                vec![first],
                cand(1, "2021-06-02", None),
                Some(HoldReason::DoseAlreadyRecorded),
            ),
        ];
        for (name, person, prior, c, want) in cases {
            let got = check(person, &prior, &c, today);
            if let Err((_, detail)) = &got {
                // Staff read the detail in Japanese first, then English.
                assert!(
                    detail.contains(" / ") || detail.chars().any(|c| c > '\u{3000}'),
                    "{name}: {detail}"
                );
            }
            assert_eq!(got.err().map(|(r, _)| r), want, "{name}");
        }
    }
}
