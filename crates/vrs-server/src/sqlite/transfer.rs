//! The transfer (転入) look-up on the embedded store.

use rusqlite::{OptionalExtension, params};
use vrs_domain::{MunicipalityCode, MyNumber};

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::store::codec::{date_of, municipality_code};
use crate::store::{Transfer, TransferDose, TransferMatch};

impl Transfer for SqliteStore {
    /// The transfer look-up: the doses other municipalities hold for the person
    /// with this マイナンバー, each with that municipality's transfer contact.
    fn transfer_lookup(&self, actor: &Principal, n: &MyNumber) -> Result<Vec<TransferMatch>> {
        let own = actor.staff_of()?;
        let holders = self.vault.find(n)?;
        let conn = self.pool.get()?;
        let mut out = Vec::new();
        for (m, pid) in holders.into_iter().filter(|(m, _)| *m != own) {
            let (name, contact): (String, String) = conn
                .prepare_cached(
                    "SELECT name, transfer_contact FROM municipalities WHERE code = ?1",
                )?
                .query_row([m.get()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or_else(|| (m.to_string(), String::new()));
            out.push(TransferMatch {
                municipality: m,
                municipality_name: name,
                transfer_contact: contact,
                doses: accepted_doses(&conn, m, pid.as_str())?,
            });
        }
        Ok(out)
    }
}

/// A person's accepted doses in municipality `m`, oldest first.
fn accepted_doses(
    conn: &rusqlite::Connection,
    m: MunicipalityCode,
    pid: &str,
) -> Result<Vec<TransferDose>> {
    let mut st = conn.prepare_cached(
        "SELECT dose_number, vaccinated_on, vaccine, lot, site_municipality, site_name
         FROM doses INDEXED BY doses_by_person
         WHERE municipality = ?1 AND person_id = ?2 AND state = 'accepted'
         ORDER BY vaccinated_on",
    )?;
    let raw = st
        .query_map(params![m.get(), pid], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    raw.into_iter()
        .map(|(n, d, v, l, sm, sn)| {
            Ok(TransferDose {
                dose_number: n.map(|n| n as u8),
                vaccinated_on: date_of(&d)?,
                vaccine: v
                    .parse()
                    .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                lot: l.parse().map_err(|_| StoreError::Corrupt("lot".into()))?,
                site_municipality: municipality_code(sm)?,
                site_name: sn,
            })
        })
        .collect()
}
