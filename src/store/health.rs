//! What `tidings doctor` asks the database, without changing it: open it without creating a
//! SQLite file or applying migrations, which embedded migrations are applied and which are
//! pending, and SQLite's journal mode.

use super::{POSTGRES_MIGRATOR, Pool, SQLITE_MIGRATOR, Store, StoreResult, with_pool};

/// The embedded migrations of this build against those the database records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationState {
    /// Embedded migrations the database has applied.
    pub applied: usize,
    /// Embedded migrations not applied yet (versions).
    pub pending: Vec<i64>,
    /// Versions the database records as applied that this build does not know (a newer
    /// tidings migrated it).
    pub unknown: Vec<i64>,
}

impl Store {
    /// Opens an existing database as it is: a missing SQLite file is an error, and no
    /// migration is applied.
    pub async fn open_unmigrated(url: &str, max_connections: u32) -> StoreResult<Store> {
        Store::connect_with(url, max_connections, false).await
    }

    /// Compares the embedded migrations with the `_sqlx_migrations` table (absent: none
    /// applied).
    pub async fn migration_state(&self) -> StoreResult<MigrationState> {
        let exists: bool = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(p)
            .await?,
            Pool::Postgres(p) => {
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(p)
                    .await?
            }
        };
        let recorded: Vec<i64> = if exists {
            with_pool!(self, p => {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                    .fetch_all(p)
                    .await?
            })
        } else {
            Vec::new()
        };
        let migrator = match &self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATOR,
            Pool::Postgres(_) => &POSTGRES_MIGRATOR,
        };
        let embedded: Vec<i64> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .collect();
        Ok(MigrationState {
            applied: embedded.iter().filter(|v| recorded.contains(v)).count(),
            pending: embedded
                .iter()
                .copied()
                .filter(|v| !recorded.contains(v))
                .collect(),
            unknown: recorded
                .iter()
                .copied()
                .filter(|v| !embedded.contains(v))
                .collect(),
        })
    }

    /// SQLite's journal mode in effect (`"wal"` when tidings opened it); `None` on PostgreSQL.
    pub async fn sqlite_journal_mode(&self) -> StoreResult<Option<String>> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(p)
                    .await?;
                Ok(Some(mode.to_ascii_lowercase()))
            }
            Pool::Postgres(_) => Ok(None),
        }
    }
}
