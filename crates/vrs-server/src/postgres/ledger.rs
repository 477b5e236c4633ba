//! The ledger export from PostgreSQL.

use std::io::Write;

use chrono::NaiveDate;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use vrs_domain::csv::OutputEncoding;
use vrs_domain::csv::ledger::{LedgerRow, LedgerWriter};
use vrs_domain::{DoseNumber, MunicipalityCode, VoucherNumber};

use super::{PgStore, mc};
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::store::Ledger;
use crate::store::codec::{municipality_code, write_error};

impl Ledger for PgStore {
    fn export_ledger(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        from: NaiveDate,
        to: NaiveDate,
        encoding: OutputEncoding,
        out: &mut dyn Write,
    ) -> Result<u64> {
        actor.require_staff_of(m)?;
        let mut conn = self.main.get()?;
        let code = mc(m);
        let params: [&(dyn ToSql + Sync); 3] = [&code, &from, &to];
        let mut rows = conn.query_raw(
            "SELECT registered_at, vaccinated_on, voucher, site_municipality, site_name,
                    doctor_name, vaccine, lot, dose_number
             FROM vrs.doses
             WHERE municipality = $1 AND vaccinated_on BETWEEN $2 AND $3 AND state = 'accepted'
             ORDER BY id",
            params,
        )?;
        let mut w = LedgerWriter::new(out, encoding).map_err(write_error)?;
        let mut n = 0u64;
        while let Some(r) = rows.next()? {
            let row = LedgerRow {
                line: 0,
                registered_at: Some(r.get(0)),
                vaccinated_on: r.get(1),
                voucher: VoucherNumber::new(r.get::<_, i64>(2) as u64)
                    .ok_or_else(|| StoreError::Corrupt("voucher".into()))?,
                site_municipality: municipality_code(i64::from(r.get::<_, i32>(3)))?,
                site_name: r.get(4),
                doctor_name: r.get(5),
                vaccine: r
                    .get::<_, &str>(6)
                    .parse()
                    .map_err(|_| StoreError::Corrupt("vaccine".into()))?,
                lot: r
                    .get::<_, &str>(7)
                    .parse()
                    .map_err(|_| StoreError::Corrupt("lot".into()))?,
                dose_number: r
                    .get::<_, Option<i16>>(8)
                    .and_then(|d| DoseNumber::new(d as u8)),
            };
            w.write(&row).map_err(write_error)?;
            n += 1;
        }
        w.finish().map_err(write_error)?;
        Ok(n)
    }
}
