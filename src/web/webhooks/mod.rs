//! Webhooks on `serve` that report bounces and complaints: `POST /webhooks/generic` (our own
//! signed JSON) and one route per provider, `ses` (Amazon SES through SNS), `postmark`,
//! `sendgrid` and `mailgun`. Each file verifies its provider's signature (or password) and
//! translates the provider's events into [`Event`]s; [`record`] hands each one to the same
//! ingest path as `tidings bounces ingest` (`inbound::Ingester::record_parsed`: matched by the
//! VERP tag of its envelope sender, our Message-ID, its recipient, in that order, then stored
//! through the store's policy, source `webhook`), keyed
//! by `webhook:<provider>:<the provider's event id>`, so a provider's retry changes nothing.
//!
//! Shared answers: the route of a provider whose credentials are not configured answers 404; a
//! bad or missing signature 401 and nothing changes; a body over the route's limit 413 (64 KiB,
//! [`MAX_WEBHOOK_BYTES`]; SES 512 KiB; SendGrid 1 MiB; each route's `RequestBodyLimitLayer`,
//! `super::router`); an event type we do not know 200, recorded
//! as kind `unknown`; a database error 503 so the provider retries. Not browser forms, so no
//! same-site check and no branded error pages.

pub(super) mod generic;
pub(super) mod mailgun;
pub(super) mod postmark;
pub(super) mod sendgrid;
pub(super) mod ses;
mod sns;

use axum::body::Bytes;
use axum::http::StatusCode;

use super::AppState;
use crate::bounce::Kind;
use crate::bounce::policy::Effect;
use crate::inbound::ParsedEvent;
use crate::store::Recorded;

pub use sns::SnsCertFetcher;

/// The largest body accepted on the generic, Postmark and Mailgun routes (their own limit,
/// above `[web] max_body_bytes`), enforced by the routes' `RequestBodyLimitLayer` before a
/// handler runs. SES and SendGrid send more at once and have limits of their own
/// (`ses::MAX_BODY_BYTES`, `sendgrid::MAX_BODY_BYTES`).
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// The longest event id accepted.
const MAX_EVENT_ID: usize = 200;

/// The longest reason kept (longer ones are cut at a character boundary).
const MAX_REASON: usize = 1000;

/// One provider event, translated into what the store records.
#[derive(Clone, Debug)]
struct Event {
    /// `generic`, `ses`, `postmark`, `sendgrid`, `mailgun`.
    provider: &'static str,
    /// The provider's id of the event, unique per provider.
    event_id: String,
    kind: Kind,
    effect: Effect,
    /// The recipient the event is about, as the provider names it.
    email: Option<String>,
    /// The enhanced status code, when the provider gives one.
    status: Option<String>,
    reason: Option<String>,
    /// A complaint's feedback type (`abuse`, ...).
    feedback_type: Option<String>,
    /// The Message-ID of the message the event is about, when the provider passes it on.
    message_id: Option<String>,
    /// The envelope sender (MAIL FROM) the message went out with, when the provider passes it
    /// on: with `[bounces] address` set, its VERP tag names the exact delivery.
    envelope_sender: Option<String>,
    /// The provider's own name for the event (`HardBounce`, `blocked`, `failed/permanent`).
    provider_type: Option<String>,
}

impl Event {
    /// An event of `provider` with id `event_id` that changes nothing until its fields are set.
    fn new(provider: &'static str, event_id: impl Into<String>) -> Event {
        Event {
            provider,
            event_id: event_id.into(),
            kind: Kind::Unknown,
            effect: Effect::None,
            email: None,
            status: None,
            reason: None,
            feedback_type: None,
            message_id: None,
            envelope_sender: None,
            provider_type: None,
        }
    }

    /// Sets what the event is and what it counts as.
    fn is(mut self, kind: Kind, effect: Effect) -> Event {
        self.kind = kind;
        self.effect = effect;
        self
    }
}

/// Whether an event id can key an event: not blank, at most [`MAX_EVENT_ID`] bytes.
fn usable_id(id: &str) -> bool {
    !id.trim().is_empty() && id.len() <= MAX_EVENT_ID
}

/// Records every event in order; 200 when all are stored (or were before), 400 when one has
/// no usable id, 503 at the first database error (the provider retries the request, and the
/// events already stored are then duplicates that change nothing).
async fn record_all(state: &AppState, events: &[(Event, Bytes)]) -> StatusCode {
    if events.iter().any(|(e, _)| !usable_id(&e.event_id)) {
        tracing::warn!("webhook: an event without a usable id");
        return StatusCode::BAD_REQUEST;
    }
    for (event, raw) in events {
        if let Err(e) = record(state, event, raw).await {
            tracing::error!(provider = event.provider, error = %e, "webhook: cannot record the event");
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    StatusCode::OK
}

/// Records `event` through the one ingest path (`inbound::Ingester::record_parsed`: matching,
/// then the store's policy).
async fn record(state: &AppState, event: &Event, raw: &[u8]) -> anyhow::Result<()> {
    let event_id = event.event_id.trim();
    let reason = event.reason.as_deref().map(cap_reason);
    let parsed = serde_json::json!({
        "provider": event.provider,
        "event_id": event_id,
        "type": event.provider_type,
        "kind": event.kind.as_str(),
        "email": event.email,
        "hard": event.effect == Effect::Hard,
        "status": event.status,
        "reason": reason,
        "feedback_type": event.feedback_type,
        "message_id": event.message_id,
        "envelope_sender": event.envelope_sender,
    });
    let key = format!("webhook:{}:{event_id}", event.provider);
    let kind = event.kind.as_str();
    let parsed_event = ParsedEvent {
        key: &key,
        kind,
        effect: event.effect,
        email: event.email.as_deref(),
        status: event.status.as_deref(),
        reason,
        message_id: event.message_id.as_deref(),
        envelope_sender: event.envelope_sender.as_deref(),
        parsed,
        raw,
    };
    let provider = event.provider;
    match state
        .ingester
        .record_parsed(parsed_event, state.now())
        .await?
    {
        Recorded::New { id, status_change } => {
            tracing::info!(
                provider,
                id,
                kind,
                ?status_change,
                "webhook: event recorded"
            );
        }
        Recorded::Duplicate => tracing::info!(provider, kind, "webhook: event already stored"),
    }
    Ok(())
}

/// `reason` cut to at most [`MAX_REASON`] bytes at a character boundary.
fn cap_reason(reason: &str) -> &str {
    let reason = reason.trim();
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_REASON);
        let cut = cap_reason(&long);
        assert!(cut.len() <= MAX_REASON && cut.len() >= MAX_REASON - 1);
        assert_eq!(cap_reason(" short "), "short");
    }

    #[test]
    fn event_ids_must_be_present_and_short() {
        assert!(usable_id("evt-1"));
        assert!(!usable_id("  "));
        assert!(!usable_id(&"x".repeat(MAX_EVENT_ID + 1)));
    }
}
