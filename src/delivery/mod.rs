//! Delivery: the outbox workers (claim under lease, send, record the outcome with backoff,
//! bounces, unknown outcomes; take over the leases of a process that died) and the transports
//! (SMTP via lettre, .eml files). The only place that talks SMTP. The outcome of an attempt
//! ([`DeliveryOutcome`]) and what it does to the outbox row ([`RetryPolicy::settle`]) are
//! decided here; the store records the result.
//!
//! Entry points: [`deliver_until_idle`] for `tidings send`, [`run_workers`] for `tidings serve`,
//! [`write_sample`] for a first `tidings run` with no subscribers yet.

mod lease;
mod outcome;
mod retry;
mod smtp;
mod transport;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use lease::{current_process, is_gone};
pub use outcome::{DeliveryOutcome, SendResult};
pub use retry::RetryPolicy;
pub use smtp::{ProbeOutcome, ProbeStep, probe as probe_smtp};
pub use transport::Transport;
use transport::write_eml;
pub use worker::{
    DeliveryReport, Progress, deliver_until_idle, deliver_until_idle_with, run_workers,
};

use crate::config::Settings;
use crate::domain::{Digest, SubscriberEmail};
use crate::render::{DkimSigner, PreparedDigest, Recipient};
use crate::tokens::TokenSigner;

/// Where workers read the time; tests inject their own.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// A worker name unique to this process: host, pid and a random suffix.
pub fn worker_owner(label: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{label}@{host}:{}:{}", std::process::id(), &suffix[..8])
}

/// Writes one sample message of `digest` for a fake recipient (subscriber 0,
/// sample@example.com) into `outbox_dir`, so a first run without subscribers shows its result.
pub async fn write_sample(
    settings: &Settings,
    digest: &Digest,
    outbox_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let dkim = DkimSigner::from_settings(&settings.dkim)?;
    let prepared = PreparedDigest::prepare(settings, digest, dkim)?;
    let tokens = TokenSigner::from_settings(&settings.newsletter);
    let recipient = Recipient {
        subscriber_id: 0,
        email: SubscriberEmail::parse("sample@example.com")?,
    };
    let message = prepared.message_for(&tokens, &recipient, Utc::now())?;
    write_eml(outbox_dir, &message).await
}
