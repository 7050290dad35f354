//! `tidings fetch`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context, _args: crate::cli::FetchArgs) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings fetch is not available in this build yet"
    )))
}
