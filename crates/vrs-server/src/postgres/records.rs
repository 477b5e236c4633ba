//! Dose records on PostgreSQL: tablet batches (set-wise), paper uploads, and the
//! review of held records (void, amend, with their history).

use std::collections::HashMap;
use std::io::Read;

use chrono::{NaiveDate, NaiveDateTime};
use postgres::Transaction;
use vrs_domain::wire::{HoldReason, Receipt, UploadBatch};
use vrs_domain::{ClientRecordId, DoseNumber, Lot, MunicipalityCode, Vaccine, VoucherNumber};

use super::pool::PgPool;
use super::{PgStore, by_index, lock_municipality, mc, record_import};
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::checks::PriorDose;
use crate::rules::devices::site_ref;
use crate::store::codec::{hold_code, hold_of, municipality_code, status_of, verdict_columns};
use crate::store::import;
use crate::store::ingest;
use crate::store::records::{
    Change, History, NewDose, RecordLookups, ReviewSink, ReviewStep, Stored, Verdict,
};
use crate::store::vault::Links;
use crate::store::{
    HeldRecord, ImportOptions, ImportOutcome, ImportReport, Match, Records, jst_now,
};

fn insert_dose(
    tx: &mut Transaction<'_>,
    d: &NewDose<'_>,
    m: &Match,
    verdict: &Verdict,
    now: NaiveDateTime,
) -> Result<()> {
    let (state, reason, detail) = verdict_columns(verdict);
    tx.execute(
        "INSERT INTO vrs.doses (municipality, client_record_id, voucher, voucher_kind, dose_number,
             vaccinated_on, vaccine, lot, site_kind, site_code, site_municipality, site_name,
             doctor_name, device_id, source, person_id, state, hold_reason, hold_detail, registered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        &[
            &mc(d.municipality),
            &d.client_record_id.0,
            &(d.voucher.get() as i64),
            &d.voucher_kind.map(i16::from),
            &d.dose_number.map(i16::from),
            &d.vaccinated_on,
            &d.vaccine.code(),
            &d.lot.as_str(),
            &d.site_kind,
            &d.site_code,
            &mc(d.site_municipality),
            &d.site_name,
            &d.doctor_name,
            &d.device_id,
            &d.source,
            &m.person_id,
            &state,
            &reason,
            &detail,
            &d.registered_at.unwrap_or(now),
        ],
    )?;
    Ok(())
}

/// A paper upload's and a review's reads and writes on PostgreSQL, in one
/// municipality (whose lock the transaction holds).
struct PgRecords<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    vault: &'a PgPool,
    municipality: MunicipalityCode,
    now: NaiveDateTime,
}

impl<'a, 'b> PgRecords<'a, 'b> {
    fn new(tx: &'a mut Transaction<'b>, vault: &'a PgPool, municipality: MunicipalityCode) -> Self {
        PgRecords {
            tx,
            vault,
            municipality,
            now: jst_now(),
        }
    }
}

/// These people's accepted doses, in one round trip.
fn prior_many(
    tx: &mut Transaction<'_>,
    people: &[(MunicipalityCode, &str)],
) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>> {
    let ms: Vec<i32> = people.iter().map(|(m, _)| mc(*m)).collect();
    let ps: Vec<&str> = people.iter().map(|(_, p)| *p).collect();
    let mut out: HashMap<(MunicipalityCode, String), Vec<PriorDose>> = HashMap::new();
    for r in tx.query(
        "SELECT d.municipality, d.person_id, d.dose_number, d.vaccinated_on
         FROM UNNEST($1::int4[], $2::text[]) AS u(m, p)
         CROSS JOIN LATERAL (SELECT municipality, person_id, dose_number, vaccinated_on
             FROM vrs.doses WHERE municipality = u.m AND person_id = u.p
             AND state = 'accepted' AND dose_number IS NOT NULL OFFSET 0) d",
        &[&ms, &ps],
    )? {
        let m = municipality_code(i64::from(r.get::<_, i32>(0)))?;
        out.entry((m, r.get(1))).or_default().push(PriorDose {
            dose_number: r.get::<_, i16>(2) as u8,
            vaccinated_on: r.get(3),
        });
    }
    Ok(out)
}

impl RecordLookups for PgRecords<'_, '_> {
    fn find_match(&mut self, voucher: VoucherNumber) -> Result<Match> {
        let m = mc(self.municipality);
        let found = self.tx.query_opt(
            "SELECT person_id, status FROM vrs.persons WHERE municipality = $1 AND voucher = $2",
            &[&m, &(voucher.get() as i64)],
        )?;
        let Some(row) = found else {
            return Ok(Match::nobody());
        };
        let person_id: String = row.get(0);
        let status: String = row.get(1);
        let prior = self
            .tx
            .query(
                "SELECT dose_number, vaccinated_on FROM vrs.doses
                 WHERE municipality = $1 AND person_id = $2 AND state = 'accepted' AND dose_number IS NOT NULL",
                &[&m, &person_id],
            )?
            .into_iter()
            .map(|r| PriorDose {
                dose_number: r.get::<_, i16>(0) as u8,
                vaccinated_on: r.get(1),
            })
            .collect();
        Ok(Match {
            person_id: Some(person_id),
            status: Some(status_of(&status)),
            prior,
        })
    }

    fn linked(&mut self, person_id: &str) -> Result<Links> {
        super::vault::linked(self.vault, &[(self.municipality, person_id)])
    }

    fn prior_of(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>> {
        prior_many(self.tx, people)
    }

    fn lot_expiry(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<NaiveDate>> {
        Ok(self
            .tx
            .query_opt(
                "SELECT expiry FROM vrs.lots WHERE vaccine = $1 AND lot = $2",
                &[&vaccine.code(), &lot.as_str()],
            )?
            .map(|r| r.get(0)))
    }
}

impl ReviewSink for PgRecords<'_, '_> {
    fn record(&mut self, id: ClientRecordId) -> Result<Option<Stored>> {
        let row = self.tx.query_opt(
            "SELECT revision, state, json_build_object(
                 'voucher', voucher, 'dose_number', dose_number, 'vaccinated_on', vaccinated_on,
                 'vaccine', vaccine, 'lot', lot, 'state', state, 'hold_reason', hold_reason)::text,
                 voucher, dose_number, vaccinated_on, vaccine, lot, device_id
             FROM vrs.doses WHERE municipality = $1 AND client_record_id = $2 FOR UPDATE",
            &[&mc(self.municipality), &id.0],
        )?;
        row.map(|r| {
            Ok(Stored {
                revision: i64::from(r.get::<_, i32>(0)),
                state: r.get(1),
                before: r.get(2),
                voucher: VoucherNumber::new(r.get::<_, i64>(3) as u64)
                    .ok_or_else(|| StoreError::Corrupt("voucher".into()))?,
                dose_number: r
                    .get::<_, Option<i16>>(4)
                    .and_then(|d| DoseNumber::new(d as u8)),
                vaccinated_on: r.get(5),
                vaccine: r
                    .get::<_, &str>(6)
                    .parse()
                    .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                lot: r
                    .get::<_, &str>(7)
                    .parse()
                    .map_err(|_| StoreError::Corrupt("lot".into()))?,
                device: r.get(8),
            })
        })
        .transpose()
    }

    fn keep_history(&mut self, id: ClientRecordId, h: &History<'_>) -> Result<()> {
        self.tx.execute(
            "INSERT INTO vrs.dose_history (municipality, client_record_id, revision, changed_at, actor, reason, before)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&mc(self.municipality), &id.0, &revision_column(h.revision)?, &self.now, &h.actor, &h.reason, &h.before],
        )?;
        Ok(())
    }

    fn write(&mut self, id: ClientRecordId, change: Change<'_>, revision: i64) -> Result<()> {
        let (m, revision) = (mc(self.municipality), revision_column(revision)?);
        match change {
            Change::State(state) => self.tx.execute(
                "UPDATE vrs.doses SET state = $4, revision = $3 WHERE municipality = $1 AND client_record_id = $2",
                &[&m, &id.0, &revision, &state],
            )?,
            Change::SupersededBy(by) => self.tx.execute(
                "UPDATE vrs.doses SET state = 'superseded', superseded_by = $4, revision = $3
                 WHERE municipality = $1 AND client_record_id = $2",
                &[&m, &id.0, &revision, &by.0],
            )?,
            Change::Amended(f, verdict, person_id) => {
                let (state, hold, detail) = verdict_columns(verdict);
                self.tx.execute(
                    "UPDATE vrs.doses SET dose_number = $4, vaccinated_on = $5, vaccine = $6, lot = $7,
                         state = $8, hold_reason = $9, hold_detail = $10, person_id = $11,
                         voucher = $12, revision = $3
                     WHERE municipality = $1 AND client_record_id = $2",
                    &[
                        &m,
                        &id.0,
                        &revision,
                        &i16::from(f.dose_number.get()),
                        &f.vaccinated_on,
                        &f.vaccine.code(),
                        &f.lot.as_str(),
                        &state,
                        &hold,
                        &detail,
                        &person_id,
                        &(f.voucher.get() as i64),
                    ],
                )?
            }
        };
        Ok(())
    }
}

/// A revision as the `integer` column holds it.
fn revision_column(revision: i64) -> Result<i32> {
    i32::try_from(revision).map_err(|_| StoreError::Corrupt(format!("revision {revision}")))
}

impl import::PaperSink for PgRecords<'_, '_> {
    fn exists(&mut self, id: ClientRecordId) -> Result<bool> {
        Ok(self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM vrs.doses WHERE municipality = $1 AND client_record_id = $2)",
                &[&mc(self.municipality), &id.0],
            )?
            .get(0))
    }

    fn insert(&mut self, dose: &NewDose<'_>, found: &Match, verdict: &Verdict) -> Result<()> {
        insert_dose(self.tx, dose, found, verdict, self.now)
    }
}

/// A tablet batch's reads and writes on PostgreSQL: five set-wise reads and one
/// insert per batch, instead of five round trips per record.
struct PgDoseSink<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    vault: &'a PgPool,
    now: NaiveDateTime,
}

impl ingest::DoseSink for PgDoseSink<'_, '_> {
    fn stored(
        &mut self,
        keys: &[(MunicipalityCode, ClientRecordId)],
    ) -> Result<std::collections::HashMap<(MunicipalityCode, ClientRecordId), Option<HoldReason>>>
    {
        let ms: Vec<i32> = keys.iter().map(|(m, _)| mc(*m)).collect();
        let ids: Vec<uuid::Uuid> = keys.iter().map(|(_, id)| id.0).collect();
        self.tx
            .query(
                "SELECT d.municipality, d.client_record_id, d.state, d.hold_reason
                 FROM UNNEST($1::int4[], $2::uuid[]) AS u(m, id)
                 CROSS JOIN LATERAL (SELECT municipality, client_record_id, state, hold_reason
                     FROM vrs.doses
                     WHERE municipality = u.m AND client_record_id = u.id OFFSET 0) d",
                &[&ms, &ids],
            )?
            .into_iter()
            .map(|r| {
                let state: String = r.get(2);
                let reason: Option<String> = r.get(3);
                let held = match (state.as_str(), reason) {
                    ("held", Some(h)) => Some(hold_of(&h)?),
                    _ => None,
                };
                Ok((
                    (
                        municipality_code(i64::from(r.get::<_, i32>(0)))?,
                        ClientRecordId(r.get(1)),
                    ),
                    held,
                ))
            })
            .collect()
    }

    fn people(
        &mut self,
        vouchers: &[(MunicipalityCode, VoucherNumber)],
    ) -> Result<HashMap<(MunicipalityCode, VoucherNumber), ingest::Person>> {
        let ms: Vec<i32> = vouchers.iter().map(|(m, _)| mc(*m)).collect();
        let vs: Vec<i64> = vouchers.iter().map(|(_, v)| v.get() as i64).collect();
        let mut out = HashMap::new();
        for r in self.tx.query(
            "SELECT p.municipality, p.voucher, p.person_id, p.status
             FROM UNNEST($1::int4[], $2::int8[]) AS u(m, v)
             CROSS JOIN LATERAL (SELECT municipality, voucher, person_id, status FROM vrs.persons
                 WHERE municipality = u.m AND voucher = u.v OFFSET 0) p",
            &[&ms, &vs],
        )? {
            let m = municipality_code(i64::from(r.get::<_, i32>(0)))?;
            let v = VoucherNumber::new(r.get::<_, i64>(1) as u64)
                .ok_or_else(|| StoreError::Corrupt("voucher".into()))?;
            out.insert(
                (m, v),
                ingest::Person {
                    person_id: r.get(2),
                    status: status_of(r.get(3)),
                },
            );
        }
        Ok(out)
    }

    fn linked(&mut self, people: &[(MunicipalityCode, &str)]) -> Result<Links> {
        super::vault::linked(self.vault, people)
    }

    fn prior(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>> {
        prior_many(self.tx, people)
    }

    fn expiries(
        &mut self,
        lots: &[(Vaccine, &Lot)],
    ) -> Result<HashMap<(Vaccine, String), NaiveDate>> {
        let vs: Vec<&str> = lots.iter().map(|(v, _)| v.code()).collect();
        let ls: Vec<&str> = lots.iter().map(|(_, l)| l.as_str()).collect();
        let mut out = HashMap::new();
        for r in self.tx.query(
            "SELECT l.vaccine, l.lot, l.expiry FROM vrs.lots l
             JOIN UNNEST($1::text[], $2::text[]) AS u(v, l) ON l.vaccine = u.v AND l.lot = u.l",
            &[&vs, &ls],
        )? {
            let code: &str = r.get(0);
            if let Some(v) = Vaccine::ALL.into_iter().find(|v| v.code() == code) {
                out.insert((v, r.get(1)), r.get(2));
            }
        }
        Ok(out)
    }

    fn device_site(
        &mut self,
        device: vrs_domain::DeviceId,
    ) -> Result<Option<(vrs_domain::SiteRef, String)>> {
        self.tx
            .query_opt(
                "SELECT d.site_kind, d.site_code, s.name FROM vrs.devices d
                 LEFT JOIN vrs.sites s ON s.municipality = d.municipality AND s.code = d.site_code
                 WHERE d.id = $1",
                &[&device.0],
            )?
            .map(|r| {
                let code: String = r.get(1);
                let name: Option<String> = r.get(2);
                Ok((site_ref(r.get(0), &code)?, name.unwrap_or(code)))
            })
            .transpose()
    }

    fn insert(
        &mut self,
        site_municipality: MunicipalityCode,
        rows: &[ingest::Decided<'_>],
    ) -> Result<()> {
        let mut c = DoseColumns::default();
        for d in rows {
            let rec = d.record;
            let (state, reason, detail) = match &d.verdict {
                Ok(()) => ("accepted", None, None),
                Err((r, detail)) => ("held", Some(hold_code(*r)), Some(detail.clone())),
            };
            c.municipality.push(mc(rec.municipality));
            c.id.push(rec.client_record_id.0);
            c.voucher.push(rec.voucher.get() as i64);
            c.kind.push(i16::from(rec.voucher_kind.get()));
            c.dose.push(i16::from(rec.dose_number.get()));
            c.date.push(rec.vaccinated_on);
            c.vaccine.push(rec.vaccine.code());
            c.lot.push(rec.lot.as_str());
            c.site_kind.push(d.site_kind);
            c.site_code.push(d.site_code.clone());
            c.site_name.push(d.site_name.clone());
            c.device.push(rec.device_id.to_string());
            c.person.push(d.person_id.clone());
            c.state.push(state);
            c.reason.push(reason);
            c.detail.push(detail);
        }
        self.tx.execute(
            "INSERT INTO vrs.doses (municipality, client_record_id, voucher, voucher_kind, dose_number,
                 vaccinated_on, vaccine, lot, site_kind, site_code, site_name, device_id, person_id,
                 state, hold_reason, hold_detail, site_municipality, source, registered_at)
             SELECT u.*, $17, 'tablet', $18 FROM UNNEST($1::int4[], $2::uuid[], $3::int8[],
                 $4::int2[], $5::int2[], $6::date[], $7::text[], $8::text[], $9::text[],
                 $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                 $16::text[]) AS u",
            &[
                &c.municipality,
                &c.id,
                &c.voucher,
                &c.kind,
                &c.dose,
                &c.date,
                &c.vaccine,
                &c.lot,
                &c.site_kind,
                &c.site_code,
                &c.site_name,
                &c.device,
                &c.person,
                &c.state,
                &c.reason,
                &c.detail,
                &mc(site_municipality),
                &self.now,
            ],
        )?;
        Ok(())
    }

    fn review_sink(&mut self, municipality: MunicipalityCode) -> Box<dyn ReviewSink + '_> {
        Box::new(PgRecords {
            tx: self.tx,
            vault: self.vault,
            municipality,
            now: self.now,
        })
    }
}

/// A batch of tablet records as columns, for one `INSERT … SELECT FROM UNNEST`.
#[derive(Default)]
struct DoseColumns<'a> {
    municipality: Vec<i32>,
    id: Vec<uuid::Uuid>,
    voucher: Vec<i64>,
    kind: Vec<i16>,
    dose: Vec<i16>,
    date: Vec<NaiveDate>,
    vaccine: Vec<&'static str>,
    lot: Vec<&'a str>,
    site_kind: Vec<&'static str>,
    site_code: Vec<String>,
    site_name: Vec<String>,
    device: Vec<String>,
    person: Vec<Option<String>>,
    state: Vec<&'static str>,
    reason: Vec<Option<&'static str>>,
    detail: Vec<Option<String>>,
}

impl Records for PgStore {
    fn ingest(
        &self,
        actor: &Principal,
        batch: &UploadBatch,
        today: NaiveDate,
    ) -> Result<Vec<Receipt>> {
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        // The records' municipalities, and those of the held records they correct.
        let mut touched: Vec<MunicipalityCode> = batch
            .records
            .iter()
            .flat_map(|r| {
                std::iter::once(r.municipality).chain(r.supersedes.map(|o| o.municipality))
            })
            .collect();
        touched.sort();
        touched.dedup();
        for m in touched {
            lock_municipality(&mut tx, m)?;
        }
        by_index(&mut tx)?;
        let receipts = ingest::run(
            actor,
            batch,
            today,
            &mut PgDoseSink {
                tx: &mut tx,
                vault: &self.vault,
                now: jst_now(),
            },
        )?;
        tx.commit()?;
        Ok(receipts)
    }

    fn import_paper(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        actor.require_staff_of(m)?;
        let now = jst_now();
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        lock_municipality(&mut tx, m)?;
        by_index(&mut tx)?;
        let mut sink = PgRecords {
            tx: &mut tx,
            vault: &self.vault,
            municipality: m,
            now,
        };
        let (mut report, errors) = import::run_paper(input, m, opts, &mut sink)?;
        let summary = import::summary(&report);
        if report.outcome == ImportOutcome::Applied {
            report.import_id =
                record_import(&mut tx, m, "paper", actor, now, &report, summary, &errors)?;
            tx.commit()?;
        } else {
            tx.rollback()?;
            report.import_id = record_import(
                &mut *conn, m, "paper", actor, now, &report, summary, &errors,
            )?;
        }
        Ok(report)
    }

    fn held(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<HeldRecord>> {
        actor.require_staff_of(m)?;
        let rows = self.main.get()?.query(
            "SELECT client_record_id, voucher, dose_number, vaccinated_on, vaccine, lot,
                    hold_reason, hold_detail, registered_at
             FROM vrs.doses WHERE municipality = $1 AND state = 'held' ORDER BY registered_at, id",
            &[&mc(m)],
        )?;
        rows.into_iter()
            .map(|r| {
                Ok(HeldRecord {
                    client_record_id: ClientRecordId(r.get(0)),
                    voucher: VoucherNumber::new(r.get::<_, i64>(1) as u64)
                        .ok_or_else(|| StoreError::Corrupt("voucher".into()))?,
                    dose_number: r.get::<_, Option<i16>>(2).map(|n| n as u8),
                    vaccinated_on: r.get(3),
                    vaccine: r
                        .get::<_, &str>(4)
                        .parse()
                        .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                    lot: r
                        .get::<_, &str>(5)
                        .parse()
                        .map_err(|_| StoreError::Corrupt("lot".into()))?,
                    reason: hold_of(r.get(6))?,
                    detail: r.get(7),
                    registered_at: r
                        .get::<_, NaiveDateTime>(8)
                        .format("%Y-%m-%dT%H:%M:%S")
                        .to_string(),
                })
            })
            .collect()
    }

    /// A review step in one transaction holding the municipality's lock.
    fn review(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        step: &mut ReviewStep<'_>,
    ) -> Result<()> {
        actor.require_staff_of(m)?;
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        lock_municipality(&mut tx, m)?;
        step(&mut PgRecords::new(&mut tx, &self.vault, m))?;
        tx.commit()?;
        Ok(())
    }
}
