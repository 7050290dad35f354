//! `tidings run`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context, _args: crate::cli::RunArgs) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings run is not available in this build yet"
    )))
}
