//! The review of stored dose records, once for both backends: a record is voided
//! or amended (and checked again), each time after the record as it was is kept in
//! its history. The backends give the reads and writes ([`ReviewSink`]) inside one
//! write transaction; the decisions are here and in [`crate::rules::checks`].

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use vrs_domain::csv::ledger::LedgerRow;
use vrs_domain::wire::{HoldReason, Outcome};
use vrs_domain::{ClientRecordId, DoseNumber, Lot, MunicipalityCode, Vaccine, VoucherNumber};

use super::{Amendment, Match};
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::checks::{self, Candidate, PriorDose};
use crate::store::vault::Links;

/// The checks' verdict on a record: accepted, or held with a reason and its detail.
pub type Verdict = Result<(), (HoldReason, String)>;

/// A row of `doses` about to be written, as both backends write it.
#[derive(Debug)]
pub struct NewDose<'a> {
    pub municipality: MunicipalityCode,
    pub client_record_id: ClientRecordId,
    pub voucher: VoucherNumber,
    pub voucher_kind: Option<u8>,
    pub dose_number: Option<u8>,
    pub vaccinated_on: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: &'a Lot,
    pub site_kind: Option<&'static str>,
    pub site_code: Option<String>,
    pub site_municipality: MunicipalityCode,
    pub site_name: String,
    pub doctor_name: Option<&'a str>,
    pub device_id: Option<String>,
    pub source: &'static str,
    /// When it was registered, if the upload says so (a paper record's 登録日時);
    /// otherwise the time of the write.
    pub registered_at: Option<NaiveDateTime>,
}

impl<'a> NewDose<'a> {
    /// A paper record of `municipality` (a line of the ledger layout).
    pub fn paper(
        municipality: MunicipalityCode,
        id: ClientRecordId,
        row: &'a LedgerRow,
        dose: Option<DoseNumber>,
    ) -> Self {
        NewDose {
            municipality,
            client_record_id: id,
            voucher: row.voucher,
            voucher_kind: None,
            dose_number: dose.map(|d| d.get()),
            vaccinated_on: row.vaccinated_on,
            vaccine: row.vaccine,
            lot: &row.lot,
            site_kind: None,
            site_code: None,
            site_municipality: row.site_municipality,
            site_name: row.site_name.clone(),
            doctor_name: row.doctor_name.as_deref(),
            device_id: None,
            source: "paper",
            registered_at: row.registered_at,
        }
    }
}

/// What the checks of one record need from a backend.
pub trait RecordLookups {
    /// The person with this voucher in the sink's municipality, and their accepted
    /// doses (a record being amended is not among them).
    fn find_match(&mut self, voucher: VoucherNumber) -> Result<Match>;
    /// The lot's expiry, when the service knows the lot.
    fn lot_expiry(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<NaiveDate>>;
    /// Who else this person of the sink's municipality is, registered elsewhere
    /// with the same マイナンバー (through the vault).
    fn linked(&mut self, person_id: &str) -> Result<Links>;
    /// These people's accepted doses.
    fn prior_of(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>>;
}

/// The person with this voucher, and their accepted doses in every municipality
/// they are registered in (a newcomer's earlier doses count where they were given).
pub fn find_everywhere(sink: &mut dyn RecordLookups, voucher: VoucherNumber) -> Result<Match> {
    let mut found = sink.find_match(voucher)?;
    let Some(pid) = found.person_id.clone() else {
        return Ok(found);
    };
    let links = sink.linked(&pid)?;
    let others: Vec<(MunicipalityCode, &str)> = links
        .values()
        .flatten()
        .map(|(m, p)| (*m, p.as_str()))
        .collect();
    if !others.is_empty() {
        for (_, doses) in sink.prior_of(&others)? {
            found.prior.extend(doses);
        }
    }
    Ok(found)
}

/// A stored record as the review reads it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub revision: i64,
    /// `accepted`, `held` or `voided`.
    pub state: String,
    pub voucher: VoucherNumber,
    pub dose_number: Option<DoseNumber>,
    pub vaccinated_on: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
    /// The tablet that sent it (`None`: a paper record).
    pub device: Option<String>,
    /// The record's fields as a JSON object, kept in its history.
    pub before: String,
}

/// A record's fields after an amendment.
#[derive(Clone, Debug)]
pub struct Amended {
    pub voucher: VoucherNumber,
    pub dose_number: DoseNumber,
    pub vaccinated_on: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
}

/// The review's reads and writes, inside one write transaction of the backend (on
/// PostgreSQL with the municipality's lock held, so that two reviews of one
/// municipality run one after the other).
/// A review step (void, release, amend), run by [`crate::store::Records::review`]
/// in one write transaction.
pub type ReviewStep<'a> = dyn FnMut(&mut dyn ReviewSink) -> Result<()> + 'a;

pub trait ReviewSink: RecordLookups {
    /// The record, if the municipality has it.
    fn record(&mut self, id: ClientRecordId) -> Result<Option<Stored>>;
    /// Keeps the record as it was in its history.
    fn keep_history(&mut self, id: ClientRecordId, entry: &History<'_>) -> Result<()>;
    /// Writes a change to the record, with its next revision.
    fn write(&mut self, id: ClientRecordId, change: Change<'_>, revision: i64) -> Result<()>;
}

/// A record as it was before a change, kept in its history.
#[derive(Debug)]
pub struct History<'a> {
    /// The revision it was.
    pub revision: i64,
    /// Who changed it, and why.
    pub actor: &'a str,
    pub reason: &'a str,
    /// The record's fields as JSON (see [`Stored::before`]).
    pub before: &'a str,
}

/// A change to a stored record.
#[derive(Debug)]
pub enum Change<'a> {
    /// Its state only ("voided", "accepted", "amending").
    State(&'static str),
    /// A held record superseded by its tablet's correction.
    SupersededBy(ClientRecordId),
    /// Amended fields, the checks' verdict on them, and the person they now
    /// belong to.
    Amended(&'a Amended, &'a Verdict, Option<&'a str>),
}

/// Keeps the record as it was in its history; the record and its next revision.
fn keep(
    sink: &mut dyn ReviewSink,
    actor: &Principal,
    id: ClientRecordId,
    reason: &str,
) -> Result<(Stored, i64)> {
    let record = sink
        .record(id)?
        .ok_or_else(|| StoreError::NotFound(format!("record {id}")))?;
    if reason.trim().is_empty() {
        return Err(StoreError::Invalid(
            "give a reason: it is kept with the record's history".into(),
        ));
    }
    sink.keep_history(
        id,
        &History {
            revision: record.revision,
            actor: &actor.to_string(),
            reason,
            before: &record.before,
        },
    )?;
    let next = record.revision + 1;
    Ok((record, next))
}

/// Voids a record: it stays, with its history, but leaves the ledger.
pub fn void(
    sink: &mut dyn ReviewSink,
    actor: &Principal,
    id: ClientRecordId,
    reason: &str,
) -> Result<()> {
    let (_, revision) = keep(sink, actor, id, reason)?;
    sink.write(id, Change::State("voided"), revision)
}

/// Releases a held record: a clerk who checked it accepts it as it is (the reason
/// is kept in its history). A record held for an unknown voucher is released only
/// once someone holds the voucher (register the person first), and then belongs
/// to them.
pub fn release(
    sink: &mut dyn ReviewSink,
    actor: &Principal,
    id: ClientRecordId,
    reason: &str,
) -> Result<()> {
    let (record, revision) = keep(sink, actor, id, reason)?;
    if record.state != "held" {
        return Err(StoreError::Invalid(format!(
            "保留中の記録だけを確認済みとして登録できます (この記録は {}) / record {id} is {}: only a held record is released",
            record.state, record.state
        )));
    }
    let found = sink.find_match(record.voucher)?;
    if found.person_id.is_none() {
        return Err(StoreError::Invalid(
            "この券番号の対象者はまだ登録されていません。住民記録を取り込むか券番号を修正してから登録してください / no registered person has this voucher yet: upload the register with them first (or amend the voucher), then release".into(),
        ));
    }
    let fields = Amended {
        voucher: record.voucher,
        dose_number: record.dose_number.ok_or_else(|| {
            StoreError::Invalid(
                "接種回数を修正で入力してください / give the dose number: amend it".into(),
            )
        })?,
        vaccinated_on: record.vaccinated_on,
        vaccine: record.vaccine,
        lot: record.lot,
    };
    sink.write(
        id,
        Change::Amended(&fields, &Ok(()), found.person_id.as_deref()),
        revision,
    )
}

/// A tablet corrected a record the server holds: the held original leaves the
/// queue, marked superseded by the correction `by` (kept in its history). Only a
/// held record of the same tablet; `false` when there is none (it was released,
/// voided or amended meanwhile, and the correction is checked like any record).
pub fn supersede(
    sink: &mut dyn ReviewSink,
    device: &Principal,
    original: ClientRecordId,
    by: ClientRecordId,
) -> Result<bool> {
    let (_, own) = device.device()?;
    let Some(record) = sink.record(original)? else {
        return Ok(false);
    };
    if record.state != "held" || record.device.as_deref() != Some(own.to_string().as_str()) {
        return Ok(false);
    }
    let (_, revision) = keep(
        sink,
        device,
        original,
        &format!("タブレットで訂正 (記録 {by}) / corrected on the tablet: record {by}"),
    )?;
    sink.write(original, Change::SupersededBy(by), revision)?;
    Ok(true)
}

/// Amends a record (voucher, date, dose number, vaccine, lot) and checks it again
/// against the person's other accepted doses: an amended held record may become
/// accepted, and the other way round.
pub fn amend(
    sink: &mut dyn ReviewSink,
    actor: &Principal,
    id: ClientRecordId,
    change: &Amendment,
    reason: &str,
    today: NaiveDate,
) -> Result<Outcome> {
    let (record, revision) = keep(sink, actor, id, reason)?;
    if record.state == "voided" {
        return Err(StoreError::Invalid(
            "a voided record cannot be amended".into(),
        ));
    }
    let fields = Amended {
        voucher: change.voucher.unwrap_or(record.voucher),
        dose_number: change
            .dose_number
            .or(record.dose_number)
            .ok_or_else(|| StoreError::Invalid("give the dose number".into()))?,
        vaccinated_on: change.vaccinated_on.unwrap_or(record.vaccinated_on),
        vaccine: change.vaccine.unwrap_or(record.vaccine),
        lot: change.lot.clone().unwrap_or(record.lot),
    };
    // Out of the person's accepted doses while it is checked against them.
    sink.write(id, Change::State("amending"), record.revision)?;
    let found = find_everywhere(sink, fields.voucher)?;
    let verdict = checks::check(
        found.status,
        &found.prior,
        &Candidate {
            dose_number: fields.dose_number,
            vaccinated_on: fields.vaccinated_on,
            lot_expiry: sink.lot_expiry(fields.vaccine, &fields.lot)?,
        },
        today,
    );
    sink.write(
        id,
        Change::Amended(&fields, &verdict, found.person_id.as_deref()),
        revision,
    )?;
    Ok(match verdict {
        Ok(()) => Outcome::Accepted,
        Err((reason, detail)) => Outcome::Held { reason, detail },
    })
}
