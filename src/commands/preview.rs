//! `tidings preview`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context, _args: crate::cli::PreviewArgs) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings preview is not available in this build yet"
    )))
}
