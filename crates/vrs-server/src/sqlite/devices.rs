//! Tablets on the embedded store: registration, enrolment, revocation, nonces.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use vrs_domain::wire::EnrolResponse;
use vrs_domain::{DeviceId, MunicipalityCode};

use super::SqliteStore;
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::devices::{self, DeviceInfo, DeviceKey, DeviceRegistration, Enrolment};
use crate::store::codec::{municipality_code, time_of, time_text};
use crate::store::{Devices, jst_now};

fn device_id(s: &str) -> Result<DeviceId> {
    s.parse()
        .map(DeviceId)
        .map_err(|_| StoreError::Corrupt("device id".into()))
}

impl Devices for SqliteStore {
    /// Registers a tablet of `municipality` and gives out its first enrolment code.
    fn register_device(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        reg: &DeviceRegistration,
    ) -> Result<Enrolment> {
        let d = devices::new_device(actor, municipality, reg, jst_now())?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO sites (municipality, code, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (municipality, code) DO UPDATE SET name = excluded.name",
            params![municipality.get(), d.site_code, reg.site_name.trim()],
        )?;
        let n = tx.execute(
            "INSERT INTO devices (id, municipality, site_kind, site_code, email, address,
                 delivery, contact, notes, doses_per_day, created_at, enrol_hash, enrol_expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (email) DO NOTHING",
            params![
                d.id.to_string(),
                municipality.get(),
                d.site_kind,
                d.site_code,
                d.email,
                reg.address.trim(),
                reg.delivery.trim(),
                reg.contact.trim(),
                reg.notes.trim(),
                reg.doses_per_day,
                time_text(d.now),
                d.code_hash,
                time_text(d.code_expires),
            ],
        )?;
        if n == 0 {
            return Err(devices::email_taken(&d.email));
        }
        tx.commit()?;
        Ok(d.enrolment)
    }

    /// A new enrolment code for a tablet (lost slip, reset tablet). The tablet that
    /// enrols with it replaces any key registered before.
    fn reissue_enrolment(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        device: DeviceId,
    ) -> Result<Enrolment> {
        actor.require_staff_of(municipality)?;
        let (enrolment, hash, expires) = devices::new_enrolment(device, jst_now())?;
        let n = self.pool.get()?.execute(
            "UPDATE devices SET enrol_hash = ?1, enrol_expires = ?2
             WHERE id = ?3 AND municipality = ?4 AND revoked_at IS NULL",
            params![
                hash,
                time_text(expires),
                device.to_string(),
                municipality.get()
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no tablet {device} of {municipality} that is not revoked"
            )));
        }
        Ok(enrolment)
    }

    /// A tablet enrols: the code is used up, the key registered.
    fn enrol_device(&self, code: &str, public_key: &[u8]) -> Result<EnrolResponse> {
        let code = devices::normalise_code(code).ok_or_else(devices::code_refused)?;
        let now = jst_now();
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, i64, String, String, String)> = tx
            .query_row(
                "SELECT d.id, d.municipality, d.site_kind, d.site_code, d.enrol_expires
                 FROM devices d
                 WHERE d.enrol_hash = ?1 AND d.revoked_at IS NULL",
                [devices::code_hash(&code)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((id, m, kind, site_code, expires)) = row else {
            return Err(devices::code_refused());
        };
        if time_of(&expires)? <= now {
            return Err(devices::code_refused());
        }
        tx.execute(
            "UPDATE devices SET public_key = ?1, enrolled_at = ?2, enrol_hash = NULL,
                 enrol_expires = NULL WHERE id = ?3",
            params![public_key, time_text(now), id],
        )?;
        let (municipality_name, site_name): (String, Option<String>) = tx.query_row(
            "SELECT m.name, s.name FROM municipalities m
             LEFT JOIN sites s ON s.municipality = m.code AND s.code = ?2
             WHERE m.code = ?1",
            params![m, site_code],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.commit()?;
        Ok(EnrolResponse {
            device_id: device_id(&id)?,
            municipality: municipality_code(m)?,
            municipality_name,
            site: devices::site_ref(&kind, &site_code)?,
            site_name: site_name.unwrap_or(site_code),
        })
    }

    /// A device's key and standing, for checking a signed request.
    fn device_key(&self, device: DeviceId) -> Result<Option<DeviceKey>> {
        let row: Option<(i64, Option<Vec<u8>>, bool)> = self
            .pool
            .get()?
            .prepare_cached(
                "SELECT municipality, public_key, revoked_at IS NOT NULL FROM devices WHERE id = ?1",
            )?
            .query_row([device.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(m, public_key, revoked)| {
            Ok(DeviceKey {
                municipality: municipality_code(m)?,
                public_key,
                revoked,
            })
        })
        .transpose()
    }

    /// Records a signed request's nonce; `false` when the device used it before.
    fn use_nonce(&self, device: DeviceId, nonce: &[u8], now: i64) -> Result<bool> {
        let conn = self.pool.get()?;
        let id = device.to_string();
        conn.prepare_cached("DELETE FROM device_nonces WHERE device = ?1 AND seen_at < ?2")?
            .execute(params![
                id,
                now - 2 * vrs_domain::wire::signing::MAX_SKEW_SECS
            ])?;
        let n = conn
            .prepare_cached(
                "INSERT INTO device_nonces (device, nonce, seen_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![id, nonce, now])?;
        Ok(n == 1)
    }

    /// Revokes a tablet: every request it makes from now on is refused.
    fn revoke_device(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        device: DeviceId,
    ) -> Result<()> {
        actor.require_staff_of(municipality)?;
        let n = self.pool.get()?.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?1), enrol_hash = NULL,
                 enrol_expires = NULL
             WHERE id = ?2 AND municipality = ?3",
            params![time_text(jst_now()), device.to_string(), municipality.get()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no tablet {device} of {municipality}"
            )));
        }
        self.pool.get()?.execute(
            "DELETE FROM sessions WHERE device = ?1",
            [device.to_string()],
        )?;
        Ok(())
    }

    /// A municipality's tablets, newest first.
    fn devices(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
    ) -> Result<Vec<DeviceInfo>> {
        actor.require_staff_of(municipality)?;
        let now = jst_now();
        let conn = self.pool.get()?;
        let mut st = conn.prepare(
            "SELECT d.id, d.site_kind, d.site_code, coalesce(s.name, d.site_code), d.email,
                    d.address, d.delivery, d.contact, d.notes, d.doses_per_day,
                    d.enrol_expires, d.enrolled_at, d.revoked_at
             FROM devices d
             LEFT JOIN sites s ON s.municipality = d.municipality AND s.code = d.site_code
             WHERE d.municipality = ?1 ORDER BY d.created_at DESC, d.id",
        )?;
        let rows = st.query_map([municipality.get()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                [
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                ],
                r.get::<_, Option<u32>>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<String>>(11)?,
                r.get::<_, Option<String>>(12)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                kind,
                code,
                site_name,
                email,
                [address, delivery, contact, notes],
                dpd,
                exp,
                en,
                rev,
            ) = row?;
            let expires = exp.as_deref().map(time_of).transpose()?;
            out.push(DeviceInfo {
                device_id: device_id(&id)?,
                municipality,
                site: devices::site_ref(&kind, &code)?,
                site_name,
                email,
                address,
                delivery,
                contact,
                notes,
                doses_per_day: dpd,
                state: devices::state_of(en.is_some(), expires, rev.is_some(), now).into(),
                code_expires: exp,
                enrolled_at: en,
                revoked_at: rev,
            });
        }
        Ok(out)
    }
}
