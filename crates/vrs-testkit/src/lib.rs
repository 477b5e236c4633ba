//! vrs-testkit: what several crates' tests need and none of them owns. Today: [`pg`],
//! a throwaway PostgreSQL cluster on loopback (Debian's packages; `scripts/test`
//! installs them). Only ever a dev-dependency.

pub mod pg;
