//! The lot master's upload, once for every backend: a CSV of (vaccine, lot, expiry,
//! GTIN) read row by row into a backend's [`LotSink`], with the register's
//! strict/partial rules and a per-line report.
//!
//! Who may read the master: anyone signed in (the operator, staff, an enrolled
//! tablet); who may change it: the operator alone.

use std::io::Read;

use vrs_domain::csv::ReadError;
use vrs_domain::csv::lots::LotReader;
use vrs_domain::wire::LotEntry;
use vrs_domain::{Lot, Vaccine};

use super::import::{ErrorCsv, empty_report, finish, reject};
use super::{ImportOptions, ImportReport};
use crate::error::Result;
use crate::principal::Principal;

/// What a backend does for a lot upload, inside its open transaction.
/// A change of the master, run by [`crate::store::Lots::change_lots`] in one write
/// transaction: committed if it answers true.
pub type LotStep<'a> = dyn FnMut(&mut dyn LotSink) -> Result<bool> + 'a;

pub trait LotSink {
    /// The stored lot, if any.
    fn find(&mut self, vaccine: Vaccine, lot: &Lot) -> Result<Option<LotEntry>>;
    /// Inserts or replaces a lot.
    fn put(&mut self, lot: &LotEntry) -> Result<()>;
}

/// Who may change it: the operator.
pub fn may_change(actor: &Principal) -> Result<()> {
    actor.require_operator("the lot master is kept")
}

/// Reads a lot file into `sink`. The caller commits unless the outcome is
/// `Rejected` or `DryRun` (then the counts say what would have happened).
pub fn import(
    input: impl Read,
    opts: &ImportOptions,
    sink: &mut dyn LotSink,
) -> Result<ImportReport> {
    let reader = LotReader::new(input, opts.encoding)?;
    let mut report = empty_report(reader.encoding().name());
    let mut errors = ErrorCsv::default();
    for item in reader {
        report.rows += 1;
        let row = match item {
            Ok(row) => row,
            Err(ReadError::File(e)) => return Err(e.into()),
            Err(ReadError::Row(e)) => {
                reject(&mut report, &mut errors, e);
                continue;
            }
        };
        let entry = LotEntry {
            vaccine: row.vaccine,
            lot: row.lot,
            expiry: row.expiry,
            gtin: row.gtin,
        };
        match sink.find(entry.vaccine, &entry.lot)? {
            Some(old) if old == entry => report.unchanged += 1,
            Some(_) => {
                report.updated += 1;
                sink.put(&entry)?;
            }
            None => {
                report.new += 1;
                sink.put(&entry)?;
            }
        }
    }
    finish(&mut report, opts);
    Ok(report)
}
