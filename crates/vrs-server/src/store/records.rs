//! The review of stored dose records, once for both backends: a record is voided
//! or amended (and checked again), each time after the record as it was is kept in
//! its history. The backends give the reads and writes ([`ReviewSink`]) inside one
//! write transaction; the decisions are here and in [`crate::rules::checks`].

use std::collections::HashMap;

use chrono::NaiveDate;
use vrs_domain::wire::{HoldReason, Outcome};
use vrs_domain::{ClientRecordId, DoseNumber, Lot, MunicipalityCode, Vaccine, VoucherNumber};

use super::{Amendment, Match};
use crate::error::StoreError;
use crate::principal::Principal;
use crate::rules::checks::{self, Candidate, PriorDose};
use crate::store::vault::Links;

/// The checks' verdict on a record: accepted, or held with a reason and its detail.
pub type Verdict = Result<(), (HoldReason, String)>;

/// What the checks of one record need from a backend.
pub trait RecordLookups {
    /// The person with this voucher in the sink's municipality, and their accepted
    /// doses (a record being amended is not among them).
    fn find_match(&mut self, voucher: VoucherNumber) -> Result<Match, StoreError>;
    /// The lot's expiry, when the service knows the lot.
    fn lot_expiry(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<NaiveDate>, StoreError>;
    /// Who else this person of the sink's municipality is, registered elsewhere
    /// with the same マイナンバー (through the vault).
    fn linked(&mut self, person_id: &str) -> Result<Links, StoreError>;
    /// These people's accepted doses.
    fn prior_of(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>, StoreError>;
}

/// The person with this voucher, and their accepted doses in every municipality
/// they are registered in (a newcomer's earlier doses count where they were given).
pub fn find_everywhere(
    sink: &mut dyn RecordLookups,
    voucher: VoucherNumber,
) -> Result<Match, StoreError> {
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
pub trait ReviewSink: RecordLookups {
    /// The record, if the municipality has it.
    fn record(&mut self, id: ClientRecordId) -> Result<Option<Stored>, StoreError>;
    /// Keeps `before` as the record's revision `revision`, with who changed it and why.
    fn keep_history(
        &mut self,
        id: ClientRecordId,
        revision: i64,
        actor: &str,
        reason: &str,
        before: &str,
    ) -> Result<(), StoreError>;
    /// Sets the record's state (and revision).
    fn set_state(
        &mut self,
        id: ClientRecordId,
        state: &'static str,
        revision: i64,
    ) -> Result<(), StoreError>;
    /// Marks a held record superseded by its tablet's correction `by`.
    fn set_superseded(
        &mut self,
        id: ClientRecordId,
        by: ClientRecordId,
        revision: i64,
    ) -> Result<(), StoreError>;
    /// Writes the amended fields, the verdict, the person they now belong to and the
    /// revision.
    fn update(
        &mut self,
        id: ClientRecordId,
        fields: &Amended,
        verdict: &Verdict,
        person_id: Option<&str>,
        revision: i64,
    ) -> Result<(), StoreError>;
}

/// Keeps the record as it was in its history; the record and its next revision.
fn keep(
    sink: &mut dyn ReviewSink,
    actor: &Principal,
    id: ClientRecordId,
    reason: &str,
) -> Result<(Stored, i64), StoreError> {
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
        record.revision,
        &actor.to_string(),
        reason,
        &record.before,
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
) -> Result<(), StoreError> {
    let (_, revision) = keep(sink, actor, id, reason)?;
    sink.set_state(id, "voided", revision)
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
) -> Result<(), StoreError> {
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
    sink.update(id, &fields, &Ok(()), found.person_id.as_deref(), revision)
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
) -> Result<bool, StoreError> {
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
    sink.set_superseded(original, by, revision)?;
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
) -> Result<Outcome, StoreError> {
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
    sink.set_state(id, "amending", record.revision)?;
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
    sink.update(id, &fields, &verdict, found.person_id.as_deref(), revision)?;
    Ok(match verdict {
        Ok(()) => Outcome::Accepted,
        Err((reason, detail)) => Outcome::Held { reason, detail },
    })
}
