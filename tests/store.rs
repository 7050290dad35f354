//! The store contract, run against every available backend (SQLite always, PostgreSQL when
//! `scripts/test` started a cluster).

use chrono::{Duration, TimeZone, Utc};
use tidings::domain::{SubscriberEmail, SubscriberStatus};
use tidings::store::{
    AddOutcome, DeliveryKind, MailLimits, MailSlot, NewSubscriber, QueueOutcome, Store,
    SubscriberFilter, WebMail,
};

use crate::support::db::{self, Backend, per_backend};

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 2, 8, 0, 0).unwrap()
}

fn new(email: &str, topics: &[&str], status: SubscriberStatus) -> NewSubscriber {
    db::new_subscriber(email, topics, status)
}

/// Adds [`new`]`(email, topics, status)` at `at`.
async fn add(
    store: &Store,
    email: &str,
    topics: &[&str],
    status: SubscriberStatus,
    at: chrono::DateTime<Utc>,
) -> AddOutcome {
    store
        .add_subscriber(&new(email, topics, status), at)
        .await
        .unwrap()
}

/// Adds a new address at [`t0`] and returns its id; anything but a creation panics.
async fn created(store: &Store, email: &str, topics: &[&str], status: SubscriberStatus) -> i64 {
    match add(store, email, topics, status, t0()).await {
        AddOutcome::Created { id } => id,
        other => panic!("adding {email}: {other:?}"),
    }
}

async fn emails(store: &Store, filter: SubscriberFilter) -> Vec<String> {
    store
        .list_subscribers(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.email)
        .collect()
}

per_backend!(migrations_apply_once);
async fn migrations_apply_once(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    assert_eq!(
        store.migrate().await.unwrap(),
        0,
        "{label}: second migrate applies nothing"
    );
    store.ping().await.unwrap();
}

per_backend!(addresses_are_unique_case_insensitively_and_keep_the_local_part);
async fn addresses_are_unique_case_insensitively_and_keep_the_local_part(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let first = add(
        &store,
        " Bob@Example.COM ",
        &["rust"],
        SubscriberStatus::Confirmed,
        t0(),
    )
    .await;
    let AddOutcome::Created { id } = first else {
        panic!("{label}: {first:?}")
    };
    let again = store
        .add_subscriber(
            &new(
                "BOB@example.com",
                &["rust", "go"],
                SubscriberStatus::Pending,
            ),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        AddOutcome::Updated {
            id,
            added_topics: 1,
            confirmed: false
        },
        "{label}"
    );
    let all = store
        .list_subscribers(&SubscriberFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{label}");
    assert_eq!(all[0].email, "Bob@example.com", "{label}");
    assert_eq!(all[0].status, SubscriberStatus::Confirmed, "{label}");
    assert_eq!(
        all[0].topics,
        vec!["go".to_string(), "rust".to_string()],
        "{label}"
    );
}

per_backend!(filters_by_topic_and_status);
async fn filters_by_topic_and_status(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    add(
        &store,
        "a@example.com",
        &["rust"],
        SubscriberStatus::Confirmed,
        t0(),
    )
    .await;
    add(
        &store,
        "b@example.com",
        &["rust", "go"],
        SubscriberStatus::Pending,
        t0(),
    )
    .await;
    add(
        &store,
        "c@example.com",
        &["go"],
        SubscriberStatus::Confirmed,
        t0(),
    )
    .await;
    let rust = emails(
        &store,
        SubscriberFilter {
            topic: Some("rust".into()),
            status: None,
        },
    )
    .await;
    assert_eq!(rust, ["a@example.com", "b@example.com"], "{label}");
    let confirmed_go = emails(
        &store,
        SubscriberFilter {
            topic: Some("go".into()),
            status: Some(SubscriberStatus::Confirmed),
        },
    )
    .await;
    assert_eq!(confirmed_go, ["c@example.com"], "{label}");
    let counts = store.confirmed_counts_by_topic().await.unwrap();
    assert_eq!(counts.get("rust"), Some(&1), "{label}");
    assert_eq!(counts.get("go"), Some(&1), "{label}");
}

per_backend!(unsubscribed_addresses_stay_out_unless_resubscribed);
async fn unsubscribed_addresses_stay_out_unless_resubscribed(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let id = created(
        &store,
        "a@example.com",
        &["rust"],
        SubscriberStatus::Confirmed,
    )
    .await;
    assert!(store.unsubscribe_all(id, t0()).await.unwrap());
    let rec = store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(rec.status, SubscriberStatus::Unsubscribed, "{label}");
    assert!(rec.unsubscribed_at.is_some(), "{label}");
    assert!(rec.topics.is_empty(), "{label}");
    let again = add(
        &store,
        "A@example.com",
        &["rust"],
        SubscriberStatus::Confirmed,
        t0(),
    )
    .await;
    assert!(
        matches!(again, AddOutcome::Suppressed { .. }),
        "{label}: {again:?}"
    );
    let mut back = new("a@example.com", &["rust"], SubscriberStatus::Confirmed);
    back.resubscribe = true;
    let back = store.add_subscriber(&back, t0()).await.unwrap();
    assert!(
        matches!(back, AddOutcome::Updated { id: same, .. } if same == id),
        "{label}: {back:?}"
    );
    let rec = store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(rec.status, SubscriberStatus::Confirmed, "{label}");
    assert_eq!(rec.topics, ["rust"], "{label}");
}

per_backend!(leaving_the_last_topic_unsubscribes);
async fn leaving_the_last_topic_unsubscribes(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let id = created(
        &store,
        "a@example.com",
        &["rust", "go"],
        SubscriberStatus::Confirmed,
    )
    .await;
    assert_eq!(
        store.leave_topic(id, "rust", t0()).await.unwrap(),
        ["go"],
        "{label}"
    );
    assert_eq!(
        store.leave_topic(id, "rust", t0()).await.unwrap(),
        ["go"],
        "{label}: idempotent"
    );
    assert_eq!(
        store.get_subscriber(id).await.unwrap().unwrap().status,
        SubscriberStatus::Confirmed
    );
    assert!(store.leave_topic(id, "go", t0()).await.unwrap().is_empty());
    assert_eq!(
        store.get_subscriber(id).await.unwrap().unwrap().status,
        SubscriberStatus::Unsubscribed,
        "{label}"
    );
}

per_backend!(erase_keeps_only_a_hash_on_the_suppression_list);
async fn erase_keeps_only_a_hash_on_the_suppression_list(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let email = SubscriberEmail::parse("gone@example.com").unwrap();
    let id = created(
        &store,
        "gone@example.com",
        &["rust"],
        SubscriberStatus::Confirmed,
    )
    .await;
    assert!(store.erase_subscriber(id, t0()).await.unwrap());
    assert!(store.get_subscriber(id).await.unwrap().is_none(), "{label}");
    assert!(
        store.find_subscriber(&email).await.unwrap().is_none(),
        "{label}"
    );
    assert_eq!(
        store.suppression_reason(&email).await.unwrap().as_deref(),
        Some("erased"),
        "{label}"
    );
    let again = add(
        &store,
        "gone@example.com",
        &["rust"],
        SubscriberStatus::Confirmed,
        t0(),
    )
    .await;
    assert!(
        matches!(again, AddOutcome::Suppressed { .. }),
        "{label}: {again:?}"
    );
}

per_backend!(confirming_records_consent_once);
async fn confirming_records_consent_once(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let id = created(
        &store,
        "p@example.com",
        &["rust"],
        SubscriberStatus::Pending,
    )
    .await;
    assert!(
        store
            .confirm_subscriber(id, &[], t0(), Some("192.0.2.1"), Some("UA"))
            .await
            .unwrap(),
        "{label}"
    );
    assert!(
        !store
            .confirm_subscriber(id, &[], t0(), None, None)
            .await
            .unwrap(),
        "{label}: second confirm is a no-op"
    );
    let rec = store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(rec.status, SubscriberStatus::Confirmed);
    assert_eq!(rec.confirmed_at, Some(t0()), "{label}");
}

per_backend!(one_confirmation_slot_per_window);
async fn one_confirmation_slot_per_window(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let id = created(
        &store,
        "p@example.com",
        &["rust"],
        SubscriberStatus::Pending,
    )
    .await;
    // The once-an-hour slot of the subscribe form, claimed with the message it allows.
    let limits = MailLimits {
        slot: MailSlot::Form,
        min_gap: Duration::hours(1),
        per_hour: 0,
    };
    let claim = |n: i64, at| {
        let store = store.clone();
        async move {
            let message_id = format!("<slot-{n}@example.com>");
            let mail = WebMail {
                kind: DeliveryKind::Confirm,
                subscriber_id: id,
                to: "p@example.com",
                message_id: &message_id,
                payload: b"message",
            };
            store.queue_web_mail(&mail, limits, at).await.unwrap() == QueueOutcome::Queued
        }
    };
    assert!(claim(1, t0()).await, "{label}");
    assert!(!claim(2, t0() + Duration::minutes(59)).await, "{label}");
    assert!(claim(3, t0() + Duration::minutes(61)).await, "{label}");
}

per_backend!(batch_import_is_idempotent);
async fn batch_import_is_idempotent(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let rows: Vec<NewSubscriber> = (0..50)
        .map(|i| {
            new(
                &format!("user{i}@example.com"),
                &["rust"],
                SubscriberStatus::Confirmed,
            )
        })
        .collect();
    let first = store.add_subscribers(&rows, t0()).await.unwrap();
    assert!(
        first
            .iter()
            .all(|o| matches!(o, Ok(AddOutcome::Created { .. }))),
        "{label}"
    );
    let second = store.add_subscribers(&rows, t0()).await.unwrap();
    assert!(
        second.iter().all(|o| matches!(
            o,
            Ok(AddOutcome::Updated {
                added_topics: 0,
                confirmed: false,
                ..
            })
        )),
        "{label}: {second:?}"
    );
    assert_eq!(
        store
            .list_subscribers(&SubscriberFilter::default())
            .await
            .unwrap()
            .len(),
        50
    );
}

per_backend!(purges_only_old_unconfirmed);
async fn purges_only_old_unconfirmed(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    add(
        &store,
        "old@example.com",
        &["rust"],
        SubscriberStatus::Pending,
        t0(),
    )
    .await;
    add(
        &store,
        "new@example.com",
        &["rust"],
        SubscriberStatus::Pending,
        t0() + Duration::days(20),
    )
    .await;
    add(
        &store,
        "ok@example.com",
        &["rust"],
        SubscriberStatus::Confirmed,
        t0(),
    )
    .await;
    let n = store
        .purge_unconfirmed(t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(n, 1, "{label}");
    let left = emails(&store, SubscriberFilter::default()).await;
    assert_eq!(left, ["new@example.com", "ok@example.com"], "{label}");
}

per_backend!(
    concurrent_writers_never_fail_with_locked_database,
    flavor = "multi_thread",
    worker_threads = 2
);
/// Many writers at once on one database (SQLite with a pool of several connections included):
/// every write succeeds, none fails with "database is locked".
async fn concurrent_writers_never_fail_with_locked_database(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let email = format!("writer{i}@example.com");
            let out = store
                .add_subscriber(
                    &new(&email, &["rust", "go"], SubscriberStatus::Confirmed),
                    t0(),
                )
                .await?;
            let AddOutcome::Created { id } = out else {
                panic!("{out:?}")
            };
            store.leave_topic(id, "go", t0()).await?;
            store.unsubscribe_all(id, t0()).await?;
            Ok::<_, tidings::store::StoreError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap_or_else(|e| panic!("{label}: {e}"));
    }
    let unsubscribed = store
        .list_subscribers(&SubscriberFilter {
            topic: None,
            status: Some(SubscriberStatus::Unsubscribed),
        })
        .await
        .unwrap();
    assert_eq!(unsubscribed.len(), 40, "{label}");
}
