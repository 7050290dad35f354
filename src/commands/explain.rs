//! `tidings explain URL --topic SLUG [--at TIME]`: which keywords, tags or domains matched where,
//! the score, and why the article is in or out of the period's digest.

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
    let explanation =
        crate::pipeline::explain(&ctx.settings, &ctx.store, topic, &args.url, at).await?;
    print!("{explanation}");
    Ok(())
}
