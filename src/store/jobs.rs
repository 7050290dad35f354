//! Scheduler state: one `job_runs` row per job (last slot handled, its result, the next run),
//! claims on a scheduled run through the `locks` table (a lease row, so exactly one instance
//! compiles each issue and a crashed claimant's run is repaired after its lease expires),
//! per-time-zone `not_before` for local delivery times, and the housekeeping and status queries
//! the scheduler needs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{BeginWrite, Store, StoreResult, with_pool};

/// One `job_runs` row: what a job last did and when it runs next.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct JobRunRecord {
    pub job: String,
    /// The scheduled time (slot) of the last run handled, done or skipped.
    pub last_run_at: Option<DateTime<Utc>>,
    /// A one-line summary of the last attempt, with its counts ("ok: ...", "skipped: ...",
    /// "failed: ...").
    pub last_result: Option<String>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The slot of the last run that did the job (not skipped, not failed), and its summary:
    /// kept when a later slot is skipped or fails.
    pub last_completed_at: Option<DateTime<Utc>>,
    pub last_completed_result: Option<String>,
}

#[derive(sqlx::FromRow)]
struct JobRunRow {
    job: String,
    last_run_at: Option<DateTime<Utc>>,
    last_result: Option<String>,
    next_run_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    last_completed_at: Option<DateTime<Utc>>,
    last_completed_result: Option<String>,
}

impl From<JobRunRow> for JobRunRecord {
    fn from(r: JobRunRow) -> Self {
        JobRunRecord {
            job: r.job,
            last_run_at: r.last_run_at,
            last_result: r.last_result,
            next_run_at: r.next_run_at,
            updated_at: r.updated_at,
            last_completed_at: r.last_completed_at,
            last_completed_result: r.last_completed_result,
        }
    }
}

/// How an attempt at a job's scheduled time (slot) ended, as [`Store::record_job_run`] records
/// it in `job_runs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// The job was done for this slot: the last run handled and the last completed run.
    Done(DateTime<Utc>),
    /// This slot was skipped (missed beyond `catch_up_hours`): the last run handled, not a
    /// completed one.
    Skipped(DateTime<Utc>),
    /// The attempt failed: the slot stays open (`last_run_at` does not move).
    Failed,
}

/// Who holds a claim and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimHolder {
    pub owner: String,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Records how an attempt at `job` ended ([`RunEnd`]) with its one-line `result`, in one
    /// statement whatever the ending. `last_run_at` only ever moves forward, so a late record of
    /// an older slot never hides a newer one; a failure leaves it where it was (the slot stays
    /// open). Only [`RunEnd::Done`] moves the last completed run (unless a later slot completed
    /// already), so a skipped or failed slot never hides the last run that did the job.
    /// `next_run_at` replaces the stored one.
    pub async fn record_job_run(
        &self,
        job: &str,
        end: RunEnd,
        result: &str,
        next_run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (slot, completed_at, completed_result) = match end {
            RunEnd::Done(slot) => (Some(slot), Some(slot), Some(result)),
            RunEnd::Skipped(slot) => (Some(slot), None, None),
            RunEnd::Failed => (None, None, None),
        };
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO job_runs (job, last_run_at, last_result, next_run_at, updated_at, \
                   last_completed_at, last_completed_result) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (job) DO UPDATE SET \
                   last_run_at = CASE WHEN excluded.last_run_at IS NOT NULL \
                       AND (job_runs.last_run_at IS NULL OR excluded.last_run_at > job_runs.last_run_at) \
                       THEN excluded.last_run_at ELSE job_runs.last_run_at END, \
                   last_result = excluded.last_result, \
                   next_run_at = excluded.next_run_at, \
                   updated_at = excluded.updated_at, \
                   last_completed_result = CASE WHEN excluded.last_completed_at IS NOT NULL \
                       AND (job_runs.last_completed_at IS NULL \
                         OR excluded.last_completed_at >= job_runs.last_completed_at) \
                       THEN excluded.last_completed_result ELSE job_runs.last_completed_result END, \
                   last_completed_at = CASE WHEN excluded.last_completed_at IS NOT NULL \
                       AND (job_runs.last_completed_at IS NULL \
                         OR excluded.last_completed_at >= job_runs.last_completed_at) \
                       THEN excluded.last_completed_at ELSE job_runs.last_completed_at END",
            )
            .bind(job)
            .bind(slot)
            .bind(result)
            .bind(next_run_at)
            .bind(now)
            .bind(completed_at)
            .bind(completed_result)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Stores when `job` runs next without touching its last run (for `tidings status`).
    pub async fn set_next_run(
        &self,
        job: &str,
        next_run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO job_runs (job, last_run_at, last_result, next_run_at, updated_at) \
                 VALUES ($1, NULL, NULL, $2, $3) \
                 ON CONFLICT (job) DO UPDATE SET next_run_at = excluded.next_run_at, updated_at = excluded.updated_at",
            )
            .bind(job)
            .bind(next_run_at)
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Every job's row, ordered by job name.
    pub async fn last_runs(&self) -> StoreResult<Vec<JobRunRecord>> {
        let rows: Vec<JobRunRow> = with_pool!(self, p => {
            sqlx::query_as("SELECT job, last_run_at, last_result, next_run_at, updated_at, last_completed_at, last_completed_result FROM job_runs ORDER BY job")
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(JobRunRecord::from).collect())
    }

    /// One job's row, if it ever ran or was scheduled.
    pub async fn job_run(&self, job: &str) -> StoreResult<Option<JobRunRecord>> {
        let row: Option<JobRunRow> = with_pool!(self, p => {
            sqlx::query_as("SELECT job, last_run_at, last_result, next_run_at, updated_at, last_completed_at, last_completed_result FROM job_runs WHERE job = $1")
                .bind(job)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(JobRunRecord::from))
    }

    /// Claims `key` for `owner` until `now + lease`, in one statement: true when the claim is
    /// new or the previous holder's lease had expired; false while someone else holds it (or
    /// after it was finished with [`Store::finish_run`] until that hold ends). Exactly one of
    /// many concurrent claimers wins.
    pub async fn claim_run(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<bool> {
        let expires_at = now + lease;
        let n = with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO locks (name, owner, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
                 WHERE locks.expires_at <= $4",
            )
            .bind(key)
            .bind(owner)
            .bind(expires_at)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Marks `owner`'s claim on `key` as done by holding it until `hold_until` (long after the
    /// run's lease). Returns false when `owner` no longer holds the claim.
    pub async fn finish_run(
        &self,
        key: &str,
        owner: &str,
        hold_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = with_pool!(self, p => {
            sqlx::query("UPDATE locks SET expires_at = $3 WHERE name = $1 AND owner = $2")
                .bind(key)
                .bind(owner)
                .bind(hold_until)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Gives up `owner`'s claim on `key` (after a failed run) so the next attempt can claim it.
    pub async fn release_run(&self, key: &str, owner: &str) -> StoreResult<bool> {
        let n = with_pool!(self, p => {
            sqlx::query("DELETE FROM locks WHERE name = $1 AND owner = $2")
                .bind(key)
                .bind(owner)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Who holds `key`, if anyone (expired holds included).
    pub async fn run_claim_holder(&self, key: &str) -> StoreResult<Option<ClaimHolder>> {
        let row: Option<(String, DateTime<Utc>)> = with_pool!(self, p => {
            sqlx::query_as("SELECT owner, expires_at FROM locks WHERE name = $1")
                .bind(key)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|(owner, expires_at)| ClaimHolder { owner, expires_at }))
    }

    /// Deletes claims whose hold ended before `cutoff`; returns how many.
    pub async fn delete_expired_run_claims(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        Ok(with_pool!(self, p => {
            sqlx::query("DELETE FROM locks WHERE expires_at < $1")
                .bind(cutoff)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }

    /// Deletes cached article pages fetched before `cutoff`; returns how many.
    pub async fn delete_pages_older_than(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        Ok(with_pool!(self, p => {
            sqlx::query("DELETE FROM pages WHERE fetched_at < $1")
                .bind(cutoff)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }

    /// Deliveries per status (queued, sending, sent, deferred, failed, skipped), all issues.
    pub async fn delivery_status_counts(&self) -> StoreResult<BTreeMap<String, i64>> {
        self.grouped_counts("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
            .await
    }

    /// Deliveries a worker could take at `now`: queued or deferred rows that are due, and
    /// `sending` rows whose lease expired (their claimant died).
    pub async fn deliveries_due(&self, now: DateTime<Utc>) -> StoreResult<(i64, i64)> {
        let row: (i64, i64) = with_pool!(self, p => {
            sqlx::query_as(
                "SELECT \
                   COALESCE(SUM(CASE WHEN status IN ('queued','deferred') AND next_attempt_at <= $1 AND not_before <= $1 THEN 1 ELSE 0 END), 0), \
                   COALESCE(SUM(CASE WHEN status = 'sending' AND lease_expires_at <= $1 THEN 1 ELSE 0 END), 0) \
                 FROM deliveries WHERE status IN ('queued','deferred','sending')",
            )
            .bind(now)
            .fetch_one(p)
            .await?
        });
        Ok(row)
    }

    /// The distinct time zones (as stored, None for none) of the subscribers with a queued,
    /// never-attempted delivery of `issue_id`.
    pub async fn issue_delivery_timezones(
        &self,
        issue_id: i64,
    ) -> StoreResult<Vec<Option<String>>> {
        Ok(with_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT DISTINCT s.timezone FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
                 WHERE d.issue_id = $1 AND d.status = 'queued' AND d.attempts = 0 ORDER BY s.timezone",
            )
            .bind(issue_id)
            .fetch_all(p)
            .await?
        }))
    }

    /// Sets the earliest send time of `issue_id`'s queued, never-attempted deliveries that are
    /// still held at `now` (released rows stay released, so publishing the issue again after
    /// the local time lets them go instead of holding them another day), one time per
    /// subscriber time zone (`None` = subscribers without a zone), in one transaction. Call it
    /// right after `enqueue_issue_held`. Returns how many rows were updated.
    pub async fn set_local_not_before(
        &self,
        issue_id: i64,
        per_timezone: &[(Option<String>, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let mut updated = 0u64;
            for (timezone, not_before) in per_timezone {
                updated += sqlx::query(
                    "UPDATE deliveries SET not_before = $1 \
                     WHERE issue_id = $2 AND status = 'queued' AND attempts = 0 AND not_before > $4 \
                     AND subscriber_id IN (SELECT id FROM subscribers \
                         WHERE ($3 IS NULL AND timezone IS NULL) OR timezone = $3)",
                )
                .bind(not_before)
                .bind(issue_id)
                .bind(timezone)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok(updated)
        })
    }

    /// Each queued or sent delivery of `issue_id` with its subscriber's zone and earliest send
    /// time, ordered by address (for checking local delivery times).
    pub async fn issue_delivery_schedule(
        &self,
        issue_id: i64,
    ) -> StoreResult<Vec<(String, Option<String>, DateTime<Utc>)>> {
        Ok(with_pool!(self, p => {
            sqlx::query_as(
                "SELECT d.email, s.timezone, d.not_before FROM deliveries d \
                 LEFT JOIN subscribers s ON s.id = d.subscriber_id \
                 WHERE d.issue_id = $1 ORDER BY d.email",
            )
            .bind(issue_id)
            .fetch_all(p)
            .await?
        }))
    }
}
