//! A database as the source of a copy: every listed table read in one snapshot (a read
//! transaction on SQLite, which in WAL mode sees one state of the file while writers go on;
//! `REPEATABLE READ READ ONLY` on PostgreSQL), rows decoded into backend-neutral [`Value`]s and
//! streamed into a sink in batches. Nothing in the source is written.

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{
    AssertSqlSafe, Column as _, PgPool, Row as _, SqlitePool, TypeInfo as _, ValueRef as _,
};

use super::catalog::{Catalog, TableShape, is_internal, quote};
use super::{
    Batcher, CopyError, CopyResult, CopySummary, FORMAT, FORMAT_VERSION, Header, Progress, RowSink,
    TableCount, TableStart, Value, tables,
};
use crate::store::{Backend, Store, with_pool};

/// Starts the read-only transaction a dump reads in.
trait BeginSnapshot {
    type Db: sqlx::Database;
    async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginSnapshot for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_snapshot(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        // A deferred transaction: its first read fixes the snapshot every later read sees.
        self.begin().await
    }
}

impl BeginSnapshot for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_snapshot(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    }
}

/// Turns a row of either backend into [`Value`]s.
trait DecodeRow {
    fn values(&self, table: &str) -> CopyResult<Vec<Value>>;
}

fn undecodable(table: &str, column: &str, kind: &str) -> CopyError {
    CopyError::Mismatch(format!(
        "{table}.{column} holds a value of type {kind}, which backups cannot carry"
    ))
}

impl DecodeRow for SqliteRow {
    fn values(&self, table: &str) -> CopyResult<Vec<Value>> {
        let mut out = Vec::with_capacity(self.len());
        for (i, column) in self.columns().iter().enumerate() {
            let raw = self.try_get_raw(i)?;
            if raw.is_null() {
                out.push(Value::Null);
                continue;
            }
            // What the value is stored as, whatever the column's declared type.
            let kind = raw.type_info().name().to_string();
            out.push(match kind.as_str() {
                "INTEGER" => Value::Int(self.try_get_unchecked(i)?),
                "REAL" => Value::Real(self.try_get_unchecked(i)?),
                "TEXT" => Value::Text(self.try_get_unchecked(i)?),
                "BLOB" => Value::Bytes(self.try_get_unchecked(i)?),
                other => return Err(undecodable(table, column.name(), other)),
            });
        }
        Ok(out)
    }
}

impl DecodeRow for PgRow {
    fn values(&self, table: &str) -> CopyResult<Vec<Value>> {
        let mut out = Vec::with_capacity(self.len());
        for (i, column) in self.columns().iter().enumerate() {
            let kind = column.type_info().name().to_string();
            let value = match kind.as_str() {
                "INT8" => self.try_get::<Option<i64>, _>(i)?.map(Value::Int),
                "INT4" => self
                    .try_get::<Option<i32>, _>(i)?
                    .map(|v| Value::Int(v.into())),
                "INT2" => self
                    .try_get::<Option<i16>, _>(i)?
                    .map(|v| Value::Int(v.into())),
                "BOOL" => self.try_get::<Option<bool>, _>(i)?.map(Value::Bool),
                "FLOAT8" => self.try_get::<Option<f64>, _>(i)?.map(Value::Real),
                "FLOAT4" => self
                    .try_get::<Option<f32>, _>(i)?
                    .map(|v| Value::Real(v.into())),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                    self.try_get::<Option<String>, _>(i)?.map(Value::Text)
                }
                "BYTEA" => self.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Bytes),
                "TIMESTAMPTZ" => self
                    .try_get::<Option<DateTime<Utc>>, _>(i)?
                    .map(Value::Time),
                "JSON" | "JSONB" => self
                    .try_get::<Option<serde_json::Value>, _>(i)?
                    .map(|v| Value::Text(v.to_string())),
                "UUID" => self
                    .try_get::<Option<uuid::Uuid>, _>(i)?
                    .map(|v| Value::Text(v.to_string())),
                other => return Err(undecodable(table, column.name(), other)),
            };
            out.push(value.unwrap_or(Value::Null));
        }
        Ok(out)
    }
}

/// Streams every listed table of `store` into `sink`, in one snapshot.
pub(super) async fn dump<S: RowSink>(
    store: &Store,
    sink: &mut S,
    progress: &dyn Progress,
) -> CopyResult<CopySummary> {
    let backend = match store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    with_pool!(store, p => {
        let mut tx = p.begin_snapshot().await?;
        let schema_version = Catalog::schema_version(&mut *tx).await?;
        if schema_version == 0 {
            return Err(CopyError::Refused(
                "the source database has no tidings schema (no migration was ever applied to it)"
                    .into(),
            ));
        }
        let present = Catalog::existing_tables(&mut *tx).await?;
        let listed = tables();
        if let Some(extra) = present
            .iter()
            .find(|t| !is_internal(t) && !listed.contains(&t.as_str()))
        {
            return Err(CopyError::Mismatch(format!(
                "the source database has a table {extra} that tidings does not know; \
                 refusing to copy without it"
            )));
        }
        let mut plan: Vec<(TableStart, TableShape)> = Vec::new();
        for table in listed {
            if !present.contains(table) {
                return Err(CopyError::Mismatch(format!(
                    "the source database (schema version {schema_version}) has no table {table}"
                )));
            }
            let shape = Catalog::shape(&mut *tx, table).await?;
            let rows = Catalog::count(&mut *tx, table).await?;
            let last_id = if shape.has_id() {
                Catalog::last_id(&mut *tx, table).await?
            } else {
                0
            };
            let start = TableStart {
                table: table.to_string(),
                columns: shape.columns.iter().map(|c| c.name.clone()).collect(),
                rows,
                last_id,
            };
            plan.push((start, shape));
        }
        let header = Header {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            tidings_version: env!("CARGO_PKG_VERSION").into(),
            schema_version,
            source_backend: backend.into(),
            created_at: Utc::now(),
            tables: plan
                .iter()
                .map(|(s, _)| TableCount { table: s.table.clone(), rows: s.rows })
                .collect(),
        };
        sink.start(&header).await?;
        progress.start(header.tables.iter().map(|t| t.rows).sum());
        for (start, shape) in &plan {
            sink.start_table(start).await?;
            let columns: Vec<String> = start.columns.iter().map(|c| quote(c)).collect();
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {}",
                columns.join(", "),
                quote(&start.table),
                shape.order_by()
            );
            let mut batcher = Batcher::new(&mut *sink, progress, columns.len());
            {
                let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    batcher.push(row.values(&start.table)?).await?;
                }
            }
            let sent = batcher.flush().await?;
            sink.end_table(start, sent).await?;
        }
        progress.finish();
        tx.rollback().await?;
        Ok(CopySummary {
            schema_version,
            source_backend: backend.into(),
            tables: header.tables,
        })
    })
}
