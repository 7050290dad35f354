//! The web app through its router (tower `oneshot`, no server): subscribe, confirm, preferences,
//! one-click unsubscribe, archive and operations, on SQLite and PostgreSQL.

mod archive_ops;
mod atomic;
mod consent;
mod limits;
mod links;
mod live;
mod one_click;
mod races;
mod server;
mod subscribe;
mod webhooks;
mod webhooks_providers;
mod webhooks_ses;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tidings::config::Settings;
use tidings::domain::{SubscriberEmail, SubscriberStatus};
use tidings::store::{Store, SubscriberRecord};
use tidings::web::{AppState, router};
use tower::ServiceExt as _;

use crate::support::db::Backend;
use crate::support::smtp::{Faults, SmtpServer};

pub const BASE_URL: &str = "http://news.test";

/// Settings with two topics and the given extra TOML.
pub fn settings(extra: &str) -> Settings {
    Settings::from_toml(&format!(
        r#"
[newsletter]
base_url = "{BASE_URL}"
from = "Tidings <news@example.org>"
secret = "a-test-secret-that-is-long-enough-0123456789"
{extra}
[[topics]]
slug = "rust"
name = "Rust"
description = "The Rust language"
[[topics]]
slug = "databases"
name = "Databases"
"#
    ))
    .unwrap()
}

/// [`settings`] with delivery to the relay on 127.0.0.1:`smtp_port`, one worker so that
/// messages arrive in the order they were queued.
fn delivery_settings(smtp_port: u16) -> Settings {
    let outbox = tempfile::tempdir().unwrap().keep();
    settings(&format!(
        r#"
[delivery]
transport = "smtp"
outbox_dir = "{}"
concurrency = 1

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout_secs = 5
"#,
        outbox.display()
    ))
}

pub struct TestApp {
    pub label: &'static str,
    pub store: Store,
    pub state: AppState,
    pub router: Router,
    /// The loopback SMTP relay [`TestApp::mail_received_by`] delivers to, started on first use.
    relay: tokio::sync::OnceCell<SmtpServer>,
}

/// A response, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl TestApp {
    pub fn new(label: &'static str, store: Store, settings: Settings) -> TestApp {
        let state = AppState::new(std::sync::Arc::new(settings), store.clone()).unwrap();
        TestApp {
            label,
            store,
            router: router(state.clone()),
            state,
            relay: tokio::sync::OnceCell::new(),
        }
    }

    /// An app on `backend` with default web settings (None without a PostgreSQL cluster).
    pub async fn on(backend: Backend) -> Option<TestApp> {
        Self::on_with(backend, "").await
    }

    /// An app on `backend`; `extra` goes into the TOML (e.g. a `[web]` section).
    pub async fn on_with(backend: Backend, extra: &str) -> Option<TestApp> {
        let (label, store) = backend.store().await?;
        Some(TestApp::new(label, store, settings(extra)))
    }

    pub async fn send(&self, request: Request<Body>, peer: IpAddr) -> Answer {
        let mut request = request;
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(peer, 40000)));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.send(Request::get(uri).body(Body::empty()).unwrap(), local())
            .await
    }

    pub async fn post_form(&self, uri: &str, body: &str) -> Answer {
        self.post_form_from(uri, body, local()).await
    }

    pub async fn post_form_from(&self, uri: &str, body: &str, peer: IpAddr) -> Answer {
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::USER_AGENT, "web-tests/1.0")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request, peer).await
    }

    pub async fn subscriber(&self, email: &str) -> Option<SubscriberRecord> {
        self.store
            .find_subscriber(&SubscriberEmail::parse(email).unwrap())
            .await
            .unwrap()
    }

    /// Adds a confirmed subscriber directly (as the CLI would).
    pub async fn add_confirmed(&self, email: &str, topics: &[&str]) -> i64 {
        crate::support::db::add_subscriber(&self.store, email, topics, SubscriberStatus::Confirmed)
            .await
    }

    /// Delivers every message due, through the delivery workers and SMTP on loopback, to this
    /// app's relay, and returns every message that has arrived there for `email` so far, oldest
    /// first: the mail a reader gets, not the rows queued.
    pub async fn mail_received_by(&self, email: &str) -> Vec<Vec<u8>> {
        let relay = self
            .relay
            .get_or_init(|| SmtpServer::start(Faults::default()))
            .await;
        tidings::delivery::deliver_until_idle(
            &delivery_settings(relay.port),
            &self.store,
            "web-tests",
            tidings::delivery::system_clock(),
        )
        .await
        .unwrap();
        relay
            .received()
            .into_iter()
            .filter(|m| m.to.iter().any(|to| to.eq_ignore_ascii_case(email)))
            .map(|m| m.raw)
            .collect()
    }

    /// The payloads of transactional messages queued for an address.
    pub async fn mails_to(&self, email: &str) -> Vec<Vec<u8>> {
        self.store
            .transactional_messages_to(email)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.payload)
            .collect()
    }
}

pub fn local() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// The path of the first link under `BASE_URL` starting with `prefix` in a message's text part.
pub fn link_in(raw: &[u8], prefix: &str) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let text = message.body_text(0)?.into_owned();
    let start = text.find(&format!("{BASE_URL}{prefix}"))?;
    let link: String = text[start + BASE_URL.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<' && *c != '>')
        .collect();
    Some(link)
}
