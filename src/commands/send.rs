//! `tidings send`: compile the period's issue if needed (or take `--issue`) and queue one
//! delivery per confirmed subscriber through the one publish path ([`crate::scheduler::publish`],
//! held until the topic's `deliver_at_local` in each subscriber's zone when it has one), then
//! deliver everything due.
//! A period with no article on topic is never frozen: `send` says so and exits with 0.
//! `--to` sends one unrecorded test copy; `--dry-run` renders the messages a send would deliver
//! now and reports how many.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use chrono::Utc;

use super::{CommandError, CommandResult, Context, usage};
use crate::cli::SendArgs;
use crate::delivery::{self, Progress, Transport};
use crate::domain::{DeliveryStatus, Digest, SubscriberEmail};
use crate::pipeline::CompiledIssue;
use crate::render::{PreparedDigest, Recipient};
use crate::scheduler::{IssueToPublish, LocalRelease, Publication, SystemClock, publish};
use crate::store::IssueRecipient;
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
    let issue = match args.issue {
        Some(id) => {
            let issue = ctx
                .store
                .get_issue(id)
                .await?
                .ok_or_else(|| usage(format!("issue {id} does not exist")))?;
            if issue.topic != topic.slug.as_str() {
                return Err(usage(format!(
                    "issue {id} belongs to topic {:?}, not {:?}",
                    issue.topic,
                    topic.slug.as_str()
                )));
            }
            IssueToPublish::Frozen(CompiledIssue {
                issue_id: issue.id,
                digest: issue.digest,
                newly_compiled: false,
            })
        }
        None => IssueToPublish::Period(at),
    };
    if to.is_some() || args.dry_run {
        // A test copy or a dry run looks at the issue (compiling the period's if needed) and
        // queues nothing.
        let compiled = match issue.resolve(&ctx.settings, &ctx.store, topic).await? {
            Ok(compiled) => compiled,
            Err(empty) => return nothing_on_topic(&empty),
        };
        if compiled.digest.entries.is_empty() {
            return no_articles(topic, &compiled);
        }
        return match to {
            Some(to) => send_test_copy(ctx, &compiled.digest, to).await,
            None => dry_run(ctx, topic, compiled.issue_id, &compiled.digest).await,
        };
    }

    let (issue_id, now) =
        match publish(&ctx.settings, &ctx.store, topic, issue, &SystemClock).await? {
            Publication::NothingOnTopic(empty) => return nothing_on_topic(&empty),
            Publication::NoArticles(compiled) => return no_articles(topic, &compiled),
            Publication::Queued {
                issue,
                queued,
                local,
                queued_at,
            } => {
                let issue_id = issue.issue_id;
                tracing::info!(issue = issue_id, topic = %topic.slug, queued, "deliveries queued");
                if let Some(local) = local {
                    println!("issue {issue_id} ({}): {local}", topic.slug);
                }
                (issue_id, queued_at)
            }
        };
    let due = ctx.store.issue_outlook(issue_id, &topic.slug, now).await?;
    let (progress, bar) = progress_reporter(due.due.len() as u64);
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

fn nothing_on_topic(empty: &Digest) -> CommandResult {
    println!(
        "{}: no issue compiled, nothing to send",
        crate::pipeline::NothingOnTopic(empty)
    );
    Ok(())
}

fn no_articles(topic: &crate::config::TopicSettings, compiled: &CompiledIssue) -> CommandResult {
    let digest = &compiled.digest;
    println!(
        "issue {} of {} ({} to {}) has no articles: nothing sent",
        compiled.issue_id, topic.slug, digest.window_start, digest.window_end
    );
    Ok(())
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
        crate::delivery::DeliveryOutcome::Sent { reply } => {
            println!("test copy sent to {to} (not recorded as a delivery): {reply}");
            Ok(())
        }
        crate::delivery::DeliveryOutcome::Deferred { reply }
        | crate::delivery::DeliveryOutcome::Unknown { reply }
        | crate::delivery::DeliveryOutcome::Failed { reply, .. } => Err(CommandError::Failed(
            anyhow::anyhow!("test copy to {to} not sent: {reply}"),
        )),
    }
}

/// Renders the messages a `send` would deliver now and says how many: the confirmed
/// subscribers not queued yet (unless the topic's local delivery time holds them) and the rows
/// due now; held, waiting and sent rows are counted apart.
async fn dry_run(
    ctx: &Context,
    topic: &crate::config::TopicSettings,
    issue_id: i64,
    digest: &Digest,
) -> CommandResult {
    let prepared = prepare(ctx, digest)?;
    let tokens = TokenSigner::from_settings(&ctx.settings.newsletter);
    let now = Utc::now();
    let outlook = ctx.store.issue_outlook(issue_id, &topic.slug, now).await?;
    let release = LocalRelease::of(&ctx.settings, topic);
    let (new_now, held): (Vec<&IssueRecipient>, Vec<&IssueRecipient>) = outlook
        .unqueued
        .iter()
        .partition(|r| release.is_none_or(|l| l.time_for(r.timezone.as_deref(), now) <= now));
    let mut bytes = 0usize;
    for r in new_now.iter().copied().chain(&outlook.due) {
        let email = SubscriberEmail::parse(&r.email)
            .map_err(|e| anyhow::anyhow!("stored address {:?}: {e}", r.email))?;
        let m = prepared
            .message_for(
                &tokens,
                &Recipient {
                    subscriber_id: r.subscriber_id.unwrap_or(0),
                    email,
                },
                now,
            )
            .with_context(|| format!("rendering for {}", r.email))?;
        bytes += m.raw.len();
    }
    let going = new_now.len() + outlook.due.len();
    println!(
        "dry run: issue {issue_id} ({}) \"{}\": {going} message(s) would go out now ({} new, {} due again), {bytes} bytes",
        digest.topic_slug,
        prepared.subject(),
        new_now.len(),
        outlook.due.len(),
    );
    println!(
        "not now: {} new held until the local delivery time, {} queued but not due yet; {} already sent",
        held.len(),
        outlook.waiting,
        outlook.sent
    );
    Ok(())
}

fn prepare(ctx: &Context, digest: &Digest) -> Result<PreparedDigest, CommandError> {
    PreparedDigest::prepare(&ctx.settings, digest, ctx.dkim.clone())
        .map_err(|e| CommandError::Failed(e.into()))
}
