//! `vrs admin lot …`: the operator keeps the lot master, one list for the country
//! (vaccine, lot, expiry, GTIN). Every record's lot is checked against it; tablets
//! download it at set-up.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use vrs_domain::csv::Encoding;
use vrs_domain::gs1::Gtin;
use vrs_domain::wire::LotEntry;
use vrs_domain::{Lot, Vaccine};
use vrs_server::Principal;
use vrs_server::store::{ImportMode, ImportOptions, ImportOutcome, ImportReport};

use crate::DataArgs;

#[derive(Subcommand, Debug)]
pub enum LotCommand {
    /// Add a lot, or change its expiry or GTIN.
    Add {
        #[command(flatten)]
        data: DataArgs,
        /// pfizer, moderna, … (or the maker's name, e.g. ファイザー).
        #[arg(long)]
        vaccine: Vaccine,
        #[arg(long)]
        lot: Lot,
        /// The expiry: YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD or a 和暦 date.
        #[arg(long, value_parser = parse_date)]
        expiry: chrono::NaiveDate,
        /// The product's GTIN (8 to 14 digits, check digit verified).
        #[arg(long)]
        gtin: Option<Gtin>,
    },
    /// Add or change the lots of a CSV file: vaccine, lot, expiry, gtin (header
    /// optional, UTF-8 or CP932). A file with a bad line changes nothing unless
    /// --partial.
    Import {
        #[command(flatten)]
        data: DataArgs,
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Apply the good lines and list the bad ones.
        #[arg(long)]
        partial: bool,
        /// Report what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// auto, utf-8 or cp932.
        #[arg(long, default_value = "auto")]
        encoding: Encoding,
    },
    /// Print the lot master.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    vrs_domain::date::parse_date(s).map_err(|e| format!("{e} → {}", e.fix()))
}

/// A lot file's report: each bad line with its field and fix, then what the file
/// did (or, not applied, would have done), in Japanese and English. `true` when
/// applied.
pub fn print_report(r: &ImportReport) -> bool {
    for e in &r.errors {
        println!("{e}");
    }
    println!("{}\n{}", r.summary.ja, r.summary.en);
    r.outcome == ImportOutcome::Applied
}

pub fn run(cmd: LotCommand) -> Result<bool> {
    let system = Principal::System;
    match cmd {
        LotCommand::Add {
            data,
            vaccine,
            lot,
            expiry,
            gtin,
        } => {
            vaccine
                .check_lot(&lot)
                .map_err(|e| anyhow::anyhow!("--lot: {} → {}", e.detail(), e.fix()))?;
            let entry = LotEntry {
                vaccine,
                lot,
                expiry,
                gtin,
            };
            data.open()?.add_lot(&system, &entry)?;
            println!("{}", line(&entry));
            Ok(true)
        }
        LotCommand::Import {
            data,
            file,
            partial,
            dry_run,
            encoding,
        } => {
            let mut input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let opts = ImportOptions {
                mode: if partial {
                    ImportMode::Partial
                } else {
                    ImportMode::Strict
                },
                dry_run,
                encoding,
                ..ImportOptions::default()
            };
            let report = data.open()?.import_lots(&system, &mut input, &opts)?;
            Ok(print_report(&report) || dry_run)
        }
        LotCommand::List { data } => {
            for l in data.open()?.lots(&system)? {
                println!("{}", line(&l));
            }
            Ok(true)
        }
    }
}

fn line(l: &LotEntry) -> String {
    format!(
        "{}\t{}\t{}\t{}",
        l.vaccine.code(),
        l.lot,
        vrs_domain::date::format_slash(l.expiry),
        l.gtin.map(|g| g.to_string()).unwrap_or_default()
    )
}
