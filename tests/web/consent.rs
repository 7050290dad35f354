//! Consent through the real HTTP server: a reader who is not confirmed (unsubscribed, or
//! pending) and ticks topics on the preferences page gets a fresh confirmation email and stays
//! unsubscribed from digests until they use it; and every state-changing form refuses a post
//! from another site (by `Origin`, else `Referer`), while the RFC 8058 one-click POST, which
//! mail providers send without either, still works. One test per backend.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ORIGIN, REFERER};
use tidings::domain::{SubscriberEmail, SubscriberStatus};

use super::live::{client, our_origin, served, url};
use super::{TestApp, link_in};
use crate::support::db;
use crate::support::db::{Backend, per_backend};

fn address(email: &str) -> SubscriberEmail {
    SubscriberEmail::parse(email).unwrap()
}

async fn status_and_topics(app: &TestApp, id: i64) -> (SubscriberStatus, Vec<String>) {
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    (s.status, s.topics)
}

per_backend!(rejoining_after_unsubscribing_needs_a_fresh_confirmation);
async fn rejoining_after_unsubscribing_needs_a_fresh_confirmation(backend: Backend) {
    let Some((_db, app, addr, _stop)) = served(backend, "").await else {
        return;
    };
    let label = app.label;
    let http = client();
    let id = app.add_confirmed("pat@example.com", &["rust"]).await;
    app.store
        .unsubscribe_all(id, chrono::Utc::now())
        .await
        .unwrap();

    let path = format!("/preferences/{}", app.state.tokens.preferences(id));
    let page = http
        .post(url(addr, &path))
        .header(ORIGIN, our_origin())
        .form(&[("topic", "databases"), ("action", "save")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{label}");
    let body = page.text().await.unwrap();
    assert_eq!(
        status_and_topics(&app, id).await,
        (SubscriberStatus::Pending, vec!["databases".to_string()]),
        "{label}: not subscribed before confirming"
    );
    assert!(body.contains("email we have just sent"), "{label}: {body}");
    assert_eq!(
        app.store
            .suppression_reason(&address("pat@example.com"))
            .await
            .unwrap()
            .as_deref(),
        Some("unsubscribed"),
        "{label}: still suppressed until confirmed"
    );

    // The confirmation email arrives at the relay; its button confirms.
    let mails = app.mail_received_by("pat@example.com").await;
    assert_eq!(mails.len(), 1, "{label}");
    let confirm = link_in(&mails[0], "/confirm/").expect("a confirmation link");
    let done = http
        .post(url(addr, &confirm))
        .header(ORIGIN, our_origin())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK, "{label}");
    assert_eq!(
        status_and_topics(&app, id).await,
        (SubscriberStatus::Confirmed, vec!["databases".to_string()]),
        "{label}"
    );
    assert_eq!(
        app.store
            .suppression_reason(&address("pat@example.com"))
            .await
            .unwrap(),
        None,
        "{label}: off the suppression list once confirmed"
    );
}

per_backend!(a_pending_reader_saving_preferences_gets_a_confirmation);
async fn a_pending_reader_saving_preferences_gets_a_confirmation(backend: Backend) {
    let Some((_db, app, addr, _stop)) = served(backend, "").await else {
        return;
    };
    let label = app.label;
    let id = db::add_subscriber(
        &app.store,
        "rex@example.com",
        &["rust"],
        SubscriberStatus::Pending,
    )
    .await;
    let path = format!("/preferences/{}", app.state.tokens.preferences(id));
    let page = client()
        .post(url(addr, &path))
        .form(&[
            ("topic", "databases"),
            ("topic", "rust"),
            ("action", "save"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{label}");
    assert_eq!(
        status_and_topics(&app, id).await,
        (
            SubscriberStatus::Pending,
            vec!["databases".to_string(), "rust".to_string()]
        ),
        "{label}"
    );
    let mails = app.mail_received_by("rex@example.com").await;
    assert_eq!(mails.len(), 1, "{label}: a confirmation email");
    assert!(link_in(&mails[0], "/confirm/").is_some(), "{label}");
}

/// How a cross-site post names its site.
const FOREIGN: [(&str, &str); 3] = [
    ("origin", "https://evil.example"),
    ("referer", "https://evil.example/newsletter-trap.html"),
    // A sandboxed frame or a page with `Referrer-Policy: no-referrer`.
    ("origin", "null"),
];

per_backend!(forms_posted_from_another_site_are_refused);
async fn forms_posted_from_another_site_are_refused(backend: Backend) {
    let Some((_db, app, addr, _stop)) = served(backend, "").await else {
        return;
    };
    let label = app.label;
    let http = client();
    let quinn = app
        .add_confirmed("quinn@example.com", &["rust", "databases"])
        .await;
    let rae = db::add_subscriber(
        &app.store,
        "rae@example.com",
        &["rust"],
        SubscriberStatus::Pending,
    )
    .await;
    let preferences = format!("/preferences/{}", app.state.tokens.preferences(quinn));
    let unsubscribe = format!(
        "/unsubscribe/{}",
        app.state.tokens.unsubscribe(quinn, "rust")
    );
    let confirm = format!(
        "/confirm/{}",
        app.state.tokens.confirm(rae, chrono::Utc::now())
    );
    let forms: [(&str, &str); 6] = [
        ("/subscribe", "email=sam%40example.com&topic=rust"),
        (&confirm, ""),
        (&preferences, "topic=databases&action=save"),
        (&preferences, "topic=rust&action=unsubscribe_all"),
        (&unsubscribe, "scope=all"),
        // The topic button of our unsubscribe page posts an empty form.
        (&unsubscribe, ""),
    ];
    for (header, value) in FOREIGN {
        for (path, body) in forms {
            let a = http
                .post(url(addr, path))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header, value)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(
                a.status(),
                StatusCode::FORBIDDEN,
                "{label}: {header}: {value} {path} {body}"
            );
        }
    }
    assert!(app.subscriber("sam@example.com").await.is_none(), "{label}");
    assert_eq!(
        status_and_topics(&app, rae).await.0,
        SubscriberStatus::Pending,
        "{label}"
    );
    assert_eq!(
        status_and_topics(&app, quinn).await,
        (
            SubscriberStatus::Confirmed,
            vec!["databases".to_string(), "rust".to_string()]
        ),
        "{label}: nothing changed"
    );

    // The same forms from our own pages, or from a client that sends neither header.
    let ours = http
        .post(url(addr, "/subscribe"))
        .header(ORIGIN, our_origin())
        .form(&[("email", "sam@example.com"), ("topic", "rust")])
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), StatusCode::OK, "{label}");
    let by_referer = http
        .post(url(addr, &confirm))
        .header(REFERER, format!("{}{confirm}", our_origin()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_referer.status(), StatusCode::OK, "{label}");
    assert_eq!(
        status_and_topics(&app, rae).await.0,
        SubscriberStatus::Confirmed
    );
    let bare = http
        .post(url(addr, &preferences))
        .form(&[("topic", "databases"), ("action", "save")])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::OK, "{label}");
    assert_eq!(
        status_and_topics(&app, quinn).await.1,
        vec!["databases".to_string()]
    );

    // RFC 8058 one-click, even with a foreign Origin (webmail that posts from its own page).
    let one_click = format!(
        "/unsubscribe/{}",
        app.state.tokens.unsubscribe(quinn, "databases")
    );
    let a = http
        .post(url(addr, &one_click))
        .header(ORIGIN, "https://mail.example")
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::OK, "{label}");
    assert_eq!(
        status_and_topics(&app, quinn).await.0,
        SubscriberStatus::Unsubscribed,
        "{label}"
    );
}
