//! Mail out: the sign-in passcode. Real SMTP through lettre (host, port, TLS as
//! configured), or, on the embedded defaults, a mail folder in the data folder where
//! each message is written as an `.eml` file (the demo reads the passcode there).

use std::path::PathBuf;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use zeroize::Zeroizing;

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (a relay on loopback or inside the municipal network only).
    None,
    /// STARTTLS on a plain connection (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl std::str::FromStr for SmtpTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::Starttls),
            "tls" => Ok(SmtpTls::Tls),
            _ => Err(format!("{s}: choose none, starttls or tls")),
        }
    }
}

/// Where mail goes.
pub enum Mailer {
    /// `.eml` files in this folder.
    Folder(PathBuf),
    Smtp {
        transport: Box<SmtpTransport>,
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Folder(p) => f.debug_tuple("Folder").field(p).finish(),
            Mailer::Smtp { from, .. } => f
                .debug_struct("Smtp")
                .field("from", &from.to_string())
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail configuration: {0}")]
    Config(String),
    #[error("the mail could not be sent: {0}")]
    Send(String),
    #[error("the mail folder: {0}")]
    Io(#[from] std::io::Error),
}

/// The SMTP settings.
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<Zeroizing<String>>,
    pub from: String,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .finish()
    }
}

impl Mailer {
    pub fn smtp(c: &SmtpConfig) -> Result<Mailer, MailError> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| MailError::Config(format!("--mail-from {:?}: {e}", c.from)))?;
        let tls = match c.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                let params = TlsParameters::new(c.host.clone())
                    .map_err(|e| MailError::Config(e.to_string()))?;
                if c.tls == SmtpTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut b = SmtpTransport::builder_dangerous(&c.host)
            .port(c.port)
            .tls(tls)
            .timeout(Some(std::time::Duration::from_secs(20)));
        if let (Some(user), Some(pass)) = (&c.user, &c.password) {
            b = b.credentials(Credentials::new(user.clone(), pass.as_str().to_owned()));
        }
        Ok(Mailer::Smtp {
            transport: Box::new(b.build()),
            from,
        })
    }

    /// Sends a sign-in passcode to `to`.
    pub fn send_passcode(&self, to: &str, passcode: &str, minutes: i64) -> Result<(), MailError> {
        let from = match self {
            Mailer::Smtp { from, .. } => from.clone(),
            Mailer::Folder(_) => "VRS <noreply@vrs.invalid>"
                .parse()
                .map_err(|e| MailError::Config(format!("{e}")))?,
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| MailError::Config(format!("address {to:?}: {e}")))?;
        let body = format!(
            "ワクチン接種記録システムのサインイン用ワンタイムパスコードです。\n\n    {passcode}\n\n\
             {minutes}分間、一度だけ使えます。心当たりがない場合は、このメールを破棄してください。\n\n\
             Your one-time passcode for the vaccination record system: {passcode}\n\
             It can be used once, within {minutes} minutes. If you did not ask for it, ignore this mail.\n"
        );
        // Quoted-printable: the passcode's line stays readable as it is in the source.
        let part = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::QuotedPrintable)
            .body(body);
        let message = Message::builder()
            .from(from)
            .to(to.clone())
            .subject("VRS サインイン用パスコード / sign-in passcode")
            .singlepart(part)
            .map_err(|e| MailError::Config(e.to_string()))?;
        match self {
            Mailer::Smtp { transport, .. } => transport
                .send(&message)
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            Mailer::Folder(dir) => {
                std::fs::create_dir_all(dir)?;
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
                    to.email.to_string().replace(['@', '/'], "_")
                );
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                use std::io::Write;
                // Written aside, then renamed: a reader never sees half a message.
                let part = dir.join(format!("{name}.part"));
                opts.open(&part)?.write_all(&message.formatted())?;
                std::fs::rename(&part, dir.join(name))?;
                Ok(())
            }
        }
    }
}
