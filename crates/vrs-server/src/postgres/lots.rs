//! The lot list on PostgreSQL.

use chrono::NaiveDate;
use vrs_domain::{Lot, Vaccine};

use super::PgStore;
use crate::error::StoreError;
use crate::principal::Principal;
use crate::store::Lots;

impl Lots for PgStore {
    fn add_lot(
        &self,
        actor: &Principal,
        vaccine: Vaccine,
        lot: &Lot,
        expiry: NaiveDate,
    ) -> Result<(), StoreError> {
        // The lot list is shared by every municipality: the operator keeps it.
        actor.require_operator("lots are registered")?;
        self.main.get()?.execute(
            "INSERT INTO vrs.lots (vaccine, lot, expiry) VALUES ($1, $2, $3)
             ON CONFLICT (vaccine, lot) DO UPDATE SET expiry = excluded.expiry",
            &[&vaccine.code(), &lot.as_str(), &expiry],
        )?;
        Ok(())
    }
}
