//! Column codecs shared by both backends: how a value is written to a column and
//! read back, with stored data that does not fit reported as corrupt.

use chrono::{NaiveDate, NaiveDateTime};
use vrs_domain::wire::HoldReason;
use vrs_domain::{MunicipalityCode, PersonId, RegistrationStatus, RemovalReason};

use super::ImportOutcome;
use crate::error::{Result, StoreError};

use vrs_domain::date::TIME_FORMAT;
/// A time as the embedded store keeps it (and as the API shows it).
pub(crate) use vrs_domain::date::format_time as time_text;

/// A time the embedded store kept.
pub(crate) fn time_of(s: &str) -> Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .map_err(|_| StoreError::Corrupt(format!("time {s:?}")))
}

pub(crate) fn municipality_code(v: i64) -> Result<MunicipalityCode> {
    format!("{v:06}")
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("municipality code {v}")))
}

pub(crate) fn person(v: &str) -> Result<PersonId> {
    v.parse()
        .map_err(|_| StoreError::Corrupt("person id".into()))
}

pub(crate) fn status_text(s: RegistrationStatus) -> &'static str {
    match s {
        RegistrationStatus::Active => "active",
        RegistrationStatus::Removed(RemovalReason::MovedOut) => "moved_out",
        RegistrationStatus::Removed(RemovalReason::Deceased) => "deceased",
        RegistrationStatus::Removed(RemovalReason::Other) => "removed",
    }
}

pub(crate) fn status_of(s: &str) -> RegistrationStatus {
    match s {
        "moved_out" => RegistrationStatus::Removed(RemovalReason::MovedOut),
        "deceased" => RegistrationStatus::Removed(RemovalReason::Deceased),
        "removed" => RegistrationStatus::Removed(RemovalReason::Other),
        _ => RegistrationStatus::Active,
    }
}

pub(crate) fn date_of(s: &str) -> Result<NaiveDate> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("date {s:?}")))
}

pub(crate) fn hold_code(r: HoldReason) -> &'static str {
    match r {
        HoldReason::UnknownVoucher => "unknown_voucher",
        HoldReason::MissingEarlierDose => "missing_earlier_dose",
        HoldReason::BeforePreviousDose => "before_previous_dose",
        HoldReason::DateInFuture => "date_in_future",
        HoldReason::LotExpired => "lot_expired",
        HoldReason::PersonMovedOut => "person_moved_out",
        HoldReason::PersonDeceased => "person_deceased",
        HoldReason::PersonRemoved => "person_removed",
        HoldReason::DoseAlreadyRecorded => "dose_already_recorded",
        HoldReason::LotUnknown => "lot_unknown",
    }
}

/// A lot of the master from its columns.
pub(crate) fn lot_entry(
    vaccine: &str,
    lot: &str,
    expiry: NaiveDate,
    gtin: Option<&str>,
) -> Result<vrs_domain::wire::LotEntry> {
    Ok(vrs_domain::wire::LotEntry {
        vaccine: vaccine
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("vaccine {vaccine:?}")))?,
        lot: lot
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("lot {lot:?}")))?,
        expiry,
        gtin: gtin
            .map(|g| g.parse())
            .transpose()
            .map_err(|_| StoreError::Corrupt("GTIN".into()))?,
    })
}

/// A verdict as the `state`, `hold_reason` and `hold_detail` columns.
pub(crate) fn verdict_columns(
    v: &super::records::Verdict,
) -> (&'static str, Option<&'static str>, Option<&str>) {
    match v {
        Ok(()) => ("accepted", None, None),
        Err((r, detail)) => ("held", Some(hold_code(*r)), Some(detail.as_str())),
    }
}

pub(crate) fn hold_of(s: &str) -> Result<HoldReason> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("hold reason {s:?}")))
}

pub(crate) fn outcome_text(o: ImportOutcome) -> &'static str {
    match o {
        ImportOutcome::Applied => "applied",
        ImportOutcome::Rejected => "rejected",
        ImportOutcome::DryRun => "dry_run",
    }
}

pub(crate) fn write_error(e: vrs_domain::csv::WriteError) -> StoreError {
    match e {
        vrs_domain::csv::WriteError::Io(e) => StoreError::Io(e),
        other => StoreError::Invalid(other.to_string()),
    }
}
