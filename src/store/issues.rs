//! Digest issues: one frozen digest per topic and period (`UNIQUE (topic, window_end)`), its
//! articles in `issue_articles`, and the content column holding the [`Digest`] as JSON.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{BeginWrite, Store, StoreError, StoreResult, with_pool};
use crate::domain::Digest;

/// A frozen issue with its digest.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredIssue {
    pub id: i64,
    pub topic: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub compiled_at: DateTime<Utc>,
    pub digest: Digest,
}

/// An issue without its content, for listings.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IssueSummary {
    pub id: i64,
    pub topic: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub compiled_at: DateTime<Utc>,
    pub article_count: i64,
}

type SummaryRow = (
    i64,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
    i64,
);

#[derive(sqlx::FromRow)]
struct IssueRow {
    id: i64,
    topic: String,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    compiled_at: DateTime<Utc>,
    content: String,
}

impl IssueRow {
    fn into_issue(self) -> StoreResult<StoredIssue> {
        let mut digest: Digest = serde_json::from_str(&self.content).map_err(|e| {
            StoreError::Corrupt(format!("issues.content of issue {}: {e}", self.id))
        })?;
        digest.issue_id = Some(self.id);
        Ok(StoredIssue {
            id: self.id,
            topic: self.topic,
            window_start: self.window_start,
            window_end: self.window_end,
            compiled_at: self.compiled_at,
            digest,
        })
    }
}

/// Records the articles of issue `$id` (its digest `$entries`) inside the transaction `$tx`.
macro_rules! insert_issue_articles {
    ($tx:expr, $id:expr, $entries:expr) => {
        for e in $entries {
            sqlx::query(
                "INSERT INTO issue_articles (issue_id, article_id, position) VALUES ($1, $2, $3)",
            )
            .bind($id)
            .bind(e.article_id)
            .bind(i64::from(e.position))
            .execute(&mut *$tx)
            .await?;
        }
    };
}

/// One recipient of an issue, for [`Store::issue_outlook`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRecipient {
    /// None once the subscriber's data was erased.
    pub subscriber_id: Option<i64>,
    pub email: String,
    pub timezone: Option<String>,
}

/// What a delivery run at a given time would do with one issue (`tidings send --dry-run`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueOutlook {
    /// Confirmed subscribers of the topic with no delivery row for the issue yet: queueing
    /// would add them.
    pub unqueued: Vec<IssueRecipient>,
    /// Rows a worker could take now: queued or deferred and due, or `sending` with an expired
    /// lease.
    pub due: Vec<IssueRecipient>,
    /// Queued, deferred or sending rows that are not due yet (held for a local delivery time,
    /// waiting for a retry, or being sent under a live lease).
    pub waiting: i64,
    /// Rows already sent.
    pub sent: i64,
}

fn to_json(digest: &Digest) -> StoreResult<String> {
    serde_json::to_string(digest).map_err(|e| StoreError::Corrupt(format!("digest: {e}")))
}

impl Store {
    pub async fn get_issue(&self, id: i64) -> StoreResult<Option<StoredIssue>> {
        with_pool!(self, p => {
            let row: Option<IssueRow> = sqlx::query_as(
                "SELECT id, topic, window_start, window_end, compiled_at, content FROM issues WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?;
            row.map(IssueRow::into_issue).transpose()
        })
    }

    /// The issue of `topic` whose period ends at `window_end` (a whole second). Issues frozen
    /// before periods were cut to whole seconds may end up to a second later, with the
    /// fractions of the clock that compiled them: those are the same period.
    pub async fn find_issue(
        &self,
        topic: &str,
        window_end: DateTime<Utc>,
    ) -> StoreResult<Option<StoredIssue>> {
        with_pool!(self, p => {
            let row: Option<IssueRow> = sqlx::query_as(
                "SELECT id, topic, window_start, window_end, compiled_at, content FROM issues \
                 WHERE topic = $1 AND window_end >= $2 AND window_end < $3 ORDER BY window_end, id LIMIT 1",
            )
            .bind(topic)
            .bind(window_end)
            .bind(window_end + chrono::Duration::seconds(1))
            .fetch_optional(p)
            .await?;
            row.map(IssueRow::into_issue).transpose()
        })
    }

    /// The `limit` newest issues of `topic` with their digests, newest period first.
    pub async fn latest_issues(&self, topic: &str, limit: i64) -> StoreResult<Vec<StoredIssue>> {
        with_pool!(self, p => {
            let rows: Vec<IssueRow> = sqlx::query_as(
                "SELECT id, topic, window_start, window_end, compiled_at, content FROM issues
                 WHERE topic = $1 ORDER BY window_end DESC, id DESC LIMIT $2",
            )
            .bind(topic)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.into_iter().map(IssueRow::into_issue).collect()
        })
    }

    /// Issues, newest period first, optionally of one topic.
    pub async fn list_issues(&self, topic: Option<&str>) -> StoreResult<Vec<IssueSummary>> {
        with_pool!(self, p => {
            let rows: Vec<SummaryRow> = sqlx::query_as(
                "SELECT id, topic, window_start, window_end, compiled_at, article_count FROM issues
                 WHERE ($1 IS NULL OR topic = $1) ORDER BY window_end DESC, id DESC",
            )
            .bind(topic)
            .fetch_all(p)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, topic, window_start, window_end, compiled_at, article_count)| IssueSummary {
                    id,
                    topic,
                    window_start,
                    window_end,
                    compiled_at,
                    article_count,
                })
                .collect())
        })
    }

    /// Article ids carried by the topic's issues whose period ended before `before`, mapped to
    /// the (latest) issue that carried them.
    pub async fn articles_in_earlier_issues(
        &self,
        topic: &str,
        before: DateTime<Utc>,
    ) -> StoreResult<HashMap<i64, i64>> {
        with_pool!(self, p => {
            let rows: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT ia.article_id, ia.issue_id FROM issue_articles ia JOIN issues i ON i.id = ia.issue_id
                 WHERE i.topic = $1 AND i.window_end < $2 ORDER BY i.window_end",
            )
            .bind(topic)
            .bind(before)
            .fetch_all(p)
            .await?;
            Ok(rows.into_iter().collect())
        })
    }

    /// How many delivery rows an issue has.
    pub async fn issue_delivery_count(&self, issue_id: i64) -> StoreResult<i64> {
        with_pool!(self, p => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE issue_id = $1")
                .bind(issue_id)
                .fetch_one(p)
                .await?)
        })
    }

    /// Freezes a new issue. When another compile froze the same topic and period first, that
    /// issue is returned with `false`.
    pub async fn insert_issue(
        &self,
        digest: &Digest,
        compiled_at: DateTime<Utc>,
    ) -> StoreResult<(StoredIssue, bool)> {
        // The stored digest's `issue_id` is set from the row's id when it is read back.
        let json = to_json(digest)?;
        let inserted: Option<i64> = with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO issues (topic, window_start, window_end, compiled_at, article_count, content)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (topic, window_end) DO NOTHING RETURNING id",
            )
            .bind(&digest.topic_slug)
            .bind(digest.window_start)
            .bind(digest.window_end)
            .bind(compiled_at)
            .bind(digest.entries.len() as i64)
            .bind(&json)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = id {
                insert_issue_articles!(tx, id, &digest.entries);
            }
            tx.commit().await?;
            id
        });
        if let Some(id) = inserted {
            let issue = self
                .get_issue(id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("issue {id}")))?;
            return Ok((issue, true));
        }
        // Another compile froze this period first: that issue stands.
        let issue = self
            .find_issue(&digest.topic_slug, digest.window_end)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "issue of {} ending {}",
                    digest.topic_slug, digest.window_end
                ))
            })?;
        Ok((issue, false))
    }

    /// Re-freezes an existing issue with a new digest, keeping its id; refused once the issue
    /// has delivery rows.
    pub async fn refreeze_issue(
        &self,
        id: i64,
        digest: &Digest,
        compiled_at: DateTime<Utc>,
    ) -> StoreResult<StoredIssue> {
        let mut d = digest.clone();
        d.issue_id = Some(id);
        let json = to_json(&d)?;
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            // Take the write lock first (SQLite) so the delivery check and the update are atomic.
            let updated = sqlx::query(
                "UPDATE issues SET compiled_at = $1, article_count = $2, content = $3 WHERE id = $4",
            )
            .bind(compiled_at)
            .bind(d.entries.len() as i64)
            .bind(&json)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("issue {id}")));
            }
            let deliveries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE issue_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if deliveries > 0 {
                tx.rollback().await?;
                return Err(StoreError::Conflict(format!(
                    "issue {id} already has {deliveries} deliveries; it cannot be compiled again"
                )));
            }
            sqlx::query("DELETE FROM issue_articles WHERE issue_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_issue_articles!(tx, id, &d.entries);
            tx.commit().await?;
        });
        self.get_issue(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("issue {id}")))
    }

    /// Who a delivery run of `issue_id` (of `topic`) at `now` would mail: the confirmed
    /// subscribers not queued yet, the rows due now, and how many wait or are sent.
    pub async fn issue_outlook(
        &self,
        issue_id: i64,
        topic: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IssueOutlook> {
        type Row = (Option<i64>, String, Option<String>);
        let to_recipient = |(subscriber_id, email, timezone): Row| IssueRecipient {
            subscriber_id,
            email,
            timezone,
        };
        with_pool!(self, p => {
            let unqueued: Vec<Row> = sqlx::query_as(
                "SELECT s.id, s.email, s.timezone FROM subscribers s \
                 JOIN subscriptions t ON t.subscriber_id = s.id \
                 WHERE t.topic = $2 AND s.status = 'confirmed' \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_id = $1 AND d.subscriber_id = s.id) \
                 ORDER BY s.id",
            )
            .bind(issue_id)
            .bind(topic)
            .fetch_all(p)
            .await?;
            let due: Vec<Row> = sqlx::query_as(
                "SELECT d.subscriber_id, d.email, s.timezone FROM deliveries d \
                 LEFT JOIN subscribers s ON s.id = d.subscriber_id \
                 WHERE d.issue_id = $1 AND ( \
                   (d.status IN ('queued','deferred') AND d.next_attempt_at <= $2 AND d.not_before <= $2) \
                   OR (d.status = 'sending' AND d.lease_expires_at <= $2)) \
                 ORDER BY d.id",
            )
            .bind(issue_id)
            .bind(now)
            .fetch_all(p)
            .await?;
            let (pending, sent): (i64, i64) = sqlx::query_as(
                "SELECT \
                   COALESCE(SUM(CASE WHEN status IN ('queued','deferred','sending') THEN 1 ELSE 0 END), 0), \
                   COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) \
                 FROM deliveries WHERE issue_id = $1",
            )
            .bind(issue_id)
            .fetch_one(p)
            .await?;
            Ok(IssueOutlook {
                waiting: pending - due.len() as i64,
                sent,
                unqueued: unqueued.into_iter().map(to_recipient).collect(),
                due: due.into_iter().map(to_recipient).collect(),
            })
        })
    }
}
