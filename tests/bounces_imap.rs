//! The IMAP bounce mailbox against a real IMAP server (Dovecot, started by `scripts/test`): a
//! hard bounce, a complaint, an auto-reply and a bounce for nobody we know are appended to the
//! INBOX; one poll stores each as an event (seen through `subscribers list --json` and `bounces
//! list --json`), moves the three that matched to `Processed` and the other to `Unmatched`
//! (creating both), and a second poll changes nothing; on both backends. Also: a server without
//! MOVE (COPY, `\Deleted`, EXPUNGE), the database down (the message stays in the INBOX and the
//! next poll stores it once), a wrong password and an untrusted certificate (errors without the
//! password), `tidings serve` polling end to end and stopping on SIGTERM, and `serve` refusing
//! to start on an unreadable `imap_ca_file`.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tidings::config::Settings;
use tidings::inbound::Ingester;
use tidings::inbound::imap::{PollSummary, Poller};
use tidings::store::Store;

use crate::bounces_ingest::{events, status_of};
use crate::support::cli::{TestEnv, stderr};
use crate::support::db::{self, Backend, per_backend};
use crate::support::imap::{self, ImapServer};

const HARD: &str = "<20260209080500.1@mx.example.org>";
const COMPLAINT: &str = "<fbl-20260209-1@mail.example.net>";
const AUTO_REPLY: &str = "<vacation-1@example.net>";
const NOBODY: &str = "<soft-1@mx.example.org>";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bounces")
            .join(name),
    )
    .expect("read fixture")
}

/// The auto-reply fixture, with a Message-ID so the test can tell where it went.
fn auto_reply() -> Vec<u8> {
    let mut bytes = format!("Message-ID: {AUTO_REPLY}\n").into_bytes();
    bytes.extend(fixture("vacation.eml"));
    bytes
}

/// A config on `url` whose `[bounces]` polls `user`'s INBOX, with `subscribers` confirmed.
fn env_for(
    url: &str,
    label: &str,
    server: &ImapServer,
    user: &str,
    subscribers: &[&str],
) -> TestEnv {
    let env = TestEnv::new(url, &server.bounces_config(user, 60));
    for email in subscribers {
        let out = env.run(&[
            "subscribers",
            "add",
            email,
            "--topic",
            "rust",
            "--confirmed",
        ]);
        assert!(
            out.status.success(),
            "{label}: add {email}: {}",
            stderr(&out)
        );
    }
    env
}

/// The poller of `env`'s configuration, on its own store.
async fn poller(env: &TestEnv) -> (Poller, Store) {
    let settings = Settings::load(Some(&env.config)).expect("load the test config");
    let store = Store::open(&env.database_url, 2)
        .await
        .expect("open the store");
    let imap = settings.bounces.imap.clone().expect("imap configured");
    let poller = Poller::new(imap, Ingester::new(&settings, store.clone())).expect("poller");
    (poller, store)
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

per_backend!(one_poll_records_each_message_and_files_it_by_match);
async fn one_poll_records_each_message_and_files_it_by_match(backend: Backend) {
    let Some(server) = imap::server() else {
        return;
    };
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let user = server.new_user();
    let env = env_for(
        &url,
        label,
        &server,
        &user,
        &[
            "gone@example.org",
            "angry@example.net",
            "reader@example.net",
        ],
    );
    for message in [
        fixture("tidings-digest-bounce.eml"),
        fixture("arf-complaint.eml"),
        auto_reply(),
        fixture("soft-bounce.eml"), // for full@example.org, who is no subscriber
    ] {
        server.append(&user, &message).await;
    }
    let (poller, store) = poller(&env).await;
    let summary = poller.poll_once().await.expect("poll");
    assert_eq!(
        summary,
        PollSummary {
            found: 4,
            processed: 3,
            unmatched: 1,
            left: 0,
            store_error: None,
        },
        "{label}"
    );
    assert_eq!(status_of(&env, label, "gone@example.org"), "bounced");
    assert_eq!(status_of(&env, label, "angry@example.net"), "complained");
    assert_eq!(status_of(&env, label, "reader@example.net"), "confirmed");
    let events = events(&env, label);
    let mut kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["auto-reply", "bounce", "bounce", "complaint"],
        "{label}"
    );
    assert!(
        events.iter().all(|e| e["source"] == "imap"),
        "{label}: {events:?}"
    );
    // Suppressed: adding the bounced address again is refused.
    let out = env.run(&["subscribers", "add", "gone@example.org", "--topic", "rust"]);
    assert!(
        !out.status.success(),
        "{label}: a bounced address was added again"
    );

    assert_eq!(
        server.message_ids(&user, "INBOX").await,
        Vec::<String>::new(),
        "{label}"
    );
    assert_eq!(
        server.message_ids(&user, "Processed").await,
        sorted(&[HARD, COMPLAINT, AUTO_REPLY]),
        "{label}"
    );
    assert_eq!(
        server.message_ids(&user, "Unmatched").await,
        sorted(&[NOBODY]),
        "{label}"
    );

    // A second poll finds nothing and changes nothing.
    let again = poller.poll_once().await.expect("second poll");
    assert_eq!(again, PollSummary::default(), "{label}");
    assert_eq!(self::events(&env, label).len(), 4, "{label}");
    assert_eq!(
        server.message_ids(&user, "Processed").await.len(),
        3,
        "{label}"
    );
    // The same bounce arriving again is recognised: filed, but no second event.
    server
        .append(&user, &fixture("tidings-digest-bounce.eml"))
        .await;
    let repeat = poller.poll_once().await.expect("third poll");
    assert_eq!((repeat.found, repeat.processed), (1, 1), "{label}");
    assert_eq!(self::events(&env, label).len(), 4, "{label}");
    store.close().await;
}

#[tokio::test]
async fn a_server_without_move_gets_copy_then_deleted_and_expunge() {
    let Some(server) = imap::server() else {
        return;
    };
    let user = server.new_user();
    let url = db::sqlite_url();
    // 127.0.0.2 is the same server without MOVE or UIDPLUS, over plain imap (loopback).
    let config = format!(
        "[bounces]\nimap_url = \"imap://{user}@127.0.0.2:{}/INBOX\"\nimap_password = \"{}\"\n",
        server.imap_port, server.password
    );
    let env = TestEnv::new(&url, &config);
    let out = env.run(&[
        "subscribers",
        "add",
        "gone@example.org",
        "--topic",
        "rust",
        "--confirmed",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    {
        let mut session = server.login_on("127.0.0.2", &user).await;
        let caps = session.capabilities().await.expect("CAPABILITY");
        assert!(!caps.has_str("MOVE"), "127.0.0.2 must not offer MOVE");
        session.logout().await.expect("LOGOUT");
    }
    server
        .append(&user, &fixture("tidings-digest-bounce.eml"))
        .await;
    server.append(&user, &fixture("soft-bounce.eml")).await;
    let (poller, store) = poller(&env).await;
    let summary = poller.poll_once().await.expect("poll");
    assert_eq!(
        (summary.found, summary.processed, summary.unmatched),
        (2, 1, 1)
    );
    assert_eq!(
        server.message_ids(&user, "INBOX").await,
        Vec::<String>::new()
    );
    assert_eq!(
        server.message_ids(&user, "Processed").await,
        sorted(&[HARD])
    );
    assert_eq!(
        server.message_ids(&user, "Unmatched").await,
        sorted(&[NOBODY])
    );
    assert_eq!(status_of(&env, "sqlite", "gone@example.org"), "bounced");
    store.close().await;
}

per_backend!(with_the_database_down_the_message_stays_for_the_next_poll);
async fn with_the_database_down_the_message_stays_for_the_next_poll(backend: Backend) {
    let Some(server) = imap::server() else {
        return;
    };
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let user = server.new_user();
    let env = env_for(&url, label, &server, &user, &["gone@example.org"]);
    server
        .append(&user, &fixture("tidings-digest-bounce.eml"))
        .await;
    let (poller, store) = poller(&env).await;
    store.close().await; // the poller's store is now unavailable
    let summary = poller.poll_once().await.expect("the poll itself works");
    assert_eq!(
        (summary.found, summary.processed, summary.left),
        (1, 0, 1),
        "{label}"
    );
    assert!(summary.store_error.is_some(), "{label}");
    assert_eq!(
        server.message_ids(&user, "INBOX").await,
        sorted(&[HARD]),
        "{label}"
    );
    assert!(
        server.message_ids(&user, "Processed").await.is_empty(),
        "{label}"
    );
    assert_eq!(status_of(&env, label, "gone@example.org"), "confirmed");

    // The database is back: the next poll stores it, once, and files it.
    let (poller, store) = self::poller(&env).await;
    let summary = poller.poll_once().await.expect("poll");
    assert_eq!(
        (summary.found, summary.processed, summary.left),
        (1, 1, 0),
        "{label}"
    );
    assert_eq!(status_of(&env, label, "gone@example.org"), "bounced");
    assert_eq!(events(&env, label).len(), 1, "{label}");
    assert!(
        server.message_ids(&user, "INBOX").await.is_empty(),
        "{label}"
    );
    store.close().await;
}

#[tokio::test]
async fn a_wrong_password_or_an_untrusted_certificate_fails_the_poll_without_the_password() {
    let Some(server) = imap::server() else {
        return;
    };
    let user = server.new_user();
    let url = db::sqlite_url();
    let wrong = "wrong-pw-7c1e9d";
    let config = server
        .bounces_config(&user, 60)
        .replace(&format!("\"{}\"", server.password), &format!("\"{wrong}\""));
    let env = TestEnv::new(&url, &config);
    server
        .append(&user, &fixture("tidings-digest-bounce.eml"))
        .await;
    let (poller, store) = poller(&env).await;
    let e = poller
        .poll_once()
        .await
        .expect_err("a wrong password fails");
    let text = format!("{e} {e:?}");
    assert!(text.contains("LOGIN"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    store.close().await;

    // Without imap_ca_file the self-signed certificate is not trusted.
    let config = server.bounces_config(&user, 60).replace(
        &format!("imap_ca_file = \"{}\"", server.ca_file.display()),
        "",
    );
    let env = TestEnv::new(&url, &config);
    let (poller, store) = self::poller(&env).await;
    let e = poller
        .poll_once()
        .await
        .expect_err("an untrusted certificate fails");
    assert!(e.to_string().contains("TLS"), "{e}");
    store.close().await;
    assert_eq!(server.message_ids(&user, "INBOX").await, sorted(&[HARD]));
}

/// `tidings serve` as a child process, its log in a file.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_polls_the_bounce_mailbox_and_stops_on_sigterm() {
    let Some(server) = imap::server() else {
        return;
    };
    let user = server.new_user();
    let url = db::sqlite_url();
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n",
        server.bounces_config(&user, 1)
    );
    let env = TestEnv::new(&url, &config);
    let out = env.run(&[
        "subscribers",
        "add",
        "gone@example.org",
        "--topic",
        "rust",
        "--confirmed",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    server
        .append(&user, &fixture("tidings-digest-bounce.eml"))
        .await;
    let log_path = env.path("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut serve = Serve(
        env.command()
            .env("RUST_LOG", "info")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tidings serve"),
    );
    let end = Instant::now() + Duration::from_secs(60);
    while server.message_ids(&user, "Processed").await.is_empty() {
        assert!(
            Instant::now() < end,
            "serve did not file the bounce: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        // Polling the mailbox, with a deadline.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status_of(&env, "sqlite", "gone@example.org"), "bounced");
    let events = events(&env, "sqlite");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["source"], "imap");
    assert!(server.message_ids(&user, "INBOX").await.is_empty());

    let pid = serve.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(killed.expect("kill").success());
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < end, "serve did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await; // polling the exit, with a deadline
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "serve exits cleanly: {status}: {log}");
    assert!(log.contains("polling the bounce mailbox"), "{log}");
    assert!(log.contains("bounce mailbox poller stopped"), "{log}");
    assert!(
        !log.contains(&server.password),
        "the password is in the log: {log}"
    );
}

#[test]
fn serve_refuses_to_start_when_the_imap_ca_file_cannot_be_read() {
    let url = db::sqlite_url();
    let env = TestEnv::new(
        &url,
        "[bounces]\nimap_url = \"imaps://bounces@mail.example.com/INBOX\"\n\
         imap_password = \"pw-never-shown-4b1d\"\nimap_ca_file = \"/nonexistent/ca.pem\"\n\
         \n[web]\nbind = \"127.0.0.1:0\"\n",
    );
    let out = env.run(&["serve"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bounces.imap_ca_file"), "{err}");
    assert!(!err.contains("pw-never-shown-4b1d"), "{err}");
}
