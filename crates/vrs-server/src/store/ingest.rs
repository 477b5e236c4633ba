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

use crate::error::StoreError;
use crate::rules::checks::{self, Candidate, PriorDose};
use crate::rules::devices::site_kind_and_code;
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
    ) -> Result<HashMap<(MunicipalityCode, ClientRecordId), Option<HoldReason>>, StoreError>;
    /// The people these vouchers belong to.
    fn people(
        &mut self,
        vouchers: &[(MunicipalityCode, VoucherNumber)],
    ) -> Result<HashMap<(MunicipalityCode, VoucherNumber), Person>, StoreError>;
    /// Who else each of these people is, registered in another municipality with
    /// the same マイナンバー (through the vault; see [`Links`]).
    fn linked(&mut self, people: &[(MunicipalityCode, &str)]) -> Result<Links, StoreError>;
    /// These people's accepted doses.
    fn prior(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>, StoreError>;
    /// The expiry of those of these lots the service knows.
    fn expiries(
        &mut self,
        lots: &[(Vaccine, &Lot)],
    ) -> Result<HashMap<(Vaccine, String), NaiveDate>, StoreError>;
    /// The site the tablet is registered for, and the site's name: every record
    /// it sends is credited there. `None` for a device the service does not know.
    fn device_site(&mut self, device: DeviceId) -> Result<Option<(SiteRef, String)>, StoreError>;
    /// Stores the decided records.
    fn insert(
        &mut self,
        site_municipality: MunicipalityCode,
        rows: &[Decided<'_>],
    ) -> Result<(), StoreError>;
}

/// The held originals that this batch's stored records correct: (the original's
/// municipality, the original, the correction). See [`crate::store::records::supersede`].
pub fn corrections(
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
pub fn merge_linked(
    prior: &mut HashMap<(MunicipalityCode, String), Vec<PriorDose>>,
    links: &Links,
) {
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

/// Decides and stores a batch from the tablet `device` of `site_municipality`; one
/// receipt per record, in order. The caller commits.
pub fn run(
    batch: &UploadBatch,
    site_municipality: MunicipalityCode,
    device: DeviceId,
    today: NaiveDate,
    sink: &mut dyn DoseSink,
) -> Result<Vec<Receipt>, StoreError> {
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
        if !seen.insert(key) {
            receipts.push(Receipt {
                client_record_id: rec.client_record_id,
                outcome: Outcome::Duplicate,
            });
            continue;
        }
        // A dose is credited to the site the tablet is registered for, never to
        // one a record names.
        if rec.site != site {
            receipts.push(Receipt {
                client_record_id: rec.client_record_id,
                outcome: Outcome::Refused {
                    detail: format!(
                        "this tablet records doses for {site_name} ({site_code}), not {}: set the session up again on this tablet",
                        site_kind_and_code(&rec.site).1
                    ),
                },
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
