//! SQLite files: opening them with their SQLCipher key, migrations, and a small pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use crate::keys::Secret32;
use crate::store::Migration;

/// Opens (or creates) an SQLite file encrypted with `key`, in WAL mode.
pub(crate) fn open(path: &Path, key: &Secret32) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // SQLCipher: the key comes first, as a raw 32-byte key (no password derivation).
    conn.execute_batch(&format!(
        "PRAGMA cipher_log_level = NONE; PRAGMA key = \"x'{}'\";",
        hex::encode(key.expose())
    ))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;",
    )?;
    Ok(conn)
}

/// Applies the migrations not yet applied, each in its own transaction.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[Migration]) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
         )",
    )?;
    for m in migrations {
        let done: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [m.version],
            |r| r.get(0),
        )?;
        if done {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES (?1)",
            [m.version],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// Opens a connection to a path (with its key and pragmas).
type Opener = Box<dyn Fn(&Path) -> rusqlite::Result<Connection> + Send + Sync>;

/// A few connections to one file, handed out one at a time.
pub(crate) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    opener: Opener,
}

impl Pool {
    pub(crate) fn new(
        path: PathBuf,
        opener: impl Fn(&Path) -> rusqlite::Result<Connection> + Send + Sync + 'static,
    ) -> Self {
        Pool {
            path,
            idle: Mutex::new(Vec::new()),
            opener: Box::new(opener),
        }
    }

    pub(crate) fn get(&self) -> rusqlite::Result<Pooled<'_>> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match idle {
            Some(c) => c,
            None => (self.opener)(&self.path)?,
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
        })
    }
}

/// A connection borrowed from a [`Pool`]; it goes back when dropped.
pub(crate) struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Connection>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut idle)) = (self.conn.take(), self.pool.idle.lock())
            && idle.len() < 8
            && c.is_autocommit()
        {
            idle.push(c);
        }
    }
}
