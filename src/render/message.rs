//! Turning rendered parts into a complete RFC 5322 message with lettre: the List-* headers
//! (RFC 2369, RFC 8058), Message-ID, and the optional DKIM signature.
//!
//! lettre traps handled here (see STANDARDS.md): display names lose CR/LF/NUL before lettre sees
//! them (it panics otherwise); Message-ID is always set; DKIM uses relaxed/relaxed and lists the
//! List-* headers; the folded multipart `Content-Type` is never signed (lettre signs it wrongly).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::RenderError;
use super::text::{MAX_NAME_CHARS, clean_line};
use crate::config::DkimSettings;

/// Headers the DKIM signature covers. Headers absent from a message (Reply-To, List-* on a
/// confirmation) are still listed, so nobody can add them later without breaking the signature.
pub const DKIM_SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "MIME-Version",
];

macro_rules! text_header {
    ($(#[$meta:meta])* $ty:ident, $name:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        pub(crate) struct $ty(pub String);

        impl Header for $ty {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($ty(s.to_string()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(
    /// `List-Id: <slug.list-domain>` (RFC 2919).
    ListId,
    "List-Id"
);
text_header!(
    /// `List-Unsubscribe: <https://.../unsubscribe/TOKEN>` (RFC 2369).
    ListUnsubscribe,
    "List-Unsubscribe"
);
text_header!(
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
    ListUnsubscribePost,
    "List-Unsubscribe-Post"
);
text_header!(
    /// `Feedback-ID: issue:topic:newsletter:sender` (Gmail's feedback loop).
    FeedbackId,
    "Feedback-ID"
);

/// Signs outgoing messages with DKIM (RSA-SHA256, relaxed/relaxed). `Debug` never prints the key.
#[derive(Clone)]
pub struct DkimSigner {
    config: Arc<DkimConfig>,
    domain: String,
    selector: String,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("private_key", &"***")
            .finish()
    }
}

impl DkimSigner {
    /// `Ok(None)` when `[dkim] private_key_path` is empty. Reads the key file (RSA, PKCS#1 PEM);
    /// a missing, unreadable or unparsable key is an error naming `dkim.private_key_path`.
    pub fn from_settings(d: &DkimSettings) -> Result<Option<DkimSigner>, RenderError> {
        if !d.enabled() {
            return Ok(None);
        }
        let path = d.private_key_path.trim();
        let pem = std::fs::read_to_string(path).map_err(|e| {
            RenderError::Dkim(format!(
                "dkim.private_key_path {path:?} cannot be read: {e}"
            ))
        })?;
        DkimSigner::from_pem(&d.domain, &d.selector, &pem)
            .map_err(|reason| {
                RenderError::Dkim(format!("dkim.private_key_path {path:?}: {reason}"))
            })
            .map(Some)
    }

    /// Builds a signer from a PEM text. The error names what is wrong, without the key.
    pub fn from_pem(domain: &str, selector: &str, pem: &str) -> Result<DkimSigner, String> {
        let domain = domain.trim();
        let selector = selector.trim();
        if domain.is_empty() {
            return Err("dkim.domain must be set when a DKIM key is configured".into());
        }
        if selector.is_empty() {
            return Err("dkim.selector must be set when a DKIM key is configured".into());
        }
        let valid_label = |s: &str| {
            s.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
        };
        if !valid_label(domain) {
            return Err(format!("dkim.domain {domain:?} is not a domain name"));
        }
        if !valid_label(selector) {
            return Err(format!("dkim.selector {selector:?} is not a DNS label"));
        }
        if pem.contains("BEGIN PRIVATE KEY") {
            return Err("the key is PKCS#8 (BEGIN PRIVATE KEY); tidings needs PKCS#1 (BEGIN RSA PRIVATE KEY): convert it with `openssl rsa -in key.pem -traditional -out key.rsa.pem`".into());
        }
        if !pem.contains("BEGIN RSA PRIVATE KEY") {
            return Err(
                "the file is not an RSA private key in PKCS#1 PEM form (BEGIN RSA PRIVATE KEY)"
                    .into(),
            );
        }
        let key = DkimSigningKey::new(pem, DkimSigningAlgorithm::Rsa)
            .map_err(|e| format!("the RSA private key cannot be parsed: {e}"))?;
        let headers = DKIM_SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        let config = DkimConfig::new(
            selector.to_string(),
            domain.to_string(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(DkimSigner {
            config: Arc::new(config),
            domain: domain.to_string(),
            selector: selector.to_string(),
        })
    }

    pub(crate) fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

/// A configured mailbox (`newsletter.from`, `newsletter.reply_to`) with a display name that
/// cannot make lettre panic.
pub(crate) fn config_mailbox(configured: &Mailbox) -> Mailbox {
    let name = configured
        .name
        .as_deref()
        .map(|n| clean_line(n, MAX_NAME_CHARS))
        .filter(|n| !n.is_empty());
    Mailbox::new(name, configured.email.clone())
}

/// The domain after `@` in a mailbox, for Message-ID and List-Id.
pub(crate) fn mailbox_domain(m: &Mailbox) -> String {
    m.email.domain().to_ascii_lowercase()
}

/// Everything one message needs besides its body.
pub(crate) struct Envelope<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to: &'a str,
    pub subject: &'a str,
    pub date: DateTime<Utc>,
    pub message_id: &'a str,
    pub list_id: Option<&'a str>,
    pub unsubscribe_url: Option<&'a str>,
    pub feedback_id: Option<&'a str>,
}

/// The two parts of a message: plain text for lettre to encode, or bodies already
/// quoted-printable encoded (see `super::qp`), which lettre copies as they are.
pub(crate) enum Parts {
    Plain { text: String, html: String },
    QuotedPrintable { text: String, html: String },
}

impl Parts {
    fn into_multipart(self) -> MultiPart {
        match self {
            Parts::Plain { text, html } => MultiPart::alternative_plain_html(text, html),
            Parts::QuotedPrintable { text, html } => {
                let part = |content_type: ContentType, encoded: String| {
                    SinglePart::builder()
                        .header(content_type)
                        .body(Body::dangerous_pre_encoded(
                            encoded.into_bytes(),
                            ContentTransferEncoding::QuotedPrintable,
                        ))
                };
                MultiPart::alternative()
                    .singlepart(part(ContentType::TEXT_PLAIN, text))
                    .singlepart(part(ContentType::TEXT_HTML, html))
            }
        }
    }
}

/// Builds, signs (when `dkim` is given) and formats one multipart/alternative message with
/// text/plain first and text/html last.
pub(crate) fn build_message(
    env: &Envelope<'_>,
    parts: Parts,
    dkim: Option<&DkimSigner>,
) -> Result<Vec<u8>, RenderError> {
    let to: Address = env.to.parse().map_err(|e| RenderError::Address {
        key: "recipient",
        reason: format!("{e}"),
    })?;
    let date: SystemTime = env.date.into();
    let mut builder = Message::builder()
        .from(env.from.clone())
        .to(Mailbox::new(None, to))
        .subject(env.subject)
        .date(date)
        .message_id(Some(env.message_id.to_string()));
    if let Some(reply_to) = env.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(list_id) = env.list_id {
        builder = builder.header(ListId(list_id.to_string()));
    }
    if let Some(url) = env.unsubscribe_url {
        builder = builder
            .header(ListUnsubscribe(format!("<{url}>")))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
    }
    if let Some(feedback_id) = env.feedback_id {
        builder = builder.header(FeedbackId(feedback_id.to_string()));
    }
    let mut message = builder
        .multipart(parts.into_multipart())
        .map_err(|e| RenderError::Build(e.to_string()))?;
    if let Some(signer) = dkim {
        signer.sign(&mut message);
    }
    Ok(message.formatted())
}
