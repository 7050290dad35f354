//! Frozen digest issues.
// TEMP-STUB (owned by the pipeline helper): only the reads the web archive needs; the pipeline
// helper's file replaces this one at merge.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::Digest;

/// One issue in a listing.
#[derive(Clone, Debug)]
pub struct IssueSummary {
    pub id: i64,
    pub topic: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub compiled_at: DateTime<Utc>,
    pub article_count: i64,
}

/// One issue with its frozen digest.
#[derive(Clone, Debug)]
pub struct StoredIssue {
    pub id: i64,
    pub topic: String,
    pub compiled_at: DateTime<Utc>,
    pub digest: Digest,
}

type IssueRow = (
    i64,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
    i64,
);

impl Store {
    /// Issues, newest first, of one topic or all.
    pub async fn list_issues(&self, topic: Option<&str>) -> StoreResult<Vec<IssueSummary>> {
        let rows: Vec<IssueRow> = with_pool!(self, p => {
            sqlx::query_as("SELECT id, topic, window_start, window_end, compiled_at, article_count FROM issues \
                            WHERE ($1 IS NULL OR topic = $1) ORDER BY window_end DESC, id DESC")
                .bind(topic)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, topic, window_start, window_end, compiled_at, article_count)| IssueSummary {
                    id,
                    topic,
                    window_start,
                    window_end,
                    compiled_at,
                    article_count,
                },
            )
            .collect())
    }

    /// One issue by id.
    pub async fn get_issue(&self, id: i64) -> StoreResult<Option<StoredIssue>> {
        let row: Option<(i64, String, DateTime<Utc>, String)> = with_pool!(self, p => {
            sqlx::query_as("SELECT id, topic, compiled_at, content FROM issues WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        match row {
            None => Ok(None),
            Some((id, topic, compiled_at, content)) => {
                let mut digest: Digest = serde_json::from_str(&content)
                    .map_err(|e| StoreError::Corrupt(format!("issue {id}: {e}")))?;
                digest.issue_id = Some(id);
                Ok(Some(StoredIssue {
                    id,
                    topic,
                    compiled_at,
                    digest,
                }))
            }
        }
    }
}
