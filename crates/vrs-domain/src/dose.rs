//! A dose record (接種記録): what a tablet sends for one vaccination, and nothing more.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{
    ClinicCode, DoseNumber, IdError, MunicipalityCode, OcrLine, VoucherKind, VoucherNumber,
    string_serde, trim_blank,
};
use crate::lot::{Lot, Vaccine};

/// The id a tablet gives a record when it saves it; the server is idempotent on it,
/// so a record sent twice is stored once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientRecordId(pub Uuid);

impl ClientRecordId {
    /// A new id, as a tablet makes one per record: a UUIDv7, time-ordered with 74
    /// random bits. Records made later sort later, so the service's unique index on
    /// (municipality, id) grows at its end instead of being written all over.
    pub fn new() -> Self {
        ClientRecordId(Uuid::now_v7())
    }
}

impl Default for ClientRecordId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ClientRecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id the server gives an enrolled tablet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceId(pub Uuid);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A mass-vaccination site's code, given by its municipality: 1 to 20 of A–Z, 0–9, '-'.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteCode(Box<str>);

impl SiteCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SiteCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        const WHAT: &str = "接種会場コード (site code)";
        let s = trim_blank(s);
        if s.is_empty() {
            return Err(IdError::Empty { what: WHAT });
        }
        if let Some((position, found)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(IdError::BadChar {
                what: WHAT,
                allowed: "A–Z, 0–9 and '-'",
                found,
                position: position + 1,
            });
        }
        if s.len() > 20 {
            return Err(IdError::Length {
                what: WHAT,
                expected: "1 to 20",
                got: s.len(),
            });
        }
        Ok(SiteCode(s.into()))
    }
}

impl fmt::Display for SiteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SiteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteCode({})", self.0)
    }
}
string_serde!(SiteCode);

/// Where the dose was given: a clinic (by its 医療機関コード) or a municipality's
/// mass-vaccination site (by the site code the municipality gave it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SiteRef {
    Clinic(ClinicCode),
    Site(SiteCode),
}

/// One vaccination as a tablet records it: the voucher's OCR fields plus the dose
/// data. This is everything a tablet may send (see architecture.md, "Contracts").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoseRecord {
    pub client_record_id: ClientRecordId,
    /// The municipality that issued the voucher (from the OCR line).
    pub municipality: MunicipalityCode,
    pub voucher: VoucherNumber,
    pub voucher_kind: VoucherKind,
    pub dose_number: DoseNumber,
    pub vaccinated_on: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
    pub site: SiteRef,
    pub device_id: DeviceId,
    /// The held record this one corrects, when a nurse corrected it on the
    /// tablet: the server marks that one superseded (it leaves the review queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<RecordRef>,
}

/// A stored record, by the municipality whose voucher it was recorded with and its
/// client record id.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRef {
    pub municipality: MunicipalityCode,
    pub client_record_id: ClientRecordId,
}

impl DoseRecord {
    /// The OCR line this record was made from.
    pub fn ocr_line(&self) -> OcrLine {
        OcrLine {
            kind: self.voucher_kind,
            dose: self.dose_number,
            municipality: self.municipality,
            number: self.voucher,
        }
    }

    /// Builds a record from a read voucher and the session's dose data.
    #[allow(clippy::too_many_arguments)]
    pub fn from_voucher(
        client_record_id: ClientRecordId,
        voucher: OcrLine,
        vaccinated_on: NaiveDate,
        vaccine: Vaccine,
        lot: Lot,
        site: SiteRef,
        device_id: DeviceId,
    ) -> Self {
        DoseRecord {
            client_record_id,
            municipality: voucher.municipality,
            voucher: voucher.number,
            voucher_kind: voucher.kind,
            dose_number: voucher.dose,
            vaccinated_on,
            vaccine,
            lot,
            site,
            device_id,
            supersedes: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> DoseRecord {
        DoseRecord::from_voucher(
            ClientRecordId(Uuid::from_u128(7)),
            "121310161234567890".parse().unwrap(),
            NaiveDate::from_ymd_opt(2021, 6, 1).unwrap(),
            Vaccine::Pfizer,
            "FA4597".parse().unwrap(),
            SiteRef::Clinic("0110113719".parse().unwrap()),
            DeviceId(Uuid::from_u128(9)),
        )
    }

    #[test]
    fn record_json_has_exactly_the_allowed_fields() {
        let v = serde_json::to_value(sample()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "client_record_id",
                "device_id",
                "dose_number",
                "lot",
                "municipality",
                "site",
                "vaccinated_on",
                "vaccine",
                "voucher",
                "voucher_kind"
            ]
        );
        assert_eq!(v["site"]["clinic"], "0110113719");
        assert_eq!(v["municipality"], "131016");
        let back: DoseRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
        assert_eq!(back.ocr_line().to_string(), "121310161234567890");
    }

    #[test]
    fn record_with_an_extra_field_is_refused() {
        let mut v = serde_json::to_value(sample()).unwrap();
        // A well-formed マイナンバー (eleven digits and their check digit): the field
        // is refused for being there, not for its value.
        let eleven = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1];
        let check = crate::my_number::MyNumber::check_digit(&eleven);
        let number: String = eleven
            .iter()
            .chain(std::iter::once(&check))
            .map(|d| char::from(b'0' + d))
            .collect();
        v["my_number"] = number.into();
        assert!(serde_json::from_value::<DoseRecord>(v).is_err());
    }

    #[test]
    fn record_with_a_bad_municipality_check_digit_is_refused() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["municipality"] = "131017".into();
        let err = serde_json::from_value::<DoseRecord>(v).unwrap_err();
        assert!(err.to_string().contains("check digit"), "{err}");
    }

    #[test]
    fn site_code_shape() {
        assert!("MASS-01".parse::<SiteCode>().is_ok());
        assert!("mass 01".parse::<SiteCode>().is_err());
    }
}
