//! Rendering: askama email templates -> complete messages (subject, HTML with inlined CSS, text, headers, DKIM).
//!
//! TEMP-STUB (owned by the render helper): the agreed API with a plain lettre-built message,
//! so delivery can be built and tested before the real templates land.

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart, header};

use crate::config::{DkimSettings, Settings};
use crate::domain::{Digest, SubscriberEmail, parse_mailbox};
use crate::tokens::TokenSigner;

/// Why a message could not be rendered. TEMP-STUB (owned by the render helper).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot render the message: {0}")]
    Message(String),
}

/// Who one message goes to. TEMP-STUB (owned by the render helper).
#[derive(Clone, Debug)]
pub struct Recipient {
    pub subscriber_id: i64,
    pub email: SubscriberEmail,
}

/// A complete message ready for a transport. TEMP-STUB (owned by the render helper).
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    pub message_id: String,
    pub to: SubscriberEmail,
    pub envelope_from: String,
    /// Complete RFC 5322 bytes with CRLF line ends.
    pub raw: Vec<u8>,
}

/// DKIM signing. TEMP-STUB (owned by the render helper): never enabled here.
#[derive(Clone, Debug)]
pub struct DkimSigner;

impl DkimSigner {
    pub fn from_settings(_dkim: &DkimSettings) -> Result<Option<DkimSigner>, RenderError> {
        Ok(None)
    }
}

/// A digest rendered once per issue. TEMP-STUB (owned by the render helper).
#[derive(Clone, Debug)]
pub struct PreparedDigest {
    subject: String,
    from: Mailbox,
    base_url: String,
    issue_id: i64,
    topic: String,
    text: String,
    html: String,
}

impl PreparedDigest {
    pub fn prepare(
        settings: &Settings,
        digest: &Digest,
        _dkim: Option<DkimSigner>,
    ) -> Result<PreparedDigest, RenderError> {
        let from = parse_mailbox(&settings.newsletter.from).map_err(RenderError::Message)?;
        let top = digest
            .entries
            .first()
            .map(|e| e.title.as_str())
            .unwrap_or("no articles");
        let subject: String = format!("{}: {top}", digest.topic_name)
            .chars()
            .filter(|c| !c.is_control())
            .take(150)
            .collect();
        let mut text = format!("{}\n{}\n\n", digest.topic_name, digest.topic_description);
        let mut html = format!("<html><body><h1>{}</h1>", escape(&digest.topic_name));
        for e in &digest.entries {
            text.push_str(&format!(
                "{:02} {}\n{}\n{}\n\n",
                e.position, e.title, e.url, e.summary
            ));
            html.push_str(&format!(
                "<h2><a href=\"{}\">{}</a></h2><p>{}</p>",
                escape(&e.url),
                escape(&e.title),
                escape(&e.summary)
            ));
        }
        html.push_str("</body></html>");
        Ok(PreparedDigest {
            subject,
            from,
            base_url: settings
                .newsletter
                .base_url
                .trim_end_matches('/')
                .to_string(),
            issue_id: digest.issue_id.unwrap_or(0),
            topic: digest.topic_slug.clone(),
            text,
            html,
        })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn message_for(
        &self,
        tokens: &TokenSigner,
        recipient: &Recipient,
        now: DateTime<Utc>,
    ) -> Result<OutgoingMessage, RenderError> {
        let domain = self.from.email.domain().to_string();
        let message_id = format!(
            "<tidings.{}.{}@{domain}>",
            self.issue_id, recipient.subscriber_id
        );
        let unsubscribe = format!(
            "{}/unsubscribe/{}",
            self.base_url,
            tokens.stub_token(recipient.subscriber_id, &self.topic)
        );
        let to: Mailbox = recipient
            .email
            .as_str()
            .parse()
            .map_err(|e: lettre::address::AddressError| RenderError::Message(e.to_string()))?;
        let text = format!("{}Unsubscribe: {unsubscribe}\n", self.text).replace('\n', "\r\n");
        let html = format!(
            "{}<p><a href=\"{unsubscribe}\">Unsubscribe</a></p>",
            self.html
        );
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(self.subject.clone())
            .date(now.into())
            .message_id(Some(message_id.clone()))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        lettre::message::SinglePart::builder()
                            .header(header::ContentType::TEXT_PLAIN)
                            .body(text),
                    )
                    .singlepart(
                        lettre::message::SinglePart::builder()
                            .header(header::ContentType::TEXT_HTML)
                            .body(html),
                    ),
            )
            .map_err(|e| RenderError::Message(e.to_string()))?;
        Ok(OutgoingMessage {
            message_id,
            to: recipient.email.clone(),
            envelope_from: self.from.email.to_string(),
            raw: message.formatted(),
        })
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
