//! `GET /` and `POST /subscribe`: validation, sameness of answers, abuse resistance.

use std::net::IpAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tidings::domain::SubscriberStatus;

use super::{TestApp, link_in, local};
use crate::support::db::{Backend, per_backend};

/// The visible text of the "check your inbox" page minus the echoed address.
fn neutral(body: &str, email: &str) -> String {
    body.replace(email, "ADDRESS")
}

per_backend!(form_has_labelled_fields_a_hidden_honeypot_and_no_script);
async fn form_has_labelled_fields_a_hidden_honeypot_and_no_script(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let a = app.get("/").await;
    assert_eq!(a.status, StatusCode::OK, "{}", app.label);
    assert!(a.body.contains(r#"<label for="email">"#));
    assert!(a.body.contains(r#"name="topic" value="rust""#));
    assert!(
        a.body
            .contains(r#"<label for="topic-databases">Databases</label>"#)
    );
    assert!(a.body.contains(r#"name="website""#), "honeypot field");
    assert!(!a.body.to_lowercase().contains("<script"));
    let csp = a.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(a.headers[header::REFERRER_POLICY], "same-origin");
    let css = app.get("/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

per_backend!(new_address_becomes_pending_with_one_confirmation_link);
async fn new_address_becomes_pending_with_one_confirmation_link(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let a = app
        .post_form(
            "/subscribe",
            "email=Ann%40Example.com&topic=rust&topic=databases&website=",
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}: {}", app.label, a.body);
    assert!(a.body.contains("Check your inbox"));
    let s = app.subscriber("ann@example.com").await.expect("created");
    assert_eq!(s.status, SubscriberStatus::Pending);
    assert_eq!(s.topics, vec!["databases".to_string(), "rust".to_string()]);
    let mails = app.mail_received_by("Ann@example.com").await;
    assert_eq!(mails.len(), 1, "{}", app.label);
    assert!(
        link_in(&mails[0], "/confirm/").is_some(),
        "confirmation link in the email"
    );
}

per_backend!(malformed_input_is_refused_and_stores_nothing);
async fn malformed_input_is_refused_and_stores_nothing(backend: Backend) {
    let huge = "a".repeat(10 * 1024);
    let cases = [
        "email=&topic=rust".to_string(),
        "email=bob&topic=rust".to_string(),
        "email=bob%40&topic=rust".to_string(),
        "email=a%40b%40example.com&topic=rust".to_string(),
        "email=bob%40example.com%0D%0ABcc%3A%20eve%40example.com&topic=rust".to_string(),
        "email=bob%40exam%0Aple.com&topic=rust".to_string(),
        format!("email={huge}%40example.com&topic=rust"),
        format!("email=bob%40example.com&topic={huge}"),
        "email=bob%40example.com&topic=cooking".to_string(),
        "email=bob%40example.com&topic=Rust%0D%0A".to_string(),
        "email=bob%40example.com".to_string(),
        "garbage".to_string(),
    ];
    // Rejected posts count against the rate limit too; lift it to see every answer.
    let Some(app) = TestApp::on_with(backend, "[web]\nsubscribe_per_minute = 0\n").await else {
        return;
    };
    for body in &cases {
        let a = app.post_form("/subscribe", body).await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{}: {body:.80}",
            app.label
        );
        assert!(
            a.body.contains(r#"role="alert""#),
            "the form says what is wrong"
        );
        assert!(
            a.body.len() < 20_000,
            "a 10 KB field is not echoed back whole"
        );
    }
    let counts = app.store.subscriber_counts_by_status().await.unwrap();
    assert!(counts.is_empty(), "{}: {counts:?}", app.label);
}

per_backend!(a_filled_honeypot_gets_the_same_answer_and_changes_nothing);
async fn a_filled_honeypot_gets_the_same_answer_and_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let real = app
        .post_form("/subscribe", "email=real%40example.com&topic=rust")
        .await;
    let bot = app
        .post_form(
            "/subscribe",
            "email=bot%40example.com&topic=rust&website=http%3A%2F%2Fspam",
        )
        .await;
    assert_eq!(bot.status, StatusCode::OK);
    assert_eq!(
        neutral(&bot.body, "bot@example.com"),
        neutral(&real.body, "real@example.com")
    );
    assert!(
        app.subscriber("bot@example.com").await.is_none(),
        "{}",
        app.label
    );
    assert!(app.mail_received_by("bot@example.com").await.is_empty());
}

per_backend!(a_known_address_subscribed_by_someone_else_changes_nothing);
async fn a_known_address_subscribed_by_someone_else_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let id = app.add_confirmed("carol@example.com", &["rust"]).await;
    let stranger: IpAddr = "198.51.100.20".parse().unwrap();
    let fresh = app
        .post_form_from("/subscribe", "email=new%40example.com&topic=rust", stranger)
        .await;
    let known = app
        .post_form_from(
            "/subscribe",
            "email=carol%40example.com&topic=databases",
            stranger,
        )
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(
        neutral(&known.body, "carol@example.com"),
        neutral(&fresh.body, "new@example.com"),
        "{}: same answer for known and unknown addresses",
        app.label
    );
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(s.status, SubscriberStatus::Confirmed);
    assert_eq!(s.topics, vec!["rust".to_string()], "topics unchanged");
    // The owner gets a link to their preferences, not a confirmation; once per hour.
    let mails = app.mail_received_by("carol@example.com").await;
    assert_eq!(mails.len(), 1);
    assert!(link_in(&mails[0], "/preferences/").is_some());
    assert!(link_in(&mails[0], "/confirm/").is_none());
    app.post_form_from(
        "/subscribe",
        "email=carol%40example.com&topic=rust",
        stranger,
    )
    .await;
    assert_eq!(
        app.mail_received_by("carol@example.com").await.len(),
        1,
        "at most one per hour"
    );
}

per_backend!(a_pending_address_gets_at_most_one_confirmation_per_hour);
async fn a_pending_address_gets_at_most_one_confirmation_per_hour(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    for i in 0..3 {
        let peer: IpAddr = format!("203.0.113.{i}").parse().unwrap();
        let a = app
            .post_form_from("/subscribe", "email=dan%40example.com&topic=rust", peer)
            .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    assert_eq!(
        app.mail_received_by("dan@example.com").await.len(),
        1,
        "{}",
        app.label
    );
    let s = app.subscriber("dan@example.com").await.unwrap();
    assert_eq!(s.topics, vec!["rust".to_string()]);
}

per_backend!(a_thousand_requests_from_one_ip_are_rate_limited);
async fn a_thousand_requests_from_one_ip_are_rate_limited(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let attacker: IpAddr = "192.0.2.66".parse().unwrap();
    let (mut ok, mut limited) = (0, 0);
    for i in 0..1000 {
        // Half aimed at one victim, half at fresh addresses.
        let body = if i % 2 == 0 {
            "email=victim%40example.com&topic=rust".to_string()
        } else {
            format!("email=v{i}%40example.com&topic=rust")
        };
        let a = app.post_form_from("/subscribe", &body, attacker).await;
        match a.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let retry: u64 = a.headers[header::RETRY_AFTER]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry), "Retry-After {retry}");
            }
            other => panic!("{}: unexpected {other}", app.label),
        }
    }
    assert!(ok <= 10, "{}: {ok} accepted", app.label);
    assert!(limited >= 990);
    assert!(app.mail_received_by("victim@example.com").await.len() <= 1);
    // Someone else is not affected.
    let other = app
        .post_form_from("/subscribe", "email=eve%40example.com&topic=rust", local())
        .await;
    assert_eq!(other.status, StatusCode::OK);
}

per_backend!(forwarded_for_counts_only_behind_a_trusted_proxy);
async fn forwarded_for_counts_only_behind_a_trusted_proxy(backend: Backend) {
    let Some(app) = TestApp::on_with(
        backend,
        "[web]\ntrusted_proxies = [\"10.0.0.1\"]\nsubscribe_per_minute = 1\nsubscribe_burst = 1\n",
    )
    .await
    else {
        return;
    };
    let proxy: IpAddr = "10.0.0.1".parse().unwrap();
    let via = |client: &str, email: &str| {
        Request::post("/subscribe")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-for", client)
            .body(Body::from(format!(
                "email={email}%40example.com&topic=rust"
            )))
            .unwrap()
    };
    // Two clients behind the proxy each get their own allowance.
    assert_eq!(
        app.send(via("198.51.100.1", "p1"), proxy).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(via("198.51.100.2", "p2"), proxy).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(via("198.51.100.1", "p3"), proxy).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A direct client cannot dodge the limit by inventing the header.
    let direct: IpAddr = "203.0.113.50".parse().unwrap();
    assert_eq!(
        app.send(via("198.51.100.3", "d1"), direct).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(via("198.51.100.4", "d2"), direct).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        app.label
    );
}

per_backend!(an_oversized_body_is_refused);
async fn an_oversized_body_is_refused(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let body = format!(
        "email=x%40example.com&topic=rust&pad={}",
        "a".repeat(20 * 1024)
    );
    let a = app.post_form("/subscribe", &body).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", app.label);
    assert!(app.subscriber("x@example.com").await.is_none());
}
