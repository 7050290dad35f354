//! Seeing stored bounce events through the built binary on both backends: `bounces list
//! --kind` and `--since` filter the events, `bounces show ID` prints one event's parsed fields
//! and its raw message, and an unknown id exits 1 with a clear message; after a digest sent
//! over real SMTP, `deliveries --issue N` and `status` show its bounce and complaint rates and
//! warn above 0.1% complaints.

use serde_json::Value;

use crate::bounces::fixture;
use crate::bounces_ingest::env_with;
use crate::operator::{Op, Options, at, issue_in};
use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db::{Backend, per_backend};

/// A new database of `backend` with a hard bounce (for its confirmed subscriber), an
/// auto-reply and a complaint ingested; None when the backend is unavailable.
async fn env_with_events(backend: Backend) -> Option<(&'static str, TestEnv)> {
    let (label, env) = env_with(backend, "gone@example.org").await?;
    for name in [
        "tidings-digest-bounce.eml",
        "vacation.eml",
        "arf-complaint.eml",
    ] {
        let out = env.run(&["bounces", "ingest", &fixture(name)]);
        assert!(
            out.status.success(),
            "{label}: ingest {name}: {}",
            stderr(&out)
        );
    }
    Some((label, env))
}

fn list_json(env: &TestEnv, label: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["bounces", "list", "--json"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert!(out.status.success(), "{label}: {extra:?}: {}", stderr(&out));
    let rows: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    rows.as_array().expect("array").clone()
}

per_backend!(bounces_list_filters_by_kind_and_time);
async fn bounces_list_filters_by_kind_and_time(backend: Backend) {
    let Some((label, env)) = env_with_events(backend).await else {
        return;
    };
    assert_eq!(list_json(&env, label, &[]).len(), 3, "{label}");
    let bounces = list_json(&env, label, &["--kind", "bounce"]);
    assert_eq!(bounces.len(), 1, "{label}: {bounces:?}");
    assert_eq!(bounces[0]["kind"], "bounce", "{label}");
    let replies = list_json(&env, label, &["--kind", "auto-reply"]);
    assert_eq!(replies.len(), 1, "{label}: {replies:?}");
    assert_eq!(replies[0]["kind"], "auto-reply", "{label}");
    assert!(list_json(&env, label, &["--kind", "delivery-report"]).is_empty());
    // Events are stamped with the time of ingest.
    assert_eq!(
        list_json(&env, label, &["--since", "2000-01-01T00:00:00Z"]).len(),
        3,
        "{label}"
    );
    assert!(
        list_json(&env, label, &["--since", "2999-01-01T00:00:00Z"]).is_empty(),
        "{label}"
    );
    // The table filters too.
    let out = env.run(&["bounces", "list", "--kind", "complaint"]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("complaint"), "{label}: {table}");
    assert!(!table.contains("auto-reply"), "{label}: {table}");
    // An unknown kind is a usage error naming the kinds.
    let out = env.run(&["bounces", "list", "--kind", "bogus"]);
    assert_eq!(out.status.code(), Some(2), "{label}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("auto-reply"),
        "{label}: {}",
        stderr(&out)
    );
}

per_backend!(bounces_show_prints_parsed_fields_and_the_raw_message);
async fn bounces_show_prints_parsed_fields_and_the_raw_message(backend: Backend) {
    let Some((label, env)) = env_with_events(backend).await else {
        return;
    };
    let bounce = &list_json(&env, label, &["--kind", "bounce"])[0];
    let id = bounce["id"].as_i64().expect("id").to_string();
    let out = env.run(&["bounces", "show", &id]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("gone@example.org"), "{label}: {text}");
    assert!(text.contains("5.1.1"), "{label}: {text}");
    assert!(text.contains("\"recipients\""), "{label}: {text}");
    assert!(
        text.contains("gone@example.org (now bounced)"),
        "{label}: {text}"
    );
    // The raw message follows, byte for byte as far as it is text.
    let raw = std::fs::read_to_string(fixture("tidings-digest-bounce.eml")).expect("fixture");
    let first_line = raw.lines().next().expect("a line");
    assert!(text.contains(first_line), "{label}: {text}");
    let last_line = raw
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("a line");
    assert!(text.contains(last_line), "{label}: {text}");
}

per_backend!(bounces_show_of_an_unknown_id_exits_1);
async fn bounces_show_of_an_unknown_id_exits_1(backend: Backend) {
    let Some((label, env)) = env_with_events(backend).await else {
        return;
    };
    let out = env.run(&["bounces", "show", "999999"]);
    assert_eq!(out.status.code(), Some(1), "{label}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("no bounce event with id 999999"),
        "{label}: {}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "{label}: {}", stdout(&out));
}

per_backend!(bounces_show_does_not_pass_terminal_escapes_through);
async fn bounces_show_does_not_pass_terminal_escapes_through(backend: Backend) {
    let Some((label, env)) = env_with_events(backend).await else {
        return;
    };
    let message = "From: someone@example.net\r\nTo: bounces@example.org\r\n\
                   Message-ID: <escape-1@example.net>\r\nSubject: hello\r\n\r\n\
                   title \x1b]0;owned\x07 and \x1b[31mred\x1b[0m text\r\n";
    let path = env.path("escape.eml");
    std::fs::write(&path, message).expect("write message");
    let out = env.run(&["bounces", "ingest", &path.display().to_string()]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let unknown = list_json(&env, label, &["--kind", "unknown"]);
    assert_eq!(unknown.len(), 1, "{label}: {unknown:?}");
    let id = unknown[0]["id"].as_i64().expect("id").to_string();
    let out = env.run(&["bounces", "show", &id]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("red"), "{label}: {text}");
    assert!(!text.contains('\x1b'), "{label}: {text:?}");
    assert!(!text.contains('\x07'), "{label}: {text:?}");
}

/// The Message-ID header of a received message.
pub(crate) fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().to_string())
        })
        .expect("a Message-ID")
}

per_backend!(deliveries_and_status_show_bounce_and_complaint_rates);
async fn deliveries_and_status_show_bounce_and_complaint_rates(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    // A digest sent over real SMTP to two readers, set up as the operator tests do.
    let op = Op::start(&url, Options::default()).await;
    let env = &op.env;
    for email in ["gone@example.org", "angry@example.net"] {
        op.subscribe(email).await;
    }
    let when = at().to_rfc3339();
    op.ok(&["fetch", "--at", &when]).await;
    let sent = op.ok(&["send", "--topic", "rust", "--at", &when]).await;
    let issue = issue_in(&sent);
    let received = op.smtp.received();
    assert_eq!(received.len(), 2, "{label}: {sent}");
    let id_for = |email: &str| {
        let r = received
            .iter()
            .find(|r| r.to.iter().any(|t| t.contains(email)))
            .unwrap_or_else(|| panic!("{label}: nothing sent to {email}"));
        message_id(&r.raw)
    };

    // Before any report: no warning.
    let out = op.run(&["deliveries", "--issue", &issue.to_string()]).await;
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "issue {issue}: 2 sent; bounces 0 (0.00%), complaints 0 (0.00%)"
        )),
        "{label}: {text}"
    );
    assert!(!text.contains("warning"), "{label}: {text}");

    // A hard bounce for one, a complaint for the other, each naming our Message-ID.
    let bounce = std::fs::read_to_string(fixture("tidings-digest-bounce.eml"))
        .expect("fixture")
        .replace(
            "<tidings.rust.20260209.7.42@news.example.com>",
            &id_for("gone@example.org"),
        );
    let complaint = std::fs::read_to_string(fixture("arf-complaint.eml"))
        .expect("fixture")
        .replace(
            "<tidings.rust.20260209.7.45@news.example.com>",
            &id_for("angry@example.net"),
        );
    for (name, text) in [("bounce.eml", bounce), ("complaint.eml", complaint)] {
        let path = env.path(name);
        std::fs::write(&path, text).expect("write report");
        let out = op
            .run(&["bounces", "ingest", &path.display().to_string()])
            .await;
        assert!(out.status.success(), "{label}: {}", stderr(&out));
    }
    let events = list_json(env, label, &[]);
    assert!(
        events.iter().all(|e| e["delivery_id"].is_i64()),
        "{label}: matched to deliveries: {events:?}"
    );

    let out = op.run(&["deliveries", "--issue", &issue.to_string()]).await;
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "issue {issue}: 2 sent; bounces 1 (50.00%), complaints 1 (50.00%)"
        )),
        "{label}: {text}"
    );
    assert!(
        text.contains(&format!(
            "issue {issue}: warning: complaint rate 50.00% is above 0.1%"
        )),
        "{label}: {text}"
    );
    // Another issue's summary counts none of them.
    let out = op
        .run(&["deliveries", "--issue", &(issue + 1000).to_string()])
        .await;
    assert!(
        stdout(&out).contains("0 sent; bounces 0 (0.00%), complaints 0 (0.00%)"),
        "{label}: {}",
        stdout(&out)
    );

    let out = op.run(&["status"]).await;
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("bounces: 2 sent; bounces 1 (50.00%), complaints 1 (50.00%)"),
        "{label}: {text}"
    );
    assert!(
        text.contains("bounces: warning: complaint rate 50.00% is above 0.1%"),
        "{label}: {text}"
    );
}

per_backend!(metrics_count_bounce_events_by_kind_and_source);
async fn metrics_count_bounce_events_by_kind_and_source(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let env = TestEnv::new(&url, "");
    for name in ["tidings-digest-bounce.eml", "vacation.eml"] {
        let out = env.run(&["bounces", "ingest", &fixture(name)]);
        assert!(out.status.success(), "{label}: {}", stderr(&out));
    }
    let mut mbox = String::new();
    for name in ["soft-bounce.eml", "arf-complaint.eml"] {
        mbox.push_str("From MAILER-DAEMON Mon Feb  9 08:00:00 2026\n");
        mbox.push_str(&std::fs::read_to_string(fixture(name)).expect("fixture"));
        mbox.push('\n');
    }
    let path = env.path("backlog.mbox");
    std::fs::write(&path, mbox).expect("write mbox");
    let out = env.run(&["bounces", "ingest", "--mbox", &path.display().to_string()]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));

    let store = tidings::store::Store::open(&url, 2).await.expect("store");
    let app = crate::web::TestApp::new(label, store, crate::web::settings(""));
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, axum::http::StatusCode::OK, "{label}");
    let body = answer.body;
    assert!(
        body.contains("# TYPE tidings_bounce_events_total counter"),
        "{label}: {body}"
    );
    for line in [
        "tidings_bounce_events_total{kind=\"bounce\",source=\"pipe\"} 1",
        "tidings_bounce_events_total{kind=\"auto-reply\",source=\"pipe\"} 1",
        "tidings_bounce_events_total{kind=\"bounce\",source=\"mbox\"} 1",
        "tidings_bounce_events_total{kind=\"complaint\",source=\"mbox\"} 1",
    ] {
        assert!(body.contains(line), "{label}: {line} in\n{body}");
    }
}
