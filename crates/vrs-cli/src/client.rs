//! `vrs client …`: the tablet without its screen, over the same library the app
//! uses (vrs-client): enrol, set up a session, record doses from images or typed
//! digits, sync, and show the outbox.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::Subcommand;
use vrs_client::frames::{FrameSource, Replay};
use vrs_client::outbox::Correction;
use vrs_client::session::{Effect, Host, Input, Name, Session, Setup, drive};
use vrs_client::sync::{RealClock, SyncOptions};
use vrs_client::tablet::{Connection, SessionSetup, Tablet, today_jst};
use vrs_domain::wire::NameLookupResponse;
use vrs_domain::{ClientRecordId, Lot, OcrLine, Vaccine};

#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// The tablet's data folder: its encrypted outbox and the outbox's key file.
    #[arg(
        long,
        env = "VRS_CLIENT_DIR",
        default_value = ".vrs/tablet",
        value_name = "DIR"
    )]
    dir: PathBuf,
    /// A CA certificate (PEM) to trust for the server, besides the public roots.
    #[arg(long, env = "VRS_CLIENT_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Seconds one request may take before it is given up (and retried by sync).
    #[arg(long, env = "VRS_CLIENT_TIMEOUT", default_value_t = 30.0)]
    timeout: f64,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Subcommand, Debug)]
enum ClientCommand {
    /// Enrol this tablet with the one-time code its municipality registered it with.
    Enrol {
        /// The central service, e.g. https://vrs.example.jp
        #[arg(long, env = "VRS_SERVER")]
        server: String,
        /// The enrolment code (ABCD-EFGH-JKMN-PQRS).
        #[arg(long, required_unless_present = "qr", conflicts_with = "qr")]
        code: Option<String>,
        /// A photo of the enrolment QR code (the municipality's tablets page shows it).
        #[arg(long, value_name = "IMAGE")]
        qr: Option<PathBuf>,
    },
    /// Sign the tablet's user in: without --passcode a passcode is mailed to the
    /// tablet's registered e-mail; with it, the user is signed in (the name look-up
    /// needs it).
    Signin {
        #[arg(long)]
        passcode: Option<String>,
    },
    /// Sign the tablet's user out.
    Signout,
    /// Set up the session: date, vaccine and lot (typed, or from a photo of the
    /// vaccine's GS1 label). An expired lot is refused.
    Setup {
        /// The day of vaccination (default: today, JST).
        #[arg(long)]
        date: Option<NaiveDate>,
        /// pfizer, moderna, astrazeneca, novavax, daiichi_sankyo, meiji_seika
        #[arg(long)]
        vaccine: Vaccine,
        /// The lot number, when typed.
        #[arg(long, conflicts_with = "label", required_unless_present = "label")]
        lot: Option<Lot>,
        /// The lot's expiry, when typed.
        #[arg(long, requires = "lot")]
        expiry: Option<NaiveDate>,
        /// A photo of the vial's or pack's GS1 label: lot and expiry from it.
        #[arg(long, value_name = "IMAGE")]
        label: Option<PathBuf>,
        /// Batch mode: for municipal staff scanning a stack of collected vouchers.
        #[arg(long)]
        batch: bool,
    },
    /// Record doses: vouchers from images (files, or folders of them), or typed.
    Record {
        /// Voucher photos, or folders of them (each image one voucher).
        #[arg(long = "image", value_name = "FILE|DIR")]
        images: Vec<PathBuf>,
        /// The 18 digits of the OCR line, typed.
        #[arg(long, value_name = "DIGITS")]
        manual: Vec<String>,
        /// A folder of camera frames, replayed in name order as the camera would give
        /// them: a voucher counts once the scanner's consensus confirms it.
        #[arg(long, value_name = "DIR")]
        frames: Option<PathBuf>,
        /// With --frames: frames a second (default: as fast as they are read).
        #[arg(long, requires = "frames")]
        fps: Option<f64>,
        /// Confirm every name shown without asking (unattended runs and tests).
        #[arg(long)]
        yes: bool,
    },
    /// Send the outbox to the server, retrying with backoff for up to --for seconds.
    Sync {
        #[arg(long = "for", default_value_t = 120.0, value_name = "SECONDS")]
        for_secs: f64,
        /// Records per request.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// The outbox's counts: queued, sent, confirmed, held (and why).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Correct a held record (by its id from `status`); the correction is queued anew.
    Correct {
        id: uuid::Uuid,
        #[arg(long)]
        date: Option<NaiveDate>,
        #[arg(long)]
        vaccine: Option<Vaccine>,
        #[arg(long)]
        lot: Option<Lot>,
        /// The right 18 digits, when the voucher was misread.
        #[arg(long)]
        voucher: Option<OcrLine>,
    },
}

fn name_text(n: &NameLookupResponse) -> String {
    let part = |v: &Option<String>| v.clone().unwrap_or_default();
    format!(
        "{} {} ({} {})",
        part(&n.family_name),
        part(&n.given_name),
        part(&n.family_kana),
        part(&n.given_kana)
    )
}

fn images_of(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend_from_slice(Replay::folder(p, None)?.paths());
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub fn client(args: ClientArgs) -> Result<ExitCode> {
    let scans = match &args.command {
        ClientCommand::Record { images, frames, .. } => !images.is_empty() || frames.is_some(),
        ClientCommand::Setup { label, .. } => label.is_some(),
        _ => false,
    };
    if scans && let Some(code) = crate::scan::with_one_omp_thread() {
        return Ok(code);
    }
    let ca = args
        .ca
        .as_deref()
        .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()?;
    let connection = Connection {
        ca_pem: ca,
        timeout: Duration::from_secs_f64(args.timeout.max(0.1)),
    };
    let mut tablet = Tablet::open(&args.dir, connection)
        .with_context(|| format!("cannot open the tablet's outbox in {}", args.dir.display()))?;
    match args.command {
        ClientCommand::Enrol { server, code, qr } => {
            let code = match (code, qr) {
                (Some(c), _) => c,
                (None, Some(photo)) => {
                    let img = image::open(&photo)
                        .with_context(|| format!("cannot read {}", photo.display()))?;
                    vrs_client::tablet::enrolment_code_in(&img).with_context(|| {
                        format!(
                            "{}: no enrolment QR code found: photograph it flat and whole, or type --code",
                            photo.display()
                        )
                    })?
                }
                (None, None) => bail!("give --code or --qr"),
            };
            let e = tablet.enrol(&server, &code)?;
            println!(
                "enrolled: device {}\n  {} ({})\n  site: {}",
                e.device_id, e.municipality_name, e.municipality, e.site_name
            );
        }
        ClientCommand::Signin { passcode: None } => {
            tablet.sign_in_start()?;
            println!(
                "a passcode is on its way to the tablet's e-mail; then: vrs client signin --passcode DIGITS"
            );
        }
        ClientCommand::Signin { passcode: Some(p) } => {
            tablet.sign_in(&p)?;
            println!("signed in");
        }
        ClientCommand::Signout => {
            tablet.sign_out()?;
            println!("signed out");
        }
        ClientCommand::Setup {
            date,
            vaccine,
            lot,
            expiry,
            label,
            batch,
        } => {
            let (lot, expiry) = match (lot, label) {
                (Some(l), _) => (l, expiry),
                (None, Some(path)) => {
                    let found = label_of(&path)?;
                    (found.lot, Some(found.expiry))
                }
                (None, None) => bail!("give --lot or --label"),
            };
            let s = SessionSetup {
                date: date.unwrap_or_else(today_jst),
                vaccine,
                lot,
                expiry,
                batch,
            };
            let setup = tablet.set_up(&s)?;
            println!(
                "session: {} {} lot {}{} at {}{}",
                setup.date,
                vaccine,
                setup.lot,
                expiry
                    .map(|e| format!(" (expires {e})"))
                    .unwrap_or_default(),
                tablet.device()?.site_name,
                if batch { ", batch mode" } else { "" }
            );
        }
        ClientCommand::Record {
            images,
            manual,
            frames,
            fps,
            yes,
        } => {
            let stream = frames
                .as_deref()
                .map(|dir| Replay::folder(dir, fps))
                .transpose()?;
            return record(&mut tablet, &images, &manual, stream, yes);
        }
        ClientCommand::Sync { for_secs, batch } => {
            let opts = SyncOptions {
                batch,
                give_up_after: Duration::from_secs_f64(for_secs.max(0.0)),
                ..SyncOptions::default()
            };
            let r = tablet.sync(&opts, &mut RealClock)?;
            let s = &r.status;
            println!(
                "sent {} records in {} batches ({} accepted, {} already stored, {} held; {} retries)",
                r.records_sent, r.batches, r.accepted, r.duplicates, r.held, r.retries
            );
            println!(
                "outbox: saved {}, queued {}, sent {}, confirmed {}, held {}",
                s.saved, s.queued, s.sent, s.confirmed, s.held
            );
            if let Some(why) = &r.stopped {
                eprintln!("sync stopped: {why}");
                return Ok(ExitCode::from(3));
            }
        }
        ClientCommand::Status { json } => {
            let s = tablet.status()?;
            let held = tablet.outbox().held()?;
            let refused = tablet.outbox().refused()?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "status": s, "held": held, "refused": refused })
                );
            } else {
                println!(
                    "saved {}: queued {}, sent {}, confirmed {}, held {}, corrected {}, refused {}",
                    s.saved, s.queued, s.sent, s.confirmed, s.held, s.superseded, s.refused
                );
                if s.unconfirmed_names > 0 {
                    println!("  {} saved without the name shown", s.unconfirmed_names);
                }
                if let Some(e) = &s.last_error {
                    println!("  last sync error: {e}");
                }
                for h in held {
                    let detail = if h.detail.is_empty() || h.detail == h.reason_ja {
                        String::new()
                    } else {
                        format!(" ({})", h.detail)
                    };
                    println!(
                        "  held {}: {} {} dose {} on {}: {}{detail}",
                        h.record.client_record_id,
                        h.record.municipality,
                        h.record.voucher,
                        h.record.dose_number,
                        h.record.vaccinated_on,
                        h.reason_ja,
                    );
                }
                for r in refused {
                    println!(
                        "  refused {}: {} {} dose {} on {}: {}",
                        r.record.client_record_id,
                        r.record.municipality,
                        r.record.voucher,
                        r.record.dose_number,
                        r.record.vaccinated_on,
                        r.detail,
                    );
                }
            }
        }
        ClientCommand::Correct {
            id,
            date,
            vaccine,
            lot,
            voucher,
        } => {
            let fixed = tablet.outbox().correct(
                ClientRecordId(id),
                &Correction {
                    vaccinated_on: date,
                    vaccine,
                    lot,
                    voucher,
                },
            )?;
            println!(
                "queued the correction as {} (the held record stays with the municipality)",
                fixed.client_record_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn label_of(path: &Path) -> Result<vrs_domain::gs1::VaccineLabel> {
    let mut scanner = vrs_scan::Scanner::new().context("cannot start the scanner")?;
    let mut frames = Replay::files(vec![path.to_owned()], None);
    let frame = frames.next_frame()?.context("no frame")?;
    scanner
        .scan(&frame)
        .lot
        .with_context(|| format!("{}: no GS1 label with lot and expiry found: photograph the label again, closer and flat, or type --lot", path.display()))
}

/// Runs the session over the inputs, carrying out its effects.
fn record(
    tablet: &mut Tablet,
    images: &[PathBuf],
    manual: &[String],
    stream: Option<Replay>,
    yes: bool,
) -> Result<ExitCode> {
    let (setup, mode) = tablet.setup()?;
    let session = Session::new(setup.clone(), mode);
    let mut inputs: Vec<(String, Option<Input>)> = manual
        .iter()
        .map(|d| (format!("typed {d}"), Some(Input::Typed(d.clone()))))
        .collect();
    let files = images_of(images)?;
    let mut scanner = if files.is_empty() && stream.is_none() {
        None
    } else {
        Some(vrs_scan::Scanner::new().context("cannot start the scanner")?)
    };
    for f in &files {
        let read = match (image::open(f), scanner.as_mut()) {
            (Ok(img), Some(s)) => s.scan(&img).voucher.map(|v| Input::Read(v.line)),
            (Err(e), _) => {
                eprintln!("{}: cannot be read: {e}", f.display());
                None
            }
            (Ok(_), None) => None,
        };
        inputs.push((f.display().to_string(), read));
    }
    if let (Some(mut stream), Some(scanner)) = (stream, scanner.as_mut()) {
        let mut consensus = vrs_scan::Consensus::default();
        let mut n = 0usize;
        while let Some(frame) = stream.next_frame()? {
            n += 1;
            let read = scanner.scan(&frame).voucher.map(|v| v.line);
            if let vrs_scan::Event::Confirmed(line) = consensus.push(read) {
                inputs.push((format!("frame {n}"), Some(Input::Read(line))));
            }
        }
    }
    let mut host = Shell {
        tablet,
        session,
        setup,
        what: String::new(),
        yes,
        not_read: 0,
    };
    for (what, input) in inputs {
        let Some(input) = input else {
            println!(
                "{what}: no voucher read: photograph it again, or type its 18 digits (--manual)"
            );
            host.not_read += 1;
            continue;
        };
        host.what = what;
        drive(&mut host, input)?;
    }
    let (session, not_read) = (host.session, host.not_read);
    println!("saved {} in this run", session.saved());
    Ok(if not_read > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `vrs client record` as the session's host: names printed, the nurse asked on
/// the terminal (or `--yes`), doses saved in the outbox.
struct Shell<'t> {
    tablet: &'t mut Tablet,
    session: Session,
    setup: Setup,
    /// The input being handled, for the messages ("typed …", a file, "frame 12").
    what: String,
    yes: bool,
    not_read: usize,
}

impl Host for Shell<'_> {
    type Error = anyhow::Error;

    fn step(&mut self, input: Input) -> Result<Vec<Effect>> {
        Ok(self.session.step(input))
    }

    fn look_up_name(&mut self, line: OcrLine) -> Result<Input> {
        Ok(self.tablet.look_up_name(&line)?.into_input(line))
    }

    fn name_shown(&mut self, line: OcrLine) -> Result<Option<Input>> {
        let vrs_client::session::State::Confirming { name, .. } = self.session.state() else {
            return Ok(None);
        };
        let shown = match name {
            Name::Found(n) => name_text(n),
            Name::Unknown => "(no one registered with this voucher)".into(),
            _ => "(offline: saved unconfirmed, matched by the server later)".into(),
        };
        println!(
            "{}: {} dose {} of {}: {shown}",
            self.what, line.number, line.dose, line.municipality
        );
        let ok = self.yes || {
            print!("  record this dose? [y/N] ");
            io::stdout().flush()?;
            let mut answer = String::new();
            io::stdin().lock().read_line(&mut answer)?;
            matches!(answer.trim(), "y" | "Y" | "yes")
        };
        Ok(Some(if ok { Input::Confirm } else { Input::Reject }))
    }

    fn save(&mut self, line: OcrLine, confirmed: bool) -> Result<()> {
        let r = self.tablet.save(&self.setup, line, confirmed)?;
        println!(
            "  saved {}: {} {} dose {} ({} {}, lot {})",
            r.client_record_id,
            r.municipality,
            r.voucher,
            r.dose_number,
            r.vaccinated_on,
            r.vaccine,
            r.lot
        );
        Ok(())
    }

    fn tell(&mut self, effect: &Effect) -> Result<()> {
        match effect {
            Effect::AlreadyInBatch(line) => println!(
                "{}: {} is in this batch already: not saved again",
                self.what, line.number
            ),
            Effect::Invalid(why) => {
                println!("{}: {why}", self.what);
                self.not_read += 1;
            }
            _ => {}
        }
        Ok(())
    }
}
