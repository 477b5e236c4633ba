//! The vault's own checks on PostgreSQL (the `vrs_vault` schema).

use vrs_domain::{MunicipalityCode, MyNumber, PersonId};

use super::{PgStore, mc};
use crate::error::StoreError;

impl crate::store::Vault for PgStore {
    fn vault_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .vault
            .get()?
            .query_one("SELECT count(*) FROM vrs_vault.my_numbers", &[])?
            .get(0);
        Ok(n as u64)
    }

    fn vault_reveal(
        &self,
        m: MunicipalityCode,
        person: &PersonId,
    ) -> Result<Option<MyNumber>, StoreError> {
        let row = self.vault.get()?.query_opt(
            "SELECT nonce, sealed FROM vrs_vault.my_numbers WHERE municipality = $1 AND person_id = $2",
            &[&mc(m), &person.as_str()],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let nonce: Vec<u8> = row.get(0);
        self.crypto
            .open(m, person.as_str(), &nonce, row.get(1))
            .map(Some)
    }
}
