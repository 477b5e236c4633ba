//! The マイナンバー vault of the embedded store: its own database file, apart from
//! everything else.
//!
//! A row holds (municipality code, 個別宛名番号) → the number sealed with AES-256-GCM
//! (the pair is the associated data, so a sealed number cannot be moved to another
//! person) and an HMAC-SHA256 of the number under a separate key, which is how a
//! number is found without decrypting anything. Nothing else in the system holds
//! the digits, and nothing links a number to a person except through the pair.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use vrs_domain::{MunicipalityCode, MyNumber, PersonId};

use super::db;
use crate::error::{Result, StoreError};
use crate::keys::Keys;
use crate::store::Migration;
use crate::store::codec::{municipality_code, person};
use crate::store::vault::{Links, LookupHash, SealedNumber, VaultCrypto, VaultWrite};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("migrations/vault/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("migrations/vault/0002_lookups_apart.sql"),
    },
];

/// Numbers an import holds before writing them, sorted, to the vault's two B-trees
/// (about 20 MB): a batch this large touches each page of a large vault about once
/// per batch, where numbers written as they come touch a random page each.
const BATCH: usize = 100_000;

pub struct SqliteVault {
    /// The vault's folder, where an import keeps its scratch file.
    dir: PathBuf,
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
    pub fn open(path: &Path, keys: &Keys) -> Result<Self> {
        let mut conn = db::open(path, &keys.database)?;
        db::migrate(&mut conn, MIGRATIONS)?;
        let reader = db::open(path, &keys.database)?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        Stage::remove_leftovers(&dir);
        Ok(SqliteVault {
            dir,
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

    fn lock(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    fn read(&self) -> Result<MutexGuard<'_, Connection>> {
        self.reader.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Starts a write transaction on one municipality's numbers; it rolls back
    /// unless committed.
    pub fn begin(&self, municipality: MunicipalityCode) -> Result<VaultTx<'_>> {
        self.begin_batched(municipality, BATCH)
    }

    /// [`Self::begin`], holding `batch` numbers before writing them.
    fn begin_batched(&self, municipality: MunicipalityCode, batch: usize) -> Result<VaultTx<'_>> {
        let conn = self.lock()?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(VaultTx {
            conn,
            municipality,
            open: true,
            batch,
            pending: HashMap::new(),
            dir: &self.dir,
            stage: None,
        })
    }

    /// Everyone registered with this number, in any municipality.
    pub fn find(&self, n: &MyNumber) -> Result<Vec<(MunicipalityCode, PersonId)>> {
        let h = self.lookup_hash(n);
        let conn = self.read()?;
        let mut st = conn.prepare_cached(
            "SELECT municipality, person_id FROM my_number_lookups WHERE lookup = ?1
             ORDER BY municipality",
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
    pub fn linked(&self, people: &[(MunicipalityCode, &str)]) -> Result<Links> {
        let conn = self.read()?;
        let mut st = conn.prepare_cached(
            "SELECT b.municipality, b.person_id FROM my_numbers a
             JOIN my_number_lookups b ON b.lookup = a.lookup
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
                    .collect::<Result<Vec<_>>>()?;
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
    ) -> Result<Option<MyNumber>> {
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
    pub fn count(&self) -> Result<u64> {
        let conn = self.read()?;
        let n: i64 = conn.query_row("SELECT count(*) FROM my_numbers", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// A write transaction on the vault, for one municipality's numbers.
///
/// Numbers put are held, up to a batch, and then written in two B-trees, each in
/// its own key order: the sealed numbers by 個別宛名番号 at once, and the look-up
/// entries, whose hashes fall anywhere in a vault of millions, as a sorted run in a
/// scratch file ([`Stage`]). At the commit the runs are merged into the look-up
/// table in one pass in hash order, so each of its pages is written once, whatever
/// the file's size and with memory bounded by the batch. (Written as they came,
/// each number cost a random page once the index outgrew the page cache: 71 s for a
/// first load of 3,700,000 people; merged into the table batch by batch, the
/// vault's time grew with the square of the file.) Questions about hashes see the
/// held numbers.
#[allow(missing_debug_implementations)] // holds a connection guard; nothing to show
pub struct VaultTx<'v> {
    conn: MutexGuard<'v, Connection>,
    municipality: MunicipalityCode,
    open: bool,
    batch: usize,
    /// Numbers put and not yet written, the latest per person.
    pending: HashMap<String, SealedNumber>,
    /// The vault's folder, for the scratch file.
    dir: &'v Path,
    /// The sorted runs of look-up changes so far, once there is one.
    stage: Option<Stage>,
}

/// An import's scratch file beside the vault, for the sorted runs of look-up
/// changes: encrypted under a key made for it and forgotten with it, written
/// without a journal (nothing in it outlives the import), and deleted at the end
/// (a file left by a killed import is deleted when the vault next opens).
struct Stage {
    conn: Connection,
    path: PathBuf,
    /// Each run's first and last rowid.
    runs: Vec<(i64, i64)>,
}

impl Stage {
    const PREFIX: &'static str = "vault-stage-";

    fn create(dir: &Path) -> Result<Stage> {
        let key = crate::keys::Secret32::generate().map_err(|_| StoreError::Crypto)?;
        // Named by the process that writes it, so that another process opening the
        // vault (an admin command beside the server) leaves it alone.
        let path = dir.join(format!(
            "{}{}-{}.db",
            Self::PREFIX,
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let conn = db::open(&path, &key)?;
        let stage = Stage {
            conn,
            path,
            runs: Vec::new(),
        };
        stage.conn.execute_batch(
            "PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA cache_size = -8192;
             CREATE TABLE runs (lookup BLOB NOT NULL, person_id TEXT NOT NULL, present INTEGER NOT NULL);",
        )?;
        Ok(stage)
    }

    /// Deletes the scratch files of processes that are gone (killed mid-import).
    fn remove_leftovers(dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(Self::PREFIX)
                .and_then(|rest| rest.split('-').next())
            else {
                continue;
            };
            let alive = pid.parse::<u32>().is_ok_and(|pid| {
                pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
            });
            if !alive {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Appends one run, already sorted.
    fn push(&mut self, changes: &[(LookupHash, &str, bool)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut first = None;
        {
            let mut add = tx.prepare_cached(
                "INSERT INTO runs (lookup, person_id, present) VALUES (?1, ?2, ?3)",
            )?;
            for (h, person, present) in changes {
                add.execute(params![&h[..], person, present])?;
                first.get_or_insert(tx.last_insert_rowid());
            }
        }
        let last = tx.last_insert_rowid();
        tx.commit()?;
        if let Some(first) = first {
            self.runs.push((first, last));
        }
        Ok(())
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // The file's connection is closed first (swapped for an in-memory one).
        if let Ok(c) = Connection::open_in_memory() {
            drop(std::mem::replace(&mut self.conn, c));
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl VaultTx<'_> {
    /// Writes the held numbers: each person's row (in 個別宛名番号 order), then one
    /// sorted run of look-up changes: the new entries, and the old entry of a
    /// number replaced.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<SealedNumber> = self.pending.drain().map(|(_, r)| r).collect();
        rows.sort_unstable_by(|a, b| a.person.cmp(&b.person));
        let m = self.municipality.get();
        // (hash, person, whether the entry is to be there).
        let mut changes: Vec<(LookupHash, &str, bool)> = Vec::with_capacity(rows.len());
        {
            let mut old = self.conn.prepare_cached(
                "SELECT lookup FROM my_numbers WHERE municipality = ?1 AND person_id = ?2",
            )?;
            let mut put = self.conn.prepare_cached(
                "INSERT INTO my_numbers (municipality, person_id, lookup, nonce, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (municipality, person_id) DO UPDATE
                 SET lookup = excluded.lookup, nonce = excluded.nonce, sealed = excluded.sealed",
            )?;
            for r in &rows {
                let before: Option<Vec<u8>> = old
                    .query_row(params![m, r.person], |row| row.get(0))
                    .optional()?;
                if let Some(h) = before.and_then(|v| LookupHash::try_from(v).ok())
                    && h != r.lookup
                {
                    changes.push((h, r.person.as_str(), false));
                }
                changes.push((r.lookup, r.person.as_str(), true));
                put.execute(params![m, r.person, &r.lookup[..], &r.nonce[..], r.sealed])?;
            }
        }
        changes.sort_unstable();
        let stage = match &mut self.stage {
            Some(stage) => stage,
            None => self.stage.insert(Stage::create(self.dir)?),
        };
        stage.push(&changes)
    }

    /// Merges the staged runs into the look-up table in hash order (for an entry
    /// changed in several runs, the latest run says whether it is there); the
    /// scratch file goes with the stage.
    fn merge_runs(&mut self) -> Result<()> {
        if let Some(stage) = self.stage.take() {
            merge_staged(&stage, &self.conn, self.municipality.get())?;
        }
        Ok(())
    }
}

/// The merge of [`VaultTx::merge_runs`]: the runs read side by side from the
/// scratch file, the smallest entry first, written to the vault's `conn`.
fn merge_staged(stage: &Stage, conn: &Connection, m: u32) -> Result<()> {
    // Each run is read as it was written (its rowids in order), which is its
    // hash order: a range of the table, no sort, no index.
    let mut reads = stage
        .runs
        .iter()
        .map(|_| {
            stage.conn.prepare(
                "SELECT lookup, person_id, present FROM runs
                 WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid",
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut cursors = reads
        .iter_mut()
        .zip(&stage.runs)
        .map(|(st, (first, last))| st.query([first, last]))
        .collect::<Result<Vec<_>, _>>()?;
    type Entry = ((Vec<u8>, String), usize, bool);
    let next = |rows: &mut rusqlite::Rows<'_>, run: usize| -> Result<Option<Entry>> {
        Ok(match rows.next()? {
            Some(r) => Some(((r.get(0)?, r.get(1)?), run, r.get(2)?)),
            None => None,
        })
    };
    // Smallest (hash, person) first; for one entry, runs in the order written.
    let mut heap = std::collections::BinaryHeap::new();
    for (run, c) in cursors.iter_mut().enumerate() {
        if let Some(e) = next(c, run)? {
            heap.push(std::cmp::Reverse(e));
        }
    }
    let mut add = conn.prepare_cached(
        "INSERT OR IGNORE INTO my_number_lookups (lookup, municipality, person_id)
         VALUES (?1, ?2, ?3)",
    )?;
    let mut remove = conn.prepare_cached(
        "DELETE FROM my_number_lookups WHERE lookup = ?1 AND municipality = ?2 AND person_id = ?3",
    )?;
    while let Some(std::cmp::Reverse((key, run, mut present))) = heap.pop() {
        if let Some(e) = next(&mut cursors[run], run)? {
            heap.push(std::cmp::Reverse(e));
        }
        // Later runs' word on the same entry.
        while let Some(std::cmp::Reverse((k, ..))) = heap.peek()
            && *k == key
        {
            let Some(std::cmp::Reverse((_, later, p))) = heap.pop() else {
                break;
            };
            present = p;
            if let Some(e) = next(&mut cursors[later], later)? {
                heap.push(std::cmp::Reverse(e));
            }
        }
        let (lookup, person) = key;
        if present {
            add.execute(params![lookup, m, person])?;
        } else {
            remove.execute(params![lookup, m, person])?;
        }
    }
    Ok(())
}

impl VaultWrite for VaultTx<'_> {
    fn hashes(&mut self, people: &[&str]) -> Result<HashMap<String, LookupHash>> {
        let mut st = self.conn.prepare_cached(
            "SELECT lookup FROM my_numbers WHERE municipality = ?1 AND person_id = ?2",
        )?;
        let mut out = HashMap::new();
        for person in people {
            if let Some(r) = self.pending.get(*person) {
                out.insert((*person).to_owned(), r.lookup);
                continue;
            }
            let v: Option<Vec<u8>> = st
                .query_row(params![self.municipality.get(), person], |r| r.get(0))
                .optional()?;
            if let Some(h) = v.and_then(|v| LookupHash::try_from(v).ok()) {
                out.insert((*person).to_owned(), h);
            }
        }
        Ok(out)
    }

    fn put(&mut self, rows: Vec<SealedNumber>) -> Result<()> {
        for r in rows {
            self.pending.insert(r.person.clone(), r);
        }
        if self.pending.len() >= self.batch {
            self.flush()?;
        }
        Ok(())
    }

    fn commit(mut self) -> Result<()> {
        self.flush()?;
        self.merge_runs()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The n-th test number: eleven digits from n, and their check digit.
    fn number(n: u64) -> MyNumber {
        let mut d = [0u8; 11];
        let mut x = n;
        for slot in d.iter_mut().rev() {
            *slot = (x % 10) as u8;
            x /= 10;
        }
        MyNumber::from_first_eleven(d).unwrap()
    }

    fn sealed(vault: &SqliteVault, m: MunicipalityCode, person: &str, n: u64) -> SealedNumber {
        let number = number(n);
        let (nonce, sealed) = vault.crypto().seal(m, person, &number).unwrap();
        SealedNumber {
            person: person.to_owned(),
            lookup: vault.lookup_hash(&number),
            nonce,
            sealed,
        }
    }

    fn found(vault: &SqliteVault, n: u64) -> Vec<String> {
        vault
            .find(&number(n))
            .unwrap()
            .into_iter()
            .map(|(m, p)| format!("{m}/{}", p.as_str()))
            .collect()
    }

    #[test]
    fn numbers_written_in_batches_are_found_by_their_latest_number_only() {
        let dir = tempfile::tempdir().unwrap();
        // A scratch file of an import killed earlier (its process gone) is deleted
        // when the vault opens; one of a live process is left alone.
        let dead = dir.path().join(format!("{}999999999-x.db", Stage::PREFIX));
        let live = dir
            .path()
            .join(format!("{}{}-x.db", Stage::PREFIX, std::process::id()));
        std::fs::write(&dead, b"").unwrap();
        std::fs::write(&live, b"").unwrap();
        let vault =
            SqliteVault::open(&dir.path().join("vault.db"), &Keys::generate().unwrap()).unwrap();
        let a: MunicipalityCode = "131016".parse().unwrap();
        let b: MunicipalityCode = "011002".parse().unwrap();

        // A first load in batches of 7: 40 people, person i with number 1000 + i.
        let mut tx = vault.begin_batched(a, 7).unwrap();
        for chunk in (0..40u64).collect::<Vec<_>>().chunks(3) {
            let rows = chunk
                .iter()
                .map(|i| sealed(&vault, a, &format!("1{i:08}"), 1000 + i))
                .collect();
            tx.put(rows).unwrap();
        }
        // A number changed in a later batch of the same file: person 2's first
        // number (1002, written in an earlier batch) must not stay findable.
        tx.put(vec![sealed(&vault, a, "100000002", 5002)]).unwrap();
        // Questions see numbers still held as well as written ones.
        let held = tx.hashes(&["100000002", "100000039", "999999999"]).unwrap();
        assert_eq!(held.len(), 2);
        assert_eq!(held["100000002"], vault.lookup_hash(&number(5002)));
        tx.commit().unwrap();
        assert!(!dead.exists() && live.exists());
        std::fs::remove_file(&live).unwrap();

        assert_eq!(vault.count().unwrap(), 40);
        assert_eq!(found(&vault, 1000), vec!["131016/100000000"]);
        assert_eq!(found(&vault, 1039), vec!["131016/100000039"]);
        assert!(found(&vault, 1002).is_empty());
        assert_eq!(found(&vault, 5002), vec!["131016/100000002"]);
        assert_eq!(
            vault
                .reveal(a, &"100000002".parse().unwrap())
                .unwrap()
                .map(|n| n.expose_for_vault().to_vec()),
            Some(number(5002).expose_for_vault().to_vec())
        );

        // Another municipality registers person 5 of the first under the same
        // number, and the first one's person 7 gets a new number: the old entry,
        // committed earlier, goes.
        let mut tx = vault.begin_batched(b, 2).unwrap();
        tx.put(vec![sealed(&vault, b, "200000001", 1005)]).unwrap();
        tx.commit().unwrap();
        let mut tx = vault.begin_batched(a, 2).unwrap();
        tx.put(vec![sealed(&vault, a, "100000007", 7007)]).unwrap();
        tx.put(vec![sealed(&vault, a, "100000008", 1008)]).unwrap(); // unchanged
        tx.commit().unwrap();
        assert_eq!(
            found(&vault, 1005),
            vec!["011002/200000001", "131016/100000005"]
        );
        assert!(found(&vault, 1007).is_empty());
        assert_eq!(found(&vault, 7007), vec!["131016/100000007"]);
        assert_eq!(found(&vault, 1008), vec!["131016/100000008"]);
        let links = vault.linked(&[(b, "200000001")]).unwrap();
        assert_eq!(
            links[&(b, "200000001".to_owned())],
            vec![(a, "100000005".to_owned())]
        );

        // A transaction not committed leaves nothing, its staging table included.
        let mut tx = vault.begin_batched(a, 2).unwrap();
        for i in 0..5u64 {
            tx.put(vec![sealed(&vault, a, &format!("3{i:08}"), 9000 + i)])
                .unwrap();
        }
        drop(tx);
        assert!(found(&vault, 9000).is_empty());
        assert_eq!(vault.count().unwrap(), 41);
        let scratch: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(Stage::PREFIX))
            .collect();
        assert!(scratch.is_empty(), "{scratch:?}");
        let entries: i64 = vault
            .read()
            .unwrap()
            .query_row("SELECT count(*) FROM my_number_lookups", [], |r| r.get(0))
            .unwrap();
        assert_eq!(entries, 41, "one entry per stored number");
    }
}
