//! The outbox: delivery rows for digests and transactional mail.
// TEMP-STUB (owned by the delivery helper): only the insert the web app needs; the delivery
// helper's file replaces this one at merge.

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, with_pool};

impl Store {
    /// Queues one transactional message (kind "confirm") for immediate delivery; returns its id.
    pub async fn enqueue_transactional(
        &self,
        kind: &str,
        subscriber_id: i64,
        email: &str,
        message_id: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        Ok(with_pool!(self, p => {
            sqlx::query_scalar(
                "INSERT INTO deliveries (kind, subscriber_id, email, message_id, payload, status, not_before, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, $6, $6, $6) RETURNING id",
            )
            .bind(kind)
            .bind(subscriber_id)
            .bind(email)
            .bind(message_id)
            .bind(payload)
            .bind(now)
            .fetch_one(p)
            .await?
        }))
    }
}

impl Store {
    /// TEMP-STUB: takes up to `limit` due queued rows, marking them sent (no lease, no retry).
    pub async fn take_queued_stub(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, String, Vec<u8>)>> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let rows: Vec<(i64, String, Option<Vec<u8>>)> = sqlx::query_as(
                "SELECT id, email, payload FROM deliveries WHERE status = 'queued' AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            for (id, _, _) in &rows {
                sqlx::query("UPDATE deliveries SET status = 'sent', sent_at = $1, updated_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(rows.into_iter().map(|(id, e, p)| (id, e, p.unwrap_or_default())).collect())
        })
    }
}
