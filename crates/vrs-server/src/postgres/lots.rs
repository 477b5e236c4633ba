//! The lot master on PostgreSQL.

use postgres::Transaction;
use vrs_domain::wire::LotEntry;
use vrs_domain::{Lot, Vaccine};

use super::PgStore;
use crate::error::Result;
use crate::principal::Principal;
use crate::store::Lots;
use crate::store::codec::lot_entry;
use crate::store::lots::{self, LotSink, LotStep};

impl Lots for PgStore {
    /// A change of the master in one write transaction.
    fn change_lots(&self, actor: &Principal, step: &mut LotStep<'_>) -> Result<()> {
        lots::may_change(actor)?;
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        if step(&mut PgLots(&mut tx))? {
            tx.commit()?;
        }
        Ok(())
    }

    fn lots(&self, _actor: &Principal) -> Result<Vec<LotEntry>> {
        self.main
            .get()?
            .query(
                "SELECT vaccine, lot, expiry, gtin FROM vrs.lots ORDER BY vaccine, lot",
                &[],
            )?
            .iter()
            .map(|r| lot_entry(r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }
}

/// The lot master's reads and writes inside a transaction.
struct PgLots<'a, 'c>(&'a mut Transaction<'c>);

impl LotSink for PgLots<'_, '_> {
    fn find(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<LotEntry>> {
        self.0
            .query_opt(
                "SELECT expiry, gtin FROM vrs.lots WHERE vaccine = $1 AND lot = $2",
                &[&vaccine.code(), &lot.as_str()],
            )?
            .map(|r| lot_entry(vaccine.code(), lot.as_str(), r.get(0), r.get(1)))
            .transpose()
    }

    fn put(&mut self, l: &LotEntry) -> Result<()> {
        self.0.execute(
            "INSERT INTO vrs.lots (vaccine, lot, expiry, gtin) VALUES ($1, $2, $3, $4)
             ON CONFLICT (vaccine, lot) DO UPDATE SET expiry = excluded.expiry, gtin = excluded.gtin",
            &[
                &l.vaccine.code(),
                &l.lot.as_str(),
                &l.expiry,
                &l.gtin.map(|g| g.to_string()),
            ],
        )?;
        Ok(())
    }
}
