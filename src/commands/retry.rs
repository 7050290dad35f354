//! `tidings retry --issue ID`: re-queues an issue's failed, deferred and unknown deliveries for
//! now (an unknown one may then arrive twice: that is the operator's call).

use super::{CommandResult, Context, usage};
use crate::cli::RetryArgs;

pub async fn run(ctx: &Context, args: RetryArgs) -> CommandResult {
    let issue = ctx
        .store
        .get_issue(args.issue)
        .await?
        .ok_or_else(|| usage(format!("issue {} does not exist", args.issue)))?;
    let n = ctx.store.requeue_issue(issue.id, super::now()).await?;
    println!(
        "re-queued {n} failed, deferred or unknown deliveries of issue {}; `tidings send --topic {} --issue {}` delivers them",
        issue.id, issue.topic, issue.id
    );
    Ok(())
}
