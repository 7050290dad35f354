//! `tidings run [--at TIME]`: the main job. Fetch every source, then compile every topic's
//! period in one pass ([`crate::pipeline::compile_topics`]) and queue each issue for the
//! topic's confirmed subscribers through the one publish path ([`crate::scheduler::publish`], held until the topic's `deliver_at_local` in each
//! subscriber's zone when it has one; with no subscriber yet, also write one sample message into
//! the outbox folder), and deliver everything that is due. The summary
//! says what this run did; the exit code is 1 when every source failed (after the rest of the
//! run, which works from what earlier fetches stored) or the mail server could not be reached.

use std::io::IsTerminal;

use anyhow::Context as _;

use super::{CommandResult, Context, now};
use crate::cli::RunArgs;
use crate::pipeline::{NothingOnTopic, compile_topics};
use crate::scheduler::{IssueToPublish, Publication, SystemClock, publish};

pub async fn run(ctx: &Context, args: RunArgs) -> CommandResult {
    let settings = &ctx.settings;
    let at = args.at.unwrap_or_else(now);
    if settings.topics.is_empty() {
        return Err(super::usage(
            "no [[topics]] are configured; add one to the configuration file",
        ));
    }

    let fetched = crate::pipeline::fetch_all(settings, &ctx.store, at, None)
        .await
        .context("fetching sources")?;
    eprintln!("{fetched}");
    crate::scheduler::record_fetch(settings, &ctx.store, &fetched, at, "tidings run", now())
        .await?;
    let sources_failed = fetched.all_failed().then(|| fetched.all_failed_message());

    let counts = ctx.store.confirmed_counts_by_topic().await?;
    let mut issues = Vec::new();
    // Every topic's period from one load of the articles and one classification pass; each
    // frozen issue then goes through the one publish path.
    let compiled_topics = compile_topics(settings, &ctx.store, &settings.topics, at, false)
        .await
        .context("compiling the topics' issues")?;
    for (topic, compiled) in settings.topics.iter().zip(compiled_topics) {
        let publication = match compiled.with_context(|| format!("compiling {}", topic.slug))? {
            Ok(compiled) => {
                let frozen = IssueToPublish::Frozen(compiled);
                publish(settings, &ctx.store, topic, frozen, &SystemClock).await?
            }
            Err(empty) => Publication::NothingOnTopic(empty),
        };
        match &publication {
            Publication::NothingOnTopic(empty) => println!(
                "{}: no issue compiled, nothing to send",
                NothingOnTopic(empty)
            ),
            Publication::NoArticles(compiled) => {
                record_digest_run(ctx, topic, compiled).await?;
                println!(
                    "{}: issue {} has no articles for {} to {}: nothing to send",
                    topic.slug,
                    compiled.issue_id,
                    compiled.digest.window_start.format("%Y-%m-%d %H:%M UTC"),
                    compiled.digest.window_end.format("%Y-%m-%d %H:%M UTC"),
                )
            }
            Publication::Queued {
                issue: compiled,
                queued,
                local,
                ..
            } => {
                record_digest_run(ctx, topic, compiled).await?;
                if counts.get(topic.slug.as_str()).copied().unwrap_or(0) == 0 {
                    let path = crate::delivery::write_sample(
                        settings,
                        &compiled.digest,
                        &settings.delivery.outbox_dir,
                    )
                    .await
                    .with_context(|| format!("writing the sample message of {}", topic.slug))?;
                    println!(
                        "{}: issue {} ({} article(s)) has no subscribers yet; sample message written to {}",
                        topic.slug,
                        compiled.issue_id,
                        compiled.digest.entries.len(),
                        path.display()
                    );
                } else {
                    println!(
                        "{}: issue {} ({} article(s)), {queued} new deliveries queued{}",
                        topic.slug,
                        compiled.issue_id,
                        compiled.digest.entries.len(),
                        local.as_ref().map(|l| format!(", {l}")).unwrap_or_default()
                    );
                    issues.push((topic.slug.clone(), compiled.issue_id));
                }
            }
        }
    }

    if !issues.is_empty() {
        if std::io::stderr().is_terminal() {
            eprintln!("delivering...");
        }
        let owner = crate::delivery::worker_owner("run");
        let report = crate::delivery::deliver_until_idle(
            settings,
            &ctx.store,
            &owner,
            crate::delivery::system_clock(),
        )
        .await?;
        // What this run did (a second run in the same period sends nothing new), then where
        // each issue stands.
        println!(
            "this run sent {}, deferred {}, failed {} ({} bounced)",
            report.sent, report.deferred, report.failed, report.bounced
        );
        for (slug, issue_id) in &issues {
            let c = ctx.store.counts_by_status(Some(*issue_id)).await?;
            let n = |s: &str| c.get(s).copied().unwrap_or(0);
            println!(
                "{slug}: issue {issue_id} totals: sent {}, deferred {}, failed {}, skipped {}, waiting {}",
                n("sent"),
                n("deferred"),
                n("failed"),
                n("skipped"),
                n("queued") + n("sending")
            );
        }
        super::completed(report)?;
    }
    match sources_failed {
        Some(message) => Err(anyhow::anyhow!(message).into()),
        None => Ok(()),
    }
}

/// Records the handled period as the topic's last digest run (see
/// [`crate::scheduler::record_digest_published`]).
async fn record_digest_run(
    ctx: &Context,
    topic: &crate::config::TopicSettings,
    compiled: &crate::pipeline::CompiledIssue,
) -> CommandResult {
    crate::scheduler::record_digest_published(
        &ctx.settings,
        &ctx.store,
        &topic.slug,
        compiled,
        "tidings run",
        now(),
    )
    .await?;
    Ok(())
}
