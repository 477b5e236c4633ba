//! The outbox: one SQLCipher database in the tablet's data folder, holding the
//! enrolment (device id, server, key pair), the session set-up and every record
//! saved, with its state and the server's receipt.
//!
//! - The database key is 32 random bytes, made on first use and kept by a
//!   [`KeyStore`]: the platform's key store where the app has one, otherwise
//!   [`KeyFile`], `outbox.key` next to the database, readable only by its user (mode
//!   0600). It is never derived from a password, and handed to SQLCipher as a raw
//!   key (no KDF needed for random bytes). Without it nothing in the file can be read.
//! - WAL with `synchronous = FULL`: a saved record survives the process being killed
//!   or the tablet losing power the moment `save` returns.
//! - A record is never deleted. It moves queued → sent → confirmed or held on its
//!   receipt; a held record corrected on the tablet becomes `superseded` and its
//!   correction is queued as a new record.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use vrs_domain::wire::{EnrolResponse, HoldReason, Outcome, Receipt};
use vrs_domain::{ClientRecordId, DoseRecord};
use zeroize::Zeroizing;

use crate::device::DeviceKey;

const DB_FILE: &str = "outbox.db";
const KEY_FILE: &str = "outbox.key";

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations/0001_outbox.sql"))];

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox key {path}: {why}")]
    Key { path: PathBuf, why: String },
    #[error(
        "the outbox {0} cannot be opened with its key: the key file was replaced or the database is damaged; keep both files, and ask the operator"
    )]
    WrongKey(PathBuf),
    #[error("outbox: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("outbox folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("this tablet is not enrolled: run `vrs client enrol --server URL --code CODE`")]
    NotEnrolled,
    #[error("a stored value is damaged: {0}")]
    Corrupt(String),
    #[error("no record {0} in the outbox")]
    NotFound(ClientRecordId),
    #[error("record {id} is {state}: only held records can be corrected")]
    NotHeld { id: ClientRecordId, state: String },
    #[error(transparent)]
    DeviceKey(#[from] crate::device::KeyError),
}

/// Where a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// Saved, never sent.
    Queued,
    /// Sent at least once; no receipt yet (it is sent again until one comes).
    Sent,
    /// The server stored it (accepted, or already had it).
    Confirmed,
    /// The server stored it and holds it for the municipality's review.
    Held,
    /// Held, then corrected here: its correction is a new record.
    Superseded,
    /// Not stored by the server: it cannot come from this tablet (the reason is
    /// kept with it); it is not sent again.
    Refused,
}

impl RecordState {
    fn as_str(self) -> &'static str {
        match self {
            RecordState::Queued => "queued",
            RecordState::Sent => "sent",
            RecordState::Confirmed => "confirmed",
            RecordState::Held => "held",
            RecordState::Superseded => "superseded",
            RecordState::Refused => "refused",
        }
    }
    fn parse(s: &str) -> Result<Self, OutboxError> {
        Ok(match s {
            "queued" => RecordState::Queued,
            "sent" => RecordState::Sent,
            "confirmed" => RecordState::Confirmed,
            "held" => RecordState::Held,
            "superseded" => RecordState::Superseded,
            "refused" => RecordState::Refused,
            _ => return Err(OutboxError::Corrupt(format!("record state {s:?}"))),
        })
    }
}

/// The outbox's counts: every record saved is in exactly one of these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub saved: u64,
    pub queued: u64,
    pub sent: u64,
    pub confirmed: u64,
    pub held: u64,
    pub superseded: u64,
    /// Records the server refused (see [`RecordState::Refused`]).
    #[serde(default)]
    pub refused: u64,
    /// Records saved without the name shown (offline, or the server knew no one).
    pub unconfirmed_names: u64,
    /// The last error a sync met, if the last attempt failed.
    pub last_error: Option<String>,
}

impl Status {
    /// Whether everything saved has a receipt.
    pub fn complete(&self) -> bool {
        self.queued == 0 && self.sent == 0
    }
}

/// A record the server holds for review, as the tablet shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldEntry {
    pub record: DoseRecord,
    pub reason: HoldReason,
    /// The reason in Japanese, for the screen.
    pub reason_ja: &'static str,
    pub detail: String,
}

/// A record the server refused, as the tablet shows it: what to do is in `detail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefusedEntry {
    pub record: DoseRecord,
    pub detail: String,
}

/// What a correction of a held record changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Correction {
    pub vaccinated_on: Option<chrono::NaiveDate>,
    pub vaccine: Option<vrs_domain::Vaccine>,
    pub lot: Option<vrs_domain::Lot>,
    pub voucher: Option<vrs_domain::OcrLine>,
}

/// What the tablet knows of its enrolment.
#[derive(Debug)]
pub struct Enrolled {
    pub server: String,
    pub device: EnrolResponse,
    pub key: DeviceKey,
}

/// The outbox database.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

/// Where the outbox's database key is kept. The tablet app hands in the platform's
/// key store where there is one (Android Keystore, a desktop's Secret Service); the
/// default, and the store wherever there is none, is [`KeyFile`].
pub trait KeyStore {
    /// The key as 64 hex digits, made and kept on first use. `outbox_exists` says
    /// whether there is a database already: a key missing then is an error, never
    /// a new key (which would make the records unreadable).
    fn outbox_key(&self, outbox_exists: bool) -> Result<Zeroizing<String>, OutboxError>;
}

/// The key in a file only its user can read (mode 0600), never overwritten.
#[derive(Debug, Clone)]
pub struct KeyFile(pub PathBuf);

/// 32 random bytes as hex.
pub fn new_key() -> Result<Zeroizing<String>, OutboxError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), raw.as_mut()).map_err(
        |_| OutboxError::Key {
            path: PathBuf::new(),
            why: "the random number generator failed".into(),
        },
    )?;
    Ok(Zeroizing::new(hex::encode(raw.as_ref())))
}

impl KeyStore for KeyFile {
    fn outbox_key(&self, outbox_exists: bool) -> Result<Zeroizing<String>, OutboxError> {
        let path = &self.0;
        let bad = |why: String| OutboxError::Key {
            path: path.clone(),
            why,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let key = text.trim();
                if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("not 64 hex digits: the file is damaged".into()));
                }
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(path)?.permissions().mode();
                    if mode & 0o077 != 0 {
                        return Err(bad(format!(
                            "readable by others (mode {:o}): chmod 600 it",
                            mode & 0o777
                        )));
                    }
                }
                Ok(Zeroizing::new(key.to_owned()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if outbox_exists {
                    return Err(bad(
                        "missing, but the outbox exists: restore the key file; without it the records cannot be read"
                            .into(),
                    ));
                }
                let key = new_key()?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut f = options.open(path).map_err(|e| bad(e.to_string()))?;
                f.write_all(key.as_bytes())?;
                f.sync_all()?;
                Ok(key)
            }
            Err(e) => Err(bad(e.to_string())),
        }
    }
}

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Outbox {
    /// Opens (or makes) the outbox in `dir`, its key in `dir/outbox.key`.
    pub fn open(dir: &Path) -> Result<Outbox, OutboxError> {
        Outbox::open_with(dir, &KeyFile(dir.join(KEY_FILE)))
    }

    /// Opens (or makes) the outbox in `dir` with its key from `keys`.
    pub fn open_with(dir: &Path, keys: &dyn KeyStore) -> Result<Outbox, OutboxError> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let path = dir.join(DB_FILE);
        let key = keys.outbox_key(path.exists())?;
        let conn = Connection::open(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        conn.execute_batch(&Zeroizing::new(format!(
            "PRAGMA key = \"x'{}'\";",
            key.as_str()
        )))?;
        // The first read tells whether the key fits.
        if conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_err()
        {
            return Err(OutboxError::WrongKey(path));
        }
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;",
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mut outbox = Outbox { conn, path };
        outbox.migrate()?;
        Ok(outbox)
    }

    fn migrate(&mut self) -> Result<(), OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (v, sql) in MIGRATIONS {
            if *v > version {
                tx.execute_batch(sql)?;
                tx.execute_batch(&format!("PRAGMA user_version = {v}"))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The database file (its `-wal` sits beside it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn config(&self, key: &str) -> Result<Option<Vec<u8>>, OutboxError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM config WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn set_config(&self, key: &str, value: &[u8]) -> Result<(), OutboxError> {
        self.conn.execute(
            "INSERT INTO config (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Keeps a JSON value (the session set-up, settings).
    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), OutboxError> {
        let v = serde_json::to_vec(value).map_err(|e| OutboxError::Corrupt(e.to_string()))?;
        self.set_config(&format!("json.{key}"), &v)
    }

    /// A JSON value kept by [`Outbox::put`].
    pub fn get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, OutboxError> {
        self.config(&format!("json.{key}"))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| OutboxError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Keeps a secret string (the user's session token): only ever in this
    /// encrypted file.
    pub fn put_secret(&self, key: &str, value: &str) -> Result<(), OutboxError> {
        self.set_config(&format!("secret.{key}"), value.as_bytes())
    }

    pub fn secret(&self, key: &str) -> Result<Option<Zeroizing<String>>, OutboxError> {
        self.config(&format!("secret.{key}"))?
            .map(|v| {
                String::from_utf8(v)
                    .map(Zeroizing::new)
                    .map_err(|_| OutboxError::Corrupt(key.into()))
            })
            .transpose()
    }

    /// Stores the enrolment: the server, what it said of the device, the key pair.
    pub fn set_enrolment(
        &mut self,
        server: &str,
        device: &EnrolResponse,
        key: &DeviceKey,
    ) -> Result<(), OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let json = serde_json::to_vec(device).map_err(|e| OutboxError::Corrupt(e.to_string()))?;
        for (k, v) in [
            ("server", server.as_bytes()),
            ("device", &json[..]),
            ("device_key", key.pkcs8()),
        ] {
            tx.execute(
                "INSERT INTO config (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The enrolment, or [`OutboxError::NotEnrolled`].
    pub fn enrolment(&self) -> Result<Enrolled, OutboxError> {
        let (Some(server), Some(device), Some(key)) = (
            self.config("server")?,
            self.config("device")?,
            self.config("device_key")?,
        ) else {
            return Err(OutboxError::NotEnrolled);
        };
        Ok(Enrolled {
            server: String::from_utf8(server).map_err(|_| OutboxError::Corrupt("server".into()))?,
            device: serde_json::from_slice(&device)
                .map_err(|e| OutboxError::Corrupt(e.to_string()))?,
            key: DeviceKey::from_pkcs8(key)?,
        })
    }

    /// Saves a record, queued for the next sync. A record id saved before is not
    /// saved again (`false`).
    pub fn save(&mut self, record: &DoseRecord, name_confirmed: bool) -> Result<bool, OutboxError> {
        self.insert(record, name_confirmed, None)
    }

    fn insert(
        &mut self,
        record: &DoseRecord,
        name_confirmed: bool,
        replaces: Option<ClientRecordId>,
    ) -> Result<bool, OutboxError> {
        let body =
            serde_json::to_string(record).map_err(|e| OutboxError::Corrupt(e.to_string()))?;
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO records (id, body, state, name_confirmed, saved_at, replaces)
                 VALUES (?1, ?2, 'queued', ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![
                record.client_record_id.to_string(),
                body,
                name_confirmed,
                now_text(),
                replaces.map(|r| r.to_string()),
            ])?;
        Ok(n == 1)
    }

    /// The next records to send, oldest first, at most `max`; they are marked sent
    /// (and their attempt counted) before they leave, so a sync killed half-way sends
    /// them again, and the server's idempotence makes that harmless.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<DoseRecord>, OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::new();
        {
            let mut st = tx.prepare_cached(
                "SELECT body FROM records WHERE state IN ('queued', 'sent') ORDER BY seq LIMIT ?1",
            )?;
            let rows = st.query_map([max as i64], |r| r.get::<_, String>(0))?;
            for body in rows {
                let rec: DoseRecord = serde_json::from_str(&body?)
                    .map_err(|e| OutboxError::Corrupt(format!("record: {e}")))?;
                out.push(rec);
            }
            let mut mark = tx.prepare_cached(
                "UPDATE records SET state = 'sent', attempts = attempts + 1 WHERE id = ?1",
            )?;
            for r in &out {
                mark.execute([r.client_record_id.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Stores the receipts of a batch. Each receipt must name a record that was sent.
    pub fn apply_receipts(&mut self, receipts: &[Receipt]) -> Result<(), OutboxError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(
                "UPDATE records SET state = ?2, receipt = ?3, receipt_at = ?4, hold_reason = ?5,
                     hold_detail = ?6
                 WHERE id = ?1 AND state IN ('queued', 'sent')",
            )?;
            let at = now_text();
            for r in receipts {
                let (state, reason, detail) = match &r.outcome {
                    Outcome::Accepted | Outcome::Duplicate => (RecordState::Confirmed, None, None),
                    Outcome::Held { reason, detail } => (
                        RecordState::Held,
                        Some(
                            serde_json::to_string(reason)
                                .map_err(|e| OutboxError::Corrupt(e.to_string()))?,
                        ),
                        Some(detail.clone()),
                    ),
                    Outcome::Refused { detail } => {
                        (RecordState::Refused, None, Some(detail.clone()))
                    }
                };
                let receipt =
                    serde_json::to_string(r).map_err(|e| OutboxError::Corrupt(e.to_string()))?;
                st.execute(params![
                    r.client_record_id.to_string(),
                    state.as_str(),
                    receipt,
                    at,
                    reason,
                    detail,
                ])?;
            }
        }
        tx.execute("DELETE FROM config WHERE key = 'last_error'", [])?;
        tx.commit()?;
        Ok(())
    }

    /// Remembers why the last sync attempt failed (shown by `status`).
    pub fn note_error(&self, why: &str) -> Result<(), OutboxError> {
        self.set_config("last_error", why.as_bytes())
    }

    /// The counts.
    pub fn status(&self) -> Result<Status, OutboxError> {
        let mut s = Status::default();
        let mut st = self.conn.prepare_cached(
            "SELECT state, count(*), sum(NOT name_confirmed) FROM records GROUP BY state",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (state, n, unconfirmed) = row?;
            let n = n as u64;
            s.saved += n;
            s.unconfirmed_names += unconfirmed as u64;
            match RecordState::parse(&state)? {
                RecordState::Queued => s.queued = n,
                RecordState::Sent => s.sent = n,
                RecordState::Confirmed => s.confirmed = n,
                RecordState::Held => s.held = n,
                RecordState::Superseded => s.superseded = n,
                RecordState::Refused => s.refused = n,
            }
        }
        s.last_error = self
            .config("last_error")?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(s)
    }

    /// A record's state.
    pub fn state_of(&self, id: ClientRecordId) -> Result<Option<RecordState>, OutboxError> {
        self.conn
            .query_row(
                "SELECT state FROM records WHERE id = ?1",
                [id.to_string()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(|s| RecordState::parse(&s))
            .transpose()
    }

    /// The records the server holds for review, oldest first.
    pub fn held(&self) -> Result<Vec<HeldEntry>, OutboxError> {
        let mut st = self.conn.prepare(
            "SELECT body, hold_reason, coalesce(hold_detail, '') FROM records
             WHERE state = 'held' ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, reason, detail) = row?;
            let record: DoseRecord =
                serde_json::from_str(&body).map_err(|e| OutboxError::Corrupt(e.to_string()))?;
            let reason: HoldReason = serde_json::from_str(reason.as_deref().unwrap_or("null"))
                .map_err(|e| OutboxError::Corrupt(format!("hold reason: {e}")))?;
            out.push(HeldEntry {
                record,
                reason,
                reason_ja: reason.describe_ja(),
                detail,
            });
        }
        Ok(out)
    }

    /// The records the server refused, oldest first, each with the server's words.
    pub fn refused(&self) -> Result<Vec<RefusedEntry>, OutboxError> {
        let mut st = self.conn.prepare(
            "SELECT body, coalesce(hold_detail, '') FROM records WHERE state = 'refused' ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (body, detail) = row?;
            out.push(RefusedEntry {
                record: serde_json::from_str(&body)
                    .map_err(|e| OutboxError::Corrupt(e.to_string()))?,
                detail,
            });
        }
        Ok(out)
    }

    /// Corrects a held record: it becomes superseded, and the corrected record is
    /// queued under a new id, naming the original (the server then marks its held
    /// original superseded too). Returns the new record.
    pub fn correct(
        &mut self,
        id: ClientRecordId,
        change: &Correction,
    ) -> Result<DoseRecord, OutboxError> {
        let row: Option<(String, String, bool)> = self
            .conn
            .query_row(
                "SELECT body, state, name_confirmed FROM records WHERE id = ?1",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((body, state, confirmed)) = row else {
            return Err(OutboxError::NotFound(id));
        };
        if RecordState::parse(&state)? != RecordState::Held {
            return Err(OutboxError::NotHeld { id, state });
        }
        let mut rec: DoseRecord =
            serde_json::from_str(&body).map_err(|e| OutboxError::Corrupt(e.to_string()))?;
        // The server marks the held original superseded when the correction arrives.
        rec.supersedes = Some(vrs_domain::dose::RecordRef {
            municipality: rec.municipality,
            client_record_id: rec.client_record_id,
        });
        rec.client_record_id = ClientRecordId::new();
        if let Some(d) = change.vaccinated_on {
            rec.vaccinated_on = d;
        }
        if let Some(v) = change.vaccine {
            rec.vaccine = v;
        }
        if let Some(l) = &change.lot {
            rec.lot = l.clone();
        }
        if let Some(line) = change.voucher {
            rec.municipality = line.municipality;
            rec.voucher = line.number;
            rec.voucher_kind = line.kind;
            rec.dose_number = line.dose;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE records SET state = 'superseded' WHERE id = ?1",
            [id.to_string()],
        )?;
        tx.execute(
            "INSERT INTO records (id, body, state, name_confirmed, saved_at, replaces)
             VALUES (?1, ?2, 'queued', ?3, ?4, ?5)",
            params![
                rec.client_record_id.to_string(),
                serde_json::to_string(&rec).map_err(|e| OutboxError::Corrupt(e.to_string()))?,
                confirmed && change.voucher.is_none(),
                now_text(),
                id.to_string(),
            ],
        )?;
        tx.commit()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrs_domain::wire::Receipt;
    use vrs_domain::{DeviceId, SiteRef, Vaccine};

    fn record(n: u64) -> DoseRecord {
        DoseRecord::from_voucher(
            ClientRecordId::new(),
            format!("12131016{:010}", 7_770_000_000u64 + n)
                .parse()
                .unwrap(),
            "2021-06-01".parse().unwrap(),
            Vaccine::Pfizer,
            "FA4597".parse().unwrap(),
            SiteRef::Clinic("0110113719".parse().unwrap()),
            DeviceId(uuid::Uuid::from_u128(9)),
        )
    }

    fn receipt(r: &DoseRecord, outcome: Outcome) -> Receipt {
        Receipt {
            client_record_id: r.client_record_id,
            outcome,
        }
    }

    #[test]
    fn the_database_file_holds_no_voucher_number_or_lot_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        for n in 0..50 {
            o.save(&record(n), true).unwrap();
        }
        o.put("setup", &"FA4597 at clinic 0110113719").unwrap();
        let mut files = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() == KEY_FILE {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            files += usize::from(!bytes.is_empty());
            for needle in [
                &b"7770000001"[..],
                b"FA4597",
                b"0110113719",
                b"voucher",
                b"SQLite format",
            ] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds {:?} in clear",
                    path.display(),
                    String::from_utf8_lossy(needle)
                );
            }
        }
        assert!(files >= 2, "the database and its WAL were both looked at");
    }

    #[test]
    fn the_key_file_is_private_and_the_outbox_refuses_another_key() {
        let dir = tempfile::tempdir().unwrap();
        drop(Outbox::open(dir.path()).unwrap());
        let key = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                Outbox::open(dir.path()),
                Err(OutboxError::Key { .. })
            ));
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&key, "ab".repeat(32)).unwrap();
        assert!(matches!(
            Outbox::open(dir.path()),
            Err(OutboxError::WrongKey(_))
        ));
        std::fs::remove_file(&key).unwrap();
        let e = Outbox::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("restore the key file"), "{e}");
    }

    /// A platform key store in place of the file: the key is taken from it, and no
    /// key file is written.
    #[test]
    fn a_key_store_of_the_platform_takes_the_files_place() {
        struct Held(std::cell::RefCell<Option<String>>);
        impl KeyStore for Held {
            fn outbox_key(&self, _: bool) -> Result<Zeroizing<String>, OutboxError> {
                let mut k = self.0.borrow_mut();
                if k.is_none() {
                    *k = Some(new_key()?.to_string());
                }
                Ok(Zeroizing::new(k.clone().unwrap()))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Held(std::cell::RefCell::new(None));
        let mut o = Outbox::open_with(dir.path(), &store).unwrap();
        o.save(&record(1), true).unwrap();
        drop(o);
        assert!(!dir.path().join(KEY_FILE).exists());
        let o = Outbox::open_with(dir.path(), &store).unwrap();
        assert_eq!(o.status().unwrap().saved, 1);
        drop(o);
        assert!(matches!(
            Outbox::open_with(dir.path(), &Held(std::cell::RefCell::new(None))),
            Err(OutboxError::WrongKey(_))
        ));
    }

    #[test]
    fn records_move_from_queued_to_their_receipts_and_are_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        let recs: Vec<_> = (0..5).map(record).collect();
        for (i, r) in recs.iter().enumerate() {
            assert!(o.save(r, i != 4).unwrap());
        }
        assert!(!o.save(&recs[0], true).unwrap(), "saved once");
        let s = o.status().unwrap();
        assert_eq!((s.saved, s.queued, s.unconfirmed_names), (5, 5, 1));

        let first = o.next_batch(3).unwrap();
        assert_eq!(
            first.iter().map(|r| r.client_record_id).collect::<Vec<_>>(),
            recs[..3]
                .iter()
                .map(|r| r.client_record_id)
                .collect::<Vec<_>>(),
            "oldest first"
        );
        let s = o.status().unwrap();
        assert_eq!((s.queued, s.sent), (2, 3));
        // No receipt (a lost answer): the same records come again, then the rest.
        let again = o.next_batch(10).unwrap();
        assert_eq!(again.len(), 5);
        o.apply_receipts(&[
            receipt(&recs[0], Outcome::Accepted),
            receipt(&recs[1], Outcome::Duplicate),
            receipt(
                &recs[2],
                Outcome::Held {
                    reason: HoldReason::LotExpired,
                    detail: "lot FA4597 expired".into(),
                },
            ),
        ])
        .unwrap();
        let s = o.status().unwrap();
        assert_eq!(
            (s.saved, s.queued, s.sent, s.confirmed, s.held),
            (5, 0, 2, 2, 1)
        );
        assert!(!s.complete());
        o.apply_receipts(&[
            receipt(&recs[3], Outcome::Accepted),
            receipt(&recs[4], Outcome::Accepted),
        ])
        .unwrap();
        assert!(o.status().unwrap().complete());
        assert!(o.next_batch(10).unwrap().is_empty());

        // Reopened, everything is still there.
        drop(o);
        let o = Outbox::open(dir.path()).unwrap();
        let s = o.status().unwrap();
        assert_eq!((s.saved, s.confirmed, s.held), (5, 4, 1));
        let held = o.held().unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].record, recs[2]);
        assert_eq!(held[0].reason, HoldReason::LotExpired);
    }

    #[test]
    fn a_held_record_is_corrected_into_a_new_queued_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        let r = record(1);
        o.save(&r, true).unwrap();
        assert!(matches!(
            o.correct(r.client_record_id, &Correction::default()),
            Err(OutboxError::NotHeld { .. })
        ));
        o.next_batch(10).unwrap();
        o.apply_receipts(&[receipt(
            &r,
            Outcome::Held {
                reason: HoldReason::DateInFuture,
                detail: String::new(),
            },
        )])
        .unwrap();
        let fixed = o
            .correct(
                r.client_record_id,
                &Correction {
                    vaccinated_on: Some("2021-05-31".parse().unwrap()),
                    ..Correction::default()
                },
            )
            .unwrap();
        assert_ne!(fixed.client_record_id, r.client_record_id);
        assert_eq!(fixed.vaccinated_on.to_string(), "2021-05-31");
        assert_eq!(fixed.voucher, r.voucher);
        // It names its original, for the server to take it out of the review queue.
        assert_eq!(
            fixed
                .supersedes
                .map(|o| (o.municipality, o.client_record_id)),
            Some((r.municipality, r.client_record_id))
        );
        assert_eq!(
            o.state_of(r.client_record_id).unwrap(),
            Some(RecordState::Superseded)
        );
        let s = o.status().unwrap();
        assert_eq!((s.saved, s.queued, s.held, s.superseded), (2, 1, 0, 1));
        assert_eq!(o.next_batch(10).unwrap(), vec![fixed]);
        assert!(matches!(
            o.correct(ClientRecordId::new(), &Correction::default()),
            Err(OutboxError::NotFound(_))
        ));
    }

    #[test]
    fn a_refused_record_keeps_the_servers_words_and_is_not_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        let r = record(2);
        o.save(&r, true).unwrap();
        o.next_batch(10).unwrap();
        o.apply_receipts(&[receipt(
            &r,
            Outcome::Refused {
                detail: "this tablet records doses for X".into(),
            },
        )])
        .unwrap();
        assert_eq!(
            o.state_of(r.client_record_id).unwrap(),
            Some(RecordState::Refused)
        );
        let s = o.status().unwrap();
        assert_eq!((s.refused, s.queued, s.sent), (1, 0, 0));
        assert!(s.complete());
        assert!(o.next_batch(10).unwrap().is_empty());
        let refused = o.refused().unwrap();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].detail, "this tablet records doses for X");
    }

    #[test]
    fn enrolment_round_trips_through_the_encrypted_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path()).unwrap();
        assert!(matches!(o.enrolment(), Err(OutboxError::NotEnrolled)));
        let key = DeviceKey::generate().unwrap();
        let resp = EnrolResponse {
            device_id: DeviceId(uuid::Uuid::from_u128(3)),
            municipality: "131016".parse().unwrap(),
            municipality_name: "千代田区".into(),
            site: SiteRef::Clinic("0110113719".parse().unwrap()),
            site_name: "クリニック".into(),
        };
        o.set_enrolment("http://127.0.0.1:1", &resp, &key).unwrap();
        drop(o);
        let e = Outbox::open(dir.path()).unwrap().enrolment().unwrap();
        assert_eq!(e.device, resp);
        assert_eq!(e.server, "http://127.0.0.1:1");
        assert_eq!(e.key.public_hex(), key.public_hex());
    }
}
