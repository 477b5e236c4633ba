//! The vault's own checks on PostgreSQL (the `vrs_vault` schema).

use vrs_domain::{MunicipalityCode, MyNumber, PersonId};

use super::pool::PgPool;
use super::{PgStore, mc};
use crate::error::Result;
use crate::store::codec::municipality_code;
use crate::store::vault::Links;

/// For each of these people, everyone else registered with the same number, by the
/// keyed hash alone (see [`Links`]).
pub(super) fn linked(vault: &PgPool, people: &[(MunicipalityCode, &str)]) -> Result<Links> {
    let ms: Vec<i32> = people.iter().map(|(m, _)| mc(*m)).collect();
    let ps: Vec<&str> = people.iter().map(|(_, p)| *p).collect();
    let mut out = Links::new();
    for r in vault.get()?.query(
        "SELECT a.municipality, a.person_id, b.municipality, b.person_id
         FROM UNNEST($1::int4[], $2::text[]) AS u(m, p)
         JOIN vrs_vault.my_numbers a ON a.municipality = u.m AND a.person_id = u.p
         JOIN vrs_vault.my_numbers b ON b.lookup = a.lookup
             AND (b.municipality <> a.municipality OR b.person_id <> a.person_id)",
        &[&ms, &ps],
    )? {
        let m = municipality_code(i64::from(r.get::<_, i32>(0)))?;
        let other = municipality_code(i64::from(r.get::<_, i32>(2)))?;
        out.entry((m, r.get(1)))
            .or_default()
            .push((other, r.get(3)));
    }
    Ok(out)
}

impl crate::store::Vault for PgStore {
    fn vault_count(&self) -> Result<u64> {
        let n: i64 = self
            .vault
            .get()?
            .query_one("SELECT count(*) FROM vrs_vault.my_numbers", &[])?
            .get(0);
        Ok(n as u64)
    }

    fn vault_reveal(&self, m: MunicipalityCode, person: &PersonId) -> Result<Option<MyNumber>> {
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
