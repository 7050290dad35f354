//! `tidings retry`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context, _args: crate::cli::RetryArgs) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings retry is not available in this build yet"
    )))
}
