//! How outcomes are recorded, on SQLite and PostgreSQL: a message whose outcome stays unknown
//! (the relay took the data and hung up without a reply) is sent again only
//! `delivery.unknown_retries` times and then recorded `unknown`, counted by the copies that
//! reach the relay; and a bounce is recorded in one transaction with the subscriber's new
//! status, so a failure in between leaves neither half behind.

use std::collections::HashSet;

use tidings::domain::SubscriberStatus;
use tidings::store::Store;

use super::{TestClock, queued_issue, reader, settings};
use crate::support::db::{self, Backend, per_backend};
use crate::support::smtp::{Faults, SmtpServer};

/// One reader, a relay that hangs up after every final "." without a reply, `max_attempts = 3`
/// and `extra` settings: delivers until nothing more is due and returns (copies that reached
/// the relay, the row's status).
async fn copies_after_unknown_outcomes(store: &Store, extra: &str) -> (usize, String) {
    let server = SmtpServer::start(Faults {
        drop_after_data: (1..=20).collect::<HashSet<u64>>(),
        ..Faults::default()
    })
    .await;
    let settings = settings(
        server.port,
        &format!("concurrency = 1\nmax_attempts = 3\n{extra}"),
    );
    reader(store, "only@example.org").await;
    let issue = queued_issue(store, 1).await;
    let clock = TestClock::new();
    for _ in 0..5 {
        clock.deliver(&settings, store).await;
        clock.advance(3600);
    }
    let rows = store.list_deliveries(Some(issue), None).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(server.received().is_empty());
    (server.dropped().len(), rows[0].status.clone())
}

per_backend!(an_unknown_outcome_is_resent_once_then_recorded_unknown);
async fn an_unknown_outcome_is_resent_once_then_recorded_unknown(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let (copies, status) = copies_after_unknown_outcomes(&store, "").await;
    assert_eq!(
        (copies, status.as_str()),
        (2, "unknown"),
        "{label}: one resend by default, then unknown (neither sent nor failed)"
    );
}

#[tokio::test]
async fn with_no_unknown_retries_a_message_with_an_unknown_outcome_is_never_resent() {
    let store = db::sqlite().await;
    let (copies, status) = copies_after_unknown_outcomes(&store, "unknown_retries = 0").await;
    assert_eq!((copies, status.as_str()), (1, "unknown"));
}

/// Makes every change to a subscriber fail, as a database error between the two halves of
/// recording a bounce would.
async fn break_subscriber_updates(url: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER injected_failure BEFORE UPDATE ON subscribers \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(
            "CREATE FUNCTION injected_failure() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "CREATE TRIGGER injected_failure BEFORE UPDATE ON subscribers \
             FOR EACH ROW EXECUTE FUNCTION injected_failure()",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

async fn repair_subscriber_updates(url: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("DROP TRIGGER injected_failure")
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("DROP TRIGGER injected_failure ON subscribers")
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

per_backend!(a_bounce_and_its_delivery_are_recorded_together_or_not_at_all);
async fn a_bounce_and_its_delivery_are_recorded_together_or_not_at_all(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let url = url.as_str();
    let store = Store::open(url, 5).await.unwrap();
    let server = SmtpServer::start(Faults {
        bad_mailboxes: HashSet::from(["nobody@example.org".to_string()]),
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "concurrency = 1");
    let bad = reader(&store, "nobody@example.org").await;
    let issue = queued_issue(&store, 1).await;
    break_subscriber_updates(url).await;

    let clock = TestClock::new();
    let first = tidings::delivery::deliver_until_idle(&settings, &store, "w1", clock.clock()).await;
    assert!(first.is_err(), "{label}: the injected failure surfaces");
    let row = store.list_deliveries(Some(issue), None).await.unwrap()[0].clone();
    let subscriber = store.get_subscriber(bad).await.unwrap().unwrap();
    assert_eq!(subscriber.status, SubscriberStatus::Confirmed, "{label}");
    assert_ne!(
        row.status, "failed",
        "{label}: the delivery was recorded failed but the subscriber not bounced: {row:?}"
    );

    // Once the database works again, the next attempt records both.
    repair_subscriber_updates(url).await;
    clock.advance(3600);
    let second = clock.deliver(&settings, &store).await;
    assert_eq!(
        (second.failed, second.bounced),
        (1, 1),
        "{label}: {second:?}"
    );
    let row = store.list_deliveries(Some(issue), None).await.unwrap()[0].clone();
    assert_eq!(row.status, "failed", "{label}");
    let subscriber = store.get_subscriber(bad).await.unwrap().unwrap();
    assert_eq!(subscriber.status, SubscriberStatus::Bounced, "{label}");
}
