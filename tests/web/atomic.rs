//! Steps of one request that must happen together or not at all, shown by making the database
//! fail half-way (a trigger on the table the later step writes) and looking at what is left:
//! the hourly confirmation slot and the queued email; leaving the last topic (or saving no
//! topics) and being unsubscribed; rejoining and the topics chosen. Through the real HTTP
//! server, one test per backend.

use reqwest::StatusCode;
use tidings::domain::{SubscriberEmail, SubscriberStatus};

use super::live::{client, served, url};
use crate::support::db::{Backend, per_backend};

per_backend!(a_failure_while_queueing_leaves_the_hourly_slot_free);
async fn a_failure_while_queueing_leaves_the_hourly_slot_free(backend: Backend) {
    let Some((db, app, addr, _stop)) = served(backend, "").await else {
        return;
    };
    let label = app.label;
    let http = client();
    let post = || {
        http.post(url(addr, "/subscribe"))
            .form(&[("email", "ned@example.com"), ("topic", "rust")])
            .send()
    };
    db.fail_on("deliveries", "INSERT").await;
    let failed = post().await.unwrap();
    assert_eq!(
        failed.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{label}"
    );
    assert!(app.mails_to("ned@example.com").await.is_empty());
    db.heal("deliveries").await;
    let again = post().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK, "{label}");
    assert_eq!(
        app.mails_to("ned@example.com").await.len(),
        1,
        "{label}: the failed attempt must not use up the address's hour"
    );
}

/// A reader with one topic leaves it (one-click), or saves the preferences page with nothing
/// ticked, while adding the address to the suppression list fails: either they are still
/// subscribed to that topic, or (after the fault is gone) unsubscribed and suppressed; never
/// confirmed with no topics.
async fn leaving_the_last_topic_is_all_or_nothing(backend: Backend, through_preferences: bool) {
    let Some((db, app, addr, _stop)) = served(backend, "").await else {
        return;
    };
    let label = app.label;
    let http = client();
    let id = app.add_confirmed("oli@example.com", &["rust"]).await;
    let post = || {
        if through_preferences {
            let path = format!("/preferences/{}", app.state.tokens.preferences(id));
            http.post(url(addr, &path))
                .form(&[("timezone", ""), ("action", "save")])
                .send()
        } else {
            let path = format!("/unsubscribe/{}", app.state.tokens.unsubscribe(id, "rust"));
            http.post(url(addr, &path))
                .form(&[("List-Unsubscribe", "One-Click")])
                .send()
        }
    };
    db.fail_on("suppressions", "INSERT").await;
    let failed = post().await.unwrap();
    assert_eq!(
        failed.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{label}"
    );
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(
        (s.status, s.topics),
        (SubscriberStatus::Confirmed, vec!["rust".to_string()]),
        "{label}: a failed unsubscribe changes nothing"
    );
    db.heal("suppressions").await;
    assert_eq!(post().await.unwrap().status(), StatusCode::OK, "{label}");
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(s.status, SubscriberStatus::Unsubscribed, "{label}");
    assert!(s.topics.is_empty(), "{label}");
    let email = SubscriberEmail::parse("oli@example.com").unwrap();
    assert_eq!(
        app.store
            .suppression_reason(&email)
            .await
            .unwrap()
            .as_deref(),
        Some("unsubscribed"),
        "{label}"
    );
}

per_backend!(leaving_the_last_topic_is_all_or_nothing_by_one_click);
async fn leaving_the_last_topic_is_all_or_nothing_by_one_click(backend: Backend) {
    leaving_the_last_topic_is_all_or_nothing(backend, false).await;
}

per_backend!(saving_no_topics_is_all_or_nothing);
async fn saving_no_topics_is_all_or_nothing(backend: Backend) {
    leaving_the_last_topic_is_all_or_nothing(backend, true).await;
}

per_backend!(rejoining_is_all_or_nothing);
/// An unsubscribed reader chooses topics and a time zone on the preferences page while saving
/// the time zone fails: nothing changes (still unsubscribed, no topics, no email).
async fn rejoining_is_all_or_nothing(backend: Backend) {
    let Some((db, app, addr, _stop)) = served(backend, "").await else {
        return;
    };
    let label = app.label;
    let id = app.add_confirmed("pia@example.com", &["rust"]).await;
    app.store
        .unsubscribe_all(id, chrono::Utc::now())
        .await
        .unwrap();
    db.fail_on("subscribers", "UPDATE OF timezone").await;
    let path = format!("/preferences/{}", app.state.tokens.preferences(id));
    let failed = client()
        .post(url(addr, &path))
        .form(&[
            ("topic", "databases"),
            ("timezone", "Europe/Berlin"),
            ("action", "save"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        failed.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{label}"
    );
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(s.status, SubscriberStatus::Unsubscribed, "{label}");
    assert!(s.topics.is_empty(), "{label}: {:?}", s.topics);
    assert_eq!(s.timezone, None, "{label}");
    assert!(app.mails_to("pia@example.com").await.is_empty(), "{label}");
}
