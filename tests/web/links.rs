//! Links from emails: confirm, preferences and unsubscribe (RFC 8058 one-click). GETs change
//! nothing; forged, truncated and wrong-purpose tokens get a 400 page and change nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use tidings::domain::SubscriberStatus;
use tidings::web::router;

use super::{TestApp, link_in, local};
use crate::support::db::{Backend, per_backend};

/// Subscribes through the form and returns the confirmation path from the email that arrives.
async fn confirmation_path(app: &TestApp, email: &str, topics: &str) -> String {
    let body = format!("email={}&{topics}", email.replace('@', "%40"));
    assert_eq!(
        app.post_form("/subscribe", &body).await.status,
        StatusCode::OK
    );
    let mails = app.mail_received_by(email).await;
    link_in(mails.last().unwrap(), "/confirm/").expect("confirmation link")
}

per_backend!(confirm_get_changes_nothing_and_post_confirms);
async fn confirm_get_changes_nothing_and_post_confirms(backend: Backend) {
    let Some(app) = TestApp::on_with(backend, "[web]\nrecord_consent_ip = true\n").await else {
        return;
    };
    let path = confirmation_path(&app, "fay@example.com", "topic=rust").await;
    for _ in 0..2 {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", app.label);
        assert!(
            page.body
                .contains(&format!(r#"<form method="post" action="{path}">"#))
        );
        assert_eq!(
            app.subscriber("fay@example.com").await.unwrap().status,
            SubscriberStatus::Pending
        );
    }
    let done = app.post_form(&path, "").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("You are subscribed"));
    assert!(done.body.contains("/preferences/"));
    let s = app.subscriber("fay@example.com").await.unwrap();
    assert_eq!(s.status, SubscriberStatus::Confirmed);
    assert_eq!(s.topics, vec!["rust".to_string()]);
    // Again: still fine, still confirmed.
    assert_eq!(app.post_form(&path, "").await.status, StatusCode::OK);
}

per_backend!(an_expired_confirmation_link_is_refused);
async fn an_expired_confirmation_link_is_refused(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let path = confirmation_path(&app, "gus@example.com", "topic=rust").await;
    let later = app
        .state
        .clone()
        .with_clock(Arc::new(|| Utc::now() + chrono::Duration::days(8)));
    let late = TestApp {
        router: router(later.clone()),
        state: later,
        store: app.store.clone(),
        label: app.label,
        relay: Default::default(),
    };
    let a = late.post_form(&path, "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", app.label);
    assert!(a.body.contains("expired"));
    assert_eq!(
        app.subscriber("gus@example.com").await.unwrap().status,
        SubscriberStatus::Pending
    );
}

per_backend!(forged_truncated_and_wrong_purpose_tokens_get_400_and_change_nothing);
async fn forged_truncated_and_wrong_purpose_tokens_get_400_and_change_nothing(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let id = app
        .add_confirmed("hal@example.com", &["rust", "databases"])
        .await;
    let pending = confirmation_path(&app, "ida@example.com", "topic=rust").await;
    let confirm_token = pending.trim_start_matches("/confirm/").to_string();
    let unsub = app.state.tokens.unsubscribe(id, "rust");
    let prefs = app.state.tokens.preferences(id);
    let mut flipped = unsub.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let bad_unsubscribe = [
        flipped.clone(),
        unsub[..unsub.len() - 3].to_string(),
        unsub[..unsub.len() / 2].to_string(),
        prefs.clone(),
        confirm_token.clone(),
        "x".into(),
        "..".into(),
        "%00".into(),
    ];
    for token in &bad_unsubscribe {
        for post in [false, true] {
            let uri = format!("/unsubscribe/{token}");
            let a = if post {
                app.post_form(&uri, "List-Unsubscribe=One-Click").await
            } else {
                app.get(&uri).await
            };
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}: {uri}", app.label);
            assert!(a.body.contains("not valid"), "{}", a.body);
            assert!(!a.headers.contains_key(header::LOCATION));
        }
    }
    let a = app.post_form(&format!("/confirm/{unsub}"), "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // The last character changed (to one it is not already: a token can end in "x").
    let (head, last) = confirm_token.split_at(confirm_token.len() - 1);
    let other = if last == "x" { "y" } else { "x" };
    let a = app.post_form(&format!("/confirm/{head}{other}"), "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = app
        .post_form(&format!("/preferences/{unsub}"), "topic=databases")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = app
        .post_form(
            &format!("/preferences/{confirm_token}"),
            "action=unsubscribe_all",
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let hal = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(hal.status, SubscriberStatus::Confirmed, "{}", app.label);
    assert_eq!(
        hal.topics,
        vec!["databases".to_string(), "rust".to_string()]
    );
    assert_eq!(
        app.subscriber("ida@example.com").await.unwrap().status,
        SubscriberStatus::Pending
    );
}

fn multipart_one_click(uri: &str) -> Request<Body> {
    let boundary = "----tidings-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    Request::post(uri)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap()
}

per_backend!(one_click_unsubscribe_works_in_both_encodings_without_redirect_and_is_idempotent);
async fn one_click_unsubscribe_works_in_both_encodings_without_redirect_and_is_idempotent(
    backend: Backend,
) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let a_id = app
        .add_confirmed("jo@example.com", &["rust", "databases"])
        .await;
    let uri = format!(
        "/unsubscribe/{}",
        app.state.tokens.unsubscribe(a_id, "rust")
    );
    // The GET shows a button and changes nothing.
    let page = app.get(&uri).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Unsubscribe from Rust"));
    assert_eq!(
        app.store
            .get_subscriber(a_id)
            .await
            .unwrap()
            .unwrap()
            .topics
            .len(),
        2
    );

    for _ in 0..2 {
        let a = app.send(multipart_one_click(&uri), local()).await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", app.label, a.body);
        assert!(!a.headers.contains_key(header::LOCATION));
        let s = app.store.get_subscriber(a_id).await.unwrap().unwrap();
        assert_eq!(s.topics, vec!["databases".to_string()]);
        assert_eq!(s.status, SubscriberStatus::Confirmed);
    }

    let b_id = app.add_confirmed("kim@example.com", &["rust"]).await;
    let uri = format!(
        "/unsubscribe/{}",
        app.state.tokens.unsubscribe(b_id, "rust")
    );
    for _ in 0..2 {
        let a = app.post_form(&uri, "List-Unsubscribe=One-Click").await;
        assert_eq!(a.status, StatusCode::OK, "{}", app.label);
        assert!(!a.headers.contains_key(header::LOCATION));
        let s = app.store.get_subscriber(b_id).await.unwrap().unwrap();
        assert_eq!(s.status, SubscriberStatus::Unsubscribed, "last topic left");
        assert!(s.topics.is_empty());
    }
}

per_backend!(unsubscribe_from_everything_from_the_page);
async fn unsubscribe_from_everything_from_the_page(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let id = app
        .add_confirmed("lee@example.com", &["rust", "databases"])
        .await;
    let uri = format!("/unsubscribe/{}", app.state.tokens.unsubscribe(id, "rust"));
    let a = app.post_form(&uri, "scope=all").await;
    assert_eq!(a.status, StatusCode::OK);
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(s.status, SubscriberStatus::Unsubscribed, "{}", app.label);
    assert!(s.topics.is_empty());
}

per_backend!(preferences_change_topics_and_time_zone_and_can_bring_a_reader_back);
async fn preferences_change_topics_and_time_zone_and_can_bring_a_reader_back(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let id = app.add_confirmed("max@example.com", &["rust"]).await;
    let uri = format!("/preferences/{}", app.state.tokens.preferences(id));
    let page = app.get(&uri).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"value="rust" checked"#),
        "{}",
        page.body
    );

    let bad = app.post_form(&uri, "topic=rust&timezone=Mars%2FBase").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = app.post_form(&uri, "topic=cooking").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.store.get_subscriber(id).await.unwrap().unwrap().topics,
        vec!["rust".to_string()]
    );

    let ok = app
        .post_form(&uri, "topic=databases&timezone=Europe%2FBerlin&action=save")
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.body.contains("saved"));
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(s.topics, vec!["databases".to_string()]);
    assert_eq!(s.timezone.as_deref(), Some("Europe/Berlin"));

    let gone = app
        .post_form(&uri, "topic=databases&action=unsubscribe_all")
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(
        app.store.get_subscriber(id).await.unwrap().unwrap().status,
        SubscriberStatus::Unsubscribed
    );

    // Back only through a fresh confirmation email (double opt-in).
    let back = app.post_form(&uri, "topic=rust&action=save").await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(s.status, SubscriberStatus::Pending, "{}", app.label);
    let mails = app.mail_received_by("max@example.com").await;
    let confirm = link_in(mails.last().unwrap(), "/confirm/").expect("confirmation link");
    assert_eq!(app.post_form(&confirm, "").await.status, StatusCode::OK);
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(s.status, SubscriberStatus::Confirmed, "{}", app.label);
    assert_eq!(s.topics, vec!["rust".to_string()]);
}
