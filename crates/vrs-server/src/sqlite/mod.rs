//! The embedded store: SQLite files in a data folder (`vrs.db`, `vault.db` for the
//! マイナンバー vault, `audit.db` for the access log), each encrypted with SQLCipher.
//!
//! [`SqliteStore`] implements the store's traits directly, one file per feature
//! (register, lots, records, ledger, transfer, access, devices; `vault.rs` is the
//! vault's own database, whose two checks are implemented at the end of this file,
//! since `vault.rs` must not reach back here); the engines
//! in [`crate::store`] run the rules over the small "sinks" defined here. Every
//! statement that speaks rusqlite is in this folder.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::keys::Keys;
use crate::store::Migration;

mod access;
pub mod audit;
pub(crate) mod db;
mod devices;
mod ledger;
mod lots;
mod records;
mod register;
mod transfer;
pub mod vault;

use audit::SqliteAudit;
use db::Pool;
use vault::SqliteVault;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("migrations/main/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("migrations/main/0002_tokens.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("migrations/main/0003_devices.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("migrations/main/0004_access.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("migrations/main/0005_device_signin.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("migrations/main/0006_session_device.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("migrations/main/0007_lot_master.sql"),
    },
];

/// The embedded SQLite store.
pub struct SqliteStore {
    pub(crate) pool: Pool,
    vault: SqliteVault,
    audit: SqliteAudit,
    data_dir: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the store in `data_dir` (creating it), with its keys.
    pub fn open(data_dir: &Path, keys: Keys) -> Result<Self> {
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
        let vault = SqliteVault::open(&data_dir.join("vault.db"), &keys)?;
        let audit = SqliteAudit::open(&data_dir.join("audit.db"), &keys)?;
        let keys = std::sync::Arc::new(keys);
        let pool = Pool::new(path, move |p| db::open(p, &keys.database));
        Ok(SqliteStore {
            pool,
            vault,
            audit,
            data_dir: data_dir.to_owned(),
        })
    }

    pub fn vault(&self) -> &SqliteVault {
        &self.vault
    }

    /// The access log (`audit.db`).
    pub fn audit(&self) -> &SqliteAudit {
        &self.audit
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl crate::store::Store for SqliteStore {
    fn audit(&self) -> &dyn crate::store::audit::AuditLog {
        &self.audit
    }
}

/// The vault's own checks: the vault is a part of this store (`vault.db`).
impl crate::store::Vault for SqliteStore {
    fn vault_count(&self) -> Result<u64> {
        self.vault().count()
    }

    fn vault_reveal(
        &self,
        m: vrs_domain::MunicipalityCode,
        p: &vrs_domain::PersonId,
    ) -> Result<Option<vrs_domain::MyNumber>> {
        self.vault().reveal(m, p)
    }
}
