//! Delivery against a real SMTP server over TCP on loopback (tests/support/smtp.rs), on SQLite
//! and, when a test cluster is available, PostgreSQL: exactly-once delivery, retries of 4xx and
//! of connections dropped after the final ".", bounces, unsubscribes between enqueue and claim,
//! concurrent claimers, two worker pools, and a `tidings send` killed with SIGKILL mid-batch;
//! the modules below add the SMTP session, the CLI, unknown outcomes and bounces, taking over a
//! dead process's leases, and transactional mail typed into the web form.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tidings::config::Settings;
use tidings::delivery::{self, Clock, RetryPolicy};
use tidings::domain::{
    ArticleSource, DeliveryStatus, Digest, DigestEntry, SubscriberEmail, SubscriberStatus,
};
use tidings::store::{ArticleUpsert, Store};
use tidings::web::{AppState, Application};

use crate::support::cli::{Workers, send_command};
use crate::support::db::{self, Backend, per_backend};
use crate::support::smtp::{Faults, Received, SmtpServer, Stage};

mod cli;
mod connection;
mod outcomes;
mod takeover;
mod transactional;
mod verp;

const TOPIC: &str = "rust";

fn settings(port: u16, extra_delivery: &str) -> Settings {
    let concurrency = if extra_delivery.contains("concurrency") {
        ""
    } else {
        "concurrency = 4"
    };
    let outbox = tempfile::tempdir().unwrap().keep();
    Settings::from_toml(&format!(
        r#"
[newsletter]
base_url = "http://127.0.0.1:9"
from = "Tidings <news@example.com>"

[delivery]
transport = "smtp"
outbox_dir = "{}"
{concurrency}
retry_base_secs = 60
retry_max_secs = 600
lease_secs = 30
batch_size = 5
{extra_delivery}

[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
timeout_secs = 5

[[topics]]
slug = "rust"
name = "Rust"
description = "The Rust language."

[[topics]]
slug = "go"
name = "Go"
"#,
        outbox.display()
    ))
    .unwrap()
}

/// A clock that tests move forward by hand.
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(AtomicI64::new(0)))
    }
    fn clock(&self) -> Clock {
        let offset = self.0.clone();
        Arc::new(move || Utc::now() + chrono::Duration::seconds(offset.load(Ordering::SeqCst)))
    }
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    /// Delivers everything due at this clock's time, as worker "w".
    async fn deliver(&self, settings: &Settings, store: &Store) -> delivery::DeliveryReport {
        delivery::deliver_until_idle(settings, store, "w", self.clock())
            .await
            .unwrap()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 2, 8, 0, 0).unwrap()
}

async fn add(store: &Store, email: &str, topics: &[&str], status: SubscriberStatus) -> i64 {
    db::add_subscriber(store, email, topics, status).await
}

/// A confirmed reader of TOPIC.
async fn reader(store: &Store, email: &str) -> i64 {
    add(store, email, &[TOPIC], SubscriberStatus::Confirmed).await
}

/// Freezes an issue of TOPIC with `n` articles and queues it for its confirmed readers.
async fn queued_issue(store: &Store, n: u32) -> i64 {
    let id = issue(store, TOPIC, n).await;
    store.enqueue_issue(id, TOPIC, Utc::now()).await.unwrap();
    id
}

/// Freezes an issue of `topic` with `n` articles.
async fn issue(store: &Store, topic: &str, n: u32) -> i64 {
    let mut entries = Vec::new();
    for i in 1..=n {
        let url = format!("https://example.com/{topic}/{i}");
        let source = ArticleSource {
            source_name: "hn".into(),
            source_kind: "hackernews".into(),
            external_id: format!("{topic}{i}"),
            points: Some(100 - i64::from(i)),
            comments: Some(5),
            discussion_url: None,
            text: None,
            tags: vec![],
            published_at: t0(),
        };
        let title = format!("Article {i} about {topic}");
        let id = store
            .upsert_article(
                &ArticleUpsert {
                    canonical_url: &url,
                    url: &url,
                    domain: "example.com",
                    title: &title,
                    source: &source,
                },
                Utc::now(),
            )
            .await
            .unwrap();
        entries.push(DigestEntry {
            position: i,
            article_id: id,
            title,
            url,
            domain: "example.com".into(),
            published_at: t0(),
            summary: format!("Summary of article {i}."),
            score: 1.0,
            sources: vec![],
        });
    }
    let digest = Digest {
        issue_id: None,
        topic_slug: topic.into(),
        topic_name: topic.to_uppercase(),
        topic_description: "About it.".into(),
        window_start: t0() - chrono::Duration::days(7),
        window_end: t0(),
        window_days: 7,
        entries,
    };
    store.insert_issue(&digest, Utc::now()).await.unwrap().0.id
}

/// Checks one captured message the way a mailbox provider would, returning its Message-ID.
fn check_message(m: &Received) -> String {
    let text = String::from_utf8(m.raw.clone()).expect("UTF-8 message");
    let head = text.split("\r\n\r\n").next().unwrap();
    for name in ["From", "To", "Date", "Subject", "Message-ID"] {
        let n = head
            .split("\r\n")
            .filter(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .count();
        assert_eq!(n, 1, "{name} appears {n} times in\n{head}");
    }
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.raw)
        .expect("parses as MIME");
    let plain = parsed
        .parts
        .iter()
        .position(|p| p.is_text() && !p.is_text_html())
        .expect("a text/plain part");
    let html = parsed
        .parts
        .iter()
        .position(|p| p.is_text_html())
        .expect("a text/html part");
    assert!(plain < html, "text/plain must come before text/html");
    let to = parsed
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap()
        .to_string();
    assert_eq!(vec![to], m.to, "To header matches the envelope");
    parsed.message_id().expect("Message-ID").to_string()
}

/// Types `email` into the subscribe form of the real app (with `settings`) served on loopback;
/// what the form queues is left in the outbox.
async fn subscribe_through_the_form(settings: &Settings, store: &Store, email: &str) {
    let state = AppState::new(Arc::new(settings.clone()), store.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let web = tokio::spawn(
        Application::from_listener(state, listener).run_until(async move {
            let _ = stopped.await;
        }),
    );
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/subscribe"))
        .form(&[("email", email), ("topic", TOPIC)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let _ = stop.send(());
    let _ = web.await;
}

fn recipients(msgs: &[Received]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in msgs {
        for r in &m.to {
            *out.entry(r.clone()).or_default() += 1;
        }
    }
    out
}

async fn status_of(store: &Store, issue: i64) -> BTreeMap<String, i64> {
    store.counts_by_status(Some(issue)).await.unwrap()
}

per_backend!(each_confirmed_subscriber_gets_exactly_one_message_and_a_second_run_sends_nothing);
async fn each_confirmed_subscriber_gets_exactly_one_message_and_a_second_run_sends_nothing(
    backend: Backend,
) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let settings = settings(server.port, "");
    let mut confirmed = HashSet::new();
    for i in 0..12 {
        let e = format!("reader{i}@example.org");
        reader(&store, &e).await;
        confirmed.insert(e);
    }
    add(
        &store,
        "pending@example.org",
        &[TOPIC],
        SubscriberStatus::Pending,
    )
    .await;
    add(
        &store,
        "other-topic@example.org",
        &["go"],
        SubscriberStatus::Confirmed,
    )
    .await;
    let gone = reader(&store, "gone@example.org").await;
    store.unsubscribe_all(gone, Utc::now()).await.unwrap();
    let issue = issue(&store, TOPIC, 3).await;

    assert_eq!(
        store.enqueue_issue(issue, TOPIC, Utc::now()).await.unwrap(),
        12,
        "{label}"
    );
    assert_eq!(
        store.enqueue_issue(issue, TOPIC, Utc::now()).await.unwrap(),
        0,
        "{label}: idempotent"
    );
    let clock = TestClock::new();
    let report = delivery::deliver_until_idle(&settings, &store, "w1", clock.clock())
        .await
        .unwrap();
    assert_eq!(report.sent, 12, "{label}: {report:?}");

    let got = server.received();
    let by_rcpt = recipients(&got);
    assert_eq!(
        by_rcpt.keys().cloned().collect::<HashSet<_>>(),
        confirmed,
        "{label}"
    );
    assert!(by_rcpt.values().all(|n| *n == 1), "{label}: {by_rcpt:?}");
    let ids: HashSet<String> = got.iter().map(check_message).collect();
    assert_eq!(
        ids.len(),
        12,
        "{label}: Message-IDs are unique per subscriber"
    );

    // A second run (even an hour later) sends nothing: no row is due.
    clock.advance(3600);
    store.enqueue_issue(issue, TOPIC, Utc::now()).await.unwrap();
    let again = delivery::deliver_until_idle(&settings, &store, "w2", clock.clock())
        .await
        .unwrap();
    assert_eq!(again.attempted(), 0, "{label}: {again:?}");
    assert_eq!(server.received().len(), 12, "{label}");
    assert_eq!(
        status_of(&store, issue).await.get("sent"),
        Some(&12),
        "{label}"
    );
}

per_backend!(temporary_failures_mid_batch_are_retried_after_backoff_and_delivered_once);
async fn temporary_failures_mid_batch_are_retried_after_backoff_and_delivered_once(
    backend: Backend,
) {
    // One worker, so that message 2 comes over a reused connection: its 421 is what a server
    // that timed out an idle client says, and it is sent again at once over a new connection.
    // The 450 and 451 are deferred with backoff, on a connection that is kept (RSET).
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults {
        replies: vec![
            (
                2,
                Stage::Mail,
                "421 4.3.2 shutting down, come back later".into(),
            ),
            (4, Stage::Rcpt, "450 4.2.1 mailbox busy".into()),
            (6, Stage::Data, "451 4.3.0 local error".into()),
        ],
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "concurrency = 1");
    for i in 0..10 {
        reader(&store, &format!("r{i}@example.org")).await;
    }
    let issue = queued_issue(&store, 2).await;
    let clock = TestClock::new();
    let first = clock.deliver(&settings, &store).await;
    assert_eq!((first.sent, first.deferred), (8, 2), "{label}: {first:?}");
    assert_eq!(
        server.connections(),
        2,
        "{label}: only the 421 closed a connection"
    );
    let deferred = store
        .list_deliveries(Some(issue), Some(DeliveryStatus::Deferred))
        .await
        .unwrap();
    assert_eq!(deferred.len(), 2, "{label}");
    assert!(
        deferred
            .iter()
            .all(|d| d.last_reply.as_deref().is_some_and(|r| r.contains("4."))),
        "{label}: {deferred:?}"
    );

    // Not yet due: nothing happens.
    let early = clock.deliver(&settings, &store).await;
    assert_eq!(early.attempted(), 0, "{label}");
    // After the backoff (60 s for a first failure) they go out.
    clock.advance(61);
    let second = clock.deliver(&settings, &store).await;
    assert_eq!(second.sent, 2, "{label}: {second:?}");
    let by_rcpt = recipients(&server.received());
    assert_eq!(by_rcpt.len(), 10, "{label}");
    assert!(by_rcpt.values().all(|n| *n == 1), "{label}: {by_rcpt:?}");
}

per_backend!(a_bad_mailbox_fails_the_delivery_and_marks_the_subscriber_bounced);
async fn a_bad_mailbox_fails_the_delivery_and_marks_the_subscriber_bounced(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults {
        bad_mailboxes: HashSet::from(["nobody@example.org".to_string()]),
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "");
    let bad = reader(&store, "nobody@example.org").await;
    reader(&store, "somebody@example.org").await;
    let issue = queued_issue(&store, 1).await;
    let report = TestClock::new().deliver(&settings, &store).await;
    assert_eq!(
        (report.sent, report.failed, report.bounced),
        (1, 1, 1),
        "{label}: {report:?}"
    );
    let failed = store
        .list_deliveries(Some(issue), Some(DeliveryStatus::Failed))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "{label}");
    assert!(
        failed[0]
            .last_reply
            .as_deref()
            .unwrap_or("")
            .contains("5.1.1"),
        "{label}: {failed:?}"
    );
    let sub = store.get_subscriber(bad).await.unwrap().unwrap();
    assert_eq!(sub.status, SubscriberStatus::Bounced, "{label}");
    assert!(
        store
            .suppression_reason(&SubscriberEmail::parse("nobody@example.org").unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

per_backend!(a_connection_dropped_after_the_final_dot_is_retried_with_the_same_message_id);
async fn a_connection_dropped_after_the_final_dot_is_retried_with_the_same_message_id(
    backend: Backend,
) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults {
        drop_after_data: HashSet::from([1]),
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "concurrency = 1");
    reader(&store, "only@example.org").await;
    queued_issue(&store, 1).await;
    let clock = TestClock::new();
    let first = clock.deliver(&settings, &store).await;
    assert_eq!(
        (first.sent, first.deferred, first.unknown),
        (0, 1, 1),
        "{label}: {first:?}"
    );
    assert_eq!(server.dropped().len(), 1, "{label}");
    clock.advance(61);
    let second = clock.deliver(&settings, &store).await;
    assert_eq!(second.sent, 1, "{label}: {second:?}");
    let dropped_id = check_message(&server.dropped()[0]);
    let got = server.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        check_message(&got[0]),
        dropped_id,
        "{label}: same Message-ID on the retry"
    );
}

per_backend!(an_unsubscribe_between_enqueue_and_claim_stops_the_message);
async fn an_unsubscribe_between_enqueue_and_claim_stops_the_message(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let settings = settings(server.port, "");
    let leaver = add(
        &store,
        "leaver@example.org",
        &[TOPIC, "go"],
        SubscriberStatus::Confirmed,
    )
    .await;
    let quitter = reader(&store, "quitter@example.org").await;
    reader(&store, "stayer@example.org").await;
    let issue = issue(&store, TOPIC, 1).await;
    assert_eq!(
        store.enqueue_issue(issue, TOPIC, Utc::now()).await.unwrap(),
        3
    );
    store.leave_topic(leaver, TOPIC, Utc::now()).await.unwrap();
    store.unsubscribe_all(quitter, Utc::now()).await.unwrap();
    let report = TestClock::new().deliver(&settings, &store).await;
    assert_eq!(report.sent, 1, "{label}: {report:?}");
    assert_eq!(
        recipients(&server.received()).keys().collect::<Vec<_>>(),
        vec!["stayer@example.org"]
    );
    assert_eq!(
        status_of(&store, issue).await.get("skipped"),
        Some(&2),
        "{label}"
    );
}

per_backend!(retry_requeues_failed_and_deferred_deliveries_keeping_attempts);
async fn retry_requeues_failed_and_deferred_deliveries_keeping_attempts(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults {
        replies: vec![
            (1, Stage::Rcpt, "554 5.7.1 relay denied".into()),
            (2, Stage::Mail, "451 4.3.2 later".into()),
        ],
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "concurrency = 1");
    reader(&store, "a@example.org").await;
    reader(&store, "b@example.org").await;
    let issue = queued_issue(&store, 1).await;
    let clock = TestClock::new();
    let first = clock.deliver(&settings, &store).await;
    assert_eq!(
        (first.failed, first.deferred, first.bounced),
        (1, 1, 0),
        "{label}: {first:?}"
    );
    assert_eq!(
        store.requeue_issue(issue, clock.clock()()).await.unwrap(),
        2,
        "{label}"
    );
    let second = clock.deliver(&settings, &store).await;
    assert_eq!(second.sent, 2, "{label}: {second:?}");
    let rows = store.list_deliveries(Some(issue), None).await.unwrap();
    assert!(
        rows.iter().all(|r| r.attempts == 2 && r.status == "sent"),
        "{label}: {rows:?}"
    );
}

#[tokio::test]
async fn deferred_deliveries_fail_after_max_attempts() {
    let store = db::sqlite().await;
    let server = SmtpServer::start(Faults {
        replies: (1..=10)
            .map(|n| (n, Stage::Mail, "450 4.7.1 greylisted".to_string()))
            .collect(),
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "max_attempts = 3");
    reader(&store, "grey@example.org").await;
    let issue = queued_issue(&store, 1).await;
    let clock = TestClock::new();
    for _ in 0..3 {
        clock.deliver(&settings, &store).await;
        clock.advance(3600);
    }
    let rows = store.list_deliveries(Some(issue), None).await.unwrap();
    assert_eq!(
        (rows[0].status.as_str(), rows[0].attempts),
        ("failed", 3),
        "{rows:?}"
    );
    let policy = RetryPolicy::from_settings(&settings.delivery);
    assert_eq!(policy.backoff(2), chrono::Duration::seconds(120));
}

per_backend!(many_concurrent_claimers_claim_every_row_exactly_once);
async fn many_concurrent_claimers_claim_every_row_exactly_once(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    for i in 0..200 {
        reader(&store, &format!("c{i}@example.org")).await;
    }
    queued_issue(&store, 1).await;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_due(
                        &format!("claimer{w}"),
                        Utc::now(),
                        chrono::Duration::seconds(60),
                        7,
                    )
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.id));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "{label}: claimed {} rows", all.len());
    assert_eq!(unique.len(), 200, "{label}: a row was claimed twice");
}

#[tokio::test]
async fn two_worker_pools_on_postgres_deliver_every_message_exactly_once_and_share_the_work() {
    let Some(url) = db::postgres_url().await else {
        return;
    };
    let a = Store::open(&url, 10).await.unwrap();
    let b = Store::open(&url, 10).await.unwrap();
    let server = SmtpServer::start(Faults {
        delay: Some(Duration::from_millis(5)),
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "");
    for i in 0..120 {
        add(
            &a,
            &format!("p{i}@example.org"),
            &[TOPIC],
            SubscriberStatus::Confirmed,
        )
        .await;
    }
    let issue = issue(&a, TOPIC, 2).await;
    a.enqueue_issue(issue, TOPIC, Utc::now()).await.unwrap();
    let (ra, rb) = tokio::join!(
        delivery::deliver_until_idle(&settings, &a, "pool-a", delivery::system_clock()),
        delivery::deliver_until_idle(&settings, &b, "pool-b", delivery::system_clock()),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.sent + rb.sent, 120, "{ra:?} {rb:?}");
    assert!(
        ra.sent > 0 && rb.sent > 0,
        "both pools send some: {ra:?} {rb:?}"
    );
    let by_rcpt = recipients(&server.received());
    assert_eq!(by_rcpt.len(), 120);
    assert!(by_rcpt.values().all(|n| *n == 1), "{by_rcpt:?}");
}

per_backend!(
    a_send_killed_mid_batch_resumes_and_reaches_everyone_with_at_most_concurrency_duplicates
);
async fn a_send_killed_mid_batch_resumes_and_reaches_everyone_with_at_most_concurrency_duplicates(
    backend: Backend,
) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let server = SmtpServer::start(Faults {
        delay: Some(Duration::from_millis(20)),
        ..Faults::default()
    })
    .await;
    let store = Store::open(&url, 5).await.unwrap();
    let total = 60;
    for i in 0..total {
        reader(&store, &format!("k{i}@example.org")).await;
    }
    let issue = issue(&store, TOPIC, 2).await;
    let workers = Workers {
        concurrency: 3,
        batch_size: 4,
        lease_secs: 2,
    };
    let command = || send_command(&url, server.port, issue, &workers);
    let mut child = command().spawn().unwrap();
    server.wait_for(10, Duration::from_secs(60)).await;
    child.start_kill().unwrap(); // SIGKILL
    let _ = child.wait().await;
    let before_restart = server.received().len();
    assert!(
        before_restart < total,
        "{label}: killed too late ({before_restart})"
    );

    let out = command().output().await.unwrap();
    assert!(
        out.status.success(),
        "{label}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = server.received();
    let by_rcpt = recipients(&got);
    assert_eq!(by_rcpt.len(), total, "{label}: everyone reached");
    let duplicates: usize = by_rcpt.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= 3,
        "{label}: {duplicates} duplicates with concurrency 3"
    );
    assert_eq!(
        status_of(&store, issue).await.get("sent"),
        Some(&(total as i64)),
        "{label}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("totals: sent 60"), "{label}: {stdout}");
}
