//! `POST /webhooks/generic`: bounce and complaint events from any provider or script, as JSON
//! `{"event_id", "type": "bounce"|"complaint", "email", "hard", "status", "reason",
//! "message_id"}` signed with `X-Tidings-Signature: sha256=<hex HMAC-SHA256 of the raw body>`
//! keyed by `[bounces] webhook_secret` (compared in constant time). Without the secret the
//! route answers 404; a missing or wrong signature 401 and nothing changes; a body over
//! [`MAX_WEBHOOK_BYTES`] 413. An event goes through the store's bounce policy like a piped
//! bounce (source `webhook`), keyed by its `event_id`, so sending it twice changes nothing; an
//! unknown `type` is recorded as kind `unknown` and changes nothing. Not a browser form, so no
//! same-site check.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::AppState;
use crate::bounce::our_message;
use crate::bounce::policy::{Effect, SoftLimit};
use crate::domain::SubscriberEmail;
use crate::store::{NewBounceEvent, Recorded};

/// The largest body accepted (its own limit, above `[web] max_body_bytes`), enforced by the
/// route's `RequestBodyLimitLayer` (`super::router`) before this handler runs.
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-tidings-signature";

/// The longest `event_id` accepted.
const MAX_EVENT_ID: usize = 200;

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
pub async fn generic(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> StatusCode {
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
    let event_id = event.event_id.trim();
    if event_id.is_empty() || event_id.len() > MAX_EVENT_ID {
        return StatusCode::BAD_REQUEST;
    }
    match record(&state, &event, event_id, &body).await {
        Ok(()) => StatusCode::OK,
        Err(e) => {
            tracing::error!(error = %e, "webhook: cannot record the event");
            // The provider retries; the event id keeps the retry from counting twice.
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// Matches and records `event` through the store's policy.
async fn record(
    state: &AppState,
    event: &GenericEvent,
    event_id: &str,
    raw: &[u8],
) -> anyhow::Result<()> {
    let (kind, effect) = match event.kind.as_deref().map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("bounce") => (
            "bounce",
            if event.hard.unwrap_or(false) {
                Effect::Hard
            } else {
                Effect::Soft
            },
        ),
        Some(t) if t.eq_ignore_ascii_case("complaint") => ("complaint", Effect::Complaint),
        _ => ("unknown", Effect::None),
    };
    let email = event
        .email
        .as_deref()
        .and_then(|e| SubscriberEmail::parse(e).ok());
    let ours = event.message_id.as_deref().and_then(our_message);
    let recipients: Vec<SubscriberEmail> = email.into_iter().collect();
    let matched = state
        .store
        .match_report(None, ours.as_ref(), &recipients)
        .await?;
    let parsed = serde_json::json!({
        "event_id": event_id,
        "type": event.kind,
        "email": event.email,
        "hard": event.hard,
        "status": event.status,
        "reason": event.reason,
        "message_id": event.message_id,
        "delivery_id": matched.delivery_id,
    })
    .to_string();
    let key = format!("webhook:generic:{event_id}");
    let bounces = &state.settings.bounces;
    let rule = SoftLimit {
        limit: bounces.soft_limit,
        window_days: bounces.soft_window_days,
    };
    let new = NewBounceEvent {
        message_key: &key,
        source: "webhook",
        kind,
        effect,
        email: event.email.as_deref(),
        status: event.status.as_deref(),
        reason: event.reason.as_deref(),
        parsed: &parsed,
        raw,
        matched,
    };
    match state
        .store
        .record_bounce_event(&new, rule, state.now())
        .await?
    {
        Recorded::New { id, status_change } => {
            tracing::info!(id, kind, ?status_change, "webhook: event recorded");
        }
        Recorded::Duplicate => tracing::info!(kind, "webhook: event already stored"),
    }
    Ok(())
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
