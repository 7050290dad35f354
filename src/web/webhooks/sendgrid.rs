//! `POST /webhooks/sendgrid`: SendGrid's signed Event Webhook. Each request carries
//! `X-Twilio-Email-Event-Webhook-Signature` (base64 of an ECDSA P-256 SHA-256 signature, DER)
//! over the `X-Twilio-Email-Event-Webhook-Timestamp` value followed by the raw body, checked
//! against `[bounces] sendgrid_public_key`. The body is a batch (a JSON array) of events, each
//! recorded on its own and keyed by its `sg_event_id`. Events: `bounce` of type `blocked` is a
//! soft bounce, any other `bounce` a hard one; `dropped` for a "Bounced Address" or "Invalid"
//! is hard, for a "Spam Reporting Address" a complaint, otherwise it changes nothing;
//! `deferred` is recorded and changes nothing; `spamreport` is a complaint; `delivered` a
//! delivery report; the rest (`open`, `click`, `processed`, ...) are recorded as unknown.
//! `smtp-id` (the Message-ID as sent) matches a delivery of ours.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{Event, record_all};
use crate::bounce::Kind;
use crate::bounce::policy::Effect;
use crate::web::AppState;

/// The largest body accepted: SendGrid posts a batch every 30 seconds or once it reaches
/// 768 KB, whichever comes first.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";

/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// `POST /webhooks/sendgrid`.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(key) = state.settings.bounces.sendgrid_public_key.as_deref() else {
        return StatusCode::NOT_FOUND;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !signed(
        key,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
    ) {
        tracing::warn!("webhook sendgrid: refused a request without a valid signature");
        return StatusCode::UNAUTHORIZED;
    }
    let batch: Vec<Value> = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            tracing::warn!(error = %e, "webhook sendgrid: not a batch of events");
            return StatusCode::BAD_REQUEST;
        }
    };
    let events: Vec<(Event, Bytes)> = batch
        .iter()
        .map(|event| (translate(event), Bytes::from(event.to_string())))
        .collect();
    record_all(&state, &events).await
}

/// Whether `signature` is the key's signature of `timestamp` followed by `body`.
fn signed(key: &[u8], timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> bool {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return false;
    };
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(&message, &signature)
        .is_ok()
}

/// One event of the batch as the store records it.
fn translate(event: &Value) -> Event {
    let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_string);
    let id = text("sg_event_id").unwrap_or_else(|| {
        // Older events have no id: the event itself is its key.
        hex::encode(Sha256::digest(event.to_string().as_bytes()))
    });
    let name = text("event").unwrap_or_default();
    let bounce_type = text("type");
    let reason = text("reason").or_else(|| text("response"));
    let (kind, effect) = match name.as_str() {
        "bounce" if bounce_type.as_deref() == Some("blocked") => (Kind::Bounce, Effect::Soft),
        "bounce" => (Kind::Bounce, Effect::Hard),
        "dropped" => {
            let why = reason.as_deref().unwrap_or_default();
            if why.contains("Bounced Address")
                || (why.starts_with("Invalid") && !why.contains("SMTPAPI"))
            {
                (Kind::Bounce, Effect::Hard)
            } else if why.contains("Spam Reporting Address") {
                (Kind::Complaint, Effect::Complaint)
            } else {
                (Kind::Bounce, Effect::None)
            }
        }
        "deferred" => (Kind::Bounce, Effect::None),
        "spamreport" => (Kind::Complaint, Effect::Complaint),
        "delivered" => (Kind::DeliveryReport, Effect::None),
        _ => (Kind::Unknown, Effect::None),
    };
    let provider_type = match &bounce_type {
        Some(t) if name == "bounce" => format!("{name}/{t}"),
        _ => name.clone(),
    };
    Event {
        email: text("email"),
        status: text("status"),
        reason,
        feedback_type: (kind == Kind::Complaint).then(|| "abuse".to_string()),
        message_id: text("smtp-id").map(|m| m.trim().trim_matches(['<', '>']).to_string()),
        provider_type: Some(provider_type).filter(|t| !t.is_empty()),
        ..Event::new("sendgrid", id).is(kind, effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_map_to_effects() {
        let effect = |v: Value| translate(&v).effect;
        assert_eq!(
            effect(json!({"event": "bounce", "type": "bounce"})),
            Effect::Hard
        );
        assert_eq!(
            effect(json!({"event": "bounce", "type": "blocked"})),
            Effect::Soft
        );
        assert_eq!(
            effect(json!({"event": "dropped", "reason": "Bounced Address"})),
            Effect::Hard
        );
        assert_eq!(
            effect(json!({"event": "dropped", "reason": "Unsubscribed Address"})),
            Effect::None
        );
        assert_eq!(effect(json!({"event": "spamreport"})), Effect::Complaint);
        assert_eq!(effect(json!({"event": "deferred"})), Effect::None);
        assert_eq!(translate(&json!({"event": "open"})).kind, Kind::Unknown);
        // Without an id the event's own text keys it, the same each time.
        let e = json!({"event": "bounce", "email": "a@example.org"});
        assert_eq!(translate(&e).event_id, translate(&e).event_id);
    }
}
