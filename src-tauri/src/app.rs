//! The app's commands: each one a few lines over `vrs_client::tablet::Tablet`, its
//! answer a view the web view shows. Events: `session` (the scan session changed),
//! `cue` (a success or failure to show and sound), `sync` (a sync ended), `frame`,
//! `label`, `enrol-code` and `camera` (from `camera.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager, State};
use vrs_client::outbox::{Correction, HeldEntry, Status};
use vrs_client::session::{Effect, Host, Input, Mode, Name, Session, Setup, drive};
use vrs_client::sync::SyncOptions;
use vrs_client::tablet::{
    BackgroundSync, Connection, LotEntry, SessionSetup, Settings, Tablet, TabletError,
};
use vrs_domain::{ClientRecordId, Lot, OcrLine, Vaccine};

use crate::options::Options;

/// What the camera thread is asked to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Look {
    Off,
    Voucher,
    Label,
    Enrol,
}

/// The app's state, shared by the commands and the camera thread.
#[derive(Debug)]
pub struct Shared {
    inner: Mutex<Inner>,
    pub options: Options,
}

#[derive(Debug)]
pub struct Inner {
    pub tablet: Tablet,
    dir: PathBuf,
    connection: Connection,
    pub session: Option<Session>,
    pub look: Look,
    /// Asked by the user: start the replay from its first image.
    pub replay_again: bool,
    /// The camera thread's view of its source, for the screens.
    pub source: SourceInfo,
    batch: Vec<BatchEntry>,
    sync: Option<BackgroundSync>,
    last_sync: Option<SyncNote>,
    app: AppHandle,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceInfo {
    /// "camera", "replay" or "none".
    pub kind: String,
    /// Whether the camera has a torch the app can switch.
    pub torch: bool,
    /// The replay has shown its last image.
    pub ended: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
struct BatchEntry {
    number: String,
    municipality: String,
    dose: u8,
}

#[derive(Clone, Debug, Serialize)]
struct SyncNote {
    ok: bool,
    at: String,
    records_sent: u64,
    accepted: u64,
    held: u64,
    duplicates: u64,
    error: Option<String>,
}

type Answer<T> = Result<T, String>;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A typed field's error: what is wrong, and what to do.
fn field(e: vrs_domain::IdError) -> String {
    format!("{e}: {}", e.fix())
}

impl Shared {
    pub fn open(dir: &Path, options: Options, app: AppHandle) -> anyhow::Result<Shared> {
        std::fs::create_dir_all(dir)?;
        let connection = Connection {
            ca_pem: match &options.ca_cert {
                Some(p) => Some(std::fs::read(p)?),
                None => None,
            },
            // The name look-up happens while the nurse waits: a dead network must
            // not hold the screen long (the record is then saved unconfirmed).
            timeout: Duration::from_secs(8),
        };
        let tablet = Tablet::open(dir, connection.clone())?;
        let mut inner = Inner {
            tablet,
            dir: dir.to_owned(),
            connection,
            session: None,
            look: Look::Off,
            replay_again: false,
            source: SourceInfo::default(),
            batch: Vec::new(),
            sync: None,
            last_sync: None,
            app,
        };
        if inner.tablet.device().is_ok() {
            inner.start_sync()?;
        }
        Ok(Shared {
            inner: Mutex::new(inner),
            options,
        })
    }

    /// One input to the scan session, its effects carried out (see
    /// [`vrs_client::session::drive`]); the session's view and any cue are sent to the
    /// web view. The lock is taken for each step and let go while the server is
    /// asked for a name.
    pub fn drive(&self, input: Input) -> Answer<()> {
        if self.lock().session.is_none() {
            return Err(text(TabletError::NoSetup));
        }
        let r = drive(&mut AppHost { shared: self }, input);
        self.lock().emit_session();
        r
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere leaves the data as it was: every change is one outbox
        // transaction, so the state is still good to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn start_sync(&mut self) -> Result<(), TabletError> {
        let app = self.app.clone();
        let opts = SyncOptions {
            // Report often: the status screen shows each attempt; the next round
            // picks up what is left.
            give_up_after: Duration::from_secs(10),
            max_delay: Duration::from_secs(5),
            ..SyncOptions::default()
        };
        self.sync = Some(BackgroundSync::start(
            &self.dir,
            self.connection.clone(),
            opts,
            Duration::from_secs(15),
            move |r| {
                let at = vrs_domain::date::jst_now().format("%H:%M:%S").to_string();
                let note = match r {
                    Ok(rep) => SyncNote {
                        ok: rep.stopped.is_none(),
                        at,
                        records_sent: rep.records_sent,
                        accepted: rep.accepted,
                        held: rep.held,
                        duplicates: rep.duplicates,
                        error: rep.stopped,
                    },
                    Err(e) => SyncNote {
                        ok: false,
                        at,
                        records_sent: 0,
                        accepted: 0,
                        held: 0,
                        duplicates: 0,
                        error: Some(e),
                    },
                };
                // Kept for the status screen (not yet there while the app starts).
                if let Some(shared) = app.try_state::<Shared>() {
                    shared.lock().last_sync = Some(note.clone());
                }
                let _ = app.emit("sync", note);
            },
        )?);
        Ok(())
    }

    fn sync_soon(&self) {
        if let Some(s) = &self.sync {
            s.now();
        }
    }

    pub fn emit_session(&self) {
        let _ = self.app.emit("session", self.session_view());
    }

    fn session_view(&self) -> Option<SessionView> {
        let s = self.session.as_ref()?;
        let confirming = match s.state() {
            vrs_client::session::State::Scanning => None,
            vrs_client::session::State::Confirming { line, name } => {
                Some(ConfirmView::new(line, name))
            }
        };
        Some(SessionView {
            mode: if s.mode == Mode::Batch {
                "batch"
            } else {
                "single"
            },
            date: s.setup.date,
            vaccine: s.setup.vaccine,
            lot: s.setup.lot.to_string(),
            saved: s.saved(),
            confirming,
            batch: self.batch.iter().rev().take(50).cloned().collect(),
        })
    }
}

/// The app as the scan session's host: a cue for each effect, the lock held only
/// while the session and the outbox are touched.
struct AppHost<'s> {
    shared: &'s Shared,
}

impl Host for AppHost<'_> {
    type Error = String;

    fn step(&mut self, input: Input) -> Answer<Vec<Effect>> {
        let mut inner = self.shared.lock();
        let session = inner
            .session
            .as_mut()
            .ok_or_else(|| text(TabletError::NoSetup))?;
        Ok(session.step(input))
    }

    fn look_up_name(&mut self, line: OcrLine) -> Answer<Input> {
        let ready = {
            let inner = self.shared.lock();
            // "Asking" on screen while the server answers.
            inner.emit_session();
            inner.tablet.name_lookup(&line)
        };
        let answer = ready.and_then(|lookup| lookup.send());
        let inner = self.shared.lock();
        Ok(match answer {
            Ok(name) => name.into_input(line),
            Err(TabletError::SignInNeeded(why)) => {
                // The server no longer takes the session: forget it.
                let mut inner = inner;
                let _ = inner.tablet.sign_out();
                cue(&inner.app, "fail", "signin_needed", &why);
                Input::Reject
            }
            Err(e) => {
                cue(&inner.app, "fail", "error", &e.to_string());
                Input::Reject
            }
        })
    }

    fn name_shown(&mut self, _: OcrLine) -> Answer<Option<Input>> {
        // The nurse answers on the screen: confirm or reject come as commands.
        Ok(None)
    }

    fn save(&mut self, line: OcrLine, confirmed: bool) -> Answer<()> {
        let mut inner = self.shared.lock();
        let setup = inner
            .session
            .as_ref()
            .map(|s| s.setup.clone())
            .ok_or_else(|| text(TabletError::NoSetup))?;
        let r = inner.tablet.save(&setup, line, confirmed).map_err(text)?;
        inner.batch.push(BatchEntry {
            number: line.number.to_string(),
            municipality: line.municipality.to_string(),
            dose: line.dose.get(),
        });
        cue(&inner.app, "ok", "saved", &r.voucher.to_string());
        inner.sync_soon();
        Ok(())
    }

    fn tell(&mut self, effect: &Effect) -> Answer<()> {
        let inner = self.shared.lock();
        let app = &inner.app;
        match effect {
            Effect::AlreadyInBatch(line) => {
                cue(app, "warn", "already_in_batch", &line.number.to_string())
            }
            Effect::Invalid(why) => cue(app, "fail", "invalid", why),
            Effect::UnknownVoucher(line) => {
                cue(app, "warn", "unknown_voucher", &line.number.to_string())
            }
            Effect::LookUpName(_) | Effect::Save { .. } | Effect::Ready => {}
        }
        Ok(())
    }
}

/// Tells the web view to show and sound a cue: `kind` is ok, warn or fail; `key`
/// picks the message in the UI's language; `detail` is shown with it.
pub fn cue(app: &AppHandle, kind: &str, key: &str, detail: &str) {
    let _ = app.emit(
        "cue",
        serde_json::json!({ "kind": kind, "key": key, "detail": detail }),
    );
}

#[derive(Clone, Debug, Serialize)]
struct SessionView {
    mode: &'static str,
    date: NaiveDate,
    vaccine: Vaccine,
    lot: String,
    saved: usize,
    confirming: Option<ConfirmView>,
    batch: Vec<BatchEntry>,
}

#[derive(Clone, Debug, Serialize)]
struct ConfirmView {
    number: String,
    municipality: String,
    dose: u8,
    /// asking, found, unknown or offline.
    name: &'static str,
    family: String,
    given: String,
    kana: String,
}

impl ConfirmView {
    fn new(line: &OcrLine, name: &Name) -> ConfirmView {
        let (kind, family, given, kana) = match name {
            Name::Asking => ("asking", "", "", String::new()),
            Name::Unknown => ("unknown", "", "", String::new()),
            Name::Offline => ("offline", "", "", String::new()),
            Name::Found(n) => (
                "found",
                n.family_name.as_deref().unwrap_or(""),
                n.given_name.as_deref().unwrap_or(""),
                [n.family_kana.as_deref(), n.given_kana.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        };
        ConfirmView {
            number: line.number.to_string(),
            municipality: line.municipality.to_string(),
            dose: line.dose.get(),
            name: kind,
            family: family.to_owned(),
            given: given.to_owned(),
            kana,
        }
    }
}

/// Everything the web view needs to choose its screen.
#[derive(Debug, Serialize)]
pub struct AppView {
    enrolled: bool,
    server: Option<String>,
    /// An enrolment code given at start (the demo's), to offer.
    code: Option<String>,
    device: Option<String>,
    site_name: Option<String>,
    municipality: Option<String>,
    signed_in: bool,
    setup: Option<SessionSetup>,
    session: Option<SessionView>,
    today: NaiveDate,
    vaccines: Vec<(Vaccine, &'static str)>,
    lots: Vec<LotEntry>,
    lang: String,
    source: SourceInfo,
    version: &'static str,
}

fn view(shared: &Shared, inner: &Inner) -> AppView {
    let enrolled = inner.tablet.device().ok();
    let signed_in = inner.tablet.signed_in();
    let settings = inner.tablet.settings().unwrap_or_default();
    AppView {
        server: inner
            .tablet
            .outbox_ref()
            .enrolment()
            .ok()
            .map(|e| e.server)
            .or_else(|| shared.options.server.clone()),
        code: shared.options.code.clone(),
        device: enrolled.as_ref().map(|d| d.device_id.to_string()),
        site_name: enrolled.as_ref().map(|d| d.site_name.clone()),
        municipality: enrolled.as_ref().map(|d| d.municipality.to_string()),
        enrolled: enrolled.is_some(),
        signed_in,
        setup: inner.tablet.session_setup().ok().flatten(),
        session: inner.session_view(),
        today: vrs_client::tablet::today_jst(),
        vaccines: Vaccine::ALL.iter().map(|v| (*v, v.maker_ja())).collect(),
        lots: inner.tablet.lots().unwrap_or_default(),
        lang: settings.lang.unwrap_or_else(|| shared.options.lang.clone()),
        source: inner.source.clone(),
        version: env!("CARGO_PKG_VERSION"),
    }
}

#[tauri::command]
pub async fn state(shared: State<'_, Shared>) -> Answer<AppView> {
    let inner = shared.lock();
    Ok(view(&shared, &inner))
}

#[tauri::command]
pub async fn enrol(shared: State<'_, Shared>, server: String, code: String) -> Answer<AppView> {
    let mut inner = shared.lock();
    inner
        .tablet
        .enrol(server.trim(), code.trim())
        .map_err(text)?;
    inner.start_sync().map_err(text)?;
    Ok(view(&shared, &inner))
}

#[tauri::command]
pub async fn sign_in_start(shared: State<'_, Shared>) -> Answer<()> {
    shared.lock().tablet.sign_in_start().map_err(text)
}

#[tauri::command]
pub async fn sign_in(shared: State<'_, Shared>, passcode: String) -> Answer<AppView> {
    let mut inner = shared.lock();
    inner.tablet.sign_in(passcode.trim()).map_err(text)?;
    Ok(view(&shared, &inner))
}

#[tauri::command]
pub async fn sign_out(shared: State<'_, Shared>) -> Answer<AppView> {
    let mut inner = shared.lock();
    inner.tablet.sign_out().map_err(text)?;
    inner.session = None;
    inner.look = Look::Off;
    Ok(view(&shared, &inner))
}

/// The set-up screen's form.
#[derive(Debug, Deserialize)]
pub struct SetupForm {
    date: NaiveDate,
    vaccine: Vaccine,
    lot: String,
    expiry: Option<NaiveDate>,
    batch: bool,
}

#[tauri::command]
pub async fn set_up(shared: State<'_, Shared>, form: SetupForm) -> Answer<AppView> {
    let lot: Lot = form.lot.trim().parse().map_err(field)?;
    let s = SessionSetup {
        date: form.date,
        vaccine: form.vaccine,
        lot: lot.clone(),
        expiry: form.expiry,
        batch: form.batch,
    };
    let mut inner = shared.lock();
    let setup: Setup = inner.tablet.set_up(&s).map_err(text)?;
    inner
        .tablet
        .remember_lot(LotEntry {
            vaccine: s.vaccine,
            lot,
            expiry: s.expiry,
        })
        .map_err(text)?;
    let mode = if s.batch { Mode::Batch } else { Mode::Single };
    inner.session = Some(Session::new(setup, mode));
    inner.batch.clear();
    Ok(view(&shared, &inner))
}

#[tauri::command]
pub async fn camera(shared: State<'_, Shared>, look: Look) -> Answer<SourceInfo> {
    let mut inner = shared.lock();
    if look == Look::Voucher && inner.session.is_none() {
        // The app was restarted: the session set up last carries on.
        let (setup, mode) = inner.tablet.setup().map_err(text)?;
        inner.session = Some(Session::new(setup, mode));
        inner.emit_session();
    }
    inner.look = look;
    Ok(inner.source.clone())
}

#[tauri::command]
pub async fn replay_again(shared: State<'_, Shared>) -> Answer<()> {
    shared.lock().replay_again = true;
    Ok(())
}

#[tauri::command]
pub async fn typed(shared: State<'_, Shared>, digits: String) -> Answer<()> {
    shared.drive(Input::Typed(digits))
}

#[tauri::command]
pub async fn confirm(shared: State<'_, Shared>) -> Answer<()> {
    shared.drive(Input::Confirm)
}

#[tauri::command]
pub async fn reject(shared: State<'_, Shared>) -> Answer<()> {
    shared.drive(Input::Reject)
}

/// Ends the batch (or the session): back to the set-up screen.
#[tauri::command]
pub async fn end_batch(shared: State<'_, Shared>) -> Answer<AppView> {
    let mut inner = shared.lock();
    inner.session = None;
    inner.look = Look::Off;
    inner.batch.clear();
    inner.sync_soon();
    Ok(view(&shared, &inner))
}

#[derive(Debug, Serialize)]
pub struct StatusView {
    status: Status,
    held: Vec<HeldEntry>,
    refused: Vec<vrs_client::outbox::RefusedEntry>,
    last_sync: Option<SyncNote>,
}

#[tauri::command]
pub async fn status(shared: State<'_, Shared>) -> Answer<StatusView> {
    let inner = shared.lock();
    Ok(StatusView {
        status: inner.tablet.status().map_err(text)?,
        held: inner.tablet.outbox_ref().held().map_err(text)?,
        refused: inner.tablet.outbox_ref().refused().map_err(text)?,
        last_sync: inner.last_sync.clone(),
    })
}

#[tauri::command]
pub async fn sync_now(shared: State<'_, Shared>) -> Answer<()> {
    shared.lock().sync_soon();
    Ok(())
}

/// A held record's correction, from the status screen.
#[derive(Debug, Deserialize)]
pub struct CorrectionForm {
    id: String,
    date: Option<NaiveDate>,
    lot: Option<String>,
    voucher: Option<String>,
}

#[tauri::command]
pub async fn correct(shared: State<'_, Shared>, form: CorrectionForm) -> Answer<StatusView> {
    let id = uuid::Uuid::parse_str(&form.id)
        .map(ClientRecordId)
        .map_err(|e| format!("record id {:?}: {e}", form.id))?;
    let change = Correction {
        vaccinated_on: form.date,
        vaccine: None,
        lot: match form.lot.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(l) => Some(l.parse().map_err(field)?),
            None => None,
        },
        voucher: match form
            .voucher
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(v) => Some(v.parse().map_err(field)?),
            None => None,
        },
    };
    if change == Correction::default() {
        return Err("change the date, the lot or the voucher's 18 digits first".into());
    }
    {
        let mut inner = shared.lock();
        inner.tablet.outbox().correct(id, &change).map_err(text)?;
        inner.sync_soon();
    }
    status(shared).await
}

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    lang: String,
}

#[tauri::command]
pub async fn settings(shared: State<'_, Shared>, form: SettingsForm) -> Answer<AppView> {
    if form.lang != "ja" && form.lang != "en" {
        return Err(format!("language {:?}: ja or en", form.lang));
    }
    let inner = shared.lock();
    inner
        .tablet
        .save_settings(&Settings {
            lang: Some(form.lang),
        })
        .map_err(text)?;
    Ok(view(&shared, &inner))
}
