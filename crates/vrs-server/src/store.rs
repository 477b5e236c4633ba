//! The embedded store: SQLite files in a data folder (`vrs.db`, and `vault.db` for
//! the マイナンバー vault), both encrypted with SQLCipher.
//!
//! Every operation takes the acting [`Principal`] and checks it first. The pure
//! decisions (the import merge, the dose checks) live in [`crate::merge`] and
//! [`crate::checks`]; this module reads and writes around them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use vrs_domain::csv::ledger::{LedgerRow, LedgerWriter};
use vrs_domain::csv::{Encoding, OutputEncoding, RowError};
use vrs_domain::wire::{
    HoldReason, NameLookupRequest, NameLookupResponse, Outcome, Receipt, UploadBatch,
};
use vrs_domain::{
    ClientRecordId, DoseNumber, Lot, MunicipalityCode, MyNumber, PersonId, RegistrationStatus,
    RemovalReason, Sex, Vaccine, VoucherNumber,
};

use crate::checks::{self, Candidate, PriorDose};
use crate::db::{self, Migration, Pool};
use crate::error::StoreError;
use crate::import::{self, PersonRow};
use crate::keys::Keys;
use crate::merge::PersonFields;
use crate::principal::Principal;
use crate::vault::Vault;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("migrations/0002_tokens.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("migrations/0003_devices.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("migrations/0004_access.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("migrations/0005_device_signin.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("migrations/0006_session_device.sql"),
    },
];

pub use vrs_domain::date::{jst_now, today_jst};

/// How the embedded store writes a time (JST, to the second).
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// A time as the embedded store keeps it (and as the API shows it).
pub(crate) fn time_text(t: NaiveDateTime) -> String {
    t.format(TIME_FORMAT).to_string()
}

/// A time the embedded store kept.
pub(crate) fn time_of(s: &str) -> Result<NaiveDateTime, StoreError> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .map_err(|_| StoreError::Corrupt(format!("time {s:?}")))
}

pub(crate) fn municipality_code(v: i64) -> Result<MunicipalityCode, StoreError> {
    format!("{v:06}")
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("municipality code {v}")))
}

pub(crate) fn person(v: &str) -> Result<PersonId, StoreError> {
    v.parse()
        .map_err(|_| StoreError::Corrupt("person id".into()))
}

pub(crate) fn status_text(s: RegistrationStatus) -> &'static str {
    match s {
        RegistrationStatus::Active => "active",
        RegistrationStatus::Removed(RemovalReason::MovedOut) => "moved_out",
        RegistrationStatus::Removed(RemovalReason::Deceased) => "deceased",
        RegistrationStatus::Removed(RemovalReason::Other) => "removed",
    }
}

pub(crate) fn status_of(s: &str) -> RegistrationStatus {
    match s {
        "moved_out" => RegistrationStatus::Removed(RemovalReason::MovedOut),
        "deceased" => RegistrationStatus::Removed(RemovalReason::Deceased),
        "removed" => RegistrationStatus::Removed(RemovalReason::Other),
        _ => RegistrationStatus::Active,
    }
}

pub(crate) fn date_of(s: &str) -> Result<NaiveDate, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("date {s:?}")))
}

/// How strictly an upload is applied.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// A file with any bad row is rejected whole.
    #[default]
    Strict,
    /// The good rows are applied; the bad ones come back in the error CSV.
    Partial,
}

#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    pub mode: ImportMode,
    pub dry_run: bool,
    pub encoding: Encoding,
    pub today: NaiveDate,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mode: ImportMode::Strict,
            dry_run: false,
            encoding: Encoding::Auto,
            today: today_jst(),
        }
    }
}

/// What happened to an uploaded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    Applied,
    Rejected,
    DryRun,
}

/// The report of a register or paper-record upload.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    pub import_id: i64,
    pub outcome: ImportOutcome,
    pub encoding: &'static str,
    pub rows: u64,
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Rows whose flag changed a person's status (paper uploads: records held).
    pub flagged: u64,
    pub rejected: u64,
    pub warnings: Vec<String>,
    /// The first [`MAX_REPORTED_ERRORS`] bad rows; all of them are in the error CSV.
    pub errors: Vec<RowError>,
    pub errors_truncated: bool,
}

/// How many row errors a report carries inline.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// One dose held by another municipality, as the transfer look-up shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransferDose {
    pub dose_number: Option<u8>,
    pub vaccinated_on: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
    pub site_municipality: MunicipalityCode,
    pub site_name: String,
}

/// What another municipality holds for the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransferMatch {
    pub municipality: MunicipalityCode,
    pub municipality_name: String,
    /// 転出入連絡先: whom to call when something is unclear.
    pub transfer_contact: String,
    pub doses: Vec<TransferDose>,
}

/// A record held for review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldRecord {
    pub client_record_id: ClientRecordId,
    pub voucher: VoucherNumber,
    pub dose_number: Option<u8>,
    pub vaccinated_on: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
    pub reason: HoldReason,
    pub detail: String,
    pub registered_at: String,
}

/// A change to a stored dose record.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Amendment {
    pub vaccinated_on: Option<NaiveDate>,
    pub dose_number: Option<DoseNumber>,
    pub vaccine: Option<Vaccine>,
    pub lot: Option<Lot>,
}

/// The embedded SQLite store.
pub struct SqliteStore {
    pub(crate) pool: Pool,
    vault: Vault,
    audit: crate::audit::SqliteAudit,
    data_dir: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// The (municipality, voucher) → person match and what the checks need.
/// The person a voucher belongs to, and what the checks need about them.
#[derive(Debug)]
pub struct Match {
    pub person_id: Option<String>,
    pub status: Option<RegistrationStatus>,
    pub prior: Vec<PriorDose>,
}

fn find_match(
    tx: &Transaction<'_>,
    m: MunicipalityCode,
    voucher: VoucherNumber,
) -> Result<Match, StoreError> {
    let found: Option<(String, String)> = tx
        .prepare_cached(
            "SELECT person_id, status FROM persons WHERE municipality = ?1 AND voucher = ?2",
        )?
        .query_row(params![m.get(), voucher.get() as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((person_id, status)) = found else {
        return Ok(Match {
            person_id: None,
            status: None,
            prior: Vec::new(),
        });
    };
    let prior = prior_doses(tx, m, &person_id)?;
    Ok(Match {
        person_id: Some(person_id),
        status: Some(status_of(&status)),
        prior,
    })
}

/// Whether a record with this id is stored already (uploads are idempotent on it).
fn dose_stored(
    tx: &Transaction<'_>,
    m: MunicipalityCode,
    id: ClientRecordId,
) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM doses WHERE municipality = ?1 AND client_record_id = ?2)",
        )?
        .query_row(params![m.get(), id.to_string()], |r| r.get(0))?)
}

/// A person's accepted doses, for the checks.
fn prior_doses(
    tx: &Transaction<'_>,
    m: MunicipalityCode,
    person_id: &str,
) -> Result<Vec<PriorDose>, StoreError> {
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

fn lot_expiry(
    tx: &Transaction<'_>,
    vaccine: Vaccine,
    lot: &Lot,
) -> Result<Option<NaiveDate>, StoreError> {
    let e: Option<String> = tx
        .prepare_cached("SELECT expiry FROM lots WHERE vaccine = ?1 AND lot = ?2")?
        .query_row(params![vaccine.code(), lot.as_str()], |r| r.get(0))
        .optional()?;
    e.map(|s| date_of(&s)).transpose()
}

/// A row of `doses` about to be written.
struct NewDose<'a> {
    municipality: MunicipalityCode,
    client_record_id: ClientRecordId,
    voucher: VoucherNumber,
    voucher_kind: Option<u8>,
    dose_number: Option<u8>,
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
    tx: &Transaction<'_>,
    d: &NewDose<'_>,
    m: &Match,
    verdict: &Result<(), (HoldReason, String)>,
    registered_at: &str,
) -> Result<(), StoreError> {
    let (state, reason, detail) = match verdict {
        Ok(()) => ("accepted", None, None),
        Err((r, detail)) => ("held", Some(hold_code(*r)), Some(detail.as_str())),
    };
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
        registered_at,
    ])?;
    Ok(())
}

pub(crate) fn hold_code(r: HoldReason) -> &'static str {
    match r {
        HoldReason::UnknownVoucher => "unknown_voucher",
        HoldReason::MissingEarlierDose => "missing_earlier_dose",
        HoldReason::BeforePreviousDose => "before_previous_dose",
        HoldReason::DateInFuture => "date_in_future",
        HoldReason::LotExpired => "lot_expired",
        HoldReason::PersonMovedOut => "person_moved_out",
        HoldReason::PersonDeceased => "person_deceased",
        HoldReason::PersonRemoved => "person_removed",
        HoldReason::DoseAlreadyRecorded => "dose_already_recorded",
    }
}

pub(crate) fn hold_of(s: &str) -> Result<HoldReason, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("hold reason {s:?}")))
}

/// A stable record id for a paper record, so that uploading the same file twice
/// stores each record once.
pub(crate) fn paper_record_id(m: MunicipalityCode, row: &LedgerRow) -> ClientRecordId {
    let key = format!(
        "paper|{m}|{}|{}|{}|{}|{}",
        row.voucher,
        row.vaccinated_on,
        row.dose_number.map(|d| d.get()).unwrap_or(0),
        row.vaccine.code(),
        row.lot
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    ClientRecordId(uuid::Builder::from_custom_bytes(b).into_uuid())
}

impl SqliteStore {
    /// Opens the store in `data_dir` (creating it), with its keys.
    pub fn open(data_dir: &Path, keys: Keys) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        // The folder holds the key file and the (encrypted) databases: its owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let path = data_dir.join("vrs.db");
        let mut conn = db::open(&path, &keys.database)?;
        db::migrate(&mut conn, MIGRATIONS)?;
        drop(conn);
        let vault = Vault::open(&data_dir.join("vault.db"), &keys)?;
        let audit = crate::audit::SqliteAudit::open(&data_dir.join("audit.db"), &keys)?;
        let keys = std::sync::Arc::new(keys);
        let pool = Pool::new(path, move |p| db::open(p, &keys.database));
        Ok(SqliteStore {
            pool,
            vault,
            audit,
            data_dir: data_dir.to_owned(),
        })
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The access log (`audit.db`).
    pub fn audit(&self) -> &crate::audit::SqliteAudit {
        &self.audit
    }

    /// Adds or renames a municipality, with its transfer contact.
    pub fn upsert_municipality(
        &self,
        actor: &Principal,
        code: MunicipalityCode,
        name: &str,
        transfer_contact: &str,
    ) -> Result<(), StoreError> {
        actor.require_staff_of(code)?;
        self.pool.get()?.execute(
            "INSERT INTO municipalities (code, name, transfer_contact) VALUES (?1, ?2, ?3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name,
                 transfer_contact = excluded.transfer_contact",
            params![code.get(), name, transfer_contact],
        )?;
        Ok(())
    }

    /// Registers a lot and its expiry (for the expired-lot check).
    pub fn add_lot(
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
        self.pool.get()?.execute(
            "INSERT INTO lots (vaccine, lot, expiry) VALUES (?1, ?2, ?3)
             ON CONFLICT (vaccine, lot) DO UPDATE SET expiry = excluded.expiry",
            params![vaccine.code(), lot.as_str(), expiry.to_string()],
        )?;
        Ok(())
    }

    /// Registers a site or clinic's name for the ledger.
    pub fn add_site(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        code: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        actor.require_staff_of(municipality)?;
        self.pool.get()?.execute(
            "INSERT INTO sites (municipality, code, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (municipality, code) DO UPDATE SET name = excluded.name",
            params![municipality.get(), code, name],
        )?;
        Ok(())
    }

    /// Imports a register CSV for `municipality`. One file is one transaction: in
    /// strict mode a file with any bad row changes nothing; in partial mode the good
    /// rows are applied. Either way the report lists every bad row.
    pub fn import_register(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        input: impl Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        actor.require_staff_of(municipality)?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let m = municipality.get();
        let updating: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM persons WHERE municipality = ?1)",
            [m],
            |r| r.get(0),
        )?;
        let now = time_text(jst_now());
        // The vault is written on a second thread, beside the register: half an
        // import's time is the vault's own inserts.
        let vault = &self.vault;
        let (mut report, errors, vault_done) = std::thread::scope(|scope| {
            // Made inside the scope: if the import stops early, `jobs` is dropped
            // here, the worker's loop ends (rolling back), and the scope can join it.
            let (jobs, inbox) = std::sync::mpsc::channel::<VaultJob>();
            scope.spawn(move || vault_worker(vault, municipality, inbox));
            let mut sink = SqliteSink {
                tx: &tx,
                vault: &self.vault,
                jobs: &jobs,
                pending: None,
                municipality,
                now: &now,
            };
            let hash = |n: &MyNumber| self.vault.lookup_hash(n);
            let (report, errors) = import::run(input, opts, updating, &hash, &mut sink)?;
            // The vault first: a crash between the two commits leaves numbers for
            // rows the register does not show yet, which a re-upload then finds
            // unchanged; the other order could leave people without their number.
            let (reply, answer) = std::sync::mpsc::channel();
            let commit = report.outcome == ImportOutcome::Applied;
            jobs.send(VaultJob::Finish(commit, reply))
                .map_err(|_| StoreError::Invalid("the vault writer stopped".into()))?;
            let vault_done = answer
                .recv()
                .unwrap_or_else(|_| Err(StoreError::Invalid("the vault writer stopped".into())));
            Ok::<_, StoreError>((report, errors, vault_done))
        })?;
        let record = |c: &rusqlite::Connection, report: &ImportReport| -> Result<i64, StoreError> {
            c.execute(
                "INSERT INTO imports (municipality, kind, actor, started_at, outcome, report, errors_csv)
                 VALUES (?1, 'register', ?2, ?3, ?4, ?5, ?6)",
                params![
                    m,
                    actor.to_string(),
                    now,
                    outcome_text(report.outcome),
                    import::summary(report),
                    errors.text
                ],
            )?;
            Ok(c.last_insert_rowid())
        };
        if report.outcome == ImportOutcome::Applied {
            vault_done?;
            report.import_id = record(&tx, &report)?;
            tx.commit()?;
        } else {
            tx.rollback()?;
            report.import_id = record(&conn, &report)?;
        }
        Ok(report)
    }

    /// The error CSV of an upload, for its own municipality's staff.
    pub fn import_errors_csv(
        &self,
        actor: &Principal,
        import_id: i64,
    ) -> Result<String, StoreError> {
        let m = actor.staff_of()?;
        self.pool
            .get()?
            .query_row(
                "SELECT errors_csv FROM imports WHERE id = ?1 AND municipality = ?2",
                params![import_id, m.get()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("import {import_id}")))
    }

    /// The name for the confirmation screen: (municipality, 券番号) → name, nothing else.
    pub fn lookup_name(
        &self,
        actor: &Principal,
        req: &NameLookupRequest,
    ) -> Result<Option<NameLookupResponse>, StoreError> {
        // Tablets look up any voucher (people are vaccinated where they like);
        // staff only their own municipality's.
        if let Principal::Staff { .. } = actor {
            actor.require_staff_of(req.municipality)?;
        }
        let conn = self.pool.get()?;
        let name = conn
            .prepare_cached(
                "SELECT family_name, given_name, family_kana, given_kana FROM persons
                 WHERE municipality = ?1 AND voucher = ?2",
            )?
            .query_row(
                params![req.municipality.get(), req.voucher.get() as i64],
                |r| {
                    Ok(NameLookupResponse {
                        family_name: r.get(0)?,
                        given_name: r.get(1)?,
                        family_kana: r.get(2)?,
                        given_kana: r.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(name)
    }

    /// Stores a tablet's batch, one receipt per record, in order (see
    /// [`crate::ingest::run`]). The batch is one transaction: after a crash either
    /// all of it is stored or none, and re-sending it gives `duplicate` for what was
    /// stored.
    pub fn ingest(
        &self,
        actor: &Principal,
        batch: &UploadBatch,
        today: NaiveDate,
    ) -> Result<Vec<Receipt>, StoreError> {
        let (site_m, device) = actor.device()?;
        let registered_at = time_text(jst_now());
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let receipts = crate::ingest::run(
            batch,
            site_m,
            device,
            today,
            &mut SqliteDoseSink {
                tx: &tx,
                registered_at: &registered_at,
            },
        )?;
        tx.commit()?;
        Ok(receipts)
    }

    /// Imports paper records (the ledger CSV layout) for `municipality`: see
    /// [`import::run_paper`].
    pub fn import_paper(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        input: impl Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        actor.require_staff_of(municipality)?;
        let now = time_text(jst_now());
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut sink = SqlitePaperSink {
            tx: &tx,
            municipality,
            now: &now,
        };
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
    pub fn held(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
    ) -> Result<Vec<HeldRecord>, StoreError> {
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

    /// Keeps the record as it was in `dose_history` and bumps its revision.
    fn keep_history(
        tx: &Transaction<'_>,
        m: MunicipalityCode,
        id: ClientRecordId,
        actor: &Principal,
        reason: &str,
    ) -> Result<(i64, String), StoreError> {
        let row: Option<(i64, String, String)> = tx
            .query_row(
                "SELECT revision, state, json_object(
                     'voucher', voucher, 'dose_number', dose_number, 'vaccinated_on', vaccinated_on,
                     'vaccine', vaccine, 'lot', lot, 'state', state, 'hold_reason', hold_reason)
                 FROM doses WHERE municipality = ?1 AND client_record_id = ?2",
                params![m.get(), id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((revision, state, before)) = row else {
            return Err(StoreError::NotFound(format!("record {id}")));
        };
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid(
                "give a reason: it is kept with the record's history".into(),
            ));
        }
        tx.execute(
            "INSERT INTO dose_history (municipality, client_record_id, revision, changed_at, actor, reason, before)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                m.get(),
                id.to_string(),
                revision,
                time_text(jst_now()),
                actor.to_string(),
                reason,
                before
            ],
        )?;
        Ok((revision + 1, state))
    }

    /// Voids a record: it stays, with its history, but leaves the ledger.
    pub fn void(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        id: ClientRecordId,
        reason: &str,
    ) -> Result<(), StoreError> {
        actor.require_staff_of(municipality)?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (revision, _) = Self::keep_history(&tx, municipality, id, actor, reason)?;
        tx.execute(
            "UPDATE doses SET state = 'voided', revision = ?3 WHERE municipality = ?1 AND client_record_id = ?2",
            params![municipality.get(), id.to_string(), revision],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Amends a record (date, dose number, vaccine, lot) and checks it again: an
    /// amended held record may become accepted, and the other way round.
    pub fn amend(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        id: ClientRecordId,
        change: &Amendment,
        reason: &str,
        today: NaiveDate,
    ) -> Result<Outcome, StoreError> {
        actor.require_staff_of(municipality)?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (revision, state) = Self::keep_history(&tx, municipality, id, actor, reason)?;
        if state == "voided" {
            return Err(StoreError::Invalid(
                "a voided record cannot be amended".into(),
            ));
        }
        let (voucher, dose, date, vaccine, lot): (i64, Option<i64>, String, String, String) = tx
            .query_row(
                "SELECT voucher, dose_number, vaccinated_on, vaccine, lot FROM doses
                 WHERE municipality = ?1 AND client_record_id = ?2",
                params![municipality.get(), id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
        let voucher = VoucherNumber::new(voucher as u64)
            .ok_or_else(|| StoreError::Corrupt("voucher".into()))?;
        let dose_number = change
            .dose_number
            .or_else(|| dose.and_then(|d| DoseNumber::new(d as u8)))
            .ok_or_else(|| StoreError::Invalid("give the dose number".into()))?;
        let vaccinated_on = change.vaccinated_on.unwrap_or(date_of(&date)?);
        let vaccine = change.vaccine.unwrap_or(
            vaccine
                .parse()
                .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
        );
        let lot = match &change.lot {
            Some(l) => l.clone(),
            None => lot.parse().map_err(|_| StoreError::Corrupt("lot".into()))?,
        };
        // Check against the person's other accepted doses, not this one.
        tx.execute(
            "UPDATE doses SET state = 'amending' WHERE municipality = ?1 AND client_record_id = ?2",
            params![municipality.get(), id.to_string()],
        )?;
        let found = find_match(&tx, municipality, voucher)?;
        let verdict = checks::check(
            found.status,
            &found.prior,
            &Candidate {
                dose_number,
                vaccinated_on,
                lot_expiry: lot_expiry(&tx, vaccine, &lot)?,
            },
            today,
        );
        let (state, hold, detail) = match &verdict {
            Ok(()) => ("accepted", None, None),
            Err((r, d)) => ("held", Some(hold_code(*r)), Some(d.clone())),
        };
        tx.execute(
            "UPDATE doses SET dose_number = ?3, vaccinated_on = ?4, vaccine = ?5, lot = ?6,
                 state = ?7, hold_reason = ?8, hold_detail = ?9, person_id = ?10, revision = ?11
             WHERE municipality = ?1 AND client_record_id = ?2",
            params![
                municipality.get(),
                id.to_string(),
                dose_number.get(),
                vaccinated_on.to_string(),
                vaccine.code(),
                lot.as_str(),
                state,
                hold,
                detail,
                found.person_id,
                revision
            ],
        )?;
        tx.commit()?;
        Ok(match verdict {
            Ok(()) => Outcome::Accepted,
            Err((reason, detail)) => Outcome::Held { reason, detail },
        })
    }

    /// Writes the ledger export (accepted records vaccinated between `from` and `to`,
    /// inclusive, in the order they were registered) as CSV, streaming. Returns the
    /// number of rows.
    pub fn export_ledger(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        from: NaiveDate,
        to: NaiveDate,
        encoding: OutputEncoding,
        out: impl Write,
    ) -> Result<u64, StoreError> {
        actor.require_staff_of(municipality)?;
        let conn = self.pool.get()?;
        let mut st = conn.prepare_cached(
            "SELECT registered_at, vaccinated_on, voucher, site_municipality, site_name,
                    doctor_name, vaccine, lot, dose_number
             FROM doses NOT INDEXED
             WHERE municipality = ?1 AND vaccinated_on BETWEEN ?2 AND ?3 AND state = 'accepted'
             ORDER BY id",
        )?;
        let mut rows = st.query(params![
            municipality.get(),
            from.to_string(),
            to.to_string()
        ])?;
        let mut w = LedgerWriter::new(out, encoding).map_err(write_error)?;
        let mut n = 0u64;
        while let Some(r) = rows.next()? {
            let registered: String = r.get(0)?;
            let row = LedgerRow {
                line: 0,
                registered_at: registered.parse::<NaiveDateTime>().ok(),
                vaccinated_on: date_of(&r.get::<_, String>(1)?)?,
                voucher: VoucherNumber::new(r.get::<_, i64>(2)? as u64)
                    .ok_or_else(|| StoreError::Corrupt("voucher".into()))?,
                site_municipality: municipality_code(r.get(3)?)?,
                site_name: r.get(4)?,
                doctor_name: r.get(5)?,
                vaccine: r
                    .get::<_, String>(6)?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                lot: r
                    .get::<_, String>(7)?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("lot".into()))?,
                dose_number: r
                    .get::<_, Option<i64>>(8)?
                    .and_then(|d| DoseNumber::new(d as u8)),
            };
            w.write(&row).map_err(write_error)?;
            n += 1;
        }
        w.finish().map_err(write_error)?;
        Ok(n)
    }

    /// The transfer look-up: the doses other municipalities hold for the person
    /// with this マイナンバー, each with that municipality's transfer contact.
    pub fn transfer_lookup(
        &self,
        actor: &Principal,
        n: &MyNumber,
    ) -> Result<Vec<TransferMatch>, StoreError> {
        let own = actor.staff_of()?;
        let holders = self.vault.find(n)?;
        let conn = self.pool.get()?;
        let mut out = Vec::new();
        for (m, pid) in holders.into_iter().filter(|(m, _)| *m != own) {
            let (name, contact): (String, String) = conn
                .prepare_cached(
                    "SELECT name, transfer_contact FROM municipalities WHERE code = ?1",
                )?
                .query_row([m.get()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or_else(|| (m.to_string(), String::new()));
            let mut st = conn.prepare_cached(
                "SELECT dose_number, vaccinated_on, vaccine, lot, site_municipality, site_name
                 FROM doses INDEXED BY doses_by_person
                 WHERE municipality = ?1 AND person_id = ?2 AND state = 'accepted'
                 ORDER BY vaccinated_on",
            )?;
            let raw = st
                .query_map(params![m.get(), pid.as_str()], |r| {
                    Ok((
                        r.get::<_, Option<i64>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let doses = raw
                .into_iter()
                .map(|(n, d, v, l, sm, sn)| {
                    Ok(TransferDose {
                        dose_number: n.map(|n| n as u8),
                        vaccinated_on: date_of(&d)?,
                        vaccine: v
                            .parse()
                            .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                        lot: l.parse().map_err(|_| StoreError::Corrupt("lot".into()))?,
                        site_municipality: municipality_code(sm)?,
                        site_name: sn,
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

    /// How many people a municipality has registered.
    pub fn person_count(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
    ) -> Result<u64, StoreError> {
        actor.require_staff_of(municipality)?;
        let n: i64 = self.pool.get()?.query_row(
            "SELECT count(*) FROM persons WHERE municipality = ?1",
            [municipality.get()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Makes a bearer token for a staff member or a tablet of `municipality`. The
    /// token is returned once; only its hash is kept.
    pub fn create_token(
        &self,
        actor: &Principal,
        for_whom: &Principal,
    ) -> Result<String, StoreError> {
        let t = crate::principal::new_token(actor, for_whom)?;
        self.pool.get()?.execute(
            "INSERT INTO api_tokens (token_hash, kind, municipality, subject, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                t.hash,
                t.kind,
                t.municipality.get(),
                t.subject,
                time_text(jst_now())
            ],
        )?;
        Ok(t.token)
    }

    /// Who a bearer token stands for, if it is known and not revoked.
    pub fn principal_for_token(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let row: Option<(String, i64, String)> = self
            .pool
            .get()?
            .prepare_cached(
                "SELECT kind, municipality, subject FROM api_tokens
                 WHERE token_hash = ?1 AND revoked = 0",
            )?
            .query_row([crate::principal::token_hash(token)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(kind, m, subject)| {
            crate::principal::token_principal(&kind, municipality_code(m)?, subject)
        })
        .transpose()
        .map(Option::flatten)
    }
}

/// A tablet batch's reads and writes on SQLite (a statement per item: in process, a
/// round trip costs nothing).
struct SqliteDoseSink<'a> {
    tx: &'a Transaction<'a>,
    registered_at: &'a str,
}

impl crate::ingest::DoseSink for SqliteDoseSink<'_> {
    fn stored(
        &mut self,
        keys: &[(MunicipalityCode, ClientRecordId)],
    ) -> Result<
        std::collections::HashMap<(MunicipalityCode, ClientRecordId), Option<HoldReason>>,
        StoreError,
    > {
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
        std::collections::HashMap<(MunicipalityCode, VoucherNumber), crate::ingest::Person>,
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
                    crate::ingest::Person {
                        person_id,
                        status: status_of(&status),
                    },
                );
            }
        }
        Ok(out)
    }

    fn prior(
        &mut self,
        people: &[(MunicipalityCode, &str)],
    ) -> Result<std::collections::HashMap<(MunicipalityCode, String), Vec<PriorDose>>, StoreError>
    {
        let mut out = std::collections::HashMap::new();
        for (m, p) in people {
            out.insert((*m, (*p).to_owned()), prior_doses(self.tx, *m, p)?);
        }
        Ok(out)
    }

    fn expiries(
        &mut self,
        lots: &[(Vaccine, &Lot)],
    ) -> Result<std::collections::HashMap<(Vaccine, String), NaiveDate>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for (v, l) in lots {
            if let Some(e) = lot_expiry(self.tx, *v, l)? {
                out.insert((*v, l.as_str().to_owned()), e);
            }
        }
        Ok(out)
    }

    fn site_names(
        &mut self,
        municipality: MunicipalityCode,
        codes: &[String],
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut st = self
            .tx
            .prepare_cached("SELECT name FROM sites WHERE municipality = ?1 AND code = ?2")?;
        let mut out = std::collections::HashMap::new();
        for code in codes {
            if let Some(name) = st
                .query_row(params![municipality.get(), code], |r| r.get::<_, String>(0))
                .optional()?
            {
                out.insert(code.clone(), name);
            }
        }
        Ok(out)
    }

    fn insert(
        &mut self,
        site_municipality: MunicipalityCode,
        rows: &[crate::ingest::Decided<'_>],
    ) -> Result<(), StoreError> {
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
}

/// A paper upload's reads and writes on SQLite.
struct SqlitePaperSink<'a> {
    tx: &'a Transaction<'a>,
    municipality: MunicipalityCode,
    now: &'a str,
}

impl import::PaperSink for SqlitePaperSink<'_> {
    fn exists(&mut self, id: ClientRecordId) -> Result<bool, StoreError> {
        dose_stored(self.tx, self.municipality, id)
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
        let registered_at = row
            .registered_at
            .map(time_text)
            .unwrap_or_else(|| self.now.to_owned());
        insert_dose(
            self.tx,
            &NewDose {
                municipality: self.municipality,
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
            },
            found,
            verdict,
            &registered_at,
        )
    }
}

/// The register import's reads and writes on SQLite (one statement per person: in
/// process, a round trip costs nothing).
struct SqliteSink<'a> {
    tx: &'a Transaction<'a>,
    vault: &'a Vault,
    jobs: &'a std::sync::mpsc::Sender<VaultJob>,
    /// The answer to a prefetch of hashes, still on its way.
    pending: Option<HashesAnswer>,
    municipality: MunicipalityCode,
    now: &'a str,
}

type HashesAnswer = std::sync::mpsc::Receiver<
    Result<std::collections::HashMap<String, crate::vault::LookupHash>, StoreError>,
>;

/// Work for the vault thread of an import.
enum VaultJob {
    /// The stored hashes of these people, answered on the channel.
    Hashes(
        Vec<String>,
        std::sync::mpsc::Sender<
            Result<std::collections::HashMap<String, crate::vault::LookupHash>, StoreError>,
        >,
    ),
    /// Sealed numbers to store: (person, hash, nonce, sealed).
    Put(Vec<(String, crate::vault::LookupHash, Vec<u8>, Vec<u8>)>),
    /// Commit (true) or roll back, and say how it went.
    Finish(bool, std::sync::mpsc::Sender<Result<(), StoreError>>),
}

/// Holds the vault's write transaction for one import, on its own thread. Jobs run
/// in order, so a question about hashes sees every earlier write. If the import
/// stops early, the channel closes and the transaction rolls back.
fn vault_worker(
    vault: &Vault,
    municipality: MunicipalityCode,
    jobs: std::sync::mpsc::Receiver<VaultJob>,
) {
    let vtx = vault.begin();
    let mut failed: Option<StoreError> = None;
    let stopped = || StoreError::Invalid("the vault write failed earlier in this import".into());
    let vtx = match vtx {
        Ok(t) => t,
        Err(e) => {
            failed = Some(e);
            // Answer what comes, with the failure.
            for job in jobs {
                match job {
                    VaultJob::Hashes(_, reply) => {
                        let _ = reply.send(Err(stopped()));
                    }
                    VaultJob::Put(_) => {}
                    VaultJob::Finish(_, reply) => {
                        let _ = reply.send(Err(failed.take().unwrap_or_else(stopped)));
                        return;
                    }
                }
            }
            return;
        }
    };
    for job in jobs {
        match job {
            VaultJob::Hashes(ids, reply) => {
                let answer = if failed.is_some() {
                    Err(stopped())
                } else {
                    let mut out = std::collections::HashMap::new();
                    let mut err = None;
                    for id in ids {
                        match vtx.hash_of(municipality, &id) {
                            Ok(Some(h)) => {
                                out.insert(id, h);
                            }
                            Ok(None) => {}
                            Err(e) => {
                                err = Some(e);
                                break;
                            }
                        }
                    }
                    match err {
                        Some(e) => Err(e),
                        None => Ok(out),
                    }
                };
                let _ = reply.send(answer);
            }
            VaultJob::Put(rows) => {
                if failed.is_none() {
                    for (pid, hash, nonce, sealed) in rows {
                        if let Err(e) = vtx.put_sealed(municipality, &pid, &hash, &nonce, &sealed) {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            VaultJob::Finish(commit, reply) => {
                let result = match failed.take() {
                    Some(e) => Err(e),
                    None if commit => vtx.commit(),
                    None => Ok(()), // dropping the transaction rolls it back
                };
                let _ = reply.send(result);
                return;
            }
        }
    }
}

impl SqliteSink<'_> {
    fn ask_hashes(&self, ids: &[&str]) -> Result<HashesAnswer, StoreError> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.jobs
            .send(VaultJob::Hashes(
                ids.iter().map(|s| (*s).to_owned()).collect(),
                reply,
            ))
            .map_err(|_| StoreError::Invalid("the vault writer stopped".into()))?;
        Ok(answer)
    }
}

impl import::RegisterSink for SqliteSink<'_> {
    fn persons(
        &mut self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, PersonFields>, StoreError> {
        let mut get = self.tx.prepare_cached(
            "SELECT family_name, given_name, family_kana, given_kana, birth_date, sex, voucher, status
             FROM persons WHERE municipality = ?1 AND person_id = ?2",
        )?;
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for id in ids {
            let found = get
                .query_row(params![self.municipality.get(), id], |r| {
                    Ok(PersonFields {
                        family_name: r.get(0)?,
                        given_name: r.get(1)?,
                        family_kana: r.get(2)?,
                        given_kana: r.get(3)?,
                        birth_date: r.get::<_, Option<String>>(4)?.and_then(|s| s.parse().ok()),
                        sex: r
                            .get::<_, Option<i64>>(5)?
                            .and_then(|c| format!("{c}").parse::<Sex>().ok()),
                        voucher: r
                            .get::<_, Option<i64>>(6)?
                            .and_then(|v| VoucherNumber::new(v as u64)),
                        status: status_of(&r.get::<_, String>(7)?),
                    })
                })
                .optional()?;
            if let Some(p) = found {
                out.insert((*id).to_owned(), p);
            }
        }
        Ok(out)
    }

    fn voucher_holders(
        &mut self,
        vouchers: &[VoucherNumber],
    ) -> Result<std::collections::HashMap<VoucherNumber, String>, StoreError> {
        let mut owner = self.tx.prepare_cached(
            "SELECT person_id FROM persons WHERE municipality = ?1 AND voucher = ?2",
        )?;
        let mut out = std::collections::HashMap::new();
        for v in vouchers {
            let holder: Option<String> = owner
                .query_row(params![self.municipality.get(), v.get() as i64], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(h) = holder {
                out.insert(*v, h);
            }
        }
        Ok(out)
    }

    fn vault_hashes(
        &mut self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, crate::vault::LookupHash>, StoreError> {
        let answer = match self.pending.take() {
            Some(answer) => answer,
            None => self.ask_hashes(ids)?,
        };
        answer
            .recv()
            .unwrap_or_else(|_| Err(StoreError::Invalid("the vault writer stopped".into())))
    }

    fn prefetch_vault_hashes(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        self.pending = Some(self.ask_hashes(ids)?);
        Ok(())
    }

    fn write_persons(&mut self, rows: &[PersonRow<'_>]) -> Result<(), StoreError> {
        let mut write = self.tx.prepare_cached(
            "INSERT INTO persons (municipality, person_id, family_name, given_name, family_kana,
                 given_kana, birth_date, sex, voucher, status, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (municipality, person_id) DO UPDATE SET
                 family_name = excluded.family_name, given_name = excluded.given_name,
                 family_kana = excluded.family_kana, given_kana = excluded.given_kana,
                 birth_date = excluded.birth_date, sex = excluded.sex,
                 voucher = excluded.voucher, status = excluded.status,
                 updated_at = excluded.updated_at",
        )?;
        for PersonRow { id, fields: f, .. } in rows {
            write.execute(params![
                self.municipality.get(),
                id,
                f.family_name,
                f.given_name,
                f.family_kana,
                f.given_kana,
                f.birth_date.map(|d| d.to_string()),
                f.sex.map(|s| s.code()),
                f.voucher.map(|v| v.get() as i64),
                status_text(f.status),
                self.now,
            ])?;
        }
        Ok(())
    }

    fn release_vouchers(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        let mut st = self.tx.prepare_cached(
            "UPDATE persons SET voucher = NULL WHERE municipality = ?1 AND person_id = ?2",
        )?;
        for id in ids {
            st.execute(params![self.municipality.get(), id])?;
        }
        Ok(())
    }

    fn write_numbers(
        &mut self,
        rows: &[(&str, &MyNumber, &crate::vault::LookupHash)],
    ) -> Result<(), StoreError> {
        // Sealed here, so that no マイナンバー crosses to the other thread.
        let mut sealed = Vec::with_capacity(rows.len());
        for (pid, n, h) in rows {
            let (nonce, buf) = self.vault.seal(self.municipality, pid, n)?;
            sealed.push(((*pid).to_owned(), **h, nonce.to_vec(), buf));
        }
        self.jobs
            .send(VaultJob::Put(sealed))
            .map_err(|_| StoreError::Invalid("the vault writer stopped".into()))
    }
}

pub(crate) fn outcome_text(o: ImportOutcome) -> &'static str {
    match o {
        ImportOutcome::Applied => "applied",
        ImportOutcome::Rejected => "rejected",
        ImportOutcome::DryRun => "dry_run",
    }
}

pub(crate) fn write_error(e: vrs_domain::csv::WriteError) -> StoreError {
    match e {
        vrs_domain::csv::WriteError::Io(e) => StoreError::Io(e),
        other => StoreError::Invalid(other.to_string()),
    }
}
