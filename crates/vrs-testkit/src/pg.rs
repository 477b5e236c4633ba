//! A throwaway PostgreSQL cluster on loopback for the tests: one per test binary,
//! started on first use (initdb + postgres from Debian's packages, as the
//! `postgres` user when the tests run as root), stopped by a watchdog when the test
//! process ends. Each test gets a database of its own.
#![allow(clippy::unwrap_used, clippy::zombie_processes)] // test support; the watchdog outlives us on purpose

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Cluster {
    pub port: u16,
    _dir: PathBuf,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is not installed: scripts/test installs it (apt-get install postgresql)")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root.
fn pg(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!("vrs-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            Command::new("chown").arg("postgres").arg(&dir).status().unwrap();
        }
        let data = dir.join("data");
        let ok = pg(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb failed");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200",
            dir.display()
        );
        let ok = pg(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl start failed: see {}", dir.join("log").display());
        // Stop the cluster when this test process ends, however it ends.
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas} {pg_ctl} -D {data} -m immediate stop; rm -rf {dir}",
            pid = std::process::id(),
            runas = if is_root() { "runuser -u postgres --" } else { "" },
            pg_ctl = bin.join("pg_ctl").display(),
            data = data.display(),
            dir = dir.display(),
        );
        Command::new("sh")
            .args(["-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while postgres::Client::connect(&url(port, "postgres", "postgres"), postgres::NoTls).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Cluster { port, _dir: dir }
    })
}

pub fn url(port: u16, user: &str, db: &str) -> String {
    format!("postgres://{user}@127.0.0.1:{port}/{db}")
}

/// A fresh, empty database; returns its name.
pub fn database() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let c = cluster();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin =
        postgres::Client::connect(&url(c.port, "postgres", "postgres"), postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    name
}

/// Runs SQL as the superuser in a database.
pub fn admin_sql(db: &str, sql: &str) {
    let c = cluster();
    let mut admin =
        postgres::Client::connect(&url(c.port, "postgres", db), postgres::NoTls).unwrap();
    admin.batch_execute(sql).unwrap();
}
