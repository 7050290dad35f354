//! `tidings send`, `tidings deliveries` through the built binary, against the in-process SMTP
//! server on loopback (`tls = "none"`), on SQLite and, when a cluster is available, PostgreSQL:
//! `--to` test copies, `--dry-run`, the delivery listing (`--json`, `--status`, each record's
//! kind and time, the `unknown` status), exit code 1 when every connection is refused, an issue
//! without articles, and a second `send`.

use std::collections::HashSet;

use tidings::domain::SubscriberStatus;
use tidings::store::Store;

use super::{TOPIC, add, check_message, issue, reader, recipients};
use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db::{self, Backend, per_backend};
use crate::support::smtp::{Faults, SmtpServer};

/// A config sending through SMTP on 127.0.0.1:`port` without TLS.
fn env_for(url: &str, port: u16) -> TestEnv {
    let env = TestEnv::new(url, "");
    let text = format!(
        r#"[database]
url = "{url}"

[newsletter]
base_url = "http://127.0.0.1:9"
from = "Tidings <news@example.com>"
postal_address = "1 Example Street, Exampleville"

[delivery]
transport = "smtp"
outbox_dir = "{}"
concurrency = 2
batch_size = 4
lease_secs = 30
retry_base_secs = 60

[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
timeout_secs = 5

{}"#,
        env.path("outbox").display(),
        crate::support::cli::TOPICS
    );
    std::fs::write(&env.config, text).unwrap();
    env
}

/// [`env_for`] with one delivery worker, so messages go out in a known order.
fn env_with_one_worker(url: &str, port: u16) -> TestEnv {
    let env = env_for(url, port);
    let config = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("concurrency = 2", "concurrency = 1");
    std::fs::write(&env.config, config).unwrap();
    env
}

/// Runs the binary without blocking the runtime that serves the SMTP server.
async fn run(env: &TestEnv, args: &[&str]) -> std::process::Output {
    tokio::process::Command::from(env.command())
        .args(args)
        .output()
        .await
        .expect("run tidings")
}

/// A migrated store with `n` confirmed subscribers of `rust` and an issue of 3 articles.
async fn seeded(url: &str, n: usize) -> (Store, i64) {
    let store = Store::open(url, 2).await.unwrap();
    for i in 0..n {
        reader(&store, &format!("reader{i}@example.org")).await;
    }
    let id = issue(&store, TOPIC, 3).await;
    (store, id)
}

/// `tidings send --topic rust --issue ID`.
async fn send_issue(env: &TestEnv, id: &str) -> std::process::Output {
    run(env, &["send", "--topic", TOPIC, "--issue", id]).await
}

fn assert_ok(label: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{label}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

per_backend!(send_to_one_address_sends_one_copy_and_records_no_delivery);
async fn send_to_one_address_sends_one_copy_and_records_no_delivery(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let env = env_for(&url, server.port);
    let (store, issue) = seeded(&url, 3).await;
    let id = issue.to_string();
    let out = run(
        &env,
        &[
            "send",
            "--topic",
            TOPIC,
            "--issue",
            &id,
            "--to",
            "editor@example.net",
        ],
    )
    .await;
    assert_ok(label, &out);
    assert!(
        stdout(&out).contains("test copy sent to editor@example.net"),
        "{label}: {}",
        stdout(&out)
    );
    let got = server.received();
    assert_eq!(got.len(), 1, "{label}: exactly one copy");
    assert_eq!(got[0].to, vec!["editor@example.net".to_string()], "{label}");
    check_message(&got[0]);
    assert!(
        store
            .list_deliveries(Some(issue), None)
            .await
            .unwrap()
            .is_empty(),
        "{label}: a test copy is not a delivery"
    );

    let bad = run(
        &env,
        &[
            "send",
            "--topic",
            TOPIC,
            "--issue",
            &id,
            "--to",
            "not-an-address",
        ],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2), "{label}: {}", stderr(&bad));
    assert!(stderr(&bad).contains("--to"), "{label}: {}", stderr(&bad));
    assert_eq!(server.received().len(), 1, "{label}");
}

per_backend!(dry_run_sends_nothing_and_reports_what_would_be_sent);
async fn dry_run_sends_nothing_and_reports_what_would_be_sent(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let env = env_for(&url, server.port);
    let (store, issue) = seeded(&url, 4).await;
    add(
        &store,
        "pending@example.org",
        &[TOPIC],
        SubscriberStatus::Pending,
    )
    .await;
    let id = issue.to_string();
    let out = run(
        &env,
        &["send", "--topic", TOPIC, "--issue", &id, "--dry-run"],
    )
    .await;
    assert_ok(label, &out);
    let text = stdout(&out);
    assert!(text.contains("dry run"), "{label}: {text}");
    assert!(
        text.contains("4 message(s) would go out now (4 new, 0 due again)"),
        "{label}: {text}"
    );
    assert!(
        text.contains("Article 1 about rust"),
        "{label}: subject in {text}"
    );
    assert!(server.received().is_empty(), "{label}: nothing sent");
    assert!(
        store
            .list_deliveries(Some(issue), None)
            .await
            .unwrap()
            .is_empty(),
        "{label}: nothing queued"
    );
}

per_backend!(deliveries_lists_records_as_json_and_filters_by_status);
async fn deliveries_lists_records_as_json_and_filters_by_status(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let server = SmtpServer::start(Faults {
        bad_mailboxes: HashSet::from(["reader1@example.org".to_string()]),
        ..Faults::default()
    })
    .await;
    let env = env_for(&url, server.port);
    let (_store, issue) = seeded(&url, 3).await;
    let id = issue.to_string();
    let out = send_issue(&env, &id).await;
    assert_ok(label, &out);
    assert!(
        stdout(&out).contains("this run sent 2, deferred 0, failed 1 (1 bounced)"),
        "{label}: {}",
        stdout(&out)
    );

    let all = run(&env, &["deliveries", "--issue", &id, "--json"]).await;
    assert_ok(label, &all);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(rows.len(), 3, "{label}: {rows:?}");
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["issue_id"], serde_json::json!(issue), "{label}");
            (
                r["email"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("reader0@example.org".into(), "sent".into()),
            ("reader1@example.org".into(), "failed".into()),
            ("reader2@example.org".into(), "sent".into()),
        ],
        "{label}"
    );
    let failed_reply = rows
        .iter()
        .find(|r| r["status"] == "failed")
        .and_then(|r| r["last_reply"].as_str())
        .unwrap();
    assert!(failed_reply.contains("5.1.1"), "{label}: {failed_reply}");

    let failed = run(
        &env,
        &["deliveries", "--issue", &id, "--status", "failed", "--json"],
    )
    .await;
    assert_ok(label, &failed);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(rows.len(), 1, "{label}: {rows:?}");
    assert_eq!(rows[0]["email"], "reader1@example.org", "{label}");

    // The table form filters the same way.
    let sent = run(&env, &["deliveries", "--issue", &id, "--status", "sent"]).await;
    assert_ok(label, &sent);
    let table = stdout(&sent);
    assert_eq!(
        table.lines().count(),
        3,
        "{label}: header + 2 rows\n{table}"
    );
    assert!(!table.contains("reader1@"), "{label}: {table}");

    let bogus = run(&env, &["deliveries", "--status", "lost"]).await;
    assert_eq!(bogus.status.code(), Some(2), "{label}: {}", stderr(&bogus));
    assert!(
        stderr(&bogus).contains("--status"),
        "{label}: {}",
        stderr(&bogus)
    );
}

per_backend!(send_exits_1_with_a_one_line_reason_when_every_connection_is_refused);
async fn send_exits_1_with_a_one_line_reason_when_every_connection_is_refused(backend: Backend) {
    // A port nobody listens on: bind one, then close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let env = env_for(&url, closed);
    let (store, issue) = seeded(&url, 3).await;
    let id = issue.to_string();
    let out = send_issue(&env, &id).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{label}: stdout {} stderr {}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{label}: one error line in\n{err}");
    assert!(
        errors[0].contains("could not deliver") && errors[0].contains("refused"),
        "{label}: {}",
        errors[0]
    );
    // Nothing is lost: the messages wait as deferred for the next run.
    let counts = store.counts_by_status(Some(issue)).await.unwrap();
    assert_eq!(counts.get("sent"), None, "{label}: {counts:?}");
    assert_eq!(counts.get("deferred"), Some(&3), "{label}: {counts:?}");
}

per_backend!(a_digest_without_articles_is_not_sent);
async fn a_digest_without_articles_is_not_sent(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let env = env_for(&url, server.port);
    let store = Store::open(&url, 2).await.unwrap();
    reader(&store, "reader@example.org").await;
    // No articles at all: `send` freezes no issue for the period and sends nothing.
    let out = run(
        &env,
        &["send", "--topic", TOPIC, "--at", "2026-02-09T08:00:00Z"],
    )
    .await;
    assert_ok(label, &out);
    let text = stdout(&out);
    assert!(text.contains("nothing to send"), "{label}: {text}");
    assert!(server.received().is_empty(), "{label}");
    assert!(
        store.list_deliveries(None, None).await.unwrap().is_empty(),
        "{label}: nothing queued"
    );
}

per_backend!(a_second_send_of_the_same_issue_sends_nothing);
async fn a_second_send_of_the_same_issue_sends_nothing(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let env = env_for(&url, server.port);
    let (store, issue) = seeded(&url, 5).await;
    let id = issue.to_string();
    let first = send_issue(&env, &id).await;
    assert_ok(label, &first);
    assert!(
        stdout(&first).contains("this run sent 5"),
        "{label}: {}",
        stdout(&first)
    );
    let by_rcpt = recipients(&server.received());
    assert_eq!(by_rcpt.len(), 5, "{label}");
    assert!(by_rcpt.values().all(|n| *n == 1), "{label}: {by_rcpt:?}");

    let second = send_issue(&env, &id).await;
    assert_ok(label, &second);
    let text = stdout(&second);
    assert!(
        text.contains("this run sent 0, deferred 0, failed 0"),
        "{label}: {text}"
    );
    assert!(text.contains("totals: sent 5"), "{label}: {text}");
    assert_eq!(server.received().len(), 5, "{label}: nothing more sent");
    assert_eq!(
        store
            .counts_by_status(Some(issue))
            .await
            .unwrap()
            .get("sent"),
        Some(&5),
        "{label}"
    );
}

#[tokio::test]
async fn trace_logs_show_neither_the_smtp_password_nor_link_tokens() {
    use base64::Engine as _;
    let url = db::sqlite_url();
    let password = "s3cret-pw-4711";
    let server = SmtpServer::start(Faults {
        auth: Some(("news".into(), password.into())),
        ..Faults::default()
    })
    .await;
    let env = env_for(&url, server.port);
    let config = std::fs::read_to_string(&env.config).unwrap().replace(
        "timeout_secs = 5\n",
        &format!("timeout_secs = 5\nusername = \"news\"\npassword = \"{password}\"\n"),
    );
    std::fs::write(&env.config, config).unwrap();
    let (_store, issue) = seeded(&url, 2).await;
    let id = issue.to_string();
    let out = run(
        &env,
        &["--log", "trace", "send", "--topic", TOPIC, "--issue", &id],
    )
    .await;
    assert_ok("sqlite", &out);
    let got = server.received();
    assert_eq!(got.len(), 2);
    let logs = stderr(&out);
    assert!(logs.contains("DEBUG"), "debug logging was on: {logs}");
    let auth_line = base64::engine::general_purpose::STANDARD.encode(format!("\0news\0{password}"));
    assert!(!logs.contains(password), "password in the logs");
    assert!(!logs.contains(&auth_line), "AUTH PLAIN line in the logs");
    for m in &got {
        let raw = String::from_utf8_lossy(&m.raw);
        let link = raw
            .lines()
            .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
            .and_then(|l| l.strip_suffix('>'))
            .expect("a List-Unsubscribe header");
        let token = link.rsplit('/').next().unwrap_or_default();
        assert!(token.len() > 10, "{link}");
        assert!(!logs.contains(token), "an unsubscribe token in the logs");
    }
}

per_backend!(deliveries_shows_each_records_kind_and_when_it_was_sent_or_is_due);
async fn deliveries_shows_each_records_kind_and_when_it_was_sent_or_is_due(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let server = SmtpServer::start(Faults {
        replies: vec![(
            1,
            crate::support::smtp::Stage::Rcpt,
            "451 4.3.0 later".into(),
        )],
        ..Faults::default()
    })
    .await;
    let env = env_with_one_worker(&url, server.port);
    let (store, issue) = seeded(&url, 2).await;
    let id = issue.to_string();
    assert_ok(label, &send_issue(&env, &id).await);
    let rows = store.list_deliveries(Some(issue), None).await.unwrap();
    let sent = rows.iter().find(|r| r.status == "sent").unwrap();
    let deferred = rows.iter().find(|r| r.status == "deferred").unwrap();

    let out = run(&env, &["deliveries", "--issue", &id]).await;
    assert_ok(label, &out);
    let table = stdout(&out);
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.contains("kind") && header.contains("when"),
        "{label}: {table}"
    );
    let line_of = |email: &str| {
        table
            .lines()
            .find(|l| l.contains(email))
            .unwrap_or_default()
            .to_string()
    };
    let sent_line = line_of(&sent.email);
    let sent_at = sent
        .sent_at
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert!(
        sent_line.contains("digest") && sent_line.contains(&format!("sent {sent_at}")),
        "{label}: {sent_line}"
    );
    let deferred_line = line_of(&deferred.email);
    let next = deferred
        .next_attempt_at
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert!(
        deferred_line.contains("digest") && deferred_line.contains(&format!("next {next}")),
        "{label}: {deferred_line}"
    );

    let json = run(&env, &["deliveries", "--issue", &id, "--json"]).await;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    for r in &rows {
        assert_eq!(r["kind"], "digest", "{label}: {r}");
        assert!(r["when"].is_string(), "{label}: {r}");
    }
}

per_backend!(deliveries_lists_a_message_whose_outcome_stayed_unknown);
async fn deliveries_lists_a_message_whose_outcome_stayed_unknown(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    // One worker: reader0's message is transaction 1, reader1's 2 and, after `retry`, 3.
    let server = SmtpServer::start(Faults {
        drop_after_data: HashSet::from([2, 3]),
        ..Faults::default()
    })
    .await;
    let env = env_with_one_worker(&url, server.port);
    let (_store, issue) = seeded(&url, 2).await;
    let id = issue.to_string();
    assert_ok(label, &send_issue(&env, &id).await);
    assert_ok(label, &run(&env, &["retry", "--issue", &id]).await);
    // Nothing was sent in this run, only an unknown outcome: its exit code is not the point.
    send_issue(&env, &id).await;
    assert_eq!(server.dropped().len(), 2, "{label}: one resend, no more");

    let out = run(&env, &["deliveries", "--issue", &id, "--status", "unknown"]).await;
    assert_ok(label, &out);
    let table = stdout(&out);
    assert_eq!(table.lines().count(), 2, "{label}: header + 1 row\n{table}");
    assert!(
        table.contains("reader1@example.org") && table.contains("unknown"),
        "{label}: {table}"
    );
}
