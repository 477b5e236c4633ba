//! The register import, once for every backend: it reads the file in chunks, asks
//! the backend for what it holds about the chunk's people in a few set-wise
//! look-ups, merges row by row in memory ([`crate::rules::merge`]), and hands the backend
//! the rows to write. A backend only answers and writes ([`RegisterSink`]); the
//! rules live here, so SQLite and PostgreSQL import alike.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use vrs_domain::csv::ledger::LedgerRow;
use vrs_domain::csv::register::{ReadOptions, RegisterField, RegisterReader, RegisterRow};
use vrs_domain::csv::{Problem, ProblemKind, ReadError, RowError};
use vrs_domain::{ClientRecordId, MunicipalityCode, MyNumber, VoucherNumber};

use crate::error::Result;
use crate::rules::merge::{Change, PersonFields, merge};
use crate::store::records::{NewDose, Verdict};
use crate::store::vault::LookupHash;
use crate::store::{ImportOptions, ImportOutcome, ImportReport, MAX_REPORTED_ERRORS, Match, Texts};

/// Rows read before the backend is asked about them.
pub const CHUNK: usize = 2000;

/// What a backend does for an import, inside its open transaction(s).
pub trait RegisterSink {
    /// The stored fields of those of `ids` who are registered.
    fn persons(&mut self, ids: &[&str]) -> Result<HashMap<String, PersonFields>>;
    /// Who holds each of `vouchers` now.
    fn voucher_holders(
        &mut self,
        vouchers: &[VoucherNumber],
    ) -> Result<HashMap<VoucherNumber, String>>;
    /// The vault's look-up hashes of those of `ids` who have a number.
    fn vault_hashes(&mut self, ids: &[&str]) -> Result<HashMap<String, LookupHash>>;
    /// Says early which hashes [`RegisterSink::vault_hashes`] will be asked for, so
    /// that a backend with the vault on another thread can look them up meanwhile.
    /// The next `vault_hashes` may then answer for all of `ids`.
    fn prefetch_vault_hashes(&mut self, _ids: &[&str]) -> Result<()> {
        Ok(())
    }
    /// Writes (inserts or replaces) these people.
    fn write_persons(&mut self, rows: &[PersonRow<'_>]) -> Result<()>;
    /// Writes these numbers to the vault.
    fn write_numbers(&mut self, rows: &[(&str, &MyNumber, &LookupHash)]) -> Result<()>;
    /// Clears the stored voucher of these people, whose voucher the chunk changes,
    /// so that another person in the chunk can take it whatever the write order.
    fn release_vouchers(&mut self, ids: &[&str]) -> Result<()>;
    /// Writes a chunk's people and numbers; a backend may do both at once.
    fn write(
        &mut self,
        persons: &[PersonRow<'_>],
        numbers: &[(&str, &MyNumber, &LookupHash)],
    ) -> Result<()> {
        if !persons.is_empty() {
            self.write_persons(persons)?;
        }
        if !numbers.is_empty() {
            self.write_numbers(numbers)?;
        }
        Ok(())
    }
}

/// A person to write, in their final state for the chunk.
#[derive(Debug, Clone, Copy)]
pub struct PersonRow<'a> {
    pub id: &'a str,
    pub fields: &'a PersonFields,
    /// Whether the person was stored when the chunk began (else they are new: no
    /// row with this key exists in the transaction, and a plain insert will do).
    pub stored: bool,
}

/// The error CSV of an upload: line, key, field, problem and fix, never a マイナンバー.
#[derive(Debug)]
pub struct ErrorCsv {
    pub text: String,
}

impl Default for ErrorCsv {
    fn default() -> Self {
        ErrorCsv {
            text: "行,個別宛名番号,項目,内容,対処\r\n".into(),
        }
    }
}

/// The error CSV stops growing here (a file of millions of bad rows); the report
/// says how many problems were left out.
const MAX_ERROR_CSV_BYTES: usize = 16 << 20;

impl ErrorCsv {
    pub fn push(&mut self, e: &RowError) {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        if self.text.len() >= MAX_ERROR_CSV_BYTES {
            if !self.text.ends_with("(truncated)\r\n") {
                self.text
                    .push_str(",,,\"more problems are not listed: fix these and upload again\",(truncated)\r\n");
            }
            return;
        }
        for p in &e.problems {
            self.text.push_str(&format!(
                "{},{},{},{},{}\r\n",
                e.line,
                q(e.key.as_deref().unwrap_or("")),
                q(p.field),
                q(&p.message),
                q(&p.fix)
            ));
        }
    }
}

/// A new, empty report.
pub fn empty_report(encoding: &'static str) -> ImportReport {
    ImportReport {
        import_id: 0,
        outcome: ImportOutcome::DryRun,
        encoding,
        rows: 0,
        new: 0,
        updated: 0,
        unchanged: 0,
        flagged: 0,
        rejected: 0,
        warnings: Vec::new(),
        errors: Vec::new(),
        errors_truncated: false,
        summary: Texts::default(),
    }
}

/// Ends a report: its outcome under `opts`, and its summary in Japanese and
/// English: what the file did, or for a file not applied, what it would have done.
pub fn finish(report: &mut ImportReport, opts: &ImportOptions) {
    report.outcome = if opts.dry_run {
        ImportOutcome::DryRun
    } else if report.rejected > 0 && opts.mode == crate::store::ImportMode::Strict {
        ImportOutcome::Rejected
    } else {
        ImportOutcome::Applied
    };
    let r = &*report;
    let (ja_head, en_head) = match r.outcome {
        ImportOutcome::Applied => ("取り込みました".to_owned(), "Applied".to_owned()),
        ImportOutcome::Rejected => (
            format!(
                "誤りのある行が{}行あるため、ファイル全体を取り込みませんでした。取り込んだ場合",
                r.rejected
            ),
            format!(
                "Nothing was stored because of bad rows ({}): fix them and send the file again. Had it been applied",
                r.rejected
            ),
        ),
        ImportOutcome::DryRun => (
            "確認のみで、保存していません。取り込んだ場合".to_owned(),
            "Checked only, nothing stored. Had it been applied".to_owned(),
        ),
    };
    report.summary = Texts {
        ja: format!(
            "{ja_head}: 新規 {}件、更新 {}件、変更なし {}件、保留・状態変更 {}件、誤り {}行",
            r.new, r.updated, r.unchanged, r.flagged, r.rejected
        ),
        en: format!(
            "{en_head}: new {}, updated {}, unchanged {}, held or flagged {}, bad rows {}",
            r.new, r.updated, r.unchanged, r.flagged, r.rejected
        ),
    };
}

/// Counts a bad row into the report and the error CSV.
pub fn reject(report: &mut ImportReport, errors: &mut ErrorCsv, e: RowError) {
    report.rejected += 1;
    errors.push(&e);
    if report.errors.len() < MAX_REPORTED_ERRORS {
        report.errors.push(e);
    } else {
        report.errors_truncated = true;
    }
}

/// Runs the import of one register file into `sink`. `updating` says whether the
/// municipality had anyone registered before; `hash` computes a number's look-up
/// hash. The caller commits or rolls back according to the report's outcome.
pub fn run(
    input: impl Read,
    opts: &ImportOptions,
    updating: bool,
    hash: &dyn Fn(&MyNumber) -> LookupHash,
    sink: &mut dyn RegisterSink,
) -> Result<(ImportReport, ErrorCsv)> {
    let reader = RegisterReader::new(
        input,
        ReadOptions {
            encoding: opts.encoding,
            today: Some(opts.today),
        },
    )?;
    let mut report = empty_report(reader.encoding().name());
    let mut errors = ErrorCsv::default();
    let (mut my_seen, mut my_bad) = (0u64, 0u64);
    let mut chunk: Vec<RegisterRow> = Vec::with_capacity(CHUNK);
    let mut first_load = (!updating).then(FirstLoad::new);
    let mut reader = reader.into_iter();
    loop {
        let item = reader.next();
        let end = item.is_none();
        match item {
            Some(Ok(row)) => {
                report.rows += 1;
                if row.my_number.is_some() {
                    my_seen += 1;
                }
                chunk.push(row);
            }
            Some(Err(ReadError::File(e))) => return Err(e.into()),
            Some(Err(ReadError::Row(e))) => {
                report.rows += 1;
                if e.problems.iter().any(|p| {
                    p.field == RegisterField::MyNumber.name() && p.kind == ProblemKind::CheckDigit
                }) {
                    my_bad += 1;
                }
                reject(&mut report, &mut errors, e);
            }
            None => {}
        }
        if chunk.len() >= CHUNK || (end && !chunk.is_empty()) {
            apply_chunk(
                &mut chunk,
                first_load.as_mut(),
                hash,
                sink,
                &mut report,
                &mut errors,
            )?;
            chunk.clear();
        }
        if end {
            break;
        }
    }
    if my_seen + my_bad >= 10 && my_bad * 2 > my_seen + my_bad {
        report.warnings.push(format!(
            "{my_bad} of {} マイナンバー have a wrong check digit: the columns may be shifted, or this is not a register file",
            my_seen + my_bad
        ));
    }
    if updating && report.rows >= 10 && report.new * 2 > report.rows {
        report.warnings.push(format!(
            "{} of {} rows are people this municipality has not registered before: is this another municipality's file?",
            report.new, report.rows
        ));
    }
    finish(&mut report, opts);
    Ok((report, errors))
}

/// On a first upload (the municipality has nobody yet), a person or voucher can be
/// stored only if an earlier chunk of this file wrote it. These filters remember
/// what was written, in a fixed 16 MiB whatever the file's size, so that the
/// look-ups ask only about keys seen before (and the few false alarms).
struct FirstLoad {
    ids: Seen,
    vouchers: Seen,
}

impl FirstLoad {
    fn new() -> Self {
        FirstLoad {
            ids: Seen::new(),
            vouchers: Seen::new(),
        }
    }
}

/// Keys written so far: a key above the greatest one written cannot have been
/// (a register exported in 個別宛名番号 order asks nothing at all), and any other
/// is looked for in a Bloom filter.
struct Seen {
    greatest: Option<Vec<u8>>,
    bloom: Bloom,
}

impl Seen {
    fn new() -> Self {
        Seen {
            greatest: None,
            bloom: Bloom::new(),
        }
    }

    fn insert(&mut self, key: &[u8]) {
        match &mut self.greatest {
            Some(g) if key <= g.as_slice() => {}
            Some(g) => {
                g.clear();
                g.extend_from_slice(key);
            }
            None => self.greatest = Some(key.to_vec()),
        }
        self.bloom.insert(key);
    }

    fn may_contain(&self, key: &[u8]) -> bool {
        self.greatest.as_deref().is_some_and(|g| key <= g) && self.bloom.may_contain(key)
    }
}

/// A Bloom filter of 2^26 bits (8 MiB) and 5 probes, never a miss: false alarms
/// about 0.0002% at 1,000,000 keys, 0.08% at 3,700,000, 4% at 10,000,000 (a filter of
/// 2^23 bits answered yes to more than half the keys of a 3,700,000-row first load,
/// and every yes is a look-up).
struct Bloom {
    bits: Vec<u64>,
}

impl Bloom {
    const BITS: u64 = 1 << 26;

    fn new() -> Self {
        Bloom {
            bits: vec![0; (Self::BITS / 64) as usize],
        }
    }

    fn probes(key: &[u8]) -> impl Iterator<Item = usize> {
        // FNV-1a, then a splitmix64 finish: keys are short, and a crafted file can
        // only cost extra look-ups, never a wrong answer.
        let mut x: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key {
            x = (x ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let (a, b) = (x & 0xFFFF_FFFF, (x >> 32) | 1);
        (0..5u64).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % Self::BITS) as usize)
    }

    fn insert(&mut self, key: &[u8]) {
        for p in Self::probes(key) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    fn may_contain(&self, key: &[u8]) -> bool {
        Self::probes(key).all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

fn apply_chunk(
    chunk: &mut [RegisterRow],
    first_load: Option<&mut FirstLoad>,
    hash: &dyn Fn(&MyNumber) -> LookupHash,
    sink: &mut dyn RegisterSink,
    report: &mut ImportReport,
    errors: &mut ErrorCsv,
) -> Result<()> {
    let ids: Vec<&str> = chunk.iter().map(|r| r.person_id.as_str()).collect();
    // On an update most people are known: their hashes are wanted, so ask at once.
    // (On a first upload nobody is, and the look-ups would only cost.)
    let mut prefetched = false;
    if first_load.is_none() {
        let numbered: Vec<&str> = chunk
            .iter()
            .filter(|r| r.my_number.is_some())
            .map(|r| r.person_id.as_str())
            .collect();
        if !numbered.is_empty() {
            sink.prefetch_vault_hashes(&numbered)?;
            prefetched = true;
        }
    }
    let mut stored = match first_load.as_deref() {
        None => sink.persons(&ids)?,
        Some(seen) => {
            let maybe: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| seen.ids.may_contain(id.as_bytes()))
                .collect();
            if maybe.is_empty() {
                HashMap::new()
            } else {
                sink.persons(&maybe)?
            }
        }
    };
    // Keyed by the chunk's own strings: no allocation per row.
    let mut state: HashMap<&str, PersonFields> = HashMap::with_capacity(chunk.len());
    for id in &ids {
        if let Some(p) = stored.remove(*id) {
            state.insert(id, p);
        }
    }
    let with_number: Vec<&str> = chunk
        .iter()
        .filter(|r| r.my_number.is_some() && state.contains_key(r.person_id.as_str()))
        .map(|r| r.person_id.as_str())
        .collect();
    // A prefetch is always collected, so that no answer is left for a later chunk.
    let mut stored_hash = if with_number.is_empty() && !prefetched {
        HashMap::new()
    } else {
        sink.vault_hashes(&with_number)?
    };
    // Vouchers the chunk gives to someone who does not hold them yet.
    let asked: Vec<VoucherNumber> = chunk
        .iter()
        .filter_map(|r| {
            let v = r.voucher?;
            (state.get(r.person_id.as_str()).and_then(|p| p.voucher) != Some(v)).then_some(v)
        })
        .filter(|v| {
            first_load
                .as_deref()
                .is_none_or(|seen| seen.vouchers.may_contain(&v.get().to_be_bytes()))
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut holders = if asked.is_empty() {
        HashMap::new()
    } else {
        sink.voucher_holders(&asked)?
    };

    let original_voucher: HashMap<&str, Option<VoucherNumber>> =
        state.iter().map(|(k, v)| (*k, v.voucher)).collect();
    let mut written: Vec<&str> = Vec::new();
    let mut numbers: Vec<(usize, LookupHash)> = Vec::new();
    for (i, row) in chunk.iter().enumerate() {
        let pid = row.person_id.as_str();
        let existing = state.get(pid);
        if let Some(v) = row.voucher
            && existing.and_then(|e| e.voucher) != Some(v)
            && let Some(holder) = holders.get(&v).filter(|h| h.as_str() != pid)
        {
            let e = RowError::new(
                row.line,
                vec![Problem {
                    column: None,
                    field: RegisterField::Voucher.name(),
                    kind: ProblemKind::UnknownCode,
                    message: format!("{v} already belongs to 個別宛名番号 {holder}"),
                    fix: "a voucher belongs to one person: check the number, or move it from the other person first".into(),
                }],
            )
            .with_key(Some(pid.to_owned()));
            reject(report, errors, e);
            continue;
        }
        let new_hash = row.my_number.as_ref().map(hash);
        let my_changed = match &new_hash {
            Some(h) => stored_hash.get(pid) != Some(h),
            None => false,
        };
        let (fields, change) = merge(existing, row, my_changed);
        if matches!(change, Change::Updated(ref f) if f.contains(&RegisterField::Flag))
            || (existing.is_none() && !fields.status.is_active())
        {
            report.flagged += 1;
        }
        match change {
            Change::New => report.new += 1,
            Change::Updated(_) => report.updated += 1,
            Change::Unchanged => {
                report.unchanged += 1;
                continue;
            }
        }
        // Later rows of the chunk see this one's result, as if written already.
        let old_voucher = existing.and_then(|e| e.voucher);
        if old_voucher != fields.voucher {
            if let Some(old) = old_voucher {
                holders.remove(&old);
            }
            if let Some(new) = fields.voucher {
                holders.insert(new, pid.to_owned());
            }
        }
        if let (true, Some(h)) = (my_changed, new_hash) {
            stored_hash.insert(pid.to_owned(), h);
            numbers.push((i, h));
        }
        state.insert(pid, fields);
        written.push(pid);
    }
    // People whose stored voucher changes let go of it first (a voucher can pass
    // from one person to another within the chunk).
    let releasing: Vec<&str> = written
        .iter()
        .copied()
        .filter(|pid| {
            let before = original_voucher.get(pid).copied().flatten();
            before.is_some() && before != state.get(pid).and_then(|f| f.voucher)
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !releasing.is_empty() {
        sink.release_vouchers(&releasing)?;
    }
    // Each person once, in their final state for the chunk.
    let mut seen = HashSet::new();
    let mut order: Vec<&str> = Vec::new();
    for pid in written.iter().rev() {
        if seen.insert(*pid) {
            order.push(pid);
        }
    }
    order.reverse();
    let rows: Vec<PersonRow<'_>> = order
        .iter()
        .filter_map(|pid| {
            state.get(*pid).map(|fields| PersonRow {
                id: pid,
                fields,
                stored: original_voucher.contains_key(pid),
            })
        })
        .collect();
    let mut last: HashMap<&str, (usize, LookupHash)> = HashMap::new();
    for (i, h) in numbers {
        last.insert(chunk[i].person_id.as_str(), (i, h));
    }
    let nums: Vec<(&str, &MyNumber, LookupHash)> = last
        .into_iter()
        .filter_map(|(pid, (i, h))| chunk[i].my_number.as_ref().map(|n| (pid, n, h)))
        .collect();
    let refs: Vec<(&str, &MyNumber, &LookupHash)> =
        nums.iter().map(|(p, n, h)| (*p, *n, h)).collect();
    sink.write(&rows, &refs)?;
    if let Some(seen) = first_load {
        for r in &rows {
            seen.ids.insert(r.id.as_bytes());
            if let Some(v) = r.fields.voucher {
                seen.vouchers.insert(&v.get().to_be_bytes());
            }
        }
    }
    Ok(())
}

/// What a backend does for a paper-record upload, inside its open transaction.
pub trait PaperSink: crate::store::records::RecordLookups {
    /// Whether a record with this id is stored already.
    fn exists(&mut self, id: vrs_domain::ClientRecordId) -> Result<bool>;
    /// Stores one paper record with the checks' verdict.
    fn insert(&mut self, dose: &NewDose<'_>, found: &Match, verdict: &Verdict) -> Result<()>;
}

/// Runs a paper-record upload into `sink`: the same checks as tablet records, the
/// same strict/partial rules as the register, and a stable id per record so that
/// uploading the same file twice stores each record once. The caller commits or
/// rolls back according to the report's outcome.
pub fn run_paper(
    input: impl Read,
    municipality: vrs_domain::MunicipalityCode,
    opts: &ImportOptions,
    sink: &mut dyn PaperSink,
) -> Result<(ImportReport, ErrorCsv)> {
    use vrs_domain::csv::ledger::{LedgerReader, ReadOptions};
    let reader = LedgerReader::new(
        input,
        ReadOptions {
            encoding: opts.encoding,
            today: Some(opts.today),
        },
    )?;
    let mut report = empty_report(reader.encoding().name());
    let mut errors = ErrorCsv::default();
    for item in reader {
        let row = match item {
            Ok(row) => row,
            Err(ReadError::File(e)) => return Err(e.into()),
            Err(ReadError::Row(e)) => {
                report.rows += 1;
                reject(&mut report, &mut errors, e);
                continue;
            }
        };
        report.rows += 1;
        let id = paper_record_id(municipality, &row);
        if sink.exists(id)? {
            report.unchanged += 1;
            continue;
        }
        let found = crate::store::records::find_everywhere(sink, row.voucher)?;
        // An eight-column file has no dose number: the person's next dose.
        let dose = row.dose_number.or_else(|| {
            vrs_domain::DoseNumber::new(
                found.prior.iter().map(|p| p.dose_number).max().unwrap_or(0) + 1,
            )
        });
        let verdict = match dose {
            Some(dose_number) => crate::rules::checks::check(
                found.status,
                &found.prior,
                &crate::rules::checks::Candidate {
                    dose_number,
                    vaccinated_on: row.vaccinated_on,
                    lot_expiry: sink.lot_expiry(row.vaccine, &row.lot)?,
                },
                opts.today,
            ),
            None => Err((
                vrs_domain::wire::HoldReason::DoseAlreadyRecorded,
                "the person already has nine doses on record".into(),
            )),
        };
        if verdict.is_err() {
            report.flagged += 1;
        }
        report.new += 1;
        sink.insert(
            &NewDose::paper(municipality, id, &row, dose),
            &found,
            &verdict,
        )?;
    }
    finish(&mut report, opts);
    Ok((report, errors))
}

/// The summary kept with an upload in the `imports` table.
pub fn summary(report: &ImportReport) -> String {
    serde_json::json!({
        "rows": report.rows, "new": report.new, "updated": report.updated,
        "unchanged": report.unchanged, "flagged": report.flagged,
        "rejected": report.rejected, "warnings": report.warnings, "encoding": report.encoding,
    })
    .to_string()
}
/// A stable record id for a paper record, so that uploading the same file twice
/// stores each record once.
pub(crate) fn paper_record_id(m: MunicipalityCode, row: &LedgerRow) -> ClientRecordId {
    let key = format!(
        "paper|{m}|{}|{}|{}|{}|{}",
        row.voucher,
        row.vaccinated_on,
        row.dose_number.map(|d| d.get()).unwrap_or(0),
        row.vaccine.code(),
        row.lot
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    ClientRecordId(uuid::Builder::from_custom_bytes(b).into_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_written_is_always_seen_and_one_above_all_written_never() {
        let mut seen = Seen::new();
        assert!(!seen.may_contain(b"100000001"), "nothing written yet");
        // Out of order: every key written is seen again, whatever came after it.
        let keys: Vec<String> = (0..20_000u64)
            .map(|i| format!("{}", 100_000_000 + (i * 7_919) % 20_000))
            .collect();
        for k in &keys {
            seen.insert(k.as_bytes());
        }
        assert!(keys.iter().all(|k| seen.may_contain(k.as_bytes())));
        // Above the greatest written: not seen, without asking the filter.
        assert!(!seen.may_contain(b"100020000"));
        assert!(!seen.may_contain(b"999999999"));
        // Below it (byte order) and never written: the filter's few false alarms only.
        let alarms = (0..20_000u64)
            .map(|i| format!("1000{i:07}"))
            .inspect(|k| assert!(k.as_bytes() < b"100019999".as_slice()))
            .filter(|k| seen.may_contain(k.as_bytes()))
            .count();
        assert!(alarms < 20, "{alarms} false alarms in 20,000");
    }
}
