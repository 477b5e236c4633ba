//! The server's keys: the vault's encryption key, the key of the マイナンバー look-up
//! hash, and the database file key. They come from the environment or a key file,
//! never from the database, and cannot be printed or cloned.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// 32 secret bytes. No `Clone`, no `Serialize`, a redacted `Debug`, zeroed on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Secret32([u8; 32]);

impl Secret32 {
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A new random key (for a scratch file that lives as long as the key).
    pub(crate) fn generate() -> Result<Self, KeyError> {
        Self::random(&SystemRandom::new())
    }

    fn random(rng: &SystemRandom) -> Result<Self, KeyError> {
        let mut b = [0u8; 32];
        rng.fill(&mut b).map_err(|_| KeyError::Random)?;
        Ok(Secret32(b))
    }

    fn from_hex(name: &str, s: &str) -> Result<Self, KeyError> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut b).map_err(|_| KeyError::Format {
            name: name.to_owned(),
        })?;
        Ok(Secret32(b))
    }
}

impl fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret32(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key {name}: expected 64 hexadecimal characters (32 bytes)")]
    Format { name: String },
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {path}: missing the line `{name} = <64 hex>`")]
    Missing { path: String, name: &'static str },
    #[error("the system random number generator failed")]
    Random,
    #[error(
        "some but not all of VRS_VAULT_KEY, VRS_LOOKUP_KEY and VRS_DB_KEY are set: set all three or none"
    )]
    PartialEnv,
}

/// Every key the server uses.
#[derive(Debug)]
pub struct Keys {
    /// AES-256-GCM key of the マイナンバー vault.
    pub vault: Secret32,
    /// HMAC-SHA256 key of the vault's look-up hash.
    pub lookup: Secret32,
    /// SQLCipher key of the database files.
    pub database: Secret32,
}

const NAMES: [&str; 3] = ["vault", "lookup", "database"];
const ENV: [&str; 3] = ["VRS_VAULT_KEY", "VRS_LOOKUP_KEY", "VRS_DB_KEY"];

impl Keys {
    pub fn generate() -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        Ok(Keys {
            vault: Secret32::random(&rng)?,
            lookup: Secret32::random(&rng)?,
            database: Secret32::random(&rng)?,
        })
    }

    /// Keys from `VRS_VAULT_KEY`, `VRS_LOOKUP_KEY` and `VRS_DB_KEY` (hex), when set.
    pub fn from_env() -> Result<Option<Self>, KeyError> {
        let vals: Vec<Option<String>> = ENV.iter().map(|k| std::env::var(k).ok()).collect();
        match vals.iter().filter(|v| v.is_some()).count() {
            0 => Ok(None),
            3 => {
                let get = |i: usize| Secret32::from_hex(ENV[i], vals[i].as_deref().unwrap_or(""));
                Ok(Some(Keys {
                    vault: get(0)?,
                    lookup: get(1)?,
                    database: get(2)?,
                }))
            }
            _ => Err(KeyError::PartialEnv),
        }
    }

    /// Reads the key file, or makes one (readable by its owner only) when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            let mut text = fs::read_to_string(path).map_err(io)?;
            let keys = Self::parse(&text, path);
            text.zeroize();
            return keys;
        }
        let keys = Self::generate()?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(io)?;
        let mut text = String::from(
            "# vrs server keys. Keep this file secret and backed up: without it the\n\
             # database and the マイナンバー vault cannot be read.\n",
        );
        for (name, key) in NAMES
            .iter()
            .zip([&keys.vault, &keys.lookup, &keys.database])
        {
            text.push_str(&format!("{name} = {}\n", hex::encode(key.expose())));
        }
        let r = f.write_all(text.as_bytes()).map_err(io);
        text.zeroize();
        r?;
        Ok(keys)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, KeyError> {
        let get = |name: &'static str| -> Result<Secret32, KeyError> {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .ok_or(KeyError::Missing {
                    path: path.display().to_string(),
                    name,
                })
                .and_then(|(_, v)| Secret32::from_hex(name, v))
        };
        Ok(Keys {
            vault: get("vault")?,
            lookup: get("lookup")?,
            database: get("database")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let a = Keys::load_or_create(&path).unwrap();
        let b = Keys::load_or_create(&path).unwrap();
        assert_eq!(a.vault.expose(), b.vault.expose());
        assert_ne!(a.vault.expose(), a.lookup.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = Keys::generate().unwrap();
        let shown = format!("{k:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&hex::encode(k.vault.expose())[..8]));
    }

    #[test]
    fn a_short_key_is_refused_with_its_name() {
        let e = Keys::parse("vault = abcd\n", Path::new("k")).unwrap_err();
        assert!(e.to_string().contains("vault"), "{e}");
    }
}
