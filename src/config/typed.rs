//! The sections whose values are parsed once, when the settings load: `[newsletter]` holds
//! lettre mailboxes, `[web]` a socket address and IP addresses, `[schedule]` a time zone and
//! [`Schedule`]s, `[bounces]` the lettre `Address` of the VERP return path, each `[[topics]]`
//! entry a [`TopicSlug`], its own [`Schedule`] and a [`NaiveTime`], `[theme]` an [`AccentColor`]
//! and an https `Url`. Consumers read these values and never parse configuration text again.

use std::net::{IpAddr, SocketAddr};

use chrono::NaiveTime;
use chrono_tz::Tz;
use lettre::Address;
use lettre::message::Mailbox;

use super::file::RawNewsletter;
use super::secret::Secret;
use crate::domain::TopicSlug;
use crate::schedule::Schedule;

#[derive(Clone, Debug)]
pub struct NewsletterSettings {
    pub title: String,
    pub base_url: String,
    /// `newsletter.from`: the `From` of every email, and its address the SMTP `MAIL FROM`.
    pub from: Mailbox,
    /// `newsletter.reply_to`; `None` when blank.
    pub reply_to: Option<Mailbox>,
    pub postal_address: String,
    pub secret: Secret,
    pub previous_secrets: Vec<Secret>,
    pub consent_version: String,
}

#[derive(Clone, Debug)]
pub struct WebSettings {
    pub bind: SocketAddr,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
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

/// `[schedule]`: every cron is parsed in `timezone`; a blank cron is `None` (its job is off).
#[derive(Clone, Debug)]
pub struct ScheduleSettings {
    /// The digests of topics without a cron of their own.
    pub cron: Option<Schedule>,
    pub timezone: Tz,
    pub fetch_cron: Option<Schedule>,
    pub retry_cron: Option<Schedule>,
    pub housekeeping_cron: Option<Schedule>,
    pub catch_up_hours: u64,
}

/// `[bounces]`: where bounces come back, and when soft bounces suppress.
#[derive(Clone, Debug)]
pub struct BouncesSettings {
    /// `bounces.address` (for example `bounces@news.example.com`); `None` when blank. When set,
    /// every message goes out with the VERP envelope sender `bounces+<tag>@news.example.com`,
    /// `<tag>` naming its delivery row ([`crate::tokens::TokenSigner::verp_address`]); when
    /// not, the envelope sender is `newsletter.from`'s address. Checked when parsed: ASCII, no
    /// `+`, and a local part short enough for the tag.
    pub address: Option<Address>,
    /// `bounces.soft_limit`: this many soft bounces within `soft_window_days` suppress an
    /// address (at least 1).
    pub soft_limit: u32,
    /// `bounces.soft_window_days`: soft bounces older than this many days no longer count (at
    /// least 1).
    pub soft_window_days: u32,
    /// `bounces.webhook_secret`: the key of `POST /webhooks/generic`'s `X-Tidings-Signature`
    /// (HMAC-SHA256 of the raw body); `None` when blank, and the route answers 404.
    pub webhook_secret: Option<Secret>,
    /// `bounces.ses_topic_arns`: the SNS topics whose notifications `POST /webhooks/ses`
    /// accepts (each `arn:aws:sns:...` or `arn:aws-cn:sns:...`); empty, and the route answers 404.
    pub ses_topic_arns: Vec<String>,
    /// `bounces.postmark_username` and `postmark_password`: the HTTP Basic credentials
    /// `POST /webhooks/postmark` requires; `None` when blank, and the route answers 404.
    pub postmark: Option<BasicCredentials>,
    /// `bounces.sendgrid_public_key`: the Event Webhook's verification key, a P-256
    /// SubjectPublicKeyInfo (DER, decoded from the base64 SendGrid shows); `None` when blank,
    /// and `POST /webhooks/sendgrid` answers 404.
    pub sendgrid_public_key: Option<Vec<u8>>,
    /// `bounces.mailgun_signing_key`: the HTTP webhook signing key of `POST /webhooks/mailgun`;
    /// `None` when blank, and the route answers 404.
    pub mailgun_signing_key: Option<Secret>,
    /// `bounces.imap_url` and the keys beside it: the mailbox `serve` polls; `None` when
    /// `imap_url` is blank.
    pub imap: Option<super::ImapSettings>,
}

/// A user name and password for HTTP Basic authentication; the password prints `***`.
#[derive(Clone, Debug)]
pub struct BasicCredentials {
    pub username: String,
    pub password: Secret,
}

#[derive(Clone, Debug)]
pub struct TopicSettings {
    pub slug: TopicSlug,
    pub name: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub exclude: Vec<String>,
    pub tags: Vec<String>,
    pub domains: Vec<String>,
    pub window_days: u32,
    pub limit: usize,
    pub max_per_domain: usize,
    pub repeat: bool,
    /// The topic's own cron (6 fields) in `[schedule] timezone`; `None` when absent or blank,
    /// and then `[schedule] cron` applies.
    pub cron: Option<Schedule>,
    /// Local delivery time ("HH:MM" in the file) in each subscriber's zone.
    pub deliver_at_local: Option<NaiveTime>,
}

impl TopicSettings {
    /// The schedule the topic's digests follow: its own, else `[schedule] cron`; `None` when
    /// both are blank.
    pub fn schedule_or<'a>(&'a self, schedule: &'a ScheduleSettings) -> Option<&'a Schedule> {
        self.cron.as_ref().or(schedule.cron.as_ref())
    }
}

/// The defaults are written once, in their text form (`file.rs`), and parsed like a file's
/// values; the unit test `defaults_validate` keeps them valid, so this never panics.
impl Default for NewsletterSettings {
    fn default() -> Self {
        RawNewsletter::default()
            .parse()
            .expect("the default [newsletter] parses")
    }
}

/// `[theme]`: the newsletter's looks in emails and on the web pages; `None` keeps the built-in
/// look for that part.
#[derive(Clone, Debug, Default)]
pub struct ThemeSettings {
    /// `theme.accent_color`: the stripe above every email and page, the buttons, and the links
    /// when it reads well on white.
    pub accent_color: Option<AccentColor>,
    /// `theme.logo_url`: an https image shown above every email and in the pages' header.
    pub logo_url: Option<url::Url>,
    /// `theme.footer`: one line of plain text at the foot of every email and page.
    pub footer: Option<String>,
}

/// A colour given as `#rrggbb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccentColor {
    pub red: u8,
    pub green: u8,
    pub blue: u8,
}

/// The dark text the stylesheets use, for text on a light accent.
const DARK_INK: AccentColor = AccentColor {
    red: 0x1a,
    green: 0x1a,
    blue: 0x1a,
};

const WHITE: AccentColor = AccentColor {
    red: 0xff,
    green: 0xff,
    blue: 0xff,
};

impl AccentColor {
    /// `#rrggbb` (either case) or `None`.
    pub fn parse(text: &str) -> Option<AccentColor> {
        let hex = text.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(AccentColor {
            red: byte(0)?,
            green: byte(2)?,
            blue: byte(4)?,
        })
    }

    /// `#rrggbb` in lower case.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.red, self.green, self.blue)
    }

    /// Relative luminance (WCAG 2.x).
    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.red) + 0.7152 * channel(self.green) + 0.0722 * channel(self.blue)
    }

    /// The contrast ratio of two colours (WCAG 2.x), from 1 to 21.
    pub fn contrast(self, other: AccentColor) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// Whether text in this colour reads on white (contrast at least 4.5:1, WCAG AA), so links
    /// may take it.
    pub fn readable_on_white(self) -> bool {
        self.contrast(WHITE) >= 4.5
    }

    /// The text colour for a button of this colour: white or near-black, whichever contrasts
    /// more.
    pub fn ink(self) -> AccentColor {
        if self.contrast(WHITE) >= self.contrast(DARK_INK) {
            WHITE
        } else {
            DARK_INK
        }
    }
}
