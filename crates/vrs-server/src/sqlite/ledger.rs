//! The ledger export from the embedded store.

use std::io::Write;

use chrono::{NaiveDate, NaiveDateTime};
use rusqlite::params;
use vrs_domain::csv::OutputEncoding;
use vrs_domain::csv::ledger::{LedgerRow, LedgerWriter};
use vrs_domain::{DoseNumber, MunicipalityCode, VoucherNumber};

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::store::Ledger;
use crate::store::codec::{date_of, municipality_code, write_error};

impl Ledger for SqliteStore {
    /// Writes the ledger export (accepted records vaccinated between `from` and `to`,
    /// inclusive, in the order they were registered) as CSV, streaming. Returns the
    /// number of rows.
    fn export_ledger(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        from: NaiveDate,
        to: NaiveDate,
        encoding: OutputEncoding,
        out: &mut dyn Write,
    ) -> Result<u64> {
        actor.require_staff_of(municipality)?;
        let conn = self.pool.get()?;
        let mut st = conn.prepare_cached(
            "SELECT registered_at, vaccinated_on, voucher, site_municipality, site_name,
                    doctor_name, vaccine, lot, dose_number
             FROM doses NOT INDEXED
             WHERE municipality = ?1 AND vaccinated_on BETWEEN ?2 AND ?3 AND state = 'accepted'
             ORDER BY id",
        )?;
        let mut rows = st.query(params![
            municipality.get(),
            from.to_string(),
            to.to_string()
        ])?;
        let mut w = LedgerWriter::new(out, encoding).map_err(write_error)?;
        let mut n = 0u64;
        while let Some(r) = rows.next()? {
            let registered: String = r.get(0)?;
            let row = LedgerRow {
                line: 0,
                registered_at: registered.parse::<NaiveDateTime>().ok(),
                vaccinated_on: date_of(&r.get::<_, String>(1)?)?,
                voucher: VoucherNumber::new(r.get::<_, i64>(2)? as u64)
                    .ok_or_else(|| StoreError::Corrupt("voucher".into()))?,
                site_municipality: municipality_code(r.get(3)?)?,
                site_name: r.get(4)?,
                doctor_name: r.get(5)?,
                vaccine: r
                    .get::<_, String>(6)?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                lot: r
                    .get::<_, String>(7)?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("lot".into()))?,
                dose_number: r
                    .get::<_, Option<i64>>(8)?
                    .and_then(|d| DoseNumber::new(d as u8)),
            };
            w.write(&row).map_err(write_error)?;
            n += 1;
        }
        w.finish().map_err(write_error)?;
        Ok(n)
    }
}
