//! From the configuration as written to typed settings: each value that needs parsing is parsed
//! here, once ([`RawSettings::into_settings`]), and [`Settings::validate`] checks the ranges and
//! the rules between keys. Every message names the key it is about.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use chrono::NaiveTime;
use chrono_tz::Tz;

use super::file::{
    RawBounces, RawNewsletter, RawSchedule, RawSettings, RawTheme, RawTopic, RawWeb,
};
use super::secret::{Secret, redact_url};
use super::sections::{SourceKind, SummarizerKind, TransportKind};
use super::typed::{
    AccentColor, BasicCredentials, BouncesSettings, NewsletterSettings, ScheduleSettings,
    ThemeSettings, TopicSettings, WebSettings,
};
use super::{ConfigError, MAX_BOUNCE_LOCAL_PART, Settings, err};
use crate::domain::{TopicSlug, parse_mailbox};
use crate::schedule::Schedule;

impl RawSettings {
    /// Parses every value that has a type of its own, then validates the whole.
    pub(crate) fn into_settings(self) -> Result<Settings, ConfigError> {
        let newsletter = self.newsletter.parse()?;
        let web = self.web.parse()?;
        let schedule = self.schedule.parse()?;
        let bounces = self.bounces.parse()?;
        let theme = self.theme.parse()?;
        let timezone = schedule.timezone;
        let topics = self
            .topics
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.parse(i, timezone))
            .collect::<Result<Vec<_>, _>>()?;
        let settings = Settings {
            newsletter,
            database: self.database,
            delivery: self.delivery,
            smtp: self.smtp,
            dkim: self.dkim,
            web,
            schedule,
            fetch: self.fetch,
            summarizer: self.summarizer,
            bounces,
            theme,
            ranking: self.ranking,
            sources: self.sources,
            topics,
        };
        settings.validate()?;
        Ok(settings)
    }
}

impl RawNewsletter {
    pub(super) fn parse(self) -> Result<NewsletterSettings, ConfigError> {
        let from = parse_mailbox(&self.from)
            .map_err(|e| err(format!("newsletter.from is not a valid mailbox: {e}")))?;
        let reply_to = if self.reply_to.trim().is_empty() {
            None
        } else {
            Some(
                parse_mailbox(&self.reply_to)
                    .map_err(|e| err(format!("newsletter.reply_to is not a valid mailbox: {e}")))?,
            )
        };
        Ok(NewsletterSettings {
            title: self.title,
            base_url: self.base_url,
            from,
            reply_to,
            postal_address: self.postal_address,
            secret: self.secret,
            previous_secrets: self.previous_secrets,
            consent_version: self.consent_version,
        })
    }
}

impl RawWeb {
    pub(super) fn parse(self) -> Result<WebSettings, ConfigError> {
        let bind = self
            .bind
            .parse::<SocketAddr>()
            .map_err(|e| err(format!("web.bind is not an address:port ({e})")))?;
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpAddr>().map_err(|_| {
                    err(format!(
                        "web.trusted_proxies contains {p:?}, not an IP address"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WebSettings {
            bind,
            trusted_proxies,
            record_consent_ip: self.record_consent_ip,
            metrics_token: self.metrics_token,
            subscribe_per_minute: self.subscribe_per_minute,
            subscribe_burst: self.subscribe_burst,
            confirmations_per_hour: self.confirmations_per_hour,
            request_timeout_secs: self.request_timeout_secs,
            max_body_bytes: self.max_body_bytes,
            header_read_timeout_secs: self.header_read_timeout_secs,
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            shutdown_grace_secs: self.shutdown_grace_secs,
        })
    }
}

impl RawBounces {
    pub(super) fn parse(self) -> Result<BouncesSettings, ConfigError> {
        if self.soft_limit == 0 {
            return Err(err("bounces.soft_limit must be at least 1"));
        }
        if self.soft_window_days == 0 {
            return Err(err("bounces.soft_window_days must be at least 1"));
        }
        let address = match self.address.trim() {
            "" => None,
            text => Some(bounce_address(text)?),
        };
        let imap = super::imap::parse(&self)?;
        let webhook_secret =
            (!self.webhook_secret.expose().trim().is_empty()).then_some(self.webhook_secret);
        let ses_topic_arns = ses_topic_arns(&self.ses_topic_arns)?;
        let postmark = postmark_credentials(self.postmark_username, self.postmark_password)?;
        let sendgrid_public_key = sendgrid_public_key(&self.sendgrid_public_key)?;
        let mailgun_signing_key = (!self.mailgun_signing_key.expose().trim().is_empty())
            .then_some(self.mailgun_signing_key);
        Ok(BouncesSettings {
            address,
            soft_limit: self.soft_limit,
            soft_window_days: self.soft_window_days,
            webhook_secret,
            ses_topic_arns,
            postmark,
            sendgrid_public_key,
            mailgun_signing_key,
            imap,
        })
    }
}

/// `bounces.ses_topic_arns`: trimmed, blanks dropped, each an SNS topic ARN.
fn ses_topic_arns(raw: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for arn in raw.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        let parts: Vec<&str> = arn.split(':').collect();
        let partition_ok =
            matches!(parts.first().zip(parts.get(1)), Some((&"arn", p)) if p.starts_with("aws"));
        if parts.len() != 6 || !partition_ok || parts[2] != "sns" || parts[5].is_empty() {
            return Err(err(format!(
                "bounces.ses_topic_arns: {arn:?} is not an SNS topic ARN \
                 (arn:aws:sns:<region>:<account>:<topic>)"
            )));
        }
        out.push(arn.to_string());
    }
    Ok(out)
}

/// `bounces.postmark_username` and `postmark_password`: both or neither.
fn postmark_credentials(
    username: String,
    password: Secret,
) -> Result<Option<BasicCredentials>, ConfigError> {
    let username = username.trim().to_string();
    match (username.is_empty(), password.expose().is_empty()) {
        (true, true) => Ok(None),
        (false, false) if username.contains(':') => Err(err(
            "bounces.postmark_username must not contain ':' (HTTP Basic authentication)",
        )),
        (false, false) => Ok(Some(BasicCredentials { username, password })),
        (false, true) => Err(err(
            "bounces.postmark_username is set without bounces.postmark_password",
        )),
        (true, false) => Err(err(
            "bounces.postmark_password is set without bounces.postmark_username",
        )),
    }
}

/// `bounces.sendgrid_public_key` (base64 DER SubjectPublicKeyInfo, as SendGrid shows it, PEM
/// armour allowed): an ECDSA P-256 key, or `None` when blank.
fn sendgrid_public_key(text: &str) -> Result<Option<Vec<u8>>, ConfigError> {
    use base64::Engine as _;
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    if body.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| err(format!("bounces.sendgrid_public_key {why}"));
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| bad(&format!("is not base64 ({e})")))?;
    aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1, &der)
        .map_err(|_| bad("is not an ECDSA P-256 public key (base64 DER SubjectPublicKeyInfo)"))?;
    Ok(Some(der))
}

/// `bounces.address` (not blank): a plain ASCII address whose local part has room for `+` and
/// the VERP tag within the 64 octets SMTP allows (RFC 5321 4.5.3.1.1).
fn bounce_address(text: &str) -> Result<lettre::Address, ConfigError> {
    let bad = |why: &str| err(format!("bounces.address {text:?} {why}"));
    if !text.is_ascii() {
        return Err(bad(
            "must be ASCII (write an internationalised domain as its A-label, xn--...)",
        ));
    }
    let address = text
        .parse::<lettre::Address>()
        .map_err(|e| bad(&format!("is not an email address ({e})")))?;
    let user = address.user();
    if !user
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(bad(
            "must have a plain local part (letters, digits, '.', '-', '_'; no '+': \
             tidings adds '+' and the tag itself)",
        ));
    }
    if user.len() > MAX_BOUNCE_LOCAL_PART {
        return Err(bad(&format!(
            "has a local part longer than {MAX_BOUNCE_LOCAL_PART} characters (the VERP tag \
             needs the rest of the 64 an address may have before '@')"
        )));
    }
    Ok(address)
}

/// Longest `theme.footer`, in characters.
const MAX_THEME_FOOTER_CHARS: usize = 300;

/// Longest `theme.logo_url`, in bytes.
const MAX_LOGO_URL_BYTES: usize = 2048;

impl RawTheme {
    pub(super) fn parse(self) -> Result<ThemeSettings, ConfigError> {
        let accent_color = match self.accent_color.trim() {
            "" => None,
            text => Some(AccentColor::parse(text).ok_or_else(|| {
                err(format!(
                    "theme.accent_color {text:?} is not a colour written #rrggbb (for example \"#0b5394\")"
                ))
            })?),
        };
        let logo_url = match self.logo_url.trim() {
            "" => None,
            text => Some(logo_url(text)?),
        };
        let footer = self.footer.trim();
        if footer.chars().any(char::is_control) {
            return Err(err(
                "theme.footer must be one line of plain text (no line breaks or control characters)",
            ));
        }
        if footer.chars().count() > MAX_THEME_FOOTER_CHARS {
            return Err(err(format!(
                "theme.footer is longer than {MAX_THEME_FOOTER_CHARS} characters"
            )));
        }
        Ok(ThemeSettings {
            accent_color,
            logo_url,
            footer: (!footer.is_empty()).then(|| footer.to_string()),
        })
    }
}

/// `theme.logo_url` (not blank): an absolute https URL with a host and no credentials, since
/// mail clients and browsers block or warn about images over plain http.
fn logo_url(text: &str) -> Result<url::Url, ConfigError> {
    let bad = |why: &str| err(format!("theme.logo_url {text:?} {why}"));
    if text.len() > MAX_LOGO_URL_BYTES {
        return Err(err(format!(
            "theme.logo_url is longer than {MAX_LOGO_URL_BYTES} bytes"
        )));
    }
    let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad(
            "must start with https:// (an http image is blocked or flagged by mail clients)",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    Ok(url)
}

/// A cron of `key` in `tz`; `None` when blank.
fn cron(key: &str, text: &str, tz: Tz) -> Result<Option<Schedule>, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Schedule::parse(text, tz)
        .map(Some)
        .map_err(|e| err(format!("{key}: {e}")))
}

impl RawSchedule {
    pub(super) fn parse(self) -> Result<ScheduleSettings, ConfigError> {
        let tz = self.timezone.parse::<Tz>().map_err(|_| {
            err(format!(
                "schedule.timezone {:?} is not an IANA time zone",
                self.timezone
            ))
        })?;
        Ok(ScheduleSettings {
            cron: cron("schedule.cron", &self.cron, tz)?,
            timezone: tz,
            fetch_cron: cron("schedule.fetch_cron", &self.fetch_cron, tz)?,
            retry_cron: cron("schedule.retry_cron", &self.retry_cron, tz)?,
            housekeeping_cron: cron("schedule.housekeeping_cron", &self.housekeeping_cron, tz)?,
            catch_up_hours: self.catch_up_hours,
        })
    }
}

impl RawTopic {
    /// The topic at index `i` of `[[topics]]`, its cron in the schedule's zone `tz`.
    fn parse(self, i: usize, tz: Tz) -> Result<TopicSettings, ConfigError> {
        let slug =
            TopicSlug::parse(&self.slug).map_err(|e| err(format!("topics[{i}].slug: {e}")))?;
        let own_cron = match self.cron.as_deref() {
            Some(text) => cron(&format!("topics[{i}].cron"), text, tz)?,
            None => None,
        };
        let deliver_at_local =
            match self.deliver_at_local.as_deref() {
                Some(at) => Some(NaiveTime::parse_from_str(at, "%H:%M").map_err(|_| {
                    err(format!("topics[{i}].deliver_at_local {at:?} is not HH:MM"))
                })?),
                None => None,
            };
        Ok(TopicSettings {
            slug,
            name: self.name,
            description: self.description,
            keywords: self.keywords,
            exclude: self.exclude,
            tags: self.tags,
            domains: self.domains,
            window_days: self.window_days,
            limit: self.limit,
            max_per_domain: self.max_per_domain,
            repeat: self.repeat,
            cron: own_cron,
            deliver_at_local,
        })
    }
}

impl Settings {
    /// Checks the ranges and the rules between keys of typed settings (the values that needed
    /// parsing were checked when parsed); the first problem found is reported with its key.
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
        if k.ed25519_enabled() && !k.enabled() {
            return Err(err(
                "dkim.ed25519_private_key_path is set without dkim.private_key_path: the Ed25519 signature is a second one beside RSA (many receivers verify only RSA)",
            ));
        }
        if k.ed25519_enabled() && k.ed25519_selector.trim().is_empty() {
            return Err(err(
                "dkim.ed25519_private_key_path is set but dkim.ed25519_selector is empty",
            ));
        }
        let w = &self.web;
        if w.max_body_bytes < 1024 {
            return Err(err("web.max_body_bytes must be at least 1024"));
        }
        if w.request_timeout_secs == 0 {
            return Err(err("web.request_timeout_secs must be at least 1"));
        }
        if w.header_read_timeout_secs == 0 {
            return Err(err("web.header_read_timeout_secs must be at least 1"));
        }
        if w.max_connections == 0 {
            return Err(err("web.max_connections must be at least 1"));
        }
        if w.max_connections_per_client == 0 || w.max_connections_per_client > w.max_connections {
            return Err(err(
                "web.max_connections_per_client must be between 1 and web.max_connections",
            ));
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
        if sm.min_words < 10 || sm.min_words > sm.max_words {
            return Err(err(
                "summarizer.min_words must be at least 10 and at most summarizer.max_words",
            ));
        }
        if sm.max_words > 400 {
            return Err(err("summarizer.max_words must be at most 400"));
        }
        if !(1..=32).contains(&sm.concurrency) {
            return Err(err("summarizer.concurrency must be between 1 and 32"));
        }
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
        let r = &self.ranking;
        if !(0.0..=1.0).contains(&r.default_percentile) {
            return Err(err("ranking.default_percentile must be between 0 and 1"));
        }
        if r.trailing_days == 0 || r.trailing_days > 366 {
            return Err(err("ranking.trailing_days must be between 1 and 366"));
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
            if !slugs.insert(t.slug.as_str()) {
                return Err(err(format!(
                    "topics[{i}].slug {:?} is used twice",
                    t.slug.as_str()
                )));
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
        }
        Ok(())
    }
}
