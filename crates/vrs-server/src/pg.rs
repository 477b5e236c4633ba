//! The PostgreSQL store: the same operations as [`crate::SqliteStore`], on the `vrs`
//! schema, with the マイナンバー vault in the `vrs_vault` schema reached through its
//! own connection (and, in production, its own role and URL).
//!
//! Set-wise SQL keeps round trips per chunk, not per row. Look-ups by key are written
//! as `UNNEST($keys) CROSS JOIN LATERAL (… WHERE key = u.key OFFSET 0)`: one index
//! probe per key whatever the statistics say (see [`by_index`]). (`key = ANY($keys)` let the planner, with
//! statistics that lag a large import in progress, scan the whole partition once
//! per chunk: a 1,000,000-row import took 140 s.)

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::{Mutex, mpsc};

use chrono::{NaiveDate, NaiveDateTime};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Transaction};
use vrs_domain::csv::OutputEncoding;
use vrs_domain::csv::ledger::{LedgerRow, LedgerWriter};
use vrs_domain::wire::{
    EnrolResponse, HoldReason, NameLookupRequest, NameLookupResponse, Outcome, Receipt, UploadBatch,
};
use vrs_domain::{
    ClientRecordId, DeviceId, DoseNumber, Lot, MunicipalityCode, MyNumber, PersonId, Sex, Vaccine,
    VoucherNumber,
};

use crate::access::{Contact, Session, SignIn, User};
use crate::audit::{AuditEntry, AuditEvent, AuditLog, AuditQuery, ChainKey, Link};
use crate::backend::Store;
use crate::checks::{self, Candidate, PriorDose};
use crate::devices::{self, DeviceInfo, DeviceKey, DeviceRegistration, Enrolment};
use crate::error::StoreError;
use crate::import::{self, ErrorCsv, PersonRow, RegisterSink};
use crate::keys::Keys;
use crate::merge::PersonFields;
use crate::principal::Principal;
use crate::sqlite_access::Site;
use crate::store::{
    Amendment, HeldRecord, ImportOptions, ImportOutcome, ImportReport, Match, TransferDose,
    TransferMatch, hold_code, hold_of, jst_now, municipality_code, outcome_text, status_of,
    status_text, write_error,
};
use crate::vault::{LookupHash, VaultCrypto};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The client error's Display is only "db error": keep the server's message.
        StoreError::Postgres(match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        })
    }
}

const MAIN_MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/pg_0001_init.sql")),
    (2, include_str!("migrations/pg_0002_person_id_c.sql")),
    (
        3,
        include_str!("migrations/pg_0003_no_municipality_statistics.sql"),
    ),
    (4, include_str!("migrations/pg_0004_audit.sql")),
    (5, include_str!("migrations/pg_0005_devices.sql")),
    (6, include_str!("migrations/pg_0006_access.sql")),
    (7, include_str!("migrations/pg_0007_device_signin.sql")),
    (8, include_str!("migrations/pg_0008_session_device.sql")),
];
const VAULT_MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/pg_vault_0001.sql")),
    (2, include_str!("migrations/pg_vault_0002_person_id_c.sql")),
];

/// Applies a schema's migrations, under an advisory lock so that two servers
/// starting together do not race.
fn migrate(
    client: &mut Client,
    schema: &str,
    migrations: &[(i32, &str)],
) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())"
    ))?;
    for (version, sql) in migrations {
        let done: bool = tx
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {schema}.schema_migrations WHERE version = $1)"
                ),
                &[version],
            )?
            .get(0);
        if !done {
            tx.batch_execute(sql)?;
            tx.execute(
                &format!("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"),
                &[version],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A few connections to one database.
struct PgPool {
    url: String,
    idle: Mutex<Vec<Client>>,
}

impl PgPool {
    fn get(&self) -> Result<PgConn<'_>, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => Client::connect(&self.url, NoTls)?,
        };
        Ok(PgConn {
            pool: self,
            client: Some(client),
        })
    }
}

pub(crate) struct PgConn<'p> {
    pool: &'p PgPool,
    client: Option<Client>,
}

impl std::ops::Deref for PgConn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl std::ops::DerefMut for PgConn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for PgConn<'_> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut idle)) = (self.client.take(), self.pool.idle.lock())
            && idle.len() < 8
            && !c.is_closed()
        {
            idle.push(c);
        }
    }
}

/// The PostgreSQL store.
pub struct PgStore {
    main: PgPool,
    vault: PgPool,
    crypto: VaultCrypto,
    audit: PgAudit,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

fn mc(m: MunicipalityCode) -> i32 {
    m.get() as i32
}

impl PgStore {
    /// A connection to the main schema's database.
    pub(crate) fn main_conn(&self) -> Result<PgConn<'_>, StoreError> {
        self.main.get()
    }

    /// Connects to `url` (the `vrs` schema) and `vault_url` (the `vrs_vault` schema;
    /// give the vault its own role there), and brings both schemas up to date.
    pub fn open(url: &str, vault_url: &str, keys: &Keys) -> Result<Self, StoreError> {
        let store = PgStore {
            main: PgPool {
                url: url.to_owned(),
                idle: Mutex::new(Vec::new()),
            },
            vault: PgPool {
                url: vault_url.to_owned(),
                idle: Mutex::new(Vec::new()),
            },
            crypto: VaultCrypto::new(keys)?,
            audit: PgAudit {
                pool: PgPool {
                    url: url.to_owned(),
                    idle: Mutex::new(Vec::new()),
                },
                key: ChainKey::new(keys),
            },
        };
        migrate(&mut *store.main.get()?, "vrs", MAIN_MIGRATIONS)?;
        migrate(&mut *store.vault.get()?, "vrs_vault", VAULT_MIGRATIONS)?;
        Ok(store)
    }
}

/// The access log in the `vrs` schema, on connections of its own (an append never
/// waits behind an import's transaction). Appends to a chain take that chain's
/// advisory lock.
struct PgAudit {
    pool: PgPool,
    key: ChainKey,
}

const AUDIT_COLUMNS: &str = "chain, seq, at, actor, action, object, outcome, prev, hash";

fn audit_entry(r: &postgres::Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        chain: r.get(0),
        seq: r.get(1),
        at: r.get(2),
        actor: r.get(3),
        action: r.get(4),
        object: r.get(5),
        outcome: r.get(6),
        prev: crate::audit::to_link(r.get(7))?,
        hash: crate::audit::to_link(r.get(8))?,
    })
}

impl AuditLog for PgAudit {
    fn append(&self, e: &AuditEvent) -> Result<AuditEntry, StoreError> {
        let mut e = e.clone();
        e.at = crate::audit::micros(e.at);
        let mut conn = self.pool.get()?;
        let mut tx = conn.transaction()?;
        // 0x565254 ("VRT"): this service's access-log locks.
        tx.execute(
            "SELECT pg_advisory_xact_lock(5657172, $1::int4)",
            &[&(e.chain as i32)],
        )?;
        let last = tx.query_opt(
            "SELECT seq, hash FROM vrs.audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
            &[&e.chain],
        )?;
        let (seq, prev) = match last {
            Some(r) => (r.get::<_, i64>(0) + 1, crate::audit::to_link(r.get(1))?),
            None => (1, crate::audit::GENESIS),
        };
        let hash = self.key.link(&prev, seq, &e);
        tx.execute(
            &format!(
                "INSERT INTO vrs.audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            &[
                &e.chain,
                &seq,
                &e.at,
                &e.actor,
                &e.action,
                &e.object,
                &e.outcome,
                &&prev[..],
                &&hash[..],
            ],
        )?;
        tx.commit()?;
        Ok(AuditEntry::chained(e, seq, prev, hash))
    }

    fn search(&self, chain: i64, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.pool
            .get()?
            .query(
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM vrs.audit_log WHERE chain = $1
                       AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR action = $3)
                       AND ($4::text IS NULL OR object = $4)
                       AND ($5::timestamp IS NULL OR at >= $5)
                       AND ($6::timestamp IS NULL OR at <= $6)
                     ORDER BY seq DESC LIMIT $7"
                ),
                &[
                    &chain,
                    &q.actor,
                    &q.action,
                    &q.object,
                    &q.from,
                    &q.to,
                    &q.limit(),
                ],
            )?
            .iter()
            .map(audit_entry)
            .collect()
    }

    fn scan(&self, each: &mut dyn FnMut(AuditEntry)) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        let params: [&(dyn ToSql + Sync); 0] = [];
        let mut rows = conn.query_raw(
            &format!("SELECT {AUDIT_COLUMNS} FROM vrs.audit_log ORDER BY chain, seq"),
            params,
        )?;
        while let Some(r) = rows.next()? {
            each(audit_entry(&r)?);
        }
        Ok(())
    }

    fn heads(&self) -> Result<Vec<(i64, i64, Link)>, StoreError> {
        self.pool
            .get()?
            .query(
                "SELECT DISTINCT ON (chain) chain, seq, hash FROM vrs.audit_log
                 ORDER BY chain, seq DESC",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0), r.get(1), crate::audit::to_link(r.get(2))?)))
            .collect()
    }

    fn key(&self) -> &ChainKey {
        &self.key
    }

    fn entry(&self, chain: i64, seq: i64) -> Result<Option<AuditEntry>, StoreError> {
        self.pool
            .get()?
            .query_opt(
                &format!("SELECT {AUDIT_COLUMNS} FROM vrs.audit_log WHERE chain = $1 AND seq = $2"),
                &[&chain, &seq],
            )?
            .as_ref()
            .map(audit_entry)
            .transpose()
    }
}

fn find_match(
    tx: &mut Transaction<'_>,
    m: MunicipalityCode,
    voucher: VoucherNumber,
) -> Result<Match, StoreError> {
    let found = tx.query_opt(
        "SELECT person_id, status FROM vrs.persons WHERE municipality = $1 AND voucher = $2",
        &[&mc(m), &(voucher.get() as i64)],
    )?;
    let Some(row) = found else {
        return Ok(Match {
            person_id: None,
            status: None,
            prior: Vec::new(),
        });
    };
    let person_id: String = row.get(0);
    let status: String = row.get(1);
    let prior = tx
        .query(
            "SELECT dose_number, vaccinated_on FROM vrs.doses
             WHERE municipality = $1 AND person_id = $2 AND state = 'accepted' AND dose_number IS NOT NULL",
            &[&mc(m), &person_id],
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

fn lot_expiry(
    tx: &mut Transaction<'_>,
    vaccine: Vaccine,
    lot: &Lot,
) -> Result<Option<NaiveDate>, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT expiry FROM vrs.lots WHERE vaccine = $1 AND lot = $2",
            &[&vaccine.code(), &lot.as_str()],
        )?
        .map(|r| r.get(0)))
}

struct NewDose<'a> {
    municipality: MunicipalityCode,
    client_record_id: ClientRecordId,
    voucher: VoucherNumber,
    voucher_kind: Option<i16>,
    dose_number: Option<i16>,
    vaccinated_on: NaiveDate,
    vaccine: Vaccine,
    lot: &'a Lot,
    site_kind: Option<&'static str>,
    site_code: Option<String>,
    site_municipality: MunicipalityCode,
    site_name: String,
    doctor_name: Option<&'a str>,
    device_id: Option<String>,
    source: &'static str,
}

fn insert_dose(
    tx: &mut Transaction<'_>,
    d: &NewDose<'_>,
    m: &Match,
    verdict: &Result<(), (HoldReason, String)>,
    registered_at: NaiveDateTime,
) -> Result<(), StoreError> {
    let (state, reason, detail) = match verdict {
        Ok(()) => ("accepted", None, None),
        Err((r, detail)) => ("held", Some(hold_code(*r)), Some(detail.as_str())),
    };
    tx.execute(
        "INSERT INTO vrs.doses (municipality, client_record_id, voucher, voucher_kind, dose_number,
             vaccinated_on, vaccine, lot, site_kind, site_code, site_municipality, site_name,
             doctor_name, device_id, source, person_id, state, hold_reason, hold_detail, registered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        &[
            &mc(d.municipality),
            &d.client_record_id.0,
            &(d.voucher.get() as i64),
            &d.voucher_kind,
            &d.dose_number,
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
            &registered_at,
        ],
    )?;
    Ok(())
}

fn exists(
    tx: &mut Transaction<'_>,
    m: MunicipalityCode,
    id: ClientRecordId,
) -> Result<bool, StoreError> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM vrs.doses WHERE municipality = $1 AND client_record_id = $2)",
            &[&mc(m), &id.0],
        )?
        .get(0))
}

/// A paper upload's reads and writes on PostgreSQL.
struct PgPaperSink<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    municipality: MunicipalityCode,
    now: NaiveDateTime,
}

impl import::PaperSink for PgPaperSink<'_, '_> {
    fn exists(&mut self, id: ClientRecordId) -> Result<bool, StoreError> {
        exists(self.tx, self.municipality, id)
    }

    fn find_match(&mut self, voucher: VoucherNumber) -> Result<Match, StoreError> {
        find_match(self.tx, self.municipality, voucher)
    }

    fn lot_expiry(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<NaiveDate>, StoreError> {
        lot_expiry(self.tx, vaccine, lot)
    }

    fn insert(
        &mut self,
        id: ClientRecordId,
        row: &LedgerRow,
        dose: Option<DoseNumber>,
        found: &Match,
        verdict: &Result<(), (HoldReason, String)>,
    ) -> Result<(), StoreError> {
        insert_dose(
            self.tx,
            &NewDose {
                municipality: self.municipality,
                client_record_id: id,
                voucher: row.voucher,
                voucher_kind: None,
                dose_number: dose.map(|d| i16::from(d.get())),
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
            },
            found,
            verdict,
            row.registered_at.unwrap_or(self.now),
        )
    }
}

/// A tablet batch's reads and writes on PostgreSQL: five set-wise reads and one
/// insert per batch, instead of five round trips per record.
struct PgDoseSink<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    now: NaiveDateTime,
}

impl crate::ingest::DoseSink for PgDoseSink<'_, '_> {
    fn stored(
        &mut self,
        keys: &[(MunicipalityCode, ClientRecordId)],
    ) -> Result<
        std::collections::HashMap<(MunicipalityCode, ClientRecordId), Option<HoldReason>>,
        StoreError,
    > {
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
    ) -> Result<HashMap<(MunicipalityCode, VoucherNumber), crate::ingest::Person>, StoreError> {
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
                crate::ingest::Person {
                    person_id: r.get(2),
                    status: status_of(r.get(3)),
                },
            );
        }
        Ok(out)
    }

    fn prior(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<HashMap<(MunicipalityCode, String), Vec<PriorDose>>, StoreError> {
        let ms: Vec<i32> = people.iter().map(|(m, _)| mc(*m)).collect();
        let ps: Vec<&str> = people.iter().map(|(_, p)| *p).collect();
        let mut out: HashMap<(MunicipalityCode, String), Vec<PriorDose>> = HashMap::new();
        for r in self.tx.query(
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

    fn expiries(
        &mut self,
        lots: &[(Vaccine, &Lot)],
    ) -> Result<HashMap<(Vaccine, String), NaiveDate>, StoreError> {
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

    fn site_names(
        &mut self,
        municipality: MunicipalityCode,
        codes: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        Ok(self
            .tx
            .query(
                "SELECT code, name FROM vrs.sites WHERE municipality = $1 AND code = ANY($2)",
                &[&mc(municipality), &codes],
            )?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn insert(
        &mut self,
        site_municipality: MunicipalityCode,
        rows: &[crate::ingest::Decided<'_>],
    ) -> Result<(), StoreError> {
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

/// The register import's reads and writes on PostgreSQL: a few statements per chunk.
/// The register is written here; the vault by [`vault_worker`] on its own
/// connection (so its own server process), which goes on writing one chunk while
/// this thread reads and merges the next.
struct PgSink<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    vault: mpsc::SyncSender<VaultJob>,
    crypto: &'a VaultCrypto,
    municipality: MunicipalityCode,
    now: NaiveDateTime,
    /// The answer to a prefetch of hashes, still on its way.
    pending: Option<HashesAnswer>,
}

/// The vault worker's answer to a look-up of hashes.
type HashesAnswer = mpsc::Receiver<Result<HashMap<String, LookupHash>, StoreError>>;

/// A number sealed on the import's thread (no マイナンバー crosses to the worker).
struct SealedNumber {
    person: String,
    lookup: LookupHash,
    nonce: [u8; 12],
    sealed: Vec<u8>,
}

enum VaultJob {
    Hashes(
        Vec<String>,
        mpsc::Sender<Result<HashMap<String, LookupHash>, StoreError>>,
    ),
    Put(Vec<SealedNumber>),
    /// Commit (or roll back) and say how it went; the worker then stops.
    Finish(bool, mpsc::Sender<Result<(), StoreError>>),
}

impl PgSink<'_, '_> {
    fn ask_hashes(&self, ids: &[&str]) -> Result<HashesAnswer, StoreError> {
        let (reply, answer) = mpsc::channel();
        self.vault
            .send(VaultJob::Hashes(
                ids.iter().map(|s| (*s).to_owned()).collect(),
                reply,
            ))
            .map_err(|_| vault_stopped())?;
        Ok(answer)
    }
}

fn vault_stopped() -> StoreError {
    StoreError::Invalid("the vault writer stopped".into())
}

/// Owns the import's vault transaction: answers hash look-ups and writes sealed
/// numbers in the order they were sent. After a failed write it answers every
/// later job with that failure, and rolls back.
fn vault_worker(
    mut conn: PgConn<'_>,
    m: MunicipalityCode,
    jobs: mpsc::Receiver<VaultJob>,
) -> Result<(), StoreError> {
    let mut vtx = conn.transaction()?;
    by_index(&mut vtx)?;
    // With no number held for the municipality, none needs to be looked for before
    // an insert.
    let mut empty = vtx
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM vrs_vault.my_numbers WHERE municipality = $1)",
            &[&mc(m)],
        )?
        .get::<_, bool>(0);
    let mut failed: Option<String> = None;
    for job in jobs {
        match job {
            VaultJob::Hashes(ids, reply) => {
                let answer = match &failed {
                    Some(e) => Err(StoreError::Postgres(e.clone())),
                    None => {
                        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                        stored_hashes(&mut vtx, m, &ids)
                    }
                };
                let _ = reply.send(answer);
            }
            VaultJob::Put(rows) => {
                if failed.is_none() {
                    if let Err(e) = put_numbers(&mut vtx, m, &rows, empty) {
                        failed = Some(e.to_string());
                    }
                    empty = false;
                }
            }
            VaultJob::Finish(commit, reply) => {
                let done = match failed {
                    Some(e) => Err(StoreError::Postgres(e)),
                    None if commit => vtx.commit().map_err(StoreError::from),
                    None => vtx.rollback().map_err(StoreError::from),
                };
                let _ = reply.send(done);
                return Ok(());
            }
        }
    }
    // The import ended without a word (an error on its side): roll back.
    Ok(())
}

impl RegisterSink for PgSink<'_, '_> {
    fn persons(&mut self, ids: &[&str]) -> Result<HashMap<String, PersonFields>, StoreError> {
        stored_persons(self.tx, self.municipality, ids)
    }

    fn voucher_holders(
        &mut self,
        vouchers: &[VoucherNumber],
    ) -> Result<HashMap<VoucherNumber, String>, StoreError> {
        let v: Vec<i64> = vouchers.iter().map(|v| v.get() as i64).collect();
        let rows = self.tx.query(
            "SELECT p.voucher, p.person_id FROM UNNEST($2::int8[]) AS u(v)
             CROSS JOIN LATERAL (SELECT voucher, person_id FROM vrs.persons
                 WHERE municipality = $1 AND voucher = u.v OFFSET 0) p",
            &[&mc(self.municipality), &v],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((VoucherNumber::new(r.get::<_, i64>(0) as u64)?, r.get(1))))
            .collect())
    }

    fn vault_hashes(&mut self, ids: &[&str]) -> Result<HashMap<String, LookupHash>, StoreError> {
        let answer = match self.pending.take() {
            Some(answer) => answer,
            None => self.ask_hashes(ids)?,
        };
        answer.recv().unwrap_or_else(|_| Err(vault_stopped()))
    }

    fn prefetch_vault_hashes(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        self.pending = Some(self.ask_hashes(ids)?);
        Ok(())
    }

    fn write_persons(&mut self, rows: &[PersonRow<'_>]) -> Result<(), StoreError> {
        write_persons(self.tx, self.municipality, self.now, rows)
    }

    fn write_numbers(&mut self, rows: &[(&str, &MyNumber, &LookupHash)]) -> Result<(), StoreError> {
        let mut sealed = Vec::with_capacity(rows.len());
        for (pid, n, h) in rows {
            let (nonce, buf) = self.crypto.seal(self.municipality, pid, n)?;
            sealed.push(SealedNumber {
                person: (*pid).to_owned(),
                lookup: **h,
                nonce,
                sealed: buf,
            });
        }
        self.vault
            .send(VaultJob::Put(sealed))
            .map_err(|_| vault_stopped())
    }

    /// The numbers go to the vault worker first, so that both are written at once.
    fn write(
        &mut self,
        persons: &[PersonRow<'_>],
        numbers: &[(&str, &MyNumber, &LookupHash)],
    ) -> Result<(), StoreError> {
        if !numbers.is_empty() {
            self.write_numbers(numbers)?;
        }
        if !persons.is_empty() {
            self.write_persons(persons)?;
        }
        Ok(())
    }

    fn release_vouchers(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE vrs.persons SET voucher = NULL WHERE municipality = $1 AND person_id = ANY($2)",
            &[&mc(self.municipality), &ids],
        )?;
        Ok(())
    }
}

fn stored_persons(
    tx: &mut Transaction<'_>,
    m: MunicipalityCode,
    ids: &[&str],
) -> Result<HashMap<String, PersonFields>, StoreError> {
    let rows = tx.query(
        "SELECT p.person_id, p.family_name, p.given_name, p.family_kana, p.given_kana,
             p.birth_date, p.sex, p.voucher, p.status
         FROM UNNEST($2::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT * FROM vrs.persons
             WHERE municipality = $1 AND person_id = u.id OFFSET 0) p",
        &[&mc(m), &ids],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                PersonFields {
                    family_name: r.get(1),
                    given_name: r.get(2),
                    family_kana: r.get(3),
                    given_kana: r.get(4),
                    birth_date: r.get(5),
                    sex: r
                        .get::<_, Option<i16>>(6)
                        .and_then(|c| c.to_string().parse::<Sex>().ok()),
                    voucher: r
                        .get::<_, Option<i64>>(7)
                        .and_then(|v| VoucherNumber::new(v as u64)),
                    status: status_of(r.get(8)),
                },
            )
        })
        .collect())
}

fn stored_hashes(
    vtx: &mut Transaction<'_>,
    m: MunicipalityCode,
    ids: &[&str],
) -> Result<HashMap<String, LookupHash>, StoreError> {
    let rows = vtx.query(
        "SELECT n.person_id, n.lookup FROM UNNEST($2::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT person_id, lookup FROM vrs_vault.my_numbers
             WHERE municipality = $1 AND person_id = u.id OFFSET 0) n",
        &[&mc(m), &ids],
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let h: Vec<u8> = r.get(1);
            Some((r.get::<_, String>(0), h.try_into().ok()?))
        })
        .collect())
}

/// New people go in by binary COPY (several times faster than an upsert: no
/// conflict check, pages filled in bulk); people already stored are upserted.
fn write_persons(
    tx: &mut Transaction<'_>,
    municipality: MunicipalityCode,
    now: NaiveDateTime,
    rows: &[PersonRow<'_>],
) -> Result<(), StoreError> {
    let (new, stored): (Vec<&PersonRow<'_>>, Vec<&PersonRow<'_>>) =
        rows.iter().partition(|r| !r.stored);
    if !stored.is_empty() {
        upsert_persons(tx, municipality, now, &stored)?;
    }
    if !new.is_empty() {
        let sink = tx.copy_in(
            "COPY vrs.persons (municipality, person_id, family_name, given_name, family_kana,
                 given_kana, birth_date, sex, voucher, status, updated_at)
             FROM STDIN (FORMAT binary)",
        )?;
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT4,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::DATE,
                Type::INT2,
                Type::INT8,
                Type::TEXT,
                Type::TIMESTAMP,
            ],
        );
        let m = mc(municipality);
        for r in new {
            let f = r.fields;
            w.write(&[
                &m,
                &r.id,
                &f.family_name,
                &f.given_name,
                &f.family_kana,
                &f.given_kana,
                &f.birth_date,
                &f.sex.map(|s| i16::from(s.code())),
                &f.voucher.map(|v| v.get() as i64),
                &status_text(f.status),
                &now,
            ])?;
        }
        w.finish()?;
    }
    Ok(())
}

fn upsert_persons(
    tx: &mut Transaction<'_>,
    municipality: MunicipalityCode,
    now: NaiveDateTime,
    rows: &[&PersonRow<'_>],
) -> Result<(), StoreError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
    let fam: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.fields.family_name.as_deref())
        .collect();
    let giv: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.fields.given_name.as_deref())
        .collect();
    let fk: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.fields.family_kana.as_deref())
        .collect();
    let gk: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.fields.given_kana.as_deref())
        .collect();
    let bd: Vec<Option<NaiveDate>> = rows.iter().map(|r| r.fields.birth_date).collect();
    let sex: Vec<Option<i16>> = rows
        .iter()
        .map(|r| r.fields.sex.map(|s| i16::from(s.code())))
        .collect();
    let vo: Vec<Option<i64>> = rows
        .iter()
        .map(|r| r.fields.voucher.map(|v| v.get() as i64))
        .collect();
    let st: Vec<&str> = rows.iter().map(|r| status_text(r.fields.status)).collect();
    tx.execute(
        "INSERT INTO vrs.persons (municipality, person_id, family_name, given_name, family_kana,
             given_kana, birth_date, sex, voucher, status, updated_at)
         SELECT $1, u.*, $11 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::date[], $8::int2[], $9::int8[], $10::text[]) AS u
         ON CONFLICT (municipality, person_id) DO UPDATE SET
             family_name = excluded.family_name, given_name = excluded.given_name,
             family_kana = excluded.family_kana, given_kana = excluded.given_kana,
             birth_date = excluded.birth_date, sex = excluded.sex,
             voucher = excluded.voucher, status = excluded.status,
             updated_at = excluded.updated_at",
        &[
            &mc(municipality),
            &ids,
            &fam,
            &giv,
            &fk,
            &gk,
            &bd,
            &sex,
            &vo,
            &st,
            &now,
        ],
    )?;
    Ok(())
}

/// Numbers whose person has none in the vault yet go in by binary COPY; the others
/// are replaced. Which is which is asked here (unless the vault held nothing for the
/// municipality), not taken from the engine: the vault commits before the register,
/// so a crash between the two can leave a number whose person the register lacks.
fn put_numbers(
    vtx: &mut Transaction<'_>,
    municipality: MunicipalityCode,
    rows: &[SealedNumber],
    vault_empty: bool,
) -> Result<(), StoreError> {
    let m = mc(municipality);
    let present: HashSet<String> = if vault_empty {
        HashSet::new()
    } else {
        let ids: Vec<&str> = rows.iter().map(|r| r.person.as_str()).collect();
        vtx.query(
            "SELECT n.person_id FROM UNNEST($2::text[]) AS u(id)
             CROSS JOIN LATERAL (SELECT person_id FROM vrs_vault.my_numbers
                 WHERE municipality = $1 AND person_id = u.id OFFSET 0) n",
            &[&m, &ids],
        )?
        .into_iter()
        .map(|r| r.get(0))
        .collect()
    };
    let (replaced, fresh): (Vec<&SealedNumber>, Vec<&SealedNumber>) =
        rows.iter().partition(|r| present.contains(&r.person));
    if !fresh.is_empty() {
        let sink = vtx.copy_in(
            "COPY vrs_vault.my_numbers (municipality, person_id, lookup, nonce, sealed)
             FROM STDIN (FORMAT binary)",
        )?;
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT4,
                Type::TEXT,
                Type::BYTEA,
                Type::BYTEA,
                Type::BYTEA,
            ],
        );
        for r in &fresh {
            w.write(&[&m, &r.person, &&r.lookup[..], &&r.nonce[..], &r.sealed])?;
        }
        w.finish()?;
    }
    if !replaced.is_empty() {
        let ids: Vec<&str> = replaced.iter().map(|r| r.person.as_str()).collect();
        let lookups: Vec<&[u8]> = replaced.iter().map(|r| &r.lookup[..]).collect();
        let nonces: Vec<&[u8]> = replaced.iter().map(|r| &r.nonce[..]).collect();
        let sealed: Vec<&[u8]> = replaced.iter().map(|r| &r.sealed[..]).collect();
        vtx.execute(
            "INSERT INTO vrs_vault.my_numbers (municipality, person_id, lookup, nonce, sealed)
             SELECT $1, u.* FROM UNNEST($2::text[], $3::bytea[], $4::bytea[], $5::bytea[]) AS u
             ON CONFLICT (municipality, person_id) DO UPDATE
             SET lookup = excluded.lookup, nonce = excluded.nonce, sealed = excluded.sealed",
            &[&m, &ids, &lookups, &nonces, &sealed],
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn record_import(
    c: &mut impl postgres::GenericClient,
    m: MunicipalityCode,
    kind: &str,
    actor: &Principal,
    now: NaiveDateTime,
    report: &ImportReport,
    summary: String,
    errors: &ErrorCsv,
) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "INSERT INTO vrs.imports (municipality, kind, actor, started_at, outcome, report, errors_csv)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[&mc(m), &kind, &actor.to_string(), &now, &outcome_text(report.outcome), &summary, &errors.text],
    )?
    .get(0))
}

impl Store for PgStore {
    fn audit(&self) -> &dyn AuditLog {
        &self.audit
    }

    fn upsert_municipality(
        &self,
        actor: &Principal,
        code: MunicipalityCode,
        name: &str,
        contact: &str,
    ) -> Result<(), StoreError> {
        actor.require_staff_of(code)?;
        self.main.get()?.execute(
            "INSERT INTO vrs.municipalities (code, name, transfer_contact) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, transfer_contact = excluded.transfer_contact",
            &[&mc(code), &name, &contact],
        )?;
        Ok(())
    }

    fn add_lot(
        &self,
        actor: &Principal,
        vaccine: Vaccine,
        lot: &Lot,
        expiry: NaiveDate,
    ) -> Result<(), StoreError> {
        // The lot list is shared by every municipality: the operator keeps it.
        if *actor != Principal::System {
            return Err(StoreError::Forbidden(
                "lots are registered by the operator (vrs admin)".into(),
            ));
        }
        self.main.get()?.execute(
            "INSERT INTO vrs.lots (vaccine, lot, expiry) VALUES ($1, $2, $3)
             ON CONFLICT (vaccine, lot) DO UPDATE SET expiry = excluded.expiry",
            &[&vaccine.code(), &lot.as_str(), &expiry],
        )?;
        Ok(())
    }

    fn add_site(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        code: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        actor.require_staff_of(m)?;
        self.main.get()?.execute(
            "INSERT INTO vrs.sites (municipality, code, name) VALUES ($1, $2, $3)
             ON CONFLICT (municipality, code) DO UPDATE SET name = excluded.name",
            &[&mc(m), &code, &name],
        )?;
        Ok(())
    }

    fn import_register(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        actor.require_staff_of(m)?;
        let now = jst_now();
        let mut main = self.main.get()?;
        let vault = self.vault.get()?;
        // Bounded: a vault slower than the file waits the reader, rather than
        // queueing the file's numbers in memory.
        let (jobs, work) = mpsc::sync_channel(4);
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || vault_worker(vault, m, work));
            let mut tx = main.transaction()?;
            lock_municipality(&mut tx, m)?;
            by_index(&mut tx)?;
            let updating: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM vrs.persons WHERE municipality = $1)",
                    &[&mc(m)],
                )?
                .get(0);
            let mut sink = PgSink {
                tx: &mut tx,
                vault: jobs,
                crypto: &self.crypto,
                municipality: m,
                now,
                pending: None,
            };
            let hash = |n: &MyNumber| self.crypto.lookup_hash(n);
            let (mut report, errors) = import::run(input, opts, updating, &hash, &mut sink)?;
            let summary = import::summary(&report);
            let applied = report.outcome == ImportOutcome::Applied;
            // The vault commits first, as in the SQLite store; a failed vault write
            // comes back here, and the register is rolled back with it.
            let (reply, done) = mpsc::channel();
            sink.vault
                .send(VaultJob::Finish(applied, reply))
                .map_err(|_| vault_stopped())?;
            drop(sink);
            let vault_done = done.recv().unwrap_or_else(|_| Err(vault_stopped()));
            let worker_done = worker
                .join()
                .unwrap_or_else(|_| Err(StoreError::Invalid("the vault writer failed".into())));
            vault_done.and(worker_done)?;
            if applied {
                report.import_id = record_import(
                    &mut tx, m, "register", actor, now, &report, summary, &errors,
                )?;
                tx.commit()?;
            } else {
                tx.rollback()?;
                report.import_id = record_import(
                    &mut *main, m, "register", actor, now, &report, summary, &errors,
                )?;
            }
            Ok(report)
        })
    }

    fn import_errors_csv(&self, actor: &Principal, import_id: i64) -> Result<String, StoreError> {
        let m = actor.staff_of()?;
        self.main
            .get()?
            .query_opt(
                "SELECT errors_csv FROM vrs.imports WHERE id = $1 AND municipality = $2",
                &[&import_id, &mc(m)],
            )?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("import {import_id}")))
    }

    fn lookup_name(
        &self,
        actor: &Principal,
        req: &NameLookupRequest,
    ) -> Result<Option<NameLookupResponse>, StoreError> {
        if let Principal::Staff { .. } = actor {
            actor.require_staff_of(req.municipality)?;
        }
        Ok(self
            .main
            .get()?
            .query_opt(
                "SELECT family_name, given_name, family_kana, given_kana FROM vrs.persons
                 WHERE municipality = $1 AND voucher = $2",
                &[&mc(req.municipality), &(req.voucher.get() as i64)],
            )?
            .map(|r| NameLookupResponse {
                family_name: r.get(0),
                given_name: r.get(1),
                family_kana: r.get(2),
                given_kana: r.get(3),
            }))
    }

    fn ingest(
        &self,
        actor: &Principal,
        batch: &UploadBatch,
        today: NaiveDate,
    ) -> Result<Vec<Receipt>, StoreError> {
        let (site_m, device) = actor.device()?;
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        let mut touched: Vec<MunicipalityCode> =
            batch.records.iter().map(|r| r.municipality).collect();
        touched.sort();
        touched.dedup();
        for m in touched {
            lock_municipality(&mut tx, m)?;
        }
        by_index(&mut tx)?;
        let receipts = crate::ingest::run(
            batch,
            site_m,
            device,
            today,
            &mut PgDoseSink {
                tx: &mut tx,
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
    ) -> Result<ImportReport, StoreError> {
        actor.require_staff_of(m)?;
        let now = jst_now();
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        lock_municipality(&mut tx, m)?;
        by_index(&mut tx)?;
        let mut sink = PgPaperSink {
            tx: &mut tx,
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

    fn held(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<HeldRecord>, StoreError> {
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

    fn void(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        id: ClientRecordId,
        reason: &str,
    ) -> Result<(), StoreError> {
        actor.require_staff_of(m)?;
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        lock_municipality(&mut tx, m)?;
        let (revision, _) = keep_history(&mut tx, m, id, actor, reason)?;
        tx.execute(
            "UPDATE vrs.doses SET state = 'voided', revision = $3 WHERE municipality = $1 AND client_record_id = $2",
            &[&mc(m), &id.0, &revision],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn amend(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        id: ClientRecordId,
        change: &Amendment,
        reason: &str,
        today: NaiveDate,
    ) -> Result<Outcome, StoreError> {
        actor.require_staff_of(m)?;
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        lock_municipality(&mut tx, m)?;
        let (revision, state) = keep_history(&mut tx, m, id, actor, reason)?;
        if state == "voided" {
            return Err(StoreError::Invalid(
                "a voided record cannot be amended".into(),
            ));
        }
        let row = tx.query_one(
            "SELECT voucher, dose_number, vaccinated_on, vaccine, lot FROM vrs.doses
             WHERE municipality = $1 AND client_record_id = $2",
            &[&mc(m), &id.0],
        )?;
        let voucher = VoucherNumber::new(row.get::<_, i64>(0) as u64)
            .ok_or_else(|| StoreError::Corrupt("voucher".into()))?;
        let dose_number = change
            .dose_number
            .or_else(|| {
                row.get::<_, Option<i16>>(1)
                    .and_then(|d| DoseNumber::new(d as u8))
            })
            .ok_or_else(|| StoreError::Invalid("give the dose number".into()))?;
        let vaccinated_on = change.vaccinated_on.unwrap_or(row.get(2));
        let vaccine = match change.vaccine {
            Some(v) => v,
            None => row
                .get::<_, &str>(3)
                .parse()
                .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
        };
        let lot: Lot = match &change.lot {
            Some(l) => l.clone(),
            None => row
                .get::<_, &str>(4)
                .parse()
                .map_err(|_| StoreError::Corrupt("lot".into()))?,
        };
        tx.execute(
            "UPDATE vrs.doses SET state = 'amending' WHERE municipality = $1 AND client_record_id = $2",
            &[&mc(m), &id.0],
        )?;
        let found = find_match(&mut tx, m, voucher)?;
        let expiry = lot_expiry(&mut tx, vaccine, &lot)?;
        let verdict = checks::check(
            found.status,
            &found.prior,
            &Candidate {
                dose_number,
                vaccinated_on,
                lot_expiry: expiry,
            },
            today,
        );
        let (state, hold, detail) = match &verdict {
            Ok(()) => ("accepted", None, None),
            Err((r, d)) => ("held", Some(hold_code(*r)), Some(d.clone())),
        };
        tx.execute(
            "UPDATE vrs.doses SET dose_number = $3, vaccinated_on = $4, vaccine = $5, lot = $6,
                 state = $7, hold_reason = $8, hold_detail = $9, person_id = $10, revision = $11
             WHERE municipality = $1 AND client_record_id = $2",
            &[
                &mc(m),
                &id.0,
                &i16::from(dose_number.get()),
                &vaccinated_on,
                &vaccine.code(),
                &lot.as_str(),
                &state,
                &hold,
                &detail,
                &found.person_id,
                &revision,
            ],
        )?;
        tx.commit()?;
        Ok(match verdict {
            Ok(()) => Outcome::Accepted,
            Err((reason, detail)) => Outcome::Held { reason, detail },
        })
    }

    fn export_ledger(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        from: NaiveDate,
        to: NaiveDate,
        encoding: OutputEncoding,
        out: &mut dyn Write,
    ) -> Result<u64, StoreError> {
        actor.require_staff_of(m)?;
        let mut conn = self.main.get()?;
        let code = mc(m);
        let params: [&(dyn ToSql + Sync); 3] = [&code, &from, &to];
        let mut rows = conn.query_raw(
            "SELECT registered_at, vaccinated_on, voucher, site_municipality, site_name,
                    doctor_name, vaccine, lot, dose_number
             FROM vrs.doses
             WHERE municipality = $1 AND vaccinated_on BETWEEN $2 AND $3 AND state = 'accepted'
             ORDER BY id",
            params,
        )?;
        let mut w = LedgerWriter::new(out, encoding).map_err(write_error)?;
        let mut n = 0u64;
        while let Some(r) = rows.next()? {
            let row = LedgerRow {
                line: 0,
                registered_at: Some(r.get(0)),
                vaccinated_on: r.get(1),
                voucher: VoucherNumber::new(r.get::<_, i64>(2) as u64)
                    .ok_or_else(|| StoreError::Corrupt("voucher".into()))?,
                site_municipality: municipality_code(i64::from(r.get::<_, i32>(3)))?,
                site_name: r.get(4),
                doctor_name: r.get(5),
                vaccine: r
                    .get::<_, &str>(6)
                    .parse()
                    .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                lot: r
                    .get::<_, &str>(7)
                    .parse()
                    .map_err(|_| StoreError::Corrupt("lot".into()))?,
                dose_number: r
                    .get::<_, Option<i16>>(8)
                    .and_then(|d| DoseNumber::new(d as u8)),
            };
            w.write(&row).map_err(write_error)?;
            n += 1;
        }
        w.finish().map_err(write_error)?;
        Ok(n)
    }

    fn transfer_lookup(
        &self,
        actor: &Principal,
        n: &MyNumber,
    ) -> Result<Vec<TransferMatch>, StoreError> {
        let own = actor.staff_of()?;
        let h = self.crypto.lookup_hash(n);
        let holders = self.vault.get()?.query(
            "SELECT municipality, person_id FROM vrs_vault.my_numbers WHERE lookup = $1 ORDER BY municipality",
            &[&&h[..]],
        )?;
        let mut conn = self.main.get()?;
        let mut out = Vec::new();
        for holder in holders {
            let m = municipality_code(i64::from(holder.get::<_, i32>(0)))?;
            if m == own {
                continue;
            }
            let pid: String = holder.get(1);
            let (name, contact) = conn
                .query_opt(
                    "SELECT name, transfer_contact FROM vrs.municipalities WHERE code = $1",
                    &[&mc(m)],
                )?
                .map(|r| (r.get(0), r.get(1)))
                .unwrap_or_else(|| (m.to_string(), String::new()));
            let doses = conn
                .query(
                    "SELECT dose_number, vaccinated_on, vaccine, lot, site_municipality, site_name
                     FROM vrs.doses WHERE municipality = $1 AND person_id = $2 AND state = 'accepted'
                     ORDER BY vaccinated_on",
                    &[&mc(m), &pid],
                )?
                .into_iter()
                .map(|r| {
                    Ok(TransferDose {
                        dose_number: r.get::<_, Option<i16>>(0).map(|d| d as u8),
                        vaccinated_on: r.get(1),
                        vaccine: r.get::<_, &str>(2).parse().map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                        lot: r.get::<_, &str>(3).parse().map_err(|_| StoreError::Corrupt("lot".into()))?,
                        site_municipality: municipality_code(i64::from(r.get::<_, i32>(4)))?,
                        site_name: r.get(5),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.push(TransferMatch {
                municipality: m,
                municipality_name: name,
                transfer_contact: contact,
                doses,
            });
        }
        Ok(out)
    }

    fn person_count(&self, actor: &Principal, m: MunicipalityCode) -> Result<u64, StoreError> {
        actor.require_staff_of(m)?;
        let n: i64 = self
            .main
            .get()?
            .query_one(
                "SELECT count(*) FROM vrs.persons WHERE municipality = $1",
                &[&mc(m)],
            )?
            .get(0);
        Ok(n as u64)
    }

    fn vault_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .vault
            .get()?
            .query_one("SELECT count(*) FROM vrs_vault.my_numbers", &[])?
            .get(0);
        Ok(n as u64)
    }

    fn vault_reveal(
        &self,
        m: MunicipalityCode,
        person: &PersonId,
    ) -> Result<Option<MyNumber>, StoreError> {
        let row = self.vault.get()?.query_opt(
            "SELECT nonce, sealed FROM vrs_vault.my_numbers WHERE municipality = $1 AND person_id = $2",
            &[&mc(m), &person.as_str()],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let nonce: Vec<u8> = row.get(0);
        self.crypto
            .open(m, person.as_str(), &nonce, row.get(1))
            .map(Some)
    }

    fn create_token(&self, actor: &Principal, for_whom: &Principal) -> Result<String, StoreError> {
        let t = crate::principal::new_token(actor, for_whom)?;
        self.main.get()?.execute(
            "INSERT INTO vrs.api_tokens (token_hash, kind, municipality, subject, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &t.hash,
                &t.kind,
                &mc(t.municipality),
                &t.subject,
                &jst_now(),
            ],
        )?;
        Ok(t.token)
    }

    fn principal_for_token(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let row = self.main.get()?.query_opt(
            "SELECT kind, municipality, subject FROM vrs.api_tokens WHERE token_hash = $1 AND NOT revoked",
            &[&crate::principal::token_hash(token)],
        )?;
        row.map(|r| {
            let m = municipality_code(i64::from(r.get::<_, i32>(1)))?;
            crate::principal::token_principal(r.get(0), m, r.get(2))
        })
        .transpose()
        .map(Option::flatten)
    }

    fn register_device(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        reg: &DeviceRegistration,
    ) -> Result<Enrolment, StoreError> {
        let d = devices::new_device(actor, m, reg, jst_now())?;
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO vrs.sites (municipality, code, name) VALUES ($1, $2, $3)
             ON CONFLICT (municipality, code) DO UPDATE SET name = excluded.name",
            &[&mc(m), &d.site_code, &reg.site_name.trim()],
        )?;
        let dpd = reg.doses_per_day.map(|n| n.min(i32::MAX as u32) as i32);
        let n = tx.execute(
            "INSERT INTO vrs.devices (id, municipality, site_kind, site_code, email, address,
                 delivery, contact, notes, doses_per_day, created_at, enrol_hash, enrol_expires)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (email) DO NOTHING",
            &[
                &d.id.0,
                &mc(m),
                &d.site_kind,
                &d.site_code,
                &d.email,
                &reg.address.trim(),
                &reg.delivery.trim(),
                &reg.contact.trim(),
                &reg.notes.trim(),
                &dpd,
                &d.now,
                &d.code_hash,
                &d.code_expires,
            ],
        )?;
        if n == 0 {
            return Err(devices::email_taken(&d.email));
        }
        tx.commit()?;
        Ok(d.enrolment)
    }

    fn reissue_enrolment(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        device: DeviceId,
    ) -> Result<Enrolment, StoreError> {
        actor.require_staff_of(m)?;
        let (enrolment, hash, expires) = devices::new_enrolment(device, jst_now())?;
        let n = self.main.get()?.execute(
            "UPDATE vrs.devices SET enrol_hash = $1, enrol_expires = $2
             WHERE id = $3 AND municipality = $4 AND revoked_at IS NULL",
            &[&hash, &expires, &device.0, &mc(m)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no tablet {device} of {m} that is not revoked"
            )));
        }
        Ok(enrolment)
    }

    fn enrol_device(&self, code: &str, public_key: &[u8]) -> Result<EnrolResponse, StoreError> {
        let code = devices::normalise_code(code).ok_or_else(devices::code_refused)?;
        let now = jst_now();
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        // One statement takes the code: two tablets racing with it cannot both win.
        let row = tx.query_opt(
            "UPDATE vrs.devices SET public_key = $1, enrolled_at = $2, enrol_hash = NULL,
                 enrol_expires = NULL
             WHERE enrol_hash = $3 AND revoked_at IS NULL AND enrol_expires > $2
             RETURNING id, municipality, site_kind, site_code",
            &[&public_key, &now, &devices::code_hash(&code)],
        )?;
        let Some(row) = row else {
            return Err(devices::code_refused());
        };
        let id: uuid::Uuid = row.get(0);
        let m: i32 = row.get(1);
        let kind: String = row.get(2);
        let site_code: String = row.get(3);
        let names = tx.query_one(
            "SELECT m.name, s.name FROM vrs.municipalities m
             LEFT JOIN vrs.sites s ON s.municipality = m.code AND s.code = $2
             WHERE m.code = $1",
            &[&m, &site_code],
        )?;
        let municipality_name: String = names.get(0);
        let site_name: Option<String> = names.get(1);
        tx.commit()?;
        Ok(EnrolResponse {
            device_id: DeviceId(id),
            municipality: municipality_code(i64::from(m))?,
            municipality_name,
            site: devices::site_ref(&kind, &site_code)?,
            site_name: site_name.unwrap_or(site_code),
        })
    }

    fn device_key(&self, device: DeviceId) -> Result<Option<DeviceKey>, StoreError> {
        let row = self.main.get()?.query_opt(
            "SELECT municipality, public_key, revoked_at IS NOT NULL FROM vrs.devices WHERE id = $1",
            &[&device.0],
        )?;
        row.map(|r| {
            Ok(DeviceKey {
                municipality: municipality_code(i64::from(r.get::<_, i32>(0)))?,
                public_key: r.get(1),
                revoked: r.get(2),
            })
        })
        .transpose()
    }

    fn use_nonce(&self, device: DeviceId, nonce: &[u8], now: i64) -> Result<bool, StoreError> {
        let mut conn = self.main.get()?;
        conn.execute(
            "DELETE FROM vrs.device_nonces WHERE device = $1 AND seen_at < $2",
            &[
                &device.0,
                &(now - 2 * vrs_domain::wire::signing::MAX_SKEW_SECS),
            ],
        )?;
        let n = conn.execute(
            "INSERT INTO vrs.device_nonces (device, nonce, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&device.0, &nonce, &now],
        )?;
        Ok(n == 1)
    }

    fn revoke_device(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        device: DeviceId,
    ) -> Result<(), StoreError> {
        actor.require_staff_of(m)?;
        let n = self.main.get()?.execute(
            "UPDATE vrs.devices SET revoked_at = coalesce(revoked_at, $1), enrol_hash = NULL,
                 enrol_expires = NULL
             WHERE id = $2 AND municipality = $3",
            &[&jst_now(), &device.0, &mc(m)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no tablet {device} of {m}")));
        }
        self.main
            .get()?
            .execute("DELETE FROM vrs.sessions WHERE device = $1", &[&device.0])?;
        Ok(())
    }

    fn devices(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
    ) -> Result<Vec<DeviceInfo>, StoreError> {
        actor.require_staff_of(m)?;
        let now = jst_now();
        let t = |v: Option<NaiveDateTime>| v.map(crate::store::time_text);
        let rows = self.main.get()?.query(
            "SELECT d.id, d.site_kind, d.site_code, coalesce(s.name, d.site_code), d.email,
                    d.address, d.delivery, d.contact, d.notes, d.doses_per_day,
                    d.enrol_expires, d.enrolled_at, d.revoked_at
             FROM vrs.devices d
             LEFT JOIN vrs.sites s ON s.municipality = d.municipality AND s.code = d.site_code
             WHERE d.municipality = $1 ORDER BY d.created_at DESC, d.id",
            &[&mc(m)],
        )?;
        rows.iter()
            .map(|r| {
                let kind: String = r.get(1);
                let code: String = r.get(2);
                let expires: Option<NaiveDateTime> = r.get(10);
                let enrolled: Option<NaiveDateTime> = r.get(11);
                let revoked: Option<NaiveDateTime> = r.get(12);
                Ok(DeviceInfo {
                    device_id: DeviceId(r.get(0)),
                    municipality: m,
                    site: devices::site_ref(&kind, &code)?,
                    site_name: r.get(3),
                    email: r.get(4),
                    address: r.get(5),
                    delivery: r.get(6),
                    contact: r.get(7),
                    notes: r.get(8),
                    doses_per_day: r.get::<_, Option<i32>>(9).map(|n| n.max(0) as u32),
                    state: devices::state_of(enrolled.is_some(), expires, revoked.is_some(), now)
                        .into(),
                    code_expires: t(expires),
                    enrolled_at: t(enrolled),
                    revoked_at: t(revoked),
                })
            })
            .collect()
    }

    fn put_user(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        u: &User,
    ) -> Result<Vec<User>, StoreError> {
        self.put_user_pg(a, m, u)
    }
    fn remove_user(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        e: &str,
    ) -> Result<Vec<User>, StoreError> {
        self.remove_user_pg(a, m, e)
    }
    fn users(&self, a: &Principal, m: MunicipalityCode) -> Result<Vec<User>, StoreError> {
        self.users_pg(a, m)
    }
    fn put_contact(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        c: &Contact,
    ) -> Result<(), StoreError> {
        self.put_contact_pg(a, m, c)
    }
    fn contacts(&self, a: &Principal, m: MunicipalityCode) -> Result<Vec<Contact>, StoreError> {
        self.contacts_pg(a, m)
    }
    fn sites(&self, a: &Principal, m: MunicipalityCode) -> Result<Vec<Site>, StoreError> {
        self.sites_pg(a, m)
    }
    fn signin_state(&self, e: &str) -> Result<Option<(MunicipalityCode, SignIn)>, StoreError> {
        self.signin_state_pg(e)
    }
    fn save_signin(&self, e: &str, old: &SignIn, s: &SignIn) -> Result<bool, StoreError> {
        self.save_signin_pg(e, old, s)
    }
    fn create_session(
        &self,
        t: &[u8],
        m: MunicipalityCode,
        e: &str,
        c: &str,
        d: Option<DeviceId>,
    ) -> Result<(), StoreError> {
        self.create_session_pg(t, m, e, c, d)
    }
    fn session(&self, t: &[u8]) -> Result<Option<Session>, StoreError> {
        self.session_pg(t)
    }
    fn end_session(&self, t: &[u8]) -> Result<(), StoreError> {
        self.end_session_pg(t)
    }
    fn device_signin(&self, d: DeviceId) -> Result<Option<(String, SignIn)>, StoreError> {
        self.device_signin_pg(d)
    }
    fn save_device_signin(
        &self,
        d: DeviceId,
        old: &SignIn,
        s: &SignIn,
    ) -> Result<bool, StoreError> {
        self.save_device_signin_pg(d, old, s)
    }
}

/// Serialises the writes of one municipality (imports, uploads, amendments): under
/// READ COMMITTED two of them would otherwise read the same "before" and both write,
/// losing an update or accepting the same dose twice. SQLite's single writer gives
/// the same order for free.
/// Bulk work (import, ingest, paper) looks rows up by key, in tables its own
/// transaction is filling: the statistics lag behind (an empty partition at the start
/// of a first import), and a planner that believes them would scan a "small" table
/// for each key. One index probe per key is always right here, so say so for this
/// transaction. (The look-ups' `LATERAL (… OFFSET 0)` keeps each probe a probe: without
/// the fence the planner flattens them into a join that reads the whole partition.)
fn by_index(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    tx.batch_execute("SET LOCAL enable_seqscan = off")?;
    Ok(())
}

fn lock_municipality(tx: &mut Transaction<'_>, m: MunicipalityCode) -> Result<(), StoreError> {
    // 0x565253 is "VRS": a namespace for this service's advisory locks.
    tx.execute("SELECT pg_advisory_xact_lock(5657171, $1)", &[&mc(m)])?;
    Ok(())
}

fn keep_history(
    tx: &mut Transaction<'_>,
    m: MunicipalityCode,
    id: ClientRecordId,
    actor: &Principal,
    reason: &str,
) -> Result<(i32, String), StoreError> {
    let row = tx.query_opt(
        "SELECT revision, state, json_build_object(
             'voucher', voucher, 'dose_number', dose_number, 'vaccinated_on', vaccinated_on,
             'vaccine', vaccine, 'lot', lot, 'state', state, 'hold_reason', hold_reason)::text
         FROM vrs.doses WHERE municipality = $1 AND client_record_id = $2 FOR UPDATE",
        &[&mc(m), &id.0],
    )?;
    let Some(row) = row else {
        return Err(StoreError::NotFound(format!("record {id}")));
    };
    if reason.trim().is_empty() {
        return Err(StoreError::Invalid(
            "give a reason: it is kept with the record's history".into(),
        ));
    }
    let revision: i32 = row.get(0);
    let state: String = row.get(1);
    let before: String = row.get(2);
    tx.execute(
        "INSERT INTO vrs.dose_history (municipality, client_record_id, revision, changed_at, actor, reason, before)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&mc(m), &id.0, &revision, &jst_now(), &actor.to_string(), &reason, &before],
    )?;
    Ok((revision + 1, state))
}
