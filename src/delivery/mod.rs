//! Delivery: the outbox (claim under lease, retry with backoff, bounces, suppression) and the transports (SMTP via lettre, .eml files). The only place that talks SMTP.
// TEMP-STUB (owned by the delivery helper): a bare worker loop that sends queued rows over
// plain SMTP so `tidings serve` and the web tests work end to end; replaced at merge.

use std::sync::Arc;
use std::time::Duration;

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Settings;
use crate::store::Store;

/// Runs the delivery workers until `shutdown` turns true.
pub async fn run_workers(
    settings: Arc<Settings>,
    store: Store,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let from = crate::domain::parse_mailbox(&settings.newsletter.from)
        .map_err(|e| anyhow::anyhow!("newsletter.from: {e}"))?;
    let transport: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.smtp.host.clone())
            .port(settings.smtp.port)
            .build();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        if !settings.smtp.host.is_empty() {
            let rows = store.take_queued_stub(16, chrono::Utc::now()).await?;
            for (id, email, payload) in rows {
                let to: lettre::Address = match email.parse() {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(delivery = id, "bad address: {e}");
                        continue;
                    }
                };
                let envelope = lettre::address::Envelope::new(Some(from.email.clone()), vec![to])?;
                if let Err(e) = transport.send_raw(&envelope, &payload).await {
                    tracing::warn!(delivery = id, "send failed: {e}");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.changed() => {}
        }
    }
}
