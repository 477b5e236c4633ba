//! The lot master on the embedded store.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use vrs_domain::wire::LotEntry;
use vrs_domain::{Lot, Vaccine};

use super::SqliteStore;
use crate::error::Result;
use crate::principal::Principal;
use crate::store::Lots;
use crate::store::codec::{date_of, lot_entry};
use crate::store::lots::{self, LotSink, LotStep};

impl Lots for SqliteStore {
    /// A change of the master in one write transaction.
    fn change_lots(&self, actor: &Principal, step: &mut LotStep<'_>) -> Result<()> {
        lots::may_change(actor)?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if step(&mut SqliteLots(&tx))? {
            tx.commit()?;
        }
        Ok(())
    }

    fn lots(&self, _actor: &Principal) -> Result<Vec<LotEntry>> {
        let conn = self.pool.get()?;
        let mut st = conn
            .prepare_cached("SELECT vaccine, lot, expiry, gtin FROM lots ORDER BY vaccine, lot")?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(v, l, e, g)| entry(&v, &l, &e, g.as_deref()))
            .collect()
    }
}

fn entry(vaccine: &str, lot: &str, expiry: &str, gtin: Option<&str>) -> Result<LotEntry> {
    lot_entry(vaccine, lot, date_of(expiry)?, gtin)
}

/// The lot master's reads and writes inside a transaction.
struct SqliteLots<'a>(&'a Transaction<'a>);

impl LotSink for SqliteLots<'_> {
    fn find(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<LotEntry>> {
        let row: Option<(String, Option<String>)> = self
            .0
            .prepare_cached("SELECT expiry, gtin FROM lots WHERE vaccine = ?1 AND lot = ?2")?
            .query_row(params![vaccine.code(), lot.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(e, g)| entry(vaccine.code(), lot.as_str(), &e, g.as_deref()))
            .transpose()
    }

    fn put(&mut self, l: &LotEntry) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO lots (vaccine, lot, expiry, gtin) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (vaccine, lot) DO UPDATE SET expiry = excluded.expiry, gtin = excluded.gtin",
            )?
            .execute(params![
                l.vaccine.code(),
                l.lot.as_str(),
                l.expiry.to_string(),
                l.gtin.map(|g| g.to_string())
            ])?;
        Ok(())
    }
}
