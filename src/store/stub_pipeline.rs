//! TEMP-STUB (owned by the pipeline helper): the issue and article store methods the delivery
//! code and its tests call (`get_issue`, `insert_issue`, `upsert_article`). Delete at merge.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{ArticleSource, Digest};

/// A frozen issue with its digest. TEMP-STUB (owned by the pipeline helper).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredIssue {
    pub id: i64,
    pub topic: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub compiled_at: DateTime<Utc>,
    pub digest: Digest,
}

/// An article to insert. TEMP-STUB (owned by the pipeline helper).
#[derive(Clone, Debug)]
pub struct ArticleUpsert<'a> {
    pub canonical_url: &'a str,
    pub url: &'a str,
    pub domain: &'a str,
    pub title: &'a str,
    pub source: &'a ArticleSource,
}

type IssueTuple = (
    i64,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
);

impl Store {
    /// TEMP-STUB (owned by the pipeline helper).
    pub async fn get_issue(&self, id: i64) -> StoreResult<Option<StoredIssue>> {
        let row: Option<IssueTuple> = with_pool!(self, p => {
            sqlx::query_as("SELECT id, topic, window_start, window_end, compiled_at, content FROM issues WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        row.map(
            |(id, topic, window_start, window_end, compiled_at, content)| {
                let mut digest: Digest = serde_json::from_str(&content).map_err(|e| {
                    StoreError::Corrupt(format!("issues.content of issue {id}: {e}"))
                })?;
                digest.issue_id = Some(id);
                Ok(StoredIssue {
                    id,
                    topic,
                    window_start,
                    window_end,
                    compiled_at,
                    digest,
                })
            },
        )
        .transpose()
    }

    /// TEMP-STUB (owned by the pipeline helper).
    pub async fn insert_issue(
        &self,
        digest: &Digest,
        compiled_at: DateTime<Utc>,
    ) -> StoreResult<(StoredIssue, bool)> {
        let content =
            serde_json::to_string(digest).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: i64 = with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO issues (topic, window_start, window_end, compiled_at, article_count, content) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(&digest.topic_slug)
            .bind(digest.window_start)
            .bind(digest.window_end)
            .bind(compiled_at)
            .bind(i64::try_from(digest.entries.len()).unwrap_or(0))
            .bind(&content)
            .fetch_one(&mut *tx)
            .await?;
            for e in &digest.entries {
                sqlx::query("INSERT INTO issue_articles (issue_id, article_id, position) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(e.article_id)
                    .bind(i64::from(e.position))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            id
        });
        let issue = self
            .get_issue(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("issue {id}")))?;
        Ok((issue, true))
    }

    /// TEMP-STUB (owned by the pipeline helper).
    pub async fn upsert_article(
        &self,
        a: &ArticleUpsert<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        Ok(with_pool!(self, p => {
            sqlx::query_scalar(
                "INSERT INTO articles (canonical_url, url, title, domain, published_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (canonical_url) DO UPDATE SET title = excluded.title RETURNING id",
            )
            .bind(a.canonical_url)
            .bind(a.url)
            .bind(a.title)
            .bind(a.domain)
            .bind(a.source.published_at)
            .bind(now)
            .fetch_one(p)
            .await?
        }))
    }
}
