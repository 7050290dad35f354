//! The article pipeline: ingest (canonical URL, dedupe, merge), classify, rank, summarize, compile.
//!
//! TEMP-STUB (owned by the pipeline helper): only `compile_issue`'s signature, so `send` builds.

use chrono::{DateTime, Utc};

use crate::config::{Settings, TopicSettings};
use crate::domain::Digest;
use crate::store::Store;

/// A frozen issue. TEMP-STUB (owned by the pipeline helper).
#[derive(Clone, Debug)]
pub struct CompiledIssue {
    pub issue_id: i64,
    pub digest: Digest,
    pub newly_compiled: bool,
}

/// TEMP-STUB (owned by the pipeline helper): compiling is not available in this branch.
pub async fn compile_issue(
    _settings: &Settings,
    _store: &Store,
    topic: &TopicSettings,
    _at: DateTime<Utc>,
    _force: bool,
) -> anyhow::Result<CompiledIssue> {
    anyhow::bail!(
        "compiling topic {} is not available in this build (pass --issue)",
        topic.slug
    )
}
