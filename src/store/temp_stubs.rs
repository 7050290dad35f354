//! TEMP-STUB (owned by the delivery and pipeline helpers): minimal versions of store methods the
//! scheduler calls, so this branch builds and its tests run. Delete this file (and its `mod`
//! line in src/store/mod.rs) when the real `Store::enqueue_issue` and issue storage are merged.

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, with_pool};

impl Store {
    /// TEMP-STUB (owned by the delivery helper): one queued digest row per confirmed subscriber
    /// of `topic`; idempotent.
    pub async fn enqueue_issue(
        &self,
        issue_id: i64,
        topic: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let prefix = format!("digest:{issue_id}:");
        Ok(with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO deliveries (kind, issue_id, subscriber_id, email, topic, message_id, payload, status, attempts, \
                 not_before, next_attempt_at, created_at, updated_at) \
                 SELECT 'digest', $1, s.id, s.email, $2, $3 || CAST(s.id AS TEXT), NULL, 'queued', 0, $4, $4, $4, $4 \
                 FROM subscribers s JOIN subscriptions t ON t.subscriber_id = s.id \
                 WHERE t.topic = $2 AND s.status = 'confirmed' \
                 ON CONFLICT DO NOTHING",
            )
            .bind(issue_id)
            .bind(topic)
            .bind(&prefix)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        }))
    }

    /// TEMP-STUB (owned by the pipeline helper): the issue of `topic` ending at `window_end`,
    /// created empty when missing. Returns (id, newly created).
    pub async fn temp_stub_issue(
        &self,
        topic: &str,
        window_start: DateTime<Utc>,
        window_end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(i64, bool)> {
        with_pool!(self, p => {
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO issues (topic, window_start, window_end, compiled_at, article_count, content) \
                 VALUES ($1, $2, $3, $4, 0, '{}') ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(topic)
            .bind(window_start)
            .bind(window_end)
            .bind(now)
            .fetch_optional(p)
            .await?;
            if let Some(id) = inserted {
                return Ok((id, true));
            }
            let id: i64 = sqlx::query_scalar("SELECT id FROM issues WHERE topic = $1 AND window_end = $2")
                .bind(topic)
                .bind(window_end)
                .fetch_one(p)
                .await?;
            Ok((id, false))
        })
    }
}
