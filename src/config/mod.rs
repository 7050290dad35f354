//! Typed settings: layered loading (defaults, then `config/tidings.toml` or `--config`, then
//! `TIDINGS__SECTION__KEY` environment variables), parsed once into typed values and validated,
//! with messages that name the key.
//!
//! The file is read into its written form (`file.rs`, strings where the value needs parsing),
//! then turned into [`Settings`] (`validate.rs`), the way ripgrep turns `LowArgs` into
//! `HiArgs`: time zones, crons ([`crate::schedule::Schedule`]), mailboxes, the bind address,
//! trusted proxies, the bounce address, topic slugs and local delivery times are parsed here and nowhere else.
//!
//! Secrets (`newsletter.secret`, `smtp.password`, `summarizer.api_key`, the password inside
//! `database.url`) are wrapped in [`Secret`], whose `Debug` and `Display` print `***`.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

mod file;
mod imap;
mod secret;
mod sections;
mod typed;
mod validate;

#[cfg(test)]
mod tests;

use file::RawSettings;
pub use imap::ImapSettings;
pub use secret::{MIN_PUBLIC_SECRET_LEN, PLACEHOLDER_SECRET, Secret, redact_url};
pub use sections::{
    DatabaseSettings, DeliverySettings, DkimSettings, FetchSettings, RankingSettings, SmtpSettings,
    SourceKind, SourceSettings, SummarizerKind, SummarizerSettings, TlsMode, TransportKind,
};
pub use typed::{
    AccentColor, BasicCredentials, BouncesSettings, NewsletterSettings, ScheduleSettings,
    ThemeSettings, TopicSettings, WebSettings,
};

/// Default location of the configuration file, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/tidings.toml";

/// Longest local part `bounces.address` may have: a VERP address adds `+` and a tag of at most
/// 32 characters (`crate::tokens`, whose unit test keeps the sum within SMTP's 64).
pub const MAX_BOUNCE_LOCAL_PART: usize = 31;

/// A configuration error; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The whole configuration, typed and validated.
#[derive(Clone, Debug)]
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
    pub bounces: BouncesSettings,
    pub theme: ThemeSettings,
    pub ranking: RankingSettings,
    pub sources: Vec<SourceSettings>,
    pub topics: Vec<TopicSettings>,
}

impl Default for Settings {
    /// The built-in defaults, parsed like a file's values (the unit test `defaults_validate`
    /// keeps them valid, so this never panics).
    fn default() -> Self {
        RawSettings::default()
            .into_settings()
            .expect("the built-in defaults are valid")
    }
}

impl Settings {
    /// Loads defaults, then the file at `path` (if given, it must exist; otherwise
    /// `config/tidings.toml` when present), then `TIDINGS__SECTION__KEY` variables; parses
    /// and validates.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(RawSettings::default()));
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
        let raw: RawSettings = fig.extract().map_err(describe_figment_error)?;
        raw.into_settings()
    }

    /// Parses settings from TOML text alone (no environment), then validates. For tests.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let raw: RawSettings = Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(describe_figment_error)?;
        raw.into_settings()
    }

    pub fn topic(&self, slug: &str) -> Option<&TopicSettings> {
        self.topics.iter().find(|t| t.slug.as_str() == slug)
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
