//! Tablets on PostgreSQL: registration, enrolment, keys and nonces.

use chrono::NaiveDateTime;
use vrs_domain::wire::EnrolResponse;
use vrs_domain::{DeviceId, MunicipalityCode};

use super::{PgStore, mc};
use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::devices::{self, DeviceInfo, DeviceKey, DeviceRegistration, Enrolment};
use crate::store::codec::{municipality_code, time_text};
use crate::store::{Devices, jst_now};

impl Devices for PgStore {
    fn register_device(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        reg: &DeviceRegistration,
    ) -> Result<Enrolment> {
        let d = devices::new_device(actor, m, reg, jst_now())?;
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO vrs.sites (municipality, code, name) VALUES ($1, $2, $3)
             ON CONFLICT (municipality, code) DO UPDATE SET name = excluded.name",
            &[&mc(m), &d.site_code, &reg.site_name.trim()],
        )?;
        let dpd = reg.doses_per_day.map(|n| n.min(i32::MAX as u32) as i32);
        let n = tx.execute(
            "INSERT INTO vrs.devices (id, municipality, site_kind, site_code, email, address,
                 delivery, contact, notes, doses_per_day, created_at, enrol_hash, enrol_expires)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (email) DO NOTHING",
            &[
                &d.id.0,
                &mc(m),
                &d.site_kind,
                &d.site_code,
                &d.email,
                &reg.address.trim(),
                &reg.delivery.trim(),
                &reg.contact.trim(),
                &reg.notes.trim(),
                &dpd,
                &d.now,
                &d.code_hash,
                &d.code_expires,
            ],
        )?;
        if n == 0 {
            return Err(devices::email_taken(&d.email));
        }
        tx.commit()?;
        Ok(d.enrolment)
    }

    fn reissue_enrolment(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        device: DeviceId,
    ) -> Result<Enrolment> {
        actor.require_staff_of(m)?;
        let (enrolment, hash, expires) = devices::new_enrolment(device, jst_now())?;
        let n = self.main.get()?.execute(
            "UPDATE vrs.devices SET enrol_hash = $1, enrol_expires = $2
             WHERE id = $3 AND municipality = $4 AND revoked_at IS NULL",
            &[&hash, &expires, &device.0, &mc(m)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no tablet {device} of {m} that is not revoked"
            )));
        }
        Ok(enrolment)
    }

    fn enrol_device(&self, code: &str, public_key: &[u8]) -> Result<EnrolResponse> {
        let code = devices::normalise_code(code).ok_or_else(devices::code_refused)?;
        let now = jst_now();
        let mut conn = self.main.get()?;
        let mut tx = conn.transaction()?;
        // One statement takes the code: two tablets racing with it cannot both win.
        let row = tx.query_opt(
            "UPDATE vrs.devices SET public_key = $1, enrolled_at = $2, enrol_hash = NULL,
                 enrol_expires = NULL
             WHERE enrol_hash = $3 AND revoked_at IS NULL AND enrol_expires > $2
             RETURNING id, municipality, site_kind, site_code",
            &[&public_key, &now, &devices::code_hash(&code)],
        )?;
        let Some(row) = row else {
            return Err(devices::code_refused());
        };
        let id: uuid::Uuid = row.get(0);
        let m: i32 = row.get(1);
        let kind: String = row.get(2);
        let site_code: String = row.get(3);
        let names = tx.query_one(
            "SELECT m.name, s.name FROM vrs.municipalities m
             LEFT JOIN vrs.sites s ON s.municipality = m.code AND s.code = $2
             WHERE m.code = $1",
            &[&m, &site_code],
        )?;
        let municipality_name: String = names.get(0);
        let site_name: Option<String> = names.get(1);
        tx.commit()?;
        Ok(EnrolResponse {
            device_id: DeviceId(id),
            municipality: municipality_code(i64::from(m))?,
            municipality_name,
            site: devices::site_ref(&kind, &site_code)?,
            site_name: site_name.unwrap_or(site_code),
        })
    }

    fn device_key(&self, device: DeviceId) -> Result<Option<DeviceKey>> {
        let row = self.main.get()?.query_opt(
            "SELECT municipality, public_key, revoked_at IS NOT NULL FROM vrs.devices WHERE id = $1",
            &[&device.0],
        )?;
        row.map(|r| {
            Ok(DeviceKey {
                municipality: municipality_code(i64::from(r.get::<_, i32>(0)))?,
                public_key: r.get(1),
                revoked: r.get(2),
            })
        })
        .transpose()
    }

    fn use_nonce(&self, device: DeviceId, nonce: &[u8], now: i64) -> Result<bool> {
        let mut conn = self.main.get()?;
        conn.execute(
            "DELETE FROM vrs.device_nonces WHERE device = $1 AND seen_at < $2",
            &[
                &device.0,
                &(now - 2 * vrs_domain::wire::signing::MAX_SKEW_SECS),
            ],
        )?;
        let n = conn.execute(
            "INSERT INTO vrs.device_nonces (device, nonce, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&device.0, &nonce, &now],
        )?;
        Ok(n == 1)
    }

    fn revoke_device(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        device: DeviceId,
    ) -> Result<()> {
        actor.require_staff_of(m)?;
        let n = self.main.get()?.execute(
            "UPDATE vrs.devices SET revoked_at = coalesce(revoked_at, $1), enrol_hash = NULL,
                 enrol_expires = NULL
             WHERE id = $2 AND municipality = $3",
            &[&jst_now(), &device.0, &mc(m)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no tablet {device} of {m}")));
        }
        self.main
            .get()?
            .execute("DELETE FROM vrs.sessions WHERE device = $1", &[&device.0])?;
        Ok(())
    }

    fn devices(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<DeviceInfo>> {
        actor.require_staff_of(m)?;
        let now = jst_now();
        let t = |v: Option<NaiveDateTime>| v.map(time_text);
        let rows = self.main.get()?.query(
            "SELECT d.id, d.site_kind, d.site_code, coalesce(s.name, d.site_code), d.email,
                    d.address, d.delivery, d.contact, d.notes, d.doses_per_day,
                    d.enrol_expires, d.enrolled_at, d.revoked_at
             FROM vrs.devices d
             LEFT JOIN vrs.sites s ON s.municipality = d.municipality AND s.code = d.site_code
             WHERE d.municipality = $1 ORDER BY d.created_at DESC, d.id",
            &[&mc(m)],
        )?;
        rows.iter()
            .map(|r| {
                let kind: String = r.get(1);
                let code: String = r.get(2);
                let expires: Option<NaiveDateTime> = r.get(10);
                let enrolled: Option<NaiveDateTime> = r.get(11);
                let revoked: Option<NaiveDateTime> = r.get(12);
                Ok(DeviceInfo {
                    device_id: DeviceId(r.get(0)),
                    municipality: m,
                    site: devices::site_ref(&kind, &code)?,
                    site_name: r.get(3),
                    email: r.get(4),
                    address: r.get(5),
                    delivery: r.get(6),
                    contact: r.get(7),
                    notes: r.get(8),
                    doses_per_day: r.get::<_, Option<i32>>(9).map(|n| n.max(0) as u32),
                    state: devices::state_of(enrolled.is_some(), expires, revoked.is_some(), now)
                        .into(),
                    code_expires: t(expires),
                    enrolled_at: t(enrolled),
                    revoked_at: t(revoked),
                })
            })
            .collect()
    }
}
