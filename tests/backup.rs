//! `tidings backup`, `tidings restore` and `tidings db copy` through the built binary, on real
//! SQLite and PostgreSQL: a populated SQLite database (confirmed, pending, unsubscribed and
//! bounced subscribers, a digest sent over SMTP with its deliveries, a bounce event, a web
//! sign-up with its confirmation and mail-limit stamp) copied to PostgreSQL and back, and backed
//! up and restored across backends, shows the same `subscribers export`, `subscribers list
//! --json`, `deliveries --json`, `bounces list --json`, archive pages (served by the web app)
//! and row counts (times compared to the microsecond, PostgreSQL's precision); the source is
//! unchanged; a backup taken while a writer runs restores to the
//! state it captured; a non-empty target is refused with exit 2, naming the table; a damaged
//! backup file or one from a newer schema is refused and leaves the target empty.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tidings::domain::SubscriberStatus;
use tidings::store::Store;

use crate::operator::{Op, Options, at, issue_in};
use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db::{self, Backend, per_backend};

/// Runs the binary on a config whose database is `url`, without blocking the runtime.
async fn run_on(url: &str, args: &[&str]) -> Output {
    let env = TestEnv::new(url, "");
    tokio::process::Command::from(env.command())
        .args(args)
        .output()
        .await
        .expect("run tidings")
}

async fn ok_on(url: &str, args: &[&str]) -> String {
    let out = run_on(url, args).await;
    assert!(
        out.status.success(),
        "{args:?} on {url}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `tidings db copy --from FROM --to TO`.
async fn db_copy(from: &str, to: &str) -> Output {
    run_on(from, &["db", "copy", "--from", from, "--to", to]).await
}

/// A path for a backup file in a new temporary directory (the file does not exist yet).
fn backup_path() -> PathBuf {
    tempfile::tempdir()
        .expect("temp dir")
        .keep()
        .join("tidings-backup.jsonl.gz")
}

/// What an operator and a reader see of a database.
#[derive(Debug, PartialEq)]
struct Seen {
    export: String,
    subscribers: String,
    deliveries: String,
    bounces: String,
    pages: Vec<(String, String)>,
    counts: Vec<(String, u64)>,
}

/// `text` with every time's fraction of a second cut to microseconds: PostgreSQL keeps times to
/// the microsecond, so the nanoseconds SQLite holds do not survive a move to it (and nothing
/// else may differ).
fn to_micros(text: String) -> String {
    let fraction = regex::Regex::new(r"(T\d\d:\d\d:\d\d\.\d{6})\d+").unwrap();
    fraction.replace_all(&text, "$1").into_owned()
}

async fn seen(url: &str, issue: i64) -> Seen {
    let store = Store::open_existing(url, 2)
        .await
        .expect("open the database");
    let app = crate::web::TestApp::new("copy", store.clone(), crate::web::settings(""));
    let mut pages = Vec::new();
    for path in [
        "/archive".to_string(),
        "/archive/rust".to_string(),
        format!("/archive/rust/{issue}"),
        "/archive/rust/feed.xml".to_string(),
    ] {
        let answer = app.get(&path).await;
        assert_eq!(answer.status, 200, "{path} on {url}: {}", answer.body);
        pages.push((path, to_micros(answer.body)));
    }
    let counts = store
        .table_counts()
        .await
        .expect("count rows")
        .into_iter()
        .map(|t| (t.table, t.rows))
        .collect();
    store.close().await;
    Seen {
        export: to_micros(ok_on(url, &["subscribers", "export"]).await),
        subscribers: to_micros(ok_on(url, &["subscribers", "list", "--json"]).await),
        deliveries: to_micros(ok_on(url, &["deliveries", "--json"]).await),
        bounces: to_micros(ok_on(url, &["bounces", "list", "--json"]).await),
        pages,
        counts,
    }
}

/// A SQLite database with a bit of everything: four subscribers (one stays pending, one
/// unsubscribes after the digest, one's address bounces hard), a digest sent over SMTP, the
/// bounce stored as an event, and a sign-up through the web form (a queued confirmation and
/// the form's mail-limit stamp). Returns its URL and the digest's issue id.
async fn populated_sqlite() -> (String, i64) {
    let url = db::sqlite_url();
    let op = Op::start(&url, Options::default()).await;
    for email in [
        "reader@example.com",
        "gone@example.org",
        "leaver@example.com",
    ] {
        op.subscribe(email).await;
    }
    op.ok(&[
        "subscribers",
        "add",
        "pending@example.com",
        "--topic",
        "rust",
    ])
    .await;
    let when = at().to_rfc3339();
    op.ok(&["fetch", "--at", &when]).await;
    let sent = op.ok(&["send", "--topic", "rust", "--at", &when]).await;
    let issue = issue_in(&sent);
    op.ok(&["subscribers", "remove", "leaver@example.com"])
        .await;
    let bounce = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces/tidings-digest-bounce.eml");
    let ingested = op
        .ok(&["bounces", "ingest", &bounce.display().to_string()])
        .await;
    assert!(ingested.contains("now bounced"), "{ingested}");
    let store = Store::open_existing(&url, 2).await.expect("open");
    let app = crate::web::TestApp::new("sqlite", store.clone(), crate::web::settings(""));
    let answer = app
        .post_form("/subscribe", "email=web%40example.com&topic=rust")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    store.close().await;
    (url, issue)
}

/// The rows of a backup file (every line but the header, which carries the time and backend).
fn backup_rows(path: &Path) -> Vec<String> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).expect("open the backup");
    let lines: Vec<String> = std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| l.expect("read the backup"))
        .collect();
    assert!(
        lines[0].contains("\"format\":\"tidings-backup\""),
        "{}",
        lines[0]
    );
    lines[1..].to_vec()
}

/// A backup of `url` through the binary; returns the file.
async fn backup_of(url: &str) -> PathBuf {
    let path = backup_path();
    let out = ok_on(url, &["backup", &path.display().to_string()]).await;
    assert!(out.contains("backup written to"), "{out}");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_copied_to_postgres_and_back_shows_the_same_everything() {
    let (source, issue) = populated_sqlite().await;
    let Some(pg) = db::postgres_url().await else {
        return;
    };
    let before = seen(&source, issue).await;
    assert!(
        before.subscribers.contains("bounced"),
        "{}",
        before.subscribers
    );
    assert!(before.subscribers.contains("unsubscribed"));
    assert!(before.subscribers.contains("pending"));
    assert!(
        before.deliveries.contains("\"sent\""),
        "{}",
        before.deliveries
    );
    assert!(before.bounces.contains("5.1.1"), "{}", before.bounces);
    let rows_before = backup_rows(&backup_of(&source).await);

    let out = db_copy(&source, &pg).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("row counts verified"),
        "{}",
        stdout(&out)
    );
    assert_eq!(seen(&pg, issue).await, before, "sqlite -> postgres");

    let back = db::sqlite_url();
    let out = db_copy(&pg, &back).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(seen(&back, issue).await, before, "postgres -> sqlite");

    // The source was only read.
    assert_eq!(seen(&source, issue).await, before, "the source changed");
    assert_eq!(backup_rows(&backup_of(&source).await), rows_before);

    // New rows in the copies get ids the source never handed out: past the erased
    // subscriber 5, not in its place.
    for url in [&pg, &back] {
        ok_on(
            url,
            &["subscribers", "add", "later@example.com", "--topic", "rust"],
        )
        .await;
        let list: serde_json::Value =
            serde_json::from_str(&ok_on(url, &["subscribers", "list", "--json"]).await).unwrap();
        let later = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["email"] == "later@example.com")
            .expect("later@ listed");
        assert_eq!(later["id"], 6, "{url}: {list}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_restores_into_postgres_and_a_postgres_backup_into_sqlite() {
    let (source, issue) = populated_sqlite().await;
    let Some(pg) = db::postgres_url().await else {
        return;
    };
    let before = seen(&source, issue).await;
    let file = backup_of(&source).await;
    let out = ok_on(&pg, &["restore", &file.display().to_string()]).await;
    assert!(out.contains("row counts verified"), "{out}");
    assert_eq!(seen(&pg, issue).await, before, "sqlite backup -> postgres");

    let file = backup_of(&pg).await;
    let sqlite = db::sqlite_url();
    ok_on(&sqlite, &["restore", &file.display().to_string()]).await;
    assert_eq!(
        seen(&sqlite, issue).await,
        before,
        "postgres backup -> sqlite"
    );
}

per_backend!(
    a_backup_taken_while_a_writer_runs_restores_to_what_it_captured,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn a_backup_taken_while_a_writer_runs_restores_to_what_it_captured(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let store = Store::open(&url, 4).await.expect("open");
    // The writer adds subscribers (each with its subscription and consent, in one
    // transaction) until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let added = Arc::new(AtomicUsize::new(0));
    let (first, first_written) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let (store, stop, added) = (store.clone(), stop.clone(), added.clone());
        tokio::spawn(async move {
            let mut first = Some(first);
            while !stop.load(Ordering::SeqCst) {
                let n = added.load(Ordering::SeqCst);
                db::add_subscriber(
                    &store,
                    &format!("writer-{n}@example.com"),
                    &["rust"],
                    SubscriberStatus::Confirmed,
                )
                .await;
                added.fetch_add(1, Ordering::SeqCst);
                if let Some(tx) = first.take() {
                    let _ = tx.send(());
                }
            }
        })
    };
    first_written.await.expect("the writer wrote");
    let file = backup_of(&url).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("the writer");
    let total = added.load(Ordering::SeqCst) as u64;
    store.close().await;

    // The backup is one snapshot: every subscriber it holds comes with its subscription and
    // consent (the restore's foreign keys and counts would fail otherwise).
    let rows = backup_rows(&file);
    let subscribers = rows
        .iter()
        .find(|l| l.contains("\"line\":\"end\"") && l.contains("\"table\":\"subscribers\""))
        .expect("the subscribers' end line")
        .clone();
    let captured: u64 = serde_json::from_str::<serde_json::Value>(&subscribers).unwrap()["rows"]
        .as_u64()
        .unwrap();
    assert!(
        captured >= 1 && captured <= total,
        "{label}: {captured} of {total}"
    );
    for table in ["subscriptions", "consents"] {
        assert!(
            rows.iter().any(|l| l.contains("\"line\":\"end\"")
                && l.contains(&format!("\"table\":\"{table}\""))
                && l.contains(&format!("\"rows\":{captured}"))),
            "{label}: {table} does not match {captured} subscribers"
        );
    }

    // Restored into a new database of the same backend, it backs up to the same rows.
    let (_, restored) = backend.url().await.expect("a second database");
    let out = ok_on(&restored, &["restore", &file.display().to_string()]).await;
    assert!(out.contains("row counts verified"), "{label}: {out}");
    assert_eq!(backup_rows(&backup_of(&restored).await), rows, "{label}");
    let export = ok_on(&restored, &["subscribers", "export"]).await;
    assert_eq!(
        export.lines().count() as u64,
        captured + 1,
        "{label}: {export}"
    );

    // Only its owner may read it: it holds every subscriber's address.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{label}: mode {mode:o}");
    }
    // A backup never overwrites a file.
    let out = run_on(&url, &["backup", &file.display().to_string()]).await;
    assert_eq!(out.status.code(), Some(2), "{label}: {}", stderr(&out));
    assert!(stderr(&out).contains("exists"), "{label}: {}", stderr(&out));
}

/// A database on `backend` with one subscriber; its URL and label.
async fn one_subscriber(backend: Backend) -> Option<(&'static str, String)> {
    let (label, url) = backend.url().await?;
    ok_on(&url, &["migrate"]).await;
    ok_on(
        &url,
        &["subscribers", "add", "here@example.com", "--topic", "rust"],
    )
    .await;
    Some((label, url))
}

per_backend!(
    restore_into_a_database_that_is_not_empty_is_refused,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn restore_into_a_database_that_is_not_empty_is_refused(backend: Backend) {
    let Some((label, target)) = one_subscriber(backend).await else {
        return;
    };
    let (source, _) = populated_sqlite().await;
    let file = backup_of(&source).await;
    let before = ok_on(&target, &["subscribers", "list", "--json"]).await;
    let out = run_on(&target, &["restore", &file.display().to_string()]).await;
    assert_eq!(out.status.code(), Some(2), "{label}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("not empty") && stderr(&out).contains("subscribers"),
        "{label}: {}",
        stderr(&out)
    );
    assert_eq!(
        ok_on(&target, &["subscribers", "list", "--json"]).await,
        before
    );
}

per_backend!(
    db_copy_into_a_target_that_is_not_empty_is_refused,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn db_copy_into_a_target_that_is_not_empty_is_refused(backend: Backend) {
    let Some((label, target)) = one_subscriber(backend).await else {
        return;
    };
    let (source, issue) = populated_sqlite().await;
    let before = seen(&source, issue).await;
    let target_before = ok_on(&target, &["subscribers", "list", "--json"]).await;
    let out = db_copy(&source, &target).await;
    assert_eq!(out.status.code(), Some(2), "{label}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("not empty") && stderr(&out).contains("table subscribers"),
        "{label}: {}",
        stderr(&out)
    );
    assert_eq!(
        ok_on(&target, &["subscribers", "list", "--json"]).await,
        target_before
    );
    assert_eq!(
        seen(&source, issue).await,
        before,
        "{label}: the source changed"
    );
}

per_backend!(
    a_truncated_backup_is_refused_and_leaves_the_target_empty,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn a_truncated_backup_is_refused_and_leaves_the_target_empty(backend: Backend) {
    let Some((label, target)) = backend.url().await else {
        return;
    };
    let (source, _) = populated_sqlite().await;
    let file = backup_of(&source).await;
    // Everything but the closing line, recompressed: a backup cut short.
    let mut rows = backup_rows(&file);
    rows.pop();
    let header = {
        use std::io::BufRead as _;
        let f = std::fs::File::open(&file).unwrap();
        std::io::BufReader::new(flate2::read::GzDecoder::new(f))
            .lines()
            .next()
            .unwrap()
            .unwrap()
    };
    let write_backup = |header: &str, rows: &[String]| {
        use std::io::Write as _;
        let path = backup_path();
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        for line in std::iter::once(header).chain(rows.iter().map(String::as_str)) {
            writeln!(gz, "{line}").unwrap();
        }
        gz.finish().unwrap();
        path
    };
    let cut = write_backup(&header, &rows);
    let out = run_on(&target, &["restore", &cut.display().to_string()]).await;
    assert_eq!(out.status.code(), Some(1), "{label}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("ends early"),
        "{label}: {}",
        stderr(&out)
    );
    assert_eq!(
        ok_on(&target, &["subscribers", "export"])
            .await
            .lines()
            .count(),
        1,
        "{label}"
    );
    // A backup from a newer tidings (a schema this build does not know) is refused too.
    let newer = header.replace("\"schema_version\":", "\"schema_version\":99");
    assert_ne!(newer, header);
    let full = backup_rows(&file);
    let out = run_on(
        &target,
        &[
            "restore",
            &write_backup(&newer, &full).display().to_string(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{label}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("newer tidings"),
        "{label}: {}",
        stderr(&out)
    );
    // The whole file restores into the same, still empty, database.
    ok_on(&target, &["restore", &file.display().to_string()]).await;
}
