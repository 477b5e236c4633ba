//! Who is acting. Every operation takes one, and is scoped by its municipality.

use std::fmt;

use vrs_domain::{DeviceId, MunicipalityCode};

use crate::error::{Result, StoreError};

/// The acting principal of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A municipal staff member: reaches only their own municipality's data.
    Staff {
        municipality: MunicipalityCode,
        user: String,
    },
    /// An enrolled tablet: may look up a name and upload records, nothing else.
    Device {
        municipality: MunicipalityCode,
        device: DeviceId,
    },
    /// The operator through the API (a token made by `vrs admin token --operator`):
    /// keeps what every municipality shares (the lot master), and reaches no
    /// municipality's data.
    Operator { user: String },
    /// The service itself (seeding, maintenance): no personal data through the API.
    System,
}

impl Principal {
    /// The municipality a staff member works for, or `Forbidden`.
    pub fn staff_of(&self) -> Result<MunicipalityCode> {
        match self {
            Principal::Staff { municipality, .. } => Ok(*municipality),
            _ => Err(StoreError::Forbidden(
                "this needs a municipal staff sign-in".into(),
            )),
        }
    }

    /// The operator alone (`vrs admin`), for what every municipality shares: `what`
    /// names it in the refusal ("lots are registered").
    pub fn require_operator(&self, what: &str) -> Result<()> {
        if matches!(self, Principal::System | Principal::Operator { .. }) {
            Ok(())
        } else {
            Err(StoreError::Forbidden(format!(
                "{what} by the operator (vrs admin)"
            )))
        }
    }

    /// May look up the name of a voucher of `municipality`: a tablet any voucher
    /// (people are vaccinated where they like), staff only their own
    /// municipality's, the operator none.
    pub fn require_name_look_up(&self, municipality: MunicipalityCode) -> Result<()> {
        match self {
            Principal::Device { .. } => Ok(()),
            _ => self.require_staff_of(municipality),
        }
    }

    /// Staff of `municipality` (or the system), or `Forbidden`.
    pub fn require_staff_of(&self, municipality: MunicipalityCode) -> Result<()> {
        match self {
            Principal::Staff {
                municipality: m, ..
            } if *m == municipality => Ok(()),
            Principal::System => Ok(()),
            Principal::Staff { .. } => Err(StoreError::Forbidden(format!(
                "staff reach only their own municipality's data, not {municipality}'s"
            ))),
            Principal::Device { .. } => Err(StoreError::Forbidden(
                "a tablet can only look up names and upload records".into(),
            )),
            Principal::Operator { .. } => Err(StoreError::Forbidden(
                "the operator keeps what municipalities share; a municipality's data needs its staff's sign-in".into(),
            )),
        }
    }

    /// The device, for operations only a tablet may do.
    pub fn device(&self) -> Result<(MunicipalityCode, DeviceId)> {
        match self {
            Principal::Device {
                municipality,
                device,
            } => Ok((*municipality, *device)),
            _ => Err(StoreError::Forbidden("this is for enrolled tablets".into())),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Staff { municipality, user } => write!(f, "staff:{municipality}:{user}"),
            Principal::Device {
                municipality,
                device,
            } => write!(f, "device:{municipality}:{device}"),
            Principal::Operator { user } => write!(f, "operator:{user}"),
            Principal::System => f.write_str("system"),
        }
    }
}

/// A new bearer token for `for_whom`, made by `actor` (the operator only): the token
/// (shown once), the SHA-256 kept instead of it, and the row's kind, municipality
/// and subject.
pub(crate) struct NewToken {
    pub token: String,
    pub hash: Vec<u8>,
    pub kind: &'static str,
    /// The municipality code, or 0 for the operator's.
    pub municipality: i64,
    pub subject: String,
}

pub(crate) fn new_token(actor: &Principal, for_whom: &Principal) -> Result<NewToken> {
    if *actor != Principal::System {
        return Err(StoreError::Forbidden(
            "tokens are made by the operator".into(),
        ));
    }
    let (kind, municipality, subject) = match for_whom {
        Principal::Staff { municipality, user } => {
            ("staff", i64::from(municipality.get()), user.clone())
        }
        // The operator's token belongs to no municipality (code 0 in the row).
        Principal::Operator { user } => ("operator", 0, user.clone()),
        Principal::Device { .. } => {
            return Err(StoreError::Invalid(
                "tablets have no tokens: register one (vrs admin device register), enrol it with its code, and it signs its requests".into(),
            ));
        }
        Principal::System => return Err(StoreError::Invalid("the system needs no token".into())),
    };
    let mut raw = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| StoreError::Crypto)?;
    let token = format!("vrs_{}", hex::encode(raw));
    Ok(NewToken {
        hash: token_hash(&token),
        token,
        kind,
        municipality,
        subject,
    })
}

/// The hash a token is stored and found by.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// The principal a stored token row stands for.
pub(crate) fn token_principal(
    kind: &str,
    municipality: i64,
    subject: String,
) -> Result<Option<Principal>> {
    // Only staff hold tokens (tablets sign their requests); a row of another kind
    // (from before tablets signed) stands for no one.
    match kind {
        "staff" => Ok(Some(Principal::Staff {
            municipality: crate::store::codec::municipality_code(municipality)?,
            user: subject,
        })),
        "operator" => Ok(Some(Principal::Operator { user: subject })),
        _ => Ok(None),
    }
}
