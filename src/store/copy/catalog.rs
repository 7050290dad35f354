//! What a copy asks each backend's catalog: the migration version, the tables and their columns
//! and primary keys, row counts, and the id sequences (`sqlite_sequence` for SQLite's
//! `AUTOINCREMENT`, a `BIGSERIAL`'s sequence on PostgreSQL). One trait, implemented on each
//! backend's connection, so the copy code is written once.

use std::collections::BTreeSet;

use sqlx::{AssertSqlSafe, PgConnection, SqliteConnection};

/// A column of a table, as the catalog describes it.
#[derive(Clone, Debug)]
pub(super) struct Column {
    pub name: String,
    /// The declared type (SQLite) or the type name (PostgreSQL's `udt_name`), lower-case.
    pub kind: String,
}

/// A table's columns in order and its primary-key columns in key order.
#[derive(Clone, Debug)]
pub(super) struct TableShape {
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
}

impl TableShape {
    /// `ORDER BY` text that lists rows in key order (every column when there is no key), so
    /// two dumps of the same data are the same.
    pub fn order_by(&self) -> String {
        let keys: Vec<&str> = if self.primary_key.is_empty() {
            self.columns.iter().map(|c| c.name.as_str()).collect()
        } else {
            self.primary_key.iter().map(String::as_str).collect()
        };
        keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
    }

    pub fn has_id(&self) -> bool {
        self.columns.iter().any(|c| c.name == "id")
    }
}

/// `name` as a quoted SQL identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Tables that belong to the database engine or the migrator, not to tidings.
pub(super) fn is_internal(table: &str) -> bool {
    table == "_sqlx_migrations" || table.starts_with("sqlite_")
}

pub(super) trait Catalog {
    /// The newest successfully applied migration, 0 when none is.
    async fn schema_version(&mut self) -> Result<i64, sqlx::Error>;
    /// The names of the tables in the database (the current schema on PostgreSQL).
    async fn existing_tables(&mut self) -> Result<BTreeSet<String>, sqlx::Error>;
    async fn shape(&mut self, table: &str) -> Result<TableShape, sqlx::Error>;
    async fn count(&mut self, table: &str) -> Result<u64, sqlx::Error>;
    /// The highest `id` the table's sequence has handed out, 0 when it has none or never used it.
    async fn last_id(&mut self, table: &str) -> Result<i64, sqlx::Error>;
    /// Makes the table's sequence hand out ids above both `last_id` and every stored id.
    async fn raise_sequence(&mut self, table: &str, last_id: i64) -> Result<(), sqlx::Error>;
}

fn count_sql(table: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", quote(table)))
}

impl Catalog for SqliteConnection {
    async fn schema_version(&mut self) -> Result<i64, sqlx::Error> {
        if !self.existing_tables().await?.contains("_sqlx_migrations") {
            return Ok(0);
        }
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(self)
            .await
    }

    async fn existing_tables(&mut self) -> Result<BTreeSet<String>, sqlx::Error> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(self)
                .await?;
        Ok(names.into_iter().collect())
    }

    async fn shape(&mut self, table: &str) -> Result<TableShape, sqlx::Error> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, type, pk FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(self)
                .await?;
        let mut keyed: Vec<(i64, String)> = rows
            .iter()
            .filter(|(_, _, pk)| *pk > 0)
            .map(|(name, _, pk)| (*pk, name.clone()))
            .collect();
        keyed.sort();
        Ok(TableShape {
            columns: rows
                .into_iter()
                .map(|(name, kind, _)| Column {
                    name,
                    kind: kind.to_ascii_lowercase(),
                })
                .collect(),
            primary_key: keyed.into_iter().map(|(_, name)| name).collect(),
        })
    }

    async fn count(&mut self, table: &str) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(count_sql(table)).fetch_one(self).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn last_id(&mut self, table: &str) -> Result<i64, sqlx::Error> {
        if !self.existing_tables().await?.contains("sqlite_sequence") {
            return Ok(0);
        }
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
                .bind(table)
                .fetch_optional(self)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn raise_sequence(&mut self, table: &str, last_id: i64) -> Result<(), sqlx::Error> {
        // Inserting explicit ids already moved `sqlite_sequence` up to the largest; only a
        // larger id the source handed out (a row since deleted) needs writing, and only for a
        // table declared AUTOINCREMENT (the others reuse the largest rowid plus one anyway).
        let autoincrement: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1 \
             AND sql LIKE '%AUTOINCREMENT%'",
        )
        .bind(table)
        .fetch_optional(&mut *self)
        .await?;
        if last_id <= 0 || autoincrement.is_none() {
            return Ok(());
        }
        let updated = sqlx::query("UPDATE sqlite_sequence SET seq = MAX(seq, $2) WHERE name = $1")
            .bind(table)
            .bind(last_id)
            .execute(&mut *self)
            .await?
            .rows_affected();
        if updated == 0 {
            sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ($1, $2)")
                .bind(table)
                .bind(last_id)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

impl Catalog for PgConnection {
    async fn schema_version(&mut self) -> Result<i64, sqlx::Error> {
        if !self.existing_tables().await?.contains("_sqlx_migrations") {
            return Ok(0);
        }
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(self)
            .await
    }

    async fn existing_tables(&mut self) -> Result<BTreeSet<String>, sqlx::Error> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
        .fetch_all(self)
        .await?;
        Ok(names.into_iter().collect())
    }

    async fn shape(&mut self, table: &str) -> Result<TableShape, sqlx::Error> {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, udt_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *self)
        .await?;
        let primary_key: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
        )
        .bind(quote(table))
        .fetch_all(self)
        .await?;
        Ok(TableShape {
            columns: columns
                .into_iter()
                .map(|(name, kind)| Column {
                    name,
                    kind: kind.to_ascii_lowercase(),
                })
                .collect(),
            primary_key,
        })
    }

    async fn count(&mut self, table: &str) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(count_sql(table)).fetch_one(self).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn last_id(&mut self, table: &str) -> Result<i64, sqlx::Error> {
        let Some(sequence) = serial_sequence(self, table).await? else {
            return Ok(0);
        };
        let sql = format!("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}");
        sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(self).await
    }

    async fn raise_sequence(&mut self, table: &str, last_id: i64) -> Result<(), sqlx::Error> {
        let Some(sequence) = serial_sequence(self, table).await? else {
            return Ok(());
        };
        let sql = format!("SELECT MAX(id) FROM {}", quote(table));
        let max_id: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut *self)
            .await?;
        let floor = max_id.unwrap_or(0).max(last_id);
        if floor >= 1 {
            sqlx::query("SELECT setval($1::regclass, $2, true)")
                .bind(sequence)
                .bind(floor)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

/// The sequence behind `table.id` (a `BIGSERIAL`), if there is one.
async fn serial_sequence(
    conn: &mut PgConnection,
    table: &str,
) -> Result<Option<String>, sqlx::Error> {
    let has_id: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'id'",
    )
    .bind(table)
    .fetch_optional(&mut *conn)
    .await?;
    if has_id.is_none() {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT pg_get_serial_sequence($1, 'id')")
        .bind(quote(table))
        .fetch_one(conn)
        .await
}
