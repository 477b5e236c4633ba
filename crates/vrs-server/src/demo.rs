//! The demo municipality, so that the system can be tried at once: Chiyoda (131016)
//! with a few thousand synthetic residents, its transfer contact, a clinic and the
//! demo lots, plus a staff token and a registered tablet with its enrolment code.

use std::io::Write;

use vrs_domain::csv::OutputEncoding;
use vrs_domain::synth::{RegisterSpec, write_register};
use vrs_domain::{DeviceId, MunicipalityCode, SiteRef};

use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::devices::DeviceRegistration;
use crate::store::Store;
use crate::store::{ImportOptions, ImportReport};

pub const DEMO_MUNICIPALITY: &str = "131016";
/// A Tokyo clinic code with a valid check digit.
pub const DEMO_CLINIC: &str = "1312345679";
/// The demo register's first 券番号; resident i has this + i.
pub const DEMO_FIRST_VOUCHER: u64 = 1_310_160_001;
pub const DEMO_STAFF: &str = "demo@city.chiyoda.lg.jp";
/// The demo clinic's tablet's e-mail.
pub const DEMO_TABLET_EMAIL: &str = "tablet1@clinic.example.jp";

/// What the demo made: the import report, the staff token, and the demo tablet with
/// its enrolment code (none when the tablet enrolled on an earlier run).
#[derive(Debug)]
pub struct Demo {
    pub municipality: MunicipalityCode,
    pub report: ImportReport,
    pub staff_token: String,
    pub tablet: DeviceId,
    pub enrolment_code: Option<String>,
}

/// Seeds the demo (idempotent: a second run finds the register unchanged).
pub fn seed(store: &dyn Store, residents: u64) -> Result<Demo> {
    let m: MunicipalityCode = DEMO_MUNICIPALITY
        .parse()
        .map_err(|_| StoreError::Invalid("demo municipality code".into()))?;
    let system = Principal::System;
    store.upsert_municipality(
        &system,
        m,
        "東京都千代田区 (デモ)",
        "千代田区 保健所 予防接種担当 03-0000-0000",
    )?;
    store.add_site(&system, m, DEMO_CLINIC, "千代田デモクリニック")?;
    // The demo's lots go into the lot master as the operator's file would
    // (`vrs admin lot import`).
    let lots = "ワクチンメーカー,ロット番号,有効期限,GTIN\n\
                ファイザー,FA4597,2030-12-31,04987123456784\n\
                ファイザー,EY0572,2021-08-31,\n\
                ファイザー,EU7814,2023-01-02,\n\
                武田/モデルナ,3004667,2030-12-31,\n";
    let report = store.import_lots(&system, &mut lots.as_bytes(), &ImportOptions::default())?;
    if report.rejected > 0 {
        return Err(StoreError::Invalid(format!(
            "demo lots: {:?}",
            report.errors
        )));
    }
    let mut csv = Vec::new();
    write_register(
        &mut csv,
        &RegisterSpec {
            seed: 131016,
            rows: residents,
            first_person_id: 100_000_001,
            first_voucher: DEMO_FIRST_VOUCHER,
            bad_every: 0,
            header: true,
            encoding: OutputEncoding::Cp932,
        },
    )
    .map_err(|e| StoreError::Invalid(e.to_string()))?;
    csv.flush()?;
    let report = store.import_register(&system, m, &mut &csv[..], &ImportOptions::default())?;
    if store.users(&system, m)?.is_empty() {
        store.put_user(
            &system,
            m,
            &crate::rules::access::User {
                email: DEMO_STAFF.into(),
                team: "保健所 予防接種担当".into(),
                person: "デモ 太郎".into(),
                phone: "03-0000-0000".into(),
                transfer_contact: true,
            },
        )?;
    }
    let staff_token = store.create_token(
        &system,
        &Principal::Staff {
            municipality: m,
            user: DEMO_STAFF.into(),
        },
    )?;
    let known = store
        .devices(&system, m)?
        .into_iter()
        .find(|d| d.email == DEMO_TABLET_EMAIL);
    let (tablet, enrolment_code) = match known {
        Some(d) if d.state == "enrolled" => (d.device_id, None),
        Some(d) => {
            let e = store.reissue_enrolment(&system, m, d.device_id)?;
            (e.device_id, Some(e.code.clone()))
        }
        None => {
            let clinic = DEMO_CLINIC
                .parse()
                .map_err(|_| StoreError::Invalid("demo clinic code".into()))?;
            let e = store.register_device(
                &system,
                m,
                &DeviceRegistration {
                    site: SiteRef::Clinic(clinic),
                    site_name: "千代田デモクリニック".into(),
                    address: "東京都千代田区千代田1-1".into(),
                    email: DEMO_TABLET_EMAIL.into(),
                    delivery: "千代田デモクリニック 受付".into(),
                    contact: "デモ 花子 03-0000-0001".into(),
                    notes: "demo".into(),
                    doses_per_day: Some(60),
                },
            )?;
            (e.device_id, Some(e.code.clone()))
        }
    };
    Ok(Demo {
        municipality: m,
        report,
        staff_token,
        tablet,
        enrolment_code,
    })
}
