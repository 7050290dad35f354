//! `tidings deliveries`: per-recipient delivery records, as a table or JSON. Each shows its
//! kind (digest, confirm, preferences), its status (`unknown`: no reply after the message data
//! and no resend left) and the time that matters for it ([`DeliveryRecord::when`]: sent, next
//! attempt, or last change). With `--issue N` (and no `--status`) the table ends with the
//! issue's bounce and complaint rates (events matched to its deliveries / sent), and a warning
//! above 0.1% complaints.

use super::{CommandResult, Context, usage};
use crate::cli::DeliveriesArgs;
use crate::domain::DeliveryStatus;
use crate::store::DeliveryRecord;

/// A record as JSON: its columns, plus `when` and what that time is (`when_is`).
#[derive(serde::Serialize)]
struct JsonRecord<'a> {
    #[serde(flatten)]
    record: &'a DeliveryRecord,
    when_is: &'static str,
    when: chrono::DateTime<chrono::Utc>,
}

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
        let records: Vec<JsonRecord<'_>> = rows
            .iter()
            .map(|record| {
                let (when_is, when) = record.when();
                JsonRecord {
                    record,
                    when_is,
                    when,
                }
            })
            .collect();
        let text = serde_json::to_string_pretty(&records)
            .map_err(|e| super::CommandError::Failed(e.into()))?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "{:>8} {:<11} {:>6} {:<9} {:>8} {:<28} {:<40} last reply",
        "id", "kind", "issue", "status", "attempts", "when (UTC)", "email"
    );
    for r in &rows {
        let (when_is, when) = r.when();
        println!(
            "{:>8} {:<11} {:>6} {:<9} {:>8} {:<28} {:<40} {}",
            r.id,
            r.kind,
            r.issue_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| "-".into()),
            r.status,
            r.attempts,
            format!("{when_is} {}", when.format("%Y-%m-%d %H:%M:%S")),
            r.email,
            r.last_reply.as_deref().unwrap_or("")
        );
    }
    // The summary is the whole issue's: a table filtered by status leaves it out.
    if let (Some(issue), None) = (args.issue, status) {
        let rates = ctx.store.bounce_rates(Some(issue)).await?;
        for line in rates.lines() {
            println!("issue {issue}: {line}");
        }
    }
    Ok(())
}
