//! `POST /webhooks/generic` through the real HTTP server on both backends: a signed hard bounce
//! marks its subscriber bounced and `subscribers add` then refuses the address; a wrong or
//! missing signature answers 401 and changes nothing; the same event twice is one event; a body
//! over 64 KiB answers 413; an unknown type answers 200 and is recorded as unknown; without
//! `[bounces] webhook_secret` the route is not there.

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tidings::domain::SubscriberStatus;
use tokio::sync::oneshot;

use super::TestApp;
use super::live::{TestDb, client, served, url};
use crate::support::cli::{TestEnv, stderr};
use crate::support::db::{Backend, per_backend};

pub(super) const SECRET: &str = "a-webhook-secret-for-the-tests-0123456789";

fn with_secret() -> String {
    format!("[bounces]\nwebhook_secret = \"{SECRET}\"\n")
}

fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` with `signature` (none when `None`) and returns the status code.
async fn post(addr: SocketAddr, body: &str, signature: Option<String>) -> u16 {
    let mut request = client()
        .post(url(addr, "/webhooks/generic"))
        .header("content-type", "application/json")
        // Not a browser: another site's Origin must not matter.
        .header("origin", "https://provider.example")
        .body(body.to_string());
    if let Some(signature) = signature {
        request = request.header("x-tidings-signature", signature);
    }
    request.send().await.unwrap().status().as_u16()
}

/// POSTs `body` signed with `SECRET` and returns the status code.
pub(super) async fn post_signed(addr: SocketAddr, body: &str) -> u16 {
    post(addr, body, Some(sign(SECRET, body.as_bytes()))).await
}

fn event(id: &str, kind: &str, email: &str, hard: bool) -> String {
    serde_json::json!({
        "event_id": id, "type": kind, "email": email, "hard": hard,
        "status": "5.1.1", "reason": "user unknown", "message_id": null,
    })
    .to_string()
}

async fn status(app: &TestApp, email: &str) -> SubscriberStatus {
    app.subscriber(email).await.unwrap().status
}

/// A served app with the confirmed subscriber gone@example.org.
async fn setup(
    backend: Backend,
    extra: &str,
) -> Option<(TestDb, TestApp, SocketAddr, oneshot::Sender<()>)> {
    let served = served(backend, extra).await?;
    served.1.add_confirmed("gone@example.org", &["rust"]).await;
    Some(served)
}

per_backend!(a_signed_hard_bounce_suppresses_once);
async fn a_signed_hard_bounce_suppresses_once(backend: Backend) {
    let Some((db, app, addr, _stop)) = setup(backend, &with_secret()).await else {
        return;
    };
    let label = app.label;
    let body = event("evt-1", "bounce", "gone@example.org", true);
    assert_eq!(post_signed(addr, &body).await, 200, "{label}");
    assert_eq!(
        status(&app, "gone@example.org").await,
        SubscriberStatus::Bounced,
        "{label}"
    );
    // The same event again: 200, still one event.
    assert_eq!(post_signed(addr, &body).await, 200, "{label}");
    let events = app.store.bounce_events().await.unwrap();
    assert_eq!(events.len(), 1, "{label}: {events:?}");
    assert_eq!(
        (
            events[0].source.as_str(),
            events[0].kind.as_str(),
            events[0].effect.as_str()
        ),
        ("webhook", "bounce", "hard"),
        "{label}"
    );
    assert_eq!(
        events[0].status_change.as_deref(),
        Some("bounced"),
        "{label}"
    );
    // Suppressed: the CLI refuses the address.
    let env = TestEnv::new(&db.url, "");
    let out = env.run(&["subscribers", "add", "gone@example.org", "--topic", "rust"]);
    assert!(
        !out.status.success(),
        "{label}: a bounced address was added again"
    );
    assert!(
        stderr(&out).contains("bounced"),
        "{label}: {}",
        stderr(&out)
    );
}

per_backend!(a_wrong_or_missing_signature_is_refused);
async fn a_wrong_or_missing_signature_is_refused(backend: Backend) {
    let Some((_db, app, addr, _stop)) = setup(backend, &with_secret()).await else {
        return;
    };
    let label = app.label;
    let body = event("evt-2", "bounce", "gone@example.org", true);
    let forged = sign("not-the-secret", body.as_bytes());
    assert_eq!(post(addr, &body, Some(forged)).await, 401, "{label}");
    assert_eq!(post(addr, &body, None).await, 401, "{label}");
    assert_eq!(
        post(addr, &body, Some("sha256=".into())).await,
        401,
        "{label}"
    );
    // Signed, then altered.
    let signature = sign(SECRET, body.as_bytes());
    let altered = body.replace("gone@", "other@");
    assert_eq!(post(addr, &altered, Some(signature)).await, 401, "{label}");
    assert_eq!(
        status(&app, "gone@example.org").await,
        SubscriberStatus::Confirmed,
        "{label}"
    );
    assert!(
        app.store.bounce_events().await.unwrap().is_empty(),
        "{label}"
    );
}

per_backend!(an_oversize_body_is_413_and_a_large_one_passes);
async fn an_oversize_body_is_413_and_a_large_one_passes(backend: Backend) {
    let Some((_db, app, addr, _stop)) = setup(backend, &with_secret()).await else {
        return;
    };
    let label = app.label;
    let oversize = serde_json::json!({
        "event_id": "evt-3", "type": "bounce", "email": "gone@example.org", "hard": true,
        "reason": "x".repeat(65 * 1024),
    })
    .to_string();
    let signature = sign(SECRET, oversize.as_bytes());
    assert_eq!(post(addr, &oversize, Some(signature)).await, 413, "{label}");
    assert_eq!(
        status(&app, "gone@example.org").await,
        SubscriberStatus::Confirmed,
        "{label}"
    );
    assert!(
        app.store.bounce_events().await.unwrap().is_empty(),
        "{label}"
    );
    // Above [web] max_body_bytes (16 KiB) but within the webhook's 64 KiB: accepted.
    let large = serde_json::json!({
        "event_id": "evt-4", "type": "bounce", "email": "gone@example.org", "hard": false,
        "reason": "x".repeat(40 * 1024),
    })
    .to_string();
    let signature = sign(SECRET, large.as_bytes());
    assert_eq!(post(addr, &large, Some(signature)).await, 200, "{label}");
    // One soft bounce counts but does not suppress.
    assert_eq!(
        status(&app, "gone@example.org").await,
        SubscriberStatus::Confirmed,
        "{label}"
    );
    assert_eq!(app.store.bounce_events().await.unwrap().len(), 1, "{label}");
}

per_backend!(an_unknown_type_is_recorded_and_changes_nothing);
async fn an_unknown_type_is_recorded_and_changes_nothing(backend: Backend) {
    let Some((_db, app, addr, _stop)) = setup(backend, &with_secret()).await else {
        return;
    };
    let label = app.label;
    let body = event("evt-5", "opened", "gone@example.org", true);
    assert_eq!(post_signed(addr, &body).await, 200, "{label}");
    assert_eq!(
        status(&app, "gone@example.org").await,
        SubscriberStatus::Confirmed,
        "{label}"
    );
    let events = app.store.bounce_events().await.unwrap();
    assert_eq!(events.len(), 1, "{label}: {events:?}");
    assert_eq!(
        (events[0].kind.as_str(), events[0].effect.as_str()),
        ("unknown", "none"),
        "{label}"
    );
    // A complaint marks the subscriber complained.
    let body = event("evt-6", "complaint", "gone@example.org", false);
    assert_eq!(post_signed(addr, &body).await, 200, "{label}");
    assert_eq!(
        status(&app, "gone@example.org").await,
        SubscriberStatus::Complained,
        "{label}"
    );
}

per_backend!(without_a_secret_the_route_is_not_there);
async fn without_a_secret_the_route_is_not_there(backend: Backend) {
    let Some((_db, app, addr, _stop)) = setup(backend, "").await else {
        return;
    };
    let label = app.label;
    let body = event("evt-7", "bounce", "gone@example.org", true);
    assert_eq!(
        post(addr, &body, Some(sign("", body.as_bytes()))).await,
        404,
        "{label}"
    );
    assert_eq!(
        status(&app, "gone@example.org").await,
        SubscriberStatus::Confirmed,
        "{label}"
    );
}
