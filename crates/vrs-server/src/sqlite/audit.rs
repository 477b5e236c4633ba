//! The access log of the embedded store (see [`crate::store::audit`] for the chain).

use std::sync::Mutex;

use chrono::NaiveDateTime;
use rusqlite::{Connection, OptionalExtension};

use super::db;
use crate::error::{Result, StoreError};
use crate::keys::Keys;
use crate::store::Migration;
use crate::store::audit::{
    AuditEntry, AuditEvent, AuditLog, AuditQuery, ChainKey, GENESIS, Link, micros, to_link,
};

const AT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// The log of the SQLite store: `audit.db` (SQLCipher, the database key), a file of
/// its own so that an append never waits for an import's write lock.
pub struct SqliteAudit {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    key: ChainKey,
}

impl std::fmt::Debug for SqliteAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteAudit")
    }
}

const SQLITE_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("migrations/audit/0001_init.sql"),
}];

impl SqliteAudit {
    pub fn open(path: &std::path::Path, keys: &Keys) -> Result<Self> {
        let mut writer = db::open(path, &keys.database)?;
        db::migrate(&mut writer, SQLITE_MIGRATIONS)?;
        let reader = db::open(path, &keys.database)?;
        Ok(SqliteAudit {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            key: ChainKey::new(keys),
        })
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditEntry, String)> {
        let at: String = r.get(2)?;
        Ok((
            AuditEntry {
                chain: r.get(0)?,
                seq: r.get(1)?,
                at: NaiveDateTime::MIN,
                actor: r.get(3)?,
                action: r.get(4)?,
                object: r.get(5)?,
                outcome: r.get(6)?,
                prev: r.get::<_, Vec<u8>>(7)?.try_into().unwrap_or([0xFF; 32]),
                hash: r.get::<_, Vec<u8>>(8)?.try_into().unwrap_or([0xFF; 32]),
            },
            at,
        ))
    }

    fn finish((mut e, at): (AuditEntry, String)) -> Result<AuditEntry> {
        e.at = NaiveDateTime::parse_from_str(&at, AT)
            .map_err(|_| StoreError::Corrupt(format!("access log entry {}: time", e.seq)))?;
        Ok(e)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const COLUMNS: &str = "chain, seq, at, actor, action, object, outcome, prev, hash";

impl AuditLog for SqliteAudit {
    fn append(&self, e: &AuditEvent) -> Result<AuditEntry> {
        let mut e = e.clone();
        e.at = micros(e.at);
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let last: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT seq, hash FROM audit_log WHERE chain = ?1 ORDER BY seq DESC LIMIT 1",
                [e.chain],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev) = match last {
            Some((s, h)) => (s + 1, to_link(h)?),
            None => (1, GENESIS),
        };
        let hash = self.key.link(&prev, seq, &e);
        tx.execute(
            &format!(
                "INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            rusqlite::params![
                e.chain,
                seq,
                e.at.format(AT).to_string(),
                e.actor,
                e.action,
                e.object,
                e.outcome,
                &prev[..],
                &hash[..]
            ],
        )?;
        tx.commit()?;
        Ok(AuditEntry::chained(e, seq, prev, hash))
    }

    fn search(&self, chain: i64, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let conn = lock(&self.reader);
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE chain = ?1
               AND (?2 IS NULL OR actor = ?2) AND (?3 IS NULL OR action = ?3)
               AND (?4 IS NULL OR object = ?4)
               AND (?5 IS NULL OR at >= ?5) AND (?6 IS NULL OR at <= ?6)
             ORDER BY seq DESC LIMIT ?7"
        ))?;
        let rows = st.query_map(
            rusqlite::params![
                chain,
                q.actor,
                q.action,
                q.object,
                q.from.map(|t| t.format(AT).to_string()),
                q.to.map(|t| t.format(AT).to_string()),
                q.limit()
            ],
            Self::row,
        )?;
        rows.map(|r| Self::finish(r?)).collect()
    }

    fn scan(&self, each: &mut dyn FnMut(AuditEntry)) -> Result<()> {
        let conn = lock(&self.reader);
        let mut st = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM audit_log ORDER BY chain, seq"
        ))?;
        for r in st.query_map([], Self::row)? {
            each(Self::finish(r?)?);
        }
        Ok(())
    }

    fn heads(&self) -> Result<Vec<(i64, i64, Link)>> {
        let conn = lock(&self.reader);
        let mut st = conn.prepare(
            "SELECT chain, seq, hash FROM audit_log a
             WHERE seq = (SELECT max(seq) FROM audit_log b WHERE b.chain = a.chain)
             ORDER BY chain",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (c, s, h) = r?;
            Ok((c, s, to_link(h)?))
        })
        .collect()
    }

    fn key(&self) -> &ChainKey {
        &self.key
    }

    fn entry(&self, chain: i64, seq: i64) -> Result<Option<AuditEntry>> {
        let conn = lock(&self.reader);
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM audit_log WHERE chain = ?1 AND seq = ?2"),
            [chain, seq],
            Self::row,
        )
        .optional()?
        .map(Self::finish)
        .transpose()
    }
}
