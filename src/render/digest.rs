//! Digest emails and the archive fragment: an issue is rendered (`digest.html` in
//! `_layout.html`, `digest.txt`) and its CSS inlined once ([`PreparedDigest::prepare`]), then
//! personalised per subscriber with two links, a Message-ID and a Date
//! ([`PreparedDigest::message_for`]). Every digest carries `Feedback-ID:
//! <issue>:<topic>:<newsletter>:<sender>` (Gmail's feedback loop: complaint rates per issue and
//! topic in Postmaster Tools), each field cleaned of colons (`feedback_id`).

use askama::Template;
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;

use super::message::{Envelope, Parts, build_message};
use super::pieces::{PREFERENCES_MARK, Pieces, UNSUBSCRIBE_MARK};
use super::text::{
    self, MAX_NAME_CHARS, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, clean_line, long_date,
    ordered_entries, safe_url, source_label, subject_line, window_label,
};
use super::{
    DkimSigner, EmailTheme, Letterhead, OutgoingMessage, Recipient, RenderError, escape_html,
    inline_css, qp, url_segment,
};
use crate::config::Settings;
use crate::domain::Digest;
use crate::tokens::TokenSigner;

/// Longest topic description shown, in characters.
const MAX_DESCRIPTION_CHARS: usize = 1000;

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
    theme: &'a EmailTheme,
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

/// Hidden text after the preheader so clients do not fill the preview with body text.
const PREHEADER_PADDING: &str = "&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;";

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
    feedback_id: String,
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
        let head = Letterhead::from_settings(settings);
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
        let topic_name = clean_line(&digest.topic_name, MAX_NAME_CHARS);
        let description = clean_line(&digest.topic_description, MAX_DESCRIPTION_CHARS);
        let window = window_label(digest.window_days);
        let slug = url_segment(&digest.topic_slug);
        let archive = format!("{}/archive/{slug}/{issue_id}", head.base_url);

        let html = DigestHtml {
            subject: &subject,
            css: &head.theme.css,
            theme: &head.theme,
            preheader: &preheader,
            preheader_padding: PREHEADER_PADDING,
            newsletter_title: &head.title,
            topic_name: &topic_name,
            topic_description: &description,
            window_label: &window,
            entries: &entries,
            archive_url: &archive,
            preferences_url: PREFERENCES_MARK,
            unsubscribe_url: UNSUBSCRIBE_MARK,
            postal_address: &head.postal_address,
        }
        .render()?;
        let html = inline_css(&html)?;
        let body = text::digest_body_text(digest, &head.title);
        let text = DigestText {
            body: &body,
            topic_name: &topic_name,
            newsletter_title: &head.title,
            archive_url: &archive,
            preferences_url: PREFERENCES_MARK,
            unsubscribe_url: UNSUBSCRIBE_MARK,
            postal_address: &head.postal_address,
        }
        .render()?;

        let day = digest.window_start.format("%Y%m%d");
        let html = Pieces::split(&html);
        let text = Pieces::split(&text);
        Ok(PreparedDigest {
            topic_slug: digest.topic_slug.clone(),
            subject,
            html_qp: html.encoded(),
            text_qp: text.encoded(),
            html,
            text,
            list_id: format!("<{slug}.{}>", head.domain),
            feedback_id: feedback_id(issue_id, &digest.topic_slug, &head.title, &head.domain),
            message_id_prefix: format!("tidings.{slug}.{day}.{issue_id}"),
            message_id_domain: head.domain,
            base_url: head.base_url,
            from: head.from,
            reply_to: head.reply_to,
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
            feedback_id: Some(&self.feedback_id),
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

/// Longest field of a Feedback-ID, in characters.
const MAX_FEEDBACK_FIELD_CHARS: usize = 48;

/// `<issue>:<topic>:<newsletter>:<sender>` for the `Feedback-ID` header: the issue id, the
/// topic slug, the newsletter's title and the sender's domain, each reduced to ASCII letters,
/// digits, `.`, `_` and `-` (anything else, colons above all, becomes one `-`), so the four
/// fields always split on `:` the way Gmail reads them.
fn feedback_id(issue_id: i64, topic: &str, newsletter: &str, sender: &str) -> String {
    [
        issue_id.to_string(),
        feedback_field(topic),
        feedback_field(newsletter),
        feedback_field(sender),
    ]
    .join(":")
}

fn feedback_field(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out
        .trim_matches('-')
        .chars()
        .take(MAX_FEEDBACK_FIELD_CHARS)
        .collect();
    if out.is_empty() { "-".into() } else { out }
}

/// The digest body alone in the shared text layout (the newsletter's title line first), for
/// `tidings preview --format text`.
pub fn digest_text(digest: &Digest, newsletter_title: &str) -> String {
    text::digest_body_text(digest, newsletter_title)
}

/// The digest as a web page fragment without personal links (for `/archive/{topic}/{issue}`
/// and the Atom feed). It carries the email's classes (`digest`, `topic`, `entry`, `title`,
/// `summary`, `sources`...) but no inline styles: the page's stylesheet lays it out, so it
/// follows the page's phone and dark-mode rules (inline styles would override them).
pub fn archive_html(digest: &Digest) -> String {
    let entries = entry_views(digest);
    let topic_name = clean_line(&digest.topic_name, MAX_NAME_CHARS);
    let description = clean_line(&digest.topic_description, MAX_DESCRIPTION_CHARS);
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

#[cfg(test)]
mod feedback_tests {
    use super::feedback_id;

    #[test]
    fn feedback_ids_have_four_fields_without_colons_in_them() {
        assert_eq!(
            feedback_id(42, "rust", "Tidings", "example.com"),
            "42:rust:Tidings:example.com"
        );
        let id = feedback_id(7, "a:b", "News: the \"best\"\r\nBcc: x", "ex:ample.com");
        assert_eq!(id, "7:a-b:News-the-best-Bcc-x:ex-ample.com");
        assert_eq!(feedback_id(1, "", ":::", "ünï"), "1:-:-:n");
        let long = feedback_id(1, "t", &"x".repeat(500), "d");
        assert_eq!(long.split(':').nth(2).map(str::len), Some(48));
    }
}
