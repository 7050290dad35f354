//! Rendering: askama email templates -> complete messages (subject, HTML with inlined CSS, text,
//! headers, DKIM). Pure apart from reading the DKIM key file once at start-up.
//!
//! A digest is rendered and its CSS inlined once per issue ([`PreparedDigest::prepare`]); the
//! result is kept as pieces around two placeholders (the subscriber's unsubscribe and preferences
//! links), so each subscriber's message ([`PreparedDigest::message_for`]) costs two tokens, a
//! concatenation and lettre's encoding and signing, never a template render.
//!
//! Everything from outside (titles, summaries, source names, topic texts) goes through
//! [`text::clean_line`] (no control characters, length caps) and askama's HTML escaping; only
//! absolute http(s) URLs become links ([`text::safe_url`]).

mod message;
mod qp;
pub mod text;

use askama::Template;
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;

use crate::config::Settings;
use crate::domain::{Digest, SubscriberEmail};
use crate::tokens::{CONFIRM_VALIDITY_DAYS, TokenSigner};

pub use message::{DKIM_SIGNED_HEADERS, DkimSigner};
use message::{Envelope, Parts, build_message, config_mailbox, mailbox_domain};
use text::{
    MAX_NAME_CHARS, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, clean_line, long_date, ordered_entries,
    safe_url, source_label, subject_line, window_label,
};

/// The stylesheet inlined into every email (its `@media` rules stay in a `<style>` block).
const EMAIL_CSS: &str = include_str!("../../templates/email/digest.css");

/// Placeholders for the per-subscriber links. They contain a control character, which
/// [`text::clean_line`] removes from all data and the `url` crate percent-encodes, so no input
/// can produce them.
const UNSUBSCRIBE_MARK: &str = "\u{1}tidings:unsubscribe-url\u{1}";
const PREFERENCES_MARK: &str = "\u{1}tidings:preferences-url\u{1}";

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

/// One entry as the templates show it; every string is already cleaned.
struct EntryView {
    number: String,
    date: String,
    title: String,
    url: Option<String>,
    domain: String,
    summary: String,
    sources: Vec<SourceView>,
}

struct SourceView {
    label: String,
    url: Option<String>,
}

fn entry_views(digest: &Digest) -> Vec<EntryView> {
    ordered_entries(digest)
        .into_iter()
        .map(|e| {
            let url = safe_url(&e.url);
            let domain = url
                .as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| {
                    u.host_str()
                        .map(|h| h.trim_start_matches("www.").to_string())
                })
                .unwrap_or_else(|| clean_line(&e.domain, MAX_NAME_CHARS));
            EntryView {
                number: format!("{:02}", e.position),
                date: long_date(e.published_at),
                title: clean_line(&e.title, MAX_TITLE_CHARS),
                url,
                domain,
                summary: clean_line(&e.summary, MAX_SUMMARY_CHARS),
                sources: e
                    .sources
                    .iter()
                    .map(|s| SourceView {
                        label: source_label(s),
                        url: s.discussion_url.as_deref().and_then(safe_url),
                    })
                    .filter(|s| !s.label.is_empty())
                    .collect(),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "email/digest.html")]
struct DigestHtml<'a> {
    subject: &'a str,
    css: &'a str,
    preheader: &'a str,
    preheader_padding: &'a str,
    newsletter_title: &'a str,
    topic_name: &'a str,
    topic_description: &'a str,
    window_label: &'a str,
    entries: &'a [EntryView],
    archive_url: &'a str,
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
    postal_address: &'a str,
}

#[derive(Template)]
#[template(path = "email/digest.txt")]
struct DigestText<'a> {
    body: &'a str,
    topic_name: &'a str,
    newsletter_title: &'a str,
    archive_url: &'a str,
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
    postal_address: &'a str,
}

#[derive(Template)]
#[template(path = "email/archive.html")]
struct ArchiveHtml<'a> {
    topic_name: &'a str,
    topic_description: &'a str,
    window_label: &'a str,
    entries: &'a [EntryView],
}

#[derive(Template)]
#[template(path = "email/confirm.html")]
struct ConfirmHtml<'a> {
    subject: &'a str,
    css: &'a str,
    newsletter_title: &'a str,
    topics: &'a str,
    email: &'a str,
    confirm_url: &'a str,
    validity_days: i64,
    base_url: &'a str,
    postal_address: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirm.txt")]
struct ConfirmText<'a> {
    newsletter_title: &'a str,
    topics: &'a str,
    email: &'a str,
    confirm_url: &'a str,
    validity_days: i64,
    base_url: &'a str,
    postal_address: &'a str,
}

/// Hidden text after the preheader so clients do not fill the preview with body text.
const PREHEADER_PADDING: &str = "&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;";

/// `newsletter.base_url` without a trailing slash.
fn base_url(settings: &Settings) -> String {
    settings
        .newsletter
        .base_url
        .trim()
        .trim_end_matches('/')
        .to_string()
}

fn archive_url(settings: &Settings, digest: &Digest, issue_id: i64) -> String {
    format!(
        "{}/archive/{}/{}",
        base_url(settings),
        url_segment(&digest.topic_slug),
        issue_id
    )
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

fn inline_css(html: &str) -> Result<String, RenderError> {
    let inliner = css_inline::CSSInliner::options()
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build();
    inliner
        .inline(html)
        .map_err(|e| RenderError::CssInline(e.to_string()))
}

/// A rendered text split around the personal-link placeholders.
#[derive(Clone, Debug)]
struct Pieces {
    parts: Vec<Piece>,
    literal_len: usize,
}

#[derive(Clone, Debug)]
enum Piece {
    Literal(String),
    Unsubscribe,
    Preferences,
}

impl Pieces {
    fn split(rendered: &str) -> Pieces {
        let mut parts = Vec::new();
        let mut rest = rendered;
        loop {
            let next = [
                (
                    rest.find(UNSUBSCRIBE_MARK),
                    UNSUBSCRIBE_MARK,
                    Piece::Unsubscribe,
                ),
                (
                    rest.find(PREFERENCES_MARK),
                    PREFERENCES_MARK,
                    Piece::Preferences,
                ),
            ]
            .into_iter()
            .filter_map(|(at, mark, piece)| at.map(|at| (at, mark, piece)))
            .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, mark, piece)) => {
                    if at > 0 {
                        parts.push(Piece::Literal(rest[..at].to_string()));
                    }
                    parts.push(piece);
                    rest = &rest[at + mark.len()..];
                }
                None => {
                    if !rest.is_empty() {
                        parts.push(Piece::Literal(rest.to_string()));
                    }
                    break;
                }
            }
        }
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len(),
                _ => 0,
            })
            .sum();
        Pieces { parts, literal_len }
    }

    /// The same pieces with every literal quoted-printable encoded (once per issue).
    fn encoded(&self) -> Pieces {
        let parts: Vec<Piece> = self
            .parts
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => Piece::Literal(qp::encode(s)),
                Piece::Unsubscribe => Piece::Unsubscribe,
                Piece::Preferences => Piece::Preferences,
            })
            .collect();
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len() + qp::SOFT_BREAK.len(),
                _ => qp::SOFT_BREAK.len(),
            })
            .sum();
        Pieces { parts, literal_len }
    }

    /// Joins encoded pieces (from [`Pieces::encoded`]) and the encoded personal links with soft
    /// line breaks: a quoted-printable body whose decoded text is `fill`'s.
    fn fill_encoded(&self, unsubscribe: &str, preferences: &str) -> String {
        let mut out =
            String::with_capacity(self.literal_len + 4 * (unsubscribe.len() + preferences.len()));
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push_str(qp::SOFT_BREAK);
            }
            match part {
                Piece::Literal(s) => out.push_str(s),
                Piece::Unsubscribe => out.push_str(unsubscribe),
                Piece::Preferences => out.push_str(preferences),
            }
        }
        out
    }

    fn fill(&self, unsubscribe: &str, preferences: &str) -> String {
        let mut out = String::with_capacity(self.literal_len + 4 * (unsubscribe.len() + 64));
        for part in &self.parts {
            match part {
                Piece::Literal(s) => out.push_str(s),
                Piece::Unsubscribe => out.push_str(unsubscribe),
                Piece::Preferences => out.push_str(preferences),
            }
        }
        out
    }
}

/// A digest issue rendered once, ready to be personalised per subscriber.
#[derive(Clone, Debug)]
pub struct PreparedDigest {
    topic_slug: String,
    subject: String,
    html: Pieces,
    text: Pieces,
    /// `html` and `text` with their literal pieces quoted-printable encoded once per issue.
    html_qp: Pieces,
    text_qp: Pieces,
    base_url: String,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    list_id: String,
    message_id_prefix: String,
    message_id_domain: String,
    dkim: Option<DkimSigner>,
}

impl PreparedDigest {
    /// Renders the digest HTML (CSS inlined with css-inline, once) and text once per issue;
    /// `digest.issue_id` must be `Some` and the digest must have articles.
    pub fn prepare(
        settings: &Settings,
        digest: &Digest,
        dkim: Option<DkimSigner>,
    ) -> Result<PreparedDigest, RenderError> {
        let issue_id = digest.issue_id.ok_or_else(|| RenderError::MissingIssueId {
            topic: digest.topic_slug.clone(),
        })?;
        if digest.entries.is_empty() {
            return Err(RenderError::EmptyDigest {
                topic: digest.topic_slug.clone(),
            });
        }
        let n = &settings.newsletter;
        let (from, reply_to) = sender_mailboxes(n);
        let domain = mailbox_domain(&from);
        let subject = subject_line(digest);
        let entries = entry_views(digest);
        let preheader = clean_line(
            &entries
                .iter()
                .take(3)
                .map(|e| e.title.as_str())
                .collect::<Vec<_>>()
                .join(" · "),
            MAX_SUMMARY_CHARS / 8,
        );
        let title = clean_line(&n.title, MAX_NAME_CHARS);
        let topic_name = clean_line(&digest.topic_name, MAX_NAME_CHARS);
        let description = clean_line(&digest.topic_description, 1000);
        let window = window_label(digest.window_days);
        let archive = archive_url(settings, digest, issue_id);
        let postal = clean_line(&n.postal_address, 500);

        let html = DigestHtml {
            subject: &subject,
            css: EMAIL_CSS,
            preheader: &preheader,
            preheader_padding: PREHEADER_PADDING,
            newsletter_title: &title,
            topic_name: &topic_name,
            topic_description: &description,
            window_label: &window,
            entries: &entries,
            archive_url: &archive,
            preferences_url: PREFERENCES_MARK,
            unsubscribe_url: UNSUBSCRIBE_MARK,
            postal_address: &postal,
        }
        .render()?;
        let html = inline_css(&html)?;
        let body = text::digest_body_text(digest);
        let text = DigestText {
            body: &body,
            topic_name: &topic_name,
            newsletter_title: &title,
            archive_url: &archive,
            preferences_url: PREFERENCES_MARK,
            unsubscribe_url: UNSUBSCRIBE_MARK,
            postal_address: &postal,
        }
        .render()?;

        let day = digest.window_start.format("%Y%m%d");
        let slug = url_segment(&digest.topic_slug);
        let html = Pieces::split(&html);
        let text = Pieces::split(&text);
        Ok(PreparedDigest {
            topic_slug: digest.topic_slug.clone(),
            subject,
            html_qp: html.encoded(),
            text_qp: text.encoded(),
            html,
            text,
            base_url: base_url(settings),
            list_id: format!("<{slug}.{domain}>"),
            message_id_prefix: format!("tidings.{slug}.{day}.{issue_id}"),
            message_id_domain: domain,
            from,
            reply_to,
            dkim,
        })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `<tidings.{topic}.{yyyymmdd}.{issue}.{subscriber}@{from domain}>`: the same for every
    /// attempt at one (issue, subscriber), different for every subscriber and issue.
    pub fn message_id(&self, subscriber_id: i64) -> String {
        format!(
            "<{}.{}@{}>",
            self.message_id_prefix, subscriber_id, self.message_id_domain
        )
    }

    fn personal_urls(&self, tokens: &TokenSigner, subscriber_id: i64) -> (String, String) {
        let unsubscribe = format!(
            "{}/unsubscribe/{}",
            self.base_url,
            tokens.unsubscribe(subscriber_id, &self.topic_slug)
        );
        let preferences = format!(
            "{}/preferences/{}",
            self.base_url,
            tokens.preferences(subscriber_id)
        );
        (unsubscribe, preferences)
    }

    /// Adds only the personal parts (To, unsubscribe and preferences links, Message-ID, Date).
    pub fn message_for(
        &self,
        tokens: &TokenSigner,
        recipient: &Recipient,
        now: DateTime<Utc>,
    ) -> Result<OutgoingMessage, RenderError> {
        let (unsubscribe, preferences) = self.personal_urls(tokens, recipient.subscriber_id);
        let html = self.html_qp.fill_encoded(
            &qp::encode(&escape_html(&unsubscribe)),
            &qp::encode(&escape_html(&preferences)),
        );
        let text = self
            .text_qp
            .fill_encoded(&qp::encode(&unsubscribe), &qp::encode(&preferences));
        let message_id = self.message_id(recipient.subscriber_id);
        let envelope = Envelope {
            from: &self.from,
            reply_to: self.reply_to.as_ref(),
            to: recipient.email.as_str(),
            subject: &self.subject,
            date: now,
            message_id: &message_id,
            list_id: Some(&self.list_id),
            unsubscribe_url: Some(&unsubscribe),
        };
        let raw = build_message(
            &envelope,
            Parts::QuotedPrintable { text, html },
            self.dkim.as_ref(),
        )?;
        Ok(OutgoingMessage {
            message_id,
            to: recipient.email.clone(),
            envelope_from: self.from.email.to_string(),
            raw,
        })
    }

    /// The personal HTML (with this subscriber's links), for `preview --format html`.
    pub fn html_for(&self, tokens: &TokenSigner, recipient: &Recipient) -> String {
        let (unsubscribe, preferences) = self.personal_urls(tokens, recipient.subscriber_id);
        self.html
            .fill(&escape_html(&unsubscribe), &escape_html(&preferences))
    }

    /// The personal text part, as sent.
    pub fn text_for(&self, tokens: &TokenSigner, recipient: &Recipient) -> String {
        let (unsubscribe, preferences) = self.personal_urls(tokens, recipient.subscriber_id);
        self.text.fill(&unsubscribe, &preferences)
    }
}

/// The digest body alone in the shared text layout, for `tidings preview --format text`.
pub fn digest_text(digest: &Digest) -> String {
    text::digest_body_text(digest)
}

/// The digest as a web page fragment without personal links (for `/archive/{topic}/{issue}`
/// and the Atom feed). It carries the email's classes (`digest`, `topic`, `entry`, `title`,
/// `summary`, `sources`...) but no inline styles: the page's stylesheet lays it out, so it
/// follows the page's phone and dark-mode rules (inline styles would override them).
pub fn archive_html(digest: &Digest) -> String {
    let entries = entry_views(digest);
    let topic_name = clean_line(&digest.topic_name, MAX_NAME_CHARS);
    let description = clean_line(&digest.topic_description, 1000);
    let window = window_label(digest.window_days);
    let page = ArchiveHtml {
        topic_name: &topic_name,
        topic_description: &description,
        window_label: &window,
        entries: &entries,
    };
    // Rendering only fails on a formatter error; fall back to escaped text if it ever does.
    page.render()
        .unwrap_or_else(|e| format!("<p>{}</p>", escape_html(&e.to_string())))
}

/// The double opt-in message: a link to `{base_url}/confirm/{token}`, valid for 7 days.
pub fn confirmation_message(
    settings: &Settings,
    tokens: &TokenSigner,
    dkim: Option<&DkimSigner>,
    recipient: &Recipient,
    topic_names: &[String],
    now: DateTime<Utc>,
) -> Result<OutgoingMessage, RenderError> {
    let n = &settings.newsletter;
    let (from, reply_to) = sender_mailboxes(n);
    let domain = mailbox_domain(&from);
    let title = clean_line(&n.title, MAX_NAME_CHARS);
    let subject = clean_line(
        &format!("Confirm your subscription to {title}"),
        text::MAX_SUBJECT_CHARS,
    );
    let topics = topics_phrase(topic_names);
    let base = base_url(settings);
    let confirm_url = format!(
        "{base}/confirm/{}",
        tokens.confirm(recipient.subscriber_id, now)
    );
    let postal = clean_line(&n.postal_address, 500);
    let html = ConfirmHtml {
        subject: &subject,
        css: EMAIL_CSS,
        newsletter_title: &title,
        topics: &topics,
        email: recipient.email.as_str(),
        confirm_url: &confirm_url,
        validity_days: CONFIRM_VALIDITY_DAYS,
        base_url: &base,
        postal_address: &postal,
    }
    .render()?;
    let html = inline_css(&html)?;
    let text = ConfirmText {
        newsletter_title: &title,
        topics: &topics,
        email: recipient.email.as_str(),
        confirm_url: &confirm_url,
        validity_days: CONFIRM_VALIDITY_DAYS,
        base_url: &base,
        postal_address: &postal,
    }
    .render()?;
    let message_id = format!(
        "<tidings.confirm.{}.{}@{}>",
        recipient.subscriber_id,
        now.timestamp(),
        domain
    );
    let envelope = Envelope {
        from: &from,
        reply_to: reply_to.as_ref(),
        to: recipient.email.as_str(),
        subject: &subject,
        date: now,
        message_id: &message_id,
        list_id: None,
        unsubscribe_url: None,
    };
    let raw = build_message(&envelope, Parts::Plain { text, html }, dkim)?;
    Ok(OutgoingMessage {
        message_id,
        to: recipient.email.clone(),
        envelope_from: from.email.to_string(),
        raw,
    })
}

#[derive(Template)]
#[template(path = "web/mail/preferences_link.txt")]
struct LinkText<'a> {
    title: &'a str,
    link: &'a str,
    postal_address: &'a str,
}

#[derive(Template)]
#[template(path = "web/mail/preferences_link.html")]
struct LinkHtml<'a> {
    subject: &'a str,
    css: &'a str,
    title: &'a str,
    link: &'a str,
    postal_address: &'a str,
}

/// The "manage your subscription" message the web app sends when a known address is entered
/// in the subscribe form: a link to `{base_url}/preferences/{token}`. Not DKIM-signed.
pub fn preferences_link_message(
    settings: &Settings,
    tokens: &TokenSigner,
    recipient: &Recipient,
    now: DateTime<Utc>,
) -> Result<OutgoingMessage, RenderError> {
    let n = &settings.newsletter;
    let (from, reply_to) = sender_mailboxes(n);
    let link = format!(
        "{}/preferences/{}",
        base_url(settings),
        tokens.preferences(recipient.subscriber_id)
    );
    let title = clean_line(&n.title, MAX_NAME_CHARS);
    let postal = clean_line(&n.postal_address, 500);
    let subject = clean_line(
        &format!("Your {title} subscription"),
        text::MAX_SUBJECT_CHARS,
    );
    let text = LinkText {
        title: &title,
        link: &link,
        postal_address: &postal,
    }
    .render()?;
    let html = LinkHtml {
        subject: &subject,
        css: EMAIL_CSS,
        title: &title,
        link: &link,
        postal_address: &postal,
    }
    .render()?;
    let html = inline_css(&html)?;
    let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), mailbox_domain(&from));
    let envelope = Envelope {
        from: &from,
        reply_to: reply_to.as_ref(),
        to: recipient.email.as_str(),
        subject: &subject,
        date: now,
        message_id: &message_id,
        list_id: None,
        unsubscribe_url: None,
    };
    let raw = build_message(&envelope, Parts::Plain { text, html }, None)?;
    Ok(OutgoingMessage {
        message_id,
        to: recipient.email.clone(),
        envelope_from: from.email.to_string(),
        raw,
    })
}

/// `newsletter.from` and `newsletter.reply_to` (when set), their display names made safe.
fn sender_mailboxes(n: &crate::config::NewsletterSettings) -> (Mailbox, Option<Mailbox>) {
    (
        config_mailbox(&n.from),
        n.reply_to.as_ref().map(config_mailbox),
    )
}

/// "Rust", "Rust and Go", "Rust, Go and Zig"; "the newsletter" for none.
fn topics_phrase(names: &[String]) -> String {
    let names: Vec<String> = names
        .iter()
        .map(|n| clean_line(n, MAX_NAME_CHARS))
        .filter(|n| !n.is_empty())
        .take(20)
        .collect();
    match names.as_slice() {
        [] => "the newsletter".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests;
