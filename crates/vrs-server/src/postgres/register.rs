//! The register on PostgreSQL: municipalities, sites, people (the CSV import, set-wise
//! per chunk, with the vault written beside it on its own connection), and the name
//! a tablet shows.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use chrono::{NaiveDate, NaiveDateTime};
use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use vrs_domain::wire::{NameLookupRequest, NameLookupResponse as Name};
use vrs_domain::{MunicipalityCode, MyNumber, Sex, VoucherNumber};

use super::pool::PgConn;
use super::{PgStore, by_index, lock_municipality, mc, record_import};
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::merge::PersonFields;
use crate::store::codec::{status_of, status_text};
use crate::store::import::{self, PersonRow, RegisterSink};
use crate::store::vault::{
    LookupHash, SealedNumber, VaultCrypto, VaultWrite, VaultWriter, serve, vault_writer,
};
use crate::store::{ImportOptions, ImportOutcome, ImportReport, Register, Site, jst_now};

impl Register for PgStore {
    fn upsert_municipality(
        &self,
        actor: &Principal,
        code: MunicipalityCode,
        name: &str,
        contact: &str,
    ) -> Result<()> {
        actor.require_staff_of(code)?;
        self.main.get()?.execute(
            "INSERT INTO vrs.municipalities (code, name, transfer_contact) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, transfer_contact = excluded.transfer_contact",
            &[&mc(code), &name, &contact],
        )?;
        Ok(())
    }

    fn add_site(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        code: &str,
        name: &str,
    ) -> Result<()> {
        actor.require_staff_of(m)?;
        self.main.get()?.execute(
            "INSERT INTO vrs.sites (municipality, code, name) VALUES ($1, $2, $3)
             ON CONFLICT (municipality, code) DO UPDATE SET name = excluded.name",
            &[&mc(m), &code, &name],
        )?;
        Ok(())
    }

    fn sites(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<Site>> {
        actor.require_staff_of(m)?;
        Ok(self
            .main_conn()?
            .query(
                "SELECT code, name FROM vrs.sites WHERE municipality = $1 ORDER BY code",
                &[&mc(m)],
            )?
            .iter()
            .map(|r| Site {
                code: r.get(0),
                name: r.get(1),
            })
            .collect())
    }

    fn import_register(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        actor.require_staff_of(m)?;
        let now = jst_now();
        let mut main = self.main.get()?;
        std::thread::scope(|scope| {
            // The vault on a connection (so a server process) of its own: it goes on
            // writing one chunk while this thread reads and merges the next. Made
            // inside the scope: if the import stops early, the writer's end is
            // dropped here, its loop ends (rolling back), and the scope can join it.
            let (writer, inbox) = vault_writer();
            scope.spawn(move || match self.vault.get() {
                Ok(mut conn) => serve(PgVaultTx::begin(&mut conn, m), inbox),
                Err(e) => serve::<PgVaultTx<'_>>(Err(e), inbox),
            });
            let mut tx = main.transaction()?;
            lock_municipality(&mut tx, m)?;
            by_index(&mut tx)?;
            let updating: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM vrs.persons WHERE municipality = $1)",
                    &[&mc(m)],
                )?
                .get(0);
            let mut sink = PgSink {
                tx: &mut tx,
                writer,
                crypto: &self.crypto,
                municipality: m,
                now,
            };
            let hash = |n: &MyNumber| self.crypto.lookup_hash(n);
            let (mut report, errors) = import::run(input, opts, updating, &hash, &mut sink)?;
            let summary = import::summary(&report);
            let applied = report.outcome == ImportOutcome::Applied;
            // The vault commits first, as in the SQLite store; a failed vault write
            // comes back here, and the register is rolled back with it.
            sink.writer.finish(applied)?;
            if applied {
                report.import_id = record_import(
                    &mut tx, m, "register", actor, now, &report, summary, &errors,
                )?;
                tx.commit()?;
            } else {
                tx.rollback()?;
                report.import_id = record_import(
                    &mut *main, m, "register", actor, now, &report, summary, &errors,
                )?;
            }
            Ok(report)
        })
    }

    fn import_errors_csv(&self, actor: &Principal, import_id: i64) -> Result<String> {
        let m = actor.staff_of()?;
        self.main
            .get()?
            .query_opt(
                "SELECT errors_csv FROM vrs.imports WHERE id = $1 AND municipality = $2",
                &[&import_id, &mc(m)],
            )?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("import {import_id}")))
    }

    fn lookup_name(&self, actor: &Principal, req: &NameLookupRequest) -> Result<Option<Name>> {
        actor.require_name_look_up(req.municipality)?;
        Ok(self
            .main
            .get()?
            .query_opt(
                "SELECT family_name, given_name, family_kana, given_kana FROM vrs.persons
                 WHERE municipality = $1 AND voucher = $2",
                &[&mc(req.municipality), &(req.voucher.get() as i64)],
            )?
            .map(|r| Name {
                family_name: r.get(0),
                given_name: r.get(1),
                family_kana: r.get(2),
                given_kana: r.get(3),
            }))
    }

    fn person_count(&self, actor: &Principal, m: MunicipalityCode) -> Result<u64> {
        actor.require_staff_of(m)?;
        let n: i64 = self
            .main
            .get()?
            .query_one(
                "SELECT count(*) FROM vrs.persons WHERE municipality = $1",
                &[&mc(m)],
            )?
            .get(0);
        Ok(n as u64)
    }
}

/// The register import's reads and writes on PostgreSQL: a few statements per chunk.
/// The register is written here; the vault by the vault writer, beside it.
struct PgSink<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    writer: VaultWriter,
    crypto: &'a VaultCrypto,
    municipality: MunicipalityCode,
    now: NaiveDateTime,
}

/// The import's transaction on the vault schema.
struct PgVaultTx<'c> {
    tx: Transaction<'c>,
    municipality: MunicipalityCode,
    /// With no number held for the municipality, none needs to be looked for before
    /// an insert.
    empty: bool,
}

impl<'c> PgVaultTx<'c> {
    fn begin(conn: &'c mut PgConn<'_>, m: MunicipalityCode) -> Result<Self> {
        let mut tx = conn.transaction()?;
        by_index(&mut tx)?;
        let empty = tx
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM vrs_vault.my_numbers WHERE municipality = $1)",
                &[&mc(m)],
            )?
            .get::<_, bool>(0);
        Ok(PgVaultTx {
            tx,
            municipality: m,
            empty,
        })
    }
}

impl VaultWrite for PgVaultTx<'_> {
    fn hashes(&mut self, people: &[&str]) -> Result<HashMap<String, LookupHash>> {
        stored_hashes(&mut self.tx, self.municipality, people)
    }

    fn put(&mut self, rows: Vec<SealedNumber>) -> Result<()> {
        let empty = std::mem::replace(&mut self.empty, false);
        put_numbers(&mut self.tx, self.municipality, &rows, empty)
    }

    fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

impl RegisterSink for PgSink<'_, '_> {
    fn persons(&mut self, ids: &[&str]) -> Result<HashMap<String, PersonFields>> {
        stored_persons(self.tx, self.municipality, ids)
    }

    fn voucher_holders(
        &mut self,
        vouchers: &[VoucherNumber],
    ) -> Result<HashMap<VoucherNumber, String>> {
        let v: Vec<i64> = vouchers.iter().map(|v| v.get() as i64).collect();
        let rows = self.tx.query(
            "SELECT p.voucher, p.person_id FROM UNNEST($2::int8[]) AS u(v)
             CROSS JOIN LATERAL (SELECT voucher, person_id FROM vrs.persons
                 WHERE municipality = $1 AND voucher = u.v OFFSET 0) p",
            &[&mc(self.municipality), &v],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((VoucherNumber::new(r.get::<_, i64>(0) as u64)?, r.get(1))))
            .collect())
    }

    fn vault_hashes(&mut self, ids: &[&str]) -> Result<HashMap<String, LookupHash>> {
        self.writer.hashes(ids)
    }

    fn prefetch_vault_hashes(&mut self, ids: &[&str]) -> Result<()> {
        self.writer.prefetch(ids)
    }

    fn write_persons(&mut self, rows: &[PersonRow<'_>]) -> Result<()> {
        write_persons(self.tx, self.municipality, self.now, rows)
    }

    fn write_numbers(&mut self, rows: &[(&str, &MyNumber, &LookupHash)]) -> Result<()> {
        self.writer.put(self.crypto, self.municipality, rows)
    }

    /// The numbers go to the vault worker first, so that both are written at once.
    fn write(
        &mut self,
        persons: &[PersonRow<'_>],
        numbers: &[(&str, &MyNumber, &LookupHash)],
    ) -> Result<()> {
        if !numbers.is_empty() {
            self.write_numbers(numbers)?;
        }
        if !persons.is_empty() {
            self.write_persons(persons)?;
        }
        Ok(())
    }

    fn release_vouchers(&mut self, ids: &[&str]) -> Result<()> {
        self.tx.execute(
            "UPDATE vrs.persons SET voucher = NULL WHERE municipality = $1 AND person_id = ANY($2)",
            &[&mc(self.municipality), &ids],
        )?;
        Ok(())
    }
}

fn stored_persons(
    tx: &mut Transaction<'_>,
    m: MunicipalityCode,
    ids: &[&str],
) -> Result<HashMap<String, PersonFields>> {
    let rows = tx.query(
        "SELECT p.person_id, p.family_name, p.given_name, p.family_kana, p.given_kana,
             p.birth_date, p.sex, p.voucher, p.status
         FROM UNNEST($2::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT * FROM vrs.persons
             WHERE municipality = $1 AND person_id = u.id OFFSET 0) p",
        &[&mc(m), &ids],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                PersonFields {
                    family_name: r.get(1),
                    given_name: r.get(2),
                    family_kana: r.get(3),
                    given_kana: r.get(4),
                    birth_date: r.get(5),
                    sex: r
                        .get::<_, Option<i16>>(6)
                        .and_then(|c| c.to_string().parse::<Sex>().ok()),
                    voucher: r
                        .get::<_, Option<i64>>(7)
                        .and_then(|v| VoucherNumber::new(v as u64)),
                    status: status_of(r.get(8)),
                },
            )
        })
        .collect())
}

fn stored_hashes(
    vtx: &mut Transaction<'_>,
    m: MunicipalityCode,
    ids: &[&str],
) -> Result<HashMap<String, LookupHash>> {
    let rows = vtx.query(
        "SELECT n.person_id, n.lookup FROM UNNEST($2::text[]) AS u(id)
         CROSS JOIN LATERAL (SELECT person_id, lookup FROM vrs_vault.my_numbers
             WHERE municipality = $1 AND person_id = u.id OFFSET 0) n",
        &[&mc(m), &ids],
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let h: Vec<u8> = r.get(1);
            Some((r.get::<_, String>(0), h.try_into().ok()?))
        })
        .collect())
}

/// New people go in by binary COPY (several times faster than an upsert: no
/// conflict check, pages filled in bulk); people already stored are upserted.
fn write_persons(
    tx: &mut Transaction<'_>,
    municipality: MunicipalityCode,
    now: NaiveDateTime,
    rows: &[PersonRow<'_>],
) -> Result<()> {
    let (new, stored): (Vec<&PersonRow<'_>>, Vec<&PersonRow<'_>>) =
        rows.iter().partition(|r| !r.stored);
    if !stored.is_empty() {
        upsert_persons(tx, municipality, now, &stored)?;
    }
    if !new.is_empty() {
        let sink = tx.copy_in(
            "COPY vrs.persons (municipality, person_id, family_name, given_name, family_kana,
                 given_kana, birth_date, sex, voucher, status, updated_at)
             FROM STDIN (FORMAT binary)",
        )?;
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT4,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::DATE,
                Type::INT2,
                Type::INT8,
                Type::TEXT,
                Type::TIMESTAMP,
            ],
        );
        let m = mc(municipality);
        for r in new {
            let f = r.fields;
            w.write(&[
                &m,
                &r.id,
                &f.family_name,
                &f.given_name,
                &f.family_kana,
                &f.given_kana,
                &f.birth_date,
                &f.sex.map(|s| i16::from(s.code())),
                &f.voucher.map(|v| v.get() as i64),
                &status_text(f.status),
                &now,
            ])?;
        }
        w.finish()?;
    }
    Ok(())
}

fn upsert_persons(
    tx: &mut Transaction<'_>,
    municipality: MunicipalityCode,
    now: NaiveDateTime,
    rows: &[&PersonRow<'_>],
) -> Result<()> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id).collect();
    let fam: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.fields.family_name.as_deref())
        .collect();
    let giv: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.fields.given_name.as_deref())
        .collect();
    let fk: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.fields.family_kana.as_deref())
        .collect();
    let gk: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.fields.given_kana.as_deref())
        .collect();
    let bd: Vec<Option<NaiveDate>> = rows.iter().map(|r| r.fields.birth_date).collect();
    let sex: Vec<Option<i16>> = rows
        .iter()
        .map(|r| r.fields.sex.map(|s| i16::from(s.code())))
        .collect();
    let vo: Vec<Option<i64>> = rows
        .iter()
        .map(|r| r.fields.voucher.map(|v| v.get() as i64))
        .collect();
    let st: Vec<&str> = rows.iter().map(|r| status_text(r.fields.status)).collect();
    tx.execute(
        "INSERT INTO vrs.persons (municipality, person_id, family_name, given_name, family_kana,
             given_kana, birth_date, sex, voucher, status, updated_at)
         SELECT $1, u.*, $11 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::date[], $8::int2[], $9::int8[], $10::text[]) AS u
         ON CONFLICT (municipality, person_id) DO UPDATE SET
             family_name = excluded.family_name, given_name = excluded.given_name,
             family_kana = excluded.family_kana, given_kana = excluded.given_kana,
             birth_date = excluded.birth_date, sex = excluded.sex,
             voucher = excluded.voucher, status = excluded.status,
             updated_at = excluded.updated_at",
        &[
            &mc(municipality),
            &ids,
            &fam,
            &giv,
            &fk,
            &gk,
            &bd,
            &sex,
            &vo,
            &st,
            &now,
        ],
    )?;
    Ok(())
}

/// Numbers whose person has none in the vault yet go in by binary COPY; the others
/// are replaced. Which is which is asked here (unless the vault held nothing for the
/// municipality), not taken from the engine: the vault commits before the register,
/// so a crash between the two can leave a number whose person the register lacks.
fn put_numbers(
    vtx: &mut Transaction<'_>,
    municipality: MunicipalityCode,
    rows: &[SealedNumber],
    vault_empty: bool,
) -> Result<()> {
    let m = mc(municipality);
    let present: HashSet<String> = if vault_empty {
        HashSet::new()
    } else {
        let ids: Vec<&str> = rows.iter().map(|r| r.person.as_str()).collect();
        vtx.query(
            "SELECT n.person_id FROM UNNEST($2::text[]) AS u(id)
             CROSS JOIN LATERAL (SELECT person_id FROM vrs_vault.my_numbers
                 WHERE municipality = $1 AND person_id = u.id OFFSET 0) n",
            &[&m, &ids],
        )?
        .into_iter()
        .map(|r| r.get(0))
        .collect()
    };
    let (replaced, fresh): (Vec<&SealedNumber>, Vec<&SealedNumber>) =
        rows.iter().partition(|r| present.contains(&r.person));
    if !fresh.is_empty() {
        let sink = vtx.copy_in(
            "COPY vrs_vault.my_numbers (municipality, person_id, lookup, nonce, sealed)
             FROM STDIN (FORMAT binary)",
        )?;
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT4,
                Type::TEXT,
                Type::BYTEA,
                Type::BYTEA,
                Type::BYTEA,
            ],
        );
        for r in &fresh {
            w.write(&[&m, &r.person, &&r.lookup[..], &&r.nonce[..], &r.sealed])?;
        }
        w.finish()?;
    }
    if !replaced.is_empty() {
        let ids: Vec<&str> = replaced.iter().map(|r| r.person.as_str()).collect();
        let lookups: Vec<&[u8]> = replaced.iter().map(|r| &r.lookup[..]).collect();
        let nonces: Vec<&[u8]> = replaced.iter().map(|r| &r.nonce[..]).collect();
        let sealed: Vec<&[u8]> = replaced.iter().map(|r| &r.sealed[..]).collect();
        vtx.execute(
            "INSERT INTO vrs_vault.my_numbers (municipality, person_id, lookup, nonce, sealed)
             SELECT $1, u.* FROM UNNEST($2::text[], $3::bytea[], $4::bytea[], $5::bytea[]) AS u
             ON CONFLICT (municipality, person_id) DO UPDATE
             SET lookup = excluded.lookup, nonce = excluded.nonce, sealed = excluded.sealed",
            &[&m, &ids, &lookups, &nonces, &sealed],
        )?;
    }
    Ok(())
}
