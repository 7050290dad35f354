//! The writes that carry out [`crate::domain::transition`]'s decisions inside a caller's
//! transaction: finding an address's record, creating one, and moving a record to a suppressed
//! status. Macros, like [`super::with_pool!`], so one text serves both backends' transactions;
//! the store methods in `subscribers.rs` (and the bounce paths of `deliveries.rs` and
//! `bounces.rs`) decide with the domain and call these.

/// The id and status of the subscriber whose address has key `$key`, inside `$tx`, if any.
macro_rules! find_status {
    ($tx:expr, $key:expr) => {{
        let found: Option<(i64, String)> =
            sqlx::query_as("SELECT id, status FROM subscribers WHERE email_key = $1")
                .bind($key)
                .fetch_optional(&mut *$tx)
                .await?;
        match found {
            Some((id, status)) => Some((
                id,
                status
                    .parse::<$crate::domain::SubscriberStatus>()
                    .map_err($crate::store::StoreError::Corrupt)?,
            )),
            None => None,
        }
    }};
}

/// Inserts the new subscriber `$new` (a [`super::NewSubscriber`]) with `$status` and its consent
/// record and topics (or, for an imported suppressed history, its suppression entry) inside
/// `$tx`; `created_at` and the consent's `asked_at` are the consent date `$new` carries, else
/// `$now`. Evaluates to the new id, or `None` when a row with the address's key exists (written a
/// moment ago by a concurrent transaction); then nothing was written.
macro_rules! insert_new_subscriber {
    ($tx:expr, $new:expr, $status:expr, $key:expr, $hash:expr, $now:expr) => {{
        let new: &$crate::store::NewSubscriber = $new;
        let status: $crate::domain::SubscriberStatus = $status;
        let now: chrono::DateTime<chrono::Utc> = $now;
        let wants_confirmed = status == $crate::domain::SubscriberStatus::Confirmed;
        let unsubscribed_at = status.is_suppressed().then_some(now);
        let consented_at = new.consented_at.unwrap_or(now);
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO subscribers (email, email_key, status, timezone, created_at, updated_at, confirmed_at, unsubscribed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (email_key) DO NOTHING RETURNING id",
        )
        .bind(new.email.as_str())
        .bind($key)
        .bind(status.as_str())
        .bind(&new.timezone)
        .bind(consented_at)
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
            .bind(consented_at)
            .bind(wants_confirmed.then_some(now))
            .bind(&new.ip)
            .bind(&new.user_agent)
            .execute(&mut *$tx)
            .await?;
            if status.is_suppressed() {
                sqlx::query("INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind($hash)
                    .bind(status.as_str())
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
            } else {
                $crate::store::insert_subscriptions!($tx, id, &new.topics, now);
            }
        }
        id
    }};
}

/// Carries out `$event` (unsubscribe, bounce or complaint, a [`crate::domain::SubscriberEvent`]) for subscriber
/// `$id` inside `$tx`, as [`crate::domain::transition`] decides: the suppressed status, the topics cleared when
/// unsubscribed or complained, the address on the suppression list. Evaluates to `None` when the id is
/// unknown, else to `Some` of the status the record moved to, `None` when it was in it already.
macro_rules! suppress_subscriber {
    ($tx:expr, $id:expr, $event:expr, $now:expr) => {{
        let event: $crate::domain::SubscriberEvent = $event;
        let now: chrono::DateTime<chrono::Utc> = $now;
        let found: Option<(String, String)> = sqlx::query_as("SELECT email, status FROM subscribers WHERE id = $1")
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await?;
        match found {
            None => None,
            Some((email, status)) => {
                let status = status.parse::<$crate::domain::SubscriberStatus>().map_err($crate::store::StoreError::Corrupt)?;
                let mut changed = None;
                if let $crate::domain::Step::Become(to) = $crate::domain::transition(Some(status), event).step {
                    changed = (to != status).then_some(to);
                    sqlx::query("UPDATE subscribers SET status = $1, unsubscribed_at = COALESCE(unsubscribed_at, $2), updated_at = $2 WHERE id = $3")
                        .bind(to.as_str())
                        .bind(now)
                        .bind($id)
                        .execute(&mut *$tx)
                        .await?;
                    // Unsubscribing or complaining leaves every topic; a bounce keeps them.
                    if matches!(to, $crate::domain::SubscriberStatus::Unsubscribed | $crate::domain::SubscriberStatus::Complained) {
                        sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1")
                            .bind($id)
                            .execute(&mut *$tx)
                            .await?;
                    }
                    sqlx::query("INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, $2, $3) \
                                 ON CONFLICT (email_hash) DO UPDATE SET reason = excluded.reason")
                        .bind($crate::store::stored_email_hash(&email)?)
                        .bind(to.as_str())
                        .bind(now)
                        .execute(&mut *$tx)
                        .await?;
                }
                Some(changed)
            }
        }
    }};
}

pub(crate) use find_status;
pub(crate) use insert_new_subscriber;
pub(crate) use suppress_subscriber;
