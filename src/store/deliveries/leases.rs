//! Who holds the outbox's leases: each claim records its holder (host, process id, process
//! start) so a `send` can tell a lease of a process that died from one still in use
//! ([`Store::held_leases`]) and end the leases of a dead one at once
//! ([`Store::expire_leases_of`]). Whether a holder still runs is `src/delivery`'s to decide.

use chrono::{DateTime, Utc};

use crate::store::{Store, StoreResult, with_pool};

/// Who holds a claim's lease: the host, the process id and the process's start (an opaque
/// text that tells a process from a later one with the same id; `None` where it cannot be
/// known). `src/delivery` fills it in and decides whether such a process still runs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LeaseHolder {
    pub host: String,
    pub pid: i64,
    pub process_start: Option<String>,
}

/// The rows one holder has leased and not settled yet (see [`Store::held_leases`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLease {
    /// `None` for rows claimed without a recorded holder (an older version of tidings).
    pub holder: Option<LeaseHolder>,
    pub rows: i64,
    /// When the last of these leases runs out.
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// The earliest time a row in `sending` under someone's lease becomes claimable again, if any.
    pub async fn next_lease_expiry(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(with_pool!(self, p => {
            sqlx::query_scalar("SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 'sending'")
                .fetch_one(p)
                .await?
        }))
    }

    /// Rows in `sending` under a lease that has not run out at `now`, grouped by holder.
    pub async fn held_leases(&self, now: DateTime<Utc>) -> StoreResult<Vec<HeldLease>> {
        type Row = (
            Option<String>,
            Option<i64>,
            Option<String>,
            i64,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = with_pool!(self, p => {
            sqlx::query_as(
                "SELECT lease_host, lease_pid, lease_process_start, COUNT(*), MAX(lease_expires_at) \
                 FROM deliveries WHERE status = 'sending' AND lease_expires_at > $1 \
                 GROUP BY lease_host, lease_pid, lease_process_start ORDER BY MAX(lease_expires_at)",
            )
            .bind(now)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(host, pid, process_start, rows, expires_at)| HeldLease {
                holder: match (host, pid) {
                    (Some(host), Some(pid)) => Some(LeaseHolder {
                        host,
                        pid,
                        process_start,
                    }),
                    _ => None,
                },
                rows,
                expires_at,
            })
            .collect())
    }

    /// Ends at `now` every lease `holder` holds (a process that no longer runs), so the rows
    /// can be claimed at once. A holder without a known process start matches nothing. Returns
    /// how many rows were freed.
    pub async fn expire_leases_of(
        &self,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        Ok(with_pool!(self, p => {
            sqlx::query(
                "UPDATE deliveries SET lease_expires_at = $1 \
                 WHERE status = 'sending' AND lease_expires_at > $1 AND lease_host = $2 AND lease_pid = $3 \
                 AND lease_process_start = $4",
            )
            .bind(now)
            .bind(&holder.host)
            .bind(holder.pid)
            .bind(holder.process_start.as_deref())
            .execute(p)
            .await?
            .rows_affected()
        }))
    }
}
