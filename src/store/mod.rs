//! The only place with SQL. [`Store`] wraps a typed pool for SQLite or PostgreSQL; each method is
//! written once and compiled for both backends through [`with_pool!`], with backend-specific
//! statements (leases, `FOR UPDATE SKIP LOCKED`) spelled out where they differ.
//!
//! Migrations live in `migrations/sqlite` and `migrations/postgres`, embedded in the binary and
//! applied by [`Store::migrate`]. Times are bound from Rust (never `now()` in SQL) so callers and
//! tests control the clock.

mod articles;
mod bounces;
pub mod copy;
mod deliveries;
mod health;
mod issues;
mod jobs;
mod subscribers;
mod transitions;
mod web;
mod webhook_tokens;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use articles::{ArticleUpsert, DroppedItem, SummaryKey};
pub use bounces::{
    BounceEventDetail, BounceEventFilter, BounceEventRecord, BounceRates, LastBounce,
    MAX_RAW_BYTES, NewBounceEvent, Recorded, ReportMatch,
};
pub use deliveries::{
    ClaimedDelivery, DeliveryKind, DeliveryRecord, HeldLease, LeaseHolder, Settlement,
};
pub use health::MigrationState;
pub use issues::{IssueOutlook, IssueRecipient, IssueSummary, StoredIssue};
pub use jobs::{ClaimHolder, JobRunRecord, RunEnd};
use subscribers::stored_email_hash;
pub use subscribers::{
    AddOutcome, ImportOutcome, NewSubscriber, SubscriberFilter, SubscriberRecord, email_hash,
};
pub use web::{ConfirmationRequest, MailLimits, MailSlot, QueueOutcome, QueuedMessage, WebMail};

use crate::config::redact_url;

/// A storage failure; the message never contains secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open database {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store: cheap to clone (it holds a pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

/// Runs `$body` with `$pool` bound to the typed pool of whichever backend is in use; the body is
/// compiled once per backend, so the same SQL text serves both.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`, which takes the
/// write lock up front: a deferred transaction that reads and then writes fails at once with
/// "database is locked" when another connection is writing, whatever the busy timeout, whereas
/// an immediate one waits its turn. On PostgreSQL it is a plain `BEGIN`.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Subscribes subscriber `$id` to each of `$topics` (`TopicSlug`s) inside the write
/// transaction `$tx`, at `$now`; topics already held are left alone. Evaluates to the number of
/// new subscriptions. A macro, like [`with_pool!`], so one text serves both backends'
/// transactions.
macro_rules! insert_subscriptions {
    ($tx:expr, $id:expr, $topics:expr, $now:expr) => {{
        let mut added: u64 = 0;
        for topic in $topics {
            added += sqlx::query(
                "INSERT INTO subscriptions (subscriber_id, topic, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind($id)
            .bind(topic.as_str())
            .bind($now)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        }
        added
    }};
}
pub(crate) use insert_subscriptions;

/// Replaces subscriber `$id`'s topics with `$topics` inside `$tx` (see [`insert_subscriptions!`]).
macro_rules! replace_subscriptions {
    ($tx:expr, $id:expr, $topics:expr, $now:expr) => {{
        sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?;
        $crate::store::insert_subscriptions!($tx, $id, $topics, $now)
    }};
}
pub(crate) use replace_subscriptions;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens the database named by `url` (`sqlite://path` or `postgres://...`). A SQLite file and
    /// its folder are created on first use.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Store> {
        Store::connect_with(url, max_connections, true).await
    }

    /// Opens an existing database and applies pending migrations; a SQLite file that does not
    /// exist is an error naming the path, instead of a new empty database (what a mistyped
    /// `database.url` would otherwise give a command that only reads).
    pub async fn open_existing(url: &str, max_connections: u32) -> StoreResult<Store> {
        let store = Store::connect_with(url, max_connections, false).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens an existing database as it is: no migration, and a SQLite file that does not exist
    /// is an error naming the path. For commands that only read (`backup`, the source of `db
    /// copy`).
    pub async fn open_as_is(url: &str, max_connections: u32) -> StoreResult<Store> {
        Store::connect_with(url, max_connections, false).await
    }

    async fn connect_with(url: &str, max_connections: u32, create: bool) -> StoreResult<Store> {
        let open_err = |reason: String| StoreError::Open {
            url: redact_url(url),
            reason,
        };
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| open_err(e.to_string()))?
                .create_if_missing(create)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let file = opts.get_filename();
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            if !create && !in_memory && !file.exists() {
                return Err(open_err(format!(
                    "there is no database at {}; check database.url, or create it with `tidings migrate`",
                    file.display()
                )));
            }
            if let Some(dir) = file
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && file != Path::new(":memory:"))
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(|e| open_err(e.to_string()))?;
            Ok(Store {
                pool: Pool::Sqlite(pool),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| open_err(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(|e| open_err(e.to_string()))?;
            Ok(Store {
                pool: Pool::Postgres(pool),
            })
        } else {
            Err(open_err(
                "the URL must start with sqlite: or postgres://".into(),
            ))
        }
    }

    /// Opens the database and applies pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Store> {
        let store = Store::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations of this backend; returns how many were newly applied.
    pub async fn migrate(&self) -> StoreResult<usize> {
        let before = self.applied_migrations().await.unwrap_or(0);
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATOR.run(p).await?,
            Pool::Postgres(p) => POSTGRES_MIGRATOR.run(p).await?,
        }
        let after = self.applied_migrations().await?;
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> StoreResult<usize> {
        let n: i64 = with_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(p)
                .await?
        });
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Runs a `SELECT key, COUNT(*) ... GROUP BY key` query into a map (status and topic counts).
    pub(crate) async fn grouped_counts(
        &self,
        sql: &'static str,
    ) -> StoreResult<std::collections::BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = with_pool!(self, p => {
            sqlx::query_as(sql).fetch_all(p).await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> StoreResult<()> {
        with_pool!(self, p => {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}
