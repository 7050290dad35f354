//! `tidings deliveries`: per-recipient delivery records, as a table or JSON.

use super::{CommandResult, Context, usage};
use crate::cli::DeliveriesArgs;
use crate::domain::DeliveryStatus;

pub async fn run(ctx: &Context, args: DeliveriesArgs) -> CommandResult {
    let status = match &args.status {
        Some(raw) => Some(
            raw.parse::<DeliveryStatus>()
                .map_err(|e| usage(format!("--status: {e}")))?,
        ),
        None => None,
    };
    let rows = ctx.store.list_deliveries(args.issue, status).await?;
    if args.json {
        let text = serde_json::to_string_pretty(&rows)
            .map_err(|e| super::CommandError::Failed(e.into()))?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "{:>8} {:>6} {:<9} {:>8} {:<40} last reply",
        "id", "issue", "status", "attempts", "email"
    );
    for r in &rows {
        println!(
            "{:>8} {:>6} {:<9} {:>8} {:<40} {}",
            r.id,
            r.issue_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| "-".into()),
            r.status,
            r.attempts,
            r.email,
            r.last_reply.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
