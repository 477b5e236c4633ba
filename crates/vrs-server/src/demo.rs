//! The demo municipality, so that the system can be tried at once: Chiyoda (131016)
//! with a few thousand synthetic residents, its transfer contact, a clinic and the
//! demo lots, plus a staff token and a tablet token.

use std::io::Write;

use chrono::NaiveDate;
use uuid::Uuid;
use vrs_domain::csv::OutputEncoding;
use vrs_domain::synth::{RegisterSpec, write_register};
use vrs_domain::{DeviceId, MunicipalityCode, Vaccine};

use crate::backend::Store;
use crate::error::StoreError;
use crate::principal::Principal;
use crate::store::{ImportOptions, ImportReport};

pub const DEMO_MUNICIPALITY: &str = "131016";
/// A Tokyo clinic code with a valid check digit.
pub const DEMO_CLINIC: &str = "1312345679";
pub const DEMO_STAFF: &str = "demo@city.chiyoda.lg.jp";
pub const DEMO_DEVICE: DeviceId =
    DeviceId(Uuid::from_u128(0x7AB1_E700_0000_0000_0000_0000_0000_0001));

/// What the demo made: the import report and the two tokens.
#[derive(Debug)]
pub struct Demo {
    pub municipality: MunicipalityCode,
    pub report: ImportReport,
    pub staff_token: String,
    pub tablet_token: String,
}

/// Seeds the demo (idempotent: a second run finds the register unchanged).
pub fn seed(store: &dyn Store, residents: u64) -> Result<Demo, StoreError> {
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
    for (vaccine, lot, expiry) in [
        (Vaccine::Pfizer, "FA4597", (2030, 12, 31)),
        (Vaccine::Pfizer, "EY0572", (2021, 8, 31)),
        (Vaccine::Moderna, "3004667", (2030, 12, 31)),
    ] {
        let lot = lot
            .parse()
            .map_err(|_| StoreError::Invalid("demo lot".into()))?;
        let expiry = NaiveDate::from_ymd_opt(expiry.0, expiry.1, expiry.2)
            .ok_or_else(|| StoreError::Invalid("demo expiry".into()))?;
        store.add_lot(&system, vaccine, &lot, expiry)?;
    }
    let mut csv = Vec::new();
    write_register(
        &mut csv,
        &RegisterSpec {
            seed: 131016,
            rows: residents,
            first_person_id: 100_000_001,
            first_voucher: 1_310_160_001,
            bad_every: 0,
            header: true,
            encoding: OutputEncoding::Cp932,
        },
    )
    .map_err(|e| StoreError::Invalid(e.to_string()))?;
    csv.flush()?;
    let report = store.import_register(&system, m, &mut &csv[..], &ImportOptions::default())?;
    let staff_token = store.create_token(
        &system,
        &Principal::Staff {
            municipality: m,
            user: DEMO_STAFF.into(),
        },
    )?;
    let tablet_token = store.create_token(
        &system,
        &Principal::Device {
            municipality: m,
            device: DEMO_DEVICE,
        },
    )?;
    Ok(Demo {
        municipality: m,
        report,
        staff_token,
        tablet_token,
    })
}
