//! The store: every operation of the service as a few traits, one per feature, that
//! both backends implement directly ([`crate::sqlite::SqliteStore`] and
//! [`crate::postgres::PgStore`]); the types they share; and the engines that run once
//! for every backend over small "sinks": [`import`] (register and paper uploads),
//! [`ingest`] (tablet batches). The decisions inside the engines are plain functions
//! in [`crate::rules`]. The HTTP layer and the tests hold a `dyn Store`, so both
//! backends answer the same requests and pass the same test suite.
//!
//! A feature keeps one name in every layer: `store::Records` is implemented in
//! `sqlite/records.rs` and `postgres/records.rs`.

use std::io::{Read, Write};

use chrono::NaiveDate;
use serde::Serialize;
use vrs_domain::csv::{Encoding, OutputEncoding, RowError};
use vrs_domain::wire::{
    EnrolResponse, HoldReason, LotEntry, NameLookupRequest, NameLookupResponse, Outcome, Receipt,
    UploadBatch,
};
use vrs_domain::{
    ClientRecordId, DeviceId, DoseNumber, Lot, MunicipalityCode, MyNumber, RegistrationStatus,
    Vaccine, VoucherNumber,
};

use crate::error::{Result, StoreError};
use crate::principal::Principal;
use crate::rules::access::{Contact, Session, SignIn, User};
use crate::rules::checks::PriorDose;
use crate::rules::devices::{DeviceInfo, DeviceKey, DeviceRegistration, Enrolment};

pub mod audit;
pub mod codec;
pub mod import;
pub mod ingest;
pub mod lots;
pub mod records;
pub mod vault;

pub use vrs_domain::date::{jst_now, today_jst};

/// Every operation of the service. Each takes the acting principal and checks it first.
pub trait Store:
    Register
    + Lots
    + Records
    + Ledger
    + Transfer
    + Vault
    + Access
    + Devices
    + Send
    + Sync
    + std::fmt::Debug
{
    /// The access log.
    fn audit(&self) -> &dyn audit::AuditLog;
}

/// The register of a municipality: the municipality itself, its sites, the people
/// (imported from CSV) and the name a tablet shows.
pub trait Register {
    fn upsert_municipality(
        &self,
        actor: &Principal,
        code: MunicipalityCode,
        name: &str,
        transfer_contact: &str,
    ) -> Result<()>;
    fn add_site(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        code: &str,
        name: &str,
    ) -> Result<()>;
    fn sites(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<Site>>;
    fn import_register(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport>;
    fn import_errors_csv(&self, actor: &Principal, import_id: i64) -> Result<String>;
    fn lookup_name(
        &self,
        actor: &Principal,
        req: &NameLookupRequest,
    ) -> Result<Option<NameLookupResponse>>;
    fn person_count(&self, actor: &Principal, municipality: MunicipalityCode) -> Result<u64>;
}

/// The lot master: one list for the country, kept by the operator; every record's
/// lot is checked against it (see [`lots`]).
pub trait Lots {
    /// Runs `step` over the lot master in one write transaction, which the backend
    /// commits if `step` answers true (and rolls back otherwise).
    fn change_lots(&self, actor: &Principal, step: &mut lots::LotStep<'_>) -> Result<()>;
    /// Adds a lot, or changes its expiry and GTIN.
    fn add_lot(&self, actor: &Principal, lot: &LotEntry) -> Result<()> {
        self.change_lots(actor, &mut |sink| sink.put(lot).map(|()| true))
    }
    /// Adds or changes the lots of a CSV file (see [`lots::import`]).
    fn import_lots(
        &self,
        actor: &Principal,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        let mut report = None;
        self.change_lots(actor, &mut |sink| {
            let r = report.insert(lots::import(&mut *input, opts, sink)?);
            Ok(r.outcome == ImportOutcome::Applied)
        })?;
        report.ok_or_else(|| StoreError::Corrupt("the lot import was not run".into()))
    }
    /// The whole master, by vaccine and lot: for the operator, staff and tablets.
    fn lots(&self, actor: &Principal) -> Result<Vec<LotEntry>>;
}

/// Dose records: tablet batches, paper uploads, and the review of held records.
pub trait Records {
    fn ingest(
        &self,
        actor: &Principal,
        batch: &UploadBatch,
        today: NaiveDate,
    ) -> Result<Vec<Receipt>>;
    fn import_paper(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport>;
    fn held(&self, actor: &Principal, municipality: MunicipalityCode) -> Result<Vec<HeldRecord>>;
    /// One review step by `actor` on `municipality`'s records (void, release,
    /// amend), run by the engine in [`records`] over the backend's sink, in one
    /// write transaction that the backend opens after checking the actor.
    fn review(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        step: &mut records::ReviewStep<'_>,
    ) -> Result<()>;
    /// Voids a record: see [`records::void`].
    fn void(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        id: ClientRecordId,
        reason: &str,
    ) -> Result<()> {
        self.review(actor, municipality, &mut |sink| {
            records::void(sink, actor, id, reason)
        })
    }
    /// Amends a record: see [`records::amend`].
    fn amend(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        id: ClientRecordId,
        change: &Amendment,
        reason: &str,
        today: NaiveDate,
    ) -> Result<Outcome> {
        let mut outcome = None;
        self.review(actor, municipality, &mut |sink| {
            outcome = Some(records::amend(sink, actor, id, change, reason, today)?);
            Ok(())
        })?;
        outcome.ok_or_else(|| StoreError::Corrupt("the amendment was not run".into()))
    }
    /// Accepts a held record as it is: see [`records::release`].
    fn release(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        id: ClientRecordId,
        reason: &str,
    ) -> Result<()> {
        self.review(actor, municipality, &mut |sink| {
            records::release(sink, actor, id, reason)
        })
    }
}

/// The ledger export.
pub trait Ledger {
    fn export_ledger(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        from: NaiveDate,
        to: NaiveDate,
        encoding: OutputEncoding,
        out: &mut dyn Write,
    ) -> Result<u64>;
}

/// The transfer (転入) look-up by マイナンバー.
pub trait Transfer {
    fn transfer_lookup(&self, actor: &Principal, n: &MyNumber) -> Result<Vec<TransferMatch>>;
}

/// The マイナンバー vault's own checks (no digits leave it but through these).
pub trait Vault {
    /// How many numbers the vault holds (for checks and benchmarks; no personal data).
    fn vault_count(&self) -> Result<u64>;
    /// Decrypts a person's number (the vault's own round-trip check).
    fn vault_reveal(
        &self,
        municipality: MunicipalityCode,
        person: &vrs_domain::PersonId,
    ) -> Result<Option<MyNumber>>;
}

/// Staff access: tokens, users, contacts, passcode sign-in and sessions.
pub trait Access {
    fn create_token(&self, actor: &Principal, for_whom: &Principal) -> Result<String>;
    fn principal_for_token(&self, token: &str) -> Result<Option<Principal>>;
    /// Adds or changes a municipal user (様式1 rules); the users after the change.
    fn put_user(&self, actor: &Principal, m: MunicipalityCode, user: &User) -> Result<Vec<User>>;
    /// Removes a user, named by their e-mail address (their sessions end); refused
    /// if they are the transfer contact and others remain. The users after it.
    fn remove_user(&self, actor: &Principal, m: MunicipalityCode, user: &str) -> Result<Vec<User>>;
    fn users(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<User>>;
    fn put_contact(&self, actor: &Principal, m: MunicipalityCode, c: &Contact) -> Result<()>;
    fn contacts(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<Contact>>;
    /// A user's municipality and sign-in state (the sign-in's own use: no actor).
    fn signin_state(&self, email: &str) -> Result<Option<(MunicipalityCode, SignIn)>>;
    /// Replaces the sign-in state `old` by `new`, only if it is still `old` (two
    /// requests racing cannot both use a passcode or lose a miss): `false` if not.
    fn save_signin(&self, email: &str, old: &SignIn, new: &SignIn) -> Result<bool>;
    /// Starts a session (a staff member's, or a tablet user's) under a token hash.
    fn create_session(&self, token_hash: &[u8], session: &Session) -> Result<()>;
    /// The live session of a token hash, its idle clock restarted.
    fn session(&self, token_hash: &[u8]) -> Result<Option<Session>>;
    fn end_session(&self, token_hash: &[u8]) -> Result<()>;
    /// A tablet's e-mail and its user's sign-in state.
    fn device_signin(&self, device: DeviceId) -> Result<Option<(String, SignIn)>>;
    fn save_device_signin(&self, device: DeviceId, old: &SignIn, new: &SignIn) -> Result<bool>;
}

/// Tablets: registration, enrolment, their keys and signed requests.
pub trait Devices {
    /// Registers a tablet of `municipality`; its first enrolment code, shown once.
    fn register_device(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        reg: &DeviceRegistration,
    ) -> Result<Enrolment>;
    /// A new enrolment code for a tablet that is not revoked.
    fn reissue_enrolment(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        device: DeviceId,
    ) -> Result<Enrolment>;
    /// A tablet enrols with its code (which is the only credential here) and key.
    fn enrol_device(&self, code: &str, public_key: &[u8]) -> Result<EnrolResponse>;
    /// A device's key and standing, for checking its signed requests.
    fn device_key(&self, device: DeviceId) -> Result<Option<DeviceKey>>;
    /// Records a signed request's nonce (Unix seconds `now`); `false` if seen before.
    fn use_nonce(&self, device: DeviceId, nonce: &[u8], now: i64) -> Result<bool>;
    fn revoke_device(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        device: DeviceId,
    ) -> Result<()>;
    fn devices(&self, actor: &Principal, municipality: MunicipalityCode)
    -> Result<Vec<DeviceInfo>>;
}

/// How strictly an upload is applied.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// A file with any bad row is rejected whole.
    #[default]
    Strict,
    /// The good rows are applied; the bad ones come back in the error CSV.
    Partial,
}

#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    pub mode: ImportMode,
    pub dry_run: bool,
    pub encoding: Encoding,
    pub today: NaiveDate,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mode: ImportMode::Strict,
            dry_run: false,
            encoding: Encoding::Auto,
            today: today_jst(),
        }
    }
}

/// What happened to an uploaded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    Applied,
    Rejected,
    DryRun,
}

/// The report of a register or paper-record upload.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub import_id: i64,
    pub outcome: ImportOutcome,
    #[schema(value_type = String)]
    pub encoding: &'static str,
    pub rows: u64,
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Rows whose flag changed a person's status (paper uploads: records held).
    pub flagged: u64,
    pub rejected: u64,
    pub warnings: Vec<String>,
    /// The first [`MAX_REPORTED_ERRORS`] bad rows; all of them are in the error CSV.
    pub errors: Vec<RowError>,
    pub errors_truncated: bool,
    /// What the file did (or, not applied, would have done), in words.
    pub summary: Texts,
}

/// A text for a person, in Japanese and English.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Texts {
    pub ja: String,
    pub en: String,
}

/// How many row errors a report carries inline.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// One dose held by another municipality, as the transfer look-up shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TransferDose {
    pub dose_number: Option<u8>,
    #[schema(value_type = String, format = Date)]
    pub vaccinated_on: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
    pub site_municipality: MunicipalityCode,
    pub site_name: String,
}

/// What another municipality holds for the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TransferMatch {
    pub municipality: MunicipalityCode,
    pub municipality_name: String,
    /// 転出入連絡先: whom to call when something is unclear.
    pub transfer_contact: String,
    pub doses: Vec<TransferDose>,
}

/// A record held for review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HeldRecord {
    pub client_record_id: ClientRecordId,
    pub voucher: VoucherNumber,
    pub dose_number: Option<u8>,
    #[schema(value_type = String, format = Date)]
    pub vaccinated_on: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
    pub reason: HoldReason,
    pub detail: String,
    pub registered_at: String,
}

/// A change to a stored dose record.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Amendment {
    /// The 券番号, when the voucher was misread or mistyped (same municipality).
    pub voucher: Option<VoucherNumber>,
    pub vaccinated_on: Option<NaiveDate>,
    pub dose_number: Option<DoseNumber>,
    pub vaccine: Option<Vaccine>,
    pub lot: Option<Lot>,
}

/// The person a voucher belongs to, and what the checks need about them.
#[derive(Debug)]
pub struct Match {
    pub person_id: Option<String>,
    pub status: Option<RegistrationStatus>,
    pub prior: Vec<PriorDose>,
}

impl Match {
    /// No one holds the voucher.
    pub fn nobody() -> Self {
        Match {
            person_id: None,
            status: None,
            prior: Vec::new(),
        }
    }
}

/// A site (mass-vaccination site or clinic) of a municipality.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The site code, or the clinic's 10-digit code.
    pub code: String,
    pub name: String,
}

/// A numbered migration of one database, from that backend's `migrations/` folder.
/// Never edit one that has shipped: add the next number.
pub(crate) struct Migration {
    pub version: i64,
    pub sql: &'static str,
}
