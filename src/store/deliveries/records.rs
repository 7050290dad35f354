//! The outbox as operators see it: delivery records (`tidings deliveries`), counts per status,
//! and re-queueing an issue's failed, deferred and unknown rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::DeliveryStatus;
use crate::store::{Store, StoreResult, with_pool};

/// One delivery record, as listed by `tidings deliveries`.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct DeliveryRecord {
    // `kind` is one of `DeliveryKind::as_str`; `status` one of `DeliveryStatus::as_str`.
    pub id: i64,
    pub kind: String,
    pub issue_id: Option<i64>,
    pub subscriber_id: Option<i64>,
    pub email: String,
    pub topic: Option<String>,
    pub message_id: String,
    pub status: String,
    pub attempts: i64,
    pub not_before: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_reply: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl DeliveryRecord {
    /// The time that matters for this record, and what it is: `sent` (when the relay took it),
    /// `next` (when a queued or deferred row is due), or `updated` (when anything else last
    /// changed: failed, skipped, unknown, or claimed while `sending`).
    pub fn when(&self) -> (&'static str, DateTime<Utc>) {
        match self.status.as_str() {
            "sent" => ("sent", self.sent_at.unwrap_or(self.updated_at)),
            "queued" | "deferred" => ("next", self.next_attempt_at.max(self.not_before)),
            _ => ("updated", self.updated_at),
        }
    }
}

impl Store {
    /// Delivery records, optionally of one issue and one status, ordered by id.
    pub async fn list_deliveries(
        &self,
        issue_id: Option<i64>,
        status: Option<DeliveryStatus>,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let status = status.map(|s| s.as_str());
        Ok(with_pool!(self, p => {
            sqlx::query_as(
                "SELECT id, kind, issue_id, subscriber_id, email, topic, message_id, status, attempts, not_before, \
                 next_attempt_at, last_reply, created_at, updated_at, sent_at FROM deliveries \
                 WHERE ($1 IS NULL OR issue_id = $1) AND ($2 IS NULL OR status = $2) ORDER BY id",
            )
            .bind(issue_id)
            .bind(status)
            .fetch_all(p)
            .await?
        }))
    }

    /// Deliveries per status, of one issue or of all.
    pub async fn counts_by_status(
        &self,
        issue_id: Option<i64>,
    ) -> StoreResult<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = with_pool!(self, p => {
            sqlx::query_as("SELECT status, COUNT(*) FROM deliveries WHERE ($1 IS NULL OR issue_id = $1) GROUP BY status")
                .bind(issue_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Re-queues an issue's failed, deferred and unknown deliveries for `now` (an operator's
    /// decision: an unknown one may then arrive twice). Attempts and the count of unknown
    /// outcomes are kept, so a re-queued row whose outcome is unknown again is not resent
    /// again. Returns how many rows were re-queued.
    pub async fn requeue_issue(&self, issue_id: i64, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(with_pool!(self, p => {
            sqlx::query(
                "UPDATE deliveries SET status = 'queued', next_attempt_at = $2, updated_at = $2 \
                 WHERE issue_id = $1 AND status IN ('failed','deferred','unknown')",
            )
            .bind(issue_id)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        }))
    }
}
