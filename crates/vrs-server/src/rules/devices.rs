//! Tablets: registered by their municipality, enrolled once with a one-time code,
//! and from then on known only by the Ed25519 public key they registered.
//!
//! The pure parts live here, for both backends: what a registration must hold, the
//! enrolment code (made, normalised, hashed), and the check of a signed request
//! (see `vrs_domain::wire::signing` for what is signed).

use chrono::{Duration, NaiveDateTime};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use vrs_domain::{DeviceId, MunicipalityCode, SiteRef};

use crate::error::{Result, StoreError};

/// How long an enrolment code stays valid: time to ship the tablet and switch it on.
pub const ENROLMENT_VALID: Duration = Duration::days(7);

/// Crockford's base32: no I, L, O, U, so nothing on the paper slip reads two ways.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 symbols, 80 bits: far beyond guessing within a code's lifetime.
const CODE_SYMBOLS: usize = 16;

/// A tablet as its municipality registers it (the tablet registration form).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRegistration {
    /// The clinic (医療機関コード) or mass-vaccination site (its site code) the
    /// tablet records doses for.
    pub site: SiteRef,
    /// The clinic's or site's name, as the ledger shows it.
    pub site_name: String,
    /// The site's address.
    #[serde(default)]
    pub address: String,
    /// The tablet's own e-mail, one per tablet: its user's passcode goes there.
    pub email: String,
    /// Where the tablet is delivered, and who receives it.
    #[serde(default)]
    pub delivery: String,
    /// A contact person and phone at the site.
    #[serde(default)]
    pub contact: String,
    #[serde(default)]
    pub notes: String,
    /// The site's scale: doses a day.
    #[serde(default)]
    pub doses_per_day: Option<u32>,
}

impl DeviceRegistration {
    /// Checks what the form cannot: a usable e-mail and a site name. Returns the
    /// e-mail as stored (trimmed, lower case).
    pub fn check(&self) -> Result<String> {
        let email = normalise_email(&self.email)?;
        if self.site_name.trim().is_empty() {
            return Err(StoreError::Invalid(
                "site_name is empty: give the clinic's or site's name as the ledger should show it"
                    .into(),
            ));
        }
        for (what, v) in [
            ("site_name", &self.site_name),
            ("address", &self.address),
            ("delivery", &self.delivery),
            ("contact", &self.contact),
            ("notes", &self.notes),
        ] {
            if v.chars().count() > 500 || v.chars().any(|c| c.is_control() && c != '\n') {
                return Err(StoreError::Invalid(format!(
                    "{what}: at most 500 characters and no control characters"
                )));
            }
        }
        Ok(email)
    }

    pub fn site_kind_and_code(&self) -> (&'static str, String) {
        site_kind_and_code(&self.site)
    }
}

pub fn site_kind_and_code(site: &SiteRef) -> (&'static str, String) {
    match site {
        SiteRef::Clinic(c) => ("clinic", c.to_string()),
        SiteRef::Site(s) => ("site", s.to_string()),
    }
}

pub fn site_ref(kind: &str, code: &str) -> Result<SiteRef> {
    let bad = || StoreError::Corrupt(format!("device site {kind} {code}"));
    match kind {
        "clinic" => code.parse().map(SiteRef::Clinic).map_err(|_| bad()),
        "site" => code.parse().map(SiteRef::Site).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// An e-mail address in the shape `local@domain.tld`, trimmed and in lower case.
pub fn normalise_email(s: &str) -> Result<String> {
    let e = s.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
                && local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        });
    if ok {
        Ok(e)
    } else {
        Err(StoreError::Invalid(format!(
            "e-mail {:?} is not an address: write it as name@example.lg.jp",
            s.trim()
        )))
    }
}

/// A tablet on its municipality's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeviceInfo {
    pub device_id: DeviceId,
    pub municipality: MunicipalityCode,
    pub site: SiteRef,
    pub site_name: String,
    pub email: String,
    pub address: String,
    pub delivery: String,
    pub contact: String,
    pub notes: String,
    pub doses_per_day: Option<u32>,
    /// "waiting" (a code is out), "enrolled", "expired" (the code ran out unused) or "revoked".
    pub state: String,
    /// When the pending enrolment code runs out (JST).
    pub code_expires: Option<String>,
    pub enrolled_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// The state word of a device row.
pub fn state_of(
    enrolled: bool,
    code_expires: Option<NaiveDateTime>,
    revoked: bool,
    now: NaiveDateTime,
) -> &'static str {
    if revoked {
        "revoked"
    } else if code_expires.is_some_and(|e| e > now) {
        "waiting"
    } else if enrolled {
        "enrolled"
    } else {
        "expired"
    }
}

/// A registered tablet's pending enrolment: shown once, to the municipality.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    pub device_id: DeviceId,
    /// The one-time code to type or scan on the tablet.
    pub code: String,
    /// When it runs out unused (JST).
    pub expires: String,
    /// The code as a QR code (SVG), for the tablet's camera.
    pub qr_svg: String,
}

/// The enrolment code as an SVG QR code.
pub fn qr_svg(code: &str) -> String {
    match qrcode::QrCode::new(code.as_bytes()) {
        Ok(qr) => qr
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build(),
        Err(_) => String::new(),
    }
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("device_id", &self.device_id)
            .field("code", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// A registration checked and ready to store, for either backend.
#[derive(Debug)]
pub struct NewDevice {
    pub id: DeviceId,
    pub email: String,
    pub site_kind: &'static str,
    pub site_code: String,
    pub now: NaiveDateTime,
    pub enrolment: Enrolment,
    /// The hash of `enrolment.code`, which is kept instead of it.
    pub code_hash: Vec<u8>,
    pub code_expires: NaiveDateTime,
}

/// Checks `actor` and the registration, and makes the device id and its first code.
pub fn new_device(
    actor: &crate::Principal,
    municipality: MunicipalityCode,
    reg: &DeviceRegistration,
    now: NaiveDateTime,
) -> Result<NewDevice> {
    actor.require_staff_of(municipality)?;
    let email = reg.check()?;
    let (site_kind, site_code) = reg.site_kind_and_code();
    let id = DeviceId(uuid::Uuid::new_v4());
    let (enrolment, code_hash, code_expires) = new_enrolment(id, now)?;
    Ok(NewDevice {
        id,
        email,
        site_kind,
        site_code,
        now,
        enrolment,
        code_hash,
        code_expires,
    })
}

/// A new enrolment for `device`: what is shown, the hash kept, and its expiry.
pub fn new_enrolment(
    device: DeviceId,
    now: NaiveDateTime,
) -> Result<(Enrolment, Vec<u8>, NaiveDateTime)> {
    let (code, hash) = new_code()?;
    let expires = now + ENROLMENT_VALID;
    Ok((
        Enrolment {
            device_id: device,
            qr_svg: qr_svg(&code),
            code,
            expires: vrs_domain::date::format_time(expires),
        },
        hash,
        expires,
    ))
}

/// The one refusal of an enrolment, whatever the reason: nothing is told about
/// which codes exist.
pub fn code_refused() -> StoreError {
    StoreError::Forbidden(
        "unknown, used or expired enrolment code: ask the municipality for a new one".into(),
    )
}

/// The e-mail is another tablet's.
pub fn email_taken(email: &str) -> StoreError {
    StoreError::Invalid(format!(
        "e-mail {email} belongs to another tablet already: each tablet needs its own address"
    ))
}

/// A new enrolment code, as shown (`ABCD-EFGH-JKMN-PQRS`), and the hash kept.
pub fn new_code() -> Result<(String, Vec<u8>)> {
    let mut raw = [0u8; CODE_SYMBOLS];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| StoreError::Crypto)?;
    let symbols: String = raw
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect();
    let shown = symbols
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-");
    let hash = code_hash(&symbols);
    Ok((shown, hash))
}

/// A code as typed back: case, spaces and dashes ignored; O read as 0, I and L as 1.
/// `None` when it cannot be a code at all.
pub fn normalise_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_SYMBOLS);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !ALPHABET.contains(&(c as u8)) || !c.is_ascii() {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_SYMBOLS).then_some(out)
}

/// The hash an enrolment code is stored and found by.
pub fn code_hash(normalised: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, normalised.as_bytes())
        .as_ref()
        .to_vec()
}

/// The 32 bytes of an Ed25519 public key given as 64 hex digits.
pub fn parse_public_key(hex_key: &str) -> Result<Vec<u8>> {
    match hex::decode(hex_key.trim()) {
        Ok(k) if k.len() == 32 => Ok(k),
        _ => Err(StoreError::Invalid(
            "public_key must be the tablet's Ed25519 public key: 32 bytes as 64 hex digits".into(),
        )),
    }
}

/// What the server knows of a device when a signed request arrives.
#[derive(Clone, Debug)]
pub struct DeviceKey {
    pub municipality: MunicipalityCode,
    /// `None` until the tablet has enrolled.
    pub public_key: Option<Vec<u8>>,
    pub revoked: bool,
}

/// Why a signed request is refused. Each says what the tablet should do.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "tablet requests must be signed (x-vrs-device, x-vrs-time, x-vrs-nonce, x-vrs-signature): enrol this tablet first"
    )]
    Missing,
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    #[error("this tablet is not enrolled: ask the municipality for an enrolment code")]
    UnknownDevice,
    #[error("this tablet has been revoked by its municipality")]
    Revoked,
    #[error(
        "the request's time is {0} s away from the server's: set the tablet's clock (automatic time)"
    )]
    Clock(i64),
    #[error("the signature does not match this tablet's key")]
    BadSignature,
    #[error("this request was sent before (same nonce): make a new request")]
    Replayed,
}

/// The parsed signing headers of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub device: DeviceId,
    pub time: i64,
    pub nonce: Vec<u8>,
    pub nonce_hex: String,
    pub signature: Vec<u8>,
}

impl Signed {
    /// From the header values (`None` when a header is absent).
    pub fn parse(
        device: Option<&str>,
        time: Option<&str>,
        nonce: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Signed, SignatureError> {
        use vrs_domain::wire::signing as h;
        let (Some(device), Some(time), Some(nonce), Some(signature)) =
            (device, time, nonce, signature)
        else {
            return Err(SignatureError::Missing);
        };
        let device = DeviceId(
            device
                .trim()
                .parse()
                .map_err(|_| SignatureError::Malformed(h::DEVICE))?,
        );
        let time = time
            .trim()
            .parse()
            .map_err(|_| SignatureError::Malformed(h::TIME))?;
        let nonce_hex = nonce.trim().to_ascii_lowercase();
        let nonce = hex::decode(&nonce_hex)
            .ok()
            .filter(|n| n.len() == 16)
            .ok_or(SignatureError::Malformed(h::NONCE))?;
        let signature = hex::decode(signature.trim())
            .ok()
            .filter(|s| s.len() == 64)
            .ok_or(SignatureError::Malformed(h::SIGNATURE))?;
        Ok(Signed {
            device,
            time,
            nonce,
            nonce_hex,
            signature,
        })
    }

    /// Checks the signature over the request with the device's key, and the clock.
    /// The nonce is checked by the caller, against the store, after this passes (so
    /// that unsigned junk cannot fill the nonce table).
    pub fn verify(
        &self,
        key: &DeviceKey,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        if key.revoked {
            return Err(SignatureError::Revoked);
        }
        let Some(public) = &key.public_key else {
            return Err(SignatureError::UnknownDevice);
        };
        let body_hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, body));
        let message = vrs_domain::wire::signing::message(
            method,
            path_and_query,
            self.time,
            &self.nonce_hex,
            &body_hash,
        );
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
            .verify(message.as_bytes(), &self.signature)
            .map_err(|_| SignatureError::BadSignature)?;
        let skew = self.time - now;
        if skew.abs() > vrs_domain::wire::signing::MAX_SKEW_SECS {
            return Err(SignatureError::Clock(skew));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn key_pair() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn signed(kp: &Ed25519KeyPair, path: &str, body: &[u8], time: i64) -> Signed {
        let nonce_hex = "00112233445566778899aabbccddeeff".to_owned();
        let msg = vrs_domain::wire::signing::message(
            "POST",
            path,
            time,
            &nonce_hex,
            &hex::encode(ring::digest::digest(&ring::digest::SHA256, body)),
        );
        Signed {
            device: DeviceId(uuid::Uuid::from_u128(1)),
            time,
            nonce: hex::decode(&nonce_hex).unwrap(),
            nonce_hex,
            signature: kp.sign(msg.as_bytes()).as_ref().to_vec(),
        }
    }

    fn key(kp: &Ed25519KeyPair) -> DeviceKey {
        DeviceKey {
            municipality: "131016".parse().unwrap(),
            public_key: Some(kp.public_key().as_ref().to_vec()),
            revoked: false,
        }
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let kp = key_pair();
        let s = signed(&kp, "/api/tablet/records", b"{\"records\":[]}", 1000);
        let k = key(&kp);
        assert_eq!(
            s.verify(&k, "POST", "/api/tablet/records", b"{\"records\":[]}", 1000),
            Ok(())
        );
        for (method, path, body) in [
            ("GET", "/api/tablet/records", &b"{\"records\":[]}"[..]),
            ("POST", "/api/tablet/name", &b"{\"records\":[]}"[..]),
            ("POST", "/api/tablet/records", &b"{\"records\":[1]}"[..]),
        ] {
            assert_eq!(
                s.verify(&k, method, path, body, 1000),
                Err(SignatureError::BadSignature)
            );
        }
        let other = key(&key_pair());
        assert_eq!(
            s.verify(
                &other,
                "POST",
                "/api/tablet/records",
                b"{\"records\":[]}",
                1000
            ),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn a_clock_far_off_or_a_revoked_tablet_is_refused() {
        let kp = key_pair();
        let s = signed(&kp, "/p", b"", 1000);
        assert_eq!(
            s.verify(&key(&kp), "POST", "/p", b"", 1000 + 301),
            Err(SignatureError::Clock(-301))
        );
        assert_eq!(s.verify(&key(&kp), "POST", "/p", b"", 1000 - 300), Ok(()));
        let mut revoked = key(&kp);
        revoked.revoked = true;
        assert_eq!(
            s.verify(&revoked, "POST", "/p", b"", 1000),
            Err(SignatureError::Revoked)
        );
        let mut pending = key(&kp);
        pending.public_key = None;
        assert_eq!(
            s.verify(&pending, "POST", "/p", b"", 1000),
            Err(SignatureError::UnknownDevice)
        );
    }

    #[test]
    fn headers_missing_or_malformed_are_named() {
        assert_eq!(
            Signed::parse(None, Some("1"), Some("00"), Some("00")),
            Err(SignatureError::Missing)
        );
        let dev = &uuid::Uuid::from_u128(1).to_string();
        let nonce = "00112233445566778899aabbccddeeff";
        let sig = "ab".repeat(64);
        assert!(Signed::parse(Some(dev), Some("12"), Some(nonce), Some(&sig)).is_ok());
        assert_eq!(
            Signed::parse(Some("x"), Some("12"), Some(nonce), Some(&sig)),
            Err(SignatureError::Malformed("x-vrs-device"))
        );
        assert_eq!(
            Signed::parse(Some(dev), Some("soon"), Some(nonce), Some(&sig)),
            Err(SignatureError::Malformed("x-vrs-time"))
        );
        assert_eq!(
            Signed::parse(Some(dev), Some("12"), Some("0011"), Some(&sig)),
            Err(SignatureError::Malformed("x-vrs-nonce"))
        );
        assert_eq!(
            Signed::parse(Some(dev), Some("12"), Some(nonce), Some("abcd")),
            Err(SignatureError::Malformed("x-vrs-signature"))
        );
    }

    #[test]
    fn codes_read_back_however_they_are_typed() {
        let (shown, hash) = new_code().unwrap();
        assert_eq!(shown.len(), 19);
        let n = normalise_code(&shown).unwrap();
        assert_eq!(code_hash(&n), hash);
        let typed = shown.to_lowercase().replace('-', " ");
        assert_eq!(normalise_code(&typed).as_deref(), Some(n.as_str()));
        assert_eq!(
            normalise_code("O000-0000-0000-000I").as_deref(),
            Some("0000000000000001")
        );
        assert_eq!(normalise_code("short"), None);
        assert_eq!(normalise_code("UUUU-0000-0000-0000"), None);
        assert_eq!(normalise_code("ＡＢＣＤ-0000-0000-0000"), None);
    }

    #[test]
    fn e_mail_is_checked_and_lower_cased() {
        assert_eq!(
            normalise_email(" Tablet01@Clinic.Example.JP ").unwrap(),
            "tablet01@clinic.example.jp"
        );
        for bad in [
            "", "a", "a@b", "@b.jp", "a@b.", "a@.jp", "a b@c.jp", "a@b@c.jp",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_state_words() {
        let now = chrono::NaiveDate::from_ymd_opt(2021, 6, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        let later = now + Duration::hours(1);
        let earlier = now - Duration::hours(1);
        assert_eq!(state_of(false, Some(later), false, now), "waiting");
        assert_eq!(state_of(false, Some(earlier), false, now), "expired");
        assert_eq!(state_of(true, None, false, now), "enrolled");
        assert_eq!(state_of(true, Some(later), false, now), "waiting");
        assert_eq!(state_of(true, None, true, now), "revoked");
    }
}
