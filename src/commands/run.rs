//! `tidings run [--at TIME]`: the main job. Fetch every source, then for every topic compile
//! the period's issue, queue it for the topic's confirmed subscribers (or, with none yet, write
//! one sample message into the outbox folder), and deliver everything that is due. The summary
//! says what this run did; the exit code is 1 when every source failed (after the rest of the
//! run, which works from what earlier fetches stored) or the mail server could not be reached.

use std::io::IsTerminal;

use anyhow::Context as _;

use super::{CommandResult, Context, now};
use crate::cli::RunArgs;
use crate::pipeline::compile_topics;
use crate::scheduler::{Published, publish_issue};

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
    // Every topic's period from one load of the articles and one classification pass.
    let compiled_topics = compile_topics(settings, &ctx.store, &settings.topics, at, false)
        .await
        .context("compiling the topics' issues")?;
    for (topic, compiled) in settings.topics.iter().zip(compiled_topics) {
        let compiled = match compiled.with_context(|| format!("compiling {}", topic.slug))? {
            Ok(compiled) => compiled,
            Err(empty) => {
                println!(
                    "{}: no articles on topic from {} to {}: no issue compiled, nothing to send",
                    topic.slug,
                    empty.window_start.format("%Y-%m-%d %H:%M UTC"),
                    empty.window_end.format("%Y-%m-%d %H:%M UTC"),
                );
                continue;
            }
        };
        let published = publish_issue(settings, &ctx.store, topic, &compiled, now()).await?;
        record_digest_run(ctx, topic, &compiled).await?;
        match &published {
            Published::Empty => println!(
                "{}: issue {} has no articles for {} to {}: nothing to send",
                topic.slug,
                compiled.issue_id,
                compiled.digest.window_start.format("%Y-%m-%d %H:%M UTC"),
                compiled.digest.window_end.format("%Y-%m-%d %H:%M UTC"),
            ),
            Published::Queued { queued, local } => {
                if counts.get(&topic.slug).copied().unwrap_or(0) == 0 {
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

/// Records the handled period as the topic's last digest run, so `tidings status` shows it and
/// a `serve` started later does not treat the period as missed (queueing again would be a no-op
/// anyway: deliveries are unique per issue and subscriber).
async fn record_digest_run(
    ctx: &Context,
    topic: &crate::config::TopicSettings,
    compiled: &crate::pipeline::CompiledIssue,
) -> CommandResult {
    let settings = &ctx.settings;
    let cron = topic.cron_or(&settings.schedule);
    let next = crate::schedule::Schedule::new(cron, &settings.schedule.timezone)
        .ok()
        .and_then(|s| s.next_after(now()));
    let summary = format!(
        "tidings run: issue #{} ({} article(s))",
        compiled.issue_id,
        compiled.digest.entries.len()
    );
    ctx.store
        .record_job_done(
            &crate::scheduler::JobKind::Digest {
                topic: topic.slug.clone(),
            }
            .name(),
            compiled.digest.window_end,
            &summary,
            next,
            now(),
        )
        .await?;
    Ok(())
}
