//! Rendering: askama email templates -> complete messages (subject, HTML with inlined CSS, text,
//! headers, DKIM). Pure apart from reading the DKIM key file once at start-up.
//!
//! Two builders, one per kind of mail:
//! - digests (`digest.rs`): an issue is rendered and its CSS inlined once
//!   ([`PreparedDigest::prepare`]); the result is kept as pieces around two placeholders (the
//!   subscriber's unsubscribe and preferences links, `pieces.rs`), so each subscriber's message
//!   ([`PreparedDigest::message_for`]) costs two tokens, a concatenation and lettre's encoding and
//!   signing, never a template render;
//! - every transactional email (`transactional.rs`): one function,
//!   [`transactional_message`], for each [`Transactional`] kind (confirmation, link to the
//!   preferences page), each a pair of templates under `templates/email/`.
//!
//! Both take the sender, title, postal address, base URL and `[theme]` (`EmailTheme`: accent
//! stylesheet rules, logo, footer line, shown by `_layout.html`) from one `Letterhead`, and build
//! the message with the same lettre glue (`message.rs`: headers, Message-ID, Date, DKIM).
//! Everything from outside (titles, summaries, source names, topic texts, the newsletter's own
//! settings) goes through [`text::clean_line`] (no control characters, length caps) and askama's
//! HTML escaping; only absolute http(s) URLs become links ([`text::safe_url`]).

mod digest;
mod message;
mod pieces;
mod qp;
pub mod text;
mod transactional;

use lettre::message::Mailbox;

use crate::config::{Settings, ThemeSettings};
use crate::domain::SubscriberEmail;

pub use digest::{PreparedDigest, archive_html, digest_text};
pub use message::{DKIM_SIGNED_HEADERS, DkimSigner, ed25519_public_key};
pub use transactional::{Transactional, transactional_message};

use message::{config_mailbox, mailbox_domain};
use text::{MAX_NAME_CHARS, clean_line};

/// The stylesheet inlined into every email (its `@media` rules stay in a `<style>` block).
const EMAIL_CSS: &str = include_str!("../../templates/email/digest.css");

/// Longest postal address shown, in characters.
const MAX_POSTAL_ADDRESS_CHARS: usize = 500;

/// Who one message is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub subscriber_id: i64,
    pub email: SubscriberEmail,
}

/// A complete message ready for a transport.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    /// The Message-ID header value, angle brackets included: `<...@domain>`.
    pub message_id: String,
    pub to: SubscriberEmail,
    /// The bare address for SMTP `MAIL FROM` (`newsletter.from`'s address).
    pub envelope_from: String,
    /// The complete RFC 5322 message with CRLF line endings, DKIM-signed when configured.
    pub raw: Vec<u8>,
}

/// Why a message could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "digest for topic {topic} has no issue id yet (freeze it as an issue before rendering)"
    )]
    MissingIssueId { topic: String },
    #[error("digest for topic {topic} has no articles; nothing to send")]
    EmptyDigest { topic: String },
    #[error("email template failed to render: {0}")]
    Template(#[from] askama::Error),
    #[error("CSS inlining failed: {0}")]
    CssInline(String),
    #[error("{key} is not a valid mailbox: {reason}")]
    Address { key: &'static str, reason: String },
    #[error("DKIM: {0}")]
    Dkim(String),
    #[error("building the message failed: {0}")]
    Build(String),
}

/// What every message takes from `[newsletter]`, cleaned once and the same way for every kind
/// of email: the sender's mailboxes and domain (for Message-ID and List-Id), the newsletter's
/// title and postal address, and the base URL of its links.
#[derive(Clone, Debug)]
struct Letterhead {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// The domain of `from`, lower case.
    domain: String,
    title: String,
    postal_address: String,
    /// `newsletter.base_url` without a trailing slash.
    base_url: String,
    theme: EmailTheme,
}

/// `[theme]` as the HTML part of every email shows it (`templates/email/_layout.html`).
#[derive(Clone, Debug)]
pub(crate) struct EmailTheme {
    /// The stylesheet to inline: [`EMAIL_CSS`], then the accent colour's rules.
    pub(crate) css: String,
    /// `theme.logo_url`, shown above the card with the newsletter's title as its alt text.
    pub(crate) logo_url: Option<String>,
    pub(crate) logo_alt: String,
    /// `theme.footer`, cleaned, as the last line of the card.
    pub(crate) footer: Option<String>,
}

impl EmailTheme {
    fn from_settings(theme: &ThemeSettings, title: &str) -> EmailTheme {
        let mut css = EMAIL_CSS.to_string();
        if let Some(accent) = theme.accent_color {
            let (hex, ink) = (accent.hex(), accent.ink().hex());
            css.push_str(&format!(
                "\n.container {{ border-top: 4px solid {hex}; }}\n.button {{ background-color: {hex}; color: {ink}; }}\n"
            ));
            // Links take the accent only where it reads on the white card; the dark-mode rules
            // above keep their own colours (`!important`).
            if accent.readable_on_white() {
                css.push_str(&format!(
                    ".title-link, .footer-link, .long-link {{ color: {hex}; }}\n"
                ));
            }
        }
        EmailTheme {
            css,
            logo_url: theme.logo_url.as_ref().map(|u| u.as_str().to_string()),
            logo_alt: title.to_string(),
            footer: theme
                .footer
                .as_deref()
                .map(|f| clean_line(f, MAX_THEME_FOOTER_CHARS))
                .filter(|f| !f.is_empty()),
        }
    }
}

/// Longest `theme.footer` shown, in characters (the configuration allows no more).
const MAX_THEME_FOOTER_CHARS: usize = 300;

impl Letterhead {
    fn from_settings(settings: &Settings) -> Letterhead {
        let n = &settings.newsletter;
        let from = config_mailbox(&n.from);
        let reply_to = n.reply_to.as_ref().map(config_mailbox);
        let title = clean_line(&n.title, MAX_NAME_CHARS);
        Letterhead {
            domain: mailbox_domain(&from),
            from,
            reply_to,
            theme: EmailTheme::from_settings(&settings.theme, &title),
            title,
            postal_address: clean_line(&n.postal_address, MAX_POSTAL_ADDRESS_CHARS),
            base_url: n.base_url.trim().trim_end_matches('/').to_string(),
        }
    }
}

/// A path segment with anything but unreserved characters percent-encoded.
fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Moves the stylesheet's regular rules into `style` attributes (css-inline); its `@media`
/// rules stay in the `<style>` block.
fn inline_css(html: &str) -> Result<String, RenderError> {
    let inliner = css_inline::CSSInliner::options()
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build();
    inliner
        .inline(html)
        .map_err(|e| RenderError::CssInline(e.to_string()))
}

#[cfg(test)]
mod tests;
