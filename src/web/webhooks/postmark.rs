//! `POST /webhooks/postmark`: Postmark's bounce and spam-complaint webhooks. Postmark signs
//! nothing, so the route asks for the HTTP Basic credentials of `[bounces] postmark_username`
//! and `postmark_password` (written into the webhook URL on Postmark's side), compared in
//! constant time. One event per request, keyed by Postmark's `ID`. Bounce types: `HardBounce`
//! and `BadEmailAddress` are hard; `SoftBounce`, `Transient`, `DnsError`, `Blocked`,
//! `DMARCPolicy`, `ChallengeVerification` soft; `SpamComplaint` (or `RecordType`
//! `SpamComplaint`) a complaint; `AutoResponder` an auto-reply; the rest (`Unsubscribe`,
//! `ManuallyDeactivated`, ...) unknown, changing nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use super::{Event, record_all};
use crate::bounce::Kind;
use crate::bounce::policy::Effect;
use crate::config::BasicCredentials;
use crate::web::AppState;

/// One Postmark webhook body (the fields we read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PostmarkEvent {
    #[serde(default)]
    record_type: Option<String>,
    #[serde(rename = "ID", default)]
    id: Option<Value>,
    #[serde(rename = "Type", default)]
    kind: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    details: Option<String>,
}

/// `POST /webhooks/postmark`.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(credentials) = state.settings.bounces.postmark.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !authorized(credentials, given) {
        tracing::warn!("webhook postmark: refused a request without the right credentials");
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tidings webhooks\""),
            )],
        )
            .into_response();
    }
    let event: PostmarkEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, "webhook postmark: not a Postmark event");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    record_all(&state, &[(translate(event), body.clone())])
        .await
        .into_response()
}

/// Whether `header` (the `Authorization` value) carries `credentials` as HTTP Basic.
fn authorized(credentials: &BasicCredentials, header: Option<&str>) -> bool {
    let Some((scheme, encoded)) = header.and_then(|h| h.trim().split_once(' ')) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", credentials.username, credentials.password.expose());
    bool::from(given.as_slice().ct_eq(expected.as_bytes()))
}

/// The event as the store records it.
fn translate(event: PostmarkEvent) -> Event {
    let id = match &event.id {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let record_type = event.record_type.as_deref().unwrap_or_default();
    let kind = event.kind.as_deref().unwrap_or(record_type);
    let (kind_is, effect) = if record_type.eq_ignore_ascii_case("SpamComplaint") {
        (Kind::Complaint, Effect::Complaint)
    } else {
        match kind {
            "HardBounce" | "BadEmailAddress" => (Kind::Bounce, Effect::Hard),
            "SoftBounce"
            | "Transient"
            | "DnsError"
            | "Blocked"
            | "DMARCPolicy"
            | "ChallengeVerification" => (Kind::Bounce, Effect::Soft),
            "SpamComplaint" | "SpamNotification" => (Kind::Complaint, Effect::Complaint),
            "AutoResponder" => (Kind::AutoReply, Effect::None),
            _ => (Kind::Unknown, Effect::None),
        }
    };
    Event {
        email: event.email,
        reason: event.description.or(event.details),
        feedback_type: (kind_is == Kind::Complaint).then(|| "abuse".to_string()),
        provider_type: Some(kind.to_string()).filter(|k| !k.is_empty()),
        ..Event::new("postmark", id).is(kind_is, effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn only_the_configured_credentials_pass() {
        let credentials = BasicCredentials {
            username: "postmark".into(),
            password: Secret::new("pa:ss"),
        };
        assert!(authorized(&credentials, Some(&basic("postmark:pa:ss"))));
        assert!(authorized(
            &credentials,
            Some(&basic("postmark:pa:ss").replace("Basic", "basic"))
        ));
        assert!(!authorized(&credentials, Some(&basic("postmark:pa:s"))));
        assert!(!authorized(&credentials, Some(&basic("other:pa:ss"))));
        assert!(!authorized(&credentials, Some("Bearer x")));
        assert!(!authorized(&credentials, None));
    }
}
