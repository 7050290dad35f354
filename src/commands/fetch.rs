//! `tidings fetch [--at TIME] [--source NAME]`: ingest every source's window ending at TIME and
//! print counts per source and warnings. Recorded as the fetch job's last run (`tidings
//! status`); exits with 1 when every source failed, so cron notices.

use super::{CommandError, CommandResult, Context, now, usage};

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
    crate::scheduler::record_fetch(
        &ctx.settings,
        &ctx.store,
        &report,
        at,
        "tidings fetch",
        now(),
    )
    .await?;
    if report.all_failed() {
        return Err(CommandError::Failed(anyhow::anyhow!(
            report.all_failed_message()
        )));
    }
    Ok(())
}
