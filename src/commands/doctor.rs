//! `tidings doctor [--json] [--nameserver IP:PORT]`: runs every check of `crate::doctor` in
//! turn (configuration, database, SMTP, DNS, `base_url`, sources) and prints the checklist, or
//! one JSON array with `--json`. Exit 0 when nothing failed (warnings allowed), 1 otherwise. A
//! configuration that does not load is itself a failed check, reported the same way.

use std::path::Path;

use super::{CommandError, CommandResult};
use crate::cli::DoctorArgs;
use crate::config::{DEFAULT_CONFIG_PATH, Settings};
use crate::doctor::dns::{Dns, check_dns};
use crate::doctor::services::{check_database, check_healthz, check_smtp, check_sources};
use crate::doctor::settings::check_settings;
use crate::doctor::{Check, Status, any_failed, render_text};

pub async fn run(args: DoctorArgs, config: Option<&Path>) -> CommandResult {
    let checks = all_checks(&args, config).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).map_err(anyhow::Error::from)?
        );
    } else {
        print!("{}", render_text(&checks));
    }
    if any_failed(&checks) {
        let failed = checks.iter().filter(|c| c.status == Status::Failed).count();
        return Err(CommandError::Failed(anyhow::anyhow!(
            "doctor: {failed} of {} checks failed",
            checks.len()
        )));
    }
    Ok(())
}

async fn all_checks(args: &DoctorArgs, config: Option<&Path>) -> Vec<Check> {
    let source = match config {
        Some(p) => p.display().to_string(),
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => DEFAULT_CONFIG_PATH.to_string(),
        None => "the built-in defaults (no config file)".to_string(),
    };
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::failed(
                "config",
                e.to_string(),
                "fix the key the message names (config/tidings.toml lists every key)",
            )];
        }
    };
    let mut checks = vec![Check::ok("config", format!("loaded from {source}"))];
    checks.extend(check_settings(&settings));
    checks.extend(check_database(&settings).await);
    checks.extend(check_smtp(&settings).await);
    match Dns::new(args.nameserver) {
        Ok(dns) => checks.extend(check_dns(&settings, &dns).await),
        Err(e) => checks.push(Check::failed(
            "dns",
            e,
            "check /etc/resolv.conf, or name a server with --nameserver IP:PORT",
        )),
    }
    checks.push(check_healthz(&settings).await);
    checks.extend(check_sources(&settings).await);
    checks
}
