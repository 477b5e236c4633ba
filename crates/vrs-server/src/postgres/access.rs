//! Staff access on PostgreSQL: tokens, users, contacts, sign-in state and sessions
//! (the same rules as the embedded store's, from `rules::access`).

use postgres::GenericClient;
use vrs_domain::{DeviceId, MunicipalityCode};

use super::{PgStore, mc};
use crate::error::Result;
use crate::principal::Principal;
use crate::rules::access::{self, Contact, ContactKind, Session, SignIn, User};
use crate::store::codec::municipality_code;
use crate::store::{Access, jst_now};

fn users_in(c: &mut impl GenericClient, m: MunicipalityCode) -> Result<Vec<User>> {
    Ok(c.query(
        "SELECT email, team, person, phone, transfer_contact FROM vrs.users
         WHERE municipality = $1 ORDER BY created_at, email",
        &[&mc(m)],
    )?
    .iter()
    .map(|r| User {
        email: r.get(0),
        team: r.get(1),
        person: r.get(2),
        phone: r.get(3),
        transfer_contact: r.get(4),
    })
    .collect())
}

impl Access for PgStore {
    fn create_token(&self, actor: &Principal, for_whom: &Principal) -> Result<String> {
        let t = crate::principal::new_token(actor, for_whom)?;
        self.main.get()?.execute(
            "INSERT INTO vrs.api_tokens (token_hash, kind, municipality, subject, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &t.hash,
                &t.kind,
                &(t.municipality as i32),
                &t.subject,
                &jst_now(),
            ],
        )?;
        Ok(t.token)
    }

    fn principal_for_token(&self, token: &str) -> Result<Option<Principal>> {
        let row = self.main.get()?.query_opt(
            "SELECT kind, municipality, subject FROM vrs.api_tokens WHERE token_hash = $1 AND NOT revoked",
            &[&crate::principal::token_hash(token)],
        )?;
        row.map(|r| {
            crate::principal::token_principal(r.get(0), i64::from(r.get::<_, i32>(1)), r.get(2))
        })
        .transpose()
        .map(Option::flatten)
    }

    fn put_user(&self, actor: &Principal, m: MunicipalityCode, user: &User) -> Result<Vec<User>> {
        actor.require_staff_of(m)?;
        let email = user.check()?;
        let mut conn = self.main_conn()?;
        let mut tx = conn.transaction()?;
        // One writer of a municipality's users at a time: the rules read the list.
        tx.execute("SELECT pg_advisory_xact_lock(7, $1)", &[&mc(m)])?;
        let elsewhere = tx.query_opt(
            "SELECT municipality FROM vrs.users WHERE email = $1 AND municipality <> $2",
            &[&email, &mc(m)],
        )?;
        if elsewhere.is_some() {
            return Err(access::email_elsewhere(&email));
        }
        let user = User {
            email: email.clone(),
            ..user.clone()
        };
        let after = access::with_user(users_in(&mut tx, m)?, user);
        access::check_users(&after)?;
        let now = jst_now();
        for u in &after {
            // Never onto another municipality's user: two municipalities adding one
            // address at once both pass the check above (their locks differ).
            let n = tx.execute(
                "INSERT INTO vrs.users (email, municipality, team, person, phone, transfer_contact, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (email) DO UPDATE SET team = excluded.team, person = excluded.person,
                     phone = excluded.phone, transfer_contact = excluded.transfer_contact
                 WHERE vrs.users.municipality = excluded.municipality",
                &[&u.email, &mc(m), &u.team.trim(), &u.person.trim(), &u.phone.trim(), &u.transfer_contact, &now],
            )?;
            if n == 0 {
                return Err(access::email_elsewhere(&u.email));
            }
        }
        tx.commit()?;
        Ok(after)
    }

    fn remove_user(&self, actor: &Principal, m: MunicipalityCode, user: &str) -> Result<Vec<User>> {
        actor.require_staff_of(m)?;
        let email = user.trim().to_lowercase();
        let mut conn = self.main_conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(7, $1)", &[&mc(m)])?;
        let before = users_in(&mut tx, m)?;
        let after = access::without_user(before, &email, m)?;
        tx.execute("DELETE FROM vrs.users WHERE email = $1", &[&email])?;
        tx.execute("DELETE FROM vrs.sessions WHERE email = $1", &[&email])?;
        tx.commit()?;
        Ok(after)
    }

    fn users(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<User>> {
        actor.require_staff_of(m)?;
        users_in(&mut *self.main_conn()?, m)
    }

    fn put_contact(&self, actor: &Principal, m: MunicipalityCode, c: &Contact) -> Result<()> {
        actor.require_staff_of(m)?;
        let email = c.check()?;
        self.main_conn()?.execute(
            "INSERT INTO vrs.contacts (municipality, kind, team, person, phone, email)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (municipality, kind) DO UPDATE SET team = excluded.team,
                 person = excluded.person, phone = excluded.phone, email = excluded.email",
            &[
                &mc(m),
                &c.kind.as_str(),
                &c.team.trim(),
                &c.person.trim(),
                &c.phone.trim(),
                &email,
            ],
        )?;
        Ok(())
    }

    fn contacts(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<Contact>> {
        actor.require_staff_of(m)?;
        self.main_conn()?
            .query(
                "SELECT kind, team, person, phone, email FROM vrs.contacts WHERE municipality = $1 ORDER BY kind",
                &[&mc(m)],
            )?
            .iter()
            .map(|r| {
                let kind: String = r.get(0);
                Ok(Contact {
                    kind: ContactKind::stored(&kind)?,
                    team: r.get(1),
                    person: r.get(2),
                    phone: r.get(3),
                    email: r.get(4),
                })
            })
            .collect()
    }

    fn signin_state(&self, email: &str) -> Result<Option<(MunicipalityCode, SignIn)>> {
        self.read_signin("vrs.users", "municipality", "email", &email)?
            .map(|(m, s): (i32, SignIn)| Ok((municipality_code(i64::from(m))?, s)))
            .transpose()
    }

    fn save_signin(&self, email: &str, old: &SignIn, s: &SignIn) -> Result<bool> {
        self.write_signin("vrs.users", "email", &email, old, s)
    }

    fn create_session(&self, token_hash: &[u8], s: &Session) -> Result<()> {
        self.main_conn()?.execute(
            "INSERT INTO vrs.sessions (token_hash, municipality, email, csrf, started, last_seen, device)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&token_hash, &mc(s.municipality), &s.email, &s.csrf, &s.started, &s.last_seen, &s.device.map(|d| d.0)],
        )?;
        Ok(())
    }

    fn session(&self, token_hash: &[u8]) -> Result<Option<Session>> {
        let mut conn = self.main_conn()?;
        let Some(r) = conn.query_opt(
            "SELECT municipality, email, csrf, started, last_seen, device FROM vrs.sessions
             WHERE token_hash = $1",
            &[&token_hash],
        )?
        else {
            return Ok(None);
        };
        let s = Session {
            municipality: municipality_code(i64::from(r.get::<_, i32>(0)))?,
            email: r.get(1),
            csrf: r.get(2),
            started: r.get(3),
            last_seen: r.get(4),
            device: r.get::<_, Option<uuid::Uuid>>(5).map(DeviceId),
        };
        let now = jst_now();
        if !s.live(now) {
            conn.execute(
                "DELETE FROM vrs.sessions WHERE token_hash = $1",
                &[&token_hash],
            )?;
            return Ok(None);
        }
        conn.execute(
            "UPDATE vrs.sessions SET last_seen = $2 WHERE token_hash = $1",
            &[&token_hash, &now],
        )?;
        Ok(Some(s))
    }

    fn end_session(&self, token_hash: &[u8]) -> Result<()> {
        self.main_conn()?.execute(
            "DELETE FROM vrs.sessions WHERE token_hash = $1",
            &[&token_hash],
        )?;
        Ok(())
    }

    fn device_signin(&self, device: DeviceId) -> Result<Option<(String, SignIn)>> {
        self.read_signin("vrs.devices", "email", "id", &device.0)
    }

    fn save_device_signin(&self, device: DeviceId, old: &SignIn, s: &SignIn) -> Result<bool> {
        self.write_signin("vrs.devices", "id", &device.0, old, s)
    }
}

impl PgStore {
    /// The sign-in columns (users and devices have the same five) of one row, with
    /// the column `first` before them.
    fn read_signin<T: for<'a> postgres::types::FromSql<'a>>(
        &self,
        table: &str,
        first: &str,
        key: &str,
        value: &(dyn postgres::types::ToSql + Sync),
    ) -> Result<Option<(T, SignIn)>> {
        let row = self.main_conn()?.query_opt(
            &format!(
                "SELECT {first}, passcode_hash, passcode_expires, passcode_sent, failures, locked_until
                 FROM {table} WHERE {key} = $1"
            ),
            &[value],
        )?;
        Ok(row.map(|r| {
            (
                r.get(0),
                SignIn {
                    passcode_hash: r.get(1),
                    passcode_expires: r.get(2),
                    passcode_sent: r.get(3),
                    failures: r.get::<_, i32>(4).max(0) as u32,
                    locked_until: r.get(5),
                },
            )
        }))
    }

    fn write_signin(
        &self,
        table: &str,
        key: &str,
        value: &(dyn postgres::types::ToSql + Sync),
        old: &SignIn,
        s: &SignIn,
    ) -> Result<bool> {
        let fails = |f: u32| f.min(i32::MAX as u32) as i32;
        let n = self.main_conn()?.execute(
            &format!(
                "UPDATE {table} SET passcode_hash = $2, passcode_expires = $3, passcode_sent = $4,
                     failures = $5, locked_until = $6
                 WHERE {key} = $1 AND passcode_hash IS NOT DISTINCT FROM $7
                     AND passcode_expires IS NOT DISTINCT FROM $8
                     AND passcode_sent IS NOT DISTINCT FROM $9 AND failures = $10
                     AND locked_until IS NOT DISTINCT FROM $11"
            ),
            &[
                value,
                &s.passcode_hash,
                &s.passcode_expires,
                &s.passcode_sent,
                &fails(s.failures),
                &s.locked_until,
                &old.passcode_hash,
                &old.passcode_expires,
                &old.passcode_sent,
                &fails(old.failures),
                &old.locked_until,
            ],
        )?;
        Ok(n == 1)
    }
}
