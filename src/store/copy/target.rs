//! A database as the sink of a copy or restore. Before the first row: refuse a target with rows
//! in any table (naming the table), refuse one migrated past the source's schema, and migrate
//! it to exactly the source's schema version. Then every table is loaded in one transaction
//! (multi-row `INSERT`s, columns matched by name, values converted to the target column's
//! type: text times parsed for `TIMESTAMPTZ`, times written as RFC 3339 text on SQLite), each
//! table's row count checked against what the source sent, and the id sequences moved past
//! every id the source handed out. Nothing is committed unless all of it succeeded.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use super::catalog::{Catalog, is_internal, quote};
use super::{CopyError, CopyResult, Header, RowSink, TableStart, Value, tables};
use crate::store::{BeginWrite as _, POSTGRES_MIGRATOR, Pool, SQLITE_MIGRATOR, Store};

enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// The table being loaded: its `INSERT` head and, per source column, the target column's type.
struct Current {
    table: String,
    columns: Vec<String>,
    insert: String,
    kinds: Vec<String>,
}

pub(super) struct DatabaseSink<'a> {
    store: &'a Store,
    tx: Option<Tx>,
    current: Option<Current>,
}

impl<'a> DatabaseSink<'a> {
    pub fn new(store: &'a Store) -> Self {
        DatabaseSink {
            store,
            tx: None,
            current: None,
        }
    }

    fn tx(&mut self) -> CopyResult<&mut Tx> {
        self.tx
            .as_mut()
            .ok_or_else(|| CopyError::Mismatch("rows arrived before the source's header".into()))
    }
}

/// Refuses a target that holds any row, naming the first table that does.
async fn check_empty<C: Catalog>(conn: &mut C) -> CopyResult<()> {
    let present: BTreeSet<String> = conn.existing_tables().await?;
    for table in tables() {
        if !present.contains(table) {
            continue;
        }
        let rows = conn.count(table).await?;
        if rows > 0 {
            return Err(CopyError::Refused(format!(
                "the target database is not empty: table {table} has {rows} rows; \
                 restore and db copy load only into an empty database"
            )));
        }
    }
    if let Some(other) = present
        .iter()
        .find(|t| !is_internal(t) && !tables().contains(&t.as_str()))
    {
        return Err(CopyError::Refused(format!(
            "the target database has a table {other} that tidings does not know; \
             restore and db copy load only into an empty database"
        )));
    }
    Ok(())
}

/// Refuses a source schema this build does not know or a target migrated past the source.
fn check_versions(header: &Header, target: i64, known: i64) -> CopyResult<()> {
    let source = header.schema_version;
    if source > known {
        return Err(CopyError::Refused(format!(
            "the source is at schema version {source}, made by a newer tidings \
             ({}); this build knows versions up to {known}",
            header.tidings_version
        )));
    }
    if target > source {
        return Err(CopyError::Refused(format!(
            "the target database is at schema version {target}, newer than the source's \
             {source}; load into a database that was never migrated, or migrate the source first"
        )));
    }
    Ok(())
}

/// A value as bound into a PostgreSQL column of the given type.
enum PgBind {
    Int(Option<i64>),
    Int4(Option<i32>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Time(Option<DateTime<Utc>>),
    Json(Option<sqlx::types::Json<serde_json::Value>>),
}

/// A time stored as text (SQLite): RFC 3339 as tidings writes it, or `YYYY-MM-DD HH:MM:SS[.f]`
/// in UTC.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn pg_bind(value: &Value, kind: &str) -> Result<PgBind, String> {
    let wrong = || {
        format!(
            "a {} value cannot go into a {kind} column",
            value_kind(value)
        )
    };
    Ok(match (kind, value) {
        ("int8", Value::Null) => PgBind::Int(None),
        ("int8", Value::Int(i)) => PgBind::Int(Some(*i)),
        ("int8", Value::Bool(b)) => PgBind::Int(Some(i64::from(*b))),
        ("int4" | "int2", Value::Null) => PgBind::Int4(None),
        ("int4" | "int2", Value::Int(i)) => PgBind::Int4(Some(
            i32::try_from(*i).map_err(|_| format!("{i} is too large"))?,
        )),
        ("float8" | "float4", Value::Null) => PgBind::Real(None),
        ("float8" | "float4", Value::Real(f)) => PgBind::Real(Some(*f)),
        ("float8" | "float4", Value::Int(i)) => PgBind::Real(Some(*i as f64)),
        ("bool", Value::Null) => PgBind::Bool(None),
        ("bool", Value::Bool(b)) => PgBind::Bool(Some(*b)),
        ("bool", Value::Int(i)) => PgBind::Bool(Some(*i != 0)),
        ("text" | "varchar" | "bpchar", Value::Null) => PgBind::Text(None),
        ("text" | "varchar" | "bpchar", Value::Text(s)) => PgBind::Text(Some(s.clone())),
        ("bytea", Value::Null) => PgBind::Bytes(None),
        ("bytea", Value::Bytes(b)) => PgBind::Bytes(Some(b.clone())),
        ("bytea", Value::Text(s)) => PgBind::Bytes(Some(s.as_bytes().to_vec())),
        ("timestamptz", Value::Null) => PgBind::Time(None),
        ("timestamptz", Value::Time(t)) => PgBind::Time(Some(*t)),
        ("timestamptz", Value::Text(s)) => PgBind::Time(Some(
            parse_time(s).ok_or_else(|| format!("{s:?} is not a time"))?,
        )),
        ("json" | "jsonb", Value::Null) => PgBind::Json(None),
        ("json" | "jsonb", Value::Text(s)) => PgBind::Json(Some(sqlx::types::Json(
            serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?,
        ))),
        _ => return Err(wrong()),
    })
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Int(_) => "integer",
        Value::Real(_) => "real",
        Value::Bool(_) => "boolean",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Time(_) => "time",
    }
}

impl RowSink for DatabaseSink<'_> {
    async fn start(&mut self, header: &Header) -> CopyResult<()> {
        let tx = match &self.store.pool {
            Pool::Sqlite(p) => {
                let known = SQLITE_MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
                let mut conn = p.acquire().await?;
                check_empty(&mut *conn).await?;
                check_versions(header, conn.schema_version().await?, known)?;
                drop(conn);
                SQLITE_MIGRATOR.run_to(header.schema_version, p).await?;
                Tx::Sqlite(p.begin_write().await?)
            }
            Pool::Postgres(p) => {
                let known = POSTGRES_MIGRATOR
                    .iter()
                    .map(|m| m.version)
                    .max()
                    .unwrap_or(0);
                let mut conn = p.acquire().await?;
                check_empty(&mut *conn).await?;
                check_versions(header, conn.schema_version().await?, known)?;
                drop(conn);
                POSTGRES_MIGRATOR.run_to(header.schema_version, p).await?;
                Tx::Postgres(p.begin_write().await?)
            }
        };
        self.tx = Some(tx);
        Ok(())
    }

    async fn start_table(&mut self, table: &TableStart) -> CopyResult<()> {
        let name = table.table.as_str();
        if !tables().contains(&name) {
            return Err(CopyError::Mismatch(format!(
                "the source has a table {name} that tidings does not know"
            )));
        }
        let shape = match self.tx()? {
            Tx::Sqlite(tx) => (**tx).shape(name).await?,
            Tx::Postgres(tx) => (**tx).shape(name).await?,
        };
        let target: BTreeSet<&str> = shape.columns.iter().map(|c| c.name.as_str()).collect();
        let source: BTreeSet<&str> = table.columns.iter().map(String::as_str).collect();
        if target != source {
            let missing: Vec<&&str> = source.difference(&target).collect();
            let extra: Vec<&&str> = target.difference(&source).collect();
            return Err(CopyError::Mismatch(format!(
                "table {name} differs between source and target: only in the source {missing:?}, \
                 only in the target {extra:?}"
            )));
        }
        let kinds = table
            .columns
            .iter()
            .map(|c| {
                shape
                    .columns
                    .iter()
                    .find(|t| &t.name == c)
                    .map(|t| t.kind.clone())
                    .unwrap_or_default()
            })
            .collect();
        let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
        self.current = Some(Current {
            table: name.to_string(),
            columns: table.columns.clone(),
            insert: format!("INSERT INTO {} ({}) ", quote(name), columns.join(", ")),
            kinds,
        });
        Ok(())
    }

    async fn write_rows(&mut self, rows: &[Vec<Value>]) -> CopyResult<()> {
        let Some(current) = self.current.take() else {
            return Err(CopyError::Mismatch("rows arrived outside a table".into()));
        };
        let result = write_batch(self.tx()?, &current, rows).await;
        self.current = Some(current);
        result
    }

    async fn end_table(&mut self, table: &TableStart, rows: u64) -> CopyResult<()> {
        let name = table.table.as_str();
        if rows != table.rows {
            return Err(CopyError::Mismatch(format!(
                "table {name}: the source announced {} rows but sent {rows}",
                table.rows
            )));
        }
        let stored = match self.tx()? {
            Tx::Sqlite(tx) => {
                (**tx).raise_sequence(name, table.last_id).await?;
                (**tx).count(name).await?
            }
            Tx::Postgres(tx) => {
                (**tx).raise_sequence(name, table.last_id).await?;
                (**tx).count(name).await?
            }
        };
        if stored != rows {
            return Err(CopyError::Mismatch(format!(
                "table {name}: {rows} rows were sent but the target holds {stored}"
            )));
        }
        self.current = None;
        Ok(())
    }

    async fn finish(self) -> CopyResult<()> {
        match self.tx {
            Some(Tx::Sqlite(tx)) => tx.commit().await?,
            Some(Tx::Postgres(tx)) => tx.commit().await?,
            None => {}
        }
        Ok(())
    }
}

/// One multi-row `INSERT` of `rows` into the current table.
async fn write_batch(tx: &mut Tx, current: &Current, rows: &[Vec<Value>]) -> CopyResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = current.kinds.len();
    if let Some(bad) = rows.iter().find(|r| r.len() != width) {
        return Err(CopyError::Mismatch(format!(
            "a row has {} values where the table has {width} columns",
            bad.len()
        )));
    }
    match tx {
        Tx::Sqlite(tx) => {
            let mut qb = QueryBuilder::<Sqlite>::new(current.insert.clone());
            qb.push_values(rows, |mut b, row| {
                for value in row {
                    match value {
                        Value::Null => b.push_bind(None::<i64>),
                        Value::Int(i) => b.push_bind(*i),
                        Value::Real(f) => b.push_bind(*f),
                        Value::Bool(v) => b.push_bind(*v),
                        Value::Text(s) => b.push_bind(s.clone()),
                        Value::Bytes(v) => b.push_bind(v.clone()),
                        // As tidings binds times on SQLite: RFC 3339 text.
                        Value::Time(t) => b.push_bind(*t),
                    };
                }
            });
            qb.build().persistent(false).execute(&mut **tx).await?;
        }
        Tx::Postgres(tx) => {
            let mut converted = Vec::with_capacity(rows.len());
            for row in rows {
                let mut out = Vec::with_capacity(width);
                for ((value, kind), column) in row.iter().zip(&current.kinds).zip(&current.columns)
                {
                    out.push(pg_bind(value, kind).map_err(|reason| {
                        CopyError::Mismatch(format!("{}.{column}: {reason}", current.table))
                    })?);
                }
                converted.push(out);
            }
            let mut qb = QueryBuilder::<Postgres>::new(current.insert.clone());
            qb.push_values(converted, |mut b, row| {
                for value in row {
                    match value {
                        PgBind::Int(v) => b.push_bind(v),
                        PgBind::Int4(v) => b.push_bind(v),
                        PgBind::Real(v) => b.push_bind(v),
                        PgBind::Bool(v) => b.push_bind(v),
                        PgBind::Text(v) => b.push_bind(v),
                        PgBind::Bytes(v) => b.push_bind(v),
                        PgBind::Time(v) => b.push_bind(v),
                        PgBind::Json(v) => b.push_bind(v),
                    };
                }
            });
            qb.build().persistent(false).execute(&mut **tx).await?;
        }
    }
    Ok(())
}
