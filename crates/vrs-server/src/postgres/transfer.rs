//! The transfer (転入) look-up on PostgreSQL.

use vrs_domain::{MunicipalityCode, MyNumber};

use super::{PgStore, mc};
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::store::codec::municipality_code;
use crate::store::{Transfer, TransferDose, TransferMatch};

impl Transfer for PgStore {
    fn transfer_lookup(&self, actor: &Principal, n: &MyNumber) -> Result<Vec<TransferMatch>> {
        let own = actor.staff_of()?;
        let h = self.crypto.lookup_hash(n);
        let holders = self.vault.get()?.query(
            "SELECT municipality, person_id FROM vrs_vault.my_numbers WHERE lookup = $1 ORDER BY municipality",
            &[&&h[..]],
        )?;
        let mut conn = self.main.get()?;
        let mut out = Vec::new();
        for holder in holders {
            let m = municipality_code(i64::from(holder.get::<_, i32>(0)))?;
            if m == own {
                continue;
            }
            let pid: String = holder.get(1);
            let (name, contact) = conn
                .query_opt(
                    "SELECT name, transfer_contact FROM vrs.municipalities WHERE code = $1",
                    &[&mc(m)],
                )?
                .map(|r| (r.get(0), r.get(1)))
                .unwrap_or_else(|| (m.to_string(), String::new()));
            out.push(TransferMatch {
                municipality: m,
                municipality_name: name,
                transfer_contact: contact,
                doses: accepted_doses(&mut conn, m, &pid)?,
            });
        }
        Ok(out)
    }
}

/// A person's accepted doses in municipality `m`, oldest first.
fn accepted_doses(
    conn: &mut postgres::Client,
    m: MunicipalityCode,
    pid: &str,
) -> Result<Vec<TransferDose>> {
    conn.query(
        "SELECT dose_number, vaccinated_on, vaccine, lot, site_municipality, site_name
             FROM vrs.doses WHERE municipality = $1 AND person_id = $2 AND state = 'accepted'
             ORDER BY vaccinated_on",
        &[&mc(m), &pid],
    )?
    .into_iter()
    .map(|r| {
        Ok(TransferDose {
            dose_number: r.get::<_, Option<i16>>(0).map(|d| d as u8),
            vaccinated_on: r.get(1),
            vaccine: r
                .get::<_, &str>(2)
                .parse()
                .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
            lot: r
                .get::<_, &str>(3)
                .parse()
                .map_err(|_| StoreError::Corrupt("lot".into()))?,
            site_municipality: municipality_code(i64::from(r.get::<_, i32>(4)))?,
            site_name: r.get(5),
        })
    })
    .collect()
}
