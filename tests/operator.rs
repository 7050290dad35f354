//! What an operator sees, through the built binary: a loopback feed, a real SMTP server on
//! loopback, SQLite and PostgreSQL. Periods end on whole scheduled seconds (two `send`s in one
//! period meet one issue and mail once), an empty period is never frozen by `send` or
//! `compile`, `send` holds deliveries until `deliver_at_local`, `fetch` and `run` exit 1 when
//! every source failed (saying it once), `send --dry-run` and a second `run` say what would go
//! out or went out now, `status` keeps the last completed digest and shows the fetch `run`
//! did, `run` holds deliveries until `deliver_at_local` like `send` and records its digest run,
//! and `explain` says why fetch did not store an entry.

use std::process::Output;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tidings::config::Settings;
use tidings::domain::SubscriberStatus;
use tidings::scheduler::ManualClock;
use tidings::store::Store;

use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db::{self, Backend, per_backend};
use crate::support::feed::{FeedServer, Post};
use crate::support::scheduler::{scheduler, seed_article};
use crate::support::smtp::{Faults, SmtpServer};

/// Saturday 2026-02-28 12:00 UTC: a scheduled time of the daily noon digest below.
pub(crate) fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap()
}

fn posts() -> Vec<Post> {
    let h = Duration::hours;
    vec![
        Post::new(
            "The Rust 2026 edition",
            at() - h(30),
            "What changes in Rust with the new edition.",
        ),
        Post::new(
            "A fault-tolerant queue in Rust",
            at() - h(20),
            "Building a job queue in Rust with retries.",
        ),
        Post::new(
            "Tomatoes on the balcony",
            at() - h(10),
            "Growing tomatoes in pots.",
        ),
    ]
}

/// One operator's set-up: the binary's config, the feed it fetches and the relay it sends to.
pub(crate) struct Op {
    pub(crate) env: TestEnv,
    pub(crate) smtp: SmtpServer,
    _feed: Option<FeedServer>,
}

/// Everything a config for these tests varies.
#[derive(Default)]
pub(crate) struct Options<'a> {
    /// The feed's URL; None serves [`posts`] from a loopback feed.
    feed_url: Option<&'a str>,
    /// Extra lines for the `rust` topic.
    topic_extra: &'a str,
    /// Extra lines for `[fetch]`.
    fetch_extra: &'a str,
}

impl Op {
    pub(crate) async fn start(database_url: &str, options: Options<'_>) -> Op {
        let smtp = SmtpServer::start(Faults::default()).await;
        let (feed, feed_url) = match options.feed_url {
            Some(url) => (None, url.to_string()),
            None => {
                let feed = FeedServer::start(posts()).await;
                let url = feed.feed_url();
                (Some(feed), url)
            }
        };
        let env = TestEnv::new(database_url, "");
        let text = format!(
            r#"
[newsletter]
base_url = "https://news.example.com"
secret = "operator-test-secret-longer-than-32-characters"
from = "Tidings <news@example.com>"
postal_address = "1 Example Street, Exampleville"

[database]
url = "{database_url}"

[delivery]
transport = "smtp"
outbox_dir = "{outbox}"
retry_base_secs = 60

[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
timeout_secs = 10

[schedule]
cron = "0 0 12 * * *"
timezone = "UTC"
fetch_cron = "0 15 * * * *"
retry_cron = ""
housekeeping_cron = ""

[fetch]
allow_private_addresses = true
retries = 0
fetch_pages = false
{fetch_extra}

[[sources]]
kind = "feed"
name = "Fixture Blog"
url = "{feed_url}"

[[topics]]
slug = "rust"
name = "Rust"
description = "The Rust language."
keywords = ["Rust"]
{topic_extra}
"#,
            outbox = env.path("outbox").display(),
            port = smtp.port,
            fetch_extra = options.fetch_extra,
            topic_extra = options.topic_extra,
        );
        std::fs::write(&env.config, text).expect("write config");
        Op {
            env,
            smtp,
            _feed: feed,
        }
    }

    /// Runs the binary without blocking the runtime that serves the feed and the relay.
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        tokio::process::Command::from(self.env.command())
            .args(args)
            .output()
            .await
            .expect("run tidings")
    }

    /// Runs the binary and expects exit code 0; returns stdout.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "{args:?}: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    pub(crate) async fn subscribe(&self, email: &str) {
        self.ok(&[
            "subscribers",
            "add",
            email,
            "--topic",
            "rust",
            "--confirmed",
        ])
        .await;
    }
}

/// A job's lines in `tidings status`: its header ("  fetch: cron ...") and the indented lines
/// under it.
fn job_block(status: &str, job: &str) -> String {
    let header = format!("  {job}: ");
    let mut lines = status.lines().skip_while(|l| !l.starts_with(&header));
    let Some(first) = lines.next() else {
        panic!("no {job} in:\n{status}");
    };
    let mut block = vec![first];
    block.extend(lines.take_while(|l| l.starts_with("    ")));
    block.join("\n")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// The issue id in `send`'s summary line "issue N (rust): this run sent ...".
pub(crate) fn issue_in(send_stdout: &str) -> i64 {
    send_stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("issue ")?;
            let (id, tail) = rest.split_once(' ')?;
            tail.starts_with("(rust): this run")
                .then(|| id.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no summary line in:\n{send_stdout}"))
}

// --- item 9: periods end on whole scheduled seconds --------------------------------------------

per_backend!(two_sends_in_one_period_meet_one_issue_and_mail_once);
async fn two_sends_in_one_period_meet_one_issue_and_mail_once(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    let database_url = url.as_str();
    let op = Op::start(database_url, Options::default()).await;
    op.ok(&["fetch", "--at", &rfc3339(at())]).await;
    op.subscribe("reader@example.org").await;
    let first = op
        .ok(&["send", "--topic", "rust", "--at", "2026-02-28T12:00:00.5Z"])
        .await;
    let second = op
        .ok(&["send", "--topic", "rust", "--at", "2026-02-28T12:00:00Z"])
        .await;
    assert_eq!(
        issue_in(&first),
        issue_in(&second),
        "one period, one issue:\n{first}\n{second}"
    );
    assert_eq!(
        op.smtp.received().len(),
        1,
        "the reader gets the issue once:\n{first}\n{second}"
    );
}

per_backend!(an_issue_frozen_with_fractions_is_still_the_periods_issue);
async fn an_issue_frozen_with_fractions_is_still_the_periods_issue(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    let database_url = url.as_str();
    let op = Op::start(database_url, Options::default()).await;
    op.ok(&["fetch", "--at", &rfc3339(at())]).await;
    op.subscribe("reader@example.org").await;
    // An issue frozen by an earlier version, whose period ended at the clock's fractions.
    let text = std::fs::read_to_string(&op.env.config).unwrap();
    let settings = Settings::from_toml(&text).unwrap();
    let store = Store::open(database_url, 2).await.unwrap();
    let topic = settings.topic("rust").unwrap();
    let mut digest = tidings::pipeline::preview_digest(&settings, &store, topic, at())
        .await
        .unwrap();
    digest.window_end = at() + Duration::milliseconds(500);
    let (old, _) = store.insert_issue(&digest, at()).await.unwrap();
    store.close().await;
    let sent = op
        .ok(&["send", "--topic", "rust", "--at", &rfc3339(at())])
        .await;
    assert_eq!(issue_in(&sent), old.id, "{sent}");
    assert_eq!(op.smtp.received().len(), 1, "{sent}");
}

// --- item 12: send and compile never freeze an empty period ------------------------------------

per_backend!(send_and_compile_leave_an_empty_period_open);
async fn send_and_compile_leave_an_empty_period_open(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    let database_url = url.as_str();
    let op = Op::start(database_url, Options::default()).await;
    op.subscribe("reader@example.org").await;
    let when = rfc3339(at());
    // Nothing fetched yet: the period has no article on topic.
    let send = op.run(&["send", "--topic", "rust", "--at", &when]).await;
    assert_eq!(send.status.code(), Some(0), "{}", stderr(&send));
    assert!(
        stdout(&send).contains("no articles on topic") && stdout(&send).contains("nothing to send"),
        "{}",
        stdout(&send)
    );
    let compile = op.run(&["compile", "--topic", "rust", "--at", &when]).await;
    assert_eq!(compile.status.code(), Some(1), "{}", stdout(&compile));
    assert!(
        stdout(&compile).is_empty(),
        "no issue id: {}",
        stdout(&compile)
    );
    assert!(
        stderr(&compile).contains("no issue compiled"),
        "{}",
        stderr(&compile)
    );
    assert!(op.smtp.received().is_empty());

    // The articles arrive; the same period now compiles and goes out.
    op.ok(&["fetch", "--at", &when]).await;
    let sent = op.ok(&["send", "--topic", "rust", "--at", &when]).await;
    let got = op.smtp.received();
    assert_eq!(got.len(), 1, "{sent}");
    let raw = String::from_utf8_lossy(&got[0].raw);
    assert!(raw.contains("The Rust 2026 edition"), "{raw}");
}

// --- item 12: send honours deliver_at_local ----------------------------------------------------

/// An operator whose `rust` topic is delivered at a local time two hours from now, in the
/// schedule's zone (UTC): always ahead of what the test does next. Returns that time (HH:MM).
async fn start_with_local_delivery(database_url: &str) -> (Op, String) {
    let local = (Utc::now() + Duration::hours(2))
        .format("%H:%M")
        .to_string();
    let topic_extra = format!("deliver_at_local = \"{local}\"");
    let op = Op::start(
        database_url,
        Options {
            topic_extra: &topic_extra,
            ..Options::default()
        },
    )
    .await;
    (op, local)
}

/// The `rust` issue and its delivery schedule, checked to be one row released at `local`.
async fn held_until(
    store: &Store,
    local: &str,
) -> (i64, Vec<(String, Option<String>, DateTime<Utc>)>) {
    let issue = store.list_issues(Some("rust")).await.unwrap()[0].id;
    let schedule = store.issue_delivery_schedule(issue).await.unwrap();
    assert_eq!(schedule.len(), 1, "{schedule:?}");
    assert_eq!(
        schedule[0].2.format("%H:%M").to_string(),
        local,
        "released at the local delivery time: {schedule:?}"
    );
    (issue, schedule)
}

per_backend!(send_holds_deliveries_until_the_local_delivery_time);
async fn send_holds_deliveries_until_the_local_delivery_time(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    let database_url = url.as_str();
    let (op, local) = start_with_local_delivery(database_url).await;
    op.ok(&["fetch", "--at", &rfc3339(at())]).await;
    op.subscribe("reader@example.org").await;
    let out = op
        .ok(&["send", "--topic", "rust", "--at", &rfc3339(at())])
        .await;
    assert!(
        op.smtp.received().is_empty(),
        "held until {local}, not sent now:\n{out}"
    );
    assert!(out.contains("held for local delivery"), "{out}");
    let store = Store::open(database_url, 2).await.unwrap();
    let (issue, schedule) = held_until(&store, &local).await;
    assert!(schedule[0].2 > Utc::now(), "{schedule:?}");

    let dry = op
        .ok(&[
            "send",
            "--topic",
            "rust",
            "--at",
            &rfc3339(at()),
            "--dry-run",
        ])
        .await;
    assert!(
        dry.contains(": 0 message(s) would go out now") && dry.contains("1 queued but not due yet"),
        "{dry}"
    );

    // Sending again before that time keeps it held (and mails nothing).
    op.ok(&["send", "--topic", "rust", "--at", &rfc3339(at())])
        .await;
    assert!(op.smtp.received().is_empty());
    let again = store.issue_delivery_schedule(issue).await.unwrap();
    assert_eq!(again, schedule, "the release time stays");
    store.close().await;
}

// --- one publish path: run holds like send and records the digest run ---------------------------

per_backend!(run_holds_deliveries_until_the_local_delivery_time);
/// `tidings run` queues through the same publish path as `send` and the digest job: with
/// `deliver_at_local` nothing is mailed before that time, and the handled period is recorded as
/// the digest's last run (what `status` shows, and what keeps a later `serve` from catching it
/// up).
async fn run_holds_deliveries_until_the_local_delivery_time(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    let database_url = url.as_str();
    let (op, local) = start_with_local_delivery(database_url).await;
    op.subscribe("reader@example.org").await;
    let out = op.ok(&["run", "--at", &rfc3339(at())]).await;
    assert!(
        out.contains("1 new deliveries queued, 1 held for local delivery"),
        "{out}"
    );
    assert!(out.contains("this run sent 0,"), "{out}");
    assert!(
        op.smtp.received().is_empty(),
        "held until {local}, not sent now:\n{out}"
    );
    let store = Store::open(database_url, 2).await.unwrap();
    let (issue, _) = held_until(&store, &local).await;
    let articles = store
        .get_issue(issue)
        .await
        .unwrap()
        .unwrap()
        .digest
        .entries
        .len();
    store.close().await;

    let status = op.ok(&["status"]).await;
    let digest = job_block(&status, "digest:rust");
    assert!(
        digest.contains(&format!(
            "last: 2026-02-28 12:00:00 UTC; tidings run: issue #{issue} ({articles} article(s))"
        )),
        "{status}"
    );
}
// --- item 17: every source failed ---------------------------------------------------------------

/// A loopback URL where nothing listens (the port was just released).
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/feed.xml")
}

#[tokio::test]
async fn fetch_and_run_exit_1_when_every_source_failed_and_say_it_once() {
    let url = dead_url().await;
    let op = Op::start(
        &db::sqlite_url(),
        Options {
            feed_url: Some(&url),
            ..Options::default()
        },
    )
    .await;
    for command in ["fetch", "run"] {
        let out = op.run(&[command, "--at", &rfc3339(at())]).await;
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{command}: {all}");
        assert_eq!(
            all.matches("every source failed").count(),
            1,
            "{command} says it once:\n{all}"
        );
        assert_eq!(
            all.matches(url.as_str()).count(),
            1,
            "{command} names the URL once:\n{all}"
        );
    }
}

// --- item 20: operator output -------------------------------------------------------------------

per_backend!(dry_run_counts_what_would_go_out_now);
async fn dry_run_counts_what_would_go_out_now(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    let database_url = url.as_str();
    let op = Op::start(database_url, Options::default()).await;
    let when = rfc3339(at());
    op.ok(&["fetch", "--at", &when]).await;
    op.subscribe("one@example.org").await;
    op.subscribe("two@example.org").await;
    let dry = op
        .ok(&["send", "--topic", "rust", "--at", &when, "--dry-run"])
        .await;
    assert!(dry.contains(": 2 message(s) would go out now"), "{dry}");
    op.ok(&["send", "--topic", "rust", "--at", &when]).await;
    assert_eq!(op.smtp.received().len(), 2);
    op.subscribe("three@example.org").await;
    let dry = op
        .ok(&["send", "--topic", "rust", "--at", &when, "--dry-run"])
        .await;
    assert!(
        dry.contains(": 1 message(s) would go out now (1 new, 0 due again)"),
        "{dry}"
    );
    assert!(dry.contains("2 already sent"), "{dry}");
    assert_eq!(op.smtp.received().len(), 2, "a dry run sends nothing");
}

#[tokio::test]
async fn a_second_run_reports_what_it_did_and_status_shows_its_fetch() {
    let op = Op::start(&db::sqlite_url(), Options::default()).await;
    op.subscribe("one@example.org").await;
    op.subscribe("two@example.org").await;
    let when = rfc3339(at());
    let first = op.ok(&["run", "--at", &when]).await;
    assert!(first.contains("this run sent 2,"), "{first}");
    let second = op.ok(&["run", "--at", &when]).await;
    assert!(second.contains("this run sent 0,"), "{second}");
    assert_eq!(op.smtp.received().len(), 2);

    let status = op.ok(&["status"]).await;
    let fetch = job_block(&status, "fetch");
    assert!(
        fetch.contains("last: 2026-02-28 12:00:00 UTC; ok (tidings run): 1 sources ok"),
        "{status}"
    );
}

/// A weekly Monday 08:00 UTC digest of `rust`, other jobs off.
fn weekly_settings(database_url: &str) -> Arc<Settings> {
    let text = format!(
        "[database]\nurl = \"{database_url}\"\n\n[schedule]\ncron = \"0 0 8 * * Mon\"\ntimezone = \"UTC\"\nfetch_cron = \"\"\nretry_cron = \"\"\nhousekeeping_cron = \"\"\ncatch_up_hours = 24\n\n[[topics]]\nslug = \"rust\"\nname = \"Rust\"\nkeywords = [\"Rust\"]\n"
    );
    Arc::new(Settings::from_toml(&text).unwrap())
}

per_backend!(status_keeps_the_last_completed_digest_after_a_skipped_slot);
async fn status_keeps_the_last_completed_digest_after_a_skipped_slot(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    let database_url = url.as_str();
    let monday = Utc.with_ymd_and_hms(2026, 2, 2, 8, 0, 0).unwrap();
    let settings = weekly_settings(database_url);
    let store = Store::open(database_url, 2).await.unwrap();
    seed_article(&store, monday).await;
    store
        .add_subscriber(
            &db::new_subscriber("a@example.com", &["rust"], SubscriberStatus::Confirmed),
            monday - Duration::days(40),
        )
        .await
        .unwrap();
    // Monday's digest runs on time.
    let clock = Arc::new(ManualClock::new(monday));
    let mut sched = scheduler(&settings, &store, &clock, "first");
    sched.start().await.unwrap();
    sched.run_due().await;
    // Down all week: the next Monday is found more than catch_up_hours late and skipped.
    clock.set(monday + Duration::days(8) + Duration::seconds(1));
    let mut later = scheduler(&settings, &store, &clock, "later");
    later.start().await.unwrap();

    let env = TestEnv::new(database_url, "");
    std::fs::write(
        &env.config,
        format!(
            "[database]\nurl = \"{database_url}\"\n\n[schedule]\ncron = \"0 0 8 * * Mon\"\ntimezone = \"UTC\"\n\n[[topics]]\nslug = \"rust\"\nname = \"Rust\"\nkeywords = [\"Rust\"]\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::from(env.command())
        .arg("status")
        .output()
        .await
        .unwrap();
    let status = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let digest = job_block(&status, "digest:rust");
    assert!(
        digest.contains("last: 2026-02-09 08:00:00 UTC; skipped"),
        "{status}"
    );
    assert!(
        digest.contains("last completed: 2026-02-02 08:00:00 UTC; ok: issue #"),
        "{status}"
    );
    store.close().await;
}

per_backend!(explain_says_why_fetch_did_not_store_an_entry);
async fn explain_says_why_fetch_did_not_store_an_entry(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    let database_url = url.as_str();
    let op = Op::start(
        database_url,
        Options {
            fetch_extra: "max_entries = 2",
            ..Options::default()
        },
    )
    .await;
    let when = rfc3339(at());
    let feed = op._feed.as_ref().unwrap();
    let never = op
        .ok(&[
            "explain",
            &feed.post_url(2),
            "--topic",
            "rust",
            "--at",
            &when,
        ])
        .await;
    assert!(never.contains("run `tidings fetch` first"), "{never}");
    op.ok(&["fetch", "--at", &when]).await;
    let dropped = op
        .ok(&[
            "explain",
            &feed.post_url(2),
            "--topic",
            "rust",
            "--at",
            &when,
        ])
        .await;
    assert!(
        dropped.contains("fetch saw it at")
            && dropped.contains("Fixture Blog")
            && dropped.contains("beyond the first 2 entries of the feed ([fetch] max_entries)"),
        "{dropped}"
    );
    assert!(!dropped.contains("run `tidings fetch` first"), "{dropped}");
    let unknown = op
        .ok(&[
            "explain",
            "https://elsewhere.example/never-seen",
            "--topic",
            "rust",
            "--at",
            &when,
        ])
        .await;
    assert!(
        unknown.contains("no source returned this URL (last fetch 2026-02-28T12:00:00+00:00)"),
        "{unknown}"
    );
}
