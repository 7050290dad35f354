//! `POST /webhooks/ses`: Amazon SES bounce, complaint and delivery notifications, delivered by
//! an SNS topic's HTTPS subscription. Every message must come from a topic listed in
//! `[bounces] ses_topic_arns` (else 403: anyone can point a topic of their own here) and carry
//! a valid SNS signature (else 401) by the certificate at its `SigningCertURL`, which must be an
//! SNS URL (`sns.rs`). A `SubscriptionConfirmation` is confirmed by fetching its `SubscribeURL`
//! (the same URL rule); an `UnsubscribeConfirmation` is logged and left alone; a `Notification`
//! is read as SES's JSON: `Bounce` with bounceType `Permanent` is a hard bounce, `Transient` or
//! `Undetermined` a soft one; `Complaint` a complaint with its `complaintFeedbackType`;
//! `Delivery` a delivery report; anything else is recorded as unknown. One event per recipient,
//! keyed by the SNS MessageId (and the recipient's place after the first). `mail.source`, the
//! envelope sender as submitted (our VERP address), or `mail.commonHeaders.messageId` matches a
//! delivery of ours.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::sns::{self, FetchError, Signed};
use super::{Event, record_all};
use crate::bounce::Kind;
use crate::bounce::policy::Effect;
use crate::web::AppState;

/// The largest body accepted: SNS messages carry up to 256 KB, which JSON escaping in the
/// envelope can grow.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// An SNS message as posted (field names as SNS writes them).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMessage {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    #[serde(default)]
    subject: Option<String>,
    message: String,
    timestamp: String,
    #[serde(default)]
    signature_version: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(rename = "SigningCertURL", default)]
    signing_cert_url: Option<String>,
    #[serde(rename = "SubscribeURL", default)]
    subscribe_url: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// `POST /webhooks/ses`.
pub async fn receive(State(state): State<AppState>, body: Bytes) -> StatusCode {
    let topics = &state.settings.bounces.ses_topic_arns;
    if topics.is_empty() {
        return StatusCode::NOT_FOUND;
    }
    let message: SnsMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(error = %e, "webhook ses: not an SNS message");
            return StatusCode::BAD_REQUEST;
        }
    };
    if !topics.contains(&message.topic_arn) {
        tracing::warn!(topic = %message.topic_arn, "webhook ses: a topic not in bounces.ses_topic_arns");
        return StatusCode::FORBIDDEN;
    }
    match verified(&state, &message).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("webhook ses: refused a message without a valid SNS signature");
            return StatusCode::UNAUTHORIZED;
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook ses: cannot fetch the signing certificate");
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    match message.kind.as_str() {
        "SubscriptionConfirmation" => {
            let url = message.subscribe_url.as_deref().unwrap_or_default();
            match state.sns.confirm(url).await {
                Ok(()) => {
                    tracing::info!(topic = %message.topic_arn, "webhook ses: subscription confirmed");
                    StatusCode::OK
                }
                Err(FetchError::Refused) => {
                    tracing::warn!("webhook ses: a SubscribeURL that is not on SNS");
                    StatusCode::BAD_REQUEST
                }
                Err(e) => {
                    tracing::error!(error = %e, "webhook ses: cannot confirm the subscription");
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }
        "UnsubscribeConfirmation" => {
            tracing::warn!(topic = %message.topic_arn, "webhook ses: the topic unsubscribed this endpoint");
            StatusCode::OK
        }
        _ => {
            // One body for every recipient's event: `Bytes` clones share it.
            let events: Vec<(Event, Bytes)> = events(&message)
                .into_iter()
                .map(|e| (e, body.clone()))
                .collect();
            record_all(&state, &events).await
        }
    }
}

/// Whether `message` is signed by SNS: its certificate URL allowed, its signature version known
/// and valid. An error when the certificate cannot be fetched (SNS retries).
async fn verified(state: &AppState, message: &SnsMessage) -> Result<bool, FetchError> {
    let (Some(signature), Some(version), Some(cert_url)) = (
        message.signature.as_deref(),
        message.signature_version.as_deref(),
        message.signing_cert_url.as_deref(),
    ) else {
        return Ok(false);
    };
    let signed = Signed {
        kind: &message.kind,
        message: &message.message,
        message_id: &message.message_id,
        subject: message.subject.as_deref(),
        subscribe_url: message.subscribe_url.as_deref(),
        timestamp: &message.timestamp,
        token: message.token.as_deref(),
        topic_arn: &message.topic_arn,
    };
    let Some(canonical) = sns::canonical_string(&signed) else {
        return Ok(false);
    };
    let pem = match state.sns.certificate(cert_url).await {
        Ok(pem) => pem,
        Err(FetchError::Refused) => {
            tracing::warn!("webhook ses: a SigningCertURL that is not on SNS");
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    Ok(sns::verify(&pem, version, &canonical, signature))
}

/// The events of a notification: one per recipient, or one unknown event.
fn events(message: &SnsMessage) -> Vec<Event> {
    let id = message.message_id.trim();
    let unknown = || vec![Event::new("ses", id)];
    let Ok(ses) = serde_json::from_str::<Value>(&message.message) else {
        return unknown();
    };
    let text = |pointer: &str| {
        ses.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let kind = text("/notificationType").or_else(|| text("/eventType"));
    let message_id = text("/mail/commonHeaders/messageId")
        .map(|m| m.trim().trim_matches(['<', '>']).to_string());
    // The envelope sender as submitted: our VERP address when `[bounces] address` is set.
    let source = text("/mail/source");
    let list = |pointer: &str| -> Vec<Value> {
        ses.pointer(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    match kind.as_deref() {
        Some("Bounce") => {
            let bounce_type = text("/bounce/bounceType");
            let sub_type = text("/bounce/bounceSubType");
            let effect = match bounce_type.as_deref() {
                Some("Permanent") => Effect::Hard,
                _ => Effect::Soft,
            };
            let provider_type = format!(
                "Bounce/{}/{}",
                bounce_type.as_deref().unwrap_or("?"),
                sub_type.as_deref().unwrap_or("?")
            );
            for r in list("/bounce/bouncedRecipients") {
                let field = |name: &str| r.get(name).and_then(Value::as_str).map(str::to_string);
                out.push(Event {
                    email: field("emailAddress"),
                    status: field("status"),
                    reason: field("diagnosticCode").or_else(|| sub_type.clone()),
                    message_id: message_id.clone(),
                    envelope_sender: source.clone(),
                    provider_type: Some(provider_type.clone()),
                    ..Event::new("ses", id).is(Kind::Bounce, effect)
                });
            }
        }
        Some("Complaint") => {
            let feedback = text("/complaint/complaintFeedbackType");
            for r in list("/complaint/complainedRecipients") {
                out.push(Event {
                    email: r
                        .get("emailAddress")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    reason: Some("complaint".into()),
                    feedback_type: Some(feedback.clone().unwrap_or_else(|| "abuse".into())),
                    message_id: message_id.clone(),
                    envelope_sender: source.clone(),
                    provider_type: Some("Complaint".into()),
                    ..Event::new("ses", id).is(Kind::Complaint, Effect::Complaint)
                });
            }
        }
        Some("Delivery") => {
            let reply = text("/delivery/smtpResponse");
            for r in list("/delivery/recipients") {
                out.push(Event {
                    email: r.as_str().map(str::to_string),
                    reason: reply.clone(),
                    message_id: message_id.clone(),
                    envelope_sender: source.clone(),
                    provider_type: Some("Delivery".into()),
                    ..Event::new("ses", id).is(Kind::DeliveryReport, Effect::None)
                });
            }
        }
        other => {
            let mut event = Event::new("ses", id);
            event.provider_type = other.map(str::to_string);
            event.message_id = message_id;
            event.envelope_sender = source;
            return vec![event];
        }
    }
    if out.is_empty() {
        return unknown();
    }
    // One key per recipient: the first keeps the MessageId, the others add their place.
    for (i, event) in out.iter_mut().enumerate().skip(1) {
        event.event_id = format!("{id}/{i}");
    }
    out
}
