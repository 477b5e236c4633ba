//! Dose records on the embedded store: tablet batches, paper uploads, and the review
//! of held records (void, amend, with their history).

use std::io::Read;

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use vrs_domain::wire::{HoldReason, Receipt, UploadBatch};
use vrs_domain::{ClientRecordId, DoseNumber, Lot, MunicipalityCode, Vaccine, VoucherNumber};

use super::SqliteStore;
use super::vault::SqliteVault;
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::checks::PriorDose;
use crate::rules::devices::site_ref;
use crate::store::codec::{date_of, hold_of, outcome_text, status_of, time_text, verdict_columns};
use crate::store::import;
use crate::store::ingest;
use crate::store::records::{
    Change, History, NewDose, RecordLookups, ReviewSink, ReviewStep, Stored, Verdict,
};
use crate::store::vault::Links;
use crate::store::{
    HeldRecord, ImportOptions, ImportOutcome, ImportReport, Match, Records, jst_now,
};

/// A person's accepted doses, for the checks.
fn prior_doses(
    tx: &Transaction<'_>,
    m: MunicipalityCode,
    person_id: &str,
) -> Result<Vec<PriorDose>> {
    let mut st = tx.prepare_cached(
        // Without INDEXED BY, SQLite's planner (no statistics) walks the whole
        // municipality's doses by primary key.
        "SELECT dose_number, vaccinated_on FROM doses INDEXED BY doses_by_person
         WHERE municipality = ?1 AND person_id = ?2 AND state = 'accepted' AND dose_number IS NOT NULL",
    )?;
    st.query_map(params![m.get(), person_id], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?
    .map(|r| {
        let (n, d) = r?;
        Ok(PriorDose {
            dose_number: n as u8,
            vaccinated_on: date_of(&d)?,
        })
    })
    .collect()
}

fn lot_expiry(tx: &Transaction<'_>, vaccine: Vaccine, lot: &Lot) -> Result<Option<NaiveDate>> {
    let e: Option<String> = tx
        .prepare_cached("SELECT expiry FROM lots WHERE vaccine = ?1 AND lot = ?2")?
        .query_row(params![vaccine.code(), lot.as_str()], |r| r.get(0))
        .optional()?;
    e.map(|s| date_of(&s)).transpose()
}

/// Writes a row of `doses`; `now` is its registration time unless it brings one.
fn insert_dose(
    tx: &Transaction<'_>,
    d: &NewDose<'_>,
    m: &Match,
    verdict: &Verdict,
    now: &str,
) -> Result<()> {
    let (state, reason, detail) = verdict_columns(verdict);
    let registered_at = d.registered_at.map(time_text);
    tx.prepare_cached(
        "INSERT INTO doses (municipality, client_record_id, voucher, voucher_kind, dose_number,
             vaccinated_on, vaccine, lot, site_kind, site_code, site_municipality, site_name,
             doctor_name, device_id, source, person_id, state, hold_reason, hold_detail, registered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?
    .execute(params![
        d.municipality.get(),
        d.client_record_id.to_string(),
        d.voucher.get() as i64,
        d.voucher_kind,
        d.dose_number,
        d.vaccinated_on.to_string(),
        d.vaccine.code(),
        d.lot.as_str(),
        d.site_kind,
        d.site_code,
        d.site_municipality.get(),
        d.site_name,
        d.doctor_name,
        d.device_id,
        d.source,
        m.person_id,
        state,
        reason,
        detail,
        registered_at.as_deref().unwrap_or(now),
    ])?;
    Ok(())
}

impl Records for SqliteStore {
    /// Stores a tablet's batch, one receipt per record, in order (see
    /// [`ingest::run`]). The batch is one transaction: after a crash either
    /// all of it is stored or none, and re-sending it gives `duplicate` for what was
    /// stored.
    fn ingest(
        &self,
        actor: &Principal,
        batch: &UploadBatch,
        today: NaiveDate,
    ) -> Result<Vec<Receipt>> {
        let registered_at = time_text(jst_now());
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let receipts = ingest::run(
            actor,
            batch,
            today,
            &mut SqliteDoseSink {
                tx: &tx,
                vault: &self.vault,
                registered_at: &registered_at,
            },
        )?;
        tx.commit()?;
        Ok(receipts)
    }

    /// Imports paper records (the ledger CSV layout) for `municipality`: see
    /// [`import::run_paper`].
    fn import_paper(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        actor.require_staff_of(municipality)?;
        let now = time_text(jst_now());
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut sink = SqliteRecords::new(&tx, &self.vault, municipality, &now);
        let (mut report, errors) = import::run_paper(input, municipality, opts, &mut sink)?;
        let insert = "INSERT INTO imports (municipality, kind, actor, started_at, outcome, report, errors_csv)
                      VALUES (?1, 'paper', ?2, ?3, ?4, ?5, ?6)";
        let args = params![
            municipality.get(),
            actor.to_string(),
            now,
            outcome_text(report.outcome),
            import::summary(&report),
            errors.text
        ];
        if report.outcome == ImportOutcome::Applied {
            tx.execute(insert, args)?;
            report.import_id = tx.last_insert_rowid();
            tx.commit()?;
        } else {
            tx.rollback()?;
            conn.execute(insert, args)?;
            report.import_id = conn.last_insert_rowid();
        }
        Ok(report)
    }

    /// Records held for review, oldest first.
    fn held(&self, actor: &Principal, municipality: MunicipalityCode) -> Result<Vec<HeldRecord>> {
        actor.require_staff_of(municipality)?;
        let conn = self.pool.get()?;
        let mut st = conn.prepare_cached(
            "SELECT client_record_id, voucher, dose_number, vaccinated_on, vaccine, lot,
                    hold_reason, hold_detail, registered_at
             FROM doses INDEXED BY doses_held
             WHERE municipality = ?1 AND state = 'held' ORDER BY registered_at",
        )?;
        let rows = st
            .query_map([municipality.get()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, v, n, d, vac, lot, reason, detail, at)| {
                Ok(HeldRecord {
                    client_record_id: ClientRecordId(
                        id.parse()
                            .map_err(|_| StoreError::Corrupt("record id".into()))?,
                    ),
                    voucher: VoucherNumber::new(v as u64)
                        .ok_or_else(|| StoreError::Corrupt("voucher".into()))?,
                    dose_number: n.map(|n| n as u8),
                    vaccinated_on: date_of(&d)?,
                    vaccine: vac
                        .parse()
                        .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                    lot: lot.parse().map_err(|_| StoreError::Corrupt("lot".into()))?,
                    reason: hold_of(&reason)?,
                    detail,
                    registered_at: at,
                })
            })
            .collect()
    }

    /// A review step in one write transaction.
    fn review(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        step: &mut ReviewStep<'_>,
    ) -> Result<()> {
        actor.require_staff_of(municipality)?;
        let now = time_text(jst_now());
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        step(&mut SqliteRecords::new(
            &tx,
            &self.vault,
            municipality,
            &now,
        ))?;
        tx.commit()?;
        Ok(())
    }
}

/// A tablet batch's reads and writes on SQLite (a statement per item: in process, a
/// round trip costs nothing).
struct SqliteDoseSink<'a> {
    tx: &'a Transaction<'a>,
    vault: &'a SqliteVault,
    registered_at: &'a str,
}

impl ingest::DoseSink for SqliteDoseSink<'_> {
    fn stored(
        &mut self,
        keys: &[(MunicipalityCode, ClientRecordId)],
    ) -> Result<std::collections::HashMap<(MunicipalityCode, ClientRecordId), Option<HoldReason>>>
    {
        let mut st = self.tx.prepare_cached(
            "SELECT state, hold_reason FROM doses WHERE municipality = ?1 AND client_record_id = ?2",
        )?;
        let mut out = std::collections::HashMap::new();
        for (m, id) in keys {
            let row: Option<(String, Option<String>)> = st
                .query_row(params![m.get(), id.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((state, reason)) = row {
                let held = match (state.as_str(), reason) {
                    ("held", Some(r)) => Some(hold_of(&r)?),
                    _ => None,
                };
                out.insert((*m, *id), held);
            }
        }
        Ok(out)
    }

    fn people(
        &mut self,
        vouchers: &[(MunicipalityCode, VoucherNumber)],
    ) -> Result<
        std::collections::HashMap<(MunicipalityCode, VoucherNumber), ingest::Person>,
        StoreError,
    > {
        let mut st = self.tx.prepare_cached(
            "SELECT person_id, status FROM persons WHERE municipality = ?1 AND voucher = ?2",
        )?;
        let mut out = std::collections::HashMap::new();
        for (m, v) in vouchers {
            let found: Option<(String, String)> = st
                .query_row(params![m.get(), v.get() as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((person_id, status)) = found {
                out.insert(
                    (*m, *v),
                    ingest::Person {
                        person_id,
                        status: status_of(&status),
                    },
                );
            }
        }
        Ok(out)
    }

    fn linked(&mut self, people: &[(MunicipalityCode, &str)]) -> Result<Links> {
        self.vault.linked(people)
    }

    fn prior(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<std::collections::HashMap<(MunicipalityCode, String), Vec<PriorDose>>> {
        prior_many(self.tx, people)
    }

    fn expiries(
        &mut self,
        lots: &[(Vaccine, &Lot)],
    ) -> Result<std::collections::HashMap<(Vaccine, String), NaiveDate>> {
        let mut out = std::collections::HashMap::new();
        for (v, l) in lots {
            if let Some(e) = lot_expiry(self.tx, *v, l)? {
                out.insert((*v, l.as_str().to_owned()), e);
            }
        }
        Ok(out)
    }

    fn device_site(
        &mut self,
        device: vrs_domain::DeviceId,
    ) -> Result<Option<(vrs_domain::SiteRef, String)>> {
        let row: Option<(String, String, Option<String>)> = self
            .tx
            .prepare_cached(
                "SELECT d.site_kind, d.site_code, s.name FROM devices d
                 LEFT JOIN sites s ON s.municipality = d.municipality AND s.code = d.site_code
                 WHERE d.id = ?1",
            )?
            .query_row([device.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(kind, code, name)| Ok((site_ref(&kind, &code)?, name.unwrap_or(code))))
            .transpose()
    }

    fn insert(
        &mut self,
        site_municipality: MunicipalityCode,
        rows: &[ingest::Decided<'_>],
    ) -> Result<()> {
        for d in rows {
            let rec = d.record;
            insert_dose(
                self.tx,
                &NewDose {
                    municipality: rec.municipality,
                    client_record_id: rec.client_record_id,
                    voucher: rec.voucher,
                    voucher_kind: Some(rec.voucher_kind.get()),
                    dose_number: Some(rec.dose_number.get()),
                    vaccinated_on: rec.vaccinated_on,
                    vaccine: rec.vaccine,
                    lot: &rec.lot,
                    site_kind: Some(d.site_kind),
                    site_code: Some(d.site_code.clone()),
                    site_municipality,
                    site_name: d.site_name.clone(),
                    doctor_name: None,
                    device_id: Some(rec.device_id.to_string()),
                    source: "tablet",
                    registered_at: None,
                },
                &Match {
                    person_id: d.person_id.clone(),
                    status: None,
                    prior: Vec::new(),
                },
                &d.verdict,
                self.registered_at,
            )?;
        }
        Ok(())
    }

    fn review_sink(&mut self, municipality: MunicipalityCode) -> Box<dyn ReviewSink + '_> {
        Box::new(SqliteRecords::new(
            self.tx,
            self.vault,
            municipality,
            self.registered_at,
        ))
    }
}

/// A paper upload's and a review's reads and writes on SQLite, in one municipality.
struct SqliteRecords<'a> {
    tx: &'a Transaction<'a>,
    vault: &'a SqliteVault,
    municipality: MunicipalityCode,
    now: &'a str,
}

impl<'a> SqliteRecords<'a> {
    fn new(
        tx: &'a Transaction<'a>,
        vault: &'a SqliteVault,
        municipality: MunicipalityCode,
        now: &'a str,
    ) -> Self {
        SqliteRecords {
            tx,
            vault,
            municipality,
            now,
        }
    }
}

/// These people's accepted doses.
fn prior_many(
    tx: &Transaction<'_>,
    people: &[(MunicipalityCode, &str)],
) -> Result<std::collections::HashMap<(MunicipalityCode, String), Vec<PriorDose>>> {
    let mut out = std::collections::HashMap::new();
    for (m, p) in people {
        out.insert((*m, (*p).to_owned()), prior_doses(tx, *m, p)?);
    }
    Ok(out)
}

impl RecordLookups for SqliteRecords<'_> {
    fn find_match(&mut self, voucher: VoucherNumber) -> Result<Match> {
        let found: Option<(String, String)> = self
            .tx
            .prepare_cached(
                "SELECT person_id, status FROM persons WHERE municipality = ?1 AND voucher = ?2",
            )?
            .query_row(
                params![self.municipality.get(), voucher.get() as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((person_id, status)) = found else {
            return Ok(Match::nobody());
        };
        let prior = prior_doses(self.tx, self.municipality, &person_id)?;
        Ok(Match {
            person_id: Some(person_id),
            status: Some(status_of(&status)),
            prior,
        })
    }

    fn lot_expiry(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<NaiveDate>> {
        lot_expiry(self.tx, vaccine, lot)
    }

    fn linked(&mut self, person_id: &str) -> Result<Links> {
        self.vault.linked(&[(self.municipality, person_id)])
    }

    fn prior_of(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<std::collections::HashMap<(MunicipalityCode, String), Vec<PriorDose>>> {
        prior_many(self.tx, people)
    }
}

impl ReviewSink for SqliteRecords<'_> {
    fn record(&mut self, id: ClientRecordId) -> Result<Option<Stored>> {
        type Row = (
            i64,
            String,
            String,
            i64,
            Option<i64>,
            String,
            String,
            String,
            Option<String>,
        );
        let row: Option<Row> = self
            .tx
            .query_row(
                "SELECT revision, state, json_object(
                     'voucher', voucher, 'dose_number', dose_number, 'vaccinated_on', vaccinated_on,
                     'vaccine', vaccine, 'lot', lot, 'state', state, 'hold_reason', hold_reason),
                     voucher, dose_number, vaccinated_on, vaccine, lot, device_id
                 FROM doses WHERE municipality = ?1 AND client_record_id = ?2",
                params![self.municipality.get(), id.to_string()],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()?;
        row.map(
            |(revision, state, before, voucher, dose, date, vaccine, lot, device)| {
                Ok(Stored {
                    revision,
                    state,
                    voucher: VoucherNumber::new(voucher as u64)
                        .ok_or_else(|| StoreError::Corrupt("voucher".into()))?,
                    dose_number: dose.and_then(|d| DoseNumber::new(d as u8)),
                    vaccinated_on: date_of(&date)?,
                    vaccine: vaccine
                        .parse()
                        .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                    lot: lot.parse().map_err(|_| StoreError::Corrupt("lot".into()))?,
                    device,
                    before,
                })
            },
        )
        .transpose()
    }

    fn keep_history(&mut self, id: ClientRecordId, h: &History<'_>) -> Result<()> {
        self.tx.execute(
            "INSERT INTO dose_history (municipality, client_record_id, revision, changed_at, actor, reason, before)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![self.municipality.get(), id.to_string(), h.revision, self.now, h.actor, h.reason, h.before],
        )?;
        Ok(())
    }

    fn write(&mut self, id: ClientRecordId, change: Change<'_>, revision: i64) -> Result<()> {
        let (m, id) = (self.municipality.get(), id.to_string());
        match change {
            Change::State(state) => self.tx.execute(
                "UPDATE doses SET state = ?4, revision = ?3 WHERE municipality = ?1 AND client_record_id = ?2",
                params![m, id, revision, state],
            )?,
            Change::SupersededBy(by) => self.tx.execute(
                "UPDATE doses SET state = 'superseded', superseded_by = ?4, revision = ?3
                 WHERE municipality = ?1 AND client_record_id = ?2",
                params![m, id, revision, by.to_string()],
            )?,
            Change::Amended(f, verdict, person_id) => {
                let (state, hold, detail) = verdict_columns(verdict);
                self.tx.execute(
                    "UPDATE doses SET dose_number = ?4, vaccinated_on = ?5, vaccine = ?6, lot = ?7,
                         state = ?8, hold_reason = ?9, hold_detail = ?10, person_id = ?11,
                         voucher = ?12, revision = ?3
                     WHERE municipality = ?1 AND client_record_id = ?2",
                    params![
                        m,
                        id,
                        revision,
                        f.dose_number.get(),
                        f.vaccinated_on.to_string(),
                        f.vaccine.code(),
                        f.lot.as_str(),
                        state,
                        hold,
                        detail,
                        person_id,
                        f.voucher.get() as i64
                    ],
                )?
            }
        };
        Ok(())
    }
}

impl import::PaperSink for SqliteRecords<'_> {
    fn exists(&mut self, id: ClientRecordId) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM doses WHERE municipality = ?1 AND client_record_id = ?2)",
            )?
            .query_row(params![self.municipality.get(), id.to_string()], |r| r.get(0))?)
    }

    fn insert(&mut self, dose: &NewDose<'_>, found: &Match, verdict: &Verdict) -> Result<()> {
        insert_dose(self.tx, dose, found, verdict, self.now)
    }
}
