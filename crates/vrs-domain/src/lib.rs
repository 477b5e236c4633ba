//! vrs-domain: the rules every part of vrs shares.
//!
//! - [`ids`]: identifiers that can only be built by validation — [`MunicipalityCode`],
//!   [`VoucherNumber`], the voucher's [`OcrLine`], [`PersonId`] (個別宛名番号),
//!   [`ClinicCode`] — and [`my_number`], the マイナンバー, a secret that cannot be
//!   printed, cloned or serialised.
//! - [`person`]: sex and the moved-out/deceased flag with the status it leads to.
//! - [`date`]: dates as municipal systems write them, 和暦 included.
//! - [`lot`] and [`gs1`]: vaccines, lot numbers and the GS1 barcodes on packaging.
//! - [`dose`] and [`wire`]: a dose record and everything that crosses the network
//!   between a tablet and the server.
//! - [`csv`]: streaming codecs for the register CSV and the ledger/paper-record CSV,
//!   in UTF-8 or CP932, whose errors name the line, the field and the fix.
//!
//! Start with `csv::register::RegisterReader` for imports, `DoseRecord` for what a
//! tablet sends. This crate does no I/O beyond `Read`/`Write` and depends on no other
//! crate of the workspace.

pub mod csv;
pub mod date;
pub mod dose;
pub mod gs1;
pub mod ids;
pub mod lot;
pub mod my_number;
#[cfg(feature = "openapi")]
mod openapi;
pub mod person;
#[cfg(feature = "synth")]
pub mod synth;
pub mod wire;

pub use dose::{ClientRecordId, DeviceId, DoseRecord, SiteCode, SiteRef};
pub use ids::{
    ClinicCode, DoseNumber, IdError, MunicipalityCode, OcrLine, PersonId, VoucherKind,
    VoucherNumber,
};
pub use lot::{Lot, Vaccine};
pub use my_number::MyNumber;
pub use person::{Flag, RegistrationStatus, RemovalReason, Sex};
