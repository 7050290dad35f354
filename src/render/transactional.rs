//! One builder for every transactional email: [`transactional_message`] renders the pair of
//! templates of a [`Transactional`] kind (`templates/email/{name}.html` in `_layout.html`, and
//! `{name}.txt`), with everything from outside cleaned by `text.rs` and the sender taken from
//! the same `Letterhead` as a digest's, then builds the message with the same headers for
//! every kind (From, Reply-To when set, To, Subject, Date, Message-ID; no List-* headers: this
//! is not list mail), signed with DKIM when configured.
//!
//! A kind is also a row kind in the outbox ([`Transactional::delivery_kind`]): the web app
//! queues the message under it, and the delivery worker sends the stored message as it is.
//! Adding a kind means a variant here, its pair of templates and a [`DeliveryKind`].

use askama::Template;
use chrono::{DateTime, Utc};

use super::message::{Envelope, Parts, build_message};
use super::text::{MAX_NAME_CHARS, MAX_SUBJECT_CHARS, clean_line};
use super::{
    DkimSigner, EmailTheme, Letterhead, OutgoingMessage, Recipient, RenderError, inline_css,
};
use crate::config::Settings;
use crate::store::DeliveryKind;
use crate::tokens::{CONFIRM_VALIDITY_DAYS, TokenSigner};

/// Most topic names a confirmation lists.
const MAX_TOPICS_NAMED: usize = 20;

/// A transactional email: what it says, and what it needs besides the recipient.
#[derive(Clone, Copy, Debug)]
pub enum Transactional<'a> {
    /// The double opt-in message (`confirm.{html,txt}`): a link to
    /// `{base_url}/confirm/{token}`, valid for 7 days, naming the topics asked for.
    Confirm { topic_names: &'a [String] },
    /// "Manage your subscription" (`preferences_link.{html,txt}`), sent when a known address is
    /// typed into the subscribe form: a link to `{base_url}/preferences/{token}`.
    PreferencesLink,
}

/// A kind's subject and its two bodies, the HTML before CSS inlining.
struct Rendered {
    subject: String,
    html: String,
    text: String,
}

impl Transactional<'_> {
    /// The outbox row kind this email is queued under.
    pub fn delivery_kind(&self) -> DeliveryKind {
        match self {
            Transactional::Confirm { .. } => DeliveryKind::Confirm,
            Transactional::PreferencesLink => DeliveryKind::Preferences,
        }
    }

    /// The one place where a kind picks its subject, its link and its pair of templates.
    fn render(
        &self,
        head: &Letterhead,
        tokens: &TokenSigner,
        recipient: &Recipient,
        now: DateTime<Utc>,
    ) -> Result<Rendered, RenderError> {
        let title = head.title.as_str();
        let postal_address = head.postal_address.as_str();
        match self {
            Transactional::Confirm { topic_names } => {
                let subject = subject(&format!("Confirm your subscription to {title}"));
                let topics = topics_phrase(topic_names);
                let confirm_url = format!(
                    "{}/confirm/{}",
                    head.base_url,
                    tokens.confirm(recipient.subscriber_id, now)
                );
                let text = ConfirmText {
                    newsletter_title: title,
                    topics: &topics,
                    email: recipient.email.as_str(),
                    confirm_url: &confirm_url,
                    validity_days: CONFIRM_VALIDITY_DAYS,
                    base_url: &head.base_url,
                    postal_address,
                };
                let html = ConfirmHtml {
                    subject: &subject,
                    css: &head.theme.css,
                    theme: &head.theme,
                    newsletter_title: title,
                    topics: &topics,
                    email: recipient.email.as_str(),
                    confirm_url: &confirm_url,
                    validity_days: CONFIRM_VALIDITY_DAYS,
                    base_url: &head.base_url,
                    postal_address,
                };
                Ok(Rendered {
                    html: html.render()?,
                    text: text.render()?,
                    subject,
                })
            }
            Transactional::PreferencesLink => {
                let subject = subject(&format!("Your {title} subscription"));
                let preferences_url = format!(
                    "{}/preferences/{}",
                    head.base_url,
                    tokens.preferences(recipient.subscriber_id)
                );
                let text = PreferencesLinkText {
                    newsletter_title: title,
                    preferences_url: &preferences_url,
                    postal_address,
                };
                let html = PreferencesLinkHtml {
                    subject: &subject,
                    css: &head.theme.css,
                    theme: &head.theme,
                    newsletter_title: title,
                    preferences_url: &preferences_url,
                    postal_address,
                };
                Ok(Rendered {
                    html: html.render()?,
                    text: text.render()?,
                    subject,
                })
            }
        }
    }
}

/// Builds one transactional email for `recipient`, sent at `now`:
/// `Message-ID: <tidings.{kind}.{subscriber}.{random}@{from domain}>` (unique per message; the
/// outbox stores the message, so a retry sends the same one), DKIM-signed when `dkim` is given.
pub fn transactional_message(
    settings: &Settings,
    tokens: &TokenSigner,
    dkim: Option<&DkimSigner>,
    recipient: &Recipient,
    email: &Transactional<'_>,
    now: DateTime<Utc>,
) -> Result<OutgoingMessage, RenderError> {
    let head = Letterhead::from_settings(settings);
    let Rendered {
        subject,
        html,
        text,
    } = email.render(&head, tokens, recipient, now)?;
    let html = inline_css(&html)?;
    let message_id = format!(
        "<tidings.{}.{}.{}@{}>",
        email.delivery_kind().as_str(),
        recipient.subscriber_id,
        uuid::Uuid::new_v4().simple(),
        head.domain
    );
    let envelope = Envelope {
        from: &head.from,
        reply_to: head.reply_to.as_ref(),
        to: recipient.email.as_str(),
        subject: &subject,
        date: now,
        message_id: &message_id,
        list_id: None,
        unsubscribe_url: None,
        feedback_id: None,
    };
    let raw = build_message(&envelope, Parts::Plain { text, html }, dkim)?;
    Ok(OutgoingMessage {
        message_id,
        to: recipient.email.clone(),
        envelope_from: head.from.email.to_string(),
        raw,
    })
}

/// A subject line: one line, at most [`MAX_SUBJECT_CHARS`] characters.
fn subject(raw: &str) -> String {
    clean_line(raw, MAX_SUBJECT_CHARS)
}

/// "Rust", "Rust and Go", "Rust, Go and Zig"; "the newsletter" for none.
fn topics_phrase(names: &[String]) -> String {
    let names: Vec<String> = names
        .iter()
        .map(|n| clean_line(n, MAX_NAME_CHARS))
        .filter(|n| !n.is_empty())
        .take(MAX_TOPICS_NAMED)
        .collect();
    match names.as_slice() {
        [] => "the newsletter".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[derive(Template)]
#[template(path = "email/confirm.html")]
struct ConfirmHtml<'a> {
    subject: &'a str,
    css: &'a str,
    theme: &'a EmailTheme,
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

#[derive(Template)]
#[template(path = "email/preferences_link.html")]
struct PreferencesLinkHtml<'a> {
    subject: &'a str,
    css: &'a str,
    theme: &'a EmailTheme,
    newsletter_title: &'a str,
    preferences_url: &'a str,
    postal_address: &'a str,
}

#[derive(Template)]
#[template(path = "email/preferences_link.txt")]
struct PreferencesLinkText<'a> {
    newsletter_title: &'a str,
    preferences_url: &'a str,
    postal_address: &'a str,
}
