//! Typed settings: layered loading (defaults, then `config/tidings.toml` or `--config`, then
//! `TIDINGS__SECTION__KEY` environment variables) and `validate()`, whose messages name the key.
//!
//! Secrets (`newsletter.secret`, `smtp.password`, `summarizer.api_key`, the password inside
//! `database.url`) are wrapped in [`Secret`], whose `Debug` and `Display` print `***`.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::domain::TopicSlug;

/// Default location of the configuration file, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/tidings.toml";

/// The placeholder `newsletter.secret` shipped in `config/tidings.toml` and the defaults.
pub const PLACEHOLDER_SECRET: &str = "change-me-to-32-random-bytes-in-production";

/// The shortest `newsletter.secret` accepted when links point at a public `base_url`.
pub const MIN_PUBLIC_SECRET_LEN: usize = 32;

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A configuration error; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub newsletter: NewsletterSettings,
    pub database: DatabaseSettings,
    pub delivery: DeliverySettings,
    pub smtp: SmtpSettings,
    pub dkim: DkimSettings,
    pub web: WebSettings,
    pub schedule: ScheduleSettings,
    pub fetch: FetchSettings,
    pub summarizer: SummarizerSettings,
    #[serde(default)]
    pub sources: Vec<SourceSettings>,
    #[serde(default)]
    pub topics: Vec<TopicSettings>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewsletterSettings {
    pub title: String,
    pub base_url: String,
    pub from: String,
    pub reply_to: String,
    pub postal_address: String,
    pub secret: Secret,
    pub previous_secrets: Vec<Secret>,
    pub consent_version: String,
}

impl Default for NewsletterSettings {
    fn default() -> Self {
        NewsletterSettings {
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

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://data/tidings.db".into(),
            max_connections: 8,
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Replaces the password inside a URL with `***`, for logs and error messages.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Smtp,
    File,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// "smtp" or "file"; empty means "smtp" when `smtp.host` is set, else "file".
    pub transport: Option<TransportKind>,
    pub outbox_dir: PathBuf,
    pub concurrency: usize,
    pub max_per_second: u32,
    pub max_attempts: u32,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    pub give_up_after_hours: u64,
    pub lease_secs: u64,
    pub batch_size: u32,
    /// Resends after an unknown outcome (no reply after the message data) before the delivery
    /// is recorded `unknown`.
    pub unknown_retries: u32,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            transport: None,
            outbox_dir: PathBuf::from("outbox"),
            concurrency: 4,
            max_per_second: 0,
            max_attempts: 8,
            retry_base_secs: 300,
            retry_max_secs: 3600,
            give_up_after_hours: 120,
            lease_secs: 300,
            batch_size: 64,
            unknown_retries: 1,
        }
    }
}

impl DeliverySettings {
    /// The transport in force: explicit, else smtp when a host is configured, else file.
    pub fn effective_transport(&self, smtp: &SmtpSettings) -> TransportKind {
        match self.transport {
            Some(t) => t,
            None if smtp.host.trim().is_empty() => TransportKind::File,
            None => TransportKind::Smtp,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub password: Secret,
    /// The wait for each step of a session (connect, greeting, EHLO, STARTTLS, AUTH) and for
    /// each reply of a transaction, in seconds (fractions allowed).
    pub timeout_secs: f64,
    pub helo_name: String,
    /// A PEM file of extra root certificates to trust for the relay (a private CA); empty:
    /// the system's roots only.
    pub ca_file: String,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: 587,
            tls: TlsMode::Starttls,
            username: String::new(),
            password: Secret::default(),
            timeout_secs: 30.0,
            helo_name: String::new(),
            ca_file: String::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub private_key_path: String,
}

impl DkimSettings {
    pub fn enabled(&self) -> bool {
        !self.private_key_path.trim().is_empty()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    pub bind: String,
    pub trusted_proxies: Vec<String>,
    pub record_consent_ip: bool,
    pub metrics_token: Secret,
    pub subscribe_per_minute: u32,
    pub subscribe_burst: u32,
    pub confirmations_per_hour: u32,
    pub request_timeout_secs: u64,
    pub max_body_bytes: usize,
    /// A connection that has not sent a whole request head this long after it opened, or after
    /// its previous response (an idle keep-alive), is closed.
    pub header_read_timeout_secs: u64,
    /// Open connections at most, in total; beyond it a new connection gets 503 and is closed.
    pub max_connections: usize,
    /// Open connections at most from one client address (an IPv6 /64 counts as one); beyond it
    /// 429 and closed. Peers in `trusted_proxies` are counted only in the total.
    pub max_connections_per_client: usize,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish before the
    /// connections still open are closed.
    pub shutdown_grace_secs: u64,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
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
pub struct ScheduleSettings {
    pub cron: String,
    pub timezone: String,
    pub fetch_cron: String,
    pub retry_cron: String,
    pub housekeeping_cron: String,
    pub catch_up_hours: u64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            cron: "0 0 8 * * Mon".into(),
            timezone: "UTC".into(),
            fetch_cron: "0 15 * * * *".into(),
            retry_cron: "0 */5 * * * *".into(),
            housekeeping_cron: "0 30 3 * * *".into(),
            catch_up_hours: 24,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchSettings {
    pub connect_timeout_secs: u64,
    pub timeout_secs: u64,
    pub max_bytes: u64,
    pub max_entries: usize,
    pub per_host_concurrency: usize,
    pub user_agent: String,
    pub allow_private_addresses: bool,
    pub retries: u32,
    pub fetch_pages: bool,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            connect_timeout_secs: 10,
            timeout_secs: 30,
            max_bytes: 5 * 1024 * 1024,
            max_entries: 500,
            per_host_concurrency: 2,
            user_agent: concat!(
                "tidings/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/tidings/tidings)"
            )
            .into(),
            allow_private_addresses: false,
            retries: 2,
            fetch_pages: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SummarizerKind {
    Extractive,
    Openai,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SummarizerSettings {
    pub kind: SummarizerKind,
    pub base_url: String,
    pub model: String,
    pub api_key: Secret,
    pub timeout_secs: u64,
}

impl Default for SummarizerSettings {
    fn default() -> Self {
        SummarizerSettings {
            kind: SummarizerKind::Extractive,
            base_url: String::new(),
            model: String::new(),
            api_key: Secret::default(),
            timeout_secs: 30,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Hackernews,
    Feed,
    Lobsters,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Hackernews => "hackernews",
            SourceKind::Feed => "feed",
            SourceKind::Lobsters => "lobsters",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    pub kind: SourceKind,
    pub name: String,
    #[serde(default = "one")]
    pub weight: f64,
    /// Base URL for hackernews (default https://hn.algolia.com) and lobsters (default https://lobste.rs).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Feed URL for `kind = "feed"`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub min_points: i64,
    #[serde(default)]
    pub tags: Vec<String>,
}

fn one() -> f64 {
    1.0
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
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
    /// Optional cron of its own (6 fields); else `[schedule] cron`.
    #[serde(default)]
    pub cron: Option<String>,
    /// Optional local delivery time "HH:MM" in each subscriber's zone.
    #[serde(default)]
    pub deliver_at_local: Option<String>,
}

impl TopicSettings {
    /// The topic's own cron, when set and not blank.
    pub fn own_cron(&self) -> Option<&str> {
        self.cron.as_deref().filter(|c| !c.trim().is_empty())
    }

    /// The cron the topic's digests follow: its own, else `[schedule] cron`.
    pub fn cron_or<'a>(&'a self, schedule: &'a ScheduleSettings) -> &'a str {
        self.own_cron().unwrap_or(&schedule.cron)
    }
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

impl Settings {
    /// Loads defaults, then the file at `path` (if given, it must exist; otherwise
    /// `config/tidings.toml` when present), then `TIDINGS__SECTION__KEY` variables; validates.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        match path {
            Some(p) => {
                if !p.exists() {
                    return Err(err(format!("config file {} does not exist", p.display())));
                }
                fig = fig.merge(Toml::file(p));
            }
            None => {
                let p = Path::new(DEFAULT_CONFIG_PATH);
                if p.exists() {
                    fig = fig.merge(Toml::file(p));
                }
            }
        }
        fig = fig.merge(Env::prefixed("TIDINGS__").split("__").lowercase(true));
        let settings: Settings = fig.extract().map_err(describe_figment_error)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses settings from TOML text alone (no environment), then validates. For tests.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(describe_figment_error)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn topic(&self, slug: &str) -> Option<&TopicSettings> {
        self.topics.iter().find(|t| t.slug == slug)
    }

    /// Checks every value; the first problem found is reported with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = &self.newsletter;
        if n.title.trim().is_empty() {
            return Err(err("newsletter.title must not be empty"));
        }
        let base = url::Url::parse(&n.base_url)
            .map_err(|e| err(format!("newsletter.base_url is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(err(
                "newsletter.base_url must start with http:// or https://",
            ));
        }
        crate::domain::parse_mailbox(&n.from)
            .map_err(|e| err(format!("newsletter.from is not a valid mailbox: {e}")))?;
        if !n.reply_to.trim().is_empty() {
            crate::domain::parse_mailbox(&n.reply_to)
                .map_err(|e| err(format!("newsletter.reply_to is not a valid mailbox: {e}")))?;
        }
        if n.postal_address.trim().is_empty() {
            return Err(err(
                "newsletter.postal_address must be set (a postal address is required in bulk mail)",
            ));
        }
        if n.secret.expose().len() < 16 {
            return Err(err("newsletter.secret must be at least 16 characters"));
        }
        for (i, s) in n.previous_secrets.iter().enumerate() {
            if s.expose().len() < 16 {
                return Err(err(format!(
                    "newsletter.previous_secrets[{i}] must be at least 16 characters"
                )));
            }
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(err(format!(
                "database.url must start with sqlite: or postgres:// (got {})",
                redact_url(db)
            )));
        }
        if self.database.max_connections == 0 {
            return Err(err("database.max_connections must be at least 1"));
        }
        let d = &self.delivery;
        if d.concurrency == 0 || d.concurrency > 256 {
            return Err(err("delivery.concurrency must be between 1 and 256"));
        }
        if d.max_attempts == 0 {
            return Err(err("delivery.max_attempts must be at least 1"));
        }
        if d.retry_base_secs == 0 {
            return Err(err("delivery.retry_base_secs must be at least 1"));
        }
        if d.retry_max_secs < d.retry_base_secs {
            return Err(err(
                "delivery.retry_max_secs must be at least delivery.retry_base_secs",
            ));
        }
        if d.lease_secs == 0 {
            return Err(err("delivery.lease_secs must be at least 1"));
        }
        if d.batch_size == 0 {
            return Err(err("delivery.batch_size must be at least 1"));
        }
        if d.unknown_retries > 100 {
            return Err(err("delivery.unknown_retries must be at most 100"));
        }
        if d.outbox_dir.as_os_str().is_empty() {
            return Err(err("delivery.outbox_dir must not be empty"));
        }
        if d.transport == Some(TransportKind::Smtp) && self.smtp.host.trim().is_empty() {
            return Err(err(
                "delivery.transport is \"smtp\" but smtp.host is not set",
            ));
        }
        let s = &self.smtp;
        if !s.host.trim().is_empty() && s.port == 0 {
            return Err(err("smtp.port must not be 0"));
        }
        if !s.username.is_empty() && s.password.is_empty() {
            return Err(err("smtp.username is set without smtp.password"));
        }
        if s.username.is_empty() && !s.password.is_empty() {
            return Err(err("smtp.password is set without smtp.username"));
        }
        if !(0.01..=3600.0).contains(&s.timeout_secs) {
            return Err(err("smtp.timeout_secs must be between 0.01 and 3600"));
        }
        let k = &self.dkim;
        if k.enabled() && (k.domain.trim().is_empty() || k.selector.trim().is_empty()) {
            return Err(err(
                "dkim.private_key_path is set but dkim.domain or dkim.selector is empty",
            ));
        }
        self.web
            .bind
            .parse::<SocketAddr>()
            .map_err(|e| err(format!("web.bind is not an address:port ({e})")))?;
        for p in &self.web.trusted_proxies {
            p.parse::<IpAddr>().map_err(|_| {
                err(format!(
                    "web.trusted_proxies contains {p:?}, not an IP address"
                ))
            })?;
        }
        if self.web.max_body_bytes < 1024 {
            return Err(err("web.max_body_bytes must be at least 1024"));
        }
        if self.web.request_timeout_secs == 0 {
            return Err(err("web.request_timeout_secs must be at least 1"));
        }
        if self.web.header_read_timeout_secs == 0 {
            return Err(err("web.header_read_timeout_secs must be at least 1"));
        }
        if self.web.max_connections == 0 {
            return Err(err("web.max_connections must be at least 1"));
        }
        if self.web.max_connections_per_client == 0
            || self.web.max_connections_per_client > self.web.max_connections
        {
            return Err(err(
                "web.max_connections_per_client must be between 1 and web.max_connections",
            ));
        }
        let sch = &self.schedule;
        sch.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            err(format!(
                "schedule.timezone {:?} is not an IANA time zone",
                sch.timezone
            ))
        })?;
        for (key, value) in [
            ("schedule.cron", &sch.cron),
            ("schedule.fetch_cron", &sch.fetch_cron),
            ("schedule.retry_cron", &sch.retry_cron),
            ("schedule.housekeeping_cron", &sch.housekeeping_cron),
        ] {
            if !value.trim().is_empty() {
                crate::schedule::parse_cron(value).map_err(|e| err(format!("{key}: {e}")))?;
            }
        }
        let f = &self.fetch;
        if f.connect_timeout_secs == 0 || f.timeout_secs == 0 {
            return Err(err(
                "fetch.connect_timeout_secs and fetch.timeout_secs must be at least 1",
            ));
        }
        if f.max_bytes < 1024 {
            return Err(err("fetch.max_bytes must be at least 1024"));
        }
        if f.max_entries == 0 {
            return Err(err("fetch.max_entries must be at least 1"));
        }
        if f.per_host_concurrency == 0 {
            return Err(err("fetch.per_host_concurrency must be at least 1"));
        }
        if f.user_agent.trim().is_empty() {
            return Err(err("fetch.user_agent must not be empty"));
        }
        let sm = &self.summarizer;
        if sm.kind == SummarizerKind::Openai {
            if sm.base_url.trim().is_empty() {
                return Err(err(
                    "summarizer.base_url must be set when summarizer.kind = \"openai\"",
                ));
            }
            if sm.model.trim().is_empty() {
                return Err(err(
                    "summarizer.model must be set when summarizer.kind = \"openai\"",
                ));
            }
        }
        let mut names = HashSet::new();
        for (i, src) in self.sources.iter().enumerate() {
            if src.name.trim().is_empty() {
                return Err(err(format!("sources[{i}].name must not be empty")));
            }
            if !names.insert(src.name.as_str()) {
                return Err(err(format!(
                    "sources[{i}].name {:?} is used twice",
                    src.name
                )));
            }
            if !(src.weight.is_finite() && src.weight >= 0.0) {
                return Err(err(format!("sources[{i}].weight must be a number >= 0")));
            }
            if src.kind == SourceKind::Feed && src.url.as_deref().unwrap_or("").trim().is_empty() {
                return Err(err(format!(
                    "sources[{i}].url is required for kind = \"feed\""
                )));
            }
            for (key, value) in [("url", &src.url), ("base_url", &src.base_url)] {
                if let Some(v) = value {
                    let u = url::Url::parse(v)
                        .map_err(|e| err(format!("sources[{i}].{key} is not a URL: {e}")))?;
                    if !matches!(u.scheme(), "http" | "https") {
                        return Err(err(format!("sources[{i}].{key} must be http or https")));
                    }
                }
            }
        }
        let mut slugs = HashSet::new();
        for (i, t) in self.topics.iter().enumerate() {
            TopicSlug::parse(&t.slug).map_err(|e| err(format!("topics[{i}].slug: {e}")))?;
            if !slugs.insert(t.slug.as_str()) {
                return Err(err(format!("topics[{i}].slug {:?} is used twice", t.slug)));
            }
            if t.name.trim().is_empty() {
                return Err(err(format!("topics[{i}].name must not be empty")));
            }
            if t.window_days == 0 || t.window_days > 366 {
                return Err(err(format!(
                    "topics[{i}].window_days must be between 1 and 366"
                )));
            }
            if t.limit == 0 {
                return Err(err(format!("topics[{i}].limit must be at least 1")));
            }
            if t.max_per_domain == 0 {
                return Err(err(format!(
                    "topics[{i}].max_per_domain must be at least 1"
                )));
            }
            if let Some(c) = t.own_cron() {
                crate::schedule::parse_cron(c)
                    .map_err(|e| err(format!("topics[{i}].cron: {e}")))?;
            }
            if let Some(at) = &t.deliver_at_local {
                chrono::NaiveTime::parse_from_str(at, "%H:%M").map_err(|_| {
                    err(format!("topics[{i}].deliver_at_local {at:?} is not HH:MM"))
                })?;
            }
        }
        Ok(())
    }
}

impl Settings {
    /// For the commands that send or serve signed links (`serve`, `run`, `send`): refuses the
    /// shipped placeholder secret, or a secret shorter than [`MIN_PUBLIC_SECRET_LEN`], unless
    /// `newsletter.base_url` is a loopback address (127.0.0.0/8, ::1, localhost). Anyone who
    /// knows the secret can forge unsubscribe and preferences links for every subscriber.
    pub fn check_secret_for_public_links(&self) -> Result<(), ConfigError> {
        let n = &self.newsletter;
        if base_url_is_loopback(&n.base_url) {
            return Ok(());
        }
        let keys = std::iter::once(("newsletter.secret".to_string(), &n.secret)).chain(
            n.previous_secrets
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("newsletter.previous_secrets[{i}]"), s)),
        );
        for (key, secret) in keys {
            let problem = if secret.expose() == PLACEHOLDER_SECRET {
                "is the placeholder shipped in config/tidings.toml".to_string()
            } else if secret.expose().chars().count() < MIN_PUBLIC_SECRET_LEN {
                format!("is shorter than {MIN_PUBLIC_SECRET_LEN} characters")
            } else {
                continue;
            };
            return Err(err(format!(
                "{key} {problem}, and newsletter.base_url is public: anyone could forge \
                 unsubscribe and preferences links. Generate one with `openssl rand -base64 32` \
                 and set it in the config file or as TIDINGS__NEWSLETTER__SECRET"
            )));
        }
        Ok(())
    }
}

/// Whether a base URL's host is a loopback address (127.0.0.0/8, ::1) or `localhost`.
fn base_url_is_loopback(base_url: &str) -> bool {
    match url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn describe_figment_error(e: figment::Error) -> ConfigError {
    let mut parts = Vec::new();
    for one in e {
        let key = one.path.join(".");
        let msg = one.kind.to_string();
        if key.is_empty() {
            parts.push(msg);
        } else {
            parts.push(format!("{key}: {msg}"));
        }
    }
    err(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weak_secret_is_refused_only_for_a_public_base_url() {
        let with = |base: &str, secret: &str| {
            let mut s = Settings::default();
            s.newsletter.base_url = base.into();
            s.newsletter.secret = Secret::new(secret);
            s.check_secret_for_public_links()
        };
        let strong = "q3J1c2V0LXRoaXMtaXMtYS10ZXN0LXNlY3JldA==";
        for base in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:8080/",
        ] {
            assert!(with(base, PLACEHOLDER_SECRET).is_ok(), "{base}");
            assert!(with(base, "sixteen-chars-ok").is_ok(), "{base}");
        }
        for base in [
            "https://news.example.com",
            "http://10.0.0.1",
            "http://localhost.example.com",
        ] {
            let e = with(base, PLACEHOLDER_SECRET).unwrap_err().to_string();
            assert!(
                e.contains("newsletter.secret") && e.contains("placeholder"),
                "{e}"
            );
            assert!(e.contains("openssl rand -base64 32"), "{e}");
            assert!(!e.contains(PLACEHOLDER_SECRET), "{e}");
            let e = with(base, "sixteen-chars-ok").unwrap_err().to_string();
            assert!(e.contains("shorter than 32"), "{e}");
            assert!(!e.contains("sixteen-chars-ok"), "{e}");
            assert!(with(base, strong).is_ok(), "{base}");
        }
        let mut s = Settings::default();
        s.newsletter.base_url = "https://news.example.com".into();
        s.newsletter.secret = Secret::new(strong);
        s.newsletter.previous_secrets = vec![Secret::new(PLACEHOLDER_SECRET)];
        let e = s.check_secret_for_public_links().unwrap_err().to_string();
        assert!(e.contains("newsletter.previous_secrets[0]"), "{e}");
    }

    #[test]
    fn secrets_print_as_stars() {
        let mut s = Settings::default();
        s.smtp.password = Secret::new("hunter2-very-secret");
        s.database.url = "postgres://bob:pgpass@localhost/db".into();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("pgpass"), "{dbg}");
        assert!(!dbg.contains("change-me-to"), "{dbg}");
        assert!(dbg.contains("***"));
    }

    #[test]
    fn defaults_validate() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let e = Settings::from_toml("[smtp]\nusername = \"bob\"\n").unwrap_err();
        assert!(e.to_string().contains("smtp.username"), "{e}");
        let e = Settings::from_toml("[schedule]\ntimezone = \"Mars/Base\"\n").unwrap_err();
        assert!(e.to_string().contains("schedule.timezone"), "{e}");
        let e = Settings::from_toml("[delivery]\nconcurrency = 0\n").unwrap_err();
        assert!(e.to_string().contains("delivery.concurrency"), "{e}");
        let e = Settings::from_toml("[smtp]\nport = \"abc\"\n").unwrap_err();
        assert!(e.to_string().contains("smtp.port"), "{e}");
        let e = Settings::from_toml("[[topics]]\nslug = \"Bad Slug\"\nname = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("topics[0].slug"), "{e}");
        let e =
            Settings::from_toml("[web]\nmax_connections = 10\nmax_connections_per_client = 11\n")
                .unwrap_err();
        assert!(
            e.to_string().contains("web.max_connections_per_client"),
            "{e}"
        );
        let e = Settings::from_toml("[web]\nheader_read_timeout_secs = 0\n").unwrap_err();
        assert!(
            e.to_string().contains("web.header_read_timeout_secs"),
            "{e}"
        );
        let e = Settings::from_toml("[newsletter]\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    /// Every key of every section appears in config/tidings.toml (set or commented out), so the
    /// shipped file documents the whole configuration.
    #[test]
    fn shipped_config_names_every_key() {
        let text = include_str!("../config/tidings.toml");
        Settings::from_toml(text).unwrap();
        let defaults = figment::Figment::from(Serialized::defaults(Settings::default()));
        let value: figment::value::Dict = defaults.extract().unwrap();
        for (section, inner) in value {
            let Some(dict) = inner.as_dict() else {
                continue;
            };
            assert!(
                text.contains(&format!("[{section}]")),
                "section [{section}] is missing"
            );
            for key in dict.keys() {
                let named = text
                    .lines()
                    .map(|l| l.trim_start_matches('#').trim())
                    .any(|l| l.starts_with(&format!("{key} =")));
                assert!(named, "{section}.{key} is not named in config/tidings.toml");
            }
        }
        for key in [
            "kind",
            "name",
            "weight",
            "base_url",
            "url",
            "min_points",
            "tags",
        ] {
            assert!(text.contains(key), "sources key {key} is not documented");
        }
        for key in [
            "slug",
            "keywords",
            "exclude",
            "domains",
            "window_days",
            "limit",
            "max_per_domain",
            "repeat",
            "cron",
            "deliver_at_local",
        ] {
            assert!(text.contains(key), "topics key {key} is not documented");
        }
    }

    #[test]
    fn smtp_timeout_takes_fractions_and_must_be_positive() {
        let s = Settings::from_toml("[smtp]\ntimeout_secs = 0.5\n").unwrap();
        assert_eq!(s.smtp.timeout_secs, 0.5);
        let s = Settings::from_toml("[smtp]\ntimeout_secs = 7\n").unwrap();
        assert_eq!(s.smtp.timeout_secs, 7.0);
        let e = Settings::from_toml("[smtp]\ntimeout_secs = 0\n").unwrap_err();
        assert!(e.to_string().contains("smtp.timeout_secs"), "{e}");
        assert_eq!(Settings::default().delivery.unknown_retries, 1);
    }

    #[test]
    fn transport_defaults_to_file_without_smtp_host() {
        let s = Settings::default();
        assert_eq!(s.delivery.effective_transport(&s.smtp), TransportKind::File);
        let s = Settings::from_toml("[smtp]\nhost = \"mail.example.com\"\n").unwrap();
        assert_eq!(s.delivery.effective_transport(&s.smtp), TransportKind::Smtp);
    }
}
