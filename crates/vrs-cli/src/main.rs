//! `vrs`: one command line for the vaccination record system.
//!
//! Each subcommand is a thin shell over a library crate; logic lives there.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use vrs_domain::csv::register::{ReadOptions, RegisterReader};
use vrs_domain::csv::{Encoding, OutputEncoding, ReadError};
use vrs_domain::synth::{RegisterSpec, write_register};

mod client;
mod devices;
mod lots;
mod scan;
mod users;

#[derive(Parser, Debug)]
#[command(
    name = "vrs",
    version,
    about = "ワクチン接種記録システム (vaccination record system)",
    long_about = "ワクチン接種記録システム (vaccination record system): the central service, \
                  the tablet's core and the tools around them, in one command.\n\n\
                  Every option can also be set through the environment variable shown \
                  beside it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the central service (the API at /api, its OpenAPI at /api/openapi.json).
    ///
    /// Keeps its data in an embedded, encrypted SQLite store in the data folder; its
    /// keys come from VRS_VAULT_KEY, VRS_LOOKUP_KEY and VRS_DB_KEY (hex) when set,
    /// else from the key file (made on first start, readable by its owner only).
    Serve(ServeArgs),
    /// Operator tasks: municipalities, staff tokens, tablets, the access log.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check target-person register CSVs (接種対象者) without storing anything.
    ///
    /// Prints every bad row with its line, field and what to do, then a summary per
    /// file and for all files: rows, valid, invalid by reason. Exits 0 when every row
    /// of every file is valid, 1 when a row is invalid, 2 when a file cannot be read.
    ValidateRegister(ValidateArgs),
    /// Make synthetic data for trials, benchmarks and tests (deterministic by seed).
    #[command(subcommand)]
    Fixtures(FixturesCommand),
    /// Read vouchers (QR, NW-7, the 18-digit OCR line) and vaccine labels (GS1) from
    /// images; score the scanner against a fixture folder; replay frames as a camera.
    ///
    /// A voucher is reported only when it validates and both OCR readers agree; an
    /// unreadable or invalid one is null, never a guess.
    Scan(scan::ScanArgs),
    /// The tablet without its screen: enrol, set up a session, record doses from
    /// voucher photos or typed digits, sync the encrypted outbox, show its status.
    Client(client::ClientArgs),
}

#[derive(clap::Args, Debug)]
struct DataArgs {
    /// The data folder: the database, the マイナンバー vault and (by default) the key file.
    #[arg(
        long,
        env = "VRS_DATA",
        default_value = ".vrs/data",
        value_name = "DIR"
    )]
    data: PathBuf,
    /// The key file, when the keys are not in the environment.
    #[arg(long, env = "VRS_KEY_FILE", value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// A PostgreSQL URL (postgres://…) to keep the data there instead of the data
    /// folder (the `vrs` schema).
    #[arg(long, env = "VRS_DATABASE", value_name = "URL")]
    database: Option<String>,
    /// The PostgreSQL URL of the マイナンバー vault (the `vrs_vault` schema), with a role
    /// of its own. Defaults to --database.
    #[arg(
        long,
        env = "VRS_VAULT_DATABASE",
        value_name = "URL",
        requires = "database"
    )]
    vault_database: Option<String>,
}

impl DataArgs {
    fn keys(&self) -> Result<vrs_server::Keys> {
        Ok(match vrs_server::Keys::from_env()? {
            Some(k) => k,
            None => vrs_server::Keys::load_or_create(
                &self
                    .key_file
                    .clone()
                    .unwrap_or_else(|| self.data.join("keys")),
            )?,
        })
    }

    /// The store: PostgreSQL when --database is given, else SQLite in the data folder.
    fn open(&self) -> Result<std::sync::Arc<dyn vrs_server::Store>> {
        let keys = self.keys()?;
        Ok(match &self.database {
            Some(url) => {
                let vault = self.vault_database.as_deref().unwrap_or(url);
                std::sync::Arc::new(
                    vrs_server::postgres::PgStore::open(url, vault, &keys)
                        .context("cannot open the PostgreSQL store (check --database)")?,
                )
            }
            None => std::sync::Arc::new(
                vrs_server::SqliteStore::open(&self.data, keys)
                    .with_context(|| format!("cannot open the store in {}", self.data.display()))?,
            ),
        })
    }
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "VRS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    data: DataArgs,
    /// Seed the demo municipality (Chiyoda, 131016) and print its staff token and its
    /// tablet's enrolment code.
    #[arg(long, env = "VRS_DEMO")]
    demo: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "VRS_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, PKCS#8 or PKCS#1 or SEC1).
    #[arg(long, env = "VRS_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How many synthetic residents the demo registers.
    #[arg(long, env = "VRS_DEMO_RESIDENTS", default_value_t = 5000)]
    demo_residents: u64,
    /// The SMTP server sign-in passcodes are sent through. Without it they are
    /// written as .eml files to the mail folder (DIR/mail), for trials and the demo.
    #[arg(long, env = "VRS_SMTP_HOST", value_name = "HOST")]
    smtp_host: Option<String>,
    #[arg(long, env = "VRS_SMTP_PORT", default_value_t = 587)]
    smtp_port: u16,
    /// none (a relay on loopback or the municipal network), starttls or tls.
    #[arg(long, env = "VRS_SMTP_TLS", default_value = "starttls")]
    smtp_tls: vrs_server::mail::SmtpTls,
    /// The SMTP user; the password comes from VRS_SMTP_PASSWORD only.
    #[arg(long, env = "VRS_SMTP_USER")]
    smtp_user: Option<String>,
    /// The sender of passcode mails.
    #[arg(
        long,
        env = "VRS_MAIL_FROM",
        default_value = "VRS <noreply@vrs.example.jp>"
    )]
    mail_from: String,
}

impl ServeArgs {
    fn mailer(&self) -> Result<vrs_server::mail::Mailer> {
        Ok(match &self.smtp_host {
            Some(host) => vrs_server::mail::Mailer::smtp(&vrs_server::mail::SmtpConfig {
                host: host.clone(),
                port: self.smtp_port,
                tls: self.smtp_tls,
                user: self.smtp_user.clone(),
                password: std::env::var("VRS_SMTP_PASSWORD")
                    .ok()
                    .map(zeroize::Zeroizing::new),
                from: self.mail_from.clone(),
            })?,
            None => vrs_server::mail::Mailer::Folder(self.data.data.join("mail")),
        })
    }
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check every chain of the access log; exit 1 naming each break.
    Verify {
        #[command(flatten)]
        data: DataArgs,
        /// A head printed earlier by `vrs admin audit head` (CHAIN:SEQ:HASH), to
        /// catch entries cut off the end. Repeatable.
        #[arg(long = "head", value_name = "CHAIN:SEQ:HASH")]
        heads: Vec<String>,
    },
    /// Print each chain's last entry as CHAIN:SEQ:HASH, to keep somewhere else.
    Head {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// The access log: verify its chains, or print their heads.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Add or update a municipality and its transfer contact (転出入連絡先).
    Municipality {
        #[command(flatten)]
        data: DataArgs,
        /// 市町村コード, 6 digits.
        #[arg(long)]
        code: vrs_domain::MunicipalityCode,
        /// Its name, e.g. 東京都千代田区.
        #[arg(long)]
        name: String,
        /// Whom other municipalities call about a transfer.
        #[arg(long, default_value = "")]
        transfer_contact: String,
    },
    /// Make an access token for a staff member (or, with --operator, for the
    /// operator's use of the API: the lot master), printed once.
    Token {
        #[command(flatten)]
        data: DataArgs,
        /// The municipality the token acts for.
        #[arg(long, required_unless_present = "operator")]
        municipality: Option<vrs_domain::MunicipalityCode>,
        /// The staff member's e-mail (lg.jp).
        #[arg(long, required_unless_present = "operator")]
        staff: Option<String>,
        /// A token for the operator (named here), who keeps the lot master and
        /// reaches no municipality's data.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["municipality", "staff"])]
        operator: Option<String>,
    },
    /// Tablets: register one (prints its one-time enrolment code), list, revoke.
    #[command(subcommand)]
    Device(devices::DeviceCommand),
    /// Municipal users (様式1): add, list, remove.
    #[command(subcommand)]
    User(users::UserCommand),
    /// The lot master (vaccine, lot, expiry, GTIN): add, import a file, list.
    #[command(subcommand)]
    Lot(lots::LotCommand),
}

#[derive(clap::Args, Debug)]
struct ValidateArgs {
    /// Register CSV files, UTF-8 (with or without BOM) or CP932 (Shift_JIS).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Text encoding of the files: auto, utf-8 or cp932.
    #[arg(long, default_value = "auto", env = "VRS_ENCODING")]
    encoding: Encoding,
    /// Reject birth dates after this day (YYYY-MM-DD). Defaults to today.
    #[arg(long, value_name = "DATE")]
    today: Option<chrono::NaiveDate>,
    /// Print only the summaries, not each bad row.
    #[arg(long)]
    summary_only: bool,
}

#[derive(Subcommand, Debug)]
enum FixturesCommand {
    /// Write a synthetic register CSV. Every マイナンバー in it is made up.
    Register {
        /// How many rows.
        #[arg(long, default_value_t = 1000)]
        rows: u64,
        /// Seed: the same seed writes the same file.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output encoding: utf-8, utf-8-bom or cp932.
        #[arg(long, default_value = "utf-8")]
        encoding: OutputEncoding,
        /// Make every N-th row bad, cycling through the kinds of fault (0: none).
        #[arg(long, default_value_t = 0, value_name = "N")]
        bad_every: u64,
        /// Leave out the header row.
        #[arg(long)]
        no_header: bool,
        /// The first 個別宛名番号.
        #[arg(long, default_value_t = 100_000_001)]
        first_person_id: u64,
        /// The first 券番号.
        #[arg(long, default_value_t = 1_000_000_001)]
        first_voucher: u64,
        /// Where to write; standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Write synthetic voucher and vaccine-label photos (JPEG) with truth.json, and
    /// camera streams (streams/stream-NNN/ with streams.json), for `vrs scan --eval`
    /// and `vrs scan --stream`. Needs fonts-ocr-b and fonts-noto-cjk.
    Vouchers {
        /// How many single photos.
        #[arg(long, default_value_t = 200)]
        count: usize,
        /// How many streams.
        #[arg(long, default_value_t = 0)]
        streams: usize,
        /// Frames per stream.
        #[arg(long, default_value_t = 30)]
        frames: usize,
        /// Seed: the same seed writes the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Frame sizes to draw from (WIDTHxHEIGHT, comma-separated).
        #[arg(long, default_value = "1280x720,1920x1080", value_delimiter = ',', value_parser = scan::parse_size)]
        sizes: Vec<(u32, u32)>,
        /// The same for the streams.
        #[arg(long, default_value = "1280x720,1920x1080", value_delimiter = ',', value_parser = scan::parse_size)]
        stream_sizes: Vec<(u32, u32)>,
        /// Photos under everyday desk conditions instead of the ordinary mix: turned
        /// any way, upside down, sideways, portrait, strong perspective, close up,
        /// far, 4K, low light, pen marks, a stamp, a curved or creased line, a phone's
        /// screen; and two vouchers in view (must give none). Each is its own scene.
        #[arg(long)]
        desk: bool,
        /// The folder to write into (made if missing).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Write photos of the demo residents' vouchers (the first of `vrs serve --demo`'s
    /// register, in order), for the tablet app to replay as its camera. Needs
    /// fonts-ocr-b and fonts-noto-cjk.
    DemoVouchers {
        /// How many residents, from the first.
        #[arg(long, default_value_t = 6)]
        count: u64,
        /// Skip this many residents first (a second set that is not yet recorded).
        #[arg(long, default_value_t = 0)]
        skip: u64,
        /// The dose the vouchers are for.
        #[arg(long, default_value_t = 1)]
        dose: u8,
        /// The folder to write into (made if missing): 0000.jpg, 0001.jpg, …
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Render the scanner's OCR-B digit templates (models/ocrb-digits.png) from the
    /// OCR-B font.
    OcrbTemplates {
        #[arg(long, default_value = "/usr/share/fonts/opentype/ocr-b/OCRB.otf")]
        font: PathBuf,
        #[arg(long, short, default_value = "models/ocrb-digits.png")]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Admin(cmd) => admin(cmd),
        Command::ValidateRegister(args) => validate_register(&args),
        Command::Fixtures(cmd) => fixtures(cmd).map(|()| ExitCode::SUCCESS),
        Command::Scan(args) => scan::scan(args),
        Command::Client(args) => client::client(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vrs: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VRS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .init();
    let store = args.data.open()?;
    if args.demo {
        let demo = vrs_server::demo::seed(store.as_ref(), args.demo_residents)?;
        std::fs::create_dir_all(&args.data.data)?;
        let tokens = args.data.data.join("demo-tokens.txt");
        let code = demo.enrolment_code.as_deref().unwrap_or("(enrolled)");
        write_private(
            &tokens,
            &format!(
                "staff {}\nenrolment {code}\ndevice {}\n",
                demo.staff_token, demo.tablet
            ),
        )?;
        let scheme = if args.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        eprintln!(
            "demo: {} ({} residents: {} new, {} unchanged)\n  staff pages: {scheme}://{listen}/ (sign in as {}; passcode mails in {})\n  staff token: {}\n  tablet {}: enrolment code {code}\n    vrs client enrol --server {scheme}://{listen} --code {code}\n  (also in {})",
            demo.municipality,
            demo.report.rows,
            demo.report.new,
            demo.report.unchanged,
            vrs_server::demo::DEMO_STAFF,
            args.data.data.join("mail").display(),
            demo.staff_token,
            demo.tablet,
            tokens.display(),
            listen = args.listen,
        );
    }
    let state = vrs_server::http::AppState::new(store, args.mailer()?);
    // The store is let go here, after the runtime: PostgreSQL's blocking client
    // closes its connections with a runtime of its own, which cannot start inside
    // this one (dropped in the async block, it aborted the server on SIGTERM).
    let store = state.store.clone();
    let rt = tokio::runtime::Runtime::new()?;
    let served = rt.block_on(async move {
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            // Checked before listening, so that a bad file is a clear error at once.
            vrs_server::tls_config(cert, key)?;
            let listener = std::net::TcpListener::bind(args.listen)
                .with_context(|| format!("cannot listen on {}", args.listen))?;
            tracing::info!(
                "vrs serving on https://{} (data in {}); API description at /api/openapi.json",
                listener.local_addr()?,
                args.data.data.display()
            );
            vrs_server::serve_tls(listener, state, cert, key).await?;
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(
            "vrs serving on http://{} (data in {}); API description at /api/openapi.json",
            listener.local_addr()?,
            args.data.data.display()
        );
        vrs_server::serve(listener, state).await?;
        Ok(())
    });
    drop(rt);
    drop(store);
    served
}

/// Writes a file only its owner can read (it holds access tokens).
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn audit(cmd: AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Head { data } => {
            for (chain, seq, hash) in data.open()?.audit().heads()? {
                println!("{chain}:{seq}:{}", hex::encode(hash));
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { data, heads } => {
            let heads = heads
                .iter()
                .map(|h| {
                    let mut parts = h.splitn(3, ':');
                    let (c, s, x) = (parts.next(), parts.next(), parts.next());
                    let parsed = (|| {
                        let mut hash = [0u8; 32];
                        hex::decode_to_slice(x?, &mut hash).ok()?;
                        Some((c?.parse().ok()?, s?.parse().ok()?, hash))
                    })();
                    parsed.with_context(|| {
                        format!("--head {h}: expected CHAIN:SEQ:HASH as `vrs admin audit head` prints it")
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let r = data.open()?.audit().verify(&heads)?;
            for (chain, seq, what) in &r.problems {
                println!("chain {chain}, entry {seq}: {what}");
            }
            println!(
                "{} chains, {} entries: {}",
                r.chains,
                r.entries,
                if r.problems.is_empty() {
                    "intact".to_owned()
                } else {
                    format!("{} problems", r.problems.len())
                }
            );
            Ok(if r.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn admin(cmd: AdminCommand) -> Result<ExitCode> {
    let system = vrs_server::Principal::System;
    match cmd {
        AdminCommand::Audit(cmd) => return audit(cmd),
        AdminCommand::Municipality {
            data,
            code,
            name,
            transfer_contact,
        } => {
            data.open()?
                .upsert_municipality(&system, code, &name, &transfer_contact)?;
            println!("{code} {name}");
        }
        AdminCommand::Token {
            data,
            municipality,
            staff,
            operator,
        } => {
            let (whom, chain) = match (operator, municipality, staff) {
                (Some(user), _, _) => (vrs_server::Principal::Operator { user }, 0),
                (None, Some(municipality), Some(user)) => (
                    vrs_server::Principal::Staff { municipality, user },
                    i64::from(municipality.get()),
                ),
                _ => anyhow::bail!("give --municipality and --staff, or --operator NAME"),
            };
            let store = data.open()?;
            let token = store.create_token(&system, &whom)?;
            store
                .audit()
                .append(&vrs_server::store::audit::AuditEvent {
                    chain,
                    at: vrs_server::store::jst_now(),
                    actor: "system (vrs admin)".into(),
                    action: "token.create".into(),
                    object: whom.to_string(),
                    outcome: "ok".into(),
                })?;
            println!("{whom}\n{token}");
        }
        AdminCommand::Device(cmd) => devices::run(cmd)?,
        AdminCommand::User(cmd) => users::run(cmd)?,
        AdminCommand::Lot(cmd) => {
            if !lots::run(cmd)? {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Tally {
    rows: u64,
    valid: u64,
    invalid: u64,
    by_reason: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.rows += other.rows;
        self.valid += other.valid;
        self.invalid += other.invalid;
        for (k, v) in &other.by_reason {
            *self.by_reason.entry(k.clone()).or_default() += v;
        }
    }

    fn print(&self, out: &mut impl Write, indent: &str) -> io::Result<()> {
        writeln!(
            out,
            "{indent}rows {}, valid {}, invalid {}",
            self.rows, self.valid, self.invalid
        )?;
        if !self.by_reason.is_empty() {
            writeln!(out, "{indent}problems by reason (a row may have several):")?;
            let mut reasons: Vec<_> = self.by_reason.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (reason, n) in reasons {
                writeln!(out, "{indent}  {n:>8}  {reason}")?;
            }
        }
        Ok(())
    }
}

fn validate_register(args: &ValidateArgs) -> Result<ExitCode> {
    let today = args
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut total = Tally::default();
    let mut unreadable = 0usize;
    for path in &args.files {
        let shown = path.display();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                writeln!(out, "{shown}: cannot open: {e}")?;
                unreadable += 1;
                continue;
            }
        };
        let opts = ReadOptions {
            encoding: args.encoding,
            today: Some(today),
        };
        let reader = match RegisterReader::new(file, opts) {
            Ok(r) => r,
            Err(e) => {
                writeln!(out, "{shown}: {e}")?;
                unreadable += 1;
                continue;
            }
        };
        writeln!(
            out,
            "{shown}: {}, {}",
            reader.encoding().name(),
            if reader.has_header() {
                "header row"
            } else {
                "no header row (standard column order)"
            }
        )?;
        let mut tally = Tally::default();
        let mut stopped = None;
        for item in reader {
            match item {
                Ok(_) => {
                    tally.rows += 1;
                    tally.valid += 1;
                }
                Err(ReadError::Row(e)) => {
                    tally.rows += 1;
                    tally.invalid += 1;
                    for p in &e.problems {
                        *tally.by_reason.entry(p.reason()).or_default() += 1;
                    }
                    if !args.summary_only {
                        write!(out, "  {e}")?;
                        if e.looks_shifted() {
                            write!(out, " (the columns look shifted)")?;
                        }
                        writeln!(out)?;
                    }
                }
                Err(ReadError::File(e)) => stopped = Some(e),
            }
        }
        tally.print(&mut out, "  ")?;
        if let Some(e) = stopped {
            writeln!(out, "  stopped: {e}")?;
            unreadable += 1;
        }
        total.add(&tally);
    }
    if args.files.len() > 1 {
        writeln!(out, "all {} files:", args.files.len())?;
        total.print(&mut out, "  ")?;
    }
    if unreadable > 0 {
        writeln!(out, "{unreadable} file(s) could not be read to the end")?;
    }
    out.flush()?;
    Ok(if unreadable > 0 {
        ExitCode::from(2)
    } else if total.invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn fixtures(cmd: FixturesCommand) -> Result<()> {
    match cmd {
        FixturesCommand::Register {
            rows,
            seed,
            encoding,
            bad_every,
            no_header,
            first_person_id,
            first_voucher,
            output,
        } => {
            let spec = RegisterSpec {
                seed,
                rows,
                first_person_id,
                first_voucher,
                bad_every,
                header: !no_header,
                encoding,
            };
            let written = match &output {
                Some(path) => {
                    let f = File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    write_register(BufWriter::new(f), &spec)?
                }
                None => write_register(BufWriter::new(io::stdout().lock()), &spec)?,
            };
            if !written.faults.is_empty() {
                eprintln!("planted {} bad rows:", written.faults.len());
                for (line, fault) in &written.faults {
                    eprintln!("  line {line}: {fault:?}");
                }
            }
            Ok(())
        }
        FixturesCommand::Vouchers {
            count,
            streams,
            frames,
            seed,
            sizes,
            stream_sizes,
            desk,
            output,
        } => scan::fixtures_vouchers(
            &output,
            scan::VoucherSets {
                count,
                streams,
                frames,
                seed,
                sizes,
                stream_sizes,
                desk,
            },
        ),
        FixturesCommand::DemoVouchers {
            count,
            skip,
            dose,
            output,
        } => scan::fixtures_demo_vouchers(&output, skip, count, dose),
        FixturesCommand::OcrbTemplates { font, output } => scan::fixtures_templates(&font, &output),
    }
}
