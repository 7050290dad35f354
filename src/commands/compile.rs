//! `tidings compile`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context, _args: crate::cli::CompileArgs) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings compile is not available in this build yet"
    )))
}
