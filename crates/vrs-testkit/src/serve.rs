//! `vrs serve` as a real process on loopback, for the tests that drive it over HTTP:
//! its data folder (SQLite) or a PostgreSQL database, its demo tokens, a kill -9.
#![allow(clippy::unwrap_used)] // test support panics on purpose when the set-up fails

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where a server keeps its data: a folder (SQLite), and a PostgreSQL URL or none.
#[derive(Debug)]
pub struct Backend {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub database: Option<String>,
}

/// The embedded store in a new temporary folder.
pub fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    Backend {
        data: dir.path().to_owned(),
        _dir: dir,
        database: None,
    }
}

/// A new database in the test binary's PostgreSQL cluster.
pub fn postgres() -> Backend {
    let db = crate::pg::database();
    let port = crate::pg::cluster().port;
    let mut b = sqlite();
    b.database = Some(crate::pg::url(port, "postgres", &db));
    b
}

impl Backend {
    /// `--data DIR [--database URL]`, for any `vrs` command on this backend.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["--data".to_owned(), self.data.display().to_string()];
        if let Some(d) = &self.database {
            a.extend(["--database".to_owned(), d.clone()]);
        }
        a
    }
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `vrs serve --demo`.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base: String,
    pub port: u16,
    pub data: PathBuf,
}

impl Server {
    /// Starts `exe serve --demo` with `residents` on a free port and waits until it
    /// answers.
    pub fn start(exe: &Path, backend: &Backend, residents: u64) -> Server {
        Server::start_on(exe, backend, residents, free_port())
    }

    /// The same on a given port (a server coming back where it was).
    pub fn start_on(exe: &Path, backend: &Backend, residents: u64, port: u16) -> Server {
        Server::start_with(exe, backend, residents, port, &[])
    }

    /// The same with more `vrs serve` options (an SMTP server, say).
    pub fn start_with(
        exe: &Path,
        backend: &Backend,
        residents: u64,
        port: u16,
        extra: &[&str],
    ) -> Server {
        let child = Command::new(exe)
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--demo-residents", &residents.to_string()])
            .args(backend.args())
            .args(extra)
            .env_remove("VRS_VAULT_KEY")
            .env("VRS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            data: backend.data.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if health(port) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("vrs serve did not come up");
    }

    fn demo_value(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.data.join("demo-tokens.txt")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The demo's staff token.
    pub fn staff(&self) -> String {
        self.demo_value("staff")
    }

    /// The demo tablet's one-time enrolment code (`(enrolled)` once it is used and
    /// the server was started again).
    pub fn enrolment_code(&self) -> String {
        self.demo_value("enrolment")
    }

    /// The latest passcode mailed to `to` into the server's mail folder (the
    /// embedded default when no SMTP server is given), waiting up to 20 s for it.
    pub fn mailed_passcode(&self, to: &str) -> String {
        let dir = self.data.join("mail");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            files.retain(|f| f.extension().is_some_and(|e| e == "eml"));
            files.sort();
            for f in files.iter().rev() {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                if text.lines().any(|l| l.trim() == format!("To: {to}")) {
                    if let Some(code) = text
                        .lines()
                        .map(str::trim)
                        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                    {
                        return code.to_owned();
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no passcode mail to {to} in {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (as systemd or a container stops it), and how it ended, waiting up
    /// to 30 s.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.send_term();
        self.wait_exit()
    }

    /// Sends SIGTERM, without waiting.
    pub fn send_term(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
    }

    /// How the server ended, waiting up to 30 s.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "vrs serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and wait for it.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /api/health` answers 200 on the port.
fn health(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
