//! `vrs admin device …`: the operator registers, lists and revokes a municipality's
//! tablets (municipal staff do the same through the API and web pages).

use anyhow::{Context, Result};
use clap::Subcommand;
use vrs_domain::{DeviceId, MunicipalityCode, SiteRef};
use vrs_server::Principal;
use vrs_server::rules::devices::DeviceRegistration;
use vrs_server::store::audit::AuditEvent;

use crate::DataArgs;

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Register a tablet for a clinic or a mass-vaccination site; prints its device id
    /// and one-time enrolment code (valid 7 days), to type or scan on the tablet.
    Register {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        municipality: MunicipalityCode,
        /// The clinic's 医療機関コード (10 digits).
        #[arg(long, conflicts_with = "site", required_unless_present = "site")]
        clinic: Option<vrs_domain::ClinicCode>,
        /// The mass-vaccination site's code.
        #[arg(long)]
        site: Option<vrs_domain::SiteCode>,
        /// The clinic's or site's name, as the ledger shows it.
        #[arg(long)]
        site_name: String,
        /// The tablet's own e-mail (one per tablet).
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        address: String,
        /// Delivery address and who receives the tablet.
        #[arg(long, default_value = "")]
        delivery: String,
        #[arg(long, default_value = "")]
        contact: String,
        #[arg(long, default_value = "")]
        notes: String,
        /// The site's scale, doses a day.
        #[arg(long)]
        doses_per_day: Option<u32>,
    },
    /// A new enrolment code for a tablet that is not revoked.
    Reissue {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        municipality: MunicipalityCode,
        #[arg(long)]
        device: uuid::Uuid,
    },
    /// Revoke a tablet: every request it makes from now on is refused.
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        municipality: MunicipalityCode,
        #[arg(long)]
        device: uuid::Uuid,
    },
    /// List a municipality's tablets.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        municipality: MunicipalityCode,
    },
}

pub fn logged(
    store: &dyn vrs_server::Store,
    m: MunicipalityCode,
    action: &str,
    object: String,
) -> Result<()> {
    store.audit().append(&AuditEvent {
        chain: i64::from(m.get()),
        at: vrs_server::store::jst_now(),
        actor: "system (vrs admin)".into(),
        action: action.into(),
        object,
        outcome: "ok".into(),
    })?;
    Ok(())
}

pub fn run(cmd: DeviceCommand) -> Result<()> {
    let system = Principal::System;
    match cmd {
        DeviceCommand::Register {
            data,
            municipality,
            clinic,
            site,
            site_name,
            email,
            address,
            delivery,
            contact,
            notes,
            doses_per_day,
        } => {
            let site = match (clinic, site) {
                (Some(c), _) => SiteRef::Clinic(c),
                (None, Some(s)) => SiteRef::Site(s),
                (None, None) => anyhow::bail!("give --clinic CODE or --site CODE"),
            };
            let store = data.open()?;
            let e = store
                .register_device(
                    &system,
                    municipality,
                    &DeviceRegistration {
                        site,
                        site_name,
                        address,
                        email,
                        delivery,
                        contact,
                        notes,
                        doses_per_day,
                    },
                )
                .context("cannot register the tablet")?;
            logged(
                store.as_ref(),
                municipality,
                "device.register",
                format!("device {}", e.device_id),
            )?;
            println!(
                "device {}\nenrolment code {} (valid until {})",
                e.device_id, e.code, e.expires
            );
        }
        DeviceCommand::Reissue {
            data,
            municipality,
            device,
        } => {
            let store = data.open()?;
            let e = store.reissue_enrolment(&system, municipality, DeviceId(device))?;
            logged(
                store.as_ref(),
                municipality,
                "device.reissue",
                format!("device {device}"),
            )?;
            println!(
                "device {}\nenrolment code {} (valid until {})",
                e.device_id, e.code, e.expires
            );
        }
        DeviceCommand::Revoke {
            data,
            municipality,
            device,
        } => {
            let store = data.open()?;
            store.revoke_device(&system, municipality, DeviceId(device))?;
            logged(
                store.as_ref(),
                municipality,
                "device.revoke",
                format!("device {device}"),
            )?;
            println!("device {device} revoked");
        }
        DeviceCommand::List { data, municipality } => {
            let store = data.open()?;
            for d in store.devices(&system, municipality)? {
                let (kind, code) = vrs_server::rules::devices::site_kind_and_code(&d.site);
                println!(
                    "{}  {:<8}  {kind} {code} {}  {}",
                    d.device_id, d.state, d.site_name, d.email
                );
            }
        }
    }
    Ok(())
}
