//! Limits on the mail the subscribe form can cause, through the real HTTP server: IPv6 clients
//! share the per-client limit per /64 network, and confirmation emails are capped per hour for
//! all addresses together (`[web] confirmations_per_hour`), answering 429 beyond it, counted by
//! the emails that reach the outbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use super::live::{TestDb, client, serve, url};
use crate::support::db::{Backend, per_backend};

/// Behind a trusted proxy on loopback, so each request can name its client address.
const BEHIND_PROXY: &str = "[web]\ntrusted_proxies = [\"127.0.0.1\"]\n";

#[tokio::test]
async fn ipv6_clients_are_limited_per_64() {
    let db = TestDb::sqlite();
    let app = db
        .app(&format!(
            "{BEHIND_PROXY}subscribe_per_minute = 1\nsubscribe_burst = 1\n"
        ))
        .await;
    let (addr, _stop) = serve(app.state.clone()).await;
    let http = client();
    let post = |client_ip: &'static str, email: &'static str| {
        http.post(url(addr, "/subscribe"))
            .header("x-forwarded-for", client_ip)
            .form(&[("email", email), ("topic", "rust")])
            .send()
    };
    let first = post("2001:db8:1:2::1", "v1@example.com").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    // Another address of the same /64 (one host or one subscriber line).
    let same_net = post("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "v2@example.com")
        .await
        .unwrap();
    assert_eq!(same_net.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(app.subscriber("v2@example.com").await.is_none());
    // Another /64 has its own allowance.
    let other_net = post("2001:db8:1:3::1", "v3@example.com").await.unwrap();
    assert_eq!(other_net.status(), StatusCode::OK);
}

per_backend!(confirmation_emails_are_capped_per_hour_overall);
async fn confirmation_emails_are_capped_per_hour_overall(backend: Backend) {
    let Some(db) = TestDb::on(backend).await else {
        return;
    };
    let app = db
        .app(&format!(
            "{BEHIND_PROXY}subscribe_per_minute = 0\nconfirmations_per_hour = 3\n"
        ))
        .await;
    let label = app.label;
    let minutes = Arc::new(AtomicI64::new(0));
    let start = Utc::now();
    let clock = {
        let minutes = minutes.clone();
        Arc::new(move || start + Duration::minutes(minutes.load(Ordering::SeqCst)))
    };
    let (addr, _stop) = serve(app.state.clone().with_clock(clock)).await;
    let http = client();
    let post = |i: u32| {
        http.post(url(addr, "/subscribe"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .form(&[
                ("email", format!("c{i}@example.com")),
                ("topic", "rust".to_string()),
            ])
            .send()
    };
    let mut queued = 0;
    for i in 1..=6 {
        let a = post(i).await.unwrap();
        let mails = app.mails_to(&format!("c{i}@example.com")).await.len();
        queued += mails;
        if i <= 3 {
            assert_eq!(a.status(), StatusCode::OK, "{label}: address {i}");
            assert_eq!(mails, 1, "{label}: address {i}");
        } else {
            assert_eq!(
                a.status(),
                StatusCode::TOO_MANY_REQUESTS,
                "{label}: address {i}"
            );
            let retry: u64 = a.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap();
            assert!((1..=3600).contains(&retry), "{label}: Retry-After {retry}");
            assert_eq!(mails, 0, "{label}: address {i}");
        }
    }
    assert_eq!(queued, 3, "{label}: emails queued in the hour");
    // An hour later there is room again.
    minutes.store(61, Ordering::SeqCst);
    let later = post(7).await.unwrap();
    assert_eq!(later.status(), StatusCode::OK, "{label}");
    assert_eq!(app.mails_to("c7@example.com").await.len(), 1, "{label}");
}
