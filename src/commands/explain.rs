//! `tidings explain URL --topic SLUG [--at TIME]`: which keywords, tags or domains matched where,
//! the score, and why the article is in or out of the period's digest; for a URL no article has,
//! why fetch did not store it (as noted when it saw it) or when fetch last completed.

use super::{CommandResult, Context, now, usage};

pub async fn run(ctx: &Context, args: crate::cli::ExplainArgs) -> CommandResult {
    let topic = ctx.topic(&args.topic)?;
    if crate::pipeline::canonical::canonicalize(&args.url).is_none() {
        return Err(usage(format!(
            "{:?} is not an absolute http(s) URL",
            args.url
        )));
    }
    let at = args.at.unwrap_or_else(now);
    let mut explanation =
        crate::pipeline::explain(&ctx.settings, &ctx.store, topic, &args.url, at).await?;
    if explanation.article.is_none() {
        // The fetch job's record says whether (and when) a fetch last completed.
        explanation.last_fetch = ctx
            .store
            .job_run(&crate::scheduler::JobKind::Fetch.name())
            .await?
            .and_then(|r| r.last_completed_at);
    }
    print!("{explanation}");
    Ok(())
}
