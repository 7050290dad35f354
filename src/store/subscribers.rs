//! Subscribers, their topic subscriptions, consent records and the suppression list.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::transitions::{find_status, insert_new_subscriber, suppress_subscriber};
use super::{BeginWrite, Store, StoreError, StoreResult, with_pool};
use crate::domain::{
    ConsentSource, Refusal, Step, SubscriberEmail, SubscriberEvent, SubscriberStatus, TopicSlug,
    transition,
};

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
    /// When the person gave consent, as an import carries it (an exported `created_at`): a new
    /// record's `created_at` and its consent's `asked_at`. `None`: the time of the addition.
    pub consented_at: Option<DateTime<Utc>>,
    /// Bring back an unsubscribed, bounced or complained address.
    pub resubscribe: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl NewSubscriber {
    /// The event this addition is, for an address the suppression list names (`listed`) or
    /// not: a resubscribe, an import row, or an add. The web app writes the sign-up of a new
    /// address as an add of a pending subscriber (so of two sign-ups of one new address at the
    /// same moment, the later one adds its topics to the record the earlier one created).
    pub fn event(&self, listed: bool) -> SubscriberEvent {
        let wants = self.status;
        if self.resubscribe {
            SubscriberEvent::Resubscribe { wants }
        } else if self.source == ConsentSource::Import {
            SubscriberEvent::Import { wants, listed }
        } else {
            SubscriberEvent::Add { wants, listed }
        }
    }
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

/// [`email_hash`] of an address read back from the database.
pub(crate) fn stored_email_hash(email: &str) -> StoreResult<String> {
    SubscriberEmail::parse(email)
        .map(|e| email_hash(&e))
        .map_err(|e| StoreError::Corrupt(format!("stored address: {e}")))
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

    /// Adds many subscribers in one transaction (imports go through here in batches). What each
    /// row does is [`transition`]'s decision for [`NewSubscriber::event`], taken on what the
    /// transaction reads. Each row is written inside a savepoint of its own: a row that fails
    /// (the database refuses it, or another request removed its address a moment ago) is rolled
    /// back alone and reported in its place, and the others stay. The outer result fails only
    /// when the batch could not be written at all.
    pub async fn add_subscribers(
        &self,
        rows: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let mut outcomes = Vec::with_capacity(rows.len());
            for new in rows {
                let mut row = sqlx::Connection::begin(&mut *tx).await?;
                let outcome: StoreResult<AddOutcome> = async {
                    let key = new.email.key();
                    let hash = email_hash(&new.email);
                    let listing: Option<String> =
                        sqlx::query_scalar("SELECT reason FROM suppressions WHERE email_hash = $1")
                            .bind(&hash)
                            .fetch_optional(&mut *row)
                            .await?;
                    let event = new.event(listing.is_some());
                    let mut existing = find_status!(row, &key);
                    // Twice at most: two requests for the same new address at the same moment
                    // (two sign-ups on PostgreSQL): the one that loses the race finds no row to
                    // insert and goes round again as for an existing address, instead of failing
                    // on the unique key.
                    loop {
                        let decision = transition(existing.map(|(_, status)| status), event);
                        if decision.unlist {
                            sqlx::query("DELETE FROM suppressions WHERE email_hash = $1")
                                .bind(&hash)
                                .execute(&mut *row)
                                .await?;
                        }
                        let step = match decision.step {
                            Step::Refuse(why) => {
                                let reason = match (why, existing) {
                                    (Refusal::Status, Some((_, status))) => status.to_string(),
                                    _ => listing.clone().unwrap_or_default(),
                                };
                                return Ok(AddOutcome::Suppressed { reason });
                            }
                            step => step,
                        };
                        let Some((id, from)) = existing else {
                            let Step::Create(status) = step else {
                                return Err(StoreError::Conflict(format!("{step:?} for a new address")));
                            };
                            if let Some(id) = insert_new_subscriber!(row, new, status, &key, &hash, now) {
                                return Ok(AddOutcome::Created { id });
                            }
                            existing = find_status!(row, &key);
                            if existing.is_none() {
                                return Err(StoreError::Conflict(format!(
                                    "{} was added and removed by another request at the same moment",
                                    new.email.as_str()
                                )));
                            }
                            continue;
                        };
                        let confirmed = match step {
                            // --resubscribe: back from a suppressed status to the requested one.
                            Step::Become(to) if from.is_suppressed() => {
                                sqlx::query("UPDATE subscribers SET status = $1, unsubscribed_at = NULL, confirmed_at = $2, updated_at = $3 WHERE id = $4")
                                    .bind(to.as_str())
                                    .bind((to == SubscriberStatus::Confirmed).then_some(now))
                                    .bind(now)
                                    .bind(id)
                                    .execute(&mut *row)
                                    .await?;
                                to == SubscriberStatus::Confirmed
                            }
                            Step::Become(SubscriberStatus::Confirmed) => {
                                sqlx::query("UPDATE subscribers SET status = 'confirmed', confirmed_at = $1, updated_at = $1 WHERE id = $2")
                                    .bind(now)
                                    .bind(id)
                                    .execute(&mut *row)
                                    .await?;
                                sqlx::query("UPDATE consents SET confirmed_at = $1 WHERE subscriber_id = $2 AND confirmed_at IS NULL")
                                    .bind(now)
                                    .bind(id)
                                    .execute(&mut *row)
                                    .await?;
                                true
                            }
                            // Stay: the status is kept and the topics added below.
                            _ => false,
                        };
                        if let Some(tz) = &new.timezone {
                            sqlx::query("UPDATE subscribers SET timezone = $1 WHERE id = $2 AND (timezone IS NULL OR timezone <> $1)")
                                .bind(tz)
                                .bind(id)
                                .execute(&mut *row)
                                .await?;
                        }
                        let added = super::insert_subscriptions!(row, id, &new.topics, now);
                        let added_topics = usize::try_from(added).unwrap_or(0);
                        return Ok(AddOutcome::Updated { id, added_topics, confirmed });
                    }
                }
                .await;
                match outcome {
                    Ok(added) => {
                        row.commit().await?;
                        outcomes.push(Ok(added));
                    }
                    Err(e) => {
                        row.rollback().await?;
                        outcomes.push(Err(e));
                    }
                }
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

    /// Marks a subscriber bounced, complained or unsubscribed (the unsubscribe, bounce or
    /// complaint event) and adds them to the suppression list. Returns false when the id is
    /// unknown; a status that is not suppressed is refused as a conflict.
    pub async fn set_suppressed_status(
        &self,
        id: i64,
        status: SubscriberStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let Some(event) = SubscriberEvent::suppressing(status) else {
            return Err(StoreError::Conflict(format!(
                "{status} is not a suppressed status"
            )));
        };
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let known = suppress_subscriber!(tx, id, event, now).is_some();
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
                suppress_subscriber!(tx, id, SubscriberEvent::Unsubscribe, now);
            }
            tx.commit().await?;
            Ok(remaining)
        })
    }

    /// Replaces a subscriber's topics and time zone: the preferences page's save where
    /// [`transition`] keeps the status (a confirmed reader with topics) or unsubscribes (no
    /// topics at all, in the same transaction). Topics must be valid.
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
                suppress_subscriber!(tx, id, SubscriberEvent::Unsubscribe, now);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Confirms a pending subscriber (the confirm event, as [`transition`] decides) and records
    /// consent (IP and user agent when given); a reader who rejoined after unsubscribing comes
    /// off the suppression list. Returns false when the subscriber is not pending (already
    /// confirmed, or suppressed) or unknown.
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
            let found: Option<(String, String)> = sqlx::query_as("SELECT email, status FROM subscribers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((email, from)) = found else { return Ok(false) };
            let from = from.parse::<SubscriberStatus>().map_err(StoreError::Corrupt)?;
            let decision = transition(Some(from), SubscriberEvent::Confirm);
            let Step::Become(to) = decision.step else { return Ok(false) };
            // The status read above is the one changed: a concurrent change wins.
            let r = sqlx::query("UPDATE subscribers SET status = $1, confirmed_at = $2, updated_at = $2, unsubscribed_at = NULL WHERE id = $3 AND status = $4")
                .bind(to.as_str())
                .bind(now)
                .bind(id)
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            super::insert_subscriptions!(tx, id, topics, now);
            if decision.unlist {
                // A reader who rejoined after unsubscribing stayed on the suppression list until now.
                sqlx::query("DELETE FROM suppressions WHERE email_hash = $1 AND reason = 'unsubscribed'")
                    .bind(stored_email_hash(&email)?)
                    .execute(&mut *tx)
                    .await?;
            }
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
            let hash = stored_email_hash(&email)?;
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
