//! The access log on PostgreSQL (see [`crate::store::audit`] for the chain).

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;

use super::pool::PgPool;
use crate::error::Result;
use crate::store::audit::{AuditEntry, AuditEvent, AuditLog, AuditQuery, ChainKey, Link};

/// The access log in the `vrs` schema, on connections of its own (an append never
/// waits behind an import's transaction). Appends to a chain take that chain's
/// advisory lock.
pub(super) struct PgAudit {
    pub(super) pool: PgPool,
    pub(super) key: ChainKey,
}

const AUDIT_COLUMNS: &str = "chain, seq, at, actor, action, object, outcome, prev, hash";

fn audit_entry(r: &postgres::Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        chain: r.get(0),
        seq: r.get(1),
        at: r.get(2),
        actor: r.get(3),
        action: r.get(4),
        object: r.get(5),
        outcome: r.get(6),
        prev: crate::store::audit::to_link(r.get(7))?,
        hash: crate::store::audit::to_link(r.get(8))?,
    })
}

impl AuditLog for PgAudit {
    fn append(&self, e: &AuditEvent) -> Result<AuditEntry> {
        let mut e = e.clone();
        e.at = crate::store::audit::micros(e.at);
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
            Some(r) => (
                r.get::<_, i64>(0) + 1,
                crate::store::audit::to_link(r.get(1))?,
            ),
            None => (1, crate::store::audit::GENESIS),
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

    fn search(&self, chain: i64, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
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

    fn scan(&self, each: &mut dyn FnMut(AuditEntry)) -> Result<()> {
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

    fn heads(&self) -> Result<Vec<(i64, i64, Link)>> {
        self.pool
            .get()?
            .query(
                "SELECT DISTINCT ON (chain) chain, seq, hash FROM vrs.audit_log
                 ORDER BY chain, seq DESC",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0), r.get(1), crate::store::audit::to_link(r.get(2))?)))
            .collect()
    }

    fn key(&self) -> &ChainKey {
        &self.key
    }

    fn entry(&self, chain: i64, seq: i64) -> Result<Option<AuditEntry>> {
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
