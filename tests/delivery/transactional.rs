//! Transactional mail end to end: an address typed into the real subscribe form, served over
//! HTTP on loopback, gets its email at the loopback SMTP relay, on SQLite and PostgreSQL. An
//! unsubscribed reader who types their address gets a link to their preferences (the way back);
//! a new address gets a confirmation link.

use tidings::config::Settings;
use tidings::domain::SubscriberStatus;
use tidings::store::Store;

use super::{TestClock, add, subscribe_through_the_form};
use crate::support::db::{self, Backend, per_backend};
use crate::support::smtp::{Faults, Received, SmtpServer};

/// Web and delivery settings for a relay on `smtp_port`.
fn settings(smtp_port: u16) -> Settings {
    let outbox = tempfile::tempdir().unwrap().keep();
    Settings::from_toml(&format!(
        r#"
[newsletter]
base_url = "http://news.test"
from = "Tidings <news@example.com>"
secret = "a-test-secret-that-is-long-enough-0123456789"

[delivery]
transport = "smtp"
outbox_dir = "{}"
concurrency = 1

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout_secs = 5

[[topics]]
slug = "rust"
name = "Rust"
"#,
        outbox.display()
    ))
    .unwrap()
}

/// Types `email` into the subscribe form of the app served on loopback, then delivers what is
/// due and returns what reached the relay.
async fn type_into_the_form(store: &Store, email: &str) -> Vec<Received> {
    type_into_the_form_with(store, email, |_| {}).await
}

/// [`type_into_the_form`] with the settings changed by `edit` first.
async fn type_into_the_form_with(
    store: &Store,
    email: &str,
    edit: impl FnOnce(&mut Settings),
) -> Vec<Received> {
    let server = SmtpServer::start(Faults::default()).await;
    let mut settings = settings(server.port);
    edit(&mut settings);
    subscribe_through_the_form(&settings, store, email).await;
    TestClock::new().deliver(&settings, store).await;
    server.received()
}

/// The links to this site in a message's text part.
fn links(message: &Received) -> Vec<String> {
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.raw)
        .expect("parses as MIME");
    let text = parsed.body_text(0).expect("a text part").into_owned();
    text.split_whitespace()
        .filter_map(|w| w.find("http://news.test/").map(|i| w[i..].to_string()))
        .collect()
}

/// A reader of `rust` who has since unsubscribed from everything.
async fn unsubscribed_reader(store: &Store, email: &str) -> i64 {
    let id = add(store, email, &["rust"], SubscriberStatus::Confirmed).await;
    store.unsubscribe_all(id, chrono::Utc::now()).await.unwrap();
    id
}

per_backend!(an_unsubscribed_reader_typing_their_address_receives_a_preferences_link);
async fn an_unsubscribed_reader_typing_their_address_receives_a_preferences_link(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let id = unsubscribed_reader(&store, "returning@example.org").await;
    let got = type_into_the_form(&store, "returning@example.org").await;
    assert_eq!(got.len(), 1, "{label}: the preferences email arrives");
    assert_eq!(got[0].to, vec!["returning@example.org".to_string()]);
    let links = links(&got[0]);
    assert!(
        links.iter().any(|l| l.contains("/preferences/")),
        "{label}: {links:?}"
    );
    assert!(!links.iter().any(|l| l.contains("/confirm/")), "{label}");
    let sub = store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(
        sub.status,
        SubscriberStatus::Unsubscribed,
        "{label}: unchanged"
    );
}

#[tokio::test]
async fn a_new_address_receives_a_confirmation_link_and_a_bounced_one_nothing() {
    let store = db::sqlite().await;
    let got = type_into_the_form(&store, "new@example.org").await;
    assert_eq!(got.len(), 1);
    assert!(links(&got[0]).iter().any(|l| l.contains("/confirm/")));

    add(
        &store,
        "gone@example.org",
        &["rust"],
        SubscriberStatus::Bounced,
    )
    .await;
    let got = type_into_the_form(&store, "gone@example.org").await;
    assert!(got.is_empty(), "a bounced address gets nothing");
}

/// The DKIM header of a message as received, if any.
fn dkim_signature(message: &Received) -> Option<String> {
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.raw)
        .expect("parses as MIME");
    parsed
        .header_raw("DKIM-Signature")
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[tokio::test]
async fn every_transactional_email_from_the_form_arrives_dkim_signed_when_configured() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dkim-test-key.pem"
    );
    let with_dkim = |s: &mut Settings| {
        s.dkim.domain = "example.com".into();
        s.dkim.selector = "tidings2026".into();
        s.dkim.private_key_path = key.into();
    };
    let store = db::sqlite().await;
    unsubscribed_reader(&store, "returning@example.org").await;
    for (email, link) in [
        ("new@example.org", "/confirm/"),
        ("returning@example.org", "/preferences/"),
    ] {
        let got = type_into_the_form_with(&store, email, with_dkim).await;
        assert_eq!(got.len(), 1, "{email}");
        assert!(links(&got[0]).iter().any(|l| l.contains(link)), "{email}");
        let signature = dkim_signature(&got[0]).unwrap_or_default();
        assert!(
            signature.contains("d=example.com") && signature.contains("s=tidings2026"),
            "{email}: {signature:?}"
        );
    }
}
