//! `tidings deliveries`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context, _args: crate::cli::DeliveriesArgs) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings deliveries is not available in this build yet"
    )))
}
