//! `vrs admin user …`: the operator bootstraps a municipality's first users (staff
//! then manage their own through the API and web pages).

use anyhow::Result;
use clap::Subcommand;
use vrs_domain::MunicipalityCode;
use vrs_server::Principal;
use vrs_server::rules::access::User;

use crate::DataArgs;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add or change a municipal user (様式1): an lg.jp address, at most ten per
    /// municipality; the first is the transfer contact (転出入連絡先).
    Add {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        municipality: MunicipalityCode,
        #[arg(long)]
        email: String,
        /// 担当者
        #[arg(long)]
        person: String,
        /// 担当課
        #[arg(long, default_value = "")]
        team: String,
        #[arg(long, default_value = "")]
        phone: String,
        /// Make this user the transfer contact (the mark moves from whoever had it).
        #[arg(long)]
        transfer_contact: bool,
    },
    /// List a municipality's users.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        municipality: MunicipalityCode,
    },
    /// Remove a user (their sessions end).
    Remove {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        municipality: MunicipalityCode,
        #[arg(long)]
        email: String,
    },
}

fn print(users: &[User]) {
    for u in users {
        println!(
            "{}  {}  {}  {}{}",
            u.email,
            u.person,
            u.team,
            u.phone,
            if u.transfer_contact {
                "  (転出入連絡先)"
            } else {
                ""
            }
        );
    }
}

pub fn run(cmd: UserCommand) -> Result<()> {
    let system = Principal::System;
    match cmd {
        UserCommand::Add {
            data,
            municipality,
            email,
            person,
            team,
            phone,
            transfer_contact,
        } => {
            let store = data.open()?;
            let users = store.put_user(
                &system,
                municipality,
                &User {
                    email: email.clone(),
                    team,
                    person,
                    phone,
                    transfer_contact,
                },
            )?;
            crate::devices::logged(
                store.as_ref(),
                municipality,
                "user.put",
                format!("user {}", email.trim().to_lowercase()),
            )?;
            print(&users);
        }
        UserCommand::List { data, municipality } => {
            print(&data.open()?.users(&system, municipality)?);
        }
        UserCommand::Remove {
            data,
            municipality,
            email,
        } => {
            let store = data.open()?;
            let users = store.remove_user(&system, municipality, &email)?;
            crate::devices::logged(
                store.as_ref(),
                municipality,
                "user.remove",
                format!("user {}", email.trim().to_lowercase()),
            )?;
            print(&users);
        }
    }
    Ok(())
}
