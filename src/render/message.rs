//! Turning rendered parts into a complete RFC 5322 message with lettre: the List-* headers
//! (RFC 2369, RFC 8058), Message-ID, and the optional DKIM signature.
//!
//! lettre traps handled here (see STANDARDS.md): display names lose CR/LF/NUL before lettre sees
//! them (it panics otherwise); Message-ID is always set; DKIM uses relaxed/relaxed and lists the
//! List-* headers; the folded multipart `Content-Type` is never signed (lettre signs it wrongly).
//!
//! With `[dkim] ed25519_private_key_path` set, every message carries two DKIM-Signature headers,
//! RSA-SHA256 and Ed25519-SHA256 (RFC 8463 recommends both). lettre keeps one header per name,
//! so each signature is made on its own and the Ed25519 one is written above the message.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::header::{Header, HeaderName, HeaderValue, Headers};
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

/// Signs outgoing messages with DKIM (RSA-SHA256, relaxed/relaxed), and also with Ed25519-SHA256
/// when a second key is configured. `Debug` never prints a key.
#[derive(Clone)]
pub struct DkimSigner {
    config: Arc<DkimConfig>,
    /// The Ed25519 signature's configuration (RFC 8463), same domain, its own selector.
    ed25519: Option<Arc<DkimConfig>>,
    domain: String,
    selector: String,
    ed25519_selector: Option<String>,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("ed25519_selector", &self.ed25519_selector)
            .field("private_key", &"***")
            .finish()
    }
}

impl DkimSigner {
    /// `Ok(None)` when `[dkim] private_key_path` is empty. Reads the key file (RSA, PKCS#1 PEM),
    /// and the Ed25519 key file when `dkim.ed25519_private_key_path` is set; a missing,
    /// unreadable or unparsable key is an error naming its setting.
    pub fn from_settings(d: &DkimSettings) -> Result<Option<DkimSigner>, RenderError> {
        if !d.enabled() {
            return Ok(None);
        }
        let path = d.private_key_path.trim();
        let pem = read_key("dkim.private_key_path", path)?;
        let signer = DkimSigner::from_pem(&d.domain, &d.selector, &pem).map_err(|reason| {
            RenderError::Dkim(format!("dkim.private_key_path {path:?}: {reason}"))
        })?;
        if !d.ed25519_enabled() {
            return Ok(Some(signer));
        }
        let path = d.ed25519_private_key_path.trim();
        let text = read_key("dkim.ed25519_private_key_path", path)?;
        signer
            .with_ed25519(&d.ed25519_selector, &text)
            .map_err(|reason| {
                RenderError::Dkim(format!("dkim.ed25519_private_key_path {path:?}: {reason}"))
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
        if !valid_name(domain) {
            return Err(format!("dkim.domain {domain:?} is not a domain name"));
        }
        if !valid_name(selector) {
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
        Ok(DkimSigner {
            config: Arc::new(dkim_config(domain, selector, key)),
            ed25519: None,
            domain: domain.to_string(),
            selector: selector.to_string(),
            ed25519_selector: None,
        })
    }

    /// This signer, also signing with the Ed25519 key `text` (the base64 of its 32-byte seed,
    /// as `tidings dkim keygen --algorithm ed25519` writes it) under `selector` of the same
    /// domain. The error names what is wrong, without the key.
    pub fn with_ed25519(self, selector: &str, text: &str) -> Result<DkimSigner, String> {
        let selector = selector.trim();
        if selector.is_empty() {
            return Err(
                "dkim.ed25519_selector must be set when an Ed25519 key is configured".into(),
            );
        }
        if !valid_name(selector) {
            return Err(format!(
                "dkim.ed25519_selector {selector:?} is not a DNS label"
            ));
        }
        if selector.eq_ignore_ascii_case(&self.selector) {
            return Err(format!(
                "dkim.ed25519_selector {selector:?} is dkim.selector too; each key needs its own selector"
            ));
        }
        let (key, _) = ed25519_signing_key(text)?;
        Ok(DkimSigner {
            ed25519: Some(Arc::new(dkim_config(&self.domain, selector, key))),
            ed25519_selector: Some(selector.to_string()),
            ..self
        })
    }

    /// Signs `message` and formats it: the Ed25519 signature's header (when configured) first,
    /// then the message with its RSA signature.
    pub(crate) fn sign_and_format(&self, mut message: Message) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(ed25519) = &self.ed25519 {
            message.sign(ed25519);
            if let Some(signature) = message.headers_mut().remove_raw("DKIM-Signature") {
                let mut headers = Headers::new();
                headers.insert_raw(signature);
                out.extend_from_slice(headers.to_string().as_bytes());
            }
        }
        message.sign(&self.config);
        out.extend_from_slice(&message.formatted());
        out
    }
}

/// The text of the key file at `path`; the error names `key` and the path.
fn read_key(key: &str, path: &str) -> Result<String, RenderError> {
    std::fs::read_to_string(path)
        .map_err(|e| RenderError::Dkim(format!("{key} {path:?} cannot be read: {e}")))
}

/// A domain or selector: labels of ASCII letters, digits, `-` and `_` between dots.
fn valid_name(s: &str) -> bool {
    s.split('.').all(|l| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// relaxed/relaxed over [`DKIM_SIGNED_HEADERS`].
fn dkim_config(domain: &str, selector: &str, key: DkimSigningKey) -> DkimConfig {
    let headers = DKIM_SIGNED_HEADERS
        .iter()
        .map(|h| HeaderName::new_from_ascii_str(h))
        .collect();
    DkimConfig::new(
        selector.to_string(),
        domain.to_string(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    )
}

/// The public key of an Ed25519 DKIM private key in the form lettre reads (the base64 of the
/// 32-byte seed, surrounding whitespace ignored), as the 32 raw bytes an RFC 8463 record's
/// `p=` carries in base64. The key is also loaded the way `[dkim]` loads it. The error never
/// contains the key.
pub fn ed25519_public_key(text: &str) -> Result<Vec<u8>, String> {
    ed25519_signing_key(text).map(|(_, public)| public)
}

/// The signing key lettre reads from `text`, and its public key.
fn ed25519_signing_key(text: &str) -> Result<(DkimSigningKey, Vec<u8>), String> {
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine as _;
    let text = text.trim();
    let seed = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| "the file is not an Ed25519 private key (the base64 of its 32-byte seed)")?;
    if seed.len() != 32 {
        return Err(format!(
            "the file is not an Ed25519 private key: its base64 holds {} bytes, not the 32 of a seed",
            seed.len()
        ));
    }
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| "the Ed25519 seed is not usable".to_string())?;
    let key = DkimSigningKey::new(text, DkimSigningAlgorithm::Ed25519)
        .map_err(|e| format!("the Ed25519 private key cannot be parsed: {e}"))?;
    Ok((key, pair.public_key().as_ref().to_vec()))
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
    let message = builder
        .multipart(parts.into_multipart())
        .map_err(|e| RenderError::Build(e.to_string()))?;
    Ok(match dkim {
        Some(signer) => signer.sign_and_format(message),
        None => message.formatted(),
    })
}
