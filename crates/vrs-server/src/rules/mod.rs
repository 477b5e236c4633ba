//! Pure decisions, table-tested, with no I/O: the dose checks ([`checks`]), the
//! register merge ([`merge`]), staff access and sign-in ([`access`]), tablets and
//! their signed requests ([`devices`]). The engines in [`crate::store`] and the
//! backends call these; nothing here reads or writes a database.

pub mod access;
pub mod checks;
pub mod devices;
pub mod merge;
