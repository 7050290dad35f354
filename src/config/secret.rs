//! Secrets in the settings: [`Secret`] (whose `Debug` and `Display` print `***`), the password
//! inside `database.url` redacted for logs, and the check that refuses a weak
//! `newsletter.secret` when links point at a public `base_url`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Settings, err};

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

impl Settings {
    /// For the commands that send or serve signed links (`serve`, `run`, `send`): refuses the
    /// shipped placeholder secret, or a secret shorter than [`MIN_PUBLIC_SECRET_LEN`], unless
    /// `newsletter.base_url` is a loopback address (127.0.0.0/8, ::1, localhost). Anyone who
    /// knows the secret can forge unsubscribe and preferences links for every subscriber.
    pub fn check_secret_for_public_links(&self) -> Result<(), ConfigError> {
        if base_url_is_loopback(&self.newsletter.base_url) {
            return Ok(());
        }
        if let Some((key, problem)) = self.weak_secret() {
            return Err(err(format!(
                "{key} {problem}, and newsletter.base_url is public: anyone could forge \
                 unsubscribe and preferences links. Generate one with `openssl rand -base64 32` \
                 and set it in the config file or as TIDINGS__NEWSLETTER__SECRET"
            )));
        }
        Ok(())
    }

    /// The first signing secret (`newsletter.secret`, then each of `previous_secrets`) that is
    /// the shipped placeholder or shorter than [`MIN_PUBLIC_SECRET_LEN`]: its key and what is
    /// wrong with it (never the secret itself).
    pub fn weak_secret(&self) -> Option<(String, String)> {
        let n = &self.newsletter;
        std::iter::once(("newsletter.secret".to_string(), &n.secret))
            .chain(
                n.previous_secrets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("newsletter.previous_secrets[{i}]"), s)),
            )
            .find_map(|(key, secret)| {
                let problem = if secret.expose() == PLACEHOLDER_SECRET {
                    "is the placeholder shipped in config/tidings.toml".to_string()
                } else if secret.expose().chars().count() < MIN_PUBLIC_SECRET_LEN {
                    format!("is shorter than {MIN_PUBLIC_SECRET_LEN} characters")
                } else {
                    return None;
                };
                Some((key, problem))
            })
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
