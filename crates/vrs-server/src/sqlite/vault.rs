//! The マイナンバー vault of the embedded store: its own database file, apart from
//! everything else.
//!
//! A row holds (municipality code, 個別宛名番号) → the number sealed with AES-256-GCM
//! (the pair is the associated data, so a sealed number cannot be moved to another
//! person) and an HMAC-SHA256 of the number under a separate key, which is how a
//! number is found without decrypting anything. Nothing else in the system holds
//! the digits, and nothing links a number to a person except through the pair.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use vrs_domain::{MunicipalityCode, MyNumber, PersonId};

use super::db;
use crate::error::StoreError;
use crate::keys::Keys;
use crate::store::Migration;
use crate::store::codec::{municipality_code, person};
use crate::store::vault::{Links, LookupHash, SealedNumber, VaultCrypto, VaultWrite};

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

    /// The vault's keys, to seal numbers with on the import's thread.
    pub fn crypto(&self) -> &VaultCrypto {
        &self.crypto
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    fn read(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.reader.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Starts a write transaction on one municipality's numbers; it rolls back
    /// unless committed.
    pub fn begin(&self, municipality: MunicipalityCode) -> Result<VaultTx<'_>, StoreError> {
        let conn = self.lock()?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(VaultTx {
            conn,
            municipality,
            open: true,
        })
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

    /// For each of these people, everyone else registered with the same number (a
    /// newcomer's entry in the municipality they left), by the keyed hash alone.
    pub fn linked(&self, people: &[(MunicipalityCode, &str)]) -> Result<Links, StoreError> {
        let conn = self.read()?;
        let mut st = conn.prepare_cached(
            "SELECT b.municipality, b.person_id FROM my_numbers a
             JOIN my_numbers b ON b.lookup = a.lookup
                 AND (b.municipality <> a.municipality OR b.person_id <> a.person_id)
             WHERE a.municipality = ?1 AND a.person_id = ?2",
        )?;
        let mut out = Links::new();
        for (m, p) in people {
            let rows = st
                .query_map(params![m.get(), p], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            if !rows.is_empty() {
                let others = rows
                    .into_iter()
                    .map(|(om, op)| Ok((municipality_code(om)?, op)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                out.insert((*m, (*p).to_owned()), others);
            }
        }
        Ok(out)
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

/// A write transaction on the vault, for one municipality's numbers.
#[allow(missing_debug_implementations)] // holds a connection guard; nothing to show
pub struct VaultTx<'v> {
    conn: MutexGuard<'v, Connection>,
    municipality: MunicipalityCode,
    open: bool,
}

impl VaultWrite for VaultTx<'_> {
    fn hashes(&mut self, people: &[&str]) -> Result<HashMap<String, LookupHash>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT lookup FROM my_numbers WHERE municipality = ?1 AND person_id = ?2",
        )?;
        let mut out = HashMap::new();
        for person in people {
            let v: Option<Vec<u8>> = st
                .query_row(params![self.municipality.get(), person], |r| r.get(0))
                .optional()?;
            if let Some(h) = v.and_then(|v| LookupHash::try_from(v).ok()) {
                out.insert((*person).to_owned(), h);
            }
        }
        Ok(out)
    }

    fn put(&mut self, rows: &[SealedNumber]) -> Result<(), StoreError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO my_numbers (municipality, person_id, lookup, nonce, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (municipality, person_id) DO UPDATE
             SET lookup = excluded.lookup, nonce = excluded.nonce, sealed = excluded.sealed",
        )?;
        for r in rows {
            st.execute(params![
                self.municipality.get(),
                r.person,
                &r.lookup[..],
                &r.nonce[..],
                r.sealed
            ])?;
        }
        Ok(())
    }

    fn commit(mut self) -> Result<(), StoreError> {
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
