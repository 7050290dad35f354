//! Reports about mail we sent, on their way into the store. [`Ingester::ingest`] takes a
//! message (the pipe, a Maildir or mbox backlog, the IMAP poller of `serve`) and parses it
//! (`crate::bounce`, pure); [`Ingester::record_parsed`] takes an event a provider's webhook has
//! already parsed (`crate::web::webhooks`). Both then take the one path: match the report to a
//! delivery (VERP tag, our Message-ID) or a subscriber (recipient address), and record it
//! through `Store::record_bounce_event`, which applies the policy in the same transaction.
//! Idempotent on the message's Message-ID (or a SHA-256 of its bytes when it has none), or on
//! the provider's event id. `imap.rs` is the poller `serve` runs when `[bounces] imap_url` is
//! set.

pub mod imap;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::bounce::policy::{self, Effect, SoftLimit};
use crate::bounce::{self, Report};
use crate::config::Settings;
use crate::domain::SubscriberEmail;
use crate::store::{NewBounceEvent, Recorded, ReportMatch, Store, StoreError};
use crate::tokens::TokenSigner;

/// Where an inbound message came from, as stored with its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Pipe,
    Maildir,
    Mbox,
    Imap,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Pipe => "pipe",
            Source::Maildir => "maildir",
            Source::Mbox => "mbox",
            Source::Imap => "imap",
        }
    }
}

/// What ingesting one message did.
#[derive(Clone, Debug)]
pub struct Ingested {
    /// `bounce::Kind::as_str` of the parsed report.
    pub kind: &'static str,
    /// The recipient the event is about, when the report names one.
    pub email: Option<String>,
    /// Whether the report matched one of our deliveries or a known subscriber.
    pub matched: bool,
    pub recorded: Recorded,
}

/// Parses, matches and records inbound messages with the configured VERP keys and soft-bounce
/// rule.
#[derive(Clone)]
pub struct Ingester {
    store: Store,
    signer: TokenSigner,
    verp_base: Option<lettre::Address>,
    rule: SoftLimit,
}

impl Ingester {
    pub fn new(settings: &Settings, store: Store) -> Self {
        Ingester {
            store,
            signer: TokenSigner::from_settings(&settings.newsletter),
            verp_base: settings.bounces.address.clone(),
            rule: SoftLimit {
                limit: settings.bounces.soft_limit,
                window_days: settings.bounces.soft_window_days,
            },
        }
    }

    /// Records one message (at most [`bounce::MAX_MESSAGE_BYTES`] of it are read) that arrived
    /// by `source`. `recipient` is the envelope recipient when the caller knows it (an MTA's
    /// `--recipient`), tried for a VERP tag before the message's own headers. Fails only when
    /// the store does: the caller keeps the message and tries again later.
    pub async fn ingest(
        &self,
        bytes: &[u8],
        source: Source,
        recipient: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Ingested, StoreError> {
        let (bytes, report, headers) = read(bytes);
        let message_key = headers
            .iter()
            .find(|(name, _)| name == "message-id")
            .map(|(_, v)| {
                v.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .to_string()
            })
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(bytes))));
        let matched = self.matched(&report, &headers, recipient).await?;
        let key = |e: &str| SubscriberEmail::parse(e).map(|e| e.key()).ok();
        let index = matched
            .email
            .as_deref()
            .and_then(key)
            .and_then(|k| {
                report
                    .recipients
                    .iter()
                    .position(|r| key(&r.email).as_ref() == Some(&k))
            })
            .unwrap_or(0);
        let effect = policy::effect(&report, index);
        let recipient = report.recipients.get(index);
        let mut parsed = report_json(&report, matched.delivery_id);
        parsed["original_message_id"] = json!(report.original_message_id);
        let parsed = parsed.to_string();
        let is_matched = matched.delivery_id.is_some() || matched.subscriber_id.is_some();
        let event = NewBounceEvent {
            message_key: &message_key,
            source: source.as_str(),
            kind: report.kind.as_str(),
            effect,
            email: recipient.map(|r| r.email.as_str()),
            status: recipient.and_then(|r| r.status.as_deref()),
            reason: recipient.map(|r| r.reason.as_str()),
            parsed: &parsed,
            raw: bytes,
            matched,
        };
        let recorded = self
            .store
            .record_bounce_event(&event, self.rule, now)
            .await?;
        Ok(Ingested {
            kind: report.kind.as_str(),
            email: recipient.map(|r| r.email.clone()),
            matched: is_matched,
            recorded,
        })
    }

    /// The delivery and subscriber a message is about, matched as [`Ingester::ingest`] matches
    /// it, with what it is; nothing is stored (`bounces parse`).
    pub async fn match_message(
        &self,
        bytes: &[u8],
        recipient: Option<&str>,
    ) -> Result<(Report, ReportMatch), StoreError> {
        let (_, report, headers) = read(bytes);
        let matched = self.matched(&report, &headers, recipient).await?;
        Ok((report, matched))
    }

    /// Matches a parsed message: a VERP tag in `recipient` (the envelope recipient, when
    /// known), then in the `Delivered-To`, `X-Original-To` and `To` headers; our Message-ID in
    /// the report; the report's recipients.
    async fn matched(
        &self,
        report: &Report,
        headers: &[(String, String)],
        recipient: Option<&str>,
    ) -> Result<ReportMatch, StoreError> {
        let from_headers = ["delivered-to", "x-original-to", "to"]
            .into_iter()
            .flat_map(|want| {
                headers
                    .iter()
                    .filter(move |(name, _)| name == want)
                    .flat_map(|(_, value)| addresses(value))
            });
        let verp = self.verp_delivery(
            recipient
                .map(str::to_string)
                .into_iter()
                .chain(from_headers),
        );
        let emails: Vec<SubscriberEmail> = report
            .recipients
            .iter()
            .filter_map(|r| SubscriberEmail::parse(&r.email).ok())
            .collect();
        self.find(verp, report.original_message_id.as_deref(), &emails)
            .await
    }

    /// Records an event a provider's webhook reported (source `webhook`), matched as a parsed
    /// message is: the VERP tag of its envelope sender, our Message-ID, then its recipient.
    /// `parsed` gains the matched `delivery_id`. Fails only when the store does.
    pub async fn record_parsed(
        &self,
        event: ParsedEvent<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Recorded, StoreError> {
        let emails: Vec<SubscriberEmail> = event
            .email
            .and_then(|e| SubscriberEmail::parse(e).ok())
            .into_iter()
            .collect();
        let verp = self.verp_delivery(event.envelope_sender.map(str::to_string));
        let matched = self.find(verp, event.message_id, &emails).await?;
        let mut parsed = event.parsed;
        parsed["delivery_id"] = json!(matched.delivery_id);
        let parsed = parsed.to_string();
        let new = NewBounceEvent {
            message_key: event.key,
            source: "webhook",
            kind: event.kind,
            effect: event.effect,
            email: event.email,
            status: event.status,
            reason: event.reason,
            parsed: &parsed,
            raw: event.raw,
            matched,
        };
        self.store.record_bounce_event(&new, self.rule, now).await
    }

    /// The delivery the first valid VERP tag among `addresses` names; None without
    /// `[bounces] address`.
    fn verp_delivery(&self, addresses: impl IntoIterator<Item = String>) -> Option<i64> {
        let base = self.verp_base.as_ref()?;
        addresses
            .into_iter()
            .find_map(|a| self.signer.verp_delivery(base, &a))
    }

    /// The delivery or subscriber a report is about: the delivery `verp` names, the one
    /// `message_id` names when it is ours, else the first of `emails` that is a subscriber.
    async fn find(
        &self,
        verp: Option<i64>,
        message_id: Option<&str>,
        emails: &[SubscriberEmail],
    ) -> Result<ReportMatch, StoreError> {
        let ours = message_id.and_then(bounce::our_message);
        self.store.match_report(verp, ours.as_ref(), emails).await
    }
}

/// An event a provider already parsed (a webhook's), for [`Ingester::record_parsed`].
pub struct ParsedEvent<'a> {
    /// What makes it unique: `webhook:<provider>:<the provider's event id>`.
    pub key: &'a str,
    /// `bounce::Kind::as_str`.
    pub kind: &'static str,
    pub effect: Effect,
    /// The recipient it is about.
    pub email: Option<&'a str>,
    pub status: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// The Message-ID of the message it is about.
    pub message_id: Option<&'a str>,
    /// The envelope sender (MAIL FROM) that message went out with.
    pub envelope_sender: Option<&'a str>,
    /// The provider's fields, as stored and shown by `bounces show`.
    pub parsed: serde_json::Value,
    /// The request body it came in.
    pub raw: &'a [u8],
}

/// The message cut at [`bounce::MAX_MESSAGE_BYTES`], what it is, and its header fields: how
/// [`Ingester::ingest`] and [`Ingester::match_message`] both read a message.
fn read(bytes: &[u8]) -> (&[u8], Report, Vec<(String, String)>) {
    let bytes = &bytes[..bytes.len().min(bounce::MAX_MESSAGE_BYTES)];
    (bytes, bounce::parse(bytes), header_fields(bytes))
}

/// The parsed fields of a report as `bounces parse` prints them and events store them;
/// `delivery_id` the matched delivery, when known.
pub fn report_json(report: &Report, delivery_id: Option<i64>) -> serde_json::Value {
    json!({
        "kind": report.kind.as_str(),
        "feedback_type": report.feedback_type,
        "delivery_id": delivery_id,
        "recipients": report.recipients.iter().map(|r| json!({
            "email": r.email,
            "status": r.status,
            "smtp_code": r.smtp_code,
            "action": r.action,
            "hard": r.hard,
            "reason": r.reason,
        })).collect::<Vec<_>>(),
    })
}

/// The header fields of a message (up to the first blank line), names lower-cased, folded
/// lines joined.
fn header_fields(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(256 * 1024)]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    fields
}

/// The addresses in a header value: those in angle brackets, else the comma-separated parts.
fn addresses(value: &str) -> Vec<String> {
    if value.contains('<') {
        value
            .split('<')
            .skip(1)
            .filter_map(|part| part.split_once('>').map(|(a, _)| a.trim().to_string()))
            .collect()
    } else {
        value
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| a.contains('@'))
            .collect()
    }
}
