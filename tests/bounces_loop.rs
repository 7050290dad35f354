//! The whole loop through the pipe, on both backends: a digest goes out over real SMTP with a
//! VERP return path per delivery; then a hard bounce, a complaint, an auto-reply and two soft
//! bounces for it come back as an MTA's pipe hands them over (`bounces ingest -` with the
//! envelope recipient, the VERP address, in `--recipient`); afterwards each subscriber's status,
//! last bounce and suppression are what the policy says.

use serde_json::Value;

use crate::bounces::fixture;
use crate::bounces_ingest::pipe;
use crate::bounces_seen::message_id;
use crate::operator::{Op, Options, at, issue_in};
use crate::support::cli::{stderr, stdout};
use crate::support::db::{Backend, per_backend};

const READERS: [&str; 5] = [
    "gone@example.org",
    "angry@example.net",
    "reader@example.net",
    "full@example.org",
    "fine@example.org",
];

per_backend!(reports_for_a_sent_digest_end_in_the_right_status_and_suppression);
async fn reports_for_a_sent_digest_end_in_the_right_status_and_suppression(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let op = Op::start(&url, Options::default()).await;
    let mut config = std::fs::read_to_string(&op.env.config).expect("config");
    config.push_str("\n[bounces]\naddress = \"bounces@news.example.com\"\n");
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
    for (verp, text) in &reports {
        let out = pipe(&op.env, &["--recipient", verp], text.as_bytes());
        assert!(out.status.success(), "{label}: {}", stderr(&out));
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
