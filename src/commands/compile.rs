//! `tidings compile --topic SLUG [--at TIME] [--force]`: freeze the period's digest issue and
//! print its id.

use super::{CommandResult, Context, now};

pub async fn run(ctx: &Context, args: crate::cli::CompileArgs) -> CommandResult {
    let topic = ctx.topic(&args.topic)?;
    let at = args.at.unwrap_or_else(now);
    let issue =
        crate::pipeline::compile_issue(&ctx.settings, &ctx.store, topic, at, args.force).await?;
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
