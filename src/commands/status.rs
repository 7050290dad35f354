//! `tidings status`: next and last run per job and topic, queue depth by delivery status, and
//! subscribers by status.

use super::{CommandResult, Context};

pub async fn run(ctx: &Context) -> CommandResult {
    let report = crate::scheduler::status_report(&ctx.settings, &ctx.store, super::now()).await?;
    print!("{report}");
    Ok(())
}
