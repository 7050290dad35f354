//! The sections that are read as they are written, with their defaults: `[database]`,
//! `[delivery]`, `[smtp]`, `[dkim]`, `[fetch]`, `[summarizer]`, `[ranking]` and `[[sources]]`. Their values
//! need no parsing beyond serde's; `validate.rs` checks their ranges.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::secret::{Secret, redact_url};

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
    /// The selector of the optional second, Ed25519 key (RFC 8463), under the same domain.
    pub ed25519_selector: String,
    /// The Ed25519 key (the base64 of its 32-byte seed); set, every message is signed twice.
    pub ed25519_private_key_path: String,
}

impl DkimSettings {
    pub fn enabled(&self) -> bool {
        !self.private_key_path.trim().is_empty()
    }

    /// Whether an Ed25519 key is configured beside the RSA key (dual signing).
    pub fn ed25519_enabled(&self) -> bool {
        !self.ed25519_private_key_path.trim().is_empty()
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
    /// Summary length bounds in words, for both summarisers (an article under ~300 words may
    /// give a shorter extractive summary).
    pub min_words: usize,
    pub max_words: usize,
    /// Model requests one compile run may make (cache hits are free); the rest are extractive.
    pub max_requests_per_run: usize,
    /// Model requests in flight at a time.
    pub concurrency: usize,
}

impl Default for SummarizerSettings {
    fn default() -> Self {
        SummarizerSettings {
            kind: SummarizerKind::Extractive,
            base_url: String::new(),
            model: String::new(),
            api_key: Secret::default(),
            timeout_secs: 30,
            min_words: 60,
            max_words: 130,
            max_requests_per_run: 50,
            concurrency: 4,
        }
    }
}

/// `[ranking]`: how sources' points are compared. Each source's points are read as a
/// percentile of its own points over the trailing `trailing_days`; a source without points
/// (a plain feed) or without history counts as `default_percentile` (0 to 1).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankingSettings {
    pub default_percentile: f64,
    pub trailing_days: u32,
}

impl Default for RankingSettings {
    fn default() -> Self {
        RankingSettings {
            default_percentile: 0.5,
            trailing_days: 28,
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
