//! `tidings status`.

use super::{CommandResult, Context};

pub async fn run(_ctx: &Context) -> CommandResult {
    Err(super::CommandError::Failed(anyhow::anyhow!(
        "tidings status is not available in this build yet"
    )))
}
