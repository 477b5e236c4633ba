//! The tablet's identity: an Ed25519 key pair made on the tablet at enrolment (ring),
//! whose private half never leaves the encrypted outbox, and the signing of every
//! request as `vrs_domain::wire::signing` specifies.

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use vrs_domain::wire::signing;
use zeroize::Zeroizing;

/// A failure of the platform's random number generator or a damaged stored key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the system's random number generator failed")]
    Random,
    #[error("the stored device key is damaged: enrol the tablet again")]
    Damaged,
}

/// The device's private key. Not `Clone`, not `Serialize`; `Debug` shows only the
/// public half; the PKCS#8 bytes it was loaded from are zeroed on drop.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

/// The four headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub device: String,
    pub time: String,
    pub nonce: String,
    pub signature: String,
}

impl SignedHeaders {
    /// (name, value) pairs, to add to a request.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (signing::DEVICE, &self.device),
            (signing::TIME, &self.time),
            (signing::NONCE, &self.nonce),
            (signing::SIGNATURE, &self.signature),
        ]
    }
}

impl DeviceKey {
    /// A new key pair.
    pub fn generate() -> Result<DeviceKey, KeyError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        DeviceKey::from_pkcs8(doc.as_ref().to_vec())
    }

    /// The key as kept in the outbox.
    pub fn from_pkcs8(pkcs8: Vec<u8>) -> Result<DeviceKey, KeyError> {
        let pkcs8 = Zeroizing::new(pkcs8);
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::Damaged)?;
        Ok(DeviceKey { pair, pkcs8 })
    }

    /// The bytes to keep (only ever written into the encrypted outbox).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as registered with the server: 64 hex digits.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// Signs a request of `device` at Unix time `now` with a fresh nonce.
    pub fn sign(
        &self,
        device: vrs_domain::DeviceId,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<SignedHeaders, KeyError> {
        let mut nonce = [0u8; 16];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Random)?;
        let nonce = hex::encode(nonce);
        let body_hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, body));
        let message = signing::message(method, path_and_query, now, &nonce, &body_hash);
        Ok(SignedHeaders {
            device: device.to_string(),
            time: now.to_string(),
            nonce,
            signature: hex::encode(self.pair.sign(message.as_bytes())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_its_pkcs8_round_trip_and_debug_shows_only_the_public_half() {
        let k = DeviceKey::generate().unwrap();
        let back = DeviceKey::from_pkcs8(k.pkcs8().to_vec()).unwrap();
        assert_eq!(k.public_hex(), back.public_hex());
        let shown = format!("{k:?}");
        assert!(shown.contains(&k.public_hex()));
        assert!(!shown.contains(&hex::encode(k.pkcs8())));
        assert!(DeviceKey::from_pkcs8(vec![1, 2, 3]).is_err());
    }

    #[test]
    fn signatures_verify_against_the_public_key_and_nonces_differ() {
        let k = DeviceKey::generate().unwrap();
        let dev = vrs_domain::DeviceId(uuid::Uuid::from_u128(5));
        let a = k.sign(dev, "POST", "/api/tablet/name", b"{}", 77).unwrap();
        let b = k.sign(dev, "POST", "/api/tablet/name", b"{}", 77).unwrap();
        assert_ne!(a.nonce, b.nonce);
        let msg = signing::message(
            "POST",
            "/api/tablet/name",
            77,
            &a.nonce,
            &hex::encode(ring::digest::digest(&ring::digest::SHA256, b"{}")),
        );
        let public = hex::decode(k.public_hex()).unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
            .verify(msg.as_bytes(), &hex::decode(&a.signature).unwrap())
            .unwrap();
        assert_eq!(a.device, dev.to_string());
    }
}
