//! The マイナンバー vault's cryptography, shared by both backends' vault stores.
//!
//! A number is sealed with AES-256-GCM under (municipality code, 個別宛名番号) as
//! associated data, so a sealed number cannot be moved to another person, and found
//! by an HMAC-SHA256 under a separate key, without decrypting anything.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use vrs_domain::{MunicipalityCode, MyNumber};
use zeroize::Zeroize;

use crate::error::StoreError;
use crate::keys::Keys;

/// The keyed hash a number is found by.
pub type LookupHash = [u8; 32];

/// The vault's cryptography, the same for every backend.
pub struct VaultCrypto {
    seal: LessSafeKey,
    mac: hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for VaultCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultCrypto(<keys>)")
    }
}

impl VaultCrypto {
    pub fn new(keys: &Keys) -> Result<Self, StoreError> {
        Ok(VaultCrypto {
            seal: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, keys.vault.expose())
                    .map_err(|_| StoreError::Crypto)?,
            ),
            mac: hmac::Key::new(hmac::HMAC_SHA256, keys.lookup.expose()),
            rng: SystemRandom::new(),
        })
    }

    /// The keyed hash a number is found by.
    pub fn lookup_hash(&self, n: &MyNumber) -> LookupHash {
        let tag = hmac::sign(&self.mac, n.expose_for_vault());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Seals a number to its person: (nonce, ciphertext with tag).
    pub fn seal(
        &self,
        municipality: MunicipalityCode,
        person: &str,
        n: &MyNumber,
    ) -> Result<([u8; NONCE_LEN], Vec<u8>), StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| StoreError::Crypto)?;
        let mut buf = n.expose_for_vault().to_vec();
        if self
            .seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(municipality, person)),
                &mut buf,
            )
            .is_err()
        {
            buf.zeroize();
            return Err(StoreError::Crypto);
        }
        Ok((nonce, buf))
    }

    /// Opens a sealed number; fails if it was sealed to another person or key.
    pub fn open(
        &self,
        municipality: MunicipalityCode,
        person: &str,
        nonce: &[u8],
        mut sealed: Vec<u8>,
    ) -> Result<MyNumber, StoreError> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| StoreError::Crypto)?;
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(aad(municipality, person)), &mut sealed)
            .map_err(|_| StoreError::Crypto)?;
        let parsed = std::str::from_utf8(plain)
            .ok()
            .and_then(|s| s.parse::<MyNumber>().ok());
        sealed.zeroize();
        parsed.ok_or(StoreError::Crypto)
    }
}

fn aad(municipality: MunicipalityCode, person: &str) -> Vec<u8> {
    format!("vrs-vault-v1|{municipality}|{person}").into_bytes()
}
