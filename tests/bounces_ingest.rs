//! `tidings bounces ingest` and `bounces list` through the built binary on both backends: a
//! hard bounce marks its subscriber bounced and suppresses the address; the same message twice
//! is one event; an auto-reply changes nothing; the soft-bounce limit; a complaint; a Maildir
//! and an mbox backlog; and exit 75 (EX_TEMPFAIL) when the database is unavailable.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db::{Backend, per_backend};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("read fixture")
}

/// A test environment on a new database of `backend` with `email` a confirmed subscriber of
/// rust; None when the backend is unavailable.
pub(crate) async fn env_with(backend: Backend, email: &str) -> Option<(&'static str, TestEnv)> {
    let (label, url) = backend.url().await?;
    let env = TestEnv::new(&url, "");
    let out = env.run(&[
        "subscribers",
        "add",
        email,
        "--topic",
        "rust",
        "--confirmed",
    ]);
    assert!(out.status.success(), "{label}: add: {}", stderr(&out));
    Some((label, env))
}

fn ingest_file(env: &TestEnv, path: &Path) -> Output {
    env.run(&["bounces", "ingest", &path.display().to_string()])
}

/// `bounces ingest -` with `message` on stdin, as an MTA's pipe runs it.
fn ingest_stdin(env: &TestEnv, message: &[u8]) -> Output {
    pipe(env, &[], message)
}

/// `bounces ingest - EXTRA...` with `message` on stdin.
pub(crate) fn pipe(env: &TestEnv, extra: &[&str], message: &[u8]) -> Output {
    let mut child = env
        .command()
        .args(["bounces", "ingest", "-"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tidings");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write the message");
    child.wait_with_output().expect("wait for tidings")
}

/// The status `subscribers list --json` shows for `email`.
pub(crate) fn status_of(env: &TestEnv, label: &str, email: &str) -> String {
    let out = env.run(&["subscribers", "list", "--json"]);
    assert!(out.status.success(), "{label}: list: {}", stderr(&out));
    let rows: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    rows.as_array()
        .expect("array")
        .iter()
        .find(|r| r["email"] == email)
        .unwrap_or_else(|| panic!("{label}: {email} not listed: {rows}"))["status"]
        .as_str()
        .expect("status")
        .to_string()
}

/// `bounces list --json`.
pub(crate) fn events(env: &TestEnv, label: &str) -> Vec<Value> {
    let out = env.run(&["bounces", "list", "--json"]);
    assert!(
        out.status.success(),
        "{label}: bounces list: {}",
        stderr(&out)
    );
    let rows: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    rows.as_array().expect("array").clone()
}

/// The soft-bounce fixture with its Message-ID made unique by `n`.
fn soft_bounce(n: usize) -> String {
    let text = fixture_text("soft-bounce.eml");
    assert!(text.contains("<soft-1@mx.example.org>"));
    text.replace(
        "<soft-1@mx.example.org>",
        &format!("<soft-{n}@mx.example.org>"),
    )
}

per_backend!(a_hard_bounce_suppresses_its_subscriber_once);
async fn a_hard_bounce_suppresses_its_subscriber_once(backend: Backend) {
    let Some((label, env)) = env_with(backend, "gone@example.org").await else {
        return;
    };
    let out = ingest_file(&env, &fixture("tidings-digest-bounce.eml"));
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert!(
        stdout(&out).contains("now bounced"),
        "{label}: {}",
        stdout(&out)
    );
    assert_eq!(status_of(&env, label, "gone@example.org"), "bounced");
    // Suppressed: adding the address again is refused.
    let out = env.run(&["subscribers", "add", "gone@example.org", "--topic", "rust"]);
    assert!(
        !out.status.success(),
        "{label}: a bounced address was added again"
    );
    assert!(
        stderr(&out).contains("bounced"),
        "{label}: {}",
        stderr(&out)
    );
    // The same message again, through the pipe: stored once, nothing changes.
    let out = ingest_stdin(&env, fixture_text("tidings-digest-bounce.eml").as_bytes());
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert!(
        stdout(&out).contains("already stored"),
        "{label}: {}",
        stdout(&out)
    );
    let events = events(&env, label);
    assert_eq!(events.len(), 1, "{label}: {events:?}");
    let e = &events[0];
    assert_eq!(e["kind"], "bounce", "{label}");
    assert_eq!(e["effect"], "hard", "{label}");
    assert_eq!(e["email"], "gone@example.org", "{label}");
    assert_eq!(e["status"], "5.1.1", "{label}");
    assert_eq!(e["subscriber_email"], "gone@example.org", "{label}");
    assert_eq!(e["status_change"], "bounced", "{label}");
    assert_eq!(e["source"], "pipe", "{label}");
    let out = env.run(&["bounces", "list"]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains("unknown-user") && table.contains("gone@example.org (now bounced)"),
        "{label}: {table}"
    );
}

per_backend!(an_auto_reply_changes_nothing);
async fn an_auto_reply_changes_nothing(backend: Backend) {
    let Some((label, env)) = env_with(backend, "reader@example.net").await else {
        return;
    };
    let out = ingest_file(&env, &fixture("vacation.eml"));
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(status_of(&env, label, "reader@example.net"), "confirmed");
    let events = events(&env, label);
    assert_eq!(events.len(), 1, "{label}: {events:?}");
    assert_eq!(events[0]["kind"], "auto-reply", "{label}");
    assert_eq!(events[0]["effect"], "none", "{label}");
    assert!(events[0]["status_change"].is_null(), "{label}");
    let out = env.run(&[
        "subscribers",
        "add",
        "reader@example.net",
        "--topic",
        "rust",
    ]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
}

per_backend!(three_soft_bounces_suppress_and_two_do_not);
async fn three_soft_bounces_suppress_and_two_do_not(backend: Backend) {
    let Some((label, env)) = env_with(backend, "full@example.org").await else {
        return;
    };
    for n in 1..=2 {
        let out = ingest_stdin(&env, soft_bounce(n).as_bytes());
        assert!(out.status.success(), "{label}: {}", stderr(&out));
    }
    // A repeat of the second does not count again.
    let out = ingest_stdin(&env, soft_bounce(2).as_bytes());
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(status_of(&env, label, "full@example.org"), "confirmed");
    let out = ingest_stdin(&env, soft_bounce(3).as_bytes());
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(status_of(&env, label, "full@example.org"), "bounced");
    let events = events(&env, label);
    let effects: Vec<&str> = events
        .iter()
        .map(|e| e["effect"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(effects, ["soft", "soft", "soft"], "{label}");
    let out = env.run(&["subscribers", "add", "full@example.org", "--topic", "rust"]);
    assert!(
        !out.status.success(),
        "{label}: a suppressed address was added again"
    );
}

per_backend!(the_soft_limit_is_a_setting);
async fn the_soft_limit_is_a_setting(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let env = TestEnv::new(&url, "[bounces]\nsoft_limit = 1\nsoft_window_days = 7\n");
    let out = env.run(&[
        "subscribers",
        "add",
        "full@example.org",
        "--topic",
        "rust",
        "--confirmed",
    ]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let out = ingest_stdin(&env, soft_bounce(1).as_bytes());
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(status_of(&env, label, "full@example.org"), "bounced");
}

per_backend!(a_complaint_marks_its_subscriber_complained);
async fn a_complaint_marks_its_subscriber_complained(backend: Backend) {
    let Some((label, env)) = env_with(backend, "angry@example.net").await else {
        return;
    };
    let out = ingest_file(&env, &fixture("arf-complaint.eml"));
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(status_of(&env, label, "angry@example.net"), "complained");
    let out = env.run(&["subscribers", "add", "angry@example.net", "--topic", "rust"]);
    assert!(
        !out.status.success(),
        "{label}: a complained address was added again"
    );
    let events = events(&env, label);
    assert_eq!(events.len(), 1, "{label}: {events:?}");
    assert_eq!(events[0]["kind"], "complaint", "{label}");
    assert_eq!(events[0]["status_change"], "complained", "{label}");
}

per_backend!(a_maildir_and_an_mbox_backlog_are_counted);
async fn a_maildir_and_an_mbox_backlog_are_counted(backend: Backend) {
    let Some((label, env)) = env_with(backend, "full@example.org").await else {
        return;
    };
    let maildir = env.path("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    std::fs::write(maildir.join("new/1.eml"), soft_bounce(1)).expect("write");
    std::fs::write(maildir.join("cur/2.eml"), soft_bounce(2)).expect("write");
    std::fs::write(maildir.join("cur/3.eml"), fixture_text("vacation.eml")).expect("write");
    let out = env.run(&[
        "bounces",
        "ingest",
        "--maildir",
        &maildir.display().to_string(),
    ]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert!(
        stdout(&out).starts_with("3 messages: 3 new events, 0 already stored"),
        "{label}: {}",
        stdout(&out)
    );
    assert_eq!(status_of(&env, label, "full@example.org"), "confirmed");
    // An mbox with a message seen before, a new one, and a quoted From line.
    let mbox = env.path("bounces.mbox");
    let text = format!(
        "From MAILER-DAEMON Mon Feb  9 08:05:00 2026\n{}\nFrom MAILER-DAEMON Mon Feb  9 08:06:00 2026\n{}\n>From here on\n",
        soft_bounce(2),
        soft_bounce(3)
    );
    std::fs::write(&mbox, text).expect("write mbox");
    let out = env.run(&["bounces", "ingest", "--mbox", &mbox.display().to_string()]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert!(
        stdout(&out).starts_with("2 messages: 1 new events, 1 already stored"),
        "{label}: {}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("bounced 1"),
        "{label}: {}",
        stdout(&out)
    );
    assert_eq!(status_of(&env, label, "full@example.org"), "bounced");
    assert_eq!(events(&env, label).len(), 4, "{label}");
}

/// The pipe exits 75 when the SQLite database is missing (a volume not mounted), so the MTA
/// keeps the message and retries; once the database is back, the retry is stored, and a
/// second retry of the same message (an MTA that did not see the first answer) changes
/// nothing.
#[test]
fn the_pipe_asks_for_a_retry_when_the_sqlite_database_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let env = TestEnv::new(
        &format!("sqlite://{}", dir.join("absent/t.db").display()),
        "",
    );
    let message = fixture_text("tidings-digest-bounce.eml");
    let out = ingest_stdin(&env, message.as_bytes());
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("try again later"), "{}", stderr(&out));

    // The volume is back.
    std::fs::create_dir_all(dir.join("absent")).expect("mkdir");
    let out = env.run(&["migrate"]);
    assert!(out.status.success(), "migrate: {}", stderr(&out));
    let out = env.run(&[
        "subscribers",
        "add",
        "gone@example.org",
        "--topic",
        "rust",
        "--confirmed",
    ]);
    assert!(out.status.success(), "add: {}", stderr(&out));
    let out = ingest_stdin(&env, message.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("stored event"), "{}", stdout(&out));
    let out = ingest_stdin(&env, message.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("already stored"),
        "{}",
        stdout(&out)
    );
    assert_eq!(events(&env, "sqlite").len(), 1);
    assert_eq!(status_of(&env, "sqlite", "gone@example.org"), "bounced");
}

/// The pipe exits 75 when PostgreSQL does not answer: here a port that accepts connections
/// and closes them at once.
#[test]
fn the_pipe_asks_for_a_retry_when_postgres_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let env = TestEnv::new(&format!("postgres://tidings@127.0.0.1:{port}/tidings"), "");
    let out = ingest_file(&env, &fixture("tidings-digest-bounce.eml"));
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
}

const VERP_CONFIG: &str = "[newsletter]\nsecret = \"verp-test-secret-0123456789\"\n\n[bounces]\naddress = \"bounces@news.example.com\"\n";

/// The hard-bounce fixture returned to `to` (the envelope recipient the MTA delivered it to),
/// its recipient mangled to an address no subscriber has.
fn mangled_bounce_to(to: &str, message_id: &str) -> String {
    fixture_text("tidings-digest-bounce.eml")
        .replace("To: bounces@news.example.com", &format!("To: {to}"))
        .replace(
            "<20260209080500.1@mx.example.org>",
            &format!("<{message_id}>"),
        )
        .replace("gone@example.org", "someone-else@example.org")
}

per_backend!(a_verp_tag_names_the_subscriber_even_when_the_body_is_mangled);
async fn a_verp_tag_names_the_subscriber_even_when_the_body_is_mangled(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let store = tidings::store::Store::open(&url, 2).await.expect("open");
    let mut deliveries = Vec::new();
    for (n, email) in ["reader@example.org", "other@example.org"]
        .into_iter()
        .enumerate()
    {
        let subscriber = crate::support::db::add_subscriber(
            &store,
            email,
            &["rust"],
            tidings::domain::SubscriberStatus::Confirmed,
        )
        .await;
        let delivery = store
            .enqueue_transactional(
                tidings::store::DeliveryKind::Confirm,
                subscriber,
                email,
                &format!("<confirm.{n}@news.example.com>"),
                b"payload",
                chrono::Utc::now(),
            )
            .await
            .expect("enqueue")
            .expect("a new row");
        deliveries.push(delivery);
    }
    store.close().await;
    let settings = tidings::config::Settings::from_toml(VERP_CONFIG).expect("settings");
    let signer = tidings::tokens::TokenSigner::from_settings(&settings.newsletter);
    let base: lettre::Address = "bounces@news.example.com".parse().expect("address");
    let verp: Vec<String> = deliveries
        .iter()
        .map(|d| signer.verp_address(&base, *d))
        .collect();
    let env = TestEnv::new(&url, VERP_CONFIG);

    // A forged tag matches nothing: the event is kept, nobody changes.
    let forged = verp[0].replace("bounces+", "bounces+a");
    let out = ingest_stdin(
        &env,
        mangled_bounce_to(&forged, "forged@mx.example.org").as_bytes(),
    );
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(status_of(&env, label, "reader@example.org"), "confirmed");

    // The tag of the envelope recipient the MTA passes names the first delivery.
    let path = env.path("plain.eml");
    std::fs::write(
        &path,
        mangled_bounce_to("bounces@news.example.com", "plain@mx.example.org"),
    )
    .expect("write");
    let out = env.run(&[
        "bounces",
        "ingest",
        "--recipient",
        &verp[0],
        &path.display().to_string(),
    ]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(status_of(&env, label, "reader@example.org"), "bounced");
    assert_eq!(status_of(&env, label, "other@example.org"), "confirmed");

    // The tag in the To header names the second.
    let out = ingest_stdin(
        &env,
        mangled_bounce_to(&verp[1], "to@mx.example.org").as_bytes(),
    );
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(status_of(&env, label, "other@example.org"), "bounced");

    let events = events(&env, label);
    assert_eq!(events.len(), 3, "{label}: {events:?}");
    assert!(
        events[0]["subscriber_id"].is_null(),
        "{label}: forged tag matched: {}",
        events[0]
    );
    for (event, (delivery, email)) in events[1..].iter().zip(
        deliveries
            .iter()
            .zip(["reader@example.org", "other@example.org"]),
    ) {
        assert_eq!(event["delivery_id"], *delivery, "{label}: {event}");
        assert_eq!(event["subscriber_email"], email, "{label}: {event}");
        assert_eq!(event["status_change"], "bounced", "{label}: {event}");
    }
}

per_backend!(soft_bounces_older_than_the_window_no_longer_count);
/// Through the store (whose clock the test sets): two soft bounces 40 days ago and one now do
/// not reach the limit of 3 within 30 days; two more now do.
async fn soft_bounces_older_than_the_window_no_longer_count(backend: Backend) {
    use tidings::bounce::policy::{Effect, SoftLimit};
    use tidings::store::{NewBounceEvent, Recorded, ReportMatch};
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let id = crate::support::db::add_subscriber(
        &store,
        "full@example.org",
        &["rust"],
        tidings::domain::SubscriberStatus::Confirmed,
    )
    .await;
    let now = chrono::Utc::now();
    let at = [
        now - chrono::Duration::days(40),
        now - chrono::Duration::days(40),
        now,
        now,
        now,
    ];
    let mut changes = Vec::new();
    for (n, at) in at.into_iter().enumerate() {
        let key = format!("soft-{n}");
        let event = NewBounceEvent {
            message_key: &key,
            source: "pipe",
            kind: "bounce",
            effect: Effect::Soft,
            email: Some("full@example.org"),
            status: Some("5.2.2"),
            reason: Some("mailbox-full"),
            parsed: "{}",
            raw: b"raw",
            matched: ReportMatch {
                delivery_id: None,
                subscriber_id: Some(id),
                email: Some("full@example.org".into()),
            },
        };
        match store
            .record_bounce_event(&event, SoftLimit::default(), at)
            .await
            .expect("record")
        {
            Recorded::New { status_change, .. } => changes.push(status_change),
            Recorded::Duplicate => panic!("{label}: {key} is new"),
        }
    }
    use tidings::domain::SubscriberStatus::Bounced;
    assert_eq!(changes, [None, None, None, None, Some(Bounced)], "{label}");
}

per_backend!(subscribers_list_json_shows_each_subscribers_last_bounce);
async fn subscribers_list_json_shows_each_subscribers_last_bounce(backend: Backend) {
    let Some((label, env)) = env_with(backend, "gone@example.org").await else {
        return;
    };
    let out = env.run(&[
        "subscribers",
        "add",
        "calm@example.org",
        "--topic",
        "rust",
        "--confirmed",
    ]);
    assert!(out.status.success(), "{label}: add: {}", stderr(&out));
    let out = ingest_file(&env, &fixture("tidings-digest-bounce.eml"));
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let event_id = events(&env, label)[0]["id"].clone();

    let out = env.run(&["subscribers", "list", "--json"]);
    assert!(out.status.success(), "{label}: list: {}", stderr(&out));
    let rows: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let row = |email: &str| {
        rows.as_array()
            .expect("array")
            .iter()
            .find(|r| r["email"] == email)
            .unwrap_or_else(|| panic!("{label}: {email} not listed: {rows}"))
            .clone()
    };
    let last = &row("gone@example.org")["last_bounce"];
    assert_eq!(last["event_id"], event_id, "{label}: {last}");
    assert_eq!(last["kind"], "bounce", "{label}: {last}");
    assert_eq!(last["effect"], "hard", "{label}: {last}");
    assert_eq!(last["status"], "5.1.1", "{label}: {last}");
    assert!(last["at"].is_string(), "{label}: {last}");
    assert!(
        row("calm@example.org")["last_bounce"].is_null(),
        "{label}: {rows}"
    );
}
