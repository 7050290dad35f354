//! `POST /webhooks/postmark`, `/webhooks/sendgrid` and `/webhooks/mailgun` through the real HTTP
//! server, each request signed as the provider signs it: Postmark's HTTP Basic credentials,
//! SendGrid's ECDSA P-256 signature over timestamp and body (a key made for the test), Mailgun's
//! HMAC-SHA256 of timestamp and token. For each: a hard bounce suppresses, a complaint marks
//! complained, a soft bounce only counts, the same event again changes nothing, a forged
//! request answers 401 and changes nothing, a body over 64 KiB 413, and without credentials the
//! route is not there. Mailgun also refuses stale timestamps and replayed tokens; a database
//! error answers 503 and the provider's retry is then stored once.

use std::net::SocketAddr;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tidings::domain::SubscriberStatus;
use tokio::sync::oneshot;

use super::TestApp;
use super::live::{TestDb, client, serve, url};
use crate::support::cli::{TestEnv, stdout};
use crate::support::db::{Backend, per_backend};

const POSTMARK_USER: &str = "postmark-hooks";
const POSTMARK_PASSWORD: &str = "a-postmark-password-0123456789";
pub(super) const MAILGUN_KEY: &str = "key-mailgun-signing-0123456789abcdef";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `[bounces]` keys that turn all three routes on, with SendGrid's key from `sendgrid`.
pub(super) fn configured(sendgrid: &EcdsaKeyPair) -> String {
    let public = sendgrid.public_key().as_der().unwrap();
    format!(
        "[bounces]\npostmark_username = \"{POSTMARK_USER}\"\npostmark_password = \"{POSTMARK_PASSWORD}\"\n\
         sendgrid_public_key = \"{}\"\nmailgun_signing_key = \"{MAILGUN_KEY}\"\n",
        b64(public.as_ref())
    )
}

struct Setup {
    db: TestDb,
    app: TestApp,
    addr: SocketAddr,
    sendgrid: EcdsaKeyPair,
    _stop: oneshot::Sender<()>,
}

/// A served app with every provider configured (or none when `configure` is false) and three
/// confirmed subscribers: hard@, soft@ and spam@example.org.
async fn setup(backend: Backend, configure: bool) -> Option<Setup> {
    let db = TestDb::on(backend).await?;
    let sendgrid = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let extra = if configure {
        configured(&sendgrid)
    } else {
        String::new()
    };
    let app = db.app(&extra).await;
    for email in ["hard@example.org", "soft@example.org", "spam@example.org"] {
        app.add_confirmed(email, &["rust"]).await;
    }
    let (addr, stop) = serve(app.state.clone()).await;
    Some(Setup {
        db,
        app,
        addr,
        sendgrid,
        _stop: stop,
    })
}

async fn status(app: &TestApp, email: &str) -> SubscriberStatus {
    app.subscriber(email).await.unwrap().status
}

async fn statuses(app: &TestApp) -> [SubscriberStatus; 3] {
    [
        status(app, "hard@example.org").await,
        status(app, "soft@example.org").await,
        status(app, "spam@example.org").await,
    ]
}

const AFTER: [SubscriberStatus; 3] = [
    SubscriberStatus::Bounced,
    SubscriberStatus::Confirmed,
    SubscriberStatus::Complained,
];

const BEFORE: [SubscriberStatus; 3] = [SubscriberStatus::Confirmed; 3];

/// `tidings bounces list --json`, as the operator reads it: (email, kind, effect, change).
fn bounces_list(db: &TestDb) -> Vec<(String, String, String, String)> {
    let env = TestEnv::new(&db.url, "");
    let out = env.run(&["bounces", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    rows.iter()
        .map(|r| {
            assert_eq!(r["source"], "webhook");
            (
                text(&r["email"]),
                text(&r["kind"]),
                text(&r["effect"]),
                text(&r["status_change"]),
            )
        })
        .collect()
}

fn expected_rows() -> Vec<(String, String, String, String)> {
    [
        ("soft@example.org", "bounce", "soft", "-"),
        ("hard@example.org", "bounce", "hard", "bounced"),
        ("spam@example.org", "complaint", "complaint", "complained"),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect()
}

// --- Postmark ---------------------------------------------------------------------------------

pub(super) fn postmark_bounce(id: u64, kind: &str, email: &str) -> String {
    let record = if kind == "SpamComplaint" {
        "SpamComplaint"
    } else {
        "Bounce"
    };
    serde_json::json!({
        "RecordType": record, "ID": id, "Type": kind, "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": email,
        "Description": "The server was unable to deliver your message", "Details": "smtp;550 5.1.1",
        "BouncedAt": "2026-12-01T19:00:00Z", "Inactive": true, "CanActivate": true,
    })
    .to_string()
}

pub(super) async fn post_postmark(addr: SocketAddr, body: &str, user_pass: Option<&str>) -> u16 {
    let mut request = client()
        .post(url(addr, "/webhooks/postmark"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(user_pass) = user_pass {
        request = request.header(
            "authorization",
            format!("Basic {}", b64(user_pass.as_bytes())),
        );
    }
    request.send().await.unwrap().status().as_u16()
}

pub(super) fn postmark_credentials() -> String {
    format!("{POSTMARK_USER}:{POSTMARK_PASSWORD}")
}

per_backend!(postmark_bounces_and_complaints);
async fn postmark_bounces_and_complaints(backend: Backend) {
    let Some(s) = setup(backend, true).await else {
        return;
    };
    let label = s.app.label;
    let auth = postmark_credentials();
    for body in [
        postmark_bounce(101, "SoftBounce", "soft@example.org"),
        postmark_bounce(102, "HardBounce", "hard@example.org"),
        postmark_bounce(103, "SpamComplaint", "spam@example.org"),
        // Postmark retries: the same event again.
        postmark_bounce(102, "HardBounce", "hard@example.org"),
    ] {
        assert_eq!(
            post_postmark(s.addr, &body, Some(&auth)).await,
            200,
            "{label}"
        );
    }
    assert_eq!(statuses(&s.app).await, AFTER, "{label}");
    assert_eq!(bounces_list(&s.db), expected_rows(), "{label}");
}

#[tokio::test]
async fn postmark_refuses_wrong_credentials() {
    let Some(s) = setup(Backend::Sqlite, true).await else {
        return;
    };
    let body = postmark_bounce(201, "HardBounce", "hard@example.org");
    assert_eq!(post_postmark(s.addr, &body, None).await, 401);
    let wrong = format!("{POSTMARK_USER}:not-the-password");
    assert_eq!(post_postmark(s.addr, &body, Some(&wrong)).await, 401);
    let oversize = serde_json::json!({
        "RecordType": "Bounce", "ID": 202, "Type": "HardBounce", "Email": "hard@example.org",
        "Details": "x".repeat(65 * 1024),
    })
    .to_string();
    let auth = postmark_credentials();
    assert_eq!(post_postmark(s.addr, &oversize, Some(&auth)).await, 413);
    assert_eq!(statuses(&s.app).await, BEFORE);
    assert!(s.app.store.bounce_events().await.unwrap().is_empty());
}

// --- SendGrid ---------------------------------------------------------------------------------

pub(super) fn sendgrid_event(
    id: &str,
    event: &str,
    kind: Option<&str>,
    email: &str,
) -> serde_json::Value {
    let mut value = serde_json::json!({
        "email": email, "timestamp": 1_764_615_600, "event": event, "sg_event_id": id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "status": "5.1.1",
    });
    if let Some(kind) = kind {
        value["type"] = kind.into();
    }
    value
}

/// POSTs `body` with SendGrid's headers, signed by `key` over `timestamp` + `body` when `key`
/// is given.
pub(super) async fn post_sendgrid(addr: SocketAddr, body: &str, key: Option<&EcdsaKeyPair>) -> u16 {
    let timestamp = "1764615600";
    let mut request = client()
        .post(url(addr, "/webhooks/sendgrid"))
        .header("content-type", "application/json")
        .header("x-twilio-email-event-webhook-timestamp", timestamp)
        .body(body.to_string());
    if let Some(key) = key {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body.as_bytes());
        let signature = key
            .sign(&aws_lc_rs::rand::SystemRandom::new(), &signed)
            .unwrap();
        request = request.header(
            "x-twilio-email-event-webhook-signature",
            b64(signature.as_ref()),
        );
    }
    request.send().await.unwrap().status().as_u16()
}

per_backend!(sendgrid_bounces_and_complaints);
async fn sendgrid_bounces_and_complaints(backend: Backend) {
    let Some(s) = setup(backend, true).await else {
        return;
    };
    let label = s.app.label;
    // One batch, as SendGrid sends them; an event we do not act on rides along.
    let batch = serde_json::json!([
        sendgrid_event("sg-1", "bounce", Some("blocked"), "soft@example.org"),
        sendgrid_event("sg-2", "bounce", Some("bounce"), "hard@example.org"),
        sendgrid_event("sg-3", "spamreport", None, "spam@example.org"),
    ])
    .to_string();
    assert_eq!(
        post_sendgrid(s.addr, &batch, Some(&s.sendgrid)).await,
        200,
        "{label}"
    );
    // The same batch again (SendGrid retries): nothing new.
    assert_eq!(
        post_sendgrid(s.addr, &batch, Some(&s.sendgrid)).await,
        200,
        "{label}"
    );
    assert_eq!(statuses(&s.app).await, AFTER, "{label}");
    assert_eq!(bounces_list(&s.db), expected_rows(), "{label}");
}

#[tokio::test]
async fn sendgrid_refuses_forged_signatures_and_takes_large_batches() {
    let Some(s) = setup(Backend::Sqlite, true).await else {
        return;
    };
    let batch = serde_json::json!([sendgrid_event(
        "sg-4",
        "bounce",
        Some("bounce"),
        "hard@example.org"
    )])
    .to_string();
    let other = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    assert_eq!(post_sendgrid(s.addr, &batch, Some(&other)).await, 401);
    assert_eq!(post_sendgrid(s.addr, &batch, None).await, 401);
    // Signed, then altered.
    let altered = batch.replace("hard@", "soft@");
    let timestamp = "1764615600";
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(batch.as_bytes());
    let signature = s
        .sendgrid
        .sign(&aws_lc_rs::rand::SystemRandom::new(), &signed)
        .unwrap();
    let code = client()
        .post(url(s.addr, "/webhooks/sendgrid"))
        .header("x-twilio-email-event-webhook-timestamp", timestamp)
        .header(
            "x-twilio-email-event-webhook-signature",
            b64(signature.as_ref()),
        )
        .body(altered)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(code, 401);
    // SendGrid posts batches of up to 768 KB: over 1 MiB is 413 before anything is read.
    let oversize = serde_json::json!([
        sendgrid_event("sg-5", "bounce", Some("bounce"), "hard@example.org"),
        {"event": "processed", "padding": "x".repeat(1025 * 1024)},
    ])
    .to_string();
    assert_eq!(
        post_sendgrid(s.addr, &oversize, Some(&s.sendgrid)).await,
        413
    );
    assert_eq!(statuses(&s.app).await, BEFORE);
    assert!(s.app.store.bounce_events().await.unwrap().is_empty());
    // A batch of 768 KB passes, each event stored.
    let mut events: Vec<serde_json::Value> = (0..2)
        .map(|n| {
            let mut e = sendgrid_event(
                &format!("sg-big-{n}"),
                "processed",
                None,
                "soft@example.org",
            );
            e["padding"] = "x".repeat(384 * 1024 - 1024).into();
            e
        })
        .collect();
    events.push(sendgrid_event(
        "sg-big-2",
        "bounce",
        Some("blocked"),
        "soft@example.org",
    ));
    let large = serde_json::Value::from(events).to_string();
    assert!(large.len() > 700 * 1024, "{}", large.len());
    assert_eq!(post_sendgrid(s.addr, &large, Some(&s.sendgrid)).await, 200);
    assert_eq!(s.app.store.bounce_events().await.unwrap().len(), 3);
    assert_eq!(statuses(&s.app).await, BEFORE);
}

per_backend!(a_database_error_answers_503_and_the_retry_counts_once);
async fn a_database_error_answers_503_and_the_retry_counts_once(backend: Backend) {
    let Some(s) = setup(backend, true).await else {
        return;
    };
    let label = s.app.label;
    let batch = serde_json::json!([
        sendgrid_event("sg-6", "bounce", Some("bounce"), "hard@example.org"),
        sendgrid_event("sg-7", "delivered", None, "soft@example.org"),
    ])
    .to_string();
    s.db.fail_on("bounce_events", "INSERT").await;
    assert_eq!(
        post_sendgrid(s.addr, &batch, Some(&s.sendgrid)).await,
        503,
        "{label}"
    );
    assert_eq!(statuses(&s.app).await, BEFORE, "{label}");
    s.db.heal("bounce_events").await;
    assert_eq!(
        post_sendgrid(s.addr, &batch, Some(&s.sendgrid)).await,
        200,
        "{label}"
    );
    assert_eq!(
        post_sendgrid(s.addr, &batch, Some(&s.sendgrid)).await,
        200,
        "{label}"
    );
    assert_eq!(
        status(&s.app, "hard@example.org").await,
        SubscriberStatus::Bounced,
        "{label}"
    );
    let events = s.app.store.bounce_events().await.unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.effect.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![("bounce", "hard"), ("delivery-report", "none")],
        "{label}"
    );
}

// --- Mailgun ----------------------------------------------------------------------------------

/// A Mailgun webhook body for `event_data`, signed with `key` at `timestamp` with `token`.
pub(super) fn mailgun_body(
    key: &str,
    timestamp: i64,
    token: &str,
    event_data: serde_json::Value,
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.to_string().as_bytes());
    mac.update(token.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    serde_json::json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
        "event-data": event_data,
    })
    .to_string()
}

pub(super) fn mailgun_event(
    id: &str,
    event: &str,
    severity: Option<&str>,
    email: &str,
) -> serde_json::Value {
    let mut value = serde_json::json!({
        "id": id, "event": event, "recipient": email, "timestamp": 1_764_615_600.5,
        "reason": "bounce", "log-level": "error",
        "delivery-status": {"code": 550, "enhanced-code": "5.1.1",
                            "message": "5.1.1 The email account does not exist", "description": ""},
        "message": {"headers": {"message-id": "20261201190000.1.ABCDEF@mg.example.org"}},
    });
    if let Some(severity) = severity {
        value["severity"] = severity.into();
    }
    value
}

pub(super) async fn post_mailgun(addr: SocketAddr, body: &str) -> u16 {
    client()
        .post(url(addr, "/webhooks/mailgun"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

per_backend!(mailgun_bounces_and_complaints);
async fn mailgun_bounces_and_complaints(backend: Backend) {
    let Some(s) = setup(backend, true).await else {
        return;
    };
    let label = s.app.label;
    let hard = mailgun_body(
        MAILGUN_KEY,
        now(),
        "token-2",
        mailgun_event("mg-2", "failed", Some("permanent"), "hard@example.org"),
    );
    for body in [
        mailgun_body(
            MAILGUN_KEY,
            now(),
            "token-1",
            mailgun_event("mg-1", "failed", Some("temporary"), "soft@example.org"),
        ),
        hard.clone(),
        mailgun_body(
            MAILGUN_KEY,
            now(),
            "token-3",
            mailgun_event("mg-3", "complained", None, "spam@example.org"),
        ),
        // Mailgun's retry of the same request: taken, and changes nothing.
        hard,
    ] {
        assert_eq!(post_mailgun(s.addr, &body).await, 200, "{label}");
    }
    assert_eq!(statuses(&s.app).await, AFTER, "{label}");
    assert_eq!(bounces_list(&s.db), expected_rows(), "{label}");
}

per_backend!(mailgun_refuses_forged_stale_and_replayed_requests);
async fn mailgun_refuses_forged_stale_and_replayed_requests(backend: Backend) {
    let Some(s) = setup(backend, true).await else {
        return;
    };
    let label = s.app.label;
    let hard = |token: &str, at: i64, key: &str| {
        mailgun_body(
            key,
            at,
            token,
            mailgun_event("mg-4", "failed", Some("permanent"), "hard@example.org"),
        )
    };
    // Signed with another key.
    assert_eq!(
        post_mailgun(s.addr, &hard("t-1", now(), "not-the-key")).await,
        401,
        "{label}"
    );
    // Signed, but 16 minutes old, or 16 minutes ahead.
    assert_eq!(
        post_mailgun(s.addr, &hard("t-2", now() - 16 * 60, MAILGUN_KEY)).await,
        401,
        "{label}"
    );
    assert_eq!(
        post_mailgun(s.addr, &hard("t-3", now() + 16 * 60, MAILGUN_KEY)).await,
        401,
        "{label}"
    );
    // No signature at all.
    let unsigned = serde_json::json!({
        "event-data": mailgun_event("mg-4", "failed", Some("permanent"), "hard@example.org"),
    })
    .to_string();
    assert_eq!(post_mailgun(s.addr, &unsigned).await, 401, "{label}");
    assert_eq!(statuses(&s.app).await, BEFORE, "{label}");
    assert!(
        s.app.store.bounce_events().await.unwrap().is_empty(),
        "{label}"
    );
    // A genuine soft bounce, then its signature lifted onto a forged hard bounce: the token
    // was used before with another body.
    let at = now();
    let genuine = mailgun_body(
        MAILGUN_KEY,
        at,
        "t-4",
        mailgun_event("mg-5", "failed", Some("temporary"), "soft@example.org"),
    );
    assert_eq!(post_mailgun(s.addr, &genuine).await, 200, "{label}");
    let replayed = hard("t-4", at, MAILGUN_KEY);
    assert_eq!(post_mailgun(s.addr, &replayed).await, 401, "{label}");
    assert_eq!(
        status(&s.app, "hard@example.org").await,
        SubscriberStatus::Confirmed,
        "{label}"
    );
    assert_eq!(
        s.app.store.bounce_events().await.unwrap().len(),
        1,
        "{label}"
    );
    // Over 64 KiB.
    let mut big = mailgun_event("mg-6", "failed", Some("permanent"), "hard@example.org");
    big["padding"] = "x".repeat(65 * 1024).into();
    let oversize = mailgun_body(MAILGUN_KEY, now(), "t-5", big);
    assert_eq!(post_mailgun(s.addr, &oversize).await, 413, "{label}");
    assert_eq!(
        s.app.store.bounce_events().await.unwrap().len(),
        1,
        "{label}"
    );
}

#[tokio::test]
async fn without_credentials_the_provider_routes_are_not_there() {
    let Some(s) = setup(Backend::Sqlite, false).await else {
        return;
    };
    let auth = postmark_credentials();
    let postmark = postmark_bounce(301, "HardBounce", "hard@example.org");
    assert_eq!(post_postmark(s.addr, &postmark, Some(&auth)).await, 404);
    let batch = serde_json::json!([sendgrid_event(
        "sg-8",
        "bounce",
        Some("bounce"),
        "hard@example.org"
    )])
    .to_string();
    assert_eq!(post_sendgrid(s.addr, &batch, Some(&s.sendgrid)).await, 404);
    let mailgun = mailgun_body(
        MAILGUN_KEY,
        now(),
        "t-6",
        mailgun_event("mg-7", "failed", Some("permanent"), "hard@example.org"),
    );
    assert_eq!(post_mailgun(s.addr, &mailgun).await, 404);
    assert_eq!(statuses(&s.app).await, BEFORE);
}

/// Mailgun's `envelope.sender` is our VERP address when `[bounces] address` is set: it names the
/// exact delivery even when the failed address is another one.
#[tokio::test]
async fn mailgun_matches_by_the_verp_envelope_sender() {
    let db = TestDb::sqlite();
    let extra = format!(
        "[bounces]\naddress = \"bounces@news.example.com\"\nmailgun_signing_key = \"{MAILGUN_KEY}\"\n"
    );
    let app = db.app(&extra).await;
    let reader = app.add_confirmed("reader@example.org", &["rust"]).await;
    let delivery = app
        .store
        .enqueue_transactional(
            tidings::store::DeliveryKind::Confirm,
            reader,
            "reader@example.org",
            "<confirm.1@news.example.com>",
            b"payload",
            chrono::Utc::now(),
        )
        .await
        .unwrap()
        .unwrap();
    let (addr, _stop) = serve(app.state.clone()).await;
    let base: lettre::Address = "bounces@news.example.com".parse().unwrap();
    let verp = app.state.tokens.verp_address(&base, delivery);
    let mut event = mailgun_event(
        "mg-8",
        "failed",
        Some("permanent"),
        "alias@elsewhere.example",
    );
    event["envelope"] = serde_json::json!({"sender": verp, "transport": "smtp"});
    let body = mailgun_body(MAILGUN_KEY, now(), "t-7", event);
    assert_eq!(post_mailgun(addr, &body).await, 200);
    assert_eq!(
        status(&app, "reader@example.org").await,
        SubscriberStatus::Bounced
    );
    let events = app.store.bounce_events().await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].delivery_id, Some(delivery));
}
