//! The lot master on the embedded store.

use std::io::Read;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use vrs_domain::wire::LotEntry;
use vrs_domain::{Lot, Vaccine};

use super::SqliteStore;
use crate::error::StoreError;
use crate::principal::Principal;
use crate::store::codec::{date_of, lot_entry};
use crate::store::lots::{self, LotSink};
use crate::store::{ImportOptions, ImportOutcome, ImportReport, Lots};

impl Lots for SqliteStore {
    fn add_lot(&self, actor: &Principal, lot: &LotEntry) -> Result<(), StoreError> {
        lots::may_change(actor)?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        SqliteLots(&tx).put(lot)?;
        tx.commit()?;
        Ok(())
    }

    fn import_lots(
        &self,
        actor: &Principal,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        lots::may_change(actor)?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let report = lots::import(input, opts, &mut SqliteLots(&tx))?;
        if report.outcome == ImportOutcome::Applied {
            tx.commit()?;
        }
        Ok(report)
    }

    fn lots(&self, _actor: &Principal) -> Result<Vec<LotEntry>, StoreError> {
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

fn entry(
    vaccine: &str,
    lot: &str,
    expiry: &str,
    gtin: Option<&str>,
) -> Result<LotEntry, StoreError> {
    lot_entry(vaccine, lot, date_of(expiry)?, gtin)
}

/// The lot master's reads and writes inside a transaction.
struct SqliteLots<'a>(&'a Transaction<'a>);

impl LotSink for SqliteLots<'_> {
    fn find(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<LotEntry>, StoreError> {
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

    fn put(&mut self, l: &LotEntry) -> Result<(), StoreError> {
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
