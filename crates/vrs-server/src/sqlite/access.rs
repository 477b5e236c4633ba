//! Users, contacts, sites, sign-in state and sessions on the embedded store.

use chrono::NaiveDateTime;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use vrs_domain::{DeviceId, MunicipalityCode};

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::access::{self, Contact, ContactKind, Session, SignIn, User};
use crate::store::codec::{municipality_code, time_of, time_text};
use crate::store::{Access, jst_now};

fn time(s: Option<String>) -> Result<Option<NaiveDateTime>> {
    s.as_deref().map(time_of).transpose()
}

fn users_in(tx: &rusqlite::Connection, m: MunicipalityCode) -> Result<Vec<User>> {
    let mut st = tx.prepare_cached(
        "SELECT email, team, person, phone, transfer_contact FROM users
         WHERE municipality = ?1 ORDER BY created_at, email",
    )?;
    let rows = st.query_map([m.get()], |r| {
        Ok(User {
            email: r.get(0)?,
            team: r.get(1)?,
            person: r.get(2)?,
            phone: r.get(3)?,
            transfer_contact: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Access for SqliteStore {
    /// Makes a bearer token for a staff member or a tablet of `municipality`. The
    /// token is returned once; only its hash is kept.
    fn create_token(&self, actor: &Principal, for_whom: &Principal) -> Result<String> {
        let t = crate::principal::new_token(actor, for_whom)?;
        self.pool.get()?.execute(
            "INSERT INTO api_tokens (token_hash, kind, municipality, subject, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                t.hash,
                t.kind,
                t.municipality,
                t.subject,
                time_text(jst_now())
            ],
        )?;
        Ok(t.token)
    }

    /// Who a bearer token stands for, if it is known and not revoked.
    fn principal_for_token(&self, token: &str) -> Result<Option<Principal>> {
        let row: Option<(String, i64, String)> = self
            .pool
            .get()?
            .prepare_cached(
                "SELECT kind, municipality, subject FROM api_tokens
                 WHERE token_hash = ?1 AND revoked = 0",
            )?
            .query_row([crate::principal::token_hash(token)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(kind, m, subject)| crate::principal::token_principal(&kind, m, subject))
            .transpose()
            .map(Option::flatten)
    }

    /// Adds or changes a user of `municipality`; the users after the change.
    fn put_user(&self, actor: &Principal, m: MunicipalityCode, user: &User) -> Result<Vec<User>> {
        actor.require_staff_of(m)?;
        let email = user.check()?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let elsewhere: Option<i64> = tx
            .query_row(
                "SELECT municipality FROM users WHERE email = ?1 AND municipality <> ?2",
                params![email, m.get()],
                |r| r.get(0),
            )
            .optional()?;
        if elsewhere.is_some() {
            return Err(access::email_elsewhere(&email));
        }
        let user = User {
            email: email.clone(),
            ..user.clone()
        };
        let after = access::with_user(users_in(&tx, m)?, user);
        access::check_users(&after)?;
        let now = time_text(jst_now());
        for u in &after {
            tx.execute(
                "INSERT INTO users (email, municipality, team, person, phone, transfer_contact, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (email) DO UPDATE SET team = excluded.team, person = excluded.person,
                     phone = excluded.phone, transfer_contact = excluded.transfer_contact",
                params![u.email, m.get(), u.team.trim(), u.person.trim(), u.phone.trim(), u.transfer_contact, now],
            )?;
        }
        tx.commit()?;
        Ok(after)
    }

    /// Removes a user (their sessions end); refused if they are the transfer contact
    /// and others remain.
    fn remove_user(&self, actor: &Principal, m: MunicipalityCode, user: &str) -> Result<Vec<User>> {
        actor.require_staff_of(m)?;
        let email = user.trim().to_lowercase();
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let before = users_in(&tx, m)?;
        let after = access::without_user(before, &email, m)?;
        tx.execute("DELETE FROM users WHERE email = ?1", [&email])?;
        tx.execute("DELETE FROM sessions WHERE email = ?1", [&email])?;
        tx.commit()?;
        Ok(after)
    }

    fn users(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<User>> {
        actor.require_staff_of(m)?;
        let conn = self.pool.get()?;
        users_in(&conn, m)
    }

    fn put_contact(&self, actor: &Principal, m: MunicipalityCode, c: &Contact) -> Result<()> {
        actor.require_staff_of(m)?;
        let email = c.check()?;
        self.pool.get()?.execute(
            "INSERT INTO contacts (municipality, kind, team, person, phone, email)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (municipality, kind) DO UPDATE SET team = excluded.team,
                 person = excluded.person, phone = excluded.phone, email = excluded.email",
            params![
                m.get(),
                c.kind.as_str(),
                c.team.trim(),
                c.person.trim(),
                c.phone.trim(),
                email
            ],
        )?;
        Ok(())
    }

    fn contacts(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<Contact>> {
        actor.require_staff_of(m)?;
        let conn = self.pool.get()?;
        let mut st = conn.prepare(
            "SELECT kind, team, person, phone, email FROM contacts WHERE municipality = ?1 ORDER BY kind",
        )?;
        let rows = st.query_map([m.get()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, team, person, phone, email) = row?;
            out.push(Contact {
                kind: ContactKind::stored(&kind)?,
                team,
                person,
                phone,
                email,
            });
        }
        Ok(out)
    }

    /// A user's municipality and sign-in state, by e-mail.
    fn signin_state(&self, email: &str) -> Result<Option<(MunicipalityCode, SignIn)>> {
        self.read_signin("users", "municipality", "email", email)?
            .map(|(m, s)| Ok((municipality_code(m)?, s)))
            .transpose()
    }

    fn save_signin(&self, email: &str, old: &SignIn, s: &SignIn) -> Result<bool> {
        self.write_signin("users", "email", email, old, s)
    }

    fn create_session(&self, token_hash: &[u8], s: &Session) -> Result<()> {
        self.pool.get()?.execute(
            "INSERT INTO sessions (token_hash, municipality, email, csrf, started, last_seen, device)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                token_hash,
                s.municipality.get(),
                s.email,
                s.csrf,
                time_text(s.started),
                time_text(s.last_seen),
                s.device.map(|d| d.to_string())
            ],
        )?;
        Ok(())
    }

    /// The live session of a token hash (its idle clock restarted), or `None` (an
    /// ended one is deleted).
    fn session(&self, token_hash: &[u8]) -> Result<Option<Session>> {
        let conn = self.pool.get()?;
        let row = conn
            .prepare_cached(
                "SELECT municipality, email, csrf, started, last_seen, device FROM sessions
                 WHERE token_hash = ?1",
            )?
            .query_row([token_hash], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .optional()?;
        let Some((m, email, csrf, started, last_seen, device)) = row else {
            return Ok(None);
        };
        let now = jst_now();
        let s = Session {
            municipality: municipality_code(m)?,
            email,
            csrf,
            started: time(Some(started))?.unwrap_or(now),
            last_seen: time(Some(last_seen))?.unwrap_or(now),
            device: device
                .map(|d| {
                    d.parse()
                        .map(DeviceId)
                        .map_err(|_| StoreError::Corrupt("session device".into()))
                })
                .transpose()?,
        };
        if !s.live(now) {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            return Ok(None);
        }
        conn.prepare_cached("UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, time_text(now)])?;
        Ok(Some(s))
    }

    fn end_session(&self, token_hash: &[u8]) -> Result<()> {
        self.pool
            .get()?
            .execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        Ok(())
    }

    fn device_signin(&self, device: DeviceId) -> Result<Option<(String, SignIn)>> {
        self.read_signin("devices", "email", "id", &device.to_string())
    }

    fn save_device_signin(&self, device: DeviceId, old: &SignIn, s: &SignIn) -> Result<bool> {
        self.write_signin("devices", "id", &device.to_string(), old, s)
    }
}

impl SqliteStore {
    /// The sign-in columns (users and devices have the same five) of one row, with
    /// the column `first` before them.
    fn read_signin<T: rusqlite::types::FromSql>(
        &self,
        table: &str,
        first: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<(T, SignIn)>> {
        let sql = format!(
            "SELECT {first}, passcode_hash, passcode_expires, passcode_sent, failures, locked_until
             FROM {table} WHERE {key} = ?1"
        );
        let row = self
            .pool
            .get()?
            .query_row(&sql, [value], |r| {
                Ok((
                    r.get::<_, T>(0)?,
                    r.get::<_, Option<Vec<u8>>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .optional()?;
        row.map(|(v, hash, expires, sent, failures, locked)| {
            Ok((
                v,
                SignIn {
                    passcode_hash: hash,
                    passcode_expires: time(expires)?,
                    passcode_sent: time(sent)?,
                    failures,
                    locked_until: time(locked)?,
                },
            ))
        })
        .transpose()
    }

    fn write_signin(
        &self,
        table: &str,
        key: &str,
        value: &str,
        old: &SignIn,
        s: &SignIn,
    ) -> Result<bool> {
        let n = self.pool.get()?.execute(
            &format!(
                "UPDATE {table} SET passcode_hash = ?2, passcode_expires = ?3, passcode_sent = ?4,
                     failures = ?5, locked_until = ?6
                 WHERE {key} = ?1 AND passcode_hash IS ?7 AND passcode_expires IS ?8
                     AND passcode_sent IS ?9 AND failures = ?10 AND locked_until IS ?11"
            ),
            params![
                value,
                s.passcode_hash,
                s.passcode_expires.map(time_text),
                s.passcode_sent.map(time_text),
                s.failures,
                s.locked_until.map(time_text),
                old.passcode_hash,
                old.passcode_expires.map(time_text),
                old.passcode_sent.map(time_text),
                old.failures,
                old.locked_until.map(time_text),
            ],
        )?;
        Ok(n == 1)
    }
}
