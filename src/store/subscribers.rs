//! Subscribers, their topic subscriptions, consent records and the suppression list.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::{BeginWrite, Store, StoreError, StoreResult, with_pool};
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberStatus, TopicSlug};

/// A subscriber to add or import.
#[derive(Clone, Debug)]
pub struct NewSubscriber {
    pub email: SubscriberEmail,
    pub topics: Vec<TopicSlug>,
    /// Pending or confirmed for a new person; the other statuses record an imported history.
    pub status: SubscriberStatus,
    pub timezone: Option<String>,
    pub source: ConsentSource,
    pub consent_version: String,
    /// Bring back an unsubscribed, bounced or complained address.
    pub resubscribe: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What adding one subscriber did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    Created {
        id: i64,
    },
    /// The address existed; `added_topics` new topics were added (0 means nothing changed).
    Updated {
        id: i64,
        added_topics: usize,
        confirmed: bool,
    },
    /// The address is unsubscribed, bounced, complained or erased and was left alone.
    Suppressed {
        reason: String,
    },
}

/// The outcome of an import batch: one entry per row given, in order.
pub type ImportOutcome = Vec<StoreResult<AddOutcome>>;

/// One subscriber with their topics, as listed and exported.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SubscriberRecord {
    pub id: i64,
    pub email: String,
    pub status: SubscriberStatus,
    pub topics: Vec<String>,
    pub timezone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

/// Which subscribers to list.
#[derive(Clone, Debug, Default)]
pub struct SubscriberFilter {
    pub topic: Option<String>,
    pub status: Option<SubscriberStatus>,
}

#[derive(sqlx::FromRow)]
struct SubscriberRow {
    id: i64,
    email: String,
    status: String,
    timezone: Option<String>,
    created_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
}

impl SubscriberRow {
    fn into_record(self, topics: Vec<String>) -> StoreResult<SubscriberRecord> {
        let status = self
            .status
            .parse::<SubscriberStatus>()
            .map_err(StoreError::Corrupt)?;
        Ok(SubscriberRecord {
            id: self.id,
            email: self.email,
            status,
            topics,
            timezone: self.timezone,
            created_at: self.created_at,
            confirmed_at: self.confirmed_at,
            unsubscribed_at: self.unsubscribed_at,
        })
    }
}

/// The hex SHA-256 of an address's case-insensitive key: what the suppression list keeps.
pub fn email_hash(email: &SubscriberEmail) -> String {
    hex::encode(Sha256::digest(email.key().as_bytes()))
}

/// Inserts the new subscriber `$new` (a [`NewSubscriber`]) with its consent record and topics
/// (or, for an imported unsubscribed history, its suppression entry) inside `$tx`. Evaluates to
/// the new id, or `None` when a row with the address's key exists (written a moment ago by a
/// concurrent transaction); then nothing was written.
macro_rules! insert_new_subscriber {
    ($tx:expr, $new:expr, $key:expr, $hash:expr, $now:expr) => {{
        let new: &NewSubscriber = $new;
        let now: DateTime<Utc> = $now;
        let wants_confirmed = new.status == SubscriberStatus::Confirmed;
        let unsubscribed_at = new.status.is_suppressed().then_some(now);
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO subscribers (email, email_key, status, timezone, created_at, updated_at, confirmed_at, unsubscribed_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT (email_key) DO NOTHING RETURNING id",
        )
        .bind(new.email.as_str())
        .bind($key)
        .bind(new.status.as_str())
        .bind(&new.timezone)
        .bind(now)
        .bind(wants_confirmed.then_some(now))
        .bind(unsubscribed_at)
        .fetch_optional(&mut *$tx)
        .await?;
        if let Some(id) = id {
            sqlx::query(
                "INSERT INTO consents (subscriber_id, source, wording_version, asked_at, confirmed_at, ip, user_agent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(new.source.as_str())
            .bind(&new.consent_version)
            .bind(now)
            .bind(wants_confirmed.then_some(now))
            .bind(&new.ip)
            .bind(&new.user_agent)
            .execute(&mut *$tx)
            .await?;
            if new.status.is_suppressed() {
                sqlx::query("INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind($hash)
                    .bind(new.status.as_str())
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
            } else {
                super::insert_subscriptions!($tx, id, &new.topics, now);
            }
        }
        id
    }};
}

/// Marks subscriber `$id` with the suppressed `$status` (a [`SubscriberStatus`]) inside `$tx`:
/// the status, the topics cleared when unsubscribed, the address on the suppression list.
/// Evaluates to false when the id is unknown.
macro_rules! suppress_subscriber {
    ($tx:expr, $id:expr, $status:expr, $now:expr) => {{
        let status: SubscriberStatus = $status;
        let now: DateTime<Utc> = $now;
        let email: Option<String> = sqlx::query_scalar("SELECT email FROM subscribers WHERE id = $1")
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await?;
        match email {
            None => false,
            Some(email) => {
                sqlx::query("UPDATE subscribers SET status = $1, unsubscribed_at = COALESCE(unsubscribed_at, $2), updated_at = $2 WHERE id = $3")
                    .bind(status.as_str())
                    .bind(now)
                    .bind($id)
                    .execute(&mut *$tx)
                    .await?;
                if status == SubscriberStatus::Unsubscribed {
                    sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1")
                        .bind($id)
                        .execute(&mut *$tx)
                        .await?;
                }
                let hash = SubscriberEmail::parse(&email)
                    .map(|e| email_hash(&e))
                    .map_err(|e| StoreError::Corrupt(format!("stored address: {e}")))?;
                sqlx::query("INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (email_hash) DO UPDATE SET reason = excluded.reason")
                    .bind(hash)
                    .bind(status.as_str())
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
                true
            }
        }
    }};
}

const SELECT_SUBSCRIBER: &str = "SELECT id, email, status, timezone, created_at, confirmed_at, unsubscribed_at FROM subscribers";

impl Store {
    /// Adds one subscriber, or adds topics to an existing one; never duplicates an address.
    pub async fn add_subscriber(
        &self,
        new: &NewSubscriber,
        now: DateTime<Utc>,
    ) -> StoreResult<AddOutcome> {
        let mut out = self.add_subscribers(std::slice::from_ref(new), now).await?;
        out.pop()
            .unwrap_or_else(|| Err(StoreError::Conflict("no outcome".into())))
    }

    /// Adds many subscribers in one transaction (imports go through here in batches). A row that
    /// fails leaves the others in place; the outer result fails only when the batch could not
    /// be written at all.
    pub async fn add_subscribers(
        &self,
        rows: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let mut outcomes = Vec::with_capacity(rows.len());
            for new in rows {
                let key = new.email.key();
                let hash = email_hash(&new.email);
                let suppressed: Option<String> =
                    sqlx::query_scalar("SELECT reason FROM suppressions WHERE email_hash = $1")
                        .bind(&hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                let mut existing: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, status FROM subscribers WHERE email_key = $1")
                        .bind(&key)
                        .fetch_optional(&mut *tx)
                        .await?;
                if existing.is_none() {
                    if !new.resubscribe {
                        if let Some(reason) = suppressed {
                            outcomes.push(Ok(AddOutcome::Suppressed { reason }));
                            continue;
                        }
                    } else {
                        sqlx::query("DELETE FROM suppressions WHERE email_hash = $1")
                            .bind(&hash)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // Two requests for the same new address at the same moment (two sign-ups
                    // on PostgreSQL): the one that loses the race finds no row to insert here
                    // and goes on as for an existing address, instead of failing on the
                    // unique key.
                    if let Some(id) = insert_new_subscriber!(tx, new, &key, &hash, now) {
                        outcomes.push(Ok(AddOutcome::Created { id }));
                        continue;
                    }
                    existing = sqlx::query_as("SELECT id, status FROM subscribers WHERE email_key = $1")
                        .bind(&key)
                        .fetch_optional(&mut *tx)
                        .await?;
                }
                let Some((id, status)) = existing else {
                    outcomes.push(Err(StoreError::Conflict(format!(
                        "{} was added and removed by another request at the same moment",
                        new.email.as_str()
                    ))));
                    continue;
                };
                let status = status.parse::<SubscriberStatus>().map_err(StoreError::Corrupt)?;
                if !new.resubscribe {
                    if status.is_suppressed() {
                        outcomes.push(Ok(AddOutcome::Suppressed { reason: status.to_string() }));
                        continue;
                    }
                    if let Some(reason) = suppressed {
                        outcomes.push(Ok(AddOutcome::Suppressed { reason }));
                        continue;
                    }
                } else {
                    sqlx::query("DELETE FROM suppressions WHERE email_hash = $1")
                        .bind(&hash)
                        .execute(&mut *tx)
                        .await?;
                }
                let wants_confirmed = new.status == SubscriberStatus::Confirmed;
                let outcome = {
                    let mut became_confirmed = false;
                    if status.is_suppressed() {
                        // --resubscribe: back to the requested status.
                        sqlx::query("UPDATE subscribers SET status = $1, unsubscribed_at = NULL, confirmed_at = $2, updated_at = $3 WHERE id = $4")
                            .bind(new.status.as_str())
                            .bind(wants_confirmed.then_some(now))
                            .bind(now)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        became_confirmed = wants_confirmed;
                    } else if wants_confirmed && status == SubscriberStatus::Pending {
                        sqlx::query("UPDATE subscribers SET status = 'confirmed', confirmed_at = $1, updated_at = $1 WHERE id = $2")
                            .bind(now)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("UPDATE consents SET confirmed_at = $1 WHERE subscriber_id = $2 AND confirmed_at IS NULL")
                            .bind(now)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        became_confirmed = true;
                    }
                    if let Some(tz) = &new.timezone {
                        sqlx::query("UPDATE subscribers SET timezone = $1 WHERE id = $2 AND (timezone IS NULL OR timezone <> $1)")
                            .bind(tz)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let added = super::insert_subscriptions!(tx, id, &new.topics, now);
                    let added = usize::try_from(added).unwrap_or(0);
                    AddOutcome::Updated { id, added_topics: added, confirmed: became_confirmed }
                };
                outcomes.push(Ok(outcome));
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }

    /// Lists subscribers with their topics, ordered by id.
    pub async fn list_subscribers(
        &self,
        filter: &SubscriberFilter,
    ) -> StoreResult<Vec<SubscriberRecord>> {
        let status = filter.status.map(|s| s.as_str().to_string());
        // The filter, on subscribers `s`; binds status, topic.
        const MATCHES: &str = "($1 IS NULL OR s.status = $1) \
             AND ($2 IS NULL OR EXISTS (SELECT 1 FROM subscriptions u WHERE u.subscriber_id = s.id AND u.topic = $2))";
        let (rows, subs): (Vec<SubscriberRow>, Vec<(i64, String)>) = with_pool!(self, p => {
            let rows: Vec<SubscriberRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT_SUBSCRIBER} s WHERE {MATCHES} ORDER BY id"
            )))
            .bind(&status)
            .bind(&filter.topic)
            .fetch_all(p)
            .await?;
            // The topics of the listed subscribers only.
            let subs: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT t.subscriber_id, t.topic FROM subscriptions t JOIN subscribers s ON s.id = t.subscriber_id \
                 WHERE {MATCHES} ORDER BY t.subscriber_id, t.topic"
            )))
            .bind(&status)
            .bind(&filter.topic)
            .fetch_all(p)
            .await?;
            (rows, subs)
        });
        let mut by_id: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (id, topic) in subs {
            by_id.entry(id).or_default().push(topic);
        }
        rows.into_iter()
            .map(|r| {
                let topics = by_id.remove(&r.id).unwrap_or_default();
                r.into_record(topics)
            })
            .collect()
    }

    /// Finds a subscriber by address, case-insensitively.
    pub async fn find_subscriber(
        &self,
        email: &SubscriberEmail,
    ) -> StoreResult<Option<SubscriberRecord>> {
        let key = email.key();
        let row: Option<SubscriberRow> = with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_SUBSCRIBER} WHERE email_key = $1")))
                .bind(&key)
                .fetch_optional(p)
                .await?
        });
        match row {
            Some(r) => Ok(Some(self.with_topics(r).await?)),
            None => Ok(None),
        }
    }

    /// Loads a subscriber by id.
    pub async fn get_subscriber(&self, id: i64) -> StoreResult<Option<SubscriberRecord>> {
        let row: Option<SubscriberRow> = with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_SUBSCRIBER} WHERE id = $1")))
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        match row {
            Some(r) => Ok(Some(self.with_topics(r).await?)),
            None => Ok(None),
        }
    }

    async fn with_topics(&self, row: SubscriberRow) -> StoreResult<SubscriberRecord> {
        let topics: Vec<String> = with_pool!(self, p => {
            sqlx::query_scalar("SELECT topic FROM subscriptions WHERE subscriber_id = $1 ORDER BY topic")
                .bind(row.id)
                .fetch_all(p)
                .await?
        });
        row.into_record(topics)
    }

    /// Unsubscribes from everything: status unsubscribed, topics cleared, address suppressed.
    /// The consent record stays. Idempotent. Returns false when the id is unknown.
    pub async fn unsubscribe_all(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        self.set_suppressed_status(id, SubscriberStatus::Unsubscribed, now)
            .await
    }

    /// Marks a subscriber bounced, complained or unsubscribed and adds them to the suppression list.
    pub async fn set_suppressed_status(
        &self,
        id: i64,
        status: SubscriberStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        debug_assert!(status.is_suppressed());
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let known = suppress_subscriber!(tx, id, status, now);
            tx.commit().await?;
            Ok(known)
        })
    }

    /// Leaves one topic; a subscriber left with no topics becomes unsubscribed, in the same
    /// transaction. Idempotent. Returns the topics that remain.
    pub async fn leave_topic(
        &self,
        id: i64,
        topic: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1 AND topic = $2")
                .bind(id)
                .bind(topic)
                .execute(&mut *tx)
                .await?;
            let remaining: Vec<String> = sqlx::query_scalar("SELECT topic FROM subscriptions WHERE subscriber_id = $1 ORDER BY topic")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            if remaining.is_empty() {
                suppress_subscriber!(tx, id, SubscriberStatus::Unsubscribed, now);
            }
            tx.commit().await?;
            Ok(remaining)
        })
    }

    /// Replaces a subscriber's topics and time zone (the preferences page); no topics at all
    /// unsubscribes, in the same transaction. Topics must be valid.
    pub async fn set_preferences(
        &self,
        id: i64,
        topics: &[TopicSlug],
        timezone: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            super::replace_subscriptions!(tx, id, topics, now);
            sqlx::query("UPDATE subscribers SET timezone = $1, updated_at = $2 WHERE id = $3")
                .bind(timezone)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if topics.is_empty() {
                suppress_subscriber!(tx, id, SubscriberStatus::Unsubscribed, now);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Confirms a pending subscriber and records consent (IP and user agent when given); a
    /// reader who rejoined after unsubscribing comes off the suppression list. Returns false when the subscriber is not pending (already confirmed, or suppressed).
    pub async fn confirm_subscriber(
        &self,
        id: i64,
        topics: &[TopicSlug],
        now: DateTime<Utc>,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<bool> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("UPDATE subscribers SET status = 'confirmed', confirmed_at = $1, updated_at = $1, unsubscribed_at = NULL WHERE id = $2 AND status = 'pending'")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            super::insert_subscriptions!(tx, id, topics, now);
            // A reader who rejoined after unsubscribing stayed on the suppression list until now.
            let email: String = sqlx::query_scalar("SELECT email FROM subscribers WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let hash = SubscriberEmail::parse(&email)
                .map(|e| email_hash(&e))
                .map_err(|e| StoreError::Corrupt(format!("stored address: {e}")))?;
            sqlx::query("DELETE FROM suppressions WHERE email_hash = $1 AND reason = 'unsubscribed'")
                .bind(hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE consents SET confirmed_at = $1, ip = COALESCE($2, ip), user_agent = COALESCE($3, user_agent) \
                         WHERE id = (SELECT MAX(id) FROM consents WHERE subscriber_id = $4)")
                .bind(now)
                .bind(ip)
                .bind(user_agent)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Deletes a person's data. Only a hash of the address stays, on the suppression list, and
    /// past delivery records lose the address.
    pub async fn erase_subscriber(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let email: Option<String> = sqlx::query_scalar("SELECT email FROM subscribers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(email) = email else { return Ok(false) };
            let hash = SubscriberEmail::parse(&email)
                .map(|e| email_hash(&e))
                .map_err(|e| StoreError::Corrupt(format!("stored address: {e}")))?;
            sqlx::query("UPDATE deliveries SET email = 'erased', payload = NULL, status = CASE WHEN status IN ('queued','deferred') THEN 'skipped' ELSE status END WHERE subscriber_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM subscribers WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, 'erased', $2) \
                         ON CONFLICT (email_hash) DO UPDATE SET reason = 'erased'")
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Whether an address is on the suppression list, and why.
    pub async fn suppression_reason(&self, email: &SubscriberEmail) -> StoreResult<Option<String>> {
        let hash = email_hash(email);
        Ok(with_pool!(self, p => {
            sqlx::query_scalar("SELECT reason FROM suppressions WHERE email_hash = $1")
                .bind(&hash)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Confirmed subscribers per topic.
    pub async fn confirmed_counts_by_topic(&self) -> StoreResult<BTreeMap<String, i64>> {
        self.grouped_counts("SELECT t.topic, COUNT(*) FROM subscriptions t JOIN subscribers s ON s.id = t.subscriber_id WHERE s.status = 'confirmed' GROUP BY t.topic").await
    }

    /// Subscribers per status.
    pub async fn subscriber_counts_by_status(&self) -> StoreResult<BTreeMap<String, i64>> {
        self.grouped_counts("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
            .await
    }

    /// Records that a confirmation email was queued; returns false (and records nothing) when one
    /// was queued less than `min_gap` ago, so an address gets at most one per window. The web
    /// app claims its slots through [`Store::queue_web_mail`] instead, in one transaction with
    /// the message itself.
    pub async fn claim_confirmation_slot(
        &self,
        id: i64,
        now: DateTime<Utc>,
        min_gap: chrono::Duration,
    ) -> StoreResult<bool> {
        let cutoff = now - min_gap;
        let n = with_pool!(self, p => {
            sqlx::query("UPDATE subscribers SET last_confirmation_sent_at = $1 WHERE id = $2 \
                         AND (last_confirmation_sent_at IS NULL OR last_confirmation_sent_at <= $3)")
                .bind(now)
                .bind(id)
                .bind(cutoff)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Deletes pending subscribers created before `cutoff` who never confirmed; returns how many.
    /// A reader who had unsubscribed and asked to rejoin (pending, `unsubscribed_at` set) keeps
    /// their record and consent history.
    pub async fn purge_unconfirmed(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        Ok(with_pool!(self, p => {
            sqlx::query("DELETE FROM subscribers WHERE status = 'pending' AND created_at < $1 AND unsubscribed_at IS NULL \
                         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscriber_id = subscribers.id AND d.status IN ('queued','sending','deferred'))")
                .bind(cutoff)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }
}
