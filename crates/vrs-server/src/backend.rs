//! Every operation of the service, as one trait with two implementations: the
//! embedded SQLite store ([`crate::SqliteStore`]) and PostgreSQL
//! ([`crate::pg::PgStore`]). The HTTP layer and the tests hold a `dyn Store`, so
//! both backends answer the same requests and pass the same test suite.

use std::io::{Read, Write};

use chrono::NaiveDate;
use vrs_domain::csv::OutputEncoding;
use vrs_domain::wire::{
    EnrolResponse, NameLookupRequest, NameLookupResponse, Outcome, Receipt, UploadBatch,
};
use vrs_domain::{ClientRecordId, DeviceId, Lot, MunicipalityCode, MyNumber, Vaccine};

use crate::access::{Contact, Session, SignIn, User};
use crate::devices::{DeviceInfo, DeviceKey, DeviceRegistration, Enrolment};
use crate::sqlite_access::Site;

use crate::error::StoreError;
use crate::principal::Principal;
use crate::store::{Amendment, HeldRecord, ImportOptions, ImportReport, TransferMatch};

/// The service's operations. Each takes the acting principal and checks it first.
pub trait Store: Send + Sync + std::fmt::Debug {
    fn upsert_municipality(
        &self,
        actor: &Principal,
        code: MunicipalityCode,
        name: &str,
        transfer_contact: &str,
    ) -> Result<(), StoreError>;
    fn add_lot(
        &self,
        actor: &Principal,
        vaccine: Vaccine,
        lot: &Lot,
        expiry: NaiveDate,
    ) -> Result<(), StoreError>;
    fn add_site(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        code: &str,
        name: &str,
    ) -> Result<(), StoreError>;
    fn import_register(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport, StoreError>;
    fn import_errors_csv(&self, actor: &Principal, import_id: i64) -> Result<String, StoreError>;
    fn lookup_name(
        &self,
        actor: &Principal,
        req: &NameLookupRequest,
    ) -> Result<Option<NameLookupResponse>, StoreError>;
    fn ingest(
        &self,
        actor: &Principal,
        batch: &UploadBatch,
        today: NaiveDate,
    ) -> Result<Vec<Receipt>, StoreError>;
    fn import_paper(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        input: &mut dyn Read,
        opts: &ImportOptions,
    ) -> Result<ImportReport, StoreError>;
    fn held(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
    ) -> Result<Vec<HeldRecord>, StoreError>;
    fn void(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        id: ClientRecordId,
        reason: &str,
    ) -> Result<(), StoreError>;
    fn amend(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        id: ClientRecordId,
        change: &Amendment,
        reason: &str,
        today: NaiveDate,
    ) -> Result<Outcome, StoreError>;
    fn export_ledger(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        from: NaiveDate,
        to: NaiveDate,
        encoding: OutputEncoding,
        out: &mut dyn Write,
    ) -> Result<u64, StoreError>;
    fn transfer_lookup(
        &self,
        actor: &Principal,
        n: &MyNumber,
    ) -> Result<Vec<TransferMatch>, StoreError>;
    fn person_count(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
    ) -> Result<u64, StoreError>;
    /// How many numbers the vault holds (for checks and benchmarks; no personal data).
    fn vault_count(&self) -> Result<u64, StoreError>;
    /// Decrypts a person's number (the vault's own round-trip check).
    fn vault_reveal(
        &self,
        municipality: MunicipalityCode,
        person: &vrs_domain::PersonId,
    ) -> Result<Option<MyNumber>, StoreError>;
    fn create_token(&self, actor: &Principal, for_whom: &Principal) -> Result<String, StoreError>;
    /// The access log.
    fn audit(&self) -> &dyn crate::audit::AuditLog;
    fn principal_for_token(&self, token: &str) -> Result<Option<Principal>, StoreError>;
    /// Registers a tablet of `municipality`; its first enrolment code, shown once.
    fn register_device(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        reg: &DeviceRegistration,
    ) -> Result<Enrolment, StoreError>;
    /// A new enrolment code for a tablet that is not revoked.
    fn reissue_enrolment(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        device: DeviceId,
    ) -> Result<Enrolment, StoreError>;
    /// A tablet enrols with its code (which is the only credential here) and key.
    fn enrol_device(&self, code: &str, public_key: &[u8]) -> Result<EnrolResponse, StoreError>;
    /// A device's key and standing, for checking its signed requests.
    fn device_key(&self, device: DeviceId) -> Result<Option<DeviceKey>, StoreError>;
    /// Records a signed request's nonce (Unix seconds `now`); `false` if seen before.
    fn use_nonce(&self, device: DeviceId, nonce: &[u8], now: i64) -> Result<bool, StoreError>;
    fn revoke_device(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
        device: DeviceId,
    ) -> Result<(), StoreError>;
    fn devices(
        &self,
        actor: &Principal,
        municipality: MunicipalityCode,
    ) -> Result<Vec<DeviceInfo>, StoreError>;
    /// Adds or changes a municipal user (様式1 rules); the users after the change.
    fn put_user(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        user: &User,
    ) -> Result<Vec<User>, StoreError>;
    fn remove_user(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        email: &str,
    ) -> Result<Vec<User>, StoreError>;
    fn users(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<User>, StoreError>;
    fn put_contact(
        &self,
        actor: &Principal,
        m: MunicipalityCode,
        c: &Contact,
    ) -> Result<(), StoreError>;
    fn contacts(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<Contact>, StoreError>;
    fn sites(&self, actor: &Principal, m: MunicipalityCode) -> Result<Vec<Site>, StoreError>;
    /// A user's municipality and sign-in state (the sign-in's own use: no actor).
    fn signin_state(&self, email: &str) -> Result<Option<(MunicipalityCode, SignIn)>, StoreError>;
    /// Replaces the sign-in state `old` by `new`, only if it is still `old` (two
    /// requests racing cannot both use a passcode or lose a miss): `false` if not.
    fn save_signin(&self, email: &str, old: &SignIn, new: &SignIn) -> Result<bool, StoreError>;
    /// A session: a staff member's (`device` None) or a tablet user's.
    fn create_session(
        &self,
        token_hash: &[u8],
        m: MunicipalityCode,
        email: &str,
        csrf: &str,
        device: Option<DeviceId>,
    ) -> Result<(), StoreError>;
    /// The live session of a token hash, its idle clock restarted.
    fn session(&self, token_hash: &[u8]) -> Result<Option<Session>, StoreError>;
    fn end_session(&self, token_hash: &[u8]) -> Result<(), StoreError>;
    /// A tablet's e-mail and its user's sign-in state.
    fn device_signin(&self, device: DeviceId) -> Result<Option<(String, SignIn)>, StoreError>;
    fn save_device_signin(
        &self,
        device: DeviceId,
        old: &SignIn,
        new: &SignIn,
    ) -> Result<bool, StoreError>;
}

impl Store for crate::SqliteStore {
    fn audit(&self) -> &dyn crate::audit::AuditLog {
        crate::SqliteStore::audit(self)
    }
    fn upsert_municipality(
        &self,
        a: &Principal,
        c: MunicipalityCode,
        n: &str,
        t: &str,
    ) -> Result<(), StoreError> {
        crate::SqliteStore::upsert_municipality(self, a, c, n, t)
    }
    fn add_lot(&self, a: &Principal, v: Vaccine, l: &Lot, e: NaiveDate) -> Result<(), StoreError> {
        crate::SqliteStore::add_lot(self, a, v, l, e)
    }
    fn add_site(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        c: &str,
        n: &str,
    ) -> Result<(), StoreError> {
        crate::SqliteStore::add_site(self, a, m, c, n)
    }
    fn import_register(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        i: &mut dyn Read,
        o: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        crate::SqliteStore::import_register(self, a, m, i, o)
    }
    fn import_errors_csv(&self, a: &Principal, id: i64) -> Result<String, StoreError> {
        crate::SqliteStore::import_errors_csv(self, a, id)
    }
    fn lookup_name(
        &self,
        a: &Principal,
        r: &NameLookupRequest,
    ) -> Result<Option<NameLookupResponse>, StoreError> {
        crate::SqliteStore::lookup_name(self, a, r)
    }
    fn ingest(
        &self,
        a: &Principal,
        b: &UploadBatch,
        t: NaiveDate,
    ) -> Result<Vec<Receipt>, StoreError> {
        crate::SqliteStore::ingest(self, a, b, t)
    }
    fn import_paper(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        i: &mut dyn Read,
        o: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        crate::SqliteStore::import_paper(self, a, m, i, o)
    }
    fn held(&self, a: &Principal, m: MunicipalityCode) -> Result<Vec<HeldRecord>, StoreError> {
        crate::SqliteStore::held(self, a, m)
    }
    fn void(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        id: ClientRecordId,
        r: &str,
    ) -> Result<(), StoreError> {
        crate::SqliteStore::void(self, a, m, id, r)
    }
    fn amend(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        id: ClientRecordId,
        c: &Amendment,
        r: &str,
        t: NaiveDate,
    ) -> Result<Outcome, StoreError> {
        crate::SqliteStore::amend(self, a, m, id, c, r, t)
    }
    fn export_ledger(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        f: NaiveDate,
        t: NaiveDate,
        e: OutputEncoding,
        o: &mut dyn Write,
    ) -> Result<u64, StoreError> {
        crate::SqliteStore::export_ledger(self, a, m, f, t, e, o)
    }
    fn transfer_lookup(
        &self,
        a: &Principal,
        n: &MyNumber,
    ) -> Result<Vec<TransferMatch>, StoreError> {
        crate::SqliteStore::transfer_lookup(self, a, n)
    }
    fn person_count(&self, a: &Principal, m: MunicipalityCode) -> Result<u64, StoreError> {
        crate::SqliteStore::person_count(self, a, m)
    }
    fn vault_count(&self) -> Result<u64, StoreError> {
        self.vault().count()
    }
    fn vault_reveal(
        &self,
        m: MunicipalityCode,
        p: &vrs_domain::PersonId,
    ) -> Result<Option<MyNumber>, StoreError> {
        self.vault().reveal(m, p)
    }
    fn create_token(&self, a: &Principal, w: &Principal) -> Result<String, StoreError> {
        crate::SqliteStore::create_token(self, a, w)
    }
    fn principal_for_token(&self, t: &str) -> Result<Option<Principal>, StoreError> {
        crate::SqliteStore::principal_for_token(self, t)
    }
    fn register_device(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        r: &DeviceRegistration,
    ) -> Result<Enrolment, StoreError> {
        crate::SqliteStore::register_device(self, a, m, r)
    }
    fn reissue_enrolment(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        d: DeviceId,
    ) -> Result<Enrolment, StoreError> {
        crate::SqliteStore::reissue_enrolment(self, a, m, d)
    }
    fn enrol_device(&self, c: &str, k: &[u8]) -> Result<EnrolResponse, StoreError> {
        crate::SqliteStore::enrol_device(self, c, k)
    }
    fn device_key(&self, d: DeviceId) -> Result<Option<DeviceKey>, StoreError> {
        crate::SqliteStore::device_key(self, d)
    }
    fn use_nonce(&self, d: DeviceId, n: &[u8], now: i64) -> Result<bool, StoreError> {
        crate::SqliteStore::use_nonce(self, d, n, now)
    }
    fn revoke_device(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        d: DeviceId,
    ) -> Result<(), StoreError> {
        crate::SqliteStore::revoke_device(self, a, m, d)
    }
    fn devices(&self, a: &Principal, m: MunicipalityCode) -> Result<Vec<DeviceInfo>, StoreError> {
        crate::SqliteStore::devices(self, a, m)
    }
    fn put_user(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        u: &User,
    ) -> Result<Vec<User>, StoreError> {
        crate::SqliteStore::put_user(self, a, m, u)
    }
    fn remove_user(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        e: &str,
    ) -> Result<Vec<User>, StoreError> {
        crate::SqliteStore::remove_user(self, a, m, e)
    }
    fn users(&self, a: &Principal, m: MunicipalityCode) -> Result<Vec<User>, StoreError> {
        crate::SqliteStore::users(self, a, m)
    }
    fn put_contact(
        &self,
        a: &Principal,
        m: MunicipalityCode,
        c: &Contact,
    ) -> Result<(), StoreError> {
        crate::SqliteStore::put_contact(self, a, m, c)
    }
    fn contacts(&self, a: &Principal, m: MunicipalityCode) -> Result<Vec<Contact>, StoreError> {
        crate::SqliteStore::contacts(self, a, m)
    }
    fn sites(&self, a: &Principal, m: MunicipalityCode) -> Result<Vec<Site>, StoreError> {
        crate::SqliteStore::sites(self, a, m)
    }
    fn signin_state(&self, e: &str) -> Result<Option<(MunicipalityCode, SignIn)>, StoreError> {
        crate::SqliteStore::signin_state(self, e)
    }
    fn save_signin(&self, e: &str, old: &SignIn, s: &SignIn) -> Result<bool, StoreError> {
        crate::SqliteStore::save_signin(self, e, old, s)
    }
    fn create_session(
        &self,
        t: &[u8],
        m: MunicipalityCode,
        e: &str,
        c: &str,
        d: Option<DeviceId>,
    ) -> Result<(), StoreError> {
        crate::SqliteStore::create_session(self, t, m, e, c, d)
    }
    fn session(&self, t: &[u8]) -> Result<Option<Session>, StoreError> {
        crate::SqliteStore::session(self, t)
    }
    fn end_session(&self, t: &[u8]) -> Result<(), StoreError> {
        crate::SqliteStore::end_session(self, t)
    }
    fn device_signin(&self, d: DeviceId) -> Result<Option<(String, SignIn)>, StoreError> {
        crate::SqliteStore::device_signin(self, d)
    }
    fn save_device_signin(
        &self,
        d: DeviceId,
        old: &SignIn,
        s: &SignIn,
    ) -> Result<bool, StoreError> {
        crate::SqliteStore::save_device_signin(self, d, old, s)
    }
}
