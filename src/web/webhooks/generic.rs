//! `POST /webhooks/generic`: bounce and complaint events from any provider or script, as JSON
//! `{"event_id", "type": "bounce"|"complaint", "email", "hard", "status", "reason",
//! "message_id"}` signed with `X-Tidings-Signature: sha256=<hex HMAC-SHA256 of the raw body>`
//! keyed by `[bounces] webhook_secret` (compared in constant time). Without the secret the
//! route answers 404; a missing or wrong signature 401 and nothing changes; a body over
//! `MAX_WEBHOOK_BYTES` 413. An event goes through the store's bounce policy like a piped
//! bounce (source `webhook`), keyed by its `event_id`, so sending it twice changes nothing; an
//! unknown `type` is recorded as kind `unknown` and changes nothing. Not a browser form, so no
//! same-site check.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{Event, record_all};
use crate::bounce::Kind;
use crate::bounce::policy::Effect;
use crate::web::AppState;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-tidings-signature";

/// One event as sent; every field but `event_id` may be missing.
#[derive(Debug, Deserialize)]
struct GenericEvent {
    event_id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    hard: Option<bool>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
}

/// Whether `signature` (the header's value) is `sha256=<hex>` of `body` keyed by `secret`.
fn signed(secret: &str, body: &[u8], signature: Option<&str>) -> bool {
    let Some(hex_sig) = signature.and_then(|s| s.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// `POST /webhooks/generic`.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(secret) = state.settings.bounces.webhook_secret.as_ref() else {
        return StatusCode::NOT_FOUND;
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !signed(secret.expose(), &body, signature) {
        tracing::warn!("webhook: refused a request without a valid signature");
        return StatusCode::UNAUTHORIZED;
    }
    let event: GenericEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, "webhook: a signed body is not a generic event");
            return StatusCode::BAD_REQUEST;
        }
    };
    record_all(&state, &[(translate(event), body.clone())]).await
}

/// The event as the store records it: `type` bounce (hard or soft as `hard` says), complaint,
/// or anything else as unknown.
fn translate(event: GenericEvent) -> Event {
    let (kind, effect) = match event.kind.as_deref().map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("bounce") => (
            Kind::Bounce,
            if event.hard.unwrap_or(false) {
                Effect::Hard
            } else {
                Effect::Soft
            },
        ),
        Some(t) if t.eq_ignore_ascii_case("complaint") => (Kind::Complaint, Effect::Complaint),
        _ => (Kind::Unknown, Effect::None),
    };
    Event {
        email: event.email,
        status: event.status,
        reason: event.reason,
        message_id: event.message_id,
        provider_type: event.kind,
        ..Event::new("generic", event.event_id.trim()).is(kind, effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn only_the_right_signature_passes() {
        let good = sign("k", b"{}");
        assert!(signed("k", b"{}", Some(&good)));
        assert!(!signed("other", b"{}", Some(&good)));
        assert!(!signed("k", b"{ }", Some(&good)));
        assert!(!signed("k", b"{}", None));
        assert!(!signed("k", b"{}", Some("sha256=zz")));
        assert!(!signed(
            "k",
            b"{}",
            Some(good.trim_start_matches("sha256="))
        ));
    }
}
