//! What crosses the network between a tablet and the server. A tablet sends dose
//! records and asks for a name; it gets back receipts and a name, nothing else.

use serde::{Deserialize, Serialize};

use crate::dose::{ClientRecordId, DoseRecord};
use crate::ids::{MunicipalityCode, VoucherNumber};

/// The most records one upload may carry; a tablet splits its outbox into batches.
pub const MAX_BATCH: usize = 1000;

/// `POST` body of a tablet's record upload.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadBatch {
    pub records: Vec<DoseRecord>,
}

/// The answer to an upload: one receipt per record, in the order sent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadResponse {
    pub receipts: Vec<Receipt>,
}

/// What became of one record. A tablet may forget a record only once it holds a
/// receipt for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub client_record_id: ClientRecordId,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Stored and matched to a registered person.
    Accepted,
    /// Already stored under this client record id; nothing changed.
    Duplicate,
    /// Stored, but held for the municipality's review.
    Held { reason: HoldReason, detail: String },
    /// Not stored: the record cannot come from this tablet (it names a site the
    /// tablet is not registered for). `detail` says what to do.
    Refused { detail: String },
}

/// Why a record is held for review rather than accepted. A held record is never dropped.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// No registered person has this (municipality code, 券番号).
    UnknownVoucher,
    /// A dose after the first with no earlier dose on record.
    MissingEarlierDose,
    /// Dated before the person's previous dose.
    BeforePreviousDose,
    /// Dated after today.
    DateInFuture,
    /// The lot had expired on the date of vaccination.
    LotExpired,
    /// The person has moved out (flag 1).
    PersonMovedOut,
    /// The person has died (flag 2).
    PersonDeceased,
    /// The person was removed for another reason (flag 3).
    PersonRemoved,
    /// The person already has a different record for this dose number.
    DoseAlreadyRecorded,
    /// The lot is not in the operator's lot master.
    LotUnknown,
}

impl HoldReason {
    /// A sentence for the review queue and the tablet's outbox screen.
    pub fn describe_ja(self) -> &'static str {
        match self {
            HoldReason::UnknownVoucher => "この券番号の接種対象者が登録されていません",
            HoldReason::MissingEarlierDose => "前回の接種記録がありません",
            HoldReason::BeforePreviousDose => "接種日が前回の接種日より前です",
            HoldReason::DateInFuture => "接種日が未来の日付です",
            HoldReason::LotExpired => "接種日にロットの有効期限が切れています",
            HoldReason::PersonMovedOut => "接種対象者は転出済みです",
            HoldReason::PersonDeceased => "接種対象者は死亡となっています",
            HoldReason::PersonRemoved => "接種対象者は削除済みです",
            HoldReason::DoseAlreadyRecorded => "この回数の接種記録が既にあります",
            HoldReason::LotUnknown => "ロット番号がロット一覧にありません",
        }
    }

    /// The same sentence in English.
    pub fn describe_en(self) -> &'static str {
        match self {
            HoldReason::UnknownVoucher => "No registered person has this voucher number",
            HoldReason::MissingEarlierDose => "The earlier dose is not on record",
            HoldReason::BeforePreviousDose => "Dated before the previous dose",
            HoldReason::DateInFuture => "The date of vaccination is in the future",
            HoldReason::LotExpired => "The lot had expired on the date of vaccination",
            HoldReason::PersonMovedOut => "The person has moved out",
            HoldReason::PersonDeceased => "The person is recorded as deceased",
            HoldReason::PersonRemoved => "The person has been removed from the register",
            HoldReason::DoseAlreadyRecorded => "This dose is already on record",
            HoldReason::LotUnknown => "The lot is not in the lot master",
        }
    }

    /// Every reason, for catalogues and tests.
    pub const ALL: [HoldReason; 10] = [
        HoldReason::UnknownVoucher,
        HoldReason::MissingEarlierDose,
        HoldReason::BeforePreviousDose,
        HoldReason::DateInFuture,
        HoldReason::LotExpired,
        HoldReason::PersonMovedOut,
        HoldReason::PersonDeceased,
        HoldReason::PersonRemoved,
        HoldReason::DoseAlreadyRecorded,
        HoldReason::LotUnknown,
    ];
}

/// One lot of the operator's lot master (`GET /api/tablet/lots`, `GET /api/lots`):
/// a tablet offers these at set-up and takes the expiry from here.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LotEntry {
    pub vaccine: crate::Vaccine,
    pub lot: crate::Lot,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub expiry: chrono::NaiveDate,
    /// The product's GTIN, when known (it ties a scanned GS1 label to the lot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<crate::gs1::Gtin>,
}

/// `POST` body of the tablet's name look-up: which voucher was scanned.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameLookupRequest {
    pub municipality: MunicipalityCode,
    pub voucher: VoucherNumber,
}

/// The name shown on the confirmation screen: the only personal data a tablet sees.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameLookupResponse {
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub family_kana: Option<String>,
    pub given_kana: Option<String>,
}

/// `POST /api/tablet/enrol`: a tablet presents the one-time enrolment code its
/// municipality was given and the public half of the Ed25519 key pair it just made.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The enrolment code as shown (`ABCD-EFGH-JKMN-PQRS`; case, spaces and dashes do not matter).
    pub code: String,
    /// The tablet's Ed25519 public key: 32 bytes as 64 hex digits.
    pub public_key: String,
}

impl std::fmt::Debug for EnrolRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The code is a credential until it is used.
        f.debug_struct("EnrolRequest")
            .field("code", &"<redacted>")
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// What an enrolled tablet is told about itself: its id, and where its doses are given.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub device_id: crate::DeviceId,
    pub municipality: MunicipalityCode,
    pub municipality_name: String,
    /// The clinic or mass-vaccination site the tablet was registered for.
    pub site: crate::SiteRef,
    pub site_name: String,
}

/// `POST /api/tablet/signin/verify`: the passcode mailed to the tablet's e-mail.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabletSignIn {
    pub passcode: String,
}

impl std::fmt::Debug for TabletSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TabletSignIn { passcode: <redacted> }")
    }
}

/// A tablet user's session: send `session` as `x-vrs-session` with name look-ups.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletSession {
    pub session: String,
    /// Seconds until it ends at the latest (it also ends when idle).
    pub expires_in: u64,
}

impl std::fmt::Debug for TabletSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabletSession")
            .field("session", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// How a tablet signs its requests. Every request to `/api/tablet/…` (except the
/// enrolment itself) carries four headers; the server checks the signature with the
/// public key registered at enrolment, refuses a time more than [`MAX_SKEW_SECS`]
/// away from its own, and refuses a nonce it has seen from that device already
/// (replay). The signed text is [`message`].
pub mod signing {
    /// The enrolled device's id.
    pub const DEVICE: &str = "x-vrs-device";
    /// Seconds since the Unix epoch when the request was made.
    pub const TIME: &str = "x-vrs-time";
    /// 16 random bytes as 32 hex digits, never reused.
    pub const NONCE: &str = "x-vrs-nonce";
    /// The Ed25519 signature of [`message`], 64 bytes as 128 hex digits.
    pub const SIGNATURE: &str = "x-vrs-signature";
    /// How far a request's time may be from the server's.
    pub const MAX_SKEW_SECS: i64 = 300;
    /// The tablet user's session token (from `/api/tablet/signin/verify`), which the
    /// name look-up needs besides the device's signature.
    pub const SESSION: &str = "x-vrs-session";

    /// The text a tablet signs: the method, the path with its query, the time, the
    /// nonce and the SHA-256 of the body (hex), one per line after a version tag.
    pub fn message(
        method: &str,
        path_and_query: &str,
        time: i64,
        nonce: &str,
        body_sha256_hex: &str,
    ) -> String {
        format!("vrs-sig-v1\n{method}\n{path_and_query}\n{time}\n{nonce}\n{body_sha256_hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dose::tests::sample;

    #[test]
    fn receipts_serialise_with_a_flat_outcome_tag() {
        let r = Receipt {
            client_record_id: sample().client_record_id,
            outcome: Outcome::Held {
                reason: HoldReason::LotExpired,
                detail: "lot FA4597 expired 2021-05-31".into(),
            },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["outcome"], "held");
        assert_eq!(v["reason"], "lot_expired");
        let back: Receipt = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let ok = serde_json::to_value(Receipt {
            client_record_id: sample().client_record_id,
            outcome: Outcome::Duplicate,
        })
        .unwrap();
        assert_eq!(ok["outcome"], "duplicate");
    }

    #[test]
    fn batch_round_trips_and_refuses_unknown_fields() {
        let b = UploadBatch {
            records: vec![sample()],
        };
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(serde_json::from_value::<UploadBatch>(v.clone()).unwrap(), b);
        let mut extra = v;
        extra["name"] = "山田".into();
        assert!(serde_json::from_value::<UploadBatch>(extra).is_err());
    }
}
