//! The one email the web app composes itself: "here is the link to your preferences", sent
//! when a known address is entered in the subscribe form. (The confirmation email comes from
//! `render`.) The message is queued in the outbox like any other; nothing here talks SMTP.

use askama::Template;
use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};

use super::AppState;
use super::error::WebError;
use crate::domain::{SubscriberEmail, parse_mailbox};
use crate::render::OutgoingMessage;

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
    title: &'a str,
    link: &'a str,
    postal_address: &'a str,
}

/// Builds the "manage your subscription" message for a known subscriber.
pub fn preferences_link_message(
    state: &AppState,
    subscriber_id: i64,
    email: &SubscriberEmail,
    now: DateTime<Utc>,
) -> Result<OutgoingMessage, WebError> {
    let n = &state.settings.newsletter;
    let link = format!(
        "{}/preferences/{}",
        state.base_url(),
        state.tokens.preferences(subscriber_id)
    );
    let title: String = n.title.chars().filter(|c| !c.is_control()).collect();
    let text = LinkText {
        title: &title,
        link: &link,
        postal_address: &n.postal_address,
    }
    .render()?;
    let html = LinkHtml {
        title: &title,
        link: &link,
        postal_address: &n.postal_address,
    }
    .render()?;
    let from = parse_mailbox(&n.from).map_err(|e| anyhow::anyhow!("newsletter.from: {e}"))?;
    let to: Mailbox = email
        .as_str()
        .parse()
        .map_err(|e| anyhow::anyhow!("recipient address: {e}"))?;
    let domain = from.email.domain().to_string();
    let message_id = format!("<{}@{domain}>", uuid::Uuid::new_v4());
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(format!("Your {title} subscription"))
        .message_id(Some(message_id.clone()))
        .date(now.into());
    if !n.reply_to.trim().is_empty() {
        let reply_to =
            parse_mailbox(&n.reply_to).map_err(|e| anyhow::anyhow!("newsletter.reply_to: {e}"))?;
        builder = builder.reply_to(reply_to);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| anyhow::anyhow!("building the preferences email: {e}"))?;
    Ok(OutgoingMessage {
        message_id,
        to: email.clone(),
        envelope_from: from.email.to_string(),
        raw: message.formatted(),
    })
}
