//! `tidings compile --topic SLUG [--at TIME] [--force]`: freeze the period's digest issue and
//! print its id. A period with no article on topic is never frozen: the command then says so
//! and exits with 1, printing no id (with `--force`, an existing issue stays as it was).

use super::{CommandError, CommandResult, Context, now};
use crate::pipeline::NothingOnTopic;

pub async fn run(ctx: &Context, args: crate::cli::CompileArgs) -> CommandResult {
    let topic = ctx.topic(&args.topic)?;
    let at = args.at.unwrap_or_else(now);
    let issue =
        match crate::pipeline::compile_period(&ctx.settings, &ctx.store, topic, at, args.force)
            .await?
        {
            Ok(issue) => issue,
            Err(empty) => {
                let kept = match ctx.store.find_issue(&topic.slug, empty.window_end).await? {
                    Some(existing) => format!("issue {} kept as it was", existing.id),
                    None => "no issue compiled (an empty period is never frozen)".to_string(),
                };
                return Err(CommandError::Failed(anyhow::anyhow!(
                    "{}: {kept}",
                    NothingOnTopic(&empty)
                )));
            }
        };
    tracing::info!(
        issue = issue.issue_id,
        articles = issue.digest.entries.len(),
        new = issue.newly_compiled,
        "issue {}",
        if issue.newly_compiled {
            "compiled"
        } else {
            "already compiled for this period"
        }
    );
    println!("{}", issue.issue_id);
    Ok(())
}
