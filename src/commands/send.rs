//! `tidings send`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context, _args: crate::cli::SendArgs) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings send is not available in this build yet"
    )))
}
