//! `tidings explain`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context, _args: crate::cli::ExplainArgs) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings explain is not available in this build yet"
    )))
}
