//! Queries the web app needs beyond the shared subscriber methods: counts for `/metrics`,
//! bringing back an unsubscribed reader who asked to return through an emailed link, and the
//! `/healthz` write check.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use sqlx::{ConnectOptions as _, Connection as _};

use super::{BeginWrite, Pool, Store, StoreResult, email_hash, with_pool};
use crate::domain::{ConsentSource, SubscriberEmail, TopicSlug};

impl Store {
    /// Compiled issues per topic.
    pub async fn issue_counts_by_topic(&self) -> StoreResult<BTreeMap<String, i64>> {
        self.grouped_counts("SELECT topic, COUNT(*) FROM issues GROUP BY topic")
            .await
    }

    /// Brings an unsubscribed reader back (they chose topics on the preferences page reached
    /// through a link mailed to their address, which proves consent): status confirmed, topics
    /// replaced, the address taken off the suppression list and a new consent record written.
    /// Does nothing and returns false unless the subscriber is currently unsubscribed.
    #[allow(clippy::too_many_arguments)]
    pub async fn resubscribe_from_web(
        &self,
        id: i64,
        email: &SubscriberEmail,
        topics: &[TopicSlug],
        consent_version: &str,
        now: DateTime<Utc>,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<bool> {
        let hash = email_hash(email);
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("UPDATE subscribers SET status = 'confirmed', confirmed_at = $1, unsubscribed_at = NULL, updated_at = $1 \
                                 WHERE id = $2 AND status = 'unsubscribed'")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM suppressions WHERE email_hash = $1 AND reason = 'unsubscribed'")
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
            super::replace_subscriptions!(tx, id, topics, now);
            sqlx::query("INSERT INTO consents (subscriber_id, source, wording_version, asked_at, confirmed_at, ip, user_agent) \
                         VALUES ($1, $2, $3, $4, $4, $5, $6)")
                .bind(id)
                .bind(ConsentSource::Web.as_str())
                .bind(consent_version)
                .bind(now)
                .bind(ip)
                .bind(user_agent)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

/// One transactional message in the outbox, as queued.
#[derive(Clone, Debug)]
pub struct QueuedMessage {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub payload: Vec<u8>,
}

impl Store {
    /// Transactional messages (confirmations, preference links) queued for an address, oldest
    /// first: for operators answering "did my confirmation go out?" and for tests.
    pub async fn transactional_messages_to(&self, email: &str) -> StoreResult<Vec<QueuedMessage>> {
        let rows: Vec<(i64, String, String, Option<Vec<u8>>)> = with_pool!(self, p => {
            sqlx::query_as("SELECT id, kind, status, payload FROM deliveries WHERE issue_id IS NULL AND email = $1 ORDER BY id")
                .bind(email)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, kind, status, payload)| QueuedMessage {
                id,
                kind,
                status,
                payload: payload.unwrap_or_default(),
            })
            .collect())
    }
}

impl Store {
    /// For `/healthz`: the database answers and would take a write. Runs, inside a transaction
    /// that is rolled back, an UPDATE that matches no row: a read-only database (a read-only
    /// SQLite file or mount, PostgreSQL with `default_transaction_read_only` or a hot standby)
    /// refuses it, and nothing changes.
    ///
    /// On SQLite the check uses a connection of its own that does not wait for the write lock:
    /// another writer holding it shows the database takes writes, and waiting would hold the
    /// check up for as long as that writer runs.
    pub async fn check_writable(&self) -> StoreResult<()> {
        const PROBE: &str = "UPDATE subscribers SET id = id WHERE 1 = 0";
        match &self.pool {
            Pool::Sqlite(p) => {
                let options = (*p.connect_options())
                    .clone()
                    .busy_timeout(std::time::Duration::ZERO);
                let mut conn = options.connect().await?;
                let probe = async {
                    let mut tx = conn.begin().await?;
                    sqlx::query(PROBE).execute(&mut *tx).await?;
                    tx.rollback().await
                }
                .await;
                let _ = conn.close().await;
                match probe {
                    Err(sqlx::Error::Database(e)) if sqlite_busy(e.code().as_deref()) => Ok(()),
                    other => Ok(other?),
                }
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(PROBE).execute(&mut *tx).await?;
                tx.rollback().await?;
                Ok(())
            }
        }
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED, with or without an extended code.
fn sqlite_busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}
