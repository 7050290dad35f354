//! Rendering: askama email templates -> complete messages (subject, HTML with inlined CSS, text, headers, DKIM).
// TEMP-STUB (owned by the render helper): the smallest versions of the agreed functions so the
// web app builds and its tests run; the render helper's module replaces this file at merge.

use chrono::{DateTime, Utc};

use crate::config::{DkimSettings, Settings};
use crate::domain::{Digest, SubscriberEmail};
use crate::tokens::TokenSigner;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot build the message: {0}")]
    Message(String),
}

/// Who a message goes to.
#[derive(Clone, Debug)]
pub struct Recipient {
    pub subscriber_id: i64,
    pub email: SubscriberEmail,
}

/// A complete message ready for the outbox.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    pub message_id: String,
    pub to: SubscriberEmail,
    pub envelope_from: String,
    pub raw: Vec<u8>,
}

/// DKIM signing (stub: never configured).
#[derive(Clone, Debug)]
pub struct DkimSigner;

impl DkimSigner {
    pub fn from_settings(_settings: &DkimSettings) -> Result<Option<DkimSigner>, RenderError> {
        Ok(None)
    }
}

/// The double opt-in email with its confirmation link.
pub fn confirmation_message(
    settings: &Settings,
    tokens: &TokenSigner,
    _dkim: Option<&DkimSigner>,
    recipient: &Recipient,
    topic_names: &[String],
    now: DateTime<Utc>,
) -> Result<OutgoingMessage, RenderError> {
    let link = format!(
        "{}/confirm/{}",
        settings.newsletter.base_url.trim_end_matches('/'),
        tokens.confirm(recipient.subscriber_id, now)
    );
    let from =
        crate::domain::parse_mailbox(&settings.newsletter.from).map_err(RenderError::Message)?;
    let to = recipient
        .email
        .as_str()
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| RenderError::Message(e.to_string()))?;
    let message_id = format!("<{}@tidings>", uuid::Uuid::new_v4());
    let text = format!(
        "Please confirm your subscription to {} ({}):\r\n\r\n{link}\r\n",
        settings.newsletter.title,
        topic_names.join(", ")
    );
    let msg = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(format!(
            "Confirm your subscription to {}",
            settings.newsletter.title
        ))
        .message_id(Some(message_id.clone()))
        .date(now.into())
        .body(text)
        .map_err(|e| RenderError::Message(e.to_string()))?;
    Ok(OutgoingMessage {
        message_id,
        to: recipient.email.clone(),
        envelope_from: from.email.to_string(),
        raw: msg.formatted(),
    })
}

/// A digest as the body of a web page.
pub fn archive_html(_settings: &Settings, digest: &Digest) -> String {
    let mut out = String::from("<ol>");
    for e in &digest.entries {
        out.push_str(&format!(
            "<li><a href=\"{}\">{}</a><p>{}</p></li>",
            escape(&e.url),
            escape(&e.title),
            escape(&e.summary)
        ));
    }
    out.push_str("</ol>");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
