//! `tidings preview --topic SLUG [--at TIME] --format text`: print the digest compile would
//! freeze, storing nothing new but fetched data.

use super::{CommandResult, Context, now, usage};
use crate::cli::PreviewFormat;

pub async fn run(ctx: &Context, args: crate::cli::PreviewArgs) -> CommandResult {
    let topic = ctx.topic(&args.topic)?;
    if args.format != PreviewFormat::Text {
        return Err(usage("html/eml preview comes with the email renderer"));
    }
    let at = args.at.unwrap_or_else(now);
    let digest = crate::pipeline::preview_digest(&ctx.settings, &ctx.store, topic, at).await?;
    print!("{}", crate::render::digest_text(&ctx.settings, &digest));
    Ok(())
}
