//! Signed, URL-safe link tokens (HMAC-SHA256) for the unsubscribe, preferences and confirmation
//! links in emails, verified by the web app.
//!
//! A token is `base64url(payload || tag)` without padding, where `payload` is
//! `[version][purpose][subscriber id as LEB128][purpose data]` and `tag` is the first 16 bytes of
//! HMAC-SHA256 over a domain-separation prefix and the payload, keyed by `[newsletter] secret`.
//! Purpose data is the topic slug for unsubscribe tokens (a token leaves one topic) and the
//! issue time in Unix seconds (LEB128) for confirmation tokens (they expire after
//! [`CONFIRM_VALIDITY_DAYS`]). Tokens are short (about 27 to 60 characters) because lettre does not
//! fold the `List-Unsubscribe` header they appear in.
//!
//! Verification checks the tag in constant time against the current secret, then against each
//! of `previous_secrets`, so a secret can be rotated without breaking links already sent.
//!
//! The same keys sign bounce tags, a purpose of their own ([`Purpose::Bounce`]): the VERP
//! envelope sender `bounces+<tag>@domain` of an outgoing message names its delivery row, so a
//! bounce maps to that delivery even when the bounce body is mangled. A tag is lower-case
//! base32 (RFC 4648 alphabet, no padding) of `[delivery id as LEB128][first 10 bytes of
//! HMAC-SHA256 over version, purpose and id]`: 18 to 32 characters, read case-insensitively
//! (some MTAs lower-case or upper-case local parts). A forged, garbled, truncated or other-secret
//! tag names no delivery ([`TokenSigner::bounce_tag_delivery`] returns `None`).

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::NewsletterSettings;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

mod bounce;

pub use bounce::MAX_BOUNCE_TAG_CHARS;

type HmacSha256 = Hmac<Sha256>;

/// Confirmation links stop working this many days after they were issued.
pub const CONFIRM_VALIDITY_DAYS: i64 = 7;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const DOMAIN: &[u8] = b"tidings-link-token-v1\0";
/// Longest token text accepted before any decoding (a topic slug is at most 64 bytes).
const MAX_TOKEN_CHARS: usize = 160;

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    Unsubscribe,
    Preferences,
    Confirm,
    /// A bounce tag in a VERP envelope sender ([`TokenSigner::bounce_tag`]); never a link.
    Bounce,
}

impl Purpose {
    fn code(self) -> u8 {
        match self {
            Purpose::Unsubscribe => 1,
            Purpose::Preferences => 2,
            Purpose::Confirm => 3,
            Purpose::Bounce => 4,
        }
    }

    fn from_code(code: u8) -> Option<Purpose> {
        match code {
            1 => Some(Purpose::Unsubscribe),
            2 => Some(Purpose::Preferences),
            3 => Some(Purpose::Confirm),
            4 => Some(Purpose::Bounce),
            _ => None,
        }
    }
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub subscriber_id: i64,
    /// The topic an unsubscribe token leaves; `None` for other purposes.
    pub topic: Option<String>,
    /// When a confirmation token was issued. Unsubscribe and preferences tokens carry no time
    /// (they never expire and stay the same for every issue); for them this is the Unix epoch.
    pub issued_at: DateTime<Utc>,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("link token is malformed")]
    Malformed,
    #[error("link token signature does not match")]
    BadSignature,
    #[error("link token was issued for another purpose")]
    WrongPurpose,
    #[error("link token has expired")]
    Expired,
}

/// Issues and verifies link tokens. `Debug` never prints the keys.
#[derive(Clone)]
pub struct TokenSigner {
    /// Current secret first, then previous secrets, each already keyed.
    keys: Vec<HmacSha256>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("keys", &format_args!("*** ({} secrets)", self.keys.len()))
            .finish()
    }
}

impl TokenSigner {
    /// Keys from `newsletter.secret` (used to sign) and `newsletter.previous_secrets` (still
    /// accepted when verifying).
    pub fn from_settings(n: &NewsletterSettings) -> TokenSigner {
        let secrets = std::iter::once(n.secret.expose())
            .chain(n.previous_secrets.iter().map(|s| s.expose()))
            .filter(|s| !s.is_empty());
        let mut keys: Vec<HmacSha256> = secrets.map(keyed).collect();
        if keys.is_empty() {
            // validate() refuses an empty secret; an empty key still gives consistent tokens.
            keys.push(keyed(""));
        }
        TokenSigner { keys }
    }

    /// A token that leaves `topic` for this subscriber. It never expires.
    pub fn unsubscribe(&self, subscriber_id: i64, topic: &str) -> String {
        let mut payload = header(Purpose::Unsubscribe, subscriber_id);
        payload.extend_from_slice(topic.as_bytes());
        self.seal(payload)
    }

    /// A token that opens this subscriber's preferences page. It never expires.
    pub fn preferences(&self, subscriber_id: i64) -> String {
        self.seal(header(Purpose::Preferences, subscriber_id))
    }

    /// A token that confirms this subscriber; it expires [`CONFIRM_VALIDITY_DAYS`] after `issued_at`.
    pub fn confirm(&self, subscriber_id: i64, issued_at: DateTime<Utc>) -> String {
        let mut payload = header(Purpose::Confirm, subscriber_id);
        push_varint(&mut payload, issued_at.timestamp().max(0) as u64);
        self.seal(payload)
    }

    /// Checks the signature (current secret, then previous ones), the purpose and, for
    /// confirmation tokens, the age at `now`.
    pub fn verify(
        &self,
        token: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() <= TAG_LEN + 2 {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let signed = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(payload);
            // Constant-time comparison of the truncated tag.
            mac.verify_truncated_left(tag).is_ok()
        });
        if !signed {
            return Err(TokenError::BadSignature);
        }
        let claims_purpose = parse_payload(payload)?;
        if claims_purpose.0 != purpose {
            return Err(TokenError::WrongPurpose);
        }
        let claims = claims_purpose.1;
        if purpose == Purpose::Confirm {
            let age = now.signed_duration_since(claims.issued_at);
            if age > Duration::days(CONFIRM_VALIDITY_DAYS) {
                return Err(TokenError::Expired);
            }
        }
        Ok(claims)
    }

    fn seal(&self, mut payload: Vec<u8>) -> String {
        let mut mac = self.keys[0].clone();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        payload.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(payload)
    }
}

fn keyed(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty key regardless.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
    mac.update(DOMAIN);
    mac
}

fn header(purpose: Purpose, subscriber_id: i64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(80);
    payload.push(VERSION);
    payload.push(purpose.code());
    push_varint(&mut payload, subscriber_id as u64);
    payload
}

fn parse_payload(payload: &[u8]) -> Result<(Purpose, Claims), TokenError> {
    let [version, code, rest @ ..] = payload else {
        return Err(TokenError::Malformed);
    };
    if *version != VERSION {
        return Err(TokenError::Malformed);
    }
    let purpose = Purpose::from_code(*code).ok_or(TokenError::Malformed)?;
    let (id, rest) = read_varint(rest).ok_or(TokenError::Malformed)?;
    let subscriber_id = id as i64;
    let claims = match purpose {
        Purpose::Unsubscribe => {
            let topic = std::str::from_utf8(rest).map_err(|_| TokenError::Malformed)?;
            if topic.is_empty() {
                return Err(TokenError::Malformed);
            }
            Claims {
                subscriber_id,
                topic: Some(topic.to_string()),
                issued_at: DateTime::UNIX_EPOCH,
            }
        }
        Purpose::Preferences => {
            if !rest.is_empty() {
                return Err(TokenError::Malformed);
            }
            Claims {
                subscriber_id,
                topic: None,
                issued_at: DateTime::UNIX_EPOCH,
            }
        }
        Purpose::Confirm => {
            let (secs, rest) = read_varint(rest).ok_or(TokenError::Malformed)?;
            if !rest.is_empty() {
                return Err(TokenError::Malformed);
            }
            let secs = i64::try_from(secs).map_err(|_| TokenError::Malformed)?;
            let issued_at = DateTime::from_timestamp(secs, 0).ok_or(TokenError::Malformed)?;
            Claims {
                subscriber_id,
                topic: None,
                issued_at,
            }
        }
        // Bounce tags are never link tokens.
        Purpose::Bounce => return Err(TokenError::Malformed),
    };
    Ok((purpose, claims))
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i as u32);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use chrono::TimeZone;

    pub(super) fn settings(secret: &str, previous: &[&str]) -> NewsletterSettings {
        NewsletterSettings {
            secret: Secret::new(secret),
            previous_secrets: previous.iter().map(|s| Secret::new(*s)).collect(),
            ..NewsletterSettings::default()
        }
    }

    pub(super) fn signer() -> TokenSigner {
        TokenSigner::from_settings(&settings("current-secret-0123456789", &[]))
    }

    pub(super) fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap()
    }

    #[test]
    fn tokens_round_trip_for_every_purpose() {
        let s = signer();
        let t = s.unsubscribe(42, "distributed-systems");
        let c = s.verify(&t, Purpose::Unsubscribe, now()).unwrap();
        assert_eq!(c.subscriber_id, 42);
        assert_eq!(c.topic.as_deref(), Some("distributed-systems"));

        let t = s.preferences(7_000_000_001);
        let c = s.verify(&t, Purpose::Preferences, now()).unwrap();
        assert_eq!(c.subscriber_id, 7_000_000_001);
        assert_eq!(c.topic, None);

        let issued = now() - Duration::hours(3);
        let t = s.confirm(9, issued);
        let c = s.verify(&t, Purpose::Confirm, now()).unwrap();
        assert_eq!(c.subscriber_id, 9);
        assert_eq!(c.issued_at, issued);
    }

    #[test]
    fn tokens_are_short_and_url_safe() {
        let s = signer();
        for t in [
            s.unsubscribe(i64::MAX, &"a".repeat(64)),
            s.preferences(123_456),
            s.confirm(123_456, now()),
        ] {
            assert!(t.len() <= 128, "{} chars: {t}", t.len());
            assert!(
                t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{t}"
            );
        }
        assert!(s.preferences(123_456).len() <= 30);
        assert!(s.unsubscribe(123_456, "distributed-systems").len() <= 60);
    }

    #[test]
    fn unsubscribe_tokens_are_stable_per_subscriber_and_topic() {
        let s = signer();
        assert_eq!(s.unsubscribe(1, "rust"), s.unsubscribe(1, "rust"));
        assert_ne!(s.unsubscribe(1, "rust"), s.unsubscribe(2, "rust"));
        assert_ne!(s.unsubscribe(1, "rust"), s.unsubscribe(1, "go"));
    }

    #[test]
    fn tampered_tokens_are_rejected() {
        let s = signer();
        let t = s.unsubscribe(42, "rust");
        let bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let forged = URL_SAFE_NO_PAD.encode(&b);
            assert_eq!(
                s.verify(&forged, Purpose::Unsubscribe, now()),
                Err(TokenError::BadSignature),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_token_cannot_be_moved_to_another_topic_or_subscriber() {
        let s = signer();
        let t = s.unsubscribe(42, "rust");
        let mut bytes = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let tag = bytes.split_off(bytes.len() - TAG_LEN);
        // Same tag, payload rewritten to another topic.
        let mut other = header(Purpose::Unsubscribe, 42);
        other.extend_from_slice(b"go");
        other.extend_from_slice(&tag);
        let forged = URL_SAFE_NO_PAD.encode(&other);
        assert_eq!(
            s.verify(&forged, Purpose::Unsubscribe, now()),
            Err(TokenError::BadSignature)
        );
        // Same tag, another subscriber.
        let mut other = header(Purpose::Unsubscribe, 43);
        other.extend_from_slice(b"rust");
        other.extend_from_slice(&tag);
        let forged = URL_SAFE_NO_PAD.encode(&other);
        assert_eq!(
            s.verify(&forged, Purpose::Unsubscribe, now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn truncated_and_garbage_tokens_are_rejected() {
        let s = signer();
        let t = s.preferences(42);
        for cut in 1..t.len() {
            let r = s.verify(&t[..cut], Purpose::Preferences, now());
            assert!(
                matches!(r, Err(TokenError::Malformed | TokenError::BadSignature)),
                "cut {cut}: {r:?}"
            );
        }
        for junk in ["", "!!!!", "a b", "%00", &"A".repeat(500)] {
            assert_eq!(
                s.verify(junk, Purpose::Preferences, now()),
                Err(TokenError::Malformed),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn wrong_purpose_is_rejected() {
        let s = signer();
        let t = s.preferences(42);
        assert_eq!(
            s.verify(&t, Purpose::Unsubscribe, now()),
            Err(TokenError::WrongPurpose)
        );
        let t = s.unsubscribe(42, "rust");
        assert_eq!(
            s.verify(&t, Purpose::Preferences, now()),
            Err(TokenError::WrongPurpose)
        );
        let t = s.confirm(42, now());
        assert_eq!(
            s.verify(&t, Purpose::Unsubscribe, now()),
            Err(TokenError::WrongPurpose)
        );
    }

    #[test]
    fn confirmation_tokens_expire_after_seven_days() {
        let s = signer();
        let issued = now();
        let t = s.confirm(5, issued);
        let limit = issued + Duration::days(CONFIRM_VALIDITY_DAYS);
        assert!(s.verify(&t, Purpose::Confirm, limit).is_ok());
        assert_eq!(
            s.verify(&t, Purpose::Confirm, limit + Duration::seconds(1)),
            Err(TokenError::Expired)
        );
        // Unsubscribe and preferences links never expire.
        let t = s.unsubscribe(5, "rust");
        assert!(
            s.verify(&t, Purpose::Unsubscribe, issued + Duration::days(3650))
                .is_ok()
        );
    }

    #[test]
    fn previous_secrets_are_still_accepted_after_rotation() {
        let old = TokenSigner::from_settings(&settings("old-secret-0123456789", &[]));
        let rotated = TokenSigner::from_settings(&settings(
            "new-secret-0123456789",
            &["old-secret-0123456789"],
        ));
        let other = TokenSigner::from_settings(&settings("new-secret-0123456789", &[]));
        let t = old.unsubscribe(3, "rust");
        assert_eq!(
            rotated
                .verify(&t, Purpose::Unsubscribe, now())
                .unwrap()
                .subscriber_id,
            3
        );
        assert_eq!(
            other.verify(&t, Purpose::Unsubscribe, now()),
            Err(TokenError::BadSignature)
        );
        // New tokens are signed with the current secret.
        let t = rotated.preferences(3);
        assert!(other.verify(&t, Purpose::Preferences, now()).is_ok());
        assert_eq!(
            old.verify(&t, Purpose::Preferences, now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let s =
            TokenSigner::from_settings(&settings("super-secret-value-123", &["older-one-456789"]));
        let shown = format!("{s:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(!shown.contains("older-one"), "{shown}");
    }
}
