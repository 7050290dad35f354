//! `tidings send`: compile the period's issue if needed (or take `--issue`), queue one delivery
//! per confirmed subscriber, and deliver everything due. `--to` sends one unrecorded test copy;
//! `--dry-run` renders every message and reports what would be sent.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use chrono::Utc;

use super::{CommandError, CommandResult, Context, usage};
use crate::cli::SendArgs;
use crate::delivery::{self, Progress, Transport};
use crate::domain::{DeliveryStatus, Digest, SubscriberEmail, SubscriberStatus};
use crate::render::{DkimSigner, PreparedDigest, Recipient};
use crate::store::SubscriberFilter;
use crate::tokens::TokenSigner;

pub async fn run(ctx: &Context, args: SendArgs) -> CommandResult {
    let topic = ctx.topic(&args.topic)?;
    let at = args.at.unwrap_or_else(super::now);
    let to = match &args.to {
        Some(raw) => {
            Some(SubscriberEmail::parse(raw).map_err(|e| usage(format!("--to {raw:?}: {e}")))?)
        }
        None => None,
    };
    let (issue_id, digest) = match args.issue {
        Some(id) => {
            let issue = ctx
                .store
                .get_issue(id)
                .await?
                .ok_or_else(|| usage(format!("issue {id} does not exist")))?;
            if issue.topic != topic.slug {
                return Err(usage(format!(
                    "issue {id} belongs to topic {:?}, not {:?}",
                    issue.topic, topic.slug
                )));
            }
            (issue.id, issue.digest)
        }
        None => {
            let compiled =
                crate::pipeline::compile_issue(&ctx.settings, &ctx.store, topic, at, false).await?;
            (compiled.issue_id, compiled.digest)
        }
    };
    if digest.entries.is_empty() {
        println!(
            "issue {issue_id} of {} ({} to {}) has no articles: nothing sent",
            topic.slug, digest.window_start, digest.window_end
        );
        return Ok(());
    }
    if let Some(to) = to {
        return send_test_copy(ctx, &digest, to).await;
    }
    if args.dry_run {
        return dry_run(ctx, issue_id, &digest).await;
    }

    let now = Utc::now();
    let queued = ctx.store.enqueue_issue(issue_id, &topic.slug, now).await?;
    tracing::info!(issue = issue_id, topic = %topic.slug, queued, "deliveries queued");
    let before = ctx.store.counts_by_status(Some(issue_id)).await?;
    let pending: u64 = ["queued", "deferred", "sending"]
        .iter()
        .map(|s| u64::try_from(before.get(*s).copied().unwrap_or(0)).unwrap_or(0))
        .sum();
    let (progress, bar) = progress_reporter(pending);
    let owner = delivery::worker_owner("send");
    let report = delivery::deliver_until_idle_with(
        &ctx.settings,
        &ctx.store,
        &owner,
        delivery::system_clock(),
        Some(progress),
    )
    .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let after = ctx.store.counts_by_status(Some(issue_id)).await?;
    let count = |s: &str| after.get(s).copied().unwrap_or(0);
    println!(
        "issue {issue_id} ({}): this run sent {}, deferred {}, failed {} ({} bounced)",
        topic.slug, report.sent, report.deferred, report.failed, report.bounced
    );
    println!(
        "issue {issue_id} totals: sent {}, deferred {}, failed {}, skipped {}, queued {}",
        count("sent"),
        count("deferred"),
        count("failed"),
        count("skipped"),
        count("queued") + count("sending")
    );
    super::completed(report)
}

/// A progress bar on a terminal, log lines every 10% otherwise.
fn progress_reporter(total: u64) -> (Progress, Option<indicatif::ProgressBar>) {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} sent or settled, {per_sec}, ETA {eta} {msg}",
        ) {
            bar.set_style(style);
        }
        let b = bar.clone();
        let progress: Progress = Arc::new(move |_status: DeliveryStatus| b.inc(1));
        (progress, Some(bar))
    } else {
        let done = Arc::new(AtomicU64::new(0));
        let step = (total / 10).max(1);
        let progress: Progress = Arc::new(move |_status: DeliveryStatus| {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(step) || n == total {
                tracing::info!("{n}/{total} messages settled");
            }
        });
        (progress, None)
    }
}

async fn send_test_copy(ctx: &Context, digest: &Digest, to: SubscriberEmail) -> CommandResult {
    let prepared = prepare(ctx, digest)?;
    let tokens = TokenSigner::from_settings(&ctx.settings.newsletter);
    let message = prepared
        .message_for(
            &tokens,
            &Recipient {
                subscriber_id: 0,
                email: to.clone(),
            },
            Utc::now(),
        )
        .context("rendering the test copy")?;
    let transport = Transport::from_settings(&ctx.settings)?;
    let mut sender = transport.sender();
    let result = sender.send(&message).await;
    sender.close().await;
    match result.outcome {
        crate::store::DeliveryOutcome::Sent { reply } => {
            println!("test copy sent to {to} (not recorded as a delivery): {reply}");
            Ok(())
        }
        crate::store::DeliveryOutcome::Deferred { reply }
        | crate::store::DeliveryOutcome::Unknown { reply }
        | crate::store::DeliveryOutcome::Failed { reply, .. } => Err(CommandError::Failed(
            anyhow::anyhow!("test copy to {to} not sent: {reply}"),
        )),
    }
}

async fn dry_run(ctx: &Context, issue_id: i64, digest: &Digest) -> CommandResult {
    let prepared = prepare(ctx, digest)?;
    let tokens = TokenSigner::from_settings(&ctx.settings.newsletter);
    let subscribers = ctx
        .store
        .list_subscribers(&SubscriberFilter {
            topic: Some(digest.topic_slug.clone()),
            status: Some(SubscriberStatus::Confirmed),
        })
        .await?;
    let counts = ctx.store.counts_by_status(Some(issue_id)).await?;
    let already_sent = counts.get("sent").copied().unwrap_or(0);
    let mut bytes = 0usize;
    let now = Utc::now();
    for s in &subscribers {
        let email = SubscriberEmail::parse(&s.email)
            .map_err(|e| anyhow::anyhow!("stored address of subscriber {}: {e}", s.id))?;
        let m = prepared
            .message_for(
                &tokens,
                &Recipient {
                    subscriber_id: s.id,
                    email,
                },
                now,
            )
            .with_context(|| format!("rendering for subscriber {}", s.id))?;
        bytes += m.raw.len();
    }
    println!(
        "dry run: issue {issue_id} ({}) \"{}\" would go to {} confirmed subscribers ({} already sent), {} bytes in all",
        digest.topic_slug,
        prepared.subject(),
        subscribers.len(),
        already_sent,
        bytes
    );
    Ok(())
}

fn prepare(ctx: &Context, digest: &Digest) -> Result<PreparedDigest, CommandError> {
    let dkim = DkimSigner::from_settings(&ctx.settings.dkim)
        .map_err(|e| CommandError::Failed(e.into()))?;
    PreparedDigest::prepare(&ctx.settings, digest, dkim).map_err(|e| CommandError::Failed(e.into()))
}
