//! The PostgreSQL store: the same traits as [`crate::sqlite::SqliteStore`], on the
//! `vrs` schema, with the マイナンバー vault in the `vrs_vault` schema reached through
//! its own connection (and, in production, its own role and URL). One file per
//! feature, as in `sqlite/`; every statement that speaks postgres is in this folder.
//!
//! Set-wise SQL keeps round trips per chunk, not per row. Look-ups by key are written
//! as `UNNEST($keys) CROSS JOIN LATERAL (… WHERE key = u.key OFFSET 0)`: one index
//! probe per key whatever the statistics say (see [`by_index`]). (`key = ANY($keys)` let the planner, with
//! statistics that lag a large import in progress, scan the whole partition once
//! per chunk: a 1,000,000-row import took 140 s.)

use std::sync::Mutex;

use chrono::NaiveDateTime;
use postgres::{Client, Transaction};
use vrs_domain::MunicipalityCode;

use crate::error::{Result, StoreError};
use crate::keys::Keys;
use crate::principal::Principal;
use crate::store::audit::{AuditLog, ChainKey};
use crate::store::codec::outcome_text;
use crate::store::import::ErrorCsv;
use crate::store::vault::VaultCrypto;
use crate::store::{ImportReport, Migration};

mod access;
mod audit;
mod devices;
mod ledger;
mod lots;
mod pool;
mod records;
mod register;
mod transfer;
mod vault;

use audit::PgAudit;
use pool::{PgConn, PgPool};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The client error's Display is only "db error": keep the server's message.
        StoreError::Postgres(match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        })
    }
}

const MAIN_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("migrations/main/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("migrations/main/0002_person_id_c.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("migrations/main/0003_no_municipality_statistics.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("migrations/main/0004_audit.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("migrations/main/0005_devices.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("migrations/main/0006_access.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("migrations/main/0007_device_signin.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("migrations/main/0008_session_device.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("migrations/main/0009_lot_master.sql"),
    },
];
const VAULT_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("migrations/vault/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("migrations/vault/0002_person_id_c.sql"),
    },
];

/// Applies a schema's migrations, under an advisory lock so that two servers
/// starting together do not race.
fn migrate(client: &mut Client, schema: &str, migrations: &[Migration]) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())"
    ))?;
    for m in migrations {
        let version = &(m.version as i32);
        let done: bool = tx
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {schema}.schema_migrations WHERE version = $1)"
                ),
                &[version],
            )?
            .get(0);
        if !done {
            tx.batch_execute(m.sql)?;
            tx.execute(
                &format!("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"),
                &[version],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
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
    pub(crate) fn main_conn(&self) -> Result<PgConn<'_>> {
        self.main.get()
    }

    /// Connects to `url` (the `vrs` schema) and `vault_url` (the `vrs_vault` schema;
    /// give the vault its own role there), and brings both schemas up to date.
    pub fn open(url: &str, vault_url: &str, keys: &Keys) -> Result<Self> {
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
) -> Result<i64> {
    Ok(c.query_one(
        "INSERT INTO vrs.imports (municipality, kind, actor, started_at, outcome, report, errors_csv)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[&mc(m), &kind, &actor.to_string(), &now, &outcome_text(report.outcome), &summary, &errors.text],
    )?
    .get(0))
}

impl crate::store::Store for PgStore {
    fn audit(&self) -> &dyn AuditLog {
        &self.audit
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
fn by_index(tx: &mut Transaction<'_>) -> Result<()> {
    tx.batch_execute("SET LOCAL enable_seqscan = off")?;
    Ok(())
}

fn lock_municipality(tx: &mut Transaction<'_>, m: MunicipalityCode) -> Result<()> {
    // 0x565253 is "VRS": a namespace for this service's advisory locks.
    tx.execute("SELECT pg_advisory_xact_lock(5657171, $1)", &[&mc(m)])?;
    Ok(())
}
