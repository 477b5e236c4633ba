//! The マイナンバー vault of the embedded store: its own database file, apart from
//! everything else.
//!
//! A row holds (municipality code, 個別宛名番号) → the number sealed with AES-256-GCM
//! (the pair is the associated data, so a sealed number cannot be moved to another
//! person) and an HMAC-SHA256 of the number under a separate key, which is how a
//! number is found without decrypting anything. Nothing else in the system holds
//! the digits, and nothing links a number to a person except through the pair.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use ring::aead::NONCE_LEN;
use rusqlite::{Connection, OptionalExtension, params};
use vrs_domain::{MunicipalityCode, MyNumber, PersonId};

use super::db;
use crate::error::StoreError;
use crate::keys::Keys;
use crate::store::Migration;
use crate::store::codec::{municipality_code, person};
use crate::store::vault::{LookupHash, VaultCrypto};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("migrations/vault/0001_init.sql"),
}];

pub struct SqliteVault {
    /// Writes go through this one; WAL lets `reader` read meanwhile.
    conn: Mutex<Connection>,
    reader: Mutex<Connection>,
    crypto: VaultCrypto,
}

impl std::fmt::Debug for SqliteVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteVault")
    }
}

impl SqliteVault {
    pub fn open(path: &Path, keys: &Keys) -> Result<Self, StoreError> {
        let mut conn = db::open(path, &keys.database)?;
        db::migrate(&mut conn, MIGRATIONS)?;
        let reader = db::open(path, &keys.database)?;
        Ok(SqliteVault {
            conn: Mutex::new(conn),
            reader: Mutex::new(reader),
            crypto: VaultCrypto::new(keys)?,
        })
    }

    pub fn lookup_hash(&self, n: &MyNumber) -> LookupHash {
        self.crypto.lookup_hash(n)
    }

    /// Seals a number to its person, for [`VaultTx::put_sealed`].
    pub fn seal(
        &self,
        municipality: MunicipalityCode,
        person: &str,
        n: &MyNumber,
    ) -> Result<([u8; NONCE_LEN], Vec<u8>), StoreError> {
        self.crypto.seal(municipality, person, n)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    fn read(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.reader.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Starts a write transaction; it rolls back unless committed.
    pub fn begin(&self) -> Result<VaultTx<'_>, StoreError> {
        let conn = self.lock()?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(VaultTx { conn, open: true })
    }

    /// Everyone registered with this number, in any municipality.
    pub fn find(&self, n: &MyNumber) -> Result<Vec<(MunicipalityCode, PersonId)>, StoreError> {
        let h = self.lookup_hash(n);
        let conn = self.read()?;
        let mut st = conn.prepare_cached(
            "SELECT municipality, person_id FROM my_numbers WHERE lookup = ?1 ORDER BY municipality",
        )?;
        let rows = st
            .query_map([&h[..]], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(m, p)| Ok((municipality_code(m)?, person(&p)?)))
            .collect()
    }

    /// Decrypts the number held for a person; for the vault's own checks and tests.
    pub fn reveal(
        &self,
        municipality: MunicipalityCode,
        person: &PersonId,
    ) -> Result<Option<MyNumber>, StoreError> {
        let conn = self.read()?;
        let row: Option<(Vec<u8>, Vec<u8>)> = conn
            .query_row(
                "SELECT nonce, sealed FROM my_numbers WHERE municipality = ?1 AND person_id = ?2",
                params![municipality.get(), person.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((nonce, sealed)) = row else {
            return Ok(None);
        };
        self.crypto
            .open(municipality, person.as_str(), &nonce, sealed)
            .map(Some)
    }

    /// How many numbers the vault holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        let conn = self.read()?;
        let n: i64 = conn.query_row("SELECT count(*) FROM my_numbers", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// A write transaction on the vault.
#[allow(missing_debug_implementations)] // holds a connection guard; nothing to show
pub struct VaultTx<'v> {
    conn: MutexGuard<'v, Connection>,
    open: bool,
}

impl VaultTx<'_> {
    /// The look-up hash stored for a person, if any.
    pub fn hash_of(
        &self,
        municipality: MunicipalityCode,
        person: &str,
    ) -> Result<Option<LookupHash>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT lookup FROM my_numbers WHERE municipality = ?1 AND person_id = ?2",
        )?;
        let v: Option<Vec<u8>> = st
            .query_row(params![municipality.get(), person], |r| r.get(0))
            .optional()?;
        Ok(v.and_then(|v| v.try_into().ok()))
    }

    /// Stores (or replaces) a person's number, sealed already by [`SqliteVault::seal`].
    pub fn put_sealed(
        &self,
        municipality: MunicipalityCode,
        person: &str,
        hash: &LookupHash,
        nonce: &[u8],
        buf: &[u8],
    ) -> Result<(), StoreError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO my_numbers (municipality, person_id, lookup, nonce, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (municipality, person_id) DO UPDATE
             SET lookup = excluded.lookup, nonce = excluded.nonce, sealed = excluded.sealed",
        )?;
        st.execute(params![municipality.get(), person, &hash[..], nonce, buf])?;
        Ok(())
    }

    pub fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }
}

impl Drop for VaultTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to do with a failure here: the connection rolls back on close.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
