//! Who is acting. Every operation takes one, and is scoped by its municipality.

use std::fmt;

use vrs_domain::{DeviceId, MunicipalityCode};

use crate::error::StoreError;

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
    /// The service itself (seeding, maintenance): no personal data through the API.
    System,
}

impl Principal {
    /// The municipality a staff member works for, or `Forbidden`.
    pub fn staff_of(&self) -> Result<MunicipalityCode, StoreError> {
        match self {
            Principal::Staff { municipality, .. } => Ok(*municipality),
            _ => Err(StoreError::Forbidden(
                "this needs a municipal staff sign-in".into(),
            )),
        }
    }

    /// Staff of `municipality` (or the system), or `Forbidden`.
    pub fn require_staff_of(&self, municipality: MunicipalityCode) -> Result<(), StoreError> {
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
        }
    }

    /// The device, for operations only a tablet may do.
    pub fn device(&self) -> Result<(MunicipalityCode, DeviceId), StoreError> {
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
            Principal::System => f.write_str("system"),
        }
    }
}
