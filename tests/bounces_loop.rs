//! The whole loop, on both backends and two ways in: a digest goes out over real SMTP with a
//! VERP return path per delivery; then a hard bounce, a complaint, an auto-reply and two soft
//! bounces for it come back, either as an MTA's pipe hands them over (`bounces ingest -` with
//! the envelope recipient, the VERP address, in `--recipient`) or delivered to the bounce
//! mailbox on a real IMAP server (Dovecot, started by `scripts/test`) with the VERP address in
//! `Delivered-To`, as an MTA delivers them, and taken by one poll; afterwards each subscriber's
//! status, last bounce and suppression are what the policy says. (The webhooks' loop over a
//! sent digest is in `tests/web/webhooks_ses.rs`.)

use serde_json::Value;

use crate::bounces::fixture;
use crate::bounces_ingest::pipe;
use crate::bounces_seen::message_id;
use crate::operator::{Op, Options, at, issue_in};
use crate::support::cli::{stderr, stdout};
use crate::support::db::{Backend, per_backend};
use crate::support::imap::{self, ImapServer};
use tidings::config::Settings;
use tidings::inbound::Ingester;
use tidings::inbound::imap::Poller;
use tidings::store::Store;

const READERS: [&str; 5] = [
    "gone@example.org",
    "angry@example.net",
    "reader@example.net",
    "full@example.org",
    "fine@example.org",
];

/// How the reports come back.
enum Way {
    Pipe,
    Imap(ImapServer),
}

per_backend!(reports_for_a_sent_digest_through_the_pipe_end_in_the_right_status_and_suppression);
async fn reports_for_a_sent_digest_through_the_pipe_end_in_the_right_status_and_suppression(
    backend: Backend,
) {
    the_loop(backend, Way::Pipe).await;
}

per_backend!(reports_for_a_sent_digest_through_imap_end_in_the_right_status_and_suppression);
async fn reports_for_a_sent_digest_through_imap_end_in_the_right_status_and_suppression(
    backend: Backend,
) {
    let Some(server) = imap::server() else {
        return;
    };
    the_loop(backend, Way::Imap(server)).await;
}

async fn the_loop(backend: Backend, way: Way) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let op = Op::start(&url, Options::default()).await;
    let mut config = std::fs::read_to_string(&op.env.config).expect("config");
    let user = match &way {
        Way::Pipe => {
            config.push_str("\n[bounces]\n");
            None
        }
        Way::Imap(server) => {
            let user = server.new_user();
            config.push('\n');
            config.push_str(&server.bounces_config(&user, 60));
            Some(user)
        }
    };
    config.push_str("address = \"bounces@news.example.com\"\n");
    std::fs::write(&op.env.config, config).expect("write config");
    for email in READERS {
        op.subscribe(email).await;
    }
    let when = at().to_rfc3339();
    op.ok(&["fetch", "--at", &when]).await;
    let sent = op.ok(&["send", "--topic", "rust", "--at", &when]).await;
    let issue = issue_in(&sent);
    let received = op.smtp.received();
    assert_eq!(received.len(), READERS.len(), "{label}: {sent}");
    // Each reader's envelope sender (the VERP address) and Message-ID.
    let sent_to = |email: &str| {
        let m = received
            .iter()
            .find(|m| m.to.iter().any(|t| t == email))
            .unwrap_or_else(|| panic!("{label}: nothing sent to {email}"));
        assert!(
            m.from.starts_with("bounces+") && m.from.ends_with("@news.example.com"),
            "{label}: MAIL FROM {}",
            m.from
        );
        (m.from.clone(), message_id(&m.raw))
    };

    // Each report with the Message-ID of what that reader was sent, as the pipe gets it.
    let report = |name: &str, email: &str, old_id: &str, new_key: Option<&str>| {
        let (verp, id) = sent_to(email);
        let mut text = std::fs::read_to_string(fixture(name)).expect("fixture");
        if !old_id.is_empty() {
            assert!(text.contains(old_id), "{name} names {old_id}");
            text = text.replace(old_id, &id);
        }
        if let Some(key) = new_key {
            text = text.replace("<soft-1@mx.example.org>", key);
        }
        (verp, text)
    };
    let reports = [
        report(
            "tidings-digest-bounce.eml",
            "gone@example.org",
            "<tidings.rust.20260209.7.42@news.example.com>",
            None,
        ),
        report(
            "arf-complaint.eml",
            "angry@example.net",
            "<tidings.rust.20260209.7.45@news.example.com>",
            None,
        ),
        report("vacation.eml", "reader@example.net", "", None),
        report(
            "soft-bounce.eml",
            "full@example.org",
            "<tidings.rust.20260209.7.44@news.example.com>",
            Some("<soft-1@mx.example.org>"),
        ),
        report(
            "soft-bounce.eml",
            "full@example.org",
            "<tidings.rust.20260209.7.44@news.example.com>",
            Some("<soft-2@mx.example.org>"),
        ),
    ];
    // `bounces parse` (nothing stored) already names the delivery the hard bounce is about.
    let file = op.env.path("hard-bounce.eml");
    std::fs::write(&file, &reports[0].1).expect("write report");
    let out = op
        .run(&["bounces", "parse", &file.display().to_string()])
        .await;
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let parsed: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    assert!(parsed["delivery_id"].is_i64(), "{label}: {parsed}");
    match &way {
        Way::Imap(server) => {
            let user = user.as_deref().expect("an IMAP user");
            for (verp, text) in &reports {
                let delivered = format!("Delivered-To: {verp}\r\n{text}");
                server.append(user, delivered.as_bytes()).await;
            }
            let settings = Settings::load(Some(&op.env.config)).expect("load the config");
            let store = Store::open(&url, 2).await.expect("open the store");
            let imap = settings.bounces.imap.clone().expect("imap configured");
            let poller =
                Poller::new(imap, Ingester::new(&settings, store.clone())).expect("poller");
            let polled = poller.poll_once().await.expect("poll");
            assert_eq!(
                (polled.found, polled.processed, polled.unmatched),
                (5, 5, 0),
                "{label}: {polled:?}"
            );
            store.close().await;
        }
        Way::Pipe => {
            for (verp, text) in &reports {
                let out = pipe(&op.env, &["--recipient", verp], text.as_bytes());
                assert!(out.status.success(), "{label}: {}", stderr(&out));
            }
        }
    }

    // Every report was matched to its delivery.
    let out = op.run(&["bounces", "list", "--json"]).await;
    let events: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let events = events.as_array().expect("array");
    assert_eq!(events.len(), 5, "{label}: {events:?}");
    assert!(
        events.iter().all(|e| e["delivery_id"].is_i64()),
        "{label}: {events:?}"
    );
    assert_eq!(
        events[0]["delivery_id"], parsed["delivery_id"],
        "{label}: {events:?}"
    );
    let source = if user.is_some() { "imap" } else { "pipe" };
    assert!(
        events.iter().all(|e| e["source"] == source),
        "{label}: {events:?}"
    );

    let out = op.run(&["subscribers", "list", "--json"]).await;
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let rows: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let row = |email: &str| -> Value {
        rows.as_array()
            .expect("array")
            .iter()
            .find(|r| r["email"] == email)
            .unwrap_or_else(|| panic!("{label}: {email} not listed"))
            .clone()
    };
    let expected = [
        ("gone@example.org", "bounced", Some("hard")),
        ("angry@example.net", "complained", Some("complaint")),
        ("reader@example.net", "confirmed", None),
        ("full@example.org", "confirmed", Some("soft")),
        ("fine@example.org", "confirmed", None),
    ];
    for (email, status, last_effect) in expected {
        let r = row(email);
        assert_eq!(r["status"], status, "{label}: {email}: {r}");
        assert_eq!(
            r["last_bounce"]["effect"].as_str(),
            last_effect,
            "{label}: {email}: {r}"
        );
    }
    // The complaint left every topic.
    assert_eq!(
        row("angry@example.net")["topics"],
        serde_json::json!([]),
        "{label}"
    );

    // Suppressed addresses cannot be added back; the others are still there.
    for email in ["gone@example.org", "angry@example.net"] {
        let out = op
            .run(&["subscribers", "add", email, "--topic", "rust"])
            .await;
        assert!(!out.status.success(), "{label}: {email} was added again");
    }
    // The issue's rates count each delivery with a bounce (hard or soft) or a complaint once.
    let out = op.run(&["deliveries", "--issue", &issue.to_string()]).await;
    assert!(
        stdout(&out).contains(&format!(
            "issue {issue}: 5 sent; bounces 2 (40.00%), complaints 1 (20.00%)"
        )),
        "{label}: {}",
        stdout(&out)
    );
}
