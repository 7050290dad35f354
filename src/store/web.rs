//! Queries the web app needs beyond the shared subscriber methods: counts for `/metrics`, the
//! mail the web app queues on request under its limits (once an hour per address and slot,
//! `[web] confirmations_per_hour` overall), and the preferences page asking a reader who is not
//! confirmed for a fresh confirmation. Each of those is one transaction: a failure anywhere
//! leaves nothing half done (no slot claimed without its message, no status without its
//! topics). Also the `/healthz` write check.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use sqlx::{ConnectOptions as _, Connection as _};

use super::{BeginWrite, DeliveryKind, Pool, Store, StoreResult, with_pool};
use crate::domain::{
    ConsentSource, Step, SubscriberEvent, SubscriberMail, SubscriberStatus, TopicSlug, transition,
};

/// The PostgreSQL advisory lock that keeps two instances from both taking the last place under
/// the hourly cap (SQLite's `BEGIN IMMEDIATE` already serialises writers).
const MAIL_CAP_LOCK: i64 = 0x7469_6469_6e67_7301;

/// Which once-an-hour slot of an address a message takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailSlot {
    /// Mail asked for through the subscribe form, where anyone can type any address.
    Form,
    /// A confirmation asked for through a link we mailed (the preferences page). Its own slot,
    /// so the "link to your preferences" email that brought the reader there does not keep
    /// the confirmation from going out.
    Reconfirm,
}

impl MailSlot {
    fn column(self) -> &'static str {
        match self {
            MailSlot::Form => "last_confirmation_sent_at",
            MailSlot::Reconfirm => "last_reconfirmation_sent_at",
        }
    }
}

/// The limits a message the web app sends on request is queued under.
#[derive(Clone, Copy, Debug)]
pub struct MailLimits {
    pub slot: MailSlot,
    /// At most one message per address and slot in this window.
    pub min_gap: Duration,
    /// Transactional messages queued in the last hour, all addresses together; 0 = no cap.
    pub per_hour: u32,
}

/// A rendered transactional message to queue for one subscriber.
#[derive(Clone, Copy, Debug)]
pub struct WebMail<'a> {
    pub kind: DeliveryKind,
    pub subscriber_id: i64,
    pub to: &'a str,
    pub message_id: &'a str,
    pub payload: &'a [u8],
}

/// What queueing a message on request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueOutcome {
    Queued,
    /// The address had a message in its slot within the gap; nothing was queued.
    TooSoon,
    /// The hourly cap is reached; nothing was queued and nothing changed.
    OverCap,
}

/// A reader who is not confirmed asks, on the preferences page, for these topics.
#[derive(Clone, Copy, Debug)]
pub struct ConfirmationRequest<'a> {
    pub id: i64,
    pub topics: &'a [TopicSlug],
    pub timezone: Option<&'a str>,
    pub consent_version: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Queues `$mail` (a [`WebMail`]) under `$limits` (a [`MailLimits`]) inside the write
/// transaction `$tx` at `$now`; `$postgres` says whether to take the cap's advisory lock.
/// Evaluates to a [`QueueOutcome`]; it changes nothing unless it is `Queued`. The cap is
/// checked first, so an address that may not get mail yet is answered like every other once the
/// cap is reached.
macro_rules! queue_web_mail {
    ($tx:expr, $postgres:expr, $mail:expr, $limits:expr, $now:expr) => {{
        let mail: &WebMail<'_> = $mail;
        let limits: MailLimits = $limits;
        let now: DateTime<Utc> = $now;
        let mut outcome = QueueOutcome::Queued;
        if limits.per_hour > 0 {
            if $postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MAIL_CAP_LOCK)
                    .execute(&mut *$tx)
                    .await?;
            }
            let queued: i64 = sqlx::query_scalar(COUNT_RECENT)
                .bind(now - Duration::hours(1))
                .fetch_one(&mut *$tx)
                .await?;
            if queued >= i64::from(limits.per_hour) {
                outcome = QueueOutcome::OverCap;
            }
        }
        if outcome == QueueOutcome::Queued {
            let column = limits.slot.column();
            let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE subscribers SET {column} = $1 WHERE id = $2 AND ({column} IS NULL OR {column} <= $3)"
            )))
            .bind(now)
            .bind(mail.subscriber_id)
            .bind(now - limits.min_gap)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                outcome = QueueOutcome::TooSoon;
            }
        }
        if outcome == QueueOutcome::Queued {
            sqlx::query(
                "INSERT INTO deliveries (kind, issue_id, subscriber_id, email, topic, message_id, payload, status, attempts, \
                 not_before, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, NULL, $2, $3, NULL, $4, $5, 'queued', 0, $6, $6, $6, $6)",
            )
            .bind(mail.kind.as_str())
            .bind(mail.subscriber_id)
            .bind(mail.to)
            .bind(mail.message_id)
            .bind(mail.payload)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
        }
        outcome
    }};
}

/// Transactional messages queued since `$1`.
const COUNT_RECENT: &str =
    "SELECT COUNT(*) FROM deliveries WHERE issue_id IS NULL AND created_at > $1";

impl Store {
    /// Compiled issues per topic.
    pub async fn issue_counts_by_topic(&self) -> StoreResult<BTreeMap<String, i64>> {
        self.grouped_counts("SELECT topic, COUNT(*) FROM issues GROUP BY topic")
            .await
    }

    /// Queues a message the web app sends on request, in one transaction with claiming the
    /// address's slot and checking the hourly cap: a failure claims nothing.
    pub async fn queue_web_mail(
        &self,
        mail: &WebMail<'_>,
        limits: MailLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<QueueOutcome> {
        let postgres = self.backend() == super::Backend::Postgres;
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let outcome = queue_web_mail!(tx, postgres, mail, limits, now);
            if outcome == QueueOutcome::Queued {
                tx.commit().await?;
            }
            Ok(outcome)
        })
    }

    /// When `per_hour` transactional messages were queued in the hour before `now`: how long
    /// until one more fits. `None` while there is room (or `per_hour` is 0).
    pub async fn web_mail_cap_wait(
        &self,
        now: DateTime<Utc>,
        per_hour: u32,
    ) -> StoreResult<Option<std::time::Duration>> {
        if per_hour == 0 {
            return Ok(None);
        }
        let since = now - Duration::hours(1);
        let oldest: Option<DateTime<Utc>> = with_pool!(self, p => {
            let queued: i64 = sqlx::query_scalar(COUNT_RECENT).bind(since).fetch_one(p).await?;
            if queued < i64::from(per_hour) {
                return Ok(None);
            }
            // The message whose hour ends first among those that keep the count at the cap.
            sqlx::query_scalar(
                "SELECT created_at FROM deliveries WHERE issue_id IS NULL AND created_at > $1 \
                 ORDER BY created_at LIMIT 1 OFFSET $2",
            )
            .bind(since)
            .bind(queued - i64::from(per_hour))
            .fetch_optional(p)
            .await?
        });
        let wait = oldest
            .map(|t| (t + Duration::hours(1) - now).to_std().unwrap_or_default())
            .unwrap_or_default();
        Ok(Some(wait.max(std::time::Duration::from_secs(1))))
    }

    /// The preferences page of a reader who is not confirmed (where [`transition`] asks for a
    /// confirmation): an unsubscribed reader becomes pending with a new (unconfirmed) consent
    /// record, a pending one stays pending; either way the topics and time zone are replaced and
    /// `mail` (their confirmation) is queued under `limits`, all in one transaction. The address
    /// stays on the suppression list until the confirmation link is used
    /// ([`Store::confirm_subscriber`]).
    ///
    /// Returns `None` (and changes nothing) unless the decision, on the status read inside the
    /// transaction, is to ask for a confirmation (the subscriber is unsubscribed or pending and
    /// topics were chosen), and `Some(OverCap)` (changing nothing) when the hourly cap is
    /// reached.
    pub async fn request_confirmation_from_web(
        &self,
        request: &ConfirmationRequest<'_>,
        mail: &WebMail<'_>,
        limits: MailLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<QueueOutcome>> {
        let postgres = self.backend() == super::Backend::Postgres;
        let lock = if postgres { " FOR UPDATE" } else { "" };
        let id = request.id;
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let status: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT status FROM subscribers WHERE id = $1{lock}"
            )))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let status = match status {
                Some(s) => s.parse::<SubscriberStatus>().map_err(super::StoreError::Corrupt)?,
                None => return Ok(None),
            };
            let event = SubscriberEvent::SavePreferences { any_topic: !request.topics.is_empty() };
            let decision = transition(Some(status), event);
            if decision.mail != Some(SubscriberMail::Confirmation) {
                return Ok(None);
            }
            match decision.step {
                // Unsubscribed: pending again, with a new consent record, unconfirmed.
                Step::Become(to) => {
                    sqlx::query("UPDATE subscribers SET status = $1, updated_at = $2 WHERE id = $3")
                        .bind(to.as_str())
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("INSERT INTO consents (subscriber_id, source, wording_version, asked_at, confirmed_at, ip, user_agent) \
                                 VALUES ($1, $2, $3, $4, NULL, $5, $6)")
                        .bind(id)
                        .bind(ConsentSource::Web.as_str())
                        .bind(request.consent_version)
                        .bind(now)
                        .bind(request.ip)
                        .bind(request.user_agent)
                        .execute(&mut *tx)
                        .await?;
                }
                // Pending: stays pending.
                Step::Stay | Step::Nothing | Step::Create(_) | Step::Refuse(_) => {}
            }
            super::replace_subscriptions!(tx, id, request.topics, now);
            sqlx::query("UPDATE subscribers SET timezone = $1, updated_at = $2 WHERE id = $3")
                .bind(request.timezone)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let outcome = queue_web_mail!(tx, postgres, mail, limits, now);
            if outcome == QueueOutcome::OverCap {
                return Ok(Some(outcome));
            }
            tx.commit().await?;
            Ok(Some(outcome))
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
