//! The article pipeline: ingest (canonical URL, dedupe, merge), classify, rank, summarize, compile.

// TEMP-STUB (owned by the pipeline helper): the contract the scheduler calls, with just enough
// behaviour for its tests. The pipeline branch replaces everything below at merge.

use chrono::{DateTime, Utc};

use crate::config::{Settings, TopicSettings};
use crate::domain::Digest;
use crate::store::Store;

/// TEMP-STUB (owned by the pipeline helper): what a fetch run did.
#[derive(Clone, Debug, Default)]
pub struct FetchReport {
    pub sources: usize,
}

impl std::fmt::Display for FetchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} sources fetched", self.sources)
    }
}

/// TEMP-STUB (owned by the pipeline helper): fetches nothing.
pub async fn fetch_all(
    settings: &Settings,
    _store: &Store,
    _at: DateTime<Utc>,
    only_source: Option<&str>,
) -> anyhow::Result<FetchReport> {
    let sources = settings
        .sources
        .iter()
        .filter(|s| only_source.is_none_or(|o| o == s.name))
        .count();
    Ok(FetchReport { sources })
}

/// TEMP-STUB (owned by the pipeline helper): a compiled (frozen) issue.
#[derive(Clone, Debug)]
pub struct CompiledIssue {
    pub issue_id: i64,
    pub digest: Digest,
    pub newly_compiled: bool,
}

/// TEMP-STUB (owned by the pipeline helper): the period `[start, end)` containing `at`.
pub fn period(
    _settings: &Settings,
    topic: &TopicSettings,
    at: DateTime<Utc>,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    Ok((
        at - chrono::Duration::days(i64::from(topic.window_days)),
        at,
    ))
}

/// TEMP-STUB (owned by the pipeline helper): an empty issue for the period of `at`.
pub async fn compile_issue(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    at: DateTime<Utc>,
    _force: bool,
) -> anyhow::Result<CompiledIssue> {
    let (start, end) = period(settings, topic, at)?;
    let (issue_id, newly_compiled) = store.temp_stub_issue(&topic.slug, start, end, at).await?;
    Ok(CompiledIssue {
        issue_id,
        digest: Digest {
            issue_id: Some(issue_id),
            topic_slug: topic.slug.clone(),
            topic_name: topic.name.clone(),
            topic_description: topic.description.clone(),
            window_start: start,
            window_end: end,
            window_days: topic.window_days,
            entries: Vec::new(),
        },
        newly_compiled,
    })
}
