//! The tablet as one object: its outbox, its enrolment and its server. The Tauri
//! app and `vrs client` both drive this, so what one does the other does.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use vrs_domain::wire::{EnrolResponse, NameLookupRequest};
use vrs_domain::{ClientRecordId, DoseRecord, Lot, OcrLine, Vaccine};

use crate::api::{Api, ApiError, Tablet as Signer};
use crate::device::DeviceKey;
use crate::outbox::{Outbox, OutboxError, Status};
use crate::session::{Mode, Name, Setup, SetupError};
use crate::sync::{self, Clock, SyncOptions, SyncReport};

/// Today in Japan: the default date of a session.
pub use vrs_domain::date::today_jst;

#[derive(Debug, thiserror::Error)]
pub enum TabletError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("no session is set up: choose the date, vaccine and lot first (vrs client setup)")]
    NoSetup,
    #[error(transparent)]
    Key(#[from] crate::device::KeyError),
    #[error("this tablet is enrolled already (device {0}); use a new data folder to enrol again")]
    AlreadyEnrolled(vrs_domain::DeviceId),
    #[error(
        "sign in on the tablet first ({0}): a passcode goes to the tablet's e-mail (vrs client signin)"
    )]
    SignInNeeded(String),
}

/// The enrolment code in a camera frame: a QR code holding `XXXX-XXXX-XXXX-XXXX`
/// (Crockford base32), as the municipality's tablets page shows it. The server does
/// the real check; this only keeps other QR codes (a voucher's) out.
pub fn enrolment_code_in(frame: &image::DynamicImage) -> Option<String> {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    vrs_scan::decode_barcodes(&frame.to_luma8())
        .into_iter()
        .filter(|s| s.format == "qr")
        .map(|s| s.text.trim().to_ascii_uppercase())
        .find(|t| {
            let groups: Vec<&str> = t.split('-').collect();
            groups.len() == 4
                && groups
                    .iter()
                    .all(|g| g.len() == 4 && g.chars().all(|c| ALPHABET.contains(c)))
        })
}

/// A session's set-up as kept in the outbox between runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSetup {
    pub date: NaiveDate,
    pub vaccine: Vaccine,
    pub lot: Lot,
    /// From the GS1 label, or the list; `None` when typed with no expiry known.
    pub expiry: Option<NaiveDate>,
    pub batch: bool,
}

/// The outbox's keys for what the tablet keeps between runs: one place, so that the
/// app and `vrs client` read the same things.
const SETUP_KEY: &str = "session";
const SESSION_SECRET: &str = "session";
const SETTINGS_KEY: &str = "settings";
const LOTS_KEY: &str = "lots";
const LOT_MASTER_KEY: &str = "lot_master";
const LOT_MASTER_AT_KEY: &str = "lot_master_at";
/// How long a downloaded lot master serves before a sync fetches it again (lots
/// arrive with deliveries, not by the minute).
const LOT_MASTER_EVERY_SECS: i64 = 15 * 60;
/// How many lots the set-up screen offers.
const RECENT_LOTS: usize = 10;

/// The tablet's own settings, kept in the outbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The screens' language (`ja` or `en`); unset: the app's default.
    pub lang: Option<String>,
}

/// A lot used on this tablet before: the set-up screen's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotEntry {
    pub vaccine: Vaccine,
    pub lot: Lot,
    pub expiry: Option<NaiveDate>,
}

/// A name look-up made ready with the tablet (its key, its sign-in) and sent
/// without it, so that a shell keeping the tablet behind a lock does not hold the
/// lock while the network answers.
pub struct NameLookup {
    enrolled: crate::outbox::Enrolled,
    api: Api,
    session: zeroize::Zeroizing<String>,
    req: NameLookupRequest,
}

impl std::fmt::Debug for NameLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameLookup")
            .field("municipality", &self.req.municipality)
            .field("voucher", &self.req.voucher)
            .finish_non_exhaustive()
    }
}

impl NameLookup {
    /// Asks the server: found, unknown, or offline (no answer; the record is then
    /// saved unconfirmed). A refusal of the user's sign-in is an error: the nurse
    /// signs in again.
    pub fn send(self) -> Result<Name, TabletError> {
        let signer = Signer {
            device: self.enrolled.device.device_id,
            key: &self.enrolled.key,
        };
        match self.api.name(signer, &self.session, &self.req) {
            Ok(Some(n)) => Ok(Name::Found(n)),
            Ok(None) => Ok(Name::Unknown),
            Err(ApiError::Refused {
                status: 401,
                message,
            }) => Err(TabletError::SignInNeeded(message)),
            Err(_) => Ok(Name::Offline),
        }
    }
}

/// Where to reach the server from, and how patiently.
#[derive(Clone, Debug)]
pub struct Connection {
    /// A CA certificate (PEM) to trust besides the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// For one request.
    pub timeout: Duration,
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            ca_pem: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The tablet.
#[derive(Debug)]
pub struct Tablet {
    outbox: Outbox,
    connection: Connection,
}

impl Tablet {
    /// Opens the tablet's data folder (made on first use).
    pub fn open(dir: &Path, connection: Connection) -> Result<Tablet, TabletError> {
        Ok(Tablet {
            outbox: Outbox::open(dir)?,
            connection,
        })
    }

    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// The outbox, for reading and for its key-value settings.
    pub fn outbox_ref(&self) -> &Outbox {
        &self.outbox
    }

    fn api(&self, server: &str) -> Result<Api, TabletError> {
        Ok(Api::new(
            server,
            self.connection.ca_pem.as_deref(),
            self.connection.timeout,
        )?)
    }

    /// Enrols with the code from the municipality: a key pair is made here, its
    /// public half registered, and the answer kept.
    pub fn enrol(&mut self, server: &str, code: &str) -> Result<EnrolResponse, TabletError> {
        if let Ok(e) = self.outbox.enrolment() {
            return Err(TabletError::AlreadyEnrolled(e.device.device_id));
        }
        let key = DeviceKey::generate()?;
        let api = self.api(server)?;
        let answer = api.enrol(code, &key)?;
        self.outbox.set_enrolment(api.base(), &answer, &key)?;
        // The lot master now, so that set-up can check lots offline; if the
        // network drops here, the next sync that reaches the server fetches it.
        let _ = self.refresh_lots();
        Ok(answer)
    }

    /// What the server said about this tablet at enrolment.
    pub fn device(&self) -> Result<EnrolResponse, TabletError> {
        Ok(self.outbox.enrolment()?.device)
    }

    /// Sets the session up; refused if the lot is expired or mis-shaped, or the date
    /// is in the future.
    pub fn set_up(&mut self, s: &SessionSetup) -> Result<Setup, TabletError> {
        let setup = self.check_setup(s)?;
        self.outbox.put(SETUP_KEY, s)?;
        Ok(setup)
    }

    fn check_setup(&self, s: &SessionSetup) -> Result<Setup, TabletError> {
        let site = self.outbox.enrolment()?.device.site;
        let master = self.lot_master()?;
        let expiry = crate::session::lot_expiry(master.as_deref(), s.vaccine, &s.lot, s.expiry)?;
        Ok(Setup::new(
            site,
            s.date,
            today_jst(),
            s.vaccine,
            s.lot.clone(),
            expiry,
        )?)
    }

    /// Downloads the lot master and keeps it: set-up takes lots and their expiry
    /// from it, offline too. The number of lots.
    pub fn refresh_lots(&self) -> Result<usize, TabletError> {
        let (e, api) = self.signer_api()?;
        let lots = api.lots(Signer {
            device: e.device.device_id,
            key: &e.key,
        })?;
        self.outbox.put(LOT_MASTER_KEY, &lots)?;
        self.outbox
            .put(LOT_MASTER_AT_KEY, &chrono::Utc::now().timestamp())?;
        Ok(lots.len())
    }

    /// The lot master as last downloaded; `None` before the first download.
    pub fn lot_master(&self) -> Result<Option<Vec<vrs_domain::wire::LotEntry>>, TabletError> {
        Ok(self.outbox.get(LOT_MASTER_KEY)?)
    }

    /// The session set up last, checked again (a lot may have expired since).
    pub fn setup(&self) -> Result<(Setup, Mode), TabletError> {
        let s = self.session_setup()?.ok_or(TabletError::NoSetup)?;
        let mode = if s.batch { Mode::Batch } else { Mode::Single };
        Ok((self.check_setup(&s)?, mode))
    }

    fn signer_api(&self) -> Result<(crate::outbox::Enrolled, Api), TabletError> {
        let e = self.outbox.enrolment()?;
        let api = self.api(&e.server)?;
        Ok((e, api))
    }

    /// Asks for a sign-in passcode, mailed to the tablet's registered e-mail.
    pub fn sign_in_start(&self) -> Result<(), TabletError> {
        let (e, api) = self.signer_api()?;
        let signer = Signer {
            device: e.device.device_id,
            key: &e.key,
        };
        Ok(api.sign_in_start(signer)?)
    }

    /// Signs the tablet's user in; the session is kept in the encrypted outbox.
    pub fn sign_in(&mut self, passcode: &str) -> Result<(), TabletError> {
        let (e, api) = self.signer_api()?;
        let signer = Signer {
            device: e.device.device_id,
            key: &e.key,
        };
        let session = api.sign_in(signer, passcode)?;
        self.outbox.put_secret(SESSION_SECRET, &session.session)?;
        Ok(())
    }

    /// Forgets the user's session (signing out on the tablet).
    pub fn sign_out(&mut self) -> Result<(), TabletError> {
        self.outbox.put_secret(SESSION_SECRET, "")?;
        Ok(())
    }

    /// Asks the server for the voucher's name: found, unknown, or offline (no
    /// answer; the record is then saved unconfirmed). A refusal of the user's
    /// sign-in is an error: the nurse signs in again.
    pub fn look_up_name(&self, line: &OcrLine) -> Result<Name, TabletError> {
        self.name_lookup(line)?.send()
    }

    /// The look-up of a voucher's name, ready to send (see [`NameLookup`]).
    pub fn name_lookup(&self, line: &OcrLine) -> Result<NameLookup, TabletError> {
        let (enrolled, api) = self.signer_api()?;
        let session = self
            .outbox
            .secret(SESSION_SECRET)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TabletError::SignInNeeded("not signed in".into()))?;
        Ok(NameLookup {
            enrolled,
            api,
            session,
            req: NameLookupRequest {
                municipality: line.municipality,
                voucher: line.number,
            },
        })
    }

    /// Whether a user is signed in on this tablet.
    pub fn signed_in(&self) -> bool {
        self.outbox
            .secret(SESSION_SECRET)
            .ok()
            .flatten()
            .is_some_and(|s| !s.is_empty())
    }

    /// The session's set-up as kept, unchecked (the set-up screen shows it).
    pub fn session_setup(&self) -> Result<Option<SessionSetup>, TabletError> {
        Ok(self.outbox.get(SETUP_KEY)?)
    }

    pub fn settings(&self) -> Result<Settings, TabletError> {
        Ok(self.outbox.get(SETTINGS_KEY)?.unwrap_or_default())
    }

    pub fn save_settings(&self, s: &Settings) -> Result<(), TabletError> {
        Ok(self.outbox.put(SETTINGS_KEY, s)?)
    }

    /// The lots the set-up screen offers: those used here lately first, then the
    /// lot master's others that have not expired (see [`crate::session::offered_lots`]).
    pub fn lots(&self) -> Result<Vec<LotEntry>, TabletError> {
        let recent: Vec<(Vaccine, Lot, Option<NaiveDate>)> = self
            .recent_lots()?
            .into_iter()
            .map(|l| (l.vaccine, l.lot, l.expiry))
            .collect();
        let master = self.lot_master()?;
        Ok(
            crate::session::offered_lots(&recent, master.as_deref(), today_jst())
                .into_iter()
                .map(|(vaccine, lot, expiry)| LotEntry {
                    vaccine,
                    lot,
                    expiry,
                })
                .collect(),
        )
    }

    fn recent_lots(&self) -> Result<Vec<LotEntry>, TabletError> {
        Ok(self.outbox.get(LOTS_KEY)?.unwrap_or_default())
    }

    /// Puts a lot first in the list of lots used lately.
    pub fn remember_lot(&self, entry: LotEntry) -> Result<(), TabletError> {
        let mut lots = self.recent_lots()?;
        lots.retain(|l| l.lot != entry.lot || l.vaccine != entry.vaccine);
        lots.insert(0, entry);
        lots.truncate(RECENT_LOTS);
        Ok(self.outbox.put(LOTS_KEY, &lots)?)
    }

    /// Saves the dose for `line` with the session's set-up.
    pub fn save(
        &mut self,
        setup: &Setup,
        line: OcrLine,
        name_confirmed: bool,
    ) -> Result<DoseRecord, TabletError> {
        let device = self.outbox.enrolment()?.device.device_id;
        let record = DoseRecord::from_voucher(
            ClientRecordId::new(),
            line,
            setup.date,
            setup.vaccine,
            setup.lot.clone(),
            setup.site.clone(),
            device,
        );
        self.outbox.save(&record, name_confirmed)?;
        Ok(record)
    }

    /// Sends the outbox.
    pub fn sync(
        &mut self,
        opts: &SyncOptions,
        clock: &mut dyn Clock,
    ) -> Result<SyncReport, TabletError> {
        let server = self.outbox.enrolment()?.server;
        let api = self.api(&server)?;
        let report = sync::run(&mut self.outbox, &api, opts, clock).map_err(|e| match e {
            sync::SyncError::Outbox(o) => TabletError::Outbox(o),
        })?;
        // The lot master changes as lots are delivered: fetched again by a sync
        // that reached the server, once the copy here is older than a while.
        let fetched: Option<i64> = self.outbox.get(LOT_MASTER_AT_KEY)?;
        let stale =
            fetched.is_none_or(|at| chrono::Utc::now().timestamp() - at >= LOT_MASTER_EVERY_SECS);
        if report.stopped.is_none() && stale {
            // A failure here is the network's; the next sync tries again.
            let _ = self.refresh_lots();
        }
        Ok(report)
    }

    pub fn status(&self) -> Result<Status, TabletError> {
        Ok(self.outbox.status()?)
    }
}

/// Syncs in the background "whenever the network allows": a thread with its own
/// connection to the outbox that runs a sync every `every` (or at once when
/// [`BackgroundSync::now`] is called), each one retrying with backoff for up to
/// `opts.give_up_after`, and hands each report to `report` (the app shows it).
/// Dropping the handle stops the thread after its current attempt.
#[derive(Debug)]
pub struct BackgroundSync {
    wake: std::sync::mpsc::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundSync {
    pub fn start(
        dir: &Path,
        connection: Connection,
        opts: SyncOptions,
        every: Duration,
        report: impl Fn(Result<SyncReport, String>) + Send + 'static,
    ) -> Result<BackgroundSync, TabletError> {
        let mut tablet = Tablet::open(dir, connection)?;
        let (wake, woken) = std::sync::mpsc::channel::<bool>();
        let thread = std::thread::spawn(move || {
            loop {
                let r = tablet
                    .sync(&opts, &mut crate::sync::RealClock)
                    .map_err(|e| e.to_string());
                report(r);
                match woken.recv_timeout(every) {
                    Ok(true) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Ok(BackgroundSync {
            wake,
            thread: Some(thread),
        })
    }

    /// Sync now (a record was just saved, or the network came back).
    pub fn now(&self) {
        let _ = self.wake.send(true);
    }
}

impl Drop for BackgroundSync {
    fn drop(&mut self) {
        let _ = self.wake.send(false);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enrolment_code_is_read_from_its_qr_code_and_a_voucher_qr_is_not_taken() {
        let code = "8C9C-30ZM-16G9-2ZDT";
        let qr = vrs_synth::qr_image(code, 6).unwrap();
        // On a larger grey page, as a phone photographs a screen.
        let mut page = image::GrayImage::from_pixel(900, 700, image::Luma([200]));
        image::imageops::overlay(&mut page, &qr, 300, 180);
        let frame = image::DynamicImage::ImageLuma8(page);
        assert_eq!(enrolment_code_in(&frame).as_deref(), Some(code));
        let voucher = vrs_synth::qr_image("111310161310160001", 6).unwrap();
        assert_eq!(
            enrolment_code_in(&image::DynamicImage::ImageLuma8(voucher)),
            None
        );
        let blank = image::DynamicImage::ImageLuma8(image::GrayImage::new(64, 64));
        assert_eq!(enrolment_code_in(&blank), None);
    }
}
