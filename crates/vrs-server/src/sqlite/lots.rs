//! The lot list on the embedded store.

use chrono::NaiveDate;
use rusqlite::params;
use vrs_domain::{Lot, Vaccine};

use super::SqliteStore;
use crate::error::StoreError;
use crate::principal::Principal;
use crate::store::Lots;

impl Lots for SqliteStore {
    /// Registers a lot and its expiry (for the expired-lot check).
    fn add_lot(
        &self,
        actor: &Principal,
        vaccine: Vaccine,
        lot: &Lot,
        expiry: NaiveDate,
    ) -> Result<(), StoreError> {
        // The lot list is shared by every municipality: the operator keeps it.
        actor.require_operator("lots are registered")?;
        self.pool.get()?.execute(
            "INSERT INTO lots (vaccine, lot, expiry) VALUES (?1, ?2, ?3)
             ON CONFLICT (vaccine, lot) DO UPDATE SET expiry = excluded.expiry",
            params![vaccine.code(), lot.as_str(), expiry.to_string()],
        )?;
        Ok(())
    }
}
