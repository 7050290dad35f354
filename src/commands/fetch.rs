//! `tidings fetch [--at TIME] [--source NAME]`: ingest every source's window ending at TIME and
//! print counts per source and warnings.

use super::{CommandResult, Context, now, usage};

pub async fn run(ctx: &Context, args: crate::cli::FetchArgs) -> CommandResult {
    if let Some(name) = &args.source
        && !ctx.settings.sources.iter().any(|s| &s.name == name)
    {
        let known: Vec<&str> = ctx
            .settings
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        return Err(usage(format!(
            "unknown source {name:?} (configured: {})",
            known.join(", ")
        )));
    }
    let at = args.at.unwrap_or_else(now);
    let report =
        crate::pipeline::fetch_all(&ctx.settings, &ctx.store, at, args.source.as_deref()).await?;
    print!("{report}");
    Ok(())
}
