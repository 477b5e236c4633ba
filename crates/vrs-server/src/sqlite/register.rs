//! The register on the embedded store: municipalities, sites, people (the CSV
//! import, with the vault written beside it), and the name a tablet shows.

use std::collections::HashMap;
use std::io::Read;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use vrs_domain::wire::{NameLookupRequest, NameLookupResponse as Name};
use vrs_domain::{MunicipalityCode, MyNumber, Sex, VoucherNumber};

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::merge::PersonFields;
use crate::store::codec::{outcome_text, status_of, status_text, time_text};
use crate::store::import::{self, PersonRow};
use crate::store::vault::{LookupHash, VaultCrypto, VaultWriter, serve, vault_writer};
use crate::store::{ImportOptions, ImportOutcome, ImportReport, Register, Site, jst_now};

impl Register for SqliteStore {
    /// Adds or renames a municipality, with its transfer contact.
    fn upsert_municipality(
        &self,
        actor: &Principal,
        code: MunicipalityCode,
        name: &str,
        transfer_contact: &str,
    ) -> Result<()> {
        actor.require_staff_of(code)?;
        self.pool.get()?.execute(
            "INSERT INTO municipalities (code, name, transfer_contact) VALUES (?1, ?2, ?3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name,
                 transfer_contact = excluded.transfer_contact",
            params![code.get(), name, transfer_contact],
        )?;
        Ok(())
    }

    /// Registers a site or clinic's name for the ledger.
    fn add_site(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        code: &str,
        name: &str,
    ) -> Result<()> {
        actor.require_staff_of(municipality)?;
        self.pool.get()?.execute(
            "INSERT INTO sites (municipality, code, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (municipality, code) DO UPDATE SET name = excluded.name",
            params![municipality.get(), code, name],
        )?;
        Ok(())
    }

    fn sites(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<Site>> {
        actor.require_staff_of(m)?;
        let conn = self.pool.get()?;
        let mut st =
            conn.prepare("SELECT code, name FROM sites WHERE municipality = ?1 ORDER BY code")?;
        let rows = st.query_map([m.get()], |r| {
            Ok(Site {
                code: r.get(0)?,
                name: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Imports a register CSV for `municipality`. One file is one transaction: in
    /// strict mode a file with any bad row changes nothing; in partial mode the good
    /// rows are applied. Either way the report lists every bad row.
    fn import_register(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        actor.require_staff_of(municipality)?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let m = municipality.get();
        let updating: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM persons WHERE municipality = ?1)",
            [m],
            |r| r.get(0),
        )?;
        let now = time_text(jst_now());
        // The vault is written on a second thread, beside the register: half an
        // import's time is the vault's own inserts.
        let vault = &self.vault;
        let (mut report, errors, vault_done) = std::thread::scope(|scope| {
            // Made inside the scope: if the import stops early, the writer's end is
            // dropped here, its loop ends (rolling back), and the scope can join it.
            let (writer, inbox) = vault_writer();
            scope.spawn(move || serve(vault.begin(municipality), inbox));
            let mut sink = SqliteSink {
                tx: &tx,
                crypto: self.vault.crypto(),
                writer,
                municipality,
                now: &now,
            };
            let hash = |n: &MyNumber| self.vault.lookup_hash(n);
            let (report, errors) = import::run(input, opts, updating, &hash, &mut sink)?;
            // The vault first: a crash between the two commits leaves numbers for
            // rows the register does not show yet, which a re-upload then finds
            // unchanged; the other order could leave people without their number.
            let vault_done = sink.writer.finish(report.outcome == ImportOutcome::Applied);
            Ok::<_, StoreError>((report, errors, vault_done))
        })?;
        let record = |c: &rusqlite::Connection, report: &ImportReport| -> Result<i64> {
            c.execute(
                "INSERT INTO imports (municipality, kind, actor, started_at, outcome, report, errors_csv)
                 VALUES (?1, 'register', ?2, ?3, ?4, ?5, ?6)",
                params![
                    m,
                    actor.to_string(),
                    now,
                    outcome_text(report.outcome),
                    import::summary(report),
                    errors.text
                ],
            )?;
            Ok(c.last_insert_rowid())
        };
        if report.outcome == ImportOutcome::Applied {
            vault_done?;
            report.import_id = record(&tx, &report)?;
            tx.commit()?;
        } else {
            tx.rollback()?;
            report.import_id = record(&conn, &report)?;
        }
        Ok(report)
    }

    /// The error CSV of an upload, for its own municipality's staff.
    fn import_errors_csv(&self, actor: &Principal, import_id: i64) -> Result<String> {
        let m = actor.staff_of()?;
        self.pool
            .get()?
            .query_row(
                "SELECT errors_csv FROM imports WHERE id = ?1 AND municipality = ?2",
                params![import_id, m.get()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("import {import_id}")))
    }

    /// The name for the confirmation screen: (municipality, 券番号) → name, nothing else.
    fn lookup_name(&self, actor: &Principal, req: &NameLookupRequest) -> Result<Option<Name>> {
        actor.require_name_look_up(req.municipality)?;
        let conn = self.pool.get()?;
        let name = conn
            .prepare_cached(
                "SELECT family_name, given_name, family_kana, given_kana FROM persons
                 WHERE municipality = ?1 AND voucher = ?2",
            )?
            .query_row(
                params![req.municipality.get(), req.voucher.get() as i64],
                |r| {
                    Ok(Name {
                        family_name: r.get(0)?,
                        given_name: r.get(1)?,
                        family_kana: r.get(2)?,
                        given_kana: r.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(name)
    }

    /// How many people a municipality has registered.
    fn person_count(&self, actor: &Principal, municipality: MunicipalityCode) -> Result<u64> {
        actor.require_staff_of(municipality)?;
        let n: i64 = self.pool.get()?.query_row(
            "SELECT count(*) FROM persons WHERE municipality = ?1",
            [municipality.get()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

/// The register import's reads and writes on SQLite (one statement per person: in
/// process, a round trip costs nothing).
struct SqliteSink<'a> {
    tx: &'a Transaction<'a>,
    crypto: &'a VaultCrypto,
    writer: VaultWriter,
    municipality: MunicipalityCode,
    now: &'a str,
}

impl import::RegisterSink for SqliteSink<'_> {
    fn persons(&mut self, ids: &[&str]) -> Result<std::collections::HashMap<String, PersonFields>> {
        let mut get = self.tx.prepare_cached(
            "SELECT family_name, given_name, family_kana, given_kana, birth_date, sex, voucher, status
             FROM persons WHERE municipality = ?1 AND person_id = ?2",
        )?;
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for id in ids {
            let found = get
                .query_row(params![self.municipality.get(), id], |r| {
                    Ok(PersonFields {
                        family_name: r.get(0)?,
                        given_name: r.get(1)?,
                        family_kana: r.get(2)?,
                        given_kana: r.get(3)?,
                        birth_date: r.get::<_, Option<String>>(4)?.and_then(|s| s.parse().ok()),
                        sex: r
                            .get::<_, Option<i64>>(5)?
                            .and_then(|c| format!("{c}").parse::<Sex>().ok()),
                        voucher: r
                            .get::<_, Option<i64>>(6)?
                            .and_then(|v| VoucherNumber::new(v as u64)),
                        status: status_of(&r.get::<_, String>(7)?),
                    })
                })
                .optional()?;
            if let Some(p) = found {
                out.insert((*id).to_owned(), p);
            }
        }
        Ok(out)
    }

    fn voucher_holders(
        &mut self,
        vouchers: &[VoucherNumber],
    ) -> Result<std::collections::HashMap<VoucherNumber, String>> {
        let mut owner = self.tx.prepare_cached(
            "SELECT person_id FROM persons WHERE municipality = ?1 AND voucher = ?2",
        )?;
        let mut out = std::collections::HashMap::new();
        for v in vouchers {
            let holder: Option<String> = owner
                .query_row(params![self.municipality.get(), v.get() as i64], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(h) = holder {
                out.insert(*v, h);
            }
        }
        Ok(out)
    }

    fn vault_hashes(&mut self, ids: &[&str]) -> Result<HashMap<String, LookupHash>> {
        self.writer.hashes(ids)
    }

    fn prefetch_vault_hashes(&mut self, ids: &[&str]) -> Result<()> {
        self.writer.prefetch(ids)
    }

    fn write_persons(&mut self, rows: &[PersonRow<'_>]) -> Result<()> {
        let mut write = self.tx.prepare_cached(
            "INSERT INTO persons (municipality, person_id, family_name, given_name, family_kana,
                 given_kana, birth_date, sex, voucher, status, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (municipality, person_id) DO UPDATE SET
                 family_name = excluded.family_name, given_name = excluded.given_name,
                 family_kana = excluded.family_kana, given_kana = excluded.given_kana,
                 birth_date = excluded.birth_date, sex = excluded.sex,
                 voucher = excluded.voucher, status = excluded.status,
                 updated_at = excluded.updated_at",
        )?;
        for PersonRow { id, fields: f, .. } in rows {
            write.execute(params![
                self.municipality.get(),
                id,
                f.family_name,
                f.given_name,
                f.family_kana,
                f.given_kana,
                f.birth_date.map(|d| d.to_string()),
                f.sex.map(|s| s.code()),
                f.voucher.map(|v| v.get() as i64),
                status_text(f.status),
                self.now,
            ])?;
        }
        Ok(())
    }

    fn release_vouchers(&mut self, ids: &[&str]) -> Result<()> {
        let mut st = self.tx.prepare_cached(
            "UPDATE persons SET voucher = NULL WHERE municipality = ?1 AND person_id = ?2",
        )?;
        for id in ids {
            st.execute(params![self.municipality.get(), id])?;
        }
        Ok(())
    }

    fn write_numbers(&mut self, rows: &[(&str, &MyNumber, &LookupHash)]) -> Result<()> {
        self.writer.put(self.crypto, self.municipality, rows)
    }
}
