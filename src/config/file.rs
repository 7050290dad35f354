//! The configuration as written: the shape of `config/tidings.toml` and of the
//! `TIDINGS__SECTION__KEY` variables, with every default. Sections whose values need parsing
//! (`[newsletter]`, `[web]`, `[schedule]`, `[bounces]`, `[[topics]]`) are kept as text here and
//! turned into their typed form once, by `validate.rs` (like ripgrep's `LowArgs` -> `HiArgs`);
//! the other sections are read straight into their final types from `sections.rs`.

use serde::{Deserialize, Serialize};

use super::secret::{PLACEHOLDER_SECRET, Secret};
use super::sections::{
    DatabaseSettings, DeliverySettings, DkimSettings, FetchSettings, RankingSettings, SmtpSettings,
    SourceSettings, SummarizerSettings,
};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    pub newsletter: RawNewsletter,
    pub database: DatabaseSettings,
    pub delivery: DeliverySettings,
    pub smtp: SmtpSettings,
    pub dkim: DkimSettings,
    pub web: RawWeb,
    pub schedule: RawSchedule,
    pub fetch: FetchSettings,
    pub summarizer: SummarizerSettings,
    pub bounces: RawBounces,
    pub theme: RawTheme,
    pub ranking: RankingSettings,
    #[serde(default)]
    pub sources: Vec<SourceSettings>,
    #[serde(default)]
    pub topics: Vec<RawTopic>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawNewsletter {
    pub title: String,
    pub base_url: String,
    pub from: String,
    pub reply_to: String,
    pub postal_address: String,
    pub secret: Secret,
    pub previous_secrets: Vec<Secret>,
    pub consent_version: String,
}

impl Default for RawNewsletter {
    fn default() -> Self {
        RawNewsletter {
            title: "Tidings".into(),
            base_url: "http://localhost:8080".into(),
            from: "Tidings <tidings@localhost>".into(),
            reply_to: String::new(),
            postal_address: "Tidings, 1 Example Street, Exampletown".into(),
            secret: Secret::new(PLACEHOLDER_SECRET),
            previous_secrets: Vec::new(),
            consent_version: "2026-01".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawWeb {
    pub bind: String,
    pub trusted_proxies: Vec<String>,
    pub record_consent_ip: bool,
    pub metrics_token: Secret,
    pub subscribe_per_minute: u32,
    pub subscribe_burst: u32,
    pub confirmations_per_hour: u32,
    pub request_timeout_secs: u64,
    pub max_body_bytes: usize,
    pub header_read_timeout_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub shutdown_grace_secs: u64,
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            bind: "127.0.0.1:8080".into(),
            trusted_proxies: Vec::new(),
            record_consent_ip: false,
            metrics_token: Secret::default(),
            subscribe_per_minute: 10,
            subscribe_burst: 5,
            confirmations_per_hour: 200,
            request_timeout_secs: 15,
            max_body_bytes: 16 * 1024,
            header_read_timeout_secs: 10,
            max_connections: 512,
            max_connections_per_client: 32,
            shutdown_grace_secs: 5,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSchedule {
    pub cron: String,
    pub timezone: String,
    pub fetch_cron: String,
    pub retry_cron: String,
    pub housekeeping_cron: String,
    pub catch_up_hours: u64,
}

impl Default for RawSchedule {
    fn default() -> Self {
        RawSchedule {
            cron: "0 0 8 * * Mon".into(),
            timezone: "UTC".into(),
            fetch_cron: "0 15 * * * *".into(),
            retry_cron: "0 */5 * * * *".into(),
            housekeeping_cron: "0 30 3 * * *".into(),
            catch_up_hours: 24,
        }
    }
}

/// `[bounces]`: where bounces come back. `address` blank means no VERP return path;
/// `soft_limit` soft bounces within `soft_window_days` suppress an address.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawBounces {
    pub address: String,
    pub soft_limit: u32,
    pub soft_window_days: u32,
    pub webhook_secret: Secret,
    // Provider webhooks (`src/web/webhooks/`).
    pub ses_topic_arns: Vec<String>,
    pub postmark_username: String,
    pub postmark_password: Secret,
    pub sendgrid_public_key: String,
    pub mailgun_signing_key: Secret,
    pub imap_url: String,
    pub imap_password: Secret,
    pub imap_ca_file: String,
    pub poll_secs: u64,
    pub processed_folder: String,
    pub unmatched_folder: String,
}

impl Default for RawBounces {
    fn default() -> Self {
        RawBounces {
            address: String::new(),
            soft_limit: 3,
            soft_window_days: 30,
            webhook_secret: Secret::default(),
            ses_topic_arns: Vec::new(),
            postmark_username: String::new(),
            postmark_password: Secret::default(),
            sendgrid_public_key: String::new(),
            mailgun_signing_key: Secret::default(),
            imap_url: String::new(),
            imap_password: Secret::default(),
            imap_ca_file: String::new(),
            poll_secs: 60,
            processed_folder: "Processed".into(),
            unmatched_folder: "Unmatched".into(),
        }
    }
}

/// `[theme]`: the newsletter's looks, each key blank for the built-in look.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTheme {
    pub accent_color: String,
    pub logo_url: String,
    pub footer: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTopic {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default = "seven")]
    pub window_days: u32,
    #[serde(default = "twenty")]
    pub limit: usize,
    #[serde(default = "three")]
    pub max_per_domain: usize,
    #[serde(default)]
    pub repeat: bool,
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default)]
    pub deliver_at_local: Option<String>,
}

fn seven() -> u32 {
    7
}
fn twenty() -> usize {
    20
}
fn three() -> usize {
    3
}
