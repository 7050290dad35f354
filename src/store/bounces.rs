//! Bounce events: one row per inbound report (bounce, complaint, auto-reply, delivery report,
//! unknown), with the raw message (capped), its source, the parsed fields as JSON and the
//! delivery and subscriber it matched. Idempotent on the message's key (its Message-ID), so
//! feeding a message twice changes nothing. Recording an event carries out the policy of
//! [`crate::bounce::policy`] in the same transaction, through the shared suppress step of
//! `transitions.rs`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::transitions::suppress_subscriber;
use super::{BeginWrite, Store, StoreResult, with_pool};
use crate::bounce::OurMessage;
use crate::bounce::policy::{self, Effect, SoftLimit};
use crate::domain::{SubscriberEmail, SubscriberStatus};

/// The most of a message kept with its event.
pub const MAX_RAW_BYTES: usize = 256 * 1024;

/// The delivery and subscriber a report names, as far as the store knows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportMatch {
    pub delivery_id: Option<i64>,
    pub subscriber_id: Option<i64>,
    /// The matched subscriber's address.
    pub email: Option<String>,
}

/// One inbound report to record.
#[derive(Clone, Debug)]
pub struct NewBounceEvent<'a> {
    /// The message's Message-ID (or another stable key when it has none): unique.
    pub message_key: &'a str,
    /// How it arrived: "pipe", "maildir", "mbox" (and, for the ways in still to come, "imap" or "webhook").
    pub source: &'a str,
    /// `bounce::Kind::as_str`.
    pub kind: &'a str,
    pub effect: Effect,
    /// The recipient the event is about, its status code and reason.
    pub email: Option<&'a str>,
    pub status: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// The parsed report as JSON text.
    pub parsed: &'a str,
    /// The message; only its first [`MAX_RAW_BYTES`] are kept.
    pub raw: &'a [u8],
    pub matched: ReportMatch,
}

/// What recording an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new event; the subscriber status it caused, if any.
    New {
        id: i64,
        status_change: Option<SubscriberStatus>,
    },
    /// An event with this key was stored before; nothing changed.
    Duplicate,
}

/// A subscriber's latest bounce or complaint event.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct LastBounce {
    #[serde(skip)]
    pub subscriber_id: i64,
    pub event_id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub effect: String,
    pub status: Option<String>,
    pub reason: Option<String>,
}

/// A stored event, for `tidings bounces list`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct BounceEventRecord {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub source: String,
    pub kind: String,
    pub effect: String,
    pub email: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub delivery_id: Option<i64>,
    pub subscriber_id: Option<i64>,
    pub subscriber_email: Option<String>,
    pub status_change: Option<String>,
}

impl Store {
    /// The delivery and subscriber a report names: the delivery of a VERP tag first, then the
    /// delivery our Message-ID names, then the first of `recipients` that is a known
    /// subscriber. A delivery id that does not exist matches nothing.
    pub async fn match_report(
        &self,
        verp_delivery: Option<i64>,
        ours: Option<&OurMessage>,
        recipients: &[SubscriberEmail],
    ) -> StoreResult<ReportMatch> {
        const BY_ID: &str = "SELECT d.id, d.subscriber_id, s.email FROM deliveries d \
                             LEFT JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id = $1";
        const BY_ISSUE: &str = "SELECT d.id, d.subscriber_id, s.email FROM deliveries d \
                                LEFT JOIN subscribers s ON s.id = d.subscriber_id \
                                WHERE d.issue_id = $1 AND d.subscriber_id = $2";
        type Row = (i64, Option<i64>, Option<String>);
        let from_row = |(delivery, subscriber, email): Row| ReportMatch {
            delivery_id: Some(delivery),
            subscriber_id: subscriber,
            email,
        };
        with_pool!(self, p => {
            if let Some(id) = verp_delivery {
                let row: Option<Row> = sqlx::query_as(BY_ID).bind(id).fetch_optional(p).await?;
                if let Some(row) = row {
                    return Ok(from_row(row));
                }
            }
            if let Some(ours) = ours {
                let row: Option<Row> = sqlx::query_as(BY_ISSUE)
                    .bind(ours.issue_id)
                    .bind(ours.subscriber_id)
                    .fetch_optional(p)
                    .await?;
                if let Some(row) = row {
                    return Ok(from_row(row));
                }
            }
            for email in recipients {
                let row: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, email FROM subscribers WHERE email_key = $1")
                        .bind(email.key())
                        .fetch_optional(p)
                        .await?;
                if let Some((id, email)) = row {
                    return Ok(ReportMatch {
                        delivery_id: None,
                        subscriber_id: Some(id),
                        email: Some(email),
                    });
                }
            }
            Ok(ReportMatch::default())
        })
    }

    /// Records `event` and, in the same transaction, what the policy makes of it for the
    /// matched subscriber: a hard bounce or a complaint suppresses at once, a soft bounce when
    /// `rule.limit` soft bounces (this one included) fall within `rule.window_days` of `now`.
    /// An event whose key is stored already changes nothing.
    pub async fn record_bounce_event(
        &self,
        event: &NewBounceEvent<'_>,
        rule: SoftLimit,
        now: DateTime<Utc>,
    ) -> StoreResult<Recorded> {
        let raw = &event.raw[..event.raw.len().min(MAX_RAW_BYTES)];
        let since = now - Duration::days(i64::from(rule.window_days));
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO bounce_events (message_key, source, kind, effect, email, status, reason, \
                 parsed, raw, delivery_id, subscriber_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (message_key) DO NOTHING RETURNING id",
            )
            .bind(event.message_key)
            .bind(event.source)
            .bind(event.kind)
            .bind(event.effect.as_str())
            .bind(event.email)
            .bind(event.status)
            .bind(event.reason)
            .bind(event.parsed)
            .bind(raw)
            .bind(event.matched.delivery_id)
            .bind(event.matched.subscriber_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                tx.rollback().await?;
                return Ok(Recorded::Duplicate);
            };
            let mut status_change = None;
            if let Some(subscriber) = event.matched.subscriber_id {
                let soft: i64 = if event.effect == Effect::Soft {
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM bounce_events \
                         WHERE subscriber_id = $1 AND effect = 'soft' AND created_at >= $2",
                    )
                    .bind(subscriber)
                    .bind(since)
                    .fetch_one(&mut *tx)
                    .await?
                } else {
                    0
                };
                let soft = u64::try_from(soft).unwrap_or(0);
                if let Some(change) = policy::decide(event.effect, soft, rule)
                    && let Some(Some(after)) = suppress_subscriber!(tx, subscriber, change, now)
                {
                    sqlx::query("UPDATE bounce_events SET status_change = $1 WHERE id = $2")
                        .bind(after.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    status_change = Some(after);
                }
            }
            tx.commit().await?;
            Ok(Recorded::New { id, status_change })
        })
    }

    /// Every stored event, oldest first, with the matched subscriber's address.
    pub async fn bounce_events(&self) -> StoreResult<Vec<BounceEventRecord>> {
        self.bounce_events_where(&BounceEventFilter::default())
            .await
    }

    /// The stored events `filter` lets through, oldest first, with the matched subscriber's
    /// address.
    pub async fn bounce_events_where(
        &self,
        filter: &BounceEventFilter,
    ) -> StoreResult<Vec<BounceEventRecord>> {
        let mut sql = format!("{EVENT_COLUMNS} FROM {EVENT_FROM} WHERE 1 = 1");
        let mut n = 0;
        if filter.since.is_some() {
            n += 1;
            sql.push_str(&format!(" AND b.created_at >= ${n}"));
        }
        if filter.kind.is_some() {
            n += 1;
            sql.push_str(&format!(" AND b.kind = ${n}"));
        }
        sql.push_str(" ORDER BY b.id");
        Ok(with_pool!(self, p => {
            // Built from the constants above and placeholder numbers only; values are bound.
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            if let Some(since) = filter.since {
                q = q.bind(since);
            }
            if let Some(kind) = &filter.kind {
                q = q.bind(kind.as_str());
            }
            q.fetch_all(p).await?
        }))
    }

    /// Sent deliveries (of `issue`, or of every issue and transactional mail) and how many of
    /// them a bounce (hard or soft) or a complaint was matched to, each delivery counted once.
    pub async fn bounce_rates(&self, issue: Option<i64>) -> StoreResult<BounceRates> {
        let only = if issue.is_some() {
            " AND d.issue_id = $1"
        } else {
            ""
        };
        let matched = |effects: &str| {
            format!(
                "(SELECT COUNT(DISTINCT b.delivery_id) FROM bounce_events b \
                 JOIN deliveries d ON d.id = b.delivery_id WHERE b.effect IN ({effects}){only})"
            )
        };
        // Built from constants only; the issue id is bound.
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM deliveries d WHERE d.status = 'sent'{only}), {}, {}",
            matched("'hard', 'soft'"),
            matched("'complaint'"),
        );
        let (sent, bounced, complained): (i64, i64, i64) = with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            if let Some(issue) = issue {
                q = q.bind(issue);
            }
            q.fetch_one(p).await?
        });
        Ok(BounceRates {
            sent,
            bounced,
            complained,
        })
    }

    /// Stored events counted by kind and source, for `/metrics`.
    pub async fn bounce_event_counts(&self) -> StoreResult<Vec<(String, String, i64)>> {
        Ok(with_pool!(self, p => {
            sqlx::query_as(
                "SELECT kind, source, COUNT(*) FROM bounce_events GROUP BY kind, source \
                 ORDER BY kind, source",
            )
            .fetch_all(p)
            .await?
        }))
    }

    /// Each subscriber's latest bounce or complaint, by subscriber id, for
    /// `subscribers list --json`.
    pub async fn last_bounces(&self) -> StoreResult<HashMap<i64, LastBounce>> {
        const SQL: &str = "SELECT e.subscriber_id, e.id AS event_id, e.created_at AS at, e.kind, \
             e.effect, e.status, e.reason FROM bounce_events e \
             WHERE e.id = (SELECT MAX(x.id) FROM bounce_events x \
                 WHERE x.subscriber_id = e.subscriber_id AND x.kind IN ('bounce', 'complaint'))";
        let rows: Vec<LastBounce> = with_pool!(self, p => {
            sqlx::query_as(SQL).fetch_all(p).await?
        });
        Ok(rows.into_iter().map(|r| (r.subscriber_id, r)).collect())
    }

    /// One stored event with its parsed fields and raw message; None for an unknown id.
    pub async fn bounce_event(&self, id: i64) -> StoreResult<Option<BounceEventDetail>> {
        let sql = format!("{EVENT_COLUMNS}, b.parsed, b.raw FROM {EVENT_FROM} WHERE b.id = $1");
        Ok(with_pool!(self, p => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await?
        }))
    }
}

/// The columns of a [`BounceEventRecord`].
const EVENT_COLUMNS: &str = "SELECT b.id, b.created_at, b.source, b.kind, b.effect, b.email, \
     b.status, b.reason, b.delivery_id, b.subscriber_id, s.email AS subscriber_email, \
     b.status_change";
const EVENT_FROM: &str = "bounce_events b LEFT JOIN subscribers s ON s.id = b.subscriber_id";

/// Sent deliveries and those with a bounce or a complaint, for `deliveries --issue` and
/// `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BounceRates {
    pub sent: i64,
    pub bounced: i64,
    pub complained: i64,
}

impl BounceRates {
    /// The complaint rate above which `deliveries` and `status` warn (0.1%, a third of the
    /// 0.3% Gmail and Yahoo allow bulk senders).
    pub const COMPLAINT_WARNING: f64 = 0.001;

    fn rate(n: i64, of: i64) -> f64 {
        if of <= 0 { 0.0 } else { n as f64 / of as f64 }
    }

    /// "2 sent; bounces 1 (50.00%), complaints 1 (50.00%)", then a warning line when the
    /// complaint rate is above [`Self::COMPLAINT_WARNING`].
    pub fn lines(&self) -> Vec<String> {
        let complaint_rate = Self::rate(self.complained, self.sent);
        let mut lines = vec![format!(
            "{} sent; bounces {} ({:.2}%), complaints {} ({:.2}%)",
            self.sent,
            self.bounced,
            100.0 * Self::rate(self.bounced, self.sent),
            self.complained,
            100.0 * complaint_rate,
        )];
        if complaint_rate > Self::COMPLAINT_WARNING {
            lines.push(format!(
                "warning: complaint rate {:.2}% is above 0.1%; mailbox providers block bulk \
                 senders above 0.3%",
                100.0 * complaint_rate
            ));
        }
        lines
    }
}

/// Which events `tidings bounces list` shows; the default lets every event through.
#[derive(Clone, Debug, Default)]
pub struct BounceEventFilter {
    /// Only events stored at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events of this kind (`bounce::Kind::as_str`).
    pub kind: Option<String>,
}

/// A stored event with everything kept about it, for `tidings bounces show`.
#[derive(Clone, sqlx::FromRow)]
pub struct BounceEventDetail {
    #[sqlx(flatten)]
    pub event: BounceEventRecord,
    /// The parsed report as JSON text.
    pub parsed: String,
    /// The message as received, cut at [`MAX_RAW_BYTES`].
    pub raw: Vec<u8>,
}
