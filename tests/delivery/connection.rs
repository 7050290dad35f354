//! Each worker's SMTP session against the in-process server (SQLite; the session does not depend
//! on the backend): one connection carries many messages and survives refused ones, a connection
//! the server hung up on is replaced without deferring anything, only a recipient's reply can
//! bounce, a reply that never comes is cut off by the timeout or the lease, STARTTLS and
//! implicit TLS with a private CA (`smtp.ca_file`), a certificate from an unknown CA is refused,
//! and AUTH: the right password sends, a wrong one stops the run with every message still queued;
//! each step of setting up a session has its own timeout.

use std::collections::HashSet;
use std::time::Duration;

use tidings::config::{Secret, Settings, TlsMode};
use tidings::delivery;
use tidings::domain::{DeliveryStatus, SubscriberStatus};
use tidings::store::Store;

use super::{TestClock, queued_issue, reader, recipients, settings, status_of};
use crate::support::db;
use crate::support::smtp::{Faults, ServerTls, SmtpServer, Stage};

/// `n` confirmed readers of TOPIC and one issue queued for them; returns the issue id.
async fn queue(store: &Store, n: usize) -> i64 {
    for i in 0..n {
        reader(store, &format!("reader{i}@example.org")).await;
    }
    queued_issue(store, 3).await
}

/// Delivers everything due now with a fresh clock.
async fn deliver(settings: &Settings, store: &Store) -> delivery::DeliveryReport {
    TestClock::new().deliver(settings, store).await
}

/// Every reader got exactly one message.
fn assert_each_once(server: &SmtpServer, n: usize) {
    let by_rcpt = recipients(&server.received());
    assert_eq!(by_rcpt.len(), n, "{by_rcpt:?}");
    assert!(by_rcpt.values().all(|c| *c == 1), "{by_rcpt:?}");
}

#[tokio::test]
async fn one_connection_carries_every_message_of_a_worker() {
    let store = db::sqlite().await;
    let server = SmtpServer::start(Faults::default()).await;
    let settings = settings(server.port, "concurrency = 1");
    queue(&store, 6).await;
    let report = deliver(&settings, &store).await;
    assert_eq!(report.sent, 6, "{report:?}");
    assert_each_once(&server, 6);
    assert_eq!(server.connections(), 1, "the worker reuses its connection");
}

#[tokio::test]
async fn a_connection_the_server_hung_up_on_is_replaced_and_nothing_is_deferred() {
    let store = db::sqlite().await;
    let server = SmtpServer::start(Faults {
        close_after: Some(2),
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "concurrency = 1");
    let issue = queue(&store, 5).await;
    let report = deliver(&settings, &store).await;
    assert_eq!(report.sent, 5, "{report:?}");
    assert_eq!((report.deferred, report.unknown), (0, 0), "{report:?}");
    assert_each_once(&server, 5);
    // Two messages per connection: 5 messages need 3 connections.
    assert_eq!(server.connections(), 3);
    assert_eq!(status_of(&store, issue).await.get("sent"), Some(&5));
}

#[tokio::test]
async fn refused_messages_keep_the_connection_and_only_a_recipient_reply_bounces() {
    let store = db::sqlite().await;
    // Transactions in claim order: reader0 ok, reader1 unknown mailbox at RCPT, reader2 refused
    // after its data as spam, reader3 ok.
    let server = SmtpServer::start(Faults {
        bad_mailboxes: HashSet::from(["reader1@example.org".to_string()]),
        replies: vec![(3, Stage::Dot, "554 5.7.1 rejected as spam".into())],
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "concurrency = 1");
    let issue = queue(&store, 4).await;
    let report = deliver(&settings, &store).await;
    assert_eq!(
        (report.sent, report.failed, report.bounced),
        (2, 2, 1),
        "{report:?}"
    );
    assert_eq!(server.connections(), 1, "RSET kept the connection");
    let failed = store
        .list_deliveries(Some(issue), Some(DeliveryStatus::Failed))
        .await
        .unwrap();
    let replies: Vec<String> = failed.iter().filter_map(|d| d.last_reply.clone()).collect();
    assert!(replies.iter().any(|r| r.contains("5.1.1")), "{replies:?}");
    assert!(replies.iter().any(|r| r.contains("5.7.1")), "{replies:?}");
}

#[tokio::test]
async fn a_sender_refused_at_mail_defers_and_bounces_nobody() {
    let store = db::sqlite().await;
    let server = SmtpServer::start(Faults {
        replies: vec![(
            1,
            Stage::Mail,
            "553 5.1.8 sender address rejected: domain not found".into(),
        )],
        ..Faults::default()
    })
    .await;
    let settings = settings(server.port, "concurrency = 1");
    let issue = queue(&store, 1).await;
    let report = deliver(&settings, &store).await;
    assert_eq!(
        (report.sent, report.deferred, report.failed, report.bounced),
        (0, 1, 0, 0),
        "{report:?}"
    );
    let rows = store.list_deliveries(Some(issue), None).await.unwrap();
    let reply = rows[0].last_reply.clone().unwrap_or_default();
    assert!(
        reply.contains("refused the sender") && reply.contains("5.1.8"),
        "{reply}"
    );
    let readers = store
        .list_subscribers(&tidings::store::SubscriberFilter {
            topic: None,
            status: Some(SubscriberStatus::Confirmed),
        })
        .await
        .unwrap();
    assert_eq!(readers.len(), 1, "the reader is still confirmed");
}

#[tokio::test]
async fn a_reply_that_never_comes_is_cut_off_by_the_timeout_or_the_lease_and_deferred() {
    // The server takes 6 s to answer the final ".". First the command timeout (2 s) gives up;
    // then, with a 10 s timeout, the claim's 3 s lease cuts the send off in time to record it.
    for (timeout_secs, lease_secs, expected) in [
        (2u32, 30, "no reply within 2 s"),
        (10, 3, "the send did not finish within the claim's lease"),
    ] {
        let store = db::sqlite().await;
        let server = SmtpServer::start(Faults {
            delay: Some(Duration::from_secs(6)),
            ..Faults::default()
        })
        .await;
        let mut settings = settings(server.port, "concurrency = 1");
        settings.smtp.timeout_secs = timeout_secs.into();
        settings.delivery.lease_secs = lease_secs;
        let issue = queue(&store, 1).await;
        let report = deliver(&settings, &store).await;
        assert_eq!(
            (
                report.sent,
                report.deferred,
                report.unknown,
                report.lease_lost
            ),
            (0, 1, 1, 0),
            "{expected}: {report:?}"
        );
        let rows = store.list_deliveries(Some(issue), None).await.unwrap();
        let reply = rows[0].last_reply.clone().unwrap_or_default();
        assert!(
            reply.contains("unknown outcome") && reply.contains(expected),
            "{reply}"
        );
    }
}

/// `settings` for a TLS server: `mode`, trusting the server's CA when `trust` is set.
fn tls_settings(server: &SmtpServer, mode: TlsMode, trust: bool) -> Settings {
    let mut settings = settings(server.port, "concurrency = 1");
    settings.smtp.tls = mode;
    if trust {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("ca.pem");
        std::fs::write(&path, server.ca_pem.as_deref().unwrap()).unwrap();
        settings.smtp.ca_file = path.display().to_string();
    }
    settings
}

#[tokio::test]
async fn starttls_and_implicit_tls_deliver_over_an_encrypted_connection() {
    for (server_tls, client_tls) in [
        (ServerTls::Starttls, TlsMode::Starttls),
        (ServerTls::Implicit, TlsMode::Tls),
    ] {
        let store = db::sqlite().await;
        let server = SmtpServer::start(Faults {
            tls: Some(server_tls),
            ..Faults::default()
        })
        .await;
        let settings = tls_settings(&server, client_tls, true);
        queue(&store, 3).await;
        let report = deliver(&settings, &store).await;
        assert_eq!(report.sent, 3, "{server_tls:?}: {report:?}");
        assert_each_once(&server, 3);
        assert!(
            server.received().iter().all(|m| m.tls),
            "{server_tls:?}: every message came over TLS"
        );
        assert_eq!(server.connections(), 1, "{server_tls:?}");
    }
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let store = db::sqlite().await;
    let server = SmtpServer::start(Faults {
        tls: Some(ServerTls::Starttls),
        ..Faults::default()
    })
    .await;
    let settings = tls_settings(&server, TlsMode::Starttls, false);
    let issue = queue(&store, 1).await;
    let report = deliver(&settings, &store).await;
    assert_eq!((report.sent, report.deferred), (0, 1), "{report:?}");
    let error = report.last_error.unwrap_or_default();
    assert!(
        error.contains("STARTTLS") && error.contains("certificate"),
        "{error}"
    );
    assert!(server.received().is_empty());
    assert_eq!(status_of(&store, issue).await.get("deferred"), Some(&1));
}

#[tokio::test]
async fn a_missing_ca_file_is_a_clear_error() {
    let store = db::sqlite().await;
    let mut settings = settings(9, "");
    settings.smtp.tls = TlsMode::Starttls;
    settings.smtp.ca_file = "/nonexistent/ca.pem".into();
    let error = delivery::deliver_until_idle(&settings, &store, "w", TestClock::new().clock())
        .await
        .unwrap_err();
    let text = format!("{error:#}");
    assert!(
        text.contains("smtp.ca_file") && text.contains("/nonexistent/ca.pem"),
        "{text}"
    );
}

#[tokio::test]
async fn auth_with_the_right_password_sends_and_a_wrong_one_stops_the_run_leaving_messages_queued()
{
    let store = db::sqlite().await;
    let server = SmtpServer::start(Faults {
        auth: Some(("news".into(), "s3cret".into())),
        ..Faults::default()
    })
    .await;
    let issue = queue(&store, 12).await;
    let clock = TestClock::new();

    let mut wrong = settings(server.port, "concurrency = 2");
    wrong.smtp.username = "news".into();
    wrong.smtp.password = Secret::new("not-the-password");
    let report = delivery::deliver_until_idle(&wrong, &store, "w1", clock.clock())
        .await
        .unwrap();
    assert!(report.aborted, "{report:?}");
    assert_eq!((report.sent, report.failed), (0, 0), "{report:?}");
    let error = report.last_error.clone().unwrap_or_default();
    assert!(error.contains("login") && error.contains("535"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    let counts = status_of(&store, issue).await;
    assert_eq!(counts.get("failed"), None, "{counts:?}");
    assert!(server.received().is_empty());

    let mut right = wrong.clone();
    right.smtp.password = Secret::new("s3cret");
    clock.advance(3600);
    let report = delivery::deliver_until_idle(&right, &store, "w2", clock.clock())
        .await
        .unwrap();
    assert_eq!(report.sent, 12, "{report:?}");
    assert_each_once(&server, 12);
    let senders: HashSet<String> = server.received().iter().map(|m| m.from.clone()).collect();
    assert_eq!(senders.len(), 1);
}

#[tokio::test]
async fn a_relay_slow_at_every_set_up_step_but_within_the_timeout_gets_a_session() {
    // The greeting, EHLO, STARTTLS, EHLO again and AUTH each take 600 ms to answer; the timeout
    // is 1 s per step. One timeout around the whole set-up (3 s of steps) refused every session.
    let store = db::sqlite().await;
    let server = SmtpServer::start(Faults {
        step_delay: Some(Duration::from_millis(600)),
        tls: Some(ServerTls::Starttls),
        auth: Some(("news".into(), "s3cret".into())),
        ..Faults::default()
    })
    .await;
    let mut settings = tls_settings(&server, TlsMode::Starttls, true);
    settings.smtp.timeout_secs = 1u32.into();
    settings.smtp.username = "news".into();
    settings.smtp.password = Secret::new("s3cret");
    queue(&store, 2).await;
    let report = deliver(&settings, &store).await;
    assert_eq!((report.sent, report.deferred), (2, 0), "{report:?}");
    assert_each_once(&server, 2);
    assert!(server.received().iter().all(|m| m.tls));
}

#[tokio::test]
async fn a_set_up_step_slower_than_the_timeout_still_fails_and_names_the_step() {
    let store = db::sqlite().await;
    let server = SmtpServer::start(Faults {
        step_delay: Some(Duration::from_millis(2500)),
        ..Faults::default()
    })
    .await;
    let mut settings = settings(server.port, "concurrency = 1");
    settings.smtp.timeout_secs = 1u32.into();
    let issue = queue(&store, 1).await;
    let report = deliver(&settings, &store).await;
    assert_eq!((report.sent, report.deferred), (0, 1), "{report:?}");
    let error = report.last_error.unwrap_or_default();
    assert!(
        error.contains("greeting") && error.contains("no reply within 1 s"),
        "{error}"
    );
    assert_eq!(status_of(&store, issue).await.get("deferred"), Some(&1));
}
