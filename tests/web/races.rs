//! Simultaneous sign-ups for the same new address, through the real HTTP server: every request
//! gets the normal answer, one subscriber is stored and at most one confirmation email queued.
//! Eight rounds of twenty parallel posts, one test per backend.

use reqwest::StatusCode;

use super::live::{client, served, url};
use crate::support::db::{Backend, per_backend};

per_backend!(simultaneous_sign_ups_for_one_new_address);
async fn simultaneous_sign_ups_for_one_new_address(backend: Backend) {
    let Some((_db, app, addr, _stop)) = served(backend, "[web]\nsubscribe_per_minute = 0\n").await
    else {
        return;
    };
    let label = app.label;
    let http = client();
    for round in 0..8 {
        let email = format!("race{round}@example.com");
        let posts = (0..20).map(|_| {
            http.post(url(addr, "/subscribe"))
                .form(&[("email", email.as_str()), ("topic", "rust")])
                .send()
        });
        for answer in futures::future::join_all(posts).await {
            let answer = answer.unwrap();
            let status = answer.status();
            let body = answer.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{label} round {round}: {body}");
            assert!(body.contains("Check your inbox"), "{label}");
        }
        assert_eq!(
            app.mail_received_by(&email).await.len(),
            1,
            "{label} round {round}: one confirmation email"
        );
    }
    let counts = app.store.subscriber_counts_by_status().await.unwrap();
    assert_eq!(counts.get("pending"), Some(&8), "{label}: {counts:?}");
    assert_eq!(counts.len(), 1, "{label}: {counts:?}");
}
