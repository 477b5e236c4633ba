//! vrs-testkit: what several crates' tests need and none of them owns. Today: [`pg`],
//! a throwaway PostgreSQL cluster on loopback (Debian's packages; `scripts/test`
//! installs them), and [`serve`], `vrs serve` as a process on loopback. Only ever a
//! dev-dependency.

pub mod pg;
pub mod serve;
pub mod smtp;
