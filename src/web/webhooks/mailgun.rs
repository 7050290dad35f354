//! `POST /webhooks/mailgun`: Mailgun's HTTP webhooks (JSON). The body's `signature` object holds
//! `timestamp`, `token` and `signature`, the hex HMAC-SHA256 of timestamp and token keyed by
//! `[bounces] mailgun_signing_key` (checked in constant time). That signature does not cover the
//! event, so a request is also refused (401) when its timestamp is more than
//! [`MAX_AGE_SECS`] away from now, or when its token came before with another body (a replay;
//! the same body again is Mailgun's retry and passes, then changes nothing). `event-data`:
//! `failed` with severity `permanent` is a hard bounce, `temporary` a soft one; `complained` a
//! complaint; `delivered` a delivery report; the rest unknown. Keyed by `event-data.id`;
//! `envelope.sender` (our VERP address) or `message.headers.message-id` matches a delivery of
//! ours.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{Event, record_all};
use crate::bounce::Kind;
use crate::bounce::policy::Effect;
use crate::web::AppState;

/// How far a request's timestamp may be from now, either way.
pub const MAX_AGE_SECS: i64 = 15 * 60;

/// `POST /webhooks/mailgun`.
pub async fn receive(State(state): State<AppState>, body: Bytes) -> StatusCode {
    let Some(key) = state.settings.bounces.mailgun_signing_key.as_ref() else {
        return StatusCode::NOT_FOUND;
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!("webhook mailgun: not JSON");
        return StatusCode::BAD_REQUEST;
    };
    let field = |name: &str| {
        request
            .pointer(&format!("/signature/{name}"))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    };
    let (Some(timestamp), Some(token), Some(signature)) =
        (field("timestamp"), field("token"), field("signature"))
    else {
        tracing::warn!("webhook mailgun: refused a request without a signature");
        return StatusCode::UNAUTHORIZED;
    };
    if !signed(key.expose(), &timestamp, &token, &signature) {
        tracing::warn!("webhook mailgun: refused a request without a valid signature");
        return StatusCode::UNAUTHORIZED;
    }
    let now = state.now();
    let fresh = timestamp
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| (now.timestamp() - t).abs() <= MAX_AGE_SECS);
    if !fresh {
        tracing::warn!("webhook mailgun: refused a stale request");
        return StatusCode::UNAUTHORIZED;
    }
    // Kept a little longer than a timestamp is accepted, so a token cannot come back fresh.
    let forget_before = now - chrono::Duration::seconds(3 * MAX_AGE_SECS);
    let digest = hex::encode(Sha256::digest(&body));
    match state
        .store
        .remember_webhook_token(&format!("mailgun:{token}"), &digest, now, forget_before)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("webhook mailgun: refused a replayed token");
            return StatusCode::UNAUTHORIZED;
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook mailgun: cannot check the token");
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let Some(data) = request.get("event-data") else {
        return StatusCode::BAD_REQUEST;
    };
    record_all(&state, &[(translate(data), body.clone())]).await
}

/// Whether `signature` (hex) is HMAC-SHA256 of `timestamp` then `token` keyed by `key`.
fn signed(key: &str, timestamp: &str, token: &str, signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// `event-data` as the store records it.
fn translate(data: &Value) -> Event {
    let text = |pointer: &str| {
        data.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = text("/event").unwrap_or_default();
    let severity = text("/severity");
    let (kind, effect) = match (name.as_str(), severity.as_deref()) {
        ("failed", Some("permanent")) => (Kind::Bounce, Effect::Hard),
        ("failed", _) => (Kind::Bounce, Effect::Soft),
        ("complained", _) => (Kind::Complaint, Effect::Complaint),
        ("delivered", _) => (Kind::DeliveryReport, Effect::None),
        _ => (Kind::Unknown, Effect::None),
    };
    let provider_type = match &severity {
        Some(s) if name == "failed" => format!("{name}/{s}"),
        _ => name.clone(),
    };
    let status = text("/delivery-status/enhanced-code").or_else(|| {
        data.pointer("/delivery-status/enhanced-code")
            .and_then(Value::as_u64)
            .map(|n| n.to_string())
    });
    Event {
        email: text("/recipient"),
        status,
        reason: text("/delivery-status/description")
            .filter(|d| !d.trim().is_empty())
            .or_else(|| text("/delivery-status/message"))
            .or_else(|| text("/reason")),
        feedback_type: (kind == Kind::Complaint).then(|| "abuse".to_string()),
        message_id: text("/message/headers/message-id")
            .map(|m| m.trim().trim_matches(['<', '>']).to_string()),
        envelope_sender: text("/envelope/sender"),
        provider_type: Some(provider_type).filter(|t| !t.is_empty()),
        ..Event::new("mailgun", text("/id").unwrap_or_default()).is(kind, effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_timestamp_then_token() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000abc");
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(signed("key", "1700000000", "abc", &good));
        assert!(!signed("key", "1700000001", "abc", &good));
        assert!(!signed("other", "1700000000", "abc", &good));
        assert!(!signed("key", "1700000000", "abc", "zz"));
    }
}
