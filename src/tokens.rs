//! Signed, URL-safe tokens (HMAC-SHA256) for unsubscribe, preferences and confirmation links.
// TEMP-STUB (owned by the render helper): a minimal implementation of the agreed API so the web
// app can be built and tested; the render helper's version replaces this file at merge.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::NewsletterSettings;

type HmacSha256 = Hmac<Sha256>;

/// What a token may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    Preferences,
    Confirm,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Unsubscribe => "u",
            Purpose::Preferences => "p",
            Purpose::Confirm => "c",
        }
    }
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub subscriber_id: i64,
    pub topic: Option<String>,
    pub issued_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token is meant for another purpose")]
    WrongPurpose,
    #[error("the token has expired")]
    Expired,
}

/// Signs and verifies link tokens with the newsletter secret (and previous secrets).
#[derive(Clone)]
pub struct TokenSigner {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(***)")
    }
}

impl TokenSigner {
    pub fn from_settings(settings: &NewsletterSettings) -> TokenSigner {
        let mut keys = vec![settings.secret.expose().as_bytes().to_vec()];
        keys.extend(
            settings
                .previous_secrets
                .iter()
                .map(|s| s.expose().as_bytes().to_vec()),
        );
        TokenSigner { keys }
    }

    pub fn unsubscribe(&self, subscriber_id: i64, topic: &str) -> String {
        self.sign(Purpose::Unsubscribe, subscriber_id, topic, Utc::now())
    }

    pub fn preferences(&self, subscriber_id: i64) -> String {
        self.sign(Purpose::Preferences, subscriber_id, "", Utc::now())
    }

    pub fn confirm(&self, subscriber_id: i64, issued_at: DateTime<Utc>) -> String {
        self.sign(Purpose::Confirm, subscriber_id, "", issued_at)
    }

    fn mac(key: &[u8], payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(payload);
        mac
    }

    fn sign(&self, purpose: Purpose, id: i64, topic: &str, at: DateTime<Utc>) -> String {
        let payload = format!("{}.{id}.{topic}.{}", purpose.tag(), at.timestamp());
        let tag = Self::mac(&self.keys[0], payload.as_bytes())
            .finalize()
            .into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(&tag[..16])
        )
    }

    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        let (p, t) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(t)
            .map_err(|_| TokenError::Malformed)?;
        if tag.len() != 16 {
            return Err(TokenError::Malformed);
        }
        let ok = self
            .keys
            .iter()
            .any(|k| Self::mac(k, &payload).verify_truncated_left(&tag).is_ok());
        if !ok {
            return Err(TokenError::BadSignature);
        }
        let text = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
        let parts: Vec<&str> = text.split('.').collect();
        let [tag, id, topic, at] = parts[..] else {
            return Err(TokenError::Malformed);
        };
        if tag != purpose.tag() {
            return Err(TokenError::WrongPurpose);
        }
        let subscriber_id = id.parse().map_err(|_| TokenError::Malformed)?;
        let issued_at = at
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or(TokenError::Malformed)?;
        if purpose == Purpose::Confirm && now - issued_at > chrono::Duration::days(7) {
            return Err(TokenError::Expired);
        }
        Ok(Claims {
            subscriber_id,
            topic: (!topic.is_empty()).then(|| topic.to_string()),
            issued_at,
        })
    }
}
