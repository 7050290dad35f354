//! The outbox: one `deliveries` row per message to send (digests and transactional mail).
//!
//! Rows are written in the same transaction as their cause ([`Store::enqueue_issue`] writes one
//! row per confirmed subscriber of the topic at once), claimed by workers under a lease
//! ([`Store::claim_due`]: `FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite),
//! and settled by [`Store::record_outcome`] only while the lease is still the claimer's (in one
//! transaction with the bounce it may cause). What a settlement says (status, next attempt,
//! bounce) is decided in `src/delivery`; the store records the plain values ([`Settlement`]).
//! Each claim records its holder (`leases.rs`); operators' views of the outbox are in
//! `records.rs`. No transaction is held while a message is being sent. Failed rows are never
//! deleted.

mod leases;
mod records;

use chrono::{DateTime, Duration, Utc};

pub use leases::{HeldLease, LeaseHolder};
pub use records::DeliveryRecord;

use super::{BeginWrite, Store, StoreError, StoreResult, with_pool};
use crate::domain::{DeliveryStatus, SubscriberEvent, SubscriberStatus};

/// What a delivery row carries. Each kind has its own eligibility rule
/// ([`DeliveryKind::eligible_statuses`]), checked again when a worker claims the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    /// A digest issue, rendered when the row is claimed.
    Digest,
    /// A confirmation email (transactional), stored ready to send in `payload`.
    Confirm,
    /// A link to the preferences page, sent when a known address is typed into the subscribe
    /// form (transactional, stored ready to send in `payload`).
    Preferences,
}

impl DeliveryKind {
    pub const ALL: [DeliveryKind; 3] = [
        DeliveryKind::Digest,
        DeliveryKind::Confirm,
        DeliveryKind::Preferences,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Digest => "digest",
            DeliveryKind::Confirm => "confirm",
            DeliveryKind::Preferences => "preferences",
        }
    }

    /// The subscriber statuses this kind of email may still go to when it is claimed; a row
    /// whose subscriber is in another status, or was erased, is skipped. A digest also needs
    /// the subscriber still on the row's topic.
    /// - digest: confirmed readers only;
    /// - confirm: pending (the link confirms) or confirmed (a repeated request; harmless);
    /// - preferences: any known address that has not bounced or complained, unsubscribed ones
    ///   included: its owner typed it into the form, and the link is how they come back.
    pub fn eligible_statuses(self) -> &'static [SubscriberStatus] {
        match self {
            DeliveryKind::Digest => &[SubscriberStatus::Confirmed],
            DeliveryKind::Confirm => &[SubscriberStatus::Pending, SubscriberStatus::Confirmed],
            DeliveryKind::Preferences => &[
                SubscriberStatus::Pending,
                SubscriberStatus::Confirmed,
                SubscriberStatus::Unsubscribed,
            ],
        }
    }

    fn parse(raw: &str) -> StoreResult<DeliveryKind> {
        DeliveryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery kind {raw:?}")))
    }
}

/// A row a worker has claimed: it owns it until `lease_expires_at`.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub kind: DeliveryKind,
    pub issue_id: Option<i64>,
    pub subscriber_id: Option<i64>,
    pub email: String,
    pub topic: Option<String>,
    /// The outbox key: `digest:{issue}:{subscriber}` for digests, the Message-ID otherwise.
    pub message_id: String,
    /// The complete message for transactional mail; `None` for digests.
    pub payload: Option<Vec<u8>>,
    /// Attempts including this one.
    pub attempts: i64,
    /// Earlier attempts that ended with an unknown outcome.
    pub unknown_outcomes: i64,
    pub created_at: DateTime<Utc>,
    /// The lease token this claim holds; pass it back to [`Store::record_outcome`].
    pub lease_owner: String,
}

/// How to settle a claimed row after one attempt, as `src/delivery` decided it from the
/// attempt's outcome and its retry policy: plain values for [`Store::record_outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The row's new status: sent, deferred (tried again at `next_attempt_at`), failed or
    /// unknown.
    pub status: DeliveryStatus,
    /// The server's reply or the error, as text (stored with control characters replaced, at
    /// most 500 characters).
    pub reply: String,
    pub next_attempt_at: DateTime<Utc>,
    /// When the relay took the message (sent rows only).
    pub sent_at: Option<DateTime<Utc>>,
    /// The attempt's outcome was unknown: it counts toward the row's unknown outcomes.
    pub unknown_outcome: bool,
    /// The reply says the mailbox is bad: the row's subscriber is marked bounced and the
    /// address suppressed, in the same transaction.
    pub bounce: bool,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: i64,
    kind: String,
    issue_id: Option<i64>,
    subscriber_id: Option<i64>,
    email: String,
    topic: Option<String>,
    message_id: String,
    payload: Option<Vec<u8>>,
    attempts: i64,
    unknown_outcomes: i64,
    created_at: DateTime<Utc>,
}

/// The ids of up to `$4` rows a claim may take: queued or deferred and due, or being sent under
/// an expired lease. One index range per status (`deliveries_due (status, next_attempt_at)`),
/// each stopping at `$4` rows, so a claim costs the same at 1,000 or 1,000,000 queued rows (an
/// `OR` over the statuses with `ORDER BY id` made every claim read and sort all due rows while
/// holding SQLite's write lock). `{lock}` is PostgreSQL's `FOR UPDATE SKIP LOCKED`.
fn due_ids(lock: &str) -> String {
    format!(
        "SELECT id FROM (\
           SELECT id FROM (SELECT id FROM deliveries WHERE status = 'queued' AND next_attempt_at <= $3 \
             AND not_before <= $3 ORDER BY next_attempt_at LIMIT $4 {lock}) q \
           UNION ALL SELECT id FROM (SELECT id FROM deliveries WHERE status = 'deferred' AND next_attempt_at <= $3 \
             AND not_before <= $3 ORDER BY next_attempt_at LIMIT $4 {lock}) d \
           UNION ALL SELECT id FROM (SELECT id FROM deliveries WHERE status = 'sending' AND lease_expires_at <= $3 \
             LIMIT $4 {lock}) s\
         ) due LIMIT $4"
    )
}

const CLAIM_SET: &str = "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, \
                         lease_owner = $1, lease_expires_at = $2, updated_at = $3, \
                         lease_host = $5, lease_pid = $6, lease_process_start = $7";

/// Records an attempt's settlement on a row still leased by the recorder.
const RECORD_OUTCOME: &str = "UPDATE deliveries SET status = $1, last_reply = $2, next_attempt_at = $3, \
     sent_at = $4, unknown_outcomes = unknown_outcomes + $8, lease_owner = NULL, lease_expires_at = NULL, \
     updated_at = $5 WHERE id = $6 AND lease_owner = $7 AND status = 'sending'";

const RETURNING: &str = "RETURNING id, kind, issue_id, subscriber_id, email, topic, message_id, payload, attempts, \
                         unknown_outcomes, created_at";

/// Marks the rows just claimed under lease `$1` whose subscriber may no longer receive them
/// `skipped` (at `$2`), returning their ids: one clause per [`DeliveryKind`], built from its
/// [`DeliveryKind::eligible_statuses`] (a digest also needs the row's topic).
fn skip_ineligible_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let clauses: Vec<String> = DeliveryKind::ALL
            .into_iter()
            .map(|kind| {
                let statuses: Vec<String> = kind
                    .eligible_statuses()
                    .iter()
                    .map(|s| format!("'{}'", s.as_str()))
                    .collect();
                let topic = match kind {
                    DeliveryKind::Digest => {
                        " AND EXISTS (SELECT 1 FROM subscriptions t WHERE t.subscriber_id = s.id \
                         AND t.topic = deliveries.topic)"
                    }
                    DeliveryKind::Confirm | DeliveryKind::Preferences => "",
                };
                format!(
                    "(kind = '{}' AND EXISTS (SELECT 1 FROM subscribers s WHERE s.id = deliveries.subscriber_id \
                     AND s.status IN ({}){topic}))",
                    kind.as_str(),
                    statuses.join(",")
                )
            })
            .collect();
        format!(
            "UPDATE deliveries SET status = 'skipped', lease_owner = NULL, lease_expires_at = NULL, \
             last_reply = 'skipped: the subscriber may no longer receive this email', updated_at = $2 \
             WHERE lease_owner = $1 AND status = 'sending' AND NOT ({}) RETURNING id",
            clauses.join(" OR ")
        )
    });
    SQL.as_str()
}

impl Store {
    /// Queues one digest delivery per confirmed subscriber of `topic`, in one statement (one
    /// transaction). Idempotent: rows that exist are left alone. Returns how many were added.
    pub async fn enqueue_issue(
        &self,
        issue_id: i64,
        topic: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.enqueue_issue_held(issue_id, topic, now, now).await
    }

    /// [`Store::enqueue_issue`] with the new rows held until `not_before` (a local delivery
    /// time): they are written held, in the same statement, so no worker can claim one early.
    pub async fn enqueue_issue_held(
        &self,
        issue_id: i64,
        topic: &str,
        now: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let prefix = format!("digest:{issue_id}:");
        Ok(with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO deliveries (kind, issue_id, subscriber_id, email, topic, message_id, payload, status, attempts, \
                 not_before, next_attempt_at, created_at, updated_at) \
                 SELECT 'digest', $1, s.id, s.email, $2, $3 || CAST(s.id AS TEXT), NULL, 'queued', 0, $5, $4, $4, $4 \
                 FROM subscribers s JOIN subscriptions t ON t.subscriber_id = s.id \
                 WHERE t.topic = $2 AND s.status = 'confirmed' \
                 ON CONFLICT DO NOTHING",
            )
            .bind(issue_id)
            .bind(topic)
            .bind(&prefix)
            .bind(now)
            .bind(not_before)
            .execute(p)
            .await?
            .rows_affected()
        }))
    }

    /// Queues one ready-made transactional message (for example a confirmation). Returns the
    /// row id, or `None` when a row with this Message-ID exists already.
    pub async fn enqueue_transactional(
        &self,
        kind: DeliveryKind,
        subscriber_id: i64,
        email: &str,
        message_id: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        Ok(with_pool!(self, p => {
            sqlx::query_scalar(
                "INSERT INTO deliveries (kind, issue_id, subscriber_id, email, topic, message_id, payload, status, attempts, \
                 not_before, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, NULL, $2, $3, NULL, $4, $5, 'queued', 0, $6, $6, $6, $6) \
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(kind.as_str())
            .bind(subscriber_id)
            .bind(email)
            .bind(message_id)
            .bind(payload)
            .bind(now)
            .fetch_optional(p)
            .await?
        }))
    }

    /// Claims up to `limit` due rows for `owner` until `now + lease`, with no recorded holder
    /// (see [`Store::claim_due_as`]).
    pub async fn claim_due(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        self.claim_due_as(owner, None, now, lease, limit).await
    }

    /// Claims up to `limit` due rows for `owner` until `now + lease`, recording `holder` (the
    /// claiming process) on each. Each claim gets its own lease token (`owner/uuid`). Rows whose
    /// subscriber may no longer receive them ([`DeliveryKind::eligible_statuses`]) are marked
    /// skipped in the same transaction and not returned.
    pub async fn claim_due_as(
        &self,
        owner: &str,
        holder: Option<&LeaseHolder>,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let token = format!("{owner}/{}", uuid::Uuid::new_v4().simple());
        let expires = now + lease;
        let limit = i64::from(limit.max(1));
        // PostgreSQL skips rows other claimers hold; on SQLite the write transaction
        // (`BEGIN IMMEDIATE`, see `BeginWrite`) already keeps two claimers apart.
        let lock = match self.backend() {
            super::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let sql = format!("{CLAIM_SET} WHERE id IN ({}) {RETURNING}", due_ids(lock));
        let (rows, skipped): (Vec<ClaimRow>, Vec<i64>) = with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let rows: Vec<ClaimRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(&token)
                .bind(expires)
                .bind(now)
                .bind(limit)
                .bind(holder.map(|h| h.host.as_str()))
                .bind(holder.map(|h| h.pid))
                .bind(holder.and_then(|h| h.process_start.as_deref()))
                .fetch_all(&mut *tx)
                .await?;
            let skipped: Vec<i64> = sqlx::query_scalar(skip_ineligible_sql())
                .bind(&token)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            (rows, skipped)
        });
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            if skipped.contains(&r.id) {
                continue;
            }
            out.push(ClaimedDelivery {
                id: r.id,
                kind: DeliveryKind::parse(&r.kind)?,
                issue_id: r.issue_id,
                subscriber_id: r.subscriber_id,
                email: r.email,
                topic: r.topic,
                message_id: r.message_id,
                payload: r.payload,
                attempts: r.attempts,
                unknown_outcomes: r.unknown_outcomes,
                created_at: r.created_at,
                lease_owner: token.clone(),
            });
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    /// Records how an attempt went, only while `claim`'s lease is still held (returns `None`
    /// otherwise: the lease expired and another worker may own the row now); returns the row's
    /// new status. A bounce marks the subscriber bounced and suppresses the address in the same
    /// transaction, so the two never disagree.
    pub async fn record_outcome(
        &self,
        claim: &ClaimedDelivery,
        settlement: &Settlement,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DeliveryStatus>> {
        let status = settlement.status;
        let next = settlement.next_attempt_at;
        let sent_at = settlement.sent_at;
        let unknown = i32::from(settlement.unknown_outcome);
        let bounce = claim.subscriber_id.filter(|_| settlement.bounce);
        let reply = truncate_reply(&settlement.reply);
        with_pool!(self, p => {
            let update = || {
                sqlx::query(RECORD_OUTCOME)
                    .bind(status.as_str())
                    .bind(&reply)
                    .bind(next)
                    .bind(sent_at)
                    .bind(now)
                    .bind(claim.id)
                    .bind(&claim.lease_owner)
                    .bind(unknown)
            };
            // Only a bounce writes more than the row: the common outcome is one statement,
            // with no transaction round trips on the delivery hot path.
            let Some(id) = bounce else {
                let n = update().execute(p).await?.rows_affected();
                return Ok((n > 0).then_some(status));
            };
            let mut tx = p.begin_write().await?;
            if update().execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(None);
            }
            super::transitions::suppress_subscriber!(tx, id, SubscriberEvent::Bounce, now);
            tx.commit().await?;
        });
        Ok(Some(status))
    }

    /// Gives back a claimed row that was not sent (a graceful stop, or a lease about to run
    /// out): it is queued again as it was, its attempt not counted. Returns false when the lease
    /// was no longer held.
    pub async fn release_claim(
        &self,
        claim: &ClaimedDelivery,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = with_pool!(self, p => {
            sqlx::query(
                "UPDATE deliveries SET status = CASE WHEN attempts > 1 THEN 'deferred' ELSE 'queued' END, \
                 attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $1, updated_at = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND status = 'sending'",
            )
            .bind(now)
            .bind(claim.id)
            .bind(&claim.lease_owner)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}

/// Keeps replies readable and bounded in the database.
fn truncate_reply(reply: &str) -> String {
    let clean: String = reply
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match clean.char_indices().nth(500) {
        Some((i, _)) => clean[..i].to_string(),
        None => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who each kind of email may still reach at claim time, status by status.
    #[test]
    fn each_kind_has_its_own_eligibility_rule() {
        use SubscriberStatus::*;
        let table = [
            (DeliveryKind::Digest, [false, true, false, false, false]),
            (DeliveryKind::Confirm, [true, true, false, false, false]),
            (DeliveryKind::Preferences, [true, true, true, false, false]),
        ];
        for (kind, expected) in table {
            for (status, may) in [Pending, Confirmed, Unsubscribed, Bounced, Complained]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(
                    kind.eligible_statuses().contains(&status),
                    may,
                    "{kind:?} to a {status} subscriber"
                );
            }
            assert_eq!(DeliveryKind::parse(kind.as_str()).unwrap(), kind);
        }
        let sql = skip_ineligible_sql();
        assert!(sql.contains("kind = 'preferences' AND EXISTS"), "{sql}");
        assert!(
            sql.contains("'pending','confirmed','unsubscribed'"),
            "{sql}"
        );
        assert!(DeliveryKind::parse("newsletter").is_err());
    }
}
