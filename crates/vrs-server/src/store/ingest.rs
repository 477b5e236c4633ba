//! A tablet's batch of dose records, once for every backend: the backend answers a
//! few set-wise questions about the batch ([`DoseSink`]), the records are decided in
//! order here (a later record sees the earlier ones: a dose 2 after the batch's own
//! dose 1, the same record sent twice), and the backend stores the result.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use vrs_domain::wire::{HoldReason, MAX_BATCH, Outcome, Receipt, UploadBatch};
use vrs_domain::{
    ClientRecordId, DeviceId, DoseRecord, Lot, MunicipalityCode, RegistrationStatus, SiteRef,
    Vaccine, VoucherNumber,
};

use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::checks::{self, Candidate, PriorDose};
use crate::rules::devices::site_kind_and_code;
use crate::store::records::{self, ReviewSink};
use crate::store::vault::Links;

/// A registered person, as the checks need them.
#[derive(Clone, Debug)]
pub struct Person {
    pub person_id: String,
    pub status: RegistrationStatus,
}

/// One record as decided, for the backend to store.
#[derive(Debug)]
pub struct Decided<'a> {
    pub record: &'a DoseRecord,
    pub site_kind: &'static str,
    pub site_code: String,
    pub site_name: String,
    pub person_id: Option<String>,
    pub verdict: Result<(), (HoldReason, String)>,
}

/// What a backend answers and stores for a batch, inside its open transaction.
pub trait DoseSink {
    /// Which of these records are stored already, each with its hold reason when it
    /// is held (so that a record sent again is told it is held, not just "stored").
    fn stored(
        &mut self,
        keys: &[(MunicipalityCode, ClientRecordId)],
    ) -> Result<HashMap<(MunicipalityCode, ClientRecordId), Option<HoldReason>>>;
    /// The people these vouchers belong to.
    fn people(
        &mut self,
        vouchers: &[(MunicipalityCode, VoucherNumber)],
    ) -> Result<HashMap<(MunicipalityCode, VoucherNumber), Person>>;
    /// Who else each of these people is, registered in another municipality with
    /// the same マイナンバー (through the vault; see [`Links`]).
    fn linked(&mut self, people: &[(MunicipalityCode, &str)]) -> Result<Links>;
    /// These people's accepted doses.
    fn prior(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>>;
    /// The expiry of those of these lots the service knows.
    fn expiries(
        &mut self,
        lots: &[(Vaccine, &Lot)],
    ) -> Result<HashMap<(Vaccine, String), NaiveDate>>;
    /// The site the tablet is registered for, and the site's name: every record
    /// it sends is credited there. `None` for a device the service does not know.
    fn device_site(&mut self, device: DeviceId) -> Result<Option<(SiteRef, String)>>;
    /// Stores the decided records.
    fn insert(&mut self, site_municipality: MunicipalityCode, rows: &[Decided<'_>]) -> Result<()>;
    /// The review sink of `municipality`'s records in the same transaction, where
    /// the batch's corrections retire the held records they replace.
    fn review_sink(&mut self, municipality: MunicipalityCode) -> Box<dyn ReviewSink + '_>;
}

/// The held originals that this batch's stored records correct: (the original's
/// municipality, the original, the correction). See [`records::supersede`].
fn corrections(
    batch: &UploadBatch,
    receipts: &[Receipt],
) -> Vec<(MunicipalityCode, ClientRecordId, ClientRecordId)> {
    batch
        .records
        .iter()
        .zip(receipts)
        .filter(|(_, r)| matches!(r.outcome, Outcome::Accepted | Outcome::Held { .. }))
        .filter_map(|(rec, _)| {
            rec.supersedes
                .map(|o| (o.municipality, o.client_record_id, rec.client_record_id))
        })
        .collect()
}

/// Adds to each linked person's doses those of their entries elsewhere.
fn merge_linked(prior: &mut HashMap<(MunicipalityCode, String), Vec<PriorDose>>, links: &Links) {
    for (person, others) in links {
        let elsewhere: Vec<PriorDose> = others
            .iter()
            .filter_map(|o| prior.get(o))
            .flatten()
            .copied()
            .collect();
        prior.entry(person.clone()).or_default().extend(elsewhere);
    }
}

/// Decides and stores a batch from the tablet `actor`; one receipt per record, in
/// order; the held records that the batch's stored ones correct are retired. The
/// caller commits.
pub fn run(
    actor: &Principal,
    batch: &UploadBatch,
    today: NaiveDate,
    sink: &mut dyn DoseSink,
) -> Result<Vec<Receipt>> {
    let (site_municipality, device) = actor.device()?;
    let receipts = decide(batch, site_municipality, device, today, sink)?;
    for (m, original, by) in corrections(batch, &receipts) {
        records::supersede(&mut *sink.review_sink(m), actor, original, by)?;
    }
    Ok(receipts)
}

/// Decides and stores a batch from the tablet `device` of `site_municipality`.
fn decide(
    batch: &UploadBatch,
    site_municipality: MunicipalityCode,
    device: DeviceId,
    today: NaiveDate,
    sink: &mut dyn DoseSink,
) -> Result<Vec<Receipt>> {
    let recs = &batch.records;
    if recs.len() > MAX_BATCH {
        return Err(StoreError::Invalid(format!(
            "{} records in one batch; send at most {MAX_BATCH}",
            recs.len()
        )));
    }
    if let Some(r) = recs.iter().find(|r| r.device_id != device) {
        return Err(StoreError::Invalid(format!(
            "record {} names device {}, but this is device {device}",
            r.client_record_id, r.device_id
        )));
    }
    if recs.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<_> = recs
        .iter()
        .map(|r| (r.municipality, r.client_record_id))
        .collect();
    let stored = sink.stored(&keys)?;
    let vouchers: Vec<_> = recs
        .iter()
        .map(|r| (r.municipality, r.voucher))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let people = sink.people(&vouchers)?;
    let who: Vec<(MunicipalityCode, &str)> = people
        .iter()
        .map(|((m, _), p)| (*m, p.person_id.as_str()))
        .collect();
    let mut prior = if who.is_empty() {
        HashMap::new()
    } else {
        // A newcomer's doses count wherever they were given: the checks see the
        // person's accepted doses in every municipality they are registered in.
        let links = sink.linked(&who)?;
        let mut asked = who.clone();
        asked.extend(links.values().flatten().map(|(m, p)| (*m, p.as_str())));
        let mut prior = sink.prior(&asked)?;
        merge_linked(&mut prior, &links);
        prior
    };
    let lots: Vec<(Vaccine, &Lot)> = recs
        .iter()
        .map(|r| (r.vaccine, &r.lot))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let expiry = sink.expiries(&lots)?;
    let (site, site_name) = sink.device_site(device)?.ok_or_else(|| {
        StoreError::Forbidden(format!(
            "device {device} is not registered: register the tablet and enrol it first"
        ))
    })?;
    let (site_kind, site_code) = site_kind_and_code(&site);

    let mut seen = HashSet::new();
    let mut receipts = Vec::with_capacity(recs.len());
    let mut rows = Vec::with_capacity(recs.len());
    for rec in recs {
        let key = (rec.municipality, rec.client_record_id);
        if let Some(held) = stored.get(&key) {
            // Sent again (its first answer lost): the tablet learns where it stands.
            let outcome = match held {
                Some(reason) => checks::for_tablet(Outcome::Held {
                    reason: *reason,
                    detail: String::new(),
                }),
                None => Outcome::Duplicate,
            };
            receipts.push(Receipt {
                client_record_id: rec.client_record_id,
                outcome,
            });
            continue;
        }
        // A dose is credited to the site the tablet is registered for, never to
        // one a record names. Refused before the duplicate check: a record sent
        // twice in one batch is refused twice, never answered "duplicate".
        if rec.site != site {
            receipts.push(Receipt {
                client_record_id: rec.client_record_id,
                outcome: Outcome::Refused {
                    detail: format!(
                        "この端末は {site_name} ({site_code}) の接種を記録します。{} の記録は受け付けられません: この端末で接種の準備をやり直してください / this tablet records doses for {site_name} ({site_code}), not {}: set the session up again on this tablet",
                        site_kind_and_code(&rec.site).1,
                        site_kind_and_code(&rec.site).1
                    ),
                },
            });
            continue;
        }
        if !seen.insert(key) {
            receipts.push(Receipt {
                client_record_id: rec.client_record_id,
                outcome: Outcome::Duplicate,
            });
            continue;
        }
        let person = people.get(&(rec.municipality, rec.voucher));
        let pkey = person.map(|p| (rec.municipality, p.person_id.clone()));
        let verdict = checks::check(
            person.map(|p| p.status),
            pkey.as_ref()
                .and_then(|k| prior.get(k))
                .map_or(&[][..], Vec::as_slice),
            &Candidate {
                dose_number: rec.dose_number,
                vaccinated_on: rec.vaccinated_on,
                lot_expiry: expiry
                    .get(&(rec.vaccine, rec.lot.as_str().to_owned()))
                    .copied(),
            },
            today,
        );
        if let (Ok(()), Some(k)) = (&verdict, pkey) {
            prior.entry(k).or_default().push(PriorDose {
                dose_number: rec.dose_number.get(),
                vaccinated_on: rec.vaccinated_on,
            });
        }
        receipts.push(Receipt {
            client_record_id: rec.client_record_id,
            outcome: checks::for_tablet(match &verdict {
                Ok(()) => Outcome::Accepted,
                Err((reason, detail)) => Outcome::Held {
                    reason: *reason,
                    detail: detail.clone(),
                },
            }),
        });
        rows.push(Decided {
            record: rec,
            site_kind,
            site_name: site_name.clone(),
            site_code: site_code.clone(),
            person_id: person.map(|p| p.person_id.clone()),
            verdict,
        });
    }
    if !rows.is_empty() {
        sink.insert(site_municipality, &rows)?;
    }
    Ok(receipts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrs_domain::RemovalReason;

    /// An in-memory backend: Chiyoda's people by voucher, one person also
    /// registered in Sapporo (the vault's link), accepted doses, one lot.
    #[derive(Default)]
    struct Memory {
        people: HashMap<(MunicipalityCode, VoucherNumber), Person>,
        links: Links,
        doses: HashMap<(MunicipalityCode, String), Vec<PriorDose>>,
        stored: HashMap<(MunicipalityCode, ClientRecordId), Option<HoldReason>>,
        inserted: Vec<(ClientRecordId, String, Option<HoldReason>)>,
    }

    impl DoseSink for Memory {
        fn stored(
            &mut self,
            keys: &[(MunicipalityCode, ClientRecordId)],
        ) -> Result<HashMap<(MunicipalityCode, ClientRecordId), Option<HoldReason>>> {
            Ok(keys
                .iter()
                .filter_map(|k| self.stored.get(k).map(|v| (*k, *v)))
                .collect())
        }
        fn people(
            &mut self,
            vouchers: &[(MunicipalityCode, VoucherNumber)],
        ) -> Result<HashMap<(MunicipalityCode, VoucherNumber), Person>> {
            Ok(vouchers
                .iter()
                .filter_map(|k| self.people.get(k).map(|p| (*k, p.clone())))
                .collect())
        }
        fn linked(&mut self, people: &[(MunicipalityCode, &str)]) -> Result<Links> {
            Ok(people
                .iter()
                .filter_map(|(m, p)| {
                    let k = (*m, (*p).to_owned());
                    self.links.get(&k).map(|v| (k, v.clone()))
                })
                .collect())
        }
        fn prior(
            &mut self,
            people: &[(MunicipalityCode, &str)],
        ) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>> {
            Ok(people
                .iter()
                .map(|(m, p)| {
                    let k = (*m, (*p).to_owned());
                    let v = self.doses.get(&k).cloned().unwrap_or_default();
                    (k, v)
                })
                .collect())
        }
        fn expiries(
            &mut self,
            lots: &[(Vaccine, &Lot)],
        ) -> Result<HashMap<(Vaccine, String), NaiveDate>> {
            Ok(lots
                .iter()
                .filter(|(v, l)| *v == Vaccine::Pfizer && l.as_str() == "FA4597")
                .map(|(v, l)| ((*v, l.as_str().to_owned()), day("2021-08-31")))
                .collect())
        }
        fn device_site(&mut self, _: DeviceId) -> Result<Option<(SiteRef, String)>> {
            Ok(Some((clinic(), "テストクリニック".into())))
        }
        fn insert(&mut self, _: MunicipalityCode, rows: &[Decided<'_>]) -> Result<()> {
            for d in rows {
                self.inserted.push((
                    d.record.client_record_id,
                    d.site_name.clone(),
                    d.verdict.as_ref().err().map(|(r, _)| *r),
                ));
            }
            Ok(())
        }

        fn review_sink(&mut self, _: MunicipalityCode) -> Box<dyn ReviewSink + '_> {
            unreachable!("decide() retires no held record: run() does, over a backend")
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }
    fn m(s: &str) -> MunicipalityCode {
        s.parse().expect("code")
    }
    fn clinic() -> SiteRef {
        SiteRef::Clinic("0110113719".parse().expect("clinic"))
    }
    const DEVICE: DeviceId = DeviceId(uuid::Uuid::from_u128(1));

    fn rec(voucher: u64, dose: u8, date: &str, lot: &str) -> DoseRecord {
        DoseRecord::from_voucher(
            ClientRecordId::new(),
            format!("1{dose}131016{voucher:010}").parse().expect("line"),
            day(date),
            Vaccine::Pfizer,
            lot.parse().expect("lot"),
            clinic(),
            DEVICE,
        )
    }

    fn memory() -> Memory {
        let mut mem = Memory::default();
        let person = |id: &str, status| Person {
            person_id: id.into(),
            status,
        };
        let chiyoda = m("131016");
        let v = |n: u64| VoucherNumber::new(n).expect("voucher");
        mem.people.insert(
            (chiyoda, v(1310160001)),
            person("1", RegistrationStatus::Active),
        );
        mem.people.insert(
            (chiyoda, v(1310160002)),
            person("2", RegistrationStatus::Active),
        );
        mem.people.insert(
            (chiyoda, v(1310160003)),
            person("3", RegistrationStatus::Removed(RemovalReason::MovedOut)),
        );
        // Person 2 came from Sapporo, where doses 1 and 2 were given.
        mem.links
            .insert((chiyoda, "2".into()), vec![(m("011002"), "9".into())]);
        mem.doses.insert(
            (m("011002"), "9".into()),
            vec![
                PriorDose {
                    dose_number: 1,
                    vaccinated_on: day("2021-06-01"),
                },
                PriorDose {
                    dose_number: 2,
                    vaccinated_on: day("2021-06-22"),
                },
            ],
        );
        mem
    }

    /// Each case: a batch, and the receipts the tablet gets, in order.
    #[test]
    fn batches_to_receipts() {
        let elsewhere = {
            let mut r = rec(1310160001, 2, "2021-06-22", "FA4597");
            r.site = SiteRef::Site("SITE-9".parse().expect("site"));
            r
        };
        let twice = rec(1310160001, 1, "2021-06-01", "FA4597");
        let cases: Vec<(&str, Vec<DoseRecord>, Vec<&str>)> = vec![
            (
                "dose 1, then the batch's own dose 2",
                vec![
                    rec(1310160001, 1, "2021-06-01", "FA4597"),
                    rec(1310160001, 2, "2021-06-22", "FA4597"),
                ],
                vec!["accepted", "accepted"],
            ),
            (
                "the same record twice in a batch",
                vec![twice.clone(), twice],
                vec!["accepted", "duplicate"],
            ),
            (
                "a newcomer's dose 3 after doses 1 and 2 elsewhere; dose 2 again is a repeat",
                vec![
                    rec(1310160002, 2, "2021-07-01", "FA4597"),
                    rec(1310160002, 3, "2021-07-13", "FA4597"),
                ],
                vec!["held:dose_already_recorded", "accepted"],
            ),
            (
                "dated before the dose given elsewhere",
                vec![rec(1310160002, 3, "2021-06-20", "FA4597")],
                vec!["held:before_previous_dose"],
            ),
            (
                "unknown voucher, moved out (the tablet is told only 'removed')",
                vec![
                    rec(1310169999, 1, "2021-06-01", "FA4597"),
                    rec(1310160003, 1, "2021-06-01", "FA4597"),
                ],
                vec!["held:unknown_voucher", "held:person_removed"],
            ),
            (
                "a lot no list has, a lot past its expiry",
                vec![
                    rec(1310160001, 1, "2021-06-01", "ZZ9999"),
                    rec(1310160002, 3, "2021-09-01", "FA4597"),
                ],
                vec!["held:lot_unknown", "held:lot_expired"],
            ),
            (
                "a record naming another site, twice",
                vec![elsewhere.clone(), elsewhere],
                vec!["refused", "refused"],
            ),
        ];
        for (name, records, want) in cases {
            let mut mem = memory();
            let batch = UploadBatch { records };
            let got: Vec<String> = decide(&batch, m("131016"), DEVICE, day("2021-12-31"), &mut mem)
                .expect(name)
                .into_iter()
                .map(|r| match r.outcome {
                    Outcome::Accepted => "accepted".to_owned(),
                    Outcome::Duplicate => "duplicate".to_owned(),
                    Outcome::Refused { .. } => "refused".to_owned(),
                    Outcome::Held { reason, .. } => {
                        format!("held:{}", crate::store::codec::hold_code(reason))
                    }
                })
                .collect();
            assert_eq!(got, want, "{name}");
            // Stored: everything but duplicates and refusals, credited to the
            // tablet's site.
            let stored = want
                .iter()
                .filter(|w| **w != "duplicate" && **w != "refused")
                .count();
            assert_eq!(mem.inserted.len(), stored, "{name}");
            assert!(
                mem.inserted
                    .iter()
                    .all(|(_, site, _)| site == "テストクリニック")
            );
        }
    }
}
