//! The return path over real SMTP on loopback: with `[bounces] address`, the `MAIL FROM` of a
//! digest and of a confirmation typed into the real subscribe form is the VERP address whose
//! tag names that message's delivery row; without it, the plain `newsletter.from` address.
//! Digests carry a `Feedback-ID` header; `.eml` files record the envelope sender as
//! `Return-Path`.

use tidings::config::Settings;
use tidings::store::Store;
use tidings::tokens::TokenSigner;

use super::{TestClock, check_message, queued_issue, reader, settings, subscribe_through_the_form};
use crate::support::db::{Backend, per_backend};
use crate::support::smtp::{Faults, Received, SmtpServer};

const BOUNCES: &str = "bounces@news.example.com";

/// The delivery settings of `super::settings`, with `[bounces] address` when `verp`.
fn settings_for(port: u16, verp: bool) -> Settings {
    let bounces = if verp {
        format!("\n[bounces]\naddress = \"{BOUNCES}\"\n")
    } else {
        String::new()
    };
    let s = settings(port, &bounces);
    assert_eq!(s.bounces.address.is_some(), verp);
    s
}

/// The delivery row id of each message a recipient was sent, by recipient address.
async fn delivery_id(store: &Store, email: &str) -> i64 {
    let rows = store.list_deliveries(None, None).await.unwrap();
    let mut ids = rows.iter().filter(|r| r.email == email).map(|r| r.id);
    let id = ids.next().expect("a delivery row for the recipient");
    assert!(ids.next().is_none(), "one row for {email}");
    id
}

/// The delivery a received message's envelope sender names, if it is a VERP address of BOUNCES.
fn verp_delivery(settings: &Settings, m: &Received) -> Option<i64> {
    let base = BOUNCES.parse().unwrap();
    TokenSigner::from_settings(&settings.newsletter).verp_delivery(&base, &m.from)
}

fn header(m: &Received, name: &str) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse(&m.raw).unwrap();
    parsed.header_raw(name).map(|v| v.trim().to_string())
}

per_backend!(a_digest_goes_out_with_the_verp_sender_naming_its_delivery);
async fn a_digest_goes_out_with_the_verp_sender_naming_its_delivery(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let settings = settings_for(server.port, true);
    for i in 0..3 {
        reader(&store, &format!("reader{i}@example.org")).await;
    }
    let issue = queued_issue(&store, 2).await;
    let report = TestClock::new().deliver(&settings, &store).await;
    assert_eq!(report.sent, 3, "{label}: {report:?}");

    let got = server.received();
    assert_eq!(got.len(), 3, "{label}");
    let mut seen = Vec::new();
    for m in &got {
        check_message(m);
        let id = delivery_id(&store, &m.to[0]).await;
        assert!(
            m.from.starts_with("bounces+") && m.from.ends_with("@news.example.com"),
            "{label}: MAIL FROM {}",
            m.from
        );
        assert_eq!(verp_delivery(&settings, m), Some(id), "{label}: {}", m.from);
        assert_eq!(
            header(m, "Feedback-ID").as_deref(),
            Some(format!("{issue}:rust:Tidings:example.com").as_str()),
            "{label}"
        );
        // The From header is still the newsletter's.
        assert_eq!(
            header(m, "From").as_deref(),
            Some("Tidings <news@example.com>"),
            "{label}"
        );
        seen.push(m.from.clone());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "{label}: one return path per delivery");
}

per_backend!(a_confirmation_goes_out_with_the_verp_sender_naming_its_delivery);
async fn a_confirmation_goes_out_with_the_verp_sender_naming_its_delivery(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let settings = settings_for(server.port, true);
    subscribe_through_the_form(&settings, &store, "new@example.org").await;
    TestClock::new().deliver(&settings, &store).await;
    let got = server.received();
    assert_eq!(got.len(), 1, "{label}: the confirmation arrives");
    let id = delivery_id(&store, "new@example.org").await;
    assert_eq!(
        verp_delivery(&settings, &got[0]),
        Some(id),
        "{label}: {}",
        got[0].from
    );
    assert_eq!(
        header(&got[0], "Feedback-ID"),
        None,
        "{label}: not list mail"
    );
}

per_backend!(without_a_bounce_address_the_envelope_sender_is_the_from_address);
async fn without_a_bounce_address_the_envelope_sender_is_the_from_address(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let server = SmtpServer::start(Faults::default()).await;
    let settings = settings_for(server.port, false);
    reader(&store, "reader@example.org").await;
    queued_issue(&store, 1).await;
    subscribe_through_the_form(&settings, &store, "new@example.org").await;
    TestClock::new().deliver(&settings, &store).await;
    let got = server.received();
    assert_eq!(got.len(), 2, "{label}: the digest and the confirmation");
    for m in &got {
        assert_eq!(m.from, "news@example.com", "{label}");
    }
}

#[tokio::test]
async fn an_eml_file_records_the_verp_sender_as_its_return_path() {
    let store = crate::support::db::sqlite().await;
    let mut settings = settings_for(9, true);
    settings.delivery.transport = Some(tidings::config::TransportKind::File);
    reader(&store, "reader@example.org").await;
    queued_issue(&store, 1).await;
    let report = TestClock::new().deliver(&settings, &store).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let id = delivery_id(&store, "reader@example.org").await;
    let files: Vec<_> = std::fs::read_dir(&settings.delivery.outbox_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    let first = raw.lines().next().unwrap_or_default();
    let path = first
        .strip_prefix("Return-Path: <")
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or_else(|| panic!("{first:?}"));
    let base = BOUNCES.parse().unwrap();
    let tokens = TokenSigner::from_settings(&settings.newsletter);
    assert_eq!(tokens.verp_delivery(&base, path), Some(id), "{path}");
}
