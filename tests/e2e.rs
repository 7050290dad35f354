//! End to end, as an operator runs it: the built binary, a loopback feed, a real SMTP server on
//! loopback, SQLite and PostgreSQL. `tidings run` writes checked .eml files; `tidings serve`
//! sends on schedule; two `serve` processes on one PostgreSQL database deliver each issue once,
//! also when one of them is killed mid-send.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders};

use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db::{self, Backend, per_backend};
use crate::support::feed::{FeedServer, Post};
use crate::support::smtp::{Faults, SmtpServer};

/// Everything a config for these tests varies.
struct Setup<'a> {
    database_url: &'a str,
    feed_url: &'a str,
    smtp_port: Option<u16>,
    cron: &'a str,
    extra_delivery: &'a str,
}

/// A test directory whose config file is the one `s` describes.
fn configured_env(s: &Setup) -> TestEnv {
    let env = TestEnv::new(s.database_url, "");
    let smtp = match s.smtp_port {
        Some(port) => format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_secs = 10\n"
        ),
        None => String::new(),
    };
    let text = format!(
        r#"
[newsletter]
base_url = "https://news.example.com"
from = "Tidings <news@example.com>"
secret = "e2e-test-secret-that-is-longer-than-32-characters"

[database]
url = "{db}"

[delivery]
outbox_dir = "{outbox}"
retry_base_secs = 1
retry_max_secs = 2
{extra_delivery}

{smtp}

[web]
bind = "127.0.0.1:0"

[schedule]
cron = "{cron}"
timezone = "UTC"
fetch_cron = ""
retry_cron = ""
housekeeping_cron = ""

[fetch]
allow_private_addresses = true
retries = 0

[[sources]]
kind = "feed"
name = "Fixture Blog"
url = "{feed}"
weight = 10.0

[[topics]]
slug = "distributed-systems"
name = "Distributed Systems"
description = "Consensus, replication and fault tolerance."
keywords = ["consensus", "raft", "replication", "fault-tolerant"]

[[topics]]
slug = "rust"
name = "Rust"
description = "The Rust language."
keywords = ["Rust"]

[[topics]]
slug = "gardening"
name = "Gardening"
description = "Plants."
keywords = ["tomatoes"]
"#,
        db = s.database_url,
        outbox = env.path("outbox").display(),
        extra_delivery = s.extra_delivery,
        cron = s.cron,
        feed = s.feed_url,
    );
    std::fs::write(&env.config, text).expect("write config");
    env
}

fn posts_around(now: DateTime<Utc>) -> Vec<Post> {
    let h = chrono::Duration::hours;
    vec![
        Post::new(
            "Raft consensus in practice",
            now - h(30),
            "How a team runs Raft consensus across three data centers and what broke.",
        ),
        Post::new(
            "A fault-tolerant queue in Rust",
            now - h(20),
            "Building a fault-tolerant job queue in Rust with replication and retries.",
        ),
        Post::new(
            "Tomatoes on the balcony",
            now - h(10),
            "Growing tomatoes in pots: soil, light and watering.",
        ),
        Post::new(
            "Knitting for beginners",
            now - h(5),
            "Needles, yarn and the first scarf.",
        ),
        Post::new(
            "Old replication paper",
            now - h(24 * 40),
            "A replication paper from long ago, outside the window.",
        ),
    ]
}

fn add(env: &TestEnv, args: &[&str]) {
    let out = env.run(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
}

/// One parsed message: its headers and what both parts say.
struct Checked {
    to: String,
    subject: String,
    message_id: String,
    text: String,
    html: String,
    list_unsubscribe: String,
}

/// Checks one raw message the way a mailbox provider would and returns its parts.
fn check_message(raw: &[u8]) -> Checked {
    let text = String::from_utf8_lossy(raw);
    assert!(
        !text.contains("\n\n") || text.contains("\r\n\r\n"),
        "CRLF line endings"
    );
    assert!(
        text.split("\r\n").all(|l| l.len() <= 998),
        "lines of at most 998 octets"
    );
    let msg = MessageParser::default().parse(raw).expect("message parses");
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    for name in [
        "From",
        "To",
        "Date",
        "Subject",
        "Message-ID",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Id",
    ] {
        let count = head
            .split("\r\n")
            .filter(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .count();
        assert_eq!(count, 1, "exactly one {name} header in\n{head}");
    }
    let post = msg
        .header_raw("List-Unsubscribe-Post")
        .unwrap_or("")
        .trim()
        .to_string();
    assert_eq!(post, "List-Unsubscribe=One-Click");
    let ct = msg.content_type().expect("content type");
    assert_eq!(ct.ctype(), "multipart");
    assert_eq!(ct.subtype(), Some("alternative"));
    let parts: Vec<String> = msg
        .parts
        .iter()
        .filter_map(|p| {
            p.content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
        })
        .filter(|t| t.starts_with("text/"))
        .collect();
    assert_eq!(
        parts,
        ["text/plain", "text/html"],
        "text/plain first, then text/html"
    );
    let list_unsubscribe = msg
        .header_raw("List-Unsubscribe")
        .unwrap_or("")
        .trim()
        .to_string();
    Checked {
        to: msg
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or("")
            .to_string(),
        subject: msg.subject().unwrap_or("").to_string(),
        message_id: msg.message_id().unwrap_or("").to_string(),
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: msg.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        list_unsubscribe,
    }
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
}

per_backend!(
    run_writes_one_checked_message_per_confirmed_subscriber_and_topic,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn run_writes_one_checked_message_per_confirmed_subscriber_and_topic(backend: Backend) {
    let at = Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap(); // a Monday, the default send time
    let feed = FeedServer::start(posts_around(at)).await;
    let Some((label, database_url)) = backend.url().await else {
        return;
    };
    let feed_url = feed.feed_url();
    let env = configured_env(&Setup {
        database_url: &database_url,
        feed_url: &feed_url,
        smtp_port: None,
        cron: "0 0 8 * * Mon",
        extra_delivery: "",
    });
    add(
        &env,
        &[
            "subscribers",
            "add",
            "a@example.com",
            "--topic",
            "distributed-systems",
            "--confirmed",
        ],
    );
    add(
        &env,
        &[
            "subscribers",
            "add",
            "b@example.com",
            "--topic",
            "distributed-systems",
            "--topic",
            "rust",
            "--confirmed",
        ],
    );
    add(
        &env,
        &[
            "subscribers",
            "add",
            "pending@example.com",
            "--topic",
            "distributed-systems",
        ],
    );
    add(
        &env,
        &[
            "subscribers",
            "add",
            "gone@example.com",
            "--topic",
            "rust",
            "--confirmed",
        ],
    );
    add(&env, &["subscribers", "remove", "gone@example.com"]);

    let out = env.run(&["run", "--at", &at.to_rfc3339()]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains("gardening") && report.contains("sample message"),
        "{label}: {report}"
    );

    let files = eml_files(&env.path("outbox"));
    let mut by_recipient: BTreeMap<String, Vec<Checked>> = BTreeMap::new();
    for f in &files {
        let c = check_message(&std::fs::read(f).unwrap());
        by_recipient.entry(c.to.clone()).or_default().push(c);
    }
    let recipients: Vec<(&str, usize)> = by_recipient
        .iter()
        .map(|(k, v)| (k.as_str(), v.len()))
        .collect();
    assert_eq!(
        recipients,
        [
            ("a@example.com", 1),
            ("b@example.com", 2),
            ("sample@example.com", 1)
        ],
        "{label}: one message per confirmed subscriber and topic, plus the gardening sample"
    );
    for c in by_recipient.values().flatten() {
        let url = c.list_unsubscribe.trim_matches(|ch| ch == '<' || ch == '>');
        assert!(
            url.starts_with("https://news.example.com/unsubscribe/"),
            "{label}: {url}"
        );
        assert!(
            c.text.contains(url) && c.html.contains(url),
            "{label}: unsubscribe link in both parts"
        );
    }
    let ds = &by_recipient["a@example.com"][0];
    assert!(
        ds.subject.starts_with("Distributed Systems: "),
        "{label}: {}",
        ds.subject
    );
    for title in [
        "Raft consensus in practice",
        "A fault-tolerant queue in Rust",
    ] {
        assert!(
            ds.text.contains(title) && ds.html.contains(title),
            "{label}: {title} in both parts"
        );
    }
    for absent in ["Tomatoes", "Knitting", "Old replication paper"] {
        assert!(
            !ds.text.contains(absent),
            "{label}: {absent} is off topic or out of the window"
        );
    }
    assert!(ds.text.contains(&feed.post_url(0)) && ds.html.contains(&feed.post_url(0)));
    assert!(
        ds.text.contains("Sources: Fixture Blog"),
        "{label}: {}",
        ds.text
    );
    let ids: HashSet<&str> = by_recipient
        .values()
        .flatten()
        .map(|c| c.message_id.as_str())
        .collect();
    assert_eq!(ids.len(), files.len(), "{label}: unique Message-IDs");

    let status = stdout(&env.run(&["status"]));
    assert!(
        status.contains("digest:distributed-systems") && status.contains("tidings run: issue #"),
        "{label}: {status}"
    );

    // A second run finds the same issues and delivers nothing new.
    let again = env.run(&["run", "--at", &at.to_rfc3339()]);
    assert!(again.status.success(), "{label}: {}", stderr(&again));
    // (The gardening sample is written again under the same name: it replaces itself.)
    assert_eq!(
        eml_files(&env.path("outbox")).len(),
        files.len(),
        "{label}: nothing new delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_prints_text_html_and_a_complete_message() {
    let at = Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap();
    let feed = FeedServer::start(posts_around(at)).await;
    let feed_url = feed.feed_url();
    let env = configured_env(&Setup {
        database_url: &db::sqlite_url(),
        feed_url: &feed_url,
        smtp_port: None,
        cron: "0 0 8 * * Mon",
        extra_delivery: "",
    });
    let out = env.run(&["fetch", "--at", &at.to_rfc3339()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = env.run(&[
        "preview",
        "--topic",
        "distributed-systems",
        "--at",
        &at.to_rfc3339(),
        "--format",
        "text",
    ]);
    let text = stdout(&text);
    assert!(
        text.starts_with("Tidings\n\nDistributed Systems\n"),
        "{text}"
    );
    assert!(
        text.contains("01  Sunday, February 8, 2026\nA fault-tolerant queue in Rust"),
        "{text}"
    );
    assert!(
        text.contains("02  Sunday, February 8, 2026\nRaft consensus in practice"),
        "{text}"
    );
    assert!(text.contains("Articles from the last 7 days"), "{text}");
    let html = env.run(&[
        "preview",
        "--topic",
        "distributed-systems",
        "--at",
        &at.to_rfc3339(),
        "--format",
        "html",
    ]);
    assert!(html.status.success(), "{}", stderr(&html));
    let html = stdout(&html);
    assert!(
        html.contains("<table") && html.contains("Raft consensus in practice"),
        "{html}"
    );
    assert!(!html.to_ascii_lowercase().contains("<script"), "no scripts");
    let eml = env.run(&[
        "preview",
        "--topic",
        "distributed-systems",
        "--at",
        &at.to_rfc3339(),
        "--format",
        "eml",
    ]);
    assert!(eml.status.success(), "{}", stderr(&eml));
    let c = check_message(&eml.stdout);
    assert_eq!(c.to, "sample@example.com");
    let empty = env.run(&[
        "preview",
        "--topic",
        "gardening",
        "--at",
        "2025-01-06T08:00:00Z",
        "--format",
        "eml",
    ]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(stderr(&empty).contains("no articles"), "{}", stderr(&empty));
}

/// A `tidings serve` child process whose output goes to files (so it never blocks on a pipe).
struct Serve {
    child: Child,
}

impl Serve {
    fn start(env: &TestEnv, name: &str, extra_env: &[(&str, &str)]) -> Serve {
        let mut cmd = env.command();
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let log = std::fs::File::create(env.path(&format!("{name}.log"))).unwrap();
        let child = cmd
            .env("RUST_LOG", "info")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tidings serve");
        Serve { child }
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(mut self, deadline: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < end, "serve did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50)); // polling the exit, with a deadline
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds `n` confirmed subscribers to distributed-systems through an import.
fn import_subscribers(env: &TestEnv, n: usize) -> Vec<String> {
    let emails: Vec<String> = (0..n)
        .map(|i| format!("reader{i:04}@example.com"))
        .collect();
    let mut csv = String::from("email,topics\n");
    for e in &emails {
        csv.push_str(&format!("{e},distributed-systems\n"));
    }
    let file = env.path("readers.csv");
    std::fs::write(&file, csv).unwrap();
    add(
        env,
        &[
            "subscribers",
            "import",
            "--confirmed",
            file.to_str().unwrap(),
        ],
    );
    emails
}

async fn wait_until_all_sent(store: &tidings::store::Store, expected: i64, deadline: Duration) {
    let end = Instant::now() + deadline;
    loop {
        let counts = store.counts_by_status(None).await.unwrap();
        if counts.get("sent").copied().unwrap_or(0) >= expected {
            return;
        }
        assert!(Instant::now() < end, "not all deliveries sent: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await; // polling the database, with a deadline
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_the_scheduled_digest_once_and_stops_on_sigterm() {
    let now = Utc::now();
    let feed = FeedServer::start(posts_around(now)).await;
    let smtp = SmtpServer::start(Faults::default()).await;
    let database_url = db::sqlite_url();
    let feed_url = feed.feed_url();
    let env = configured_env(&Setup {
        database_url: &database_url,
        feed_url: &feed_url,
        smtp_port: Some(smtp.port),
        cron: "*/2 * * * * *",
        extra_delivery: "",
    });
    let readers = import_subscribers(&env, 5);
    let out = env.run(&["fetch"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let serve = Serve::start(&env, "serve", &[]);
    let got = smtp.wait_for(readers.len(), Duration::from_secs(60)).await;
    let store = tidings::store::Store::open(&database_url, 2).await.unwrap();
    wait_until_all_sent(&store, readers.len() as i64, Duration::from_secs(30)).await;
    // Later slots find nothing new (no article repeats), so nothing more is sent.
    let status = serve.terminate(Duration::from_secs(30));
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
    let got_after = smtp.received();
    assert_eq!(
        got_after.len(),
        got.len().max(readers.len()),
        "exactly one message per reader"
    );
    let to: HashSet<String> = got_after.iter().flat_map(|r| r.to.clone()).collect();
    assert_eq!(to, readers.into_iter().collect::<HashSet<_>>());
    let log = std::fs::read_to_string(env.path("serve.log")).unwrap();
    assert!(log.contains("next"), "jobs log their next run: {log}");
}

/// Two `serve` instances (EHLO names instance-a/instance-b) on one PostgreSQL database with
/// `readers` confirmed subscribers, fetched articles and a digest due every 3 seconds.
struct TwoInstances {
    _feed: FeedServer,
    smtp: SmtpServer,
    store: tidings::store::Store,
    readers: Vec<String>,
    a: Serve,
    b: Serve,
}

async fn two_instances(
    pg: &str,
    delay_ms: u64,
    readers: usize,
    extra_delivery: &str,
) -> TwoInstances {
    let feed = FeedServer::start(posts_around(Utc::now())).await;
    let smtp = SmtpServer::start(Faults {
        delay: Some(Duration::from_millis(delay_ms)),
        ..Faults::default()
    })
    .await;
    let feed_url = feed.feed_url();
    let env = configured_env(&Setup {
        database_url: pg,
        feed_url: &feed_url,
        smtp_port: Some(smtp.port),
        cron: "*/3 * * * * *",
        extra_delivery,
    });
    let readers = import_subscribers(&env, readers);
    assert!(env.run(&["fetch"]).status.success());
    let a = Serve::start(
        &env,
        "a",
        &[("TIDINGS__SMTP__HELO_NAME", "instance-a.example")],
    );
    let b = Serve::start(
        &env,
        "b",
        &[("TIDINGS__SMTP__HELO_NAME", "instance-b.example")],
    );
    let store = tidings::store::Store::open(pg, 2).await.unwrap();
    TwoInstances {
        _feed: feed,
        smtp,
        store,
        readers,
        a,
        b,
    }
}

fn sent_by(got: &[crate::support::smtp::Received], instance: &str) -> usize {
    got.iter().filter(|r| r.helo == instance).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_instances_on_postgres_deliver_each_issue_exactly_once() {
    let Some(pg) = db::postgres_url().await else {
        return;
    };
    let t = two_instances(&pg, 15, 120, "concurrency = 2\nbatch_size = 4").await;
    t.smtp
        .wait_for(t.readers.len(), Duration::from_secs(90))
        .await;
    wait_until_all_sent(&t.store, t.readers.len() as i64, Duration::from_secs(30)).await;
    assert!(t.a.terminate(Duration::from_secs(30)).success());
    assert!(t.b.terminate(Duration::from_secs(30)).success());

    let got = t.smtp.received();
    assert_eq!(got.len(), t.readers.len(), "each reader exactly once");
    let to: HashSet<String> = got.iter().flat_map(|r| r.to.clone()).collect();
    assert_eq!(to.len(), t.readers.len());
    assert!(
        sent_by(&got, "instance-a.example") > 0,
        "instance a sent some"
    );
    assert!(
        sent_by(&got, "instance-b.example") > 0,
        "instance b sent some"
    );
    let issues = t
        .store
        .list_issues(Some("distributed-systems"))
        .await
        .unwrap();
    assert_eq!(issues.len(), 1, "exactly one issue compiled: {issues:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_instance_killed_mid_send_leaves_its_work_to_the_other() {
    let Some(pg) = db::postgres_url().await else {
        return;
    };
    let concurrency = 2usize;
    let mut t = two_instances(
        &pg,
        30,
        100,
        "concurrency = 2\nbatch_size = 4\nlease_secs = 3",
    )
    .await;
    // Kill a once it has sent some (it is then mid-batch: it claims 4 at a time).
    let end = Instant::now() + Duration::from_secs(90);
    while sent_by(&t.smtp.received(), "instance-a.example") < 5 {
        assert!(Instant::now() < end, "instance a never sent");
        t.smtp
            .wait_for(t.smtp.received().len() + 1, Duration::from_secs(60))
            .await;
    }
    t.a.child.kill().unwrap();
    t.a.child.wait().unwrap();

    wait_until_all_sent(&t.store, t.readers.len() as i64, Duration::from_secs(90)).await;
    assert!(t.b.terminate(Duration::from_secs(30)).success());
    let got = t.smtp.received();
    let to: HashSet<String> = got.iter().flat_map(|r| r.to.clone()).collect();
    assert_eq!(
        to,
        t.readers.iter().cloned().collect::<HashSet<_>>(),
        "everyone still receives it"
    );
    let duplicates = got.len() - to.len();
    assert!(
        duplicates <= concurrency,
        "{duplicates} duplicates, more than concurrency {concurrency}"
    );
}
